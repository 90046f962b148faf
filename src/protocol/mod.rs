//! Everything about bytes on the wire, and nothing about policy: the bounds-checked cursor, frame
//! splitting, header peeks, the Produce acks patch and response scan, the count-walk guards that
//! run before kafka-protocol decodes client input (`guard`) and broker responses
//! (`response_guard`), the API/version table, frame building, the one table of Kafka error
//! codes, who authenticated as read from a relayed SASL exchange, and the record batches the
//! proxy writes itself (`records`: building, producer stamping).

pub mod batch;
pub mod cursor;
pub mod encode;
pub mod errors;
pub mod fetch;
pub mod frame;
pub mod groups;
pub mod guard;
pub mod header;
mod own_walks;
pub mod produce;
pub mod produce_response;
pub mod records;
pub mod response_guard;
pub mod sasl;
pub mod versions;

pub use frame::{split_frame, FrameError, SIZE_LEN};
pub use header::{peek_request_header, peek_response_correlation, RequestHeader};
pub use produce::{patch_acks, peek_produce, produce_topics, ProduceHead, ProduceTopic};

#[cfg(test)]
mod tests;

//! kafka-durability-proxy: a Kafka-protocol hop that enforces durability on the wire.
pub mod codec;
pub mod frames;
pub mod wire;

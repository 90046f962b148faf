//! Policy rules: pure functions from a decoded (or peeked) request to a decision. No I/O here;
//! the session applies decisions, the audit module records them.
pub mod configs;
pub mod produce;
pub mod scope;
pub mod topics;

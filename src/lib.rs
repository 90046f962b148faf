//! kafka-durability-proxy: a Kafka-protocol hop that enforces durability on the wire.
pub mod codec;
pub mod config;
pub mod pattern;
pub mod policy;
pub mod rewrite;
pub mod frames;
pub mod wire;

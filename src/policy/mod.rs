//! Policy rules: pure functions from what a request asks for to a decision, with their table
//! tests beside them. No I/O, no tokio, no sockets: handlers apply the decisions, the audit
//! module records them.

pub mod configs;
pub mod deletes;
pub mod idempotence;
pub mod partitions;
pub mod produce;
pub mod rules;
pub mod scope;
pub mod topics;

pub use rules::{Action, Policies};

//! kafka-durability-proxy: a Kafka-protocol hop that enforces durability on the wire.
//!
//! Layout, one job per module:
//! - `wire`: bounds-checked reads of Kafka primitives from untrusted bytes.
//! - `codec`: frames with a size cap, request-header peek, Produce acks location and patch.
//! - `frames`: building frames from kafka-protocol messages (the proxy's own responses).
//! - `config`, `pattern`: typed, validated configuration; name patterns for scoping.
//! - `policy`: pure rules from request to decision (`produce`: acks; `topics`: topic shapes;
//!   `configs`: the config a resource would have after a change).
//! - `admin`: CreateTopics / DeleteTopics / DeleteRecords / AlterConfigs /
//!   IncrementalAlterConfigs handling, Metadata auto-create.
//! - `rewrite`: address rewrites (Metadata, FindCoordinator, DescribeCluster, KIP-951 tails),
//!   ApiVersions clamping, Produce response scanning and rejection.
//! - `inflight`: what to do with each response, in request order.
//! - `io`: frame reader and vectored frame writer over socket halves.
//! - `session`: one client connection and its broker connection.
//! - `topology`: broker node ids, their real addresses and their proxy listeners.
//! - `server`: listeners, discovery, shared state.
//! - `audit`: the JSON-lines audit stream with windowed aggregation.
//! - `error`: connection errors that name the failing side.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

pub mod admin;
pub mod audit;
pub mod codec;
pub mod config;
pub mod error;
pub mod frames;
pub mod inflight;
pub mod io;
pub mod pattern;
pub mod policy;
pub mod rewrite;
pub mod server;
pub mod session;
pub mod topology;
pub mod wire;

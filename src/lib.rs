//! kafka-durability-proxy: a Kafka-protocol hop that enforces durability on the wire.
//!
//! Layout, one job per module (docs/architecture.md follows a request through them):
//! - `protocol`: bytes on the wire — cursor, frames, header peeks, the acks patch, guards,
//!   the API/version table, frame building, the one table of Kafka error codes, the principal
//!   read from a relayed SASL exchange, record batches and producer stamping. Knows no policy.
//! - `net`: transports (plain TCP or rustls TLS, with certificate reload and the peer
//!   certificate's subject), framed reading and vectored writing, listeners with connection
//!   limits and the accept loop with shutdown.
//! - `cluster`: what the proxy knows of and asks of the cluster — topology, discovery, broker
//!   defaults, its own pooled client with side-typed errors and SASL client, its own idempotent
//!   producer (the audit topic's writer), the `ClusterView` trait.
//! - `policy`: pure rules (no tokio, no sockets): rule types, acks, topics, configs,
//!   partitions, deletes, scopes.
//! - `handlers`: one file per API the proxy judges: decode (guarded) → policy → answer,
//!   rewrite or forward; `split` merges partial answers; `route` dispatches.
//! - `rewrite`: broker addresses in responses become proxy addresses; ApiVersions clamped.
//! - `delivery`: upgraded acks=0 requests stamped with the proxy's producer id, held until
//!   acknowledged, re-sent in the background after failures, given up with an audit event.
//! - `session`: one client connection — `requests`, `responses`, the `inflight` queue.
//! - `audit`: one constructor per event kind, the writer (aggregation, fan-out), and the sinks:
//!   stdout, a rotating file, a Kafka topic.
//! - `report`: the `report` command — reads audit logs, filters by time, groups and counts
//!   (`mod.rs`, `line`, `args`), prints a table or JSON (`render`). Knows no connections.
//! - `config`: serde types (`file`), validation, reload.
//! - `state`: the shared state a reload swaps and sessions read.
//! - `server`: wiring — state, listeners, discovery, shutdown.
//! - `identity`: who a connection is (SASL principal, certificate subject and its mapping).
//! - `metrics`: counters and histograms made once, bumped with an atomic add, rendered as
//!   Prometheus text; `ops`: the admin endpoint (/metrics, /healthz, /readyz).
//! - `error`, `pattern`: connection errors by side; name patterns.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

pub mod audit;
pub mod cluster;
pub mod config;
pub mod delivery;
pub mod error;
pub mod handlers;
pub mod identity;
pub mod metrics;
pub mod net;
pub mod ops;
pub mod pattern;
pub mod policy;
pub mod protocol;
pub mod report;
pub mod rewrite;
pub mod server;
pub mod session;
pub mod state;

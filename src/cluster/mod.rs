//! What the proxy knows of, and asks of, the cluster: the topology (node id, upstream address,
//! proxy listener), discovery and broker defaults, and the proxy's own pooled client with its
//! typed errors and its SASL client (`sasl`), and its own idempotent `producer` (with `leaders`:
//! partition leaders from Metadata, topic creation). Handlers reach it only through the
//! `ClusterView` trait.

pub mod auth;
pub mod client;
pub mod discovery;
pub mod error;
pub mod leaders;
pub mod producer;
pub mod producer_id;
pub mod sasl;
pub mod topology;
pub mod view;

pub use client::{ClientSettings, ClusterClient};
pub use error::ClusterError;
pub use topology::{Target, Topology};
pub use view::{Cluster, ClusterView, ConfigEntry};

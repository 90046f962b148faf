//! Response rewrites: every broker address a response carries becomes a proxy address, and
//! ApiVersions is clamped to what the proxy can inspect.

pub mod addresses;
pub mod api_versions;
pub mod tail;

use bytes::Bytes;
use kafka_protocol::protocol::StrBytes;

use crate::protocol::encode::CodecError;

/// Maps a broker (node id and its real address) to the proxy address clients must use instead.
pub trait Endpoints {
    /// Learns the broker's upstream address as a side effect, so a broker seen for the first time
    /// gets its listener before any client is told about it.
    fn proxy_address(&self, node_id: i32, upstream_host: &str, upstream_port: i32) -> Result<(StrBytes, i32), RewriteError>;
}

#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error("broker sent a {api} v{version} response the proxy cannot decode: {reason}")]
    Decode { api: &'static str, version: i16, reason: String },
    #[error("proxy failed to encode a {api} v{version} response: {reason}")]
    Encode { api: &'static str, version: i16, reason: String },
    #[error("broker node {node_id} has no proxy listener (its port would fall outside 1-65535; set listen.broker_ports)")]
    NoListener { node_id: i32 },
    #[error("broker node {node_id} advertises {addr}, which is this proxy's own listener: the proxy would connect to itself; the broker's advertised.listeners must name the broker, not the proxy")]
    SelfLoop { node_id: i32, addr: String },
}

/// A response to send in place of the broker's: either one new buffer, or pieces that share the
/// original frame (zero-copy prefix + new tail), written with one vectored write.
impl From<CodecError> for RewriteError {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::Decode { api, version, reason } => RewriteError::Decode { api, version, reason },
            CodecError::Encode { api, version, reason } => RewriteError::Encode { api, version, reason },
        }
    }
}

#[derive(Debug)]
pub enum Rewritten {
    Whole(Bytes),
    Pieces(Vec<Bytes>),
}

#[cfg(test)]
mod tests;

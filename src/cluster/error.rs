//! Errors of the proxy's own requests to the cluster, typed by the side that failed and whether
//! trying again can help: a handler turns them into a refusal that says why, discovery into a
//! retry with back-off.

use crate::error::Side;
use crate::protocol::errors;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    #[error("no upstream broker is configured")]
    NoBrokers,
    #[error("cannot connect to broker {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("broker {addr} did not answer {api} within {timeout_ms} ms")]
    Timeout { addr: String, api: &'static str, timeout_ms: u64 },
    #[error("connection to broker {addr} failed during {api}: {reason}")]
    Io { addr: String, api: &'static str, reason: String },
    #[error("broker {addr} sent an unreadable {api} response: {reason}")]
    Protocol { addr: String, api: &'static str, reason: String },
    #[error("broker {addr} offers no {api} version the proxy can use (broker {broker}, proxy {proxy})")]
    NoCommonVersion { addr: String, api: &'static str, broker: String, proxy: String },
    #[error("broker answered {api} with {} ({code}){}", errors::name(*.code), .message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka { api: &'static str, code: i16, message: Option<String> },
    #[error("proxy failed to encode {api}: {reason}")]
    Encode { api: &'static str, reason: String },
    #[error("broker {addr} refused the proxy's own credentials (upstream.sasl, user {user}): {reason}")]
    Auth { addr: String, user: String, reason: String },
}

impl ClusterError {
    pub fn side(&self) -> Side {
        match self {
            // A refused login is the proxy's configuration to fix, not the broker's fault.
            ClusterError::NoBrokers | ClusterError::Encode { .. } | ClusterError::Auth { .. } => Side::Proxy,
            _ => Side::Broker,
        }
    }

    /// Whether the cluster refused the proxy itself: its credentials (upstream.sasl) or its
    /// ACLs. Configuration to fix, not a broker to wait for.
    pub fn is_refusal(&self) -> bool {
        match self {
            ClusterError::Auth { .. } => true,
            ClusterError::Kafka { code, .. } => errors::is_authorization(*code),
            _ => false,
        }
    }

    /// Whether the same request may succeed if sent again (later, or to another broker).
    pub fn retriable(&self) -> bool {
        match self {
            ClusterError::Connect { .. } | ClusterError::Timeout { .. } | ClusterError::Io { .. } => true,
            ClusterError::Kafka { code, .. } => errors::retriable(*code),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_and_retry_per_kind() {
        let io = ClusterError::Io { addr: "b:1".into(), api: "Metadata", reason: "reset".into() };
        let leader = ClusterError::Kafka { api: "DescribeConfigs", code: errors::NOT_LEADER_OR_FOLLOWER, message: None };
        let denied = ClusterError::Kafka { api: "DescribeConfigs", code: errors::CLUSTER_AUTHORIZATION_FAILED, message: Some("no".into()) };
        let enc = ClusterError::Encode { api: "Metadata", reason: "x".into() };
        let cases = [(&io, Side::Broker, true), (&leader, Side::Broker, true), (&denied, Side::Broker, false), (&enc, Side::Proxy, false)];
        for (e, side, retry) in cases {
            assert_eq!((e.side(), e.retriable()), (side, retry), "{e}");
        }
        assert_eq!(denied.to_string(), "broker answered DescribeConfigs with ClusterAuthorizationFailed (31): no");
        let auth = ClusterError::Auth { addr: "b:1".into(), user: "kdp".into(), reason: "invalid-proof".into() };
        let refusals: Vec<bool> = [&io, &leader, &denied, &enc, &auth].iter().map(|e| e.is_refusal()).collect();
        assert_eq!(refusals, [false, false, true, false, true], "credentials and ACLs are refusals, the rest is not");
    }
}

//! Errors of a proxied connection, each naming the side that failed: the client, the broker, or
//! the proxy itself. The side decides the log wording and who is to blame in an incident.

use crate::protocol::FrameError;
use crate::rewrite::RewriteError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Broker,
    Proxy,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Client => "client",
            Side::Broker => "broker",
            Side::Proxy => "proxy",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("client connection failed: {0}")]
    ClientIo(std::io::Error),
    #[error("client sent a bad frame: {0}")]
    ClientFrame(FrameError),
    #[error("client broke the protocol: {0}")]
    Client(String),
    #[error("cannot connect to broker {addr}: {reason}")]
    BrokerConnect { addr: String, reason: String },
    #[error("broker connection failed: {0}")]
    BrokerIo(std::io::Error),
    #[error("broker sent a bad frame: {0}")]
    BrokerFrame(FrameError),
    #[error("broker broke the protocol: {0}")]
    Broker(String),
    #[error("{0}")]
    Rewrite(#[from] RewriteError),
    #[error("proxy failed: {0}")]
    Proxy(String),
}

impl SessionError {
    pub fn side(&self) -> Side {
        match self {
            SessionError::ClientIo(_) | SessionError::ClientFrame(_) | SessionError::Client(_) => Side::Client,
            SessionError::BrokerConnect { .. } | SessionError::BrokerIo(_) | SessionError::BrokerFrame(_) | SessionError::Broker(_) => {
                Side::Broker
            }
            SessionError::Rewrite(RewriteError::Decode { .. }) => Side::Broker,
            SessionError::Rewrite(_) | SessionError::Proxy(_) => Side::Proxy,
        }
    }
}

//! Listening sockets and the accept loop: bind with a backlog that absorbs connection bursts,
//! admit each connection under the connection limits (or close it with a log line), hand it to
//! a serve function, stop accepting on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::limits::{ConnLimits, Permit};
use super::transport::Accepted;
use crate::metrics::ListenerMetrics;

/// Binds `addr` (host:port) with SO_REUSEADDR, so a restarted proxy rebinds at once.
pub fn bind(addr: &str, backlog: u32) -> std::io::Result<TcpListener> {
    let sa: SocketAddr = match addr.parse() {
        Ok(sa) => sa,
        Err(_) => std::net::ToSocketAddrs::to_socket_addrs(addr)?
            .next()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr} resolves to no address")))?,
    };
    let socket = if sa.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(sa)?;
    socket.listen(backlog)
}

/// What an accept loop shares with the rest of the proxy.
pub struct AcceptCtx {
    pub name: String,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    pub limits: Arc<ConnLimits>,
    pub metrics: Arc<ListenerMetrics>,
}

/// A connection's place under the limits and in its listener's open-connection count, both
/// released when the session ends.
pub struct Admission {
    _permit: Permit,
    metrics: Arc<ListenerMetrics>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.metrics.open.dec();
    }
}

/// Accepts until `shutdown`, spawning `serve` for each admitted connection on `tracker` (so a
/// drain can wait for them). Dropping the listener on shutdown refuses new connections.
pub async fn accept_loop<F, Fut>(listener: TcpListener, ctx: AcceptCtx, serve: F)
where
    F: Fn(Accepted, Admission) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let last_refusal_log = AtomicU64::new(0);
    let started = Instant::now();
    loop {
        let accepted = tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((tcp, peer)) => match ctx.limits.admit(peer.ip()) {
                Ok(permit) => {
                    let _ = tcp.set_nodelay(true);
                    ctx.metrics.accepted.inc();
                    ctx.metrics.open.inc();
                    ctx.tracker.spawn(serve(Accepted { tcp, peer }, Admission { _permit: permit, metrics: ctx.metrics.clone() }));
                }
                Err(refusal) => {
                    ctx.metrics.refused.inc();
                    // One line per second at most: a flood must not become a log flood.
                    let now = started.elapsed().as_secs() + 1;
                    if last_refusal_log.swap(now, Ordering::Relaxed) != now {
                        tracing::warn!(%peer, listener = %ctx.name, refused_total = ctx.limits.refused(), "refusing client connection: {refusal}");
                    }
                }
            },
            Err(e) => {
                // Typically out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, listener = %ctx.name, "proxy failed to accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

//! Listening sockets and the accept loop: bind with a backlog that absorbs connection bursts,
//! hand each accepted connection to a serve function, stop accepting on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::transport::{Accepted, Stream};

/// Listen backlog: std's default of 128 drops SYNs when hundreds of clients connect at once.
pub const DEFAULT_BACKLOG: u32 = 1024;

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

/// Accepts until `shutdown`, spawning `serve` for each connection on `tracker` (so a drain can
/// wait for them). Dropping the listener on shutdown refuses new connections from then on.
pub async fn accept_loop<F, Fut>(listener: TcpListener, name: String, shutdown: CancellationToken, tracker: TaskTracker, serve: F)
where
    F: Fn(Accepted) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tracker.spawn(serve(Accepted { stream: Stream::Tcp(stream), peer }));
            }
            Err(e) => {
                // Typically out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, listener = %name, "proxy failed to accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

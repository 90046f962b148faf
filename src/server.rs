//! Wiring only: build the shared state, start the bootstrap listener and serve every broker
//! listener as it is bound, run discovery and the defaults refresh, and drain on shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use tracing::info;

use crate::cluster::discovery;
use crate::cluster::Target;
use crate::metrics::Encoder;
use crate::net::listener::{accept_loop, bind, AcceptCtx};
use crate::ops::{self, OpsState};
use crate::rewrite::Endpoints;
use crate::session;
use crate::state::Proxy;
use tokio_util::sync::CancellationToken;

/// Binds the bootstrap listener and starts serving; listeners for brokers follow from discovery
/// and from every response that names a broker.
pub async fn start(proxy: Arc<Proxy>) -> std::io::Result<SocketAddr> {
    let cfg = proxy.config();
    proxy.deliveries.start();
    let serving = proxy.clone();
    proxy.serve_listeners_with(move |node_id, listener| {
        tokio::spawn(serve(serving.clone(), listener, Target::Node(node_id)));
    });
    let addr = format!("{}:{}", cfg.listen.bind_host, cfg.listen.bootstrap_port);
    let listener = bind(&addr, cfg.listen.backlog)?;
    let local = listener.local_addr()?;
    info!(%local, upstream = ?cfg.upstream.bootstrap_servers, "bootstrap listener ready");
    tokio::spawn(serve(proxy.clone(), listener, Target::Bootstrap));
    tokio::spawn(async move {
        let eps = proxy.endpoints();
        discovery::discover(&proxy.cluster, |node, host, port| eps.proxy_address(node, host, port).map(|_| ())).await;
        proxy.mark_discovered();
        discovery::refresh_defaults(&proxy.cluster).await;
    });
    Ok(local)
}

/// Binds the admin endpoint (`admin.listen`) and serves it until `stop`; None when it is off.
pub fn start_admin(
    proxy: &Arc<Proxy>,
    collect: Arc<dyn Fn(&mut Encoder) + Send + Sync>,
    stop: CancellationToken,
) -> std::io::Result<Option<SocketAddr>> {
    let Some(addr) = proxy.config().admin.listen.clone() else { return Ok(None) };
    let listener = bind(&addr, 128)?;
    let local = listener.local_addr()?;
    let ready = proxy.clone();
    let state = OpsState { metrics: proxy.metrics.clone(), ready: Arc::new(move || ready.ready()), collect };
    tokio::spawn(ops::serve(listener, state, stop));
    info!(%local, "admin endpoint ready: /metrics /healthz /readyz");
    Ok(Some(local))
}

/// Accepts on one listener until shutdown, each connection a session.
async fn serve(proxy: Arc<Proxy>, listener: tokio::net::TcpListener, target: Target) {
    let name = match target {
        Target::Bootstrap => "bootstrap".to_owned(),
        Target::Node(id) => format!("broker {id}"),
    };
    let metrics = proxy.metrics.listener(&name);
    let ctx = AcceptCtx { name, shutdown: proxy.shutdown.clone(), tracker: proxy.sessions.clone(), limits: proxy.limits.clone(), metrics };
    accept_loop(listener, ctx, move |conn, permit| session::run(proxy.clone(), conn, permit, target)).await;
}

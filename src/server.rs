//! The running proxy: shared state, the bootstrap listener, one listener per broker node (bound
//! the first time the node is seen, before any client is told about it), and start-up discovery.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::{Decodable, StrBytes};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tracing::{error, info, warn};

use crate::audit::AuditLog;
use crate::config::Config;
use crate::io::FrameReader;
use crate::rewrite::{Endpoints, RewriteError};
use crate::session;
use crate::topology::{Target, Topology};

pub struct Proxy {
    config: Arc<Config>,
    topology: Topology,
    pub audit: AuditLog,
}

impl Proxy {
    pub fn new(config: Config, audit: AuditLog) -> Arc<Self> {
        Arc::new(Self { config: Arc::new(config), topology: Topology::default(), audit })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn endpoints(self: &Arc<Self>) -> ProxyEndpoints {
        ProxyEndpoints(self.clone())
    }

    /// Binds the listener for a broker node if it has none yet; returns its port.
    fn ensure_listener(self: &Arc<Self>, node_id: i32) -> Result<u16, RewriteError> {
        let proxy = self.clone();
        self.topology.listener(node_id, || {
            let port = proxy.config.port_for_node(node_id).ok_or(RewriteError::NoListener { node_id })?;
            let addr = format!("{}:{port}", proxy.config.listen.bind_host);
            let listener = bind(&addr).map_err(|e| {
                error!(node_id, %addr, error = %e, "proxy cannot bind the listener for a broker");
                RewriteError::NoListener { node_id }
            })?;
            info!(node_id, %addr, "listening for broker node");
            tokio::spawn(accept_loop(proxy.clone(), listener, Target::Node(node_id)));
            Ok(port)
        })
    }
}

/// The proxy as seen by response rewrites.
pub struct ProxyEndpoints(Arc<Proxy>);

impl Endpoints for ProxyEndpoints {
    fn proxy_address(&self, node_id: i32, host: &str, port: i32) -> Result<(StrBytes, i32), RewriteError> {
        self.0.topology.learn(node_id, host, port);
        let port = self.0.ensure_listener(node_id)?;
        Ok((StrBytes::from_string(self.0.config.listen.advertised_host.clone()), i32::from(port)))
    }
}

fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let std = std::net::TcpListener::bind(addr)?;
    std.set_nonblocking(true)?;
    TcpListener::from_std(std)
}

async fn accept_loop(proxy: Arc<Proxy>, listener: TcpListener, target: Target) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(session::run(proxy.clone(), stream, peer, target));
            }
            Err(e) => {
                // Typically out of file descriptors: back off instead of spinning.
                warn!(error = %e, ?target, "proxy failed to accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Binds the bootstrap listener and starts serving; listeners for brokers follow from discovery.
pub async fn start(proxy: Arc<Proxy>) -> std::io::Result<SocketAddr> {
    let cfg = proxy.config();
    let addr = format!("{}:{}", cfg.listen.bind_host, cfg.listen.bootstrap_port);
    let listener = bind(&addr)?;
    let local = listener.local_addr()?;
    info!(%local, upstream = ?cfg.upstream.bootstrap_servers, "bootstrap listener ready");
    tokio::spawn(accept_loop(proxy.clone(), listener, Target::Bootstrap));
    tokio::spawn(discover(proxy));
    Ok(local)
}

/// Asks the cluster for its brokers until it answers, so broker listeners exist after a restart
/// even before any client asks for Metadata (clients cache proxy addresses).
async fn discover(proxy: Arc<Proxy>) {
    let mut delay = Duration::from_millis(500);
    loop {
        match discover_once(&proxy).await {
            Ok(n) => {
                info!(brokers = n, "discovered cluster brokers");
                return;
            }
            Err(e) => {
                warn!(error = %e, retry_in = ?delay, "broker discovery failed");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

async fn discover_once(proxy: &Arc<Proxy>) -> anyhow::Result<usize> {
    const VERSION: i16 = 1;
    let cfg = proxy.config();
    let timeout = Duration::from_millis(cfg.upstream.connect_timeout_ms);
    let mut last = anyhow::anyhow!("no bootstrap servers");
    for addr in &cfg.upstream.bootstrap_servers {
        let attempt = async {
            let mut stream = TcpStream::connect(addr).await?;
            let req = MetadataRequest::default().with_topics(Some(vec![]));
            let frame = crate::frames::request(ApiKey::Metadata, VERSION, 1, Some("kafka-durability-proxy"), &req)?;
            stream.write_all(&frame).await?;
            let mut reader = FrameReader::new(stream, cfg.limits.max_frame_bytes);
            let resp = reader.next().await?.ok_or_else(|| anyhow::anyhow!("broker closed the connection"))?;
            // Response header v0 (Metadata v1): size prefix and correlation id, then the body.
            anyhow::ensure!(resp.len() >= 8, "broker sent a truncated Metadata response");
            let mut body = resp.freeze().slice(8..);
            let meta = MetadataResponse::decode(&mut body, VERSION)?;
            let eps = proxy.endpoints();
            for b in &meta.brokers {
                eps.proxy_address(b.node_id.0, &b.host, b.port)?;
            }
            anyhow::Ok(meta.brokers.len())
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(n)) => return Ok(n),
            Ok(Err(e)) => last = anyhow::anyhow!("{addr}: {e}"),
            Err(_) => last = anyhow::anyhow!("{addr}: timed out"),
        }
    }
    Err(last)
}

//! The running proxy: shared state, the bootstrap listener, one listener per broker node (bound
//! the first time the node is seen, before any client is told about it), and start-up discovery.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tracing::{error, info, warn};

use crate::audit::AuditLog;
use crate::config::Config;
use crate::io::FrameReader;
use crate::policy::topics::BrokerDefaults;
use crate::rewrite::{Endpoints, RewriteError};
use crate::session;
use crate::topology::{Target, Topology};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub struct Proxy {
    /// Swapped whole on reload; each request reads the current one.
    config: RwLock<Arc<Config>>,
    topology: Topology,
    defaults: RwLock<BrokerDefaults>,
    pub audit: AuditLog,
    /// Cancelled on shutdown: listeners stop accepting, sessions stop reading new requests.
    pub shutdown: CancellationToken,
    /// Every client session, so shutdown can wait for their in-flight requests.
    sessions: TaskTracker,
}

impl Proxy {
    pub fn new(config: Config, audit: AuditLog) -> Arc<Self> {
        Arc::new(Self {
            config: RwLock::new(Arc::new(config)),
            topology: Topology::default(),
            defaults: RwLock::new(BrokerDefaults::KAFKA),
            audit,
            shutdown: CancellationToken::new(),
            sessions: TaskTracker::new(),
        })
    }

    /// Stops accepting, lets every session finish the requests it already forwarded, and waits
    /// for them at most `limits.drain_timeout_ms`. Returns the sessions still open at the deadline.
    pub async fn drain(&self) -> usize {
        self.shutdown.cancel();
        self.sessions.close();
        let limit = Duration::from_millis(self.config().limits.drain_timeout_ms);
        if tokio::time::timeout(limit, self.sessions.wait()).await.is_err() {
            return self.sessions.len();
        }
        0
    }

    pub fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Applies a new, already validated configuration's policies atomically. Listeners, upstream,
    /// limits and the audit sink are fixed at start: differences there are reported, not applied.
    /// Returns the sections that need a restart.
    pub fn reload(&self, new: Config) -> Vec<&'static str> {
        let mut guard = self.config.write().unwrap_or_else(|p| p.into_inner());
        let old = guard.clone();
        let mut fixed = Vec::new();
        if new.listen != old.listen {
            fixed.push("listen");
        }
        if new.upstream != old.upstream {
            fixed.push("upstream");
        }
        if new.limits != old.limits {
            fixed.push("limits");
        }
        if new.audit != old.audit {
            fixed.push("audit");
        }
        let merged = Config {
            listen: old.listen.clone(),
            upstream: old.upstream.clone(),
            limits: old.limits.clone(),
            audit: old.audit.clone(),
            ..new
        };
        *guard = Arc::new(merged);
        fixed
    }

    /// What the cluster's brokers give topics by default (refreshed in the background).
    pub fn broker_defaults(&self) -> BrokerDefaults {
        *self.defaults.read().unwrap_or_else(|p| p.into_inner())
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
            let cfg = proxy.config();
            let port = cfg.port_for_node(node_id).ok_or(RewriteError::NoListener { node_id })?;
            let addr = format!("{}:{port}", cfg.listen.bind_host);
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
        Ok((StrBytes::from_string(self.0.config().listen.advertised_host.clone()), i32::from(port)))
    }
}

fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let std = std::net::TcpListener::bind(addr)?;
    std.set_nonblocking(true)?;
    TcpListener::from_std(std)
}

async fn accept_loop(proxy: Arc<Proxy>, listener: TcpListener, target: Target) {
    loop {
        let accepted = tokio::select! {
            // Dropping the listener closes it: new connections are refused from here on.
            _ = proxy.shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                proxy.sessions.spawn(session::run(proxy.clone(), stream, peer, target));
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
    tokio::spawn(async move {
        discover(proxy.clone()).await;
        refresh_defaults(proxy).await;
    });
    Ok(local)
}

/// How often broker defaults are read again.
const DEFAULTS_REFRESH: Duration = Duration::from_secs(300);

/// Keeps `broker_defaults` current: DescribeConfigs on one broker, every few minutes.
async fn refresh_defaults(proxy: Arc<Proxy>) {
    loop {
        match fetch_defaults(&proxy).await {
            Ok(d) => {
                let mut cur = proxy.defaults.write().unwrap_or_else(|p| p.into_inner());
                if *cur != d {
                    info!(?d, "broker defaults for topic rules");
                    *cur = d;
                }
            }
            Err(e) => warn!(error = %e, "cannot read broker defaults; topic rules keep the last known (or Kafka's shipped) defaults"),
        }
        tokio::time::sleep(DEFAULTS_REFRESH).await;
    }
}

async fn fetch_defaults(proxy: &Arc<Proxy>) -> anyhow::Result<BrokerDefaults> {
    const VERSION: i16 = 4;
    let node = proxy.topology.any_node().ok_or_else(|| anyhow::anyhow!("no broker known yet"))?;
    // All keys (null): tansu fails on a request naming keys (StringWithoutLength); the ones the
    // rules use are picked out below.
    let req = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
        .with_resource_type(4)
        .with_resource_name(StrBytes::from_string(node.to_string()))
        .with_configuration_keys(None)]);
    let resp: DescribeConfigsResponse = call(proxy, ApiKey::DescribeConfigs, VERSION, &req).await?;
    let entries: Vec<(String, Option<String>)> = resp
        .results
        .iter()
        .filter(|r| r.error_code == 0)
        .flat_map(|r| r.configs.iter().map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string()))))
        .collect();
    Ok(crate::policy::topics::defaults_from(&entries))
}

/// One request from the proxy itself to the cluster, on a fresh connection to a bootstrap broker.
pub async fn call<Req: Encodable, Resp: Decodable>(proxy: &Proxy, api: ApiKey, version: i16, req: &Req) -> anyhow::Result<Resp> {
    let cfg = proxy.config();
    let timeout = Duration::from_millis(cfg.upstream.connect_timeout_ms);
    let mut last = anyhow::anyhow!("no bootstrap servers");
    for addr in &cfg.upstream.bootstrap_servers {
        let attempt = async {
            let mut stream = TcpStream::connect(addr).await?;
            let frame = crate::frames::request(api, version, 1, Some("kafka-durability-proxy"), req)?;
            stream.write_all(&frame).await?;
            let mut reader = FrameReader::new(stream, cfg.limits.max_frame_bytes);
            let resp = reader.next().await?.ok_or_else(|| anyhow::anyhow!("broker closed the connection"))?;
            let skip = crate::codec::SIZE_LEN + crate::frames::response_header_len(api, version);
            anyhow::ensure!(resp.len() >= skip, "broker sent a truncated response");
            let mut body = resp.freeze().slice(skip..);
            anyhow::Ok(Resp::decode(&mut body, version)?)
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(r)) => return Ok(r),
            Ok(Err(e)) => last = anyhow::anyhow!("{addr}: {e}"),
            Err(_) => last = anyhow::anyhow!("{addr}: timed out"),
        }
    }
    Err(last)
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
    let req = MetadataRequest::default().with_topics(Some(vec![]));
    let meta: MetadataResponse = call(proxy, ApiKey::Metadata, 1, &req).await?;
    let eps = proxy.endpoints();
    for b in &meta.brokers {
        eps.proxy_address(b.node_id.0, &b.host, b.port)?;
    }
    Ok(meta.brokers.len())
}

//! The running proxy's shared state: the configuration in force (swapped whole on reload), the
//! cluster (topology, defaults, the proxy's own client), the audit log, and the shutdown signal
//! every session watches. Binding a listener for a newly seen broker happens here, so it exists
//! before any client is told about that broker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use kafka_protocol::protocol::StrBytes;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::{AuditLog, Recorder};
use crate::cluster::auth::Credentials;
use crate::cluster::sasl::Secret;
use crate::cluster::{ClientSettings, Cluster};
use crate::config::file::UpstreamSasl;
use crate::config::Config;
use crate::delivery::Deliveries;
use crate::metrics::Metrics;
use crate::net::limits::{self, ConnLimits};
use crate::net::listener::bind;
use crate::net::tls::{TlsClient, TlsError, TlsServer};
use crate::rewrite::{Endpoints, RewriteError};

type Serve = Box<dyn Fn(i32, TcpListener) + Send + Sync>;

/// Why the proxy cannot start with a configuration that validated.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("upstream.sasl: {0}")]
    Credentials(String),
}

/// How the proxy's own connections reach the cluster: upstream addresses, timeouts, TLS material
/// and credentials, loaded once and shared by every client the proxy makes.
pub fn client_settings(config: &Config) -> Result<ClientSettings, StartError> {
    Ok(ClientSettings {
        bootstrap: config.upstream.bootstrap_servers.clone(),
        connect_timeout: Duration::from_millis(config.upstream.connect_timeout_ms),
        request_timeout: Duration::from_millis(config.upstream.request_timeout_ms),
        max_frame_bytes: config.limits.max_frame_bytes,
        tls: config.upstream.tls.as_ref().map(TlsClient::new).transpose()?.map(Arc::new),
        sasl: config.upstream.sasl.as_ref().map(credentials).transpose()?,
    })
}

/// The proxy's own credentials, the password read from its file or environment variable.
fn credentials(s: &UpstreamSasl) -> Result<Credentials, StartError> {
    let password = match (&s.password_file, &s.password_env) {
        (Some(f), _) => std::fs::read_to_string(f)
            .map(|p| p.lines().next().unwrap_or_default().to_owned())
            .map_err(|e| StartError::Credentials(format!("password_file {}: {e}", f.display())))?,
        (None, Some(var)) => std::env::var(var).map_err(|_| StartError::Credentials(format!("password_env {var} is not set")))?,
        (None, None) => return Err(StartError::Credentials("no password_file or password_env".into())),
    };
    Ok(Credentials { mechanism: s.mechanism, username: s.username.clone(), password: Secret::new(password) })
}

pub struct Proxy {
    /// Swapped whole on reload; each request reads the current one.
    config: RwLock<Arc<Config>>,
    pub cluster: Cluster,
    pub audit: Recorder,
    /// Cancelled on shutdown: listeners stop accepting, sessions stop reading new requests.
    pub shutdown: CancellationToken,
    /// Every client session, so shutdown can wait for their in-flight requests.
    pub sessions: TaskTracker,
    /// Starts serving a broker listener once it is bound (set by the server at start).
    serve_listener: OnceLock<Serve>,
    /// TLS for clients (every listener) and for brokers, when configured.
    pub tls_server: Option<TlsServer>,
    pub tls_client: Option<Arc<TlsClient>>,
    /// Open client connections, under `limits.max_connections[_per_source]`.
    pub limits: Arc<ConnLimits>,
    pub metrics: Arc<Metrics>,
    /// Upgraded acks=0 requests held for redelivery, and their re-sender.
    pub deliveries: Arc<Deliveries>,
    /// Discovery reached a broker.
    discovered: AtomicBool,
    /// SIGTERM arrived: /readyz says 503 from now on.
    draining: AtomicBool,
}

impl Proxy {
    /// Builds the shared state; fails when TLS material or the proxy's own password cannot be
    /// loaded.
    pub fn new(config: Config, audit: AuditLog) -> Result<Arc<Self>, StartError> {
        let settings = client_settings(&config)?;
        Self::with_client(config, audit, settings, Arc::new(Metrics::new()))
    }

    /// Builds the shared state around client settings already loaded (`client_settings`) and
    /// metrics already made, both of which the audit log's Kafka sink shares.
    pub fn with_client(config: Config, audit: AuditLog, settings: ClientSettings, metrics: Arc<Metrics>) -> Result<Arc<Self>, StartError> {
        let l = &config.limits;
        let handshake = Duration::from_millis(l.tls_handshake_timeout_ms);
        let tls_server = config.listen.tls.as_ref().map(|t| TlsServer::new(t, handshake)).transpose()?;
        let tls_client = settings.tls.clone();
        let max = limits::max_connections(l.max_connections, limits::raise_fd_limit());
        let deliveries = Deliveries::new(
            settings.clone(),
            l.redelivery_bytes_per_connection,
            l.redelivery_bytes_total,
            Recorder::new(audit.clone(), metrics.clone()),
            metrics.clone(),
        );
        let audit = Recorder::new(audit, metrics.clone());
        Ok(Arc::new(Self {
            deliveries,
            limits: ConnLimits::new(max, l.max_connections_per_source),
            cluster: Cluster::new(settings, metrics.clone()),
            metrics,
            discovered: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            config: RwLock::new(Arc::new(config)),
            audit,
            shutdown: CancellationToken::new(),
            sessions: TaskTracker::new(),
            serve_listener: OnceLock::new(),
            tls_server,
            tls_client,
        }))
    }

    /// Reloads TLS material whose files changed (or all of it, `force`, on SIGHUP). A file that
    /// does not load is logged and the running material stays.
    pub fn reload_tls(&self, force: bool) {
        let sides: [(&str, Option<Result<bool, TlsError>>); 2] = [
            ("listen.tls", self.tls_server.as_ref().map(|t| t.reload(force))),
            ("upstream.tls", self.tls_client.as_ref().map(|t| t.reload(force))),
        ];
        let trigger = if force { "SIGHUP" } else { "file change" };
        for (section, outcome) in sides {
            match outcome {
                Some(Ok(true)) => tracing::info!(section, trigger, "TLS certificates reloaded; new handshakes use them"),
                Some(Err(e)) => tracing::error!(section, error = %e, "TLS reload refused; the running certificates stay"),
                _ => {}
            }
        }
    }

    pub fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Applies a new, already validated configuration's policies atomically; returns the
    /// sections whose changes need a restart (see `config::reload`).
    pub fn reload(&self, new: Config) -> Vec<&'static str> {
        let mut guard = self.config.write().unwrap_or_else(|p| p.into_inner());
        let (merged, fixed) = crate::config::reload::merge(&guard, new);
        *guard = Arc::new(merged);
        fixed
    }

    /// Sets how newly bound broker listeners are served (once, by the server).
    pub fn serve_listeners_with(&self, serve: impl Fn(i32, TcpListener) + Send + Sync + 'static) {
        let _ = self.serve_listener.set(Box::new(serve));
    }

    /// Ready for traffic: discovery reached a broker, and no drain has begun.
    pub fn ready(&self) -> bool {
        self.discovered.load(Ordering::Relaxed) && !self.draining.load(Ordering::Relaxed)
    }

    pub fn mark_discovered(&self) {
        self.discovered.store(true, Ordering::Relaxed);
        self.metrics.ready.set(i64::from(self.ready()));
    }

    /// The first step of a shutdown: /readyz answers 503 while the listeners still accept.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
        self.metrics.ready.set(0);
    }

    /// Stops accepting, lets every session finish the requests it already forwarded and the
    /// re-sender deliver what it holds, and waits for both at most `limits.drain_timeout_ms`;
    /// what is still held then is given up (audited). Returns the sessions still open at the
    /// deadline.
    pub async fn drain(&self) -> usize {
        self.begin_drain();
        self.shutdown.cancel();
        self.sessions.close();
        let limit = Duration::from_millis(self.config().limits.drain_timeout_ms);
        let deadline = std::time::Instant::now() + limit;
        let open = match tokio::time::timeout(limit, self.sessions.wait()).await {
            Ok(()) => 0,
            Err(_) => self.sessions.len(),
        };
        self.deliveries.drain(deadline).await;
        open
    }

    /// The proxy as response rewrites see it.
    pub fn endpoints(self: &Arc<Self>) -> ProxyEndpoints {
        ProxyEndpoints(self.clone())
    }

    /// Binds the listener for a broker node if it has none yet; returns its port.
    fn ensure_listener(&self, node_id: i32) -> Result<u16, RewriteError> {
        self.cluster.topology.listener(node_id, || {
            let cfg = self.config();
            let port = cfg.port_for_node(node_id).ok_or(RewriteError::NoListener { node_id })?;
            let addr = format!("{}:{port}", cfg.listen.bind_host);
            let listener = bind(&addr, cfg.listen.backlog).map_err(|e| {
                tracing::error!(node_id, %addr, error = %e, "proxy cannot bind the listener for a broker");
                RewriteError::NoListener { node_id }
            })?;
            tracing::info!(node_id, %addr, "listening for broker node");
            if let Some(serve) = self.serve_listener.get() {
                serve(node_id, listener);
            }
            Ok(port)
        })
    }
}

/// The proxy as seen by response rewrites: learning a broker binds its listener.
pub struct ProxyEndpoints(Arc<Proxy>);

impl Endpoints for ProxyEndpoints {
    fn proxy_address(&self, node_id: i32, host: &str, port: i32) -> Result<(StrBytes, i32), RewriteError> {
        if self.0.config().is_own_listener(node_id, host, port) {
            let e = RewriteError::SelfLoop { node_id, addr: format!("{host}:{port}") };
            tracing::error!(error = %e, "refusing a broker address that loops back to the proxy");
            return Err(e);
        }
        self.0.cluster.topology.learn(node_id, host, port);
        let port = self.0.ensure_listener(node_id)?;
        Ok((StrBytes::from_string(self.0.config().listen.advertised_host.clone()), i32::from(port)))
    }
}

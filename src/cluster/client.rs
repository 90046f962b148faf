//! The proxy's own client to the cluster: discovery, broker defaults, and whatever a handler must
//! ask before judging a request. Connections are pooled; each negotiates API versions with
//! ApiVersions when it opens (the place where TLS and SASL credentials for these connections go);
//! every call has a timeout; every failure is a `ClusterError` naming the side and whether to
//! retry. `call` asks any bootstrap server; `call_at` asks one broker by address (a partition
//! leader learned from Metadata), over connections pooled per address.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Decodable, Request, StrBytes, VersionRange};

use super::error::ClusterError;
use crate::net::{self, FrameReader, FrameWriter, ReadError, ReadHalf, WriteHalf};
use crate::protocol::encode::{self, decode_response};
use crate::protocol::errors;
use crate::protocol::versions::api_name;

/// The client id the proxy's own requests carry (broker logs and quotas see it).
pub const CLIENT_ID: &str = "kafka-durability-proxy";

/// Idle connections kept for reuse.
const MAX_IDLE: usize = 4;

/// Where and how to reach the cluster.
#[derive(Clone)]
pub struct ClientSettings {
    pub bootstrap: Vec<String>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_frame_bytes: usize,
    /// TLS to the brokers (`upstream.tls`).
    pub tls: Option<std::sync::Arc<crate::net::tls::TlsClient>>,
    /// The proxy's own SASL login (`upstream.sasl`).
    pub sasl: Option<super::auth::Credentials>,
}

pub struct ClusterClient {
    settings: ClientSettings,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    idle: Mutex<Vec<Conn>>,
    /// Idle connections to brokers asked by address (`call_at`).
    idle_at: Mutex<HashMap<String, Vec<Conn>>>,
    correlation: AtomicI32,
    /// Which bootstrap server to try first: rotates past one that failed.
    first: AtomicUsize,
    /// API versions the brokers offered on the last connection opened.
    negotiated: RwLock<HashMap<i16, VersionRange>>,
}

/// One open, negotiated (and, on a SASL cluster, logged-in) connection.
pub(super) struct Conn {
    pub(super) addr: String,
    reader: FrameReader<ReadHalf>,
    writer: FrameWriter<WriteHalf>,
    versions: HashMap<i16, VersionRange>,
}

impl ClusterClient {
    pub fn new(settings: ClientSettings, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        Self {
            settings,
            metrics,
            idle: Mutex::new(Vec::new()),
            idle_at: Mutex::new(HashMap::new()),
            correlation: AtomicI32::new(1),
            first: AtomicUsize::new(0),
            negotiated: RwLock::new(HashMap::new()),
        }
    }

    /// Sends `req` at the highest version both the broker and `want` allow, and returns the
    /// decoded response. A pooled connection that turns out dead is replaced once; then every
    /// bootstrap server is tried in turn.
    pub async fn call<R: Request>(&self, req: &R, want: VersionRange) -> Result<R::Response, ClusterError> {
        let result = self.call_any(req, want).await;
        if result.is_err() {
            self.metrics.cluster_request_failures.inc();
        }
        result
    }

    async fn call_any<R: Request>(&self, req: &R, want: VersionRange) -> Result<R::Response, ClusterError> {
        let api = api_name(R::KEY);
        if let Some(mut conn) = self.take_idle() {
            match self.exchange(&mut conn, req, want).await {
                Ok(resp) => {
                    self.put_idle(conn);
                    return Ok(resp);
                }
                Err(e) if !e.retriable() => return Err(e),
                Err(e) => tracing::debug!(error = %e, api, "pooled cluster connection failed; opening a new one"),
            }
        }
        let servers = &self.settings.bootstrap;
        let mut last = ClusterError::NoBrokers;
        for i in 0..servers.len() {
            let at = (self.first.load(Ordering::Relaxed) + i) % servers.len();
            let Some(addr) = servers.get(at) else { continue };
            let attempt = async {
                let mut conn = self.open(addr).await?;
                let resp = self.exchange(&mut conn, req, want).await?;
                Ok::<_, ClusterError>((conn, resp))
            };
            match attempt.await {
                Ok((conn, resp)) => {
                    self.first.store(at, Ordering::Relaxed);
                    self.put_idle(conn);
                    return Ok(resp);
                }
                Err(e) if !e.retriable() => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Sends `req` to the broker at `addr` (`host:port`, as Metadata advertises it), over a pooled
    /// connection to that address when one is idle; a pooled connection that turns out dead is
    /// replaced once. Same version choice and errors as `call`.
    pub async fn call_at<R: Request>(&self, addr: &str, req: &R, want: VersionRange) -> Result<R::Response, ClusterError> {
        let pooled = self.idle_at.lock().unwrap_or_else(|p| p.into_inner()).get_mut(addr).and_then(Vec::pop);
        if let Some(mut conn) = pooled {
            match self.exchange(&mut conn, req, want).await {
                Ok(resp) => {
                    self.put_idle_at(conn);
                    return Ok(resp);
                }
                Err(e) if !e.retriable() => return Err(e),
                Err(e) => tracing::debug!(error = %e, addr, api = api_name(R::KEY), "pooled broker connection failed; opening a new one"),
            }
        }
        let mut conn = self.open(addr).await?;
        let resp = self.exchange(&mut conn, req, want).await?;
        self.put_idle_at(conn);
        Ok(resp)
    }

    fn put_idle_at(&self, conn: Conn) {
        let mut idle = self.idle_at.lock().unwrap_or_else(|p| p.into_inner());
        let pool = idle.entry(conn.addr.clone()).or_default();
        if pool.len() < MAX_IDLE {
            pool.push(conn);
        }
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// The versions of an API the brokers support, as last negotiated; `None` before any.
    pub fn api_versions(&self, api_key: i16) -> Option<VersionRange> {
        self.negotiated.read().unwrap_or_else(|p| p.into_inner()).get(&api_key).copied()
    }

    fn take_idle(&self) -> Option<Conn> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn put_idle(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// Connects and negotiates versions (ApiVersions v3, falling back to v0 as brokers ask).
    async fn open(&self, addr: &str) -> Result<Conn, ClusterError> {
        let started = std::time::Instant::now();
        let stream = net::transport::connect(addr, self.settings.connect_timeout, self.settings.tls.as_deref()).await;
        self.metrics.connect_observed(started.elapsed(), stream.is_ok());
        let stream = stream.map_err(|e| ClusterError::Connect { addr: addr.to_owned(), reason: e.to_string() })?;
        let (r, w) = stream.into_split();
        let mut conn = Conn {
            addr: addr.to_owned(),
            reader: FrameReader::new(r, self.settings.max_frame_bytes),
            writer: FrameWriter::new(w),
            versions: HashMap::new(),
        };
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(CLIENT_ID))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut resp: ApiVersionsResponse = self.round_trip(&mut conn, &req, 3).await?;
        if resp.error_code == errors::UNSUPPORTED_VERSION {
            resp = self.round_trip(&mut conn, &req, 0).await?;
        }
        if resp.error_code != errors::NONE {
            return Err(ClusterError::Kafka { api: "ApiVersions", code: resp.error_code, message: None });
        }
        conn.versions = resp.api_keys.iter().map(|k| (k.api_key, VersionRange { min: k.min_version, max: k.max_version })).collect();
        *self.negotiated.write().unwrap_or_else(|p| p.into_inner()) = conn.versions.clone();
        if let Some(creds) = &self.settings.sasl {
            self.login(&mut conn, creds).await?;
        }
        Ok(conn)
    }

    pub(super) async fn exchange<R: Request>(&self, conn: &mut Conn, req: &R, want: VersionRange) -> Result<R::Response, ClusterError> {
        let api = api_name(R::KEY);
        let broker = conn.versions.get(&R::KEY).copied().unwrap_or(VersionRange { min: 0, max: -1 });
        let usable = broker.intersect(&want).intersect(&R::VERSIONS);
        if usable.is_empty() {
            return Err(ClusterError::NoCommonVersion {
                addr: conn.addr.clone(),
                api,
                broker: broker.to_string(),
                proxy: want.to_string(),
            });
        }
        self.round_trip(conn, req, usable.max).await
    }

    /// One request and its response on `conn`, within the request timeout.
    async fn round_trip<Q, P>(&self, conn: &mut Conn, req: &Q, version: i16) -> Result<P, ClusterError>
    where
        Q: Request,
        P: Decodable,
    {
        let api = api_name(Q::KEY);
        let key = ApiKey::try_from(Q::KEY).map_err(|()| ClusterError::Encode { api, reason: "unknown API key".into() })?;
        let corr = self.correlation.fetch_add(1, Ordering::Relaxed);
        let frame =
            encode::request(key, version, corr, Some(CLIENT_ID), req).map_err(|e| ClusterError::Encode { api, reason: e.to_string() })?;
        let addr = conn.addr.clone();
        let io = |e: std::io::Error| ClusterError::Io { addr: addr.clone(), api, reason: e.to_string() };
        let exchange = async {
            conn.writer.push(frame);
            conn.writer.flush().await.map_err(io)?;
            match conn.reader.next().await {
                Ok(Some(f)) => Ok(f.freeze()),
                Ok(None) => Err(io(std::io::ErrorKind::UnexpectedEof.into())),
                Err(ReadError::Io(e)) => Err(io(e)),
                Err(ReadError::Frame(e)) => Err(ClusterError::Protocol { addr: addr.clone(), api, reason: e.to_string() }),
            }
        };
        let timeout_ms = u64::try_from(self.settings.request_timeout.as_millis()).unwrap_or(u64::MAX);
        let frame = tokio::time::timeout(self.settings.request_timeout, exchange).await.map_err(|_| ClusterError::Timeout {
            addr: conn.addr.clone(),
            api,
            timeout_ms,
        })??;
        let protocol = |reason: String| ClusterError::Protocol { addr: conn.addr.clone(), api, reason };
        let (got, body) = decode_response::<P>(&frame, key, version).map_err(|e| protocol(e.to_string()))?;
        if got != corr {
            return Err(protocol(format!("correlation id {got} where {corr} was due")));
        }
        Ok(body)
    }
}

/// A version range for `call`.
pub fn versions(min: i16, max: i16) -> VersionRange {
    VersionRange { min, max }
}

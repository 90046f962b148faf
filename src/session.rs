//! One client connection and its broker connection. The request side peeks each frame's header,
//! applies policy, patches or answers it, and forwards the original buffer; the response side
//! pairs broker responses with requests in order, rewrites addresses, drops responses the client
//! never asked for, and slots in the proxy's own responses at their turn.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::admin;
use crate::audit::Event;
use crate::codec::{self, RequestHeader};
use crate::config::Action;
use crate::error::SessionError;
use crate::inflight::{Disposition, Pending};
use crate::io::{FrameReader, FrameWriter, ReadError};
use crate::policy::produce::{self as acks_rule, AcksDecision, AcksInput, ACKS_ALL};
use crate::policy::scope;
use crate::rewrite::{addresses, api_versions, produce_response, tail, Rewritten};
use crate::server::Proxy;
use crate::topology::Target;

/// INVALID_REQUIRED_ACKS: permanent in every client, never retried.
pub const INVALID_REQUIRED_ACKS: i16 = 21;

/// Serves one accepted client connection until either side closes or fails.
pub async fn run(proxy: Arc<Proxy>, client: TcpStream, peer: SocketAddr, target: Target) {
    let _ = client.set_nodelay(true);
    let broker = match connect(&proxy, target).await {
        Ok(b) => b,
        Err(e) => {
            warn!(%peer, side = %e.side(), error = %e, "closing client connection");
            return;
        }
    };
    let (cr, cw) = client.into_split();
    let (br, bw) = broker.into_split();
    match serve_halves(&proxy, peer, cr, cw, br, bw).await {
        Ok(()) => debug!(%peer, "connection closed"),
        Err(e) => warn!(%peer, side = %e.side(), error = %e, "closing client connection"),
    }
}

/// Serves one client over already-connected stream halves: the socket halves in production, and
/// in-memory pipes where a test measures the forward path itself.
pub async fn serve_halves<CR, CW, BR, BW>(proxy: &Arc<Proxy>, peer: SocketAddr, cr: CR, cw: CW, br: BR, bw: BW) -> Result<(), SessionError>
where
    CR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
    BR: AsyncRead + Unpin,
    BW: AsyncWrite + Unpin,
{
    let cfg = proxy.config();
    let limits = &cfg.limits;
    let (tx, rx) = mpsc::channel(limits.max_in_flight);
    let requests = Requests { proxy, peer, reader: FrameReader::new(cr, limits.max_frame_bytes), writer: FrameWriter::new(bw), tx };
    let responses = Responses {
        proxy,
        peer,
        reader: FrameReader::new(br, limits.max_frame_bytes),
        writer: FrameWriter::new(cw),
        rx,
        queue: VecDeque::new(),
        maybe: Vec::new(),
        draining: false,
    };
    serve(requests, responses, Duration::from_millis(limits.drain_timeout_ms)).await
}

async fn serve<CR, BW, BR, CW>(
    requests: Requests<'_, CR, BW>,
    responses: Responses<'_, BR, CW>,
    drain: Duration,
) -> Result<(), SessionError>
where
    CR: AsyncRead + Unpin,
    BW: AsyncWrite + Unpin,
    BR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
{
    let req = requests.run();
    let resp = responses.run();
    tokio::pin!(req, resp);
    tokio::select! {
        ended = &mut req => {
            // Whatever ended the request side (client gone, a queued close, a bad frame), the
            // requests already forwarded are seen through: an upgraded acks=0 producer that
            // disconnects right after sending still gets its records written, and their errors
            // audited. The broker connection stays open until they are answered, within `drain`.
            let drained = match tokio::time::timeout(drain, &mut resp).await {
                Ok(r) => r,
                Err(_) => Err(SessionError::Broker(format!("in-flight requests not answered within {drain:?} after the client side ended"))),
            };
            match (ended, drained) {
                (Err(e), Err(d)) => {
                    debug!(error = %d, "draining after the client side failed");
                    Err(e)
                }
                (Err(e), Ok(())) => Err(e),
                (Ok(()), d) => d,
            }
        }
        r = &mut resp => r,
    }
}

async fn connect(proxy: &Proxy, target: Target) -> Result<TcpStream, SessionError> {
    let addrs = match target {
        Target::Bootstrap => proxy.config().upstream.bootstrap_servers.clone(),
        Target::Node(id) => {
            vec![proxy.topology().broker(id).ok_or_else(|| SessionError::Proxy(format!("no known address for broker node {id}")))?]
        }
    };
    let timeout = Duration::from_millis(proxy.config().upstream.connect_timeout_ms);
    let mut last = SessionError::Proxy("no upstream address".into());
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(&addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) => last = SessionError::BrokerConnect { addr, reason: e.to_string() },
            Err(_) => last = SessionError::BrokerConnect { addr, reason: format!("timed out after {timeout:?}") },
        }
    }
    Err(last)
}

/// What to do with one client request.
enum Step {
    /// Forward these bytes and expect this.
    Forward(Bytes, Pending),
    /// Do not forward; queue this (a local response or a close).
    Answer(Pending),
}

struct Requests<'a, R, W> {
    proxy: &'a Arc<Proxy>,
    peer: SocketAddr,
    reader: FrameReader<R>,
    writer: FrameWriter<W>,
    tx: mpsc::Sender<Pending>,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Requests<'_, R, W> {
    /// Reads and forwards requests until the client leaves (Ok) or a close is queued (Ok).
    async fn run(mut self) -> Result<(), SessionError> {
        // On shutdown stop between frames: what was forwarded is then drained by `serve`. One
        // future per session: it registers with the shared token once, not once per request.
        let shutdown = self.proxy.shutdown.clone().cancelled_owned();
        tokio::pin!(shutdown);
        loop {
            let next = tokio::select! {
                biased;
                _ = &mut shutdown => return Ok(()),
                next = self.reader.next() => next,
            };
            let frame = match next {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(()),
                Err(ReadError::Io(e)) => return Err(SessionError::ClientIo(e)),
                Err(ReadError::Frame(e)) => return Err(SessionError::ClientFrame(e)),
            };
            if self.handle(frame).await? {
                return self.flush().await;
            }
            // Forward everything already buffered before one flush: fewer syscalls under load.
            loop {
                match self.reader.buffered() {
                    Ok(Some(frame)) => {
                        if self.handle(frame).await? {
                            return self.flush().await;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        // Forward what came before the bad frame, then fail.
                        self.flush().await?;
                        return Err(SessionError::ClientFrame(e));
                    }
                }
            }
            self.flush().await?;
        }
    }

    async fn flush(&mut self) -> Result<(), SessionError> {
        self.writer.flush().await.map_err(SessionError::BrokerIo)
    }

    /// Handles one request; true when the connection is to be closed after what is queued.
    async fn handle(&mut self, frame: BytesMut) -> Result<bool, SessionError> {
        let header = codec::peek_request_header(&frame).ok_or_else(|| SessionError::Client("malformed request header".into()))?;
        let config_change = matches!(header.known_api(), Some(ApiKey::AlterConfigs | ApiKey::IncrementalAlterConfigs))
            && api_versions::allowed(header.api_key, header.api_version);
        let step = if config_change { self.alter_configs(frame, &header).await? } else { self.decide(frame, &header)? };
        let closing = matches!(step, Step::Answer(Pending::Close));
        let (bytes, pending) = match step {
            Step::Forward(bytes, pending) => (Some(bytes), pending),
            Step::Answer(pending) => (None, pending),
        };
        // The response side must know about a request before the broker can answer it.
        self.tx.send(pending).await.map_err(|_| SessionError::Proxy("response side ended".into()))?;
        if let Some(bytes) = bytes {
            self.writer.push(bytes);
        }
        Ok(closing)
    }

    fn decide(&self, frame: BytesMut, h: &RequestHeader) -> Result<Step, SessionError> {
        let expect = |d| Pending::Expect { correlation_id: h.correlation_id, api_version: h.api_version, disposition: d };
        let api = h.known_api();
        if api == Some(ApiKey::ApiVersions) && !api_versions::allowed(h.api_key, h.api_version) {
            let answer = api_versions::unsupported_version(h.correlation_id).map_err(|e| SessionError::Proxy(e.to_string()))?;
            return Ok(Step::Answer(Pending::Local(answer)));
        }
        let Some(api) = api.filter(|_| api_versions::allowed(h.api_key, h.api_version)) else {
            // Not advertised by the proxy: a client that sends it anyway is misbehaving, and the
            // response might name brokers the proxy cannot rewrite. Brokers also close here.
            return Err(SessionError::Client(format!(
                "API key {} version {} is not offered by the proxy (see ApiVersions)",
                h.api_key, h.api_version
            )));
        };
        let d = match api {
            ApiKey::Produce => return self.produce(frame, h),
            ApiKey::CreateTopics
            | ApiKey::DeleteTopics
            | ApiKey::DeleteRecords
            | ApiKey::CreatePartitions
            | ApiKey::AlterPartitionReassignments => return self.admin(frame, h, api),
            ApiKey::Metadata => return Ok(self.metadata(frame, h)),
            ApiKey::FindCoordinator => Disposition::FindCoordinator,
            ApiKey::DescribeCluster => Disposition::DescribeCluster,
            ApiKey::ApiVersions => Disposition::ApiVersions,
            ApiKey::Fetch if h.api_version >= 16 => Disposition::FetchTail,
            _ => Disposition::Forward,
        };
        Ok(Step::Forward(frame.freeze(), expect(d)))
    }

    /// Metadata: rewritten on the way back; auto topic creation is switched off on the way out.
    fn metadata(&self, mut frame: BytesMut, h: &RequestHeader) -> Step {
        let cfg = self.proxy.config();
        if let (true, Some(off)) = (cfg.metadata.block_auto_topic_creation, h.body_offset) {
            if admin::block_auto_create(&mut frame, off, h.api_version) {
                self.proxy.audit.record(Event {
                    at: SystemTime::now(),
                    event: "auto_topic_creation",
                    rule: "metadata.block_auto_topic_creation",
                    action: "upgrade",
                    client_addr: self.peer,
                    client_id: h.client_id(&frame).map(str::to_owned),
                    api: "Metadata",
                    api_version: h.api_version,
                    topics: Vec::new(),
                    detail: serde_json::json!({ "allow_auto_topic_creation": { "from": true, "to": false } }),
                });
            }
        }
        let pending = Pending::Expect { correlation_id: h.correlation_id, api_version: h.api_version, disposition: Disposition::Metadata };
        Step::Forward(frame.freeze(), pending)
    }

    /// AlterConfigs / IncrementalAlterConfigs: judged on the resulting config, which needs the
    /// current one from the cluster. Later requests of this client wait: order is kept.
    async fn alter_configs(&self, frame: BytesMut, h: &RequestHeader) -> Result<Step, SessionError> {
        let body_offset = h.body_offset.ok_or_else(|| SessionError::Client("malformed request header".into()))?;
        let frame = frame.freeze();
        let cfg = self.proxy.config();
        let ctx = self.admin_ctx(&cfg, &frame, h);
        let incremental = h.api_key == ApiKey::IncrementalAlterConfigs as i16;
        let step = admin::configs::alter_configs(self.proxy, &frame, body_offset, &ctx, incremental).await.map_err(admin_error)?;
        Ok(self.admin_step(frame, h, step))
    }

    /// CreateTopics, DeleteTopics, DeleteRecords: see `admin`.
    fn admin(&self, frame: BytesMut, h: &RequestHeader, api: ApiKey) -> Result<Step, SessionError> {
        let body_offset = h.body_offset.ok_or_else(|| SessionError::Client("malformed request header".into()))?;
        let frame = frame.freeze();
        let cfg = self.proxy.config();
        let ctx = self.admin_ctx(&cfg, &frame, h);
        let step = match api {
            ApiKey::CreateTopics => admin::create_topics(&frame, body_offset, &ctx),
            ApiKey::DeleteTopics => admin::delete_topics(&frame, body_offset, &ctx),
            ApiKey::CreatePartitions => admin::partitions::create_partitions(&frame, body_offset, &ctx),
            ApiKey::AlterPartitionReassignments => admin::partitions::reassign_partitions(&frame, body_offset, &ctx),
            _ => admin::delete_records(&frame, body_offset, &ctx),
        }
        .map_err(admin_error)?;
        Ok(self.admin_step(frame, h, step))
    }

    /// What the admin handlers need to know about this request and its sender.
    fn admin_ctx<'c>(&'c self, cfg: &'c crate::config::Config, frame: &'c [u8], h: &RequestHeader) -> admin::Ctx<'c> {
        admin::Ctx {
            cfg,
            defaults: self.proxy.broker_defaults(),
            audit: &self.proxy.audit,
            peer: self.peer,
            client_id: h.client_id(frame),
            version: h.api_version,
            correlation_id: h.correlation_id,
        }
    }

    fn admin_step(&self, frame: bytes::Bytes, h: &RequestHeader, step: admin::Step) -> Step {
        let expect = |d| Pending::Expect { correlation_id: h.correlation_id, api_version: h.api_version, disposition: d };
        match step {
            admin::Step::Unchanged => Step::Forward(frame, expect(Disposition::Forward)),
            admin::Step::Forward(bytes, None) => Step::Forward(bytes, expect(Disposition::Forward)),
            admin::Step::Forward(bytes, Some(merge)) => Step::Forward(bytes, expect(Disposition::Merge(Box::new(merge)))),
            admin::Step::Answer(bytes) => Step::Answer(Pending::Local(bytes)),
        }
    }

    fn produce(&self, mut frame: BytesMut, h: &RequestHeader) -> Result<Step, SessionError> {
        let head = codec::peek_produce(&frame, h).ok_or_else(|| SessionError::Client("malformed Produce request".into()))?;
        let answered = |d| Pending::Expect { correlation_id: h.correlation_id, api_version: h.api_version, disposition: d };
        let normal = || if h.api_version >= 10 { Disposition::ProduceTail } else { Disposition::Forward };
        if !matches!(head.acks, 0 | 1) {
            return Ok(Step::Forward(frame.freeze(), answered(normal())));
        }
        let topics = codec::produce_topics(&frame, h, &head).ok_or_else(|| SessionError::Client("malformed Produce topic data".into()))?;
        let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
        let client_id = h.client_id(&frame).map(str::to_owned);
        let cfg = self.proxy.config();
        // Each topic may fall under its own scope; the strictest action decides the request.
        let subject = |topic| scope::Subject { client_id: client_id.as_deref(), peer: self.peer.ip(), topic };
        let per_topic: Vec<(Action, Option<&str>)> = names.iter().map(|t| scope::acks_action(&cfg, &subject(Some(t)))).collect();
        let action_for =
            |t: &str| names.iter().position(|n| *n == t).and_then(|i| per_topic.get(i)).map_or(cfg.produce_acks.action, |a| a.0);
        let decision = acks_rule::judge_scoped(
            &cfg.produce_acks,
            &AcksInput { acks: head.acks, client_id: client_id.as_deref(), peer: self.peer.ip(), topics: &names },
            action_for,
        );
        let scope_name = match decision {
            AcksDecision::Enforce(a) => per_topic.iter().find(|(x, _)| *x == a).and_then(|(_, n)| *n),
            _ => None,
        };
        let event = |action: &'static str, mut detail: serde_json::Value| {
            if let (Some(name), Some(obj)) = (scope_name, detail.as_object_mut()) {
                obj.insert("scope".into(), name.into());
            }
            Event {
                at: SystemTime::now(),
                event: "weak_acks",
                rule: acks_rule::RULE,
                action,
                client_addr: self.peer,
                client_id: client_id.clone(),
                api: "Produce",
                api_version: h.api_version,
                topics: names.iter().map(|s| (*s).to_owned()).collect(),
                detail,
            }
        };
        let unchanged = |frame: BytesMut| {
            let p = if head.acks == 0 { Pending::MaybeAnswered { correlation_id: h.correlation_id } } else { answered(normal()) };
            Step::Forward(frame.freeze(), p)
        };
        let audit = &self.proxy.audit;
        match decision {
            AcksDecision::Allow => Ok(unchanged(frame)),
            AcksDecision::Exempt => {
                audit.record(event("exempt", serde_json::json!({ "acks": head.acks })));
                Ok(unchanged(frame))
            }
            AcksDecision::Enforce(Action::Audit) => {
                audit.record(event("audit", serde_json::json!({ "acks": head.acks })));
                Ok(unchanged(frame))
            }
            AcksDecision::Enforce(Action::Upgrade) => {
                codec::patch_acks(&mut frame, &head, ACKS_ALL).ok_or_else(|| SessionError::Proxy("acks patch out of range".into()))?;
                let ev = event("upgrade", serde_json::json!({ "acks_from": head.acks, "acks_to": ACKS_ALL }));
                if head.acks == 0 {
                    let mut template = ev.clone();
                    template.event = "unseen_produce_error";
                    template.action = "close";
                    audit.record(ev);
                    Ok(Step::Forward(frame.freeze(), answered(Disposition::Swallow(Box::new(template)))))
                } else {
                    audit.record(ev);
                    Ok(Step::Forward(frame.freeze(), answered(normal())))
                }
            }
            AcksDecision::Enforce(Action::Reject) => {
                if head.acks == 0 {
                    audit.record(event(
                        "reject",
                        serde_json::json!({ "acks": 0, "outcome": "connection closed: an acks=0 request cannot be answered" }),
                    ));
                    return Ok(Step::Answer(Pending::Close));
                }
                let message = format!(
                    "durability proxy rule {}: acks={} is not allowed, producers must use acks=all (-1)",
                    acks_rule::RULE,
                    head.acks
                );
                let answer = produce_response::rejection(h.api_version, h.correlation_id, &topics, INVALID_REQUIRED_ACKS, &message)
                    .map_err(|e| SessionError::Proxy(format!("cannot encode Produce rejection: {e}")))?;
                audit.record(event("reject", serde_json::json!({ "acks": head.acks, "error_code": INVALID_REQUIRED_ACKS })));
                Ok(Step::Answer(Pending::Local(answer)))
            }
        }
    }
}

fn admin_error(e: admin::AdminError) -> SessionError {
    match e {
        admin::AdminError::Malformed(_) => SessionError::Client(e.to_string()),
        admin::AdminError::Encode(..) => SessionError::Proxy(e.to_string()),
    }
}

struct Responses<'a, R, W> {
    proxy: &'a Arc<Proxy>,
    peer: SocketAddr,
    reader: FrameReader<R>,
    writer: FrameWriter<W>,
    rx: mpsc::Receiver<Pending>,
    queue: VecDeque<Pending>,
    /// Correlation ids of acks=0 requests forwarded unchanged, whose response may or may not come.
    maybe: Vec<i32>,
    /// The request side has ended: finish what is in flight, then stop.
    draining: bool,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Responses<'_, R, W> {
    async fn run(mut self) -> Result<(), SessionError> {
        loop {
            if self.drain_front() {
                self.flush().await?;
                self.writer.shutdown().await;
                return Ok(());
            }
            self.flush().await?;
            if self.draining && self.queue.is_empty() {
                return Ok(());
            }
            tokio::select! {
                biased;
                p = self.rx.recv(), if !self.draining => match p {
                    Some(p) => self.queue.push_back(p),
                    None => self.draining = true,
                },
                frame = self.reader.next() => {
                    let frame = match frame {
                        Ok(Some(f)) => f,
                        Ok(None) if self.queue.is_empty() => return Ok(()),
                        Ok(None) => return Err(SessionError::Broker("broker closed the connection with requests in flight".into())),
                        Err(ReadError::Io(e)) => return Err(SessionError::BrokerIo(e)),
                        Err(ReadError::Frame(e)) => return Err(SessionError::BrokerFrame(e)),
                    };
                    if let Err(e) = self.responses(frame) {
                        // What was answered before the failure still reaches the client.
                        let _ = self.flush().await;
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Writes what is queued for the client. Once the client has gone, responses are still read
    /// (and swallowed errors audited) but a failed write to the client no longer matters.
    async fn flush(&mut self) -> Result<(), SessionError> {
        if !self.writer.has_pending() {
            return Ok(());
        }
        match self.writer.flush().await {
            Ok(()) => Ok(()),
            Err(_) if self.draining => {
                self.writer.discard();
                Ok(())
            }
            Err(e) => Err(SessionError::ClientIo(e)),
        }
    }

    /// Sends local responses and notes maybe-answered requests at the head of the queue, up to
    /// the first request that awaits the broker. True when a Close was reached.
    fn drain_front(&mut self) -> bool {
        loop {
            while let Ok(p) = self.rx.try_recv() {
                self.queue.push_back(p);
            }
            match self.queue.front() {
                Some(Pending::Local(_)) => {
                    if let Some(Pending::Local(b)) = self.queue.pop_front() {
                        self.writer.push(b);
                    }
                }
                Some(Pending::MaybeAnswered { correlation_id }) => {
                    self.maybe.push(*correlation_id);
                    self.queue.pop_front();
                }
                Some(Pending::Close) => return true,
                Some(Pending::Expect { .. }) | None => return false,
            }
        }
    }

    /// Handles a broker frame and any others already buffered behind it.
    fn responses(&mut self, frame: BytesMut) -> Result<(), SessionError> {
        self.response(frame)?;
        while let Some(frame) = self.reader.buffered().map_err(SessionError::BrokerFrame)? {
            self.response(frame)?;
        }
        Ok(())
    }

    fn response(&mut self, frame: BytesMut) -> Result<(), SessionError> {
        let corr =
            codec::peek_response_correlation(&frame).ok_or_else(|| SessionError::Broker("response shorter than its header".into()))?;
        // First bring the queue's head up to date: a maybe-answered request ahead of this response
        // must be in `maybe` before the response is matched.
        let closing = self.drain_front();
        if let Some(i) = self.maybe.iter().position(|c| *c == corr) {
            // Answer to an unchanged acks=0 request (tansu answers them; Kafka does not).
            self.maybe.drain(..=i);
            return Ok(());
        }
        if closing {
            // Only a Close is left: nothing more goes to the client.
            return Ok(());
        }
        let Some(Pending::Expect { correlation_id, api_version, disposition }) = self.queue.pop_front() else {
            return Err(SessionError::Broker(format!("response with correlation id {corr} to no pending request")));
        };
        if correlation_id != corr {
            return Err(SessionError::Broker(format!("response with correlation id {corr} where {correlation_id} was due")));
        }
        // Responses come in order: any acks=0 request before this one will never be answered now.
        self.maybe.clear();
        let eps = || self.proxy.endpoints();
        let frame = frame.freeze();
        let out = match disposition {
            Disposition::Forward => Rewritten::Whole(frame),
            Disposition::Metadata => Rewritten::Whole(addresses::metadata(&frame, api_version, &eps())?),
            Disposition::FindCoordinator => Rewritten::Whole(addresses::find_coordinator(&frame, api_version, &eps())?),
            Disposition::DescribeCluster => Rewritten::Whole(addresses::describe_cluster(&frame, api_version, &eps())?),
            Disposition::ApiVersions => Rewritten::Whole(api_versions::rewrite(&frame, api_version)?.unwrap_or(frame)),
            Disposition::ProduceTail => {
                let off = produce_response::scan(&frame, api_version)
                    .and_then(|s| s.tagged_offset)
                    .ok_or_else(|| SessionError::Broker(format!("undecodable Produce v{api_version} response")))?;
                tail::rewrite(&frame, off, tail::TailApi::Produce, api_version, &eps())?.unwrap_or(Rewritten::Whole(frame))
            }
            Disposition::FetchTail => {
                let off = tail::fetch_tagged_offset(&frame, api_version)
                    .ok_or_else(|| SessionError::Broker(format!("undecodable Fetch v{api_version} response")))?;
                tail::rewrite(&frame, off, tail::TailApi::Fetch, api_version, &eps())?.unwrap_or(Rewritten::Whole(frame))
            }
            Disposition::Merge(plan) => Rewritten::Whole(admin::merge(&frame, api_version, *plan)?),
            Disposition::Swallow(template) => return self.swallow(&frame, api_version, *template),
        };
        match out {
            Rewritten::Whole(b) => self.writer.push(b),
            Rewritten::Pieces(p) => p.into_iter().for_each(|b| self.writer.push(b)),
        }
        Ok(())
    }

    /// The response to an acks=0 request the proxy upgraded: the client never sees it.
    fn swallow(&mut self, frame: &[u8], version: i16, mut event: Event) -> Result<(), SessionError> {
        let scan = produce_response::scan(frame, version)
            .ok_or_else(|| SessionError::Broker(format!("undecodable Produce v{version} response")))?;
        if scan.errors.is_empty() {
            return Ok(());
        }
        let errors: Vec<_> = scan
            .errors
            .iter()
            .map(|e| serde_json::json!({ "topic": e.topic, "partition": e.partition, "error_code": e.error_code, "error_message": e.message }))
            .collect();
        info!(peer = %self.peer, errors = errors.len(), "broker rejected an upgraded acks=0 produce; closing the client connection as a broker would");
        event.at = SystemTime::now();
        event.detail = serde_json::json!({
            "acks_from": 0, "acks_to": ACKS_ALL, "errors": errors,
            "outcome": "client connection closed so the producer refreshes metadata",
        });
        self.proxy.audit.record(event);
        Err(SessionError::Proxy(format!(
            "{} partition error(s) on an upgraded acks=0 request; closed like a broker does",
            scan.errors.len()
        )))
    }
}

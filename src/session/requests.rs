//! The request side of a session: read client frames, peek each header, let the handlers decide
//! (SASL frames go to the connection's SASL relay), tell the response side what to expect, and
//! forward the bytes with as few writes as possible. Closes connections that stay idle.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncRead, AsyncWrite};

use super::conn::{ConnInfo, Seen};
use super::inflight::{Meta, Pending, Sender};
use super::sasl::SaslRelay;
use crate::audit::Event;
use crate::delivery::stamp::{self, Unplanned};
use crate::delivery::SessionHolds;
use crate::error::SessionError;
use crate::handlers::{self, Disposition, Env, HandlerError, Route, Swallowed};
use crate::identity::Identity;
use crate::metrics::delivery::Unheld;
use crate::net::framed::Incoming;
use crate::net::{FrameReader, FrameWriter, ReadError};
use crate::protocol::groups;
use crate::protocol::versions::allowed;
use crate::protocol::{peek_request_header, FrameError, RequestHeader};
use crate::state::Proxy;

pub struct Requests<'a, R, W> {
    pub proxy: &'a Arc<Proxy>,
    pub peer: SocketAddr,
    pub identity: &'a Identity,
    pub info: &'a ConnInfo,
    pub seen: Seen,
    pub sasl: &'a SaslRelay,
    /// Requests forwarded and not yet answered (shared with the response side).
    pub inflight: &'a AtomicUsize,
    pub reader: FrameReader<R>,
    pub writer: FrameWriter<W>,
    /// To the response side; dropped when reading stops, so it finishes what is in flight.
    pub tx: Option<Sender<'a>>,
    /// Upgraded acks=0 requests held for redelivery: this connection's producer id and budget.
    pub holds: SessionHolds,
    /// A failure to hold has been logged for this connection.
    pub hold_warned: bool,
    /// The broker connection failed: nothing more is forwarded; upgraded acks=0 requests still
    /// read go to the re-sender.
    pub lame: &'a AtomicBool,
}

/// A client that sends nothing for this long is quiet: the buffers both sides hold between frames
/// are given back (`quiet`), so idle connections cost little memory. Short, as a busy connection
/// never waits this long, and a quiet one only pays a buffer allocation when it speaks again.
pub const QUIET: Duration = Duration::from_secs(1);

/// What ended the wait for the next client frame.
enum Next {
    Frame(BytesMut),
    /// A frame above `limits.cut_through_bytes` whose head is in (see `session::cut`).
    Large(usize),
    Closed,
    Shutdown,
    /// Nothing came within the wait: `QUIET` first, then the rest of `limits.idle_timeout_ms`.
    Idle,
}

/// Why the request side stopped reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The client closed, went idle, or a close was queued.
    Closed,
    /// The proxy is shutting down: the client may still be writing.
    Shutdown,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Requests<'_, R, W> {
    /// Reads and forwards requests until the client leaves, a close is queued, or shutdown
    /// (not while lame: then it reads until the client leaves).
    pub async fn run(&mut self) -> Result<Ended, SessionError> {
        let ended = self.read().await;
        self.tx = None;
        ended
    }

    async fn read(&mut self) -> Result<Ended, SessionError> {
        // On shutdown stop between frames: what was forwarded is then drained by the session. One
        // future per session: it registers with the shared token once, not once per request.
        let shutdown = self.proxy.shutdown.clone().cancelled_owned();
        tokio::pin!(shutdown);
        let idle = Duration::from_millis(self.proxy.config().limits.idle_timeout_ms);
        let cut = match self.proxy.config().limits.cut_through_bytes {
            0 => usize::MAX,
            n => n,
        };
        let mut quiet = false;
        loop {
            self.cap_frames();
            // One timer per wait, as before: first until quiet, then until idle.
            let wait = if quiet { idle.saturating_sub(QUIET) } else { QUIET.min(idle) };
            let next = tokio::select! {
                biased;
                _ = &mut shutdown, if !self.lame.load(Ordering::Relaxed) => Next::Shutdown,
                next = self.reader.next_or_large(cut, super::cut::HEAD) => match next {
                    Ok(Some(Incoming::Whole(f))) => Next::Frame(f),
                    Ok(Some(Incoming::Large { total })) => Next::Large(total),
                    Ok(None) => Next::Closed,
                    Err(ReadError::Io(e)) => return Err(SessionError::ClientIo(e)),
                    // Authenticated since the read began: the frame waits in the buffer for the
                    // higher limit.
                    Err(ReadError::Frame(FrameError::TooLarge { .. })) if self.cap_frames() => continue,
                    Err(ReadError::Frame(e)) => return Err(SessionError::ClientFrame(e)),
                },
                _ = tokio::time::sleep(wait) => Next::Idle,
            };
            let closing = match next {
                Next::Frame(f) => self.handle(f).await?,
                Next::Large(total) => self.large(total).await?,
                Next::Closed => return Ok(Ended::Closed),
                Next::Shutdown => return Ok(Ended::Shutdown),
                Next::Idle if !quiet => {
                    quiet = true;
                    self.quiet();
                    continue;
                }
                // Something still in flight is activity: wait on (a full idle period again).
                Next::Idle if self.inflight.load(Ordering::Relaxed) > 0 => {
                    quiet = false;
                    continue;
                }
                Next::Idle => {
                    tracing::info!(peer = %self.peer, idle_ms = idle.as_millis() as u64, "closing idle client connection (limits.idle_timeout_ms)");
                    return Ok(Ended::Closed);
                }
            };
            quiet = false;
            if self.after_frame(closing).await? {
                return Ok(Ended::Closed);
            }
        }
    }

    /// After a handled frame: forwards everything already buffered, then flushes once (fewer
    /// syscalls under load). True when a close was queued (what came before it is sent).
    async fn after_frame(&mut self, closing: bool) -> Result<bool, SessionError> {
        let closing = closing || self.forward_buffered().await?;
        self.flush().await?;
        Ok(closing)
    }

    /// The client went quiet: give back the read buffer (unless a partial frame is in it) and
    /// the write queue, and tell the response side to do the same once it has answered
    /// everything before (a full queue means the connection is not quiet after all).
    fn quiet(&mut self) {
        self.reader.release();
        self.writer.release();
        if let Some(tx) = &self.tx {
            tx.try_send(Pending::Quiet);
        }
    }

    /// Handles every whole frame already buffered; true when a close was queued (what came
    /// before a bad frame is forwarded, then the bad frame fails the connection).
    async fn forward_buffered(&mut self) -> Result<bool, SessionError> {
        loop {
            match self.reader.buffered() {
                Ok(Some(frame)) => {
                    if self.handle(frame).await? {
                        return Ok(true);
                    }
                }
                Ok(None) => return Ok(false),
                Err(e) => {
                    self.flush().await?;
                    return Err(SessionError::ClientFrame(e));
                }
            }
        }
    }

    /// On a cluster that requires SASL, a client that has not authenticated may not send more
    /// than the broker's own pre-authentication limit: it cannot make the proxy buffer 100 MB.
    /// Returns true when the limit was raised.
    fn cap_frames(&mut self) -> bool {
        let cfg = self.proxy.config();
        let capped = cfg.upstream.sasl.is_some() && !self.sasl.authenticated();
        self.reader.set_max(if capped { cfg.limits.pre_auth_max_frame_bytes } else { cfg.limits.max_frame_bytes })
    }

    async fn flush(&mut self) -> Result<(), SessionError> {
        if self.lame.load(Ordering::Relaxed) {
            self.writer.discard();
            return Ok(());
        }
        self.writer.flush().await.map_err(SessionError::BrokerIo)
    }

    /// Handles one request; true when the connection is to be closed after what is queued.
    pub(super) async fn handle(&mut self, frame: BytesMut) -> Result<bool, SessionError> {
        let started = Instant::now();
        let size = frame.len();
        let (route, correlation_id, api_version, api_key) = if self.sasl.expecting_raw_token() {
            let (bytes, corr) = self.sasl.wrap_raw_token(&frame).map_err(handler_error)?;
            (Route::Forward(bytes, Disposition::SaslRawToken), corr, 0, ApiKey::SaslAuthenticate as i16)
        } else {
            let header = peek_request_header(&frame).ok_or_else(|| SessionError::Client("malformed request header".into()))?;
            let route = match self.route(frame, &header).await.map_err(handler_error)? {
                Route::Hold(frame, template) => self.hold(frame, template, &header, started).await?,
                route => route,
            };
            (route, header.correlation_id, header.api_version, header.api_key)
        };
        self.proxy.metrics.api(api_key).request(size);
        if self.lame.load(Ordering::Relaxed) {
            // Dropping the route hands a held request to the re-sender; nothing else can be
            // answered any more.
            drop(route);
            return Ok(false);
        }
        let (bytes, pending) = Pending::of(route, correlation_id, api_version, Meta { api_key, started });
        let closing = matches!(pending, Pending::Close);
        self.queue_pending(pending).await?;
        if let Some(bytes) = bytes {
            self.writer.push(bytes);
        }
        Ok(closing)
    }

    /// Tells the response side what to do with a request's answer, counting it in flight when one
    /// is expected. It must know before the broker can answer, so this comes before the forward.
    pub(super) async fn queue_pending(&self, pending: Pending) -> Result<(), SessionError> {
        if matches!(pending, Pending::Expect { .. }) {
            self.inflight.fetch_add(1, Ordering::Relaxed);
            self.proxy.metrics.inflight.inc();
        }
        let ended = || SessionError::Proxy("response side ended".into());
        let tx = self.tx.as_ref().ok_or_else(ended)?;
        tx.send(pending).await.map_err(|_| ended())
    }

    /// What requests are judged with: the policies in force, the audit log, the cluster, and
    /// who this connection is.
    pub(super) fn env<'c>(&'c self, cfg: &'c crate::config::Config) -> Env<'c, crate::cluster::Cluster> {
        Env {
            policies: &cfg.policies,
            audit: &self.proxy.audit,
            cluster: &self.proxy.cluster,
            peer: self.peer,
            identity: self.identity,
            metrics: &self.proxy.metrics,
        }
    }

    /// Stamps an upgraded acks=0 request with this connection's producer id and holds it until
    /// the broker acknowledges it (see `delivery`); waits, reading nothing more from the client,
    /// while the redelivery budget is full. A request that cannot be held is forwarded upgraded.
    /// (The template stays boxed until the end: this future is part of every session's task.)
    async fn hold(
        &mut self,
        frame: BytesMut,
        template: Box<Event>,
        header: &RequestHeader,
        arrived: Instant,
    ) -> Result<Route, SessionError> {
        let swallow = |bytes, held| Route::Forward(bytes, Disposition::Swallow(Box::new(Swallowed { template: *template, held })));
        let metrics = &self.proxy.metrics.delivery;
        let planned = match stamp::plan(&frame, header) {
            Ok(p) => p,
            Err(Unplanned::Malformed) => return Err(SessionError::Client("malformed Produce request".into())),
            Err(Unplanned::Unstampable) => {
                metrics.unheld(Unheld::Unstampable).inc();
                return Ok(swallow(frame.freeze(), None));
            }
        };
        let lease = match self.holds.lease().await {
            Ok(l) => l,
            Err(e) => {
                metrics.unheld(Unheld::NoProducerId).inc();
                if !std::mem::replace(&mut self.hold_warned, true) {
                    tracing::warn!(peer = %self.peer, side = %e.side(), error = %e, "no producer id for redelivery: upgraded acks=0 requests of this connection are forwarded without being held");
                }
                return Ok(swallow(frame.freeze(), None));
            }
        };
        let permits = match self.holds.try_permits(frame.len()) {
            Some(p) => p,
            None => {
                // What is queued for the broker must go out, or nothing held can complete.
                self.flush().await?;
                self.holds.wait_permits(frame.len()).await.ok_or_else(|| SessionError::Proxy("redelivery budget closed".into()))?
            }
        };
        let cfg = self.proxy.config();
        let origin = self.env(&cfg).origin(&frame, header);
        let timeout = Duration::from_millis(cfg.policies.produce_acks.delivery_timeout_ms);
        let (bytes, held) =
            self.holds.hold(frame, planned, lease, permits, origin, arrived, timeout).map_err(|e| SessionError::Proxy(e.to_string()))?;
        Ok(swallow(bytes, Some(held)))
    }

    /// Keeps what detectors name (client id, consumer group) current, and audits offset commits
    /// when asked to.
    fn note(&mut self, frame: &[u8], header: &RequestHeader) {
        match header.known_api() {
            Some(ApiKey::Produce | ApiKey::Fetch) => self.info.note_client_id(&mut self.seen, header.client_id(frame)),
            Some(ApiKey::OffsetCommit) => {
                self.info.note_group(&mut self.seen, groups::group_id(frame, header));
                self.proxy.metrics.detectors.offset_commits.inc();
                if self.proxy.config().policies.detectors.offset_commits {
                    self.audit_commits(frame, header);
                }
            }
            Some(ApiKey::JoinGroup | ApiKey::SyncGroup | ApiKey::Heartbeat | ApiKey::LeaveGroup | ApiKey::OffsetFetch) => {
                self.info.note_group(&mut self.seen, groups::group_id(frame, header));
            }
            _ => {}
        }
    }

    fn audit_commits(&self, frame: &[u8], header: &RequestHeader) {
        let Some((group, member, commits)) = groups::offset_commit(frame, header) else { return };
        let cfg = self.proxy.config();
        let origin = self.env(&cfg).origin(frame, header);
        for c in commits {
            let detail = serde_json::json!({ "group": group, "member": member, "partition": c.partition, "offset": c.offset });
            self.proxy.audit.record(Event::offset_commit(&origin, c.topic, detail));
        }
    }

    async fn route(&mut self, frame: BytesMut, header: &RequestHeader) -> Result<Route, HandlerError> {
        self.note(&frame, header);
        let sasl = allowed(header.api_key, header.api_version);
        match header.known_api() {
            Some(ApiKey::SaslHandshake) if sasl => self.sasl.handshake(frame, header),
            Some(ApiKey::SaslAuthenticate) if sasl => self.sasl.authenticate(frame, header),
            _ => {
                let cfg = self.proxy.config();
                handlers::route(&self.env(&cfg), frame, header).await
            }
        }
    }
}

fn handler_error(e: HandlerError) -> SessionError {
    if e.client_side() {
        SessionError::Client(e.to_string())
    } else {
        SessionError::Proxy(e.to_string())
    }
}

//! The response side of a session: pair each broker response with its request, in order;
//! rewrite what names brokers, merge the proxy's own partial answers, swallow answers the client
//! never asked for, and slot in the proxy's own responses at their turn.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};

use super::conn::ConnInfo;
use super::detect;
use super::inflight::{Meta, Pending, Receiver};
use super::sasl::SaslRelay;
use crate::audit::Event;
use crate::error::SessionError;
use crate::handlers::{legacy, split, Disposition, Swallowed};
use crate::identity::Identity;
use crate::net::{FrameReader, FrameWriter, ReadError};
use crate::policy::produce::ACKS_ALL;
use crate::protocol::{peek_response_correlation, produce_response};
use crate::rewrite::{addresses, api_versions, Rewritten};
use crate::state::Proxy;

fn far_future() -> std::time::Instant {
    std::time::Instant::now() + std::time::Duration::from_secs(86_400)
}

/// Partition errors listed in the audit event of a swallowed response (all are counted).
const AUDITED_ERRORS: usize = 64;

pub struct Responses<'a, R, W> {
    pub proxy: &'a Arc<Proxy>,
    pub peer: SocketAddr,
    pub identity: &'a Identity,
    pub info: &'a ConnInfo,
    pub sasl: &'a SaslRelay,
    /// Requests forwarded and not yet answered (shared with the request side).
    pub inflight: &'a AtomicUsize,
    pub reader: FrameReader<R>,
    pub writer: FrameWriter<W>,
    pub rx: Receiver<'a>,
    pub queue: VecDeque<Pending>,
    /// Correlation ids of acks=0 requests forwarded unchanged, whose response may or may not come.
    pub maybe: Vec<i32>,
    /// The request side has ended: finish what is in flight, then stop.
    pub draining: bool,
}

impl<'a, R: AsyncRead + Unpin + 'a, W: AsyncWrite + Unpin + 'a> Responses<'a, R, W> {
    /// Serves responses until the broker side ends; then the client is sent end-of-stream (its
    /// requests may still be read, see `session::serve`). The future owns the response side:
    /// when it ends or is dropped, so are its queue (held requests go to the re-sender) and its
    /// halves. (An async block, not an async fn, which would keep `self` twice in the future.)
    #[allow(clippy::manual_async_fn)]
    pub fn run(mut self) -> impl std::future::Future<Output = Result<(), SessionError>> + 'a {
        async move {
            let r = self.serve().await;
            // End-of-stream once every answer is out (shutdown, the broker gone, the client gone).
            self.writer.shutdown().await;
            r
        }
    }
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Responses<'_, R, W> {
    async fn serve(&mut self) -> Result<(), SessionError> {
        loop {
            if self.drain_front() {
                self.flush().await?;
                return Ok(());
            }
            self.flush().await?;
            if self.draining && self.queue.is_empty() {
                return Ok(());
            }
            let deadline = self.held_deadline();
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
                _ = self.proxy.deliveries.abandon.cancelled(), if deadline.is_some() => {
                    return Err(SessionError::Proxy("shutting down: the drain timeout passed with upgraded acks=0 requests unanswered".into()));
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(far_future).into()), if deadline.is_some() => {
                    return Err(SessionError::Broker(
                        "broker did not answer an upgraded acks=0 request within policies.produce_acks.delivery_timeout_ms".into(),
                    ));
                }
            }
        }
    }

    /// When the oldest held request (an upgraded acks=0 kept for redelivery) runs out of time:
    /// a broker that never answers must not keep it past its delivery timeout.
    fn held_deadline(&self) -> Option<std::time::Instant> {
        self.queue.iter().find_map(|p| match p {
            Pending::Expect { disposition: Disposition::Swallow(s), .. } => s.held.as_ref().and_then(|h| h.inner()).map(|i| i.deadline),
            _ => None,
        })
    }

    fn subject(&self) -> detect::Subject<'_> {
        detect::Subject {
            peer: self.peer,
            identity: self.identity,
            info: self.info,
            audit: &self.proxy.audit,
            metrics: &self.proxy.metrics,
        }
    }

    /// Counts a response on its way to the client: bytes, and latency since the request came in.
    fn sent(&self, meta: &Meta, bytes: usize) {
        let api = self.proxy.metrics.api(meta.api_key);
        api.response_bytes.add(bytes as u64);
        api.latency.observe(meta.started.elapsed());
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
            self.rx.take_into(&mut self.queue);
            match self.queue.front() {
                Some(Pending::Local(..)) => {
                    if let Some(Pending::Local(b, meta)) = self.queue.pop_front() {
                        self.sent(&meta, b.len());
                        self.writer.push(b);
                    }
                }
                Some(Pending::MaybeAnswered { correlation_id }) => {
                    self.maybe.push(*correlation_id);
                    self.queue.pop_front();
                }
                Some(Pending::Quiet) => {
                    self.queue.pop_front();
                    self.release();
                }
                Some(Pending::Close) => return true,
                Some(Pending::Expect { .. }) | None => return false,
            }
        }
    }

    /// The client went quiet and everything it asked before is answered: what is held between
    /// frames goes back (an idle connection keeps no read buffer; the next response takes one).
    fn release(&mut self) {
        if !self.queue.is_empty() {
            return;
        }
        self.reader.release();
        self.writer.release();
        self.rx.release();
        self.queue = VecDeque::new();
        if self.maybe.is_empty() {
            self.maybe = Vec::new();
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
        let corr = peek_response_correlation(&frame).ok_or_else(|| SessionError::Broker("response shorter than its header".into()))?;
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
        let Some(Pending::Expect { correlation_id, api_version, disposition, meta }) = self.queue.pop_front() else {
            return Err(SessionError::Broker(format!("response with correlation id {corr} to no pending request")));
        };
        if correlation_id != corr {
            return Err(SessionError::Broker(format!("response with correlation id {corr} where {correlation_id} was due")));
        }
        // Responses come in order: any acks=0 request before this one will never be answered now.
        self.maybe.clear();
        self.inflight.fetch_sub(1, Ordering::Relaxed);
        self.proxy.metrics.inflight.dec();
        let frame = frame.freeze();
        match disposition {
            Disposition::Swallow(_) => self.sent(&meta, 0),
            Disposition::SaslHandshake { .. } | Disposition::SaslAuthenticate | Disposition::SaslRawToken => self.sent(&meta, frame.len()),
            _ => {}
        }
        if let Some(outcome) = self.sasl_response(&frame, api_version, &disposition) {
            return outcome;
        }
        // Brokers answer nothing but ApiVersions and SASL before authentication: this connection
        // is authenticated (the one proof there is for mechanisms the proxy cannot read).
        if !matches!(disposition, Disposition::ApiVersions) {
            self.sasl.mark_authenticated();
        }
        let out = match disposition {
            Disposition::Swallow(swallowed) => return self.swallow(&frame, api_version, *swallowed),
            d => self.rewrite(frame, api_version, d)?,
        };
        // Observed once the rewritten answer is queued for the client (the write follows at once):
        // the proxy's own response work is inside the latency, and the bytes are what the client gets.
        let bytes = self.queue_for_client(out);
        self.sent(&meta, bytes);
        Ok(())
    }

    /// Queues a response for the client; the bytes queued.
    fn queue_for_client(&mut self, out: Rewritten) -> usize {
        match out {
            Rewritten::Whole(b) => self.push(b),
            Rewritten::Pieces(p) => p.into_iter().map(|b| self.push(b)).sum(),
        }
    }

    fn push(&mut self, b: Bytes) -> usize {
        let n = b.len();
        self.writer.push(b);
        n
    }

    /// SASL responses: relayed (raw v0 tokens unwrapped) while the principal is learnt; a failed
    /// exchange closes the connection once the client has its answer, whatever the broker does
    /// next (tansu 0.6 keeps serving a connection whose SCRAM proof failed). None: not SASL.
    fn sasl_response(&mut self, frame: &Bytes, version: i16, d: &Disposition) -> Option<Result<(), SessionError>> {
        let answer = match d {
            Disposition::SaslHandshake { legacy } => self.sasl.handshake_answered(frame, *legacy).map(|()| frame.clone()),
            Disposition::SaslAuthenticate => self.sasl.authenticate_answered(frame, version, self.identity).map(|()| frame.clone()),
            Disposition::SaslRawToken => self.sasl.raw_answer(frame, self.identity),
            _ => return None,
        };
        Some(answer.and_then(|bytes| {
            self.writer.push(bytes);
            if self.sasl.failed() {
                return Err(SessionError::Client("SASL authentication failed; connection closed by the proxy".into()));
            }
            Ok(())
        }))
    }

    /// The response the client gets for a broker response with this disposition.
    fn rewrite(&self, frame: Bytes, api_version: i16, disposition: Disposition) -> Result<Rewritten, SessionError> {
        let eps = || self.proxy.endpoints();
        Ok(match disposition {
            Disposition::Forward | Disposition::Swallow(_) => Rewritten::Whole(frame),
            Disposition::SaslHandshake { .. } | Disposition::SaslAuthenticate | Disposition::SaslRawToken => Rewritten::Whole(frame),
            Disposition::Metadata { blocked } => {
                let (bytes, missing) = addresses::metadata_and_missing(&frame, api_version, &eps())?;
                if let (Some(origin), false) = (blocked.as_deref(), missing.is_empty()) {
                    self.proxy.metrics.detectors.auto_create_prevented.add(missing.len() as u64);
                    self.proxy.audit.record(Event::auto_topic_creation(origin, missing));
                }
                Rewritten::Whole(bytes)
            }
            Disposition::FindCoordinator => Rewritten::Whole(addresses::find_coordinator(&frame, api_version, &eps())?),
            Disposition::DescribeCluster => Rewritten::Whole(addresses::describe_cluster(&frame, api_version, &eps())?),
            Disposition::ApiVersions => Rewritten::Whole(api_versions::rewrite(&frame, api_version)?.unwrap_or(frame)),
            Disposition::Produce { tail } => {
                let report = self.proxy.config().policies.detectors.produce_errors;
                detect::produce(frame, api_version, tail, report, &self.subject(), &eps())?
            }
            Disposition::Fetch { tail, request } => detect::fetch(frame, api_version, tail, request, &self.subject(), &eps())?,
            Disposition::Merge(plan) => Rewritten::Whole(split::merge(&frame, api_version, *plan)?),
            Disposition::Legacy(plan) => Rewritten::Whole(legacy::answer(&frame, *plan)?),
        })
    }

    /// The response to an acks=0 request the proxy upgraded: the client never sees it.
    /// When the request is held, partitions that succeeded are done, those that failed for good
    /// are given up (audited), and the rest go to the re-sender when `held` is dropped.
    fn swallow(&mut self, frame: &[u8], version: i16, swallowed: Swallowed) -> Result<(), SessionError> {
        let Swallowed { template: mut event, mut held } = swallowed;
        let scan = produce_response::scan(frame, version)
            .ok_or_else(|| SessionError::Broker(format!("undecodable Produce v{version} response")))?;
        let mut redelivering = None;
        if let Some(h) = held.as_mut() {
            let errors: Vec<_> = scan.errors.iter().map(|e| (&*e.topic, e.partition, e.error_code, e.message.as_deref())).collect();
            let answer = h.answered(&errors);
            self.proxy.deliveries.failed(h, &answer.failed);
            redelivering = Some(answer.retry);
        }
        drop(held);
        if scan.errors.is_empty() {
            return Ok(());
        }
        for e in &scan.errors {
            self.proxy.metrics.produce_error(e.error_code);
        }
        // Each entry copies its topic's name: a bounded list keeps one long name repeated over
        // many failed partitions from costing name length x partitions.
        let errors: Vec<_> = scan
            .errors
            .iter()
            .take(AUDITED_ERRORS)
            .map(|e| serde_json::json!({ "topic": &*e.topic, "partition": e.partition, "error_code": e.error_code, "error_message": e.message }))
            .collect();
        tracing::info!(peer = %self.peer, errors = scan.errors.len(), "broker rejected an upgraded acks=0 produce; closing the client connection as a broker would");
        event.at = SystemTime::now();
        event.detail = serde_json::json!({
            "acks_from": 0, "acks_to": ACKS_ALL, "errors": errors, "errors_total": scan.errors.len(),
            "outcome": "client connection closed so the producer refreshes metadata",
            "redelivering_partitions": redelivering,
        });
        self.proxy.audit.record(event);
        Err(SessionError::Proxy(format!(
            "{} partition error(s) on an upgraded acks=0 request; closed like a broker does",
            scan.errors.len()
        )))
    }
}

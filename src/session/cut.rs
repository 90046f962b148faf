//! Cut-through forwarding of large Produce requests: once the head of a frame above
//! `limits.cut_through_bytes` is in and says acks=all with nothing to judge in its body, the
//! response side is told to expect its answer and the frame goes to the broker piece by piece,
//! straight from the read buffer, while the rest is still arriving. Everything the proxy must
//! hold whole (acks to upgrade or refuse, idempotence rules that refuse, held acks=0 requests,
//! admin requests) keeps store-and-forward. What only observes (the idempotence audit, the
//! client id detectors use) runs on the whole frame once it is through.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncRead, AsyncWrite};

use super::inflight::{Meta, Pending};
use super::requests::Requests;
use crate::error::SessionError;
use crate::handlers::{self, Disposition};
use crate::net::ReadError;
use crate::protocol::versions::allowed;
use crate::protocol::{peek_request_header, RequestHeader};

/// The head read before deciding: the request header and the Produce fields up to acks.
pub const HEAD: usize = 4 * 1024;

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Requests<'_, R, W> {
    /// Handles a large frame of `total` bytes whose head is buffered: cut through when it may
    /// be, otherwise read it whole and handle it as usual. True when the connection is to be
    /// closed after what is queued.
    pub(super) async fn large(&mut self, total: usize) -> Result<bool, SessionError> {
        let head = self.reader.buffered_bytes();
        let header = peek_request_header(head).filter(|h| self.may_cut(head, h));
        let Some(header) = header else {
            let frame = self.read_whole(total).await?;
            return self.handle(frame).await;
        };
        self.cut_through(total, header).await?;
        Ok(false)
    }

    fn may_cut(&self, head: &[u8], h: &RequestHeader) -> bool {
        h.known_api() == Some(ApiKey::Produce)
            && !self.lame.load(Ordering::Relaxed)
            && allowed(h.api_key, h.api_version)
            && !self.sasl.expecting_raw_token()
            && handlers::produce::may_cut_through(&self.proxy.config().policies, head, h)
    }

    async fn read_whole(&mut self, total: usize) -> Result<bytes::BytesMut, SessionError> {
        loop {
            if let Some(frame) = self.reader.take(total) {
                return Ok(frame);
            }
            self.read_more().await?;
        }
    }

    /// More of the frame in hand, within the idle timeout (a client that stops mid-frame is
    /// closed, as between frames).
    async fn read_more(&mut self) -> Result<(), SessionError> {
        let idle = Duration::from_millis(self.proxy.config().limits.idle_timeout_ms);
        match tokio::time::timeout(idle, self.reader.read_more()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(ReadError::Io(e))) => Err(SessionError::ClientIo(e)),
            Ok(Err(ReadError::Frame(e))) => Err(SessionError::ClientFrame(e)),
            Err(_) => Err(SessionError::Client("client stopped in the middle of a request (limits.idle_timeout_ms)".into())),
        }
    }

    async fn cut_through(&mut self, total: usize, header: RequestHeader) -> Result<(), SessionError> {
        let started = Instant::now();
        let meta = Meta { api_key: header.api_key, started };
        let disposition = Disposition::Produce { tail: header.api_version >= 10 };
        let pending = Pending::Expect { correlation_id: header.correlation_id, api_version: header.api_version, disposition, meta };
        self.queue_pending(pending).await?;
        let mut sent = 0;
        loop {
            let buffered = self.reader.buffered_bytes();
            let upto = buffered.len().min(total);
            if let Some(piece) = buffered.get(sent..upto).filter(|p| !p.is_empty()) {
                self.writer.write_now(piece).await.map_err(SessionError::BrokerIo)?;
                sent = upto;
            }
            if sent == total {
                break;
            }
            self.read_more().await?;
        }
        let frame = self.reader.take(total).ok_or_else(|| SessionError::Proxy("forwarded frame not buffered".into()))?;
        self.proxy.metrics.api(header.api_key).request(total);
        self.proxy.metrics.cut_through.inc();
        self.observe(&frame, &header);
        Ok(())
    }

    /// What only observes a Produce, on the whole frame after it went through.
    fn observe(&mut self, frame: &[u8], header: &RequestHeader) {
        self.info.note_client_id(&mut self.seen, header.client_id(frame));
        let cfg = self.proxy.config();
        if let Err(e) = handlers::produce::observe(&self.env(&cfg), frame, header) {
            tracing::debug!(peer = %self.peer, error = %e, "Produce forwarded as it arrived could not be read whole afterwards");
        }
    }
}

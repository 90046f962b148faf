//! The request side of a session: read client frames, peek each header, let the handlers decide,
//! tell the response side what to expect, and forward the bytes with as few writes as possible.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use super::inflight::Pending;
use crate::error::SessionError;
use crate::handlers::{self, Env, HandlerError};
use crate::identity::Identity;
use crate::net::{FrameReader, FrameWriter, ReadError};
use crate::protocol::peek_request_header;
use crate::state::Proxy;

pub struct Requests<'a, R, W> {
    pub proxy: &'a Arc<Proxy>,
    pub peer: SocketAddr,
    pub identity: &'a Identity,
    pub reader: FrameReader<R>,
    pub writer: FrameWriter<W>,
    pub tx: mpsc::Sender<Pending>,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Requests<'_, R, W> {
    /// Reads and forwards requests until the client leaves (Ok) or a close is queued (Ok).
    pub async fn run(mut self) -> Result<(), SessionError> {
        // On shutdown stop between frames: what was forwarded is then drained by the session. One
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
        let header = peek_request_header(&frame).ok_or_else(|| SessionError::Client("malformed request header".into()))?;
        let cfg = self.proxy.config();
        let env = Env {
            policies: &cfg.policies,
            audit: &self.proxy.audit,
            cluster: &self.proxy.cluster,
            peer: self.peer,
            identity: self.identity,
        };
        let route = handlers::route(&env, frame, &header).await.map_err(handler_error)?;
        let (bytes, pending) = Pending::of(route, &header);
        let closing = matches!(pending, Pending::Close);
        // The response side must know about a request before the broker can answer it.
        self.tx.send(pending).await.map_err(|_| SessionError::Proxy("response side ended".into()))?;
        if let Some(bytes) = bytes {
            self.writer.push(bytes);
        }
        Ok(closing)
    }
}

fn handler_error(e: HandlerError) -> SessionError {
    if e.client_side() {
        SessionError::Client(e.to_string())
    } else {
        SessionError::Proxy(e.to_string())
    }
}

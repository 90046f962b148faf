//! One client connection, plaintext or TLS alike: read into a buffer, answer every whole frame in
//! it, in order, into a write buffer (large buffers, such as the Fetch segment, go straight to
//! the socket), flush once the read buffer holds no whole frame, read again. A frame the sink
//! cannot answer (malformed, unknown API, unsupported version, over the size cap) closes the
//! connection, as a Kafka broker does.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::BytesMut;
use kafka_durability_proxy::protocol::split_frame;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};

use crate::api;
use crate::state::Sink;

/// The broker's default `socket.request.max.bytes`.
const MAX_FRAME: usize = 100 * 1024 * 1024;
const BUFFER: usize = 64 * 1024;

/// Why a connection ended early.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Frame(#[from] kafka_durability_proxy::protocol::FrameError),
    #[error("request the sink does not answer ({0})")]
    Refused(String),
}

pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(stream: S, sink: Arc<Sink>) -> Result<(), ConnError> {
    sink.stats.connections.fetch_add(1, Relaxed);
    let mut s = BufWriter::with_capacity(BUFFER, stream);
    let mut buf = BytesMut::with_capacity(BUFFER);
    loop {
        while let Some(frame) = split_frame(&mut buf, MAX_FRAME)? {
            let frame = frame.freeze();
            let Some(parts) = api::handle(&sink, &frame) else {
                sink.stats.closed_bad_frame.fetch_add(1, Relaxed);
                return Err(ConnError::Refused(describe(&frame)));
            };
            for part in parts {
                s.write_all(&part).await?;
            }
        }
        s.flush().await?;
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(BUFFER);
        }
        if s.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

/// api key, version and size of a refused frame, for the log.
fn describe(frame: &[u8]) -> String {
    match kafka_durability_proxy::protocol::peek_request_header(frame) {
        Some(h) => format!("api key {} v{}, {} bytes", h.api_key, h.api_version, frame.len()),
        None => format!("unreadable header, {} bytes", frame.len()),
    }
}

//! Framed reading and writing over any transport half: a reader that splits whole frames off its buffer (cancel-safe,
//! so it can sit in `select!`), and a writer that sends queued frames with vectored writes, so
//! forwarded buffers are never copied into a staging buffer.

use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::protocol::{split_frame, FrameError};

/// Read size when no partial frame says how much is needed. Small, so idle connections are cheap.
const READ_CHUNK: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Frame(#[from] FrameError),
}

pub struct FrameReader<R> {
    io: R,
    buf: BytesMut,
    max: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(io: R, max: usize) -> Self {
        Self { io, buf: BytesMut::new(), max }
    }

    /// Changes the largest frame accepted from here on (the pre-authentication cap is lifted
    /// once a connection has authenticated).
    /// True when the limit went up.
    pub fn set_max(&mut self, max: usize) -> bool {
        let raised = max > self.max;
        self.max = max;
        raised
    }

    /// A frame already in the buffer, without reading.
    pub fn buffered(&mut self) -> Result<Option<BytesMut>, FrameError> {
        split_frame(&mut self.buf, self.max)
    }

    /// The next frame; `None` on a clean end of stream between frames.
    pub async fn next(&mut self) -> Result<Option<BytesMut>, ReadError> {
        loop {
            if let Some(frame) = split_frame(&mut self.buf, self.max)? {
                return Ok(Some(frame));
            }
            if self.buf.capacity() - self.buf.len() == 0 {
                self.buf.reserve(READ_CHUNK);
            }
            if self.io.read_buf(&mut self.buf).await? == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(ReadError::Io(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed mid-frame")));
            }
        }
    }
}

/// Frames waiting to be written, flushed with as few syscalls as the kernel allows.
pub struct FrameWriter<W> {
    io: W,
    queue: Vec<Bytes>,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub fn new(io: W) -> Self {
        Self { io, queue: Vec::new() }
    }

    pub fn push(&mut self, b: Bytes) {
        if !b.is_empty() {
            self.queue.push(b);
        }
    }

    /// Drops what is queued (the peer is gone).
    pub fn discard(&mut self) {
        self.queue.clear();
    }

    pub fn has_pending(&self) -> bool {
        !self.queue.is_empty()
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        let mut first = 0;
        while first < self.queue.len() {
            let slices: Vec<IoSlice<'_>> = self.queue.iter().skip(first).take(64).map(|b| IoSlice::new(b)).collect();
            let mut n = self.io.write_vectored(&slices).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            while n > 0 {
                let Some(head) = self.queue.get_mut(first) else { break };
                if n >= head.len() {
                    n -= head.len();
                    first += 1;
                } else {
                    head.advance(n);
                    n = 0;
                }
            }
        }
        self.queue.clear();
        self.io.flush().await
    }

    pub async fn shutdown(&mut self) {
        let _ = self.io.shutdown().await;
    }
}

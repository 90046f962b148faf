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

    /// Like `next`, but a frame larger than `cut` bytes (with its size prefix) is announced as
    /// soon as `head` bytes of it are buffered, so it can be forwarded while the rest arrives
    /// (`buffered_bytes`, `read_more`, `take`). The buffer is sized for the whole frame at once.
    pub async fn next_or_large(&mut self, cut: usize, head: usize) -> Result<Option<Incoming>, ReadError> {
        loop {
            if let Some(frame) = split_frame(&mut self.buf, self.max)? {
                return Ok(Some(Incoming::Whole(frame)));
            }
            // split_frame checked the size prefix (and reserved room for the frame) when it has one.
            if let Some(total) = declared_total(&self.buf).filter(|t| *t > cut) {
                if self.buf.len() >= head.min(total) {
                    return Ok(Some(Incoming::Large { total }));
                }
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

    /// What is buffered: the start of a large frame (after `next_or_large`).
    pub fn buffered_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Reads once more into the buffer (room for the frame was reserved); the bytes read.
    pub async fn read_more(&mut self) -> Result<usize, ReadError> {
        if self.buf.capacity() - self.buf.len() == 0 {
            self.buf.reserve(READ_CHUNK);
        }
        match self.io.read_buf(&mut self.buf).await? {
            0 => Err(ReadError::Io(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed mid-frame"))),
            n => Ok(n),
        }
    }

    /// The first `total` buffered bytes, as a frame (None until that many are buffered).
    pub fn take(&mut self, total: usize) -> Option<BytesMut> {
        (self.buf.len() >= total).then(|| self.buf.split_to(total))
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

/// What `FrameReader::next_or_large` found.
#[derive(Debug)]
pub enum Incoming {
    Whole(BytesMut),
    /// A frame of `total` bytes (with its size prefix) whose head is buffered.
    Large {
        total: usize,
    },
}

/// The total length (with the size prefix) the frame at the start of `buf` declares.
fn declared_total(buf: &[u8]) -> Option<usize> {
    let raw = <[u8; 4]>::try_from(buf.get(..4)?).ok()?;
    usize::try_from(i32::from_be_bytes(raw)).ok()?.checked_add(4)
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

    /// Writes what is queued, then `bytes` straight from the caller's buffer (a piece of a frame
    /// being forwarded as it arrives: no copy, no queue).
    pub async fn write_now(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.flush().await?;
        self.io.write_all(bytes).await?;
        self.io.flush().await
    }

    pub async fn shutdown(&mut self) {
        let _ = self.io.shutdown().await;
    }
}

//! Framed reading and writing over any transport half: a reader that splits whole frames off its buffer (cancel-safe,
//! so it can sit in `select!`), and a writer that sends queued frames with vectored writes, so
//! forwarded buffers are never copied into a staging buffer. Between frames neither needs to hold
//! memory: the reader waits for bytes without a buffer, and both can give theirs back (`release`)
//! when their connection goes quiet.

use std::io::IoSlice;
use std::pin::Pin;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::protocol::{split_frame, FrameError};

/// Read size when no partial frame says how much is needed.
const READ_CHUNK: usize = 8 * 1024;
/// The first read of a reader that holds no buffer (a new connection, or one that went quiet):
/// what comes then is mostly small (ApiVersions, Metadata, a heartbeat), and a larger frame's size
/// prefix makes room for the rest of it. A burst of connections that each exchange a few small
/// frames then touches a kilobyte per reader, not a read chunk.
const FIRST_READ: usize = 1024;

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
            if !self.fill().await? {
                return Ok(None);
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
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// Reads once into the buffer; false on a clean end of stream between frames.
    async fn fill(&mut self) -> Result<bool, ReadError> {
        if self.buf.capacity() - self.buf.len() == 0 {
            if self.buf.is_empty() {
                // No room and nothing buffered: wait for bytes before taking a buffer, so a
                // connection that sends nothing holds none. A buffer whose frames are all
                // gone is reclaimed whole by the reserve (busy connections reuse theirs).
                self.readable().await?;
                self.buf.reserve(FIRST_READ);
            } else {
                self.buf.reserve(READ_CHUNK);
            }
        }
        if self.io.read_buf(&mut self.buf).await? == 0 {
            if self.buf.is_empty() {
                return Ok(false);
            }
            return Err(ReadError::Io(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed mid-frame")));
        }
        Ok(true)
    }

    /// Waits until the transport has bytes, end of stream or an error, with a zero-length read:
    /// TCP waits for readiness and reads nothing; a transport that cannot tell (TLS) returns at
    /// once, and the read that follows waits with a buffer, as before.
    async fn readable(&mut self) -> std::io::Result<()> {
        std::future::poll_fn(|cx| Pin::new(&mut self.io).poll_read(cx, &mut ReadBuf::new(&mut []))).await
    }

    /// Gives the read buffer back when no partial frame is in it (the connection went quiet); the
    /// next read waits for bytes without one.
    pub fn release(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }

    /// Bytes the read buffer holds (capacity), for tests and accounting.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
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

    /// Gives the queue's memory back when nothing is queued (the connection went quiet).
    pub fn release(&mut self) {
        if self.queue.is_empty() {
            self.queue = Vec::new();
        }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use tokio::io::AsyncWriteExt;

    fn frame(n: usize) -> Vec<u8> {
        let mut f = (n as i32).to_be_bytes().to_vec();
        f.resize(4 + n, 7);
        f
    }

    async fn nothing_yet<R: AsyncRead + Unpin>(r: &mut FrameReader<R>) {
        let waited = tokio::time::timeout(Duration::from_millis(20), r.next()).await;
        assert!(waited.is_err(), "no frame was sent");
    }

    /// Over TCP, whose zero-length read waits for readiness (an in-memory duplex answers it at
    /// once, as TLS does: then the read waits with a buffer, as before).
    #[tokio::test]
    async fn a_reader_waits_for_bytes_without_a_buffer_and_releases_it_between_frames() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut peer = tokio::net::TcpStream::connect(listener.local_addr().expect("addr")).await.expect("connect");
        let (io, _) = listener.accept().await.expect("accept");
        let mut r = FrameReader::new(io, 1 << 20);
        nothing_yet(&mut r).await;
        assert_eq!(r.capacity(), 0, "waiting for a first frame holds no buffer");
        peer.write_all(&frame(100)).await.expect("write");
        assert_eq!(r.next().await.expect("read").map(|f| f.len()), Some(104));
        nothing_yet(&mut r).await;
        assert!(r.capacity() > 0, "the rest of the chunk is kept while the connection is busy");
        r.release();
        assert_eq!(r.capacity(), 0, "released between frames");
        peer.write_all(&frame(10)).await.expect("write");
        assert_eq!(r.next().await.expect("read").map(|f| f.len()), Some(14));
        drop(peer);
        assert!(r.next().await.expect("clean end").is_none());
    }

    #[tokio::test]
    async fn a_partial_frame_is_kept_through_a_release() {
        let (mut peer, io) = tokio::io::duplex(1 << 16);
        let mut r = FrameReader::new(io, 1 << 20);
        let f = frame(1000);
        peer.write_all(&f[..300]).await.expect("write");
        nothing_yet(&mut r).await;
        r.release();
        assert!(r.capacity() >= 1004, "the partial frame and room for the rest stay");
        peer.write_all(&f[300..]).await.expect("write");
        let got = r.next().await.expect("read").expect("frame");
        assert_eq!(&got[..], &f[..]);
    }

    #[tokio::test]
    async fn a_writer_releases_its_queue_only_when_empty() {
        let (io, mut peer) = tokio::io::duplex(1 << 16);
        let mut w = FrameWriter::new(io);
        w.push(Bytes::from_static(b"abc"));
        w.release();
        assert!(w.has_pending(), "queued bytes survive a release");
        w.flush().await.expect("flush");
        w.release();
        assert_eq!(w.queue.capacity(), 0);
        let mut got = [0u8; 3];
        tokio::io::AsyncReadExt::read_exact(&mut peer, &mut got).await.expect("read");
        assert_eq!(&got, b"abc");
    }
}

//! Where audit lines go: the `Sink` trait, one task per sink behind its own bounded queue (an
//! `Outlet` on the writer's side, which drops and counts when the queue is full), the counters
//! each sink exposes (`SinkStats`), and the sink over any byte stream (stdout, test pipes).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::cluster::producer::ProducerCounters;
use crate::error::Side;

/// Counters of one sink, updated as it works; cheap to read from anywhere.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Lines the sink wrote (for Kafka: acknowledged by the leader with acks=all).
    pub written: AtomicU64,
    /// Lines that never reached it: its queue was full, it refused them, or the proxy exited
    /// before they were written.
    pub dropped: AtomicU64,
    /// Lines accepted and not yet written or dropped (its queue, and the batch in hand).
    pub queued: AtomicU64,
    /// Writes that failed and were tried again (file and stdout sinks).
    pub retries: AtomicU64,
    /// The Kafka sink's producer: batches, retries, producer id re-initialisations.
    pub producer: Option<Arc<ProducerCounters>>,
}

/// Why a sink could not write a batch of lines.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The same lines are tried again after a back-off (a full disk, a closed pipe).
    #[error("{side} side: {reason}")]
    Retry { side: Side, reason: String },
    /// These lines cannot be written (a broker refusing them): they are counted as dropped.
    #[error("{side} side: {reason}")]
    GiveUp { side: Side, reason: String },
}

/// A destination for audit lines. Each sink runs in its own task, so a slow one delays nobody.
pub trait Sink: Send + 'static {
    /// Most lines, and about how many bytes, handed to one `write`.
    fn batch_limits(&self) -> (usize, usize) {
        (10_000, 1 << 20)
    }

    /// Writes `lines` (each ends with a newline). After `SinkError::Retry` the same lines come
    /// again: a sink that wrote part of them resumes where it stopped, writing none twice.
    fn write(&mut self, lines: &[Bytes]) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// The writer's end of one sink's queue.
pub(super) struct Outlet {
    pub(super) name: String,
    tx: mpsc::Sender<Bytes>,
    pub(super) stats: Arc<SinkStats>,
    /// Drops already reported in an `audit_dropped` line.
    pub(super) reported: u64,
}

impl Outlet {
    /// Queues a line without waiting; a full queue drops it and counts.
    pub(super) fn push(&self, line: Bytes) {
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.try_send(line).is_err() {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues a line, waiting for room until `deadline` (at exit only).
    pub(super) async fn push_by(&self, line: Bytes, deadline: tokio::time::Instant) {
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        if !matches!(tokio::time::timeout_at(deadline, self.tx.send(line)).await, Ok(Ok(()))) {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Starts the task of `sink` behind a queue of `capacity` lines.
pub(super) fn start<S: Sink>(name: String, sink: S, capacity: usize, stats: Arc<SinkStats>) -> (Outlet, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let task = tokio::spawn(run(sink, name.clone(), rx, stats.clone()));
    (Outlet { name, tx, stats, reported: 0 }, task)
}

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Takes batches off the queue and writes them until the queue is closed and empty.
async fn run<S: Sink>(mut sink: S, name: String, mut rx: mpsc::Receiver<Bytes>, stats: Arc<SinkStats>) {
    let (max_lines, max_bytes) = sink.batch_limits();
    while let Some(first) = rx.recv().await {
        let mut bytes = first.len();
        let mut batch = vec![first];
        while batch.len() < max_lines && bytes < max_bytes {
            match rx.try_recv() {
                Ok(line) => {
                    bytes += line.len();
                    batch.push(line);
                }
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        match write_until_done(&mut sink, &name, &batch, &stats).await {
            Ok(()) => stats.written.fetch_add(n, Ordering::Relaxed),
            Err(e) => {
                tracing::error!(sink = %name, lines = n, error = %e, "audit sink refused lines: dropped");
                stats.dropped.fetch_add(n, Ordering::Relaxed)
            }
        };
        stats.queued.fetch_sub(n, Ordering::Relaxed);
    }
}

async fn write_until_done<S: Sink>(sink: &mut S, name: &str, batch: &[Bytes], stats: &SinkStats) -> Result<(), SinkError> {
    let mut wait = BACKOFF_MIN;
    let mut failures = 0u32;
    loop {
        match sink.write(batch).await {
            Ok(()) => return Ok(()),
            Err(e @ SinkError::GiveUp { .. }) => return Err(e),
            Err(e) => {
                failures += 1;
                stats.retries.fetch_add(1, Ordering::Relaxed);
                if failures == 1 || failures.is_multiple_of(10) {
                    tracing::warn!(sink = %name, attempts = failures, error = %e, "audit sink cannot write; retrying the same lines");
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// A sink over a byte stream: stdout, or a pipe in tests.
pub struct WriterSink<W> {
    w: W,
    buf: Vec<u8>,
    /// Bytes of `buf` already written by an attempt that then failed.
    done: usize,
}

impl<W: AsyncWrite + Send + Unpin + 'static> WriterSink<W> {
    pub fn new(w: W) -> Self {
        Self { w, buf: Vec::new(), done: 0 }
    }
}

impl<W: AsyncWrite + Send + Unpin + 'static> Sink for WriterSink<W> {
    async fn write(&mut self, lines: &[Bytes]) -> Result<(), SinkError> {
        if self.done == 0 {
            self.buf.clear();
            lines.iter().for_each(|l| self.buf.extend_from_slice(l));
        }
        let failed = |e: std::io::Error| SinkError::Retry { side: Side::Proxy, reason: e.to_string() };
        while let Some(rest) = self.buf.get(self.done..).filter(|r| !r.is_empty()) {
            match self.w.write(rest).await {
                Ok(0) => return Err(failed(std::io::ErrorKind::WriteZero.into())),
                Ok(n) => self.done += n,
                Err(e) => return Err(failed(e)),
            }
        }
        self.w.flush().await.map_err(failed)?;
        self.done = 0;
        Ok(())
    }
}

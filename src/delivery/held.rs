//! One upgraded acks=0 request the proxy holds until every partition of it is acknowledged: the
//! stamped frame (shared with the write to the broker, not copied), where each partition's
//! records sit in it, and the budget it occupies. Dropped while a partition is still pending (the
//! session ended, the broker failed it), it hands itself to the background re-sender.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use super::stamp::Planned;
use crate::audit::Origin;
use crate::cluster::producer::{next_after, Next};
use crate::cluster::producer_id::Lease;
use crate::metrics::Metrics;
use crate::protocol::errors;

/// Where one partition's records stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Pending,
    Done,
    GivenUp,
}

/// One partition's records in a held request.
#[derive(Debug)]
pub struct Part {
    pub topic: String,
    pub partition: i32,
    pub range: Range<usize>,
    pub batches: Vec<(usize, i32)>,
    pub records: i64,
    pub state: State,
    pub last_error: Option<String>,
    /// Re-sends so far.
    pub attempts: u32,
    /// After the broker forgot the producer id: the records re-stamped (a copy) under a new one.
    pub restamped: Option<(Bytes, Arc<Lease>)>,
}

/// The budget a held request occupies: released, and the gauges lowered, when it is dropped.
pub struct Permits {
    pub(super) window: Option<OwnedSemaphorePermit>,
    pub(super) _connection: OwnedSemaphorePermit,
    pub(super) _global: OwnedSemaphorePermit,
    pub(super) bytes: i64,
    pub(super) metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Permits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permits").field("bytes", &self.bytes).finish()
    }
}

impl Drop for Permits {
    fn drop(&mut self) {
        self.metrics.delivery.held_requests.dec();
        self.metrics.delivery.held_bytes.add(-self.bytes);
    }
}

/// The request itself, as the re-sender works on it.
#[derive(Debug)]
pub struct Inner {
    /// Order of arrival: a connection's requests are re-sent in this order.
    pub id: u64,
    pub origin: Origin,
    pub frame: Bytes,
    pub parts: Vec<Part>,
    pub lease: Arc<Lease>,
    pub arrived: Instant,
    pub deadline: Instant,
    pub(super) permits: Permits,
}

impl Inner {
    pub fn pending(&self) -> impl Iterator<Item = &Part> {
        self.parts.iter().filter(|p| p.state == State::Pending)
    }

    /// The bytes to send for a part: its re-stamped copy, or its slice of the frame.
    pub fn records(&self, part: &Part) -> Bytes {
        match &part.restamped {
            Some((bytes, _)) => bytes.clone(),
            None => self.frame.slice(part.range.clone()),
        }
    }

    /// The connection's window slot is not needed once the connection is gone.
    pub fn leave_connection(&mut self) {
        self.permits.window = None;
    }
}

/// A held request in a session; see the module doc for what its drop does.
#[derive(Debug)]
pub struct Held {
    inner: Option<Box<Inner>>,
    orphans: mpsc::UnboundedSender<Box<Inner>>,
}

/// What the broker's answer to a held request leaves to do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Answer {
    /// Partitions to re-send (retriable errors).
    pub retry: usize,
    /// Partitions that failed for good: (part index, error code).
    pub failed: Vec<(usize, i16)>,
}

impl Held {
    pub(super) fn new(inner: Inner, orphans: mpsc::UnboundedSender<Box<Inner>>) -> Held {
        Held { inner: Some(Box::new(inner)), orphans }
    }

    pub fn inner(&self) -> Option<&Inner> {
        self.inner.as_deref()
    }

    pub fn inner_mut(&mut self) -> Option<&mut Inner> {
        self.inner.as_deref_mut()
    }

    /// Applies the broker's per-partition errors (partitions not named succeeded); parts that
    /// failed for good are marked given up, for the caller to account.
    pub fn answered(&mut self, errors: &[(&str, i32, i16, Option<&str>)]) -> Answer {
        let Some(inner) = self.inner.as_mut() else { return Answer::default() };
        let mut answer = Answer::default();
        for (i, part) in inner.parts.iter_mut().enumerate() {
            let error = errors.iter().find(|(t, p, ..)| *t == part.topic && *p == part.partition);
            let Some((_, _, code, message)) = error else {
                part.state = State::Done;
                continue;
            };
            part.last_error = Some(describe(*code, *message));
            match next_after(*code) {
                Next::Done => part.state = State::Done,
                Next::Fail => {
                    part.state = State::GivenUp;
                    answer.failed.push((i, *code));
                }
                Next::Refresh | Next::Retry | Next::Reinit => answer.retry += 1,
            }
        }
        answer
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            if inner.pending().next().is_some() {
                // The re-sender lives as long as the proxy; if it is gone the proxy is exiting.
                let _ = self.orphans.send(inner);
            }
        }
    }
}

/// A Produce error as the audit event and the log name it.
pub fn describe(code: i16, message: Option<&str>) -> String {
    format!("{} ({code}){}", errors::name(code), message.map(|m| format!(": {m}")).unwrap_or_default())
}

/// The parts of a request as planned, all pending.
pub fn parts_of(planned: Vec<Planned>) -> Vec<Part> {
    planned
        .into_iter()
        .map(|p| Part {
            topic: p.topic,
            partition: p.partition,
            range: p.range,
            batches: p.batches,
            records: p.records,
            state: State::Pending,
            last_error: None,
            attempts: 0,
            restamped: None,
        })
        .collect()
}

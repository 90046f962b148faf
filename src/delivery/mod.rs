//! Nothing lost for fire-and-forget producers: an acks=0 Produce the proxy upgraded is stamped
//! with the proxy's own producer id (`stamp`), held (`held`) until the broker acknowledges every
//! partition of it, and re-sent in the background (`resend`) after a lost connection or a
//! retriable error, to each partition's current leader, until `delivery_timeout_ms`. The broker
//! keeps one copy of a batch sent twice (same producer id and sequence). What is finally given
//! up is an `undelivered` audit event with its record count. Held bytes are bounded per
//! connection and overall: when full, the session stops reading its client.

pub mod held;
pub mod resend;
pub mod stamp;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::audit::{Event, Origin, Recorder};
use crate::cluster::producer_id::{Lease, PidPool};
use crate::cluster::{ClientSettings, ClusterClient, ClusterError};
use crate::metrics::Metrics;
use held::{parts_of, Held, Inner, Part, Permits, State};
use stamp::Planned;

/// Upgraded requests one connection may have held and unanswered at once: Kafka brokers
/// recognise a re-sent batch among the last five of a producer id on a partition, so a re-send
/// never falls outside that window.
pub const WINDOW: u32 = 5;

/// Why records were given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GiveUp {
    /// `delivery_timeout_ms` passed.
    Timeout,
    /// The broker refused them with a non-retriable error.
    Refused,
    /// The proxy was shutting down and its drain timeout passed.
    Shutdown,
}

impl GiveUp {
    pub fn as_str(self) -> &'static str {
        match self {
            GiveUp::Timeout => "delivery_timeout",
            GiveUp::Refused => "non_retriable_error",
            GiveUp::Shutdown => "proxy_shutdown",
        }
    }
}

/// The proxy's redelivery: producer ids, budgets, the re-sender's queue.
pub struct Deliveries {
    pool: Arc<PidPool>,
    pub(crate) client: ClusterClient,
    global: Arc<Semaphore>,
    per_connection: usize,
    orphans: mpsc::UnboundedSender<Box<Inner>>,
    /// Taken by `start`.
    orphans_rx: Mutex<Option<mpsc::UnboundedReceiver<Box<Inner>>>>,
    next_id: AtomicU64,
    pub(crate) audit: Recorder,
    pub(crate) metrics: Arc<Metrics>,
    /// Cancelled when the drain timeout passed: give up what is left now (sessions still
    /// waiting for a broker answer hand their held requests over first).
    pub abandon: CancellationToken,
}

impl Deliveries {
    /// Budgets in bytes (limits.redelivery_bytes_*); the proxy's own client for re-sends.
    pub fn new(settings: ClientSettings, per_connection: usize, total: usize, audit: Recorder, metrics: Arc<Metrics>) -> Arc<Deliveries> {
        let (tx, rx) = mpsc::unbounded_channel();
        Arc::new(Deliveries {
            pool: PidPool::new(),
            client: ClusterClient::new(settings, metrics.clone()),
            global: Arc::new(Semaphore::new(total.min(Semaphore::MAX_PERMITS))),
            per_connection,
            orphans: tx,
            orphans_rx: Mutex::new(Some(rx)),
            next_id: AtomicU64::new(0),
            audit,
            metrics,
            abandon: CancellationToken::new(),
        })
    }

    /// Starts the background re-sender (once; needs the runtime).
    pub fn start(self: &Arc<Self>) {
        if let Some(rx) = self.orphans_rx.lock().unwrap_or_else(|p| p.into_inner()).take() {
            tokio::spawn(resend::dispatch(self.clone(), rx));
        }
    }

    /// What one client connection holds: its producer id and budgets.
    pub fn session(self: &Arc<Self>) -> SessionHolds {
        SessionHolds { deliveries: self.clone(), lease: None, budgets: None }
    }

    pub fn abandoning(&self) -> bool {
        self.abandon.is_cancelled()
    }

    /// Waits until nothing is held or `deadline`; then gives up what is left (each an
    /// `undelivered` event) and waits a little for that to be recorded. Returns the requests
    /// still held at the deadline.
    pub async fn drain(&self, deadline: Instant) -> i64 {
        let held = || self.metrics.delivery.held_requests.get();
        while held() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = held();
        if left > 0 {
            tracing::warn!(requests = left, "drain timeout: giving up the upgraded acks=0 requests still held");
            self.abandon.cancel();
            let until = Instant::now() + Duration::from_secs(2);
            while held() > 0 && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        left
    }

    /// Gives up one part: counted, audited with its record count and last error; its producer
    /// id now has a sequence gap and is not used again.
    pub fn give_up(&self, inner: &mut Inner, index: usize, why: GiveUp) {
        let Some(part) = inner.parts.get_mut(index) else { return };
        part.state = State::GivenUp;
        inner.lease.poison();
        if let Some((_, lease)) = &part.restamped {
            lease.poison();
        }
        self.metrics.delivery.undelivered_records.add(u64::try_from(part.records).unwrap_or(0));
        let detail = serde_json::json!({
            "partition": part.partition,
            "records": part.records,
            "reason": why.as_str(),
            "last_error": part.last_error,
            "attempts": part.attempts,
            "held_ms": u64::try_from(inner.arrived.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
        tracing::warn!(topic = %part.topic, partition = part.partition, records = part.records, reason = why.as_str(), last_error = ?part.last_error, "upgraded acks=0 records given up");
        let key = format!("{}/{}/{}", part.topic, part.partition, inner.id);
        self.audit.record(Event::undelivered(&inner.origin, part.topic.clone(), detail).with_dedup(key));
    }

    /// Accounts the parts a broker answer failed for good (see `Held::answered`).
    pub fn failed(&self, held: &mut Held, failed: &[(usize, i16)]) {
        if let Some(inner) = held.inner_mut() {
            for (index, _) in failed {
                self.give_up(inner, *index, GiveUp::Refused);
            }
        }
    }

    /// A producer id for a connection's (or a re-send's) batches.
    pub(crate) async fn lease(&self) -> Result<Arc<Lease>, ClusterError> {
        self.pool.lease(&self.client).await
    }
}

/// What one client connection holds for redelivery.
pub struct SessionHolds {
    deliveries: Arc<Deliveries>,
    lease: Option<Arc<Lease>>,
    /// Made on the first hold: most connections never hold anything.
    budgets: Option<Budgets>,
}

/// A connection's window (`WINDOW` held requests) and byte budget.
struct Budgets {
    window: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
}

impl SessionHolds {
    /// The connection's producer id, leased on first use (boxed: InitProducerId through the
    /// proxy's own client is a future of kilobytes, needed once per connection).
    pub async fn lease(&mut self) -> Result<Arc<Lease>, ClusterError> {
        if let Some(l) = &self.lease {
            return Ok(l.clone());
        }
        let lease = Box::pin(self.deliveries.lease()).await?;
        self.lease = Some(lease.clone());
        Ok(lease)
    }

    /// The budget for a request of `bytes`, if free now (the caller flushes what it has queued
    /// for the broker before waiting: held requests must be able to complete).
    pub fn try_permits(&mut self, bytes: usize) -> Option<Permits> {
        let n = self.cost(bytes);
        let (window, budget) = self.budgets();
        let window = window.try_acquire_owned().ok()?;
        let connection = budget.try_acquire_many_owned(n).ok()?;
        let global = self.deliveries.global.clone().try_acquire_many_owned(n).ok()?;
        Some(self.permits(window, connection, global, bytes))
    }

    /// Waits for the budget of a request of `bytes`.
    pub async fn wait_permits(&mut self, bytes: usize) -> Option<Permits> {
        self.deliveries.metrics.delivery.backpressure.inc();
        let n = self.cost(bytes);
        let (window, budget) = self.budgets();
        let window = window.acquire_owned().await.ok()?;
        let connection = budget.acquire_many_owned(n).await.ok()?;
        let global = self.deliveries.global.clone().acquire_many_owned(n).await.ok()?;
        Some(self.permits(window, connection, global, bytes))
    }

    /// The connection's window and byte budget, made on first use.
    fn budgets(&mut self) -> (Arc<Semaphore>, Arc<Semaphore>) {
        let per_connection = self.deliveries.per_connection.min(Semaphore::MAX_PERMITS);
        let b = self.budgets.get_or_insert_with(|| Budgets {
            window: Arc::new(Semaphore::new(WINDOW as usize)),
            bytes: Arc::new(Semaphore::new(per_connection)),
        });
        (b.window.clone(), b.bytes.clone())
    }

    /// Permits for `bytes`: a frame larger than a budget takes all of it rather than waiting
    /// forever.
    fn cost(&self, bytes: usize) -> u32 {
        let cap = self.deliveries.per_connection.min(Semaphore::MAX_PERMITS);
        u32::try_from(bytes.clamp(1, cap)).unwrap_or(u32::MAX)
    }

    fn permits(
        &self,
        window: tokio::sync::OwnedSemaphorePermit,
        connection: tokio::sync::OwnedSemaphorePermit,
        global: tokio::sync::OwnedSemaphorePermit,
        bytes: usize,
    ) -> Permits {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        let metrics = self.deliveries.metrics.clone();
        metrics.delivery.held_requests.inc();
        metrics.delivery.held_bytes.add(bytes);
        Permits { window: Some(window), _connection: connection, _global: global, bytes, metrics }
    }

    /// Stamps `frame` (planned by `stamp::plan`) with `lease` in place and holds it: the bytes
    /// to forward (the same buffer, frozen) and the held request.
    #[allow(clippy::too_many_arguments)]
    pub fn hold(
        &self,
        mut frame: BytesMut,
        planned: Vec<Planned>,
        lease: Arc<Lease>,
        permits: Permits,
        origin: Origin,
        arrived: Instant,
        timeout: Duration,
    ) -> Result<(Bytes, Held), crate::protocol::records::RecordsError> {
        for p in &planned {
            let stamped = match frame.get_mut(p.range.clone()) {
                Some(set) => stamp::stamp_set(set, &p.batches, lease.id, lease.epoch, |n| lease.take(&p.topic, p.partition, n)),
                None => Err(crate::protocol::records::RecordsError::Short { len: 0 }),
            };
            if let Err(e) = stamped {
                // Sequences were taken and not sent: this id now has a gap.
                lease.poison();
                return Err(e);
            }
        }
        let frame = frame.freeze();
        let id = self.deliveries.next_id.fetch_add(1, Ordering::Relaxed);
        let inner =
            Inner { id, origin, frame: frame.clone(), parts: parts_of(planned), lease, arrived, deadline: arrived + timeout, permits };
        Ok((frame, Held::new(inner, self.deliveries.orphans.clone())))
    }
}

/// Parts still to deliver, for the re-sender's log lines.
pub fn pending_records(parts: &[Part]) -> i64 {
    parts.iter().filter(|p| p.state == State::Pending).map(|p| p.records).sum()
}

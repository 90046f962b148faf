//! The audit writer. Forwarding never waits for it: events go through a bounded queue to a writer
//! task, and an event that finds the queue full is dropped and counted. Repeats are aggregated,
//! once for every sink: the first event per key (client IP, client id, principal, rule, action,
//! event, and the detector's own `dedup`) is written at once; later ones within a window become
//! one `summary` line with a count. A key quiet for a whole window starts afresh. Every sink gets
//! the same lines through its own bounded queue: a slow or failing sink drops and counts only its
//! own, reported as an `audit_dropped` line naming it on the other sinks.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::Serialize;
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::file::FileSink;
use super::kafka::KafkaSink;
use super::sinks::{self, Outlet, Sink, SinkStats, WriterSink};
use super::Event;
use crate::cluster::ClientSettings;
use crate::config::{AuditSettings, SinkKind};
use crate::metrics::Metrics;

/// How long sinks may take, at exit, to write what they still hold.
pub const FLUSH_ON_EXIT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Key {
    ip: IpAddr,
    client_id: Option<String>,
    principal: Option<String>,
    rule: &'static str,
    action: &'static str,
    event: &'static str,
    dedup: Option<String>,
}

impl Key {
    fn of(e: &Event) -> Self {
        Self {
            ip: e.client_addr.ip(),
            client_id: e.client_id.clone(),
            principal: e.principal.clone(),
            rule: e.rule,
            action: e.action,
            event: e.event,
            dedup: e.dedup.clone(),
        }
    }
}

/// What is written for one line.
#[derive(Serialize)]
struct Line<'a> {
    /// The event schema (docs/audit.md, docs/audit-event.schema.json).
    schema: u32,
    time: String,
    kind: &'static str,
    #[serde(flatten)]
    event: &'a Event,
    /// Events this line stands for (1 for a first occurrence).
    count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    window_secs: Option<u64>,
}

/// Cheap to clone; shared by every session.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Event>,
    dropped: Arc<AtomicU64>,
    sinks: Arc<Vec<(String, Arc<SinkStats>)>>,
}

impl AuditLog {
    /// Records an event without ever waiting.
    pub fn record(&self, event: Event) {
        if self.tx.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events dropped before aggregation (the writer's own queue was full).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Each sink's name and counters, in configuration order.
    pub fn sink_stats(&self) -> Vec<(String, Arc<SinkStats>)> {
        self.sinks.as_ref().clone()
    }
}

/// Sinks for a writer, each started behind its own queue of `capacity` lines.
pub struct SinkSet {
    capacity: usize,
    outlets: Vec<Outlet>,
    tasks: Vec<(String, Arc<SinkStats>, JoinHandle<()>)>,
}

impl SinkSet {
    pub fn new(capacity: usize) -> Self {
        Self { capacity, outlets: Vec::new(), tasks: Vec::new() }
    }

    /// Starts `sink`'s task (inside a tokio runtime); returns its counters.
    pub fn add<S: Sink>(&mut self, name: impl Into<String>, sink: S) -> Arc<SinkStats> {
        self.add_with(name, sink, SinkStats::default())
    }

    fn add_with<S: Sink>(&mut self, name: impl Into<String>, sink: S, stats: SinkStats) -> Arc<SinkStats> {
        let stats = Arc::new(stats);
        let (outlet, task) = sinks::start(name.into(), sink, self.capacity, stats.clone());
        self.tasks.push((outlet.name.clone(), stats.clone(), task));
        self.outlets.push(outlet);
        stats
    }
}

/// The writer and sink tasks; `finish` writes pending summaries and lets sinks drain.
pub struct WriterHandle {
    /// Carries the moment by which everything must be written.
    stop: tokio::sync::oneshot::Sender<tokio::time::Instant>,
    task: JoinHandle<()>,
    sinks: Vec<(String, Arc<SinkStats>, JoinHandle<()>)>,
}

impl WriterHandle {
    pub async fn finish(self) {
        let deadline = tokio::time::Instant::now() + FLUSH_ON_EXIT;
        let _ = self.stop.send(deadline);
        let _ = self.task.await;
        for (name, stats, mut task) in self.sinks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                let lost = stats.queued.swap(0, Ordering::Relaxed);
                stats.dropped.fetch_add(lost, Ordering::Relaxed);
                tracing::error!(sink = %name, lines = lost, "audit sink did not finish writing before exit: lines lost");
            }
        }
    }
}

/// Starts the writer with the configured sinks. The Kafka sink uses its own client with the
/// proxy's upstream settings (TLS, SASL) and cluster `metrics`; it sends nothing before the
/// first line.
pub async fn start(cfg: &AuditSettings, cluster: &ClientSettings, metrics: &Arc<Metrics>) -> std::io::Result<(AuditLog, WriterHandle)> {
    let mut set = SinkSet::new(cfg.queue_capacity);
    for spec in &cfg.sinks {
        match &spec.kind {
            SinkKind::Stdout => {
                set.add(&spec.name, WriterSink::new(tokio::io::stdout()));
            }
            SinkKind::File(f) => {
                let sink = FileSink::open(f).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", f.path.display())))?;
                set.add(&spec.name, sink);
            }
            SinkKind::Kafka(k) => {
                let sink = KafkaSink::new(cluster, k, metrics.clone());
                let stats = SinkStats { producer: Some(sink.producer_counters()), ..SinkStats::default() };
                set.add_with(&spec.name, sink, stats);
            }
        }
    }
    Ok(spawn_sinks(set, cfg.queue_capacity, Duration::from_secs(cfg.window_secs)))
}

/// Starts a writer over one byte stream (tests use an in-memory pipe).
pub fn spawn(sink: Box<dyn AsyncWrite + Send + Unpin>, capacity: usize, window: Duration) -> (AuditLog, WriterHandle) {
    let mut set = SinkSet::new(capacity);
    set.add("stdout", WriterSink::new(sink));
    spawn_sinks(set, capacity, window)
}

/// Starts a writer over `sinks`, its event queue `capacity` long.
pub fn spawn_sinks(sinks: SinkSet, capacity: usize, window: Duration) -> (AuditLog, WriterHandle) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let (stop, stop_rx) = tokio::sync::oneshot::channel();
    let dropped = Arc::new(AtomicU64::new(0));
    let stats = sinks.tasks.iter().map(|(n, s, _)| (n.clone(), s.clone())).collect();
    let log = AuditLog { tx, dropped: dropped.clone(), sinks: Arc::new(stats) };
    let writer = Writer { outlets: sinks.outlets, window, dropped, reported_dropped: 0, keys: HashMap::new(), lines: Vec::new() };
    let task = tokio::spawn(writer.run(rx, stop_rx));
    (log, WriterHandle { stop, task, sinks: sinks.tasks })
}

struct Tally {
    /// Repeats since the last line for this key.
    count: u64,
    topics: BTreeSet<String>,
    /// Record counts of those repeats, summed (`SUMMED` fields of their details).
    totals: BTreeMap<&'static str, i64>,
    last: Event,
}

/// Detail fields that count records: a summary line adds them up over its repeats
/// (`detail.window_totals`), where its own detail is only the last repeat's.
const SUMMED: [&str; 3] = ["records", "records_dropped", "records_skipped"];

impl Tally {
    fn add(&mut self, ev: &Event) {
        for field in SUMMED {
            if let Some(n) = ev.detail.get(field).and_then(serde_json::Value::as_i64) {
                *self.totals.entry(field).or_default() += n;
            }
        }
    }
}

struct Writer {
    outlets: Vec<Outlet>,
    window: Duration,
    dropped: Arc<AtomicU64>,
    reported_dropped: u64,
    keys: HashMap<Key, Tally>,
    /// Lines made and not yet handed to the sinks, each with the sink it must skip.
    lines: Vec<(Bytes, Option<usize>)>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Event>, mut stop: tokio::sync::oneshot::Receiver<tokio::time::Instant>) {
        let mut tick = tokio::time::interval(self.window);
        tick.tick().await;
        let mut deadline = None;
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(ev) => {
                        self.accept(ev);
                        while let Ok(ev) = rx.try_recv() {
                            self.accept(ev);
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => self.close_window(),
                by = &mut stop => {
                    deadline = by.ok();
                    while let Ok(ev) = rx.try_recv() {
                        self.accept(ev);
                    }
                    break;
                }
            }
            self.fan_out();
        }
        // At exit there is time to wait for room in the queues, not forever.
        self.close_window();
        let deadline = deadline.unwrap_or_else(|| tokio::time::Instant::now() + FLUSH_ON_EXIT);
        for (line, skip) in std::mem::take(&mut self.lines) {
            for (i, o) in self.outlets.iter().enumerate() {
                if Some(i) != skip {
                    o.push_by(line.clone(), deadline).await;
                }
            }
        }
    }

    fn accept(&mut self, ev: Event) {
        let key = Key::of(&ev);
        match self.keys.get_mut(&key) {
            Some(p) => {
                p.count += 1;
                p.topics.extend(ev.topics.iter().cloned());
                p.add(&ev);
                p.last = ev;
            }
            None => {
                self.push_event("first", &ev, 1, None);
                self.keys.insert(key, Tally { count: 0, topics: BTreeSet::new(), totals: BTreeMap::new(), last: ev });
            }
        }
    }

    /// Summarises every key with repeats; forgets keys that had none this window; reports drops.
    fn close_window(&mut self) {
        let window = self.window.as_secs();
        let mut summaries = Vec::new();
        self.keys.retain(|_, p| {
            if p.count == 0 {
                return false;
            }
            let mut ev = p.last.clone();
            ev.topics = std::mem::take(&mut p.topics).into_iter().collect();
            let totals = std::mem::take(&mut p.totals);
            if let (false, Some(detail)) = (totals.is_empty(), ev.detail.as_object_mut()) {
                detail.insert("window_totals".into(), serde_json::json!(totals));
            }
            summaries.push((ev, p.count));
            p.count = 0;
            true
        });
        for (ev, count) in summaries {
            self.push_event("summary", &ev, count, Some(window));
        }
        self.report_drops();
    }

    fn report_drops(&mut self) {
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > self.reported_dropped {
            let n = dropped - self.reported_dropped;
            self.reported_dropped = dropped;
            tracing::warn!(dropped = n, "audit queue full: events dropped");
            self.lines.push((dropped_line(None, n), None));
        }
        for (i, o) in self.outlets.iter_mut().enumerate() {
            let dropped = o.stats.dropped.load(Ordering::Relaxed);
            if dropped <= o.reported {
                continue;
            }
            let n = dropped - o.reported;
            o.reported = dropped;
            tracing::warn!(sink = %o.name, dropped = n, "audit sink full or failing: lines dropped");
            self.lines.push((dropped_line(Some(&o.name), n), Some(i)));
        }
    }

    /// Hands every pending line to every sink (but the one a line must skip), never waiting.
    fn fan_out(&mut self) {
        for (line, skip) in self.lines.drain(..) {
            for (i, o) in self.outlets.iter().enumerate() {
                if Some(i) != skip {
                    o.push(line.clone());
                }
            }
        }
    }

    fn push_event(&mut self, kind: &'static str, ev: &Event, count: u64, window_secs: Option<u64>) {
        let line = Line { schema: SCHEMA, time: rfc3339(ev.at), kind, event: ev, count, window_secs };
        if let Ok(mut buf) = serde_json::to_vec(&line) {
            buf.push(b'\n');
            self.lines.push((Bytes::from(buf), None));
        }
    }
}

/// An `audit_dropped` line: events dropped before aggregation, or lines one sink dropped.
fn dropped_line(sink: Option<&str>, count: u64) -> Bytes {
    let mut line = serde_json::json!({
        "schema": SCHEMA, "time": rfc3339(SystemTime::now()), "kind": "audit_dropped", "event": "audit_dropped", "count": count,
    });
    if let (Some(sink), Some(obj)) = (sink, line.as_object_mut()) {
        obj.insert("sink".into(), sink.into());
    }
    let mut buf = line.to_string().into_bytes();
    buf.push(b'\n');
    Bytes::from(buf)
}

/// The version of the audit line format: raised only when a field is removed or retyped.
pub const SCHEMA: u32 = 1;

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

//! The audit writer. Forwarding never waits for it: events go through a bounded queue to a writer
//! task, and an event that finds the queue full is dropped and counted. Repeats are aggregated: the first event
//! per (client IP, client id, rule, action) is written at once; later ones within a window are
//! written as one `summary` line with a count. A key quiet for a whole window starts afresh.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::Event;
use crate::config::{Audit as AuditConfig, AuditSink};

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Key {
    ip: IpAddr,
    client_id: Option<String>,
    rule: &'static str,
    action: &'static str,
    event: &'static str,
}

impl Key {
    fn of(e: &Event) -> Self {
        Self { ip: e.client_addr.ip(), client_id: e.client_id.clone(), rule: e.rule, action: e.action, event: e.event }
    }
}

/// What is written for one line.
#[derive(Serialize)]
struct Line<'a> {
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
}

impl AuditLog {
    /// Records an event without ever waiting.
    pub fn record(&self, event: Event) {
        if self.tx.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The writer task; `finish` writes pending summaries and stops it.
pub struct WriterHandle {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl WriterHandle {
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Starts the writer for the configured sink.
pub async fn start(cfg: &AuditConfig) -> std::io::Result<(AuditLog, WriterHandle)> {
    let sink: Box<dyn AsyncWrite + Send + Unpin> = match (cfg.sink, &cfg.path) {
        (AuditSink::File, Some(path)) => Box::new(tokio::fs::OpenOptions::new().create(true).append(true).open(path).await?),
        _ => Box::new(tokio::io::stdout()),
    };
    Ok(spawn(sink, cfg.queue_capacity, Duration::from_secs(cfg.window_secs)))
}

/// Starts a writer over any sink (tests use an in-memory pipe).
pub fn spawn(sink: Box<dyn AsyncWrite + Send + Unpin>, capacity: usize, window: Duration) -> (AuditLog, WriterHandle) {
    let (tx, rx) = mpsc::channel(capacity);
    let (stop, stop_rx) = tokio::sync::oneshot::channel();
    let dropped = Arc::new(AtomicU64::new(0));
    let log = AuditLog { tx, dropped: dropped.clone() };
    let task = tokio::spawn(Writer { sink, window, dropped, reported_dropped: 0, keys: HashMap::new() }.run(rx, stop_rx));
    (log, WriterHandle { stop, task })
}

struct Tally {
    /// Repeats since the last line for this key.
    count: u64,
    topics: BTreeSet<String>,
    last: Event,
}

struct Writer {
    sink: Box<dyn AsyncWrite + Send + Unpin>,
    window: Duration,
    dropped: Arc<AtomicU64>,
    reported_dropped: u64,
    keys: HashMap<Key, Tally>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Event>, mut stop: tokio::sync::oneshot::Receiver<()>) {
        let mut tick = tokio::time::interval(self.window);
        tick.tick().await;
        let mut buf = Vec::new();
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(ev) => {
                        self.accept(ev, &mut buf);
                        while let Ok(ev) = rx.try_recv() {
                            self.accept(ev, &mut buf);
                        }
                    }
                    None => {
                        self.close_window(&mut buf);
                        self.write(&mut buf).await;
                        return;
                    }
                },
                _ = tick.tick() => self.close_window(&mut buf),
                _ = &mut stop => {
                    while let Ok(ev) = rx.try_recv() {
                        self.accept(ev, &mut buf);
                    }
                    self.close_window(&mut buf);
                    self.write(&mut buf).await;
                    return;
                }
            }
            self.write(&mut buf).await;
        }
    }

    fn accept(&mut self, ev: Event, buf: &mut Vec<u8>) {
        let key = Key::of(&ev);
        match self.keys.get_mut(&key) {
            Some(p) => {
                p.count += 1;
                p.topics.extend(ev.topics.iter().cloned());
                p.last = ev;
            }
            None => {
                push_line(buf, "first", &ev, 1, None);
                self.keys.insert(key, Tally { count: 0, topics: BTreeSet::new(), last: ev });
            }
        }
    }

    /// Summarises every key with repeats; forgets keys that had none this window.
    fn close_window(&mut self, buf: &mut Vec<u8>) {
        let window = self.window.as_secs();
        self.keys.retain(|_, p| {
            if p.count == 0 {
                return false;
            }
            let mut ev = p.last.clone();
            ev.topics = std::mem::take(&mut p.topics).into_iter().collect();
            push_line(buf, "summary", &ev, p.count, Some(window));
            p.count = 0;
            true
        });
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > self.reported_dropped {
            let n = dropped - self.reported_dropped;
            self.reported_dropped = dropped;
            tracing::warn!(dropped = n, "audit queue full: events dropped");
            let line = serde_json::json!({
                "time": rfc3339(SystemTime::now()), "kind": "audit_dropped", "event": "audit_dropped", "count": n,
            });
            buf.extend_from_slice(line.to_string().as_bytes());
            buf.push(b'\n');
        }
    }

    async fn write(&mut self, buf: &mut Vec<u8>) {
        if buf.is_empty() {
            return;
        }
        let res = async {
            self.sink.write_all(buf).await?;
            self.sink.flush().await
        }
        .await;
        if let Err(e) = res {
            tracing::error!(error = %e, "proxy could not write the audit log");
        }
        buf.clear();
    }
}

fn push_line(buf: &mut Vec<u8>, kind: &'static str, ev: &Event, count: u64, window_secs: Option<u64>) {
    let line = Line { time: rfc3339(ev.at), kind, event: ev, count, window_secs };
    if serde_json::to_writer(&mut *buf, &line).is_ok() {
        buf.push(b'\n');
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::io::AsyncReadExt;

    fn ev(client: &str, port: u16, action: &'static str, topic: &str) -> Event {
        Event {
            at: SystemTime::now(),
            event: "weak_acks",
            rule: "produce_acks",
            action,
            client_addr: SocketAddr::from(([10, 0, 0, 1], port)),
            client_id: Some(client.into()),
            principal: None,
            tls_subject: None,
            dedup: None,
            api: "Produce",
            api_version: 9,
            topics: vec![topic.into()],
            detail: serde_json::json!({"acks_from": 1, "acks_to": -1}),
        }
    }

    async fn lines(mut r: tokio::io::DuplexStream) -> Vec<serde_json::Value> {
        let mut s = String::new();
        r.read_to_string(&mut s).await.expect("read");
        s.lines().map(|l| serde_json::from_str(l).expect("json line")).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn first_at_once_then_one_summary_per_window() {
        let (w, r) = tokio::io::duplex(1 << 20);
        let (log, task) = spawn(Box::new(w), 100, Duration::from_secs(60));
        for i in 0..50u16 {
            log.record(ev("app", 1000 + i, "upgrade", if i % 2 == 0 { "a" } else { "b" }));
        }
        log.record(ev("other", 1, "upgrade", "a"));
        log.record(ev("app", 1, "reject", "a"));
        tokio::time::sleep(Duration::from_secs(61)).await;
        task.finish().await;
        drop(log);
        let lines = lines(r).await;
        let firsts: Vec<_> = lines.iter().filter(|l| l["kind"] == "first").collect();
        let summaries: Vec<_> = lines.iter().filter(|l| l["kind"] == "summary").collect();
        assert_eq!(firsts.len(), 3, "{lines:#?}");
        assert_eq!(summaries.len(), 1, "{lines:#?}");
        assert_eq!(summaries[0]["count"], 49);
        assert_eq!(summaries[0]["client_id"], "app");
        assert_eq!(summaries[0]["window_secs"], 60);
        assert_eq!(summaries[0]["topics"], serde_json::json!(["a", "b"]));
        let f = firsts[0];
        for key in ["time", "event", "rule", "action", "client_addr", "client_id", "api", "api_version", "topics", "detail"] {
            assert!(f.get(key).is_some(), "first line lacks {key}: {f}");
        }
        assert_eq!(f["detail"]["acks_from"], 1);
    }

    #[tokio::test]
    async fn full_queue_drops_and_counts_without_blocking() {
        let (w, r) = tokio::io::duplex(1 << 20);
        let (log, task) = spawn(Box::new(w), 1, Duration::from_secs(3600));
        for i in 0..10_000u16 {
            log.record(ev("flood", i, "upgrade", "t"));
        }
        assert!(log.dropped() > 0);
        let dropped = log.dropped();
        task.finish().await;
        drop(log);
        let lines = lines(r).await;
        let reported: u64 = lines.iter().filter(|l| l["kind"] == "audit_dropped").map(|l| l["count"].as_u64().unwrap_or(0)).sum();
        assert_eq!(reported, dropped);
    }
}

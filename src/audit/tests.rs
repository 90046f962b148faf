//! The writer: first/summary aggregation, the dedup key, drops counted and reported, and fan-out
//! to several sinks where one full sink drops only its own lines.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::sinks::{Sink, SinkError, SinkStats, WriterSink};
use super::*;

fn ev(client: &str, port: u16, action: &'static str, topic: &str) -> Event {
    Event {
        at: SystemTime::now(),
        event: "weak_acks",
        rule: "produce_acks",
        action,
        client_addr: SocketAddr::from(([10, 0, 0, 1], port)),
        client_id: Some(client.into()),
        principal: None,
        principal_unverified: false,
        tls_subject: None,
        api: "Produce",
        api_version: 9,
        topics: vec![topic.into()],
        detail: serde_json::json!({"acks_from": 1, "acks_to": -1}),
        dedup: None,
    }
}

async fn lines(mut r: tokio::io::DuplexStream) -> Vec<serde_json::Value> {
    let mut s = String::new();
    r.read_to_string(&mut s).await.expect("read");
    s.lines().map(|l| serde_json::from_str(l).expect("json line")).collect()
}

fn kinds<'a>(lines: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    lines.iter().filter(|l| l["kind"] == kind).collect()
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
    let (firsts, summaries) = (kinds(&lines, "first"), kinds(&lines, "summary"));
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
    assert!(f.get("dedup").is_none(), "dedup is never written: {f}");
    assert_eq!(f["detail"]["acks_from"], 1);
}

#[tokio::test(start_paused = true)]
async fn principal_and_dedup_keep_keys_apart() {
    let (w, r) = tokio::io::duplex(1 << 20);
    let (log, task) = spawn(Box::new(w), 100, Duration::from_secs(60));
    let with_principal = |p: &str| Event { principal: Some(p.into()), ..ev("app", 1, "audit", "t") };
    for _ in 0..3 {
        log.record(with_principal("User:alice"));
        log.record(with_principal("User:bob"));
        log.record(ev("app", 1, "audit", "t").with_dedup("t/10"));
        log.record(ev("app", 1, "audit", "t").with_dedup("t/19"));
    }
    tokio::time::sleep(Duration::from_secs(61)).await;
    task.finish().await;
    drop(log);
    let lines = lines(r).await;
    assert_eq!(kinds(&lines, "first").len(), 4, "{lines:#?}");
    let counts: Vec<u64> = kinds(&lines, "summary").iter().map(|l| l["count"].as_u64().unwrap_or(0)).collect();
    assert_eq!(counts, vec![2, 2, 2, 2], "{lines:#?}");
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
    let reported: u64 = kinds(&lines, "audit_dropped").iter().map(|l| l["count"].as_u64().unwrap_or(0)).sum();
    assert_eq!(reported, dropped);
}

/// A sink that never finishes a write: its cluster does not answer.
struct Stuck;

impl Sink for Stuck {
    async fn write(&mut self, _lines: &[Bytes]) -> Result<(), SinkError> {
        std::future::pending().await
    }
}

fn counts(s: &SinkStats) -> (u64, u64, u64) {
    (s.written.load(Ordering::Relaxed), s.dropped.load(Ordering::Relaxed), s.queued.load(Ordering::Relaxed))
}

#[tokio::test(start_paused = true)]
async fn every_sink_gets_the_same_lines_and_a_stuck_one_drops_only_its_own() {
    let ((w1, r1), (w2, r2)) = (tokio::io::duplex(1 << 22), tokio::io::duplex(1 << 22));
    let mut set = SinkSet::new(10);
    set.add("one", WriterSink::new(w1));
    set.add("stuck", Stuck);
    set.add("two", WriterSink::new(w2));
    let (log, task) = spawn_sinks(set, 1000, Duration::from_secs(60));
    // Distinct clients: 30 first lines, fed slowly enough that the healthy sinks keep up.
    for i in 0..30u16 {
        log.record(ev(&format!("c{i}"), i, "upgrade", "t"));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_secs(61)).await;
    let stats = log.sink_stats();
    let names: Vec<&str> = stats.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["one", "stuck", "two"]);
    let (one, stuck, two) = (counts(&stats[0].1), counts(&stats[1].1), counts(&stats[2].1));
    // The stuck sink holds one batch in hand and 10 queued lines; the rest were dropped.
    assert_eq!((stuck.0, stuck.1 + stuck.2), (0, 30), "{stuck:?}");
    assert!(stuck.1 >= 19, "{stuck:?}");
    assert_eq!((one.1, two.1), (0, 0), "healthy sinks drop nothing");
    task.finish().await;
    drop(log);
    let (l1, l2) = (lines(r1).await, lines(r2).await);
    assert_eq!(l1, l2, "both healthy sinks got the same lines");
    assert_eq!(kinds(&l1, "first").len(), 30);
    let reports = kinds(&l1, "audit_dropped");
    assert_eq!(reports.len(), 1, "{reports:#?}");
    assert_eq!(reports[0]["sink"], "stuck");
    assert_eq!(reports[0]["count"].as_u64(), Some(stuck.1));
    let (one, stuck_after) = (counts(&stats[0].1), counts(&stats[1].1));
    assert_eq!(one, (31, 0, 0), "30 firsts and the drop report");
    assert_eq!((stuck_after.0, stuck_after.1, stuck_after.2), (0, 30, 0), "what it held at exit counts as dropped");
}

#[test]
fn an_unverified_principal_is_marked_and_a_verified_one_is_not() {
    let verified = serde_json::to_value(Event { principal: Some("User:alice".into()), ..ev("app", 1, "audit", "t") }).expect("json");
    assert_eq!(verified["principal"], "User:alice");
    assert!(verified.get("principal_unverified").is_none(), "{verified}");
    let oauth = Event { principal: Some("User:svc".into()), principal_unverified: true, ..ev("app", 1, "audit", "t") };
    assert_eq!(serde_json::to_value(oauth).expect("json")["principal_unverified"], true);
}

#[tokio::test(start_paused = true)]
async fn a_summary_adds_up_the_record_counts_of_its_repeats() {
    let (w, r) = tokio::io::duplex(1 << 20);
    let (log, task) = spawn(Box::new(w), 100, Duration::from_secs(60));
    for (records, skipped) in [(5, 100), (7, 200), (11, 300)] {
        log.record(Event {
            detail: serde_json::json!({"records": records, "records_skipped": skipped, "note": "x"}),
            ..ev("app", 1, "audit", "t")
        });
    }
    tokio::time::sleep(Duration::from_secs(61)).await;
    task.finish().await;
    drop(log);
    let lines = lines(r).await;
    assert_eq!(kinds(&lines, "first")[0]["detail"]["records"], 5);
    let summary = kinds(&lines, "summary")[0].clone();
    assert_eq!(summary["count"], 2);
    assert_eq!(summary["detail"]["records"], 11, "the detail is the last repeat's");
    assert_eq!(summary["detail"]["window_totals"], serde_json::json!({"records": 18, "records_skipped": 500}), "{summary}");
}

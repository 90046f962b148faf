//! The proxy's metrics, every handle created once (per API key, listener, rule and action, error
//! code) so that counting on the hot path is an atomic add, never a lookup; and their rendering
//! as Prometheus text for the admin endpoint. Names and meanings: docs/metrics.md.

pub mod delivery;
pub mod family;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::ApiKey;

use family::labels;
pub use family::{Counter, Encoder, Gauge, Histogram};

/// API keys with their own series; any other key counts under the last slot ("Unknown").
const API_SLOTS: usize = 100;
/// Error codes with their own produce-error series (Kafka's stay below this).
const ERROR_SLOTS: usize = 140;

/// The counter slot of a Kafka error code: its own number, except UNKNOWN_SERVER_ERROR (-1),
/// which takes slot 0 (NONE is never counted as an error).
fn error_slot(code: i16) -> Option<usize> {
    match code {
        -1 => Some(0),
        0 => None,
        c => usize::try_from(c).ok(),
    }
}

/// The error code a counter slot stands for (the inverse of `error_slot`).
fn slot_error(slot: usize) -> i16 {
    match slot {
        0 => -1,
        s => i16::try_from(s).unwrap_or(-1),
    }
}

const RULES: [&str; 6] =
    ["produce_acks", "create_topics", "deletes.protected_topics", "metadata.block_auto_topic_creation", "idempotence", "detectors"];
const ACTIONS: [&str; 7] = ["upgrade", "reject", "audit", "exempt", "close", "allow", "give_up"];

/// One listener's connections.
#[derive(Debug, Default)]
pub struct ListenerMetrics {
    pub name: String,
    pub open: Gauge,
    pub accepted: Counter,
    pub refused: Counter,
}

/// Per API key, in and out of the proxy.
#[derive(Debug, Default)]
pub struct ApiMetrics {
    pub requests: Counter,
    pub request_bytes: Counter,
    pub response_bytes: Counter,
    /// Client frame in to response out.
    pub latency: Histogram,
}

impl ApiMetrics {
    /// One client request of `bytes` (its whole frame), forwarded or answered.
    pub fn request(&self, bytes: usize) {
        self.requests.inc();
        self.request_bytes.add(bytes as u64);
    }
}

/// What the detectors saw.
#[derive(Debug, Default)]
pub struct Detectors {
    pub produce_errors: Vec<Counter>,
    pub non_idempotent_batches: Counter,
    pub consumer_skips: Counter,
    pub records_skipped: Counter,
    pub offset_commits: Counter,
    pub auto_create_blocked: Counter,
    pub auto_create_prevented: Counter,
}

pub struct Metrics {
    apis: Vec<ApiMetrics>,
    pub inflight: Gauge,
    listeners: Mutex<Vec<Arc<ListenerMetrics>>>,
    verdicts: HashMap<(&'static str, &'static str), Counter>,
    pub detectors: Detectors,
    pub upstream_connect_failures: Counter,
    pub upstream_connect: Histogram,
    pub cluster_request_failures: Counter,
    /// 1 once discovery reached a broker and while not draining.
    pub ready: Gauge,
    pub delivery: delivery::DeliveryMetrics,
    /// Produce requests forwarded while still arriving (`limits.cut_through_bytes`).
    pub cut_through: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let verdicts = RULES.iter().flat_map(|r| ACTIONS.iter().map(move |a| ((*r, *a), Counter::default()))).collect();
        Metrics {
            apis: (0..API_SLOTS).map(|_| ApiMetrics::default()).collect(),
            inflight: Gauge::default(),
            listeners: Mutex::new(Vec::new()),
            verdicts,
            detectors: Detectors { produce_errors: (0..ERROR_SLOTS).map(|_| Counter::default()).collect(), ..Detectors::default() },
            upstream_connect_failures: Counter::default(),
            upstream_connect: Histogram::default(),
            cluster_request_failures: Counter::default(),
            ready: Gauge::default(),
            delivery: delivery::DeliveryMetrics::default(),
            cut_through: Counter::default(),
        }
    }

    /// The series of an API key (keys the proxy does not know share one).
    pub fn api(&self, api_key: i16) -> &ApiMetrics {
        let slot = usize::try_from(api_key).ok().filter(|k| *k < API_SLOTS - 1).unwrap_or(API_SLOTS - 1);
        self.apis.get(slot).or(self.apis.last()).unwrap_or_else(|| unreachable_api())
    }

    /// A listener's series, created when the listener is bound.
    pub fn listener(&self, name: &str) -> Arc<ListenerMetrics> {
        let m = Arc::new(ListenerMetrics { name: name.to_owned(), ..ListenerMetrics::default() });
        self.listeners.lock().unwrap_or_else(|p| p.into_inner()).push(m.clone());
        m
    }

    /// Counts one policy decision (an audit event).
    pub fn verdict(&self, rule: &str, action: &str) {
        if let Some(c) = self.verdicts.get(&(rule, action)) {
            c.inc();
        }
    }

    pub fn produce_error(&self, code: i16) {
        if let Some(c) = error_slot(code).and_then(|c| self.detectors.produce_errors.get(c)) {
            c.inc();
        }
    }

    pub fn connect_observed(&self, took: Duration, ok: bool) {
        if ok {
            self.upstream_connect.observe(took);
        } else {
            self.upstream_connect_failures.inc();
        }
    }

    /// The Prometheus text of every series; `extra` appends collectors owned elsewhere (audit).
    pub fn encode(&self, extra: &dyn Fn(&mut Encoder)) -> String {
        let mut e = Encoder::new();
        self.encode_connections(&mut e);
        self.encode_apis(&mut e);
        self.encode_policy(&mut e);
        self.encode_upstream(&mut e);
        self.delivery.encode(&mut e);
        extra(&mut e);
        e.family("kdp_build_info", "gauge", "The proxy's version.");
        e.sample("kdp_build_info", &labels(&[("version", env!("CARGO_PKG_VERSION"))]), 1);
        e.finish()
    }

    fn encode_connections(&self, e: &mut Encoder) {
        let listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner()).clone();
        type Pick = fn(&ListenerMetrics) -> u64;
        let families: [(&str, &str, &str, Pick); 3] = [
            ("kdp_connections_open", "gauge", "Client connections open, per listener.", |l| u64::try_from(l.open.get()).unwrap_or(0)),
            ("kdp_connections_accepted_total", "counter", "Client connections accepted, per listener.", |l| l.accepted.get()),
            (
                "kdp_connections_refused_total",
                "counter",
                "Client connections refused by limits.max_connections[_per_source], per listener.",
                |l| l.refused.get(),
            ),
        ];
        for (name, kind, help, pick) in families {
            e.family(name, kind, help);
            for l in &listeners {
                e.sample(name, &labels(&[("listener", &l.name)]), pick(l));
            }
        }
        e.single("kdp_inflight_requests", "gauge", "Requests forwarded to brokers and not yet answered.", self.inflight.get());
        e.single(
            "kdp_cut_through_requests_total",
            "counter",
            "Produce requests forwarded while still arriving (limits.cut_through_bytes).",
            self.cut_through.get(),
        );
    }

    fn encode_apis(&self, e: &mut Encoder) {
        let used: Vec<(String, &ApiMetrics)> =
            self.apis.iter().enumerate().filter(|(_, m)| m.requests.get() > 0).map(|(k, m)| (api_label(k), m)).collect();
        type Pick = fn(&ApiMetrics) -> u64;
        let families: [(&str, &str, Pick); 3] = [
            ("kdp_requests_total", "Client requests, per API.", |m| m.requests.get()),
            ("kdp_request_bytes_total", "Bytes of client requests (frames with their size prefix), per API.", |m| m.request_bytes.get()),
            ("kdp_response_bytes_total", "Bytes of responses sent to clients, per API.", |m| m.response_bytes.get()),
        ];
        for (name, help, pick) in families {
            e.family(name, "counter", help);
            for (api, m) in &used {
                e.sample(name, &labels(&[("api", api)]), pick(m));
            }
        }
        e.family(
            "kdp_request_duration_seconds",
            "histogram",
            "From a client request's last byte in to its response's first byte out, per API: what the proxy and the broker together take.",
        );
        for (api, m) in &used {
            e.histogram("kdp_request_duration_seconds", &[("api", api)], &m.latency);
        }
    }

    fn encode_policy(&self, e: &mut Encoder) {
        e.family("kdp_policy_verdicts_total", "counter", "Policy decisions (audit events), per rule and action.");
        for rule in RULES {
            for action in ACTIONS {
                if let Some(c) = self.verdicts.get(&(rule, action)).filter(|c| c.get() > 0) {
                    e.sample("kdp_policy_verdicts_total", &labels(&[("rule", rule), ("action", action)]), c.get());
                }
            }
        }
        let d = &self.detectors;
        e.family("kdp_produce_errors_total", "counter", "Partition errors in Produce responses, per error.");
        for (code, c) in d.produce_errors.iter().enumerate().filter(|(_, c)| c.get() > 0) {
            let name = crate::protocol::errors::name(slot_error(code));
            e.sample("kdp_produce_errors_total", &labels(&[("error", &name)]), c.get());
        }
        let singles: [(&str, &str, &Counter); 6] = [
            (
                "kdp_non_idempotent_batches_total",
                "Record batches produced without a producer id (not idempotent).",
                &d.non_idempotent_batches,
            ),
            (
                "kdp_consumer_skips_total",
                "Fetches answered OFFSET_OUT_OF_RANGE below the log start: records deleted before this consumer read them.",
                &d.consumer_skips,
            ),
            (
                "kdp_consumer_skipped_records_total",
                "Records those consumers skipped (log start offset minus fetch offset).",
                &d.records_skipped,
            ),
            ("kdp_offset_commits_total", "OffsetCommit requests seen (audited when detectors.offset_commits is on).", &d.offset_commits),
            (
                "kdp_auto_topic_creation_blocked_total",
                "Metadata requests whose allow_auto_topic_creation the proxy cleared.",
                &d.auto_create_blocked,
            ),
            (
                "kdp_auto_topic_creation_prevented_total",
                "Topics a blocked Metadata request named that the cluster does not have: creations prevented (audited).",
                &d.auto_create_prevented,
            ),
        ];
        for (name, help, c) in singles {
            e.single(name, "counter", help, c.get());
        }
    }

    fn encode_upstream(&self, e: &mut Encoder) {
        e.single(
            "kdp_upstream_connect_failures_total",
            "counter",
            "Failed connections to brokers (client sessions and the proxy's own).",
            self.upstream_connect_failures.get(),
        );
        e.family("kdp_upstream_connect_duration_seconds", "histogram", "Time to connect to a broker (TCP, and TLS when on).");
        e.histogram("kdp_upstream_connect_duration_seconds", &[], &self.upstream_connect);
        e.single(
            "kdp_cluster_request_failures_total",
            "counter",
            "The proxy's own requests to the cluster that failed.",
            self.cluster_request_failures.get(),
        );
        e.single(
            "kdp_ready",
            "gauge",
            "1 when the proxy is ready for traffic (discovery reached a broker, not draining).",
            self.ready.get(),
        );
    }
}

/// The audit writer's own counters, which it owns (the binary passes this as `encode`'s `extra`):
/// kept here so that every family the endpoint can export is written by this crate.
pub fn encode_audit(e: &mut Encoder, dropped: u64, sinks: &[SinkSample]) {
    e.single("kdp_audit_events_dropped_total", "counter", "Audit events dropped because the writer's queue was full.", dropped);
    type Pick = fn(&SinkSample) -> u64;
    let families: [(&str, &str, &str, Pick); 4] = [
        ("kdp_audit_sink_lines_written_total", "counter", "Audit lines a sink wrote (Kafka: acknowledged with acks=all), per sink.", |s| {
            s.written
        }),
        (
            "kdp_audit_sink_lines_dropped_total",
            "counter",
            "Audit lines that never reached a sink (its queue full, refused, or not written by exit), per sink.",
            |s| s.dropped,
        ),
        ("kdp_audit_sink_lines_queued", "gauge", "Audit lines accepted by a sink and not yet written or dropped, per sink.", |s| s.queued),
        ("kdp_audit_sink_retries_total", "counter", "Failed writes a sink tried again, per sink.", |s| s.retries),
    ];
    for (name, kind, help, pick) in families {
        e.family(name, kind, help);
        for s in sinks {
            e.sample(name, &labels(&[("sink", &s.name)]), pick(s));
        }
    }
}

/// One audit sink's counters as /metrics shows them (read from the audit writer's `SinkStats`).
#[derive(Clone, Debug, Default)]
pub struct SinkSample {
    pub name: String,
    pub written: u64,
    pub dropped: u64,
    pub queued: u64,
    pub retries: u64,
}

fn api_label(slot: usize) -> String {
    match i16::try_from(slot).ok().filter(|_| slot < API_SLOTS - 1).and_then(|k| ApiKey::try_from(k).ok()) {
        Some(k) => crate::protocol::versions::api_name(k as i16).to_owned(),
        None => "Unknown".to_owned(),
    }
}

#[cold]
fn unreachable_api() -> &'static ApiMetrics {
    static EMPTY: std::sync::OnceLock<ApiMetrics> = std::sync::OnceLock::new();
    EMPTY.get_or_init(ApiMetrics::default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_appear_once_used_and_unknown_keys_share_one() {
        let m = Metrics::new();
        m.api(0).request(100);
        m.api(0).latency.observe(Duration::from_micros(300));
        m.api(12_345).requests.inc();
        m.api(-1).requests.inc();
        m.verdict("produce_acks", "upgrade");
        m.verdict("no-such-rule", "upgrade");
        m.produce_error(10);
        m.produce_error(-1);
        m.produce_error(0);
        let l = m.listener("bootstrap");
        l.open.inc();
        l.accepted.inc();
        let text = m.encode(&|e| {
            e.family("kdp_extra_total", "counter", "test");
            e.sample("kdp_extra_total", "", 7);
        });
        for want in [
            "kdp_requests_total{api=\"Produce\"} 1\n",
            "kdp_requests_total{api=\"Unknown\"} 2\n",
            "kdp_request_bytes_total{api=\"Produce\"} 100\n",
            "kdp_request_duration_seconds_bucket{api=\"Produce\",le=\"0.0005\"} 1\n",
            "kdp_policy_verdicts_total{rule=\"produce_acks\",action=\"upgrade\"} 1\n",
            "kdp_produce_errors_total{error=\"MessageTooLarge\"} 1\n",
            "kdp_produce_errors_total{error=\"UnknownServerError\"} 1\n",
            "kdp_connections_open{listener=\"bootstrap\"} 1\n",
            "kdp_extra_total 7\n",
            "# TYPE kdp_request_duration_seconds histogram\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        assert!(!text.contains("api=\"Fetch\""), "unused APIs have no series");
        assert!(!text.contains("error=\"None\""), "NONE is not an error");
    }
}

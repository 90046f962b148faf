//! The audit stream: one JSON line per decision the proxy took about a weak request. Each kind of
//! event has one constructor here, so its name, rule and shape live in one place; `writer` gets
//! the lines out without ever slowing traffic, to every configured sink (`sinks`: the trait,
//! queues and counters, stdout; `file` with rotation; `kafka`, the proxy's own producer).

pub mod file;
pub mod kafka;
pub mod sinks;
pub mod writer;

use std::net::SocketAddr;
use std::time::SystemTime;

use serde::Serialize;

pub use sinks::{Sink, SinkError, SinkStats};
pub use writer::{spawn, spawn_sinks, start, AuditLog, SinkSet, WriterHandle};

/// Where decisions go: counted per rule and action (metrics), then queued for the audit writer.
#[derive(Clone)]
pub struct Recorder {
    log: AuditLog,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl Recorder {
    pub fn new(log: AuditLog, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Recorder {
        Recorder { log, metrics }
    }

    pub fn record(&self, event: Event) {
        self.metrics.verdict(event.rule, event.action);
        self.log.record(event);
    }

    /// The writer's queue, for its own counters.
    pub fn log(&self) -> &AuditLog {
        &self.log
    }
}

/// One decision, as it happened.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    #[serde(skip)]
    pub at: SystemTime,
    /// What was seen, e.g. `weak_acks`, `unseen_produce_error`.
    pub event: &'static str,
    /// The policy rule that judged it.
    pub rule: &'static str,
    /// What the proxy did: upgrade, reject, audit, exempt, close, allow.
    pub action: &'static str,
    pub client_addr: SocketAddr,
    pub client_id: Option<String>,
    /// The authenticated principal (`User:alice`); absent when unauthenticated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// True when `principal` is a name the proxy read but could not verify (OAUTHBEARER's
    /// `sub`: only the broker checked the token); written only then.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub principal_unverified: bool,
    /// The client certificate's subject, when one was presented.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_subject: Option<String>,
    pub api: &'static str,
    pub api_version: i16,
    pub topics: Vec<String>,
    pub detail: serde_json::Value,
    /// A detector's own discriminator for aggregation (e.g. topic and error code), so repeats
    /// are counted per (client, principal, ..., dedup); never written.
    #[serde(skip)]
    pub dedup: Option<String>,
}

/// Who sent the request an event is about, and which request it was.
#[derive(Clone, Debug)]
pub struct Origin {
    pub client_addr: SocketAddr,
    pub client_id: Option<String>,
    pub principal: Option<String>,
    pub principal_unverified: bool,
    pub tls_subject: Option<String>,
    pub api: &'static str,
    pub api_version: i16,
}

/// The rule under which topic-shape changes (creates, config changes, partitions) are judged.
pub const TOPIC_RULES: &str = "create_topics";

/// The "rule" of what detectors see: nothing was changed, only recorded.
pub const DETECTORS: &str = "detectors";

impl Event {
    fn new(
        o: &Origin,
        event: &'static str,
        rule: &'static str,
        action: &'static str,
        topics: Vec<String>,
        detail: serde_json::Value,
    ) -> Event {
        Event {
            at: SystemTime::now(),
            event,
            rule,
            action,
            client_addr: o.client_addr,
            client_id: o.client_id.clone(),
            principal: o.principal.clone(),
            principal_unverified: o.principal_unverified,
            tls_subject: o.tls_subject.clone(),
            api: o.api,
            api_version: o.api_version,
            topics,
            detail,
            dedup: None,
        }
    }

    /// The same event, aggregated apart from others that differ only in `dedup`.
    pub fn with_dedup(mut self, dedup: impl Into<String>) -> Event {
        self.dedup = Some(dedup.into());
        self
    }

    /// A Produce with acks 0 or 1, and what the acks rule did with it.
    pub fn weak_acks(o: &Origin, action: &'static str, topics: Vec<String>, detail: serde_json::Value) -> Event {
        Event::new(o, "weak_acks", crate::policy::produce::RULE, action, topics, detail)
    }

    /// The broker failed an upgraded acks=0 Produce: the client can never see the error, so the
    /// proxy closed the connection as a broker would.
    pub fn unseen_produce_error(o: &Origin, topics: Vec<String>, detail: serde_json::Value) -> Event {
        Event::new(o, "unseen_produce_error", crate::policy::produce::RULE, "close", topics, detail)
    }

    /// Records of an upgraded acks=0 request the proxy held and finally gave up (delivery
    /// timeout, a non-retriable error, shutdown): lost, and the producer believes them sent.
    pub fn undelivered(o: &Origin, topic: String, detail: serde_json::Value) -> Event {
        Event::new(o, "undelivered", crate::policy::produce::RULE, "give_up", vec![topic], detail)
    }

    /// A Metadata request would have auto-created these topics (the cluster does not have them);
    /// the proxy switched creation off. Requests naming only existing topics are just counted.
    pub fn auto_topic_creation(o: &Origin, missing: Vec<String>) -> Event {
        let detail = serde_json::json!({ "allow_auto_topic_creation": { "from": true, "to": false }, "outcome": "topics not created" });
        Event::new(o, "auto_topic_creation", "metadata.block_auto_topic_creation", "upgrade", missing, detail)
    }

    /// A partition error in a Produce response: deduplicated per topic and error.
    pub fn produce_error(o: &Origin, topic: String, partition: i32, error_code: i16, message: Option<String>) -> Event {
        let name = crate::protocol::errors::name(error_code);
        let detail = serde_json::json!({ "partition": partition, "error_code": error_code, "error": name, "error_message": message });
        let key = format!("{topic}/{error_code}");
        Event::new(o, "produce_error", DETECTORS, "audit", vec![topic], detail).with_dedup(key)
    }

    /// Record batches without a producer id (not idempotent), and what the rule did.
    pub fn non_idempotent(o: &Origin, action: &'static str, topics: Vec<String>, detail: serde_json::Value) -> Event {
        Event::new(o, "non_idempotent_producer", crate::policy::idempotence::RULE, action, topics, detail)
    }

    /// A consumer asked for records retention had already deleted: it will skip them.
    pub fn consumer_skip(o: &Origin, topic: String, detail: serde_json::Value) -> Event {
        let key = topic.clone();
        Event::new(o, "consumer_skip", DETECTORS, "audit", vec![topic], detail).with_dedup(key)
    }

    /// An offset a consumer group committed (with `detectors.offset_commits`).
    pub fn offset_commit(o: &Origin, topic: String, detail: serde_json::Value) -> Event {
        let key = format!("{topic}/{}", detail.get("partition").unwrap_or(&serde_json::Value::Null));
        Event::new(o, "offset_commit", DETECTORS, "audit", vec![topic], detail).with_dedup(key)
    }

    pub fn create_topic(o: &Origin, action: &'static str, topic: String, detail: serde_json::Value) -> Event {
        Event::new(o, "create_topic", TOPIC_RULES, action, vec![topic], detail)
    }

    pub fn delete_topic(o: &Origin, action: &'static str, topic: String, reason: Option<String>) -> Event {
        Event::new(o, "delete_topic", crate::policy::deletes::RULE, action, vec![topic], serde_json::json!({ "reason": reason }))
    }

    pub fn delete_records(o: &Origin, action: &'static str, topic: String, detail: serde_json::Value) -> Event {
        Event::new(o, "delete_records", crate::policy::deletes::RULE, action, vec![topic], detail)
    }

    pub fn alter_config(o: &Origin, action: &'static str, topics: Vec<String>, detail: serde_json::Value) -> Event {
        Event::new(o, "alter_config", TOPIC_RULES, action, topics, detail)
    }

    pub fn create_partitions(o: &Origin, action: &'static str, topic: String, detail: serde_json::Value) -> Event {
        Event::new(o, "create_partitions", TOPIC_RULES, action, vec![topic], detail)
    }

    pub fn reassign_partitions(o: &Origin, action: &'static str, topic: String, detail: serde_json::Value) -> Event {
        Event::new(o, "reassign_partitions", TOPIC_RULES, action, vec![topic], detail)
    }
}

#[cfg(test)]
mod tests;

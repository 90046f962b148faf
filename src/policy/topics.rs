//! Topic shape rules for CreateTopics: replication factor, min.insync.replicas, RF above minISR,
//! unclean leader election, retention floors and a max.message.bytes ceiling. Values a request
//! leaves unset are judged at the broker's default, because that is what the topic would get.

use super::rules::{Action, CreateTopics};

/// The broker-side defaults a topic inherits for what its request leaves unset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrokerDefaults {
    pub replication_factor: i16,
    pub min_insync_replicas: i32,
    pub unclean_leader_election: bool,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub max_message_bytes: i64,
}

impl BrokerDefaults {
    /// Apache Kafka's shipped defaults, used for whatever the cluster does not report.
    pub const KAFKA: BrokerDefaults = BrokerDefaults {
        replication_factor: 1,
        min_insync_replicas: 1,
        unclean_leader_election: false,
        retention_ms: 7 * 24 * 3_600_000,
        retention_bytes: -1,
        max_message_bytes: 1_048_588,
    };
}

/// Broker defaults from DescribeConfigs entries; whatever is missing or unparsable keeps Kafka's
/// shipped default. log.retention.ms wins over .minutes, which wins over .hours, as in Kafka.
pub fn defaults_from(entries: &[(String, Option<String>)]) -> BrokerDefaults {
    let get = |k: &str| entries.iter().find(|(n, _)| n == k).and_then(|(_, v)| v.as_deref()).map(str::trim);
    let mut d = BrokerDefaults::KAFKA;
    if let Some(v) = get("default.replication.factor").and_then(|v| v.parse().ok()) {
        d.replication_factor = v;
    }
    if let Some(v) = get("min.insync.replicas").and_then(|v| v.parse().ok()) {
        d.min_insync_replicas = v;
    }
    if let Some(v) = get("unclean.leader.election.enable") {
        d.unclean_leader_election = v.eq_ignore_ascii_case("true");
    }
    let ms = get("log.retention.ms").and_then(|v| v.parse::<i64>().ok());
    let minutes = get("log.retention.minutes").and_then(|v| v.parse::<i64>().ok()).map(|m| m.saturating_mul(60_000));
    let hours = get("log.retention.hours").and_then(|v| v.parse::<i64>().ok()).map(|h| h.saturating_mul(3_600_000));
    if let Some(v) = ms.or(minutes).or(hours) {
        d.retention_ms = v;
    }
    if let Some(v) = get("log.retention.bytes").and_then(|v| v.parse().ok()) {
        d.retention_bytes = v;
    }
    if let Some(v) = get("message.max.bytes").and_then(|v| v.parse().ok()) {
        d.max_message_bytes = v;
    }
    d
}

/// What the rules need from one CreateTopics entry.
#[derive(Clone, Debug)]
pub struct NewTopic<'a> {
    pub name: &'a str,
    /// As requested; -1 asks for the broker default.
    pub replication_factor: i16,
    /// Smallest replica list among explicit assignments, when the request has any.
    pub assigned_replicas: Option<usize>,
    pub configs: &'a [(String, Option<String>)],
}

impl NewTopic<'_> {
    fn config(&self, key: &str) -> Option<&str> {
        self.configs.iter().rev().find(|(k, _)| k == key).and_then(|(_, v)| v.as_deref())
    }
}

/// A rewrite an `upgrade` makes to the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    ReplicationFactor(i16),
    SetConfig(&'static str, String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub rule: &'static str,
    pub action: Action,
    /// Names the value found and the value required.
    pub message: String,
    pub change: Option<Change>,
}

pub const RF: &str = "create_topics.replication_factor";
pub const MIN_ISR: &str = "create_topics.min_insync_replicas";
pub const RF_ABOVE_ISR: &str = "create_topics.rf_above_min_isr";
pub const UNCLEAN: &str = "create_topics.no_unclean_leader_election";
pub const RETENTION_MS: &str = "create_topics.min_retention_ms";
pub const RETENTION_BYTES: &str = "create_topics.min_retention_bytes";
pub const MAX_MESSAGE_BYTES: &str = "create_topics.max_message_bytes";

/// Judges one topic; the findings are empty when it is durable as requested.
pub fn judge(rules: &CreateTopics, defaults: &BrokerDefaults, t: &NewTopic<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let rf = replication_factor(rules, defaults, t, &mut out);
    let isr = min_insync_replicas(rules, defaults, t, &mut out);
    rf_above_min_isr(rules, rf, isr, &mut out);
    unclean_leader_election(rules, defaults, t, &mut out);
    retention_floors(rules, defaults, t, &mut out);
    max_message_bytes(rules, defaults, t, &mut out);
    out
}

fn finding(out: &mut Vec<Finding>, rule: &'static str, action: Action, message: String, change: Option<Change>) {
    out.push(Finding { rule, action, message, change });
}

/// Explicit assignments decide the replication factor; -1 means the broker default. Returns the
/// factor the topic will have (after an upgrade).
fn replication_factor(rules: &CreateTopics, defaults: &BrokerDefaults, t: &NewTopic<'_>, out: &mut Vec<Finding>) -> i16 {
    let (rf, rf_desc) = match (t.assigned_replicas, t.replication_factor) {
        (Some(n), _) => (i16::try_from(n).unwrap_or(i16::MAX), format!("replica assignment with {n} replicas")),
        (None, -1) => (defaults.replication_factor, format!("replication factor -1 (broker default {})", defaults.replication_factor)),
        (None, n) => (n, format!("replication factor {n}")),
    };
    let Some(min) = rules.replication_factor.value.filter(|min| rf < *min) else { return rf };
    match rules.replication_factor.action {
        Action::Upgrade if t.assigned_replicas.is_none() => {
            finding(out, RF, Action::Upgrade, format!("{rf_desc} raised to {min}"), Some(Change::ReplicationFactor(min)));
            min
        }
        Action::Upgrade => {
            let message = format!("{rf_desc} is below the required {min} (explicit assignments are not rewritten)");
            finding(out, RF, Action::Upgrade.without_rewrite(), message, None);
            rf
        }
        action => {
            finding(out, RF, action, format!("{rf_desc} is below the required {min}"), None);
            rf
        }
    }
}

/// min.insync.replicas; a value that does not parse is left for the broker to refuse (returned
/// as `i32::MAX`, which no other rule judges). Returns the value the topic will have.
fn min_insync_replicas(rules: &CreateTopics, defaults: &BrokerDefaults, t: &NewTopic<'_>, out: &mut Vec<Finding>) -> i32 {
    let isr_set = t.config("min.insync.replicas").map(|v| v.trim().parse::<i32>());
    let isr = match isr_set {
        Some(Ok(v)) => v,
        Some(Err(_)) => return i32::MAX,
        None => defaults.min_insync_replicas,
    };
    let Some(min) = rules.min_insync_replicas.value.filter(|min| isr < *min) else { return isr };
    let desc = match isr_set {
        Some(_) => format!("min.insync.replicas {isr}"),
        None => format!("min.insync.replicas unset (broker default {isr})"),
    };
    match rules.min_insync_replicas.action {
        Action::Upgrade => {
            let change = Change::SetConfig("min.insync.replicas", min.to_string());
            finding(out, MIN_ISR, Action::Upgrade, format!("{desc} raised to {min}"), Some(change));
            min
        }
        action => {
            finding(out, MIN_ISR, action, format!("{desc} is below the required {min}"), None);
            isr
        }
    }
}

fn rf_above_min_isr(rules: &CreateTopics, rf: i16, isr: i32, out: &mut Vec<Finding>) {
    if rules.rf_above_min_isr.enabled && isr != i32::MAX && i32::from(rf) <= isr {
        let message =
            format!("replication factor {rf} must exceed min.insync.replicas {isr}: with one replica down every write would fail");
        finding(out, RF_ABOVE_ISR, rules.rf_above_min_isr.action, message, None);
    }
}

fn unclean_leader_election(rules: &CreateTopics, defaults: &BrokerDefaults, t: &NewTopic<'_>, out: &mut Vec<Finding>) {
    let unclean = match t.config("unclean.leader.election.enable") {
        Some(v) => v.trim().eq_ignore_ascii_case("true"),
        None => defaults.unclean_leader_election,
    };
    if !rules.no_unclean_leader_election.enabled || !unclean {
        return;
    }
    let message = "unclean.leader.election.enable=true lets an out-of-sync replica become leader and drop acknowledged records";
    match rules.no_unclean_leader_election.action {
        Action::Upgrade => {
            let change = Change::SetConfig("unclean.leader.election.enable", "false".into());
            finding(out, UNCLEAN, Action::Upgrade, format!("{message}; set to false"), Some(change));
        }
        action => finding(out, UNCLEAN, action, message.into(), None),
    }
}

fn retention_floors(rules: &CreateTopics, defaults: &BrokerDefaults, t: &NewTopic<'_>, out: &mut Vec<Finding>) {
    for (rule, key, bound, default) in [
        (RETENTION_MS, "retention.ms", &rules.min_retention_ms, defaults.retention_ms),
        (RETENTION_BYTES, "retention.bytes", &rules.min_retention_bytes, defaults.retention_bytes),
    ] {
        let Some(floor) = bound.value else { continue };
        let (value, set) = match t.config(key).map(|v| v.trim().parse::<i64>()) {
            Some(Ok(v)) => (v, true),
            Some(Err(_)) => continue,
            None => (default, false),
        };
        // -1 is unlimited retention, which no floor forbids.
        if value == -1 || value >= floor {
            continue;
        }
        let desc = if set { format!("{key} {value}") } else { format!("{key} unset (broker default {value})") };
        match bound.action {
            Action::Upgrade => {
                finding(out, rule, Action::Upgrade, format!("{desc} raised to {floor}"), Some(Change::SetConfig(key, floor.to_string())))
            }
            action => finding(out, rule, action, format!("{desc} is below the required {floor}: slow consumers would lose data"), None),
        }
    }
}

fn max_message_bytes(rules: &CreateTopics, defaults: &BrokerDefaults, t: &NewTopic<'_>, out: &mut Vec<Finding>) {
    let Some(ceiling) = rules.max_message_bytes.value else { return };
    let value = t.config("max.message.bytes").and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(defaults.max_message_bytes);
    if value > ceiling {
        let message = format!("max.message.bytes {value} is above the allowed {ceiling}");
        finding(out, MAX_MESSAGE_BYTES, rules.max_message_bytes.action, message, None);
    }
}

/// The error message a client sees for a rejected topic.
pub fn rejection_message(topic: &str, findings: &[Finding]) -> String {
    let reasons: Vec<String> =
        findings.iter().filter(|f| f.action == Action::Reject).map(|f| format!("{}: {}", f.rule, f.message)).collect();
    format!("durability proxy refused topic '{topic}': {}", reasons.join("; "))
}

#[cfg(test)]
mod tests;

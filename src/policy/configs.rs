//! Config changes judged by the config a resource would have afterwards, not by the delta:
//! legacy AlterConfigs replaces a resource's whole override set (a key left out reverts to the
//! default), IncrementalAlterConfigs applies SET / DELETE / APPEND / SUBTRACT to the current one.
//! Topic resources are judged with the topic rules (minus replication factor, which a config
//! change cannot alter); broker resources by what a topic created with the resulting broker
//! defaults would get. Config changes are never rewritten: an `upgrade` rule refuses instead.

use super::rules::{Action, CreateTopics};
use super::topics::{self, BrokerDefaults, Finding, NewTopic};

pub const SET: i8 = 0;
pub const DELETE: i8 = 1;
pub const APPEND: i8 = 2;
pub const SUBTRACT: i8 = 3;

pub type Entries = Vec<(String, Option<String>)>;

/// (config name, operation, value) as IncrementalAlterConfigs carries it.
pub type Ops = Vec<(String, i8, Option<String>)>;

/// The override set after an incremental change (ops: name, operation, value).
pub fn incremental(current: &[(String, Option<String>)], ops: &[(String, i8, Option<String>)]) -> Entries {
    let mut out: Entries = current.to_vec();
    for (name, op, value) in ops {
        let pos = out.iter().position(|(k, _)| k == name);
        let list = |v: Option<&Option<String>>| -> Vec<String> {
            v.and_then(|v| v.as_deref())
                .map(|s| s.split(',').map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect())
                .unwrap_or_default()
        };
        let new = match *op {
            SET => value.clone(),
            DELETE => {
                if let Some(i) = pos {
                    out.remove(i);
                }
                continue;
            }
            APPEND | SUBTRACT => {
                let mut items = list(pos.and_then(|i| out.get(i)).map(|(_, v)| v));
                for item in list(Some(value)) {
                    if *op == APPEND && !items.contains(&item) {
                        items.push(item);
                    } else if *op == SUBTRACT {
                        items.retain(|i| *i != item);
                    }
                }
                Some(items.join(","))
            }
            _ => continue,
        };
        match pos {
            Some(i) => {
                if let Some(slot) = out.get_mut(i) {
                    slot.1 = new;
                }
            }
            None => out.push((name.clone(), new)),
        }
    }
    out
}

/// The rules as they apply to config changes: no replication-factor rule, and refusal where a
/// create would have been upgraded.
fn for_changes(rules: &CreateTopics, rf_known: bool) -> CreateTopics {
    let mut r = rules.clone();
    r.replication_factor.value = None;
    r.min_insync_replicas.action = r.min_insync_replicas.action.without_rewrite();
    r.no_unclean_leader_election.action = r.no_unclean_leader_election.action.without_rewrite();
    r.min_retention_ms.action = r.min_retention_ms.action.without_rewrite();
    r.min_retention_bytes.action = r.min_retention_bytes.action.without_rewrite();
    r.rf_above_min_isr.enabled &= rf_known;
    r
}

/// A topic whose overrides would be `overrides` (broker defaults fill the rest). `rf` is the
/// topic's current replication factor, when known.
pub fn judge_topic(
    rules: &CreateTopics,
    defaults: &BrokerDefaults,
    name: &str,
    rf: Option<i16>,
    overrides: &[(String, Option<String>)],
) -> Vec<Finding> {
    let r = for_changes(rules, rf.is_some());
    topics::judge(&r, defaults, &NewTopic { name, replication_factor: rf.unwrap_or(i16::MAX), assigned_replicas: None, configs: overrides })
}

/// A broker (or the cluster default) whose configs would be `resulting`: judged by what a topic
/// created with those defaults would get. The replication factor rule applies here
/// (default.replication.factor).
pub fn judge_broker(rules: &CreateTopics, resulting: &[(String, Option<String>)]) -> Vec<Finding> {
    let defaults = topics::defaults_from(resulting);
    let mut r = for_changes(rules, true);
    r.replication_factor = rules.replication_factor;
    r.replication_factor.action = r.replication_factor.action.without_rewrite();
    topics::judge(&r, &defaults, &NewTopic { name: "", replication_factor: -1, assigned_replicas: None, configs: &[] })
}

/// The config keys each rule reads, at topic and at broker level.
fn rule_keys(rule: &str) -> &'static [&'static str] {
    match rule {
        topics::RF => &["default.replication.factor"],
        topics::MIN_ISR => &["min.insync.replicas"],
        topics::RF_ABOVE_ISR => &["min.insync.replicas", "default.replication.factor"],
        topics::UNCLEAN => &["unclean.leader.election.enable"],
        topics::RETENTION_MS => &["retention.ms", "log.retention.ms", "log.retention.minutes", "log.retention.hours"],
        topics::RETENTION_BYTES => &["retention.bytes", "log.retention.bytes"],
        topics::MAX_MESSAGE_BYTES => &["max.message.bytes", "message.max.bytes"],
        _ => &[],
    }
}

/// The findings that block a change. A rule whose keys the change touches must hold afterwards
/// (legacy AlterConfigs touches every key: it replaces the whole set). A rule it does not touch
/// may not get worse: an already weak resource can still take unrelated changes, but no new or
/// deeper weakness (a finding not present, identically, before).
pub fn blocking(before: &[Finding], after: Vec<Finding>, touched: &[String], replaces_all: bool) -> Vec<Finding> {
    after
        .into_iter()
        .filter(|f| {
            replaces_all
                || rule_keys(f.rule).iter().any(|k| touched.iter().any(|t| t == k))
                || !before.iter().any(|b| b.rule == f.rule && b.message == f.message)
        })
        .collect()
}

/// The error message for a refused resource.
pub fn rejection_message(resource: &str, findings: &[Finding]) -> String {
    let reasons: Vec<String> =
        findings.iter().filter(|f| f.action == Action::Reject).map(|f| format!("{}: {}", f.rule, f.message)).collect();
    format!("durability proxy refused the config change to {resource}: {}", reasons.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(pairs: &[(&str, &str)]) -> Entries {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned()))).collect()
    }

    fn op(name: &str, op: i8, value: Option<&str>) -> (String, i8, Option<String>) {
        (name.to_owned(), op, value.map(str::to_owned))
    }

    #[test]
    fn incremental_operations() {
        let cur = e(&[("min.insync.replicas", "2"), ("cleanup.policy", "delete")]);
        let cases: Vec<(Ops, Entries)> = vec![
            (vec![op("min.insync.replicas", SET, Some("1"))], e(&[("min.insync.replicas", "1"), ("cleanup.policy", "delete")])),
            (vec![op("min.insync.replicas", DELETE, None)], e(&[("cleanup.policy", "delete")])),
            (
                vec![op("retention.ms", SET, Some("5"))],
                e(&[("min.insync.replicas", "2"), ("cleanup.policy", "delete"), ("retention.ms", "5")]),
            ),
            (vec![op("cleanup.policy", APPEND, Some("compact"))], e(&[("min.insync.replicas", "2"), ("cleanup.policy", "delete,compact")])),
            (vec![op("cleanup.policy", SUBTRACT, Some("delete"))], e(&[("min.insync.replicas", "2"), ("cleanup.policy", "")])),
            (vec![op("absent", DELETE, None)], cur.clone()),
        ];
        for (ops, want) in cases {
            assert_eq!(incremental(&cur, &ops), want, "{ops:?}");
        }
    }

    #[test]
    fn topic_changes_are_judged_on_the_result() {
        let rules = CreateTopics::default();
        let d = BrokerDefaults::KAFKA;
        let rule_names = |f: Vec<Finding>| f.into_iter().map(|f| (f.rule, f.action)).collect::<Vec<_>>();
        // Lowering minISR to 1, or deleting it (broker default 1), breaks the rule.
        assert_eq!(
            rule_names(judge_topic(&rules, &d, "t", Some(3), &e(&[("min.insync.replicas", "1")]))),
            vec![(topics::MIN_ISR, Action::Reject)]
        );
        assert_eq!(rule_names(judge_topic(&rules, &d, "t", Some(3), &[])), vec![(topics::MIN_ISR, Action::Reject)]);
        // Raising minISR to the replication factor leaves no slack.
        assert_eq!(
            rule_names(judge_topic(&rules, &d, "t", Some(3), &e(&[("min.insync.replicas", "3")]))),
            vec![(topics::RF_ABOVE_ISR, Action::Reject)]
        );
        // An existing RF-1 topic does not block an unrelated safe change (RF is not a config).
        assert_eq!(rule_names(judge_topic(&rules, &d, "t", None, &e(&[("min.insync.replicas", "2"), ("retention.ms", "1")]))), vec![]);
        // Unclean election: refused even where a create would be upgraded.
        let mut up = rules.clone();
        up.no_unclean_leader_election.action = Action::Upgrade;
        assert_eq!(
            rule_names(judge_topic(&up, &d, "t", Some(3), &e(&[("min.insync.replicas", "2"), ("unclean.leader.election.enable", "true")]))),
            vec![(topics::UNCLEAN, Action::Reject)]
        );
    }

    #[test]
    fn touched_rules_must_hold_untouched_ones_may_not_worsen() {
        let rules = CreateTopics::default();
        let keys = |k: &[&str]| k.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let rules_of = |f: Vec<Finding>| f.into_iter().map(|f| f.rule).collect::<Vec<_>>();
        // The cluster already has weak defaults (Kafka's: RF 1, minISR 1).
        let before = judge_broker(&rules, &[]);
        assert!(!before.is_empty());
        // An unrelated change passes despite them.
        let after = judge_broker(&rules, &e(&[("log.cleaner.threads", "2")]));
        assert!(blocking(&before, after, &keys(&["log.cleaner.threads"]), false).is_empty());
        // Turning unclean election on is refused.
        let after = judge_broker(&rules, &e(&[("unclean.leader.election.enable", "true")]));
        assert_eq!(rules_of(blocking(&before, after, &keys(&["unclean.leader.election.enable"]), false)), vec![topics::UNCLEAN]);
        // minISR 2 cluster-wide with default RF 1 would leave new topics unwritable.
        let after = judge_broker(&rules, &e(&[("min.insync.replicas", "2")]));
        assert_eq!(rules_of(blocking(&before, after, &keys(&["min.insync.replicas"]), false)), vec![topics::RF_ABOVE_ISR]);
        // Legacy AlterConfigs replaces everything: every finding counts.
        let after = judge_broker(&rules, &e(&[("log.cleaner.threads", "2")]));
        assert_eq!(
            rules_of(blocking(&before, after, &keys(&["log.cleaner.threads"]), true)),
            vec![topics::RF, topics::MIN_ISR, topics::RF_ABOVE_ISR]
        );
        // A topic whose current minISR the cluster does not report: deleting it must still hold.
        let d = BrokerDefaults::KAFKA;
        let before = judge_topic(&rules, &d, "t", Some(3), &[]);
        let after = judge_topic(&rules, &d, "t", Some(3), &[]);
        assert_eq!(rules_of(blocking(&before, after, &keys(&["min.insync.replicas"]), false)), vec![topics::MIN_ISR]);
        // A retention change on a topic that is already weak on minISR passes.
        let before = judge_topic(&rules, &d, "t", Some(3), &e(&[("min.insync.replicas", "1")]));
        let after = judge_topic(&rules, &d, "t", Some(3), &e(&[("min.insync.replicas", "1"), ("retention.ms", "5")]));
        assert!(blocking(&before, after, &keys(&["retention.ms"]), false).is_empty());
    }

    #[test]
    fn broker_changes_are_judged_by_what_new_topics_would_get() {
        let rules = CreateTopics::default();
        let good = e(&[("default.replication.factor", "3"), ("min.insync.replicas", "2")]);
        assert!(judge_broker(&rules, &good).is_empty());
        let f = judge_broker(&rules, &e(&[("default.replication.factor", "3"), ("min.insync.replicas", "1")]));
        assert_eq!(f.iter().map(|f| f.rule).collect::<Vec<_>>(), vec![topics::MIN_ISR]);
        let f = judge_broker(
            &rules,
            &e(&[("default.replication.factor", "1"), ("min.insync.replicas", "2"), ("unclean.leader.election.enable", "true")]),
        );
        assert_eq!(f.iter().map(|f| f.rule).collect::<Vec<_>>(), vec![topics::RF, topics::RF_ABOVE_ISR, topics::UNCLEAN]);
        let msg = rejection_message("broker 111", &f);
        assert!(msg.starts_with("durability proxy refused the config change to broker 111: create_topics.replication_factor: replication factor -1 (broker default 1)"), "{msg}");
    }
}

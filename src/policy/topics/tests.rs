//! Table tests: request in, findings out, for every rule and action.

use super::*;
use crate::policy::rules::{Bound, Check};

fn rules() -> CreateTopics {
    CreateTopics::default()
}

fn with(f: impl FnOnce(&mut CreateTopics)) -> CreateTopics {
    let mut r = rules();
    f(&mut r);
    r
}

fn cfg(pairs: &[(&str, &str)]) -> Vec<(String, Option<String>)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned()))).collect()
}

/// (rule, action, change) of each finding, for compact comparison.
fn summary(f: &[Finding]) -> Vec<(&'static str, Action, Option<Change>)> {
    f.iter().map(|f| (f.rule, f.action, f.change.clone())).collect()
}

#[test]
fn table() {
    use Action::*;
    let d = BrokerDefaults::KAFKA;
    let d3 = BrokerDefaults { replication_factor: 3, min_insync_replicas: 2, ..d };
    let good = cfg(&[("min.insync.replicas", "2")]);
    let upgrade_all = with(|r| {
        r.replication_factor.action = Upgrade;
        r.min_insync_replicas.action = Upgrade;
        r.no_unclean_leader_election.action = Upgrade;
    });
    type Case<'a> = (
        &'a str,
        CreateTopics,
        BrokerDefaults,
        i16,
        Option<usize>,
        Vec<(String, Option<String>)>,
        Vec<(&'static str, Action, Option<Change>)>,
    );
    let cases: Vec<Case> = vec![
        ("durable as requested", rules(), d, 3, None, good.clone(), vec![]),
        ("rf 1 rejected", rules(), d, 1, None, good.clone(), vec![(RF, Reject, None), (RF_ABOVE_ISR, Reject, None)]),
        ("rf -1 uses broker default 1", rules(), d, -1, None, good.clone(), vec![(RF, Reject, None), (RF_ABOVE_ISR, Reject, None)]),
        ("rf -1 with a durable broker default", rules(), d3, -1, None, vec![], vec![]),
        ("assignments decide rf", rules(), d, 3, Some(2), good.clone(), vec![(RF, Reject, None), (RF_ABOVE_ISR, Reject, None)]),
        ("missing minISR gets broker default 1", rules(), d, 3, None, vec![], vec![(MIN_ISR, Reject, None)]),
        ("explicit minISR 1", rules(), d, 3, None, cfg(&[("min.insync.replicas", "1")]), vec![(MIN_ISR, Reject, None)]),
        ("rf == minISR", rules(), d, 3, None, cfg(&[("min.insync.replicas", "3")]), vec![(RF_ABOVE_ISR, Reject, None)]),
        (
            "unclean true",
            rules(),
            d,
            3,
            None,
            cfg(&[("min.insync.replicas", "2"), ("unclean.leader.election.enable", "true")]),
            vec![(UNCLEAN, Reject, None)],
        ),
        (
            "unclean false is fine",
            rules(),
            d,
            3,
            None,
            cfg(&[("min.insync.replicas", "2"), ("unclean.leader.election.enable", "false")]),
            vec![],
        ),
        (
            "upgrade makes everything explicit",
            upgrade_all.clone(),
            d,
            -1,
            None,
            cfg(&[("unclean.leader.election.enable", "TRUE")]),
            vec![
                (RF, Upgrade, Some(Change::ReplicationFactor(3))),
                (MIN_ISR, Upgrade, Some(Change::SetConfig("min.insync.replicas", "2".into()))),
                (UNCLEAN, Upgrade, Some(Change::SetConfig("unclean.leader.election.enable", "false".into()))),
            ],
        ),
        (
            "upgrade cannot rewrite assignments",
            upgrade_all.clone(),
            d,
            -1,
            Some(1),
            good.clone(),
            vec![(RF, Reject, None), (RF_ABOVE_ISR, Reject, None)],
        ),
        (
            "audit only records",
            with(|r| r.replication_factor.action = Audit),
            d,
            2,
            None,
            cfg(&[("min.insync.replicas", "1")]),
            vec![(RF, Audit, None), (MIN_ISR, Reject, None)],
        ),
        (
            "rule switched off",
            with(|r| {
                r.replication_factor.value = None;
                r.rf_above_min_isr = Check { enabled: false, action: Reject };
            }),
            d,
            1,
            None,
            good.clone(),
            vec![],
        ),
        ("unparseable minISR left to the broker", rules(), d, 3, None, cfg(&[("min.insync.replicas", "two")]), vec![]),
        (
            "retention floor, explicit and default",
            with(|r| r.min_retention_ms = Bound { value: Some(86_400_000), action: Reject }),
            BrokerDefaults { retention_ms: 3_600_000, ..d },
            3,
            None,
            good.clone(),
            vec![(RETENTION_MS, Reject, None)],
        ),
        (
            "infinite retention passes a floor",
            with(|r| r.min_retention_ms = Bound { value: Some(86_400_000), action: Reject }),
            d,
            3,
            None,
            cfg(&[("min.insync.replicas", "2"), ("retention.ms", "-1")]),
            vec![],
        ),
        (
            "retention.bytes upgraded",
            with(|r| r.min_retention_bytes = Bound { value: Some(1 << 30), action: Upgrade }),
            d,
            3,
            None,
            cfg(&[("min.insync.replicas", "2"), ("retention.bytes", "1000")]),
            vec![(RETENTION_BYTES, Upgrade, Some(Change::SetConfig("retention.bytes", (1i64 << 30).to_string())))],
        ),
        (
            "message size ceiling",
            with(|r| r.max_message_bytes = Bound { value: Some(1_000_000), action: Reject }),
            d,
            3,
            None,
            good.clone(),
            vec![(MAX_MESSAGE_BYTES, Reject, None)],
        ),
    ];
    for (name, rules, defaults, rf, assigned, configs, want) in cases {
        let t = NewTopic { name: "t", replication_factor: rf, assigned_replicas: assigned, configs: &configs };
        assert_eq!(summary(&judge(&rules, &defaults, &t)), want, "{name}");
    }
}

#[test]
fn messages_name_rule_value_and_requirement() {
    let configs = cfg(&[("min.insync.replicas", "1")]);
    let t = NewTopic { name: "orders", replication_factor: 1, assigned_replicas: None, configs: &configs };
    let findings = judge(&rules(), &BrokerDefaults::KAFKA, &t);
    let msg = rejection_message("orders", &findings);
    assert_eq!(
        msg,
        "durability proxy refused topic 'orders': create_topics.replication_factor: replication factor 1 is below the required 3; \
         create_topics.min_insync_replicas: min.insync.replicas 1 is below the required 2; \
         create_topics.rf_above_min_isr: replication factor 1 must exceed min.insync.replicas 1: with one replica down every write would fail"
    );
}

#[test]
fn broker_defaults_from_describe_configs() {
    let e = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned()))).collect::<Vec<_>>();
    assert_eq!(defaults_from(&[]), BrokerDefaults::KAFKA, "tansu reports nothing: Kafka's defaults");
    let d = defaults_from(&e(&[
        ("default.replication.factor", "3"),
        ("min.insync.replicas", "2"),
        ("log.retention.hours", "24"),
        ("unclean.leader.election.enable", "TRUE"),
    ]));
    assert_eq!((d.replication_factor, d.min_insync_replicas, d.retention_ms, d.unclean_leader_election), (3, 2, 86_400_000, true));
    let d = defaults_from(&e(&[("log.retention.ms", "1000"), ("log.retention.hours", "24"), ("min.insync.replicas", "x")]));
    assert_eq!((d.retention_ms, d.min_insync_replicas), (1000, 1), "ms wins; junk keeps the default");
}

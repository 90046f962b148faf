//! Replica counts for new partitions (CreatePartitions with explicit assignments) and
//! reassignments: no partition may get fewer replicas than the replication-factor rule requires.
//! Assignments are never rewritten, so an `upgrade` rule refuses.

use super::rules::{Action, Policies};
use super::scope::{self, Subject};
use super::topics::RF;

/// The replica count a rule demands for `topic` and what a shortfall does: None when no rule
/// applies (exempt client or topic, or no replication-factor floor).
pub fn minimum(p: &Policies, subject: &Subject<'_>, topic: &str) -> Option<(i16, Action)> {
    let rule = &p.create_topics;
    if rule.exempt.client_exempt(subject) || rule.exempt.topic_exempt(topic) {
        return None;
    }
    let (rules, _) = scope::topic_rules(p, &Subject { topic: Some(topic), ..*subject });
    let min = rules.replication_factor.value?;
    Some((min, rules.replication_factor.action.without_rewrite()))
}

/// A finding for `replicas` against a minimum: the action and what to tell the client, or None
/// when the count is enough (or no rule applies). `what` names the operation ("replica
/// assignment", "reassignment to").
pub fn judge(replicas: usize, min: Option<(i16, Action)>, what: &str) -> Option<(Action, String)> {
    let (min, action) = min?;
    let short = i64::try_from(replicas).unwrap_or(i64::MAX) < i64::from(min);
    short.then(|| (action, format!("{RF}: {what} {replicas} replicas is below the required {min}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_counts_are_findings_and_upgrade_refuses() {
        type Case = (usize, Option<(i16, Action)>, Option<Action>);
        let cases: &[Case] = &[
            (1, Some((3, Action::Reject)), Some(Action::Reject)),
            (3, Some((3, Action::Reject)), None),
            (2, Some((3, Action::Audit)), Some(Action::Audit)),
            (1, None, None),
        ];
        for (n, min, want) in cases {
            assert_eq!(judge(*n, *min, "replica assignment with").map(|(a, _)| a), *want, "{n} {min:?}");
        }
        let (_, msg) = judge(1, Some((3, Action::Reject)), "replica assignment with").expect("finding");
        assert_eq!(msg, "create_topics.replication_factor: replica assignment with 1 replicas is below the required 3");
        let cfg = crate::config::parse(
            "listen:\n  advertised_host: p\n  bootstrap_port: 1\n  broker_port_base: 100\nupstream:\n  bootstrap_servers: ['b:1']\n\
             policies:\n  create_topics:\n    replication_factor: {value: 3, action: upgrade}\n    exempt: {topics: ['tmp.*']}\n",
        )
        .expect("config");
        let s = Subject { client_id: Some("ops"), principal: None, peer: "192.0.2.1".parse().expect("ip"), topic: None };
        assert_eq!(minimum(&cfg.policies, &s, "orders"), Some((3, Action::Reject)), "upgrade refuses: assignments are not rewritten");
        assert_eq!(minimum(&cfg.policies, &s, "tmp.x"), None);
    }
}

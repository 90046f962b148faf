//! The producer acks rule: acks 0 and 1 acknowledge before the write is replicated, so a leader
//! failure loses acknowledged (or never-acknowledged) records. Enforce acks=all (-1).

use std::net::IpAddr;

use crate::config::{Action, ProduceAcksRule};

/// Everything the rule looks at, from the request header and the Produce body walk.
#[derive(Clone, Copy, Debug)]
pub struct AcksInput<'a> {
    pub acks: i16,
    pub client_id: Option<&'a str>,
    pub peer: IpAddr,
    pub topics: &'a [&'a str],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcksDecision {
    /// Already durable (acks=-1) or not a value this rule judges (the broker rejects it).
    Allow,
    /// Weak, but the client, source or every topic is exempt: forward unchanged and audit.
    Exempt,
    /// Weak and judged: do what the configured action says.
    Enforce(Action),
}

pub const RULE: &str = "produce_acks";

/// Acks a durable producer uses.
pub const ACKS_ALL: i16 = -1;

pub fn judge(rule: &ProduceAcksRule, input: &AcksInput<'_>) -> AcksDecision {
    judge_scoped(rule, input, |_| rule.action)
}

/// How strict an action is when topics of one request fall under different rules.
fn strictness(a: Action) -> u8 {
    match a {
        Action::Reject => 3,
        Action::Upgrade => 2,
        Action::Audit => 1,
    }
}

/// Judges a request whose topics may each have their own action (scopes): acks is per request,
/// so the strictest action among its non-exempt topics decides.
pub fn judge_scoped(rule: &ProduceAcksRule, input: &AcksInput<'_>, action_for: impl Fn(&str) -> Action) -> AcksDecision {
    if !matches!(input.acks, 0 | 1) {
        return AcksDecision::Allow;
    }
    let ex = &rule.exempt;
    if ex.client_exempt(input.client_id, input.peer) {
        return AcksDecision::Exempt;
    }
    if input.topics.is_empty() {
        return AcksDecision::Enforce(rule.action);
    }
    // One non-exempt topic makes the whole request judged.
    input
        .topics
        .iter()
        .filter(|t| !ex.topic_exempt(t))
        .map(|t| action_for(t))
        .max_by_key(|a| strictness(*a))
        .map_or(AcksDecision::Exempt, AcksDecision::Enforce)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Exemptions;
    use crate::pattern::Glob;

    fn rule(action: Action) -> ProduceAcksRule {
        ProduceAcksRule {
            action,
            exempt: Exemptions {
                client_ids: vec![Glob::new("metrics-*")],
                source_cidrs: vec!["10.9.0.0/16".parse().expect("cidr")],
                topics: vec![Glob::new("scratch.*")],
            },
        }
    }

    #[test]
    fn table() {
        let lan: IpAddr = "10.9.1.1".parse().expect("ip");
        let wan: IpAddr = "172.20.0.5".parse().expect("ip");
        use AcksDecision::*;
        #[rustfmt::skip]
        type Case<'a> = (Action, i16, Option<&'a str>, IpAddr, &'a [&'a str], AcksDecision);
        let cases: &[Case] = &[
            (Action::Upgrade, -1, Some("app"), wan, &["orders"], Allow),
            (Action::Upgrade, 0, Some("app"), wan, &["orders"], Enforce(Action::Upgrade)),
            (Action::Upgrade, 1, Some("app"), wan, &["orders"], Enforce(Action::Upgrade)),
            (Action::Reject, 1, Some("app"), wan, &["orders"], Enforce(Action::Reject)),
            (Action::Audit, 0, None, wan, &["orders"], Enforce(Action::Audit)),
            (Action::Reject, 1, Some("metrics-agent"), wan, &["orders"], Exempt),
            (Action::Reject, 1, Some("app"), lan, &["orders"], Exempt),
            (Action::Reject, 1, Some("app"), wan, &["scratch.a", "scratch.b"], Exempt),
            (Action::Reject, 1, Some("app"), wan, &["scratch.a", "orders"], Enforce(Action::Reject)),
            (Action::Reject, 1, Some("app"), wan, &[], Enforce(Action::Reject)),
            (Action::Reject, 2, Some("app"), wan, &["orders"], Allow),
            (Action::Reject, -2, Some("app"), wan, &["orders"], Allow),
        ];
        for (action, acks, client_id, peer, topics, want) in cases {
            let got = judge(&rule(*action), &AcksInput { acks: *acks, client_id: *client_id, peer: *peer, topics });
            assert_eq!(got, *want, "{action:?} acks={acks} client={client_id:?} peer={peer} topics={topics:?}");
        }
    }

    #[test]
    fn the_strictest_topic_rule_decides() {
        let wan: IpAddr = "172.20.0.5".parse().expect("ip");
        let r = rule(Action::Upgrade);
        let per_topic = |t: &str| match t {
            "payments" => Action::Reject,
            "clicks" => Action::Audit,
            _ => Action::Upgrade,
        };
        let judge = |topics: &[&str]| judge_scoped(&r, &AcksInput { acks: 1, client_id: Some("app"), peer: wan, topics }, per_topic);
        assert_eq!(judge(&["clicks"]), AcksDecision::Enforce(Action::Audit));
        assert_eq!(judge(&["clicks", "orders"]), AcksDecision::Enforce(Action::Upgrade));
        assert_eq!(judge(&["orders", "payments", "clicks"]), AcksDecision::Enforce(Action::Reject));
        assert_eq!(judge(&["scratch.a", "clicks"]), AcksDecision::Enforce(Action::Audit), "exempt topics do not vote");
        assert_eq!(judge(&["scratch.a"]), AcksDecision::Exempt);
    }
}

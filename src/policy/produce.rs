//! The producer acks rule, whole: acks 0 and 1 acknowledge before the write is replicated, so a
//! leader failure loses acknowledged (or never-acknowledged) records. The rule resolves each
//! topic's scope, applies exemptions, lets the strictest action among the topics decide, and
//! says what to do where the action cannot be carried out as written (an acks=0 request cannot
//! be answered with an error, only closed).

use std::net::IpAddr;

use super::rules::{Action, Policies, ProduceAcksRule};
use super::scope::{self, Subject};

/// Everything the rule looks at, from the request header and the Produce body walk.
#[derive(Clone, Copy, Debug)]
pub struct AcksInput<'a> {
    pub acks: i16,
    pub client_id: Option<&'a str>,
    pub principal: Option<&'a str>,
    pub peer: IpAddr,
    pub topics: &'a [&'a str],
}

/// The rule's answer for one Produce request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcksVerdict {
    /// Already durable (acks=-1) or not a value this rule judges (the broker rejects it).
    Allow,
    /// Weak, but the client, source or every topic is exempt: forward unchanged and audit.
    Exempt,
    /// Weak; forward unchanged and audit.
    Audit,
    /// Weak; rewrite acks to -1 in place.
    Upgrade,
    /// Weak acks=1; answer INVALID_REQUIRED_ACKS without forwarding.
    Reject,
    /// Weak acks=0 under a reject rule: nothing can be answered, so the connection is closed.
    Close,
}

impl AcksVerdict {
    /// The word the audit log uses.
    pub fn as_str(self) -> &'static str {
        match self {
            AcksVerdict::Allow => "allow",
            AcksVerdict::Exempt => "exempt",
            AcksVerdict::Audit => "audit",
            AcksVerdict::Upgrade => "upgrade",
            AcksVerdict::Reject | AcksVerdict::Close => "reject",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcksDecision<'a> {
    pub verdict: AcksVerdict,
    /// The scope whose action decided, when one did.
    pub scope: Option<&'a str>,
}

pub const RULE: &str = "produce_acks";

/// Acks a durable producer uses.
pub const ACKS_ALL: i16 = -1;

/// Judges a Produce request under every rule: scopes per topic, exemptions, strictest action.
pub fn judge<'a>(p: &'a Policies, input: &AcksInput<'_>) -> AcksDecision<'a> {
    let per_topic: Vec<(Action, Option<&'a str>)> = input
        .topics
        .iter()
        .map(|t| {
            scope::acks_action(p, &Subject { client_id: input.client_id, principal: input.principal, peer: input.peer, topic: Some(t) })
        })
        .collect();
    let action_for =
        |t: &str| input.topics.iter().position(|n| *n == t).and_then(|i| per_topic.get(i)).map_or(p.produce_acks.action, |a| a.0);
    let enforced = judge_rule(&p.produce_acks, input, action_for);
    let scope = match enforced {
        Enforced::Act(a) => per_topic.iter().find(|(x, _)| *x == a).and_then(|(_, n)| *n),
        _ => None,
    };
    let verdict = match enforced {
        Enforced::Allow => AcksVerdict::Allow,
        Enforced::Exempt => AcksVerdict::Exempt,
        Enforced::Act(Action::Audit) => AcksVerdict::Audit,
        Enforced::Act(Action::Upgrade) => AcksVerdict::Upgrade,
        Enforced::Act(Action::Reject) if input.acks == 0 => AcksVerdict::Close,
        Enforced::Act(Action::Reject) => AcksVerdict::Reject,
    };
    AcksDecision { verdict, scope }
}

/// What the base rule says before the action is carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enforced {
    Allow,
    Exempt,
    Act(Action),
}

/// Judges a request whose topics may each have their own action (scopes): acks is per request,
/// so the strictest action among its non-exempt topics decides.
pub fn judge_rule(rule: &ProduceAcksRule, input: &AcksInput<'_>, action_for: impl Fn(&str) -> Action) -> Enforced {
    if !matches!(input.acks, 0 | 1) {
        return Enforced::Allow;
    }
    let ex = &rule.exempt;
    if ex.client_exempt(&Subject { client_id: input.client_id, principal: input.principal, peer: input.peer, topic: None }) {
        return Enforced::Exempt;
    }
    if input.topics.is_empty() {
        return Enforced::Act(rule.action);
    }
    // One non-exempt topic makes the whole request judged.
    input.topics.iter().filter(|t| !ex.topic_exempt(t)).map(|t| action_for(t)).max().map_or(Enforced::Exempt, Enforced::Act)
}

#[cfg(test)]
mod tests;

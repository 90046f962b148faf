//! Which scope's rules apply to a request: every criterion a scope gives (topic, client id,
//! source range) must match, and among the scopes that match the most specific wins: more
//! criteria first, then more literal characters in the matching patterns, then a longer source
//! prefix; a remaining tie goes to the scope listed first. No matching scope: the base rules.

use std::net::IpAddr;

use super::rules::{Action, CreateTopics, Policies, Scope};
use crate::pattern::Glob;

/// Who and what a rule is being chosen for. `topic` is None for requests about no topic (a
/// broker config change): scopes that name topics do not apply to them.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub client_id: Option<&'a str>,
    /// The authenticated principal (`User:alice`), from SASL or a client certificate.
    pub principal: Option<&'a str>,
    pub peer: IpAddr,
    pub topic: Option<&'a str>,
}

/// (criteria matched, literal pattern characters, source prefix length); higher is narrower.
type Specificity = (usize, usize, u8);

fn literal_len(g: &Glob) -> usize {
    g.as_str().chars().filter(|c| *c != '*' && *c != '?').count()
}

fn best_glob(globs: &[Glob], text: Option<&str>) -> Option<Option<usize>> {
    if globs.is_empty() {
        return Some(None);
    }
    let text = text?;
    globs.iter().filter(|g| g.matches(text)).map(literal_len).max().map(Some)
}

fn specificity(scope: &Scope, s: &Subject<'_>) -> Option<Specificity> {
    let topic = best_glob(&scope.topics, s.topic)?;
    let client = best_glob(&scope.client_ids, s.client_id)?;
    let principal = best_glob(&scope.principals, s.principal)?;
    let source = if scope.source_cidrs.is_empty() {
        None
    } else {
        Some(scope.source_cidrs.iter().filter(|n| n.contains(&s.peer)).map(|n| n.prefix_len()).max()?)
    };
    let criteria = [topic.is_some(), client.is_some(), principal.is_some(), source.is_some()].iter().filter(|m| **m).count();
    Some((criteria, topic.unwrap_or(0) + client.unwrap_or(0) + principal.unwrap_or(0), source.unwrap_or(0)))
}

/// The most specific scope among those for which `has_rule` holds.
pub fn most_specific<'a>(scopes: &'a [Scope], s: &Subject<'_>, has_rule: impl Fn(&Scope) -> bool) -> Option<&'a Scope> {
    let mut best: Option<(&Scope, Specificity)> = None;
    for scope in scopes.iter().filter(|sc| has_rule(sc)) {
        if let Some(spec) = specificity(scope, s) {
            if best.is_none_or(|(_, b)| spec > b) {
                best = Some((scope, spec));
            }
        }
    }
    best.map(|(sc, _)| sc)
}

/// The acks action for a subject, and the scope it came from.
pub fn acks_action<'a>(p: &'a Policies, s: &Subject<'_>) -> (Action, Option<&'a str>) {
    action_for(p, s, |sc| sc.produce_acks, p.produce_acks.action)
}

/// The idempotence action for a subject, and the scope it came from.
pub fn idempotence_action<'a>(p: &'a Policies, s: &Subject<'_>) -> (Action, Option<&'a str>) {
    action_for(p, s, |sc| sc.idempotence, p.idempotence.action)
}

fn action_for<'a>(p: &'a Policies, s: &Subject<'_>, pick: fn(&Scope) -> Option<Action>, base: Action) -> (Action, Option<&'a str>) {
    match most_specific(&p.scopes, s, |sc| pick(sc).is_some()) {
        Some(sc) => (pick(sc).unwrap_or(base), Some(sc.name.as_str())),
        None => (base, None),
    }
}

/// The topic rules for a subject, and the scope they came from.
pub fn topic_rules<'a>(p: &'a Policies, s: &Subject<'_>) -> (&'a CreateTopics, Option<&'a str>) {
    match most_specific(&p.scopes, s, |sc| sc.create_topics.is_some()) {
        Some(sc) => (sc.create_topics.as_ref().unwrap_or(&p.create_topics.rules), Some(sc.name.as_str())),
        None => (&p.create_topics.rules, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> crate::config::Config {
        crate::config::parse(
            "listen:\n  advertised_host: p\n  bootstrap_port: 1\n  broker_port_base: 100\nupstream:\n  bootstrap_servers: ['b:1']\n\
             policies:\n  scopes:\n\
             \x20   - name: payments\n      match: {topics: ['payments.*']}\n      produce_acks: {action: reject}\n      create_topics: {replication_factor: {value: 5}}\n\
             \x20   - name: payments-eu\n      match: {topics: ['payments.eu.*']}\n      produce_acks: {action: audit}\n\
             \x20   - name: batch-jobs\n      match: {client_ids: ['batch-*'], source_cidrs: ['10.8.0.0/16']}\n      produce_acks: {action: audit}\n\
             \x20   - name: lab\n      match: {source_cidrs: ['10.0.0.0/8']}\n      create_topics: {min_insync_replicas: {value: 1}}\n",
        )
        .expect("config")
    }

    #[test]
    fn most_specific_scope_wins() {
        let cfg = cfg();
        let lan: IpAddr = "10.8.1.1".parse().expect("ip");
        let wan: IpAddr = "192.0.2.1".parse().expect("ip");
        let acks =
            |client: Option<&str>, peer, topic| acks_action(&cfg.policies, &Subject { client_id: client, principal: None, peer, topic });
        type Case<'a> = (Option<&'a str>, IpAddr, Option<&'a str>, (Action, Option<&'a str>));
        let cases: &[Case] = &[
            (Some("app"), wan, Some("orders"), (Action::Upgrade, None)),
            (Some("app"), wan, Some("payments.us.cards"), (Action::Reject, Some("payments"))),
            (Some("app"), wan, Some("payments.eu.cards"), (Action::Audit, Some("payments-eu"))),
            (Some("batch-nightly"), lan, Some("orders"), (Action::Audit, Some("batch-jobs"))),
            (Some("batch-nightly"), wan, Some("orders"), (Action::Upgrade, None)),
            // Two criteria beat one: the batch scope outranks the topic scope.
            (Some("batch-nightly"), lan, Some("payments.us"), (Action::Audit, Some("batch-jobs"))),
            (Some("app"), lan, None, (Action::Upgrade, None)),
        ];
        for (client, peer, topic, want) in cases {
            assert_eq!(acks(*client, *peer, *topic), *want, "{client:?} {peer} {topic:?}");
        }
    }

    #[test]
    fn topic_rules_merge_a_scope_over_the_base() {
        let cfg = cfg();
        let lan: IpAddr = "10.1.1.1".parse().expect("ip");
        let wan: IpAddr = "192.0.2.1".parse().expect("ip");
        let (r, name) = topic_rules(&cfg.policies, &Subject { client_id: None, principal: None, peer: wan, topic: Some("payments.x") });
        assert_eq!((r.replication_factor.value, r.min_insync_replicas.value, name), (Some(5), Some(2), Some("payments")));
        let (r, name) = topic_rules(&cfg.policies, &Subject { client_id: None, principal: None, peer: lan, topic: Some("scratch") });
        assert_eq!((r.replication_factor.value, r.min_insync_replicas.value, name), (Some(3), Some(1), Some("lab")));
        // A broker change (no topic) from the lab range: the lab scope names no topics, so it applies.
        assert_eq!(topic_rules(&cfg.policies, &Subject { client_id: None, principal: None, peer: lan, topic: None }).1, Some("lab"));
        assert_eq!(topic_rules(&cfg.policies, &Subject { client_id: None, principal: None, peer: wan, topic: Some("orders") }).1, None);
    }

    #[test]
    fn scope_config_errors_are_reported() {
        let errs = crate::config::parse(
            "listen:\n  advertised_host: p\n  bootstrap_port: 1\n  broker_port_base: 100\nupstream:\n  bootstrap_servers: ['b:1']\n\
             policies:\n  scopes:\n    - name: a\n      match: {}\n    - name: a\n      match: {topics: ['x']}\n      create_topics: {rf_above_min_isr: {action: upgrade}}\n",
        )
        .expect_err("invalid")
        .0
        .join("\n");
        for want in [
            "scopes[0].match needs topics",
            "scopes[0] changes no rule",
            "scopes[1].name `a` is used",
            "rf_above_min_isr.action cannot be upgrade",
        ] {
            assert!(errs.contains(want), "missing `{want}`:\n{errs}");
        }
    }
}

//! The idempotence rule: a producer without a producer id writes a batch twice when it retries
//! after a lost answer (Kafka deduplicates only by producer id and sequence). Batches are read
//! from their headers (`protocol::batch`); transactional and control batches carry producer ids
//! by construction. The rule sees, audits or refuses; it cannot add a producer id on the wire.

use std::net::IpAddr;

use super::rules::{Action, Policies};
use super::scope::{self, Subject};

pub const RULE: &str = "idempotence";

/// One partition's batches as the rule needs them.
#[derive(Clone, Copy, Debug)]
pub struct Batches<'a> {
    pub topic: &'a str,
    pub idempotent: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every batch carries a producer id.
    Allow,
    /// Not idempotent, but the client, source or every such topic is exempt.
    Exempt,
    Audit,
    Reject,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision<'a> {
    pub verdict: Verdict,
    pub scope: Option<&'a str>,
}

/// Judges a Produce request's batches for a client.
pub fn judge<'a>(p: &'a Policies, client_id: Option<&str>, principal: Option<&str>, peer: IpAddr, batches: &[Batches<'_>]) -> Decision<'a> {
    let weak: Vec<&str> = batches.iter().filter(|b| !b.idempotent).map(|b| b.topic).collect();
    if weak.is_empty() {
        return Decision { verdict: Verdict::Allow, scope: None };
    }
    let subject = |topic| Subject { client_id, principal, peer, topic };
    let ex = &p.idempotence.exempt;
    if ex.client_exempt(&subject(None)) {
        return Decision { verdict: Verdict::Exempt, scope: None };
    }
    let judged =
        weak.iter().filter(|t| !ex.topic_exempt(t)).map(|t| scope::idempotence_action(p, &subject(Some(t)))).max_by_key(|(a, _)| *a);
    match judged {
        None => Decision { verdict: Verdict::Exempt, scope: None },
        Some((Action::Reject, scope)) => Decision { verdict: Verdict::Reject, scope },
        Some((_, scope)) => Decision { verdict: Verdict::Audit, scope },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cfg = crate::config::parse(
            "listen:\n  advertised_host: p\n  bootstrap_port: 1\n  broker_port_base: 100\nupstream:\n  bootstrap_servers: ['b:1']\n\
             policies:\n  idempotence:\n    exempt: {client_ids: ['legacy-*'], topics: ['metrics.*']}\n  scopes:\n\
             \x20   - name: ledger\n      match: {topics: ['ledger.*']}\n      idempotence: {action: reject}\n",
        )
        .expect("config");
        let wan: IpAddr = "192.0.2.1".parse().expect("ip");
        let b = |topic, idempotent| Batches { topic, idempotent };
        type Case<'a> = (Option<&'a str>, Vec<Batches<'a>>, Verdict, Option<&'a str>);
        let cases: Vec<Case> = vec![
            (Some("app"), vec![b("orders", true)], Verdict::Allow, None),
            (Some("app"), vec![b("orders", false)], Verdict::Audit, None),
            (Some("legacy-etl"), vec![b("orders", false)], Verdict::Exempt, None),
            (Some("app"), vec![b("metrics.cpu", false)], Verdict::Exempt, None),
            (Some("app"), vec![b("ledger.eu", false), b("orders", false)], Verdict::Reject, Some("ledger")),
            (Some("app"), vec![b("ledger.eu", true), b("orders", false)], Verdict::Audit, None),
        ];
        for (client, batches, verdict, scope) in cases {
            let d = judge(&cfg.policies, client, None, wan, &batches);
            assert_eq!((d.verdict, d.scope), (verdict, scope), "{client:?} {batches:?}");
        }
    }
}

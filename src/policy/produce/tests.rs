//! Table tests of the acks rule: base action, exemptions, scopes, and acks=0 under reject.

use super::*;
use crate::pattern::Glob;
use crate::policy::rules::Exemptions;

fn rule(action: Action) -> ProduceAcksRule {
    ProduceAcksRule {
        action,
        exempt: Exemptions {
            client_ids: vec![Glob::new("metrics-*")],
            principals: vec![Glob::new("User:batch-*")],
            source_cidrs: vec!["10.9.0.0/16".parse().expect("cidr")],
            topics: vec![Glob::new("scratch.*")],
        },
        redeliver: true,
        delivery_timeout_ms: 120_000,
    }
}

#[test]
fn table() {
    let lan: IpAddr = "10.9.1.1".parse().expect("ip");
    let wan: IpAddr = "172.20.0.5".parse().expect("ip");
    use Enforced::*;
    type Case<'a> = (Action, i16, Option<&'a str>, IpAddr, &'a [&'a str], Enforced);
    let cases: &[Case] = &[
        (Action::Upgrade, -1, Some("app"), wan, &["orders"], Allow),
        (Action::Upgrade, 0, Some("app"), wan, &["orders"], Act(Action::Upgrade)),
        (Action::Upgrade, 1, Some("app"), wan, &["orders"], Act(Action::Upgrade)),
        (Action::Reject, 1, Some("app"), wan, &["orders"], Act(Action::Reject)),
        (Action::Audit, 0, None, wan, &["orders"], Act(Action::Audit)),
        (Action::Reject, 1, Some("metrics-agent"), wan, &["orders"], Exempt),
        (Action::Reject, 1, Some("app"), lan, &["orders"], Exempt),
        (Action::Reject, 1, Some("app"), wan, &["scratch.a", "scratch.b"], Exempt),
        (Action::Reject, 1, Some("app"), wan, &["scratch.a", "orders"], Act(Action::Reject)),
        (Action::Reject, 1, Some("app"), wan, &[], Act(Action::Reject)),
        (Action::Reject, 2, Some("app"), wan, &["orders"], Allow),
        (Action::Reject, -2, Some("app"), wan, &["orders"], Allow),
    ];
    for (action, acks, client_id, peer, topics, want) in cases {
        let r = rule(*action);
        let got = judge_rule(&r, &AcksInput { acks: *acks, client_id: *client_id, principal: None, peer: *peer, topics }, |_| r.action);
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
    let judge =
        |topics: &[&str]| judge_rule(&r, &AcksInput { acks: 1, client_id: Some("app"), principal: None, peer: wan, topics }, per_topic);
    assert_eq!(judge(&["clicks"]), Enforced::Act(Action::Audit));
    assert_eq!(judge(&["clicks", "orders"]), Enforced::Act(Action::Upgrade));
    assert_eq!(judge(&["orders", "payments", "clicks"]), Enforced::Act(Action::Reject));
    assert_eq!(judge(&["scratch.a", "clicks"]), Enforced::Act(Action::Audit), "exempt topics do not vote");
    assert_eq!(judge(&["scratch.a"]), Enforced::Exempt);
}

#[test]
fn verdicts_name_the_deciding_scope_and_close_what_cannot_be_answered() {
    let cfg = crate::config::parse(
        "listen:\n  advertised_host: p\n  bootstrap_port: 1\n  broker_port_base: 100\nupstream:\n  bootstrap_servers: ['b:1']\n\
         policies:\n  scopes:\n    - name: payments\n      match: {topics: ['payments.*']}\n      produce_acks: {action: reject}\n",
    )
    .expect("config");
    let wan: IpAddr = "172.20.0.5".parse().expect("ip");
    let judge = |acks: i16, topics: &[&str]| {
        let d = super::judge(&cfg.policies, &AcksInput { acks, client_id: Some("app"), principal: None, peer: wan, topics });
        (d.verdict, d.scope.map(str::to_owned))
    };
    assert_eq!(judge(-1, &["orders"]), (AcksVerdict::Allow, None));
    assert_eq!(judge(1, &["orders"]), (AcksVerdict::Upgrade, None));
    assert_eq!(judge(0, &["orders"]), (AcksVerdict::Upgrade, None));
    assert_eq!(judge(1, &["payments.cards"]), (AcksVerdict::Reject, Some("payments".into())));
    assert_eq!(judge(0, &["payments.cards", "orders"]), (AcksVerdict::Close, Some("payments".into())));
    assert_eq!(AcksVerdict::Close.as_str(), "reject");
}

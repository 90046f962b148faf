//! Config parsing: defaults, every error at once, unknown keys, port mapping.

use super::*;
use crate::policy::Action;
use std::net::IpAddr;

const MINIMAL: &str = "
listen:
  advertised_host: proxy.local
  bootstrap_port: 19092
  broker_port_base: 19100
upstream:
  bootstrap_servers: [\"broker:9092\"]
";

#[test]
fn minimal_file_gets_documented_defaults() {
    let cfg = parse(MINIMAL).expect("valid");
    assert_eq!(cfg.listen.bind_host, "0.0.0.0");
    assert_eq!(cfg.limits.max_frame_bytes, 100 * 1024 * 1024);
    assert_eq!(cfg.policies.produce_acks.action, Action::Upgrade);
    assert_eq!(cfg.audit.sinks, vec![SinkSpec::stdout()]);
    assert_eq!(cfg.audit.window_secs, 60);
    assert_eq!(cfg.port_for_node(111), Some(19211));
    assert_eq!(cfg.port_for_node(60_000), None, "past 65535 has no listener");
    let acks = &cfg.policies.produce_acks;
    assert_eq!((acks.redeliver, acks.delivery_timeout_ms), (true, 120_000));
    assert_eq!((cfg.limits.redelivery_bytes_per_connection, cfg.limits.redelivery_bytes_total), (16 << 20, 256 << 20));
    assert_eq!(cfg.limits.cut_through_bytes, 64 * 1024);
}

#[test]
fn redelivery_settings_are_checked() {
    let cases = [
        ("limits:\n  redelivery_bytes_per_connection: 1000\n", "limits.redelivery_bytes_per_connection (1000)"),
        ("limits:\n  redelivery_bytes_per_connection: 33554432\n  redelivery_bytes_total: 16777216\n", "per connection not above total"),
        ("limits:\n  redelivery_bytes_total: 8589934592\n", "must be between 1 MiB and 4 GiB"),
        ("policies:\n  produce_acks:\n    delivery_timeout_ms: 10\n", "policies.produce_acks.delivery_timeout_ms 10"),
        ("policies:\n  produce_acks:\n    redeliver: maybe\n", "redeliver"),
    ];
    for (extra, want) in cases {
        let err = parse(&format!("{MINIMAL}{extra}")).expect_err(extra).to_string();
        assert!(err.contains(want), "{extra}: {err}");
    }
    let off = parse(&format!("{MINIMAL}policies:\n  produce_acks:\n    redeliver: false\n    delivery_timeout_ms: 5000\n")).expect("valid");
    assert_eq!((off.policies.produce_acks.redeliver, off.policies.produce_acks.delivery_timeout_ms), (false, 5000));
}

#[test]
fn explicit_port_map_wins_over_base() {
    let text = format!("{MINIMAL}\n");
    let text = text.replace("broker_port_base: 19100", "broker_port_base: 19100\n  broker_ports: {111: 29092}");
    let cfg = parse(&text).expect("valid");
    assert_eq!(cfg.port_for_node(111), Some(29092));
    assert_eq!(cfg.port_for_node(1), Some(19101));
}

#[test]
fn a_broker_address_that_is_the_proxys_own_listener_is_recognised() {
    let cfg = parse(MINIMAL).expect("valid");
    // Node 111 gets 19211 (base 19100); a broker on the proxy's host with another port is not it.
    let cases = [
        ("proxy.local", 19092, true),
        ("PROXY.local", 19211, true),
        ("proxy.local", 19100, false),
        ("proxy.local", 40000, false),
        ("proxy.local", 9092, false),
        ("broker", 19092, false),
        ("0.0.0.0", 19092, true),
        ("proxy.local", -1, false),
    ];
    for (host, port, own) in cases {
        assert_eq!(cfg.is_own_listener(111, host, port), own, "{host}:{port}");
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = "
listen:
  advertised_host: ''
  bootstrap_port: 19092
  colour: blue
upstream:
  bootstrap_servers: [\"nohost\", \"h:0\"]
  extra: 1
limits:
  max_frame_bytes: 10
policies:
  produce_acks:
    action: upgrade
    exempt:
      source_cidrs: [\"10.0.0.0/33\", \"not-an-ip\"]
      client_ids: [\"\"]
audit:
  sink: file
";
    let errs = parse(text).expect_err("invalid").0;
    let joined = errs.join("\n");
    for want in [
        "unknown key `listen.colour`",
        "unknown key `upstream.extra`",
        "advertised_host must not be empty",
        "broker_port_base or broker_ports",
        "`nohost` is not host:port",
        "`h:0` is not host:port",
        "max_frame_bytes 10",
        "`10.0.0.0/33` is not an address",
        "`not-an-ip` is not an address",
        "client_ids has an empty pattern",
        "audit.path is required",
    ] {
        assert!(joined.contains(want), "missing `{want}` in:\n{joined}");
    }
    assert_eq!(errs.len(), 11, "{joined}");
}

#[test]
fn bad_action_is_named() {
    let text = format!("{MINIMAL}policies:\n  produce_acks:\n    action: drop\n");
    let errs = parse(&text).expect_err("invalid").0;
    assert!(errs.iter().any(|e| e.contains("unknown variant `drop`")), "{errs:?}");
}

#[test]
fn exemptions_match_client_source_and_topic() {
    let text = format!(
        "{MINIMAL}policies:\n  produce_acks:\n    action: reject\n    exempt:\n      client_ids: ['metrics-*']\n      principals: ['User:svc-*']\n      source_cidrs: ['10.1.0.0/16', '192.168.7.7']\n      topics: ['scratch.*']\n"
    );
    let cfg = parse(&text).expect("valid");
    let ex = &cfg.policies.produce_acks.exempt;
    let lan: IpAddr = "10.1.2.3".parse().expect("ip");
    let other: IpAddr = "10.2.0.1".parse().expect("ip");
    let who = |client_id, principal, peer| crate::policy::scope::Subject { client_id, principal, peer, topic: None };
    assert!(ex.client_exempt(&who(Some("metrics-agent"), None, other)));
    assert!(!ex.client_exempt(&who(Some("billing"), None, other)));
    assert!(!ex.client_exempt(&who(None, None, other)));
    assert!(ex.client_exempt(&who(None, None, lan)));
    assert!(ex.client_exempt(&who(None, None, "192.168.7.7".parse().expect("ip"))));
    assert!(ex.client_exempt(&who(Some("billing"), Some("User:svc-billing"), other)), "by principal");
    assert!(!ex.client_exempt(&who(Some("billing"), Some("User:alice"), other)));
    assert!(ex.topic_exempt("scratch.tmp"));
    assert!(!ex.topic_exempt("orders"));
}

#[test]
fn the_example_config_is_valid() {
    let text = include_str!("../../config/proxy.example.yaml");
    let cfg = parse(text).unwrap_or_else(|e| panic!("config/proxy.example.yaml: {e}"));
    assert_eq!(cfg.audit.sinks, vec![SinkSpec::stdout()]);
}

#[test]
fn rejecting_acks0_is_valid_but_warned_about() {
    assert!(crate::config::validate::warnings(&parse(MINIMAL).expect("valid")).is_empty());
    let text = format!("{MINIMAL}policies:\n  produce_acks:\n    action: reject\n");
    let w = crate::config::validate::warnings(&parse(&text).expect("valid"));
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("believes its records sent and they are lost"), "{w:?}");
}

//! From the file as written to a `Config`: every section checked by its own small function, every
//! problem collected, none reported alone.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::file::{ClientAuth, Limits, Listen, ListenTls, RawConfig, RawPolicies, RawScope, Upstream, UpstreamSasl};
use super::Config;
use crate::policy::rules::{
    Action, CreateTopics, CreateTopicsRule, Detectors, Exemptions, IdempotenceRule, Policies, ProduceAcksRule, RawExemptions, Scope,
};

/// What is valid but probably not what the operator wants; printed by --check-config and logged
/// at start.
pub fn warnings(cfg: &Config) -> Vec<String> {
    let p = &cfg.policies;
    let rejects_acks0 = p.produce_acks.action == Action::Reject || p.scopes.iter().any(|s| s.produce_acks == Some(Action::Reject));
    let mut out = Vec::new();
    if rejects_acks0 {
        out.push(
            concat!(
                "policies.produce_acks: reject cannot answer an acks=0 request, so it closes the connection: ",
                "the producer believes its records sent and they are lost (KafkaJS and aiokafka reported 30 of 30 sent, none arrived). ",
                "upgrade writes them with acks=all instead; the audit event of each closed request counts the records dropped"
            )
            .into(),
        );
    }
    out
}

pub fn validate(raw: RawConfig, errors: &mut Vec<String>) -> Config {
    let RawConfig { listen, upstream, limits, policies, audit, admin, detectors } = raw;
    check_listen(&listen, errors);
    check_upstream(&upstream, errors);
    check_limits(&limits, errors);
    let audit = super::audit::settings(audit, errors);
    if let Some(a) = admin.listen.as_deref().filter(|a| !is_host_port(a)) {
        errors.push(format!("admin.listen `{a}` is not host:port (or null to turn the endpoint off)"));
    }
    let mut policies = policies_of(policies, errors);
    policies.detectors = detectors;
    Config { listen, upstream, limits, audit, admin, policies }
}

fn check_listen(listen: &Listen, errors: &mut Vec<String>) {
    if listen.advertised_host.trim().is_empty() {
        errors.push("listen.advertised_host must not be empty".into());
    }
    if listen.bootstrap_port == 0 {
        errors.push("listen.bootstrap_port must be a fixed port (1-65535): clients and restarts depend on it".into());
    }
    if listen.broker_port_base.is_none() && listen.broker_ports.is_empty() {
        errors.push("listen needs broker_port_base or broker_ports: each broker gets its own proxy listener".into());
    }
    let mut seen_ports = BTreeMap::new();
    seen_ports.insert(listen.bootstrap_port, "bootstrap_port".to_string());
    for (node, port) in &listen.broker_ports {
        if *port == 0 {
            errors.push(format!("listen.broker_ports.{node} must not be 0"));
        } else if let Some(other) = seen_ports.insert(*port, format!("broker_ports.{node}")) {
            errors.push(format!("listen.broker_ports.{node} reuses port {port} of listen.{other}"));
        }
    }
    if listen.broker_port_base == Some(0) {
        errors.push("listen.broker_port_base must not be 0".into());
    }
    if listen.backlog == 0 {
        errors.push("listen.backlog must be above 0".into());
    }
    if let Some(tls) = &listen.tls {
        check_listen_tls(tls, errors);
    }
}

fn check_listen_tls(tls: &ListenTls, errors: &mut Vec<String>) {
    if tls.client_auth != ClientAuth::None && tls.ca_file.is_none() {
        errors.push("listen.tls.client_auth requested/required needs listen.tls.ca_file (the CA that signs client certificates)".into());
    }
    for (key, path) in [("cert_file", Some(&tls.cert_file)), ("key_file", Some(&tls.key_file)), ("ca_file", tls.ca_file.as_ref())] {
        readable(&format!("listen.tls.{key}"), path, errors);
    }
    if let Err(e) = crate::identity::MappingRules::parse(&tls.principal_mapping_rules) {
        errors.extend(e.into_iter().map(|e| format!("listen.tls.{e}")));
    }
}

/// A file named in the configuration must be readable now, not at the first handshake.
fn readable(key: &str, path: Option<&std::path::PathBuf>, errors: &mut Vec<String>) {
    if let Some(p) = path {
        if let Err(e) = std::fs::File::open(p) {
            errors.push(format!("{key} {}: {e}", p.display()));
        }
    }
}

fn check_upstream(upstream: &Upstream, errors: &mut Vec<String>) {
    if upstream.bootstrap_servers.is_empty() {
        errors.push("upstream.bootstrap_servers must list at least one broker".into());
    }
    for s in &upstream.bootstrap_servers {
        if !is_host_port(s) {
            errors.push(format!("upstream.bootstrap_servers entry `{s}` is not host:port"));
        }
    }
    for (name, ms) in [("connect_timeout_ms", upstream.connect_timeout_ms), ("request_timeout_ms", upstream.request_timeout_ms)] {
        if ms == 0 {
            errors.push(format!("upstream.{name} must be above 0"));
        }
    }
    if let Some(tls) = &upstream.tls {
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            errors.push("upstream.tls needs both cert_file and key_file (mTLS to brokers), or neither".into());
        }
        for (key, path) in [("ca_file", &tls.ca_file), ("cert_file", &tls.cert_file), ("key_file", &tls.key_file)] {
            readable(&format!("upstream.tls.{key}"), path.as_ref(), errors);
        }
    }
    if let Some(sasl) = &upstream.sasl {
        check_upstream_sasl(sasl, errors);
    }
}

fn check_upstream_sasl(sasl: &UpstreamSasl, errors: &mut Vec<String>) {
    if sasl.username.trim().is_empty() {
        errors.push("upstream.sasl.username must not be empty".into());
    }
    match (&sasl.password_file, &sasl.password_env) {
        (Some(_), Some(_)) | (None, None) => {
            errors.push("upstream.sasl needs exactly one of password_file and password_env (never a password inline)".into())
        }
        (Some(f), None) => readable("upstream.sasl.password_file", Some(f), errors),
        (None, Some(var)) if std::env::var_os(var).is_none() => {
            errors.push(format!("upstream.sasl.password_env: environment variable {var} is not set"))
        }
        (None, Some(_)) => {}
    }
}

pub(crate) fn is_host_port(s: &str) -> bool {
    matches!(s.rsplit_once(':'), Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0))
}

fn check_limits(limits: &Limits, errors: &mut Vec<String>) {
    let frame_ok = (1024..=1024 * 1024 * 1024).contains(&limits.max_frame_bytes);
    if !frame_ok {
        errors.push(format!("limits.max_frame_bytes {} must be between 1024 and 1073741824", limits.max_frame_bytes));
    }
    let budgets = [limits.redelivery_bytes_per_connection, limits.redelivery_bytes_total];
    if budgets.iter().any(|b| !(1024 * 1024..=u32::MAX as usize).contains(b)) || budgets[0] > budgets[1] {
        errors.push(format!(
            "limits.redelivery_bytes_per_connection ({}) and limits.redelivery_bytes_total ({}) must be between 1 MiB and 4 GiB, per connection not above total",
            budgets[0], budgets[1]
        ));
    }
    if limits.max_in_flight == 0 {
        errors.push("limits.max_in_flight must be above 0".into());
    }
    for (name, v) in [
        ("max_connections", limits.max_connections),
        ("max_connections_per_source", limits.max_connections_per_source),
        ("idle_timeout_ms", usize::try_from(limits.idle_timeout_ms).ok()),
        ("tls_handshake_timeout_ms", usize::try_from(limits.tls_handshake_timeout_ms).ok()),
    ] {
        if v == Some(0) {
            errors.push(format!("limits.{name} must be above 0"));
        }
    }
    // Judged against a valid max_frame_bytes only: one mistake, one message.
    if frame_ok && !(1024..=limits.max_frame_bytes).contains(&limits.pre_auth_max_frame_bytes) {
        errors.push(format!(
            "limits.pre_auth_max_frame_bytes {} must be between 1024 and limits.max_frame_bytes",
            limits.pre_auth_max_frame_bytes
        ));
    }
}

fn policies_of(raw: RawPolicies, errors: &mut Vec<String>) -> Policies {
    let exempt = exemptions(&raw.produce_acks.exempt, "policies.produce_acks.exempt", errors);
    if !(1_000..=86_400_000).contains(&raw.produce_acks.delivery_timeout_ms) {
        errors.push(format!(
            "policies.produce_acks.delivery_timeout_ms {} must be between 1000 and 86400000",
            raw.produce_acks.delivery_timeout_ms
        ));
    }
    let idem_exempt = exemptions(&raw.idempotence.exempt, "policies.idempotence.exempt", errors);
    if raw.idempotence.action == Action::Upgrade {
        errors
            .push("policies.idempotence.action cannot be upgrade (a producer id cannot be added on the wire): use audit or reject".into());
    }
    let ct = &raw.create_topics;
    let ct_exempt = exemptions(&ct.exempt, "policies.create_topics.exempt", errors);
    check_topic_rules(ct, errors);
    if raw.deletes.protected_topics.iter().any(|g| g.as_str().is_empty()) {
        errors.push("policies.deletes.protected_topics has an empty pattern".into());
    }
    let scopes = scopes(&raw.scopes, &raw.create_topics, errors);
    Policies {
        produce_acks: ProduceAcksRule {
            action: raw.produce_acks.action,
            exempt,
            redeliver: raw.produce_acks.redeliver,
            delivery_timeout_ms: raw.produce_acks.delivery_timeout_ms,
        },
        idempotence: IdempotenceRule { action: raw.idempotence.action, exempt: idem_exempt },
        create_topics: CreateTopicsRule { rules: raw.create_topics, exempt: ct_exempt },
        metadata: raw.metadata,
        deletes: raw.deletes,
        scopes,
        detectors: Detectors::default(),
    }
}

fn check_topic_rules(ct: &CreateTopics, errors: &mut Vec<String>) {
    no_upgrade_without_rewrite("policies.create_topics", Some(ct.rf_above_min_isr.action), Some(ct.max_message_bytes.action), errors);
    for (name, v) in [
        ("replication_factor", ct.replication_factor.value.map(i64::from)),
        ("min_insync_replicas", ct.min_insync_replicas.value.map(i64::from)),
    ] {
        if v.is_some_and(|v| v < 1) {
            errors.push(format!("policies.create_topics.{name}.value must be at least 1"));
        }
    }
}

/// Rules for which no safe rewrite exists cannot be set to upgrade.
fn no_upgrade_without_rewrite(at: &str, rf_above_min_isr: Option<Action>, max_message_bytes: Option<Action>, errors: &mut Vec<String>) {
    for (name, action) in [("rf_above_min_isr", rf_above_min_isr), ("max_message_bytes", max_message_bytes)] {
        if action == Some(Action::Upgrade) {
            errors.push(format!("{at}.{name}.action cannot be upgrade (no safe rewrite exists): use reject or audit"));
        }
    }
}

fn scopes(raw: &[RawScope], base: &CreateTopics, errors: &mut Vec<String>) -> Vec<Scope> {
    let mut names = BTreeSet::new();
    raw.iter().enumerate().map(|(i, r)| scope(r, &format!("policies.scopes[{i}]"), base, &mut names, errors)).collect()
}

fn scope(r: &RawScope, at: &str, base: &CreateTopics, names: &mut BTreeSet<String>, errors: &mut Vec<String>) -> Scope {
    if r.name.trim().is_empty() {
        errors.push(format!("{at}.name must not be empty"));
    } else if !names.insert(r.name.clone()) {
        errors.push(format!("{at}.name `{}` is used by another scope", r.name));
    }
    let m = &r.matcher;
    if m.topics.is_empty() && m.client_ids.is_empty() && m.principals.is_empty() && m.source_cidrs.is_empty() {
        errors.push(format!("{at}.match needs topics, client_ids, principals or source_cidrs"));
    }
    let as_exemptions = RawExemptions {
        client_ids: m.client_ids.clone(),
        principals: m.principals.clone(),
        source_cidrs: m.source_cidrs.clone(),
        topics: m.topics.clone(),
    };
    let ex = exemptions(&as_exemptions, &format!("{at}.match"), errors);
    if r.produce_acks.is_none() && r.idempotence.is_none() && r.create_topics.is_none() {
        errors.push(format!("{at} changes no rule: give produce_acks, idempotence or create_topics"));
    }
    if r.idempotence.is_some_and(|p| p.action == Action::Upgrade) {
        errors.push(format!("{at}.idempotence.action cannot be upgrade: use audit or reject"));
    }
    if let Some(p) = &r.create_topics {
        let (isr, max) = (p.rf_above_min_isr.map(|c| c.action), p.max_message_bytes.map(|b| b.action));
        no_upgrade_without_rewrite(&format!("{at}.create_topics"), isr, max, errors);
    }
    Scope {
        name: r.name.clone(),
        topics: ex.topics,
        client_ids: ex.client_ids,
        principals: ex.principals,
        source_cidrs: ex.source_cidrs,
        produce_acks: r.produce_acks.map(|p| p.action),
        idempotence: r.idempotence.map(|p| p.action),
        create_topics: r.create_topics.as_ref().map(|p| p.apply(base)),
    }
}

fn exemptions(raw: &RawExemptions, at: &str, errors: &mut Vec<String>) -> Exemptions {
    let mut source_cidrs = Vec::new();
    for s in &raw.source_cidrs {
        match s.parse::<IpNet>().or_else(|_| s.parse::<IpAddr>().map(IpNet::from)) {
            Ok(n) => source_cidrs.push(n),
            Err(_) => errors.push(format!("{at}.source_cidrs entry `{s}` is not an address or CIDR range")),
        }
    }
    for (field, globs) in [("client_ids", &raw.client_ids), ("principals", &raw.principals), ("topics", &raw.topics)] {
        if globs.iter().any(|g| g.as_str().is_empty()) {
            errors.push(format!("{at}.{field} has an empty pattern"));
        }
    }
    Exemptions { client_ids: raw.client_ids.clone(), principals: raw.principals.clone(), source_cidrs, topics: raw.topics.clone() }
}

//! Typed configuration: YAML in, a validated `Config` out, with every problem (unknown keys
//! included) reported together so an operator fixes a file in one pass.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

use crate::pattern::Glob;

pub const DEFAULT_MAX_FRAME_BYTES: usize = 100 * 1024 * 1024;

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
pub struct RawConfig {
    pub listen: Listen,
    pub upstream: Upstream,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub policies: Policies,
    #[serde(default)]
    pub audit: Audit,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Listen {
    /// Address the listeners bind to.
    #[serde(default = "default_bind_host")]
    pub bind_host: String,
    /// Host clients are told to connect to (in Metadata, FindCoordinator, ...).
    pub advertised_host: String,
    /// Port of the bootstrap listener (what applications put in bootstrap.servers).
    pub bootstrap_port: u16,
    /// Broker node id N gets listener port `broker_port_base + N`, unless `broker_ports` names it.
    pub broker_port_base: Option<u16>,
    #[serde(default)]
    pub broker_ports: BTreeMap<i32, u16>,
}

fn default_bind_host() -> String {
    "0.0.0.0".into()
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Upstream {
    /// `host:port` of one or more brokers of the cluster.
    pub bootstrap_servers: Vec<String>,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
}

fn default_connect_timeout_ms() -> u64 {
    10_000
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Limits {
    #[serde(default = "default_max_frame")]
    pub max_frame_bytes: usize,
    /// Requests a client may have in flight on one connection before the proxy stops reading it.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// After a client leaves, how long the proxy keeps the broker connection to see the requests
    /// it already forwarded answered (upgraded acks=0 producers often disconnect right away).
    #[serde(default = "default_drain_timeout_ms")]
    pub drain_timeout_ms: u64,
}

fn default_drain_timeout_ms() -> u64 {
    30_000
}

fn default_max_frame() -> usize {
    DEFAULT_MAX_FRAME_BYTES
}

fn default_max_in_flight() -> usize {
    1024
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_frame_bytes: default_max_frame(), max_in_flight: default_max_in_flight(), drain_timeout_ms: default_drain_timeout_ms() }
    }
}

/// What a rule does with a request that breaks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Rewrite the request so it is durable, then forward it.
    Upgrade,
    /// Refuse it with the error the client's protocol version understands.
    Reject,
    /// Forward unchanged; only record it.
    Audit,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Upgrade => "upgrade",
            Action::Reject => "reject",
            Action::Audit => "audit",
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Policies {
    #[serde(default)]
    pub produce_acks: ProduceAcks,
    #[serde(default)]
    pub create_topics: CreateTopics,
    #[serde(default)]
    pub metadata: MetadataPolicy,
    #[serde(default)]
    pub deletes: Deletes,
    /// Narrower rule sets for some topics, clients or sources; the most specific match wins.
    #[serde(default)]
    pub scopes: Vec<RawScope>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RawScope {
    pub name: String,
    #[serde(rename = "match")]
    pub matcher: RawMatch,
    #[serde(default)]
    pub produce_acks: Option<AcksPatch>,
    #[serde(default)]
    pub create_topics: Option<CreateTopicsPatch>,
}

/// What a scope applies to: every criterion given must match.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RawMatch {
    #[serde(default)]
    pub topics: Vec<Glob>,
    #[serde(default)]
    pub client_ids: Vec<Glob>,
    #[serde(default)]
    pub source_cidrs: Vec<String>,
}

#[derive(Clone, Copy, Debug, Deserialize)]
pub struct AcksPatch {
    pub action: Action,
}

/// Topic rules a scope changes; the fields it leaves out keep the base rules' values.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CreateTopicsPatch {
    pub replication_factor: Option<Bound<i16>>,
    pub min_insync_replicas: Option<Bound<i32>>,
    pub rf_above_min_isr: Option<Check>,
    pub no_unclean_leader_election: Option<Check>,
    pub min_retention_ms: Option<Bound<i64>>,
    pub min_retention_bytes: Option<Bound<i64>>,
    pub max_message_bytes: Option<Bound<i64>>,
}

impl CreateTopicsPatch {
    pub fn apply(&self, base: &CreateTopics) -> CreateTopics {
        let mut r = base.clone();
        macro_rules! take {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { r.$f = v; } )* };
        }
        take!(
            replication_factor,
            min_insync_replicas,
            rf_above_min_isr,
            no_unclean_leader_election,
            min_retention_ms,
            min_retention_bytes,
            max_message_bytes
        );
        r
    }
}

/// A validated scope, its rule sets already merged with the base rules.
#[derive(Clone, Debug)]
pub struct Scope {
    pub name: String,
    pub topics: Vec<Glob>,
    pub client_ids: Vec<Glob>,
    pub source_cidrs: Vec<IpNet>,
    pub produce_acks: Option<Action>,
    pub create_topics: Option<CreateTopics>,
}

/// A floor or ceiling rule with its action. `value: None` turns an optional rule off.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub struct Bound<T> {
    pub value: Option<T>,
    #[serde(default = "default_reject")]
    pub action: Action,
}

/// A yes/no rule with its action.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub struct Check {
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default = "default_reject")]
    pub action: Action,
}

fn default_reject() -> Action {
    Action::Reject
}

fn default_true() -> bool {
    true
}

/// Topic shape rules for CreateTopics. Values a request leaves unset are judged at the broker's
/// default (read from the cluster, else Kafka's shipped default).
#[derive(Clone, Debug, Deserialize)]
pub struct CreateTopics {
    #[serde(default = "default_min_rf")]
    pub replication_factor: Bound<i16>,
    #[serde(default = "default_min_isr")]
    pub min_insync_replicas: Bound<i32>,
    /// RF must exceed min.insync.replicas, or one broker down stops every write.
    #[serde(default = "default_check")]
    pub rf_above_min_isr: Check,
    /// unclean.leader.election.enable must not be true.
    #[serde(default = "default_check")]
    pub no_unclean_leader_election: Check,
    #[serde(default = "default_off")]
    pub min_retention_ms: Bound<i64>,
    #[serde(default = "default_off")]
    pub min_retention_bytes: Bound<i64>,
    #[serde(default = "default_off")]
    pub max_message_bytes: Bound<i64>,
    #[serde(default)]
    pub exempt: RawExemptions,
}

fn default_min_rf() -> Bound<i16> {
    Bound { value: Some(3), action: Action::Reject }
}

fn default_min_isr() -> Bound<i32> {
    Bound { value: Some(2), action: Action::Reject }
}

fn default_check() -> Check {
    Check { enabled: true, action: Action::Reject }
}

fn default_off<T>() -> Bound<T> {
    Bound { value: None, action: Action::Reject }
}

impl Default for CreateTopics {
    fn default() -> Self {
        Self {
            replication_factor: default_min_rf(),
            min_insync_replicas: default_min_isr(),
            rf_above_min_isr: default_check(),
            no_unclean_leader_election: default_check(),
            min_retention_ms: default_off(),
            min_retention_bytes: default_off(),
            max_message_bytes: default_off(),
            exempt: RawExemptions::default(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct MetadataPolicy {
    /// Clear allow_auto_topic_creation in Metadata requests: auto-created topics get broker
    /// defaults, bypassing every create_topics rule.
    #[serde(default = "default_true")]
    pub block_auto_topic_creation: bool,
}

impl Default for MetadataPolicy {
    fn default() -> Self {
        Self { block_auto_topic_creation: true }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Deletes {
    /// Topics that cannot be deleted (DeleteTopics) or truncated (DeleteRecords). Every delete of
    /// any topic is audited either way.
    #[serde(default)]
    pub protected_topics: Vec<Glob>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ProduceAcks {
    #[serde(default = "default_upgrade")]
    pub action: Action,
    #[serde(default)]
    pub exempt: RawExemptions,
}

fn default_upgrade() -> Action {
    Action::Upgrade
}

impl Default for ProduceAcks {
    fn default() -> Self {
        Self { action: Action::Upgrade, exempt: RawExemptions::default() }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RawExemptions {
    #[serde(default)]
    pub client_ids: Vec<Glob>,
    #[serde(default)]
    pub source_cidrs: Vec<String>,
    #[serde(default)]
    pub topics: Vec<Glob>,
}

/// Exemptions with source ranges parsed.
#[derive(Clone, Debug, Default)]
pub struct Exemptions {
    pub client_ids: Vec<Glob>,
    pub source_cidrs: Vec<IpNet>,
    pub topics: Vec<Glob>,
}

impl Exemptions {
    pub fn client_exempt(&self, client_id: Option<&str>, peer: IpAddr) -> bool {
        let by_id = client_id.is_some_and(|id| self.client_ids.iter().any(|g| g.matches(id)));
        by_id || self.source_cidrs.iter().any(|n| n.contains(&peer))
    }

    pub fn topic_exempt(&self, topic: &str) -> bool {
        self.topics.iter().any(|g| g.matches(topic))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuditSink {
    #[default]
    Stdout,
    File,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Audit {
    #[serde(default)]
    pub sink: AuditSink,
    pub path: Option<PathBuf>,
    /// Repeats of the same (client address, client id, rule, action) are summarised per window.
    #[serde(default = "default_window")]
    pub window_secs: u64,
    /// Events waiting for the writer; beyond this they are dropped and counted, never blocking.
    #[serde(default = "default_queue")]
    pub queue_capacity: usize,
}

fn default_window() -> u64 {
    60
}

fn default_queue() -> usize {
    10_000
}

impl Default for Audit {
    fn default() -> Self {
        Self { sink: AuditSink::Stdout, path: None, window_secs: default_window(), queue_capacity: default_queue() }
    }
}

/// A configuration that passed validation.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: Listen,
    pub upstream: Upstream,
    pub limits: Limits,
    pub produce_acks: ProduceAcksRule,
    pub create_topics: CreateTopicsRule,
    pub metadata: MetadataPolicy,
    pub deletes: Deletes,
    pub scopes: Vec<Scope>,
    pub audit: Audit,
}

#[derive(Clone, Debug)]
pub struct CreateTopicsRule {
    pub rules: CreateTopics,
    pub exempt: Exemptions,
}

#[derive(Clone, Debug)]
pub struct ProduceAcksRule {
    pub action: Action,
    pub exempt: Exemptions,
}

impl Config {
    /// Listener port for a broker node id, or `None` when it falls outside 1..=65535.
    pub fn port_for_node(&self, node_id: i32) -> Option<u16> {
        if let Some(p) = self.listen.broker_ports.get(&node_id) {
            return Some(*p);
        }
        let base = i64::from(self.listen.broker_port_base?);
        u16::try_from(base.checked_add(i64::from(node_id))?).ok().filter(|p| *p != 0)
    }
}

/// Every problem found in a config file.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problem{}):", self.0.len(), if self.0.len() == 1 { "" } else { "s" })?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors(vec![format!("cannot read {}: {e}", path.display())]))?;
    parse(&text)
}

pub fn parse(text: &str) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let de = serde_yaml::Deserializer::from_str(text);
    let mut unknown = Vec::new();
    let raw: Result<RawConfig, _> = serde_ignored::deserialize(de, |path| unknown.push(path.to_string()));
    errors.extend(unknown.into_iter().map(|p| format!("unknown key `{p}`")));
    match raw {
        Ok(raw) => {
            let cfg = validate(raw, &mut errors);
            if errors.is_empty() {
                Ok(cfg)
            } else {
                Err(ConfigErrors(errors))
            }
        }
        Err(e) => {
            errors.push(e.to_string());
            Err(ConfigErrors(errors))
        }
    }
}

fn validate(raw: RawConfig, errors: &mut Vec<String>) -> Config {
    let RawConfig { listen, upstream, limits, policies, audit } = raw;
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
    if let Some(base) = listen.broker_port_base {
        if base == 0 {
            errors.push("listen.broker_port_base must not be 0".into());
        }
    }
    if upstream.bootstrap_servers.is_empty() {
        errors.push("upstream.bootstrap_servers must list at least one broker".into());
    }
    for s in &upstream.bootstrap_servers {
        match s.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0) => {}
            _ => errors.push(format!("upstream.bootstrap_servers entry `{s}` is not host:port")),
        }
    }
    if upstream.connect_timeout_ms == 0 {
        errors.push("upstream.connect_timeout_ms must be above 0".into());
    }
    if !(1024..=1024 * 1024 * 1024).contains(&limits.max_frame_bytes) {
        errors.push(format!("limits.max_frame_bytes {} must be between 1024 and 1073741824", limits.max_frame_bytes));
    }
    if limits.max_in_flight == 0 {
        errors.push("limits.max_in_flight must be above 0".into());
    }
    let exempt = exemptions(&policies.produce_acks.exempt, "policies.produce_acks.exempt", errors);
    match (audit.sink, &audit.path) {
        (AuditSink::File, None) => errors.push("audit.path is required when audit.sink is file".into()),
        (AuditSink::Stdout, Some(_)) => errors.push("audit.path is set but audit.sink is stdout: set sink: file".into()),
        _ => {}
    }
    if audit.window_secs == 0 {
        errors.push("audit.window_secs must be above 0".into());
    }
    if audit.queue_capacity == 0 {
        errors.push("audit.queue_capacity must be above 0".into());
    }
    let ct = &policies.create_topics;
    let ct_exempt = exemptions(&ct.exempt, "policies.create_topics.exempt", errors);
    for (name, action) in [("rf_above_min_isr", ct.rf_above_min_isr.action), ("max_message_bytes", ct.max_message_bytes.action)] {
        if action == Action::Upgrade {
            errors.push(format!("policies.create_topics.{name}.action cannot be upgrade (no safe rewrite exists): use reject or audit"));
        }
    }
    for (name, v) in [
        ("replication_factor", ct.replication_factor.value.map(i64::from)),
        ("min_insync_replicas", ct.min_insync_replicas.value.map(i64::from)),
    ] {
        if v.is_some_and(|v| v < 1) {
            errors.push(format!("policies.create_topics.{name}.value must be at least 1"));
        }
    }
    if policies.deletes.protected_topics.iter().any(|g| g.as_str().is_empty()) {
        errors.push("policies.deletes.protected_topics has an empty pattern".into());
    }
    let scopes = scopes(&policies.scopes, &policies.create_topics, errors);
    Config {
        listen,
        upstream,
        limits,
        produce_acks: ProduceAcksRule { action: policies.produce_acks.action, exempt },
        create_topics: CreateTopicsRule { rules: policies.create_topics, exempt: ct_exempt },
        metadata: policies.metadata,
        deletes: policies.deletes,
        scopes,
        audit,
    }
}

fn scopes(raw: &[RawScope], base: &CreateTopics, errors: &mut Vec<String>) -> Vec<Scope> {
    let mut names = std::collections::BTreeSet::new();
    raw.iter()
        .enumerate()
        .map(|(i, r)| {
            let at = format!("policies.scopes[{i}]");
            if r.name.trim().is_empty() {
                errors.push(format!("{at}.name must not be empty"));
            } else if !names.insert(r.name.clone()) {
                errors.push(format!("{at}.name `{}` is used by another scope", r.name));
            }
            let m = &r.matcher;
            if m.topics.is_empty() && m.client_ids.is_empty() && m.source_cidrs.is_empty() {
                errors.push(format!("{at}.match needs topics, client_ids or source_cidrs"));
            }
            let ex = exemptions(
                &RawExemptions { client_ids: m.client_ids.clone(), source_cidrs: m.source_cidrs.clone(), topics: m.topics.clone() },
                &format!("{at}.match"),
                errors,
            );
            if r.produce_acks.is_none() && r.create_topics.is_none() {
                errors.push(format!("{at} changes no rule: give produce_acks or create_topics"));
            }
            if let Some(p) = &r.create_topics {
                for (name, action) in [
                    ("rf_above_min_isr", p.rf_above_min_isr.map(|c| c.action)),
                    ("max_message_bytes", p.max_message_bytes.map(|b| b.action)),
                ] {
                    if action == Some(Action::Upgrade) {
                        errors.push(format!(
                            "{at}.create_topics.{name}.action cannot be upgrade (no safe rewrite exists): use reject or audit"
                        ));
                    }
                }
            }
            Scope {
                name: r.name.clone(),
                topics: ex.topics,
                client_ids: ex.client_ids,
                source_cidrs: ex.source_cidrs,
                produce_acks: r.produce_acks.map(|p| p.action),
                create_topics: r.create_topics.as_ref().map(|p| p.apply(base)),
            }
        })
        .collect()
}

fn exemptions(raw: &RawExemptions, at: &str, errors: &mut Vec<String>) -> Exemptions {
    let mut source_cidrs = Vec::new();
    for s in &raw.source_cidrs {
        match s.parse::<IpNet>().or_else(|_| s.parse::<IpAddr>().map(IpNet::from)) {
            Ok(n) => source_cidrs.push(n),
            Err(_) => errors.push(format!("{at}.source_cidrs entry `{s}` is not an address or CIDR range")),
        }
    }
    for (field, globs) in [("client_ids", &raw.client_ids), ("topics", &raw.topics)] {
        if globs.iter().any(|g| g.as_str().is_empty()) {
            errors.push(format!("{at}.{field} has an empty pattern"));
        }
    }
    Exemptions { client_ids: raw.client_ids.clone(), source_cidrs, topics: raw.topics.clone() }
}

#[cfg(test)]
mod tests;

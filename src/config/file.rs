//! The configuration file as written: serde types for every section, with their defaults.
//! Validation (`validate`) turns them into a `Config` that cannot be invalid.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

pub use super::audit::{Audit, AuditSink};
use crate::pattern::Glob;
use crate::policy::rules::{Action, CreateTopics, CreateTopicsPatch, Deletes, Detectors, MetadataPolicy, RawExemptions};

pub const DEFAULT_MAX_FRAME_BYTES: usize = 100 * 1024 * 1024;

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
pub struct RawConfig {
    pub listen: Listen,
    pub upstream: Upstream,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub policies: RawPolicies,
    #[serde(default)]
    pub audit: Audit,
    #[serde(default)]
    pub admin: Admin,
    #[serde(default)]
    pub detectors: Detectors,
}

/// The operator's HTTP endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Admin {
    /// host:port for /metrics, /healthz and /readyz; null turns the endpoint off.
    #[serde(default = "default_admin_listen")]
    pub listen: Option<String>,
}

fn default_admin_listen() -> Option<String> {
    Some("127.0.0.1:9309".into())
}

impl Default for Admin {
    fn default() -> Self {
        Self { listen: default_admin_listen() }
    }
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
    /// Pending connections the kernel queues per listener; bursts of clients need more than
    /// std's 128.
    #[serde(default = "default_backlog")]
    pub backlog: u32,
    /// TLS on every listener (bootstrap and per broker) when present.
    #[serde(default)]
    pub tls: Option<ListenTls>,
    #[serde(default)]
    pub sasl: ListenSasl,
}

fn default_bind_host() -> String {
    "0.0.0.0".into()
}

fn default_backlog() -> u32 {
    1024
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ListenTls {
    /// PEM certificate chain and key the proxy presents to clients.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// PEM CA certificates that sign client certificates (needed unless client_auth is none).
    pub ca_file: Option<PathBuf>,
    /// Kafka's ssl.principal.mapping.rules: `RULE:pattern/replacement/[LU]` entries and
    /// `DEFAULT`, applied in order to the client certificate's subject (RFC 2253).
    #[serde(default = "default_mapping_rules")]
    pub principal_mapping_rules: Vec<String>,
    /// What the mapping rules are applied to: the subject (Kafka's behaviour), or the first
    /// subject alternative name of a kind (service meshes name workloads by URI SAN).
    #[serde(default)]
    pub principal_source: PrincipalSource,
}

/// The part of a client certificate that names its principal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalSource {
    /// The subject, RFC 2253 (`CN=alice,OU=payments,O=Example`).
    #[default]
    Subject,
    /// The first DNS name among the subject alternative names.
    SanDns,
    /// The first URI (e.g. `spiffe://example.org/ns/payments/sa/app`).
    SanUri,
    /// The first email address (rfc822Name).
    SanEmail,
}

fn default_mapping_rules() -> Vec<String> {
    vec!["DEFAULT".into()]
}

/// Whether clients must present a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    #[default]
    None,
    Requested,
    Required,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ListenSasl {
    /// Read the user name out of SASL/PLAIN exchanges for audit and scopes. Off by default: the
    /// PLAIN token carries the password, which the proxy then holds in memory for a moment.
    #[serde(default)]
    pub plain_principal: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Upstream {
    /// `host:port` of one or more brokers of the cluster.
    pub bootstrap_servers: Vec<String>,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// How long the proxy's own requests to the cluster (discovery, the current config of a
    /// resource whose change is judged) may take; Kafka's request.timeout.ms default.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// TLS to the brokers (client connections and the proxy's own) when present.
    #[serde(default)]
    pub tls: Option<UpstreamTls>,
    /// Credentials for the proxy's own requests on a SASL cluster. Clients' own SASL exchanges
    /// pass through untouched.
    #[serde(default)]
    pub sasl: Option<UpstreamSasl>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct UpstreamTls {
    /// PEM CA certificates for the brokers; the system roots when absent.
    pub ca_file: Option<PathBuf>,
    /// The name to verify brokers' certificates against, instead of the host they advertise.
    pub server_name: Option<String>,
    /// A certificate and key for mTLS to the brokers.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    #[serde(rename = "PLAIN")]
    Plain,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct UpstreamSasl {
    pub mechanism: SaslMechanism,
    pub username: String,
    /// Where the password is: a file (its first line) or an environment variable. Never inline.
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
}

fn default_connect_timeout_ms() -> u64 {
    10_000
}

fn default_request_timeout_ms() -> u64 {
    30_000
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
    /// Client connections open at once, over all listeners; beyond it new ones are refused.
    /// Unset: what the file-descriptor limit allows (two descriptors per client, some kept for
    /// listeners and the proxy's own connections).
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Client connections open at once from one source address; unset means no limit.
    #[serde(default)]
    pub max_connections_per_source: Option<usize>,
    /// A client connection with nothing in flight and no request for this long is closed
    /// (Kafka's connections.max.idle.ms default).
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// Largest frame accepted from a client that has not authenticated yet, on a cluster that
    /// requires SASL (the broker's own pre-authentication limit).
    #[serde(default = "default_pre_auth_max_frame")]
    pub pre_auth_max_frame_bytes: usize,
    /// How long a client may take to complete its TLS handshake.
    #[serde(default = "default_tls_handshake_timeout_ms")]
    pub tls_handshake_timeout_ms: u64,
    /// After SIGTERM, how long /readyz answers 503 while the listeners still accept, so load
    /// balancers stop sending new connections before the proxy refuses them.
    #[serde(default)]
    pub shutdown_delay_ms: u64,
    /// Bytes of upgraded acks=0 requests held for redelivery per client connection; when full the
    /// proxy stops reading that client until the broker acknowledges some.
    #[serde(default = "default_redelivery_per_connection")]
    pub redelivery_bytes_per_connection: usize,
    /// The same over all connections (and over what is being re-sent after they closed).
    #[serde(default = "default_redelivery_total")]
    pub redelivery_bytes_total: usize,
    /// A Produce request larger than this (acks=all, nothing to judge in its body) is forwarded
    /// while it is still arriving instead of once it is whole; 0 turns this off.
    #[serde(default = "default_cut_through")]
    pub cut_through_bytes: usize,
}

fn default_cut_through() -> usize {
    64 * 1024
}

fn default_redelivery_per_connection() -> usize {
    16 * 1024 * 1024
}

fn default_redelivery_total() -> usize {
    256 * 1024 * 1024
}

fn default_idle_timeout_ms() -> u64 {
    600_000
}

fn default_pre_auth_max_frame() -> usize {
    512 * 1024
}

fn default_tls_handshake_timeout_ms() -> u64 {
    10_000
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
        Self {
            max_frame_bytes: default_max_frame(),
            max_in_flight: default_max_in_flight(),
            drain_timeout_ms: default_drain_timeout_ms(),
            max_connections: None,
            max_connections_per_source: None,
            idle_timeout_ms: default_idle_timeout_ms(),
            pre_auth_max_frame_bytes: default_pre_auth_max_frame(),
            tls_handshake_timeout_ms: default_tls_handshake_timeout_ms(),
            shutdown_delay_ms: 0,
            redelivery_bytes_per_connection: default_redelivery_per_connection(),
            redelivery_bytes_total: default_redelivery_total(),
            cut_through_bytes: default_cut_through(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RawPolicies {
    #[serde(default)]
    pub produce_acks: ProduceAcks,
    #[serde(default)]
    pub idempotence: Idempotence,
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
pub struct ProduceAcks {
    #[serde(default = "default_upgrade")]
    pub action: Action,
    #[serde(default)]
    pub exempt: RawExemptions,
    /// Upgraded acks=0 requests are held and re-sent (stamped with the proxy's producer id, so
    /// never written twice) until the broker acknowledges them or `delivery_timeout_ms` passes.
    #[serde(default = "crate::policy::rules::default_true")]
    pub redeliver: bool,
    #[serde(default = "default_delivery_timeout_ms")]
    pub delivery_timeout_ms: u64,
}

fn default_delivery_timeout_ms() -> u64 {
    120_000
}

fn default_upgrade() -> Action {
    Action::Upgrade
}

impl Default for ProduceAcks {
    fn default() -> Self {
        Self {
            action: Action::Upgrade,
            exempt: RawExemptions::default(),
            redeliver: true,
            delivery_timeout_ms: default_delivery_timeout_ms(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Idempotence {
    /// audit (default): count and audit batches without a producer id; reject: answer them
    /// POLICY_VIOLATION.
    #[serde(default = "default_audit")]
    pub action: Action,
    #[serde(default)]
    pub exempt: RawExemptions,
}

fn default_audit() -> Action {
    Action::Audit
}

impl Default for Idempotence {
    fn default() -> Self {
        Self { action: Action::Audit, exempt: RawExemptions::default() }
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct RawScope {
    pub name: String,
    #[serde(rename = "match")]
    pub matcher: RawMatch,
    #[serde(default)]
    pub produce_acks: Option<AcksPatch>,
    #[serde(default)]
    pub idempotence: Option<AcksPatch>,
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
    /// Authenticated principals (`User:alice`, patterns).
    #[serde(default)]
    pub principals: Vec<Glob>,
    #[serde(default)]
    pub source_cidrs: Vec<String>,
}

#[derive(Clone, Copy, Debug, Deserialize)]
pub struct AcksPatch {
    pub action: Action,
}

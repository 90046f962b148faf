//! The legacy path (`handlers::legacy`) driven from outside: CreateTopics v0/v1 and DeleteTopics
//! v0 requests judged under a default config, and the `Plan` their translation leaves behind, which
//! `legacy::answer` needs to read the broker's response.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use kafka_durability_proxy::audit::{self, Origin};
use kafka_durability_proxy::cluster::{ClusterError, ClusterView, ConfigEntry};
use kafka_durability_proxy::config::{self, Config};
use kafka_durability_proxy::handlers::legacy::{self, Plan};
use kafka_durability_proxy::handlers::split::Site;
use kafka_durability_proxy::handlers::{Ctx, Disposition, HandlerError, Route};
use kafka_durability_proxy::policy::topics::BrokerDefaults;
use kafka_durability_proxy::protocol::peek_request_header;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, DeleteTopicsRequest, TopicName};
use kafka_protocol::protocol::VersionRange;

use super::frames::request_frame;
use super::requests::encode;
use super::responses::LEGACY_NAMES;
use super::s;

struct Env {
    cfg: Config,
    audit: audit::Recorder,
    _rt: tokio::runtime::Runtime,
}

/// A default config and an audit log nobody drains (events past its capacity are counted and
/// dropped), made once per test binary.
fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let audit = {
            let _in = rt.enter();
            let log = audit::spawn(Box::new(tokio::io::sink()), 16, Duration::from_secs(3600)).0;
            audit::Recorder::new(log, std::sync::Arc::new(kafka_durability_proxy::metrics::Metrics::new()))
        };
        let cfg = config::parse(
            "listen:\n  advertised_host: p\n  bootstrap_port: 1\n  broker_port_base: 100\nupstream:\n  bootstrap_servers: ['b:1']\n",
        )
        .expect("config");
        Env { cfg, audit, _rt: rt }
    })
}

/// Fills the audit channel, so that measured runs find it full (events are counted and dropped)
/// rather than paying for its first block.
pub fn warm_up() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        for _ in 0..8 {
            for which in 0..=2 {
                drop(plan(which, 6));
            }
        }
    });
}

/// A cluster that offers one version range for every API.
struct Versions(VersionRange);

impl ClusterView for Versions {
    fn broker_defaults(&self) -> BrokerDefaults {
        BrokerDefaults::KAFKA
    }
    fn api_versions(&self, _api_key: i16) -> Option<VersionRange> {
        Some(self.0)
    }
    async fn describe_configs(&self, _t: i8, _n: &str) -> Result<Option<Vec<ConfigEntry>>, ClusterError> {
        Ok(None)
    }
    async fn replication_factor(&self, _topic: &str) -> Result<Option<i16>, ClusterError> {
        Ok(None)
    }
}

fn ctx(version: i16) -> Ctx<'static> {
    let e = env();
    let origin = Origin {
        client_addr: "10.0.0.9:5000".parse().expect("addr"),
        client_id: Some("fuzz".into()),
        principal: None,
        principal_unverified: false,
        tls_subject: None,
        api: "Admin",
        api_version: version,
    };
    Ctx { policies: &e.cfg.policies, defaults: BrokerDefaults::KAFKA, defaults_refused: None, audit: &e.audit, origin, correlation_id: 9 }
}

/// Runs the legacy request handler on a client frame: `which` 0 and 1 are CreateTopics v0 and
/// v1, 2 is DeleteTopics v0; the broker offers up to `broker_max`.
pub fn handle(frame: &Bytes, which: i16, broker_max: i16) -> Option<Result<Route, HandlerError>> {
    let body_offset = peek_request_header(frame)?.body_offset?;
    let api_key = if which == 2 { ApiKey::DeleteTopics } else { ApiKey::CreateTopics };
    let site = Site { frame, body_offset, api_key, api: "legacy" };
    let view = Versions(VersionRange { min: 0, max: broker_max });
    Some(if which == 2 { legacy::delete_topics(&ctx(0), &view, &site) } else { legacy::create_topics(&ctx(which), &view, &site) })
}

/// A valid legacy request frame naming `LEGACY_NAMES`, all of them durable enough to forward.
pub fn request(which: i16) -> Vec<u8> {
    let names = LEGACY_NAMES.iter().map(|n| TopicName(s(n)));
    if which == 2 {
        let body = encode(&DeleteTopicsRequest::default().with_timeout_ms(1000).with_topic_names(names.collect()), 1);
        return request_frame(ApiKey::DeleteTopics, 0, 9, Some("fuzz"), &body);
    }
    let durable = |n| {
        CreatableTopic::default()
            .with_name(n)
            .with_num_partitions(3)
            .with_replication_factor(3)
            .with_configs(vec![CreatableTopicConfig::default().with_name(s("min.insync.replicas")).with_value(Some(s("2")))])
    };
    let mut body = encode(&CreateTopicsRequest::default().with_timeout_ms(1000).with_topics(names.map(durable).collect()), 2);
    if which == 0 {
        body.pop();
    }
    request_frame(ApiKey::CreateTopics, which, 9, Some("fuzz"), &body)
}

/// The plan for answering a CreateTopics (`api` 0/1: the client's version) or DeleteTopics v0
/// (`api` 2) request that was translated to `broker_version`.
pub fn plan(which: i16, broker_version: i16) -> Box<Plan> {
    match handle(&Bytes::from(request(which)), which, broker_version) {
        Some(Ok(Route::Forward(_, Disposition::Legacy(plan)))) => plan,
        other => panic!("legacy request {which} not translated to v{broker_version}: {other:?}"),
    }
}

/// Which legacy request a broker response of this API and version answers, as `plan` takes it:
/// CreateTopics responses alternate between client versions 0 and 1.
pub fn which(delete: bool, broker_version: i16) -> i16 {
    if delete {
        2
    } else {
        broker_version % 2
    }
}

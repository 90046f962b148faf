//! IncrementalAlterConfigs judged against what a scripted `ClusterView` reports, without sockets:
//! the resulting config decides, and a resource whose state cannot be read is refused.

use std::collections::HashMap;

use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::*;
use crate::cluster::view::TOPIC;
use crate::cluster::{ClusterError, ConfigEntry};

/// A cluster that answers from tables: topic configs (overrides have source 1) and replication
/// factors; a topic named in `refused` fails as a refused login would.
struct Reports {
    configs: HashMap<&'static str, Vec<ConfigEntry>>,
    rf: HashMap<&'static str, i16>,
    refused: &'static str,
}

impl ClusterView for Reports {
    fn broker_defaults(&self) -> BrokerDefaults {
        BrokerDefaults::KAFKA
    }
    fn api_versions(&self, _api_key: i16) -> Option<kafka_protocol::protocol::VersionRange> {
        None
    }
    async fn describe_configs(&self, _t: i8, name: &str) -> Result<Option<Vec<ConfigEntry>>, ClusterError> {
        if name == self.refused {
            return Err(ClusterError::Auth { addr: "b:9092".into(), user: "kdp".into(), reason: "invalid-proof".into() });
        }
        Ok(self.configs.get(name).cloned())
    }
    async fn replication_factor(&self, topic: &str) -> Result<Option<i16>, ClusterError> {
        Ok(self.rf.get(topic).copied())
    }
}

fn entry(name: &str, value: &str, source: i8) -> ConfigEntry {
    ConfigEntry { name: name.into(), value: Some(value.into()), source }
}

fn set(topic: &str, key: &str, value: &str) -> AlterConfigsResource {
    AlterConfigsResource::default()
        .with_resource_type(TOPIC)
        .with_resource_name(s(topic))
        .with_configs(vec![AlterableConfig::default().with_name(s(key)).with_config_operation(0).with_value(Some(s(value)))])
}

#[tokio::test]
async fn the_cluster_as_reported_decides_and_an_unreadable_resource_is_refused() {
    let cfg = cfg("");
    let audit = audit();
    let view = Reports {
        configs: HashMap::from([
            ("orders", vec![entry("min.insync.replicas", "2", 1), entry("retention.ms", "604800000", 5)]),
            ("thin", vec![entry("min.insync.replicas", "2", 1)]),
        ]),
        rf: HashMap::from([("orders", 3), ("thin", 2)]),
        refused: "secret",
    };
    for version in 0..=1 {
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
            set("orders", "min.insync.replicas", "1"),
            set("orders2", "retention.ms", "86400000"),
            set("thin", "retention.ms", "86400000"),
            set("secret", "retention.ms", "86400000"),
        ]);
        let (frame, off) = request(ApiKey::IncrementalAlterConfigs, version, &req);
        let route =
            alter_configs::handle(&ctx(&cfg, &audit, version), &view, &site(&frame, off, ApiKey::IncrementalAlterConfigs), true).await;
        let Ok(Route::Forward(fwd, Disposition::Merge(plan))) = route else {
            panic!("v{version}: expected a partial forward, got {route:?}")
        };
        let sent: IncrementalAlterConfigsRequest = body_of(&fwd, version);
        let names: Vec<_> = sent.resources.iter().map(|r| r.resource_name.to_string()).collect();
        // A topic the cluster does not report is left to the broker; an RF-2 topic whose untouched
        // shape is already below the rules may still change its retention.
        assert_eq!(names, vec!["orders2", "thin"], "v{version}");
        let broker = IncrementalAlterConfigsResponse::default().with_responses(
            names
                .iter()
                .map(|n| {
                    kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                        .with_resource_type(TOPIC)
                        .with_resource_name(s(n))
                })
                .collect(),
        );
        let resp = frames::response(ApiKey::IncrementalAlterConfigs, version, 9, &broker).expect("encode");
        let merged: IncrementalAlterConfigsResponse =
            response_body(&split::merge(&resp, version, *plan).expect("merge"), ApiKey::IncrementalAlterConfigs, version);
        let got: Vec<_> = merged.responses.iter().map(|r| (r.resource_name.to_string(), r.error_code)).collect();
        assert_eq!(got, vec![("orders".into(), 44), ("orders2".into(), 0), ("thin".into(), 0), ("secret".into(), 44)], "v{version}");
        let message = |i: usize| merged.responses[i].error_message.as_ref().map(|m| m.to_string()).unwrap_or_default();
        assert!(message(0).contains("min.insync.replicas"), "{}", message(0));
        assert!(message(3).contains("could not be read from the cluster") && message(3).contains("invalid-proof"), "{}", message(3));
    }
}

#[tokio::test]
async fn while_the_cluster_refuses_the_proxy_its_defaults_a_topic_config_change_is_refused() {
    let cfg = cfg("");
    let audit = audit();
    let view = Reports {
        configs: HashMap::from([("orders", vec![entry("min.insync.replicas", "2", 1)])]),
        rf: HashMap::from([("orders", 3)]),
        refused: "",
    };
    // Deleting an override falls back to a default the proxy could not read: refused, not guessed.
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(TOPIC)
        .with_resource_name(s("orders"))
        .with_configs(vec![AlterableConfig::default().with_name(s("unclean.leader.election.enable")).with_config_operation(1)])]);
    let (frame, off) = request(ApiKey::IncrementalAlterConfigs, 1, &req);
    let mut c = ctx(&cfg, &audit, 1);
    c.defaults_refused = Some("broker b:9092 refused the proxy's own credentials (upstream.sasl, user kdp): invalid-proof".into());
    let route = alter_configs::handle(&c, &view, &site(&frame, off, ApiKey::IncrementalAlterConfigs), true).await;
    let Ok(Route::Answer(resp)) = route else { panic!("expected a refusal, got {route:?}") };
    let m: IncrementalAlterConfigsResponse = response_body(&resp, ApiKey::IncrementalAlterConfigs, 1);
    assert_eq!(m.responses[0].error_code, 44);
    let msg = m.responses[0].error_message.as_ref().map(|m| m.to_string()).unwrap_or_default();
    assert!(msg.contains("broker defaults") && msg.contains("invalid-proof"), "{msg}");
    // Known defaults: the same change is judged and forwarded (Kafka's default is false).
    let route = alter_configs::handle(&ctx(&cfg, &audit, 1), &view, &site(&frame, off, ApiKey::IncrementalAlterConfigs), true).await;
    assert!(matches!(route, Ok(Route::Forward(_, Disposition::Forward))), "{route:?}");
}

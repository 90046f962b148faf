//! Start-up discovery and the broker-defaults refresh: the proxy asks the cluster for its brokers
//! until it answers (so every broker has a listener after a restart, before any client asks), then
//! keeps the defaults topics inherit current.

use std::time::Duration;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{DescribeConfigsRequest, MetadataRequest};
use kafka_protocol::protocol::StrBytes;

use super::client::versions;
use super::error::ClusterError;
use super::view::{Cluster, ClusterView, BROKER};
use crate::policy::topics::{defaults_from, BrokerDefaults};
use crate::protocol::errors;

/// How often broker defaults are read again.
const DEFAULTS_REFRESH: Duration = Duration::from_secs(300);

/// Asks for the cluster's brokers until it answers, handing each to `learn` (which binds its
/// listener), with exponential back-off. Returns how many brokers were found.
pub async fn discover<E: std::fmt::Display>(cluster: &Cluster, learn: impl Fn(i32, &str, i32) -> Result<(), E>) -> usize {
    let mut delay = Duration::from_millis(500);
    loop {
        match discover_once(cluster, &learn).await {
            Ok(n) => {
                tracing::info!(brokers = n, "discovered cluster brokers");
                return n;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "broker discovery failed");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

async fn discover_once<E: std::fmt::Display>(cluster: &Cluster, learn: &impl Fn(i32, &str, i32) -> Result<(), E>) -> Result<usize, String> {
    // No topics, and never auto-create: the proxy asks only for the brokers.
    let req = MetadataRequest::default().with_topics(Some(vec![])).with_allow_auto_topic_creation(false);
    let meta = cluster.client.call(&req, versions(1, 12)).await.map_err(|e| {
        cluster.note_failure(&e);
        e.to_string()
    })?;
    for b in &meta.brokers {
        learn(b.node_id.0, &b.host, b.port).map_err(|e| e.to_string())?;
    }
    Ok(meta.brokers.len())
}

/// Keeps the cluster's broker defaults current: DescribeConfigs on one broker, every few minutes.
pub async fn refresh_defaults(cluster: &Cluster) {
    loop {
        match fetch_defaults(cluster).await {
            Ok(d) => {
                cluster.clear_refusal();
                if cluster.set_defaults(d) {
                    tracing::info!(?d, "broker defaults for topic rules");
                }
            }
            Err(e) => {
                cluster.note_failure(&e);
                tracing::warn!(error = %e, refused = e.is_refusal(), "cannot read broker defaults; topic rules keep the last known (or Kafka's shipped) defaults, and refuse while the cluster refuses the proxy")
            }
        }
        tokio::time::sleep(DEFAULTS_REFRESH).await;
    }
}

async fn fetch_defaults(cluster: &Cluster) -> Result<BrokerDefaults, ClusterError> {
    let Some(node) = cluster.topology.any_node() else {
        return Ok(cluster.broker_defaults());
    };
    let req = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
        .with_resource_type(BROKER)
        .with_resource_name(StrBytes::from_string(node.to_string()))
        .with_configuration_keys(None)]);
    let resp = cluster.client.call(&req, versions(1, 4)).await?;
    // A broker that answers but denies the proxy its configs (an ACL) is a refusal, not defaults.
    if let Some(r) = resp.results.iter().find(|r| errors::is_authorization(r.error_code)) {
        let message = r.error_message.as_ref().map(|m| m.to_string());
        return Err(ClusterError::Kafka { api: "DescribeConfigs", code: r.error_code, message });
    }
    let entries: Vec<(String, Option<String>)> = resp
        .results
        .iter()
        .filter(|r| r.error_code == 0)
        .flat_map(|r| r.configs.iter().map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string()))))
        .collect();
    Ok(defaults_from(&entries))
}

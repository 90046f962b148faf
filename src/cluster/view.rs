//! What handlers may ask of the cluster to judge a request, as a small trait so they are tested
//! without sockets, and its implementation over the proxy's cluster client.

use std::future::Future;
use std::sync::{Arc, RwLock};

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{DescribeConfigsRequest, MetadataRequest, TopicName};
use kafka_protocol::protocol::{StrBytes, VersionRange};

use super::client::{versions, ClientSettings, ClusterClient};
use super::error::ClusterError;
use super::topology::Topology;
use crate::metrics::Metrics;
use crate::policy::topics::BrokerDefaults;
use crate::protocol::errors;

/// Config resource types (DescribeConfigs, AlterConfigs).
pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;

/// One config entry as DescribeConfigs reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    /// config_source: 1-3 are overrides (topic, dynamic broker), 4+ static or default.
    pub source: i8,
}

impl ConfigEntry {
    pub fn is_override(&self) -> bool {
        matches!(self.source, 1..=3)
    }
}

/// Questions about the cluster's current state.
pub trait ClusterView: Send + Sync {
    /// What topics inherit for what their request leaves unset (refreshed in the background).
    fn broker_defaults(&self) -> BrokerDefaults;
    /// A resource's config entries; `None` for a topic that does not exist.
    fn describe_configs(
        &self,
        resource_type: i8,
        name: &str,
    ) -> impl Future<Output = Result<Option<Vec<ConfigEntry>>, ClusterError>> + Send;
    /// The versions of an API the brokers support, as last negotiated; `None` before any.
    fn api_versions(&self, api_key: i16) -> Option<VersionRange>;
    /// A topic's replication factor (its smallest replica set); `None` when the topic is unknown.
    fn replication_factor(&self, topic: &str) -> impl Future<Output = Result<Option<i16>, ClusterError>> + Send;
    /// Why the broker defaults could not be read, when the cluster refused the proxy's own
    /// requests (credentials or ACLs): rules that depend on them then refuse, never allow.
    fn defaults_refused(&self) -> Option<String> {
        None
    }
}

/// The cluster as the proxy knows it: its brokers, its defaults, and a client to ask it.
pub struct Cluster {
    pub topology: Topology,
    pub client: ClusterClient,
    pub metrics: Arc<Metrics>,
    defaults: RwLock<BrokerDefaults>,
    /// Set while the cluster refuses the proxy's own requests (see `ClusterView::defaults_refused`).
    refusal: RwLock<Option<String>>,
}

impl Cluster {
    pub fn new(settings: ClientSettings, metrics: Arc<Metrics>) -> Self {
        Self {
            topology: Topology::default(),
            client: ClusterClient::new(settings, metrics.clone()),
            metrics,
            defaults: RwLock::new(BrokerDefaults::KAFKA),
            refusal: RwLock::new(None),
        }
    }

    /// Remembers a refusal of the proxy's own request (bad credentials, missing ACL); other
    /// failures (a broker down, a timeout) leave the last known state.
    pub fn note_failure(&self, e: &ClusterError) {
        if e.is_refusal() {
            *self.refusal.write().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
        }
    }

    /// The cluster answered the proxy's own request for its defaults.
    pub fn clear_refusal(&self) {
        *self.refusal.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Replaces the broker defaults; true when they changed.
    pub fn set_defaults(&self, d: BrokerDefaults) -> bool {
        let mut cur = self.defaults.write().unwrap_or_else(|p| p.into_inner());
        let changed = *cur != d;
        *cur = d;
        changed
    }
}

impl ClusterView for Cluster {
    fn broker_defaults(&self) -> BrokerDefaults {
        *self.defaults.read().unwrap_or_else(|p| p.into_inner())
    }

    fn defaults_refused(&self) -> Option<String> {
        self.refusal.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn api_versions(&self, api_key: i16) -> Option<VersionRange> {
        self.client.api_versions(api_key)
    }

    async fn describe_configs(&self, resource_type: i8, name: &str) -> Result<Option<Vec<ConfigEntry>>, ClusterError> {
        // All keys (null): tansu fails on a request naming keys; callers pick what they need.
        let req = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_owned()))
            .with_configuration_keys(None)]);
        // v1+ reports config_source, which tells overrides from defaults.
        let resp = self.client.call(&req, versions(1, 4)).await?;
        let Some(r) = resp.results.first() else {
            return Err(ClusterError::Kafka { api: "DescribeConfigs", code: errors::NONE, message: Some("empty response".into()) });
        };
        match r.error_code {
            errors::NONE => Ok(Some(
                r.configs
                    .iter()
                    .map(|c| ConfigEntry {
                        name: c.name.to_string(),
                        value: c.value.as_ref().map(|v| v.to_string()),
                        source: c.config_source,
                    })
                    .collect(),
            )),
            errors::UNKNOWN_TOPIC_OR_PARTITION if resource_type == TOPIC => Ok(None),
            code => Err(ClusterError::Kafka { api: "DescribeConfigs", code, message: r.error_message.as_ref().map(|m| m.to_string()) }),
        }
    }

    async fn replication_factor(&self, topic: &str) -> Result<Option<i16>, ClusterError> {
        let req = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(topic.to_owned()))))]))
            .with_allow_auto_topic_creation(false);
        // v4+ carries allow_auto_topic_creation: the question must not create the topic.
        let resp = self.client.call(&req, versions(4, 12)).await?;
        Ok(resp
            .topics
            .iter()
            .find(|t| t.error_code == errors::NONE && t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
            .and_then(|t| t.partitions.iter().map(|p| p.replica_nodes.len()).min())
            .and_then(|n| i16::try_from(n).ok()))
    }
}

//! Where a topic's partitions live, for the proxy's own producer: each partition's leader
//! address as Metadata reports it, and creating the topic (CreateTopics) in a durable shape when
//! it is missing and that was asked for. The proxy's own requests are not judged by its policies.

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{CreateTopicsRequest, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::client::{versions, ClusterClient};
use super::error::ClusterError;
use crate::protocol::errors;

/// The shape a missing topic is created in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSpec {
    pub partitions: i32,
    pub replication_factor: i16,
    /// Topic configs set at creation, e.g. `min.insync.replicas`.
    pub configs: Vec<(String, String)>,
}

/// The partitions of a topic that have a leader the proxy can reach, by partition index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leaders {
    /// (partition, leader `host:port`), sorted by partition.
    pub partitions: Vec<(i32, String)>,
}

impl Leaders {
    pub fn leader(&self, partition: i32) -> Option<&str> {
        self.partitions.iter().find(|(p, _)| *p == partition).map(|(_, a)| a.as_str())
    }
}

/// Asks the cluster where `topic`'s partitions are led; `None` when the topic does not exist.
/// Never creates the topic by asking.
pub async fn leaders(client: &ClusterClient, topic: &str) -> Result<Option<Leaders>, ClusterError> {
    let req = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(topic.to_owned()))))]))
        .with_allow_auto_topic_creation(false);
    // v4+ carries allow_auto_topic_creation.
    let resp = client.call(&req, versions(4, 12)).await?;
    leaders_of(&resp, topic)
}

/// The leaders of `topic` in a Metadata response: `None` for an unknown topic, an error when it
/// exists but no partition has a known leader (retriable: an election may be under way).
pub fn leaders_of(resp: &MetadataResponse, topic: &str) -> Result<Option<Leaders>, ClusterError> {
    let Some(t) = resp.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic)) else {
        return Ok(None);
    };
    match t.error_code {
        errors::NONE => {}
        errors::UNKNOWN_TOPIC_OR_PARTITION => return Ok(None),
        code => return Err(ClusterError::Kafka { api: "Metadata", code, message: Some(format!("topic {topic}")) }),
    }
    let address = |node: i32| resp.brokers.iter().find(|b| b.node_id.0 == node).map(|b| format!("{}:{}", b.host.as_str(), b.port));
    let mut partitions: Vec<(i32, String)> = t
        .partitions
        .iter()
        .filter(|p| p.error_code == errors::NONE || p.error_code == errors::REPLICA_NOT_AVAILABLE)
        .filter_map(|p| Some((p.partition_index, address(p.leader_id.0)?)))
        .collect();
    partitions.sort();
    if partitions.is_empty() {
        let message = Some(format!("no partition of {topic} has a known leader"));
        return Err(ClusterError::Kafka { api: "Metadata", code: errors::LEADER_NOT_AVAILABLE, message });
    }
    Ok(Some(Leaders { partitions }))
}

/// Creates `topic` in the shape `spec` gives; a topic created meanwhile by someone else is fine.
pub async fn create_topic(client: &ClusterClient, topic: &str, spec: &TopicSpec) -> Result<(), ClusterError> {
    let s = |v: &str| StrBytes::from_string(v.to_owned());
    let configs = spec.configs.iter().map(|(k, v)| CreatableTopicConfig::default().with_name(s(k)).with_value(Some(s(v)))).collect();
    let creatable = CreatableTopic::default()
        .with_name(TopicName(s(topic)))
        .with_num_partitions(spec.partitions)
        .with_replication_factor(spec.replication_factor)
        .with_configs(configs);
    let timeout_ms = i32::try_from(client.settings().request_timeout.as_millis()).unwrap_or(i32::MAX);
    let req = CreateTopicsRequest::default().with_topics(vec![creatable]).with_timeout_ms(timeout_ms);
    let resp = client.call(&req, versions(2, 7)).await?;
    let Some(r) = resp.topics.iter().find(|r| r.name.0.as_str() == topic) else {
        return Err(ClusterError::Kafka { api: "CreateTopics", code: errors::NONE, message: Some(format!("no result for {topic}")) });
    };
    match r.error_code {
        errors::NONE | errors::TOPIC_ALREADY_EXISTS => Ok(()),
        code => Err(ClusterError::Kafka { api: "CreateTopics", code, message: r.error_message.as_ref().map(|m| m.to_string()) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic};
    use kafka_protocol::messages::BrokerId;

    fn response(topic_error: i16, parts: &[(i32, i32, i16)]) -> MetadataResponse {
        let partitions = parts
            .iter()
            .map(|(p, leader, code)| {
                MetadataResponsePartition::default().with_partition_index(*p).with_leader_id(BrokerId(*leader)).with_error_code(*code)
            })
            .collect();
        MetadataResponse::default()
            .with_brokers(vec![
                MetadataResponseBroker::default().with_node_id(BrokerId(1)).with_host(StrBytes::from_static_str("b1")).with_port(9092),
                MetadataResponseBroker::default().with_node_id(BrokerId(2)).with_host(StrBytes::from_static_str("b2")).with_port(9093),
            ])
            .with_topics(vec![MetadataResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("audit"))))
                .with_error_code(topic_error)
                .with_partitions(partitions)])
    }

    #[test]
    fn leaders_are_learned_addresses_by_partition() {
        let r = response(errors::NONE, &[(1, 2, errors::NONE), (0, 1, errors::NONE), (2, -1, errors::LEADER_NOT_AVAILABLE), (3, 7, 0)]);
        let l = leaders_of(&r, "audit").expect("ok").expect("exists");
        assert_eq!(l.partitions, vec![(0, "b1:9092".to_owned()), (1, "b2:9093".to_owned())]);
        assert_eq!((l.leader(1), l.leader(2)), (Some("b2:9093"), None));
    }

    #[test]
    fn unknown_topic_is_none_and_leaderless_topic_is_retriable() {
        assert_eq!(leaders_of(&response(errors::UNKNOWN_TOPIC_OR_PARTITION, &[]), "audit").expect("ok"), None);
        assert_eq!(leaders_of(&response(errors::NONE, &[]), "other").expect("ok"), None, "absent from the answer");
        let e = leaders_of(&response(errors::NONE, &[(0, -1, errors::LEADER_NOT_AVAILABLE)]), "audit").expect_err("no leader");
        assert!(e.retriable(), "{e}");
        let denied = leaders_of(&response(errors::TOPIC_AUTHORIZATION_FAILED, &[]), "audit").expect_err("denied");
        assert!(!denied.retriable(), "{denied}");
    }
}

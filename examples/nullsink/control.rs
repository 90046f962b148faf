//! The control plane of a one-broker cluster that keeps nothing: Metadata (one broker, itself, at
//! its advertised address; every topic named exists with `--partitions` partitions led by it),
//! CreateTopics (succeeds), FindCoordinator (itself), InitProducerId (a counter), DescribeConfigs
//! (no entries, as tansu answers) and ListGroups (none).

use bytes::Bytes;
use kafka_durability_proxy::protocol::{guard, RequestHeader};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};

use crate::api::{reply, text};
use crate::state::Sink;
use crate::walk;

pub fn handle(sink: &Sink, api: ApiKey, h: &RequestHeader, body: &[u8]) -> Option<Bytes> {
    let v = h.api_version;
    match api {
        ApiKey::Metadata => reply(api, h, &metadata(sink, walk::metadata(body, v)?, v)),
        ApiKey::CreateTopics => {
            // The project's count walk first: kafka-protocol then decodes nothing implausible.
            guard::create_topics(body, v).then_some(())?;
            let req = CreateTopicsRequest::decode(&mut Bytes::copy_from_slice(body), v).ok()?;
            reply(api, h, &create_topics(sink, req, v))
        }
        ApiKey::FindCoordinator => {
            let keys = if v >= 4 { walk::coordinator_keys(body)? } else { Vec::new() };
            reply(api, h, &find_coordinator(sink, &keys, v))
        }
        ApiKey::InitProducerId => {
            reply(api, h, &InitProducerIdResponse::default().with_producer_id(ProducerId(sink.producer_id())).with_producer_epoch(0))
        }
        ApiKey::DescribeConfigs => reply(api, h, &describe_configs(&walk::config_resources(body, v)?)),
        ApiKey::ListGroups => reply(api, h, &ListGroupsResponse::default()),
        _ => None,
    }
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// A topic id derived from the name, so every Metadata call names a topic the same way.
fn topic_id(name: &str) -> uuid::Uuid {
    use std::hash::{Hash, Hasher};
    let mut a = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    (name, 1u8).hash(&mut b);
    uuid::Uuid::from_u64_pair(a.finish(), b.finish())
}

fn metadata(sink: &Sink, asked: Option<Vec<String>>, version: i16) -> MetadataResponse {
    let names = asked.unwrap_or_else(|| sink.topics());
    let me = BrokerId(sink.node_id);
    let topics = names
        .iter()
        .map(|name| {
            sink.remember(name);
            let partitions = (0..sink.partitions)
                .map(|i| {
                    MetadataResponsePartition::default()
                        .with_partition_index(i)
                        .with_leader_id(me)
                        .with_leader_epoch(-1)
                        .with_replica_nodes(vec![me])
                        .with_isr_nodes(vec![me])
                })
                .collect();
            let t = MetadataResponseTopic::default().with_name(Some(TopicName(str_bytes(name)))).with_partitions(partitions);
            if version >= 10 {
                t.with_topic_id(topic_id(name))
            } else {
                t
            }
        })
        .collect();
    let broker = MetadataResponseBroker::default().with_node_id(me).with_host(str_bytes(&sink.host)).with_port(sink.port);
    let resp = MetadataResponse::default().with_brokers(vec![broker]).with_topics(topics);
    if version >= 1 {
        resp.with_controller_id(me).with_cluster_id(Some(StrBytes::from_static_str("nullsink")))
    } else {
        resp
    }
}

fn create_topics(sink: &Sink, req: CreateTopicsRequest, version: i16) -> CreateTopicsResponse {
    let results = req
        .topics
        .iter()
        .map(|t| {
            sink.remember(&t.name);
            let r = CreatableTopicResult::default().with_name(t.name.clone());
            if version >= 5 {
                r.with_num_partitions(sink.partitions).with_replication_factor(t.replication_factor.max(1)).with_configs(Some(vec![]))
            } else {
                r
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(results)
}

fn find_coordinator(sink: &Sink, keys: &[&[u8]], version: i16) -> FindCoordinatorResponse {
    let (me, host) = (BrokerId(sink.node_id), str_bytes(&sink.host));
    if version < 4 {
        return FindCoordinatorResponse::default().with_node_id(me).with_host(host).with_port(sink.port);
    }
    let coordinators = keys
        .iter()
        .map(|key| Coordinator::default().with_key(text(key)).with_node_id(me).with_host(host.clone()).with_port(sink.port))
        .collect();
    FindCoordinatorResponse::default().with_coordinators(coordinators)
}

fn describe_configs(resources: &[(i8, &[u8])]) -> DescribeConfigsResponse {
    let results = resources
        .iter()
        .map(|(kind, name)| DescribeConfigsResult::default().with_resource_type(*kind).with_resource_name(text(name)))
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

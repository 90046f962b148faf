//! Proptest strategies for valid request bodies and frames of every API and version the proxy
//! reads from clients, built with kafka-protocol (the legacy versions it cannot encode are the
//! next version's body, as `handlers::legacy` reads them), and each guard with its decode.

use std::ops::RangeInclusive;

use bytes::{Buf, Bytes, BytesMut};
use kafka_durability_proxy::protocol::guard;
use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
use kafka_protocol::messages::create_partitions_request::{CreatePartitionsAssignment, CreatePartitionsTopic};
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::incremental_alter_configs_request as incremental;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterPartitionReassignmentsRequest, ApiKey, BrokerId, CreatePartitionsRequest, CreateTopicsRequest,
    DeleteRecordsRequest, DeleteTopicsRequest, IncrementalAlterConfigsRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::{name, node, s, uuid};

/// The admin APIs whose request bodies a `protocol::guard` walks before kafka-protocol decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admin {
    CreateTopics,
    DeleteTopics,
    DeleteRecords,
    AlterConfigs,
    IncrementalAlterConfigs,
    CreatePartitions,
    Reassignments,
}

impl Admin {
    pub const ALL: [Admin; 7] = [
        Admin::CreateTopics,
        Admin::DeleteTopics,
        Admin::DeleteRecords,
        Admin::AlterConfigs,
        Admin::IncrementalAlterConfigs,
        Admin::CreatePartitions,
        Admin::Reassignments,
    ];

    /// Every version the guard takes.
    pub fn versions(self) -> RangeInclusive<i16> {
        match self {
            Admin::CreateTopics => 0..=7,
            Admin::DeleteTopics => 0..=6,
            Admin::DeleteRecords | Admin::AlterConfigs => 0..=2,
            Admin::IncrementalAlterConfigs | Admin::Reassignments => 0..=1,
            Admin::CreatePartitions => 0..=3,
        }
    }

    pub fn api_key(self) -> ApiKey {
        match self {
            Admin::CreateTopics => ApiKey::CreateTopics,
            Admin::DeleteTopics => ApiKey::DeleteTopics,
            Admin::DeleteRecords => ApiKey::DeleteRecords,
            Admin::AlterConfigs => ApiKey::AlterConfigs,
            Admin::IncrementalAlterConfigs => ApiKey::IncrementalAlterConfigs,
            Admin::CreatePartitions => ApiKey::CreatePartitions,
            Admin::Reassignments => ApiKey::AlterPartitionReassignments,
        }
    }

    pub fn guard(self, body: &[u8], v: i16) -> bool {
        match self {
            Admin::CreateTopics => guard::create_topics(body, v),
            Admin::DeleteTopics => guard::delete_topics(body, v),
            Admin::DeleteRecords => guard::delete_records(body, v),
            Admin::AlterConfigs => guard::alter_configs(body, v, false),
            Admin::IncrementalAlterConfigs => guard::alter_configs(body, v, true),
            Admin::CreatePartitions => guard::create_partitions(body, v),
            Admin::Reassignments => guard::alter_partition_reassignments(body, v),
        }
    }

    /// What the handlers hand kafka-protocol for a body the guard accepted, as
    /// `handlers::legacy` does for the versions the crate lacks: CreateTopics v0 gets a
    /// validate_only byte and is read as v2, v1 as v2; DeleteTopics v0 is read as v1.
    pub fn decodable(self, body: &[u8], v: i16) -> (Vec<u8>, i16) {
        match (self, v) {
            (Admin::CreateTopics, 0) => ([body, &[0]].concat(), 2),
            (Admin::CreateTopics, 1) => (body.to_vec(), 2),
            (Admin::DeleteTopics, 0) => (body.to_vec(), 1),
            _ => (body.to_vec(), v),
        }
    }

    /// Decodes with kafka-protocol at `v`: Ok((bytes left over, re-encoding)) or the error.
    pub fn decode(self, body: &[u8], v: i16) -> Result<(usize, Vec<u8>), String> {
        match self {
            Admin::CreateTopics => decode::<CreateTopicsRequest>(body, v),
            Admin::DeleteTopics => decode::<DeleteTopicsRequest>(body, v),
            Admin::DeleteRecords => decode::<DeleteRecordsRequest>(body, v),
            Admin::AlterConfigs => decode::<AlterConfigsRequest>(body, v),
            Admin::IncrementalAlterConfigs => decode::<IncrementalAlterConfigsRequest>(body, v),
            Admin::CreatePartitions => decode::<CreatePartitionsRequest>(body, v),
            Admin::Reassignments => decode::<AlterPartitionReassignmentsRequest>(body, v),
        }
    }

    /// What a handler does once the guard accepted: kafka-protocol decodes the body zero-copy
    /// (for the legacy versions, as `decodable` says). True when it decoded.
    pub fn decode_only(self, body: &Bytes, v: i16) -> bool {
        let (mut b, v) = match (self, v) {
            (Admin::CreateTopics, 0) => (Bytes::from([&body[..], &[0]].concat()), 2),
            (Admin::CreateTopics, 1) => (body.clone(), 2),
            (Admin::DeleteTopics, 0) => (body.clone(), 1),
            _ => (body.clone(), v),
        };
        let b = &mut b;
        match self {
            Admin::CreateTopics => CreateTopicsRequest::decode(b, v).is_ok(),
            Admin::DeleteTopics => DeleteTopicsRequest::decode(b, v).is_ok(),
            Admin::DeleteRecords => DeleteRecordsRequest::decode(b, v).is_ok(),
            Admin::AlterConfigs => AlterConfigsRequest::decode(b, v).is_ok(),
            Admin::IncrementalAlterConfigs => IncrementalAlterConfigsRequest::decode(b, v).is_ok(),
            Admin::CreatePartitions => CreatePartitionsRequest::decode(b, v).is_ok(),
            Admin::Reassignments => AlterPartitionReassignmentsRequest::decode(b, v).is_ok(),
        }
    }

    /// A valid body of this API at version `v`.
    pub fn body(self, v: i16) -> BoxedStrategy<Vec<u8>> {
        match self {
            Admin::CreateTopics => create_topics(v),
            Admin::DeleteTopics => delete_topics(v),
            Admin::DeleteRecords => delete_records(v),
            Admin::AlterConfigs => alter_configs(v),
            Admin::IncrementalAlterConfigs => incremental_alter_configs(v),
            Admin::CreatePartitions => create_partitions(v),
            Admin::Reassignments => reassignments(v),
        }
    }
}

fn decode<M: Decodable + Encodable>(body: &[u8], v: i16) -> Result<(usize, Vec<u8>), String> {
    let mut b = Bytes::copy_from_slice(body);
    let m = M::decode(&mut b, v).map_err(|e| e.to_string())?;
    let mut out = BytesMut::new();
    m.encode(&mut out, v).map_err(|e| e.to_string())?;
    Ok((b.remaining(), out.to_vec()))
}

pub fn encode<M: Encodable>(m: &M, v: i16) -> Vec<u8> {
    let mut out = BytesMut::new();
    m.encode(&mut out, v).expect("a generated message encodes at its version");
    out.to_vec()
}

fn brokers() -> impl Strategy<Value = Vec<BrokerId>> {
    vec(node().prop_map(BrokerId), 0..4)
}

fn create_topics(v: i16) -> BoxedStrategy<Vec<u8>> {
    let assignment =
        (any::<i32>(), brokers()).prop_map(|(p, b)| CreatableReplicaAssignment::default().with_partition_index(p).with_broker_ids(b));
    let config =
        (name(), option::of(name())).prop_map(|(n, val)| CreatableTopicConfig::default().with_name(s(&n)).with_value(val.map(|x| s(&x))));
    let topic = (name(), -1i32..64, -1i16..6, vec(assignment, 0..3), vec(config, 0..4)).prop_map(|(n, p, rf, a, c)| {
        CreatableTopic::default()
            .with_name(TopicName(s(&n)))
            .with_num_partitions(p)
            .with_replication_factor(rf)
            .with_assignments(a)
            .with_configs(c)
    });
    (vec(topic, 0..4), any::<i32>(), any::<bool>())
        .prop_map(move |(t, timeout, only)| {
            let m = CreateTopicsRequest::default().with_topics(t).with_timeout_ms(timeout).with_validate_only(only && v >= 1);
            let mut body = encode(&m, v.max(2));
            if v == 0 {
                body.pop(); // v0 has no validate_only
            }
            body
        })
        .boxed()
}

fn delete_topics(v: i16) -> BoxedStrategy<Vec<u8>> {
    let state = (option::of(name()), uuid())
        .prop_map(|(n, id)| DeleteTopicState::default().with_name(n.map(|n| TopicName(s(&n)))).with_topic_id(id));
    (vec(state, 0..5), vec(name(), 0..5), any::<i32>())
        .prop_map(move |(states, names, timeout)| {
            let m = DeleteTopicsRequest::default().with_timeout_ms(timeout);
            let m = if v >= 6 { m.with_topics(states) } else { m.with_topic_names(names.iter().map(|n| TopicName(s(n))).collect()) };
            encode(&m, v.max(1))
        })
        .boxed()
}

fn delete_records(v: i16) -> BoxedStrategy<Vec<u8>> {
    let partition =
        (any::<i32>(), any::<i64>()).prop_map(|(p, o)| DeleteRecordsPartition::default().with_partition_index(p).with_offset(o));
    let topic =
        (name(), vec(partition, 0..4)).prop_map(|(n, p)| DeleteRecordsTopic::default().with_name(TopicName(s(&n))).with_partitions(p));
    (vec(topic, 0..4), any::<i32>())
        .prop_map(move |(t, timeout)| encode(&DeleteRecordsRequest::default().with_topics(t).with_timeout_ms(timeout), v))
        .boxed()
}

fn alter_configs(v: i16) -> BoxedStrategy<Vec<u8>> {
    let config =
        (name(), option::of(name())).prop_map(|(n, val)| AlterableConfig::default().with_name(s(&n)).with_value(val.map(|x| s(&x))));
    let resource = (any::<i8>(), name(), vec(config, 0..4))
        .prop_map(|(t, n, c)| AlterConfigsResource::default().with_resource_type(t).with_resource_name(s(&n)).with_configs(c));
    (vec(resource, 0..4), any::<bool>())
        .prop_map(move |(r, only)| encode(&AlterConfigsRequest::default().with_resources(r).with_validate_only(only), v))
        .boxed()
}

fn incremental_alter_configs(v: i16) -> BoxedStrategy<Vec<u8>> {
    let config = (name(), any::<i8>(), option::of(name())).prop_map(|(n, op, val)| {
        incremental::AlterableConfig::default().with_name(s(&n)).with_config_operation(op).with_value(val.map(|x| s(&x)))
    });
    let resource = (any::<i8>(), name(), vec(config, 0..4))
        .prop_map(|(t, n, c)| incremental::AlterConfigsResource::default().with_resource_type(t).with_resource_name(s(&n)).with_configs(c));
    (vec(resource, 0..4), any::<bool>())
        .prop_map(move |(r, only)| encode(&IncrementalAlterConfigsRequest::default().with_resources(r).with_validate_only(only), v))
        .boxed()
}

fn create_partitions(v: i16) -> BoxedStrategy<Vec<u8>> {
    let assignment = brokers().prop_map(|b| CreatePartitionsAssignment::default().with_broker_ids(b));
    let topic = (name(), any::<i32>(), option::of(vec(assignment, 0..3)))
        .prop_map(|(n, c, a)| CreatePartitionsTopic::default().with_name(TopicName(s(&n))).with_count(c).with_assignments(a));
    (vec(topic, 0..4), any::<i32>(), any::<bool>())
        .prop_map(move |(t, timeout, only)| {
            encode(&CreatePartitionsRequest::default().with_topics(t).with_timeout_ms(timeout).with_validate_only(only), v)
        })
        .boxed()
}

fn reassignments(v: i16) -> BoxedStrategy<Vec<u8>> {
    let partition =
        (any::<i32>(), option::of(brokers())).prop_map(|(p, r)| ReassignablePartition::default().with_partition_index(p).with_replicas(r));
    let topic =
        (name(), vec(partition, 0..4)).prop_map(|(n, p)| ReassignableTopic::default().with_name(TopicName(s(&n))).with_partitions(p));
    (vec(topic, 0..4), any::<i32>(), any::<bool>())
        .prop_map(move |(t, timeout, rf)| {
            let m = AlterPartitionReassignmentsRequest::default().with_topics(t).with_timeout_ms(timeout);
            encode(&m.with_allow_replication_factor_change(rf || v < 1), v)
        })
        .boxed()
}

/// A valid Metadata request body at `v` (0-13) and the allow_auto_topic_creation it carries.
pub fn metadata(v: i16) -> BoxedStrategy<(Vec<u8>, bool)> {
    let topic = (option::of(name()), uuid()).prop_map(move |(n, id)| {
        let n = if v >= 10 { n } else { Some(n.unwrap_or_default()) };
        MetadataRequestTopic::default().with_name(n.map(|n| TopicName(s(&n)))).with_topic_id(if v >= 10 { id } else { Default::default() })
    });
    (option::of(vec(topic, 0..4)), any::<bool>(), any::<bool>())
        .prop_map(move |(topics, auto, ops)| {
            let topics = if v >= 1 { topics } else { Some(topics.unwrap_or_default()) };
            let auto = auto || v < 4;
            let m = MetadataRequest::default()
                .with_topics(topics)
                .with_allow_auto_topic_creation(auto)
                .with_include_topic_authorized_operations(ops && v >= 8);
            (encode(&m, v), auto)
        })
        .boxed()
}

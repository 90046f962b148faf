//! Proptest strategies for valid broker responses, as whole frames, for every response the proxy
//! reads: the ones it rewrites (Metadata, FindCoordinator, DescribeCluster, ApiVersions, the
//! KIP-951 tails of Produce and Fetch) and the ones `handlers::legacy` translates back.

use bytes::Bytes;
use kafka_durability_proxy::protocol::encode as frames;
use kafka_durability_proxy::protocol::{produce_response, ProduceTopic};
use kafka_protocol::messages::api_versions_response::{ApiVersion, FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic};
use kafka_protocol::messages::produce_response::{BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    fetch_response, produce_response as kproduce, ApiKey, ApiVersionsResponse, BrokerId, CreateTopicsResponse, DeleteTopicsResponse,
    DescribeClusterResponse, FetchResponse, FindCoordinatorResponse, MetadataResponse, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::Encodable;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::admin_responses as admin;
use super::requests::Admin;
use super::{error_code, host, name, node, s, uuid};

/// The broker responses the proxy decodes or walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resp {
    Metadata,
    FindCoordinator,
    DescribeCluster,
    ApiVersions,
    Produce,
    Fetch,
    /// The broker's CreateTopics answer to a translated v0/v1 request (broker versions 2-7).
    LegacyCreateTopics,
    /// The broker's DeleteTopics answer to a translated v0 request (broker versions 1-6).
    LegacyDeleteTopics,
    /// The broker's answer to a split admin request, merged with the proxy's own results.
    Merge(Admin),
    /// The answer to the cluster client's DescribeConfigs (versions 1-4).
    DescribeConfigs,
}

impl Resp {
    pub fn all() -> Vec<Resp> {
        let mut all = vec![
            Resp::Metadata,
            Resp::FindCoordinator,
            Resp::DescribeCluster,
            Resp::ApiVersions,
            Resp::Produce,
            Resp::Fetch,
            Resp::LegacyCreateTopics,
            Resp::LegacyDeleteTopics,
            Resp::DescribeConfigs,
        ];
        all.extend(Admin::ALL.iter().map(|a| Resp::Merge(*a)));
        all
    }

    pub fn versions(self) -> std::ops::RangeInclusive<i16> {
        match self {
            Resp::Metadata => 0..=13,
            Resp::FindCoordinator => 0..=6,
            Resp::DescribeCluster => 0..=2,
            Resp::ApiVersions => 0..=4,
            Resp::Produce => 0..=13,
            Resp::Fetch => 4..=18,
            Resp::LegacyCreateTopics => 2..=7,
            Resp::LegacyDeleteTopics => 1..=6,
            Resp::Merge(Admin::CreateTopics) => 2..=7,
            Resp::Merge(Admin::DeleteTopics) => 1..=6,
            Resp::Merge(a) => a.versions(),
            Resp::DescribeConfigs => 1..=4,
        }
    }

    pub fn api_key(self) -> ApiKey {
        match self {
            Resp::Metadata => ApiKey::Metadata,
            Resp::FindCoordinator => ApiKey::FindCoordinator,
            Resp::DescribeCluster => ApiKey::DescribeCluster,
            Resp::ApiVersions => ApiKey::ApiVersions,
            Resp::Produce => ApiKey::Produce,
            Resp::Fetch => ApiKey::Fetch,
            Resp::LegacyCreateTopics => ApiKey::CreateTopics,
            Resp::LegacyDeleteTopics => ApiKey::DeleteTopics,
            Resp::Merge(a) => a.api_key(),
            Resp::DescribeConfigs => ApiKey::DescribeConfigs,
        }
    }

    /// A valid response frame (size prefix and header included) at version `v`.
    pub fn frame(self, v: i16) -> BoxedStrategy<Vec<u8>> {
        match self {
            Resp::Metadata => framed(self, v, metadata(v)),
            Resp::FindCoordinator => framed(self, v, find_coordinator(v)),
            Resp::DescribeCluster => framed(self, v, describe_cluster(v)),
            Resp::ApiVersions => framed(self, v, api_versions(v)),
            Resp::Produce if v < 3 => legacy_produce(v),
            Resp::Produce => framed(self, v, produce(v)),
            Resp::Fetch => framed(self, v, fetch(v)),
            Resp::LegacyCreateTopics | Resp::Merge(Admin::CreateTopics) => framed(self, v, create_topics(v)),
            Resp::LegacyDeleteTopics | Resp::Merge(Admin::DeleteTopics) => framed(self, v, delete_topics(v)),
            Resp::Merge(Admin::DeleteRecords) => framed(self, v, admin::delete_records()),
            Resp::Merge(Admin::AlterConfigs) => framed(self, v, admin::alter_configs()),
            Resp::Merge(Admin::IncrementalAlterConfigs) => framed(self, v, admin::incremental_alter_configs()),
            Resp::Merge(Admin::CreatePartitions) => framed(self, v, admin::create_partitions()),
            Resp::Merge(Admin::Reassignments) => framed(self, v, admin::reassignments(v)),
            Resp::DescribeConfigs => framed(self, v, admin::describe_configs(v)),
        }
    }
}

fn framed<M: Encodable + std::fmt::Debug + 'static>(r: Resp, v: i16, body: impl Strategy<Value = M> + 'static) -> BoxedStrategy<Vec<u8>> {
    (any::<i32>(), body).prop_map(move |(corr, m)| frames::response(r.api_key(), v, corr, &m).expect("encode response").to_vec()).boxed()
}

fn rack() -> impl Strategy<Value = Option<kafka_protocol::protocol::StrBytes>> {
    option::of(host()).prop_map(|r| r.map(|r| s(&r)))
}

fn metadata(v: i16) -> impl Strategy<Value = MetadataResponse> {
    let broker = (node(), host(), any::<i32>(), rack()).prop_map(move |(id, h, port, rack)| {
        MetadataResponseBroker::default().with_node_id(BrokerId(id)).with_host(s(&h)).with_port(port).with_rack(rack.filter(|_| v >= 1))
    });
    let nodes = || vec(node().prop_map(BrokerId), 0..4);
    let partition = (error_code(), any::<i32>(), node(), nodes(), nodes()).prop_map(|(e, i, l, r, isr)| {
        MetadataResponsePartition::default()
            .with_error_code(e)
            .with_partition_index(i)
            .with_leader_id(BrokerId(l))
            .with_replica_nodes(r)
            .with_isr_nodes(isr)
    });
    let topic = (error_code(), name(), uuid(), any::<bool>(), vec(partition, 0..3)).prop_map(move |(e, n, id, internal, p)| {
        MetadataResponseTopic::default()
            .with_error_code(e)
            .with_name(Some(TopicName(s(&n))))
            .with_topic_id(if v >= 10 { id } else { Default::default() })
            .with_is_internal(internal && v >= 1)
            .with_partitions(p)
    });
    (vec(broker, 0..5), option::of(name()), vec(topic, 0..4)).prop_map(move |(b, cluster, t)| {
        MetadataResponse::default().with_brokers(b).with_cluster_id(cluster.filter(|_| v >= 2).map(|c| s(&c))).with_topics(t)
    })
}

fn find_coordinator(v: i16) -> impl Strategy<Value = FindCoordinatorResponse> {
    let coordinator = (name(), node(), host(), any::<i32>(), error_code(), option::of(name())).prop_map(|(k, id, h, port, e, m)| {
        Coordinator::default()
            .with_key(s(&k))
            .with_node_id(BrokerId(id))
            .with_host(s(&h))
            .with_port(port)
            .with_error_code(e)
            .with_error_message(m.map(|m| s(&m)))
    });
    (error_code(), node(), host(), any::<i32>(), vec(coordinator, 0..4)).prop_map(move |(e, id, h, port, c)| {
        if v >= 4 {
            FindCoordinatorResponse::default().with_coordinators(c)
        } else {
            FindCoordinatorResponse::default().with_error_code(e).with_node_id(BrokerId(id)).with_host(s(&h)).with_port(port)
        }
    })
}

fn describe_cluster(v: i16) -> impl Strategy<Value = DescribeClusterResponse> {
    let broker = (node(), host(), any::<i32>(), rack(), any::<bool>()).prop_map(move |(id, h, port, rack, fenced)| {
        DescribeClusterBroker::default()
            .with_broker_id(BrokerId(id))
            .with_host(s(&h))
            .with_port(port)
            .with_rack(rack)
            .with_is_fenced(fenced && v >= 2)
    });
    (error_code(), option::of(name()), name(), vec(broker, 0..5)).prop_map(|(e, m, cluster, b)| {
        DescribeClusterResponse::default()
            .with_error_code(e)
            .with_error_message(m.map(|m| s(&m)))
            .with_cluster_id(s(&cluster))
            .with_brokers(b)
    })
}

fn api_versions(v: i16) -> impl Strategy<Value = ApiVersionsResponse> {
    let key = prop_oneof![8 => -1i16..80, 1 => any::<i16>()];
    let api =
        (key, -1i16..20, -1i16..20).prop_map(|(k, lo, hi)| ApiVersion::default().with_api_key(k).with_min_version(lo).with_max_version(hi));
    let supported = (name(), any::<i16>(), any::<i16>())
        .prop_map(|(n, lo, hi)| SupportedFeatureKey::default().with_name(s(&n)).with_min_version(lo).with_max_version(hi));
    let finalized = (name(), any::<i16>(), any::<i16>())
        .prop_map(|(n, hi, lo)| FinalizedFeatureKey::default().with_name(s(&n)).with_max_version_level(hi).with_min_version_level(lo));
    let code = prop_oneof![9 => Just(0i16), 1 => error_code()];
    (code, vec(api, 0..12), vec(supported, 0..3), vec(finalized, 0..3), any::<i64>()).prop_map(move |(e, keys, sup, fin, epoch)| {
        let m = ApiVersionsResponse::default().with_error_code(e).with_api_keys(keys);
        if v >= 3 {
            m.with_supported_features(sup).with_finalized_features(fin).with_finalized_features_epoch(epoch)
        } else {
            m
        }
    })
}

/// A top-level tagged field the proxy does not know, passed through by the tail rewrite.
fn unknown_tag() -> impl Strategy<Value = Option<(i32, Bytes)>> {
    option::of((1i32..40, vec(any::<u8>(), 0..12).prop_map(Bytes::from)))
}

fn endpoint_parts() -> impl Strategy<Value = (i32, String, i32, Option<String>)> {
    (node(), host(), any::<i32>(), option::of(host()))
}

fn produce(v: i16) -> impl Strategy<Value = ProduceResponse> {
    let record_error = (any::<i32>(), option::of(name()))
        .prop_map(|(i, m)| BatchIndexAndErrorMessage::default().with_batch_index(i).with_batch_index_error_message(m.map(|m| s(&m))));
    let partition =
        (any::<i32>(), error_code(), any::<i64>(), vec(record_error, 0..2), option::of(name())).prop_map(move |(i, e, off, re, m)| {
            let p = PartitionProduceResponse::default().with_index(i).with_error_code(e).with_base_offset(off);
            if v >= 8 {
                p.with_record_errors(re).with_error_message(m.map(|m| s(&m)))
            } else {
                p
            }
        });
    let topic = (name(), uuid(), vec(partition, 0..4)).prop_map(move |(n, id, p)| {
        let t = TopicProduceResponse::default().with_partition_responses(p);
        if v >= 13 {
            t.with_topic_id(id)
        } else {
            t.with_name(TopicName(s(&n)))
        }
    });
    let endpoint = endpoint_parts().prop_map(|(id, h, port, rack)| {
        kproduce::NodeEndpoint::default().with_node_id(BrokerId(id)).with_host(s(&h)).with_port(port).with_rack(rack.map(|r| s(&r)))
    });
    (vec(topic, 0..4), vec(endpoint, 0..4), unknown_tag()).prop_map(move |(t, ep, tag)| {
        let m = ProduceResponse::default().with_responses(t);
        let m = match tag {
            Some((k, b)) if v >= 9 => m.with_unknown_tagged_field(k, b),
            _ => m,
        };
        if v >= 10 {
            m.with_node_endpoints(ep)
        } else {
            m
        }
    })
}

/// Produce v0-2 responses, which kafka-protocol cannot encode: the proxy's own builder makes them.
fn legacy_produce(v: i16) -> BoxedStrategy<Vec<u8>> {
    let topic = (name(), vec(any::<i32>(), 0..4)).prop_map(|(name, partitions)| ProduceTopic { name, partitions });
    (any::<i32>(), vec(topic, 0..4), error_code())
        .prop_map(move |(corr, t, e)| produce_response::rejection(v, corr, &t, e, "").expect("legacy produce response").to_vec())
        .boxed()
}

fn fetch(v: i16) -> impl Strategy<Value = FetchResponse> {
    let aborted =
        (any::<i64>(), any::<i64>()).prop_map(|(p, o)| AbortedTransaction::default().with_producer_id(p.into()).with_first_offset(o));
    let records = option::of(vec(any::<u8>(), 0..96).prop_map(Bytes::from));
    let partition = (any::<i32>(), error_code(), any::<i64>(), option::of(vec(aborted, 0..3)), node(), records).prop_map(
        move |(i, e, hw, ab, replica, rec)| {
            PartitionData::default()
                .with_partition_index(i)
                .with_error_code(e)
                .with_high_watermark(hw)
                .with_aborted_transactions(ab)
                .with_preferred_read_replica(BrokerId(if v >= 11 { replica } else { -1 }))
                .with_records(rec)
        },
    );
    let topic = (name(), uuid(), vec(partition, 0..3)).prop_map(move |(n, id, p)| {
        let t = FetchableTopicResponse::default().with_partitions(p);
        if v >= 13 {
            t.with_topic_id(id)
        } else {
            t.with_topic(TopicName(s(&n)))
        }
    });
    let endpoint = endpoint_parts().prop_map(|(id, h, port, rack)| {
        fetch_response::NodeEndpoint::default().with_node_id(BrokerId(id)).with_host(s(&h)).with_port(port).with_rack(rack.map(|r| s(&r)))
    });
    (error_code(), any::<i32>(), vec(topic, 0..3), vec(endpoint, 0..4), unknown_tag()).prop_map(move |(e, session, t, ep, tag)| {
        let m = FetchResponse::default().with_responses(t);
        let m = match tag {
            Some((k, b)) if v >= 12 => m.with_unknown_tagged_field(k, b),
            _ => m,
        };
        let m = if v >= 7 { m.with_error_code(e).with_session_id(session) } else { m };
        if v >= 16 {
            m.with_node_endpoints(ep)
        } else {
            m
        }
    })
}

/// The names `support::legacy_plan` asks about, so answers are sorted into request order.
pub const LEGACY_NAMES: [&str; 3] = ["good-a", "good-b", "good-c"];

fn legacy_name() -> impl Strategy<Value = String> {
    prop_oneof![3 => proptest::sample::select(&LEGACY_NAMES[..]).prop_map(str::to_owned), 1 => name()]
}

fn create_topics(v: i16) -> impl Strategy<Value = CreateTopicsResponse> {
    let config = (name(), option::of(name()), any::<(bool, i8, bool)>()).prop_map(|(n, val, (ro, src, sens))| {
        CreatableTopicConfigs::default()
            .with_name(s(&n))
            .with_value(val.map(|x| s(&x)))
            .with_read_only(ro)
            .with_config_source(src)
            .with_is_sensitive(sens)
    });
    let extra = (any::<i32>(), any::<i16>(), option::of(vec(config, 0..3)), error_code());
    let result =
        (legacy_name(), uuid(), error_code(), option::of(name()), extra).prop_map(move |(n, id, e, m, (parts, rf, configs, ce))| {
            let r = CreatableTopicResult::default()
                .with_name(TopicName(s(&n)))
                .with_topic_id(if v >= 7 { id } else { Default::default() })
                .with_error_code(e)
                .with_error_message(m.map(|m| s(&m)));
            if v >= 5 {
                r.with_num_partitions(parts).with_replication_factor(rf).with_configs(configs).with_topic_config_error_code(ce)
            } else {
                r
            }
        });
    vec(result, 0..5).prop_map(|t| CreateTopicsResponse::default().with_topics(t))
}

fn delete_topics(v: i16) -> impl Strategy<Value = DeleteTopicsResponse> {
    let result = (legacy_name(), uuid(), error_code(), option::of(name())).prop_map(move |(n, id, e, m)| {
        DeletableTopicResult::default()
            .with_name(Some(TopicName(s(&n))))
            .with_topic_id(if v >= 6 { id } else { Default::default() })
            .with_error_code(e)
            .with_error_message(m.filter(|_| v >= 5).map(|m| s(&m)))
    });
    vec(result, 0..5).prop_map(|r| DeleteTopicsResponse::default().with_responses(r))
}

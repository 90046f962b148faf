//! Valid inputs with many minimal elements, where a decoder's cost per wire byte is highest: `n`
//! empty entries at the top level (`wide`) or one entry holding `n` empty ones (`deep`). The
//! generators in `requests` and `responses` keep arrays short; these push counts up.

use kafka_durability_proxy::protocol::encode as frames;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiVersionsResponse, BrokerId, CreateTopicsRequest, CreateTopicsResponse, DescribeClusterResponse, FetchResponse,
    FindCoordinatorResponse, MetadataResponse, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::Encodable;

use super::requests::{encode, Admin};
use super::responses::Resp;
use super::s;
use super::targets::Target;

fn rep<T: Clone>(n: usize, t: T) -> Vec<T> {
    vec![t; n]
}

/// A dense valid input for the target, or `None` where there is no array worth filling.
pub fn dense(target: Target, v: i16, n: usize, deep: bool) -> Option<Vec<u8>> {
    let (wide, inner) = if deep { (1, n) } else { (n, 0) };
    Some(match target {
        Target::Guard(Admin::CreateTopics) => {
            let topic = CreatableTopic::default()
                .with_name(TopicName(s("")))
                .with_assignments(rep(inner, CreatableReplicaAssignment::default()))
                .with_configs(rep(inner, CreatableTopicConfig::default()));
            let mut b = encode(&CreateTopicsRequest::default().with_topics(rep(wide, topic)), v.max(2));
            if v == 0 {
                b.pop();
            }
            b
        }
        Target::Response(r) => response(r, v, wide, inner)?,
        _ => return None,
    })
}

fn framed<M: Encodable>(r: Resp, v: i16, m: &M) -> Vec<u8> {
    frames::response(r.api_key(), v, 9, m).expect("encode").to_vec()
}

fn response(r: Resp, v: i16, wide: usize, inner: usize) -> Option<Vec<u8>> {
    Some(match r {
        Resp::Metadata => {
            let partition = MetadataResponsePartition::default().with_replica_nodes(rep(inner.min(8), BrokerId(1)));
            let topic = MetadataResponseTopic::default().with_name(Some(TopicName(s("")))).with_partitions(rep(inner, partition));
            let broker = MetadataResponseBroker::default().with_node_id(BrokerId(1));
            framed(r, v, &MetadataResponse::default().with_brokers(rep(wide, broker)).with_topics(rep(wide, topic)))
        }
        Resp::FindCoordinator if v >= 4 => {
            let c = Coordinator::default().with_node_id(BrokerId(1));
            framed(r, v, &FindCoordinatorResponse::default().with_coordinators(rep(wide + inner, c)))
        }
        Resp::DescribeCluster => {
            let b = DescribeClusterBroker::default().with_broker_id(BrokerId(1));
            framed(r, v, &DescribeClusterResponse::default().with_brokers(rep(wide + inner, b)))
        }
        Resp::ApiVersions => {
            let k = ApiVersion::default().with_api_key(3).with_max_version(12);
            framed(r, v, &ApiVersionsResponse::default().with_api_keys(rep(wide + inner, k)))
        }
        Resp::Produce if v >= 3 => {
            let p = PartitionProduceResponse::default().with_error_code(3);
            let t = TopicProduceResponse::default().with_partition_responses(rep(inner, p));
            framed(r, v, &ProduceResponse::default().with_responses(rep(wide, t)))
        }
        Resp::Fetch => {
            let t = FetchableTopicResponse::default().with_partitions(rep(inner, PartitionData::default()));
            framed(r, v, &FetchResponse::default().with_responses(rep(wide, t)))
        }
        Resp::LegacyCreateTopics => {
            let t = CreatableTopicResult::default().with_name(TopicName(s("good-a")));
            framed(r, v, &CreateTopicsResponse::default().with_topics(rep(wide + inner, t)))
        }
        _ => return None,
    })
}

/// A Produce response naming one topic of `name_len` bytes with `partitions` failed partitions:
/// what a broker sends back for a request that wrote many partitions of a topic it refuses.
pub fn produce_errors(v: i16, name_len: usize, partitions: usize) -> Vec<u8> {
    let p = PartitionProduceResponse::default().with_error_code(17);
    let t = TopicProduceResponse::default().with_name(TopicName(s(&"t".repeat(name_len)))).with_partition_responses(rep(partitions, p));
    framed(Resp::Produce, v, &ProduceResponse::default().with_responses(vec![t]))
}

//! Address rewrite for each response shape and version, node-endpoint tails, ApiVersions clamp.

use std::cell::RefCell;

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    fetch_response as kfetch, produce_response as kproduce, ApiKey, ApiVersionsResponse, BrokerId, DescribeClusterResponse, FetchResponse,
    FindCoordinatorResponse, MetadataResponse, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::*;
use crate::protocol::encode as frames;
use crate::protocol::produce_response;
use crate::protocol::versions::allowed;
use crate::protocol::SIZE_LEN;

#[derive(Default)]
struct FakeEndpoints {
    learned: RefCell<Vec<(i32, String, i32)>>,
}

impl Endpoints for FakeEndpoints {
    fn proxy_address(&self, node_id: i32, host: &str, port: i32) -> Result<(StrBytes, i32), RewriteError> {
        self.learned.borrow_mut().push((node_id, host.to_owned(), port));
        if node_id > 1000 {
            return Err(RewriteError::NoListener { node_id });
        }
        Ok((StrBytes::from_static_str("proxy.test"), 20_000 + node_id))
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// Decodes a response frame produced by a rewrite (header skipped by its known length).
fn decode<M: Decodable>(frame: &[u8], api: ApiKey, version: i16) -> M {
    let skip = SIZE_LEN + frames::response_header_len(api, version);
    let mut body = Bytes::copy_from_slice(&frame[skip..]);
    let m = M::decode(&mut body, version).expect("decode rewritten");
    assert!(body.is_empty(), "trailing bytes after {api:?} v{version}");
    m
}

fn join(r: Rewritten) -> Bytes {
    match r {
        Rewritten::Whole(b) => b,
        Rewritten::Pieces(p) => p.concat().into(),
    }
}

#[test]
fn metadata_every_version_lists_only_proxy_addresses() {
    for version in 0..=13 {
        let brokers = (1..=3)
            .map(|n| {
                MetadataResponseBroker::default().with_node_id(BrokerId(n)).with_host(s(&format!("kafka-{n}.internal"))).with_port(9092)
            })
            .collect();
        let body = MetadataResponse::default().with_brokers(brokers).with_controller_id(BrokerId(1));
        let frame = frames::response(ApiKey::Metadata, version, 77, &body).expect("encode");
        let eps = FakeEndpoints::default();
        let out = addresses::metadata(&frame, version, &eps).expect("rewrite");
        assert_eq!(crate::protocol::peek_response_correlation(&out), Some(77));
        let m: MetadataResponse = decode(&out, ApiKey::Metadata, version);
        let got: Vec<_> = m.brokers.iter().map(|b| (b.node_id.0, b.host.to_string(), b.port)).collect();
        assert_eq!(
            got,
            vec![(1, "proxy.test".into(), 20_001), (2, "proxy.test".into(), 20_002), (3, "proxy.test".into(), 20_003)],
            "v{version}"
        );
        assert_eq!(eps.learned.borrow().first(), Some(&(1, "kafka-1.internal".to_string(), 9092)));
    }
}

#[test]
fn find_coordinator_single_and_batched() {
    for version in 0..=6 {
        let body = if version < 4 {
            FindCoordinatorResponse::default().with_node_id(BrokerId(2)).with_host(s("kafka-2")).with_port(9093)
        } else {
            FindCoordinatorResponse::default().with_coordinators(vec![
                Coordinator::default().with_key(s("group-a")).with_node_id(BrokerId(2)).with_host(s("kafka-2")).with_port(9093),
                Coordinator::default().with_key(s("group-b")).with_node_id(BrokerId(-1)).with_error_code(15),
            ])
        };
        let frame = frames::response(ApiKey::FindCoordinator, version, 5, &body).expect("encode");
        let out = addresses::find_coordinator(&frame, version, &FakeEndpoints::default()).expect("rewrite");
        let m: FindCoordinatorResponse = decode(&out, ApiKey::FindCoordinator, version);
        if version < 4 {
            assert_eq!((m.host.as_str(), m.port), ("proxy.test", 20_002), "v{version}");
        } else {
            let c: Vec<_> = m.coordinators.iter().map(|c| (c.host.to_string(), c.port, c.error_code)).collect();
            assert_eq!(c, vec![("proxy.test".into(), 20_002, 0), ("".into(), 0, 15)], "v{version}");
        }
    }
}

#[test]
fn find_coordinator_error_is_left_alone() {
    let body = FindCoordinatorResponse::default().with_error_code(15).with_node_id(BrokerId(-1));
    let frame = frames::response(ApiKey::FindCoordinator, 1, 5, &body).expect("encode");
    let eps = FakeEndpoints::default();
    addresses::find_coordinator(&frame, 1, &eps).expect("rewrite");
    assert!(eps.learned.borrow().is_empty());
}

#[test]
fn describe_cluster_every_version() {
    for version in 0..=2 {
        let body = DescribeClusterResponse::default()
            .with_brokers(vec![DescribeClusterBroker::default().with_broker_id(BrokerId(111)).with_host(s("tansu")).with_port(9092)]);
        let frame = frames::response(ApiKey::DescribeCluster, version, 9, &body).expect("encode");
        let out = addresses::describe_cluster(&frame, version, &FakeEndpoints::default()).expect("rewrite");
        let m: DescribeClusterResponse = decode(&out, ApiKey::DescribeCluster, version);
        assert_eq!(m.brokers.first().map(|b| (b.host.to_string(), b.port)), Some(("proxy.test".into(), 20_111)));
    }
}

#[test]
fn unmapped_node_is_an_error_not_a_leak() {
    let body = MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default().with_node_id(BrokerId(5000)).with_host(s("h")).with_port(1)]);
    let frame = frames::response(ApiKey::Metadata, 12, 1, &body).expect("encode");
    assert!(matches!(addresses::metadata(&frame, 12, &FakeEndpoints::default()), Err(RewriteError::NoListener { node_id: 5000 })));
}

fn produce_response(version: i16, with_endpoints: bool) -> Bytes {
    let mut body = ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
        .with_name(TopicName(s("orders")))
        .with_partition_responses(vec![
            PartitionProduceResponse::default().with_index(0).with_error_code(6).with_error_message(if version >= 8 {
                Some(s("not leader"))
            } else {
                None
            }),
            PartitionProduceResponse::default().with_index(1),
        ])]);
    if with_endpoints {
        body = body
            .with_node_endpoints(vec![kproduce::NodeEndpoint::default().with_node_id(BrokerId(3)).with_host(s("kafka-3")).with_port(9094)]);
    }
    frames::response(ApiKey::Produce, version, 11, &body).expect("encode")
}

#[test]
fn produce_scan_reads_errors_in_every_version() {
    for version in 3..=12 {
        let frame = produce_response(version, false);
        let scan = produce_response::scan(&frame, version).expect("scan");
        assert_eq!(scan.errors.len(), 1, "v{version}");
        let e = &scan.errors[0];
        assert_eq!((&*e.topic, e.partition, e.error_code), ("orders", 0, 6));
        assert_eq!(e.message.as_deref(), if version >= 8 { Some("not leader") } else { None });
        assert_eq!(scan.tagged_offset.is_some(), version >= 9);
    }
}

#[test]
fn produce_node_endpoints_are_rewritten_in_the_tail() {
    for version in 10..=12 {
        let frame = produce_response(version, true);
        let scan = produce_response::scan(&frame, version).expect("scan");
        let out = tail::rewrite(&frame, scan.tagged_offset.expect("flexible"), tail::TailApi::Produce, version, &FakeEndpoints::default())
            .expect("rewrite")
            .expect("changed");
        let m: ProduceResponse = decode(&join(out), ApiKey::Produce, version);
        let eps: Vec<_> = m.node_endpoints.iter().map(|e| (e.node_id.0, e.host.to_string(), e.port)).collect();
        assert_eq!(eps, vec![(3, "proxy.test".into(), 20_003)]);
        assert_eq!(m.responses.len(), 1);

        let plain = produce_response(version, false);
        let off = produce_response::scan(&plain, version).and_then(|s| s.tagged_offset).expect("offset");
        assert!(tail::rewrite(&plain, off, tail::TailApi::Produce, version, &FakeEndpoints::default()).expect("ok").is_none());
    }
}

#[test]
fn fetch_tail_rewrite_shares_the_record_bytes() {
    let records = Bytes::from(vec![0x5a; 4096]);
    for version in [12i16, 13, 16, 17, 18] {
        let topic = FetchableTopicResponse::default()
            .with_topic(if version < 13 { TopicName(s("orders")) } else { TopicName::default() })
            .with_topic_id(if version >= 13 { uuid::Uuid::from_u128(9) } else { Default::default() })
            .with_partitions(vec![PartitionData::default()
                .with_partition_index(0)
                .with_high_watermark(10)
                .with_records(Some(records.clone()))]);
        let mut body = FetchResponse::default().with_responses(vec![topic]);
        if version >= 16 {
            body = body.with_node_endpoints(vec![kfetch::NodeEndpoint::default()
                .with_node_id(BrokerId(4))
                .with_host(s("kafka-4"))
                .with_port(9095)]);
        }
        let frame = frames::response(ApiKey::Fetch, version, 3, &body).expect("encode");
        let off = tail::fetch_tagged_offset(&frame, version).expect("walk");
        let out = tail::rewrite(&frame, off, tail::TailApi::Fetch, version, &FakeEndpoints::default()).expect("rewrite");
        if version < 16 {
            assert!(out.is_none(), "v{version}: no endpoints, nothing to do");
            continue;
        }
        let Some(Rewritten::Pieces(pieces)) = out else { panic!("expected pieces") };
        // The body piece points into the original frame: the records were not copied.
        let body_piece = &pieces[1];
        let frame_range = frame.as_ptr() as usize..frame.as_ptr() as usize + frame.len();
        assert!(frame_range.contains(&(body_piece.as_ptr() as usize)), "body is a slice of the original");
        let m: FetchResponse = decode(&pieces.concat(), ApiKey::Fetch, version);
        assert_eq!(m.node_endpoints.first().map(|e| (e.host.to_string(), e.port)), Some(("proxy.test".into(), 20_004)));
        let got = m.responses[0].partitions[0].records.clone().expect("records");
        assert_eq!(got, records);
    }
}

#[test]
fn truncated_responses_are_errors_not_panics() {
    let frame = produce_response(12, true);
    for cut in SIZE_LEN..frame.len() {
        let short = frame.slice(..cut);
        let _ = produce_response::scan(&short, 12);
        let _ = tail::fetch_tagged_offset(&short, 16);
        let _ = addresses::metadata(&short, 12, &FakeEndpoints::default());
        let _ = api_versions::rewrite(&short, 3);
    }
}

fn api_versions_frame(version: i16, keys: &[(i16, i16, i16)]) -> Bytes {
    let body = ApiVersionsResponse::default().with_api_keys(
        keys.iter().map(|(k, min, max)| ApiVersion::default().with_api_key(*k).with_min_version(*min).with_max_version(*max)).collect(),
    );
    frames::response(ApiKey::ApiVersions, version, 1, &body).expect("encode")
}

#[test]
fn api_versions_are_intersected() {
    let broker = [(0, 0, 13), (1, 4, 18), (3, 0, 13), (17, 0, 1), (18, 0, 4), (19, 2, 7), (78, 1, 1), (12_345, 0, 3), (60, 0, 2)];
    for version in 0..=4 {
        let frame = api_versions_frame(version, &broker);
        let out = api_versions::rewrite(&frame, version).expect("ok").expect("rewritten");
        let m: ApiVersionsResponse = decode(&out, ApiKey::ApiVersions, version);
        let got: Vec<_> = m.api_keys.iter().map(|k| (k.api_key, k.min_version, k.max_version)).collect();
        // SaslHandshake v0 is served since its raw tokens are carried in SaslAuthenticate.
        assert_eq!(got, vec![(0, 0, 12), (1, 4, 18), (3, 0, 13), (17, 0, 1), (18, 0, 4), (19, 2, 7), (60, 0, 2)], "v{version}");
    }
}

#[test]
fn api_versions_error_passes_through_and_own_error_is_v0_shaped() {
    let err = ApiVersionsResponse::default().with_error_code(35);
    let frame = frames::response(ApiKey::ApiVersions, 0, 1, &err).expect("encode");
    assert!(api_versions::rewrite(&frame, 3).expect("ok").is_none());

    let own = api_versions::unsupported_version(44).expect("encode");
    assert_eq!(&own[4..8], &44i32.to_be_bytes(), "header v0: correlation id only");
    let m: ApiVersionsResponse = decode(&own, ApiKey::ApiVersions, 0);
    assert_eq!(m.error_code, 35);
    assert_eq!(m.api_keys.iter().map(|k| (k.api_key, k.max_version)).collect::<Vec<_>>(), vec![(18, 4)]);
}

#[test]
fn allowed_versions() {
    assert!(allowed(0, 12));
    assert!(!allowed(0, 13));
    assert!(allowed(11, 9), "JoinGroup passes opaque");
    assert!(!allowed(78, 1), "ShareFetch withheld");
    assert!(allowed(17, 0), "SaslHandshake v0: raw tokens are carried in SaslAuthenticate");
    assert!(allowed(17, 1));
    assert!(!allowed(12_345, 0), "unknown key");
}

#[test]
fn produce_rejection_round_trips_in_every_version() {
    let topics = vec![crate::protocol::ProduceTopic { name: "orders".into(), partitions: vec![0, 2] }];
    for version in 0..=12i16 {
        let frame = produce_response::rejection(version, 8, &topics, 21, "acks=1 refused").expect("encode");
        let scan = produce_response::scan(&frame, version).expect("scan");
        let got: Vec<_> = scan.errors.iter().map(|e| (&*e.topic, e.partition, e.error_code)).collect();
        assert_eq!(got, vec![("orders", 0, 21), ("orders", 2, 21)], "v{version}");
        if version >= 8 {
            assert_eq!(scan.errors[0].message.as_deref(), Some("acks=1 refused"));
        }
    }
}

//! Every API and version the sink advertises is answered with a response kafka-protocol decodes;
//! Fetch serves a valid batch at the offset asked; acks=0 gets no answer; truncated and corrupted
//! requests close the connection instead of panicking. (`cargo test --example nullsink`, and
//! `cargo test --all-targets`; tests/it/nullsink.rs drives the binary with librdkafka.)

use bytes::Bytes;
use kafka_durability_proxy::protocol::encode::{self, response_header_len};
use kafka_durability_proxy::protocol::records::{batch_len, crc_matches};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

use crate::api::{self, APIS};
use crate::fetch::Segment;
use crate::state::Sink;

fn sink() -> Sink {
    Sink::new(7, "127.0.0.1".into(), 9999, 2, Segment::build(10, 100).expect("segment"))
}

fn topic() -> TopicName {
    TopicName(StrBytes::from_static_str("bench"))
}

fn batch(n: usize) -> Bytes {
    let records: Vec<Record> = (0..n as i64)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: -1,
            timestamp: 0,
            key: None,
            value: Some(Bytes::from_static(b"0123456789")),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression: Compression::None }).expect("batch");
    buf.freeze()
}

/// A request of `api` at `version` with one topic and partition where the API has them.
fn request(api: ApiKey, version: i16, acks: i16) -> Bytes {
    let frame = |body: &dyn Fn(&mut bytes::BytesMut) -> anyhow::Result<()>| -> Bytes {
        let mut buf = bytes::BytesMut::new();
        bytes::BufMut::put_i32(&mut buf, 0);
        let header = RequestHeader::default().with_request_api_key(api as i16).with_request_api_version(version).with_correlation_id(42);
        header.encode(&mut buf, api.request_header_version(version)).expect("header");
        body(&mut buf).expect("body");
        encode::finish(buf)
    };
    macro_rules! enc {
        ($m:expr) => {{
            let message = $m;
            frame(&|b| message.encode(b, version))
        }};
    }
    match api {
        ApiKey::Produce => {
            let p = produce_request::PartitionProduceData::default().with_index(1).with_records(Some(batch(3)));
            let t = produce_request::TopicProduceData::default().with_name(topic()).with_partition_data(vec![p]);
            enc!(ProduceRequest::default().with_acks(acks).with_topic_data(vec![t]))
        }
        ApiKey::Fetch => {
            let p = fetch_request::FetchPartition::default().with_partition(1).with_fetch_offset(12_345);
            enc!(FetchRequest::default()
                .with_topics(vec![fetch_request::FetchTopic::default().with_topic(topic()).with_partitions(vec![p])]))
        }
        ApiKey::ListOffsets => {
            let p = list_offsets_request::ListOffsetsPartition::default().with_partition_index(1).with_timestamp(-1);
            enc!(ListOffsetsRequest::default()
                .with_topics(vec![list_offsets_request::ListOffsetsTopic::default().with_name(topic()).with_partitions(vec![p])]))
        }
        ApiKey::Metadata => {
            enc!(MetadataRequest::default()
                .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default().with_name(Some(topic()))])))
        }
        ApiKey::OffsetCommit => {
            let p = offset_commit_request::OffsetCommitRequestPartition::default().with_partition_index(1).with_committed_offset(5);
            let t = offset_commit_request::OffsetCommitRequestTopic::default().with_name(topic()).with_partitions(vec![p]);
            enc!(OffsetCommitRequest::default().with_topics(vec![t]))
        }
        ApiKey::OffsetFetch if version < 8 => {
            let t = offset_fetch_request::OffsetFetchRequestTopic::default().with_name(topic()).with_partition_indexes(vec![1]);
            enc!(OffsetFetchRequest::default().with_topics(Some(vec![t])))
        }
        ApiKey::OffsetFetch => {
            let t = offset_fetch_request::OffsetFetchRequestTopics::default().with_name(topic()).with_partition_indexes(vec![1]);
            let g = offset_fetch_request::OffsetFetchRequestGroup::default().with_topics(Some(vec![t]));
            enc!(OffsetFetchRequest::default().with_groups(vec![g]))
        }
        ApiKey::FindCoordinator if version >= 4 => {
            enc!(FindCoordinatorRequest::default().with_coordinator_keys(vec![StrBytes::from_static_str("g")]))
        }
        ApiKey::FindCoordinator => enc!(FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g"))),
        ApiKey::ListGroups => enc!(ListGroupsRequest::default()),
        ApiKey::ApiVersions => enc!(ApiVersionsRequest::default()),
        ApiKey::CreateTopics => {
            enc!(CreateTopicsRequest::default()
                .with_topics(vec![create_topics_request::CreatableTopic::default().with_name(topic()).with_num_partitions(1)]))
        }
        ApiKey::InitProducerId => enc!(InitProducerIdRequest::default()),
        ApiKey::DescribeConfigs => {
            let r = describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("bench"));
            enc!(DescribeConfigsRequest::default().with_resources(vec![r]))
        }
        other => panic!("no request built for {other:?}"),
    }
}

/// The one frame answering `req`, decoded as `R` at `version`.
fn answer<R: Decodable>(sink: &Sink, req: &Bytes, api: ApiKey, version: i16) -> R {
    let parts = api::handle(sink, req).unwrap_or_else(|| panic!("{api:?} v{version}: no answer"));
    let frame: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    assert_eq!(frame.get(..4), Some(&((frame.len() - 4) as i32).to_be_bytes()[..]), "{api:?} v{version}: size prefix");
    assert_eq!(frame.get(4..8), Some(&42i32.to_be_bytes()[..]), "{api:?} v{version}: correlation id");
    let mut body = Bytes::from(frame).slice(4 + response_header_len(api, version)..);
    let decoded = R::decode(&mut body, version).unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"));
    assert!(body.is_empty(), "{api:?} v{version}: {} bytes left after the body", body.len());
    decoded
}

fn check<R: Decodable>(sink: &Sink, api: ApiKey, version: i16) {
    let _: R = answer(sink, &request(api, version, -1), api, version);
}

#[test]
fn every_advertised_version_is_answered_and_decodes() {
    let s = sink();
    for &(api, min, max) in APIS {
        // Produce v0-2 are advertised (as Kafka 4 does) but refused.
        let min = if api == ApiKey::Produce { crate::produce::MIN_ANSWERED } else { min };
        for v in min..=max {
            match api {
                ApiKey::Produce => check::<ProduceResponse>(&s, api, v),
                ApiKey::Fetch => check::<FetchResponse>(&s, api, v),
                ApiKey::ListOffsets => check::<ListOffsetsResponse>(&s, api, v),
                ApiKey::Metadata => check::<MetadataResponse>(&s, api, v),
                ApiKey::OffsetCommit => check::<OffsetCommitResponse>(&s, api, v),
                ApiKey::OffsetFetch => check::<OffsetFetchResponse>(&s, api, v),
                ApiKey::FindCoordinator => check::<FindCoordinatorResponse>(&s, api, v),
                ApiKey::ListGroups => check::<ListGroupsResponse>(&s, api, v),
                ApiKey::ApiVersions => check::<ApiVersionsResponse>(&s, api, v),
                ApiKey::CreateTopics => check::<CreateTopicsResponse>(&s, api, v),
                ApiKey::InitProducerId => check::<InitProducerIdResponse>(&s, api, v),
                ApiKey::DescribeConfigs => check::<DescribeConfigsResponse>(&s, api, v),
                other => panic!("advertised but not checked: {other:?}"),
            }
        }
    }
}

#[test]
fn fetch_serves_a_valid_batch_at_the_offset_asked() {
    let s = sink();
    for v in 4..=crate::fetch::MAX_VERSION {
        let resp: FetchResponse = answer(&s, &request(ApiKey::Fetch, v, -1), ApiKey::Fetch, v);
        let part = &resp.responses[0].partitions[0];
        assert_eq!((part.partition_index, part.error_code), (1, 0), "v{v}");
        let records = part.records.clone().expect("records");
        assert_eq!(batch_len(&records), Ok(records.len()));
        assert_eq!(crc_matches(&records), Ok(true), "v{v}: the CRC does not cover the patched base offset");
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut records.clone()).expect("batch decodes");
        let offsets: Vec<i64> = set.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (12_345..12_355).collect::<Vec<_>>(), "v{v}");
        assert!(set.records.iter().all(|r| r.value.as_ref().map(|b| b.len()) == Some(100)));
    }
    assert_eq!(s.stats.json()["fetch_records"], 10 * 9);
}

#[test]
fn produce_is_counted_and_acks_0_gets_no_answer() {
    let s = sink();
    let resp: ProduceResponse = answer(&s, &request(ApiKey::Produce, 9, -1), ApiKey::Produce, 9);
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!((resp.responses[0].name.as_str(), p.index, p.error_code, p.base_offset), ("bench", 1, 0, 0));
    assert_eq!(api::handle(&s, &request(ApiKey::Produce, 9, 0)).map(|v| v.len()), Some(0), "acks=0: nothing");
    let stats = s.stats.json();
    assert_eq!((stats["produce_requests"].as_u64(), stats["produce_records"].as_u64()), (Some(2), Some(6)));
    let mut v2 = request(ApiKey::Produce, 3, -1).to_vec();
    v2[6..8].copy_from_slice(&2i16.to_be_bytes());
    assert_eq!(api::handle(&s, &Bytes::from(v2)), None, "Produce v2: refused");
}

#[test]
fn bad_frames_close_the_connection_without_panicking() {
    let s = sink();
    for &(api, min, max) in APIS {
        let min = if api == ApiKey::Produce { crate::produce::MIN_ANSWERED } else { min };
        for v in min..=max {
            let frame = request(api, v, -1);
            for cut in 4..frame.len() {
                let mut short = frame.slice(..cut).to_vec();
                short[..4].copy_from_slice(&((cut - 4) as i32).to_be_bytes());
                let _ = api::handle(&s, &Bytes::from(short));
            }
            // Every count made huge: refused, not allocated.
            let mut huge = frame.to_vec();
            for at in (14..huge.len().saturating_sub(4)).step_by(3) {
                huge[at..at + 4].copy_from_slice(&0x7fff_fff0i32.to_be_bytes());
                let _ = api::handle(&s, &Bytes::from(huge.clone()));
            }
        }
    }
    let unknown = encode::finish(bytes::BytesMut::from(&[0, 0, 0, 0, 0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff][..]));
    assert_eq!(api::handle(&s, &unknown), None, "unknown API key");
}

#[test]
fn a_newer_api_versions_gets_unsupported_version_and_the_range() {
    let s = sink();
    let resp: ApiVersionsResponse = answer(&s, &request(ApiKey::ApiVersions, 4, -1), ApiKey::ApiVersions, 4);
    assert_eq!(resp.api_keys.len(), APIS.len());
    let mut newer = request(ApiKey::ApiVersions, 3, -1).to_vec();
    newer[6..8].copy_from_slice(&9i16.to_be_bytes());
    let resp: ApiVersionsResponse = answer(&s, &Bytes::from(newer), ApiKey::ApiVersions, 0);
    assert_eq!(resp.error_code, 35);
    assert_eq!(resp.api_keys.iter().map(|k| (k.api_key, k.min_version, k.max_version)).collect::<Vec<_>>(), vec![(18, 0, 4)]);
}

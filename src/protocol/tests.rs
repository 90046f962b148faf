//! Header peek and acks patch over every Produce version, including null client_id, null and
//! non-null transactional_id and flexible header tagged fields.

use super::encode as frames;
use super::frame::frame_with_prefix;
use super::*;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::{ProduceRequest, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;

fn produce(version: i16, client_id: Option<&str>, txn: Option<&str>, acks: i16) -> BytesMut {
    let topics = ["orders", "payments"]
        .iter()
        .map(|t| {
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string((*t).to_owned())))
                .with_topic_id(if version >= 13 { uuid::Uuid::from_u128(7) } else { Default::default() })
                .with_partition_data(vec![
                    PartitionProduceData::default().with_index(0).with_records(Some(Bytes::from_static(&[0xab; 61]))),
                    PartitionProduceData::default().with_index(3).with_records(None),
                ])
        })
        .collect();
    let req = ProduceRequest::default()
        .with_transactional_id(txn.map(|t| TransactionalId(StrBytes::from_string(t.to_owned()))))
        .with_acks(acks)
        .with_timeout_ms(30_000)
        .with_topic_data(topics);
    let frame = frames::request(ApiKey::Produce, version, 42, client_id, &req).expect("encode");
    BytesMut::from(&frame[..])
}

/// Produce v0-2 as the crate cannot encode them: acks first, no transactional_id.
fn produce_legacy(version: i16, client_id: Option<&str>, acks: i16) -> BytesMut {
    let mut p = Vec::new();
    p.extend_from_slice(&0i16.to_be_bytes());
    p.extend_from_slice(&version.to_be_bytes());
    p.extend_from_slice(&42i32.to_be_bytes());
    match client_id {
        Some(c) => {
            p.extend_from_slice(&(c.len() as i16).to_be_bytes());
            p.extend_from_slice(c.as_bytes());
        }
        None => p.extend_from_slice(&(-1i16).to_be_bytes()),
    }
    p.extend_from_slice(&acks.to_be_bytes());
    p.extend_from_slice(&1000i32.to_be_bytes());
    p.extend_from_slice(&1i32.to_be_bytes());
    p.extend_from_slice(&6i16.to_be_bytes());
    p.extend_from_slice(b"orders");
    p.extend_from_slice(&1i32.to_be_bytes());
    p.extend_from_slice(&2i32.to_be_bytes());
    p.extend_from_slice(&3i32.to_be_bytes());
    p.extend_from_slice(b"xyz");
    frame_with_prefix(&p)
}

#[test]
fn acks_found_and_patched_in_every_produce_version() {
    for version in 0..=13i16 {
        for client_id in [Some("legacy-app"), None, Some("")] {
            for txn in [None, Some("tx-1")] {
                if version < 3 && txn.is_some() {
                    continue;
                }
                for acks in [0i16, 1, -1] {
                    let mut frame =
                        if version < 3 { produce_legacy(version, client_id, acks) } else { produce(version, client_id, txn, acks) };
                    let original = frame.clone();
                    let h = peek_request_header(&frame).expect("header");
                    assert_eq!((h.api_key, h.api_version, h.correlation_id), (0, version, 42));
                    assert_eq!(h.client_id(&frame), client_id, "v{version}");
                    let head = peek_produce(&frame, &h).expect("produce head");
                    assert_eq!(head.acks, acks, "v{version} client={client_id:?} txn={txn:?}");
                    assert_eq!(head.transactional, txn.is_some());

                    let topics = produce_topics(&frame, &h, &head).expect("topics");
                    assert_eq!(topics.first().map(|t| t.partitions.clone()), Some(if version < 3 { vec![2] } else { vec![0, 3] }));
                    if version < 13 {
                        assert_eq!(topics.first().map(|t| t.name.as_str()), Some("orders"));
                    }

                    patch_acks(&mut frame, &head, -1).expect("patch");
                    let again = peek_produce(&frame, &peek_request_header(&frame).expect("h")).expect("head");
                    assert_eq!(again.acks, -1);
                    assert_eq!(frame.len(), original.len());
                    let diff: Vec<usize> = (0..frame.len()).filter(|&i| frame[i] != original[i]).collect();
                    assert!(diff.iter().all(|&i| i == head.acks_offset || i == head.acks_offset + 1), "only acks bytes change");
                }
            }
        }
    }
}

#[test]
fn flexible_header_tagged_fields_are_skipped() {
    // v9 header with a tagged field in the request header (tag 5, 3 bytes).
    let frame = produce(9, Some("c"), None, 1);
    let h = peek_request_header(&frame).expect("header");
    let body = h.body_offset.expect("known api");
    let mut with_tags = Vec::new();
    with_tags.extend_from_slice(&frame[4..body - 1]);
    with_tags.extend_from_slice(&[1, 5, 3, 9, 9, 9]);
    with_tags.extend_from_slice(&frame[body..]);
    let frame = frame_with_prefix(&with_tags);
    let h = peek_request_header(&frame).expect("header");
    assert_eq!(peek_produce(&frame, &h).map(|p| p.acks), Some(1));
}

#[test]
fn truncated_produce_frames_never_panic() {
    let frame = produce(9, Some("client"), Some("txn"), 1);
    for cut in 0..frame.len() {
        let short = &frame[..cut];
        if let Some(h) = peek_request_header(short) {
            if let Some(head) = peek_produce(short, &h) {
                let _ = produce_topics(short, &h, &head);
            }
        }
    }
}

#[test]
fn unknown_api_key_has_no_body_offset() {
    let mut p = Vec::new();
    p.extend_from_slice(&12_000i16.to_be_bytes());
    p.extend_from_slice(&0i16.to_be_bytes());
    p.extend_from_slice(&9i32.to_be_bytes());
    p.extend_from_slice(&(-1i16).to_be_bytes());
    let frame = frame_with_prefix(&p);
    let h = peek_request_header(&frame).expect("header");
    assert_eq!(h.body_offset, None);
    assert_eq!(h.client_id, None);
}

#[test]
fn frame_splitting_caps_and_recognises_tls() {
    let mut buf = BytesMut::from(&[0u8, 0, 0, 3, 1, 2, 3, 0, 0][..]);
    assert_eq!(split_frame(&mut buf, 10).expect("ok").map(|f| f.len()), Some(7));
    assert_eq!(split_frame(&mut buf, 10), Ok(None), "partial prefix waits");
    let mut big = BytesMut::from(&[0u8, 0, 1, 0][..]);
    assert_eq!(split_frame(&mut big, 10), Err(FrameError::TooLarge { size: 256, max: 10 }));
    let mut tls = BytesMut::from(&[0x16u8, 0x03, 0x01, 0x02, 0x00][..]);
    assert_eq!(split_frame(&mut tls, 100 << 20), Err(FrameError::LooksLikeTls));
    let mut neg = BytesMut::from(&[0xffu8, 0xff, 0xff, 0xfe][..]);
    assert_eq!(split_frame(&mut neg, 100), Err(FrameError::Negative(-2)));
}

#[test]
fn response_counts_are_checked_before_decoding() {
    use kafka_protocol::messages::{CreateTopicsResponse, MetadataResponse};
    // Metadata v0 with i32::MAX brokers and no bytes behind them.
    let meta = Bytes::from_static(&[0, 0, 0, 8, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff]);
    assert!(frames::decode_response::<MetadataResponse>(&meta, ApiKey::Metadata, 0).is_err());
    assert!(response_guard::response(ApiKey::Metadata, 0, &[0, 0, 0, 0, 0, 0, 0, 0]).is_ok(), "no brokers, no topics");
    // CreateTopics v5, one topic (throttle, count, name, error, message, partitions, rf, null
    // configs) whose known tag 0, an i16, claims 3 bytes: the decoder reads 2 and goes on from
    // there, so the walk, which must read what the decoder reads, refuses.
    let topic = [0, 0, 0, 0, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
    let ok = [&topic[..], &[1, 0, 2, 0, 7], &[0]].concat();
    assert!(response_guard::response(ApiKey::CreateTopics, 5, &ok).is_ok());
    let parted = [&topic[..], &[1, 0, 3, 0, 7, 0], &[0]].concat();
    assert!(response_guard::response(ApiKey::CreateTopics, 5, &parted).is_err());
    let ok = frames::response(ApiKey::CreateTopics, 5, 1, &CreateTopicsResponse::default()).expect("encode");
    assert!(frames::decode_response::<CreateTopicsResponse>(&ok, ApiKey::CreateTopics, 5).is_ok());
    assert!(response_guard::response(ApiKey::ListOffsets, 5, &[]).is_err(), "APIs without a walk are not decoded blind");
}

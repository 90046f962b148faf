//! Whole request frames as clients send them: a header built by hand (so the legacy versions
//! kafka-protocol cannot encode get one too), and Produce requests of every version 0-13 with
//! what the proxy should find in them.

use kafka_durability_proxy::protocol::ProduceTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, TopicName, TransactionalId};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::requests::encode;
use super::{name, s, uuid};

/// Size prefix, request header (v1, or v2 with an empty tagged section when the API version is
/// flexible) and `body`.
pub fn request_frame(api: ApiKey, version: i16, corr: i32, client_id: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(16 + body.len());
    p.extend_from_slice(&(api as i16).to_be_bytes());
    p.extend_from_slice(&version.to_be_bytes());
    p.extend_from_slice(&corr.to_be_bytes());
    match client_id {
        Some(c) => {
            p.extend_from_slice(&(c.len() as i16).to_be_bytes());
            p.extend_from_slice(c.as_bytes());
        }
        None => p.extend_from_slice(&(-1i16).to_be_bytes()),
    }
    if api.request_header_version(version) >= 2 {
        p.push(0);
    }
    p.extend_from_slice(body);
    let mut f = (p.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(&p);
    f
}

/// The header fields a generated frame carries.
#[derive(Clone, Debug)]
pub struct Header {
    pub corr: i32,
    pub client_id: Option<String>,
}

pub fn header() -> impl Strategy<Value = Header> {
    (any::<i32>(), option::of(name())).prop_map(|(corr, client_id)| Header { corr, client_id })
}

/// A Produce request and what the proxy should read from it.
#[derive(Clone, Debug)]
pub struct Produce {
    pub frame: Vec<u8>,
    pub version: i16,
    pub header: Header,
    pub acks: i16,
    pub transactional: bool,
    pub topics: Vec<ProduceTopic>,
}

pub fn acks() -> impl Strategy<Value = i16> {
    prop_oneof![Just(-1i16), Just(0), Just(1), any::<i16>()]
}

type Topics = Vec<(String, uuid::Uuid, Vec<(i32, Option<Vec<u8>>)>)>;

fn topics() -> impl Strategy<Value = Topics> {
    vec((name(), uuid(), vec((any::<i32>(), option::of(vec(any::<u8>(), 0..48))), 0..4)), 0..4)
}

/// A Produce request at version `v` (0-13).
pub fn produce(v: i16) -> BoxedStrategy<Produce> {
    (header(), option::of(name()), acks(), any::<i32>(), topics())
        .prop_map(move |(header, txn, acks, timeout, topics)| {
            let txn = txn.filter(|_| v >= 3);
            let expect = topics
                .iter()
                .map(|(n, id, parts)| ProduceTopic {
                    name: if v >= 13 { super::hex(id.as_bytes()) } else { n.clone() },
                    partitions: parts.iter().map(|(p, _)| *p).collect(),
                })
                .collect();
            let body = if v >= 3 { produce_body(v, txn.as_deref(), acks, timeout, &topics) } else { legacy_body(acks, timeout, &topics) };
            let frame = request_frame(ApiKey::Produce, v, header.corr, header.client_id.as_deref(), &body);
            Produce { frame, version: v, header, acks, transactional: txn.is_some(), topics: expect }
        })
        .boxed()
}

fn produce_body(v: i16, txn: Option<&str>, acks: i16, timeout: i32, topics: &Topics) -> Vec<u8> {
    let data = topics
        .iter()
        .map(|(n, id, parts)| {
            let t = TopicProduceData::default().with_partition_data(
                parts.iter().map(|(p, r)| PartitionProduceData::default().with_index(*p).with_records(r.clone().map(Into::into))).collect(),
            );
            if v >= 13 {
                t.with_topic_id(*id)
            } else {
                t.with_name(TopicName(s(n)))
            }
        })
        .collect();
    let m = ProduceRequest::default()
        .with_transactional_id(txn.map(|t| TransactionalId(s(t))))
        .with_acks(acks)
        .with_timeout_ms(timeout)
        .with_topic_data(data);
    encode(&m, v)
}

/// Produce v0-2, which kafka-protocol cannot encode: acks, timeout, [name [partition message_set]].
fn legacy_body(acks: i16, timeout: i32, topics: &Topics) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&acks.to_be_bytes());
    b.extend_from_slice(&timeout.to_be_bytes());
    b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for (n, _, parts) in topics {
        b.extend_from_slice(&(n.len() as i16).to_be_bytes());
        b.extend_from_slice(n.as_bytes());
        b.extend_from_slice(&(parts.len() as i32).to_be_bytes());
        for (p, records) in parts {
            b.extend_from_slice(&p.to_be_bytes());
            match records {
                Some(r) => {
                    b.extend_from_slice(&(r.len() as i32).to_be_bytes());
                    b.extend_from_slice(r);
                }
                None => b.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
    }
    b
}

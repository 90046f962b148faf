//! Produce at memory speed: the request is walked with the project's own header and batch peeks
//! (acks, then each partition's record set, skipped by length; records counted from the v2 batch
//! headers, nothing decompressed or decoded), counted, and answered with success. acks=0 gets no
//! answer, as Apache Kafka sends none.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use kafka_durability_proxy::protocol::batch::for_each_partition;
use kafka_durability_proxy::protocol::encode;
use kafka_durability_proxy::protocol::{peek_produce, RequestHeader};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::state::Sink;

/// Oldest Produce version kafka-protocol encodes a response for; v0-2 (legacy message sets)
/// close the connection, as Kafka 4 does.
pub const MIN_ANSWERED: i16 = 3;

/// The answer to a Produce frame: Some(empty) for acks=0, None when the frame is malformed.
pub fn handle(sink: &Sink, frame: &Bytes, h: &RequestHeader) -> Option<Vec<Bytes>> {
    if h.api_version < MIN_ANSWERED {
        return None;
    }
    let head = peek_produce(frame, h)?;
    let mut topics: Vec<(Bytes, Vec<(i32, i64)>)> = Vec::new();
    let mut records = 0i64;
    for_each_partition(frame, h, &head, |topic, summary| {
        records += summary.records;
        match topics.last_mut() {
            Some((name, parts)) if name.as_ref() == topic => parts.push((summary.partition, summary.records)),
            _ => topics.push((Bytes::copy_from_slice(topic), vec![(summary.partition, summary.records)])),
        }
    })?;
    let stats = &sink.stats;
    stats.produce_requests.fetch_add(1, Relaxed);
    stats.produce_records.fetch_add(records.max(0) as u64, Relaxed);
    stats.produce_bytes.fetch_add(frame.len() as u64, Relaxed);
    if head.acks == 0 {
        return Some(Vec::new());
    }
    let body = response(sink, topics)?;
    encode::response(ApiKey::Produce, h.api_version, h.correlation_id, &body).ok().map(|b| vec![b])
}

fn response(sink: &Sink, topics: Vec<(Bytes, Vec<(i32, i64)>)>) -> Option<ProduceResponse> {
    let mut out = Vec::with_capacity(topics.len());
    for (name, parts) in topics {
        let name = StrBytes::from_utf8(name).ok()?;
        let partition_responses = parts
            .into_iter()
            .map(|(index, n)| {
                PartitionProduceResponse::default()
                    .with_index(index)
                    .with_base_offset(sink.append(n))
                    .with_log_append_time_ms(-1)
                    .with_log_start_offset(0)
            })
            .collect();
        out.push(TopicProduceResponse::default().with_name(TopicName(name)).with_partition_responses(partition_responses));
    }
    Some(ProduceResponse::default().with_responses(out))
}

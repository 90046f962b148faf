//! Reading a Produce response without decoding it: the partition errors (needed when the proxy
//! swallows the response to an upgraded acks=0 request) and where the top-level tagged section
//! starts (KIP-951 node endpoints, v10+). Also building the proxy's own rejection response.

use std::sync::Arc;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::cursor::Cursor;
use super::encode;
use super::frame::SIZE_LEN;
use super::produce::ProduceTopic;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionError {
    /// Shared by every failed partition of the topic: one copy of the name, not one per partition.
    pub topic: Arc<str>,
    pub partition: i32,
    pub error_code: i16,
    pub message: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProduceScan {
    pub errors: Vec<PartitionError>,
    /// Offset of the top-level tagged section (v9+).
    pub tagged_offset: Option<usize>,
}

/// Walks a Produce response frame of any version 0-13.
pub fn scan(frame: &[u8], version: i16) -> Option<ProduceScan> {
    let flexible = version >= 9;
    let mut c = Cursor::at(frame, SIZE_LEN);
    c.i32()?; // correlation id
    if flexible {
        c.skip_tagged_fields()?;
    }
    let mut errors = Vec::new();
    let topics = c.array_len_v(flexible)?;
    for _ in 0..topics {
        let topic: Arc<str> = if version >= 13 {
            c.bytes(16)?.iter().map(|b| format!("{b:02x}")).collect::<String>().into()
        } else {
            String::from_utf8_lossy(c.string_v(flexible)?.unwrap_or_default()).into()
        };
        let partitions = c.array_len_v(flexible)?;
        for _ in 0..partitions {
            let partition = c.i32()?;
            let error_code = c.i16()?;
            c.i64()?; // base_offset
            if version >= 2 {
                c.i64()?; // log_append_time_ms
            }
            if version >= 5 {
                c.i64()?; // log_start_offset
            }
            let mut message = None;
            if version >= 8 {
                let record_errors = c.array_len_v(flexible)?;
                for _ in 0..record_errors {
                    c.i32()?;
                    c.string_v(flexible)?;
                    if flexible {
                        c.skip_tagged_fields()?;
                    }
                }
                message = c.string_v(flexible)?.map(|m| String::from_utf8_lossy(m).into_owned());
            }
            if flexible {
                c.skip_tagged_fields()?;
            }
            if error_code != 0 {
                errors.push(PartitionError { topic: topic.clone(), partition, error_code, message });
            }
        }
        if flexible {
            c.skip_tagged_fields()?;
        }
    }
    if version >= 1 {
        c.i32()?; // throttle_time_ms
    }
    let tagged_offset = flexible.then_some(c.pos());
    if flexible {
        c.skip_tagged_fields()?;
    }
    (c.remaining() == 0).then_some(ProduceScan { errors, tagged_offset })
}

/// The proxy's own Produce response failing every partition with `error_code` (and, v8+, the
/// `message`), for a request the broker never sees.
pub fn rejection(
    version: i16,
    correlation_id: i32,
    topics: &[ProduceTopic],
    error_code: i16,
    message: &str,
) -> anyhow::Result<bytes::Bytes> {
    if version < 3 {
        return Ok(legacy_rejection(version, correlation_id, topics, error_code));
    }
    let msg = (version >= 8).then(|| StrBytes::from_string(message.to_owned()));
    let responses = topics
        .iter()
        .map(|t| {
            TopicProduceResponse::default().with_name(TopicName(StrBytes::from_string(t.name.clone()))).with_partition_responses(
                t.partitions
                    .iter()
                    .map(|p| {
                        PartitionProduceResponse::default()
                            .with_index(*p)
                            .with_error_code(error_code)
                            .with_base_offset(-1)
                            .with_log_append_time_ms(-1)
                            .with_log_start_offset(-1)
                            .with_error_message(msg.clone())
                    })
                    .collect(),
            )
        })
        .collect();
    let body = ProduceResponse::default().with_responses(responses);
    encode::response(ApiKey::Produce, version, correlation_id, &body)
}

/// Produce v0-2 responses, which kafka-protocol does not encode: `[name [index error base_offset
/// (v2: log_append_time)]] (v1+: throttle_time_ms)`.
fn legacy_rejection(version: i16, correlation_id: i32, topics: &[ProduceTopic], error_code: i16) -> bytes::Bytes {
    use bytes::BufMut;
    let mut b = bytes::BytesMut::new();
    b.put_i32(0);
    b.put_i32(correlation_id);
    b.put_i32(topics.len() as i32);
    for t in topics {
        b.put_i16(t.name.len() as i16);
        b.put_slice(t.name.as_bytes());
        b.put_i32(t.partitions.len() as i32);
        for p in &t.partitions {
            b.put_i32(*p);
            b.put_i16(error_code);
            b.put_i64(-1);
            if version >= 2 {
                b.put_i64(-1);
            }
        }
    }
    if version >= 1 {
        b.put_i32(0);
    }
    encode::finish(b)
}

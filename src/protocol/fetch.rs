//! Fetch requests and responses walked in place, records skipped by their length and never read:
//! which partitions a response failed (with the log start offset the broker reports), where its
//! top-level tagged section starts (KIP-951 endpoints), and the offset a request fetched from.
//! Versions 4-18: classic encodings before 12, flexible from 12, topic ids from 13.

use super::cursor::Cursor;
use super::frame::SIZE_LEN;

/// A topic as a Fetch names it: by name (v4-12) or by id (v13+, rendered as hex).
pub type TopicKey = String;

/// A partition a Fetch response failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionError {
    pub topic: TopicKey,
    pub partition: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    /// -1 before v5.
    pub log_start_offset: i64,
}

/// The topic's raw bytes (name, or 16-byte id from v13): turned into a `TopicKey` only when
/// needed, so a walk over a healthy response allocates nothing.
fn topic_raw<'a>(c: &mut Cursor<'a>, version: i16, flexible: bool) -> Option<&'a [u8]> {
    if version >= 13 {
        return c.bytes(16);
    }
    Some(c.string_v(flexible)?.unwrap_or_default())
}

fn topic_key(raw: &[u8], version: i16) -> TopicKey {
    if version >= 13 {
        return raw.iter().map(|b| format!("{b:02x}")).collect();
    }
    String::from_utf8_lossy(raw).into_owned()
}

fn tags(c: &mut Cursor<'_>, flexible: bool) -> Option<()> {
    if flexible {
        c.skip_tagged_fields()?;
    }
    Some(())
}

/// Walks a Fetch response (v4+): the partitions with a non-zero error, and the offset of the
/// top-level tagged section (v12+).
pub fn response_errors(frame: &[u8], version: i16) -> Option<(Vec<PartitionError>, Option<usize>)> {
    if version < 4 {
        return None;
    }
    let flexible = version >= 12;
    let mut c = Cursor::at(frame, SIZE_LEN);
    c.i32()?; // correlation id
    tags(&mut c, flexible)?; // response header v1
    c.i32()?; // throttle_time_ms
    if version >= 7 {
        c.i16()?; // error_code
        c.i32()?; // session_id
    }
    let mut errors = Vec::new();
    for _ in 0..c.bounded_array_len_v(flexible)? {
        let topic = topic_raw(&mut c, version, flexible)?;
        for _ in 0..c.bounded_array_len_v(flexible)? {
            if let Some(e) = partition(&mut c, version, flexible, topic)? {
                errors.push(e);
            }
        }
        tags(&mut c, flexible)?;
    }
    let tagged = flexible.then_some(c.pos());
    Some((errors, tagged))
}

/// One partition of a response; Some(error) when it failed.
fn partition(c: &mut Cursor<'_>, version: i16, flexible: bool, topic: &[u8]) -> Option<Option<PartitionError>> {
    let partition = c.i32()?;
    let error_code = c.i16()?;
    let high_watermark = c.i64()?;
    c.i64()?; // last_stable_offset
    let log_start_offset = if version >= 5 { c.i64()? } else { -1 };
    for _ in 0..c.bounded_array_len_v(flexible)? {
        c.skip(16)?; // aborted transaction: producer_id, first_offset
        tags(c, flexible)?;
    }
    if version >= 11 {
        c.i32()?; // preferred_read_replica
    }
    c.skip_bytes_v(flexible)?; // records
    tags(c, flexible)?;
    let topic = || topic_key(topic, version);
    Some((error_code != 0).then(|| PartitionError { topic: topic(), partition, error_code, high_watermark, log_start_offset }))
}

/// What a Fetch request names, in order: a topic (its raw name, or 16-byte id from v13), then
/// each of its partitions with the offset fetched from.
pub enum RequestEntry<'a> {
    Topic(&'a [u8]),
    Partition { partition: i32, offset: i64 },
}

/// Walks a Fetch request (v4+, its body at `body_offset`), handing `visit` every topic and
/// partition in order until it returns true. None when the request is malformed.
pub fn walk_request<'a>(frame: &'a [u8], body_offset: usize, version: i16, mut visit: impl FnMut(RequestEntry<'a>) -> bool) -> Option<()> {
    let flexible = version >= 12;
    let mut c = Cursor::at(frame, body_offset);
    if version <= 14 {
        c.i32()?; // replica_id
    }
    c.skip(4 + 4 + 4 + 1)?; // max_wait_ms, min_bytes, max_bytes, isolation_level
    if version >= 7 {
        c.skip(8)?; // session_id, session_epoch
    }
    for _ in 0..c.bounded_array_len_v(flexible)? {
        if visit(RequestEntry::Topic(topic_raw(&mut c, version, flexible)?)) {
            return Some(());
        }
        for _ in 0..c.bounded_array_len_v(flexible)? {
            let partition = c.i32()?;
            if version >= 9 {
                c.i32()?; // current_leader_epoch
            }
            let offset = c.i64()?;
            if version >= 12 {
                c.i32()?; // last_fetched_epoch
            }
            if version >= 5 {
                c.i64()?; // log_start_offset
            }
            c.i32()?; // partition_max_bytes
            tags(&mut c, flexible)?;
            if visit(RequestEntry::Partition { partition, offset }) {
                return Some(());
            }
        }
        tags(&mut c, flexible)?;
    }
    Some(())
}

/// The offset a Fetch request (v4+, frame with its header at `body_offset`) asked for one
/// topic partition.
pub fn request_offset(frame: &[u8], body_offset: usize, version: i16, topic: &str, partition: i32) -> Option<i64> {
    let (mut in_topic, mut found) = (false, None);
    walk_request(frame, body_offset, version, |entry| match entry {
        RequestEntry::Topic(raw) => {
            in_topic = topic_key(raw, version) == topic;
            false
        }
        RequestEntry::Partition { partition: p, offset } => {
            found = (in_topic && p == partition).then_some(offset);
            found.is_some()
        }
    })?;
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::encode;
    use bytes::Bytes;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;

    #[test]
    fn errors_and_offsets_in_every_version() {
        for version in 4..=17i16 {
            let topic = |p: i32, e: i16, records: usize| {
                PartitionData::default()
                    .with_partition_index(p)
                    .with_error_code(e)
                    .with_high_watermark(500)
                    .with_log_start_offset(300)
                    .with_records(Some(Bytes::from(vec![9u8; records])))
            };
            let id = uuid::Uuid::from_u128(77);
            let mut t = FetchableTopicResponse::default().with_partitions(vec![topic(0, 0, 100), topic(1, 1, 0)]);
            if version >= 13 {
                t = t.with_topic_id(id);
            } else {
                t = t.with_topic(TopicName(StrBytes::from_static_str("orders")));
            }
            let frame = encode::response(ApiKey::Fetch, version, 1, &FetchResponse::default().with_responses(vec![t])).expect("encode");
            let (errors, tagged) = response_errors(&frame, version).expect("walk");
            let key = if version >= 13 { format!("{:032x}", 77u128) } else { "orders".into() };
            let want_lso = if version >= 5 { 300 } else { -1 };
            assert_eq!(
                errors,
                vec![PartitionError { topic: key.clone(), partition: 1, error_code: 1, high_watermark: 500, log_start_offset: want_lso }],
                "v{version}"
            );
            assert_eq!(tagged.is_some(), version >= 12, "v{version}");
            let p = |i: i32, offset: i64| FetchPartition::default().with_partition(i).with_fetch_offset(offset);
            let mut ft = FetchTopic::default().with_partitions(vec![p(0, 10), p(1, 42)]);
            if version >= 13 {
                ft = ft.with_topic_id(id);
            } else {
                ft = ft.with_topic(TopicName(StrBytes::from_static_str("orders")));
            }
            let req =
                encode::request(ApiKey::Fetch, version, 1, Some("c"), &FetchRequest::default().with_topics(vec![ft])).expect("encode");
            let h = crate::protocol::peek_request_header(&req).expect("header");
            let off = h.body_offset.expect("body");
            assert_eq!(request_offset(&req, off, version, &key, 1), Some(42), "v{version}");
            assert_eq!(request_offset(&req, off, version, &key, 7), None, "v{version}");
        }
    }
}

//! Consumer-group requests read in place: the group a connection works for (the first field of
//! JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit and OffsetFetch before v8), and the
//! offsets an OffsetCommit (v2-9) commits, walked with every count checked (nothing is decoded
//! by kafka-protocol, so nothing is pre-allocated from a wire count).

use kafka_protocol::messages::ApiKey;

use super::cursor::Cursor;
use super::header::RequestHeader;

/// The version from which an API's request is flexible, for the APIs that name a group first.
fn flexible_from(api: ApiKey) -> Option<i16> {
    Some(match api {
        ApiKey::JoinGroup => 6,
        ApiKey::SyncGroup | ApiKey::Heartbeat | ApiKey::LeaveGroup => 4,
        ApiKey::OffsetCommit => 8,
        ApiKey::OffsetFetch => 6,
        _ => return None,
    })
}

/// The group id a group request names, for the APIs that carry one as their first field.
pub fn group_id<'a>(frame: &'a [u8], h: &RequestHeader) -> Option<&'a str> {
    let api = h.known_api()?;
    if api == ApiKey::OffsetFetch && h.api_version >= 8 {
        return None; // a batch of groups
    }
    let flexible = h.api_version >= flexible_from(api)?;
    let raw = Cursor::at(frame, h.body_offset?).string_v(flexible)?;
    std::str::from_utf8(raw?).ok()
}

/// One committed offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// The group, member and offsets of an OffsetCommit request, v2-9; None when it is malformed or
/// of another version.
pub fn offset_commit(frame: &[u8], h: &RequestHeader) -> Option<(String, String, Vec<Commit>)> {
    let v = h.api_version;
    if !(2..=9).contains(&v) {
        return None;
    }
    let flex = v >= 8;
    let text = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
    let mut c = Cursor::at(frame, h.body_offset?);
    let group = text(c.string_v(flex)?);
    c.i32()?; // generation id / member epoch
    let member = text(c.string_v(flex)?);
    if v >= 7 {
        c.string_v(flex)?; // group instance id
    }
    if v <= 4 {
        c.i64()?; // retention_time_ms
    }
    let mut commits = Vec::new();
    for _ in 0..c.bounded_array_len_v(flex)? {
        let topic = text(c.string_v(flex)?);
        for _ in 0..c.bounded_array_len_v(flex)? {
            let partition = c.i32()?;
            let offset = c.i64()?;
            if v >= 6 {
                c.i32()?; // committed leader epoch
            }
            c.string_v(flex)?; // metadata
            if flex {
                c.skip_tagged_fields()?;
            }
            commits.push(Commit { topic: topic.clone(), partition, offset });
        }
        if flex {
            c.skip_tagged_fields()?;
        }
    }
    Some((group, member, commits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::encode;
    use crate::protocol::peek_request_header;
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    use kafka_protocol::messages::{GroupId, HeartbeatRequest, OffsetCommitRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;

    #[test]
    fn groups_and_commits_in_every_version() {
        for v in 2..=9i16 {
            let req = OffsetCommitRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("billing")))
                .with_member_id(StrBytes::from_static_str("m-1"))
                .with_topics(vec![OffsetCommitRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("orders")))
                    .with_partitions(vec![OffsetCommitRequestPartition::default().with_partition_index(3).with_committed_offset(1234)])]);
            let frame = encode::request(ApiKey::OffsetCommit, v, 1, Some("c"), &req).expect("encode");
            let h = peek_request_header(&frame).expect("header");
            assert_eq!(group_id(&frame, &h), Some("billing"), "v{v}");
            let (group, member, commits) = offset_commit(&frame, &h).expect("walk");
            assert_eq!((group.as_str(), member.as_str()), ("billing", "m-1"));
            assert_eq!(commits, vec![Commit { topic: "orders".into(), partition: 3, offset: 1234 }], "v{v}");
            assert!(offset_commit(&frame[..frame.len() - 3], &h).is_none(), "truncated: v{v}");
        }
        for v in 0..=4i16 {
            let req = HeartbeatRequest::default().with_group_id(GroupId(StrBytes::from_static_str("g2")));
            let frame = encode::request(ApiKey::Heartbeat, v, 1, Some("c"), &req).expect("encode");
            assert_eq!(group_id(&frame, &peek_request_header(&frame).expect("h")), Some("g2"), "Heartbeat v{v}");
        }
    }
}

//! Offsets for consumers that keep none here: ListOffsets (earliest 0, latest the far log end,
//! by timestamp 0), OffsetCommit (accepted and forgotten), OffsetFetch (nothing committed, -1).

use bytes::Bytes;
use kafka_durability_proxy::protocol::groups;
use kafka_durability_proxy::protocol::RequestHeader;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;

use crate::api::{reply, text};
use crate::fetch::LOG_END;
use crate::walk::{self, Topics};

/// ListOffsets' special timestamp for "the latest offset".
const LATEST: i64 = -1;

pub fn handle(api: ApiKey, frame: &[u8], h: &RequestHeader, body: &[u8]) -> Option<Bytes> {
    let v = h.api_version;
    match api {
        ApiKey::ListOffsets => reply(api, h, &list_offsets(&walk::list_offsets(body, v)?)),
        ApiKey::OffsetCommit => {
            let (_, _, commits) = groups::offset_commit(frame, h)?;
            reply(api, h, &offset_commit(&commits))
        }
        ApiKey::OffsetFetch => reply(api, h, &offset_fetch(&walk::offset_fetch(body, v)?, v)),
        _ => None,
    }
}

fn list_offsets(topics: &Topics<'_, i64>) -> ListOffsetsResponse {
    let topics = topics
        .iter()
        .map(|(name, parts)| {
            let partitions = parts
                .iter()
                .map(|(index, timestamp)| {
                    let offset = if *timestamp == LATEST { LOG_END } else { 0 };
                    ListOffsetsPartitionResponse::default().with_partition_index(*index).with_offset(offset)
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(TopicName(text(name))).with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// Every committed partition succeeds, in the order asked (topics grouped as they came).
fn offset_commit(commits: &[groups::Commit]) -> OffsetCommitResponse {
    let mut topics: Vec<OffsetCommitResponseTopic> = Vec::new();
    for c in commits {
        let part = OffsetCommitResponsePartition::default().with_partition_index(c.partition);
        match topics.last_mut() {
            Some(t) if *t.name == *c.topic => t.partitions.push(part),
            _ => {
                topics.push(OffsetCommitResponseTopic::default().with_name(TopicName(text(c.topic.as_bytes()))).with_partitions(vec![part]))
            }
        }
    }
    OffsetCommitResponse::default().with_topics(topics)
}

/// Nothing committed: every partition asked about gets offset -1. v8+ batch groups.
fn offset_fetch(groups: &[walk::GroupAsk<'_>], version: i16) -> OffsetFetchResponse {
    if version < 8 {
        let topics = groups
            .iter()
            .flat_map(|(_, topics)| topics.iter().flatten())
            .map(|(name, parts)| {
                let partitions = parts
                    .iter()
                    .map(|(i, _)| OffsetFetchResponsePartition::default().with_partition_index(*i).with_committed_offset(-1))
                    .collect();
                OffsetFetchResponseTopic::default().with_name(TopicName(text(name))).with_partitions(partitions)
            })
            .collect();
        return OffsetFetchResponse::default().with_topics(topics);
    }
    let groups = groups
        .iter()
        .map(|(group, topics)| {
            let topics = topics
                .iter()
                .flatten()
                .map(|(name, parts)| {
                    let partitions = parts
                        .iter()
                        .map(|(i, _)| OffsetFetchResponsePartitions::default().with_partition_index(*i).with_committed_offset(-1))
                        .collect();
                    OffsetFetchResponseTopics::default().with_name(TopicName(text(name))).with_partitions(partitions)
                })
                .collect();
            OffsetFetchResponseGroup::default().with_group_id(GroupId(text(group))).with_topics(topics)
        })
        .collect();
    OffsetFetchResponse::default().with_groups(groups)
}

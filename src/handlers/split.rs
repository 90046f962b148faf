//! The machinery of multi-resource admin requests: decode a client's request only after its
//! counts passed a guard walk, drop the refused entries, re-encode the rest behind the original
//! header, answer alone when nothing is left, and merge the proxy's own results into the broker's
//! answer in request order, so the client sees one response.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    alter_configs_response, alter_partition_reassignments_response, create_partitions_response, create_topics_response,
    delete_records_response, delete_topics_response, incremental_alter_configs_response, ApiKey, CreatePartitionsResponse,
    CreateTopicsResponse, DeleteRecordsResponse, DeleteTopicsResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::{Ctx, Disposition, HandlerError, Route};
use crate::protocol::encode::{self, reencode};
use crate::protocol::SIZE_LEN;
use crate::rewrite::RewriteError;

/// The request being split: its frame, where its body starts, and which API it is.
pub struct Site<'a> {
    pub frame: &'a Bytes,
    pub body_offset: usize,
    pub api_key: ApiKey,
    pub api: &'static str,
}

/// The proxy's own results, to be merged into the broker's response in request order.
#[derive(Debug)]
pub enum Merge {
    CreateTopics { order: Vec<String>, local: Vec<create_topics_response::CreatableTopicResult> },
    DeleteTopics { order: Vec<String>, local: Vec<delete_topics_response::DeletableTopicResult> },
    DeleteRecords { order: Vec<String>, local: Vec<delete_records_response::DeleteRecordsTopicResult> },
    AlterConfigs { order: Vec<String>, local: Vec<alter_configs_response::AlterConfigsResourceResponse> },
    IncrementalAlterConfigs { order: Vec<String>, local: Vec<incremental_alter_configs_response::AlterConfigsResourceResponse> },
    CreatePartitions { order: Vec<String>, local: Vec<create_partitions_response::CreatePartitionsTopicResult> },
    Reassignments { order: Vec<String>, local: Vec<alter_partition_reassignments_response::ReassignableTopicResponse> },
}

pub fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// The request body, decoded once its structure passed `check` (a `protocol::guard` walk:
/// kafka-protocol pre-allocates arrays from wire counts, so counts are checked before it sees
/// the bytes).
pub fn checked<M: Decodable>(at: &Site<'_>, version: i16, check: impl Fn(&[u8]) -> bool) -> Result<M, HandlerError> {
    let mut body = at.frame.slice(at.body_offset.min(at.frame.len())..);
    if !check(&body) {
        return Err(HandlerError::Malformed(at.api));
    }
    M::decode(&mut body, version).map_err(|_| HandlerError::Malformed(at.api))
}

/// Forward the request as the client sent it.
pub fn unchanged(at: &Site<'_>) -> Route {
    Route::Forward(at.frame.clone(), Disposition::Forward)
}

/// Keeps the entries marked true; `keep` has one mark per entry (an entry without one is
/// dropped: nothing unjudged is forwarded).
pub fn retain_marked<T>(entries: &mut Vec<T>, keep: &[bool]) {
    let mut i = 0;
    entries.retain(|_| {
        let k = keep.get(i).copied().unwrap_or(false);
        i += 1;
        k
    });
}

/// A request frame with the original header and a new body.
pub fn reframe<M: Encodable>(at: &Site<'_>, body: &M, version: i16) -> Result<Bytes, HandlerError> {
    let header = at.frame.get(SIZE_LEN..at.body_offset).ok_or(HandlerError::Malformed(at.api))?;
    let mut out = BytesMut::with_capacity(at.frame.len() + 64);
    out.extend_from_slice(&[0; SIZE_LEN]);
    out.extend_from_slice(header);
    body.encode(&mut out, version).map_err(|e| HandlerError::Encode(at.api, e.to_string()))?;
    Ok(encode::finish(out))
}

/// The proxy's own answer, in the request's version and shape.
pub fn answer<M: Encodable>(at: &Site<'_>, ctx: &Ctx<'_>, body: &M) -> Result<Route, HandlerError> {
    encode::response(at.api_key, ctx.version(), ctx.correlation_id, body)
        .map(Route::Answer)
        .map_err(|e| HandlerError::Encode(at.api, e.to_string()))
}

/// Ends a split: with nothing left for the broker, the proxy answers with its own results (built
/// in request order); otherwise the remaining request is re-encoded and forwarded, and `merge`
/// says how to fold the proxy's results into the broker's answer.
pub fn conclude<Req: Encodable, Resp: Encodable, T>(
    at: &Site<'_>,
    ctx: &Ctx<'_>,
    req: &Req,
    nothing_left: bool,
    local: Vec<T>,
    answer_with: impl FnOnce(Vec<T>) -> Resp,
    merge: impl FnOnce(Vec<T>) -> Option<Merge>,
) -> Result<Route, HandlerError> {
    if nothing_left {
        return answer(at, ctx, &answer_with(local));
    }
    let frame = reframe(at, req, ctx.version())?;
    let disposition = match merge(local) {
        Some(m) => Disposition::Merge(Box::new(m)),
        None => Disposition::Forward,
    };
    Ok(Route::Forward(frame, disposition))
}

/// Puts results in the order the request named them.
pub fn order_results<T>(order: Vec<String>, broker: Vec<T>, local: Vec<T>, name: impl Fn(&T) -> String) -> Vec<T> {
    let mut all: Vec<(usize, T)> =
        broker.into_iter().chain(local).map(|r| (order.iter().position(|n| *n == name(&r)).unwrap_or(usize::MAX), r)).collect();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

/// Merges the proxy's own results into the broker's response.
pub fn merge(frame: &Bytes, version: i16, merge: Merge) -> Result<Bytes, RewriteError> {
    let resource = |t: i8, n: &StrBytes| format!("{t}:{n}");
    match merge {
        Merge::CreateTopics { order, local } => reencode(frame, ApiKey::CreateTopics, version, |m: &mut CreateTopicsResponse| {
            m.topics = order_results(order, std::mem::take(&mut m.topics), local, |r| r.name.0.to_string());
            Ok::<_, RewriteError>(())
        }),
        Merge::DeleteTopics { order, local } => reencode(frame, ApiKey::DeleteTopics, version, |m: &mut DeleteTopicsResponse| {
            m.responses = order_results(order, std::mem::take(&mut m.responses), local, super::delete_topics::label);
            Ok(())
        }),
        Merge::DeleteRecords { order, local } => reencode(frame, ApiKey::DeleteRecords, version, |m: &mut DeleteRecordsResponse| {
            m.topics = order_results(order, std::mem::take(&mut m.topics), local, |r| r.name.0.to_string());
            Ok(())
        }),
        Merge::AlterConfigs { order, local } => {
            reencode(frame, ApiKey::AlterConfigs, version, |m: &mut kafka_protocol::messages::AlterConfigsResponse| {
                m.responses =
                    order_results(order, std::mem::take(&mut m.responses), local, |r| resource(r.resource_type, &r.resource_name));
                Ok(())
            })
        }
        Merge::IncrementalAlterConfigs { order, local } => reencode(
            frame,
            ApiKey::IncrementalAlterConfigs,
            version,
            |m: &mut kafka_protocol::messages::IncrementalAlterConfigsResponse| {
                m.responses =
                    order_results(order, std::mem::take(&mut m.responses), local, |r| resource(r.resource_type, &r.resource_name));
                Ok(())
            },
        ),
        Merge::CreatePartitions { order, local } => {
            reencode(frame, ApiKey::CreatePartitions, version, |m: &mut CreatePartitionsResponse| {
                m.results = order_results(order, std::mem::take(&mut m.results), local, |r| r.name.0.to_string());
                Ok(())
            })
        }
        Merge::Reassignments { order, local } => reencode(frame, ApiKey::AlterPartitionReassignments, version, |m| {
            super::partitions::merge_reassignments(m, order, local);
            Ok(())
        }),
    }
}

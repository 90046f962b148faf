//! CreateTopics v0-1 and DeleteTopics v0, which old clients still send without asking
//! ApiVersions (Sarama configured for Kafka 0.10/0.11, kafka-go 0.2) and which kafka-protocol no
//! longer carries, nor Kafka 4 brokers accept. The proxy reads them (v0/v1 requests are the next
//! version minus a field), judges them by the same rules, sends the rest to the broker in a
//! version the broker supports, and answers the client in the shape of the version it spoke.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse};
use kafka_protocol::protocol::{Message, VersionRange};

use super::split::{checked, Site};
use super::{create_topics, delete_topics, Ctx, Disposition, HandlerError, Route};
use crate::cluster::ClusterView;
use crate::protocol::encode::{self, decode_response};
use crate::protocol::errors::UNSUPPORTED_VERSION;
use crate::protocol::guard;
use crate::rewrite::RewriteError;

/// How to answer the client once the broker has answered the translated request.
#[derive(Debug)]
pub struct Plan {
    api: ApiKey,
    /// The version the client spoke, and the one the broker was asked in.
    client_version: i16,
    broker_version: i16,
    correlation_id: i32,
    /// Entry names in request order, and the proxy's own results (name, code, message).
    order: Vec<String>,
    local: Vec<Outcome>,
}

/// One entry's result in the legacy response: name, error code, message (v1 CreateTopics only).
type Outcome = (String, i16, Option<String>);

/// The broker version to translate to: the newest both the broker and kafka-protocol know.
fn broker_version<V: ClusterView>(view: &V, api: ApiKey, ours: VersionRange) -> Option<i16> {
    let broker = view.api_versions(api as i16).unwrap_or(ours);
    let usable = broker.intersect(&ours);
    (!usable.is_empty()).then_some(usable.max)
}

pub fn create_topics<V: ClusterView>(ctx: &Ctx<'_>, view: &V, at: &Site<'_>) -> Result<Route, HandlerError> {
    let v = ctx.version();
    // v1 is v2; v0 lacks validate_only at the end (false).
    let mut req: CreateTopicsRequest = if v == 0 { with_flag(at)? } else { checked(at, 2, |b| guard::create_topics(b, 1))? };
    let (kept, local, order, _) = create_topics::judge_all(ctx, std::mem::take(&mut req.topics), req.validate_only);
    let local: Vec<Outcome> =
        local.into_iter().map(|r| (r.name.0.to_string(), r.error_code, r.error_message.map(|m| m.to_string()))).collect();
    let plan = |broker_version| Plan {
        api: ApiKey::CreateTopics,
        client_version: v,
        broker_version,
        correlation_id: ctx.correlation_id,
        order,
        local,
    };
    if kept.is_empty() {
        return answer_locally(plan(v), &[]);
    }
    let Some(bv) = broker_version(view, ApiKey::CreateTopics, CreateTopicsRequest::VERSIONS) else {
        let all: Vec<String> = kept.iter().map(|t| t.name.0.to_string()).collect();
        return answer_locally(plan(v), &all);
    };
    req.topics = kept;
    let frame = encode::request(ApiKey::CreateTopics, bv, ctx.correlation_id, ctx.client_id(), &req)
        .map_err(|e| HandlerError::Encode("CreateTopics", e.to_string()))?;
    Ok(Route::Forward(frame, Disposition::Legacy(Box::new(plan(bv)))))
}

/// A v0 body is a v1 body without the trailing validate_only flag.
fn with_flag(at: &Site<'_>) -> Result<CreateTopicsRequest, HandlerError> {
    let body = at.frame.get(at.body_offset..).ok_or(HandlerError::Malformed(at.api))?;
    if !guard::create_topics(body, 0) {
        return Err(HandlerError::Malformed(at.api));
    }
    let mut b = BytesMut::with_capacity(body.len() + 1);
    b.extend_from_slice(body);
    b.put_u8(0);
    let padded = Site { frame: &b.freeze(), body_offset: 0, api_key: at.api_key, api: at.api };
    checked(&padded, 2, |_| true)
}

pub fn delete_topics<V: ClusterView>(ctx: &Ctx<'_>, view: &V, at: &Site<'_>) -> Result<Route, HandlerError> {
    // v0 is v1.
    let req: DeleteTopicsRequest = checked(at, 1, |b| guard::delete_topics(b, 1))?;
    let names: Vec<(Option<String>, uuid::Uuid)> = req.topic_names.iter().map(|n| (Some(n.0.to_string()), uuid::Uuid::nil())).collect();
    let (keep, local, order) = delete_topics::judge_all(ctx, &names);
    let local: Vec<Outcome> = local.iter().map(|r| (delete_topics::label(r), r.error_code, None)).collect();
    let kept: Vec<_> = req.topic_names.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(n, _)| n).collect();
    let plan = |broker_version| Plan {
        api: ApiKey::DeleteTopics,
        client_version: 0,
        broker_version,
        correlation_id: ctx.correlation_id,
        order,
        local,
    };
    if kept.is_empty() {
        return answer_locally(plan(0), &[]);
    }
    let Some(bv) = broker_version(view, ApiKey::DeleteTopics, DeleteTopicsRequest::VERSIONS) else {
        let all: Vec<String> = kept.iter().map(|n| n.0.to_string()).collect();
        return answer_locally(plan(0), &all);
    };
    let mut out = DeleteTopicsRequest::default().with_timeout_ms(req.timeout_ms);
    if bv >= 6 {
        out.topics = kept.into_iter().map(|n| DeleteTopicState::default().with_name(Some(n))).collect();
    } else {
        out.topic_names = kept;
    }
    let frame = encode::request(ApiKey::DeleteTopics, bv, ctx.correlation_id, ctx.client_id(), &out)
        .map_err(|e| HandlerError::Encode("DeleteTopics", e.to_string()))?;
    Ok(Route::Forward(frame, Disposition::Legacy(Box::new(plan(bv)))))
}

/// The answer without the broker: the proxy's refusals, and UNSUPPORTED_VERSION for `unsent`
/// entries the broker could not be asked about in any version the proxy can speak.
fn answer_locally(mut plan: Plan, unsent: &[String]) -> Result<Route, HandlerError> {
    let message = "durability proxy: the broker supports no version of this API the proxy can translate to";
    plan.local.extend(unsent.iter().map(|n| (n.clone(), UNSUPPORTED_VERSION, Some(message.to_owned()))));
    Ok(Route::Answer(legacy_response(&plan, Vec::new())))
}

/// The client's answer from the broker's response to the translated request.
pub fn answer(frame: &Bytes, plan: Plan) -> Result<Bytes, RewriteError> {
    let broker: Vec<Outcome> = match plan.api {
        ApiKey::CreateTopics => {
            let (_, m): (i32, CreateTopicsResponse) = decode_response(frame, plan.api, plan.broker_version)?;
            m.topics.into_iter().map(|t| (t.name.0.to_string(), t.error_code, t.error_message.map(|m| m.to_string()))).collect()
        }
        _ => {
            let (_, m): (i32, DeleteTopicsResponse) = decode_response(frame, plan.api, plan.broker_version)?;
            m.responses.iter().map(|r| (delete_topics::label(r), r.error_code, None)).collect()
        }
    };
    Ok(legacy_response(&plan, broker))
}

/// CreateTopics v0 `[name error_code]`, v1 `[name error_code error_message]`; DeleteTopics v0
/// `[name error_code]`; header v0; entries in request order.
fn legacy_response(plan: &Plan, broker: Vec<Outcome>) -> Bytes {
    let mut all: Vec<&Outcome> = broker.iter().chain(plan.local.iter()).collect();
    all.sort_by_key(|(name, _, _)| plan.order.iter().position(|n| n == name).unwrap_or(usize::MAX));
    let with_message = plan.api == ApiKey::CreateTopics && plan.client_version >= 1;
    let mut b = BytesMut::new();
    b.put_i32(0);
    b.put_i32(plan.correlation_id);
    b.put_i32(i32::try_from(all.len()).unwrap_or(i32::MAX));
    for (name, code, message) in all {
        put_string(&mut b, Some(name));
        b.put_i16(*code);
        if with_message {
            put_string(&mut b, message.as_deref());
        }
    }
    encode::finish(b)
}

fn put_string(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => {
            let s = s.get(..usize::from(i16::MAX.unsigned_abs())).unwrap_or(s);
            b.put_i16(i16::try_from(s.len()).unwrap_or(i16::MAX));
            b.put_slice(s.as_bytes());
        }
        None => b.put_i16(-1),
    }
}

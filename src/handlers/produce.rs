//! Produce: carries out the idempotence rule (`policy::idempotence`, read from the batch headers)
//! and the acks rule (`policy::produce`). Durable requests from idempotent producers are
//! forwarded after a header walk that allocates nothing; weak acks are upgraded in place (two
//! bytes, no copy), answered with INVALID_REQUIRED_ACKS, closed (acks=0 cannot be answered), or
//! forwarded and audited; batches without a producer id are audited or refused.

use bytes::BytesMut;

use super::{Disposition, Env, HandlerError, Route, Swallowed};
use crate::audit::Event;
use crate::cluster::ClusterView;
use crate::policy::idempotence::{self, Batches, Verdict};
use crate::policy::produce::{self as acks_rule, AcksInput, AcksVerdict, ACKS_ALL};
use crate::protocol::batch::{all_idempotent, produce_batches};
use crate::protocol::errors::{INVALID_REQUIRED_ACKS, POLICY_VIOLATION};
use crate::protocol::produce_response;
use crate::protocol::{patch_acks, peek_produce, produce_topics, ProduceHead, RequestHeader};

pub fn handle<V: ClusterView>(env: &Env<'_, V>, frame: BytesMut, h: &RequestHeader) -> Result<Route, HandlerError> {
    let head = peek_produce(&frame, h).ok_or(HandlerError::Malformed("Produce"))?;
    if let Some(refused) = idempotence(env, &frame, h, &head)? {
        return Ok(refused);
    }
    if !matches!(head.acks, 0 | 1) {
        return Ok(Route::Forward(frame.freeze(), answered(h)));
    }
    acks(env, frame, h, &head)
}

/// For a request already forwarded as it arrived (`session::cut`): the idempotence rule's
/// audit, run on the whole frame once it is through. Only requests no rule can refuse are
/// forwarded that way (`may_cut_through`).
pub fn observe<V: ClusterView>(env: &Env<'_, V>, frame: &[u8], h: &RequestHeader) -> Result<(), HandlerError> {
    let head = peek_produce(frame, h).ok_or(HandlerError::Malformed("Produce"))?;
    idempotence(env, frame, h, &head).map(|_| ())
}

/// Whether a Produce whose first bytes are `head` may be forwarded before it is whole: acks=all
/// (nothing to upgrade or refuse) and no idempotence rule that could refuse it.
pub fn may_cut_through(policies: &crate::policy::Policies, head: &[u8], h: &RequestHeader) -> bool {
    use crate::policy::Action;
    let refusing = policies.idempotence.action == Action::Reject || policies.scopes.iter().any(|s| s.idempotence == Some(Action::Reject));
    !refusing && peek_produce(head, h).is_some_and(|p| p.acks == ACKS_ALL)
}

/// The idempotence rule; Some(route) when the request is refused.
fn idempotence<V: ClusterView>(
    env: &Env<'_, V>,
    frame: &[u8],
    h: &RequestHeader,
    head: &ProduceHead,
) -> Result<Option<Route>, HandlerError> {
    if all_idempotent(frame, h, head).ok_or(HandlerError::Malformed("Produce"))? {
        return Ok(None);
    }
    let batches = produce_batches(frame, h, head).ok_or(HandlerError::Malformed("Produce"))?;
    let weak: Vec<_> = batches.iter().filter(|b| !b.summary.control && !b.summary.idempotent()).collect();
    env.metrics.detectors.non_idempotent_batches.add(weak.len() as u64);
    let judged: Vec<Batches> = weak.iter().map(|b| Batches { topic: &b.topic, idempotent: false }).collect();
    let principal = env.identity.principal();
    let decision = idempotence::judge(env.policies, h.client_id(frame), principal.as_deref(), env.peer.ip(), &judged);
    let action = match decision.verdict {
        Verdict::Allow => return Ok(None),
        Verdict::Exempt => "exempt",
        Verdict::Audit => "audit",
        Verdict::Reject => "reject",
    };
    let mut topics: Vec<String> = weak.iter().map(|b| b.topic.clone()).collect();
    topics.dedup();
    let records: i64 = weak.iter().map(|b| b.summary.records).sum();
    let detail = serde_json::json!({ "records": records, "magic": weak.first().map(|b| b.summary.magic), "acks": head.acks, "scope": decision.scope });
    env.audit.record(Event::non_idempotent(&env.origin(frame, h), action, topics, detail));
    if decision.verdict != Verdict::Reject {
        return Ok(None);
    }
    if head.acks == 0 {
        return Ok(Some(Route::Close));
    }
    let message = format!("durability proxy rule {}: records without a producer id are not allowed, enable idempotence", idempotence::RULE);
    rejection(frame, h, head, POLICY_VIOLATION, &message).map(Some)
}

fn rejection(frame: &[u8], h: &RequestHeader, head: &ProduceHead, code: i16, message: &str) -> Result<Route, HandlerError> {
    let topics = produce_topics(frame, h, head).ok_or(HandlerError::Malformed("Produce"))?;
    let answer = produce_response::rejection(h.api_version, h.correlation_id, &topics, code, message)
        .map_err(|e| HandlerError::Encode("Produce rejection", e.to_string()))?;
    Ok(Route::Answer(answer))
}

/// The acks rule for a Produce with acks 0 or 1.
fn acks<V: ClusterView>(env: &Env<'_, V>, mut frame: BytesMut, h: &RequestHeader, head: &ProduceHead) -> Result<Route, HandlerError> {
    let topics = produce_topics(&frame, h, head).ok_or(HandlerError::Malformed("Produce"))?;
    let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
    let principal = env.identity.principal();
    let input =
        AcksInput { acks: head.acks, client_id: h.client_id(&frame), principal: principal.as_deref(), peer: env.peer.ip(), topics: &names };
    let decision = acks_rule::judge(env.policies, &input);
    if decision.verdict == AcksVerdict::Allow {
        return Ok(unchanged(frame, h, head));
    }
    let origin = env.origin(&frame, h);
    let owned_names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    let event = |verdict: AcksVerdict, mut detail: serde_json::Value| {
        if let (Some(name), Some(obj)) = (decision.scope, detail.as_object_mut()) {
            obj.insert("scope".into(), name.into());
        }
        Event::weak_acks(&origin, verdict.as_str(), owned_names.clone(), detail)
    };
    let verdict = decision.verdict;
    match verdict {
        AcksVerdict::Allow => Ok(unchanged(frame, h, head)),
        AcksVerdict::Exempt | AcksVerdict::Audit => {
            env.audit.record(event(verdict, serde_json::json!({ "acks": head.acks })));
            Ok(unchanged(frame, h, head))
        }
        AcksVerdict::Upgrade => {
            patch_acks(&mut frame, head, ACKS_ALL).ok_or(HandlerError::Malformed("Produce"))?;
            env.audit.record(event(verdict, serde_json::json!({ "acks_from": head.acks, "acks_to": ACKS_ALL })));
            if head.acks == 0 {
                let template = Box::new(Event::unseen_produce_error(&origin, owned_names.clone(), serde_json::Value::Null));
                if env.policies.produce_acks.redeliver {
                    return Ok(Route::Hold(frame, template));
                }
                return Ok(Route::Forward(frame.freeze(), Disposition::Swallow(Box::new(Swallowed { template: *template, held: None }))));
            }
            Ok(Route::Forward(frame.freeze(), answered(h)))
        }
        AcksVerdict::Close => {
            // The producer believes these sent: say how many were lost (from the batch headers).
            let dropped: i64 = produce_batches(&frame, h, head).unwrap_or_default().iter().map(|b| b.summary.records).sum();
            let outcome =
                "connection closed: an acks=0 request cannot be answered; its records are lost and the producer believes them sent";
            let detail = serde_json::json!({ "acks": 0, "records_dropped": dropped, "outcome": outcome });
            env.audit.record(event(verdict, detail));
            Ok(Route::Close)
        }
        AcksVerdict::Reject => {
            let message =
                format!("durability proxy rule {}: acks={} is not allowed, producers must use acks=all (-1)", acks_rule::RULE, head.acks);
            env.audit.record(event(verdict, serde_json::json!({ "acks": head.acks, "error_code": INVALID_REQUIRED_ACKS })));
            rejection(&frame, h, head, INVALID_REQUIRED_ACKS, &message)
        }
    }
}

/// How the broker's answer to a Produce is treated: its partition errors are looked at, and
/// v10+ may carry KIP-951 node endpoints in its tail.
fn answered(h: &RequestHeader) -> Disposition {
    Disposition::Produce { tail: h.api_version >= 10 }
}

/// Forwarded as sent: an acks=0 request may or may not be answered (tansu answers, Kafka not).
fn unchanged(frame: BytesMut, h: &RequestHeader, head: &ProduceHead) -> Route {
    if head.acks == 0 {
        Route::ForwardUnanswered(frame.freeze())
    } else {
        Route::Forward(frame.freeze(), answered(h))
    }
}

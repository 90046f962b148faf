//! Produce: carries out the acks rule (`policy::produce`). Durable requests are forwarded without
//! a second look; weak ones are upgraded in place (two bytes, no copy), answered with
//! INVALID_REQUIRED_ACKS, closed (acks=0 cannot be answered), or forwarded and audited.

use bytes::BytesMut;

use super::{Disposition, Env, HandlerError, Route};
use crate::audit::Event;
use crate::cluster::ClusterView;
use crate::policy::produce::{self as acks_rule, AcksInput, AcksVerdict, ACKS_ALL};
use crate::protocol::errors::INVALID_REQUIRED_ACKS;
use crate::protocol::produce_response;
use crate::protocol::{patch_acks, peek_produce, produce_topics, ProduceHead, RequestHeader};

pub fn handle<V: ClusterView>(env: &Env<'_, V>, mut frame: BytesMut, h: &RequestHeader) -> Result<Route, HandlerError> {
    let head = peek_produce(&frame, h).ok_or(HandlerError::Malformed("Produce"))?;
    if !matches!(head.acks, 0 | 1) {
        return Ok(Route::Forward(frame.freeze(), answered(h)));
    }
    let topics = produce_topics(&frame, h, &head).ok_or(HandlerError::Malformed("Produce"))?;
    let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
    let principal = env.identity.principal();
    let input =
        AcksInput { acks: head.acks, client_id: h.client_id(&frame), principal: principal.as_deref(), peer: env.peer.ip(), topics: &names };
    let decision = acks_rule::judge(env.policies, &input);
    if decision.verdict == AcksVerdict::Allow {
        return Ok(unchanged(frame, h, &head));
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
        AcksVerdict::Allow => Ok(unchanged(frame, h, &head)),
        AcksVerdict::Exempt | AcksVerdict::Audit => {
            env.audit.record(event(verdict, serde_json::json!({ "acks": head.acks })));
            Ok(unchanged(frame, h, &head))
        }
        AcksVerdict::Upgrade => {
            patch_acks(&mut frame, &head, ACKS_ALL).ok_or(HandlerError::Malformed("Produce"))?;
            env.audit.record(event(verdict, serde_json::json!({ "acks_from": head.acks, "acks_to": ACKS_ALL })));
            if head.acks == 0 {
                let template = Event::unseen_produce_error(&origin, owned_names.clone(), serde_json::Value::Null);
                return Ok(Route::Forward(frame.freeze(), Disposition::Swallow(Box::new(template))));
            }
            Ok(Route::Forward(frame.freeze(), answered(h)))
        }
        AcksVerdict::Close => {
            let detail = serde_json::json!({ "acks": 0, "outcome": "connection closed: an acks=0 request cannot be answered" });
            env.audit.record(event(verdict, detail));
            Ok(Route::Close)
        }
        AcksVerdict::Reject => {
            let message =
                format!("durability proxy rule {}: acks={} is not allowed, producers must use acks=all (-1)", acks_rule::RULE, head.acks);
            let answer = produce_response::rejection(h.api_version, h.correlation_id, &topics, INVALID_REQUIRED_ACKS, &message)
                .map_err(|e| HandlerError::Encode("Produce rejection", e.to_string()))?;
            env.audit.record(event(verdict, serde_json::json!({ "acks": head.acks, "error_code": INVALID_REQUIRED_ACKS })));
            Ok(Route::Answer(answer))
        }
    }
}

/// How the broker's answer to a Produce is treated: v10+ may carry KIP-951 node endpoints.
fn answered(h: &RequestHeader) -> Disposition {
    if h.api_version >= 10 {
        Disposition::ProduceTail
    } else {
        Disposition::Forward
    }
}

/// Forwarded as sent: an acks=0 request may or may not be answered (tansu answers, Kafka not).
fn unchanged(frame: BytesMut, h: &RequestHeader, head: &ProduceHead) -> Route {
    if head.acks == 0 {
        Route::ForwardUnanswered(frame.freeze())
    } else {
        Route::Forward(frame.freeze(), answered(h))
    }
}

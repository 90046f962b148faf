//! DeleteTopics v1-6: a topic matching a protected pattern is refused with POLICY_VIOLATION (a
//! delete by topic id alone too, while any pattern is configured); every delete is audited.

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};

use super::split::{checked, conclude, retain_marked, s, unchanged, Merge, Site};
use super::{Ctx, HandlerError, Route};
use crate::audit::Event;
use crate::policy::deletes;
use crate::protocol::errors::POLICY_VIOLATION;
use crate::protocol::guard;

pub fn handle(ctx: &Ctx<'_>, at: &Site<'_>) -> Result<Route, HandlerError> {
    let mut req: DeleteTopicsRequest = checked(at, ctx.version(), |b| guard::delete_topics(b, ctx.version()))?;
    // v6 names topics in `topics` (by name and/or id); earlier versions in `topic_names`.
    let names: Vec<(Option<String>, uuid::Uuid)> = if ctx.version() >= 6 {
        req.topics.iter().map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)).collect()
    } else {
        req.topic_names.iter().map(|n| (Some(n.0.to_string()), uuid::Uuid::nil())).collect()
    };
    let (keep, local, order) = judge_all(ctx, &names);
    if local.is_empty() {
        return Ok(unchanged(at));
    }
    if ctx.version() >= 6 {
        retain_marked(&mut req.topics, &keep);
    } else {
        retain_marked(&mut req.topic_names, &keep);
    }
    let nothing_left = req.topics.is_empty() && req.topic_names.is_empty();
    conclude(
        at,
        ctx,
        &req,
        nothing_left,
        local,
        |l| DeleteTopicsResponse::default().with_responses(l),
        |local| Some(Merge::DeleteTopics { order, local }),
    )
}

/// Judges each named topic: (keep marks, refused results, labels in request order).
pub fn judge_all(ctx: &Ctx<'_>, names: &[(Option<String>, uuid::Uuid)]) -> (Vec<bool>, Vec<DeletableTopicResult>, Vec<String>) {
    let (mut keep, mut local, mut order) = (Vec::new(), Vec::new(), Vec::new());
    for (name, id) in names {
        let label = name.clone().unwrap_or_else(|| format!("topic id {id}"));
        order.push(label.clone());
        let refusal = deletes::refusal(ctx.policies, name.as_deref(), &label);
        let action = if refusal.is_some() { "reject" } else { "allow" };
        ctx.audit.record(Event::delete_topic(&ctx.origin, action, label, refusal.clone()));
        keep.push(refusal.is_none());
        if let Some(msg) = refusal {
            local.push(
                DeletableTopicResult::default()
                    .with_name(name.as_deref().map(|n| TopicName(s(n))))
                    .with_topic_id(*id)
                    .with_error_code(POLICY_VIOLATION)
                    .with_error_message((ctx.version() >= 5).then(|| s(&msg))),
            );
        }
    }
    (keep, local, order)
}

/// How a result is matched to the request's order: by name, else by id.
pub fn label(r: &DeletableTopicResult) -> String {
    r.name.as_ref().map(|n| n.0.to_string()).unwrap_or_else(|| format!("topic id {}", r.topic_id))
}

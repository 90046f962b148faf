//! CreateTopics v2-7 (validate_only judged alike): each topic judged by the topic rules of its
//! scope; offenders get POLICY_VIOLATION with a message naming rule, value and requirement,
//! upgrades are written into the request, the rest goes to the broker untouched.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::split::{checked, conclude, s, unchanged, Merge, Site};
use super::{Ctx, HandlerError, Route};
use crate::audit::Event;
use crate::policy::topics::{self, Change, Finding, NewTopic};
use crate::policy::Action;
use crate::protocol::errors::POLICY_VIOLATION;
use crate::protocol::guard;

pub fn handle(ctx: &Ctx<'_>, at: &Site<'_>) -> Result<Route, HandlerError> {
    let mut req: CreateTopicsRequest = checked(at, ctx.version(), |b| guard::create_topics(b, ctx.version()))?;
    let validate_only = req.validate_only;
    let (kept, local, order, changed) = judge_all(ctx, std::mem::take(&mut req.topics), validate_only);
    if !changed {
        return Ok(unchanged(at));
    }
    let nothing_left = kept.is_empty();
    req.topics = kept;
    conclude(
        at,
        ctx,
        &req,
        nothing_left,
        local,
        |l| CreateTopicsResponse::default().with_topics(l),
        |local| (!local.is_empty()).then_some(Merge::CreateTopics { order, local }),
    )
}

/// What happens to one topic of the request.
pub enum Verdict {
    /// Forward it (changed by upgrades when the flag says so).
    Keep(CreatableTopic, bool),
    /// Refuse it with this result.
    Refuse(CreatableTopicResult),
}

/// Judges every topic: (kept, refused results, names in request order, anything changed).
pub fn judge_all(
    ctx: &Ctx<'_>,
    topics: Vec<CreatableTopic>,
    validate_only: bool,
) -> (Vec<CreatableTopic>, Vec<CreatableTopicResult>, Vec<String>, bool) {
    let (mut kept, mut local, mut order, mut changed) = (Vec::new(), Vec::new(), Vec::new(), false);
    for topic in topics {
        order.push(topic.name.0.to_string());
        match judge(ctx, topic, validate_only) {
            Verdict::Keep(t, c) => {
                changed |= c;
                kept.push(t);
            }
            Verdict::Refuse(r) => {
                changed = true;
                local.push(r);
            }
        }
    }
    (kept, local, order, changed)
}

/// Judges one topic under its scope's rules and audits the outcome.
pub fn judge(ctx: &Ctx<'_>, mut topic: CreatableTopic, validate_only: bool) -> Verdict {
    let name = topic.name.0.to_string();
    let configs: Vec<(String, Option<String>)> =
        topic.configs.iter().map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string()))).collect();
    let assigned = topic.assignments.iter().map(|a| a.broker_ids.len()).min();
    let new = NewTopic { name: &name, replication_factor: topic.replication_factor, assigned_replicas: assigned, configs: &configs };
    let (rules, scope) = ctx.topic_rules(Some(&name));
    let exempt =
        ctx.policies.create_topics.exempt.client_exempt(&ctx.subject(None)) || ctx.policies.create_topics.exempt.topic_exempt(&name);
    let defaults = match ctx.known_defaults() {
        Ok(d) => d,
        Err(why) if !exempt => return refuse_unjudged(ctx, &name, &why, validate_only),
        // Exempt: forwarded either way; the audit's findings use the last known defaults.
        Err(_) => &ctx.defaults,
    };
    let findings = topics::judge(rules, defaults, &new);
    let action = if exempt && !findings.is_empty() { Some("exempt") } else { findings.iter().map(|f| f.action).max().map(Action::as_str) };
    let detail = serde_json::json!({
        "outcome": outcome(action),
        "scope": scope,
        "validate_only": validate_only,
        "replication_factor": topic.replication_factor,
        "assigned_replicas": assigned,
        "configs": configs.iter().cloned().collect::<BTreeMap<_, _>>(),
        "findings": findings_json(&findings),
    });
    ctx.audit.record(Event::create_topic(&ctx.origin, action.unwrap_or("allow"), name.clone(), detail));
    if exempt {
        return Verdict::Keep(topic, false);
    }
    if findings.iter().any(|f| f.action == Action::Reject) {
        return Verdict::Refuse(refused(&name, &topics::rejection_message(&name, &findings)));
    }
    let mut changed = false;
    for change in findings.iter().filter_map(|f| f.change.as_ref()) {
        apply(&mut topic, change);
        changed = true;
    }
    Verdict::Keep(topic, changed)
}

/// The cluster refuses the proxy's own requests, so what the topic would inherit is unknown:
/// refused (fail closed), saying why, never judged against guessed defaults.
fn refuse_unjudged(ctx: &Ctx<'_>, name: &str, reason: &str, validate_only: bool) -> Verdict {
    let message = format!("durability proxy cannot judge topic {name}: {reason}; fix the proxy's upstream.sasl credentials or ACLs");
    let detail = serde_json::json!({
        "outcome": "refused with POLICY_VIOLATION: the cluster refuses the proxy",
        "validate_only": validate_only,
        "reason": reason,
    });
    ctx.audit.record(Event::create_topic(&ctx.origin, "reject", name.to_owned(), detail));
    tracing::warn!(
        topic = name,
        reason,
        "CreateTopics refused: the cluster refuses the proxy's own requests, so the topic cannot be judged"
    );
    Verdict::Refuse(refused(name, &message))
}

fn outcome(action: Option<&str>) -> &'static str {
    match action {
        Some("reject") => "refused with POLICY_VIOLATION",
        Some("upgrade") => "forwarded with the changes listed",
        Some("exempt") => "forwarded unchanged (exempt)",
        Some(_) => "forwarded unchanged (audit)",
        None => "forwarded unchanged",
    }
}

pub fn findings_json(findings: &[Finding]) -> Vec<serde_json::Value> {
    findings.iter().map(|f| serde_json::json!({"rule": f.rule, "action": f.action.as_str(), "message": f.message})).collect()
}

fn refused(name: &str, message: &str) -> CreatableTopicResult {
    CreatableTopicResult::default()
        .with_name(TopicName(s(name)))
        .with_error_code(POLICY_VIOLATION)
        .with_error_message(Some(s(message)))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
}

fn apply(topic: &mut CreatableTopic, change: &Change) {
    match change {
        Change::ReplicationFactor(rf) => topic.replication_factor = *rf,
        Change::SetConfig(key, value) => {
            topic.configs.retain(|c| c.name.as_str() != *key);
            topic.configs.push(CreatableTopicConfig::default().with_name(StrBytes::from_static_str(key)).with_value(Some(s(value))));
        }
    }
}

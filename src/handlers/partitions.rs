//! CreatePartitions (explicit assignments) and AlterPartitionReassignments: partitions given
//! fewer replicas than the replication-factor rule requires are refused (`policy::partitions`).
//! Partitions created without assignments inherit the topic's replication factor, and a null
//! replica list cancels a reassignment: both pass.

use kafka_protocol::messages::alter_partition_reassignments_request::ReassignableTopic;
use kafka_protocol::messages::alter_partition_reassignments_response::{ReassignablePartitionResponse, ReassignableTopicResponse};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, CreatePartitionsRequest, CreatePartitionsResponse,
};

use super::split::{checked, conclude, order_results, retain_marked, s, unchanged, Merge, Site};
use super::{Ctx, HandlerError, Route};
use crate::audit::Event;
use crate::policy::partitions::{judge, minimum};
use crate::policy::Action;
use crate::protocol::errors::POLICY_VIOLATION;
use crate::protocol::guard;

pub fn create_partitions(ctx: &Ctx<'_>, at: &Site<'_>) -> Result<Route, HandlerError> {
    let mut req: CreatePartitionsRequest = checked(at, ctx.version(), |b| guard::create_partitions(b, ctx.version()))?;
    let mut order = Vec::new();
    let mut local = Vec::new();
    let mut keep = Vec::new();
    for t in &req.topics {
        let name = t.name.0.to_string();
        order.push(name.clone());
        let smallest = t.assignments.as_ref().and_then(|a| a.iter().map(|p| p.broker_ids.len()).min());
        let verdict = smallest.and_then(|n| judge(n, minimum(ctx.policies, &ctx.subject(None), &name), "replica assignment with"));
        let action = verdict.as_ref().map(|(a, _)| a.as_str()).unwrap_or("allow");
        let detail = serde_json::json!({ "new_partition_count": t.count, "assigned_replicas": smallest, "finding": verdict.as_ref().map(|(_, m)| m) });
        ctx.audit.record(Event::create_partitions(&ctx.origin, action, name.clone(), detail));
        let refused = matches!(verdict, Some((Action::Reject, _)));
        if let Some((Action::Reject, m)) = verdict {
            local.push(
                CreatePartitionsTopicResult::default()
                    .with_name(t.name.clone())
                    .with_error_code(POLICY_VIOLATION)
                    .with_error_message(Some(s(&format!("durability proxy refused new partitions for topic '{name}': {m}")))),
            );
        }
        keep.push(!refused);
    }
    if local.is_empty() {
        return Ok(unchanged(at));
    }
    retain_marked(&mut req.topics, &keep);
    conclude(
        at,
        ctx,
        &req,
        req.topics.is_empty(),
        local,
        |l| CreatePartitionsResponse::default().with_results(l),
        |local| Some(Merge::CreatePartitions { order, local }),
    )
}

pub fn reassign_partitions(ctx: &Ctx<'_>, at: &Site<'_>) -> Result<Route, HandlerError> {
    let mut req: AlterPartitionReassignmentsRequest =
        checked(at, ctx.version(), |b| guard::alter_partition_reassignments(b, ctx.version()))?;
    let mut order = Vec::new();
    let mut local: Vec<ReassignableTopicResponse> = Vec::new();
    for t in &mut req.topics {
        order.push(t.name.0.to_string());
        let refused = judge_reassignment(ctx, t);
        if !refused.is_empty() {
            local.push(ReassignableTopicResponse::default().with_name(t.name.clone()).with_partitions(refused));
        }
    }
    if local.is_empty() {
        return Ok(unchanged(at));
    }
    req.topics.retain(|t| !t.partitions.is_empty());
    conclude(
        at,
        ctx,
        &req,
        req.topics.is_empty(),
        local,
        |l| AlterPartitionReassignmentsResponse::default().with_responses(l),
        |local| Some(Merge::Reassignments { order, local }),
    )
}

/// Judges one topic's reassignments, drops the refused partitions from it and returns their
/// results; audits the topic.
fn judge_reassignment(ctx: &Ctx<'_>, t: &mut ReassignableTopic) -> Vec<ReassignablePartitionResponse> {
    let name = t.name.0.to_string();
    let min = minimum(ctx.policies, &ctx.subject(None), &name);
    let mut refused = Vec::new();
    let mut findings = Vec::new();
    t.partitions.retain(|p| {
        let Some((action, m)) = p.replicas.as_ref().and_then(|r| judge(r.len(), min, "reassignment to")) else { return true };
        findings.push(serde_json::json!({ "partition": p.partition_index, "action": action.as_str(), "message": m }));
        if action != Action::Reject {
            return true;
        }
        let message = format!("durability proxy refused to reassign {name}-{}: {m}", p.partition_index);
        refused.push(
            ReassignablePartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_error_code(POLICY_VIOLATION)
                .with_error_message(Some(s(&message))),
        );
        false
    });
    let action = match (refused.is_empty(), findings.is_empty()) {
        (false, _) => "reject",
        (true, false) => "audit",
        (true, true) => "allow",
    };
    ctx.audit.record(Event::reassign_partitions(&ctx.origin, action, name, serde_json::json!({ "findings": findings })));
    refused
}

/// Puts the refused partitions back beside the broker's answers for the same topic.
pub fn merge_reassignments(m: &mut AlterPartitionReassignmentsResponse, order: Vec<String>, local: Vec<ReassignableTopicResponse>) {
    let mut topics = std::mem::take(&mut m.responses);
    let mut extra = Vec::new();
    for l in local {
        match topics.iter_mut().find(|t| t.name == l.name) {
            Some(t) => {
                t.partitions.extend(l.partitions);
                t.partitions.sort_by_key(|p| p.partition_index);
            }
            None => extra.push(l),
        }
    }
    m.responses = order_results(order, topics, extra, |r| r.name.0.to_string());
}

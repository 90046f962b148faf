//! CreatePartitions (explicit assignments) and AlterPartitionReassignments: no partition may get
//! fewer replicas than the replication-factor rule requires. Partitions created without
//! assignments inherit the topic's replication factor, and a null replica list cancels a
//! reassignment: both pass. Assignments are never rewritten, so an `upgrade` rule refuses.

use bytes::Bytes;
use kafka_protocol::messages::alter_partition_reassignments_response::{ReassignablePartitionResponse, ReassignableTopicResponse};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey, CreatePartitionsRequest, CreatePartitionsResponse,
};

use super::{checked, conclude, guard, order_results, retain_marked, s, AdminError, Ctx, Merge, Site, Step, POLICY_VIOLATION};
use crate::config::Action;
use crate::policy::topics::RF;

/// The replica count a rule demands and what a shortfall does: None when no rule applies.
fn minimum(ctx: &Ctx<'_>, topic: &str) -> Option<(i16, Action)> {
    let rule = &ctx.cfg.create_topics;
    if rule.exempt.client_exempt(ctx.client_id, ctx.peer.ip()) || rule.exempt.topic_exempt(topic) {
        return None;
    }
    let (rules, _) = ctx.topic_rules(Some(topic));
    let min = rules.replication_factor.value?;
    let action = match rules.replication_factor.action {
        Action::Upgrade => Action::Reject,
        a => a,
    };
    Some((min, action))
}

fn short(replicas: usize, min: i16) -> bool {
    i64::try_from(replicas).unwrap_or(i64::MAX) < i64::from(min)
}

pub fn create_partitions(frame: &Bytes, body_offset: usize, ctx: &Ctx<'_>) -> Result<Step, AdminError> {
    const API: &str = "CreatePartitions";
    let mut req: CreatePartitionsRequest = checked(frame, body_offset, ctx.version, API, |b| guard::create_partitions(b, ctx.version))?;
    let mut order = Vec::new();
    let mut local = Vec::new();
    let mut keep = Vec::new();
    for t in &req.topics {
        let name = t.name.0.to_string();
        order.push(name.clone());
        let smallest = t.assignments.as_ref().and_then(|a| a.iter().map(|p| p.broker_ids.len()).min());
        let verdict = match (smallest, minimum(ctx, &name)) {
            (Some(n), Some((min, action))) if short(n, min) => {
                Some((action, format!("{RF}: replica assignment with {n} replicas is below the required {min}")))
            }
            _ => None,
        };
        let action = verdict.as_ref().map(|(a, _)| a.as_str()).unwrap_or("allow");
        let detail = serde_json::json!({ "new_partition_count": t.count, "assigned_replicas": smallest, "finding": verdict.as_ref().map(|(_, m)| m) });
        ctx.audit.record(ctx.event("create_partitions", "create_topics", action, API, vec![name.clone()], detail));
        match verdict {
            Some((Action::Reject, m)) => {
                local.push(
                    CreatePartitionsTopicResult::default()
                        .with_name(t.name.clone())
                        .with_error_code(POLICY_VIOLATION)
                        .with_error_message(Some(s(&format!("durability proxy refused new partitions for topic '{name}': {m}")))),
                );
                keep.push(false);
            }
            _ => keep.push(true),
        }
    }
    if local.is_empty() {
        return Ok(Step::Unchanged);
    }
    retain_marked(&mut req.topics, &keep);
    let at = Site { frame, body_offset, api_key: ApiKey::CreatePartitions, api: API };
    conclude(
        &at,
        ctx,
        &req,
        req.topics.is_empty(),
        local,
        |l| CreatePartitionsResponse::default().with_results(l),
        |local| Some(Merge::CreatePartitions { order, local }),
    )
}

pub fn reassign_partitions(frame: &Bytes, body_offset: usize, ctx: &Ctx<'_>) -> Result<Step, AdminError> {
    const API: &str = "AlterPartitionReassignments";
    let mut req: AlterPartitionReassignmentsRequest =
        checked(frame, body_offset, ctx.version, API, |b| guard::alter_partition_reassignments(b, ctx.version))?;
    let mut order = Vec::new();
    let mut local: Vec<ReassignableTopicResponse> = Vec::new();
    for t in &mut req.topics {
        let name = t.name.0.to_string();
        order.push(name.clone());
        let min = minimum(ctx, &name);
        let mut refused = Vec::new();
        let mut findings = Vec::new();
        t.partitions.retain(|p| {
            let n = p.replicas.as_ref().map(Vec::len);
            match (n, min) {
                (Some(n), Some((min, action))) if short(n, min) => {
                    let m = format!("{RF}: reassignment to {n} replicas is below the required {min}");
                    findings.push(serde_json::json!({ "partition": p.partition_index, "action": action.as_str(), "message": m }));
                    if action == Action::Reject {
                        refused.push(
                            ReassignablePartitionResponse::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(POLICY_VIOLATION)
                                .with_error_message(Some(s(&format!(
                                    "durability proxy refused to reassign {name}-{}: {m}",
                                    p.partition_index
                                )))),
                        );
                        return false;
                    }
                    true
                }
                _ => true,
            }
        });
        let action = if !refused.is_empty() {
            "reject"
        } else if !findings.is_empty() {
            "audit"
        } else {
            "allow"
        };
        ctx.audit.record(ctx.event(
            "reassign_partitions",
            "create_topics",
            action,
            API,
            vec![name.clone()],
            serde_json::json!({ "findings": findings }),
        ));
        if !refused.is_empty() {
            local.push(ReassignableTopicResponse::default().with_name(t.name.clone()).with_partitions(refused));
        }
    }
    if local.is_empty() {
        return Ok(Step::Unchanged);
    }
    req.topics.retain(|t| !t.partitions.is_empty());
    let at = Site { frame, body_offset, api_key: ApiKey::AlterPartitionReassignments, api: API };
    conclude(
        &at,
        ctx,
        &req,
        req.topics.is_empty(),
        local,
        |l| AlterPartitionReassignmentsResponse::default().with_responses(l),
        |local| Some(Merge::Reassignments { order, local }),
    )
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

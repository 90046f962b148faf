//! DeleteRecords v0-2: truncating a protected topic is refused with POLICY_VIOLATION on each of
//! its partitions; every truncation is audited with the offsets asked for.

use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::split::{checked, conclude, retain_marked, unchanged, Merge, Site};
use super::{Ctx, HandlerError, Route};
use crate::audit::Event;
use crate::policy::deletes;
use crate::protocol::errors::POLICY_VIOLATION;
use crate::protocol::guard;

pub fn handle(ctx: &Ctx<'_>, at: &Site<'_>) -> Result<Route, HandlerError> {
    let mut req: DeleteRecordsRequest = checked(at, ctx.version(), |b| guard::delete_records(b, ctx.version()))?;
    let mut order = Vec::new();
    let mut local = Vec::new();
    let mut keep = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let name = t.name.0.to_string();
        order.push(name.clone());
        let pattern = deletes::protected(ctx.policies, &name);
        let offsets: Vec<_> =
            t.partitions.iter().map(|p| serde_json::json!({"partition": p.partition_index, "before_offset": p.offset})).collect();
        let action = if pattern.is_some() { "reject" } else { "allow" };
        keep.push(pattern.is_none());
        let detail = serde_json::json!({ "partitions": offsets, "protected_by": pattern });
        ctx.audit.record(Event::delete_records(&ctx.origin, action, name, detail));
        if pattern.is_some() {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1)
                        .with_error_code(POLICY_VIOLATION)
                })
                .collect();
            local.push(DeleteRecordsTopicResult::default().with_name(t.name.clone()).with_partitions(partitions));
        }
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
        |l| DeleteRecordsResponse::default().with_topics(l),
        |local| Some(Merge::DeleteRecords { order, local }),
    )
}

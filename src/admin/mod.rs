//! Admin requests that can make data unsafe: CreateTopics (topic shape rules), DeleteTopics and
//! DeleteRecords (protected topics), and Metadata's auto-create flag. Offending entries get an
//! error in the API's own shape; the rest go to the broker in a re-encoded request, and the
//! broker's answer is merged with the proxy's so the client sees one response, in request order.

pub mod configs;
pub mod guard;
pub mod partitions;

use std::net::SocketAddr;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::audit::{AuditLog, Event};
use crate::codec::SIZE_LEN;
use crate::config::{Action, Config};
use crate::frames;
use crate::policy::topics::{self, BrokerDefaults, Change, Finding, NewTopic};
use crate::rewrite::addresses::reencode;
use crate::rewrite::RewriteError;

/// POLICY_VIOLATION: what Kafka's own CreateTopicPolicy returns; permanent in every client.
pub const POLICY_VIOLATION: i16 = 44;

/// Who sent the request, for exemptions and audit.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    pub defaults: BrokerDefaults,
    pub audit: &'a AuditLog,
    pub peer: SocketAddr,
    pub client_id: Option<&'a str>,
    pub version: i16,
    pub correlation_id: i32,
}

/// What to do with an admin request.
#[derive(Debug)]
pub enum Step {
    /// Forward the original frame untouched.
    Unchanged,
    /// Forward this rewritten frame; merge the proxy's own results into the broker's answer.
    Forward(Bytes, Option<Merge>),
    /// Answer without the broker.
    Answer(Bytes),
}

/// The proxy's own results, to be merged into the broker's response in request order.
#[derive(Debug)]
pub enum Merge {
    CreateTopics {
        order: Vec<String>,
        local: Vec<CreatableTopicResult>,
    },
    DeleteTopics {
        order: Vec<String>,
        local: Vec<DeletableTopicResult>,
    },
    DeleteRecords {
        order: Vec<String>,
        local: Vec<DeleteRecordsTopicResult>,
    },
    AlterConfigs {
        order: Vec<String>,
        local: Vec<kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse>,
    },
    IncrementalAlterConfigs {
        order: Vec<String>,
        local: Vec<kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse>,
    },
    CreatePartitions {
        order: Vec<String>,
        local: Vec<kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult>,
    },
    Reassignments {
        order: Vec<String>,
        local: Vec<kafka_protocol::messages::alter_partition_reassignments_response::ReassignableTopicResponse>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("client sent a malformed {0} request")]
    Malformed(&'static str),
    #[error("proxy failed to encode {0}: {1}")]
    Encode(&'static str, String),
}

impl Ctx<'_> {
    /// The topic rules that apply to this client and topic (see `policy::scope`).
    pub fn topic_rules(&self, topic: Option<&str>) -> (&crate::config::CreateTopics, Option<&str>) {
        crate::policy::scope::topic_rules(
            self.cfg,
            &crate::policy::scope::Subject { client_id: self.client_id, peer: self.peer.ip(), topic },
        )
    }

    fn event(
        &self,
        event: &'static str,
        rule: &'static str,
        action: &'static str,
        api: &'static str,
        topics: Vec<String>,
        detail: serde_json::Value,
    ) -> Event {
        Event {
            at: SystemTime::now(),
            event,
            rule,
            action,
            client_addr: self.peer,
            client_id: self.client_id.map(str::to_owned),
            api,
            api_version: self.version,
            topics,
            detail,
        }
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// The request body, decoded once its structure passed `check` (a `guard` walk: kafka-protocol
/// pre-allocates arrays from wire counts, so counts are checked before it sees the bytes).
fn checked<M: Decodable>(
    frame: &Bytes,
    body_offset: usize,
    version: i16,
    api: &'static str,
    check: impl Fn(&[u8]) -> bool,
) -> Result<M, AdminError> {
    let mut body = frame.slice(body_offset.min(frame.len())..);
    if !check(&body) {
        return Err(AdminError::Malformed(api));
    }
    M::decode(&mut body, version).map_err(|_| AdminError::Malformed(api))
}

/// Keeps the entries marked true; `keep` has one mark per entry (an entry without one is
/// dropped: nothing unjudged is forwarded).
fn retain_marked<T>(entries: &mut Vec<T>, keep: &[bool]) {
    let mut i = 0;
    entries.retain(|_| {
        let k = keep.get(i).copied().unwrap_or(false);
        i += 1;
        k
    });
}

/// A request frame with the original header and a new body.
fn reframe<M: Encodable>(frame: &[u8], body_offset: usize, body: &M, version: i16, api: &'static str) -> Result<Bytes, AdminError> {
    let header = frame.get(SIZE_LEN..body_offset).ok_or(AdminError::Malformed(api))?;
    let mut out = BytesMut::with_capacity(frame.len() + 64);
    out.extend_from_slice(&[0; SIZE_LEN]);
    out.extend_from_slice(header);
    body.encode(&mut out, version).map_err(|e| AdminError::Encode(api, e.to_string()))?;
    Ok(frames::finish(out))
}

fn answer<M: Encodable>(api: ApiKey, ctx: &Ctx<'_>, body: &M, name: &'static str) -> Result<Step, AdminError> {
    frames::response(api, ctx.version, ctx.correlation_id, body).map(Step::Answer).map_err(|e| AdminError::Encode(name, e.to_string()))
}

/// The request being split: its frame, where its body starts, and which API it is.
struct Site<'a> {
    frame: &'a Bytes,
    body_offset: usize,
    api_key: ApiKey,
    api: &'static str,
}

/// Ends a split: with nothing left for the broker, the proxy answers with its own results (built
/// in request order); otherwise the remaining request is re-encoded and forwarded, and `merge`
/// says how to fold the proxy's results into the broker's answer.
fn conclude<Req: Encodable, Resp: Encodable, T>(
    at: &Site<'_>,
    ctx: &Ctx<'_>,
    req: &Req,
    nothing_left: bool,
    local: Vec<T>,
    answer_with: impl FnOnce(Vec<T>) -> Resp,
    merge: impl FnOnce(Vec<T>) -> Option<Merge>,
) -> Result<Step, AdminError> {
    if nothing_left {
        return answer(at.api_key, ctx, &answer_with(local), at.api);
    }
    let frame = reframe(at.frame, at.body_offset, req, ctx.version, at.api)?;
    Ok(Step::Forward(frame, merge(local)))
}

/// The strongest action among findings, for the audit line.
fn strongest(findings: &[Finding]) -> Option<Action> {
    [Action::Reject, Action::Upgrade, Action::Audit].into_iter().find(|a| findings.iter().any(|f| f.action == *a))
}

pub fn create_topics(frame: &Bytes, body_offset: usize, ctx: &Ctx<'_>) -> Result<Step, AdminError> {
    const API: &str = "CreateTopics";
    let mut req: CreateTopicsRequest = checked(frame, body_offset, ctx.version, API, |b| guard::create_topics(b, ctx.version))?;
    let rule = &ctx.cfg.create_topics;
    let client_exempt = rule.exempt.client_exempt(ctx.client_id, ctx.peer.ip());
    let mut order = Vec::new();
    let mut local = Vec::new();
    let mut kept = Vec::new();
    let mut changed = false;
    for mut topic in std::mem::take(&mut req.topics) {
        let name = topic.name.0.to_string();
        order.push(name.clone());
        let configs: Vec<(String, Option<String>)> =
            topic.configs.iter().map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string()))).collect();
        let assigned = topic.assignments.iter().map(|a| a.broker_ids.len()).min();
        let new = NewTopic { name: &name, replication_factor: topic.replication_factor, assigned_replicas: assigned, configs: &configs };
        let (rules, scope) = ctx.topic_rules(Some(&name));
        let findings = topics::judge(rules, &ctx.defaults, &new);
        let exempt = client_exempt || rule.exempt.topic_exempt(&name);
        let detail = |outcome: &str| {
            serde_json::json!({
                "outcome": outcome,
                "scope": scope,
                "validate_only": req.validate_only,
                "replication_factor": topic.replication_factor,
                "assigned_replicas": assigned,
                "configs": configs.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<std::collections::BTreeMap<_, _>>(),
                "findings": findings.iter().map(|f| serde_json::json!({"rule": f.rule, "action": f.action.as_str(), "message": f.message})).collect::<Vec<_>>(),
            })
        };
        let action = if exempt && !findings.is_empty() { Some("exempt") } else { strongest(&findings).map(Action::as_str) };
        ctx.audit.record(ctx.event(
            "create_topic",
            "create_topics",
            action.unwrap_or("allow"),
            API,
            vec![name.clone()],
            detail(match action {
                Some("reject") => "refused with POLICY_VIOLATION",
                Some("upgrade") => "forwarded with the changes listed",
                Some("exempt") => "forwarded unchanged (exempt)",
                Some(_) => "forwarded unchanged (audit)",
                None => "forwarded unchanged",
            }),
        ));
        if exempt {
            kept.push(topic);
            continue;
        }
        if findings.iter().any(|f| f.action == Action::Reject) {
            local.push(
                CreatableTopicResult::default()
                    .with_name(TopicName(s(&name)))
                    .with_error_code(POLICY_VIOLATION)
                    .with_error_message(Some(s(&topics::rejection_message(&name, &findings))))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1),
            );
            changed = true;
            continue;
        }
        for change in findings.iter().filter_map(|f| f.change.as_ref()) {
            apply(&mut topic, change);
            changed = true;
        }
        kept.push(topic);
    }
    if !changed {
        return Ok(Step::Unchanged);
    }
    let nothing_left = kept.is_empty();
    req.topics = kept;
    let at = Site { frame, body_offset, api_key: ApiKey::CreateTopics, api: API };
    conclude(
        &at,
        ctx,
        &req,
        nothing_left,
        local,
        |l| CreateTopicsResponse::default().with_topics(l),
        |local| (!local.is_empty()).then_some(Merge::CreateTopics { order, local }),
    )
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

/// Puts results in the order the request named them.
fn order_results<T>(order: Vec<String>, broker: Vec<T>, local: Vec<T>, name: impl Fn(&T) -> String) -> Vec<T> {
    let mut all: Vec<(usize, T)> =
        broker.into_iter().chain(local).map(|r| (order.iter().position(|n| *n == name(&r)).unwrap_or(usize::MAX), r)).collect();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

fn protected<'a>(cfg: &'a Config, name: &str) -> Option<&'a str> {
    cfg.deletes.protected_topics.iter().find(|g| g.matches(name)).map(|g| g.as_str())
}

pub const DELETE_RULE: &str = "deletes.protected_topics";

pub fn delete_topics(frame: &Bytes, body_offset: usize, ctx: &Ctx<'_>) -> Result<Step, AdminError> {
    const API: &str = "DeleteTopics";
    let mut req: DeleteTopicsRequest = checked(frame, body_offset, ctx.version, API, |b| guard::delete_topics(b, ctx.version))?;
    let any_protection = !ctx.cfg.deletes.protected_topics.is_empty();
    let mut order = Vec::new();
    let mut local = Vec::new();
    // v6 names topics in `topics` (by name and/or id); earlier versions in `topic_names`.
    let names: Vec<(Option<String>, uuid::Uuid)> = if ctx.version >= 6 {
        req.topics.iter().map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)).collect()
    } else {
        req.topic_names.iter().map(|n| (Some(n.0.to_string()), uuid::Uuid::nil())).collect()
    };
    let mut keep = Vec::with_capacity(names.len());
    for (name, id) in &names {
        let label = name.clone().unwrap_or_else(|| format!("topic id {id}"));
        order.push(label.clone());
        let refusal = match name {
            Some(n) => {
                protected(ctx.cfg, n).map(|p| format!("durability proxy refused to delete topic '{n}': it matches protected pattern '{p}'"))
            }
            // Without a name the proxy cannot tell whether the topic is protected: fail closed.
            None if any_protection => {
                Some(format!("durability proxy refused to delete {label}: name the topic, protected topics are configured"))
            }
            None => None,
        };
        let action = if refusal.is_some() { "reject" } else { "allow" };
        ctx.audit.record(ctx.event(
            "delete_topic",
            DELETE_RULE,
            action,
            API,
            vec![label.clone()],
            serde_json::json!({ "reason": refusal }),
        ));
        keep.push(refusal.is_none());
        if let Some(msg) = refusal {
            local.push(
                DeletableTopicResult::default()
                    .with_name(name.as_deref().map(|n| TopicName(s(n))))
                    .with_topic_id(*id)
                    .with_error_code(POLICY_VIOLATION)
                    .with_error_message((ctx.version >= 5).then(|| s(&msg))),
            );
        }
    }
    if local.is_empty() {
        return Ok(Step::Unchanged);
    }
    if ctx.version >= 6 {
        retain_marked(&mut req.topics, &keep);
    } else {
        retain_marked(&mut req.topic_names, &keep);
    }
    let nothing_left = req.topics.is_empty() && req.topic_names.is_empty();
    let at = Site { frame, body_offset, api_key: ApiKey::DeleteTopics, api: API };
    conclude(
        &at,
        ctx,
        &req,
        nothing_left,
        local,
        |l| DeleteTopicsResponse::default().with_responses(l),
        |local| Some(Merge::DeleteTopics { order, local }),
    )
}

pub fn delete_records(frame: &Bytes, body_offset: usize, ctx: &Ctx<'_>) -> Result<Step, AdminError> {
    const API: &str = "DeleteRecords";
    let mut req: DeleteRecordsRequest = checked(frame, body_offset, ctx.version, API, |b| guard::delete_records(b, ctx.version))?;
    let mut order = Vec::new();
    let mut local = Vec::new();
    let mut keep = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let name = t.name.0.to_string();
        order.push(name.clone());
        let pattern = protected(ctx.cfg, &name);
        let offsets: Vec<_> =
            t.partitions.iter().map(|p| serde_json::json!({"partition": p.partition_index, "before_offset": p.offset})).collect();
        let action = if pattern.is_some() { "reject" } else { "allow" };
        keep.push(pattern.is_none());
        ctx.audit.record(ctx.event(
            "delete_records",
            DELETE_RULE,
            action,
            API,
            vec![name.clone()],
            serde_json::json!({ "partitions": offsets, "protected_by": pattern }),
        ));
        if pattern.is_some() {
            local.push(
                DeleteRecordsTopicResult::default().with_name(t.name.clone()).with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            DeleteRecordsPartitionResult::default()
                                .with_partition_index(p.partition_index)
                                .with_low_watermark(-1)
                                .with_error_code(POLICY_VIOLATION)
                        })
                        .collect(),
                ),
            );
        }
    }
    if local.is_empty() {
        return Ok(Step::Unchanged);
    }
    retain_marked(&mut req.topics, &keep);
    let at = Site { frame, body_offset, api_key: ApiKey::DeleteRecords, api: API };
    conclude(
        &at,
        ctx,
        &req,
        req.topics.is_empty(),
        local,
        |l| DeleteRecordsResponse::default().with_topics(l),
        |local| Some(Merge::DeleteRecords { order, local }),
    )
}

/// Merges the proxy's own results into the broker's response.
pub fn merge(frame: &Bytes, version: i16, merge: Merge) -> Result<Bytes, RewriteError> {
    match merge {
        Merge::CreateTopics { order, local } => reencode(frame, ApiKey::CreateTopics, version, |m: &mut CreateTopicsResponse| {
            m.topics = order_results(order, std::mem::take(&mut m.topics), local, |r| r.name.0.to_string());
            Ok(())
        }),
        Merge::DeleteTopics { order, local } => reencode(frame, ApiKey::DeleteTopics, version, |m: &mut DeleteTopicsResponse| {
            let label =
                |r: &DeletableTopicResult| r.name.as_ref().map(|n| n.0.to_string()).unwrap_or_else(|| format!("topic id {}", r.topic_id));
            m.responses = order_results(order, std::mem::take(&mut m.responses), local, label);
            Ok(())
        }),
        Merge::DeleteRecords { order, local } => reencode(frame, ApiKey::DeleteRecords, version, |m: &mut DeleteRecordsResponse| {
            m.topics = order_results(order, std::mem::take(&mut m.topics), local, |r| r.name.0.to_string());
            Ok(())
        }),
        Merge::AlterConfigs { order, local } => reencode(frame, ApiKey::AlterConfigs, version, |m| {
            configs::merge_legacy(m, order, local);
            Ok(())
        }),
        Merge::IncrementalAlterConfigs { order, local } => reencode(frame, ApiKey::IncrementalAlterConfigs, version, |m| {
            configs::merge_incremental(m, order, local);
            Ok(())
        }),
        Merge::CreatePartitions { order, local } => {
            reencode(frame, ApiKey::CreatePartitions, version, |m: &mut kafka_protocol::messages::CreatePartitionsResponse| {
                m.results = order_results(order, std::mem::take(&mut m.results), local, |r| r.name.0.to_string());
                Ok(())
            })
        }
        Merge::Reassignments { order, local } => reencode(frame, ApiKey::AlterPartitionReassignments, version, |m| {
            partitions::merge_reassignments(m, order, local);
            Ok(())
        }),
    }
}

/// Clears allow_auto_topic_creation in a Metadata request, in place. True when it was set.
pub fn block_auto_create(frame: &mut [u8], body_offset: usize, version: i16) -> bool {
    let Some(body) = frame.get(body_offset..) else { return false };
    let Some(at) = guard::metadata_auto_create_offset(body, version) else { return false };
    match frame.get_mut(body_offset + at) {
        Some(flag) if *flag != 0 => {
            *flag = 0;
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;

//! AlterConfigs and IncrementalAlterConfigs: for each TOPIC or BROKER resource, read its current
//! config (and a topic's replication factor) from the cluster, apply the change, and judge the
//! result (`policy::configs`). Offending resources get POLICY_VIOLATION; the rest go to the
//! broker and the answers are merged in request order. A resource whose current state cannot be
//! read is refused: judging blind would let exactly the unsafe change through.

use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};

use super::create_topics::findings_json;
use super::split::{checked, conclude, retain_marked, s, unchanged, Merge, Site};
use super::{Ctx, HandlerError, Route};
use crate::audit::Event;
use crate::cluster::view::{BROKER, TOPIC};
use crate::cluster::{ClusterView, ConfigEntry};
use crate::policy::configs::{self as rules, Entries, Ops, SET};
use crate::policy::topics::Finding;
use crate::policy::Action;
use crate::protocol::errors::POLICY_VIOLATION;
use crate::protocol::guard;

/// One resource's requested change.
struct Change {
    resource_type: i8,
    name: String,
    /// (config name, operation, value); legacy AlterConfigs entries are SETs of the whole set.
    ops: Ops,
}

/// The decoded request, kept to forward what is allowed.
enum Request {
    Legacy(AlterConfigsRequest),
    Incremental(IncrementalAlterConfigsRequest),
}

fn label(resource_type: i8, name: &str) -> String {
    match resource_type {
        TOPIC => format!("topic '{name}'"),
        BROKER if name.is_empty() => "the cluster-wide broker default".to_owned(),
        BROKER => format!("broker {name}"),
        t => format!("resource {t}:{name}"),
    }
}

pub async fn handle(ctx: &Ctx<'_>, view: &impl ClusterView, at: &Site<'_>, incremental: bool) -> Result<Route, HandlerError> {
    let (changes, req) = decode(ctx, at, incremental)?;
    let mut refused = Vec::with_capacity(changes.len());
    for c in &changes {
        refused.push(judge_change(ctx, view, c, incremental).await);
    }
    if refused.iter().all(Option::is_none) {
        return Ok(unchanged(at));
    }
    let order: Vec<String> = changes.iter().map(|c| format!("{}:{}", c.resource_type, c.name)).collect();
    let keep: Vec<bool> = refused.iter().map(Option::is_none).collect();
    // The refused resources, in request order, as (type, name, message).
    let refusals: Vec<(i8, String, String)> =
        changes.iter().zip(refused).filter_map(|(c, m)| m.map(|m| (c.resource_type, c.name.clone(), m))).collect();
    match req {
        Request::Legacy(mut req) => {
            retain_marked(&mut req.resources, &keep);
            let local = refusals.into_iter().map(|(t, n, m)| legacy_result(t, &n, &m)).collect();
            let merge = |local| Some(Merge::AlterConfigs { order, local });
            conclude(at, ctx, &req, req.resources.is_empty(), local, |l| AlterConfigsResponse::default().with_responses(l), merge)
        }
        Request::Incremental(mut req) => {
            retain_marked(&mut req.resources, &keep);
            let local = refusals.into_iter().map(|(t, n, m)| incremental_result(t, &n, &m)).collect();
            let merge = |local| Some(Merge::IncrementalAlterConfigs { order, local });
            let answer = |l| IncrementalAlterConfigsResponse::default().with_responses(l);
            conclude(at, ctx, &req, req.resources.is_empty(), local, answer, merge)
        }
    }
}

fn decode(ctx: &Ctx<'_>, at: &Site<'_>, incremental: bool) -> Result<(Vec<Change>, Request), HandlerError> {
    let walk = |b: &[u8]| guard::alter_configs(b, ctx.version(), incremental);
    if incremental {
        let req: IncrementalAlterConfigsRequest = checked(at, ctx.version(), walk)?;
        let changes = req
            .resources
            .iter()
            .map(|r| Change {
                resource_type: r.resource_type,
                name: r.resource_name.to_string(),
                ops: r.configs.iter().map(|c| (c.name.to_string(), c.config_operation, c.value.as_ref().map(|v| v.to_string()))).collect(),
            })
            .collect();
        return Ok((changes, Request::Incremental(req)));
    }
    let req: AlterConfigsRequest = checked(at, ctx.version(), walk)?;
    let changes = req
        .resources
        .iter()
        .map(|r| Change {
            resource_type: r.resource_type,
            name: r.resource_name.to_string(),
            ops: r.configs.iter().filter_map(|c| c.value.as_ref().map(|v| (c.name.to_string(), SET, Some(v.to_string())))).collect(),
        })
        .collect();
    Ok((changes, Request::Legacy(req)))
}

/// Judges one resource and audits it; the refusal message when it is refused.
async fn judge_change(ctx: &Ctx<'_>, view: &impl ClusterView, c: &Change, incremental: bool) -> Option<String> {
    let findings = match c.resource_type {
        TOPIC | BROKER => judge(ctx, view, c, incremental).await,
        _ => Ok(Vec::new()),
    };
    let rule = &ctx.policies.create_topics;
    let exempt = rule.exempt.client_exempt(&ctx.subject(None)) || (c.resource_type == TOPIC && rule.exempt.topic_exempt(&c.name));
    let resource = label(c.resource_type, &c.name);
    let (action, message) = match &findings {
        Err(e) if !exempt => ("reject", Some(format!("durability proxy refused the config change to {resource}: {e}"))),
        Err(_) => ("exempt", None),
        Ok(f) if f.is_empty() => ("allow", None),
        Ok(_) if exempt => ("exempt", None),
        Ok(f) if f.iter().any(|f| f.action == Action::Reject) => ("reject", Some(rules::rejection_message(&resource, f))),
        Ok(_) => ("audit", None),
    };
    let findings_json = match &findings {
        Ok(f) => findings_json(f),
        Err(e) => vec![serde_json::json!({ "error": e })],
    };
    let ops: Vec<serde_json::Value> =
        c.ops.iter().map(|(k, op, v)| serde_json::json!({"name": k, "op": op_name(*op), "value": v})).collect();
    let topics = if c.resource_type == TOPIC { vec![c.name.clone()] } else { Vec::new() };
    let detail = serde_json::json!({ "resource": resource, "incremental": incremental, "changes": ops, "findings": findings_json, "reason": message });
    ctx.audit.record(Event::alter_config(&ctx.origin, action, topics, detail));
    message
}

fn op_name(op: i8) -> &'static str {
    match op {
        0 => "set",
        1 => "delete",
        2 => "append",
        3 => "subtract",
        _ => "unknown",
    }
}

/// Findings for the config a resource would have after the change; Err when its current state
/// cannot be read.
async fn judge(ctx: &Ctx<'_>, view: &impl ClusterView, c: &Change, incremental: bool) -> Result<Vec<Finding>, String> {
    let (rules, _) = ctx.topic_rules((c.resource_type == TOPIC).then_some(c.name.as_str()));
    let current = match view.describe_configs(c.resource_type, &c.name).await {
        Ok(Some(entries)) => entries,
        // The topic does not exist: the broker will say so.
        Ok(None) => return Ok(Vec::new()),
        Err(e) => return Err(format!("its current config could not be read from the cluster ({e})")),
    };
    let pairs = |keep: fn(&ConfigEntry) -> bool| -> Entries {
        current.iter().filter(|e| keep(e)).map(|e| (e.name.clone(), e.value.clone())).collect()
    };
    let overrides = pairs(ConfigEntry::is_override);
    let resulting = if incremental {
        rules::incremental(&overrides, &c.ops)
    } else {
        // Legacy AlterConfigs replaces the whole override set.
        c.ops.iter().map(|(k, _, v)| (k.clone(), v.clone())).collect()
    };
    // Rules whose keys the change touches must hold afterwards; the others may not get worse.
    let touched: Vec<String> = c.ops.iter().map(|(k, _, _)| k.clone()).collect();
    if c.resource_type == TOPIC {
        let rf = view
            .replication_factor(&c.name)
            .await
            .map_err(|e| format!("its replication factor could not be read from the cluster ({e})"))?;
        // What a deleted override falls back to must be known, not guessed.
        let defaults = ctx.known_defaults()?;
        let before = rules::judge_topic(rules, defaults, &c.name, rf, &overrides);
        let after = rules::judge_topic(rules, defaults, &c.name, rf, &resulting);
        return Ok(rules::blocking(&before, after, &touched, !incremental));
    }
    // Overrides first: the first entry of a name wins when defaults are read.
    let base = pairs(|e| !e.is_override());
    let now: Entries = overrides.iter().cloned().chain(base.iter().cloned()).collect();
    let after: Entries = resulting.into_iter().chain(base).collect();
    Ok(rules::blocking(&rules::judge_broker(rules, &now), rules::judge_broker(rules, &after), &touched, !incremental))
}

fn legacy_result(resource_type: i8, name: &str, message: &str) -> alter_configs_response::AlterConfigsResourceResponse {
    alter_configs_response::AlterConfigsResourceResponse::default()
        .with_resource_type(resource_type)
        .with_resource_name(s(name))
        .with_error_code(POLICY_VIOLATION)
        .with_error_message(Some(s(message)))
}

fn incremental_result(resource_type: i8, name: &str, message: &str) -> incremental_alter_configs_response::AlterConfigsResourceResponse {
    incremental_alter_configs_response::AlterConfigsResourceResponse::default()
        .with_resource_type(resource_type)
        .with_resource_name(s(name))
        .with_error_code(POLICY_VIOLATION)
        .with_error_message(Some(s(message)))
}

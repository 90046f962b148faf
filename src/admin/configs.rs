//! AlterConfigs and IncrementalAlterConfigs: for each TOPIC or BROKER resource, read its current
//! config (and a topic's replication factor) from the cluster, apply the change, and judge the
//! result (`policy::configs`). Offending resources get POLICY_VIOLATION; the rest go to the
//! broker and the answers are merged in request order. A resource whose current state cannot be
//! read is refused: judging blind would let exactly the unsafe change through.

use bytes::Bytes;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest, AlterConfigsResponse, ApiKey, DescribeConfigsRequest,
    DescribeConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{checked, conclude, guard, order_results, retain_marked, s, AdminError, Ctx, Merge, Site, Step, POLICY_VIOLATION};
use crate::config::Action;
use crate::policy::configs::{self as rules, Entries, SET};
use crate::policy::topics::Finding;
use crate::server::{call, Proxy};

pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// DescribeConfigs config_source values that are overrides (topic or dynamic broker configs).
const OVERRIDE_SOURCES: [i8; 3] = [1, 2, 3];

/// One resource's requested change.
struct Change {
    resource_type: i8,
    name: String,
    /// (config name, operation, value); legacy AlterConfigs entries are SETs of the whole set.
    ops: Vec<(String, i8, Option<String>)>,
}

fn label(resource_type: i8, name: &str) -> String {
    match resource_type {
        TOPIC => format!("topic '{name}'"),
        BROKER if name.is_empty() => "the cluster-wide broker default".to_owned(),
        BROKER => format!("broker {name}"),
        t => format!("resource {t}:{name}"),
    }
}

pub async fn alter_configs(proxy: &Proxy, frame: &Bytes, body_offset: usize, ctx: &Ctx<'_>, incremental: bool) -> Result<Step, AdminError> {
    let api = if incremental { "IncrementalAlterConfigs" } else { "AlterConfigs" };
    let walk = |b: &[u8]| guard::alter_configs(b, ctx.version, incremental);
    let (changes, mut legacy, mut incr) = if incremental {
        let req: IncrementalAlterConfigsRequest = checked(frame, body_offset, ctx.version, api, walk)?;
        let changes = req
            .resources
            .iter()
            .map(|r| Change {
                resource_type: r.resource_type,
                name: r.resource_name.to_string(),
                ops: r.configs.iter().map(|c| (c.name.to_string(), c.config_operation, c.value.as_ref().map(|v| v.to_string()))).collect(),
            })
            .collect::<Vec<_>>();
        (changes, None, Some(req))
    } else {
        let req: AlterConfigsRequest = checked(frame, body_offset, ctx.version, api, walk)?;
        let changes = req
            .resources
            .iter()
            .map(|r| Change {
                resource_type: r.resource_type,
                name: r.resource_name.to_string(),
                ops: r
                    .configs
                    .iter()
                    .filter(|c| c.value.is_some())
                    .map(|c| (c.name.to_string(), SET, c.value.as_ref().map(|v| v.to_string())))
                    .collect(),
            })
            .collect::<Vec<_>>();
        (changes, Some(req), None)
    };
    let rule = &ctx.cfg.create_topics;
    let client_exempt = rule.exempt.client_exempt(ctx.client_id, ctx.peer.ip());
    let mut refused: Vec<Option<String>> = Vec::with_capacity(changes.len());
    for c in &changes {
        let findings = match c.resource_type {
            TOPIC | BROKER => judge(proxy, ctx, c, incremental).await,
            _ => Ok(Vec::new()),
        };
        let exempt = client_exempt || (c.resource_type == TOPIC && rule.exempt.topic_exempt(&c.name));
        let (action, message) = match &findings {
            Err(e) if !exempt => {
                ("reject", Some(format!("durability proxy refused the config change to {}: {e}", label(c.resource_type, &c.name))))
            }
            Err(_) => ("exempt", None),
            Ok(f) if f.is_empty() => ("allow", None),
            Ok(_) if exempt => ("exempt", None),
            Ok(f) if f.iter().any(|f| f.action == Action::Reject) => {
                ("reject", Some(rules::rejection_message(&label(c.resource_type, &c.name), f)))
            }
            Ok(_) => ("audit", None),
        };
        let findings_json: Vec<serde_json::Value> = match &findings {
            Ok(f) => f.iter().map(|f| serde_json::json!({"rule": f.rule, "action": f.action.as_str(), "message": f.message})).collect(),
            Err(e) => vec![serde_json::json!({"error": e})],
        };
        let ops: Vec<serde_json::Value> =
            c.ops.iter().map(|(k, op, v)| serde_json::json!({"name": k, "op": op_name(*op), "value": v})).collect();
        let topics = if c.resource_type == TOPIC { vec![c.name.clone()] } else { Vec::new() };
        ctx.audit.record(ctx.event(
            "alter_config",
            "create_topics",
            action,
            api,
            topics,
            serde_json::json!({ "resource": label(c.resource_type, &c.name), "incremental": incremental, "changes": ops, "findings": findings_json, "reason": message }),
        ));
        refused.push(message);
    }
    if refused.iter().all(Option::is_none) {
        return Ok(Step::Unchanged);
    }
    let order: Vec<String> = changes.iter().map(|c| format!("{}:{}", c.resource_type, c.name)).collect();
    // The refused resources, in request order, as (type, name, message).
    let refusals: Vec<(i8, String, String)> =
        changes.iter().zip(&refused).filter_map(|(c, m)| m.as_ref().map(|m| (c.resource_type, c.name.clone(), m.clone()))).collect();
    let keep: Vec<bool> = refused.iter().map(Option::is_none).collect();
    macro_rules! result {
        ($ty:ty, $r:expr) => {{
            let (t, name, msg) = $r;
            <$ty>::default()
                .with_resource_type(t)
                .with_resource_name(s(&name))
                .with_error_code(POLICY_VIOLATION)
                .with_error_message(Some(s(&msg)))
        }};
    }
    if let Some(req) = legacy.as_mut() {
        retain_marked(&mut req.resources, &keep);
        let local: Vec<_> = refusals.into_iter().map(|r| result!(alter_configs_response::AlterConfigsResourceResponse, r)).collect();
        let at = Site { frame, body_offset, api_key: ApiKey::AlterConfigs, api };
        return conclude(
            &at,
            ctx,
            &*req,
            req.resources.is_empty(),
            local,
            |l| AlterConfigsResponse::default().with_responses(l),
            |local| Some(Merge::AlterConfigs { order, local }),
        );
    }
    let Some(req) = incr.as_mut() else { return Err(AdminError::Malformed(api)) };
    retain_marked(&mut req.resources, &keep);
    let local: Vec<_> =
        refusals.into_iter().map(|r| result!(incremental_alter_configs_response::AlterConfigsResourceResponse, r)).collect();
    let at = Site { frame, body_offset, api_key: ApiKey::IncrementalAlterConfigs, api };
    conclude(
        &at,
        ctx,
        &*req,
        req.resources.is_empty(),
        local,
        |l| IncrementalAlterConfigsResponse::default().with_responses(l),
        |local| Some(Merge::IncrementalAlterConfigs { order, local }),
    )
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
async fn judge(proxy: &Proxy, ctx: &Ctx<'_>, c: &Change, incremental: bool) -> Result<Vec<Finding>, String> {
    let (rules, _) = ctx.topic_rules((c.resource_type == TOPIC).then_some(c.name.as_str()));
    let current = match describe(proxy, c.resource_type, &c.name).await {
        Ok(Some(entries)) => entries,
        // The topic does not exist: the broker will say so.
        Ok(None) => return Ok(Vec::new()),
        Err(e) => return Err(format!("its current config could not be read from the cluster ({e})")),
    };
    let overrides: Entries =
        current.iter().filter(|(_, _, src)| OVERRIDE_SOURCES.contains(src)).map(|(k, v, _)| (k.clone(), v.clone())).collect();
    let resulting = if incremental {
        rules::incremental(&overrides, &c.ops)
    } else {
        // Legacy AlterConfigs replaces the whole override set.
        c.ops.iter().map(|(k, _, v)| (k.clone(), v.clone())).collect()
    };
    // Rules whose keys the change touches must hold afterwards; the others may not get worse.
    let touched: Vec<String> = c.ops.iter().map(|(k, _, _)| k.clone()).collect();
    if c.resource_type == TOPIC {
        let rf = topic_rf(proxy, &c.name).await.map_err(|e| format!("its replication factor could not be read from the cluster ({e})"))?;
        let before = rules::judge_topic(rules, &ctx.defaults, &c.name, rf, &overrides);
        let after = rules::judge_topic(rules, &ctx.defaults, &c.name, rf, &resulting);
        Ok(rules::blocking(&before, after, &touched, !incremental))
    } else {
        // Overrides first: the first entry of a name wins when defaults are read.
        let base: Entries =
            current.iter().filter(|(_, _, src)| !OVERRIDE_SOURCES.contains(src)).map(|(k, v, _)| (k.clone(), v.clone())).collect();
        let now: Entries = overrides.iter().cloned().chain(base.iter().cloned()).collect();
        let after: Entries = resulting.into_iter().chain(base).collect();
        Ok(rules::blocking(&rules::judge_broker(rules, &now), rules::judge_broker(rules, &after), &touched, !incremental))
    }
}

/// A resource's config entries (name, value, source); `None` for a topic that does not exist.
async fn describe(proxy: &Proxy, resource_type: i8, name: &str) -> anyhow::Result<Option<Vec<(String, Option<String>, i8)>>> {
    // v4, all keys: tansu refuses requests naming keys.
    let req = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(s(name))
        .with_configuration_keys(None)]);
    let resp: DescribeConfigsResponse = call(proxy, ApiKey::DescribeConfigs, 4, &req).await?;
    let Some(r) = resp.results.first() else { anyhow::bail!("empty DescribeConfigs response") };
    match r.error_code {
        0 => Ok(Some(r.configs.iter().map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string()), c.config_source)).collect())),
        UNKNOWN_TOPIC_OR_PARTITION if resource_type == TOPIC => Ok(None),
        code => anyhow::bail!("DescribeConfigs error {code}{}", r.error_message.as_ref().map(|m| format!(": {m}")).unwrap_or_default()),
    }
}

/// A topic's replication factor (its smallest replica set), from Metadata.
async fn topic_rf(proxy: &Proxy, name: &str) -> anyhow::Result<Option<i16>> {
    let req = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(name.to_owned()))))]))
        .with_allow_auto_topic_creation(false);
    let resp: MetadataResponse = call(proxy, ApiKey::Metadata, 4, &req).await?;
    Ok(resp
        .topics
        .iter()
        .find(|t| t.error_code == 0 && t.name.as_ref().is_some_and(|n| n.0.as_str() == name))
        .and_then(|t| t.partitions.iter().map(|p| p.replica_nodes.len()).min())
        .and_then(|n| i16::try_from(n).ok()))
}

/// Merges for the two config APIs (see `super::merge`).
pub fn merge_legacy(m: &mut AlterConfigsResponse, order: Vec<String>, local: Vec<alter_configs_response::AlterConfigsResourceResponse>) {
    m.responses = order_results(order, std::mem::take(&mut m.responses), local, |r| format!("{}:{}", r.resource_type, r.resource_name));
}

pub fn merge_incremental(
    m: &mut IncrementalAlterConfigsResponse,
    order: Vec<String>,
    local: Vec<incremental_alter_configs_response::AlterConfigsResourceResponse>,
) {
    m.responses = order_results(order, std::mem::take(&mut m.responses), local, |r| format!("{}:{}", r.resource_type, r.resource_name));
}

//! deploy/grafana/kafka-durability-proxy.json against the code: Grafana's shape (schemaVersion,
//! the DS_PROMETHEUS datasource variable, job and instance variables), and every PromQL
//! expression naming only metrics and labels the proxy exports, filtered by $job and $instance,
//! parsed by promtool; every exported family on some panel. A renamed metric fails here.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::exported::{self, Exported};
use crate::{promql, repo};

const DASHBOARD: &str = "deploy/grafana/kafka-durability-proxy.json";
const DATASOURCE_UID: &str = "${DS_PROMETHEUS}";

/// Every panel, rows' nested panels included.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

/// (where, expression) of every panel query.
pub fn expressions(d: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in panels(d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or_default().to_owned();
            out.push((format!("panel {:?} target {}", p["title"], t["refId"]), expr));
        }
    }
    out
}

/// The `metric{...}` selectors of the proxy's metrics in an expression.
fn kdp_selectors(expr: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, _) in expr.match_indices("kdp_") {
        let name: String = expr[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let rest = &expr[i + name.len()..];
        let matchers = if rest.starts_with('{') { rest[..rest.find('}').map_or(rest.len(), |e| e + 1)].to_owned() } else { String::new() };
        out.push((name, matchers));
    }
    out
}

/// Everything wrong with a dashboard (empty when it is sound).
pub fn problems(d: &Value, exported: &Exported) -> Vec<String> {
    let mut out = Vec::new();
    if d["schemaVersion"].as_u64().unwrap_or(0) < 36 {
        out.push(format!("schemaVersion {} < 36", d["schemaVersion"]));
    }
    let vars = d["templating"]["list"].as_array().cloned().unwrap_or_default();
    let var = |name: &str| vars.iter().find(|v| v["name"] == name).cloned();
    match var("DS_PROMETHEUS") {
        Some(v) if v["type"] == "datasource" && v["query"] == "prometheus" => {}
        other => out.push(format!("no `DS_PROMETHEUS` datasource variable of type prometheus: {other:?}")),
    }
    for name in ["job", "instance"] {
        let Some(v) = var(name) else {
            out.push(format!("no `{name}` templating variable"));
            continue;
        };
        let query = v["query"]["query"].as_str().or(v["query"].as_str()).unwrap_or_default();
        let inner = query.strip_prefix("label_values(").and_then(|q| q.strip_suffix(&format!(", {name})")));
        match inner {
            Some(selector) => out.extend(promql::problems(selector, exported).into_iter().map(|p| format!("variable {name}: {p}"))),
            None => out.push(format!("variable {name}: query {query:?} is not label_values(<selector>, {name})")),
        }
        if v["datasource"]["uid"] != DATASOURCE_UID {
            out.push(format!("variable {name}: datasource is not {DATASOURCE_UID}"));
        }
    }
    let mut ids = BTreeSet::new();
    for p in panels(d) {
        let title = &p["title"];
        if !ids.insert(p["id"].as_u64()) {
            out.push(format!("panel {title}: id {} is not unique", p["id"]));
        }
        if p["type"] != "row" && p["datasource"]["uid"] != DATASOURCE_UID {
            out.push(format!("panel {title}: datasource is not {DATASOURCE_UID}"));
        }
        if p["gridPos"]["w"].as_u64().is_none() || p["gridPos"]["h"].as_u64().is_none() {
            out.push(format!("panel {title}: no gridPos"));
        }
        if p["type"] != "row" && p["targets"].as_array().is_none_or(|t| t.is_empty()) {
            out.push(format!("panel {title}: no query"));
        }
    }
    let exprs = expressions(d);
    let mut shown = BTreeSet::new();
    for (at, e) in &exprs {
        out.extend(promql::problems(e, exported).into_iter().map(|p| format!("{at}: {p}")));
        for (metric, matchers) in kdp_selectors(e) {
            if !(matchers.contains(r#"job=~"$job""#) && matchers.contains(r#"instance=~"$instance""#)) {
                out.push(format!("{at}: {metric} is not filtered by job=~\"$job\" and instance=~\"$instance\""));
            }
            if let Some(f) = exported.samples.get(&metric) {
                shown.insert(f.clone());
            }
        }
    }
    for f in exported.families.keys().filter(|f| !shown.contains(*f)) {
        out.push(format!("no panel shows {f}: add one (docs/metrics.md says what it means)"));
    }
    if let Err(e) = promql::promtool_check(&exprs) {
        out.push(e);
    }
    out
}

fn load() -> (String, Exported) {
    let text = std::fs::read_to_string(repo(DASHBOARD)).expect(DASHBOARD);
    (text, exported::parse(&exported::render()))
}

#[test]
fn the_dashboard_queries_only_what_the_proxy_exports() {
    let (text, exported) = load();
    let d: Value = serde_json::from_str(&text).expect("dashboard JSON");
    let found = problems(&d, &exported);
    assert!(found.is_empty(), "{DASHBOARD}:\n  {}", found.join("\n  "));
    assert!(expressions(&d).len() >= 25, "a query per question");
}

#[test]
fn a_renamed_metric_or_label_breaks_the_dashboard_check() {
    let (text, exported) = load();
    for (from, to, why) in [
        ("kdp_requests_total", "kdp_request_total", "metric `kdp_request_total` is not exported"),
        ("kdp_request_duration_seconds_bucket", "kdp_request_duration_seconds", "it is a histogram"),
        ("sum by (rule, action)", "sum by (rule, verdict)", "label `verdict`"),
        (r#"kdp_ready{job=~\"$job\",instance=~\"$instance\"}"#, "kdp_ready", "kdp_ready is not filtered"),
        (r#""schemaVersion": 39"#, r#""schemaVersion": 27"#, "schemaVersion 27 < 36"),
        (r#""name": "DS_PROMETHEUS""#, r#""name": "DS_PROM""#, "no `DS_PROMETHEUS` datasource variable"),
    ] {
        assert!(text.contains(from), "the mutation {from:?} applies");
        let broken: Value = serde_json::from_str(&text.replace(from, to)).expect("still JSON");
        let found = problems(&broken, &exported);
        assert!(found.iter().any(|p| p.contains(why)), "{from} -> {to}: expected {why:?} in {found:#?}");
    }
}

//! Checks PromQL written for operators (docs, dashboard) against what the proxy exports: every
//! metric a selector names, every label a matcher or grouping names, and every function, must
//! exist; the syntax itself is checked by Prometheus's own parser (`promtool check rules`).

use std::collections::BTreeSet;
use std::process::Command;

use crate::exported::{self, Exported};

/// Series that are not the proxy's but may be queried next to them (Prometheus's scrape health).
const FOREIGN_METRICS: [&str; 1] = ["up"];
const FOREIGN_LABELS: [&str; 2] = ["job", "instance"];

const FUNCTIONS: &[&str] = &[
    // aggregations
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    // functions
    "abs",
    "absent",
    "absent_over_time",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "count_over_time",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_quantile",
    "histogram_count",
    "histogram_sum",
    "histogram_fraction",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "time",
    "timestamp",
    "vector",
    "year",
];
const GROUPING: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];
const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "atan2"];

/// Everything in `expr` that does not exist in `exported` (empty when the query is sound).
pub fn problems(expr: &str, exported: &Exported) -> Vec<String> {
    let all_labels = exported.all_labels();
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            c if c.is_whitespace() => i += 1,
            '"' | '\'' | '`' => i = skip_string(&chars, i),
            '$' => i = skip_variable(&chars, i + 1),
            '[' => i = skip_past(&chars, i, ']'),
            '{' => i = check_matchers(&chars, i + 1, &all_labels, "{}", &mut out),
            c if c.is_ascii_digit() || c == '.' => i = skip_while(&chars, i, |c| c.is_ascii_alphanumeric() || c == '.'),
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let end = skip_while(&chars, i, |c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
                let word: String = chars[i..end].iter().collect();
                let next = chars[end..].iter().find(|c| !c.is_whitespace()).copied();
                i = end;
                if GROUPING.contains(&word.as_str()) {
                    if next == Some('(') {
                        let close = skip_past(&chars, i, ')');
                        let list: String = chars[i..close].iter().collect();
                        for l in
                            list.trim().trim_start_matches('(').trim_end_matches(')').split(',').map(str::trim).filter(|l| !l.is_empty())
                        {
                            if !all_labels.contains(l) {
                                out.push(format!("`{word} ({l})`: no exported series has a label `{l}`"));
                            }
                        }
                        i = close;
                    }
                } else if KEYWORDS.contains(&word.as_str()) || FUNCTIONS.contains(&word.as_str()) {
                    // `sum by (x) (...)`: an aggregation need not be followed by its parenthesis.
                } else if next == Some('(') {
                    out.push(format!("`{word}(...)`: not a PromQL function or aggregation"));
                } else {
                    if !exported.samples.contains_key(&word) && !FOREIGN_METRICS.contains(&word.as_str()) {
                        out.push(format!("metric `{word}` is not exported by the proxy{}", hint(&word, exported)));
                    }
                    if next == Some('{') {
                        let brace = skip_past(&chars, i, '{');
                        i = check_matchers(&chars, brace, &labels_of(&word, exported), &word, &mut out);
                    }
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// Labels a selector on `metric` may match: its own, `le` on a histogram's buckets, and the
/// target labels Prometheus adds.
fn labels_of(metric: &str, exported: &Exported) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = FOREIGN_LABELS.iter().map(|s| s.to_string()).collect();
    out.insert("__name__".into());
    if let Some(f) = exported.samples.get(metric).and_then(|f| exported.families.get(f)) {
        out.extend(f.labels.iter().cloned());
    }
    if metric.ends_with("_bucket") {
        out.insert("le".into());
    }
    out
}

fn hint(word: &str, exported: &Exported) -> String {
    if exported.families.get(word).is_some_and(|f| f.kind == "histogram") {
        return " (it is a histogram: query its _bucket, _sum or _count series)".into();
    }
    String::new()
}

/// Reads `name op "value", ...}` from `i`; returns the index past `}`.
fn check_matchers(chars: &[char], mut i: usize, allowed: &BTreeSet<String>, on: &str, out: &mut Vec<String>) -> usize {
    loop {
        i = skip_while(chars, i, |c| c.is_whitespace() || c == ',');
        match chars.get(i) {
            None => return i,
            Some('}') => return i + 1,
            Some(_) => {}
        }
        let end = skip_while(chars, i, |c| c.is_ascii_alphanumeric() || c == '_');
        let name: String = chars[i..end].iter().collect();
        if name.is_empty() {
            out.push(format!("cannot read the matchers of {on}"));
            return skip_past(chars, i, '}');
        }
        if !allowed.contains(&name) {
            out.push(format!("`{on}{{{name}=...}}`: {on} has no label `{name}` (it has {allowed:?})"));
        }
        i = skip_while(chars, end, |c| c.is_whitespace() || "=!~".contains(c));
        if matches!(chars.get(i), Some('"' | '\'' | '`')) {
            i = skip_string(chars, i);
        }
    }
}

fn skip_while(chars: &[char], mut i: usize, keep: impl Fn(char) -> bool) -> usize {
    while chars.get(i).is_some_and(|c| keep(*c)) {
        i += 1;
    }
    i
}

/// From an opening quote to past its closing one (backslash escapes, none in backticks).
fn skip_string(chars: &[char], i: usize) -> usize {
    let quote = chars[i];
    let mut j = i + 1;
    while let Some(&c) = chars.get(j) {
        j += 1;
        if c == '\\' && quote != '`' {
            j += 1;
        } else if c == quote {
            break;
        }
    }
    j
}

/// Past a Grafana variable: `$name` or `${name...}`.
fn skip_variable(chars: &[char], i: usize) -> usize {
    if chars.get(i) == Some(&'{') {
        return skip_past(chars, i, '}');
    }
    skip_while(chars, i, |c| c.is_ascii_alphanumeric() || c == '_')
}

/// Past the first `close` at or after `i`.
fn skip_past(chars: &[char], i: usize, close: char) -> usize {
    chars[i..].iter().position(|c| *c == close).map(|p| i + p + 1).unwrap_or(chars.len())
}

/// The expression as Prometheus would run it: Grafana's variables replaced by plain values.
pub fn without_grafana_variables(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h")
        .replace("${job}", ".*")
        .replace("${instance}", ".*")
        .replace("$job", ".*")
        .replace("$instance", ".*")
}

/// Parses every expression with Prometheus's own parser (each as a recording rule);
/// Err names the ones it refused.
pub fn promtool_check(exprs: &[(String, String)]) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("dir");
    let mut rules = String::from("groups:\n  - name: syntax\n    rules:\n");
    for (n, (_, e)) in exprs.iter().enumerate() {
        let quoted = serde_json::to_string(&without_grafana_variables(e)).expect("json string");
        rules.push_str(&format!("      - record: check:expr_{n}\n        expr: {quoted}\n"));
    }
    let path = dir.path().join("rules.yml");
    std::fs::write(&path, &rules).expect("rules");
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .expect("run promtool (apt-get install prometheus; scripts/setup.sh does)");
    if out.status.success() {
        return Ok(());
    }
    let origins: Vec<String> = exprs.iter().enumerate().map(|(n, (o, e))| format!("  check:expr_{n} = {o}: {e}")).collect();
    Err(format!(
        "promtool refused:\n{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        origins.join("\n")
    ))
}

#[test]
fn the_checker_accepts_sound_queries_and_names_every_mistake() {
    let e = exported::parse(&exported::render());
    for ok in [
        r#"histogram_quantile(0.99, sum by (api, le) (rate(kdp_request_duration_seconds_bucket{job=~"$job"}[$__rate_interval])))"#,
        r#"sum(rate(kdp_policy_verdicts_total{rule="produce_acks", action!~"exempt|allow"}[5m])) by (action)"#,
        r#"min by (instance) (kdp_ready) == 0 or up{job="kafka-durability-proxy"} == 0"#,
        r#"sum(kdp_connections_open) / on (instance) group_left count(kdp_build_info) offset 5m"#,
    ] {
        assert_eq!(problems(ok, &e), Vec::<String>::new(), "{ok}");
    }
    for (bad, why) in [
        ("sum(rate(kdp_requets_total[5m]))", "metric `kdp_requets_total`"),
        ("rate(kdp_request_duration_seconds[5m])", "it is a histogram"),
        ("sum by (topic) (rate(kdp_requests_total[5m]))", "label `topic`"),
        (r#"kdp_requests_total{listener="bootstrap"}"#, "has no label `listener`"),
        ("histogram_quantil(0.5, kdp_request_duration_seconds_bucket)", "`histogram_quantil(...)`"),
    ] {
        let found = problems(bad, &e);
        assert!(found.iter().any(|p| p.contains(why)), "{bad}: expected a problem containing {why:?}, got {found:?}");
    }
}

#[test]
fn promtool_refuses_a_broken_expression() {
    let ok = ("ok".to_string(), "sum(rate(kdp_requests_total[$__rate_interval]))".to_string());
    assert_eq!(promtool_check(std::slice::from_ref(&ok)), Ok(()));
    let broken = ("broken".to_string(), "sum(rate(kdp_requests_total[5m])".to_string());
    let err = promtool_check(&[ok, broken]).expect_err("unbalanced parentheses");
    assert!(err.contains("broken"), "{err}");
}

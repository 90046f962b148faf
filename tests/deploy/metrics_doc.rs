//! docs/metrics.md against the code: its table lists exactly the families the proxy exports,
//! with their types and labels, and every `promql` block in it names only what exists and parses.

use std::collections::{BTreeMap, BTreeSet};

use crate::exported::{self, Family};
use crate::{promql, repo};

/// The documented families: `| `name` | type | `l1`, `l2` (or –) | ...` rows.
pub fn documented(md: &str) -> BTreeMap<String, Family> {
    let mut out = BTreeMap::new();
    for line in md.lines().filter(|l| l.starts_with("| `kdp_")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let [name, kind, labels, ..] = cells.as_slice() else { panic!("short row: {line}") };
        let labels = labels.split(',').map(|l| l.trim().trim_matches('`')).filter(|l| !l.is_empty() && *l != "–").map(String::from);
        let family = Family { kind: kind.to_string(), labels: labels.collect() };
        assert!(out.insert(name.trim_matches('`').to_owned(), family).is_none(), "listed twice: {line}");
    }
    out
}

/// The contents of every ```promql block.
pub fn promql_blocks(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in md.lines() {
        match (&mut current, line.trim()) {
            (None, "```promql") => current = Some(String::new()),
            (Some(block), "```") => {
                out.push(block.trim().to_owned());
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

/// Where the documented table and the exported families differ (empty when they agree).
pub fn differences(doc: &BTreeMap<String, Family>, exported: &BTreeMap<String, Family>) -> Vec<String> {
    let mut out = Vec::new();
    let names: BTreeSet<&String> = doc.keys().chain(exported.keys()).collect();
    for name in names {
        match (doc.get(name), exported.get(name)) {
            (None, Some(f)) => out.push(format!("{name} ({} {:?}) is exported but not documented in docs/metrics.md", f.kind, f.labels)),
            (Some(_), None) => out.push(format!("{name} is documented in docs/metrics.md but the proxy does not export it")),
            (Some(d), Some(e)) if d != e => out.push(format!("{name}: documented as {d:?}, exported as {e:?}")),
            _ => {}
        }
    }
    out
}

#[test]
fn the_table_lists_exactly_the_exported_families() {
    let md = std::fs::read_to_string(repo("docs/metrics.md")).expect("docs/metrics.md");
    let exported = exported::parse(&exported::render());
    let problems = differences(&documented(&md), &exported.families);
    assert!(problems.is_empty(), "docs/metrics.md is out of date:\n  {}", problems.join("\n  "));
}

#[test]
fn a_renamed_or_undocumented_metric_is_caught() {
    let md = std::fs::read_to_string(repo("docs/metrics.md")).expect("docs/metrics.md");
    let exported = exported::parse(&exported::render()).families;
    let renamed = documented(&md.replace("| `kdp_inflight_requests` |", "| `kdp_in_flight_requests` |"));
    let found = differences(&renamed, &exported);
    assert!(
        found.iter().any(|p| p.starts_with("kdp_inflight_requests (gauge") && p.contains("is exported but not documented")),
        "{found:?}"
    );
    assert!(found.iter().any(|p| p.contains("kdp_in_flight_requests is documented")), "{found:?}");
    let relabelled = documented(&md.replace("| `kdp_requests_total` | counter | `api` |", "| `kdp_requests_total` | counter | `apikey` |"));
    assert!(differences(&relabelled, &exported).iter().any(|p| p.starts_with("kdp_requests_total: documented as")));
}

#[test]
fn every_query_in_the_doc_names_real_series_and_parses() {
    let md = std::fs::read_to_string(repo("docs/metrics.md")).expect("docs/metrics.md");
    let exported = exported::parse(&exported::render());
    let blocks = promql_blocks(&md);
    assert!(blocks.len() >= 10, "the operators' questions are answered: {blocks:?}");
    let mut problems = Vec::new();
    for b in &blocks {
        problems.extend(promql::problems(b, &exported).into_iter().map(|p| format!("{b}\n    {p}")));
    }
    assert!(problems.is_empty(), "docs/metrics.md queries:\n  {}", problems.join("\n  "));
    let named: Vec<(String, String)> = blocks.iter().map(|b| ("docs/metrics.md".to_owned(), b.clone())).collect();
    promql::promtool_check(&named).unwrap_or_else(|e| panic!("{e}"));
    let queried: BTreeSet<String> =
        blocks.iter().flat_map(|b| exported.samples.iter().filter(|(s, _)| b.contains(s.as_str()))).map(|(_, f)| f.clone()).collect();
    let unqueried: Vec<&String> = exported.families.keys().filter(|f| !queried.contains(*f)).collect();
    assert!(unqueried.is_empty(), "families no query in docs/metrics.md uses: {unqueried:?}");
}

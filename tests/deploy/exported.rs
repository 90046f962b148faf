//! What the proxy's /metrics exports, from the code itself: every family rendered (each labelled
//! family touched once so its samples appear), parsed into names, types, labels and sample names.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kafka_durability_proxy::metrics::{encode_audit, Metrics, SinkSample};

/// One metric family as exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    pub kind: String,
    /// Label names of its samples, without `le`.
    pub labels: BTreeSet<String>,
}

#[derive(Debug)]
pub struct Exported {
    pub families: BTreeMap<String, Family>,
    /// Sample names (a histogram's `_bucket`, `_sum`, `_count`) → their family.
    pub samples: BTreeMap<String, String>,
}

impl Exported {
    /// Label names any exported series carries, plus those Prometheus adds.
    pub fn all_labels(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self.families.values().flat_map(|f| f.labels.iter().cloned()).collect();
        out.extend(["le", "job", "instance", "__name__"].map(String::from));
        out
    }
}

/// The /metrics text with every family present and every labelled family holding a sample,
/// as the admin endpoint renders it (the audit writer's counters appended by the binary).
pub fn render() -> String {
    let m = Metrics::new();
    let l = m.listener("bootstrap");
    l.open.inc();
    l.accepted.inc();
    l.refused.inc();
    m.api(0).requests.inc();
    m.api(0).latency.observe(Duration::from_micros(300));
    m.verdict("produce_acks", "upgrade");
    m.produce_error(19);
    m.connect_observed(Duration::from_millis(2), true);
    m.encode(&|e| encode_audit(e, 0, &[SinkSample { name: "file".into(), ..SinkSample::default() }]))
}

/// Parses Prometheus text (as the proxy writes it: HELP and TYPE before the samples).
pub fn parse(text: &str) -> Exported {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            families.insert(name.to_owned(), Family { kind: kind.to_owned(), labels: BTreeSet::new() });
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).expect("sample name");
        let name = &line[..name_end];
        let family = family_of(name, &families).unwrap_or_else(|| panic!("sample {name} has no TYPE line before it"));
        samples.insert(name.to_owned(), family.clone());
        if line[name_end..].starts_with('{') {
            let body = &line[name_end + 1..line.rfind('}').expect("closing brace")];
            let f = families.get_mut(&family).expect("family");
            f.labels.extend(label_names(body).into_iter().filter(|l| l != "le"));
        }
    }
    Exported { families, samples }
}

/// The family a sample belongs to: its own name, or a histogram's name for its suffixed samples.
fn family_of(sample: &str, families: &BTreeMap<String, Family>) -> Option<String> {
    if families.contains_key(sample) {
        return Some(sample.to_owned());
    }
    ["_bucket", "_sum", "_count"]
        .iter()
        .filter_map(|s| sample.strip_suffix(s))
        .find(|base| families.get(*base).is_some_and(|f| f.kind == "histogram"))
        .map(str::to_owned)
}

/// Label names in `k="v",k2="v2"` (values may hold escaped quotes and commas).
fn label_names(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = body.chars().peekable();
    loop {
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.is_empty() {
            return out;
        }
        out.push(name.trim_start_matches(',').to_owned());
        assert_eq!(chars.next(), Some('"'), "label value must be quoted in {body}");
        let mut escaped = false;
        for c in chars.by_ref() {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => break,
                _ => escaped = false,
            }
        }
    }
}

#[test]
fn the_rendering_holds_every_family_with_its_labels() {
    let e = parse(&render());
    assert!(e.families.len() >= 20, "{:#?}", e.families);
    let labels = |n: &str| e.families[n].labels.iter().cloned().collect::<Vec<_>>();
    assert_eq!(labels("kdp_requests_total"), ["api"]);
    assert_eq!(labels("kdp_connections_refused_total"), ["listener"]);
    assert_eq!(labels("kdp_policy_verdicts_total"), ["action", "rule"]);
    assert_eq!(labels("kdp_produce_errors_total"), ["error"]);
    assert_eq!(labels("kdp_request_duration_seconds"), ["api"]);
    assert_eq!(e.families["kdp_audit_events_dropped_total"].kind, "counter");
    assert_eq!(e.samples["kdp_request_duration_seconds_bucket"], "kdp_request_duration_seconds");
    assert!(!e.samples.contains_key("kdp_request_duration_seconds"), "a histogram has no bare sample");
}

#[test]
fn escaped_label_values_do_not_confuse_the_parser() {
    assert_eq!(label_names(r#"a="x\",y=\"z",b="",c="\\""#), ["a", "b", "c"]);
}

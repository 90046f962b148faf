//! The audit section: sinks as written (a `sinks` list, or the older `sink`/`path` shorthand) and
//! as validated (`AuditSettings`), with the checks that turn one into the other, every problem
//! named by its key.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The shorthand's single sink (`audit.sink`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuditSink {
    #[default]
    Stdout,
    File,
}

/// `type` of an `audit.sinks` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkType {
    Stdout,
    File,
    Kafka,
}

impl SinkType {
    fn name(self) -> &'static str {
        match self {
            SinkType::Stdout => "stdout",
            SinkType::File => "file",
            SinkType::Kafka => "kafka",
        }
    }
}

/// One `audit.sinks` entry as written: the keys of every type, checked against its own.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct RawSink {
    #[serde(rename = "type")]
    pub kind: SinkType,
    /// How the sink is named in `audit_dropped` lines and its counters; its type by default.
    pub name: Option<String>,
    pub path: Option<PathBuf>,
    pub max_bytes: Option<u64>,
    pub keep: Option<u32>,
    pub topic: Option<String>,
    pub create_topic: Option<bool>,
    pub replication_factor: Option<i16>,
    pub min_insync_replicas: Option<i16>,
    pub partitions: Option<i32>,
}

/// The section as written.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Audit {
    /// Shorthand for one sink: stdout, or file with `path`.
    pub sink: Option<AuditSink>,
    pub path: Option<PathBuf>,
    pub sinks: Option<Vec<RawSink>>,
    /// Repeats of the same key are summarised per window.
    #[serde(default = "default_window")]
    pub window_secs: u64,
    /// Events waiting for the writer, and lines waiting for each sink; beyond it they are
    /// dropped and counted, never blocking.
    #[serde(default = "default_queue")]
    pub queue_capacity: usize,
}

impl Default for Audit {
    fn default() -> Self {
        Self { sink: None, path: None, sinks: None, window_secs: default_window(), queue_capacity: default_queue() }
    }
}

fn default_window() -> u64 {
    60
}

fn default_queue() -> usize {
    10_000
}

pub const DEFAULT_KEEP: u32 = 5;
pub const DEFAULT_REPLICATION_FACTOR: i16 = 3;
pub const DEFAULT_MIN_INSYNC_REPLICAS: i16 = 2;

/// The section as validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditSettings {
    pub window_secs: u64,
    pub queue_capacity: usize,
    pub sinks: Vec<SinkSpec>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self { window_secs: default_window(), queue_capacity: default_queue(), sinks: vec![SinkSpec::stdout()] }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkSpec {
    /// Unique among the sinks.
    pub name: String,
    pub kind: SinkKind,
}

impl SinkSpec {
    pub fn stdout() -> Self {
        Self { name: "stdout".into(), kind: SinkKind::Stdout }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkKind {
    Stdout,
    File(FileSinkSpec),
    Kafka(KafkaSinkSpec),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSinkSpec {
    pub path: PathBuf,
    /// Appended without limit when absent.
    pub rotation: Option<Rotation>,
}

/// Size-based rotation: past `max_bytes` the file becomes `<path>.1`, older ones shift up to
/// `<path>.<keep>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    pub max_bytes: u64,
    pub keep: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaSinkSpec {
    pub topic: String,
    pub create_topic: bool,
    pub replication_factor: i16,
    pub min_insync_replicas: i16,
    pub partitions: i32,
}

/// Validates the section; problems go to `errors`.
pub fn settings(raw: Audit, errors: &mut Vec<String>) -> AuditSettings {
    if raw.window_secs == 0 {
        errors.push("audit.window_secs must be above 0".into());
    }
    if raw.queue_capacity == 0 {
        errors.push("audit.queue_capacity must be above 0".into());
    }
    let sinks = match (raw.sinks, raw.sink, raw.path) {
        (Some(list), sink, path) => {
            if sink.is_some() || path.is_some() {
                errors.push("audit.sink and audit.path are a shorthand for one sink: use them or audit.sinks, not both".into());
            }
            sink_list(list, errors)
        }
        (None, None | Some(AuditSink::Stdout), None) => vec![SinkSpec::stdout()],
        (None, Some(AuditSink::File), Some(path)) => {
            parent_exists("audit.path", &path, errors);
            vec![SinkSpec { name: "file".into(), kind: SinkKind::File(FileSinkSpec { path, rotation: None }) }]
        }
        (None, Some(AuditSink::File), None) => {
            errors.push("audit.path is required when audit.sink is file".into());
            Vec::new()
        }
        (None, _, Some(_)) => {
            errors.push("audit.path is set but audit.sink is stdout: set sink: file".into());
            Vec::new()
        }
    };
    AuditSettings { window_secs: raw.window_secs, queue_capacity: raw.queue_capacity, sinks }
}

fn sink_list(list: Vec<RawSink>, errors: &mut Vec<String>) -> Vec<SinkSpec> {
    if list.is_empty() {
        errors.push("audit.sinks must list at least one sink".into());
    }
    let mut names = BTreeSet::new();
    let mut out = Vec::new();
    for (i, raw) in list.into_iter().enumerate() {
        let at = format!("audit.sinks[{i}]");
        let name = raw.name.clone().unwrap_or_else(|| raw.kind.name().to_owned());
        if name.trim().is_empty() {
            errors.push(format!("{at}.name must not be empty"));
        } else if !names.insert(name.clone()) {
            errors.push(format!("{at}: another sink is already named `{name}`: give each a distinct name"));
        }
        if let Some(kind) = sink_kind(raw, &at, errors) {
            out.push(SinkSpec { name, kind });
        }
    }
    out
}

fn sink_kind(raw: RawSink, at: &str, errors: &mut Vec<String>) -> Option<SinkKind> {
    let file_keys = [("path", raw.path.is_some()), ("max_bytes", raw.max_bytes.is_some()), ("keep", raw.keep.is_some())];
    let kafka_keys = [
        ("topic", raw.topic.is_some()),
        ("create_topic", raw.create_topic.is_some()),
        ("replication_factor", raw.replication_factor.is_some()),
        ("min_insync_replicas", raw.min_insync_replicas.is_some()),
        ("partitions", raw.partitions.is_some()),
    ];
    let foreign: Vec<(&str, bool)> = match raw.kind {
        SinkType::Stdout => file_keys.iter().chain(kafka_keys.iter()).copied().collect(),
        SinkType::File => kafka_keys.to_vec(),
        SinkType::Kafka => file_keys.to_vec(),
    };
    for (key, _) in foreign.iter().filter(|(_, set)| *set) {
        errors.push(format!("{at}.{key} does not apply to a {} sink", raw.kind.name()));
    }
    match raw.kind {
        SinkType::Stdout => Some(SinkKind::Stdout),
        SinkType::File => file_sink(raw, at, errors).map(SinkKind::File),
        SinkType::Kafka => kafka_sink(raw, at, errors).map(SinkKind::Kafka),
    }
}

fn file_sink(raw: RawSink, at: &str, errors: &mut Vec<String>) -> Option<FileSinkSpec> {
    let rotation = match (raw.max_bytes, raw.keep) {
        (None, None) => None,
        (None, Some(_)) => {
            errors.push(format!("{at}.keep needs max_bytes (the size at which the file rotates)"));
            None
        }
        (Some(max_bytes), keep) => {
            if max_bytes == 0 {
                errors.push(format!("{at}.max_bytes must be above 0"));
            }
            let keep = keep.unwrap_or(DEFAULT_KEEP);
            if keep == 0 {
                errors.push(format!("{at}.keep must be at least 1: rotation renames the full file to <path>.1"));
            }
            Some(Rotation { max_bytes, keep })
        }
    };
    let Some(path) = raw.path else {
        errors.push(format!("{at}.path is required for a file sink"));
        return None;
    };
    parent_exists(&format!("{at}.path"), &path, errors);
    Some(FileSinkSpec { path, rotation })
}

fn kafka_sink(raw: RawSink, at: &str, errors: &mut Vec<String>) -> Option<KafkaSinkSpec> {
    let spec = KafkaSinkSpec {
        topic: raw.topic.unwrap_or_default(),
        create_topic: raw.create_topic.unwrap_or(true),
        replication_factor: raw.replication_factor.unwrap_or(DEFAULT_REPLICATION_FACTOR),
        min_insync_replicas: raw.min_insync_replicas.unwrap_or(DEFAULT_MIN_INSYNC_REPLICAS),
        partitions: raw.partitions.unwrap_or(1),
    };
    if let Some(problem) = topic_name_problem(&spec.topic) {
        errors.push(format!("{at}.topic {problem}"));
    }
    for (key, v) in [
        ("replication_factor", i32::from(spec.replication_factor)),
        ("min_insync_replicas", i32::from(spec.min_insync_replicas)),
        ("partitions", spec.partitions),
    ] {
        if v < 1 {
            errors.push(format!("{at}.{key} must be at least 1"));
        }
    }
    if spec.min_insync_replicas >= 1 && spec.replication_factor <= spec.min_insync_replicas {
        errors.push(format!(
            "{at}.replication_factor ({}) must exceed min_insync_replicas ({}), or one replica down stops the audit topic",
            spec.replication_factor, spec.min_insync_replicas
        ));
    }
    Some(spec)
}

/// Kafka's own rules for a topic name.
fn topic_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is required for a kafka sink".into());
    }
    if name == "." || name == ".." || name.len() > 249 {
        return Some(format!("`{name}` is not a valid topic name"));
    }
    let bad: String = name.chars().filter(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))).collect();
    (!bad.is_empty()).then(|| format!("`{name}` has characters a topic name cannot: {bad:?}"))
}

/// A file the proxy will create must have a directory to go in.
fn parent_exists(key: &str, path: &Path, errors: &mut Vec<String>) {
    if path.as_os_str().is_empty() {
        errors.push(format!("{key} must not be empty"));
        return;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            errors.push(format!("{key} {}: directory {} does not exist", path.display(), dir.display()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str =
        "listen:\n  advertised_host: p\n  bootstrap_port: 19092\n  broker_port_base: 19100\nupstream:\n  bootstrap_servers: [\"b:9092\"]\n";

    fn parse(audit: &str) -> Result<AuditSettings, Vec<String>> {
        crate::config::parse(&format!("{BASE}audit:\n{audit}")).map(|c| c.audit).map_err(|e| e.0)
    }

    fn errors(audit: &str) -> String {
        parse(audit).expect_err("invalid").join("\n")
    }

    #[test]
    fn shorthand_forms_still_work() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.jsonl");
        let file = parse(&format!("  sink: file\n  path: {}\n  window_secs: 1\n", path.display())).expect("valid");
        assert_eq!(file.window_secs, 1);
        assert_eq!(file.sinks, vec![SinkSpec { name: "file".into(), kind: SinkKind::File(FileSinkSpec { path, rotation: None }) }]);
        assert_eq!(parse("  sink: stdout\n").expect("valid").sinks, vec![SinkSpec::stdout()]);
        assert_eq!(parse("  window_secs: 5\n").expect("valid").sinks, vec![SinkSpec::stdout()]);
        let none = crate::config::parse(BASE).expect("valid").audit;
        assert_eq!(none, AuditSettings::default());
    }

    #[test]
    fn a_sink_list_with_every_type_and_its_defaults() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("a.jsonl");
        let text = format!(
            "  queue_capacity: 50\n  sinks:\n    - {{type: stdout}}\n    - {{type: file, path: {p}, max_bytes: 1048576}}\n    - {{type: file, name: raw, path: {p}.raw}}\n    - {{type: kafka, topic: _kdp_audit}}\n    - {{type: kafka, name: k2, topic: other, create_topic: false, replication_factor: 5, min_insync_replicas: 3, partitions: 4}}\n",
            p = path.display()
        );
        let s = parse(&text).expect("valid");
        assert_eq!(s.queue_capacity, 50);
        let names: Vec<&str> = s.sinks.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["stdout", "file", "raw", "kafka", "k2"]);
        assert_eq!(
            s.sinks[1].kind,
            SinkKind::File(FileSinkSpec { path: path.clone(), rotation: Some(Rotation { max_bytes: 1 << 20, keep: 5 }) })
        );
        let kafka = |t: &str, c, rf, isr, p| {
            SinkKind::Kafka(KafkaSinkSpec {
                topic: t.into(),
                create_topic: c,
                replication_factor: rf,
                min_insync_replicas: isr,
                partitions: p,
            })
        };
        assert_eq!(s.sinks[3].kind, kafka("_kdp_audit", true, 3, 2, 1));
        assert_eq!(s.sinks[4].kind, kafka("other", false, 5, 3, 4));
    }

    #[test]
    fn every_sink_problem_is_reported_at_once() {
        let text = "  sink: file\n  path: /tmp/x\n  window_secs: 0\n  sinks:\n    - {type: stdout, path: /tmp/y, topic: t}\n    - {type: file, keep: 2}\n    - {type: file, path: /no/such/dir/a.jsonl, max_bytes: 0, keep: 0}\n    - {type: kafka, topic: 'bad name', replication_factor: 2, min_insync_replicas: 2, partitions: 0, max_bytes: 5}\n    - {type: kafka, topic: t2}\n";
        let joined = errors(text);
        for want in [
            "audit.window_secs must be above 0",
            "use them or audit.sinks, not both",
            "audit.sinks[0].path does not apply to a stdout sink",
            "audit.sinks[0].topic does not apply to a stdout sink",
            "audit.sinks[1].keep needs max_bytes",
            "audit.sinks[1].path is required for a file sink",
            "audit.sinks[2]: another sink is already named `file`",
            "audit.sinks[2].max_bytes must be above 0",
            "audit.sinks[2].keep must be at least 1",
            "directory /no/such/dir does not exist",
            "audit.sinks[3].max_bytes does not apply to a kafka sink",
            "audit.sinks[3].topic `bad name` has characters",
            "audit.sinks[3].partitions must be at least 1",
            "audit.sinks[3].replication_factor (2) must exceed min_insync_replicas (2)",
            "audit.sinks[4]: another sink is already named `kafka`",
        ] {
            assert!(joined.contains(want), "missing `{want}` in:\n{joined}");
        }
        let unknown_type = errors("  sinks:\n    - {type: pigeon}\n");
        assert!(unknown_type.contains("unknown variant `pigeon`"), "{unknown_type}");
    }

    #[test]
    fn unknown_keys_inside_a_sink_are_rejected() {
        let joined = errors("  sinks:\n    - {type: stdout, colour: blue}\n");
        assert!(joined.contains("unknown key") && joined.contains("colour"), "{joined}");
        assert!(errors("  sinks: []\n").contains("audit.sinks must list at least one sink"));
        assert!(errors("  sink: file\n").contains("audit.path is required when audit.sink is file"));
        assert!(errors("  path: /tmp/a\n").contains("audit.sink is stdout"));
    }
}

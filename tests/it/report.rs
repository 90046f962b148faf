//! The real binary's command line: `report` on a recorded audit log (tests/data/audit-sample.jsonl:
//! first and summary lines from several clients, principals, topics and rules, an `audit_dropped`
//! line, a truncated line), help, version, usage errors, and the `--config`/`--check-config` forms
//! the Dockerfile and scripts use.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{free_port, proxy_bin, wait_for_port, Proc};

const SAMPLE: &str = "tests/data/audit-sample.jsonl";
const SKIPPED: &str = "tests/data/audit-sample.jsonl:12: skipped: not JSON (EOF while parsing a string at line 1 column 41)\n";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary from the crate root, with `stdin` piped in when given.
fn kdp(args: &[&str], stdin: Option<&[u8]>) -> Out {
    let mut child = Command::new(proxy_bin())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the proxy binary");
    if let Some(bytes) = stdin {
        child.stdin.take().expect("stdin").write_all(bytes).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    Out {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

fn assert_lines(out: &Out, want: &[&str]) {
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let got: Vec<&str> = out.stdout.lines().collect();
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "line {} differs:\n{}", i + 1, out.stdout);
    }
    assert_eq!(got.len(), want.len(), "line count:\n{}", out.stdout);
}

const BY_CLIENT: &[&str] = &[
    "RULE                                ACTION   CLIENT ID               PRINCIPAL           SOURCE      COUNT  FIRST SEEN            LAST SEEN",
    "produce_acks                        upgrade  legacy-fire-and-forget  User:orders-legacy  2 sources    2132  2026-11-21T08:02:11Z  2026-11-21T08:03:11Z",
    "produce_acks                        upgrade  metrics-shipper         User:metrics        10.1.12.5     301  2026-11-21T08:04:02Z  2026-11-21T08:05:02Z",
    "produce_acks                        reject   billing-batch           User:billing        10.1.7.30      42  2026-11-21T08:02:14Z  2026-11-21T08:03:11Z",
    "produce_acks                        upgrade  orders-replay           User:orders-legacy  10.1.4.40      12  2026-11-21T08:07:45Z  2026-11-21T08:08:44Z",
    "metadata.block_auto_topic_creation  upgrade  -                       -                   172.18.0.9      6  2026-11-21T08:02:52Z  2026-11-21T08:03:09Z",
    "produce_acks                        close    legacy-fire-and-forget  User:orders-legacy  10.1.4.17       1  2026-11-21T08:06:20Z  2026-11-21T08:06:20Z",
    "create_topics                       reject   ops-admin               User:ops            10.1.9.2        1  2026-11-21T08:03:05Z  2026-11-21T08:03:05Z",
    "create_topics                       upgrade  ops-admin               User:ops            10.1.9.2        1  2026-11-21T08:09:30Z  2026-11-21T08:09:30Z",
    "deletes.protected_topics            allow    ops-admin               User:ops            10.1.9.2        1  2026-11-21T08:09:52Z  2026-11-21T08:09:52Z",
    "deletes.protected_topics            reject   ops-admin               User:ops            10.1.9.2        1  2026-11-21T08:04:30Z  2026-11-21T08:04:30Z",
    "10 groups, 2498 events; 19 lines read, 0 outside the time range, 1 skipped; 37 events dropped by the proxy (audit_dropped)",
];

#[test]
fn report_by_client_is_the_default_table() {
    let out = kdp(&["report", SAMPLE], None);
    assert_lines(&out, BY_CLIENT);
    assert_eq!(out.stderr, SKIPPED, "one warning for the truncated line");
    let explicit = kdp(&["report", "--by", "client", "--format", "table", SAMPLE], None);
    assert_eq!(explicit.stdout, out.stdout);
}

#[test]
fn report_by_principal_topic_and_rule() {
    let cases: [(&str, &[&str]); 3] = [
        (
            "principal",
            &[
                "RULE                                ACTION   PRINCIPAL           CLIENT ID               SOURCE      COUNT  FIRST SEEN            LAST SEEN",
                "produce_acks                        upgrade  User:orders-legacy  2 clients               3 sources    2144  2026-11-21T08:02:11Z  2026-11-21T08:08:44Z",
                "produce_acks                        upgrade  User:metrics        metrics-shipper         10.1.12.5     301  2026-11-21T08:04:02Z  2026-11-21T08:05:02Z",
                "produce_acks                        reject   User:billing        billing-batch           10.1.7.30      42  2026-11-21T08:02:14Z  2026-11-21T08:03:11Z",
                "metadata.block_auto_topic_creation  upgrade  -                   -                       172.18.0.9      6  2026-11-21T08:02:52Z  2026-11-21T08:03:09Z",
                "create_topics                       reject   User:ops            ops-admin               10.1.9.2        1  2026-11-21T08:03:05Z  2026-11-21T08:03:05Z",
                "create_topics                       upgrade  User:ops            ops-admin               10.1.9.2        1  2026-11-21T08:09:30Z  2026-11-21T08:09:30Z",
                "deletes.protected_topics            allow    User:ops            ops-admin               10.1.9.2        1  2026-11-21T08:09:52Z  2026-11-21T08:09:52Z",
                "deletes.protected_topics            reject   User:ops            ops-admin               10.1.9.2        1  2026-11-21T08:04:30Z  2026-11-21T08:04:30Z",
                "produce_acks                        close    User:orders-legacy  legacy-fire-and-forget  10.1.4.17       1  2026-11-21T08:06:20Z  2026-11-21T08:06:20Z",
                "9 groups, 2498 events; 19 lines read, 0 outside the time range, 1 skipped; 37 events dropped by the proxy (audit_dropped)",
            ],
        ),
        (
            "topic",
            &[
                "RULE                                ACTION   TOPIC           CLIENT ID               PRINCIPAL           SOURCE      COUNT  FIRST SEEN            LAST SEEN",
                "produce_acks                        upgrade  demo-orders     2 clients               User:orders-legacy  3 sources    2144  2026-11-21T08:02:11Z  2026-11-21T08:08:44Z",
                "produce_acks                        upgrade  metrics.cpu     metrics-shipper         User:metrics        10.1.12.5     301  2026-11-21T08:04:02Z  2026-11-21T08:05:02Z",
                "produce_acks                        upgrade  metrics.mem     metrics-shipper         User:metrics        10.1.12.5     301  2026-11-21T08:04:02Z  2026-11-21T08:05:02Z",
                "produce_acks                        upgrade  metrics.disk    metrics-shipper         User:metrics        10.1.12.5     300  2026-11-21T08:05:02Z  2026-11-21T08:05:02Z",
                "produce_acks                        reject   payments        billing-batch           User:billing        10.1.7.30      42  2026-11-21T08:02:14Z  2026-11-21T08:03:11Z",
                "metadata.block_auto_topic_creation  upgrade  -               -                       -                   172.18.0.9      6  2026-11-21T08:02:52Z  2026-11-21T08:03:09Z",
                "create_topics                       upgrade  audit-trail     ops-admin               User:ops            10.1.9.2        1  2026-11-21T08:09:30Z  2026-11-21T08:09:30Z",
                "produce_acks                        close    demo-orders     legacy-fire-and-forget  User:orders-legacy  10.1.4.17       1  2026-11-21T08:06:20Z  2026-11-21T08:06:20Z",
                "deletes.protected_topics            reject   payments        ops-admin               User:ops            10.1.9.2        1  2026-11-21T08:04:30Z  2026-11-21T08:04:30Z",
                "create_topics                       reject   scratch-events  ops-admin               User:ops            10.1.9.2        1  2026-11-21T08:03:05Z  2026-11-21T08:03:05Z",
                "deletes.protected_topics            allow    scratch-events  ops-admin               User:ops            10.1.9.2        1  2026-11-21T08:09:52Z  2026-11-21T08:09:52Z",
                "11 groups, 2498 events; 19 lines read, 0 outside the time range, 1 skipped; 37 events dropped by the proxy (audit_dropped)",
            ],
        ),
        (
            "rule",
            &[
                "RULE                                ACTION   CLIENT ID               PRINCIPAL           SOURCE      COUNT  FIRST SEEN            LAST SEEN",
                "produce_acks                        upgrade  3 clients               2 principals        4 sources    2445  2026-11-21T08:02:11Z  2026-11-21T08:08:44Z",
                "produce_acks                        reject   billing-batch           User:billing        10.1.7.30      42  2026-11-21T08:02:14Z  2026-11-21T08:03:11Z",
                "metadata.block_auto_topic_creation  upgrade  -                       -                   172.18.0.9      6  2026-11-21T08:02:52Z  2026-11-21T08:03:09Z",
                "create_topics                       reject   ops-admin               User:ops            10.1.9.2        1  2026-11-21T08:03:05Z  2026-11-21T08:03:05Z",
                "create_topics                       upgrade  ops-admin               User:ops            10.1.9.2        1  2026-11-21T08:09:30Z  2026-11-21T08:09:30Z",
                "deletes.protected_topics            allow    ops-admin               User:ops            10.1.9.2        1  2026-11-21T08:09:52Z  2026-11-21T08:09:52Z",
                "deletes.protected_topics            reject   ops-admin               User:ops            10.1.9.2        1  2026-11-21T08:04:30Z  2026-11-21T08:04:30Z",
                "produce_acks                        close    legacy-fire-and-forget  User:orders-legacy  10.1.4.17       1  2026-11-21T08:06:20Z  2026-11-21T08:06:20Z",
                "8 groups, 2498 events; 19 lines read, 0 outside the time range, 1 skipped; 37 events dropped by the proxy (audit_dropped)",
            ],
        ),
    ];
    for (by, want) in cases {
        let out = kdp(&["report", "--by", by, SAMPLE], None);
        assert_lines(&out, want);
        assert_eq!(out.stderr, SKIPPED, "--by {by}");
    }
}

#[test]
fn report_as_json_has_the_table_rows_and_totals_on_stderr() {
    let out = kdp(&["report", "--format", "json", SAMPLE], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).expect("a JSON array");
    let rows = rows.as_array().expect("array");
    let keys: Vec<(&str, &str, u64)> = rows
        .iter()
        .map(|r| (r["key"].as_str().unwrap_or("-"), r["action"].as_str().expect("action"), r["count"].as_u64().expect("count")))
        .collect();
    assert_eq!(
        keys,
        [
            ("legacy-fire-and-forget", "upgrade", 2132),
            ("metrics-shipper", "upgrade", 301),
            ("billing-batch", "reject", 42),
            ("orders-replay", "upgrade", 12),
            ("-", "upgrade", 6),
            ("legacy-fire-and-forget", "close", 1),
            ("ops-admin", "reject", 1),
            ("ops-admin", "upgrade", 1),
            ("ops-admin", "allow", 1),
            ("ops-admin", "reject", 1),
        ]
    );
    assert_eq!(
        rows[0],
        serde_json::json!({
            "key": "legacy-fire-and-forget", "rule": "produce_acks", "action": "upgrade", "count": 2132, "lines": 4,
            "client_ids": ["legacy-fire-and-forget"], "principals": ["User:orders-legacy"],
            "sources": ["10.1.4.17", "10.1.4.18"], "topics": ["demo-orders"],
            "first_seen": "2026-11-21T08:02:11.532Z", "last_seen": "2026-11-21T08:03:11.601Z",
        })
    );
    assert_eq!(
        (&rows[4]["key"], &rows[4]["client_ids"], &rows[4]["topics"]),
        (&serde_json::Value::Null, &serde_json::json!([null]), &serde_json::json!([]))
    );
    assert_eq!(out.stderr, format!("{SKIPPED}{}\n", BY_CLIENT[BY_CLIENT.len() - 1]));

    let top = kdp(&["report", "--format", "json", "--top", "2", SAMPLE], None);
    let rows: serde_json::Value = serde_json::from_str(&top.stdout).expect("a JSON array");
    assert_eq!(rows.as_array().map(Vec::len), Some(2));
    assert!(top.stderr.ends_with("top 2 of 10 groups, 2498 events; 19 lines read, 0 outside the time range, 1 skipped; 37 events dropped by the proxy (audit_dropped)\n"), "{}", top.stderr);
}

#[test]
fn report_time_filters() {
    let window = kdp(&["report", "--since", "2026-11-21T08:05:00Z", "--until", "2026-11-21T09:08:00+01:00", "--by", "topic", SAMPLE], None);
    assert_lines(
        &window,
        &[
            "RULE          ACTION   TOPIC         CLIENT ID               PRINCIPAL           SOURCE     COUNT  FIRST SEEN            LAST SEEN",
            "produce_acks  upgrade  metrics.cpu   metrics-shipper         User:metrics        10.1.12.5    300  2026-11-21T08:05:02Z  2026-11-21T08:05:02Z",
            "produce_acks  upgrade  metrics.disk  metrics-shipper         User:metrics        10.1.12.5    300  2026-11-21T08:05:02Z  2026-11-21T08:05:02Z",
            "produce_acks  upgrade  metrics.mem   metrics-shipper         User:metrics        10.1.12.5    300  2026-11-21T08:05:02Z  2026-11-21T08:05:02Z",
            "produce_acks  close    demo-orders   legacy-fire-and-forget  User:orders-legacy  10.1.4.17      1  2026-11-21T08:06:20Z  2026-11-21T08:06:20Z",
            "produce_acks  upgrade  demo-orders   orders-replay           User:orders-legacy  10.1.4.40      1  2026-11-21T08:07:45Z  2026-11-21T08:07:45Z",
            "5 groups, 302 events; 19 lines read, 14 outside the time range, 1 skipped; 37 events dropped by the proxy (audit_dropped)",
        ],
    );
    // Durations count back from now: the sample (2026-11-21) lies within the last century.
    let all = kdp(&["report", "--since", "100y", SAMPLE], None);
    assert_lines(&all, BY_CLIENT);
    let none = kdp(&["report", "--until", "100y", SAMPLE], None);
    assert_lines(
        &none,
        &[
            "RULE  ACTION  CLIENT ID  PRINCIPAL  SOURCE  COUNT  FIRST SEEN  LAST SEEN",
            "0 groups, 0 events; 19 lines read, 18 outside the time range, 1 skipped; 0 events dropped by the proxy (audit_dropped)",
        ],
    );
    let after = kdp(&["report", "--since", "2026-11-21T08:09:40Z", SAMPLE], None);
    assert_eq!(after.stdout.lines().count(), 3, "{}", after.stdout);
    assert!(after.stdout.contains("deletes.protected_topics  allow"), "{}", after.stdout);
}

#[test]
fn report_reads_stdin_for_dash_and_several_inputs() {
    let sample = std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SAMPLE)).expect("sample");
    let out = kdp(&["report", "-"], Some(&sample));
    assert_lines(&out, BY_CLIENT);
    assert_eq!(out.stderr, "<stdin>:12: skipped: not JSON (EOF while parsing a string at line 1 column 41)\n");

    let twice = kdp(&["report", "--top", "1", SAMPLE, "-"], Some(&sample));
    assert_lines(
        &twice,
        &[
            "RULE          ACTION   CLIENT ID               PRINCIPAL           SOURCE     COUNT  FIRST SEEN            LAST SEEN",
            "produce_acks  upgrade  legacy-fire-and-forget  User:orders-legacy  2 sources   4264  2026-11-21T08:02:11Z  2026-11-21T08:03:11Z",
            "top 1 of 10 groups, 4996 events; 38 lines read, 0 outside the time range, 2 skipped; 74 events dropped by the proxy (audit_dropped)",
        ],
    );
    assert_eq!(twice.stderr.lines().count(), 2, "{}", twice.stderr);
}

#[test]
fn report_of_an_unreadable_file_exits_1_and_names_it() {
    let out = kdp(&["report", "tests/data/no-such-audit.jsonl"], None);
    assert_eq!(out.code, 1);
    assert!(out.stderr.starts_with("report: cannot read tests/data/no-such-audit.jsonl: "), "{}", out.stderr);
}

#[test]
fn help_and_version() {
    let top = kdp(&["--help"], None);
    assert_eq!(top.code, 0);
    for want in ["Usage: kafka-durability-proxy", "run", "check-config", "report", "--config <FILE>", "--check-config <FILE>", "--version"]
    {
        assert!(top.stdout.contains(want), "--help lacks {want}:\n{}", top.stdout);
    }
    let report = kdp(&["report", "--help"], None);
    assert_eq!(report.code, 0);
    for want in [
        "Usage: kafka-durability-proxy report [OPTIONS] <FILE>...",
        "--since <TIME>",
        "--by <BY>",
        "Grouping: each row is one (KEY, rule, action)",
    ] {
        assert!(report.stdout.contains(want), "report --help lacks {want}:\n{}", report.stdout);
    }
    for sub in ["run", "check-config"] {
        let help = kdp(&[sub, "--help"], None);
        assert_eq!(help.code, 0);
        assert!(help.stdout.contains(&format!("Usage: kafka-durability-proxy {sub}")), "{}", help.stdout);
    }
    let version = kdp(&["--version"], None);
    assert_eq!((version.code, version.stdout.as_str()), (0, format!("kafka-durability-proxy {}\n", env!("CARGO_PKG_VERSION")).as_str()));
}

#[test]
fn usage_errors_exit_2_and_name_the_argument() {
    let cases: &[(&[&str], &str)] = &[
        (&["report", "--by", "colour", SAMPLE], "invalid value 'colour' for '--by <BY>'"),
        (&["report", "--format", "xml", SAMPLE], "invalid value 'xml' for '--format <FORMAT>'"),
        (&["report", "--top", "0", SAMPLE], "invalid value '0' for '--top <N>'"),
        (&["report", "--since", "soon", SAMPLE], "invalid value 'soon' for '--since <TIME>'"),
        (&["report", "--frobnicate", SAMPLE], "unexpected argument '--frobnicate'"),
        (&["report"], "<FILE>..."),
        (&["--config", "a.yaml", "--check-config", "b.yaml"], "'--config <FILE>' cannot be used with '--check-config <FILE>'"),
        (&["--config", "a.yaml", "report", SAMPLE], "the subcommand 'report' cannot be used with '--config <FILE>'"),
        (&["--config"], "a value is required for '--config <FILE>'"),
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        (&[], "Usage: kafka-durability-proxy"),
    ];
    for (args, want) in cases {
        let out = kdp(args, None);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(want), "{args:?}: stderr lacks {want:?}:\n{}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
    }
}

#[test]
fn check_config_in_both_forms() {
    for args in [["--check-config", "config/proxy.example.yaml"], ["check-config", "config/proxy.example.yaml"]] {
        let out = kdp(&args, None);
        assert_eq!((out.code, out.stdout.as_str()), (0, "config/proxy.example.yaml: configuration is valid\n"), "{args:?}: {}", out.stderr);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "listen:\n  bogus: 1\n").expect("write");
    let bad = bad.to_str().expect("utf-8 path");
    for args in [["--check-config", bad], ["check-config", bad], ["--config", bad]] {
        let out = kdp(&args, None);
        assert_eq!(out.code, 2, "{args:?}");
        assert!(out.stderr.starts_with(&format!("{bad}: invalid configuration")), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("unknown key `listen.bogus`"), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn config_and_run_config_start_the_proxy() {
    let dir = tempfile::tempdir().expect("tempdir");
    for form in [&["--config"][..], &["run", "--config"][..]] {
        let port = free_port();
        let cfg = dir.path().join(format!("proxy-{port}.yaml"));
        let text = format!(
            "listen:\n  bind_host: 127.0.0.1\n  advertised_host: 127.0.0.1\n  bootstrap_port: {port}\n  broker_port_base: {}\n\
             upstream:\n  bootstrap_servers: [\"127.0.0.1:1\"]\n  connect_timeout_ms: 200\naudit:\n  sink: file\n  path: {}\n",
            port + 1,
            dir.path().join("audit.jsonl").display()
        );
        std::fs::write(&cfg, text).expect("write config");
        let child =
            Command::new(proxy_bin()).args(form).arg(&cfg).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn the proxy");
        let _proc = Proc { child };
        wait_for_port(port, &format!("proxy started with {form:?}"));
    }
}

#[test]
fn report_totals_what_a_real_proxy_wrote() {
    // The sample above is written by hand; this log is the proxy's own, from real clients.
    let mut bed = crate::support::Bed::start("");
    bed.create_topic("reported");
    let produce = |lib: &str, id: &str, acks: &str, n: usize| crate::with_tansu::produce_with(&bed, lib, acks, id, "reported", n, &[]);
    assert_eq!(produce("kafka-python", "kp-weak", "1", 12)["delivered"], 12);
    assert_eq!(produce("confluent", "ck-zero", "0", 7)["errors"], serde_json::json!([]));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    bed.proxy.stop();
    let log = bed.proxy.dir.join("audit.jsonl");
    let out = kdp(&["report", "--format", "json", log.to_str().expect("utf-8 path")], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).expect("a JSON array");
    let count = |key: &str, rule: &str, action: &str| {
        rows.as_array()
            .expect("array")
            .iter()
            .find(|r| r["key"] == key && r["rule"] == rule && r["action"] == action)
            .and_then(|r| r["count"].as_u64())
    };
    assert_eq!(count("kp-weak", "produce_acks", "upgrade"), Some(12), "one upgrade per request: {rows:#}");
    assert_eq!(count("kp-weak", "idempotence", "audit"), Some(12), "kafka-python's batches carry no producer id");
    assert!(count("ck-zero", "produce_acks", "upgrade").is_some_and(|n| n >= 1), "{rows:#}");
    assert!(out.stderr.contains(" 0 skipped;"), "every line the proxy wrote is read: {}", out.stderr);
}

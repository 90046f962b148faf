//! Old clients that never send ApiVersions and speak admin versions older than kafka-protocol
//! carries (kafka-go 0.2.1: CreateTopics v0; Sarama 1.22 in Kafka 0.10.2 mode: CreateTopics v0,
//! DeleteTopics v0; in 0.11 mode: CreateTopics v1, Produce v3), Debian's Go packages, through the
//! proxy to tansu: judged by the same rules, answered in their own version's shape, never closed.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::support::{kclient, Bed};

/// Builds the Go drivers once per test run (tests/clients/go/build.sh skips what is current).
fn go_bin(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let out = root.join("target/go-clients");
        let status = Command::new(root.join("tests/clients/go/build.sh")).arg(&out).status().expect("run build.sh");
        assert!(status.success(), "Go test clients failed to build (scripts/setup.sh installs golang-go and the Debian packages)");
        out
    });
    dir.join(name)
}

fn go(bin: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(go_bin(bin)).args(args).args(["--timeout", "60s"]).output().expect("run go client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("{bin} {args:?} printed no JSON ({e}): {stdout} {}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success(), "{bin} {args:?} did not complete (the proxy closed on it?): {v}");
    v
}

fn code(v: &serde_json::Value, topic: &str) -> i64 {
    v["results"][topic]["code"].as_i64().unwrap_or_else(|| panic!("no result for {topic}: {v}"))
}

#[test]
fn old_go_clients_create_and_delete_topics_under_the_same_rules() {
    let mut bed = Bed::start("policies:\n  deletes:\n    protected_topics: ['keep-*']\n");
    let addr = bed.proxy.addr();
    let create = |bin: &str, version: Option<&str>, topic: &str, rf: &str, isr: bool| {
        let mut args = vec!["create-topic", "--bootstrap", &addr, "--topic", topic, "--rf", rf, "--client-id", "old-go-admin"];
        if isr {
            args.extend(["--config", "min.insync.replicas=2"]);
        }
        if let Some(v) = version {
            args.extend(["--kafka-version", v]);
        }
        go(bin, &args)
    };
    // kafka-go 0.2.1 (CreateTopics v0) and Sarama 0.10.2.0 (v0), 0.11.0.0 (v1).
    for (bin, version, prefix) in
        [("kafkago-client", None, "kg"), ("sarama-client", Some("0.10.2.0"), "s10"), ("sarama-client", Some("0.11.0.0"), "s11")]
    {
        let thin = create(bin, version, &format!("{prefix}-thin"), "1", false);
        assert_eq!(code(&thin, &format!("{prefix}-thin")), 44, "{prefix}: RF 1 refused with POLICY_VIOLATION: {thin}");
        let sound = create(bin, version, &format!("{prefix}-sound"), "3", true);
        assert_eq!(code(&sound, &format!("{prefix}-sound")), 0, "{prefix}: a durable topic is created: {sound}");
    }
    // CreateTopics v1 carries a message: Sarama shows it.
    let thin = create("sarama-client", Some("0.11.0.0"), "s11-thin-again", "1", false);
    let msg = thin["results"]["s11-thin-again"]["message"].as_str().unwrap_or_default().to_owned();
    assert!(msg.contains("replication factor 1 is below the required 3"), "{thin}");
    // DeleteTopics v0 (Sarama 0.10.2.0): protected topics stay.
    bed.create_topic("keep-ledger");
    bed.create_topic("scratch-old");
    let delete =
        |topic: &str| go("sarama-client", &["delete-topic", "--bootstrap", &addr, "--topic", topic, "--kafka-version", "0.10.2.0"]);
    assert_eq!(code(&delete("keep-ledger"), "keep-ledger"), 44);
    assert_eq!(code(&delete("scratch-old"), "scratch-old"), 0);
    let listed = kclient(&["metadata", "--bootstrap", &addr])["topics"].to_string();
    for (topic, present) in [
        ("kg-sound", true),
        ("s10-sound", true),
        ("s11-sound", true),
        ("kg-thin", false),
        ("s10-thin", false),
        ("keep-ledger", true),
        ("scratch-old", false),
    ] {
        assert_eq!(listed.contains(&format!("\"{topic}\"")), present, "{topic} in {listed}");
    }
    // The broker was asked only about what the rules allow, in the newest version it offers.
    let seen = bed.relay.seen();
    let creates: Vec<i16> =
        seen.iter().filter(|s| s.api_key == 19 && s.client_id.as_deref() == Some("old-go-admin")).map(|s| s.api_version).collect();
    assert_eq!(creates, vec![7, 7, 7], "one forwarded create per durable topic, in tansu's newest CreateTopics");
    bed.proxy.stop();
    let audit = bed.proxy.audit();
    for version in [0, 1] {
        assert!(
            audit.iter().any(|l| l["event"] == "create_topic"
                && l["action"] == "reject"
                && l["api_version"] == version
                && l["client_id"] == "old-go-admin"),
            "CreateTopics v{version} refusals are audited: {audit:#?}"
        );
    }
    assert!(audit.iter().any(|l| l["event"] == "delete_topic" && l["action"] == "reject" && l["api_version"] == 0), "{audit:#?}");
}

#[test]
fn sarama_in_kafka_0_11_mode_has_its_acks1_produce_upgraded() {
    let bed = Bed::start("");
    bed.create_topic("old-produce");
    let r = go(
        "sarama-client",
        &[
            "produce",
            "--bootstrap",
            &bed.proxy.addr(),
            "--topic",
            "old-produce",
            "--acks",
            "1",
            "--count",
            "10",
            "--kafka-version",
            "0.11.0.0",
            "--client-id",
            "sarama-legacy",
        ],
    );
    assert_eq!(r["delivered"], 10, "{r}");
    let produces = bed.relay.produces("sarama-legacy");
    assert!(!produces.is_empty() && produces.iter().all(|s| s.acks == Some(-1) && s.api_version == 3), "{produces:?}");
    let read = kclient(&["consume", "--bootstrap", &bed.proxy.addr(), "--topic", "old-produce", "--expect", "10", "--group", "g-old"]);
    assert_eq!(read["count"], 10, "{read}");
}

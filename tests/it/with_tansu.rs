//! Against tansu with clients nobody here wrote.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::{kclient, raw_exchange, Bed};

const WEAK: [(&str, &str, &str); 4] =
    [("confluent", "0", "ck-acks0"), ("confluent", "1", "ck-acks1"), ("kafka-python", "0", "kp-acks0"), ("kafka-python", "1", "kp-acks1")];
const STRONG: [(&str, &str, &str); 2] = [("confluent", "all", "ck-all"), ("kafka-python", "all", "kp-all")];
const PER_CLIENT: usize = 20;

fn produce(bed: &Bed, lib: &str, acks: &str, client_id: &str, topic: &str, count: usize) -> serde_json::Value {
    produce_with(bed, lib, acks, client_id, topic, count, &[])
}

/// `produce` with extra client options (e.g. `--conf enable.idempotence=true`).
pub fn produce_with(bed: &Bed, lib: &str, acks: &str, client_id: &str, topic: &str, count: usize, extra: &[&str]) -> serde_json::Value {
    let (addr, count) = (bed.proxy.addr(), count.to_string());
    let mut args = crate::support::produce_args(&addr, lib, acks, client_id, topic, &count);
    args.extend_from_slice(extra);
    kclient(&args)
}

fn consume_all(bed: &Bed, topic: &str, expect: usize) -> Vec<String> {
    consume_within(bed, topic, expect, 30)
}

fn consume_within(bed: &Bed, topic: &str, expect: usize, secs: u32) -> Vec<String> {
    let (group, expect, secs) = (format!("g-{topic}"), expect.to_string(), secs.to_string());
    let args = ["consume", "--bootstrap", &bed.proxy.addr(), "--topic", topic, "--expect", &expect, "--group", &group, "--timeout", &secs];
    let r = kclient(&args);
    r["values"].as_array().expect("values").iter().map(|v| v.as_str().unwrap_or_default().to_owned()).collect()
}

/// Sum of events an audit log stands for, per (client id, action), over first and summary lines.
fn audit_counts(lines: &[serde_json::Value], event: &str) -> BTreeMap<(String, String), u64> {
    let mut m = BTreeMap::new();
    for l in lines.iter().filter(|l| l["event"] == event) {
        let key = (l["client_id"].as_str().unwrap_or("-").to_owned(), l["action"].as_str().unwrap_or("-").to_owned());
        *m.entry(key).or_default() += l["count"].as_u64().expect("count");
    }
    m
}

#[test]
fn every_weak_produce_reaches_the_broker_as_acks_all_and_is_readable() {
    let mut bed = Bed::start("");
    let topic = "orders";
    bed.create_topic(topic);
    for (lib, acks, id) in WEAK.iter().chain(STRONG.iter()) {
        let r = produce(&bed, lib, acks, id, topic, PER_CLIENT);
        assert_eq!(r["errors"], serde_json::json!([]), "{id}: {r}");
    }
    // The broker received acks=-1 on every Produce, from every client.
    for (_, _, id) in WEAK.iter().chain(STRONG.iter()) {
        let produces = bed.relay.produces(id);
        assert!(produces.len() >= PER_CLIENT, "{id}: broker saw {} Produce requests", produces.len());
        assert!(produces.iter().all(|s| s.acks == Some(-1)), "{id}: {produces:?}");
    }
    // Every record, from acks=0 producers too, is readable back through the proxy.
    let total = PER_CLIENT * (WEAK.len() + STRONG.len());
    let values = consume_all(&bed, topic, total);
    let missing: Vec<String> = WEAK
        .iter()
        .chain(STRONG.iter())
        .flat_map(|(_, _, id)| (0..PER_CLIENT).map(move |i| format!("{id}-{i}")))
        .filter(|v| !values.contains(v))
        .collect();
    assert!(missing.is_empty(), "consumed {} of {total}; missing {missing:?}", values.len());
    for (_, _, id) in WEAK.iter().chain(STRONG.iter()) {
        for i in 0..PER_CLIENT {
            assert!(values.contains(&format!("{id}-{i}")), "{id}-{i} missing");
        }
    }
    // The audit log names each weak client once at once, then summaries; counts add up to what
    // the broker saw from that client.
    bed.proxy.stop();
    let lines = bed.proxy.audit();
    let counts = audit_counts(&lines, "weak_acks");
    for (_, acks, id) in WEAK {
        let is_first = |l: &&serde_json::Value| l["kind"] == "first" && l["client_id"] == id && l["event"] == "weak_acks";
        let firsts = lines.iter().filter(is_first).count();
        assert_eq!(firsts, 1, "{id} first lines: {lines:#?}");
        let first = lines.iter().find(is_first).expect("first");
        assert_eq!(first["action"], "upgrade");
        assert_eq!(first["detail"]["acks_from"].as_i64(), acks.parse::<i64>().ok());
        assert_eq!(first["detail"]["acks_to"], -1);
        assert_eq!(first["topics"], serde_json::json!([topic]));
        assert!(first["client_addr"].as_str().is_some_and(|a| a.starts_with("127.0.0.1:")));
        let n = counts.get(&(id.to_owned(), "upgrade".to_owned())).copied().unwrap_or(0);
        assert_eq!(n as usize, bed.relay.produces(id).len(), "{id}: audit count vs broker");
        assert!(lines.iter().any(|l| l["kind"] == "summary" && l["client_id"] == id), "{id} has no summary line");
    }
    for (_, _, id) in STRONG {
        assert!(!lines.iter().any(|l| l["client_id"] == id && l["event"] == "weak_acks"), "{id} is durable: no weak_acks line");
    }
}

#[test]
fn clients_only_ever_learn_proxy_addresses() {
    let bed = Bed::start("");
    bed.create_topic("meta");
    let want = serde_json::json!([format!("127.0.0.1:{}", bed.broker_port)]);
    for lib in ["confluent", "kafka-python"] {
        let r = kclient(&["metadata", "--lib", lib, "--bootstrap", &bed.proxy.addr()]);
        assert_eq!(r["brokers"], want, "{lib}: {r}");
    }
    // Everything after bootstrap went through the broker listener, none around the proxy: the
    // relay (the broker's advertised address) saw every request come from the proxy.
    assert!(bed.relay.seen().iter().any(|s| s.api_key == 3), "Metadata went through");
}

#[test]
fn reject_answers_acks1_with_invalid_required_acks_and_closes_acks0() {
    let mut bed = Bed::start("policies:\n  produce_acks:\n    action: reject\n");
    bed.create_topic("strict");
    let r = produce(&bed, "confluent", "1", "ck-reject", "strict", 3);
    assert_eq!(r["delivered"], 0, "{r}");
    let errs = r["errors"].as_array().expect("errors");
    assert_eq!(errs.len(), 3, "{r}");
    assert!(errs.iter().all(|e| e["code"] == 21), "librdkafka surfaces INVALID_REQUIRED_ACKS: {r}");
    let r = produce(&bed, "kafka-python", "1", "kp-reject", "strict", 2);
    assert_eq!(r["delivered"], 0, "{r}");
    assert!(
        r["errors"].as_array().expect("errors").iter().all(|e| e["name"] == "InvalidRequiredAcksError"
            && e["str"].as_str().is_some_and(|s| s.contains("durability proxy rule produce_acks: acks=1 is not allowed"))),
        "kafka-python surfaces InvalidRequiredAcksError with the proxy's message: {r}"
    );
    // acks=0 cannot be answered: audited and the connection closed; nothing reaches the broker.
    let _ = produce(&bed, "kafka-python", "0", "kp-reject0", "strict", 1);
    let r = produce(&bed, "confluent", "all", "ck-good", "strict", 2);
    assert_eq!(r["delivered"], 2, "durable producers are unaffected: {r}");
    for id in ["ck-reject", "kp-reject", "kp-reject0"] {
        assert!(bed.relay.produces(id).is_empty(), "{id}: the broker must never see a rejected request");
    }
    assert_eq!(consume_all(&bed, "strict", 2).len(), 2);
    bed.proxy.stop();
    let counts = audit_counts(&bed.proxy.audit(), "weak_acks");
    assert_eq!(counts.get(&("ck-reject".into(), "reject".into())), Some(&3), "{counts:?}");
    assert_eq!(counts.get(&("kp-reject".into(), "reject".into())), Some(&2), "{counts:?}");
    assert!(counts.get(&("kp-reject0".into(), "reject".into())).is_some_and(|n| *n >= 1), "{counts:?}");
    let lines = bed.proxy.audit();
    let closed = lines.iter().find(|l| l["client_id"] == "kp-reject0" && l["event"] == "weak_acks").expect("acks=0 reject audited");
    assert_eq!(closed["detail"]["records_dropped"], 1, "the audit counts the records the producer believes sent: {closed}");
}

#[test]
fn audit_mode_and_exemptions_forward_unchanged_and_acks0_answers_are_dropped() {
    let mut bed = Bed::start("policies:\n  produce_acks:\n    action: audit\n    exempt:\n      client_ids: ['legacy-*']\n");
    bed.create_topic("loose");
    // tansu answers acks=0 requests; the proxy must drop those answers (the client expects none)
    // and keep the connection in step for the requests that follow.
    for (lib, acks, id) in [("confluent", "0", "ck-a0"), ("kafka-python", "0", "kp-a0"), ("confluent", "1", "legacy-app")] {
        let r = produce(&bed, lib, acks, id, "loose", 10);
        assert_eq!(r["errors"], serde_json::json!([]), "{id}: {r}");
    }
    for (id, acks) in [("ck-a0", 0), ("kp-a0", 0), ("legacy-app", 1)] {
        let p = bed.relay.produces(id);
        assert!(!p.is_empty() && p.iter().all(|s| s.acks == Some(acks)), "{id}: forwarded unchanged: {p:?}");
    }
    // acks=0 forwarded unchanged is lossy by nature (direct to tansu, fire-and-forget producers
    // lost 22 of 60 records when measured): only the acks=1 producer's records are owed back.
    let values = consume_within(&bed, "loose", 30, 8);
    for i in 0..10 {
        assert!(values.contains(&format!("legacy-app-{i}")), "legacy-app-{i} missing: {values:?}");
    }
    // A request after the acks=0 ones is answered: the connection stayed in step.
    let r = produce(&bed, "kafka-python", "all", "after-acks0", "loose", 2);
    assert_eq!(r["delivered"], 2, "{r}");
    bed.proxy.stop();
    let lines = bed.proxy.audit();
    let counts = audit_counts(&lines, "weak_acks");
    assert!(counts.contains_key(&("ck-a0".into(), "audit".into())), "{counts:?}");
    assert!(counts.contains_key(&("legacy-app".into(), "exempt".into())), "{counts:?}");
    assert!(!bed.proxy.log().contains("WARN"), "no connection errors expected:\n{}", bed.proxy.log());
}

#[test]
fn kcat_works_through_the_proxy() {
    let kcat = std::process::Command::new("kcat").arg("-V").output();
    let Ok(v) = kcat else { panic!("kcat is not installed (apt-get install kcat; .ci/run does)") };
    assert!(v.status.success());
    let bed = Bed::start("");
    bed.create_topic("kc");
    let mut child = std::process::Command::new("kcat")
        .args(["-b", &bed.proxy.addr(), "-P", "-t", "kc", "-X", "acks=1", "-X", "client.id=kcat-legacy"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kcat");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        for i in 0..5 {
            writeln!(stdin, "kcat-{i}").expect("write");
        }
    }
    let out = child.wait_with_output().expect("kcat");
    assert!(out.status.success(), "kcat produce: {}", String::from_utf8_lossy(&out.stderr));
    let p = bed.relay.produces("kcat-legacy");
    assert!(!p.is_empty() && p.iter().all(|s| s.acks == Some(-1)), "{p:?}");
    let values = consume_all(&bed, "kc", 5);
    assert_eq!(values.len(), 5, "{values:?}");
}

#[test]
fn malformed_input_closes_only_that_connection_with_a_log_line() {
    let bed = Bed::start("");
    bed.create_topic("safe");
    // A TLS ClientHello on the plaintext port.
    let (_, closed) = raw_exchange(bed.proxy.bootstrap, &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]);
    assert!(closed, "the proxy closes a connection that speaks TLS");
    // A frame whose header is cut short.
    let (_, closed) = raw_exchange(bed.proxy.bootstrap, &[0, 0, 0, 3, 0, 0, 0]);
    assert!(closed);
    std::thread::sleep(Duration::from_millis(200));
    let log = bed.proxy.log();
    assert!(log.contains("TLS handshake"), "{log}");
    assert!(log.contains("malformed request header"), "{log}");
    assert!(log.contains("peer=127.0.0.1:"), "log lines name the peer: {log}");
    assert!(log.contains("side=client"), "{log}");
    let r = produce(&bed, "confluent", "all", "after", "safe", 3);
    assert_eq!(r["delivered"], 3, "others are unaffected: {r}");
}

#[test]
fn large_acks_all_requests_are_forwarded_while_they_arrive_and_every_record_is_read_back() {
    let bed = Bed::start("");
    bed.create_topic("large");
    // librdkafka batching 20,000 small records into requests of hundreds of KiB.
    let conf = ["--conf", "linger.ms=200", "--conf", "batch.size=1000000", "--conf", "batch.num.messages=100000"];
    let addr = bed.proxy.addr();
    let mut args = vec!["produce", "--bootstrap", &addr, "--topic", "large", "--acks", "all", "--client-id", "bulk", "--prefix", "big"];
    args.extend(["--count", "20000", "--message-timeout-ms", "60000"]);
    args.extend(conf);
    let r = kclient(&args);
    assert_eq!(r["delivered"], 20_000, "{r}");
    let values = consume_within(&bed, "large", 20_000, 60);
    let distinct: std::collections::HashSet<_> = values.iter().collect();
    assert_eq!((values.len(), distinct.len()), (20_000, 20_000));
    let m = crate::observability::scrape(&bed.proxy);
    let cut = m.get("kdp_cut_through_requests_total").copied().unwrap_or(0.0);
    assert!(cut >= 1.0, "some requests went through cut-through: {cut}");
    // What only observes still sees them: the batches carry no producer id (idempotence off).
    std::thread::sleep(Duration::from_millis(1500));
    let audit = bed.proxy.audit();
    assert!(audit.iter().any(|l| l["event"] == "non_idempotent_producer" && l["client_id"] == "bulk"), "{audit:?}");
}

#[test]
fn idempotence_reject_refuses_producers_without_a_producer_id_with_the_rules_message() {
    let mut bed = Bed::start("policies:\n  idempotence:\n    action: reject\n    exempt:\n      client_ids: ['legacy-*']\n");
    bed.create_topic("idem");
    // kafka-python 2.x sends no producer id unless asked: refused, with the proxy's message.
    let r = produce(&bed, "kafka-python", "all", "kp-plain", "idem", 2);
    assert_eq!(r["delivered"], 0, "{r}");
    assert!(
        r["errors"].as_array().expect("errors").iter().all(|e| e["name"] == "PolicyViolationError"
            && e["str"].as_str().is_some_and(|s| s.contains("durability proxy rule idempotence: records without a producer id"))),
        "kafka-python surfaces PolicyViolationError with the proxy's message: {r}"
    );
    // librdkafka without idempotence: POLICY_VIOLATION (44).
    let r = produce_with(&bed, "confluent", "all", "ck-plain", "idem", 2, &["--conf", "enable.idempotence=false"]);
    assert_eq!(r["delivered"], 0, "{r}");
    assert!(r["errors"].as_array().expect("errors").iter().all(|e| e["code"] == 44), "librdkafka surfaces POLICY_VIOLATION: {r}");
    // Idempotent producers and exempt clients pass.
    let r = produce_with(&bed, "confluent", "all", "ck-idem", "idem", 3, &["--conf", "enable.idempotence=true", "--conf", "retries=5"]);
    assert_eq!(r["delivered"], 3, "an idempotent producer is unaffected: {r}");
    let r = produce(&bed, "kafka-python", "all", "legacy-app", "idem", 2);
    assert_eq!(r["delivered"], 2, "an exempt client passes: {r}");
    for id in ["kp-plain", "ck-plain"] {
        assert!(bed.relay.produces(id).is_empty(), "{id}: the broker must never see a refused request");
    }
    assert_eq!(consume_all(&bed, "idem", 5).len(), 5);
    bed.proxy.stop();
    let lines = bed.proxy.audit();
    let action =
        |id: &str| lines.iter().find(|l| l["event"] == "non_idempotent_producer" && l["client_id"] == id).map(|l| l["action"].clone());
    assert_eq!(action("kp-plain"), Some("reject".into()), "{lines:#?}");
    assert_eq!(action("ck-plain"), Some("reject".into()));
    assert_eq!(action("legacy-app"), Some("exempt".into()));
    assert_eq!(action("ck-idem"), None, "an idempotent producer is not reported");
}

#[test]
fn offset_commits_of_real_consumers_are_audited_when_the_detector_is_on() {
    let mut bed = Bed::start("detectors:\n  offset_commits: true\n");
    bed.create_topic("committed");
    assert_eq!(produce(&bed, "confluent", "all", "ck-commits", "committed", 4)["delivered"], 4);
    for (lib, group) in [("confluent", "g-ck"), ("kafka-python", "g-kp")] {
        let addr = bed.proxy.addr();
        let args = ["consume", "--lib", lib, "--bootstrap", &addr, "--topic", "committed", "--expect", "4", "--group", group, "--commit"];
        let r = kclient(&args);
        assert_eq!(r["count"], 4, "{lib}: {r}");
        assert_eq!(r["errors"], serde_json::json!([]), "{lib}: {r}");
    }
    bed.proxy.stop();
    let lines = bed.proxy.audit();
    for group in ["g-ck", "g-kp"] {
        let commit = lines
            .iter()
            .find(|l| l["event"] == "offset_commit" && l["detail"]["group"] == group)
            .unwrap_or_else(|| panic!("no offset_commit for {group}: {lines:#?}"));
        assert_eq!(commit["topics"], serde_json::json!(["committed"]), "{commit}");
        assert_eq!((commit["detail"]["partition"].as_i64(), commit["detail"]["offset"].as_i64()), (Some(0), Some(4)), "{commit}");
        assert!(commit["detail"]["member"].as_str().is_some_and(|m| !m.is_empty()), "the member is named: {commit}");
    }
}

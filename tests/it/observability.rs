//! What an operator sees, with real parts: /metrics scraped over HTTP and parsed by Prometheus's
//! own Python parser, checked by promtool and scraped by a real Prometheus server; /readyz
//! through a drain; the detectors and the audit stream against tansu with confluent-kafka and
//! kafka-python (and the scripted broker for what tansu never answers).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{free_port, kclient, Bed, Proc, Proxy};

/// GET over plain HTTP/1.1: (status, body).
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    http_get_at("127.0.0.1", port, path)
}

/// GET from `host:port`; status 0 when nothing answers.
pub fn http_get_at(host: &str, port: u16, path: &str) -> (u16, String) {
    let Ok(mut s) = std::net::TcpStream::connect((host, port)) else { return (0, String::new()) };
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").expect("request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("response");
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// The samples of a scrape, parsed by the prometheus_client library: `name{k="v",...}` → value,
/// labels sorted by name.
pub fn scrape(proxy: &Proxy) -> BTreeMap<String, f64> {
    let port = proxy.admin.expect("admin endpoint");
    let script = "import json,sys,urllib.request\nfrom prometheus_client.parser import text_string_to_metric_families as parse\n\
                  text=urllib.request.urlopen(sys.argv[1]).read().decode()\nout={}\n\
                  for fam in parse(text):\n    for s in fam.samples:\n        labels=','.join(f'{k}=\"{v}\"' for k,v in sorted(s.labels.items()))\n        out[s.name+('{'+labels+'}' if labels else '')]=s.value\n\
                  print(json.dumps(out))";
    let out = Command::new("python3").args(["-c", script, &format!("http://127.0.0.1:{port}/metrics")]).output().expect("python");
    assert!(out.status.success(), "scrape failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

fn value(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

fn audit_sum(lines: &[serde_json::Value], event: &str, action: &str, client: &str) -> u64 {
    lines
        .iter()
        .filter(|l| l["event"] == event && l["action"] == action && l["client_id"] == client)
        .map(|l| l["count"].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn metrics_move_with_traffic_and_agree_with_the_audit_log() {
    let mut bed = Bed::start("");
    bed.create_topic("observed");
    let before = scrape(&bed.proxy);
    assert_eq!(value(&before, "kdp_ready"), 1.0, "discovery reached tansu");
    let addr = bed.proxy.addr();
    let produce = |lib: &str, id: &str, extra: &[&str]| {
        let mut args = crate::support::produce_args(&addr, lib, "1", id, "observed", "10");
        args.extend_from_slice(extra);
        kclient(&args)
    };
    let kp = produce("kafka-python", "kp-plain", &[]);
    assert_eq!(kp["delivered"], 10, "{kp}");
    let ck = produce("confluent", "ck-idempotent", &["--acks", "all", "--conf", "enable.idempotence=true", "--conf", "retries=5"]);
    assert_eq!(ck["delivered"], 10, "{ck}");
    let after = scrape(&bed.proxy);
    let upgrades = value(&after, "kdp_policy_verdicts_total{action=\"upgrade\",rule=\"produce_acks\"}");
    assert!(upgrades >= 10.0, "kafka-python's acks=1 requests were upgraded: {after:?}");
    assert!(value(&after, "kdp_requests_total{api=\"Produce\"}") - value(&before, "kdp_requests_total{api=\"Produce\"}") >= 20.0);
    assert!(value(&after, "kdp_request_duration_seconds_count{api=\"Produce\"}") >= 20.0, "latency observed per request");
    assert!(value(&after, "kdp_connections_accepted_total{listener=\"bootstrap\"}") >= 2.0);
    assert!(value(&after, "kdp_non_idempotent_batches_total") >= 10.0, "kafka-python's batches carry no producer id");
    // The audit log says the same as the counters (summaries come at the end of each window).
    std::thread::sleep(Duration::from_millis(1500));
    bed.proxy.stop();
    let lines = bed.proxy.audit();
    assert_eq!(audit_sum(&lines, "weak_acks", "upgrade", "kp-plain") as f64, upgrades, "verdict counter = audit events: {lines:#?}");
    assert_eq!(audit_sum(&lines, "non_idempotent_producer", "audit", "kp-plain"), 10, "one per Produce request");
    assert_eq!(
        audit_sum(&lines, "non_idempotent_producer", "audit", "ck-idempotent"),
        0,
        "librdkafka with enable.idempotence is told apart"
    );
    assert!(!lines.iter().any(|l| l["event"] == "auto_topic_creation"), "every topic named exists: no auto-create noise");
}

#[test]
fn promtool_and_a_real_prometheus_accept_the_endpoint() {
    let bed = Bed::start("");
    bed.create_topic("scraped");
    let port = bed.proxy.admin.expect("admin");
    let (status, text) = http_get(port, "/metrics");
    assert_eq!(status, 200);
    let mut check = Command::new("promtool").args(["check", "metrics"]).stdin(Stdio::piped()).output_with_stdin(&text);
    assert!(check.status.success(), "promtool: {}{}", String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
    check.stdout.clear();
    // A real Prometheus scrapes it every second; its query API then has the proxy's series.
    let dir = tempfile::tempdir().expect("dir");
    let prom_port = free_port();
    let cfg = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: kdp\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    );
    std::fs::write(dir.path().join("prometheus.yml"), cfg).expect("config");
    let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start prometheus (apt-get install prometheus; scripts/setup.sh does)");
    let _prom = Proc { child };
    let deadline = Instant::now() + Duration::from_secs(30);
    let query = |q: &str| http_get(prom_port, &format!("/api/v1/query?query={q}")).1;
    loop {
        let up = query("up%7Bjob%3D%22kdp%22%7D");
        let requests = query("kdp_requests_total%7Bapi%3D%22CreateTopics%22%7D");
        if up.contains("\"value\":[") && up.contains(",\"1\"]") && requests.contains(",\"1\"]") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus never scraped the proxy: up={up} requests={requests}\n{}",
            std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

trait WithStdin {
    fn output_with_stdin(&mut self, input: &str) -> std::process::Output;
}

impl WithStdin for Command {
    fn output_with_stdin(&mut self, input: &str) -> std::process::Output {
        let mut child = self.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
        child.wait_with_output().expect("wait")
    }
}

#[test]
fn readyz_says_503_while_draining_before_the_listeners_close() {
    let mut bed = Bed::start("limits:\n  shutdown_delay_ms: 1500\n");
    let port = bed.proxy.admin.expect("admin");
    assert_eq!(http_get(port, "/healthz").0, 200);
    assert_eq!(http_get(port, "/readyz").0, 200);
    let _ = Command::new("kill").arg("-TERM").arg(bed.proxy.proc.child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while http_get(port, "/readyz").0 != 503 {
        assert!(Instant::now() < deadline, "readyz never turned 503");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(std::net::TcpStream::connect(("127.0.0.1", bed.proxy.bootstrap)).is_ok(), "listeners still accept while not ready");
    assert_eq!(http_get(port, "/healthz").0, 200, "alive all along");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", bed.proxy.bootstrap)).is_ok() {
        assert!(Instant::now() < deadline, "listeners never closed");
        std::thread::sleep(Duration::from_millis(50));
    }
    bed.proxy.stop();
    assert!(bed.proxy.log().contains("/readyz answers 503"), "{}", bed.proxy.log());
}

#[test]
fn auto_creation_is_audited_only_where_it_prevented_a_topic() {
    let mut bed = Bed::start("");
    bed.create_topic("exists");
    for (topic, id) in [("exists", "to-existing"), ("missing-topic", "to-missing")] {
        let r = kclient(&[
            "produce",
            "--bootstrap",
            &bed.proxy.addr(),
            "--topic",
            topic,
            "--client-id",
            id,
            "--count",
            "1",
            "--message-timeout-ms",
            "3000",
        ]);
        assert_eq!(r["delivered"], if topic == "exists" { 1 } else { 0 }, "{r}");
    }
    let m = scrape(&bed.proxy);
    assert!(value(&m, "kdp_auto_topic_creation_blocked_total") >= 2.0, "every clearing is counted");
    assert!(value(&m, "kdp_auto_topic_creation_prevented_total") >= 1.0);
    bed.proxy.stop();
    let lines = bed.proxy.audit();
    let auto: Vec<_> = lines.iter().filter(|l| l["event"] == "auto_topic_creation").collect();
    assert!(
        !auto.is_empty() && auto.iter().all(|l| l["client_id"] == "to-missing" && l["topics"] == serde_json::json!(["missing-topic"])),
        "{auto:#?}"
    );
}

#[test]
fn the_schema_check_rejects_a_line_that_drifts() {
    let good = serde_json::json!({"schema":1,"time":"2026-11-21T08:02:11.532Z","kind":"first","event":"weak_acks","rule":"produce_acks","action":"upgrade","client_addr":"127.0.0.1:53122","client_id":"app","api":"Produce","api_version":9,"topics":["t"],"detail":{},"count":1});
    crate::support::check_audit_line(&good);
    for (field, bad) in [
        ("schema", serde_json::json!(2)),
        ("action", serde_json::json!("sideways")),
        ("count", serde_json::json!(0)),
        ("extra", serde_json::json!(1)),
    ] {
        let mut line = good.clone();
        line[field] = bad;
        let caught = std::panic::catch_unwind(|| crate::support::check_audit_line(&line)).is_err();
        assert!(caught, "a line with {field} = {} must fail the schema", line[field]);
    }
}

#[test]
fn readyz_says_503_until_discovery_reaches_a_broker_and_admin_null_binds_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let (tansu_port, broker_port) = (free_port(), free_port());
    // No broker yet: the proxy serves its bootstrap port and /healthz, but is not ready.
    let mut proxy = Proxy::start_with(dir.path(), tansu_port, &[(crate::support::TANSU_NODE, broker_port)], &Default::default());
    let port = proxy.admin.expect("admin");
    assert_eq!(http_get(port, "/healthz").0, 200);
    let (code, body) = http_get(port, "/readyz");
    assert_eq!(code, 503, "not ready before discovery reached a broker: {body}");
    assert_eq!(value(&scrape(&proxy), "kdp_ready"), 0.0);
    // The broker comes up: discovery (with back-off) reaches it and the proxy turns ready.
    let _tansu = crate::support::start_tansu(dir.path(), tansu_port, tansu_port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(port, "/readyz").0 != 200 {
        assert!(Instant::now() < deadline, "never ready after the broker came up: {}", proxy.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    proxy.stop();
    assert!(proxy.log().contains("admin endpoint ready"), "{}", proxy.log());
    // admin.listen: null turns the endpoint off: the proxy serves clients, with no endpoint.
    let other = tempfile::tempdir().expect("dir");
    let bootstrap = free_port();
    let cfg = format!(
        "listen:\n  bind_host: 127.0.0.1\n  advertised_host: 127.0.0.1\n  bootstrap_port: {bootstrap}\n  broker_ports: {{{node}: {}}}\n\
         upstream:\n  bootstrap_servers: [\"127.0.0.1:{tansu_port}\"]\nadmin:\n  listen: null\n",
        free_port(),
        node = crate::support::TANSU_NODE
    );
    let mut off = Proxy::start_with_config(other.path(), bootstrap, &cfg);
    let r = kclient(&["metadata", "--lib", "confluent", "--bootstrap", &off.addr()]);
    assert!(r["brokers"].as_array().is_some_and(|b| !b.is_empty()), "serves clients: {r}");
    off.stop();
    assert!(off.admin.is_none());
    assert!(!off.log().contains("admin endpoint ready"), "{}", off.log());
}

#[test]
fn a_broker_advertising_the_proxys_own_address_is_refused_not_looped_through() {
    // tansu's advertised.listeners name the proxy's broker port: followed, the proxy would connect
    // to itself until its connection limit (about 10,000 connections, found by accident).
    let dir = tempfile::tempdir().expect("dir");
    let (tansu_port, node_port) = (free_port(), free_port());
    let _tansu = crate::support::start_tansu(dir.path(), tansu_port, node_port);
    let mut proxy = Proxy::start_with(dir.path(), tansu_port, &[(crate::support::TANSU_NODE, node_port)], &Default::default());
    let deadline = Instant::now() + Duration::from_secs(15);
    while !proxy.log().contains("which is this proxy's own listener") {
        assert!(Instant::now() < deadline, "{}", proxy.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = kclient(&["metadata", "--lib", "confluent", "--bootstrap", &proxy.addr(), "--timeout", "3"]);
    assert_eq!(http_get(proxy.admin.expect("admin"), "/readyz").0, 503, "never ready through a loop");
    let accepted = value(&scrape(&proxy), "kdp_connections_accepted_total{listener=\"bootstrap\"}");
    assert!(accepted < 20.0, "no connection storm: {accepted} accepted");
    proxy.stop();
    assert!(!proxy.log().contains("listening for broker node"), "no listener bound for a looping address: {}", proxy.log());
}

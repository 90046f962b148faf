//! The audit sinks against tansu 0.6: the proxy's own idempotent producer (InitProducerId
//! versions, re-sent batches deduplicated), the Kafka sink fed by weak produces and read back
//! through the proxy exactly once, file rotation under a small size limit, and a sink whose
//! cluster never answers dropping and reporting while the others keep writing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_durability_proxy::cluster::client::versions;
use kafka_durability_proxy::cluster::leaders::{self, TopicSpec};
use kafka_durability_proxy::cluster::producer::{Producer, ProducerConfig};
use kafka_durability_proxy::cluster::{ClientSettings, ClusterClient};
use kafka_durability_proxy::protocol::encode as frames;
use kafka_durability_proxy::protocol::records::{self, ProducerStamp};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, CreateTopicsRequest, InitProducerIdRequest, InitProducerIdResponse, MetadataResponse,
    ProduceRequest, ProduceResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use serde_json::Value;

use crate::support::fake::{FakeBroker, RawClient, Reply};
use crate::support::{free_port, kclient, runtime, start_tansu, wait_for_port, Proxy, Sections, TANSU_NODE};

fn client(port: u16) -> ClusterClient {
    ClusterClient::new(
        ClientSettings {
            bootstrap: vec![format!("127.0.0.1:{port}")],
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_frame_bytes: 1 << 24,
            tls: None,
            sasl: None,
        },
        Arc::new(kafka_durability_proxy::metrics::Metrics::new()),
    )
}

fn init_request() -> InitProducerIdRequest {
    InitProducerIdRequest::default().with_transaction_timeout_ms(i32::MAX).with_producer_id(ProducerId(-1)).with_producer_epoch(-1)
}

/// One raw Produce of `batch` to partition 0; the partition's error code.
async fn produce_raw(c: &ClusterClient, addr: &str, topic: &str, batch: Bytes) -> i16 {
    let data = PartitionProduceData::default().with_index(0).with_records(Some(batch));
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
        .with_partition_data(vec![data])]);
    let resp = c.call_at(addr, &req, versions(3, 12)).await.expect("produce");
    resp.responses[0].partition_responses[0].error_code
}

fn consume_direct(port: u16, topic: &str, expect: usize) -> Vec<String> {
    let (addr, expect) = (format!("127.0.0.1:{port}"), expect.to_string());
    let group = format!("g-{topic}-{}", free_port());
    let r = kclient(&["consume", "--bootstrap", &addr, "--topic", topic, "--expect", &expect, "--group", &group, "--timeout", "20"]);
    r["values"].as_array().expect("values").iter().map(|v| v.as_str().unwrap_or_default().to_owned()).collect()
}

#[test]
fn own_producer_against_tansu_negotiates_init_producer_id_and_resends_without_duplicates() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let _tansu = start_tansu(dir.path(), port, port);
    let c = client(port);
    let addr = format!("127.0.0.1:{port}");
    let topic = "own-producer";
    let (codes, dup_codes) = runtime().block_on(async {
        // Which InitProducerId versions tansu answers, one at a time.
        let mut codes = BTreeMap::new();
        for v in 0..=5i16 {
            let code = match c.call(&init_request(), versions(v, v)).await {
                Ok(r) => r.error_code,
                Err(e) => panic!("InitProducerId v{v}: {e}"),
            };
            codes.insert(v, code);
        }
        // The producer creates its topic and writes three batches.
        let mut cfg = ProducerConfig::new(topic);
        cfg.create = Some(TopicSpec { partitions: 1, replication_factor: 3, configs: vec![("min.insync.replicas".into(), "2".into())] });
        let mut p = Producer::new(client(port), cfg);
        for b in 0..3 {
            let values: Vec<Bytes> = (0..4).map(|i| Bytes::from(format!("batch{b}-{i}"))).collect();
            p.send(&values).await.expect("send");
        }
        let n = p.counters();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!((load(&n.batches), load(&n.retries), load(&n.reinits)), (3, 0, 0));
        // The same stamped batch twice, then a sequence gap, with an id of its own.
        let init = c.call(&init_request(), versions(0, 5)).await.expect("init");
        let stamp = ProducerStamp { producer_id: init.producer_id.0, producer_epoch: init.producer_epoch, base_sequence: 0 };
        let batch = records::build_batch(&[Bytes::from("resent-0"), Bytes::from("resent-1")], stamp, 1).expect("batch");
        let mut dup_codes = vec![produce_raw(&c, &addr, topic, batch.clone()).await, produce_raw(&c, &addr, topic, batch).await];
        let gap = records::build_batch(&[Bytes::from("gap")], ProducerStamp { base_sequence: 5, ..stamp }, 1).expect("batch");
        dup_codes.push(produce_raw(&c, &addr, topic, gap).await);
        assert!(leaders::leaders(&c, topic).await.expect("metadata").is_some());
        (codes, dup_codes)
    });
    eprintln!("tansu InitProducerId error codes by version: {codes:?}; same batch twice then a gap: {dup_codes:?}");
    assert_eq!(codes.get(&5), Some(&0), "the newest version works: {codes:?}");
    assert_eq!(dup_codes[0], 0);
    assert!(dup_codes[1] == 0 || dup_codes[1] == 46, "a re-sent batch is a duplicate, never a second copy: {dup_codes:?}");
    assert_eq!(dup_codes[2], 45, "a sequence gap is out of order: {dup_codes:?}");
    let values = consume_direct(port, topic, 14);
    let mut want: Vec<String> = (0..3).flat_map(|b| (0..4).map(move |i| format!("batch{b}-{i}"))).collect();
    want.extend(["resent-0".to_owned(), "resent-1".to_owned()]);
    assert_eq!(values, want, "every record once, in order");
}

/// Every line of a rotating file sink, oldest file first.
fn rotated_lines(path: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = (1..=200).map(|n| PathBuf::from(format!("{}.{n}", path.display()))).filter(|p| p.exists()).collect();
    files.reverse();
    files.push(path.to_owned());
    files.iter().flat_map(|f| std::fs::read_to_string(f).unwrap_or_default().lines().map(str::to_owned).collect::<Vec<_>>()).collect()
}

fn json(lines: &[String]) -> Vec<Value> {
    lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line is not JSON ({e}): {l}"))).collect()
}

fn produce_weak(proxy: &Proxy, lib: &str, acks: &str, id: &str, topic: &str, count: usize) {
    let (addr, count) = (proxy.addr(), count.to_string());
    let args = crate::support::produce_args(&addr, lib, acks, id, topic, &count);
    let r = kclient(&args);
    assert_eq!(r["errors"], serde_json::json!([]), "{id}: {r}");
}

#[test]
fn kafka_sink_holds_exactly_the_lines_the_rotating_file_got() {
    let dir = tempfile::tempdir().expect("dir");
    let tansu_port = free_port();
    let _tansu = start_tansu(dir.path(), tansu_port, tansu_port);
    let file = dir.path().join("audit.jsonl");
    let audit = format!(
        "audit:\n  window_secs: 1\n  sinks:\n    - {{type: file, path: {}, max_bytes: 4096, keep: 100}}\n    - {{type: kafka, topic: _kdp_audit, create_topic: true, replication_factor: 3, min_insync_replicas: 2, partitions: 1}}\n",
        file.display()
    );
    let node = free_port();
    let mut proxy = Proxy::start_with(dir.path(), tansu_port, &[(TANSU_NODE, node)], &Sections { audit, ..Sections::default() });
    wait_for_port(node, "proxy broker listener");
    let spec = r#"[{"name": "weak", "rf": 3, "configs": {"min.insync.replicas": "2"}}]"#;
    assert_eq!(kclient(&["create-topics", "--bootstrap", &proxy.addr(), "--spec", spec])["results"]["weak"]["code"], 0);
    let clients = [("confluent", "1"), ("confluent", "0"), ("kafka-python", "1"), ("kafka-python", "0")];
    for round in 0..3 {
        for (lib, acks) in clients {
            produce_weak(&proxy, lib, acks, &format!("{lib}-acks{acks}-{round}"), "weak", 5);
        }
    }
    std::thread::sleep(Duration::from_millis(2500));
    proxy.stop();
    let log = proxy.log();
    assert!(log.contains("proxy created its topic") && log.contains("idempotent producer initialised"), "{log}");
    let lines = rotated_lines(&file);
    let parsed = json(&lines);
    assert!(parsed.iter().filter(|l| l["kind"] == "first" && l["event"] == "weak_acks").count() >= 12, "{lines:#?}");
    assert!(parsed.iter().all(|l| l["kind"] != "audit_dropped"), "nothing dropped: {lines:#?}");
    assert!(PathBuf::from(format!("{}.1", file.display())).exists(), "{} lines did not rotate at 4096 bytes", lines.len());

    // Read the topic back through a second proxy: the same lines, in order, each once.
    let (dir2, node2) = (tempfile::tempdir().expect("dir"), free_port());
    let reader = Proxy::start_with(dir2.path(), tansu_port, &[(TANSU_NODE, node2)], &Sections::default());
    let (expect, group) = ((lines.len() + 1).to_string(), format!("audit-reader-{node2}"));
    let r = kclient(&[
        "consume",
        "--bootstrap",
        &reader.addr(),
        "--topic",
        "_kdp_audit",
        "--expect",
        &expect,
        "--group",
        &group,
        "--timeout",
        "10",
    ]);
    let values: Vec<String> = r["values"].as_array().expect("values").iter().map(|v| v.as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(values.len(), lines.len(), "no line missing, none twice: {r}");
    assert_eq!(values, lines);
    let files = (1..=100).filter(|n| PathBuf::from(format!("{}.{n}", file.display())).exists()).count() + 1;
    eprintln!("{} audit lines in {files} files, the same {} records in _kdp_audit", lines.len(), values.len());
}

/// A refused CreateTopics, answered by the proxy itself: an audit event that needs no broker.
fn refused_create(port: u16, client: &str) {
    let topic = CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(format!("thin-{client}"))))
        .with_num_partitions(1)
        .with_replication_factor(1);
    let req = frames::request(ApiKey::CreateTopics, 5, 1, Some(client), &CreateTopicsRequest::default().with_topics(vec![topic]))
        .expect("encode");
    let mut c = RawClient::connect(port);
    c.send(&req);
    assert!(c.recv().is_some(), "{client}: the proxy answered");
}

#[test]
fn a_sink_whose_cluster_never_answers_drops_and_reports_while_stdout_and_file_keep_writing() {
    let dir = tempfile::tempdir().expect("dir");
    let silent = FakeBroker::start(1, Arc::new(|_, _, _| Reply::Nothing));
    let file = dir.path().join("audit.jsonl");
    let audit = format!(
        "audit:\n  window_secs: 1\n  queue_capacity: 20\n  sinks:\n    - {{type: stdout}}\n    - {{type: file, path: {}, max_bytes: 1500, keep: 2}}\n    - {{type: kafka, name: audit-topic, topic: _kdp_audit}}\n",
        file.display()
    );
    let up = "  request_timeout_ms: 1000\n".to_owned();
    let mut proxy = Proxy::start_with(
        dir.path(),
        silent.ports[0],
        &[(TANSU_NODE, free_port())],
        &Sections { audit, upstream: up, ..Sections::default() },
    );
    let started = Instant::now();
    for i in 0..60 {
        refused_create(proxy.bootstrap, &format!("thin-{i:02}"));
        // Paced so that the healthy sinks keep up even on a loaded machine (a second's stall).
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(2500));
    // Per-sink counters on /metrics: the healthy sinks wrote every line, the stuck one holds and drops.
    let m = crate::observability::scrape(&proxy);
    let get = |name: &str, sink: &str| m.get(&format!("{name}{{sink=\"{sink}\"}}")).copied().unwrap_or(-1.0);
    assert!(get("kdp_audit_sink_lines_written_total", "stdout") >= 60.0, "{m:?}");
    assert!(get("kdp_audit_sink_lines_written_total", "file") >= 60.0, "{m:?}");
    assert_eq!(get("kdp_audit_sink_lines_written_total", "audit-topic"), 0.0, "{m:?}");
    assert!(
        get("kdp_audit_sink_lines_dropped_total", "audit-topic") > 0.0 && get("kdp_audit_sink_lines_queued", "audit-topic") > 0.0,
        "{m:?}"
    );
    assert_eq!(get("kdp_audit_sink_lines_dropped_total", "stdout"), 0.0, "{m:?}");
    let stopping = Instant::now();
    proxy.stop();
    eprintln!("traffic {:?}, stop took {:?}", stopping - started, stopping.elapsed());
    let stdout: Vec<String> =
        std::fs::read_to_string(dir.path().join("proxy.stdout")).expect("stdout").lines().map(str::to_owned).collect();
    let parsed = json(&stdout);
    let firsts = parsed.iter().filter(|l| l["kind"] == "first" && l["event"] == "create_topic").count();
    assert_eq!(firsts, 60, "stdout got every event: {stdout:#?}");
    let reports: Vec<&Value> = parsed.iter().filter(|l| l["kind"] == "audit_dropped").collect();
    assert!(reports.iter().all(|l| l["sink"] == "audit-topic"), "only the Kafka sink dropped: {reports:#?}");
    let dropped: u64 = reports.iter().map(|l| l["count"].as_u64().unwrap_or(0)).sum();
    assert!(dropped >= 30, "the stuck sink holds at most its queue and a batch: {dropped} reported");
    // The file rotated at 1500 bytes, keeping two old files: its lines are stdout's last ones.
    let kept = rotated_lines(&file);
    assert!(PathBuf::from(format!("{}.2", file.display())).exists() && !PathBuf::from(format!("{}.3", file.display())).exists());
    assert!(kept.len() < stdout.len() && stdout.ends_with(&kept), "file {kept:#?}\nstdout {stdout:#?}");
    for n in [1, 2] {
        let len = std::fs::metadata(format!("{}.{n}", file.display())).expect("rotated").len();
        assert!(len <= 1500, ".{n} is {len} bytes");
    }
    let log = proxy.log();
    assert!(log.contains("audit sink full or failing") && log.contains("audit-topic"), "{log}");
    assert!(log.contains("did not finish writing before exit"), "{log}");
}

/// What the fake leader saw in each Produce: (producer id, epoch, base sequence, records, CRC ok).
type Seen = Arc<Mutex<Vec<(i64, i16, i32, usize, bool, Bytes)>>>;

fn body<M: Decodable>(frame: &[u8], h: &kafka_durability_proxy::protocol::RequestHeader) -> M {
    M::decode(&mut Bytes::copy_from_slice(&frame[h.body_offset.expect("body")..]), h.api_version).expect("decode request")
}

/// A one-broker cluster that answers Produce with `codes` in turn (then 0), counting requests.
fn scripted_leader(codes: Vec<i16>, seen: Seen, asked: Arc<Mutex<BTreeMap<i16, usize>>>) -> FakeBroker {
    let codes = Arc::new(Mutex::new(codes));
    FakeBroker::start(
        1,
        Arc::new(move |p, h, frame| {
            *asked.lock().expect("lock").entry(h.api_key).or_default() += 1;
            let (v, corr) = (h.api_version, h.correlation_id);
            let bytes = match h.api_key {
                18 => {
                    let keys = [(0, 3, 9), (3, 4, 12), (18, 0, 3), (22, 0, 4)];
                    let api = keys.iter().map(|(k, a, b)| ApiVersion::default().with_api_key(*k).with_min_version(*a).with_max_version(*b));
                    frames::response(ApiKey::ApiVersions, v, corr, &ApiVersionsResponse::default().with_api_keys(api.collect()))
                }
                3 => {
                    let broker = MetadataResponseBroker::default()
                        .with_node_id(BrokerId(1))
                        .with_host(StrBytes::from_static_str("127.0.0.1"))
                        .with_port(i32::from(p));
                    let part = MetadataResponsePartition::default().with_partition_index(0).with_leader_id(BrokerId(1));
                    let topic = MetadataResponseTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_static_str("audit"))))
                        .with_partitions(vec![part]);
                    frames::response(
                        ApiKey::Metadata,
                        v,
                        corr,
                        &MetadataResponse::default().with_brokers(vec![broker]).with_topics(vec![topic]),
                    )
                }
                22 => {
                    let n = asked.lock().expect("lock").get(&22).copied().unwrap_or(1) as i64;
                    frames::response(
                        ApiKey::InitProducerId,
                        v,
                        corr,
                        &InitProducerIdResponse::default().with_producer_id(ProducerId(999 + n)),
                    )
                }
                0 => {
                    let req: ProduceRequest = body(frame, h);
                    let batch = req.topic_data[0].partition_data[0].records.clone().expect("records");
                    let st = records::read_stamp(&batch).expect("v2 batch");
                    let n = kafka_protocol::records::RecordBatchDecoder::decode(&mut batch.clone()).expect("decodes").records.len();
                    let crc = records::crc_matches(&batch) == Ok(true);
                    seen.lock().expect("lock").push((st.producer_id, st.producer_epoch, st.base_sequence, n, crc, batch));
                    let mut codes = codes.lock().expect("lock");
                    let code = if codes.is_empty() { 0 } else { codes.remove(0) };
                    let part = PartitionProduceResponse::default().with_index(0).with_error_code(code);
                    let topic = TopicProduceResponse::default()
                        .with_name(TopicName(StrBytes::from_static_str("audit")))
                        .with_partition_responses(vec![part]);
                    frames::response(ApiKey::Produce, v, corr, &ProduceResponse::default().with_responses(vec![topic]))
                }
                other => panic!("unexpected API {other}"),
            };
            Reply::Frame(bytes.expect("encode"))
        }),
    )
}

#[test]
fn the_producer_resends_the_same_batch_and_restamps_after_the_broker_loses_it() {
    let seen: Seen = Arc::default();
    let asked = Arc::new(Mutex::new(BTreeMap::new()));
    // NOT_LEADER_OR_FOLLOWER, then OK; OUT_OF_ORDER_SEQUENCE_NUMBER, then OK; OK.
    let fake = scripted_leader(vec![6, 0, 45], seen.clone(), asked.clone());
    let mut cfg = ProducerConfig::new("audit");
    cfg.backoff_min = Duration::from_millis(10);
    let mut p = Producer::new(client(fake.ports[0]), cfg);
    let vals = |prefix: &str, n: usize| (0..n).map(|i| Bytes::from(format!("{prefix}{i}"))).collect::<Vec<_>>();
    runtime().block_on(async {
        p.send(&vals("a", 3)).await.expect("a");
        p.send(&vals("b", 2)).await.expect("b");
        p.send(&vals("c", 1)).await.expect("c");
    });
    let seen = seen.lock().expect("lock").clone();
    let stamps: Vec<(i64, i16, i32, usize, bool)> = seen.iter().map(|s| (s.0, s.1, s.2, s.3, s.4)).collect();
    assert_eq!(
        stamps,
        vec![(1000, 0, 0, 3, true), (1000, 0, 0, 3, true), (1000, 0, 3, 2, true), (1001, 0, 0, 2, true), (1001, 0, 2, 1, true)],
        "same batch after a leader change, new producer id and sequence 0 after a lost sequence"
    );
    assert_eq!(seen[0].5, seen[1].5, "the re-sent batch is byte for byte the first");
    let asked = asked.lock().expect("lock").clone();
    assert_eq!(
        (asked.get(&3), asked.get(&22)),
        (Some(&2), Some(&2)),
        "Metadata refreshed once, producer id re-initialised once: {asked:?}"
    );
    let c = p.counters();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!((load(&c.batches), load(&c.retries), load(&c.reinits)), (3, 2, 1));
}

#[test]
fn kafka_sink_logs_in_with_the_proxys_own_tls_and_scram() {
    use crate::support::secure::{kclient_secure, start_haproxy_tls, start_tansu_sasl, ClientSecurity, Pki, Scram};
    let dir = tempfile::tempdir().expect("dir");
    let pki = Pki::generate(&dir.path().join("pki"));
    let (tansu_port, tls_port, node) = (free_port(), free_port(), free_port());
    let _haproxy = start_haproxy_tls(dir.path(), tls_port, tansu_port, &pki.server_combined);
    let _tansu = start_tansu_sasl(
        dir.path(),
        tansu_port,
        tls_port,
        &[("alice", "alice-secret", Scram::Sha256), ("kdp", "proxy-secret", Scram::Sha256)],
    );
    let pw = dir.path().join("proxy.password");
    std::fs::write(&pw, "proxy-secret\n").expect("password file");
    let upstream = format!(
        "  tls:\n    ca_file: {}\n  sasl:\n    mechanism: SCRAM-SHA-256\n    username: kdp\n    password_file: {}\n",
        pki.ca.display(),
        pw.display()
    );
    let file = dir.path().join("audit.jsonl");
    let audit = format!(
        "audit:\n  window_secs: 1\n  sinks:\n    - {{type: file, path: {}}}\n    - {{type: kafka, topic: _kdp_audit}}\n",
        file.display()
    );
    let mut proxy = Proxy::start_with(dir.path(), tls_port, &[(TANSU_NODE, node)], &Sections { upstream, audit, ..Sections::default() });
    let alice = ClientSecurity::sasl_plaintext("alice", "alice-secret", Scram::Sha256);
    let spec = r#"[{"name": "secure-weak", "rf": 3, "configs": {"min.insync.replicas": "2"}}]"#;
    let created = kclient_secure(&["create-topics", "--bootstrap", &proxy.addr(), "--spec", spec], &alice);
    assert_eq!(created["results"]["secure-weak"]["code"], 0, "{created}");
    for lib in ["confluent", "kafka-python"] {
        let args = [
            "produce",
            "--lib",
            lib,
            "--bootstrap",
            &proxy.addr(),
            "--topic",
            "secure-weak",
            "--acks",
            "1",
            "--client-id",
            lib,
            "--count",
            "3",
            "--one-per-request",
        ];
        let r = kclient_secure(&args, &alice);
        assert_eq!(r["delivered"], 3, "{r}");
    }
    std::thread::sleep(Duration::from_millis(2500));
    proxy.stop();
    let lines = rotated_lines(&file);
    assert!(json(&lines).iter().any(|l| l["principal"] == "User:alice"), "{lines:#?}");
    // Straight from the broker, through its TLS front, as alice.
    let direct = ClientSecurity::sasl_ssl("alice", "alice-secret", Scram::Sha256, &pki.ca);
    let (addr, expect) = (format!("127.0.0.1:{tls_port}"), (lines.len() + 1).to_string());
    let r = kclient_secure(
        &["consume", "--bootstrap", &addr, "--topic", "_kdp_audit", "--expect", &expect, "--group", "g-secure-audit", "--timeout", "10"],
        &direct,
    );
    let values: Vec<String> = r["values"].as_array().expect("values").iter().map(|v| v.as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(values, lines, "{r}");
}

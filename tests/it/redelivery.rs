//! Redelivery of upgraded acks=0 requests, against a scripted broker that keeps producer state
//! like Kafka (per producer id and partition: the next sequence; a batch sent twice is a
//! DUPLICATE_SEQUENCE_NUMBER, a gap OUT_OF_ORDER_SEQUENCE_NUMBER) and fails on cue: a
//! connection dropped with requests in flight, a retriable error on one partition, a broker
//! that never answers. What the broker stored is compared with what the client sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_durability_proxy::protocol::encode as frames;
use kafka_durability_proxy::protocol::records::{self, ProducerStamp};
use kafka_durability_proxy::protocol::RequestHeader;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, InitProducerIdResponse, MetadataResponse, ProduceRequest, ProduceResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use crate::observability::scrape;
use crate::support::fake::{FakeBroker, RawClient, Reply, Script};
use crate::support::{free_port, Proxy};

const TOPIC: &str = "orders";
const OWN: &str = "kafka-durability-proxy";
const NOT_ENOUGH_REPLICAS: i16 = 19;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// One batch as the broker stored it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stored {
    partition: i32,
    producer_id: i64,
    base_sequence: i32,
    /// The first record's value: which client batch this is.
    first: Bytes,
    records: i32,
}

/// What the scripted broker does with the client's (not the proxy's) Produce requests.
#[derive(Default)]
struct Cues {
    /// Store the nth client Produce (from 1), then close the connection without answering.
    close_after: Option<usize>,
    /// Fail this partition with this code, this many times (client requests and re-sends alike).
    fail: Option<(i32, i16, usize)>,
    /// Never answer client Produce requests; answer re-sends with this error.
    silent: Option<i16>,
    /// Leadership moves to node 2 when the first client Produce reaches node 1: that one (and
    /// anything else sent to node 1) gets NOT_LEADER_OR_FOLLOWER.
    moved: bool,
}

#[derive(Default)]
struct State {
    cues: Cues,
    client_produces: usize,
    next_pid: i64,
    expected: HashMap<(i64, i32), i32>,
    stored: Vec<Stored>,
    /// Every batch received: (client id, partition, stamp, CRC verified).
    received: Vec<(String, i32, ProducerStamp, bool)>,
    /// Node id leading every partition.
    leader: i32,
    /// Listener ports of what was stored, in order.
    stored_at: Vec<u16>,
}

impl State {
    /// Kafka's rule for an idempotent batch: store at the expected sequence, a duplicate below
    /// it, out of order above.
    fn append(&mut self, partition: i32, set: &[u8]) -> i16 {
        let mut at = 0;
        let mut code = 0;
        while at < set.len() {
            let batch = &set[at..];
            let len = records::batch_len(batch).expect("v2 batch");
            let stamp = records::read_stamp(batch).expect("stamp");
            let count = i32::from_be_bytes(batch[57..61].try_into().expect("count"));
            let first = first_value(&batch[..len]);
            let key = (stamp.producer_id, partition);
            let want = self.expected.get(&key).copied().unwrap_or(0);
            if stamp.producer_id >= 0 && stamp.base_sequence < want {
                code = 46;
            } else if stamp.producer_id >= 0 && stamp.base_sequence > want {
                return 45;
            } else {
                self.expected.insert(key, stamp.base_sequence + count);
                self.stored.push(Stored {
                    partition,
                    producer_id: stamp.producer_id,
                    base_sequence: stamp.base_sequence,
                    first,
                    records: count,
                });
            }
            at += len;
        }
        code
    }
}

fn first_value(batch: &[u8]) -> Bytes {
    let mut b = Bytes::copy_from_slice(batch);
    let decoded = kafka_protocol::records::RecordBatchDecoder::decode(&mut b).expect("decode batch");
    decoded.records.first().and_then(|r| r.value.clone()).unwrap_or_default()
}

fn script(state: Arc<Mutex<State>>, ports: Arc<std::sync::OnceLock<Vec<u16>>>) -> Script {
    Arc::new(move |at, h: &RequestHeader, frame: &[u8]| {
        let v = h.api_version;
        let corr = h.correlation_id;
        let body = || Bytes::copy_from_slice(&frame[h.body_offset.expect("known api")..]);
        match h.api_key {
            18 => {
                let keys = [(0, 3, 9), (3, 4, 12), (18, 0, 3), (22, 0, 4)];
                let resp = ApiVersionsResponse::default().with_api_keys(
                    keys.iter().map(|(k, a, b)| ApiVersion::default().with_api_key(*k).with_min_version(*a).with_max_version(*b)).collect(),
                );
                Reply::Frame(encode_response(ApiKey::ApiVersions, v, corr, &resp))
            }
            3 => {
                let ports = ports.get().expect("ports");
                let leader = state.lock().expect("lock").leader.max(1);
                let parts =
                    (0..2).map(|p| MetadataResponsePartition::default().with_partition_index(p).with_leader_id(BrokerId(leader))).collect();
                let brokers = ports
                    .iter()
                    .zip(1..)
                    .map(|(port, n)| {
                        MetadataResponseBroker::default().with_node_id(BrokerId(n)).with_host(s("127.0.0.1")).with_port(i32::from(*port))
                    })
                    .collect();
                let resp = MetadataResponse::default()
                    .with_brokers(brokers)
                    .with_controller_id(BrokerId(1))
                    .with_topics(vec![MetadataResponseTopic::default().with_name(Some(TopicName(s(TOPIC)))).with_partitions(parts)]);
                Reply::Frame(encode_response(ApiKey::Metadata, v, corr, &resp))
            }
            22 => {
                let mut st = state.lock().expect("lock");
                st.next_pid += 1;
                let resp = InitProducerIdResponse::default().with_producer_id(ProducerId(1000 + st.next_pid)).with_producer_epoch(0);
                Reply::Frame(encode_response(ApiKey::InitProducerId, v, corr, &resp))
            }
            0 => {
                let node = ports.get().and_then(|p| p.iter().position(|q| *q == at)).map_or(1, |i| i as i32 + 1);
                produce(&state, h, h.client_id(frame).unwrap_or_default(), body(), (corr, node, at))
            }
            k => panic!("unexpected API key {k}"),
        }
    })
}

/// A Produce reaching node `node` (listener port `at`).
fn produce(state: &Mutex<State>, h: &RequestHeader, client: &str, mut body: Bytes, (corr, node, at): (i32, i32, u16)) -> Reply {
    let v = h.api_version;
    let client = client.to_owned();
    let req = ProduceRequest::decode(&mut body, v).expect("decode produce");
    let mut st = state.lock().expect("lock");
    let own = client == OWN;
    if !own {
        st.client_produces += 1;
    }
    let nth = st.client_produces;
    if st.cues.silent.is_some() && !own {
        return Reply::Nothing;
    }
    if st.cues.moved && st.leader <= 1 && !own {
        st.leader = 2;
    }
    let mut results = Vec::new();
    for t in &req.topic_data {
        for p in &t.partition_data {
            let set = p.records.clone().unwrap_or_default();
            let stamp = records::read_stamp(&set).expect("stamp");
            let crc = records::crc_matches(&set).expect("crc");
            st.received.push((client.clone(), p.index, stamp, crc));
            let silent = st.cues.silent;
            let not_leader = node != st.leader.max(1);
            let code = match (&mut st.cues.fail, silent) {
                (_, Some(code)) => code,
                _ if not_leader => 6,
                (Some((part, code, times)), _) if *part == p.index && *times > 0 => {
                    *times -= 1;
                    *code
                }
                _ => {
                    let code = st.append(p.index, &set);
                    st.stored_at.push(at);
                    code
                }
            };
            results.push(PartitionProduceResponse::default().with_index(p.index).with_error_code(code));
        }
    }
    if !own && st.cues.close_after == Some(nth) {
        return Reply::Close;
    }
    let resp = ProduceResponse::default()
        .with_responses(vec![TopicProduceResponse::default().with_name(TopicName(s(TOPIC))).with_partition_responses(results)]);
    Reply::Frame(encode_response(ApiKey::Produce, v, corr, &resp))
}

fn encode_response<M: kafka_protocol::protocol::Encodable>(key: ApiKey, version: i16, corr: i32, body: &M) -> Bytes {
    frames::response(key, version, corr, body).expect("encode response")
}

/// The broker and a proxy in front of it with redelivery on (and `extra` config).
struct Bed {
    state: Arc<Mutex<State>>,
    _fake: FakeBroker,
    proxy: Proxy,
    _dir: tempfile::TempDir,
}

fn bed(cues: Cues, extra: &str) -> Bed {
    let state = Arc::new(Mutex::new(State { cues, ..State::default() }));
    let ports = Arc::new(std::sync::OnceLock::new());
    let fake = FakeBroker::start(2, script(state.clone(), ports.clone()));
    let _ = ports.set(fake.ports.clone());
    let dir = tempfile::tempdir().expect("dir");
    let bootstrap = free_port();
    let cfg = format!(
        "listen:\n  bind_host: 127.0.0.1\n  advertised_host: 127.0.0.1\n  bootstrap_port: {bootstrap}\n  broker_ports: {{1: {}, 2: {}}}\n\
         upstream:\n  bootstrap_servers: [\"127.0.0.1:{}\"]\n  request_timeout_ms: 2000\n\
         audit:\n  sink: file\n  path: {}\n  window_secs: 1\nadmin:\n  listen: 127.0.0.1:{}\n{extra}",
        free_port(),
        free_port(),
        fake.ports[0],
        dir.path().join("audit.jsonl").display(),
        free_port()
    );
    let proxy = Proxy::start_with_config(dir.path(), bootstrap, &cfg);
    Bed { state, _fake: fake, proxy, _dir: dir }
}

/// An acks=0 Produce v7 from `client` with one batch per (partition, values).
fn acks0(corr: i32, sets: &[(i32, Vec<String>)]) -> Bytes {
    let parts = sets
        .iter()
        .map(|(p, values)| {
            let values: Vec<Bytes> = values.iter().map(|v| Bytes::from(v.clone())).collect();
            let batch = records::build_batch(&values, ProducerStamp::NONE, 1_700_000_000_000).expect("batch");
            PartitionProduceData::default().with_index(*p).with_records(Some(batch))
        })
        .collect();
    let req = ProduceRequest::default()
        .with_acks(0)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default().with_name(TopicName(s(TOPIC))).with_partition_data(parts)]);
    frames::request(ApiKey::Produce, 7, corr, Some("app"), &req).expect("encode")
}

fn values(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{tag}-{i}")).collect()
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn metric(p: &Proxy, name: &str) -> f64 {
    scrape(p).get(name).copied().unwrap_or(0.0)
}

#[test]
fn requests_in_flight_when_the_broker_drops_the_connection_are_resent_with_the_same_sequences() {
    let b = bed(Cues { close_after: Some(2), ..Cues::default() }, "");
    let mut client = RawClient::connect(b.proxy.bootstrap);
    // Three requests in one write: the broker stores #1 (answered), stores #2 and dies before
    // answering it; #3 was forwarded behind it and never read.
    let all: Vec<u8> = (1..=3).flat_map(|i| acks0(i, &[(0, values(&format!("r{i}"), 4))]).to_vec()).collect();
    client.send(&all);
    assert!(client.closed(), "the client is told to reconnect");
    wait_until("three batches stored", Duration::from_secs(10), || b.state.lock().expect("lock").stored.len() >= 3);
    std::thread::sleep(Duration::from_millis(500));
    let st = b.state.lock().expect("lock");
    let firsts: Vec<_> = st.stored.iter().map(|s| (String::from_utf8_lossy(&s.first).into_owned(), s.base_sequence)).collect();
    assert_eq!(firsts, [("r1-0".into(), 0), ("r2-0".into(), 4), ("r3-0".into(), 8)], "each batch stored once, in order");
    let pid = st.stored[0].producer_id;
    assert!(pid >= 1000 && st.stored.iter().all(|s| s.producer_id == pid), "one proxy producer id: {:?}", st.stored);
    let resent: Vec<i32> = st.received.iter().filter(|r| r.0 == OWN).map(|r| r.2.base_sequence).collect();
    assert_eq!(resent, [4, 8], "the re-sends carry the sequences first sent (#2 is then a duplicate the broker drops)");
    assert!(st.received.iter().all(|r| r.3), "every batch the broker received has a valid CRC");
    drop(st);
    assert_eq!(metric(&b.proxy, "kdp_redelivered_records_total"), 8.0);
    assert_eq!(metric(&b.proxy, "kdp_undelivered_records_total"), 0.0);
    wait_until("nothing held", Duration::from_secs(5), || metric(&b.proxy, "kdp_redelivery_held_requests") == 0.0);
}

#[test]
fn a_retriable_error_on_one_partition_resends_only_that_partition() {
    // The client's request and the first re-send fail on partition 1.
    let b = bed(Cues { fail: Some((1, NOT_ENOUGH_REPLICAS, 2)), ..Cues::default() }, "");
    let mut client = RawClient::connect(b.proxy.bootstrap);
    client.send(&acks0(1, &[(0, values("p0", 3)), (1, values("p1", 5))]));
    wait_until("both partitions stored", Duration::from_secs(10), || b.state.lock().expect("lock").stored.len() >= 2);
    std::thread::sleep(Duration::from_millis(300));
    let st = b.state.lock().expect("lock");
    let stored: Vec<_> = st.stored.iter().map(|s| (s.partition, s.records)).collect();
    assert_eq!(stored, [(0, 3), (1, 5)], "each partition stored once");
    let resent: Vec<i32> = st.received.iter().filter(|r| r.0 == OWN).map(|r| r.1).collect();
    assert_eq!(resent, [1, 1], "only the failed partition re-sent, until it succeeded");
    drop(st);
    let audit = b.proxy.audit();
    assert!(audit.iter().any(|l| l["event"] == "unseen_produce_error" && l["detail"]["redelivering_partitions"] == 1), "{audit:?}");
    assert_eq!(metric(&b.proxy, "kdp_redelivered_records_total"), 5.0);
    // Errors the client never sees are counted too: the first answer and the first re-send.
    assert_eq!(metric(&b.proxy, "kdp_produce_errors_total{error=\"NotEnoughReplicas\"}"), 2.0);
}

#[test]
fn a_full_budget_stops_reading_the_client_and_a_silent_broker_ends_in_undelivered_events() {
    let b = bed(
        Cues { silent: Some(NOT_ENOUGH_REPLICAS), ..Cues::default() },
        "limits:\n  redelivery_bytes_per_connection: 1048576\npolicies:\n  produce_acks:\n    delivery_timeout_ms: 1500\n",
    );
    // Five requests of ~400 KB (300 records of 1.3 KB each): two fit the 1 MiB budget. Sent
    // from a thread: once the proxy stops reading, the writes block.
    let port = b.proxy.bootstrap;
    let sender = std::thread::spawn(move || {
        let mut client = RawClient::connect(port);
        let big = |i: i32| acks0(i, &[(0, (0..300).map(|n| format!("b{i}-{n}-{}", "x".repeat(1300))).collect())]);
        for i in 1..=5 {
            assert!(client.try_send(&big(i)), "send {i}");
        }
        client
    });
    std::thread::sleep(Duration::from_millis(700));
    let forwarded = || b.state.lock().expect("lock").client_produces;
    assert_eq!(forwarded(), 2, "the third request waits for budget: the client is not read");
    assert!(metric(&b.proxy, "kdp_redelivery_backpressure_total") >= 1.0);
    wait_until("every record accounted", Duration::from_secs(20), || metric(&b.proxy, "kdp_undelivered_records_total") >= 1500.0);
    std::thread::sleep(Duration::from_millis(1500));
    let undelivered: Vec<_> = b.proxy.audit().into_iter().filter(|l| l["event"] == "undelivered").collect();
    let records: i64 = undelivered.iter().map(|l| l["detail"]["records"].as_i64().expect("records")).sum();
    assert_eq!((undelivered.len(), records), (5, 1500), "one event per request, exact record counts: {undelivered:?}");
    for l in &undelivered {
        assert_eq!(
            (l["action"].as_str(), l["rule"].as_str(), l["client_id"].as_str()),
            (Some("give_up"), Some("produce_acks"), Some("app"))
        );
        assert!(l["detail"]["reason"] == "delivery_timeout", "{l}");
    }
    assert_eq!(metric(&b.proxy, "kdp_undelivered_records_total"), 1500.0);
    assert_eq!(metric(&b.proxy, "kdp_redelivery_held_bytes"), 0.0);
    drop(sender.join().expect("sender"));
}

#[test]
fn an_already_idempotent_batch_is_forwarded_untouched() {
    let b = bed(Cues::default(), "");
    let stamp = ProducerStamp { producer_id: 5, producer_epoch: 2, base_sequence: 0 };
    let batch = records::build_batch(&[Bytes::from_static(b"mine")], stamp, 1_700_000_000_000).expect("batch");
    let req = ProduceRequest::default().with_acks(0).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default()
        .with_name(TopicName(s(TOPIC)))
        .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(batch.clone()))])]);
    let mut client = RawClient::connect(b.proxy.bootstrap);
    client.send(&frames::request(ApiKey::Produce, 7, 1, Some("app"), &req).expect("encode"));
    wait_until("stored", Duration::from_secs(5), || !b.state.lock().expect("lock").stored.is_empty());
    let got = b._fake.got();
    let produce = got.iter().find(|g| g.api_key == 0).expect("produce");
    assert!(produce.frame.windows(batch.len()).any(|w| w == batch), "the batch bytes reach the broker unchanged");
    assert_eq!(b.state.lock().expect("lock").stored[0].producer_id, 5);
    assert_eq!(metric(&b.proxy, "kdp_redelivery_unheld_requests_total{reason=\"unstampable\"}"), 1.0);
}

#[test]
fn requests_written_after_the_broker_died_are_read_and_delivered() {
    let b = bed(Cues { close_after: Some(1), ..Cues::default() }, "");
    let mut client = RawClient::connect(b.proxy.bootstrap);
    client.send(&acks0(1, &[(0, values("a", 2))]));
    // The broker dies after storing #1; the producer, unaware, writes #2 before it reads the
    // end of the stream.
    wait_until("the broker died", Duration::from_secs(5), || b.state.lock().expect("lock").client_produces == 1);
    std::thread::sleep(Duration::from_millis(200));
    assert!(client.try_send(&acks0(2, &[(0, values("b", 3))])));
    assert!(client.closed(), "end of stream after the proxy read what was written");
    wait_until("both stored", Duration::from_secs(10), || b.state.lock().expect("lock").stored.len() >= 2);
    let st = b.state.lock().expect("lock");
    let firsts: Vec<_> = st.stored.iter().map(|s| String::from_utf8_lossy(&s.first).into_owned()).collect();
    assert_eq!(firsts, ["a-0", "b-0"]);
}

#[test]
fn shutdown_waits_for_held_requests_then_gives_them_up_with_an_audit_event() {
    let mut b = bed(Cues { silent: Some(NOT_ENOUGH_REPLICAS), ..Cues::default() }, "limits:\n  drain_timeout_ms: 1500\n");
    let mut client = RawClient::connect(b.proxy.bootstrap);
    client.send(&acks0(1, &[(0, values("s", 3))]));
    client.send(&acks0(2, &[(0, values("t", 4)), (1, values("u", 2))]));
    wait_until("both forwarded", Duration::from_secs(5), || b.state.lock().expect("lock").client_produces == 2);
    let started = Instant::now();
    b.proxy.stop();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1400), "the drain waited for the held requests ({took:?})");
    let undelivered: Vec<_> = b.proxy.audit().into_iter().filter(|l| l["event"] == "undelivered").collect();
    let mut got: Vec<_> = undelivered.iter().map(|l| (l["detail"]["partition"].as_i64(), l["detail"]["records"].as_i64())).collect();
    got.sort();
    assert_eq!(got, [(Some(0), Some(3)), (Some(0), Some(4)), (Some(1), Some(2))], "{undelivered:?}");
    assert!(undelivered.iter().all(|l| l["detail"]["reason"] == "proxy_shutdown"), "{undelivered:?}");
}

#[test]
fn requests_written_while_the_proxy_shuts_down_are_read_and_delivered() {
    let mut b = bed(Cues::default(), "");
    let mut client = RawClient::connect(b.proxy.bootstrap);
    client.send(&acks0(1, &[(0, values("before", 2))]));
    wait_until("the first stored", Duration::from_secs(5), || !b.state.lock().expect("lock").stored.is_empty());
    let _ = std::process::Command::new("kill").arg("-TERM").arg(b.proxy.proc.child.id().to_string()).status();
    // The proxy has stopped reading and answers what it forwarded; the producer, unaware, writes
    // one more request before it reads the end of the stream.
    std::thread::sleep(Duration::from_millis(300));
    assert!(client.try_send(&acks0(2, &[(0, values("during", 3))])));
    assert!(client.closed(), "end of stream");
    drop(client);
    b.proxy.stop();
    let st = b.state.lock().expect("lock");
    let firsts: Vec<_> = st.stored.iter().map(|s| String::from_utf8_lossy(&s.first).into_owned()).collect();
    assert_eq!(firsts, ["before-0", "during-0"], "the request written during shutdown was read and delivered");
}

#[test]
fn a_partition_whose_leader_moved_is_resent_to_the_new_leader() {
    let b = bed(Cues { moved: true, ..Cues::default() }, "");
    let mut client = RawClient::connect(b.proxy.bootstrap);
    client.send(&acks0(1, &[(0, values("m", 6))]));
    assert!(client.closed(), "NOT_LEADER_OR_FOLLOWER closes the client connection, as a broker does");
    wait_until("stored", Duration::from_secs(10), || !b.state.lock().expect("lock").stored.is_empty());
    let st = b.state.lock().expect("lock");
    assert_eq!(st.stored_at, [b._fake.ports[1]], "stored once, by node 2, the leader Metadata names now");
    assert_eq!((st.stored[0].records, st.stored[0].base_sequence), (6, 0));
    drop(st);
    assert_eq!(metric(&b.proxy, "kdp_redelivered_records_total"), 6.0);
}

//! The audit sinks against tansu 0.6: the proxy's own idempotent producer (InitProducerId
//! versions, re-sent batches deduplicated), the Kafka sink fed by weak produces and read back
//! through the proxy exactly once, file rotation under a small size limit, and a sink whose
//! cluster never answers dropping and reporting while the others keep writing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_durability_proxy::cluster::client::versions;
use kafka_durability_proxy::cluster::leaders::{self, TopicSpec};
use kafka_durability_proxy::cluster::producer::{Producer, ProducerConfig};
use kafka_durability_proxy::cluster::{ClientSettings, ClusterClient};
use kafka_durability_proxy::protocol::records::{self, ProducerStamp};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{InitProducerIdRequest, ProduceRequest, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::support::{free_port, kclient, runtime, start_tansu};

fn client(port: u16) -> ClusterClient {
    ClusterClient::new(ClientSettings {
        bootstrap: vec![format!("127.0.0.1:{port}")],
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        max_frame_bytes: 1 << 24,
        tls: None,
        sasl: None,
    })
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

#[allow(dead_code)]
fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} within {secs}s");
}

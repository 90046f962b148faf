//! Proof that record bytes are not copied on the forward path: a counting global allocator
//! watches a real session (over in-memory pipes) forward a 1 MiB Produce request, whose acks is
//! upgraded in place, and a 1 MiB Fetch v16 response whose KIP-951 node endpoints are rewritten.
//! Reading a frame needs one buffer of its size; any copy or re-encode of the records would need a
//! second. In steady state the read buffer is reused too, so the bound is a quarter of the records.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use kafka_durability_proxy::protocol::encode as frames;
use kafka_durability_proxy::protocol::{self, SIZE_LEN};
use kafka_durability_proxy::{audit, config, session, state};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, NodeEndpoint, PartitionData};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, ProduceRequest, TopicName};
use kafka_protocol::protocol::{Decodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const RECORDS: usize = 1 << 20;

async fn measure<F: std::future::Future>(f: F) -> (F::Output, usize) {
    ALLOCATED.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let out = f.await;
    COUNTING.store(false, Ordering::SeqCst);
    (out, ALLOCATED.load(Ordering::SeqCst))
}

fn produce_frame(corr: i32, fill: u8) -> Bytes {
    produce_frame_acks(corr, fill, 1)
}

fn produce_frame_acks(corr: i32, fill: u8, acks: i16) -> Bytes {
    let req = ProduceRequest::default().with_acks(acks).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_static_str("orders")))
        .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(Bytes::from(vec![fill; RECORDS])))])]);
    frames::request(ApiKey::Produce, 9, corr, Some("legacy"), &req).expect("encode")
}

fn fetch_response(corr: i32, fill: u8) -> Bytes {
    let body = FetchResponse::default()
        .with_responses(vec![FetchableTopicResponse::default()
            .with_topic_id(uuid::Uuid::from_u128(1))
            .with_partitions(vec![PartitionData::default().with_partition_index(0).with_records(Some(Bytes::from(vec![fill; RECORDS])))])])
        .with_node_endpoints(vec![NodeEndpoint::default()
            .with_node_id(BrokerId(7))
            .with_host(StrBytes::from_static_str("kafka-7"))
            .with_port(9092)]);
    frames::response(ApiKey::Fetch, 16, corr, &body).expect("encode")
}

async fn read_frame(r: &mut (impl AsyncReadExt + Unpin), buf: &mut [u8]) -> usize {
    let mut size = [0u8; 4];
    r.read_exact(&mut size).await.expect("size");
    let n = i32::from_be_bytes(size) as usize;
    buf[..4].copy_from_slice(&size);
    r.read_exact(&mut buf[4..4 + n]).await.expect("body");
    4 + n
}

/// A session as the proxy runs one, over in-memory pipes.
struct Piped {
    client: tokio::io::DuplexStream,
    broker: tokio::io::DuplexStream,
    proxy: std::sync::Arc<state::Proxy>,
    /// The audit writer lives as long as the session.
    _writer: audit::WriterHandle,
}

fn session_over_pipes(cfg: &str, peer: &str) -> Piped {
    let cfg = config::parse(cfg).expect("config");
    let (log, writer) = audit::spawn(Box::new(tokio::io::sink()), 1000, Duration::from_secs(60));
    let proxy = state::Proxy::new(cfg, log).expect("state");
    let (client, proxy_client) = tokio::io::duplex(4 << 20);
    let (proxy_broker, broker) = tokio::io::duplex(4 << 20);
    let (cr, cw) = tokio::io::split(proxy_client);
    let (br, bw) = tokio::io::split(proxy_broker);
    let peer: SocketAddr = peer.parse().expect("addr");
    let p = proxy.clone();
    tokio::spawn(async move { session::serve_halves(&p, peer, &Default::default(), (cr, cw), (br, bw)).await });
    Piped { client, broker, proxy, _writer: writer }
}

#[tokio::test(flavor = "current_thread")]
async fn records_are_not_copied_when_forwarding_produce_and_fetch() {
    // Node 7 appears in the Fetch response's endpoints: it gets a real listener on a free port.
    let node7 = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port");
    let cfg = format!(
        "listen:\n  bind_host: 127.0.0.1\n  advertised_host: proxy\n  bootstrap_port: 1\n  broker_ports: {{7: {node7}}}\n\
         upstream:\n  bootstrap_servers: ['b:1']\n"
    );
    let Piped { mut client, mut broker, _writer, .. } = session_over_pipes(&cfg, "127.0.0.1:5555");
    let mut buf = vec![0u8; 2 * RECORDS + 4096];

    // Produce: the first round warms up buffers and pipes; the second is measured.
    for (round, fill) in [(0, 1u8), (1, 2u8)] {
        let frame = produce_frame(10 + round, fill);
        let ((), allocated) = measure(async {
            client.write_all(&frame).await.expect("client write");
            let n = read_frame(&mut broker, &mut buf).await;
            assert_eq!(n, frame.len());
        })
        .await;
        let got = &buf[..frame.len()];
        let h = protocol::peek_request_header(got).expect("header");
        assert_eq!(protocol::peek_produce(got, &h).map(|p| p.acks), Some(-1), "acks upgraded in place");
        let differing = got.iter().zip(frame.iter()).filter(|(a, b)| a != b).count();
        assert!(differing <= 2, "only the acks bytes change, {differing} differ");
        if round == 1 {
            println!("Produce: {allocated} bytes allocated to forward {RECORDS} record bytes");
            assert!(allocated < RECORDS / 4, "Produce forward allocated {allocated} bytes for {RECORDS} record bytes: a copy?");
        }
        // Answer it so the session stays in step.
        let resp = kafka_protocol::messages::ProduceResponse::default();
        broker.write_all(&frames::response(ApiKey::Produce, 9, 10 + round, &resp).expect("encode")).await.expect("write");
        read_frame(&mut client, &mut buf).await;
    }

    // Fetch v16 with node endpoints: the tail is rebuilt, the records are not.
    for (round, fill) in [(0, 3u8), (1, 4u8)] {
        let corr = 20 + round;
        let req = frames::request(ApiKey::Fetch, 16, corr, Some("consumer"), &FetchRequest::default()).expect("encode");
        client.write_all(&req).await.expect("write");
        read_frame(&mut broker, &mut buf).await;
        let resp = fetch_response(corr, fill);
        let (n, allocated) = measure(async {
            broker.write_all(&resp).await.expect("broker write");
            read_frame(&mut client, &mut buf).await
        })
        .await;
        let mut body = Bytes::copy_from_slice(&buf[SIZE_LEN + 5..n]);
        let m = FetchResponse::decode(&mut body, 16).expect("decode");
        assert_eq!(m.node_endpoints[0].host.as_str(), "proxy", "endpoint rewritten");
        assert_eq!(m.node_endpoints[0].port, i32::from(node7));
        assert_eq!(m.responses[0].partitions[0].records.as_deref(), Some(&vec![fill; RECORDS][..]));
        if round == 1 {
            println!("Fetch: {allocated} bytes allocated to forward {RECORDS} record bytes");
            assert!(allocated < RECORDS / 4, "Fetch forward allocated {allocated} bytes for {RECORDS} record bytes: a copy?");
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_large_acks_all_produce_is_forwarded_while_it_arrives_without_a_copy() {
    let cfg = "listen:\n  bind_host: 127.0.0.1\n  advertised_host: proxy\n  bootstrap_port: 1\n  broker_port_base: 20000\nupstream:\n  bootstrap_servers: ['b:1']\n";
    let Piped { mut client, mut broker, proxy, _writer } = session_over_pipes(cfg, "127.0.0.1:5556");
    let mut buf = vec![0u8; 2 * RECORDS + 4096];
    for (round, fill) in [(0, 5u8), (1, 6u8)] {
        let frame = produce_frame_acks(30 + round, fill, -1);
        let half = frame.len() / 2;
        let ((), allocated) = measure(async {
            client.write_all(&frame[..half]).await.expect("client write");
            // Store-and-forward would send nothing until the whole frame is in.
            tokio::time::timeout(Duration::from_secs(5), broker.read_exact(&mut buf[..half]))
                .await
                .expect("the first half reaches the broker before the client sent the rest")
                .expect("read");
            client.write_all(&frame[half..]).await.expect("client write");
            broker.read_exact(&mut buf[half..frame.len()]).await.expect("read");
        })
        .await;
        assert!(buf[..frame.len()] == frame[..], "forwarded byte for byte");
        if round == 1 {
            println!("cut-through Produce: {allocated} bytes allocated to forward {RECORDS} record bytes");
            assert!(allocated < RECORDS / 4, "cut-through allocated {allocated} bytes for {RECORDS} record bytes: a copy?");
        }
        let resp = kafka_protocol::messages::ProduceResponse::default();
        broker.write_all(&frames::response(ApiKey::Produce, 9, 30 + round, &resp).expect("encode")).await.expect("write");
        let n = read_frame(&mut client, &mut buf).await;
        assert_eq!(protocol::peek_response_correlation(&buf[..n]), Some(30 + round), "answered in turn");
    }
    assert_eq!(proxy.metrics.cut_through.get(), 2);
}

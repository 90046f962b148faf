//! Against a scripted fake broker: what tansu never produces (several brokers, batched
//! FindCoordinator, KIP-951 endpoints, errors behind swallowed acks=0 responses, no answer to
//! acks=0 as Apache Kafka does, slow responses that a local answer must wait behind).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_durability_proxy::protocol::encode as frames;
use kafka_durability_proxy::protocol::produce_response;
use kafka_durability_proxy::protocol::SIZE_LEN;
use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_partitions_request::{CreatePartitionsAssignment, CreatePartitionsTopic};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData as FetchPartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{NodeEndpoint, PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, CreatePartitionsRequest,
    CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse, DescribeConfigsRequest,
    DescribeConfigsResponse, FetchRequest, FetchResponse, FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest,
    HeartbeatResponse, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use crate::support::fake::{FakeBroker, RawClient, Reply, Script};
use crate::support::{free_port, wait_for_port, Proxy};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// A base port with base+1..=base+8 free, for node listeners.
fn free_base() -> u16 {
    for _ in 0..200 {
        // free_port() stays below 32000, so base + 8 stays below the ephemeral range too.
        let base = free_port();
        if (1..=8).all(|n| std::net::TcpListener::bind(("127.0.0.1", base + n)).is_ok()) {
            return base;
        }
    }
    panic!("no free port range");
}

fn decode<M: Decodable>(frame: &Bytes, api: ApiKey, version: i16) -> M {
    let mut body = frame.slice(SIZE_LEN + frames::response_header_len(api, version)..);
    M::decode(&mut body, version).expect("decode response")
}

fn corr(frame: &Bytes) -> i32 {
    i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]])
}

fn produce_req(version: i16, acks: i16, client: &str, corr: i32) -> Bytes {
    let req = ProduceRequest::default().with_acks(acks).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default()
        .with_name(TopicName(s("orders")))
        .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(Bytes::from_static(&[7; 70])))])]);
    frames::request(ApiKey::Produce, version, corr, Some(client), &req).expect("encode")
}

fn metadata_req(corr: i32, client: &str) -> Bytes {
    frames::request(ApiKey::Metadata, 12, corr, Some(client), &MetadataRequest::default().with_topics(Some(vec![]))).expect("encode")
}

/// The fake cluster: nodes 1..=3 on the fake's ports; node 4 appears only in KIP-951 endpoints.
fn cluster_script() -> impl Fn(&[u16]) -> Script {
    |ports: &[u16]| {
        let ports = ports.to_vec();
        Arc::new(move |_port, h, _frame: &[u8]| {
            let v = h.api_version;
            let frame = _frame;
            match h.api_key {
                18 => {
                    // The proxy's own client also learns that DescribeConfigs exists (it asks it to
                    // judge config changes); what clients see through the proxy is the list below.
                    let own = h.client_id(frame) == Some("kafka-durability-proxy");
                    let keys: &[(i16, i16, i16)] = if own {
                        &[
                            (0, 0, 13),
                            (1, 4, 17),
                            (3, 0, 12),
                            (10, 0, 6),
                            (18, 0, 4),
                            (19, 2, 7),
                            (20, 1, 6),
                            (32, 0, 4),
                            (33, 0, 2),
                            (37, 0, 3),
                            (60, 0, 1),
                        ]
                    } else {
                        &[(0, 0, 13), (1, 4, 17), (3, 0, 12), (10, 0, 6), (18, 0, 4), (60, 0, 1), (12_345, 0, 1)]
                    };
                    let body = ApiVersionsResponse::default().with_api_keys(
                        keys.iter()
                            .map(|(k, a, b)| ApiVersion::default().with_api_key(*k).with_min_version(*a).with_max_version(*b))
                            .collect(),
                    );
                    Reply::Frame(frames::response(ApiKey::ApiVersions, v, h.correlation_id, &body).expect("enc"))
                }
                3 => {
                    let brokers = (1..=3)
                        .map(|n| {
                            MetadataResponseBroker::default()
                                .with_node_id(BrokerId(n))
                                .with_host(s("127.0.0.1"))
                                .with_port(i32::from(ports[n as usize - 1]))
                        })
                        .collect();
                    let body = MetadataResponse::default().with_brokers(brokers).with_controller_id(BrokerId(1));
                    Reply::Frame(frames::response(ApiKey::Metadata, v, h.correlation_id, &body).expect("enc"))
                }
                10 => {
                    let body = FindCoordinatorResponse::default().with_coordinators(vec![
                        Coordinator::default()
                            .with_key(s("group-a"))
                            .with_node_id(BrokerId(2))
                            .with_host(s("127.0.0.1"))
                            .with_port(i32::from(ports[1])),
                        Coordinator::default().with_key(s("group-b")).with_node_id(BrokerId(-1)).with_error_code(15),
                    ]);
                    Reply::Frame(frames::response(ApiKey::FindCoordinator, v, h.correlation_id, &body).expect("enc"))
                }
                32 => {
                    // Current configs: topic "orders" has min.insync.replicas=2 as an override.
                    let mut b = Bytes::copy_from_slice(&frame_body(frame, h));
                    let req = DescribeConfigsRequest::decode(&mut b, v).expect("describe configs");
                    let results = req
                        .resources
                        .iter()
                        .map(|r| {
                            let configs = if r.resource_type == 2 && r.resource_name.as_str() == "orders" {
                                vec![
                                    DescribeConfigsResourceResult::default()
                                        .with_name(s("min.insync.replicas"))
                                        .with_value(Some(s("2")))
                                        .with_config_source(1),
                                    DescribeConfigsResourceResult::default()
                                        .with_name(s("retention.ms"))
                                        .with_value(Some(s("604800000")))
                                        .with_config_source(5),
                                ]
                            } else {
                                vec![]
                            };
                            DescribeConfigsResult::default()
                                .with_resource_type(r.resource_type)
                                .with_resource_name(r.resource_name.clone())
                                .with_configs(configs)
                        })
                        .collect();
                    let body = DescribeConfigsResponse::default().with_results(results);
                    Reply::Frame(frames::response(ApiKey::DescribeConfigs, v, h.correlation_id, &body).expect("enc"))
                }
                33 => {
                    let mut b = Bytes::copy_from_slice(&frame_body(frame, h));
                    let req = AlterConfigsRequest::decode(&mut b, v).expect("alter configs");
                    let responses = req
                        .resources
                        .iter()
                        .map(|r| {
                            AlterConfigsResourceResponse::default()
                                .with_resource_type(r.resource_type)
                                .with_resource_name(r.resource_name.clone())
                        })
                        .collect();
                    Reply::Frame(
                        frames::response(
                            ApiKey::AlterConfigs,
                            v,
                            h.correlation_id,
                            &AlterConfigsResponse::default().with_responses(responses),
                        )
                        .expect("enc"),
                    )
                }
                19 => {
                    let mut b = Bytes::copy_from_slice(&frame_body(frame, h));
                    let req = CreateTopicsRequest::decode(&mut b, v).expect("create topics");
                    let topics = req.topics.iter().map(|t| CreatableTopicResult::default().with_name(t.name.clone())).collect();
                    let body = CreateTopicsResponse::default().with_topics(topics);
                    Reply::Frame(frames::response(ApiKey::CreateTopics, v, h.correlation_id, &body).expect("enc"))
                }
                20 => {
                    let mut b = Bytes::copy_from_slice(&frame_body(frame, h));
                    let req = DeleteTopicsRequest::decode(&mut b, v).expect("delete topics");
                    let names = req.topic_names.iter().cloned().chain(req.topics.iter().filter_map(|t| t.name.clone()));
                    let responses = names.map(|n| DeletableTopicResult::default().with_name(Some(n))).collect();
                    let body = DeleteTopicsResponse::default().with_responses(responses);
                    Reply::Frame(frames::response(ApiKey::DeleteTopics, v, h.correlation_id, &body).expect("enc"))
                }
                37 => {
                    let mut b = Bytes::copy_from_slice(&frame_body(frame, h));
                    let req = CreatePartitionsRequest::decode(&mut b, v).expect("create partitions");
                    let results = req.topics.iter().map(|t| CreatePartitionsTopicResult::default().with_name(t.name.clone())).collect();
                    Reply::Frame(
                        frames::response(
                            ApiKey::CreatePartitions,
                            v,
                            h.correlation_id,
                            &CreatePartitionsResponse::default().with_results(results),
                        )
                        .expect("enc"),
                    )
                }
                1 => {
                    // Fetch: partition 0 of "orders" was truncated by retention up to offset 100.
                    let part = FetchPartitionData::default()
                        .with_partition_index(0)
                        .with_error_code(1)
                        .with_high_watermark(250)
                        .with_log_start_offset(100);
                    let topic = FetchableTopicResponse::default().with_topic(TopicName(s("orders"))).with_partitions(vec![part]);
                    let body = FetchResponse::default().with_responses(vec![topic]);
                    Reply::Frame(frames::response(ApiKey::Fetch, v, h.correlation_id, &body).expect("enc"))
                }
                12 => Reply::Frame(frames::response(ApiKey::Heartbeat, v, h.correlation_id, &HeartbeatResponse::default()).expect("enc")),
                17 => {
                    let body = SaslHandshakeResponse::default().with_mechanisms(vec![s("SCRAM-SHA-256")]);
                    Reply::Frame(frames::response(ApiKey::SaslHandshake, v, h.correlation_id, &body).expect("enc"))
                }
                36 => {
                    // A SCRAM conversation in shape (the proxy reads names, it verifies nothing):
                    // client-first gets a server-first, client-final gets a server-final `v=`.
                    let mut b = Bytes::copy_from_slice(&frame_body(frame, h));
                    let req = SaslAuthenticateRequest::decode(&mut b, v).expect("sasl authenticate");
                    let reply: &[u8] =
                        if req.auth_bytes.starts_with(b"n,,") { b"r=clientnonceSERVER,s=c2FsdA==,i=4096" } else { b"v=c2lnbmF0dXJl" };
                    let body =
                        SaslAuthenticateResponse::default().with_auth_bytes(Bytes::copy_from_slice(reply)).with_session_lifetime_ms(60_000);
                    Reply::Frame(frames::response(ApiKey::SaslAuthenticate, v, h.correlation_id, &body).expect("enc"))
                }
                _ => Reply::Nothing,
            }
        })
    }
}

fn frame_body(frame: &[u8], h: &kafka_durability_proxy::protocol::RequestHeader) -> Vec<u8> {
    frame[h.body_offset.expect("known api")..].to_vec()
}

/// Script answering Produce by the client id: `err` fails the partition, `kip951` reports a new
/// leader on node 4, `slow` is answered after a delay, acks=0 unchanged gets no answer.
fn with_produce(ports: Vec<u16>) -> Script {
    let base = cluster_script()(&ports);
    Arc::new(move |port, h, frame| {
        if h.api_key == 3 && h.client_id(frame) == Some("slow") {
            if let Reply::Frame(b) = base(port, h, frame) {
                return Reply::After(Duration::from_millis(400), b);
            }
        }
        if h.api_key != 0 {
            return base(port, h, frame);
        }
        let v = h.api_version;
        let acks = kafka_durability_proxy::protocol::peek_produce(frame, h).map(|p| p.acks);
        let client = h.client_id(frame).unwrap_or_default();
        // Apache Kafka never answers acks=0; tansu does. `tansu-like` clients get tansu's way.
        if acks == Some(0) && client != "tansu-like" {
            return Reply::Nothing;
        }
        let mut part = PartitionProduceResponse::default().with_index(0).with_base_offset(42);
        let mut body = ProduceResponse::default();
        match client {
            "err" => part = part.with_error_code(6).with_error_message(Some(s("This server is not the leader"))),
            "too-big" => {
                part =
                    part.with_error_code(10).with_error_message(Some(s("The request included a message larger than the max message size")))
            }
            "kip951" => {
                part = part.with_error_code(6);
                body = body.with_node_endpoints(vec![NodeEndpoint::default()
                    .with_node_id(BrokerId(4))
                    .with_host(s("127.0.0.1"))
                    .with_port(i32::from(ports[0]))]);
            }
            _ => {}
        }
        let body = body
            .with_responses(vec![TopicProduceResponse::default().with_name(TopicName(s("orders"))).with_partition_responses(vec![part])]);
        Reply::Frame(frames::response(ApiKey::Produce, v, h.correlation_id, &body).expect("enc"))
    })
}

struct Cluster {
    fake: FakeBroker,
    proxy: Proxy,
    base: u16,
    _dir: tempfile::TempDir,
}

fn cluster(policies: &str) -> Cluster {
    let dir = tempfile::tempdir().expect("dir");
    // Ports are known only after binding, so the script reads them from a cell filled just after.
    let cell: Arc<std::sync::OnceLock<Vec<u16>>> = Arc::new(std::sync::OnceLock::new());
    let c2 = cell.clone();
    let script: Script = Arc::new(move |port, h, frame| with_produce(c2.get().cloned().unwrap_or_default())(port, h, frame));
    let fake = FakeBroker::start(3, script);
    let _ = cell.set(fake.ports.clone());
    let base = free_base();
    let bootstrap = free_port();
    let cfg = format!(
        "listen:\n  bind_host: 127.0.0.1\n  advertised_host: 127.0.0.1\n  bootstrap_port: {bootstrap}\n  broker_port_base: {base}\n\
         upstream:\n  bootstrap_servers: [\"127.0.0.1:{}\"]\n\
         audit:\n  sink: file\n  path: {}\n  window_secs: 1\nadmin:\n  listen: 127.0.0.1:{}\n{policies}",
        fake.ports[0],
        dir.path().join("audit.jsonl").display(),
        free_port()
    );
    let proxy = Proxy::start_with_config(dir.path(), bootstrap, &cfg);
    Cluster { fake, proxy, base, _dir: dir }
}

#[test]
fn discovery_gives_every_broker_a_listener_and_metadata_names_only_them() {
    let c = cluster("");
    for n in 1..=3 {
        wait_for_port(c.base + n, "node listener from discovery");
    }
    let mut client = RawClient::connect(c.proxy.bootstrap);
    client.send(&metadata_req(7, "app"));
    let resp = client.recv().expect("metadata response");
    assert_eq!(corr(&resp), 7);
    let m: MetadataResponse = decode(&resp, ApiKey::Metadata, 12);
    let got: Vec<_> = m.brokers.iter().map(|b| (b.node_id.0, b.host.to_string(), b.port)).collect();
    let want: Vec<_> = (1..=3).map(|n| (n, "127.0.0.1".to_string(), i32::from(c.base) + n)).collect();
    assert_eq!(got, want);
    // A node listener reaches exactly that broker.
    let mut node2 = RawClient::connect(c.base + 2);
    node2.send(&metadata_req(8, "app"));
    assert!(node2.recv().is_some());
    assert!(c.fake.got().iter().any(|g| g.listener_port == c.fake.ports[1]), "node 2's listener reached node 2");
}

#[test]
fn batched_find_coordinator_is_rewritten() {
    let c = cluster("");
    let mut client = RawClient::connect(c.proxy.bootstrap);
    let req = FindCoordinatorRequest::default().with_key_type(0).with_coordinator_keys(vec![s("group-a"), s("group-b")]);
    client.send(&frames::request(ApiKey::FindCoordinator, 4, 3, Some("app"), &req).expect("enc"));
    let resp = client.recv().expect("response");
    let m: FindCoordinatorResponse = decode(&resp, ApiKey::FindCoordinator, 4);
    let got: Vec<_> = m.coordinators.iter().map(|c| (c.key.to_string(), c.host.to_string(), c.port, c.error_code)).collect();
    assert_eq!(got, vec![("group-a".into(), "127.0.0.1".into(), i32::from(c.base) + 2, 0), ("group-b".into(), "".into(), 0, 15)]);
}

#[test]
fn kip951_endpoints_are_rewritten_and_a_new_node_gets_its_listener() {
    let c = cluster("");
    let mut client = RawClient::connect(c.proxy.bootstrap);
    client.send(&produce_req(10, -1, "kip951", 5));
    let resp = client.recv().expect("produce response");
    let m: ProduceResponse = decode(&resp, ApiKey::Produce, 10);
    let eps: Vec<_> = m.node_endpoints.iter().map(|e| (e.node_id.0, e.host.to_string(), e.port)).collect();
    assert_eq!(eps, vec![(4, "127.0.0.1".into(), i32::from(c.base) + 4)]);
    assert_eq!(m.responses[0].partition_responses[0].error_code, 6);
    wait_for_port(c.base + 4, "listener for node 4, first seen in a KIP-951 endpoint");
}

#[test]
fn upgraded_acks0_with_an_error_is_audited_and_the_client_disconnected() {
    let mut c = cluster("");
    let mut client = RawClient::connect(c.proxy.bootstrap);
    client.send(&produce_req(9, 0, "err", 1));
    assert!(client.recv().is_none(), "the client gets no response to acks=0 and its connection closes");
    assert!(c.fake.got().iter().any(|g| g.api_key == 0 && g.acks == Some(-1)), "broker saw acks=-1");
    c.proxy.stop();
    let lines = c.proxy.audit();
    let unseen = lines.iter().find(|l| l["event"] == "unseen_produce_error").unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(unseen["action"], "close");
    assert_eq!(unseen["detail"]["errors"][0]["error_code"], 6);
    assert_eq!(unseen["detail"]["errors"][0]["error_message"], "This server is not the leader");
    assert_eq!(unseen["client_id"], "err");
}

#[test]
fn upgraded_acks0_success_is_swallowed_and_order_kept() {
    let c = cluster("");
    let mut client = RawClient::connect(c.proxy.bootstrap);
    let mut batch = Vec::new();
    batch.extend_from_slice(&produce_req(9, 0, "ok", 1));
    batch.extend_from_slice(&produce_req(3, 0, "ok", 2));
    batch.extend_from_slice(&metadata_req(3, "ok"));
    client.send(&batch);
    let resp = client.recv().expect("metadata");
    assert_eq!(corr(&resp), 3, "the only response is Metadata's: acks=0 responses are dropped");
    assert!(client.closed() || client.recv().is_none());
}

#[test]
fn a_local_rejection_waits_behind_a_slow_broker_response() {
    let c = cluster("policies:\n  produce_acks:\n    action: reject\n");
    let mut client = RawClient::connect(c.proxy.bootstrap);
    let mut batch = Vec::new();
    batch.extend_from_slice(&metadata_req(1, "slow"));
    batch.extend_from_slice(&produce_req(9, 1, "slow", 2));
    client.send(&batch);
    let first = client.recv().expect("first");
    let second = client.recv().expect("second");
    assert_eq!((corr(&first), corr(&second)), (1, 2), "responses in request order");
    let scan = produce_response::scan(&second, 9).expect("produce response");
    assert_eq!(scan.errors[0].error_code, 21);
    assert!(scan.errors[0].message.as_deref().is_some_and(|m| m.contains("produce_acks") && m.contains("acks=all")));
    assert!(!c.fake.got().iter().any(|g| g.api_key == 0), "the broker never saw the rejected Produce");
}

#[test]
fn acks0_forwarded_unchanged_to_a_broker_that_never_answers_it() {
    let c = cluster("policies:\n  produce_acks:\n    action: audit\n");
    let mut client = RawClient::connect(c.proxy.bootstrap);
    client.send(&produce_req(9, 0, "fire-and-forget", 1));
    client.send(&metadata_req(2, "fire-and-forget"));
    let resp = client.recv().expect("metadata");
    assert_eq!(corr(&resp), 2);
    assert!(c.fake.got().iter().any(|g| g.api_key == 0 && g.acks == Some(0)), "forwarded unchanged");
}

#[test]
fn api_versions_are_clamped_and_too_new_is_answered_like_a_broker() {
    let c = cluster("");
    let mut client = RawClient::connect(c.proxy.bootstrap);
    client.send(&frames::request(ApiKey::ApiVersions, 3, 1, Some("app"), &ApiVersionsRequest::default()).expect("enc"));
    let resp = client.recv().expect("api versions");
    let m: ApiVersionsResponse = decode(&resp, ApiKey::ApiVersions, 3);
    let got: Vec<_> = m.api_keys.iter().map(|k| (k.api_key, k.min_version, k.max_version)).collect();
    assert_eq!(got, vec![(0, 0, 12), (1, 4, 17), (3, 0, 12), (10, 0, 6), (18, 0, 4), (60, 0, 1)]);

    // ApiVersions v9 does not exist yet: a v0-shaped UNSUPPORTED_VERSION answer, header v0.
    let mut raw = frames::request(ApiKey::ApiVersions, 3, 2, Some("future"), &ApiVersionsRequest::default()).expect("enc").to_vec();
    raw[6..8].copy_from_slice(&9i16.to_be_bytes());
    client.send(&raw);
    let resp = client.recv().expect("unsupported");
    let m: ApiVersionsResponse = decode(&resp, ApiKey::ApiVersions, 0);
    assert_eq!(corr(&resp), 2);
    assert_eq!(m.error_code, 35);
    assert_eq!(m.api_keys.iter().map(|k| (k.api_key, k.max_version)).collect::<Vec<_>>(), vec![(18, 4)]);
}

#[test]
fn an_api_key_the_proxy_does_not_offer_closes_the_connection() {
    let c = cluster("");
    let mut client = RawClient::connect(c.proxy.bootstrap);
    let mut raw = metadata_req(1, "x").to_vec();
    raw[4..6].copy_from_slice(&12_345i16.to_be_bytes());
    client.send(&raw);
    assert!(client.recv().is_none());
    std::thread::sleep(Duration::from_millis(100));
    assert!(c.proxy.log().contains("API key 12345 version 12 is not offered by the proxy"), "{}", c.proxy.log());
}

#[test]
fn answers_to_unchanged_acks0_are_dropped_even_when_they_arrive_together() {
    let c = cluster("policies:\n  produce_acks:\n    action: audit\n");
    let mut client = RawClient::connect(c.proxy.bootstrap);
    let mut batch = Vec::new();
    batch.extend_from_slice(&metadata_req(1, "tansu-like"));
    batch.extend_from_slice(&produce_req(9, 0, "tansu-like", 2));
    batch.extend_from_slice(&produce_req(9, 0, "tansu-like", 3));
    batch.extend_from_slice(&metadata_req(4, "tansu-like"));
    client.send(&batch);
    let a = client.recv().expect("first");
    let b = client.recv().expect("second");
    assert_eq!((corr(&a), corr(&b)), (1, 4), "only the responses the client expects, in order");
    assert!(!c.proxy.log().contains("WARN"), "{}", c.proxy.log());
}

#[test]
fn legacy_alter_configs_that_drops_an_override_is_refused() {
    // Legacy AlterConfigs replaces the whole override set: leaving min.insync.replicas out resets
    // it to the broker default (1). tansu has no AlterConfigs, so the fake broker plays the part.
    let mut c = cluster("");
    let mut client = RawClient::connect(c.proxy.bootstrap);
    let resource = |name: &str, configs: &[(&str, &str)]| {
        AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s(name))
            .with_configs(configs.iter().map(|(k, v)| AlterableConfig::default().with_name(s(k)).with_value(Some(s(v)))).collect())
    };
    for version in 0..=2 {
        let req = AlterConfigsRequest::default().with_resources(vec![
            resource("orders", &[("retention.ms", "86400000")]),
            resource("orders-keeps-isr", &[("retention.ms", "86400000"), ("min.insync.replicas", "2")]),
        ]);
        client.send(&frames::request(ApiKey::AlterConfigs, version, 40 + i32::from(version), Some("ops-script"), &req).expect("enc"));
        let resp = client.recv().expect("response");
        let m: AlterConfigsResponse = decode(&resp, ApiKey::AlterConfigs, version);
        let got: Vec<_> = m.responses.iter().map(|r| (r.resource_name.to_string(), r.error_code)).collect();
        assert_eq!(got, vec![("orders".into(), 44), ("orders-keeps-isr".into(), 0)], "v{version}");
        let msg = m.responses[0].error_message.as_ref().map(|m| m.to_string()).unwrap_or_default();
        assert!(msg.contains("min.insync.replicas unset (broker default 1) is below the required 2"), "{msg}");
    }
    // The broker only ever saw the resource that keeps its min.insync.replicas.
    assert_eq!(c.fake.got().iter().filter(|g| g.api_key == 33).count(), 3);
    c.proxy.stop();
    assert!(c.proxy.audit().iter().any(|l| l["event"] == "alter_config" && l["action"] == "reject" && l["client_id"] == "ops-script"));
}

#[test]
fn new_partitions_with_thin_assignments_are_refused() {
    // tansu has no CreatePartitions; the fake broker answers it.
    let mut c = cluster("");
    let mut client = RawClient::connect(c.proxy.bootstrap);
    let topic = |name: &str, replicas: i32| {
        CreatePartitionsTopic::default()
            .with_name(TopicName(s(name)))
            .with_count(3)
            .with_assignments(Some(vec![CreatePartitionsAssignment::default().with_broker_ids((1..=replicas).map(BrokerId).collect())]))
    };
    let req = CreatePartitionsRequest::default().with_topics(vec![topic("thin", 1), topic("full", 3)]);
    client.send(&frames::request(ApiKey::CreatePartitions, 3, 7, Some("ops-script"), &req).expect("enc"));
    let resp = client.recv().expect("response");
    let m: CreatePartitionsResponse = decode(&resp, ApiKey::CreatePartitions, 3);
    let got: Vec<_> = m.results.iter().map(|r| (r.name.0.to_string(), r.error_code)).collect();
    assert_eq!(got, vec![("thin".into(), 44), ("full".into(), 0)]);
    assert_eq!(c.fake.got().iter().filter(|g| g.api_key == 37).count(), 1, "only the durable topic reached the broker");
    c.proxy.stop();
    assert!(c.proxy.audit().iter().any(|l| l["event"] == "create_partitions" && l["action"] == "reject"));
}

#[test]
fn shutdown_answers_what_was_forwarded_then_closes() {
    let mut c = cluster("");
    let mut client = RawClient::connect(c.proxy.bootstrap);
    client.send(&metadata_req(1, "slow")); // the fake answers after 400 ms
    std::thread::sleep(Duration::from_millis(100));
    let _ = std::process::Command::new("kill").arg("-TERM").arg(c.proxy.proc.child.id().to_string()).status();
    std::thread::sleep(Duration::from_millis(100));
    assert!(std::net::TcpStream::connect(("127.0.0.1", c.proxy.bootstrap)).is_err(), "no new connections while draining");
    let resp = client.recv().expect("the request forwarded before SIGTERM is still answered");
    assert_eq!(corr(&resp), 1);
    assert!(client.recv().is_none(), "then the connection is closed");
    c.proxy.stop();
    assert!(c.proxy.log().contains("finishing the requests already forwarded"), "{}", c.proxy.log());
}

/// An old client's request frame: `like`'s body under `version`'s header (CreateTopics v0 drops
/// the trailing validate_only byte): what Sarama (Kafka 0.10/0.11 mode) and kafka-go 0.2 send.
fn legacy(api: ApiKey, version: i16, like: i16, corr: i32, body: &impl kafka_protocol::protocol::Encodable) -> Vec<u8> {
    let mut raw = frames::request(api, like, corr, Some("old-go-client"), body).expect("enc").to_vec();
    raw[6..8].copy_from_slice(&version.to_be_bytes());
    if api == ApiKey::CreateTopics && version == 0 {
        raw.pop();
        let size = (raw.len() - 4) as i32;
        raw[..4].copy_from_slice(&size.to_be_bytes());
    }
    raw
}

/// (correlation id, [(name, error code)]) of a CreateTopics v0 / DeleteTopics v0 response.
fn legacy_codes(frame: &Bytes) -> (i32, Vec<(String, i16)>) {
    let mut at = 8;
    let n = i32::from_be_bytes(frame[at..at + 4].try_into().expect("count"));
    at += 4;
    let mut out = Vec::new();
    for _ in 0..n {
        let len = i16::from_be_bytes(frame[at..at + 2].try_into().expect("len")) as usize;
        let name = String::from_utf8_lossy(&frame[at + 2..at + 2 + len]).into_owned();
        at += 2 + len;
        out.push((name, i16::from_be_bytes(frame[at..at + 2].try_into().expect("code"))));
        at += 2;
    }
    assert_eq!(at, frame.len(), "v0 shape: nothing after the entries");
    (corr(frame), out)
}

#[test]
fn old_admin_versions_are_judged_and_answered_in_their_own_shape() {
    let mut c = cluster("policies:\n  deletes:\n    protected_topics: ['keep-*']\n");
    let mut client = RawClient::connect(c.proxy.bootstrap);
    let topic = |name: &str, rf: i16| {
        CreatableTopic::default().with_name(TopicName(s(name))).with_num_partitions(1).with_replication_factor(rf).with_configs(vec![
            kafka_protocol::messages::create_topics_request::CreatableTopicConfig::default()
                .with_name(s("min.insync.replicas"))
                .with_value(Some(s("2"))),
        ])
    };
    let create = CreateTopicsRequest::default().with_timeout_ms(5000).with_topics(vec![topic("thin", 1), topic("sound", 3)]);
    client.send(&legacy(ApiKey::CreateTopics, 0, 2, 31, &create));
    let (corr0, codes) = legacy_codes(&client.recv().expect("CreateTopics v0 answered, not closed"));
    assert_eq!((corr0, codes), (31, vec![("thin".into(), 44), ("sound".into(), 0)]));
    let delete =
        DeleteTopicsRequest::default().with_timeout_ms(5000).with_topic_names(vec![TopicName(s("keep-a")), TopicName(s("scratch"))]);
    client.send(&legacy(ApiKey::DeleteTopics, 0, 1, 32, &delete));
    let (corr1, codes) = legacy_codes(&client.recv().expect("DeleteTopics v0 answered"));
    assert_eq!((corr1, codes), (32, vec![("keep-a".into(), 44), ("scratch".into(), 0)]));
    // The broker was asked in the newest versions it offers, for the permitted entries only.
    let got = c.fake.got();
    let asked: Vec<(i16, i16)> = got.iter().filter(|g| matches!(g.api_key, 19 | 20)).map(|g| (g.api_key, g.api_version)).collect();
    assert_eq!(asked, vec![(19, 7), (20, 6)]);
    c.proxy.stop();
    let audit = c.proxy.audit();
    assert!(audit.iter().any(|l| l["event"] == "create_topic" && l["action"] == "reject" && l["api_version"] == 0), "{audit:#?}");
    assert!(audit.iter().any(|l| l["event"] == "delete_topic" && l["action"] == "reject" && l["client_id"] == "old-go-client"));
}

#[test]
fn the_proxys_own_requests_share_a_connection_and_negotiate_versions() {
    let c = cluster("");
    let mut client = RawClient::connect(c.proxy.bootstrap);
    let resource = AlterConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(s("orders"))
        .with_configs(vec![AlterableConfig::default().with_name(s("min.insync.replicas")).with_value(Some(s("2")))]);
    for i in 0..3 {
        let req = AlterConfigsRequest::default().with_resources(vec![resource.clone()]);
        client.send(&frames::request(ApiKey::AlterConfigs, 1, 70 + i, Some("ops"), &req).expect("enc"));
        assert!(client.recv().is_some());
    }
    let own: Vec<_> = c.fake.got().into_iter().filter(|g| g.client_id.as_deref() == Some("kafka-durability-proxy")).collect();
    let describes: Vec<_> = own.iter().filter(|g| g.api_key == 32).collect();
    assert!(describes.len() >= 3, "{own:?}");
    assert!(describes.iter().all(|g| g.api_version == 4), "the newest DescribeConfigs both offer: {describes:?}");
    let conns: std::collections::BTreeSet<usize> = describes.iter().map(|g| g.conn).collect();
    assert_eq!(conns.len(), 1, "one pooled connection for every lookup: {describes:?}");
    let negotiations = own.iter().filter(|g| g.api_key == 18 && conns.contains(&g.conn)).count();
    assert_eq!(negotiations, 1, "versions negotiated once per connection");
}

/// A SCRAM login on a raw connection: handshake, client-first naming `user`, client-final.
fn scram_login(client: &mut RawClient, user: &str, corr: i32, log: &dyn Fn() -> String) {
    let hs = SaslHandshakeRequest::default().with_mechanism(s("SCRAM-SHA-256"));
    client.send(&frames::request(ApiKey::SaslHandshake, 1, corr, Some("reauth-app"), &hs).expect("enc"));
    let answered = client.recv();
    assert!(answered.is_some(), "handshake answered: {}", log());
    assert_eq!(corr_of(&answered.expect("answer")), corr);
    for (i, token) in [format!("n,,n={user},r=clientnonce"), "c=biws,r=clientnonceSERVER,p=cHJvb2Y=".to_owned()].into_iter().enumerate() {
        let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        let c = corr + 1 + i as i32;
        client.send(&frames::request(ApiKey::SaslAuthenticate, 2, c, Some("reauth-app"), &req).expect("enc"));
        assert_eq!(corr_of(&client.recv().expect("authenticate answered")), c);
    }
}

fn corr_of(frame: &Bytes) -> i32 {
    corr(frame)
}

#[test]
fn reauthentication_mid_connection_replaces_the_principal() {
    // KIP-368: a client re-authenticates on the same connection when its session lifetime ends.
    // (tansu refuses a second handshake; the fake broker accepts it, as Apache Kafka does.)
    let mut c = cluster("");
    let mut client = RawClient::connect(c.proxy.bootstrap);
    let log = || {
        format!("{:?}\n{}", c.fake.got().iter().map(|g| (g.api_key, g.api_version, g.client_id.clone())).collect::<Vec<_>>(), c.proxy.log())
    };
    scram_login(&mut client, "alice", 10, &log);
    client.send(&produce_req(9, 1, "reauth-app", 20));
    assert_eq!(corr(&client.recv().expect("produce as alice")), 20);
    scram_login(&mut client, "bob", 30, &log);
    client.send(&produce_req(9, 1, "reauth-app", 40));
    assert_eq!(corr(&client.recv().expect("produce as bob, same connection")), 40);
    c.proxy.stop();
    let principals: Vec<String> = c
        .proxy
        .audit()
        .iter()
        .filter(|l| l["event"] == "weak_acks" && l["client_id"] == "reauth-app")
        .map(|l| l["principal"].as_str().unwrap_or("none").to_owned())
        .collect();
    assert_eq!(principals, vec!["User:alice".to_owned(), "User:bob".to_owned()], "one first line per principal");
}

#[test]
fn connection_limits_refuse_and_idle_connections_are_closed() {
    let c = cluster("limits:\n  max_connections_per_source: 2\n  idle_timeout_ms: 1000\n");
    // The start-up probe's connection must have ended before the slots are counted.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !c.proxy.log().contains("connection closed") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut held: Vec<RawClient> = (0..2).map(|_| RawClient::connect(c.proxy.bootstrap)).collect();
    for (i, h) in held.iter_mut().enumerate() {
        h.send(&metadata_req(i as i32, "limited"));
        assert!(h.recv().is_some(), "connection {i} is served");
    }
    let mut third = RawClient::connect(c.proxy.bootstrap);
    third.send(&metadata_req(9, "limited"));
    assert!(third.recv().is_none(), "a third connection from the same address is refused");
    let log = c.proxy.log();
    assert!(log.contains("refusing client connection") && log.contains("limits.max_connections_per_source"), "{log}");
    // Held connections that send nothing are closed after the idle timeout, freeing their slots.
    let started = std::time::Instant::now();
    assert!(held[0].recv().is_none(), "idle connection closed");
    assert!(started.elapsed() < Duration::from_secs(4), "closed after about a second: {:?}", started.elapsed());
    assert!(c.proxy.log().contains("closing idle client connection"), "{}", c.proxy.log());
    let mut again = RawClient::connect(c.proxy.bootstrap);
    again.send(&metadata_req(11, "limited"));
    assert!(again.recv().is_some(), "slots freed by idle closes are reusable");
}

#[test]
fn the_total_connection_limit_refuses_beyond_it_and_a_closed_connection_frees_its_slot() {
    let c = cluster("limits:\n  max_connections: 2\n  max_connections_per_source: 100\n");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !c.proxy.log().contains("connection closed") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut held: Vec<RawClient> = (0..2).map(|_| RawClient::connect(c.proxy.bootstrap)).collect();
    for (i, h) in held.iter_mut().enumerate() {
        h.send(&metadata_req(i as i32, "total"));
        assert!(h.recv().is_some(), "connection {i} is served");
    }
    let mut third = RawClient::connect(c.proxy.bootstrap);
    third.send(&metadata_req(9, "total"));
    assert!(third.recv().is_none(), "a third connection is refused");
    let log = c.proxy.log();
    assert!(log.contains("refusing client connection") && log.contains("(limits.max_connections)"), "{log}");
    drop(held.pop());
    std::thread::sleep(Duration::from_millis(300));
    let mut again = RawClient::connect(c.proxy.bootstrap);
    again.send(&metadata_req(11, "total"));
    assert!(again.recv().is_some(), "the closed connection's slot is reusable");
}

/// Runs tests/clients/burst.py against a port: (connected, slow connects over 0.9 s).
fn burst(port: u16, n: usize) -> (u64, u64) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/burst.py");
    let out =
        std::process::Command::new("python3").arg(script).args(["127.0.0.1", &port.to_string(), &n.to_string()]).output().expect("burst");
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (v["connected"].as_u64().unwrap_or(0), v["slow"].as_u64().unwrap_or(u64::MAX))
}

#[test]
fn a_burst_of_connections_is_accepted_without_syn_retries() {
    // 1,500 connections at once (500 clients of three connections each): with std's backlog of
    // 128, a few hundred of them waited a full second for a SYN retry.
    let c = cluster("");
    let (connected, slow) = burst(c.proxy.bootstrap, 1500);
    assert_eq!((connected, slow), (1500, 0), "every connection accepted at once");
}

#[test]
fn produce_errors_the_client_never_reads_are_counted_and_audited() {
    let mut c = cluster("");
    let mut client = RawClient::connect(c.proxy.bootstrap);
    for corr in [1, 2, 3] {
        client.send(&produce_req(9, -1, "too-big", corr));
        assert_eq!(corr_of(&client.recv().expect("answered")), corr, "the client gets its answer untouched");
    }
    let metrics = crate::observability::scrape(&c.proxy);
    assert_eq!(metrics.get("kdp_produce_errors_total{error=\"MessageTooLarge\"}").copied(), Some(3.0), "{metrics:?}");
    c.proxy.stop();
    let lines = c.proxy.audit();
    let errs: Vec<_> = lines.iter().filter(|l| l["event"] == "produce_error").collect();
    assert!(!errs.is_empty(), "{lines:#?}");
    let first = errs.iter().find(|l| l["kind"] == "first").expect("first");
    assert_eq!(
        (first["client_id"].as_str(), first["detail"]["error"].as_str(), first["topics"][0].as_str()),
        (Some("too-big"), Some("MessageTooLarge"), Some("orders"))
    );
    let total: u64 = errs.iter().map(|l| l["count"].as_u64().unwrap_or(0)).sum();
    assert_eq!(total, 3, "deduplicated into first + summary, counting all three");
}

#[test]
fn a_consumer_whose_offset_retention_deleted_is_reported_with_the_records_it_skips() {
    let mut c = cluster("");
    let mut client = RawClient::connect(c.proxy.bootstrap);
    // The connection's group is learnt from its group traffic.
    let hb = HeartbeatRequest::default().with_group_id(kafka_protocol::messages::GroupId(s("billing-consumers")));
    client.send(&frames::request(ApiKey::Heartbeat, 4, 1, Some("slow-consumer"), &hb).expect("enc"));
    assert!(client.recv().is_some());
    let fetch = FetchRequest::default().with_topics(vec![FetchTopic::default()
        .with_topic(TopicName(s("orders")))
        .with_partitions(vec![FetchPartition::default().with_partition(0).with_fetch_offset(40)])]);
    client.send(&frames::request(ApiKey::Fetch, 11, 2, Some("slow-consumer"), &fetch).expect("enc"));
    assert_eq!(corr_of(&client.recv().expect("fetch answered")), 2);
    let metrics = crate::observability::scrape(&c.proxy);
    assert_eq!(metrics.get("kdp_consumer_skipped_records_total").copied(), Some(60.0), "{metrics:?}");
    c.proxy.stop();
    let lines = c.proxy.audit();
    let skip = lines.iter().find(|l| l["event"] == "consumer_skip").unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(skip["client_id"], "slow-consumer");
    assert_eq!(skip["topics"], serde_json::json!(["orders"]));
    assert_eq!((skip["detail"]["records_skipped"].as_i64(), skip["detail"]["fetch_offset"].as_i64()), (Some(60), Some(40)));
    assert_eq!(skip["detail"]["group"], "billing-consumers");
}

//! Admin request handling per version: partial refusal and merge, upgrades, protected deletes,
//! count guards and the auto-create patch.

use std::time::Duration;

use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{BrokerId, MetadataRequest};

use bytes::Bytes;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::split::{self, s, Site};
use super::*;
use crate::audit::{Origin, Recorder};
use crate::config::Config;
use crate::policy::topics::BrokerDefaults;
use crate::protocol::encode as frames;
use crate::protocol::guard;
use crate::protocol::header::response_header_len;
use crate::protocol::{peek_request_header, SIZE_LEN};

mod cluster_view;

fn cfg(extra: &str) -> Config {
    crate::config::parse(&format!(
        "listen:\n  advertised_host: p\n  bootstrap_port: 1\n  broker_port_base: 100\nupstream:\n  bootstrap_servers: ['b:1']\n{extra}"
    ))
    .expect("config")
}

fn audit() -> Recorder {
    let log = crate::audit::spawn(Box::new(tokio::io::sink()), 1000, Duration::from_secs(60)).0;
    Recorder::new(log, std::sync::Arc::new(crate::metrics::Metrics::new()))
}

fn topic(name: &str, rf: i16, configs: &[(&str, &str)]) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(TopicName(s(name)))
        .with_num_partitions(1)
        .with_replication_factor(rf)
        .with_configs(configs.iter().map(|(k, v)| CreatableTopicConfig::default().with_name(s(k)).with_value(Some(s(v)))).collect())
}

fn request<M: Encodable>(api: ApiKey, version: i16, body: &M) -> (Bytes, usize) {
    let frame = frames::request(api, version, 9, Some("admin-tool"), body).expect("encode");
    let off = peek_request_header(&frame).and_then(|h| h.body_offset).expect("header");
    (frame, off)
}

fn body_of<M: Decodable>(frame: &Bytes, version: i16) -> M {
    let off = peek_request_header(frame).and_then(|h| h.body_offset).expect("header");
    let mut b = frame.slice(off..);
    M::decode(&mut b, version).expect("decode")
}

fn ctx<'a>(cfg: &'a Config, audit: &'a Recorder, version: i16) -> Ctx<'a> {
    let origin = Origin {
        client_addr: "10.0.0.9:5000".parse().expect("addr"),
        client_id: Some("admin-tool".into()),
        principal: None,
        principal_unverified: false,
        tls_subject: None,
        api: "Admin",
        api_version: version,
    };
    Ctx { policies: &cfg.policies, defaults: BrokerDefaults::KAFKA, defaults_refused: None, audit, origin, correlation_id: 9 }
}

fn site(frame: &Bytes, body_offset: usize, api_key: ApiKey) -> Site<'_> {
    Site { frame, body_offset, api_key, api: crate::protocol::versions::api_name(api_key as i16) }
}

fn response_body<M: Decodable>(frame: &Bytes, api: ApiKey, version: i16) -> M {
    let mut b = frame.slice(SIZE_LEN + response_header_len(api, version)..);
    M::decode(&mut b, version).expect("decode response")
}

#[tokio::test]
async fn create_topics_refuses_only_offenders_and_merges_in_order() {
    let (cfg, audit) = (cfg(""), audit());
    for version in 2..=7 {
        for validate_only in [false, true] {
            let req = CreateTopicsRequest::default().with_validate_only(validate_only).with_topics(vec![
                topic("bad-rf", 1, &[("min.insync.replicas", "2")]),
                topic("good", 3, &[("min.insync.replicas", "2")]),
                topic("bad-isr", 3, &[]),
            ]);
            let (frame, off) = request(ApiKey::CreateTopics, version, &req);
            let step = create_topics::handle(&ctx(&cfg, &audit, version), &site(&frame, off, ApiKey::CreateTopics)).expect("step");
            let Route::Forward(fwd, Disposition::Merge(merge_plan)) = step else {
                panic!("v{version}: expected a partial forward, got {step:?}")
            };
            let sent: CreateTopicsRequest = body_of(&fwd, version);
            assert_eq!(sent.topics.iter().map(|t| t.name.0.as_str()).collect::<Vec<_>>(), vec!["good"], "v{version}");
            assert_eq!(sent.validate_only, validate_only, "validate_only is kept");
            // The broker answers for "good"; the merged response has all three, in request order.
            let broker = CreateTopicsResponse::default().with_topics(vec![CreatableTopicResult::default().with_name(TopicName(s("good")))]);
            let resp = frames::response(ApiKey::CreateTopics, version, 9, &broker).expect("encode");
            let merged: CreateTopicsResponse =
                response_body(&split::merge(&resp, version, *merge_plan).expect("merge"), ApiKey::CreateTopics, version);
            let got: Vec<_> = merged.topics.iter().map(|t| (t.name.0.to_string(), t.error_code)).collect();
            assert_eq!(got, vec![("bad-rf".into(), 44), ("good".into(), 0), ("bad-isr".into(), 44)], "v{version}");
            let msg = merged.topics[2].error_message.as_ref().map(|m| m.to_string()).unwrap_or_default();
            assert!(msg.contains("min.insync.replicas unset (broker default 1) is below the required 2"), "{msg}");
        }
    }
}

#[tokio::test]
async fn all_refused_is_answered_without_the_broker() {
    let (cfg, audit) = (cfg(""), audit());
    for version in 2..=7 {
        let req = CreateTopicsRequest::default()
            .with_topics(vec![topic("a", 1, &[]), topic("b", 2, &[("unclean.leader.election.enable", "true")])]);
        let (frame, off) = request(ApiKey::CreateTopics, version, &req);
        let Ok(Route::Answer(resp)) = create_topics::handle(&ctx(&cfg, &audit, version), &site(&frame, off, ApiKey::CreateTopics)) else {
            panic!("expected an answer")
        };
        assert_eq!(crate::protocol::peek_response_correlation(&resp), Some(9));
        let m: CreateTopicsResponse = response_body(&resp, ApiKey::CreateTopics, version);
        assert!(m.topics.iter().all(|t| t.error_code == 44), "v{version}");
        assert!(m.topics[1].error_message.as_ref().is_some_and(|m| m.contains("unclean.leader.election.enable=true")));
    }
}

#[tokio::test]
async fn upgrade_makes_the_durable_shape_explicit() {
    let cfg = cfg("policies:\n  create_topics:\n    replication_factor: {value: 3, action: upgrade}\n    min_insync_replicas: {value: 2, action: upgrade}\n    no_unclean_leader_election: {action: upgrade}\n");
    let audit = audit();
    for version in 2..=7 {
        let req = CreateTopicsRequest::default().with_topics(vec![topic(
            "t",
            -1,
            &[("unclean.leader.election.enable", "true"), ("retention.ms", "1000")],
        )]);
        let (frame, off) = request(ApiKey::CreateTopics, version, &req);
        let Ok(Route::Forward(fwd, Disposition::Forward)) =
            create_topics::handle(&ctx(&cfg, &audit, version), &site(&frame, off, ApiKey::CreateTopics))
        else {
            panic!("expected a rewrite")
        };
        let sent: CreateTopicsRequest = body_of(&fwd, version);
        let t = &sent.topics[0];
        assert_eq!(t.replication_factor, 3);
        let mut configs: Vec<_> = t.configs.iter().map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string()))).collect();
        configs.sort();
        assert_eq!(
            configs,
            vec![
                ("min.insync.replicas".into(), Some("2".into())),
                ("retention.ms".into(), Some("1000".into())),
                ("unclean.leader.election.enable".into(), Some("false".into())),
            ]
        );
        // The original header travels unchanged.
        let h = peek_request_header(&fwd).expect("header");
        assert_eq!((h.api_key, h.api_version, h.correlation_id, h.client_id(&fwd)), (19, version, 9, Some("admin-tool")));
    }
}

#[tokio::test]
async fn durable_requests_and_exempt_topics_pass_untouched() {
    let cfg = cfg("policies:\n  create_topics:\n    exempt:\n      topics: ['scratch.*']\n");
    let audit = audit();
    let req = CreateTopicsRequest::default().with_topics(vec![
        topic("orders", 3, &[("min.insync.replicas", "2")]),
        topic("scratch.tmp", 1, &[]),
        topic("assigned", -1, &[("min.insync.replicas", "2")]).with_assignments(vec![CreatableReplicaAssignment::default()
            .with_partition_index(0)
            .with_broker_ids(vec![BrokerId(1), BrokerId(2), BrokerId(3)])]),
    ]);
    let (frame, off) = request(ApiKey::CreateTopics, 7, &req);
    let route = create_topics::handle(&ctx(&cfg, &audit, 7), &site(&frame, off, ApiKey::CreateTopics));
    assert!(matches!(route, Ok(Route::Forward(ref f, Disposition::Forward)) if *f == frame), "{route:?}");
}

#[tokio::test]
async fn while_the_cluster_refuses_the_proxy_creates_are_refused_saying_why_except_exempt_topics() {
    let cfg = cfg("policies:\n  create_topics:\n    exempt:\n      topics: ['scratch.*']\n");
    let audit = audit();
    let req =
        CreateTopicsRequest::default().with_topics(vec![topic("orders", 3, &[("min.insync.replicas", "2")]), topic("scratch.tmp", 1, &[])]);
    let (frame, off) = request(ApiKey::CreateTopics, 7, &req);
    let mut c = ctx(&cfg, &audit, 7);
    c.defaults_refused = Some("broker b:1 refused the proxy's own credentials (upstream.sasl, user kdp): invalid-proof".into());
    let Ok(Route::Forward(fwd, Disposition::Merge(plan))) = create_topics::handle(&c, &site(&frame, off, ApiKey::CreateTopics)) else {
        panic!("expected the exempt topic forwarded and the other refused")
    };
    let sent: CreateTopicsRequest = body_of(&fwd, 7);
    assert_eq!(sent.topics.iter().map(|t| t.name.0.as_str()).collect::<Vec<_>>(), vec!["scratch.tmp"]);
    let broker = CreateTopicsResponse::default().with_topics(vec![CreatableTopicResult::default().with_name(TopicName(s("scratch.tmp")))]);
    let resp = frames::response(ApiKey::CreateTopics, 7, 9, &broker).expect("encode");
    let merged: CreateTopicsResponse = response_body(&split::merge(&resp, 7, *plan).expect("merge"), ApiKey::CreateTopics, 7);
    assert_eq!(merged.topics[0].error_code, 44, "a durable-looking topic is refused too: what it inherits is unknown");
    let msg = merged.topics[0].error_message.as_ref().map(|m| m.to_string()).unwrap_or_default();
    assert!(msg.contains("cluster refused the proxy's own requests") && msg.contains("invalid-proof"), "{msg}");
}

#[tokio::test]
async fn protected_topics_cannot_be_deleted_in_any_version() {
    let cfg = cfg("policies:\n  deletes:\n    protected_topics: ['orders', 'payments.*']\n");
    let audit = audit();
    for version in 1..=6 {
        let req = if version >= 6 {
            DeleteTopicsRequest::default().with_topics(vec![
                DeleteTopicState::default().with_name(Some(TopicName(s("orders")))),
                DeleteTopicState::default().with_name(Some(TopicName(s("scratch")))),
                DeleteTopicState::default().with_topic_id(uuid::Uuid::from_u128(5)),
            ])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![
                TopicName(s("orders")),
                TopicName(s("scratch")),
                TopicName(s("payments.eu")),
            ])
        };
        let (frame, off) = request(ApiKey::DeleteTopics, version, &req);
        let Ok(Route::Forward(fwd, Disposition::Merge(plan))) =
            delete_topics::handle(&ctx(&cfg, &audit, version), &site(&frame, off, ApiKey::DeleteTopics))
        else {
            panic!("v{version}")
        };
        let sent: DeleteTopicsRequest = body_of(&fwd, version);
        let sent_names: Vec<String> = if version >= 6 {
            sent.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect()
        } else {
            sent.topic_names.iter().map(|n| n.0.to_string()).collect()
        };
        assert_eq!(sent_names, vec!["scratch".to_string()], "v{version}");
        let broker =
            DeleteTopicsResponse::default().with_responses(vec![DeletableTopicResult::default().with_name(Some(TopicName(s("scratch"))))]);
        let resp = frames::response(ApiKey::DeleteTopics, version, 9, &broker).expect("encode");
        let m: DeleteTopicsResponse = response_body(&split::merge(&resp, version, *plan).expect("merge"), ApiKey::DeleteTopics, version);
        let codes: Vec<i16> = m.responses.iter().map(|r| r.error_code).collect();
        assert_eq!(codes, vec![44, 0, 44], "v{version}: protected, allowed, protected (or unnamed id)");
        if version >= 5 {
            assert!(m.responses[0].error_message.as_ref().is_some_and(|e| e.contains("protected pattern 'orders'")));
        }
    }
}

#[tokio::test]
async fn protected_topics_cannot_be_truncated() {
    let cfg = cfg("policies:\n  deletes:\n    protected_topics: ['orders']\n");
    let audit = audit();
    for version in 0..=2 {
        let req = DeleteRecordsRequest::default().with_topics(vec![DeleteRecordsTopic::default()
            .with_name(TopicName(s("orders")))
            .with_partitions(vec![DeleteRecordsPartition::default().with_partition_index(0).with_offset(10)])]);
        let (frame, off) = request(ApiKey::DeleteRecords, version, &req);
        let Ok(Route::Answer(resp)) = delete_records::handle(&ctx(&cfg, &audit, version), &site(&frame, off, ApiKey::DeleteRecords)) else {
            panic!("v{version}")
        };
        let m: DeleteRecordsResponse = response_body(&resp, ApiKey::DeleteRecords, version);
        assert_eq!(m.topics[0].partitions[0].error_code, 44);
    }
}

#[test]
fn guards_refuse_impossible_counts() {
    // CreateTopics v2 claiming 2^31-1 topics in a few bytes.
    let mut body = vec![0x7f, 0xff, 0xff, 0xff];
    body.extend_from_slice(&[0; 8]);
    assert!(!guard::create_topics(&body, 2));
    assert!(!guard::delete_topics(&body, 1));
    assert!(!guard::delete_records(&body, 0));
    // Compact count in a flexible version.
    assert!(!guard::create_topics(&[0xff, 0xff, 0xff, 0xff, 0x07, 0, 0], 5));
    // Trailing bytes are refused too.
    let (frame, off) = request(ApiKey::CreateTopics, 5, &CreateTopicsRequest::default());
    let mut trailing = frame[off..].to_vec();
    assert!(guard::create_topics(&trailing, 5));
    trailing.push(0);
    assert!(!guard::create_topics(&trailing, 5));
}

#[test]
fn auto_topic_creation_is_cleared_in_place() {
    for version in 4..=13 {
        for topics in [
            None,
            Some(vec![kafka_protocol::messages::metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(s("x"))))]),
        ] {
            let req = MetadataRequest::default().with_topics(topics.clone()).with_allow_auto_topic_creation(true);
            let (frame, off) = request(ApiKey::Metadata, version, &req);
            let mut buf = frame.to_vec();
            assert!(metadata::block_auto_create(&mut buf, off, version), "v{version}");
            let got: MetadataRequest = body_of(&Bytes::from(buf.clone()), version);
            assert!(!got.allow_auto_topic_creation, "v{version}");
            assert_eq!(got.topics, topics);
            assert!(!metadata::block_auto_create(&mut buf, off, version), "already clear");
        }
    }
}

#[test]
fn config_change_guards_accept_every_version_and_refuse_lies() {
    use kafka_protocol::messages::{
        alter_configs_request, incremental_alter_configs_request, AlterConfigsRequest, IncrementalAlterConfigsRequest,
    };
    for version in 0..=2 {
        let req = AlterConfigsRequest::default().with_resources(vec![alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("t"))
            .with_configs(vec![alter_configs_request::AlterableConfig::default().with_name(s("retention.ms")).with_value(Some(s("1")))])]);
        let (frame, off) = request(ApiKey::AlterConfigs, version, &req);
        assert!(guard::alter_configs(&frame[off..], version, false), "AlterConfigs v{version}");
    }
    for version in 0..=1 {
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(s(""))
                .with_configs(vec![incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(s("min.insync.replicas"))
                    .with_config_operation(1)]),
        ]);
        let (frame, off) = request(ApiKey::IncrementalAlterConfigs, version, &req);
        assert!(guard::alter_configs(&frame[off..], version, true), "IncrementalAlterConfigs v{version}");
        assert!(!guard::alter_configs(&frame[off..frame.len() - 1], version, true), "truncated v{version}");
    }
    assert!(!guard::alter_configs(&[0x7f, 0xff, 0xff, 0xff, 0], 0, false));
}

#[tokio::test]
async fn new_partitions_and_reassignments_keep_the_replica_count() {
    use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
    use kafka_protocol::messages::alter_partition_reassignments_response::{ReassignablePartitionResponse, ReassignableTopicResponse};
    use kafka_protocol::messages::create_partitions_request::{CreatePartitionsAssignment, CreatePartitionsTopic};
    use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
    use kafka_protocol::messages::{
        AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, CreatePartitionsRequest, CreatePartitionsResponse,
    };
    let (cfg, audit) = (cfg(""), audit());
    let ids = |n: i32| (1..=n).map(BrokerId).collect::<Vec<_>>();
    for version in 0..=3 {
        let assign = |n| Some(vec![CreatePartitionsAssignment::default().with_broker_ids(ids(n))]);
        let req = CreatePartitionsRequest::default().with_topics(vec![
            CreatePartitionsTopic::default().with_name(TopicName(s("thin"))).with_count(2).with_assignments(assign(1)),
            CreatePartitionsTopic::default().with_name(TopicName(s("inherit"))).with_count(4).with_assignments(None),
            CreatePartitionsTopic::default().with_name(TopicName(s("full"))).with_count(2).with_assignments(assign(3)),
        ]);
        let (frame, off) = request(ApiKey::CreatePartitions, version, &req);
        let Ok(Route::Forward(fwd, Disposition::Merge(plan))) =
            partitions::create_partitions(&ctx(&cfg, &audit, version), &site(&frame, off, ApiKey::CreatePartitions))
        else {
            panic!("v{version}")
        };
        let sent: CreatePartitionsRequest = body_of(&fwd, version);
        assert_eq!(sent.topics.iter().map(|t| t.name.0.as_str()).collect::<Vec<_>>(), vec!["inherit", "full"]);
        let broker = CreatePartitionsResponse::default()
            .with_results(["inherit", "full"].iter().map(|n| CreatePartitionsTopicResult::default().with_name(TopicName(s(n)))).collect());
        let resp = frames::response(ApiKey::CreatePartitions, version, 9, &broker).expect("encode");
        let m: CreatePartitionsResponse =
            response_body(&split::merge(&resp, version, *plan).expect("merge"), ApiKey::CreatePartitions, version);
        let got: Vec<_> = m.results.iter().map(|r| (r.name.0.to_string(), r.error_code)).collect();
        assert_eq!(got, vec![("thin".into(), 44), ("inherit".into(), 0), ("full".into(), 0)], "v{version}");
        assert!(m.results[0]
            .error_message
            .as_ref()
            .is_some_and(|e| e.contains("replica assignment with 1 replicas is below the required 3")));
    }
    for version in 0..=1 {
        let part = |i, n: Option<i32>| ReassignablePartition::default().with_partition_index(i).with_replicas(n.map(ids));
        let req = AlterPartitionReassignmentsRequest::default().with_topics(vec![
            ReassignableTopic::default().with_name(TopicName(s("orders"))).with_partitions(vec![
                part(0, Some(3)),
                part(1, Some(2)),
                part(2, None),
            ]),
            ReassignableTopic::default().with_name(TopicName(s("logs"))).with_partitions(vec![part(0, Some(1))]),
        ]);
        let (frame, off) = request(ApiKey::AlterPartitionReassignments, version, &req);
        let Ok(Route::Forward(fwd, Disposition::Merge(plan))) =
            partitions::reassign_partitions(&ctx(&cfg, &audit, version), &site(&frame, off, ApiKey::AlterPartitionReassignments))
        else {
            panic!("v{version}")
        };
        let sent: AlterPartitionReassignmentsRequest = body_of(&fwd, version);
        let sent_parts: Vec<_> =
            sent.topics.iter().flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.to_string(), p.partition_index))).collect();
        assert_eq!(sent_parts, vec![("orders".into(), 0), ("orders".into(), 2)], "v{version}: shrinking partitions stay behind");
        let broker = AlterPartitionReassignmentsResponse::default().with_responses(vec![ReassignableTopicResponse::default()
            .with_name(TopicName(s("orders")))
            .with_partitions(vec![
                ReassignablePartitionResponse::default().with_partition_index(0),
                ReassignablePartitionResponse::default().with_partition_index(2),
            ])]);
        let resp = frames::response(ApiKey::AlterPartitionReassignments, version, 9, &broker).expect("encode");
        let m: AlterPartitionReassignmentsResponse =
            response_body(&split::merge(&resp, version, *plan).expect("merge"), ApiKey::AlterPartitionReassignments, version);
        let got: Vec<_> = m
            .responses
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.to_string(), p.partition_index, p.error_code)))
            .collect();
        assert_eq!(
            got,
            vec![("orders".into(), 0, 0), ("orders".into(), 1, 44), ("orders".into(), 2, 0), ("logs".into(), 0, 44)],
            "v{version}"
        );
    }
    assert!(!guard::create_partitions(&[0x7f, 0xff, 0xff, 0xff], 0));
    assert!(!guard::alter_partition_reassignments(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0x0f], 0));
}

/// A cluster that offers fixed API versions and is never asked anything else.
struct Versions(Option<kafka_protocol::protocol::VersionRange>);

impl crate::cluster::ClusterView for Versions {
    fn broker_defaults(&self) -> BrokerDefaults {
        BrokerDefaults::KAFKA
    }
    fn api_versions(&self, _api_key: i16) -> Option<kafka_protocol::protocol::VersionRange> {
        self.0
    }
    async fn describe_configs(&self, _t: i8, _n: &str) -> Result<Option<Vec<crate::cluster::ConfigEntry>>, crate::cluster::ClusterError> {
        Ok(None)
    }
    async fn replication_factor(&self, _topic: &str) -> Result<Option<i16>, crate::cluster::ClusterError> {
        Ok(None)
    }
}

/// A CreateTopics v0/v1 or DeleteTopics v0 frame: the next version's body under an older header
/// (v0 CreateTopics without the trailing validate_only byte).
fn legacy_frame<M: Encodable>(api: ApiKey, version: i16, like: i16, body: &M) -> (Bytes, usize) {
    let (frame, off) = request(api, like, body);
    let mut raw = frame.to_vec();
    raw[6..8].copy_from_slice(&version.to_be_bytes());
    if api == ApiKey::CreateTopics && version == 0 {
        raw.pop();
        let size = (raw.len() - 4) as i32;
        raw[..4].copy_from_slice(&size.to_be_bytes());
    }
    (Bytes::from(raw), off)
}

/// Reads a legacy response: (correlation id, [(name, code, message)]).
fn legacy_answer(frame: &[u8], with_message: bool) -> (i32, Vec<(String, i16, Option<String>)>) {
    let mut c = crate::protocol::cursor::Cursor::new(frame);
    c.i32().expect("size");
    let corr = c.i32().expect("corr");
    let n = c.i32().expect("count");
    let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
    let entries = (0..n)
        .map(|_| {
            let name = text(c.string().expect("name")).expect("non-null");
            let code = c.i16().expect("code");
            (name, code, if with_message { text(c.string().expect("message")) } else { None })
        })
        .collect();
    assert_eq!(c.remaining(), 0, "nothing trails");
    (corr, entries)
}

#[tokio::test]
async fn legacy_create_topics_is_judged_translated_and_answered_in_its_own_shape() {
    let (cfg, audit) = (cfg(""), audit());
    let view = Versions(Some(kafka_protocol::protocol::VersionRange { min: 2, max: 7 }));
    for version in 0..=1i16 {
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![topic("thin", 1, &[]), topic("good", 3, &[("min.insync.replicas", "2")])]);
        let (frame, off) = legacy_frame(ApiKey::CreateTopics, version, 2, &req);
        let route = legacy::create_topics(&ctx(&cfg, &audit, version), &view, &site(&frame, off, ApiKey::CreateTopics)).expect("route");
        let Route::Forward(fwd, Disposition::Legacy(plan)) = route else { panic!("v{version}: {route:?}") };
        // The broker is asked in the newest version both know, for the durable topic only.
        let h = peek_request_header(&fwd).expect("header");
        assert_eq!((h.api_version, h.correlation_id, h.client_id(&fwd)), (7, 9, Some("admin-tool")));
        let sent: CreateTopicsRequest = body_of(&fwd, 7);
        assert_eq!(sent.topics.iter().map(|t| t.name.0.as_str()).collect::<Vec<_>>(), vec!["good"]);
        assert!(!sent.validate_only);
        let broker = CreateTopicsResponse::default().with_topics(vec![CreatableTopicResult::default().with_name(TopicName(s("good")))]);
        let resp = frames::response(ApiKey::CreateTopics, 7, 9, &broker).expect("encode");
        let answer = legacy::answer(&resp, *plan).expect("answer");
        let (corr, entries) = legacy_answer(&answer, version == 1);
        assert_eq!(corr, 9);
        let codes: Vec<_> = entries.iter().map(|(n, c, _)| (n.as_str(), *c)).collect();
        assert_eq!(codes, vec![("thin", 44), ("good", 0)], "v{version}: request order, one entry each");
        if version == 1 {
            assert!(entries[0].2.as_deref().is_some_and(|m| m.contains("replication factor 1 is below the required 3")), "{entries:?}");
        }
    }
}

#[tokio::test]
async fn legacy_requests_the_broker_cannot_take_are_answered_unsupported_not_closed() {
    let (cfg, audit) = (cfg(""), audit());
    // A broker that offers no CreateTopics / DeleteTopics version the proxy can speak.
    let view = Versions(Some(kafka_protocol::protocol::VersionRange { min: 0, max: 0 }));
    let req = CreateTopicsRequest::default().with_topics(vec![topic("good", 3, &[("min.insync.replicas", "2")]), topic("thin", 1, &[])]);
    let (frame, off) = legacy_frame(ApiKey::CreateTopics, 1, 2, &req);
    let Ok(Route::Answer(resp)) = legacy::create_topics(&ctx(&cfg, &audit, 1), &view, &site(&frame, off, ApiKey::CreateTopics)) else {
        panic!("answered locally")
    };
    let (_, entries) = legacy_answer(&resp, true);
    let codes: Vec<_> = entries.iter().map(|(n, c, _)| (n.as_str(), *c)).collect();
    assert_eq!(codes, vec![("good", 35), ("thin", 44)]);
    // DeleteTopics v0, every topic protected: answered by the proxy alone.
    let cfg = self::cfg("policies:\n  deletes:\n    protected_topics: ['keep-*']\n");
    let req = DeleteTopicsRequest::default().with_topic_names(vec![TopicName(s("keep-a")), TopicName(s("keep-b"))]);
    let (frame, off) = legacy_frame(ApiKey::DeleteTopics, 0, 1, &req);
    let Ok(Route::Answer(resp)) = legacy::delete_topics(&ctx(&cfg, &audit, 0), &view, &site(&frame, off, ApiKey::DeleteTopics)) else {
        panic!("answered locally")
    };
    let (_, entries) = legacy_answer(&resp, false);
    assert_eq!(entries.iter().map(|(n, c, _)| (n.as_str(), *c)).collect::<Vec<_>>(), vec![("keep-a", 44), ("keep-b", 44)]);
}

#[tokio::test]
async fn legacy_delete_topics_is_translated_to_the_broker_version() {
    let cfg = cfg("policies:\n  deletes:\n    protected_topics: ['keep-*']\n");
    let audit = audit();
    for broker_max in [1i16, 5, 6] {
        let view = Versions(Some(kafka_protocol::protocol::VersionRange { min: 1, max: broker_max }));
        let req =
            DeleteTopicsRequest::default().with_timeout_ms(3000).with_topic_names(vec![TopicName(s("keep-a")), TopicName(s("scratch"))]);
        let (frame, off) = legacy_frame(ApiKey::DeleteTopics, 0, 1, &req);
        let route = legacy::delete_topics(&ctx(&cfg, &audit, 0), &view, &site(&frame, off, ApiKey::DeleteTopics)).expect("route");
        let Route::Forward(fwd, Disposition::Legacy(plan)) = route else { panic!("{route:?}") };
        let sent: DeleteTopicsRequest = body_of(&fwd, broker_max);
        let names: Vec<String> = if broker_max >= 6 {
            sent.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect()
        } else {
            sent.topic_names.iter().map(|n| n.0.to_string()).collect()
        };
        assert_eq!((names, sent.timeout_ms), (vec!["scratch".to_string()], 3000), "broker v{broker_max}");
        let broker =
            DeleteTopicsResponse::default().with_responses(vec![DeletableTopicResult::default().with_name(Some(TopicName(s("scratch"))))]);
        let resp = frames::response(ApiKey::DeleteTopics, broker_max, 9, &broker).expect("encode");
        let (_, entries) = legacy_answer(&legacy::answer(&resp, *plan).expect("answer"), false);
        assert_eq!(entries.iter().map(|(n, c, _)| (n.as_str(), *c)).collect::<Vec<_>>(), vec![("keep-a", 44), ("scratch", 0)]);
    }
}

#[test]
fn legacy_guards_walk_v0_and_refuse_lies() {
    let req = CreateTopicsRequest::default().with_topics(vec![topic("t", 3, &[("a", "b")])]);
    let (frame, off) = legacy_frame(ApiKey::CreateTopics, 0, 2, &req);
    assert!(guard::create_topics(&frame[off..], 0));
    assert!(!guard::create_topics(&frame[off..], 1), "v1 needs the validate_only byte");
    assert!(!guard::create_topics(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0], 0));
}

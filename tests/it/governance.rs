//! Topic and config governance against tansu, with confluent-kafka's AdminClient and
//! kafka-python's KafkaAdminClient: what each library surfaces, what the broker saw, what the
//! audit log recorded; protected deletes; auto topic creation; policy reload.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_durability_proxy::protocol;
use kafka_durability_proxy::protocol::encode as frames;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, DeleteTopicsRequest, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, MetadataRequest,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use crate::support::fake::RawClient;
use crate::support::{kclient, Bed};

fn body<M: Decodable>(frame: &Bytes, version: i16) -> M {
    let h = protocol::peek_request_header(frame).expect("header");
    let mut b = frame.slice(h.body_offset.expect("known api")..);
    M::decode(&mut b, version).expect("decode request the broker saw")
}

/// Topic names in every CreateTopics request the broker received.
fn broker_created(bed: &Bed) -> Vec<CreateTopicsRequest> {
    bed.relay.seen().iter().filter(|s| s.api_key == 19).map(|s| body(s.frame.as_ref().expect("frame"), s.api_version)).collect()
}

fn create(bed: &Bed, lib: &str, spec: &str, validate_only: bool) -> serde_json::Value {
    let addr = bed.proxy.addr();
    let mut args = vec!["create-topics", "--lib", lib, "--bootstrap", &addr, "--spec", spec];
    if validate_only {
        args.push("--validate-only");
    }
    kclient(&args)["results"].clone()
}

#[test]
fn create_topics_rules_hold_for_both_admin_clients() {
    let mut bed = Bed::start("");
    for lib in ["confluent", "kafka-python"] {
        for validate_only in [false, true] {
            let p = format!("{}-{}", if lib == "confluent" { "ck" } else { "kp" }, if validate_only { "dry" } else { "real" });
            let spec = serde_json::json!([
                {"name": format!("{p}-rf1"), "rf": 1, "configs": {"min.insync.replicas": "2"}},
                {"name": format!("{p}-noisr"), "rf": 3},
                {"name": format!("{p}-good"), "rf": 3, "configs": {"min.insync.replicas": "2"}},
                {"name": format!("{p}-unclean"), "rf": 3, "configs": {"min.insync.replicas": "2", "unclean.leader.election.enable": "true"}},
                {"name": format!("{p}-noslack"), "rf": 3, "configs": {"min.insync.replicas": "3"}},
            ]);
            let r = create(&bed, lib, &spec.to_string(), validate_only);
            let code = |t: &str| r[format!("{p}-{t}")]["code"].as_i64();
            let msg = |t: &str| r[format!("{p}-{t}")]["message"].as_str().unwrap_or_default().to_owned();
            assert_eq!(code("good"), Some(0), "{lib}: {r}");
            for bad in ["rf1", "noisr", "unclean", "noslack"] {
                assert_eq!(code(bad), Some(44), "{lib} {bad}: POLICY_VIOLATION expected: {r}");
            }
            assert!(msg("rf1").contains("replication factor 1 is below the required 3"), "{lib}: {}", msg("rf1"));
            assert!(msg("noisr").contains("min.insync.replicas unset (broker default 1) is below the required 2"), "{}", msg("noisr"));
            assert!(msg("unclean").contains("unclean.leader.election.enable=true"), "{}", msg("unclean"));
            assert!(msg("noslack").contains("replication factor 3 must exceed min.insync.replicas 3"), "{}", msg("noslack"));
        }
    }
    // The broker only ever saw the durable topics, and saw validate_only where it was asked.
    let seen = broker_created(&bed);
    let names: Vec<(String, bool)> =
        seen.iter().flat_map(|r| r.topics.iter().map(move |t| (t.name.0.to_string(), r.validate_only))).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names.iter().all(|(n, dry)| n.ends_with("-good") && *dry == n.contains("-dry-")), "{names:?}");
    let listed = kclient(&["metadata", "--bootstrap", &bed.proxy.addr()]);
    let topics: Vec<&str> = listed["topics"].as_array().expect("topics").iter().filter_map(|t| t.as_str()).collect();
    assert!(topics.contains(&"ck-real-good") && topics.contains(&"kp-real-good"), "{topics:?}");
    // (tansu 0.6 creates topics even for validate_only requests: the proxy's part, forwarding the
    // flag, is asserted above.)
    assert!(!topics.iter().any(|t| t.ends_with("-rf1") || t.ends_with("-noisr") || t.ends_with("-unclean")), "{topics:?}");
    bed.proxy.stop();
    let audit = bed.proxy.audit();
    let creates: Vec<_> = audit.iter().filter(|l| l["event"] == "create_topic").collect();
    assert!(creates.iter().any(|l| l["action"] == "reject" && l["client_id"].is_string()), "{creates:#?}");
    assert!(creates.iter().any(|l| l["action"] == "allow"), "{creates:#?}");
    let first_reject = creates.iter().find(|l| l["action"] == "reject").expect("reject line");
    assert!(first_reject["detail"]["findings"].as_array().is_some_and(|f| !f.is_empty()), "{first_reject}");
}

#[test]
fn upgrade_makes_the_durable_shape_explicit_on_the_broker() {
    let bed = Bed::start(
        "policies:\n  create_topics:\n    replication_factor: {value: 3, action: upgrade}\n    min_insync_replicas: {value: 2, action: upgrade}\n    no_unclean_leader_election: {action: upgrade}\n",
    );
    for (lib, name) in [("confluent", "ck-defaults"), ("kafka-python", "kp-defaults")] {
        let spec = serde_json::json!([{"name": name, "rf": -1, "configs": {"unclean.leader.election.enable": "true"}}]);
        let r = create(&bed, lib, &spec.to_string(), false);
        assert_eq!(r[name]["code"], 0, "{lib}: {r}");
    }
    let seen = broker_created(&bed);
    assert_eq!(seen.len(), 2);
    for req in seen {
        let t = &req.topics[0];
        assert_eq!(t.replication_factor, 3, "{}", t.name.0);
        let cfg: Vec<(String, String)> =
            t.configs.iter().map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string()).unwrap_or_default())).collect();
        assert!(cfg.contains(&("min.insync.replicas".into(), "2".into())), "{cfg:?}");
        assert!(cfg.contains(&("unclean.leader.election.enable".into(), "false".into())), "{cfg:?}");
    }
}

#[test]
fn protected_topics_cannot_be_deleted_or_truncated_and_every_delete_is_audited() {
    let mut bed = Bed::start("policies:\n  deletes:\n    protected_topics: ['keep-*']\n");
    for t in ["keep-ck", "keep-kp", "scratch-ck", "scratch-kp", "keep-records"] {
        bed.create_topic(t);
    }
    for (lib, suffix) in [("confluent", "ck"), ("kafka-python", "kp")] {
        let topics = format!("keep-{suffix},scratch-{suffix}");
        let r = kclient(&["delete-topics", "--lib", lib, "--bootstrap", &bed.proxy.addr(), "--topics", &topics])["results"].clone();
        assert_eq!(r[format!("keep-{suffix}")]["code"], 44, "{lib}: {r}");
        assert_eq!(r[format!("scratch-{suffix}")]["code"], 0, "{lib}: {r}");
        // The message travels in DeleteTopics v5+; librdkafka uses an older version and shows
        // only "Policy violation" (the message itself is covered by the unit tests).
    }
    let r = kclient(&["delete-records", "--bootstrap", &bed.proxy.addr(), "--topic", "keep-records", "--offset", "0"])["results"].clone();
    assert_eq!(r["keep-records"]["code"], 44, "{r}");
    // The broker never saw a delete naming a protected topic.
    for s in bed.relay.seen().iter().filter(|s| s.api_key == 20) {
        let req: DeleteTopicsRequest = body(s.frame.as_ref().expect("frame"), s.api_version);
        let names: Vec<String> = req
            .topic_names
            .iter()
            .map(|n| n.0.to_string())
            .chain(req.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())))
            .collect();
        assert!(names.iter().all(|n| n.starts_with("scratch-")), "{names:?}");
    }
    assert!(!bed.relay.seen().iter().any(|s| s.api_key == 21), "DeleteRecords of a protected topic never reaches the broker");
    let listed = kclient(&["metadata", "--bootstrap", &bed.proxy.addr()]);
    let topics = listed["topics"].to_string();
    assert!(topics.contains("keep-ck") && topics.contains("keep-kp") && !topics.contains("scratch-"), "{topics}");
    bed.proxy.stop();
    let audit = bed.proxy.audit();
    let deletes: Vec<(String, String)> = audit
        .iter()
        .filter(|l| l["event"] == "delete_topic" || l["event"] == "delete_records")
        .map(|l| (l["action"].as_str().unwrap_or_default().to_owned(), l["topics"].to_string()))
        .collect();
    assert!(deletes.iter().any(|(a, t)| a == "reject" && t.contains("keep-")), "{deletes:?}");
    assert!(deletes.iter().any(|(a, t)| a == "allow" && t.contains("scratch-")), "{deletes:?}");
}

#[test]
fn auto_topic_creation_is_switched_off_on_the_wire() {
    let bed = Bed::start("");
    // A producer to a topic that does not exist asks Metadata to auto-create it.
    let r =
        kclient(&["produce", "--bootstrap", &bed.proxy.addr(), "--topic", "never-created", "--count", "1", "--message-timeout-ms", "3000"]);
    assert_eq!(r["delivered"], 0, "the topic was not auto-created: {r}");
    let metas: Vec<MetadataRequest> = bed
        .relay
        .seen()
        .iter()
        .filter(|s| s.api_key == 3 && s.api_version >= 4)
        .map(|s| body(s.frame.as_ref().expect("frame"), s.api_version))
        .collect();
    assert!(!metas.is_empty());
    assert!(metas.iter().all(|m| !m.allow_auto_topic_creation), "every Metadata the broker saw has auto-create off");
}

#[test]
fn policies_reload_on_sighup_and_a_bad_file_is_refused() {
    let mut bed = Bed::start("");
    let cfg_path = bed.proxy.dir.join("proxy.yaml");
    let original = std::fs::read_to_string(&cfg_path).expect("config");
    let spec = r#"[{"name": "reload-a", "rf": 1}]"#;
    assert_eq!(create(&bed, "confluent", spec, false)["reload-a"]["code"], 44);
    // A connection opened before the reload, used after it.
    let mut held = RawClient::connect(bed.proxy.bootstrap);
    let thin = |name: &str| {
        let topic = kafka_protocol::messages::create_topics_request::CreatableTopic::default()
            .with_name(kafka_protocol::messages::TopicName(StrBytes::from_string(name.to_owned())))
            .with_num_partitions(1)
            .with_replication_factor(1);
        frames::request(ApiKey::CreateTopics, 5, 1, Some("held"), &CreateTopicsRequest::default().with_topics(vec![topic])).expect("encode")
    };
    let code = |resp: Bytes| {
        let mut b = resp.slice(4 + frames::response_header_len(ApiKey::CreateTopics, 5)..);
        kafka_protocol::messages::CreateTopicsResponse::decode(&mut b, 5).expect("decode").topics[0].error_code
    };
    held.send(&thin("held-before"));
    assert_eq!(code(held.recv().expect("answer before reload")), 44);

    // Loosen the RF rule to audit: the same request now goes through.
    std::fs::write(&cfg_path, format!("{original}policies:\n  create_topics:\n    replication_factor: {{value: 3, action: audit}}\n    min_insync_replicas: {{value: null}}\n    rf_above_min_isr: {{enabled: false}}\n")).expect("write");
    sighup_and_wait(&bed, "configuration reloaded", 1);
    assert_eq!(create(&bed, "confluent", spec, false)["reload-a"]["code"], 0);
    held.send(&thin("held-after"));
    assert_eq!(code(held.recv().expect("the held connection survived the reload")), 0, "and its next request met the new rules");

    // A file with errors is refused; the running policy stays.
    std::fs::write(&cfg_path, format!("{original}policies:\n  create_topics:\n    replication_factor: {{value: 0, action: sideways}}\n"))
        .expect("write");
    sighup_and_wait(&bed, "reload refused", 1);
    assert_eq!(create(&bed, "confluent", r#"[{"name": "reload-b", "rf": 1}]"#, false)["reload-b"]["code"], 0);
    assert!(bed.proxy.log().contains("unknown variant `sideways`"), "{}", bed.proxy.log());
    bed.proxy.stop();
}

fn sighup_and_wait(bed: &Bed, needle: &str, times: usize) {
    let before = bed.proxy.log().matches(needle).count();
    let _ = std::process::Command::new("kill").arg("-HUP").arg(bed.proxy.proc.child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if bed.proxy.log().matches(needle).count() >= before + times {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("proxy log never said `{needle}`:\n{}", bed.proxy.log());
}

fn alter(bed: &Bed, lib: &str, args: &[&str]) -> serde_json::Value {
    let addr = bed.proxy.addr();
    let mut all = vec!["alter-configs", "--lib", lib, "--bootstrap", &addr, "--incremental"];
    all.extend_from_slice(args);
    kclient(&all)
}

/// kafka-python reports per-resource errors inside its response text.
fn refused(r: &serde_json::Value) -> bool {
    r["code"] == 44 || r["response"].as_str().is_some_and(|s| s.contains("Error 44") && s.contains("durability proxy refused"))
}

#[test]
fn config_changes_are_judged_by_the_resulting_config() {
    let mut bed = Bed::start("");
    bed.create_topic("cfg-topic");
    for lib in ["confluent", "kafka-python"] {
        let lower = alter(&bed, lib, &["--name", "cfg-topic", "--set", "min.insync.replicas=1"]);
        assert!(refused(&lower), "{lib}: lowering min.insync.replicas: {lower}");
        let text = lower.to_string();
        assert!(text.contains("min.insync.replicas 1 is below the required 2"), "{lib}: {text}");
        let delete = alter(&bed, lib, &["--name", "cfg-topic", "--delete", "min.insync.replicas"]);
        assert!(refused(&delete), "{lib}: deleting it falls back to the broker default 1: {delete}");
        let unclean = alter(&bed, lib, &["--name", "cfg-topic", "--set", "unclean.leader.election.enable=true"]);
        assert!(refused(&unclean), "{lib}: {unclean}");
        let fine = alter(&bed, lib, &["--name", "cfg-topic", "--set", "min.insync.replicas=2,retention.ms=86400000"]);
        assert!(!refused(&fine) && fine["code"] == 0, "{lib}: a safe change goes through: {fine}");
    }
    // Broker resources: a specific broker through both clients, and the cluster-wide default
    // (name "") as a raw request: both libraries refuse an empty broker name themselves.
    for lib in ["confluent", "kafka-python"] {
        let broker = alter(&bed, lib, &["--resource", "broker", "--name", "111", "--set", "unclean.leader.election.enable=true"]);
        assert!(refused(&broker), "{lib}: {broker}");
        assert!(broker.to_string().contains("refused the config change to broker 111"), "{broker}");
    }
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(4)
        .with_resource_name(StrBytes::from_static_str(""))
        .with_configs(vec![AlterableConfig::default()
            .with_name(StrBytes::from_static_str("min.insync.replicas"))
            .with_config_operation(0)
            .with_value(Some(StrBytes::from_static_str("1")))])]);
    let mut raw = RawClient::connect(bed.proxy.bootstrap);
    raw.send(&frames::request(ApiKey::IncrementalAlterConfigs, 1, 5, Some("ops-script"), &req).expect("encode"));
    let resp = raw.recv().expect("response");
    let mut b = resp.slice(4 + frames::response_header_len(ApiKey::IncrementalAlterConfigs, 1)..);
    let m = IncrementalAlterConfigsResponse::decode(&mut b, 1).expect("decode");
    assert_eq!(m.responses[0].error_code, 44);
    let msg = m.responses[0].error_message.as_ref().map(|m| m.to_string()).unwrap_or_default();
    assert!(msg.contains("the cluster-wide broker default") && msg.contains("(broker default 1) is below the required 2"), "{msg}");
    // An unrelated broker change is not blocked by the cluster's existing (weak) defaults.
    let harmless = alter(&bed, "confluent", &["--resource", "broker", "--name", "111", "--set", "log.cleaner.threads=2"]);
    assert!(!refused(&harmless), "{harmless}");
    // The broker received only the changes that were allowed.
    let alters = bed.relay.seen().iter().filter(|s| s.api_key == 44).count();
    assert_eq!(alters, 3, "two safe topic changes (one per client) and one harmless broker change reached the broker");
    bed.proxy.stop();
    let audit = bed.proxy.audit();
    let lines: Vec<_> = audit.iter().filter(|l| l["event"] == "alter_config").collect();
    assert!(lines.iter().any(|l| l["action"] == "reject"), "{lines:#?}");
    assert!(lines.iter().any(|l| l["action"] == "allow"), "{lines:#?}");
}

#[test]
fn scopes_narrow_the_rules_and_the_most_specific_wins() {
    let mut bed = Bed::start(
        "policies:\n  scopes:\n\
         \x20   - name: scratch\n      match: {topics: ['scratch.*']}\n      create_topics:\n        replication_factor: {value: 1}\n        min_insync_replicas: {value: 1}\n        rf_above_min_isr: {enabled: false}\n\
         \x20   - name: payments\n      match: {topics: ['payments.*']}\n      produce_acks: {action: reject}\n",
    );
    let r = create(&bed, "confluent", r#"[{"name": "scratch.tmp", "rf": 1}, {"name": "orders-thin", "rf": 1}]"#, false);
    assert_eq!(r["scratch.tmp"]["code"], 0, "the scratch scope allows RF 1: {r}");
    assert_eq!(r["orders-thin"]["code"], 44, "the base rules still apply elsewhere: {r}");
    bed.create_topic("payments.cards");
    bed.create_topic("orders");
    let produce = |topic: &str, id: &str| {
        kclient(&[
            "produce",
            "--bootstrap",
            &bed.proxy.addr(),
            "--topic",
            topic,
            "--acks",
            "1",
            "--client-id",
            id,
            "--count",
            "2",
            "--one-per-request",
        ])
    };
    let pay = produce("payments.cards", "pay-app");
    assert!(
        pay["errors"].as_array().is_some_and(|e| e.len() == 2 && e.iter().all(|e| e["code"] == 21)),
        "payments scope rejects acks=1: {pay}"
    );
    let ord = produce("orders", "order-app");
    assert_eq!(ord["delivered"], 2, "the base rule upgrades elsewhere: {ord}");
    assert!(bed.relay.produces("order-app").iter().all(|s| s.acks == Some(-1)));
    assert!(bed.relay.produces("pay-app").is_empty());
    bed.proxy.stop();
    let audit = bed.proxy.audit();
    assert!(
        audit.iter().any(|l| l["client_id"] == "pay-app" && l["action"] == "reject" && l["detail"]["scope"] == "payments"),
        "{audit:#?}"
    );
    assert!(
        audit.iter().any(|l| l["event"] == "create_topic" && l["topics"][0] == "scratch.tmp" && l["detail"]["scope"] == "scratch"),
        "{audit:#?}"
    );
}

//! SASL through the proxy against tansu requiring SCRAM, with confluent-kafka and kafka-python:
//! clients authenticate end to end through a TLS proxy to TLS + SASL tansu (haproxy terminates
//! TLS in front of it), their principals reach audit and scopes, the proxy judges config changes
//! with its own credentials (and says so when they are refused), wrong passwords fail as the
//! broker says, and the legacy v0 handshake is carried in SaslAuthenticate.

use std::path::Path;

use serde_json::Value;

use crate::support::secure::{kclient_secure, start_haproxy_tls, start_tansu_sasl, ClientSecurity, Pki, Scram};
use crate::support::{free_port, wait_for_port, Proc, Proxy, Sections, TANSU_NODE};

const USERS: [(&str, &str, Scram); 3] =
    [("alice", "alice-secret", Scram::Sha256), ("bob", "bob-secret", Scram::Sha512), ("kdp", "proxy-secret", Scram::Sha256)];

/// tansu with SASL behind haproxy TLS, and the proxy (TLS to clients, TLS + SCRAM upstream).
struct SecureBed {
    pki: Pki,
    proxy: Proxy,
    _haproxy: Proc,
    _tansu: Proc,
    _dir: tempfile::TempDir,
}

fn upstream(pki: &Pki, password_file: &Path) -> String {
    format!(
        "  tls:\n    ca_file: {}\n  sasl:\n    mechanism: SCRAM-SHA-256\n    username: kdp\n    password_file: {}\n",
        pki.ca.display(),
        password_file.display()
    )
}

impl SecureBed {
    fn start(proxy_password: &str, policies: &str) -> SecureBed {
        let dir = tempfile::tempdir().expect("dir");
        let pki = Pki::generate(&dir.path().join("pki"));
        let (tansu_port, tls_port, node_port) = (free_port(), free_port(), free_port());
        let haproxy = start_haproxy_tls(dir.path(), tls_port, tansu_port, &pki.server_combined);
        let tansu = start_tansu_sasl(dir.path(), tansu_port, tls_port, &USERS);
        let pw = dir.path().join("proxy.password");
        std::fs::write(&pw, format!("{proxy_password}\n")).expect("password file");
        let listen = format!("  tls:\n    cert_file: {}\n    key_file: {}\n", pki.server.cert.display(), pki.server.key.display());
        let sections = Sections { listen, upstream: upstream(&pki, &pw), extra: policies.to_owned(), ..Sections::default() };
        let proxy = Proxy::start_with(dir.path(), tls_port, &[(TANSU_NODE, node_port)], &sections);
        SecureBed { pki, proxy, _haproxy: haproxy, _tansu: tansu, _dir: dir }
    }

    fn user(&self, name: &str) -> ClientSecurity {
        let (user, pw, mech) = USERS.iter().find(|u| u.0 == name).copied().expect("user");
        ClientSecurity::sasl_ssl(user, pw, mech, &self.pki.ca)
    }

    fn run(&self, args: &[&str], who: &ClientSecurity) -> Value {
        let addr = self.proxy.addr();
        let all: Vec<&str> = args.iter().copied().chain(["--bootstrap", addr.as_str()]).collect();
        kclient_secure(&all, who)
    }
}

fn produce(bed: &SecureBed, lib: &str, id: &str, topic: &str, who: &ClientSecurity) -> Value {
    bed.run(
        &["produce", "--lib", lib, "--topic", topic, "--acks", "1", "--client-id", id, "--prefix", id, "--count", "4", "--one-per-request"],
        who,
    )
}

#[test]
fn sasl_ssl_clients_through_a_tls_proxy_to_tls_sasl_tansu() {
    let scope =
        "policies:\n  scopes:\n    - name: bob-strict\n      match: {principals: ['User:bob']}\n      produce_acks: {action: reject}\n";
    let mut bed = SecureBed::start("proxy-secret", scope);
    let alice = bed.user("alice");
    let spec = r#"[{"name": "secure-orders", "rf": 3, "configs": {"min.insync.replicas": "2"}}, {"name": "secure-thin", "rf": 1}]"#;
    let created = bed.run(&["create-topics", "--spec", spec], &alice);
    assert_eq!(created["results"]["secure-orders"]["code"], 0, "{created}");
    assert_eq!(created["results"]["secure-thin"]["code"], 44, "{created}");
    for lib in ["confluent", "kafka-python"] {
        let r = produce(&bed, lib, &format!("alice-{lib}"), "secure-orders", &alice);
        assert_eq!(r["delivered"], 4, "{lib} as alice, acks=1 upgraded: {r}");
    }
    // bob (SCRAM-SHA-512) falls under the scope that rejects acks=1 for his principal only.
    let b = produce(&bed, "confluent", "bob-app", "secure-orders", &bed.user("bob"));
    assert!(b["errors"].as_array().is_some_and(|e| e.len() == 4 && e.iter().all(|e| e["code"] == 21)), "{b}");
    let read = bed.run(&["consume", "--topic", "secure-orders", "--expect", "8", "--group", "g-secure"], &alice);
    assert_eq!(read["count"], 8, "{read}");
    // Config changes are judged with the proxy's own credentials: the current config is read.
    let lower = bed.run(&["alter-configs", "--incremental", "--name", "secure-orders", "--set", "min.insync.replicas=1"], &alice);
    assert!(lower.to_string().contains("min.insync.replicas 1 is below the required 2"), "{lower}");
    let fine = bed.run(&["alter-configs", "--incremental", "--name", "secure-orders", "--set", "retention.ms=86400000"], &alice);
    assert_eq!(fine["code"], 0, "{fine}");
    bed.proxy.stop();
    let audit = bed.proxy.audit();
    let weak = |id: &str| {
        audit.iter().find(|l| l["event"] == "weak_acks" && l["client_id"] == id).cloned().unwrap_or_else(|| panic!("{id}: {audit:#?}"))
    };
    for lib in ["confluent", "kafka-python"] {
        let l = weak(&format!("alice-{lib}"));
        assert_eq!((l["principal"].as_str(), l["action"].as_str()), (Some("User:alice"), Some("upgrade")), "{l}");
    }
    let b = weak("bob-app");
    assert_eq!(
        (b["principal"].as_str(), b["action"].as_str(), b["detail"]["scope"].as_str()),
        (Some("User:bob"), Some("reject"), Some("bob-strict"))
    );
    let text = std::fs::read_to_string(bed.proxy.dir.join("audit.jsonl")).expect("audit");
    assert!(!text.contains("alice-secret") && !text.contains("proxy-secret"), "no password in the audit log");
    assert!(!bed.proxy.log().contains("alice-secret") && !bed.proxy.log().contains("proxy-secret"), "no password in the log");
}

#[test]
fn refused_credentials_are_reported_by_whoever_holds_them() {
    let bed = SecureBed::start("not-the-password", "");
    // A client with a wrong password sees the broker's SCRAM refusal, as it would directly.
    let wrong = ClientSecurity::sasl_ssl("alice", "wrong", Scram::Sha256, &bed.pki.ca);
    let r =
        bed.run(&["produce", "--topic", "any", "--acks", "all", "--count", "1", "--timeout", "5", "--message-timeout-ms", "4000"], &wrong);
    assert_eq!(r["delivered"], 0, "{r}");
    assert!(r.to_string().contains("invalid-proof"), "librdkafka shows the broker's SCRAM error: {r}");
    // tansu keeps serving a connection whose proof failed; the proxy closes it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !bed.proxy.log().contains("SASL authentication failed") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(bed.proxy.log().contains("SASL authentication failed"), "{}", bed.proxy.log());
    // The proxy's own password is wrong: what a new topic would inherit is unknown, so even a
    // durable-looking create is refused, saying why (never judged against guessed defaults)...
    let alice = bed.user("alice");
    let spec = r#"[{"name": "own-creds", "rf": 3, "configs": {"min.insync.replicas": "2"}}]"#;
    let created = bed.run(&["create-topics", "--spec", spec], &alice);
    assert_eq!(created["results"]["own-creds"]["code"], 44, "{created}");
    let text = created.to_string();
    assert!(text.contains("cluster refused the proxy's own requests") && text.contains("invalid-proof"), "{text}");
    // ... and so is a config change.
    let change = bed.run(&["alter-configs", "--incremental", "--name", "own-creds", "--set", "retention.ms=86400000"], &alice);
    let text = change.to_string();
    assert!(text.contains("refused the proxy's own credentials") && text.contains("invalid-proof"), "{text}");
    assert!(bed.proxy.log().contains("refused the proxy's own credentials"), "{}", bed.proxy.log());
    let refused = |audit: &[Value]| {
        audit.iter().any(|l| {
            l["event"] == "create_topic"
                && l["action"] == "reject"
                && l["detail"]["reason"].as_str().is_some_and(|r| r.contains("refused the proxy's own credentials"))
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !refused(&bed.proxy.audit()) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let audit = bed.proxy.audit();
    assert!(refused(&audit), "the audit event says the cluster refused the proxy: {audit:#?}");
}

#[test]
fn legacy_v0_handshake_tokens_travel_in_sasl_authenticate() {
    // kafka-python told the broker is 0.10.2 asks no ApiVersions and speaks SaslHandshake v0,
    // then raw SCRAM tokens with no Kafka header. tansu is reached over plaintext here.
    let dir = tempfile::tempdir().expect("dir");
    let (tansu_port, node_port) = (free_port(), free_port());
    let relay = crate::support::relay::Relay::start(tansu_port);
    let _tansu = start_tansu_sasl(dir.path(), tansu_port, relay.port, &USERS);
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "proxy-secret").expect("pw");
    let up = format!("  sasl:\n    mechanism: SCRAM-SHA-256\n    username: kdp\n    password_file: {}\n", pw.display());
    let mut proxy =
        Proxy::start_with(dir.path(), relay.port, &[(TANSU_NODE, node_port)], &Sections { upstream: up, ..Sections::default() });
    wait_for_port(node_port, "broker listener from discovery with the proxy's credentials");
    let who = ClientSecurity::sasl_plaintext("alice", "alice-secret", Scram::Sha256);
    let addr = proxy.addr();
    let args = [
        "metadata",
        "--lib",
        "kafka-python",
        "--bootstrap",
        &addr,
        "--client-id",
        "old-kafka-python",
        "--timeout",
        "10",
        "--api-version",
        "0.10.2",
    ];
    let r = kclient_secure(&args, &who);
    assert_eq!(r["brokers"], serde_json::json!([format!("127.0.0.1:{node_port}")]), "authenticated and answered: {r}");
    let seen: Vec<(i16, i16)> =
        relay.seen().iter().filter(|s| s.client_id.as_deref() == Some("old-kafka-python")).map(|s| (s.api_key, s.api_version)).collect();
    assert!(seen.contains(&(17, 1)), "the broker got the v0 handshake as v1: {seen:?}");
    let handshakes = seen.iter().filter(|s| **s == (17, 1)).count();
    let wrapped = seen.iter().filter(|s| **s == (36, 0)).count();
    assert_eq!(wrapped, 2 * handshakes, "each connection's two raw SCRAM tokens inside SaslAuthenticate v0: {seen:?}");
    assert!(seen.iter().any(|s| s.0 == 3), "then Metadata on the same footing: {seen:?}");
    proxy.stop();
    assert!(!proxy.log().contains("alice-secret"), "no password in the log");
}

/// One request/response on a raw connection: the answer's correlation id, or None when closed.
fn ask(s: &mut crate::support::fake::RawClient, frame: &[u8]) -> Option<i32> {
    if !s.try_send(frame) {
        return None;
    }
    s.recv().map(|f| i32::from_be_bytes([f[4], f[5], f[6], f[7]]))
}

/// Logs a raw connection in with the crate's own SCRAM client, through the proxy.
fn login(s: &mut crate::support::fake::RawClient, user: &str, password: &str) {
    use kafka_durability_proxy::cluster::sasl::{random_nonce, ScramClient, ScramMechanism, Secret};
    use kafka_durability_proxy::protocol::encode as frames;
    use kafka_protocol::messages::{ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest};
    let hs = SaslHandshakeRequest::default().with_mechanism(kafka_protocol::protocol::StrBytes::from_static_str("SCRAM-SHA-256"));
    assert_eq!(ask(s, &frames::request(ApiKey::SaslHandshake, 1, 1, Some("raw"), &hs).expect("enc")), Some(1));
    let mut scram =
        ScramClient::new(ScramMechanism::Sha256, user, Secret::new(password.into()), &random_nonce().expect("nonce")).expect("scram");
    let mut token = scram.client_first();
    for corr in [2, 3] {
        let req = SaslAuthenticateRequest::default().with_auth_bytes(bytes::Bytes::from(token.clone()));
        s.send(&frames::request(ApiKey::SaslAuthenticate, 2, corr, Some("raw"), &req).expect("enc"));
        let resp = s.recv().expect("authenticate answered");
        let (_, body): (i32, SaslAuthenticateResponse) = frames::decode_response(&resp, ApiKey::SaslAuthenticate, 2).expect("decode");
        if corr == 2 {
            token = scram.handle_server_first(&body.auth_bytes).expect("server-first");
        } else {
            scram.verify_server_final(&body.auth_bytes).expect("the broker accepted alice");
        }
    }
}

#[test]
fn unauthenticated_clients_cannot_make_the_proxy_buffer_large_frames() {
    use kafka_durability_proxy::protocol::encode as frames;
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::{ApiKey, MetadataRequest, TopicName};
    let dir = tempfile::tempdir().expect("dir");
    let (tansu_port, node_port) = (free_port(), free_port());
    let _tansu = start_tansu_sasl(dir.path(), tansu_port, tansu_port, &USERS);
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "proxy-secret").expect("pw");
    let up = format!("  sasl:\n    mechanism: SCRAM-SHA-256\n    username: kdp\n    password_file: {}\n", pw.display());
    let proxy = Proxy::start_with(dir.path(), tansu_port, &[(TANSU_NODE, node_port)], &Sections { upstream: up, ..Sections::default() });
    // A 600 KiB Metadata request naming 20,000 topics: valid, and above the 512 KiB pre-auth cap.
    let topics = (0..20_000)
        .map(|i| MetadataRequestTopic::default().with_name(Some(TopicName(format!("no-such-topic-number-{i:08}").into()))))
        .collect();
    let big = frames::request(ApiKey::Metadata, 9, 7, Some("raw"), &MetadataRequest::default().with_topics(Some(topics))).expect("enc");
    assert!(big.len() > 600_000, "{}", big.len());
    let mut anonymous = crate::support::fake::RawClient::connect(proxy.bootstrap);
    assert_eq!(ask(&mut anonymous, &big), None, "refused before authentication");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !proxy.log().contains("exceeds the 524288-byte limit") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(proxy.log().contains("exceeds the 524288-byte limit"), "{}", proxy.log());
    let mut alice = crate::support::fake::RawClient::connect(proxy.bootstrap);
    login(&mut alice, "alice", "alice-secret");
    assert_eq!(ask(&mut alice, &big), Some(7), "the same frame is carried once authenticated");
}

#[test]
fn the_proxys_password_can_come_from_the_environment() {
    let dir = tempfile::tempdir().expect("dir");
    let (tansu_port, node_port, bootstrap) = (free_port(), free_port(), free_port());
    let _tansu = start_tansu_sasl(dir.path(), tansu_port, tansu_port, &USERS);
    let cfg = format!(
        "listen:\n  bind_host: 127.0.0.1\n  advertised_host: 127.0.0.1\n  bootstrap_port: {bootstrap}\n  broker_ports: {{{TANSU_NODE}: {node_port}}}\n\
         upstream:\n  bootstrap_servers: [\"127.0.0.1:{tansu_port}\"]\n  sasl:\n    mechanism: SCRAM-SHA-256\n    username: kdp\n    password_env: KDP_TEST_UPSTREAM_PASSWORD\n\
         admin:\n  listen: null\n"
    );
    let mut proxy = Proxy::start_with_env(dir.path(), bootstrap, &cfg, &[("KDP_TEST_UPSTREAM_PASSWORD", "proxy-secret")]);
    wait_for_port(node_port, "broker listener from discovery with the password from the environment");
    let who = ClientSecurity::sasl_plaintext("alice", "alice-secret", Scram::Sha256);
    let spec = r#"[{"name": "env-pw", "rf": 3, "configs": {"min.insync.replicas": "2"}}]"#;
    let created = kclient_secure(&["create-topics", "--bootstrap", &proxy.addr(), "--spec", spec], &who);
    assert_eq!(created["results"]["env-pw"]["code"], 0, "judged with the proxy's own login: {created}\n{}", proxy.log());
    proxy.stop();
    assert!(!proxy.log().contains("proxy-secret"), "the password is never logged");
}

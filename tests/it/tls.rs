//! TLS through the proxy, with real clients and tansu: clients speak TLS to every proxy listener
//! (bootstrap and per broker), the proxy speaks TLS to brokers behind haproxy, client
//! certificates become principals for audit and scopes, certificates reload without dropping
//! connections, and plaintext on a TLS port is named as such.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_durability_proxy::protocol::encode as frames;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::secure::{kclient_secure, start_haproxy_mtls, start_haproxy_tls, ClientSecurity, Pki};
use crate::support::{free_port, kclient, start_tansu, wait_for_port, Bed, Proxy, Sections, TANSU_NODE};

fn listen_tls(pki: &Pki, extra: &str) -> String {
    format!("  tls:\n    cert_file: {}\n    key_file: {}\n{extra}", pki.server.cert.display(), pki.server.key.display())
}

fn produce(addr: &str, lib: &str, id: &str, topic: &str, count: usize, sec: &ClientSecurity) -> Value {
    let n = count.to_string();
    let args = crate::support::produce_args(addr, lib, "1", id, topic, &n);
    kclient_secure(&args, sec)
}

/// Sends `bytes` and reports whether the peer closed (or reset) the connection without answering.
fn refused_at_once(port: u16, bytes: &[u8]) -> bool {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    s.write_all(bytes).expect("write");
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    }
}

fn wait_log(proxy: &Proxy, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if proxy.log().contains(needle) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("proxy log never said `{needle}`:\n{}", proxy.log());
}

#[test]
fn clients_speak_tls_to_every_proxy_listener() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = Pki::generate(&dir.path().join("pki"));
    let bed = Bed::start_with(dir, &Sections { listen: listen_tls(&pki, ""), ..Sections::default() });
    let tls = ClientSecurity::ssl(&pki.ca);
    let spec = r#"[{"name": "tls-orders", "rf": 3, "configs": {"min.insync.replicas": "2"}}]"#;
    let created = kclient_secure(&["create-topics", "--bootstrap", &bed.proxy.addr(), "--spec", spec], &tls);
    assert_eq!(created["results"]["tls-orders"]["code"], 0, "{created}");
    for (lib, id) in [("confluent", "ck-tls"), ("kafka-python", "kp-tls")] {
        let r = produce(&bed.proxy.addr(), lib, id, "tls-orders", 5, &tls);
        assert_eq!(r["delivered"], 5, "{lib} over TLS: {r}");
        let p = bed.relay.produces(id);
        assert!(!p.is_empty() && p.iter().all(|s| s.acks == Some(-1)), "{lib}: acks upgraded behind TLS: {p:?}");
    }
    let read =
        kclient_secure(&["consume", "--bootstrap", &bed.proxy.addr(), "--topic", "tls-orders", "--expect", "10", "--group", "g-tls"], &tls);
    assert_eq!(read["count"], 10, "{read}");
    // The broker listener (where Metadata sends clients) serves TLS too: a plaintext request there
    // is refused and named in the log.
    let api_versions = frames::request(ApiKey::ApiVersions, 0, 1, Some("plain"), &ApiVersionsRequest::default()).expect("encode");
    for port in [bed.proxy.bootstrap, bed.broker_port] {
        assert!(refused_at_once(port, &api_versions), "port {port}: plaintext gets no Kafka answer on a TLS listener");
    }
    wait_log(&bed.proxy, "client sent plaintext to a TLS listener");
    assert!(bed.proxy.log().contains("peer=127.0.0.1:"), "the log line names the peer");
    // A plaintext client library fails to talk to it.
    let r = kclient(&["metadata", "--bootstrap", &bed.proxy.addr(), "--timeout", "5"]);
    assert!(r["brokers"].as_array().is_none_or(|b| b.is_empty()) || r["failed"] == true, "{r}");
}

#[test]
fn client_certificates_name_the_principal_for_audit_and_scopes() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = Pki::generate(&dir.path().join("pki"));
    // Attributes in certificate order; Kafka (RFC 2253) shows them most specific first.
    let alice = pki.client_cert("alice", "O=Example,OU=payments,CN=Alice");
    let bob = pki.client_cert("bob", "O=Example,OU=ops,CN=bob");
    let rules = format!(
        "    client_auth: required\n    ca_file: {}\n    principal_mapping_rules: ['RULE:^CN=([^,]*),OU=payments,.*$/$1/L', 'DEFAULT']\n",
        pki.ca.display()
    );
    let policies =
        "policies:\n  scopes:\n    - name: alice-strict\n      match: {principals: ['User:alice']}\n      produce_acks: {action: reject}\n";
    let mut bed = Bed::start_with(dir, &Sections { listen: listen_tls(&pki, &rules), extra: policies.into(), ..Sections::default() });
    let as_alice = ClientSecurity::ssl(&pki.ca).with_client_cert(&alice);
    let as_bob = ClientSecurity::ssl(&pki.ca).with_client_cert(&bob);
    let spec = r#"[{"name": "mtls", "rf": 3, "configs": {"min.insync.replicas": "2"}}]"#;
    assert_eq!(kclient_secure(&["create-topics", "--bootstrap", &bed.proxy.addr(), "--spec", spec], &as_bob)["results"]["mtls"]["code"], 0);
    let a = produce(&bed.proxy.addr(), "confluent", "alice-app", "mtls", 2, &as_alice);
    assert!(a["errors"].as_array().is_some_and(|e| e.len() == 2 && e.iter().all(|e| e["code"] == 21)), "alice's scope rejects acks=1: {a}");
    let b = produce(&bed.proxy.addr(), "confluent", "bob-app", "mtls", 2, &as_bob);
    assert_eq!(b["delivered"], 2, "bob is outside the scope: upgraded: {b}");
    let none = produce(&bed.proxy.addr(), "kafka-python", "anon", "mtls", 1, &ClientSecurity::ssl(&pki.ca));
    assert_ne!(none["delivered"], 1, "client_auth required: no certificate, no connection: {none}");
    bed.proxy.stop();
    let audit = bed.proxy.audit();
    let line = |id: &str| {
        audit.iter().find(|l| l["client_id"] == id && l["event"] == "weak_acks").cloned().unwrap_or_else(|| panic!("{id}: {audit:#?}"))
    };
    let (a, b) = (line("alice-app"), line("bob-app"));
    assert_eq!(
        (a["principal"].as_str(), a["tls_subject"].as_str(), a["action"].as_str()),
        (Some("User:alice"), Some("CN=Alice,OU=payments,O=Example"), Some("reject"))
    );
    assert_eq!(a["detail"]["scope"], "alice-strict");
    assert_eq!(
        (b["principal"].as_str(), b["action"].as_str()),
        (Some("User:CN=bob,OU=ops,O=Example"), Some("upgrade")),
        "DEFAULT keeps the subject"
    );
    assert!(
        bed.proxy.log().contains("TLS handshake failed") || bed.proxy.log().contains("closing client connection"),
        "{}",
        bed.proxy.log()
    );
}

#[test]
fn the_proxy_speaks_tls_to_brokers_behind_haproxy() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = Pki::generate(&dir.path().join("pki"));
    let (tansu_port, tls_port, node_port) = (free_port(), free_port(), free_port());
    let _haproxy = start_haproxy_tls(dir.path(), tls_port, tansu_port, &pki.server_combined);
    let _tansu = start_tansu(dir.path(), tansu_port, tls_port);
    let upstream = format!("  tls:\n    ca_file: {}\n", pki.ca.display());
    let mut proxy = Proxy::start_with(dir.path(), tls_port, &[(TANSU_NODE, node_port)], &Sections { upstream, ..Sections::default() });
    wait_for_port(node_port, "broker listener, from discovery over TLS");
    let spec = r#"[{"name": "behind-tls", "rf": 3, "configs": {"min.insync.replicas": "2"}}, {"name": "thin", "rf": 1}]"#;
    let created = kclient(&["create-topics", "--bootstrap", &proxy.addr(), "--spec", spec]);
    assert_eq!(
        (created["results"]["behind-tls"]["code"].as_i64(), created["results"]["thin"]["code"].as_i64()),
        (Some(0), Some(44)),
        "{created}"
    );
    let r = kclient(&[
        "produce",
        "--bootstrap",
        &proxy.addr(),
        "--topic",
        "behind-tls",
        "--acks",
        "0",
        "--count",
        "20",
        "--client-id",
        "plain-app",
    ]);
    assert_eq!(r["errors"], serde_json::json!([]), "{r}");
    let read = kclient(&["consume", "--bootstrap", &proxy.addr(), "--topic", "behind-tls", "--expect", "20", "--group", "g-up"]);
    assert_eq!(read["count"], 20, "{read}");
    proxy.stop();
    assert!(proxy.audit().iter().any(|l| l["client_id"] == "plain-app" && l["action"] == "upgrade"));
}

#[test]
fn client_auth_requested_takes_a_certificate_when_offered_and_serves_clients_without_one() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = Pki::generate(&dir.path().join("pki"));
    let carol = pki.client_cert("carol", "O=Example,CN=carol");
    let rules = format!("    client_auth: requested\n    ca_file: {}\n", pki.ca.display());
    let mut bed = Bed::start_with(dir, &Sections { listen: listen_tls(&pki, &rules), ..Sections::default() });
    let spec = r#"[{"name": "optional", "rf": 3, "configs": {"min.insync.replicas": "2"}}]"#;
    let created = kclient_secure(&["create-topics", "--bootstrap", &bed.proxy.addr(), "--spec", spec], &ClientSecurity::ssl(&pki.ca));
    assert_eq!(created["results"]["optional"]["code"], 0, "{created}");
    let anon = produce(&bed.proxy.addr(), "kafka-python", "anon-app", "optional", 1, &ClientSecurity::ssl(&pki.ca));
    assert_eq!(anon["delivered"], 1, "no certificate is fine when it is only requested: {anon}");
    let with = produce(&bed.proxy.addr(), "confluent", "carol-app", "optional", 1, &ClientSecurity::ssl(&pki.ca).with_client_cert(&carol));
    assert_eq!(with["delivered"], 1, "{with}");
    bed.proxy.stop();
    let audit = bed.proxy.audit();
    let line = |id: &str| audit.iter().find(|l| l["client_id"] == id).cloned().unwrap_or_else(|| panic!("{id}: {audit:#?}"));
    assert!(line("anon-app").get("principal").is_none(), "no certificate, no principal");
    assert_eq!(line("carol-app")["principal"], "User:CN=carol,O=Example", "an offered certificate names the principal");
}

#[test]
fn a_uri_san_can_name_the_principal_for_audit_and_scopes() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = Pki::generate(&dir.path().join("pki"));
    let spiffe = |ns: &str| rcgen::SanType::URI(format!("spiffe://example.org/ns/{ns}/sa/app").try_into().expect("uri"));
    let payments = pki.client_cert_with_sans("payments", "O=Example,CN=workload", vec![spiffe("payments")]);
    let ops = pki.client_cert_with_sans("ops", "O=Example,CN=workload", vec![spiffe("ops")]);
    let rules = format!(
        "    client_auth: required\n    ca_file: {}\n    principal_source: san_uri\n    principal_mapping_rules: ['RULE:^spiffe:\\/\\/example.org\\/ns\\/([^\\/]*)\\/.*$/$1/']\n",
        pki.ca.display()
    );
    let policies = "policies:\n  scopes:\n    - name: payments-strict\n      match: {principals: ['User:payments']}\n      produce_acks: {action: reject}\n";
    let mut bed = Bed::start_with(dir, &Sections { listen: listen_tls(&pki, &rules), extra: policies.into(), ..Sections::default() });
    let as_ops = ClientSecurity::ssl(&pki.ca).with_client_cert(&ops);
    let spec = r#"[{"name": "mesh", "rf": 3, "configs": {"min.insync.replicas": "2"}}]"#;
    let created = kclient_secure(&["create-topics", "--bootstrap", &bed.proxy.addr(), "--spec", spec], &as_ops);
    assert_eq!(created["results"]["mesh"]["code"], 0, "{created}\n{}", bed.proxy.log());
    let p = produce(&bed.proxy.addr(), "confluent", "payments-app", "mesh", 1, &ClientSecurity::ssl(&pki.ca).with_client_cert(&payments));
    assert!(
        p["errors"].as_array().is_some_and(|e| e.len() == 1 && e.iter().all(|e| e["code"] == 21)),
        "the payments scope rejects acks=1: {p}"
    );
    let o = produce(&bed.proxy.addr(), "confluent", "ops-app", "mesh", 1, &as_ops);
    assert_eq!(o["delivered"], 1, "{o}");
    bed.proxy.stop();
    let audit = bed.proxy.audit();
    let line = |id: &str| audit.iter().find(|l| l["client_id"] == id).cloned().unwrap_or_else(|| panic!("{id}: {audit:#?}"));
    assert_eq!(
        (line("payments-app")["principal"].as_str(), line("payments-app")["tls_subject"].as_str()),
        (Some("User:payments"), Some("CN=workload,O=Example"))
    );
    assert_eq!(line("ops-app")["principal"], "User:ops");
}

/// Whether the proxy's /readyz says ready within `secs` (discovery reached a broker).
fn ready_within(proxy: &Proxy, secs: u64) -> bool {
    let port = proxy.admin.expect("admin");
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if crate::observability::http_get(port, "/readyz").0 == 200 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn the_proxy_presents_its_certificate_to_brokers_that_require_one_and_checks_their_name() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = Pki::generate(&dir.path().join("pki"));
    let (tansu_port, tls_port, node_port) = (free_port(), free_port(), free_port());
    // haproxy in front of tansu requires a client certificate from the test CA (mTLS).
    let _haproxy = start_haproxy_mtls(dir.path(), tls_port, tansu_port, &pki.server_combined, &pki.ca);
    let _tansu = start_tansu(dir.path(), tansu_port, tls_port);
    let own = pki.client_cert("proxy", "CN=kdp-proxy,O=Example");
    let start = |name: &str, upstream: String| {
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).expect("dir");
        Proxy::start_with(&sub, tls_port, &[(TANSU_NODE, node_port)], &Sections { upstream, ..Sections::default() })
    };
    // Without upstream.tls cert_file/key_file the broker side refuses the proxy: never ready.
    let mut bare = start("bare", format!("  tls:\n    ca_file: {}\n", pki.ca.display()));
    assert!(!ready_within(&bare, 4), "a broker requiring a client certificate let the proxy in without one");
    bare.stop();
    assert!(bare.log().contains("broker discovery failed"), "{}", bare.log());
    // A server_name the broker's certificate does not carry fails verification.
    let tls = |server_name: &str| {
        format!(
            "  tls:\n    ca_file: {}\n    server_name: {server_name}\n    cert_file: {}\n    key_file: {}\n",
            pki.ca.display(),
            own.cert.display(),
            own.key.display()
        )
    };
    let mut misnamed = start("misnamed", tls("kafka.wrong.example"));
    assert!(!ready_within(&misnamed, 4), "a certificate for another name was accepted");
    misnamed.stop();
    assert!(misnamed.log().contains("broker discovery failed"), "{}", misnamed.log());
    // With its certificate and the broker's name, discovery, admin judging and clients work.
    let mut proxy = start("good", tls("localhost"));
    assert!(ready_within(&proxy, 30), "{}", proxy.log());
    let spec = r#"[{"name": "mtls", "rf": 3, "configs": {"min.insync.replicas": "2"}}]"#;
    assert_eq!(kclient(&["create-topics", "--bootstrap", &proxy.addr(), "--spec", spec])["results"]["mtls"]["code"], 0);
    let r = kclient(&["produce", "--bootstrap", &proxy.addr(), "--topic", "mtls", "--acks", "1", "--count", "10"]);
    assert_eq!(r["delivered"], 10, "{r}");
    let read = kclient(&["consume", "--bootstrap", &proxy.addr(), "--topic", "mtls", "--expect", "10", "--group", "g-mtls"]);
    assert_eq!(read["count"], 10, "{read}");
    proxy.stop();
}

/// A TLS client that trusts `ca`: connects, returns the certificate the server presented.
async fn tls_connect(port: u16, ca: &std::path::Path) -> (tokio_rustls::client::TlsStream<tokio::net::TcpStream>, Vec<u8>) {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(ca).expect("ca") {
        roots.add(c.expect("ca cert")).expect("add");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await.expect("handshake");
    let presented = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec()).expect("server cert");
    (tls, presented)
}

async fn api_versions_round_trip(tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>, corr: i32) {
    let req = frames::request(ApiKey::ApiVersions, 3, corr, Some("held"), &ApiVersionsRequest::default()).expect("encode");
    tls.write_all(&req).await.expect("write");
    let mut size = [0u8; 4];
    tls.read_exact(&mut size).await.expect("size");
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    tls.read_exact(&mut body).await.expect("body");
    assert_eq!(&body[..4], &corr.to_be_bytes(), "answered on the held connection");
}

fn pem_der(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).expect("pem").to_vec()
}

#[test]
fn certificates_reload_without_dropping_connections() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = Pki::generate(&dir.path().join("pki"));
    let bed = Bed::start_with(dir, &Sections { listen: listen_tls(&pki, ""), ..Sections::default() });
    let rt = crate::support::runtime();
    let original = pem_der(&std::fs::read_to_string(&pki.server.cert).expect("cert"));
    let (mut held, presented) = rt.block_on(tls_connect(bed.proxy.bootstrap, &pki.ca));
    assert_eq!(presented, original);
    rt.block_on(api_versions_round_trip(&mut held, 1));
    let rotated = pem_der(&pki.reissue_server());
    wait_log(&bed.proxy, "TLS certificates reloaded");
    let (_, now) = rt.block_on(tls_connect(bed.proxy.bootstrap, &pki.ca));
    assert_eq!(now, rotated, "new handshakes get the new certificate");
    rt.block_on(api_versions_round_trip(&mut held, 2));
    assert!(!bed.proxy.log().contains("trigger=\"SIGHUP\""), "no SIGHUP yet: {}", bed.proxy.log());
    // SIGHUP reloads on demand too (the log says which triggered it), and the connection held
    // since before both reloads still works.
    let hup = std::process::Command::new("kill").arg("-HUP").arg(bed.proxy.proc.child.id().to_string()).status().expect("kill");
    assert!(hup.success());
    wait_log(&bed.proxy, "trigger=\"SIGHUP\"");
    let (_, again) = rt.block_on(tls_connect(bed.proxy.bootstrap, &pki.ca));
    assert_eq!(again, rotated);
    rt.block_on(api_versions_round_trip(&mut held, 3));
}

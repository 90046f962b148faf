//! A fleet as deploy/haproxy/haproxy.cfg runs it: two proxy replicas (127.0.0.2 and 127.0.0.3,
//! the same ports on each) behind that HAProxy configuration (bind addresses, health-check port
//! and server addresses substituted, nothing else) in front of tansu. Real clients produce and
//! consume through it, their broker connections landing on either replica; a replica that gets
//! SIGTERM leaves the rotation through /readyz while its listeners still accept, and the other
//! takes every new connection.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::observability::http_get_at;
use crate::support::{free_port, kclient, proxy_bin, start_tansu, Proc, TANSU_NODE};

struct Ports {
    bootstrap: u16,
    broker: u16,
    admin: u16,
    tansu: u16,
}

fn start_replica(dir: &Path, host: &str, p: &Ports) -> Proc {
    let cfg = format!(
        "listen:\n  bind_host: {host}\n  advertised_host: 127.0.0.1\n  bootstrap_port: {b}\n  broker_ports: {{{TANSU_NODE}: {q}}}\n\
         upstream:\n  bootstrap_servers: ['127.0.0.1:{t}']\n\
         limits:\n  shutdown_delay_ms: 15000\n  drain_timeout_ms: 5000\n\
         admin:\n  listen: {host}:{a}\n\
         audit:\n  sink: file\n  path: {audit}\n",
        b = p.bootstrap,
        q = p.broker,
        t = p.tansu,
        a = p.admin,
        audit = dir.join(format!("audit-{host}.jsonl")).display()
    );
    let path = dir.join(format!("proxy-{host}.yaml"));
    std::fs::write(&path, cfg).expect("config");
    let log = std::fs::File::create(dir.join(format!("proxy-{host}.log"))).expect("log");
    let child = Command::new(proxy_bin()).arg("--config").arg(&path).stdout(Stdio::null()).stderr(log).spawn().expect("spawn proxy");
    let proc = Proc { child };
    wait_until(Duration::from_secs(30), &format!("replica {host} ready"), || http_get_at(host, p.admin, "/readyz").0 == 200);
    proc
}

/// The shipped example, pointed at this machine's replicas and ports.
fn haproxy_config(p: &Ports) -> String {
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/haproxy/haproxy.cfg")).expect("haproxy.cfg");
    let subs = [
        ("bind :9092\n".to_owned(), format!("bind 127.0.0.1:{}\n", p.bootstrap)),
        ("bind :9100-9105\n".to_owned(), format!("bind 127.0.0.1:{}\n", p.broker)),
        ("check port 9309 ".to_owned(), format!("check port {} ", p.admin)),
        ("kdp-1.example.internal".to_owned(), "127.0.0.2".to_owned()),
        ("kdp-2.example.internal".to_owned(), "127.0.0.3".to_owned()),
        ("    server kdp-3 kdp-3.example.internal\n".to_owned(), String::new()),
        // This machine's open-file limit (20,000) cannot carry the example's maxconn.
        ("maxconn 20000".to_owned(), "maxconn 2000".to_owned()),
    ];
    subs.iter().fold(shipped, |cfg, (from, to)| {
        assert!(cfg.contains(from.as_str()), "the example still has {from:?}");
        cfg.replace(from.as_str(), to)
    })
}

fn wait_until(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A replica's accepted connections per listener, from its /metrics.
fn accepted(host: &str, admin: u16) -> (u64, u64) {
    let (_, text) = http_get_at(host, admin, "/metrics");
    let get = |listener: &str| {
        let key = format!("kdp_connections_accepted_total{{listener=\"{listener}\"}} ");
        text.lines().find_map(|l| l.strip_prefix(&key)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    };
    (get("bootstrap"), get(&format!("broker {TANSU_NODE}")))
}

fn produce(bootstrap: &str, client: &str) -> serde_json::Value {
    kclient(&["produce", "--bootstrap", bootstrap, "--topic", "fleet", "--acks", "1", "--client-id", client, "--count", "20"])
}

#[test]
fn any_replica_serves_any_port_and_a_draining_replica_leaves_the_rotation() {
    let dir = tempfile::tempdir().expect("dir");
    let p = Ports { bootstrap: free_port(), broker: free_port(), admin: free_port(), tansu: free_port() };
    let _tansu = start_tansu(dir.path(), p.tansu, p.tansu);
    let mut first = start_replica(dir.path(), "127.0.0.2", &p);
    let _second = start_replica(dir.path(), "127.0.0.3", &p);
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(&cfg, haproxy_config(&p)).expect("haproxy.cfg");
    let log = std::fs::File::create(dir.path().join("haproxy.log")).expect("log");
    let haproxy = Command::new("haproxy").arg("-db").arg("-f").arg(&cfg).stdout(log.try_clone().expect("log")).stderr(log).spawn();
    let _haproxy = Proc { child: haproxy.expect("spawn haproxy (scripts/setup.sh installs it)") };
    let haproxy_log = || std::fs::read_to_string(dir.path().join("haproxy.log")).unwrap_or_default();
    let lb = format!("127.0.0.1:{}", p.bootstrap);
    wait_until(Duration::from_secs(20), "haproxy listening", || std::net::TcpStream::connect(&lb).is_ok());

    let spec = r#"[{"name": "fleet", "rf": 3, "configs": {"min.insync.replicas": "2"}}]"#;
    let created = kclient(&["create-topics", "--bootstrap", &lb, "--spec", spec]);
    assert_eq!(created["results"]["fleet"]["code"], 0, "{created}");
    for n in 0..3 {
        let r = produce(&lb, &format!("fleet-{n}"));
        assert_eq!(r["delivered"], 20, "through haproxy: {r}\n{}", haproxy_log());
    }
    let (a, b) = (accepted("127.0.0.2", p.admin), accepted("127.0.0.3", p.admin));
    assert!(a.1 + b.1 >= 3, "broker-port connections reached the replicas: {a:?} {b:?}");
    assert!(a.0 + a.1 > 0 && b.0 + b.1 > 0, "haproxy used both replicas: {a:?} {b:?}");

    // SIGTERM: /readyz turns 503 at once, the listeners keep accepting for shutdown_delay_ms.
    let _ = Command::new("kill").arg("-TERM").arg(first.child.id().to_string()).status();
    wait_until(Duration::from_secs(5), "haproxy marks the draining replica down", || haproxy_log().contains("kdp-1 is DOWN"));
    let before = accepted("127.0.0.2", p.admin);
    let other_before = accepted("127.0.0.3", p.admin);
    let r = produce(&lb, "fleet-after-sigterm");
    assert_eq!(r["delivered"], 20, "the other replica serves: {r}");
    let consumed = kclient(&["consume", "--bootstrap", &lb, "--topic", "fleet", "--expect", "80"]);
    assert_eq!(consumed["count"], 80, "every record, through the remaining replica: {consumed}");
    assert_eq!(accepted("127.0.0.2", p.admin), before, "no new connection reached the draining replica");
    assert!(accepted("127.0.0.3", p.admin).1 > other_before.1, "the remaining replica took the broker connections");
    assert!(
        std::net::TcpStream::connect(("127.0.0.2", p.bootstrap)).is_ok(),
        "the draining replica still accepts (limits.shutdown_delay_ms): haproxy, not a refusal, moved the clients"
    );
    let _ = first.child.kill();
}

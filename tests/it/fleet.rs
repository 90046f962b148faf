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

fn start_replica(dir: &Path, host: &str, p: &Ports, shutdown_delay_ms: u64) -> Proc {
    let cfg = format!(
        "listen:\n  bind_host: {host}\n  advertised_host: 127.0.0.1\n  bootstrap_port: {b}\n  broker_ports: {{{TANSU_NODE}: {q}}}\n\
         upstream:\n  bootstrap_servers: ['127.0.0.1:{t}']\n\
         limits:\n  shutdown_delay_ms: {shutdown_delay_ms}\n  drain_timeout_ms: 5000\n\
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
    let mut first = start_replica(dir.path(), "127.0.0.2", &p, 15_000);
    let _second = start_replica(dir.path(), "127.0.0.3", &p, 15_000);
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

/// Two replicas behind the shipped haproxy.cfg in front of tansu.
struct Fleet {
    dir: tempfile::TempDir,
    ports: Ports,
    replicas: Vec<(&'static str, Proc)>,
    _haproxy: Proc,
    _tansu: Proc,
    lb: String,
}

/// What a replica's restart showed.
#[derive(Debug)]
struct Restart {
    /// /readyz answered 503 while the bootstrap listener still accepted.
    unready_while_accepting: bool,
    /// SIGTERM to exit.
    exited_after: Duration,
}

const ROLLING_DELAY_MS: u64 = 3_000;

impl Fleet {
    fn start() -> Fleet {
        let dir = tempfile::tempdir().expect("dir");
        let ports = Ports { bootstrap: free_port(), broker: free_port(), admin: free_port(), tansu: free_port() };
        let tansu = start_tansu(dir.path(), ports.tansu, ports.tansu);
        let replicas = ["127.0.0.2", "127.0.0.3"].map(|h| (h, start_replica(dir.path(), h, &ports, ROLLING_DELAY_MS))).into();
        let cfg = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg, haproxy_config(&ports)).expect("haproxy.cfg");
        let log = std::fs::File::create(dir.path().join("haproxy.log")).expect("log");
        let haproxy = Command::new("haproxy").arg("-db").arg("-f").arg(&cfg).stdout(log.try_clone().expect("log")).stderr(log).spawn();
        let haproxy = Proc { child: haproxy.expect("spawn haproxy (scripts/setup.sh installs it)") };
        let lb = format!("127.0.0.1:{}", ports.bootstrap);
        wait_until(Duration::from_secs(20), "haproxy listening", || std::net::TcpStream::connect(&lb).is_ok());
        // Both replicas in rotation (rise 2, inter 2 s) before the clients start.
        std::thread::sleep(Duration::from_secs(5));
        Fleet { dir, ports, replicas, _haproxy: haproxy, _tansu: tansu, lb }
    }

    /// SIGTERM one replica, watch it leave, start it again and wait until it is ready.
    fn restart(&mut self, i: usize) -> Restart {
        let (host, proc) = &mut self.replicas[i];
        let host: &'static str = host;
        let started = Instant::now();
        let _ = Command::new("kill").arg("-TERM").arg(proc.child.id().to_string()).status();
        let mut unready_while_accepting = false;
        while !matches!(proc.child.try_wait(), Ok(Some(_))) {
            assert!(started.elapsed() < Duration::from_secs(40), "replica {host} did not exit after SIGTERM");
            if http_get_at(host, self.ports.admin, "/readyz").0 == 503 && std::net::TcpStream::connect((host, self.ports.bootstrap)).is_ok()
            {
                unready_while_accepting = true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let exited_after = started.elapsed();
        *proc = start_replica(self.dir.path(), host, &self.ports, ROLLING_DELAY_MS);
        // Back in haproxy's rotation (rise 2 × inter 2 s) before the next one goes.
        std::thread::sleep(Duration::from_secs(5));
        Restart { unready_while_accepting, exited_after }
    }

    /// Records the replicas gave up (`undelivered` audit events), over all their lives.
    fn undelivered(&self) -> i64 {
        self.replicas
            .iter()
            .flat_map(|(h, _)| {
                std::fs::read_to_string(self.dir.path().join(format!("audit-{h}.jsonl")))
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
            .filter(|l| l["event"] == "undelivered")
            .map(|l| l["detail"]["records"].as_i64().unwrap_or(0))
            .sum()
    }
}

fn numbered(args: &[&str]) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/numbered.py");
    let out = Command::new("python3").arg(script).args(args).output().expect("python3");
    assert!(out.status.success(), "numbered.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(out.stdout.split(|b| *b == b'\n').rev().find(|l| !l.is_empty()).unwrap_or_default()).expect("json")
}

/// 50,000 numbered records through haproxy while each replica in turn is restarted; the
/// records the client was told were written, every value read back, and the two restarts.
fn rolling_restart(acks: &str) -> (serde_json::Value, Vec<i64>, Vec<Restart>, Fleet) {
    let mut fleet = Fleet::start();
    let topic = format!("rolling-acks{acks}");
    let spec = format!(r#"[{{"name": "{topic}", "rf": 3, "configs": {{"min.insync.replicas": "2"}}}}]"#);
    let created = kclient(&["create-topics", "--bootstrap", &fleet.lb, "--spec", &spec]);
    assert_eq!(created["results"][&topic]["code"], 0, "{created}");
    let (lb, t, a) = (fleet.lb.clone(), topic.clone(), acks.to_owned());
    let producer = std::thread::spawn(move || {
        numbered(&[
            "produce",
            "--bootstrap",
            &lb,
            "--topic",
            &t,
            "--count",
            "50000",
            "--rate",
            "2500",
            "--acks",
            &a,
            "--client-id",
            "rolling",
        ])
    });
    std::thread::sleep(Duration::from_secs(2));
    let restarts = vec![fleet.restart(0), fleet.restart(1)];
    let produced = producer.join().expect("producer");
    assert_eq!(produced["left"], 0, "the producer delivered everything it holds: {produced}");
    let read = numbered(&["read", "--bootstrap", &fleet.lb, "--topic", &topic, "--expect", "50000"]);
    let read: Vec<i64> = read["values"].as_array().expect("values").iter().filter_map(|v| v.as_i64()).collect();
    (produced, read, restarts, fleet)
}

fn acked(produced: &serde_json::Value) -> Vec<i64> {
    produced["acked"].as_array().expect("acked").iter().filter_map(|v| v.as_i64()).collect()
}

#[test]
fn a_rolling_restart_under_acks1_load_loses_no_acknowledged_record() {
    let (produced, read, restarts, _fleet) = rolling_restart("1");
    let acked = acked(&produced);
    let have: std::collections::HashSet<i64> = read.iter().copied().collect();
    let missing: Vec<i64> = acked.iter().copied().filter(|v| !have.contains(v)).collect();
    assert!(acked.len() == 50_000, "every record acknowledged: {} ({restarts:?})", acked.len());
    assert!(missing.is_empty(), "acknowledged but not read back: {} e.g. {:?}", missing.len(), &missing[..missing.len().min(10)]);
    for r in &restarts {
        assert!(r.unready_while_accepting, "/readyz went 503 before the listeners closed: {r:?}");
        // The shutdown delay (3 s), then only what the drain needs: not the whole drain timeout.
        assert!(r.exited_after < Duration::from_secs(7), "the replica exited once drained: {r:?}");
    }
    eprintln!(
        "acks=1 rolling restart: {} acknowledged, {} read ({} duplicates), errors {}, latency {}, restarts {restarts:?}",
        acked.len(),
        read.len(),
        read.len() - have.len(),
        produced["errors"],
        produced["latency"]
    );
}

#[test]
fn a_rolling_restart_under_acks0_load_loses_nothing_unaccounted() {
    let (produced, read, restarts, fleet) = rolling_restart("0");
    let have: std::collections::HashSet<i64> = read.iter().copied().collect();
    let lost = (0..50_000).filter(|v| !have.contains(v)).count() as i64;
    let undelivered = fleet.undelivered();
    assert!(lost <= undelivered, "lost {lost} records, {undelivered} reported undelivered ({restarts:?})");
    assert_eq!(read.len(), have.len(), "no duplicates");
    for r in &restarts {
        assert!(r.unready_while_accepting, "/readyz went 503 before the listeners closed: {r:?}");
        // The shutdown delay (3 s), then only what the drain needs: not the whole drain timeout.
        assert!(r.exited_after < Duration::from_secs(7), "the replica exited once drained: {r:?}");
    }
    eprintln!("acks=0 rolling restart: lost {lost}, undelivered {undelivered}, errors {}, restarts {restarts:?}", produced["errors"]);
}

//! Test support: free ports, a background runtime, a tansu broker, the proxy binary, a recording
//! relay between proxy and broker, and the Python client driver.

pub mod fake;
pub mod relay;
pub mod secure;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A port that is free now, chosen below the kernel's ephemeral range (32768 and up here) so that
/// no client connection of a parallel test can take it before the process that needs it binds.
/// Each call takes its own block of 16 ports: no other call hands out `port + 1 ..= port + 15`,
/// which a caller may use as a range (node listeners at a base port).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(7919);
    for _ in 0..1_500 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed).wrapping_add(seed);
        let port = 20_000 + 16 * (n % 750) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000-31999");
}

/// A multi-thread runtime shared by relays and fake brokers, so tests can stay synchronous and
/// run client processes without blocking them.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime"))
}

pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on port {port} within 30s");
}

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn tansu_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TANSU_BIN") {
        return p.into();
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    for cand in [home.join(".cargo/bin/tansu"), PathBuf::from("/usr/local/bin/tansu")] {
        if cand.exists() {
            return cand;
        }
    }
    panic!("tansu not found: install it with `cargo install tansu --locked --features dynostore,libsql` (.ci/run does) or set TANSU_BIN");
}

/// A tansu broker with in-memory storage, listening on `port` and advertising `advertised`.
pub fn start_tansu(dir: &Path, port: u16, advertised: u16) -> Proc {
    let log = std::fs::File::create(dir.join("tansu.log")).expect("log");
    let child = Command::new(tansu_bin())
        .current_dir(dir)
        .args([
            "broker",
            "--listener-url",
            &format!("tcp://127.0.0.1:{port}"),
            "--advertised-listener-url",
            &format!("tcp://127.0.0.1:{advertised}"),
            "--storage-engine",
            "memory://tansu/",
        ])
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spawn tansu");
    let p = Proc { child };
    wait_for_port(port, "tansu");
    p
}

pub fn proxy_bin() -> &'static str {
    env!("CARGO_BIN_EXE_kafka-durability-proxy")
}

/// Extra configuration: lines inside `listen:` and `upstream:`, whole sections after them, and
/// an `audit:` section instead of the default one (a file sink, `audit.jsonl`, 1 s windows).
#[derive(Clone, Debug, Default)]
pub struct Sections {
    pub listen: String,
    pub upstream: String,
    pub extra: String,
    pub audit: String,
}

/// The proxy binary on its own config file.
pub struct Proxy {
    pub proc: Proc,
    pub bootstrap: u16,
    pub dir: PathBuf,
    /// The admin endpoint's port (/metrics, /healthz, /readyz), when the config names one.
    pub admin: Option<u16>,
}

impl Proxy {
    /// With lines added to the `listen:` and `upstream:` sections (indented by two spaces).
    pub fn start_with(dir: &Path, upstream: u16, broker_ports: &[(i32, u16)], s: &Sections) -> Proxy {
        let bootstrap = free_port();
        let ports: String = broker_ports.iter().map(|(n, p)| format!("{n}: {p}, ")).collect();
        let cfg = format!(
            "listen:\n  bind_host: 127.0.0.1\n  advertised_host: 127.0.0.1\n  bootstrap_port: {bootstrap}\n  broker_ports: {{{ports}}}\n{listen}\
             upstream:\n  bootstrap_servers: [\"127.0.0.1:{upstream}\"]\n  connect_timeout_ms: 5000\n{up}\
             {audit}admin:\n  listen: 127.0.0.1:{admin}\n{extra}",
            admin = free_port(),
            listen = s.listen,
            up = s.upstream,
            extra = s.extra,
            audit = if s.audit.is_empty() {
                format!("audit:\n  sink: file\n  path: {}\n  window_secs: 1\n", dir.join("audit.jsonl").display())
            } else {
                s.audit.clone()
            }
        );
        Self::start_with_config(dir, bootstrap, &cfg)
    }

    pub fn start_with_config(dir: &Path, bootstrap: u16, cfg: &str) -> Proxy {
        Self::start_with_env(dir, bootstrap, cfg, &[])
    }

    /// As `start_with_config`, with extra environment variables for the proxy process.
    pub fn start_with_env(dir: &Path, bootstrap: u16, cfg: &str, env: &[(&str, &str)]) -> Proxy {
        let cfg_path = dir.join("proxy.yaml");
        std::fs::write(&cfg_path, cfg).expect("write config");
        let log = std::fs::File::create(dir.join("proxy.log")).expect("log");
        // stdout carries the audit stream when a stdout sink is configured.
        let stdout = std::fs::File::create(dir.join("proxy.stdout")).map(Stdio::from).unwrap_or_else(|_| Stdio::null());
        let child = Command::new(proxy_bin())
            .arg("--config")
            .arg(&cfg_path)
            .env("RUST_LOG", "info,kafka_durability_proxy=debug")
            .envs(env.iter().copied())
            .stdout(stdout)
            .stderr(log)
            .spawn()
            .expect("spawn proxy");
        let proc = Proc { child };
        wait_for_port(bootstrap, "proxy");
        let admin = cfg
            .split("admin:\n  listen: 127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|p| p.parse().ok());
        Proxy { proc, bootstrap, dir: dir.to_owned(), admin }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.bootstrap)
    }

    /// SIGTERM, so the audit writer flushes its pending summaries, then waits for exit.
    pub fn stop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.proc.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.proc.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("proxy did not exit on SIGTERM");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("proxy.log")).unwrap_or_default()
    }

    /// The audit log's lines, each checked against docs/audit-event.schema.json.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line is not JSON ({e}): {l}"));
                check_audit_line(&v);
                v
            })
            .collect()
    }
}

/// Fails unless `line` matches the published audit event schema.
pub fn check_audit_line(line: &serde_json::Value) {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    let v = SCHEMA.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/audit-event.schema.json");
        let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).expect("schema")).expect("schema is JSON");
        jsonschema::options().should_validate_formats(true).build(&schema).expect("schema compiles")
    });
    let problems: Vec<String> = v.iter_errors(line).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    assert!(problems.is_empty(), "audit line breaks docs/audit-event.schema.json: {problems:?}\n{line}");
}

/// Runs the Python client driver and returns its JSON answer.
/// `kclient produce` arguments: `count` records through `addr`, one request each, with the client
/// id as record prefix; callers add options (`--conf ...`) and run it with or without security.
pub fn produce_args<'a>(addr: &'a str, lib: &'a str, acks: &'a str, client_id: &'a str, topic: &'a str, count: &'a str) -> Vec<&'a str> {
    vec![
        "produce",
        "--lib",
        lib,
        "--bootstrap",
        addr,
        "--topic",
        topic,
        "--acks",
        acks,
        "--client-id",
        client_id,
        "--prefix",
        client_id,
        "--count",
        count,
        "--one-per-request",
    ]
}

pub fn kclient(args: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/kclient.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python).arg(&script).args(args).output().expect("run python client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client {args:?} failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("client {args:?} printed no JSON ({e}): {stdout}"))
}

/// Sends raw bytes on a fresh connection and reads until the peer closes (or times out).
pub fn raw_exchange(port: u16, bytes: &[u8]) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    s.write_all(bytes).expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (got, false),
        }
    }
}

/// A whole test bed: tansu, the recording relay in front of it, and the proxy in front of that.
pub struct Bed {
    _dir: tempfile::TempDir,
    pub relay: relay::Relay,
    pub proxy: Proxy,
    pub broker_port: u16,
    _tansu: Proc,
}

/// tansu's node id.
pub const TANSU_NODE: i32 = 111;

impl Bed {
    pub fn start(extra_yaml: &str) -> Bed {
        Self::start_with(tempfile::tempdir().expect("tempdir"), &Sections { extra: extra_yaml.to_owned(), ..Sections::default() })
    }

    /// In `dir` (where a test may have put certificates first), with extra configuration.
    pub fn start_with(dir: tempfile::TempDir, sections: &Sections) -> Bed {
        let tansu_port = free_port();
        // The relay binds first (it must exist before tansu advertises it) and holds its port.
        let relay = relay::Relay::start(tansu_port);
        let tansu = start_tansu(dir.path(), tansu_port, relay.port);
        let broker_port = free_port();
        let proxy = Proxy::start_with(dir.path(), relay.port, &[(TANSU_NODE, broker_port)], sections);
        // Start-up discovery binds the broker's listener without any client asking.
        wait_for_port(broker_port, "proxy broker listener");
        Bed { _dir: dir, relay, proxy, broker_port, _tansu: tansu }
    }

    /// Creates a topic in the durable shape the default topic rules require.
    pub fn create_topic(&self, topic: &str) {
        let spec = format!("[{{\"name\": \"{topic}\", \"rf\": 3, \"configs\": {{\"min.insync.replicas\": \"2\"}}}}]");
        let r = kclient(&["create-topics", "--bootstrap", &self.proxy.addr(), "--spec", &spec]);
        assert_eq!(r["results"][topic]["code"], 0, "{r}");
    }
}

//! The benchmark's null-sink broker (examples/nullsink) driven by the benchmark's own client
//! (bench/worker.py, librdkafka) and latency probe: produce (acks=all and acks=0) and consume
//! directly, over TLS, and through the proxy, so neither the sink nor the benchmark's clients can
//! rot unnoticed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::secure::Pki;
use crate::support::{free_port, kclient, wait_for_port, Proc, Proxy, Sections};

const NODE: i32 = 5;

/// An example binary of this crate. `cargo test` builds examples only as test harnesses, so the
/// first call builds the runnable ones (`cargo build --examples`, same target directory and
/// profile, quick once the crate is compiled).
fn example_bin(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/it-HASH -> target/<profile>/examples/NAME
    let profile_dir = exe.parent().and_then(Path::parent).expect("target profile dir");
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--examples"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("CARGO_TARGET_DIR", profile_dir.parent().expect("target dir"))
            .status()
            .expect("cargo build");
        assert!(status.success(), "cargo build --examples");
    });
    profile_dir.join("examples").join(name)
}

struct NullSink {
    proc: Proc,
    port: u16,
    stdout: PathBuf,
}

impl NullSink {
    fn start(dir: &Path, tls: Option<&Pki>) -> NullSink {
        let port = free_port();
        let stdout = dir.join(format!("nullsink-{port}.out"));
        let mut cmd = Command::new(example_bin("nullsink"));
        cmd.args(["--listen", &format!("127.0.0.1:{port}"), "--node-id", &NODE.to_string(), "--fetch-records", "500"]);
        if let Some(pki) = tls {
            cmd.arg("--tls-cert").arg(&pki.server.cert).arg("--tls-key").arg(&pki.server.key);
        }
        let out = std::fs::File::create(&stdout).expect("stdout file");
        let err = std::fs::File::create(dir.join(format!("nullsink-{port}.err"))).expect("stderr file");
        let child = cmd.stdout(out).stderr(err).spawn().expect("spawn nullsink");
        let proc = Proc { child };
        wait_for_port(port, "nullsink");
        NullSink { proc, port, stdout }
    }

    /// SIGTERM, then the counters it prints on the way out.
    fn stop(mut self) -> serde_json::Value {
        let _ = Command::new("kill").arg("-TERM").arg(self.proc.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && matches!(self.proc.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        serde_json::from_str(text.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("no counters ({e}): {text}"))
    }
}

/// bench/worker.py; its JSON answer.
fn worker(args: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/worker.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python).arg(script).args(args).stderr(Stdio::piped()).output().expect("run worker");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "worker {args:?}: {}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("worker {args:?} printed no JSON ({e})"))
}

/// Produces 3,000 records at acks=all and 1,000 at acks=0, consumes 2,000; returns records sent.
fn exercise(bootstrap: &str, ca: Option<&Path>) -> u64 {
    let mut sec: Vec<String> = Vec::new();
    if let Some(ca) = ca {
        sec = vec!["--ca".into(), ca.display().to_string()];
    }
    let sec: Vec<&str> = sec.iter().map(String::as_str).collect();
    let run = |mode: &str, extra: &[&str]| {
        let mut args = vec![mode, "--bootstrap", bootstrap, "--topic", "bench"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&sec);
        worker(&args)
    };
    assert_eq!(run("produce", &["--count", "3000", "--acks", "all"])["records"], 3000);
    assert_eq!(run("produce", &["--count", "1000", "--acks", "0", "--size", "100"])["records"], 1000);
    let consumed = run("consume", &["--count", "2000"]);
    assert_eq!(consumed["records"], 1999, "the first record is the warm-up: {consumed}");
    assert_eq!(consumed["bytes"], 1999 * 1024, "{consumed}");
    // Each produce run sends one warm-up record first.
    3000 + 1000 + 2
}

fn create_topic(bootstrap: &str) {
    let spec = r#"[{"name": "bench", "rf": 3, "configs": {"min.insync.replicas": "2"}}]"#;
    let r = kclient(&["create-topics", "--bootstrap", bootstrap, "--spec", spec]);
    assert_eq!(r["results"]["bench"]["code"], 0, "{r}");
}

#[test]
fn nullsink_serves_librdkafka_and_the_probe_directly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = NullSink::start(dir.path(), None);
    let addr = format!("127.0.0.1:{}", sink.port);
    create_topic(&addr);
    let sent = exercise(&addr, None);
    for api in ["api-versions", "list-groups"] {
        let out = Command::new(example_bin("probe")).args([&addr, "200", "20", api]).output().expect("probe");
        let line = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && line.contains("\"p99_us\""), "probe {api}: {line} {}", String::from_utf8_lossy(&out.stderr));
    }
    let stats = sink.stop();
    assert_eq!(stats["produce_records"], sent, "{stats}");
    assert_eq!(stats["closed_bad_frame"], 0, "{stats}");
    let seen = stats["requests"].as_object().expect("requests");
    // librdkafka negotiates the newest versions the sink offers: what the benchmark measures.
    assert!(seen.keys().any(|k| k.starts_with("Produce v1")), "Produce v10+ expected: {stats}");
    assert!(seen.contains_key("Fetch v12"), "{stats}");
}

#[test]
fn nullsink_over_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::generate(&dir.path().join("pki"));
    let sink = NullSink::start(dir.path(), Some(&pki));
    let sent = exercise(&format!("127.0.0.1:{}", sink.port), Some(&pki.ca));
    assert_eq!(sink.stop()["produce_records"], sent);
}

#[test]
fn nullsink_behind_the_proxy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = NullSink::start(dir.path(), None);
    let broker_port = free_port();
    let proxy = Proxy::start_with(dir.path(), sink.port, &[(NODE, broker_port)], &Sections::default());
    wait_for_port(broker_port, "proxy broker listener");
    create_topic(&proxy.addr());
    let sent = exercise(&proxy.addr(), None);
    let stats = sink.stop();
    assert_eq!(stats["produce_records"], sent, "{stats}");
    assert!(!proxy.log().contains("ERROR"), "{}", proxy.log());
}

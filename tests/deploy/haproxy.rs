//! deploy/haproxy/haproxy.cfg: HAProxy's own check accepts it (`haproxy -c`, and with warnings
//! made fatal once its example host names are replaced by addresses), refuses a broken copy, and
//! its ports, health check and timeouts agree with deploy/kubernetes/proxy.yaml.

use std::process::{Command, Output};

use crate::repo;

fn check(cfg: &str, zero_warnings: bool) -> Output {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, cfg).expect("write");
    let mut cmd = Command::new("haproxy");
    if zero_warnings {
        cmd.arg("-dW");
    }
    cmd.arg("-c").arg("-f").arg(&path).output().expect("run haproxy (scripts/setup.sh installs it)")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn config() -> String {
    std::fs::read_to_string(repo("deploy/haproxy/haproxy.cfg")).expect("deploy/haproxy/haproxy.cfg")
}

/// The example with its (unresolvable) example host names replaced by loopback addresses.
fn resolvable(cfg: &str) -> String {
    (1..=3).fold(cfg.to_owned(), |c, n| c.replace(&format!("kdp-{n}.example.internal"), &format!("127.0.0.{}", n + 1)))
}

#[test]
fn haproxy_accepts_the_example() {
    let cfg = config();
    let out = check(&cfg, false);
    assert!(out.status.success(), "haproxy -c:\n{}", text(&out));
    let out = check(&resolvable(&cfg), true);
    assert!(out.status.success(), "haproxy -dW -c (warnings are errors):\n{}", text(&out));
}

#[test]
fn haproxy_refuses_a_broken_copy() {
    let cfg = resolvable(&config());
    for (from, to) in
        [("timeout client 610s", "timeout clinet 610s"), ("balance leastconn", "balance leastcon"), ("bind :9100-9105", "bind :9100-")]
    {
        assert!(cfg.contains(from), "{from}");
        let out = check(&cfg.replacen(from, to, 1), true);
        assert!(!out.status.success(), "{from} -> {to} was accepted:\n{}", text(&out));
    }
}

/// `timeout NAME 610s` in seconds.
fn timeout_secs(cfg: &str, name: &str) -> u64 {
    let line = cfg.lines().map(str::trim).find(|l| l.starts_with(&format!("timeout {name} "))).unwrap_or_else(|| panic!("timeout {name}"));
    line.rsplit(' ').next().and_then(|v| v.strip_suffix('s')).and_then(|v| v.parse().ok()).expect("seconds")
}

#[test]
fn the_example_balances_every_port_the_proxies_serve() {
    let cfg = config();
    let proxy: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo("deploy/kubernetes/proxy.yaml")).expect("proxy.yaml")).expect("yaml");
    let bootstrap = proxy["listen"]["bootstrap_port"].as_u64().expect("bootstrap_port");
    let base = proxy["listen"]["broker_port_base"].as_u64().expect("broker_port_base");
    assert!(cfg.contains(&format!("bind :{bootstrap}\n")), "the bootstrap port {bootstrap} is bound");
    assert!(cfg.contains(&format!("bind :{base}-{}\n", base + 5)), "broker ports {base}-{} (node ids 0-5) are bound", base + 5);
    let admin_port = proxy["admin"]["listen"].as_str().and_then(|a| a.rsplit(':').next()).expect("admin.listen");
    assert!(cfg.contains(&format!("check port {admin_port} ")), "health checks go to the admin port");
    assert!(cfg.contains("http-check send meth GET uri /readyz") && cfg.contains("http-check expect status 200"));
    let active: Vec<&str> = cfg.lines().map(str::trim).filter(|l| !l.starts_with('#')).collect();
    assert!(!active.iter().any(|l| l.contains("shutdown-sessions")), "a draining replica keeps its connections");
    let idle_secs = proxy["limits"]["idle_timeout_ms"].as_u64().expect("idle_timeout_ms") / 1000;
    for side in ["client", "server"] {
        assert!(timeout_secs(&cfg, side) > idle_secs, "timeout {side} outlasts limits.idle_timeout_ms ({idle_secs} s)");
    }
    let servers = active.iter().filter(|l| l.starts_with("server ")).count();
    assert_eq!(servers, 3, "one server per replica");
    assert!(
        active.iter().filter(|l| l.starts_with("server ")).all(|l| l.split_whitespace().nth(2).is_some_and(|a| !a.contains(':'))),
        "no port on servers: a connection keeps its port"
    );
}

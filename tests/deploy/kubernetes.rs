//! deploy/kubernetes against the Kubernetes API and the proxy: deploy/validate.mjs (kustomize
//! render, API schemas, unknown fields, selectors) passes on the base and fails on broken copies;
//! the ConfigMap's proxy.yaml passes `--check-config` with TLS and SASL material at the mounted
//! paths; the pod spec agrees with proxy.yaml (ports, probes, grace period, mounts); and a
//! ConfigMap-style symlink swap is seen by the config reload.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_yaml::Value;

use crate::{proxy_bin, repo};

/// `node deploy/validate.mjs DIR`. deploy/node_modules comes from scripts/setup.sh (npm ci).
fn validate(dir: &Path) -> Output {
    assert!(
        repo("deploy/node_modules/kubernetes-models").is_dir(),
        "deploy/node_modules is missing: run scripts/setup.sh (npm ci in deploy/)"
    );
    Command::new("node").arg(repo("deploy/validate.mjs")).arg(dir).output().expect("run node (scripts/setup.sh checks it is installed)")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The rendered base (`kubectl kustomize`), one YAML value per object.
fn rendered() -> Vec<Value> {
    let out = Command::new("kubectl").arg("kustomize").arg(repo("deploy/kubernetes")).output().expect("run kubectl");
    assert!(out.status.success(), "kubectl kustomize: {}", text(&out));
    let yaml = String::from_utf8(out.stdout).expect("utf-8");
    serde_yaml::Deserializer::from_str(&yaml).map(|d| Value::deserialize(d).expect("yaml")).collect()
}

use serde::Deserialize as _;

fn object<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name} is not in the rendered base"))
}

fn proxy_yaml() -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(repo("deploy/kubernetes/proxy.yaml")).expect("proxy.yaml")).expect("yaml")
}

#[test]
fn the_base_renders_and_validates_against_the_kubernetes_api_schemas() {
    let out = validate(&repo("deploy/kubernetes"));
    assert!(out.status.success(), "deploy/validate.mjs:\n{}", text(&out));
    assert!(text(&out).contains("6 objects valid"), "{}", text(&out));
}

#[test]
fn typos_in_a_copy_of_the_base_fail_validation() {
    let cases = [
        ("deployment.yaml", "readinessProbe:", "readinesProbe:", "readinesProbe: unknown field"),
        ("deployment.yaml", "replicas: 3", "replicas: three", "replicas must be integer"),
        ("deployment.yaml", "terminationGracePeriodSeconds: 60", "terminationGracePeriodSecond: 60", "unknown field"),
        ("service.yaml", "targetPort: broker-5", "targetPort: broker-6", "targetPort broker-6 is no container port"),
        ("servicemonitor.yaml", "- port: admin", "- port: admn", "no selected Service has a port named admn"),
        ("servicemonitor.yaml", "      interval: 30s", "      intervall: 30s", "endpoints.0.intervall: unknown field"),
        ("pdb.yaml", "kind: PodDisruptionBudget", "kind: PodDisruptionBudgets", "unknown kind"),
        ("kustomization.yaml", "- pdb.yaml", "- pdb.yml", "kubectl kustomize"),
    ];
    for (file, from, to, expect) in cases {
        let dir = tempfile::tempdir().expect("dir");
        copy_dir(&repo("deploy/kubernetes"), dir.path());
        let path = dir.path().join(file);
        let original = std::fs::read_to_string(&path).expect("read");
        assert!(original.contains(from), "{file} contains {from:?}");
        std::fs::write(&path, original.replacen(from, to, 1)).expect("write");
        let out = validate(dir.path());
        assert!(!out.status.success(), "{file}: {from} -> {to} passed validation:\n{}", text(&out));
        assert!(text(&out).contains(expect), "{file}: {from} -> {to}: expected {expect:?} in:\n{}", text(&out));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

#[test]
fn the_configmap_is_proxy_yaml_and_passes_check_config_with_the_mounted_material() {
    let objects = rendered();
    let cm = object(&objects, "ConfigMap", "kafka-durability-proxy-config");
    let file = std::fs::read_to_string(repo("deploy/kubernetes/proxy.yaml")).expect("proxy.yaml");
    assert_eq!(cm["data"]["proxy.yaml"].as_str(), Some(file.as_str()), "the ConfigMap carries deploy/kubernetes/proxy.yaml");
    // As in the pod: the Secrets' files at /etc/kdp/..., here under a temporary directory.
    let dir = tempfile::tempdir().expect("dir");
    let root = dir.path().join("etc/kdp");
    let host = "kafka-durability-proxy.kafka-durability-proxy.svc.cluster.local";
    let cert = rcgen::generate_simple_self_signed(vec![host.to_owned()]).expect("certificate");
    for (path, content) in [
        ("tls/tls.crt", cert.cert.pem()),
        ("tls/tls.key", cert.signing_key.serialize_pem()),
        ("upstream-ca/ca.crt", cert.cert.pem()),
        ("sasl/password", "throw-away\n".to_owned()),
    ] {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
    }
    let mounted = dir.path().join("proxy.yaml");
    std::fs::write(&mounted, file.replace("/etc/kdp/", &format!("{}/", root.display()))).expect("write");
    let out = Command::new(proxy_bin()).arg("--check-config").arg(&mounted).output().expect("run proxy");
    assert!(out.status.success(), "--check-config:\n{}", text(&out));
    // Without the Secrets, the check names each missing file: it does read them.
    let out = Command::new(proxy_bin()).arg("--check-config").arg(repo("deploy/kubernetes/proxy.yaml")).output().expect("run proxy");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    for missing in ["/etc/kdp/tls/tls.crt", "/etc/kdp/tls/tls.key", "/etc/kdp/upstream-ca/ca.crt", "/etc/kdp/sasl/password"] {
        assert!(text(&out).contains(missing), "{missing} in:\n{}", text(&out));
    }
}

#[test]
fn the_pod_spec_agrees_with_proxy_yaml() {
    let objects = rendered();
    let cfg = proxy_yaml();
    let pod = &object(&objects, "Deployment", "kafka-durability-proxy")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let port = |name: &str| {
        container["ports"].as_sequence().expect("ports").iter().find(|p| p["name"] == name).and_then(|p| p["containerPort"].as_u64())
    };
    // Drain: SIGKILL must not come before the delay and the drain are over.
    let limits = &cfg["limits"];
    let needed_ms =
        limits["shutdown_delay_ms"].as_u64().expect("shutdown_delay_ms") + limits["drain_timeout_ms"].as_u64().expect("drain_timeout_ms");
    let grace_ms = pod["terminationGracePeriodSeconds"].as_u64().expect("grace") * 1000;
    // + 5 s: after their answers, clients are still read (held acks=0 requests) for up to 5 s.
    assert!(
        grace_ms > needed_ms + 5_000 + 5_000,
        "terminationGracePeriodSeconds {grace_ms} ms must exceed {needed_ms} ms + 5 s with a margin"
    );
    // Probes reach the admin endpoint, which must listen on every interface.
    assert_eq!(cfg["admin"]["listen"].as_str(), Some("0.0.0.0:9309"));
    assert_eq!(port("admin"), Some(9309));
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    // Client ports: bootstrap and base + node id, in the pod and in the Service.
    let service = object(&objects, "Service", "kafka-durability-proxy");
    let service_port = |name: &str| {
        service["spec"]["ports"].as_sequence().expect("ports").iter().find(|p| p["name"] == name).and_then(|p| p["port"].as_u64())
    };
    let bootstrap = cfg["listen"]["bootstrap_port"].as_u64();
    assert_eq!((port("kafka"), service_port("kafka")), (bootstrap, bootstrap));
    let base = cfg["listen"]["broker_port_base"].as_u64().expect("broker_port_base");
    for node in 0..6 {
        let name = format!("broker-{node}");
        assert_eq!((port(&name), service_port(&name)), (Some(base + node), Some(base + node)), "{name}");
    }
    // Every file proxy.yaml names is under a mount.
    let mounts: Vec<String> = container["volumeMounts"]
        .as_sequence()
        .expect("mounts")
        .iter()
        .map(|m| m["mountPath"].as_str().expect("mountPath").to_owned())
        .collect();
    let text = std::fs::read_to_string(repo("deploy/kubernetes/proxy.yaml")).expect("proxy.yaml");
    let files: Vec<&str> = text.split_whitespace().filter(|w| w.starts_with("/etc/kdp/")).collect();
    assert_eq!(files.len(), 4, "{files:?}");
    for f in files {
        assert!(mounts.iter().any(|m| f.starts_with(&format!("{m}/"))), "{f} is under no volumeMount of {mounts:?}");
    }
    assert!(mounts.iter().any(|m| m == "/etc/kafka-durability-proxy"), "the ConfigMap is mounted as a directory (never subPath)");
    assert!(container["volumeMounts"].as_sequence().expect("mounts").iter().all(|m| m["subPath"].is_null()), "subPath mounts never update");
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
}

/// The files a kubelet's ConfigMap volume holds: `proxy.yaml -> ..data/proxy.yaml`,
/// `..data -> ..<timestamp>`; an update writes a new timestamped directory and renames a new
/// `..data` symlink over the old one (atomic), then removes the old directory.
struct ConfigMapVolume {
    dir: PathBuf,
    generation: u32,
}

impl ConfigMapVolume {
    fn new(dir: &Path, content: &str) -> ConfigMapVolume {
        let mut v = ConfigMapVolume { dir: dir.to_owned(), generation: 0 };
        v.publish(content);
        std::os::unix::fs::symlink("..data/proxy.yaml", dir.join("proxy.yaml")).expect("symlink");
        v
    }

    fn publish(&mut self, content: &str) {
        self.generation += 1;
        let old = std::fs::read_link(self.dir.join("..data")).ok();
        let version = format!("..2026_11_25_18_00_{:02}.{}", self.generation, 100_000 + self.generation);
        std::fs::create_dir(self.dir.join(&version)).expect("mkdir");
        std::fs::write(self.dir.join(&version).join("proxy.yaml"), content).expect("write");
        std::os::unix::fs::symlink(&version, self.dir.join("..data_tmp")).expect("symlink");
        std::fs::rename(self.dir.join("..data_tmp"), self.dir.join("..data")).expect("swap");
        if let Some(old) = old {
            std::fs::remove_dir_all(self.dir.join(old)).expect("remove old");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_update_through_its_symlinks_reloads_the_policies() {
    let base = "listen: {advertised_host: 127.0.0.1, bootstrap_port: 19092, broker_port_base: 19100}\n\
                upstream: {bootstrap_servers: ['127.0.0.1:9092']}\n";
    let dir = tempfile::tempdir().expect("dir");
    let mut volume = ConfigMapVolume::new(dir.path(), &format!("{base}policies: {{produce_acks: {{action: upgrade}}}}\n"));
    let path = dir.path().join("proxy.yaml");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = tokio::spawn(kafka_durability_proxy::config::reload::watch(path.clone(), move |cfg| {
        let _ = tx.send(format!("{:?}", cfg.policies.produce_acks.action));
        Vec::new()
    }));
    // Let the watcher read the first modification time, then swap as the kubelet does.
    tokio::time::sleep(Duration::from_millis(300)).await;
    volume.publish(&format!("{base}policies: {{produce_acks: {{action: reject}}}}\n"));
    let seen = tokio::time::timeout(Duration::from_secs(8), rx.recv()).await;
    watcher.abort();
    assert_eq!(seen.ok().flatten().as_deref(), Some("Reject"), "the swap was not seen within 8 s (the proxy polls every 2 s)");
    assert!(std::fs::symlink_metadata(&path).expect("link").file_type().is_symlink(), "the mounted file stayed a symlink");
}

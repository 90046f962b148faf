//! Checks of what operators deploy and read, against the code: docs/metrics.md and the Grafana
//! dashboard against the metrics the proxy really exports, the Kubernetes base against the
//! Kubernetes API schemas (and its proxy.yaml against `--check-config`), the HAProxy example
//! with `haproxy -c`, docs/sizing.md against docs/benchmarks.md, and a ConfigMap-style symlink
//! swap against the config reload.

mod dashboard;
mod exported;
mod haproxy;
mod kubernetes;
mod metrics_doc;
mod promql;
mod sizing;

use std::path::{Path, PathBuf};

/// A path in the repository.
pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The proxy binary cargo built for these tests.
pub fn proxy_bin() -> &'static str {
    env!("CARGO_BIN_EXE_kafka-durability-proxy")
}

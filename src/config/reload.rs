//! Reloading a running proxy's configuration: on SIGHUP or when the file changes, a file that
//! validates replaces the policies atomically; sections that need a restart (listeners,
//! upstream, limits, audit) are reported, not applied; a file that does not validate is refused
//! with every problem listed, and the running configuration stays.

use std::path::PathBuf;
use std::time::Duration;

use super::Config;

/// The configuration to run after a reload from `new`, and the sections whose changes need a
/// restart (kept as they were).
pub fn merge(old: &Config, new: Config) -> (Config, Vec<&'static str>) {
    let mut fixed = Vec::new();
    if new.listen != old.listen {
        fixed.push("listen");
    }
    if new.upstream != old.upstream {
        fixed.push("upstream");
    }
    if new.limits != old.limits {
        fixed.push("limits");
    }
    if new.audit != old.audit {
        fixed.push("audit");
    }
    if new.admin != old.admin {
        fixed.push("admin");
    }
    (Config { policies: new.policies, ..old.clone() }, fixed)
}

/// Watches `path` (SIGHUP, or its modification time every 2 s) and calls `apply` with each new
/// configuration that validates; `apply` returns the sections that need a restart.
pub async fn watch(path: PathBuf, apply: impl Fn(Config) -> Vec<&'static str>) {
    let mtime = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut seen = mtime(&path);
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        let signalled = async {
            match hup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let why = tokio::select! {
            _ = signalled => "SIGHUP",
            _ = tokio::time::sleep(Duration::from_secs(2)) => {
                let now = mtime(&path);
                if now == seen {
                    continue;
                }
                seen = now;
                "file changed"
            }
        };
        match super::load(&path) {
            Ok(cfg) => {
                let fixed = apply(cfg);
                if fixed.is_empty() {
                    tracing::info!(trigger = why, path = %path.display(), "configuration reloaded");
                } else {
                    tracing::warn!(trigger = why, path = %path.display(), needs_restart = ?fixed, "policies reloaded; changes to these sections need a restart and were not applied");
                }
            }
            Err(e) => {
                tracing::error!(trigger = why, path = %path.display(), "reload refused, the running configuration stays: {}", e.to_string().trim_end())
            }
        }
    }
}

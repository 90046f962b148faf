//! Typed configuration: YAML in, a validated `Config` out, with every problem (unknown keys
//! included) reported together so an operator fixes a file in one pass. `file` holds the serde
//! types as written, `validate` the checks, `reload` what a running proxy may change; `audit`
//! holds the audit section's sinks, written and validated.

pub mod audit;
pub mod file;
pub mod reload;
pub mod validate;

use std::fmt;
use std::path::Path;

pub use audit::{Audit, AuditSettings, AuditSink, FileSinkSpec, KafkaSinkSpec, Rotation, SinkKind, SinkSpec};
pub use file::{Admin, Limits, Listen, Upstream, DEFAULT_MAX_FRAME_BYTES};

use crate::policy::Policies;

/// A configuration that passed validation.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: Listen,
    pub upstream: Upstream,
    pub limits: Limits,
    pub audit: AuditSettings,
    pub admin: Admin,
    /// Every policy rule; the one part a reload replaces.
    pub policies: Policies,
}

impl Config {
    /// Listener port for a broker node id, or `None` when it falls outside 1..=65535.
    /// Whether `host:port`, advertised for broker `node_id`, is one of this proxy's own
    /// listeners (by the names it binds and advertises: its bootstrap port, a port of the
    /// explicit map, or the port this node gets): the proxy would connect to itself.
    pub fn is_own_listener(&self, node_id: i32, host: &str, port: i32) -> bool {
        let Ok(port) = u16::try_from(port) else { return false };
        let own_host = host.eq_ignore_ascii_case(&self.listen.advertised_host) || host == self.listen.bind_host;
        let own_port = port == self.listen.bootstrap_port
            || self.listen.broker_ports.values().any(|p| *p == port)
            || self.port_for_node(node_id) == Some(port);
        own_host && own_port
    }

    pub fn port_for_node(&self, node_id: i32) -> Option<u16> {
        if let Some(p) = self.listen.broker_ports.get(&node_id) {
            return Some(*p);
        }
        let base = i64::from(self.listen.broker_port_base?);
        u16::try_from(base.checked_add(i64::from(node_id))?).ok().filter(|p| *p != 0)
    }
}

/// Every problem found in a config file.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problem{}):", self.0.len(), if self.0.len() == 1 { "" } else { "s" })?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors(vec![format!("cannot read {}: {e}", path.display())]))?;
    parse(&text)
}

pub fn parse(text: &str) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let de = serde_yaml::Deserializer::from_str(text);
    let mut unknown = Vec::new();
    let raw: Result<file::RawConfig, _> = serde_ignored::deserialize(de, |path| unknown.push(path.to_string()));
    errors.extend(unknown.into_iter().map(|p| format!("unknown key `{p}`")));
    match raw {
        Ok(raw) => {
            let cfg = validate::validate(raw, &mut errors);
            if errors.is_empty() {
                Ok(cfg)
            } else {
                Err(ConfigErrors(errors))
            }
        }
        Err(e) => {
            errors.push(e.to_string());
            Err(ConfigErrors(errors))
        }
    }
}

#[cfg(test)]
mod tests;

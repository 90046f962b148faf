//! Connection limits: how many client connections may be open at once (in total, and from one
//! source address), sized so the proxy always keeps file descriptors to reach its brokers. Each
//! client connection holds two descriptors (its own and its broker connection).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Descriptors kept back for listeners, the proxy's own cluster connections, log and audit files.
pub const RESERVED_FDS: u64 = 128;

/// Raises the soft open-file limit to the hard limit; returns the limit in force.
pub fn raise_fd_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX)
        .unwrap_or_else(|_| rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft).unwrap_or(1024))
}

/// The client connections `fd_limit` descriptors carry, and the configured limit clamped to
/// it (with a warning when the configuration asked for more than the descriptors allow).
pub fn max_connections(configured: Option<usize>, fd_limit: u64) -> usize {
    let affordable = usize::try_from(fd_limit.saturating_sub(RESERVED_FDS) / 2).unwrap_or(usize::MAX).max(1);
    match configured {
        Some(n) if n > affordable => {
            tracing::warn!(
                configured = n,
                affordable,
                fd_limit,
                "limits.max_connections needs two file descriptors per client connection; lowered to what the open-file limit allows"
            );
            affordable
        }
        Some(n) => n,
        None => affordable,
    }
}

/// Why a connection was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0} client connections are open (limits.max_connections)")]
    Total(usize),
    #[error("{0} client connections are open from this address (limits.max_connections_per_source)")]
    PerSource(usize),
}

/// Counts open client connections; a `Permit` is held for each and released when dropped.
pub struct ConnLimits {
    max_total: usize,
    max_per_source: Option<usize>,
    open: AtomicUsize,
    per_source: Mutex<HashMap<IpAddr, usize>>,
    refused: AtomicU64,
}

pub struct Permit {
    limits: Arc<ConnLimits>,
    ip: IpAddr,
}

impl ConnLimits {
    pub fn new(max_total: usize, max_per_source: Option<usize>) -> Arc<ConnLimits> {
        Arc::new(ConnLimits {
            max_total,
            max_per_source,
            open: AtomicUsize::new(0),
            per_source: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
        })
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections refused since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Admits a connection from `ip`, or says which limit refuses it.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refusal> {
        let mut by_source = self.per_source.lock().unwrap_or_else(|p| p.into_inner());
        let open = self.open.load(Ordering::Relaxed);
        let from_ip = by_source.get(&ip).copied().unwrap_or(0);
        let refusal = if open >= self.max_total {
            Some(Refusal::Total(open))
        } else {
            self.max_per_source.filter(|max| from_ip >= *max).map(|_| Refusal::PerSource(from_ip))
        };
        if let Some(r) = refusal {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(r);
        }
        by_source.insert(ip, from_ip + 1);
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(Permit { limits: self.clone(), ip })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut by_source = self.limits.per_source.lock().unwrap_or_else(|p| p.into_inner());
        match by_source.get_mut(&self.ip) {
            Some(n) if *n > 1 => *n -= 1,
            _ => {
                by_source.remove(&self.ip);
            }
        }
        self.limits.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_and_per_source_limits_count_and_release() {
        let limits = ConnLimits::new(3, Some(2));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().expect("ip"), "10.0.0.2".parse().expect("ip"));
        let a1 = limits.admit(a).expect("first");
        let _a2 = limits.admit(a).expect("second");
        assert_eq!(limits.admit(a).err(), Some(Refusal::PerSource(2)));
        let _b1 = limits.admit(b).expect("other source");
        assert_eq!(limits.admit(b).err(), Some(Refusal::Total(3)));
        drop(a1);
        assert_eq!(limits.open(), 2);
        assert!(limits.admit(b).is_ok(), "a released slot is reusable");
        assert_eq!(limits.refused(), 2);
    }

    #[test]
    fn the_descriptor_budget_caps_the_connection_count() {
        assert_eq!(max_connections(None, 20_000), 9_936);
        assert_eq!(max_connections(Some(100), 20_000), 100);
        assert_eq!(max_connections(Some(50_000), 20_000), 9_936);
        assert_eq!(max_connections(None, 10), 1);
    }
}

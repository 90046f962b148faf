//! What the proxy knows of the cluster: each broker node id's real address (learned from every
//! Metadata-like response that passes, and from discovery at start-up), and which node ids already
//! have a proxy listener. The node id to proxy port mapping itself is fixed by the config, so
//! every proxy instance answers the same way and clients may use any of them.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

/// Where a client connection goes: the bootstrap listener picks any bootstrap broker; a node
/// listener always reaches that one broker (clients rely on talking to the partition leader).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Bootstrap,
    Node(i32),
}

#[derive(Default)]
pub struct Topology {
    brokers: RwLock<HashMap<i32, String>>,
    listeners: Mutex<HashMap<i32, u16>>,
}

impl Topology {
    /// Records a broker's address; returns true when it is new or moved.
    pub fn learn(&self, node_id: i32, host: &str, port: i32) -> bool {
        let addr = format!("{host}:{port}");
        let mut map = self.brokers.write().unwrap_or_else(|p| p.into_inner());
        if map.get(&node_id) == Some(&addr) {
            return false;
        }
        tracing::info!(node_id, upstream = %addr, "learned broker address");
        map.insert(node_id, addr);
        true
    }

    pub fn broker(&self, node_id: i32) -> Option<String> {
        self.brokers.read().unwrap_or_else(|p| p.into_inner()).get(&node_id).cloned()
    }

    /// Runs `bind` for a node that has no listener yet, once; returns the listener's port.
    pub fn listener<E>(&self, node_id: i32, bind: impl FnOnce() -> Result<u16, E>) -> Result<u16, E> {
        let mut l = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(port) = l.get(&node_id) {
            return Ok(*port);
        }
        let port = bind()?;
        l.insert(node_id, port);
        Ok(port)
    }

    /// Some known broker, for the proxy's own requests about the cluster.
    pub fn any_node(&self) -> Option<i32> {
        self.brokers.read().unwrap_or_else(|p| p.into_inner()).keys().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_and_binds_once() {
        let t = Topology::default();
        assert!(t.learn(1, "k1", 9092));
        assert!(!t.learn(1, "k1", 9092));
        assert!(t.learn(1, "k1b", 9092), "a moved broker is re-learned");
        assert_eq!(t.broker(1).as_deref(), Some("k1b:9092"));
        let mut binds = 0;
        for _ in 0..3 {
            let port = t.listener(1, || {
                binds += 1;
                Ok::<_, ()>(19001)
            });
            assert_eq!(port, Ok(19001));
        }
        assert_eq!(binds, 1);
        assert_eq!(t.listener(2, || Err("busy")), Err("busy"));
        assert_eq!(t.listener(2, || Ok::<_, &str>(19002)), Ok(19002), "a failed bind is retried next time");
    }
}

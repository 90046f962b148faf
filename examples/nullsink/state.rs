//! What every connection of the null sink shares: who it says it is (node id, advertised
//! address), the topics it was asked about, counters for producer ids and offsets, the batch that
//! every Fetch serves, and what it counted (records, bytes, requests per API version).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use kafka_durability_proxy::protocol::versions::api_name;

use crate::fetch::Segment;

/// API keys and versions counted per (key, version); larger ones are counted as "other".
const KEYS: usize = 80;
const VERSIONS: usize = 20;

/// Where the sink says it lives, and what it serves.
pub struct Sink {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub partitions: i32,
    pub segment: Segment,
    topics: Mutex<BTreeSet<String>>,
    next_producer_id: AtomicI64,
    next_offset: AtomicI64,
    pub stats: Stats,
}

impl Sink {
    pub fn new(node_id: i32, host: String, port: i32, partitions: i32, segment: Segment) -> Sink {
        Sink {
            node_id,
            host,
            port,
            partitions,
            segment,
            topics: Mutex::new(BTreeSet::new()),
            next_producer_id: AtomicI64::new(1000),
            next_offset: AtomicI64::new(0),
            stats: Stats::default(),
        }
    }

    /// Remembers a topic (created, or named in a request): every named topic exists here.
    pub fn remember(&self, topic: &str) {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        if !topics.contains(topic) {
            topics.insert(topic.to_owned());
        }
    }

    pub fn topics(&self) -> Vec<String> {
        self.topics.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }

    pub fn producer_id(&self) -> i64 {
        self.next_producer_id.fetch_add(1, Relaxed)
    }

    /// The base offset of `records` appended records (one log for every partition: nothing
    /// reads them back, so only monotony matters).
    pub fn append(&self, records: i64) -> i64 {
        self.next_offset.fetch_add(records.max(0), Relaxed)
    }
}

/// Counters, read by `--stats-every` and at exit.
pub struct Stats {
    pub connections: AtomicU64,
    pub produce_requests: AtomicU64,
    pub produce_records: AtomicU64,
    pub produce_bytes: AtomicU64,
    pub fetch_responses: AtomicU64,
    pub fetch_records: AtomicU64,
    pub fetch_bytes: AtomicU64,
    pub closed_bad_frame: AtomicU64,
    requests: Vec<AtomicU64>,
}

impl Default for Stats {
    fn default() -> Self {
        let zero = || AtomicU64::new(0);
        Stats {
            connections: zero(),
            produce_requests: zero(),
            produce_records: zero(),
            produce_bytes: zero(),
            fetch_responses: zero(),
            fetch_records: zero(),
            fetch_bytes: zero(),
            closed_bad_frame: zero(),
            requests: (0..KEYS * VERSIONS + 1).map(|_| zero()).collect(),
        }
    }
}

impl Stats {
    pub fn request(&self, api_key: i16, version: i16) {
        let (k, v) = (api_key as usize, version as usize);
        let slot = if k < KEYS && v < VERSIONS { k * VERSIONS + v } else { KEYS * VERSIONS };
        if let Some(c) = self.requests.get(slot) {
            c.fetch_add(1, Relaxed);
        }
    }

    /// One JSON object: the counters and every (API, version) seen, e.g. `"Produce v10": 912`.
    pub fn json(&self) -> serde_json::Value {
        let mut seen = serde_json::Map::new();
        for (slot, c) in self.requests.iter().enumerate() {
            let n = c.load(Relaxed);
            if n == 0 {
                continue;
            }
            let name = if slot == KEYS * VERSIONS {
                "other".to_owned()
            } else {
                format!("{} v{}", api_name((slot / VERSIONS) as i16), slot % VERSIONS)
            };
            seen.insert(name, n.into());
        }
        let get = |c: &AtomicU64| c.load(Relaxed);
        serde_json::json!({
            "connections": get(&self.connections),
            "produce_requests": get(&self.produce_requests),
            "produce_records": get(&self.produce_records),
            "produce_bytes": get(&self.produce_bytes),
            "fetch_responses": get(&self.fetch_responses),
            "fetch_records": get(&self.fetch_records),
            "fetch_bytes": get(&self.fetch_bytes),
            "closed_bad_frame": get(&self.closed_bad_frame),
            "requests": seen,
        })
    }
}

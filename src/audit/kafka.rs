//! The Kafka sink: audit lines as records of a topic on the proxied cluster, written by the
//! proxy's own idempotent producer with acks=all (one record per line, value only). The topic is
//! created in the configured durable shape when missing and `create_topic` is on.

use std::sync::Arc;

use bytes::Bytes;

use super::sinks::{Sink, SinkError};
use crate::cluster::leaders::TopicSpec;
use crate::cluster::producer::{self, Producer, ProducerConfig};
use crate::cluster::{ClientSettings, ClusterClient};
use crate::config::KafkaSinkSpec;
use crate::metrics::Metrics;

pub struct KafkaSink {
    producer: Producer,
}

impl KafkaSink {
    /// Its own pooled client (the proxy's TLS and SASL settings, counted in the proxy's cluster
    /// metrics), so audit traffic never waits behind the proxy's other requests. Nothing is sent
    /// before the first line.
    pub fn new(settings: &ClientSettings, spec: &KafkaSinkSpec, metrics: Arc<Metrics>) -> Self {
        let mut cfg = ProducerConfig::new(spec.topic.clone());
        if spec.create_topic {
            cfg.create = Some(topic_spec(spec));
        }
        Self { producer: Producer::new(ClusterClient::new(settings.clone(), metrics), cfg) }
    }

    pub fn producer_counters(&self) -> Arc<producer::ProducerCounters> {
        self.producer.counters()
    }
}

/// The shape the audit topic is created in.
pub fn topic_spec(spec: &KafkaSinkSpec) -> TopicSpec {
    TopicSpec {
        partitions: spec.partitions,
        replication_factor: spec.replication_factor,
        configs: vec![("min.insync.replicas".to_owned(), spec.min_insync_replicas.to_string())],
    }
}

impl Sink for KafkaSink {
    fn batch_limits(&self) -> (usize, usize) {
        (producer::MAX_BATCH_RECORDS, producer::MAX_BATCH_BYTES)
    }

    async fn write(&mut self, lines: &[Bytes]) -> Result<(), SinkError> {
        let values: Vec<Bytes> = lines.iter().map(|l| l.slice(..l.len() - usize::from(l.ends_with(b"\n")))).collect();
        // The producer retries what can be retried for as long as it takes; what comes back
        // cannot be written.
        self.producer.send(&values).await.map_err(|e| SinkError::GiveUp { side: e.side(), reason: e.to_string() })
    }
}

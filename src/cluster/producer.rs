//! The proxy's own idempotent producer (it writes the audit topic): a producer id from
//! InitProducerId, each partition's leader from Metadata, Produce with acks=-1 straight to that
//! leader, one uncompressed batch per request with contiguous per-partition sequences. A
//! retriable failure re-sends the SAME batch (same sequence, so the broker keeps one copy); a
//! broker that lost the producer's state gets a new producer id and the batch re-stamped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::client::{versions, ClusterClient};
use super::error::ClusterError;
use super::leaders::{self, Leaders, TopicSpec};
use crate::error::Side;
use crate::protocol::errors;
use crate::protocol::records::{self, ProducerStamp, RecordsError};

/// At most this many records, and about this many bytes of values, per batch (one Produce each).
pub const MAX_BATCH_RECORDS: usize = 500;
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// What the producer writes to, and how it waits between attempts.
#[derive(Clone, Debug)]
pub struct ProducerConfig {
    pub topic: String,
    /// Create the topic in this shape when Metadata says it does not exist.
    pub create: Option<TopicSpec>,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl ProducerConfig {
    pub fn new(topic: impl Into<String>) -> Self {
        Self { topic: topic.into(), create: None, backoff_min: Duration::from_millis(100), backoff_max: Duration::from_secs(5) }
    }
}

/// What the producer went through, readable while it works (metrics read these).
#[derive(Debug, Default)]
pub struct ProducerCounters {
    /// Batches acknowledged by their leader.
    pub batches: AtomicU64,
    /// Attempts that failed and were retried (the same batch re-sent).
    pub retries: AtomicU64,
    /// New producer ids after the broker lost or fenced the producer (a batch re-stamped then
    /// may be written twice, if an earlier attempt had landed).
    pub reinits: AtomicU64,
}

/// A batch the producer gave up on: retrying cannot help.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("broker refused the proxy's batch for {topic}-{partition} with {} ({code}){}", errors::name(*.code), .message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Refused { topic: String, partition: i32, code: i16, message: Option<String> },
    #[error(transparent)]
    Cluster(ClusterError),
    #[error("proxy could not build its record batch: {0}")]
    Batch(#[from] RecordsError),
}

impl ProduceError {
    pub fn side(&self) -> Side {
        match self {
            ProduceError::Refused { .. } => Side::Broker,
            ProduceError::Cluster(e) => e.side(),
            ProduceError::Batch(_) => Side::Proxy,
        }
    }
}

/// What a Produce error code calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Written (a duplicate sequence means an earlier attempt was).
    Done,
    /// The leader moved or is unknown: ask Metadata again, then re-send the same batch.
    Refresh,
    /// Re-send the same batch after a back-off.
    Retry,
    /// The broker lost or fenced this producer: new producer id, batch re-stamped.
    Reinit,
    /// Retrying cannot help: give the batch up.
    Fail,
}

pub fn next_after(code: i16) -> Next {
    match code {
        errors::NONE | errors::DUPLICATE_SEQUENCE_NUMBER => Next::Done,
        errors::NOT_LEADER_OR_FOLLOWER
        | errors::LEADER_NOT_AVAILABLE
        | errors::UNKNOWN_TOPIC_OR_PARTITION
        | errors::FENCED_LEADER_EPOCH
        | errors::REPLICA_NOT_AVAILABLE => Next::Refresh,
        errors::OUT_OF_ORDER_SEQUENCE_NUMBER | errors::UNKNOWN_PRODUCER_ID | errors::INVALID_PRODUCER_EPOCH | errors::PRODUCER_FENCED => {
            Next::Reinit
        }
        c if errors::retriable(c) => Next::Retry,
        _ => Next::Fail,
    }
}

/// Splits `values` into batches of at most `max_records` records and about `max_bytes` bytes (a
/// value larger than that goes alone).
pub fn batches(values: &[Bytes], max_records: usize, max_bytes: usize) -> Vec<&[Bytes]> {
    let mut out = Vec::new();
    let mut rest = values;
    while !rest.is_empty() {
        let mut bytes = 0usize;
        let n = rest
            .iter()
            .take(max_records.max(1))
            .take_while(|v| {
                bytes += v.len();
                bytes <= max_bytes || bytes == v.len()
            })
            .count()
            .max(1);
        let (head, tail) = rest.split_at(n.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

/// The batch being delivered: built once, stamped once per producer id.
struct Pending {
    batch: Vec<u8>,
    count: i32,
    partition: Option<i32>,
    stamp: ProducerStamp,
}

/// One attempt's outcome.
enum Step {
    Done,
    Again { refresh: bool, why: String },
    Reinit(String),
    Fail(ProduceError),
}

impl Step {
    fn of(e: ClusterError) -> Step {
        match &e {
            ClusterError::Kafka { code, .. } if matches!(next_after(*code), Next::Reinit) => Step::Reinit(e.to_string()),
            ClusterError::Kafka { code, .. } if matches!(next_after(*code), Next::Refresh) => {
                Step::Again { refresh: true, why: e.to_string() }
            }
            // A lost connection may mean a moved leader.
            _ if e.retriable() => Step::Again { refresh: true, why: e.to_string() },
            _ => Step::Fail(ProduceError::Cluster(e)),
        }
    }
}

pub struct Producer {
    client: ClusterClient,
    cfg: ProducerConfig,
    id: Option<(i64, i16)>,
    /// Next sequence per partition, for the current producer id.
    sequences: HashMap<i32, i32>,
    leaders: Option<Leaders>,
    /// Round robin over the partitions, one batch each.
    turn: usize,
    pending: Option<Pending>,
    counters: Arc<ProducerCounters>,
}

impl Producer {
    pub fn new(client: ClusterClient, cfg: ProducerConfig) -> Self {
        let counters = Arc::new(ProducerCounters::default());
        Self { client, cfg, id: None, sequences: HashMap::new(), leaders: None, turn: 0, pending: None, counters }
    }

    pub fn counters(&self) -> Arc<ProducerCounters> {
        self.counters.clone()
    }

    /// Writes `values` as one batch (one record each, value only, timestamped now) and returns
    /// once the leader acknowledged it with acks=-1. Retriable failures are retried with
    /// back-off for as long as it takes; an error comes back only when retrying cannot help.
    /// A batch left by a cancelled call is delivered first.
    pub async fn send(&mut self, values: &[Bytes]) -> Result<(), ProduceError> {
        if self.pending.is_some() {
            self.deliver().await?;
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
        let batch = records::build_batch(values, ProducerStamp::NONE, i64::try_from(now).unwrap_or(i64::MAX))?;
        let count = i32::try_from(values.len()).map_err(|_| RecordsError::Encode("too many records".into()))?;
        self.pending = Some(Pending { batch: batch.to_vec(), count, partition: None, stamp: ProducerStamp::NONE });
        self.deliver().await
    }

    async fn deliver(&mut self) -> Result<(), ProduceError> {
        let mut wait = self.cfg.backoff_min;
        let mut failures = 0u32;
        loop {
            let (refresh, why) = match self.attempt().await {
                Step::Done => return Ok(()),
                Step::Fail(e) => {
                    self.pending = None;
                    return Err(e);
                }
                Step::Reinit(why) => {
                    self.counters.reinits.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(topic = %self.cfg.topic, reason = %why, "the broker lost or fenced the proxy's producer: new producer id, same batch");
                    self.id = None;
                    self.sequences.clear();
                    (false, why)
                }
                Step::Again { refresh, why } => (refresh, why),
            };
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            failures += 1;
            if failures == 1 || failures.is_multiple_of(10) {
                tracing::warn!(topic = %self.cfg.topic, attempts = failures, error = %why, "proxy's produce failed; re-sending the same batch");
            }
            if refresh {
                self.leaders = None;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(self.cfg.backoff_max);
        }
    }

    async fn attempt(&mut self) -> Step {
        let id = match self.id {
            Some(id) => id,
            None => match self.init_id().await {
                Ok(id) => id,
                Err(step) => return step,
            },
        };
        let leaders = match &self.leaders {
            Some(l) => l.clone(),
            None => match self.refresh().await {
                Ok(l) => l,
                Err(step) => return step,
            },
        };
        let Some(partition) = self.stamp_pending(id, &leaders) else { return Step::Done };
        let Some(addr) = leaders.leader(partition) else {
            return Step::Again { refresh: true, why: format!("partition {partition} has no leader") };
        };
        let step = self.produce(addr, partition).await;
        if matches!(step, Step::Done) {
            if let Some(p) = self.pending.take() {
                self.sequences.insert(partition, records::next_sequence(p.stamp.base_sequence, p.count));
                self.counters.batches.fetch_add(1, Ordering::Relaxed);
            }
        }
        step
    }

    /// Picks the pending batch's partition (once) and stamps it for producer `id`; the partition.
    fn stamp_pending(&mut self, id: (i64, i16), leaders: &Leaders) -> Option<i32> {
        let p = self.pending.as_mut()?;
        let partition = match p.partition {
            Some(partition) => partition,
            None => {
                let n = leaders.partitions.len().max(1);
                let partition = leaders.partitions.get(self.turn % n).map(|(p, _)| *p).unwrap_or(0);
                self.turn = self.turn.wrapping_add(1);
                p.partition = Some(partition);
                partition
            }
        };
        if (p.stamp.producer_id, p.stamp.producer_epoch) != id {
            let base_sequence = self.sequences.get(&partition).copied().unwrap_or(0);
            p.stamp = ProducerStamp { producer_id: id.0, producer_epoch: id.1, base_sequence };
            // The batch was built by this module: stamping it cannot fail.
            let _ = records::stamp(&mut p.batch, p.stamp);
        }
        Some(partition)
    }

    async fn produce(&self, addr: &str, partition: i32) -> Step {
        let Some(p) = &self.pending else { return Step::Done };
        let topic = TopicName(StrBytes::from_string(self.cfg.topic.clone()));
        let data = PartitionProduceData::default().with_index(partition).with_records(Some(Bytes::copy_from_slice(&p.batch)));
        // The broker's own wait for the in-sync replicas ends before the request times out here,
        // so its answer (REQUEST_TIMED_OUT, retried) comes back rather than a dropped connection.
        let timeout_ms = i32::try_from(self.client.settings().request_timeout.as_millis() * 4 / 5).unwrap_or(i32::MAX);
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(timeout_ms)
            .with_topic_data(vec![TopicProduceData::default().with_name(topic).with_partition_data(vec![data])]);
        // v3+ carries record batches v2; v13 names topics by id only.
        let resp = match self.client.call_at(addr, &req, versions(3, 12)).await {
            Ok(r) => r,
            Err(e) => return Step::of(e),
        };
        let result = resp
            .responses
            .iter()
            .filter(|t| t.name.0.as_str() == self.cfg.topic)
            .flat_map(|t| t.partition_responses.iter())
            .find(|r| r.index == partition);
        let Some(r) = result else {
            return Step::Fail(ProduceError::Refused {
                topic: self.cfg.topic.clone(),
                partition,
                code: errors::NONE,
                message: Some("no result in the response".into()),
            });
        };
        let message = r.error_message.as_ref().map(|m| m.to_string());
        let why = || {
            format!("{} ({}){}", errors::name(r.error_code), r.error_code, message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())
        };
        match next_after(r.error_code) {
            Next::Done => Step::Done,
            Next::Refresh => Step::Again { refresh: true, why: why() },
            Next::Retry => Step::Again { refresh: false, why: why() },
            Next::Reinit => Step::Reinit(why()),
            Next::Fail => Step::Fail(ProduceError::Refused { topic: self.cfg.topic.clone(), partition, code: r.error_code, message }),
        }
    }

    /// A fresh producer id (id and epoch -1 ask for a new one, which v3+ and tansu need).
    async fn init_id(&mut self) -> Result<(i64, i16), Step> {
        let resp = super::producer_id::init_producer_id(&self.client).await.map_err(|e| match e {
            e @ ClusterError::Kafka { .. } if e.retriable() => Step::Again { refresh: false, why: e.to_string() },
            e @ ClusterError::Kafka { .. } => Step::Fail(ProduceError::Cluster(e)),
            e => Step::of(e),
        })?;
        let id = (resp.producer_id.0, resp.producer_epoch);
        tracing::info!(topic = %self.cfg.topic, producer_id = id.0, epoch = id.1, "proxy's idempotent producer initialised");
        self.id = Some(id);
        Ok(id)
    }

    /// The topic's leaders, creating the topic first when it is missing and that was asked for.
    async fn refresh(&mut self) -> Result<Leaders, Step> {
        let topic = &self.cfg.topic;
        let found = leaders::leaders(&self.client, topic).await.map_err(Step::of)?;
        let found = match (found, &self.cfg.create) {
            (Some(l), _) => l,
            (None, Some(spec)) => {
                leaders::create_topic(&self.client, topic, spec).await.map_err(Step::of)?;
                tracing::info!(%topic, partitions = spec.partitions, replication_factor = spec.replication_factor, "proxy created its topic");
                leaders::leaders(&self.client, topic)
                    .await
                    .map_err(Step::of)?
                    .ok_or_else(|| Step::Again { refresh: true, why: format!("topic {topic} not visible yet after its creation") })?
            }
            (None, None) => return Err(Step::Again { refresh: true, why: format!("topic {topic} does not exist (create_topic is off)") }),
        };
        self.leaders = Some(found.clone());
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_choose_what_happens_to_the_batch() {
        let cases = [
            (errors::NONE, Next::Done),
            (errors::DUPLICATE_SEQUENCE_NUMBER, Next::Done),
            (errors::NOT_LEADER_OR_FOLLOWER, Next::Refresh),
            (errors::UNKNOWN_TOPIC_OR_PARTITION, Next::Refresh),
            (errors::NOT_ENOUGH_REPLICAS, Next::Retry),
            (errors::NOT_ENOUGH_REPLICAS_AFTER_APPEND, Next::Retry),
            (errors::REQUEST_TIMED_OUT, Next::Retry),
            (errors::OUT_OF_ORDER_SEQUENCE_NUMBER, Next::Reinit),
            (errors::UNKNOWN_PRODUCER_ID, Next::Reinit),
            (errors::INVALID_PRODUCER_EPOCH, Next::Reinit),
            (errors::PRODUCER_FENCED, Next::Reinit),
            (errors::MESSAGE_TOO_LARGE, Next::Fail),
            (errors::TOPIC_AUTHORIZATION_FAILED, Next::Fail),
            (errors::INVALID_RECORD, Next::Fail),
        ];
        for (code, want) in cases {
            assert_eq!(next_after(code), want, "{}", errors::name(code));
        }
    }

    #[test]
    fn batches_respect_record_and_byte_limits() {
        let v = |n: usize, size: usize| -> Vec<Bytes> { (0..n).map(|_| Bytes::from(vec![b'x'; size])).collect() };
        let lens = |vals: &[Bytes], r, b| batches(vals, r, b).iter().map(|b| b.len()).collect::<Vec<_>>();
        assert_eq!(lens(&v(1200, 10), 500, 1 << 20), vec![500, 500, 200]);
        assert_eq!(lens(&v(10, 100), 500, 350), vec![3, 3, 3, 1]);
        assert_eq!(lens(&v(3, 1000), 500, 350), vec![1, 1, 1], "an oversized value goes alone");
        assert!(batches(&[], 500, 100).is_empty());
        let all = v(7, 5);
        let joined: usize = batches(&all, 2, 1000).iter().map(|b| b.len()).sum();
        assert_eq!(joined, 7);
    }
}

//! The background re-sender: held requests whose connection ended before every partition was
//! acknowledged, re-sent partition by partition to the current leader (Metadata through the
//! proxy's own client), with back-off, until acknowledged or given up. Requests stamped with one
//! producer id are worked on in arrival order by one task, so each partition's sequences reach
//! the broker in order; a broker that no longer knows the id gets the records re-stamped under a
//! new one (the later requests of the same partition too).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::mpsc;

use super::held::{describe, Inner, State};
use super::{stamp, Deliveries, GiveUp};
use crate::cluster::client::versions;
use crate::cluster::leaders::{self, Leaders};
use crate::cluster::producer::{next_after, Next};

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long a producer id's task waits for more of its requests before it ends.
const LINGER: Duration = Duration::from_secs(1);

type Queue = BTreeMap<u64, Box<Inner>>;

/// Routes each orphaned request to the task of its producer id, starting one when needed.
pub(super) async fn dispatch(d: Arc<Deliveries>, mut rx: mpsc::UnboundedReceiver<Box<Inner>>) {
    let mut groups: HashMap<i64, mpsc::UnboundedSender<Box<Inner>>> = HashMap::new();
    while let Some(mut inner) = rx.recv().await {
        inner.leave_connection();
        let key = inner.lease.id;
        let inner = match groups.get(&key) {
            Some(tx) => match tx.send(inner) {
                Ok(()) => continue,
                Err(back) => back.0,
            },
            None => inner,
        };
        groups.retain(|_, tx| !tx.is_closed());
        let (tx, group_rx) = mpsc::unbounded_channel();
        let _ = tx.send(inner);
        groups.insert(key, tx);
        tokio::spawn(group(d.clone(), group_rx));
    }
}

/// One producer id's orphaned requests, oldest first.
async fn group(d: Arc<Deliveries>, mut rx: mpsc::UnboundedReceiver<Box<Inner>>) {
    let mut queue = Queue::new();
    let mut leaders = HashMap::new();
    loop {
        while let Ok(i) = rx.try_recv() {
            queue.insert(i.id, i);
        }
        let Some((_, mut item)) = queue.pop_first() else {
            match tokio::time::timeout(LINGER, rx.recv()).await {
                Ok(Some(i)) => {
                    queue.insert(i.id, i);
                }
                Ok(None) => return,
                Err(_) => {
                    // From here the dispatcher starts a new task for this id; take what raced in.
                    rx.close();
                    while let Ok(i) = rx.try_recv() {
                        queue.insert(i.id, i);
                    }
                    if queue.is_empty() {
                        return;
                    }
                }
            }
            continue;
        };
        deliver(&d, &mut item, &mut leaders, &mut queue).await;
    }
}

/// What one re-send of a partition came to.
enum Step {
    Done,
    /// Retriable; `refresh`: ask where the partition is led first.
    Again {
        refresh: bool,
        why: String,
    },
    /// The broker no longer knows this producer id (or its sequence): re-stamp.
    Reinit(String),
    Fail(String),
}

/// Re-sends `item`'s pending partitions until each is acknowledged or given up.
async fn deliver(d: &Deliveries, item: &mut Inner, leaders: &mut HashMap<String, Leaders>, later: &mut Queue) {
    let mut wait = BACKOFF_MIN;
    let mut failures = 0u32;
    loop {
        let pending: Vec<usize> = item.parts.iter().enumerate().filter(|(_, p)| p.state == State::Pending).map(|(i, _)| i).collect();
        if pending.is_empty() {
            return;
        }
        let stop = if d.abandoning() {
            Some(GiveUp::Shutdown)
        } else if Instant::now() >= item.deadline {
            Some(GiveUp::Timeout)
        } else {
            None
        };
        if let Some(why) = stop {
            pending.into_iter().for_each(|i| d.give_up(item, i, why));
            return;
        }
        let mut again = false;
        for i in pending {
            let step = attempt(d, item, i, leaders).await;
            again |= apply(d, item, i, step, leaders, later).await;
        }
        if again {
            failures += 1;
            if failures == 1 || failures.is_multiple_of(10) {
                let last = item.parts.iter().find_map(|p| (p.state == State::Pending).then_some(p.last_error.clone()).flatten());
                tracing::warn!(records = super::pending_records(&item.parts), attempts = failures, last_error = ?last, "re-sending held acks=0 records");
            }
            let left = item.deadline.saturating_duration_since(Instant::now());
            tokio::select! {
                _ = tokio::time::sleep(wait.min(left)) => {}
                _ = d.abandon.cancelled() => {}
            }
            wait = (wait * 2).min(BACKOFF_MAX);
        }
    }
}

/// Records what a re-send of part `i` came to; true when it must be tried again.
async fn apply(d: &Deliveries, item: &mut Inner, i: usize, step: Step, leaders: &mut HashMap<String, Leaders>, later: &mut Queue) -> bool {
    let Some(part) = item.parts.get_mut(i) else { return false };
    match step {
        Step::Done => {
            part.state = State::Done;
            d.metrics.delivery.redelivered_records.add(u64::try_from(part.records).unwrap_or(0));
            tracing::info!(topic = %part.topic, partition = part.partition, records = part.records, attempts = part.attempts, "held acks=0 records re-sent and acknowledged");
            false
        }
        Step::Again { refresh, why } => {
            if refresh {
                leaders.remove(&part.topic);
            }
            part.last_error = Some(why);
            true
        }
        Step::Reinit(why) => {
            part.last_error = Some(why);
            restamp(d, item, i, later).await;
            true
        }
        Step::Fail(why) => {
            part.last_error = Some(why);
            d.give_up(item, i, GiveUp::Refused);
            false
        }
    }
}

/// One re-send of part `i` to its partition's leader.
async fn attempt(d: &Deliveries, item: &mut Inner, i: usize, leaders: &mut HashMap<String, Leaders>) -> Step {
    let Some(part) = item.parts.get(i) else { return Step::Done };
    let (topic, partition) = (part.topic.clone(), part.partition);
    let records = item.records(part);
    if !leaders.contains_key(&topic) {
        match leaders::leaders(&d.client, &topic).await {
            Ok(Some(l)) => {
                leaders.insert(topic.clone(), l);
            }
            Ok(None) => return Step::Again { refresh: true, why: format!("topic {topic} does not exist") },
            Err(e) => return Step::Again { refresh: true, why: e.to_string() },
        }
    }
    let Some(addr) = leaders.get(&topic).and_then(|l| l.leader(partition)).map(str::to_owned) else {
        return Step::Again { refresh: true, why: format!("partition {topic}-{partition} has no leader") };
    };
    if let Some(part) = item.parts.get_mut(i) {
        part.attempts += 1;
    }
    d.metrics.delivery.retries.inc();
    let req = request(&d.client, &topic, partition, records);
    let resp = match d.client.call_at(&addr, &req, versions(3, 12)).await {
        Ok(r) => r,
        // Connection lost, timed out, or refused: the leader may have moved. Retried until the
        // delivery timeout whatever it was: records are not given up on a transport error.
        Err(e) => return Step::Again { refresh: true, why: e.to_string() },
    };
    let result = resp
        .responses
        .iter()
        .filter(|t| t.name.0.as_str() == topic)
        .flat_map(|t| t.partition_responses.iter())
        .find(|r| r.index == partition);
    let Some(r) = result else { return Step::Again { refresh: false, why: "no result for the partition in the response".into() } };
    d.metrics.produce_error(r.error_code);
    let why = describe(r.error_code, r.error_message.as_deref());
    match next_after(r.error_code) {
        Next::Done => Step::Done,
        Next::Refresh => Step::Again { refresh: true, why },
        Next::Retry => Step::Again { refresh: false, why },
        Next::Reinit => Step::Reinit(why),
        Next::Fail => Step::Fail(why),
    }
}

fn request(client: &crate::cluster::ClusterClient, topic: &str, partition: i32, records: Bytes) -> ProduceRequest {
    // The broker's own wait for the in-sync replicas ends before this request times out, so
    // its answer (REQUEST_TIMED_OUT, retried) comes back rather than a dropped connection.
    let timeout_ms = i32::try_from(client.settings().request_timeout.as_millis() * 4 / 5).unwrap_or(i32::MAX);
    let data = PartitionProduceData::default().with_index(partition).with_records(Some(records));
    ProduceRequest::default().with_acks(-1).with_timeout_ms(timeout_ms).with_topic_data(vec![TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
        .with_partition_data(vec![data])])
}

/// The broker lost part `i`'s producer id (or refuses its sequence): a new id, and part `i` and
/// every later pending part of the same partition re-stamped with it (a copy of their records),
/// in order. If an earlier attempt had been written, this one is a duplicate: counted.
async fn restamp(d: &Deliveries, item: &mut Inner, i: usize, later: &mut Queue) {
    let Some(part) = item.parts.get(i) else { return };
    let (topic, partition) = (part.topic.clone(), part.partition);
    let lease = match d.lease().await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(%topic, partition, error = %e, "no new producer id for held records; retrying");
            return;
        }
    };
    d.metrics.delivery.reinits.inc();
    tracing::warn!(%topic, partition, old = item.lease.id, new = lease.id, "broker no longer accepts the proxy's producer id for held records: re-stamped under a new one");
    item.lease.poison();
    for inner in std::iter::once(item).chain(later.values_mut().map(|b| &mut **b)) {
        let Inner { frame, parts, .. } = inner;
        for part in parts.iter_mut().filter(|p| p.state == State::Pending && p.topic == topic && p.partition == partition) {
            let src = match &part.restamped {
                Some((b, old)) => {
                    old.poison();
                    b.clone()
                }
                None => frame.slice(part.range.clone()),
            };
            let mut copy = BytesMut::from(&src[..]);
            if stamp::stamp_set(&mut copy, &part.batches, lease.id, lease.epoch, |n| lease.take(&topic, partition, n)).is_ok() {
                part.restamped = Some((copy.freeze(), lease.clone()));
            }
        }
    }
}

//! Producer ids the proxy stamps into batches it holds for redelivery: obtained with
//! InitProducerId and leased, one per client connection at a time, so that each id's
//! per-partition sequences advance in exactly the order its batches are sent. A lease goes back
//! to the pool (sequences kept) when nothing that used it is still in flight, unless a batch of
//! it was given up: a sequence gap would make the broker refuse the id's next batch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::client::{versions, ClusterClient};
use super::error::ClusterError;
use crate::protocol::errors;
use crate::protocol::records::next_sequence;

/// A fresh producer id and epoch from the cluster (InitProducerId with id and epoch -1, no
/// transactional id: what v3+ and tansu need); a non-zero error is a `ClusterError::Kafka`.
pub async fn init_producer_id(client: &ClusterClient) -> Result<InitProducerIdResponse, ClusterError> {
    let req = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(i32::MAX)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let resp = client.call(&req, versions(0, 5)).await?;
    if resp.error_code != errors::NONE {
        return Err(ClusterError::Kafka { api: "InitProducerId", code: resp.error_code, message: None });
    }
    Ok(resp)
}

/// A producer id and where its sequences stand.
#[derive(Debug, Default)]
struct IdState {
    id: i64,
    epoch: i16,
    next: HashMap<(String, i32), i32>,
}

/// Producer ids not leased now.
#[derive(Debug, Default)]
pub struct PidPool {
    free: Mutex<Vec<IdState>>,
}

/// One producer id, leased: stamps take their sequences from it.
#[derive(Debug)]
pub struct Lease {
    pub id: i64,
    pub epoch: i16,
    next: Mutex<HashMap<(String, i32), i32>>,
    poisoned: AtomicBool,
    pool: Weak<PidPool>,
}

impl PidPool {
    pub fn new() -> Arc<PidPool> {
        Arc::new(PidPool::default())
    }

    /// A free id, or a new one from the cluster.
    pub async fn lease(self: &Arc<Self>, client: &ClusterClient) -> Result<Arc<Lease>, ClusterError> {
        let reused = self.free.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let state = match reused {
            Some(s) => s,
            None => {
                let resp = init_producer_id(client).await?;
                IdState { id: resp.producer_id.0, epoch: resp.producer_epoch, next: HashMap::new() }
            }
        };
        Ok(Arc::new(Lease {
            id: state.id,
            epoch: state.epoch,
            next: Mutex::new(state.next),
            poisoned: AtomicBool::new(false),
            pool: Arc::downgrade(self),
        }))
    }

    pub fn free_ids(&self) -> usize {
        self.free.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Lease {
    /// The base sequence for `count` records of `topic`-`partition`, advancing past them.
    pub fn take(&self, topic: &str, partition: i32, count: i32) -> i32 {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let slot = next.entry((topic.to_owned(), partition)).or_insert(0);
        let base = *slot;
        *slot = next_sequence(base, count);
        base
    }

    /// A batch of this id will never be written: its sequences now have a gap, so the id must not
    /// be used again.
    pub fn poison(&self) {
        self.poisoned.store(true, Ordering::Relaxed);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.poisoned.load(Ordering::Relaxed) {
            return;
        }
        if let Some(pool) = self.pool.upgrade() {
            let next = std::mem::take(&mut *self.next.lock().unwrap_or_else(|p| p.into_inner()));
            pool.free.lock().unwrap_or_else(|p| p.into_inner()).push(IdState { id: self.id, epoch: self.epoch, next });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_advance_per_partition_and_survive_a_return_to_the_pool() {
        let pool = PidPool::new();
        let lease = Arc::new(Lease {
            id: 7,
            epoch: 0,
            next: Mutex::new(HashMap::new()),
            poisoned: AtomicBool::new(false),
            pool: Arc::downgrade(&pool),
        });
        assert_eq!((lease.take("t", 0, 5), lease.take("t", 0, 3), lease.take("t", 1, 2)), (0, 5, 0));
        drop(lease);
        assert_eq!(pool.free_ids(), 1, "returned");
        let state = pool.free.lock().expect("lock").pop().expect("state");
        assert_eq!((state.id, state.next.get(&("t".to_owned(), 0)).copied()), (7, Some(8)), "the next user continues the sequence");
        let poisoned =
            Lease { id: 8, epoch: 0, next: Mutex::new(HashMap::new()), poisoned: AtomicBool::new(false), pool: Arc::downgrade(&pool) };
        poisoned.poison();
        drop(poisoned);
        assert_eq!(pool.free_ids(), 0, "an id with a sequence gap is never reused");
    }
}

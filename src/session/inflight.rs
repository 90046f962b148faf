//! What the response side must do for each request, in request order, and the queue that carries
//! it there from the request side. Kafka answers requests on a connection in the order they were
//! sent, and so must the proxy, including for the responses it makes itself.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::handlers::{Disposition, Route};

/// Which API a request was and when it arrived, for the per-API latency and byte metrics.
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    pub api_key: i16,
    pub started: Instant,
}

#[derive(Debug)]
pub enum Pending {
    /// A request sent to the broker that will be answered.
    Expect { correlation_id: i32, api_version: i16, disposition: Disposition, meta: Meta },
    /// An acks=0 Produce forwarded unchanged: Apache Kafka sends no response, tansu does. If one
    /// comes, it is dropped.
    MaybeAnswered { correlation_id: i32 },
    /// A response the proxy made; sent when its turn comes.
    Local(Bytes, Meta),
    /// Close the client connection once everything before this has been sent.
    Close,
    /// The client has sent nothing for `requests::QUIET`: once everything before this is
    /// answered, the response side gives back the buffers it holds between frames.
    Quiet,
}

impl Pending {
    /// Splits a handler's route into the bytes to forward (if any) and what the response side
    /// must expect.
    pub fn of(route: Route, correlation_id: i32, api_version: i16, meta: Meta) -> (Option<Bytes>, Pending) {
        let expect = |disposition| Pending::Expect { correlation_id, api_version, disposition, meta };
        match route {
            Route::Forward(bytes, d) => (Some(bytes), expect(d)),
            Route::ForwardUnanswered(bytes) => (Some(bytes), Pending::MaybeAnswered { correlation_id }),
            Route::Answer(bytes) => (None, Pending::Local(bytes, meta)),
            // The session holds these before this point; one that reaches here is forwarded
            // upgraded and not held.
            Route::Hold(frame, template) => {
                let swallowed = crate::handlers::Swallowed { template: *template, held: None };
                (Some(frame.freeze()), expect(Disposition::Swallow(Box::new(swallowed))))
            }
            Route::Close => (None, Pending::Close),
        }
    }
}

/// The queue from the request side to the response side of one session: a bounded channel that
/// allocates nothing until the first request and gives its memory back when the connection goes
/// quiet (a tokio channel holds a block of 32 entries, 2.5 KiB, from its creation: most of what
/// an idle connection cost once its task was small). Both sides borrow it from the session.
pub struct Inbox {
    queue: Mutex<VecDeque<Pending>>,
    /// Something was queued, or the sender went away.
    pushed: Notify,
    /// The response side took what was queued: a full queue has room again.
    taken: Notify,
    max: usize,
    sender_gone: AtomicBool,
    receiver_gone: AtomicBool,
}

impl Inbox {
    /// Holds at most `max` entries the response side has not taken yet.
    pub fn new(max: usize) -> Inbox {
        Inbox {
            queue: Mutex::new(VecDeque::new()),
            pushed: Notify::new(),
            taken: Notify::new(),
            max: max.max(1),
            sender_gone: AtomicBool::new(false),
            receiver_gone: AtomicBool::new(false),
        }
    }

    pub fn split(&self) -> (Sender<'_>, Receiver<'_>) {
        (Sender(self), Receiver(self))
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Pending>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The request side's end; dropping it tells the response side that nothing more comes.
pub struct Sender<'a>(&'a Inbox);

impl Sender<'_> {
    /// Queues `p`, waiting while the queue is full; gives it back when the response side ended.
    pub async fn send(&self, p: Pending) -> Result<(), Pending> {
        loop {
            if self.0.receiver_gone.load(Ordering::Acquire) {
                return Err(p);
            }
            {
                let mut queue = self.0.lock();
                if queue.len() < self.0.max {
                    queue.push_back(p);
                    drop(queue);
                    self.0.pushed.notify_one();
                    return Ok(());
                }
            }
            // A take between the check and here left a permit: no wake-up is lost.
            self.0.taken.notified().await;
        }
    }

    /// Queues `p` if there is room and a response side; false otherwise.
    pub fn try_send(&self, p: Pending) -> bool {
        let mut queue = self.0.lock();
        if self.0.receiver_gone.load(Ordering::Acquire) || queue.len() >= self.0.max {
            return false;
        }
        queue.push_back(p);
        drop(queue);
        self.0.pushed.notify_one();
        true
    }
}

impl Drop for Sender<'_> {
    fn drop(&mut self) {
        self.0.sender_gone.store(true, Ordering::Release);
        self.0.pushed.notify_one();
    }
}

/// The response side's end; dropping it drops what is still queued (held requests go to the
/// re-sender) and makes every later send fail.
pub struct Receiver<'a>(&'a Inbox);

impl Receiver<'_> {
    /// The next entry; None once the sender has gone and everything queued was taken.
    /// Cancel-safe: an entry is only taken when it is returned.
    pub async fn recv(&self) -> Option<Pending> {
        loop {
            if let Some(p) = self.try_recv() {
                return Some(p);
            }
            if self.0.sender_gone.load(Ordering::Acquire) {
                return self.try_recv();
            }
            // A push between the check and here left a permit: no wake-up is lost.
            self.0.pushed.notified().await;
        }
    }

    pub fn try_recv(&self) -> Option<Pending> {
        let p = self.0.lock().pop_front();
        if p.is_some() {
            self.0.taken.notify_one();
        }
        p
    }

    /// Moves everything queued so far to the end of `into`, under one lock.
    pub fn take_into(&self, into: &mut VecDeque<Pending>) {
        let mut queue = self.0.lock();
        if !queue.is_empty() {
            into.extend(queue.drain(..));
            drop(queue);
            self.0.taken.notify_one();
        }
    }

    /// Gives back the queue's memory when it is empty (the connection went quiet).
    pub fn release(&self) {
        let mut queue = self.0.lock();
        if queue.is_empty() {
            *queue = VecDeque::new();
        }
    }
}

impl Drop for Receiver<'_> {
    fn drop(&mut self) {
        self.0.receiver_gone.store(true, Ordering::Release);
        let left = std::mem::take(&mut *self.0.lock());
        drop(left);
        self.0.taken.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn entry(corr: i32) -> Pending {
        Pending::MaybeAnswered { correlation_id: corr }
    }

    fn corr(p: Option<Pending>) -> Option<i32> {
        match p {
            Some(Pending::MaybeAnswered { correlation_id }) => Some(correlation_id),
            _ => None,
        }
    }

    #[tokio::test]
    async fn entries_arrive_in_order_and_the_end_is_seen_after_them() {
        let inbox = Inbox::new(8);
        let (tx, rx) = inbox.split();
        for c in 0..3 {
            tx.send(entry(c)).await.expect("room");
        }
        drop(tx);
        assert_eq!(corr(rx.recv().await), Some(0));
        let mut rest = VecDeque::new();
        rx.take_into(&mut rest);
        assert_eq!(rest.len(), 2);
        assert!(rx.recv().await.is_none(), "the sender has gone and nothing is left");
    }

    #[tokio::test]
    async fn a_full_queue_waits_for_the_response_side() {
        let inbox = Inbox::new(2);
        let (tx, rx) = inbox.split();
        tx.send(entry(0)).await.expect("room");
        assert!(tx.try_send(entry(1)));
        assert!(!tx.try_send(entry(9)), "full");
        let third = tx.send(entry(2));
        tokio::pin!(third);
        assert!(tokio::time::timeout(Duration::from_millis(20), &mut third).await.is_err(), "waits while full");
        assert_eq!(corr(rx.try_recv()), Some(0));
        tokio::time::timeout(Duration::from_secs(1), third).await.expect("woken by the take").expect("room");
        assert_eq!(corr(rx.recv().await), Some(1));
        assert_eq!(corr(rx.recv().await), Some(2));
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_by_a_send_and_by_the_end() {
        let inbox = Inbox::new(4);
        let (tx, rx) = inbox.split();
        let (got, ()) = tokio::join!(rx.recv(), async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            tx.send(entry(7)).await.expect("room");
        });
        assert_eq!(corr(got), Some(7));
        let (end, ()) = tokio::join!(rx.recv(), async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            drop(tx);
        });
        assert!(end.is_none());
    }

    #[tokio::test]
    async fn once_the_response_side_ends_what_was_queued_is_dropped_and_sends_fail() {
        let inbox = Inbox::new(4);
        let (tx, rx) = inbox.split();
        tx.send(entry(1)).await.expect("room");
        drop(rx);
        assert!(inbox.lock().is_empty(), "dropped with the receiver");
        assert!(tx.send(entry(2)).await.is_err());
        assert!(!tx.try_send(Pending::Quiet));
    }

    #[test]
    fn an_empty_queue_gives_its_memory_back() {
        let inbox = Inbox::new(64);
        let (tx, rx) = inbox.split();
        for c in 0..40 {
            assert!(tx.try_send(entry(c)));
        }
        let mut taken = VecDeque::new();
        rx.take_into(&mut taken);
        assert!(inbox.lock().capacity() >= 40);
        rx.release();
        assert_eq!(inbox.lock().capacity(), 0);
    }
}

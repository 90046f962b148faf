//! Series of the redelivery of upgraded acks=0 requests (`delivery`): what is held, what was
//! re-sent, what was finally given up, and what could not be held at all.

use super::family::{labels, Counter, Encoder, Gauge};

/// Why an upgraded acks=0 request was forwarded without being held for redelivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unheld {
    /// A batch is not a plain v2 batch without a producer id (old message format, already
    /// idempotent, transactional or control): the proxy cannot make a re-send safe.
    Unstampable,
    /// The cluster gave the proxy no producer id (InitProducerId failed).
    NoProducerId,
}

const UNHELD: [(Unheld, &str); 2] = [(Unheld::Unstampable, "unstampable"), (Unheld::NoProducerId, "no_producer_id")];

#[derive(Debug, Default)]
pub struct DeliveryMetrics {
    /// Requests held now, and their bytes.
    pub held_requests: Gauge,
    pub held_bytes: Gauge,
    /// Times a client connection was not read because its (or the global) budget was full.
    pub backpressure: Counter,
    /// Re-send attempts of one partition's records.
    pub retries: Counter,
    /// Records written by a re-send (the broker acknowledged them, or said it already had them).
    pub redelivered_records: Counter,
    /// Records given up (delivery timeout, non-retriable error, shutdown): each has an
    /// `undelivered` audit event.
    pub undelivered_records: Counter,
    /// New producer ids taken because the broker no longer knew the one a batch carried.
    pub reinits: Counter,
    unheld: [Counter; 2],
}

impl DeliveryMetrics {
    pub fn unheld(&self, why: Unheld) -> &Counter {
        let i = UNHELD.iter().position(|(u, _)| *u == why).unwrap_or(0);
        self.unheld.get(i).unwrap_or(&self.retries)
    }

    pub fn encode(&self, e: &mut Encoder) {
        let gauges: [(&str, &str, &Gauge); 2] = [
            ("kdp_redelivery_held_requests", "Upgraded acks=0 requests held until the broker acknowledges them.", &self.held_requests),
            ("kdp_redelivery_held_bytes", "Bytes of those requests (limits.redelivery_bytes_*).", &self.held_bytes),
        ];
        for (name, help, g) in gauges {
            e.single(name, "gauge", help, g.get());
        }
        let counters: [(&str, &str, &Counter); 5] = [
            (
                "kdp_redelivery_backpressure_total",
                "Times a client was not read because the redelivery budget was full.",
                &self.backpressure,
            ),
            ("kdp_redelivery_retries_total", "Re-sends of a held partition's records.", &self.retries),
            ("kdp_redelivery_reinits_total", "New producer ids taken because the broker lost the one a held batch carried.", &self.reinits),
            (
                "kdp_redelivered_records_total",
                "Records written by a re-send of the proxy (after a failure the client never saw).",
                &self.redelivered_records,
            ),
            (
                "kdp_undelivered_records_total",
                "Records the proxy gave up on (each in an `undelivered` audit event).",
                &self.undelivered_records,
            ),
        ];
        for (name, help, c) in counters {
            e.single(name, "counter", help, c.get());
        }
        e.family("kdp_redelivery_unheld_requests_total", "counter", "Upgraded acks=0 requests forwarded without being held, per reason.");
        for ((_, reason), c) in UNHELD.iter().zip(&self.unheld) {
            e.sample("kdp_redelivery_unheld_requests_total", &labels(&[("reason", reason)]), c.get());
        }
    }
}

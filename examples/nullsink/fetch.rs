//! Fetch from a fixed in-memory segment: one uncompressed v2 record batch of N records of SIZE
//! bytes, built once at start-up, served at whatever offset the consumer asks for. Only the
//! batch's baseOffset (bytes 0..8, outside the CRC, which covers bytes 21..end) differs per
//! response, so each response is a few small buffers around a shared slice of the batch: no copy
//! of the records and no per-record work. The response is written by hand for Fetch v4-v12
//! (topics by name; v12 is the first flexible version) because kafka-protocol's encoder would
//! copy the records into its buffer.

use crate::state::Sink;
use crate::walk::Topics;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_durability_proxy::protocol::records::{build_batch, ProducerStamp};

/// The newest Fetch version this encoder writes (v13 names topics by id).
pub const MAX_VERSION: i16 = 12;
/// Offsets reported as the log's end (high watermark, ListOffsets latest): far beyond anything
/// a benchmark reads, so consumers never wait at the end of the log.
pub const LOG_END: i64 = 1 << 40;

/// The batch every Fetch serves.
pub struct Segment {
    batch: Bytes,
    records: i64,
}

impl Segment {
    pub fn build(records: usize, size: usize) -> anyhow::Result<Segment> {
        let value = Bytes::from(vec![b'x'; size]);
        let values = vec![value; records.max(1)];
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        let batch = build_batch(&values, ProducerStamp::NONE, now)?;
        Ok(Segment { batch, records: values.len() as i64 })
    }

    pub fn records(&self) -> i64 {
        self.records
    }

    pub fn len(&self) -> usize {
        self.batch.len()
    }
}

/// A response under construction: owned small parts and shared slices of the segment, in order.
struct Parts {
    done: Vec<Bytes>,
    cur: BytesMut,
    flexible: bool,
}

impl Parts {
    fn len_array(&mut self, n: usize) {
        if self.flexible {
            put_uvarint(&mut self.cur, n as u32 + 1);
        } else {
            self.cur.put_i32(n as i32);
        }
    }

    fn string(&mut self, s: &[u8]) {
        if self.flexible {
            put_uvarint(&mut self.cur, s.len() as u32 + 1);
        } else {
            self.cur.put_i16(s.len() as i16);
        }
        self.cur.put_slice(s);
    }

    fn tags(&mut self) {
        if self.flexible {
            self.cur.put_u8(0);
        }
    }

    /// The records field: its length, the batch's baseOffset set to `offset`, then the rest of
    /// the batch as a shared slice.
    fn records(&mut self, segment: &Segment, offset: i64) {
        let len = segment.batch.len();
        if self.flexible {
            put_uvarint(&mut self.cur, len as u32 + 1);
        } else {
            self.cur.put_i32(len as i32);
        }
        self.cur.put_i64(offset);
        let small = std::mem::take(&mut self.cur);
        self.done.push(small.freeze());
        self.done.push(segment.batch.slice(8..));
    }

    /// The parts as one frame: the size prefix (reserved at the start) filled in.
    fn finish(mut self) -> Vec<Bytes> {
        if !self.cur.is_empty() {
            let last = std::mem::take(&mut self.cur);
            self.done.push(last.freeze());
        }
        let total: usize = self.done.iter().map(Bytes::len).sum();
        if let Some(first) = self.done.first_mut() {
            let mut head = BytesMut::from(&first[..]);
            if let Some(prefix) = head.get_mut(..4) {
                prefix.copy_from_slice(&((total - 4) as i32).to_be_bytes());
            }
            *first = head.freeze();
        }
        self.done
    }
}

fn put_uvarint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// The response to a Fetch (`version` 4..=12) for `topics`: every partition asked for gets the
/// segment at its fetch offset.
pub fn respond(sink: &Sink, topics: &Topics<'_, i64>, version: i16, correlation_id: i32) -> Vec<Bytes> {
    let flexible = version >= 12;
    let mut p = Parts { done: Vec::new(), cur: BytesMut::with_capacity(256), flexible };
    p.cur.put_i32(0); // size, filled in by finish
    p.cur.put_i32(correlation_id);
    p.tags(); // response header v1 from v12
    p.cur.put_i32(0); // throttle_time_ms
    if version >= 7 {
        p.cur.put_i16(0); // error_code
        p.cur.put_i32(0); // session_id: no fetch sessions
    }
    p.len_array(topics.len());
    let mut served = 0i64;
    for (topic, partitions) in topics {
        p.string(topic);
        p.len_array(partitions.len());
        for (index, offset) in partitions {
            partition(&mut p, sink, version, *index, *offset);
            served += 1;
        }
        p.tags();
    }
    p.tags();
    let stats = &sink.stats;
    stats.fetch_responses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    stats.fetch_records.fetch_add((served * sink.segment.records()) as u64, std::sync::atomic::Ordering::Relaxed);
    stats.fetch_bytes.fetch_add(served as u64 * sink.segment.len() as u64, std::sync::atomic::Ordering::Relaxed);
    p.finish()
}

fn partition(p: &mut Parts, sink: &Sink, version: i16, index: i32, offset: i64) {
    p.cur.put_i32(index);
    p.cur.put_i16(0); // error_code
    p.cur.put_i64(LOG_END); // high_watermark
    p.cur.put_i64(LOG_END); // last_stable_offset (v4+)
    if version >= 5 {
        p.cur.put_i64(0); // log_start_offset
    }
    p.len_array(0); // aborted_transactions: none
    if version >= 11 {
        p.cur.put_i32(-1); // preferred_read_replica
    }
    p.records(&sink.segment, offset.max(0));
    p.tags();
}

//! Making an upgraded acks=0 Produce safe to re-send: find every partition's record set in the
//! frame, check that each batch is a plain v2 batch without a producer id, and stamp the
//! proxy's producer id, epoch and contiguous per-partition base sequences into the batch
//! headers in place (CRC-32C recomputed). A broker then keeps one copy of a batch sent twice.

use std::ops::Range;

use crate::protocol::batch::{batch_starts, partition_records};
use crate::protocol::records::{self, ProducerStamp, RecordsError};
use crate::protocol::{peek_produce, RequestHeader};

/// One partition's records in a held request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    pub topic: String,
    pub partition: i32,
    /// The record set's bytes within the frame.
    pub range: Range<usize>,
    /// Each batch's offset within the record set and its record count.
    pub batches: Vec<(usize, i32)>,
    pub records: i64,
}

/// Why a request cannot be held.
#[derive(Debug, PartialEq, Eq)]
pub enum Unplanned {
    Malformed,
    /// A batch the proxy must not stamp (old format, producer id already set, transactional,
    /// control, empty) or a record set that is not whole batches.
    Unstampable,
}

/// Every partition of a Produce request, when all of its batches can be stamped.
pub fn plan(frame: &[u8], header: &RequestHeader) -> Result<Vec<Planned>, Unplanned> {
    let head = peek_produce(frame, header).ok_or(Unplanned::Malformed)?;
    let parts = partition_records(frame, header, &head).ok_or(Unplanned::Malformed)?;
    parts
        .into_iter()
        .map(|p| {
            let set = frame.get(p.range.clone()).ok_or(Unplanned::Malformed)?;
            let batches = batch_starts(set);
            let covered: usize = batches.iter().map(|b| b.len).sum();
            if set.is_empty() || covered != set.len() || batches.iter().any(|b| !b.stampable) {
                return Err(Unplanned::Unstampable);
            }
            let records = batches.iter().map(|b| i64::from(b.count)).sum();
            let batches = batches.iter().map(|b| (b.at, b.count)).collect();
            Ok(Planned { topic: p.topic, partition: p.summary.partition, range: p.range, batches, records })
        })
        .collect()
}

/// Stamps the batches of one record set (`set`, as planned) with producer `id`/`epoch`, each
/// batch's base sequence from `take(count)` in order.
pub fn stamp_set(
    set: &mut [u8],
    batches: &[(usize, i32)],
    id: i64,
    epoch: i16,
    mut take: impl FnMut(i32) -> i32,
) -> Result<(), RecordsError> {
    for (at, count) in batches {
        let batch = set.get_mut(*at..).ok_or(RecordsError::Short { len: 0 })?;
        records::stamp(batch, ProducerStamp { producer_id: id, producer_epoch: epoch, base_sequence: take(*count) })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::peek_request_header;
    use bytes::{BufMut, Bytes, BytesMut};

    fn batch(n: usize) -> Bytes {
        let values: Vec<Bytes> = (0..n).map(|i| Bytes::from(format!("v{i}"))).collect();
        records::build_batch(&values, ProducerStamp::NONE, 1_700_000_000_000).expect("batch")
    }

    /// A Produce v7 frame (non-flexible) with one record set per (topic, partition).
    fn produce(sets: &[(&str, i32, Vec<u8>)]) -> BytesMut {
        let mut b = BytesMut::new();
        b.put_i32(0);
        b.put_i16(0); // Produce
        b.put_i16(7);
        b.put_i32(42);
        b.put_i16(3);
        b.put_slice(b"app");
        b.put_i16(-1); // transactional id
        b.put_i16(-1); // acks (already upgraded)
        b.put_i32(30_000);
        b.put_i32(sets.len() as i32);
        for (topic, partition, records) in sets {
            b.put_i16(topic.len() as i16);
            b.put_slice(topic.as_bytes());
            b.put_i32(1);
            b.put_i32(*partition);
            b.put_i32(records.len() as i32);
            b.put_slice(records);
        }
        let len = (b.len() - 4) as i32;
        b[..4].copy_from_slice(&len.to_be_bytes());
        b
    }

    #[test]
    fn stamped_batches_carry_contiguous_sequences_and_valid_crcs() {
        let two: Vec<u8> = [batch(3), batch(2)].concat();
        let mut frame = produce(&[("a", 0, two), ("b", 1, batch(4).to_vec())]);
        let header = peek_request_header(&frame).expect("header");
        let parts = plan(&frame, &header).expect("plan");
        assert_eq!(
            parts.iter().map(|p| (p.topic.as_str(), p.partition, p.records, p.batches.len())).collect::<Vec<_>>(),
            [("a", 0, 5, 2), ("b", 1, 4, 1)]
        );
        let mut next = 10;
        for p in &parts {
            let set = &mut frame[p.range.clone()];
            stamp_set(set, &p.batches, 77, 3, |n| {
                let base = next;
                next += n;
                base
            })
            .expect("stamp");
        }
        let a = &frame[parts[0].range.clone()];
        let first = records::read_stamp(a).expect("stamp");
        assert_eq!((first.producer_id, first.producer_epoch, first.base_sequence), (77, 3, 10));
        let second_at = parts[0].batches[1].0;
        assert_eq!(records::read_stamp(&a[second_at..]).expect("stamp").base_sequence, 13, "the second batch continues the sequence");
        assert!(records::crc_matches(a).expect("crc") && records::crc_matches(&a[second_at..]).expect("crc"));
        let b = &frame[parts[1].range.clone()];
        assert_eq!(records::read_stamp(b).expect("stamp").base_sequence, 15);
        assert!(records::crc_matches(b).expect("crc"), "the CRC of a stamped batch verifies");
    }

    #[test]
    fn requests_the_proxy_must_not_stamp_are_not_planned() {
        let stamped =
            records::build_batch(&[Bytes::from_static(b"x")], ProducerStamp { producer_id: 5, producer_epoch: 0, base_sequence: 0 }, 0)
                .expect("batch");
        let mut transactional = batch(1).to_vec();
        transactional[22] |= 0x10; // attributes low byte: transactional
        let truncated = batch(2)[..40].to_vec();
        let mut trailing = batch(1).to_vec();
        trailing.extend_from_slice(&[0, 0, 0]);
        for (why, set) in [
            ("idempotent", stamped.to_vec()),
            ("transactional", transactional),
            ("truncated", truncated),
            ("trailing", trailing),
            ("empty", vec![]),
        ] {
            let frame = produce(&[("ok", 0, batch(1).to_vec()), ("t", 0, set)]);
            let header = peek_request_header(&frame).expect("header");
            assert_eq!(plan(&frame, &header), Err(Unplanned::Unstampable), "{why}");
        }
    }
}

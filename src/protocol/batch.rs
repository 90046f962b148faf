//! Record batch headers read in place, without decompressing or copying a record: each
//! partition's first batch in a Produce request says whether the producer is idempotent
//! (producerId), transactional or a control batch, and how many records the batches carry.
//! Layout of RecordBatch v2 (offsets from the batch start): baseOffset i64 @0, batchLength i32
//! @8, partitionLeaderEpoch i32 @12, magic i8 @16, crc u32 @17, attributes i16 @21,
//! lastOffsetDelta i32 @23, baseTimestamp i64 @27, maxTimestamp i64 @35, producerId i64 @43,
//! producerEpoch i16 @51, baseSequence i32 @53, recordCount i32 @57. Legacy message sets (magic
//! 0 and 1) keep magic at byte 16 too and carry no producer id.

use super::cursor::Cursor;
use super::header::RequestHeader;
use super::produce::{produce_is_flexible, ProduceHead};

pub const MAGIC_OFFSET: usize = 16;
pub const ATTRIBUTES_OFFSET: usize = 21;
pub const PRODUCER_ID_OFFSET: usize = 43;
pub const RECORD_COUNT_OFFSET: usize = 57;
/// Bytes of a v2 batch header (records follow).
pub const V2_HEADER_LEN: usize = 61;

const TRANSACTIONAL: i16 = 0x10;
const CONTROL: i16 = 0x20;

/// What one partition's records say about their producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub partition: i32,
    /// Magic of the first batch (2 for record batches, 0/1 for legacy message sets).
    pub magic: i8,
    /// The first batch's producer id; -1 when not idempotent (and always for magic 0/1).
    pub producer_id: i64,
    pub transactional: bool,
    pub control: bool,
    /// Records in all the partition's batches (v2); for legacy message sets, the messages.
    pub records: i64,
}

impl Summary {
    pub fn idempotent(&self) -> bool {
        self.magic >= 2 && self.producer_id >= 0
    }
}

/// A partition's summary with its topic (name, or topic id as hex from v13).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionBatches {
    pub topic: String,
    pub summary: Summary,
}

/// Where one partition's record set sits in a Produce frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionRecords {
    pub topic: String,
    pub summary: Summary,
    /// Byte range of the record set (its batches, back to back) within the frame.
    pub range: std::ops::Range<usize>,
}

/// Every partition's record set of a Produce request, with its position in the frame (what
/// in-place stamping and re-sending need).
pub fn partition_records(frame: &[u8], header: &RequestHeader, head: &ProduceHead) -> Option<Vec<PartitionRecords>> {
    let version = header.api_version;
    let flexible = produce_is_flexible(version);
    let mut c = Cursor::at(frame, head.acks_offset.checked_add(2)?);
    c.i32()?; // timeout_ms
    let mut out = Vec::new();
    for _ in 0..c.bounded_array_len_v(flexible)? {
        let raw = if version >= 13 { c.bytes(16)? } else { c.string_v(flexible)?.unwrap_or_default() };
        let topic: String =
            if version >= 13 { raw.iter().map(|b| format!("{b:02x}")).collect() } else { String::from_utf8_lossy(raw).into_owned() };
        for _ in 0..c.bounded_array_len_v(flexible)? {
            let partition = c.i32()?;
            let records = records_v(&mut c, flexible)?.unwrap_or_default();
            let end = c.pos();
            out.push(PartitionRecords { topic: topic.clone(), summary: summarise(partition, records), range: end - records.len()..end });
            if flexible {
                c.skip_tagged_fields()?;
            }
        }
        if flexible {
            c.skip_tagged_fields()?;
        }
    }
    Some(out)
}

/// One batch within a record set: where it starts, how long it is, how many records it holds,
/// and whether the proxy may stamp a producer id into it (a plain v2 batch without one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchAt {
    pub at: usize,
    pub len: usize,
    pub count: i32,
    pub stampable: bool,
}

/// The batches of a record set, back to back, up to the first that does not fit.
pub fn batch_starts(records: &[u8]) -> Vec<BatchAt> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(batch) = records.get(at..).filter(|b| !b.is_empty()) {
        let mut c = Cursor::new(batch);
        let (Some(_), Some(len)) = (c.i64(), c.i32()) else { break };
        let Some(total) = usize::try_from(len).ok().and_then(|l| l.checked_add(12)).filter(|t| *t >= V2_HEADER_LEN && *t <= batch.len())
        else {
            break;
        };
        let magic = Cursor::at(batch, MAGIC_OFFSET).i8().unwrap_or(-1);
        let attributes = Cursor::at(batch, ATTRIBUTES_OFFSET).i16().unwrap_or(0);
        let pid = Cursor::at(batch, PRODUCER_ID_OFFSET).i64().unwrap_or(0);
        let count = Cursor::at(batch, RECORD_COUNT_OFFSET).i32().unwrap_or(0);
        let stampable = magic == 2 && pid == -1 && count > 0 && attributes & (TRANSACTIONAL | CONTROL) == 0;
        out.push(BatchAt { at, len: total, count, stampable });
        at += total;
    }
    out
}

/// Calls `f(topic bytes, summary)` for every partition of a Produce request (topic bytes are the
/// name, or the 16-byte id from v13); allocates nothing. None when the request is malformed.
pub fn for_each_partition(frame: &[u8], header: &RequestHeader, head: &ProduceHead, mut f: impl FnMut(&[u8], Summary)) -> Option<()> {
    let version = header.api_version;
    let flexible = produce_is_flexible(version);
    let mut c = Cursor::at(frame, head.acks_offset.checked_add(2)?);
    c.i32()?; // timeout_ms
    for _ in 0..c.bounded_array_len_v(flexible)? {
        let topic = if version >= 13 { c.bytes(16)? } else { c.string_v(flexible)?.unwrap_or_default() };
        for _ in 0..c.bounded_array_len_v(flexible)? {
            let partition = c.i32()?;
            let records = records_v(&mut c, flexible)?;
            f(topic, summarise(partition, records.unwrap_or_default()));
            if flexible {
                c.skip_tagged_fields()?;
            }
        }
        if flexible {
            c.skip_tagged_fields()?;
        }
    }
    Some(())
}

/// Whether every data batch of the request carries a producer id (control batches aside).
pub fn all_idempotent(frame: &[u8], header: &RequestHeader, head: &ProduceHead) -> Option<bool> {
    let mut all = true;
    for_each_partition(frame, header, head, |_, s| all &= s.control || s.idempotent())?;
    Some(all)
}

/// Every partition's summary, with topic names (allocates: for requests worth reporting).
pub fn produce_batches(frame: &[u8], header: &RequestHeader, head: &ProduceHead) -> Option<Vec<PartitionBatches>> {
    let v13 = header.api_version >= 13;
    let mut out = Vec::new();
    for_each_partition(frame, header, head, |t, summary| {
        let topic = if v13 { t.iter().map(|b| format!("{b:02x}")).collect() } else { String::from_utf8_lossy(t).into_owned() };
        out.push(PartitionBatches { topic, summary });
    })?;
    Some(out)
}

/// The records field (nullable bytes) as a slice.
fn records_v<'a>(c: &mut Cursor<'a>, flexible: bool) -> Option<Option<&'a [u8]>> {
    let len = if flexible {
        c.compact_len()?
    } else {
        match c.i32()? {
            -1 => None,
            n => Some(usize::try_from(n).ok()?),
        }
    };
    match len {
        None => Some(None),
        Some(n) => c.bytes(n).map(Some),
    }
}

/// Reads the headers of the batches in `records` (a partition's record set).
fn summarise(partition: i32, records: &[u8]) -> Summary {
    let mut s = Summary { partition, magic: -1, producer_id: -1, transactional: false, control: false, records: 0 };
    let mut at = 0usize;
    while let Some(batch) = records.get(at..) {
        let mut c = Cursor::new(batch);
        let (Some(_), Some(len)) = (c.i64(), c.i32()) else { break };
        let Some(total) = usize::try_from(len).ok().and_then(|l| l.checked_add(12)) else { break };
        let magic = Cursor::at(batch, MAGIC_OFFSET).i8().unwrap_or(-1);
        if s.magic == -1 {
            s.magic = magic;
            if magic >= 2 {
                let attributes = Cursor::at(batch, ATTRIBUTES_OFFSET).i16().unwrap_or(0);
                s.producer_id = Cursor::at(batch, PRODUCER_ID_OFFSET).i64().unwrap_or(-1);
                s.transactional = attributes & TRANSACTIONAL != 0;
                s.control = attributes & CONTROL != 0;
            }
        }
        s.records += if magic >= 2 { i64::from(Cursor::at(batch, RECORD_COUNT_OFFSET).i32().unwrap_or(0).max(0)) } else { 1 };
        at = at.saturating_add(total);
        if total == 12 {
            break;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v2 batch header with `count` records and the given producer id and attributes; the
    /// record bytes themselves are left empty (nothing here reads them).
    pub fn batch(producer_id: i64, attributes: i16, count: i32) -> Vec<u8> {
        let mut b = vec![0u8; V2_HEADER_LEN];
        let len = (V2_HEADER_LEN - 12) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        b[MAGIC_OFFSET] = 2;
        b[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
        b[PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 8].copy_from_slice(&producer_id.to_be_bytes());
        b[RECORD_COUNT_OFFSET..RECORD_COUNT_OFFSET + 4].copy_from_slice(&count.to_be_bytes());
        b
    }

    #[test]
    fn batch_headers_say_who_produced_and_how_many() {
        let cases: &[(Vec<u8>, i64, bool, bool, i64)] = &[
            (batch(-1, 0, 3), -1, false, false, 3),
            (batch(7, 0, 5), 7, false, false, 5),
            (batch(7, TRANSACTIONAL, 1), 7, true, false, 1),
            (batch(7, TRANSACTIONAL | CONTROL, 1), 7, true, true, 1),
            ([batch(-1, 0, 2), batch(-1, 0, 4)].concat(), -1, false, false, 6),
        ];
        for (records, pid, txn, control, n) in cases {
            let s = summarise(0, records);
            assert_eq!((s.producer_id, s.transactional, s.control, s.records, s.magic), (*pid, *txn, *control, *n, 2), "{records:?}");
        }
        let legacy = {
            let mut b = vec![0u8; 34];
            b[8..12].copy_from_slice(&22i32.to_be_bytes());
            b[MAGIC_OFFSET] = 1;
            b
        };
        let s = summarise(0, &legacy);
        assert_eq!((s.magic, s.producer_id, s.records, s.idempotent()), (1, -1, 1, false));
        assert_eq!(summarise(0, &[0, 1, 2]).records, 0, "short input: nothing, no panic");
    }
}

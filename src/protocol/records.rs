//! Record batches (v2) the proxy writes itself, uncompressed, and stamping a batch with an
//! idempotent producer's id, epoch and base sequence (the CRC-32C recomputed). Offsets are
//! those of the v2 header: baseOffset @0, batchLength @8, magic @16, crc @17 over 21..end,
//! producerId @43, producerEpoch @51, baseSequence @53, recordCount @57, records @61.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

pub use super::batch::{MAGIC_OFFSET, PRODUCER_ID_OFFSET, RECORD_COUNT_OFFSET, V2_HEADER_LEN as HEADER_LEN};

pub const BATCH_LENGTH_OFFSET: usize = 8;
pub const CRC_OFFSET: usize = 17;
/// The CRC covers the batch from the attributes to its end.
pub const CRC_FROM: usize = super::batch::ATTRIBUTES_OFFSET;
pub const PRODUCER_EPOCH_OFFSET: usize = 51;
pub const BASE_SEQUENCE_OFFSET: usize = 53;
/// baseOffset and batchLength precede what batchLength counts.
const LOG_OVERHEAD: usize = 12;

/// Why a buffer is not a batch this module can work on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordsError {
    #[error("record batch of {len} bytes is shorter than the {HEADER_LEN}-byte v2 header")]
    Short { len: usize },
    #[error("record batch has magic {magic}: only v2 batches carry a producer id")]
    Magic { magic: i8 },
    #[error("record batch says it is {declared} bytes but the buffer holds {available}")]
    Length { declared: i64, available: usize },
    #[error("a record batch needs at least one record")]
    Empty,
    #[error("record batch could not be encoded: {0}")]
    Encode(String),
}

/// An idempotent producer's identity and the sequence of a batch's first record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerStamp {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl ProducerStamp {
    /// No producer: a batch that is not idempotent.
    pub const NONE: ProducerStamp = ProducerStamp { producer_id: -1, producer_epoch: -1, base_sequence: -1 };
}

/// One uncompressed v2 batch with a record per value (no key, no headers), every record
/// timestamped `timestamp_ms` (create time), stamped with `stamp`.
pub fn build_batch(values: &[Bytes], stamp: ProducerStamp, timestamp_ms: i64) -> Result<Bytes, RecordsError> {
    if values.is_empty() {
        return Err(RecordsError::Empty);
    }
    let records: Vec<Record> = values
        .iter()
        .zip(0i64..)
        .map(|(v, i)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: stamp.producer_id,
            producer_epoch: stamp.producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i,
            // The encoder keeps records in one batch while offset - sequence stays constant.
            sequence: stamp.base_sequence.wrapping_add(i as i32),
            timestamp: timestamp_ms,
            key: None,
            value: Some(v.clone()),
            headers: Default::default(),
        })
        .collect();
    let size: usize = values.iter().map(|v| v.len() + 16).sum::<usize>() + HEADER_LEN;
    let mut buf = BytesMut::with_capacity(size);
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut buf, &records, &options).map_err(|e| RecordsError::Encode(e.to_string()))?;
    Ok(buf.freeze())
}

/// Length of the v2 batch at the start of `buf` (header checked), so a caller can walk on.
pub fn batch_len(buf: &[u8]) -> Result<usize, RecordsError> {
    let short = || RecordsError::Short { len: buf.len() };
    if buf.len() < HEADER_LEN {
        return Err(short());
    }
    let magic = buf.get(MAGIC_OFFSET).map(|b| *b as i8).ok_or_else(short)?;
    if magic != 2 {
        return Err(RecordsError::Magic { magic });
    }
    let declared = i64::from(i32::from_be_bytes(array(buf, BATCH_LENGTH_OFFSET).ok_or_else(short)?));
    let len = usize::try_from(declared).ok().and_then(|d| d.checked_add(LOG_OVERHEAD));
    match len {
        Some(len) if len >= HEADER_LEN && len <= buf.len() => Ok(len),
        _ => Err(RecordsError::Length { declared, available: buf.len() }),
    }
}

/// Writes `stamp` into the v2 batch at the start of `buf` (producerId @43, producerEpoch @51,
/// baseSequence @53) and recomputes its CRC-32C @17 over bytes 21..end of the batch. Returns
/// the batch's length; bytes after it (further batches) are left alone.
pub fn stamp(buf: &mut [u8], stamp: ProducerStamp) -> Result<usize, RecordsError> {
    let len = batch_len(buf)?;
    let fields: [(usize, &[u8]); 3] = [
        (PRODUCER_ID_OFFSET, &stamp.producer_id.to_be_bytes()),
        (PRODUCER_EPOCH_OFFSET, &stamp.producer_epoch.to_be_bytes()),
        (BASE_SEQUENCE_OFFSET, &stamp.base_sequence.to_be_bytes()),
    ];
    for (at, bytes) in fields {
        put(buf, at, bytes)?;
    }
    let crc = crc32c::crc32c(buf.get(CRC_FROM..len).ok_or(RecordsError::Short { len })?);
    put(buf, CRC_OFFSET, &crc.to_be_bytes())?;
    Ok(len)
}

/// Whether the CRC of the batch at the start of `buf` matches its bytes.
pub fn crc_matches(buf: &[u8]) -> Result<bool, RecordsError> {
    let len = batch_len(buf)?;
    let stored = array(buf, CRC_OFFSET).map(u32::from_be_bytes);
    Ok(stored == buf.get(CRC_FROM..len).map(crc32c::crc32c))
}

/// The producer stamp of the batch at the start of `buf`.
pub fn read_stamp(buf: &[u8]) -> Result<ProducerStamp, RecordsError> {
    batch_len(buf)?;
    let short = || RecordsError::Short { len: buf.len() };
    Ok(ProducerStamp {
        producer_id: i64::from_be_bytes(array(buf, PRODUCER_ID_OFFSET).ok_or_else(short)?),
        producer_epoch: i16::from_be_bytes(array(buf, PRODUCER_EPOCH_OFFSET).ok_or_else(short)?),
        base_sequence: i32::from_be_bytes(array(buf, BASE_SEQUENCE_OFFSET).ok_or_else(short)?),
    })
}

/// The sequence after `count` records from `base`, wrapping to 0 past i32::MAX as Kafka does.
pub fn next_sequence(base: i32, count: i32) -> i32 {
    let next = i64::from(base) + i64::from(count);
    i32::try_from(next % (i64::from(i32::MAX) + 1)).unwrap_or(0)
}

fn array<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) -> Result<(), RecordsError> {
    let len = buf.len();
    let end = at.checked_add(bytes.len()).ok_or(RecordsError::Short { len })?;
    buf.get_mut(at..end).ok_or(RecordsError::Short { len })?.copy_from_slice(bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::RecordBatchDecoder;

    fn values(n: usize) -> Vec<Bytes> {
        (0..n).map(|i| Bytes::from(format!("{{\"line\":{i}}}"))).collect()
    }

    fn decode(batch: &[u8]) -> kafka_protocol::records::RecordSet {
        RecordBatchDecoder::decode(&mut Bytes::copy_from_slice(batch)).expect("decoder accepts the batch (CRC included)")
    }

    #[test]
    fn built_batch_decodes_with_producer_fields_and_values() {
        let stamp = ProducerStamp { producer_id: 4242, producer_epoch: 3, base_sequence: 17 };
        let batch = build_batch(&values(5), stamp, 1_700_000_000_000).expect("build");
        assert_eq!(batch_len(&batch), Ok(batch.len()));
        assert_eq!(crc_matches(&batch), Ok(true));
        assert_eq!(read_stamp(&batch), Ok(stamp));
        let set = decode(&batch);
        assert_eq!(set.compression, Compression::None);
        assert_eq!(set.records.len(), 5);
        for (i, r) in set.records.iter().enumerate() {
            assert_eq!((r.producer_id, r.producer_epoch, r.sequence), (4242, 3, 17 + i as i32));
            assert_eq!((r.offset, r.timestamp, r.key.as_ref()), (i as i64, 1_700_000_000_000, None));
            assert_eq!(r.value.as_deref(), Some(format!("{{\"line\":{i}}}").as_bytes()));
            assert!(r.headers.is_empty() && !r.transactional && !r.control);
        }
        assert_eq!(build_batch(&[], stamp, 0), Err(RecordsError::Empty));
    }

    #[test]
    fn stamping_rewrites_the_producer_and_the_crc_still_verifies() {
        let mut batch = build_batch(&values(3), ProducerStamp::NONE, 5).expect("build").to_vec();
        let before = batch.clone();
        let new = ProducerStamp { producer_id: 0x0102_0304_0506_0708, producer_epoch: 9, base_sequence: 1000 };
        assert_eq!(stamp(&mut batch, new), Ok(batch.len()));
        assert_eq!(crc_matches(&batch), Ok(true));
        assert_ne!(batch.get(CRC_OFFSET..CRC_FROM), before.get(CRC_OFFSET..CRC_FROM), "the CRC was recomputed");
        assert_eq!(batch.get(43..51), Some(&0x0102_0304_0506_0708i64.to_be_bytes()[..]));
        assert_eq!(batch.get(51..53), Some(&9i16.to_be_bytes()[..]));
        assert_eq!(batch.get(53..57), Some(&1000i32.to_be_bytes()[..]));
        assert_eq!(batch.get(HEADER_LEN..), before.get(HEADER_LEN..), "records untouched");
        let set = decode(&batch);
        let got: Vec<_> = set.records.iter().map(|r| (r.producer_id, r.producer_epoch, r.sequence)).collect();
        assert_eq!(got, vec![(new.producer_id, 9, 1000), (new.producer_id, 9, 1001), (new.producer_id, 9, 1002)]);
        assert_eq!(set.records.first().and_then(|r| r.value.clone()), Some(Bytes::from("{\"line\":0}")));
    }

    #[test]
    fn stamping_touches_only_the_first_of_several_batches() {
        let first = build_batch(&values(2), ProducerStamp::NONE, 1).expect("build");
        let second = build_batch(&values(1), ProducerStamp::NONE, 2).expect("build");
        let mut buf = [first.to_vec(), second.to_vec()].concat();
        let s = ProducerStamp { producer_id: 7, producer_epoch: 0, base_sequence: 0 };
        let len = stamp(&mut buf, s).expect("stamp");
        assert_eq!(len, first.len());
        assert_eq!(buf.get(len..), Some(&second[..]));
        let (a, b) = buf.split_at_mut(len);
        assert_eq!(crc_matches(a), Ok(true));
        stamp(b, ProducerStamp { base_sequence: 2, ..s }).expect("stamp second");
        let sets = RecordBatchDecoder::decode_all(&mut Bytes::from(buf)).expect("decode both");
        let seqs: Vec<i32> = sets.iter().flat_map(|s| s.records.iter().map(|r| r.sequence)).collect();
        assert_eq!(seqs, vec![0, 1, 2]);
    }

    #[test]
    fn a_corrupted_batch_fails_the_crc_and_bad_headers_are_refused() {
        let mut batch = build_batch(&values(2), ProducerStamp::NONE, 1).expect("build").to_vec();
        if let Some(b) = batch.last_mut() {
            *b ^= 0xff;
        }
        assert_eq!(crc_matches(&batch), Ok(false));
        assert!(RecordBatchDecoder::decode(&mut Bytes::from(batch.clone())).is_err(), "the decoder sees the corruption");
        assert_eq!(stamp(&mut batch[..40], ProducerStamp::NONE), Err(RecordsError::Short { len: 40 }));
        let mut v1 = batch.clone();
        v1[MAGIC_OFFSET] = 1;
        assert_eq!(stamp(&mut v1, ProducerStamp::NONE), Err(RecordsError::Magic { magic: 1 }));
        let declared = batch.len() as i64 - 12;
        let truncated = batch.len() - 1;
        assert_eq!(stamp(&mut batch[..truncated], ProducerStamp::NONE), Err(RecordsError::Length { declared, available: truncated }));
    }

    #[test]
    fn sequences_wrap_to_zero_as_kafka_does() {
        assert_eq!(next_sequence(0, 5), 5);
        assert_eq!(next_sequence(i32::MAX - 1, 1), i32::MAX);
        assert_eq!(next_sequence(i32::MAX - 1, 2), 0);
        assert_eq!(next_sequence(i32::MAX, 10), 9);
    }
}

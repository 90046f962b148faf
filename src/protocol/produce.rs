//! Produce requests on the raw bytes: where acks sits in every version 0-13 (after the optional
//! transactional id), the in-place acks patch, and the topics and partitions a request writes,
//! found by skipping record bytes by their length.

use super::cursor::Cursor;
use super::header::RequestHeader;

/// Produce v9 and later use compact encodings.
pub fn produce_is_flexible(version: i16) -> bool {
    version >= 9
}

/// The fields of a Produce request the acks policy needs, found by walking the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProduceHead {
    pub acks: i16,
    /// Offset of the two acks bytes in the frame.
    pub acks_offset: usize,
    pub transactional: bool,
}

/// Locates acks (and whether the request is transactional) in a Produce frame, any version.
pub fn peek_produce(frame: &[u8], header: &RequestHeader) -> Option<ProduceHead> {
    let mut c = Cursor::at(frame, header.body_offset?);
    let transactional = if header.api_version >= 3 { c.string_v(produce_is_flexible(header.api_version))?.is_some() } else { false };
    let acks_offset = c.pos();
    let acks = c.i16()?;
    Some(ProduceHead { acks, acks_offset, transactional })
}

/// Overwrites acks in place. Acks is covered by no CRC and changes no length.
pub fn patch_acks(frame: &mut [u8], head: &ProduceHead, acks: i16) -> Option<()> {
    let end = head.acks_offset.checked_add(2)?;
    frame.get_mut(head.acks_offset..end)?.copy_from_slice(&acks.to_be_bytes());
    Some(())
}

/// A topic named in a Produce request and the partitions written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProduceTopic {
    /// Topic name; for v13+ (topic ids) the id rendered as hex.
    pub name: String,
    pub partitions: Vec<i32>,
}

/// Walks a Produce body to list topics and partitions, skipping record bytes by length.
pub fn produce_topics(frame: &[u8], header: &RequestHeader, head: &ProduceHead) -> Option<Vec<ProduceTopic>> {
    let version = header.api_version;
    let flexible = produce_is_flexible(version);
    let mut c = Cursor::at(frame, head.acks_offset.checked_add(2)?);
    c.i32()?; // timeout_ms
    let n_topics = c.bounded_array_len_v(flexible)?;
    let mut topics = Vec::new();
    for _ in 0..n_topics {
        let name = if version >= 13 {
            c.bytes(16)?.iter().map(|b| format!("{b:02x}")).collect()
        } else {
            String::from_utf8_lossy(c.string_v(flexible)?.unwrap_or_default()).into_owned()
        };
        let n_parts = c.bounded_array_len_v(flexible)?;
        let mut partitions = Vec::new();
        for _ in 0..n_parts {
            partitions.push(c.i32()?);
            c.skip_bytes_v(flexible)?;
            if flexible {
                c.skip_tagged_fields()?;
            }
        }
        if flexible {
            c.skip_tagged_fields()?;
        }
        topics.push(ProduceTopic { name, partitions });
    }
    Some(topics)
}

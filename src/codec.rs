//! Kafka frames: length-prefixed splitting with a size cap, request-header peeking and the
//! Produce acks patch, all on the raw bytes (no allocation, no decode of record batches).
//!
//! A frame is kept *with* its 4-byte size prefix so that forwarding it unchanged is a single
//! write of the buffer that was read.

use bytes::BytesMut;
use kafka_protocol::messages::ApiKey;

use crate::wire::Cursor;

/// Bytes of the size prefix.
pub const SIZE_LEN: usize = 4;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("negative frame size {0}")]
    Negative(i32),
    #[error("bytes look like a TLS handshake on a plaintext Kafka port (configure TLS on the client or use the right port)")]
    LooksLikeTls,
    #[error("bytes look like HTTP on a Kafka port")]
    LooksLikeHttp,
}

/// Takes one whole frame off the front of `buf`, if one is there; on a partial frame it reserves
/// room for the rest so the next read fills it without reallocating repeatedly.
pub fn split_frame(buf: &mut BytesMut, max: usize) -> Result<Option<BytesMut>, FrameError> {
    let Some(raw) = buf.get(..SIZE_LEN).and_then(|p| <[u8; SIZE_LEN]>::try_from(p).ok()) else {
        return Ok(None);
    };
    if raw[0] == 0x16 && raw[1] == 0x03 {
        return Err(FrameError::LooksLikeTls);
    }
    if matches!(&raw, b"GET " | b"POST" | b"PUT " | b"HEAD") {
        return Err(FrameError::LooksLikeHttp);
    }
    let size = i32::from_be_bytes(raw);
    if size < 0 {
        return Err(FrameError::Negative(size));
    }
    let size = size as usize;
    if size > max {
        return Err(FrameError::TooLarge { size, max });
    }
    let total = SIZE_LEN + size;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    Ok(Some(buf.split_to(total)))
}

/// What the proxy needs from a request header, located without copying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    /// Byte range of client_id inside the frame; `None` when the client sent null.
    pub client_id: Option<(usize, usize)>,
    /// Offset in the frame where the body starts; `None` for API keys the proxy does not know
    /// (their header version, and so the end of the header, is unknown).
    pub body_offset: Option<usize>,
}

impl RequestHeader {
    pub fn client_id<'a>(&self, frame: &'a [u8]) -> Option<&'a str> {
        let (start, end) = self.client_id?;
        std::str::from_utf8(frame.get(start..end)?).ok()
    }

    pub fn known_api(&self) -> Option<ApiKey> {
        ApiKey::try_from(self.api_key).ok()
    }
}

/// Reads the request header from a frame (size prefix included).
pub fn peek_request_header(frame: &[u8]) -> Option<RequestHeader> {
    let mut c = Cursor::at(frame, SIZE_LEN);
    let api_key = c.i16()?;
    let api_version = c.i16()?;
    let correlation_id = c.i32()?;
    let start = c.pos() + 2;
    let client_id = c.string()?.map(|s| (start, start + s.len()));
    let body_offset = match ApiKey::try_from(api_key) {
        Ok(key) => {
            if key.request_header_version(api_version) >= 2 {
                c.skip_tagged_fields()?;
            }
            Some(c.pos())
        }
        Err(()) => None,
    };
    Some(RequestHeader { api_key, api_version, correlation_id, client_id, body_offset })
}

/// Reads the correlation id of a response frame.
pub fn peek_response_correlation(frame: &[u8]) -> Option<i32> {
    Cursor::at(frame, SIZE_LEN).i32()
}

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
    let n_topics = c.array_len_v(flexible)?;
    let mut topics = Vec::new();
    for _ in 0..n_topics {
        let name = if version >= 13 {
            c.bytes(16)?.iter().map(|b| format!("{b:02x}")).collect()
        } else {
            String::from_utf8_lossy(c.string_v(flexible)?.unwrap_or_default()).into_owned()
        };
        let n_parts = c.array_len_v(flexible)?;
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

/// Total frame length implied by a prefix, for tests and fakes that build frames.
pub fn frame_with_prefix(payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(SIZE_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests;

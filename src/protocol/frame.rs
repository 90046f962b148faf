//! Kafka frames: a big-endian i32 size, then header and body. Frames are split off a read buffer
//! with a size cap and kept *with* their size prefix, so forwarding one unchanged is a single write
//! of the buffer it was read into.

use bytes::BytesMut;

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

/// A frame for `payload` (header and body), with its size prefix: for tests and fakes.
pub fn frame_with_prefix(payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(SIZE_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

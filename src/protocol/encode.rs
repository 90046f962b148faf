//! Building whole frames (size prefix + header + body) from kafka-protocol messages: the
//! responses the proxy makes itself, its own requests to the cluster, re-encoded responses, and
//! frames for tests and fakes.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::cursor::Cursor;
use super::frame::SIZE_LEN;
use super::header::peek_response_correlation;
use super::response_guard;
use super::versions::api_name;

pub use super::header::response_header_len;

/// Encodes `body` at `version` behind a request header, as a frame with its size prefix.
pub fn request<M: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: Option<&str>,
    body: &M,
) -> anyhow::Result<Bytes> {
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(client_id.map(|s| StrBytes::from_string(s.to_owned())));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header.encode(&mut buf, api_key.request_header_version(version))?;
    body.encode(&mut buf, version)?;
    Ok(finish(buf))
}

/// Encodes `body` at `version` behind the response header that `api_key` and `version` call for.
pub fn response<M: Encodable>(api_key: ApiKey, version: i16, correlation_id: i32, body: &M) -> anyhow::Result<Bytes> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    response_header(&mut buf, api_key, version, correlation_id)?;
    body.encode(&mut buf, version)?;
    Ok(finish(buf))
}

/// Writes a response header (v0 = correlation id, v1 adds an empty tagged-field section).
pub fn response_header(buf: &mut BytesMut, api_key: ApiKey, version: i16, correlation_id: i32) -> anyhow::Result<()> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header.encode(buf, api_key.response_header_version(version))
}

/// Fills in the size prefix of a buffer that starts with a 4-byte placeholder.
pub fn finish(mut buf: BytesMut) -> Bytes {
    let size = (buf.len() - SIZE_LEN) as i32;
    if let Some(prefix) = buf.get_mut(..SIZE_LEN) {
        prefix.copy_from_slice(&size.to_be_bytes());
    }
    buf.freeze()
}

/// Why a response could not be decoded or re-encoded; the caller knows which side sent it.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("{api} v{version} could not be decoded: {reason}")]
    Decode { api: &'static str, version: i16, reason: String },
    #[error("{api} v{version} could not be encoded: {reason}")]
    Encode { api: &'static str, version: i16, reason: String },
}

/// The body of a response frame, decoded (the header, v0 or v1, is skipped).
pub fn decode_response<M: Decodable>(frame: &Bytes, api: ApiKey, version: i16) -> Result<(i32, M), CodecError> {
    let decode_err = |reason: String| CodecError::Decode { api: api_name(api as i16), version, reason };
    let correlation_id = peek_response_correlation(frame).ok_or_else(|| decode_err("short header".into()))?;
    let mut c = Cursor::at(frame, SIZE_LEN + 4);
    if api.response_header_version(version) >= 1 {
        c.skip_tagged_fields().ok_or_else(|| decode_err("bad header tagged fields".into()))?;
    }
    let mut body = frame.slice(c.pos().min(frame.len())..);
    // kafka-protocol pre-allocates arrays from their wire counts: check them first.
    response_guard::response(api, version, &body).map_err(|reason| decode_err(reason.into()))?;
    let msg = M::decode(&mut body, version).map_err(|e| decode_err(e.to_string()))?;
    Ok((correlation_id, msg))
}

/// Decodes the body of a response frame, lets `edit` change it, and re-encodes it with a fresh
/// header carrying the same correlation id.
pub fn reencode<M: Decodable + Encodable, E: From<CodecError>>(
    frame: &Bytes,
    api: ApiKey,
    version: i16,
    edit: impl FnOnce(&mut M) -> Result<(), E>,
) -> Result<Bytes, E> {
    let (correlation_id, mut msg) = decode_response::<M>(frame, api, version)?;
    edit(&mut msg)?;
    let encode_err = |e: anyhow::Error| CodecError::Encode { api: api_name(api as i16), version, reason: e.to_string() };
    let mut out = BytesMut::with_capacity(frame.len() + 64);
    out.extend_from_slice(&[0; SIZE_LEN]);
    response_header(&mut out, api, version, correlation_id).map_err(encode_err)?;
    msg.encode(&mut out, version).map_err(encode_err)?;
    Ok(finish(out))
}

//! Building whole frames (size prefix + header + body) from kafka-protocol messages: used for the
//! responses the proxy makes itself, its own discovery requests, and by tests and fakes.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Encodable, StrBytes};

use crate::codec::SIZE_LEN;

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

/// Length of the response header for an API and version.
pub fn response_header_len(api_key: ApiKey, version: i16) -> usize {
    if api_key.response_header_version(version) >= 1 {
        5
    } else {
        4
    }
}

/// Fills in the size prefix of a buffer that starts with a 4-byte placeholder.
pub fn finish(mut buf: BytesMut) -> Bytes {
    let size = (buf.len() - SIZE_LEN) as i32;
    if let Some(prefix) = buf.get_mut(..SIZE_LEN) {
        prefix.copy_from_slice(&size.to_be_bytes());
    }
    buf.freeze()
}

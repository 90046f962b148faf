//! Request and response headers, read in place: api key, version, correlation id and where the
//! client id and the body sit, without copying or decoding the body.

use kafka_protocol::messages::ApiKey;

use super::cursor::Cursor;
use super::frame::SIZE_LEN;

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

/// Length of the response header for an API and version (v0 = correlation id; v1 adds an
/// empty tagged-field section).
pub fn response_header_len(api_key: ApiKey, version: i16) -> usize {
    if api_key.response_header_version(version) >= 1 {
        5
    } else {
        4
    }
}

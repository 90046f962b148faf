//! KIP-951 node endpoints in Produce (v10+) and Fetch (v16+) responses: tagged field 0 of the
//! top-level tagged section, which sits at the very end of the frame. Only that tail is rebuilt;
//! the body before it (records included, for Fetch) is sent as a slice of the original buffer.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{fetch_response, produce_response};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::{Endpoints, RewriteError, Rewritten};
use crate::protocol::cursor::{put_uvarint, Cursor};
use crate::protocol::SIZE_LEN;

/// The tag of `node_endpoints` in both Produce and Fetch responses.
const NODE_ENDPOINTS_TAG: u32 = 0;

#[derive(Clone, Copy, Debug)]
pub enum TailApi {
    Produce,
    Fetch,
}

impl TailApi {
    fn name(self) -> &'static str {
        match self {
            TailApi::Produce => "Produce",
            TailApi::Fetch => "Fetch",
        }
    }
}

/// Rewrites node endpoints in the tagged section starting at `tagged_offset` (an offset into the
/// frame, size prefix included). Returns `None` when there is nothing to rewrite, which is the
/// common case: the section is then a single zero byte.
pub fn rewrite(
    frame: &Bytes,
    tagged_offset: usize,
    api: TailApi,
    version: i16,
    eps: &dyn Endpoints,
) -> Result<Option<Rewritten>, RewriteError> {
    let err = |reason: &str| RewriteError::Decode { api: api.name(), version, reason: reason.to_owned() };
    if tagged_offset < SIZE_LEN {
        return Err(err("tagged fields cannot start inside the size prefix"));
    }
    let mut c = Cursor::at(frame, tagged_offset);
    let count = c.uvarint().ok_or_else(|| err("truncated tagged fields"))?;
    if count == 0 {
        return Ok(None);
    }
    let mut tail = Vec::with_capacity(64);
    put_uvarint(&mut tail, count);
    let mut changed = false;
    for _ in 0..count {
        let tag = c.uvarint().ok_or_else(|| err("truncated tag"))?;
        let len = c.uvarint().ok_or_else(|| err("truncated tag length"))? as usize;
        let start = c.pos();
        c.skip(len).ok_or_else(|| err("tagged field runs past the frame"))?;
        let value = frame.slice(start..start + len);
        put_uvarint(&mut tail, tag);
        if tag == NODE_ENDPOINTS_TAG {
            let encoded = endpoints(value, api, version, eps).map_err(|e| match e {
                RewriteError::Decode { reason, .. } => err(&reason),
                other => other,
            })?;
            put_uvarint(&mut tail, encoded.len() as u32);
            tail.extend_from_slice(&encoded);
            changed = true;
        } else {
            put_uvarint(&mut tail, len as u32);
            tail.extend_from_slice(&value);
        }
    }
    if c.remaining() != 0 {
        return Err(err("bytes after the top-level tagged fields"));
    }
    if !changed {
        return Ok(None);
    }
    let body = frame.slice(SIZE_LEN..tagged_offset);
    let size = (body.len() + tail.len()) as i32;
    Ok(Some(Rewritten::Pieces(vec![Bytes::copy_from_slice(&size.to_be_bytes()), body, Bytes::from(tail)])))
}

/// Decodes a compact array of node endpoints, maps each to its proxy address, re-encodes it.
fn endpoints(mut value: Bytes, api: TailApi, version: i16, eps: &dyn Endpoints) -> Result<Vec<u8>, RewriteError> {
    let err = |reason: String| RewriteError::Decode { api: api.name(), version, reason };
    let (n, used) = {
        let mut c = Cursor::new(&value);
        let n = c.compact_len().ok_or_else(|| err("truncated node_endpoints".into()))?.unwrap_or(0);
        (n, c.pos())
    };
    bytes::Buf::advance(&mut value, used);
    let mut out = BytesMut::new();
    let mut head = Vec::new();
    put_uvarint(&mut head, n as u32 + 1);
    out.extend_from_slice(&head);
    let enc = |e: anyhow::Error| RewriteError::Encode { api: api.name(), version, reason: e.to_string() };
    for _ in 0..n {
        match api {
            TailApi::Produce => {
                let mut ep = produce_response::NodeEndpoint::decode(&mut value, version).map_err(|e| err(e.to_string()))?;
                (ep.host, ep.port) = eps.proxy_address(ep.node_id.0, &ep.host, ep.port)?;
                ep.encode(&mut out, version).map_err(enc)?;
            }
            TailApi::Fetch => {
                let mut ep = fetch_response::NodeEndpoint::decode(&mut value, version).map_err(|e| err(e.to_string()))?;
                (ep.host, ep.port) = eps.proxy_address(ep.node_id.0, &ep.host, ep.port)?;
                ep.encode(&mut out, version).map_err(enc)?;
            }
        }
    }
    Ok(out.to_vec())
}

/// Finds where the top-level tagged section of a Fetch v12+ response starts, skipping records by
/// their length prefix (they are never looked at).
pub fn fetch_tagged_offset(frame: &[u8], version: i16) -> Option<usize> {
    crate::protocol::fetch::response_errors(frame, version).and_then(|(_, tagged)| tagged)
}

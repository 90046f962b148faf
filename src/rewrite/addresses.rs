//! Address rewrites for the responses that name brokers: Metadata, FindCoordinator (v0-3 single,
//! v4+ batched) and DescribeCluster, by decode-modify-encode with kafka-protocol. (Produce and
//! Fetch node endpoints live in `tail`, which never re-encodes records.)

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterResponse, FindCoordinatorResponse, MetadataResponse};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::{Endpoints, RewriteError};
use crate::codec::SIZE_LEN;
use crate::frames;

/// Decodes the body of a response frame, lets `edit` change it, and re-encodes it with a fresh
/// header carrying the same correlation id.
pub fn reencode<M: Decodable + Encodable>(
    frame: &Bytes,
    api: ApiKey,
    version: i16,
    edit: impl FnOnce(&mut M) -> Result<(), RewriteError>,
) -> Result<Bytes, RewriteError> {
    let name = api_name(api);
    let decode_err = |reason: String| RewriteError::Decode { api: name, version, reason };
    let correlation_id = crate::codec::peek_response_correlation(frame).ok_or_else(|| decode_err("short header".into()))?;
    let mut body = frame.slice(SIZE_LEN.min(frame.len())..);
    let mut header_cursor = crate::wire::Cursor::new(&body);
    header_cursor.i32().ok_or_else(|| decode_err("short header".into()))?;
    if api.response_header_version(version) >= 1 {
        header_cursor.skip_tagged_fields().ok_or_else(|| decode_err("bad header tagged fields".into()))?;
    }
    let header_len = header_cursor.pos();
    let _ = body.split_to(header_len);
    let mut msg = M::decode(&mut body, version).map_err(|e| decode_err(e.to_string()))?;
    edit(&mut msg)?;
    let encode_err = |e: anyhow::Error| RewriteError::Encode { api: name, version, reason: e.to_string() };
    let mut out = BytesMut::with_capacity(frame.len() + 64);
    out.extend_from_slice(&[0; SIZE_LEN]);
    frames::response_header(&mut out, api, version, correlation_id).map_err(encode_err)?;
    msg.encode(&mut out, version).map_err(encode_err)?;
    Ok(frames::finish(out))
}

pub fn api_name(api: ApiKey) -> &'static str {
    match api {
        ApiKey::Metadata => "Metadata",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::DescribeCluster => "DescribeCluster",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        _ => "Kafka",
    }
}

pub fn metadata(frame: &Bytes, version: i16, eps: &dyn Endpoints) -> Result<Bytes, RewriteError> {
    reencode(frame, ApiKey::Metadata, version, |m: &mut MetadataResponse| {
        for b in &mut m.brokers {
            (b.host, b.port) = eps.proxy_address(b.node_id.0, &b.host, b.port)?;
        }
        Ok(())
    })
}

pub fn describe_cluster(frame: &Bytes, version: i16, eps: &dyn Endpoints) -> Result<Bytes, RewriteError> {
    reencode(frame, ApiKey::DescribeCluster, version, |m: &mut DescribeClusterResponse| {
        for b in &mut m.brokers {
            (b.host, b.port) = eps.proxy_address(b.broker_id.0, &b.host, b.port)?;
        }
        Ok(())
    })
}

pub fn find_coordinator(frame: &Bytes, version: i16, eps: &dyn Endpoints) -> Result<Bytes, RewriteError> {
    reencode(frame, ApiKey::FindCoordinator, version, |m: &mut FindCoordinatorResponse| {
        // A coordinator with an error carries node id -1 and an empty host: nothing to rewrite.
        let live = |node: BrokerId, code: i16| code == 0 && node.0 >= 0;
        if version < 4 {
            if live(m.node_id, m.error_code) {
                (m.host, m.port) = eps.proxy_address(m.node_id.0, &m.host, m.port)?;
            }
        } else {
            for c in &mut m.coordinators {
                if live(c.node_id, c.error_code) {
                    (c.host, c.port) = eps.proxy_address(c.node_id.0, &c.host, c.port)?;
                }
            }
        }
        Ok(())
    })
}

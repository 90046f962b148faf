//! Fetch: forwarded untouched; the response side rewrites KIP-951 endpoints in the tail (v16+)
//! and, with `detectors.consumer_skips`, looks for partitions answered OFFSET_OUT_OF_RANGE below
//! the log start: retention deleted records this consumer never read. The request is kept (the
//! buffer it was read into, not a copy) to learn the offset the consumer asked for.

use bytes::BytesMut;

use super::{Disposition, Env, Route};
use crate::cluster::ClusterView;
use crate::protocol::RequestHeader;

pub fn handle<V: ClusterView>(env: &Env<'_, V>, frame: BytesMut, h: &RequestHeader) -> Route {
    let frame = frame.freeze();
    let watch = env.policies.detectors.consumer_skips && h.api_version >= 4;
    let request = match (watch, h.body_offset) {
        (true, Some(off)) => Some((frame.clone(), off)),
        _ => None,
    };
    Route::Forward(frame, Disposition::Fetch { tail: h.api_version >= 16, request })
}

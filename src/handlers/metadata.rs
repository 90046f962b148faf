//! Metadata: auto topic creation is switched off on the way out (auto-created topics get broker
//! defaults and bypass every topic rule), in place, and counted; on the way back the response is
//! rewritten, and the clearing is audited only where it changed an outcome: a topic the request
//! named that the cluster does not have.

use bytes::BytesMut;

use super::{Disposition, Env, Route};
use crate::cluster::ClusterView;
use crate::protocol::guard;
use crate::protocol::RequestHeader;

pub fn handle<V: ClusterView>(env: &Env<'_, V>, mut frame: BytesMut, h: &RequestHeader) -> Route {
    let mut blocked = None;
    if let (true, Some(off)) = (env.policies.metadata.block_auto_topic_creation, h.body_offset) {
        if block_auto_create(&mut frame, off, h.api_version) {
            env.metrics.detectors.auto_create_blocked.inc();
            blocked = Some(Box::new(env.origin(&frame, h)));
        }
    }
    Route::Forward(frame.freeze(), Disposition::Metadata { blocked })
}

/// Clears allow_auto_topic_creation in a Metadata request, in place. True when it was set.
pub fn block_auto_create(frame: &mut [u8], body_offset: usize, version: i16) -> bool {
    let Some(body) = frame.get(body_offset..) else { return false };
    let Some(at) = guard::metadata_auto_create_offset(body, version) else { return false };
    match frame.get_mut(body_offset + at) {
        Some(flag) if *flag != 0 => {
            *flag = 0;
            true
        }
        _ => false,
    }
}

//! Detectors on the response side: partition errors in Produce answers (which many applications
//! never read), and consumers whose fetch offset retention already deleted (they will skip those
//! records). Both walk the response in place, records skipped by length, and share the walk with
//! the KIP-951 tail rewrite; both count (metrics) and audit, and change nothing.

use std::net::SocketAddr;

use bytes::Bytes;

use super::conn::ConnInfo;
use crate::audit::{Event, Origin, Recorder};
use crate::error::SessionError;
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::protocol::errors::OFFSET_OUT_OF_RANGE;
use crate::protocol::{fetch, produce_response};
use crate::rewrite::{tail, Endpoints, Rewritten};

/// Who the events name.
pub struct Subject<'a> {
    pub peer: SocketAddr,
    pub identity: &'a Identity,
    pub info: &'a ConnInfo,
    pub audit: &'a Recorder,
    pub metrics: &'a Metrics,
}

impl Subject<'_> {
    fn origin(&self, api: &'static str, api_version: i16) -> Origin {
        Origin {
            client_addr: self.peer,
            client_id: self.info.client_id(),
            principal: self.identity.principal(),
            principal_unverified: self.identity.principal_unverified(),
            tls_subject: self.identity.tls_subject.clone(),
            api,
            api_version,
        }
    }
}

/// A Produce answer: its errors reported (when `report`), its tail rewritten (v10+).
pub fn produce(
    frame: Bytes,
    version: i16,
    tail_rewrite: bool,
    report: bool,
    who: &Subject<'_>,
    eps: &dyn Endpoints,
) -> Result<Rewritten, SessionError> {
    if !tail_rewrite && !report {
        return Ok(Rewritten::Whole(frame));
    }
    let scan =
        produce_response::scan(&frame, version).ok_or_else(|| SessionError::Broker(format!("undecodable Produce v{version} response")))?;
    if report && !scan.errors.is_empty() {
        let origin = who.origin("Produce", version);
        for e in &scan.errors {
            who.metrics.produce_error(e.error_code);
            who.audit.record(Event::produce_error(&origin, e.topic.to_string(), e.partition, e.error_code, e.message.clone()));
        }
    }
    match (tail_rewrite, scan.tagged_offset) {
        (true, Some(off)) => Ok(tail::rewrite(&frame, off, tail::TailApi::Produce, version, eps)?.unwrap_or(Rewritten::Whole(frame))),
        _ => Ok(Rewritten::Whole(frame)),
    }
}

/// A Fetch answer: consumers that asked below the log start reported (when the request was
/// kept), the tail rewritten (v16+).
pub fn fetch(
    frame: Bytes,
    version: i16,
    tail_rewrite: bool,
    request: Option<(Bytes, usize)>,
    who: &Subject<'_>,
    eps: &dyn Endpoints,
) -> Result<Rewritten, SessionError> {
    if !tail_rewrite && request.is_none() {
        return Ok(Rewritten::Whole(frame));
    }
    let (errors, tagged) =
        fetch::response_errors(&frame, version).ok_or_else(|| SessionError::Broker(format!("undecodable Fetch v{version} response")))?;
    if let Some((req, body)) = request {
        for e in errors.iter().filter(|e| e.error_code == OFFSET_OUT_OF_RANGE && e.log_start_offset >= 0) {
            if let Some(offset) = fetch::request_offset(&req, body, version, &e.topic, e.partition).filter(|o| *o < e.log_start_offset) {
                report_skip(who, version, e, offset);
            }
        }
    }
    match (tail_rewrite, tagged) {
        (true, Some(off)) => Ok(tail::rewrite(&frame, off, tail::TailApi::Fetch, version, eps)?.unwrap_or(Rewritten::Whole(frame))),
        _ => Ok(Rewritten::Whole(frame)),
    }
}

fn report_skip(who: &Subject<'_>, version: i16, e: &fetch::PartitionError, offset: i64) {
    let skipped = e.log_start_offset.saturating_sub(offset);
    who.metrics.detectors.consumer_skips.inc();
    who.metrics.detectors.records_skipped.add(u64::try_from(skipped).unwrap_or(0));
    let detail = serde_json::json!({
        "partition": e.partition,
        "group": who.info.group(),
        "fetch_offset": offset,
        "log_start_offset": e.log_start_offset,
        "high_watermark": e.high_watermark,
        "records_skipped": skipped,
        "outcome": "records deleted by retention before this consumer read them; it will reset past them",
    });
    who.audit.record(Event::consumer_skip(&who.origin("Fetch", version), e.topic.clone(), detail));
}

//! ApiVersions: advertise only what the proxy can safely carry. For each API the proxy inspects,
//! the version range is the intersection of the broker's and the proxy's; APIs whose responses
//! may carry broker addresses the proxy cannot rewrite, and API keys it does not know, are removed
//! (a client that sends them anyway is disconnected: see `handlers::route`).

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::protocol::{Message, VersionRange};

use super::RewriteError;
use crate::protocol::cursor::Cursor;
use crate::protocol::encode::reencode;
use crate::protocol::errors::UNSUPPORTED_VERSION;
use crate::protocol::versions::proxy_range;
use crate::protocol::SIZE_LEN;

/// The broker's list intersected with the proxy's ranges.
pub fn intersect(broker: &[ApiVersion]) -> Vec<ApiVersion> {
    broker
        .iter()
        .filter_map(|v| {
            let api = ApiKey::try_from(v.api_key).ok()?;
            let mut range = VersionRange { min: v.min_version, max: v.max_version };
            if let Some(own) = proxy_range(api) {
                if own.is_empty() {
                    return None;
                }
                range = range.intersect(&own);
            }
            (!range.is_empty()).then(|| v.clone().with_min_version(range.min).with_max_version(range.max))
        })
        .collect()
}

/// Rewrites a broker's ApiVersions response, unless it is an error (error responses are v0-shaped
/// whatever version was asked, and are passed on as they are).
pub fn rewrite(frame: &Bytes, version: i16) -> Result<Option<Bytes>, RewriteError> {
    let mut c = Cursor::at(frame, SIZE_LEN);
    let error_code = c.i32().and_then(|_| c.i16()).ok_or_else(|| RewriteError::Decode {
        api: "ApiVersions",
        version,
        reason: "short response".into(),
    })?;
    if error_code != 0 {
        return Ok(None);
    }
    reencode(frame, ApiKey::ApiVersions, version, |m: &mut ApiVersionsResponse| {
        m.api_keys = intersect(&m.api_keys);
        Ok(())
    })
    .map(Some)
}

/// The answer a broker gives to an ApiVersions request newer than it knows: header v0, a v0 body
/// with UNSUPPORTED_VERSION and the ApiVersions range it does support.
pub fn unsupported_version(correlation_id: i32) -> anyhow::Result<Bytes> {
    let own = ApiVersionsResponse::VERSIONS;
    let body = ApiVersionsResponse::default().with_error_code(UNSUPPORTED_VERSION).with_api_keys(vec![ApiVersion::default()
        .with_api_key(ApiKey::ApiVersions as i16)
        .with_min_version(own.min)
        .with_max_version(own.max)]);
    crate::protocol::encode::response(ApiKey::ApiVersions, 0, correlation_id, &body)
}

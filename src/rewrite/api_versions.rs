//! ApiVersions: advertise only what the proxy can safely carry. For each API the proxy inspects,
//! the version range is the intersection of the broker's and the proxy's; APIs whose responses
//! may carry broker addresses the proxy cannot rewrite, and API keys it does not know, are removed
//! (a client that sends them anyway is disconnected: see `session`).

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::protocol::{Message, VersionRange};

use super::addresses::reencode;
use super::RewriteError;
use crate::codec::SIZE_LEN;
use crate::wire::Cursor;

/// UNSUPPORTED_VERSION.
pub const UNSUPPORTED_VERSION: i16 = 35;

/// Versions the proxy can handle for the APIs it inspects or rewrites; `None` means the API passes
/// through opaque and the broker's range stands; `Some(empty)` means it is withheld.
pub fn proxy_range(api: ApiKey) -> Option<VersionRange> {
    let r = |min, max| Some(VersionRange { min, max });
    match api {
        // v13 names topics by id only; policies and audit need names. The minimum stays 0 so the
        // broker's own minimum (0, even on Kafka 4) comes through: old librdkafka turned
        // compression off when Produce v0 disappeared from ApiVersions.
        ApiKey::Produce => r(0, 12),
        // v0 is followed by raw, unframed SASL tokens the proxy cannot follow; v1 frames them.
        ApiKey::SaslHandshake => r(1, 1),
        ApiKey::Fetch => r(0, 18),
        ApiKey::Metadata => r(0, 13),
        ApiKey::FindCoordinator => r(0, 6),
        ApiKey::DescribeCluster => r(0, 2),
        ApiKey::ApiVersions => r(0, ApiVersionsResponse::VERSIONS.max),
        // Admin requests the proxy decodes (see `admin`): the versions kafka-protocol knows.
        ApiKey::CreateTopics => r(2, 7),
        ApiKey::DeleteTopics => r(1, 6),
        ApiKey::DeleteRecords => r(0, 2),
        ApiKey::AlterConfigs => r(0, 2),
        ApiKey::IncrementalAlterConfigs => r(0, 1),
        ApiKey::CreatePartitions => r(0, 3),
        ApiKey::AlterPartitionReassignments => r(0, 1),
        // Share groups (KIP-932) carry node endpoints as regular fields: not rewritten yet.
        ApiKey::ShareFetch | ApiKey::ShareAcknowledge => r(1, 0),
        _ => None,
    }
}

/// Whether a request for this key and version may be forwarded at all.
pub fn allowed(api_key: i16, version: i16) -> bool {
    let Ok(api) = ApiKey::try_from(api_key) else {
        return false;
    };
    match proxy_range(api) {
        Some(r) => version >= r.min && version <= r.max,
        None => true,
    }
}

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
    crate::frames::response(ApiKey::ApiVersions, 0, correlation_id, &body)
}

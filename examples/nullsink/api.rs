//! Which APIs and versions the null sink speaks (one table, used for ApiVersions and to refuse
//! anything else), and the dispatch of a request frame to its handler. Requests are read in
//! place (`walk`, and the project's Produce and CreateTopics walks) before anything is decoded:
//! a bad client frame closes its connection, it cannot crash the sink.

use bytes::Bytes;
use kafka_durability_proxy::protocol::{encode, errors, peek_request_header, RequestHeader};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

use crate::state::Sink;
use crate::{control, fetch, offsets, produce, walk};

/// Largest request other than Produce answered: they are all small.
pub const MAX_CONTROL_FRAME: usize = 1024 * 1024;

/// (API, min, max) advertised in ApiVersions. Produce keeps min 0 as Kafka 4 brokers do (old
/// librdkafka disables compression without it; v0-2 are refused when they come). Fetch stops at
/// v12, the last version naming topics; Metadata at v12, the newest the proxy's discovery asks.
/// No group membership (JoinGroup, SyncGroup, Heartbeat): benchmark consumers use assign().
pub const APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 12),
    (ApiKey::Fetch, 4, fetch::MAX_VERSION),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::DescribeConfigs, 1, 4),
];

/// Whether `version` of `api` is in the table.
pub fn supported(api: ApiKey, version: i16) -> bool {
    APIS.iter().any(|(k, min, max)| *k == api && (*min..=*max).contains(&version))
}

/// The answer to one request frame (size prefix included): the buffers to write, in order
/// (none for acks=0), or None to close the connection (malformed, unknown or unsupported).
pub fn handle(sink: &Sink, frame: &Bytes) -> Option<Vec<Bytes>> {
    let h = peek_request_header(frame)?;
    sink.stats.request(h.api_key, h.api_version);
    let api = h.known_api()?;
    if api == ApiKey::ApiVersions {
        return api_versions(&h);
    }
    if !supported(api, h.api_version) {
        return None;
    }
    if api == ApiKey::Produce {
        return produce::handle(sink, frame, &h);
    }
    if frame.len() > MAX_CONTROL_FRAME {
        return None;
    }
    let body = frame.get(h.body_offset?..)?;
    if api == ApiKey::Fetch {
        return Some(fetch::respond(sink, &walk::fetch(body, h.api_version)?, h.api_version, h.correlation_id));
    }
    let out = match api {
        ApiKey::ListOffsets | ApiKey::OffsetCommit | ApiKey::OffsetFetch => offsets::handle(api, frame, &h, body),
        _ => control::handle(sink, api, &h, body),
    };
    out.map(|b| vec![b])
}

/// Topic, group and resource names as kafka-protocol strings.
pub fn text(raw: &[u8]) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(String::from_utf8_lossy(raw).into_owned())
}

/// Encodes a response body behind the header its API and version call for.
pub fn reply<M: kafka_protocol::protocol::Encodable>(api: ApiKey, h: &RequestHeader, body: &M) -> Option<Bytes> {
    encode::response(api, h.api_version, h.correlation_id, body).ok()
}

/// The table; a version newer than v4 gets Kafka's answer: a v0 body with UNSUPPORTED_VERSION
/// listing the ApiVersions range, so the client retries with one it shares.
fn api_versions(h: &RequestHeader) -> Option<Vec<Bytes>> {
    let entry =
        |(k, min, max): &(ApiKey, i16, i16)| ApiVersion::default().with_api_key(*k as i16).with_min_version(*min).with_max_version(*max);
    let (version, body) = if supported(ApiKey::ApiVersions, h.api_version) {
        (h.api_version, ApiVersionsResponse::default().with_api_keys(APIS.iter().map(entry).collect()))
    } else {
        let own = APIS.iter().filter(|(k, _, _)| *k == ApiKey::ApiVersions).map(entry).collect();
        (0, ApiVersionsResponse::default().with_error_code(errors::UNSUPPORTED_VERSION).with_api_keys(own))
    };
    encode::response(ApiKey::ApiVersions, version, h.correlation_id, &body).ok().map(|b| vec![b])
}

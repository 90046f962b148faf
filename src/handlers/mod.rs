//! What the proxy does with each client request, one file per API it judges: decode (guarded) →
//! ask the policy → answer, rewrite or forward. `route` is the one place a request is sent to
//! its handler; `split` holds the machinery shared by multi-resource admin requests (refuse
//! some entries, forward the rest, merge the answers).

pub mod alter_configs;
pub mod create_topics;
pub mod delete_records;
pub mod delete_topics;
pub mod fetch;
pub mod legacy;
pub mod metadata;
pub mod partitions;
pub mod produce;
pub mod split;

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;

use crate::audit::{Event, Origin, Recorder};
use crate::cluster::ClusterView;
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::policy::topics::BrokerDefaults;
use crate::policy::Policies;
use crate::protocol::versions::{allowed, api_name};
use crate::protocol::RequestHeader;
use crate::rewrite::api_versions;

pub use split::Merge;

/// What the session does with one client request.
#[derive(Debug)]
pub enum Route {
    /// Forward these bytes; the broker's response gets this treatment.
    Forward(Bytes, Disposition),
    /// Forward these bytes (an acks=0 Produce forwarded unchanged): Apache Kafka sends no
    /// response, tansu does; one that comes is dropped.
    ForwardUnanswered(Bytes),
    /// Answer with this frame without the broker, in its turn.
    Answer(Bytes),
    /// An acks=0 Produce upgraded to acks=all, to be held for redelivery by the session
    /// (`delivery`): stamped in place, then forwarded with `Disposition::Swallow`.
    Hold(BytesMut, Box<Event>),
    /// Close the client connection once everything before this has been answered.
    Close,
}

/// How to treat the broker's response to one forwarded request.
#[derive(Debug)]
pub enum Disposition {
    /// Send it on untouched.
    Forward,
    /// Broker addresses rewritten; `blocked`: auto-creation was cleared for this client, audit
    /// the topics the answer says do not exist.
    Metadata {
        blocked: Option<Box<Origin>>,
    },
    FindCoordinator,
    DescribeCluster,
    ApiVersions,
    /// A Produce's answer: partition errors reported (detector); `tail` (v10+): node endpoints
    /// may sit in the tail.
    Produce {
        tail: bool,
    },
    /// A Fetch's answer: `tail` (v16+): node endpoints may sit in the tail, after the records;
    /// `request` (the request frame and where its body starts): look for consumers skipping
    /// deleted records.
    Fetch {
        tail: bool,
        request: Option<(Bytes, usize)>,
    },
    /// Merge the proxy's own per-entry results into the broker's admin response.
    Merge(Box<Merge>),
    /// A legacy request translated to a newer version: answer in the client's version's shape.
    Legacy(Box<legacy::Plan>),
    /// SaslHandshake; `legacy` when the client spoke v0 (raw tokens follow a success).
    SaslHandshake {
        legacy: bool,
    },
    /// SaslAuthenticate: forwarded as is; the principal is learnt from it.
    SaslAuthenticate,
    /// The proxy's SaslAuthenticate v0 carrying a client's raw v0 token: answered to the client
    /// as a raw token.
    SaslRawToken,
    /// The client sent acks=0 and the proxy upgraded it: the client expects no answer. Drop the
    /// response; if it reports errors, audit them (the client can never see them) and close the
    /// connection as a broker does on acks=0 failures.
    Swallow(Box<Swallowed>),
}

/// An upgraded acks=0 request's answer, which its client never sees.
#[derive(Debug)]
pub struct Swallowed {
    /// The audit event to fill in if the answer carries errors.
    pub template: Event,
    /// The request, held until every partition is acknowledged (None: not held).
    pub held: Option<crate::delivery::held::Held>,
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("client sent a malformed {0} request")]
    Malformed(&'static str),
    #[error("API key {api_key} version {version} is not offered by the proxy (see ApiVersions)")]
    NotOffered { api_key: i16, version: i16 },
    #[error("proxy failed to encode {0}: {1}")]
    Encode(&'static str, String),
}

impl HandlerError {
    /// Whether the client (rather than the proxy) caused it.
    pub fn client_side(&self) -> bool {
        !matches!(self, HandlerError::Encode(..))
    }
}

/// What every request is judged with: the policies in force, the audit log, the cluster, and
/// who is asking.
pub struct Env<'a, V> {
    pub policies: &'a Policies,
    pub audit: &'a Recorder,
    pub cluster: &'a V,
    pub peer: SocketAddr,
    pub identity: &'a Identity,
    pub metrics: &'a Metrics,
}

/// One request's context inside a handler.
pub struct Ctx<'a> {
    pub policies: &'a Policies,
    pub defaults: BrokerDefaults,
    /// Set when the broker defaults are unknown because the cluster refused the proxy.
    pub defaults_refused: Option<String>,
    pub audit: &'a Recorder,
    pub origin: Origin,
    pub correlation_id: i32,
}

impl Ctx<'_> {
    pub fn version(&self) -> i16 {
        self.origin.api_version
    }

    pub fn client_id(&self) -> Option<&str> {
        self.origin.client_id.as_deref()
    }

    pub fn peer(&self) -> SocketAddr {
        self.origin.client_addr
    }

    /// Who a scope is chosen for, for a given topic (None: a request about no topic).
    pub fn subject<'s>(&'s self, topic: Option<&'s str>) -> crate::policy::scope::Subject<'s> {
        let principal = self.origin.principal.as_deref();
        crate::policy::scope::Subject { client_id: self.client_id(), principal, peer: self.peer().ip(), topic }
    }

    /// The broker defaults unset values inherit, or why they are unknown (the cluster refuses the
    /// proxy): every rule that judges against them refuses rather than guess.
    pub fn known_defaults(&self) -> Result<&BrokerDefaults, String> {
        match &self.defaults_refused {
            Some(reason) => Err(format!("the cluster refused the proxy's own requests for its broker defaults ({reason})")),
            None => Ok(&self.defaults),
        }
    }

    /// The topic rules that apply to this client and topic, and the scope they came from.
    pub fn topic_rules(&self, topic: Option<&str>) -> (&crate::policy::rules::CreateTopics, Option<&str>) {
        crate::policy::scope::topic_rules(self.policies, &self.subject(topic))
    }
}

impl<V: ClusterView> Env<'_, V> {
    /// Who sent this request, for audit events; built only for requests that are judged (it
    /// copies the client id and principal).
    pub fn origin(&self, frame: &[u8], h: &RequestHeader) -> Origin {
        Origin {
            client_addr: self.peer,
            client_id: h.client_id(frame).map(str::to_owned),
            principal: self.identity.principal(),
            principal_unverified: self.identity.principal_unverified(),
            tls_subject: self.identity.tls_subject.clone(),
            api: api_name(h.api_key),
            api_version: h.api_version,
        }
    }

    /// The context for one judged request.
    pub fn ctx(&self, frame: &[u8], h: &RequestHeader) -> Ctx<'_> {
        Ctx {
            policies: self.policies,
            defaults: self.cluster.broker_defaults(),
            defaults_refused: self.cluster.defaults_refused(),
            audit: self.audit,
            origin: self.origin(frame, h),
            correlation_id: h.correlation_id,
        }
    }
}

/// Sends one request to its handler.
pub async fn route<V: ClusterView>(env: &Env<'_, V>, frame: BytesMut, h: &RequestHeader) -> Result<Route, HandlerError> {
    let api = h.known_api();
    if api == Some(ApiKey::ApiVersions) && !allowed(h.api_key, h.api_version) {
        let answer = api_versions::unsupported_version(h.correlation_id).map_err(|e| HandlerError::Encode("ApiVersions", e.to_string()))?;
        return Ok(Route::Answer(answer));
    }
    // Not advertised by the proxy: a client that sends it anyway is misbehaving, and the response
    // might name brokers the proxy cannot rewrite. Brokers also close here.
    let Some(api) = api.filter(|_| allowed(h.api_key, h.api_version)) else {
        return Err(HandlerError::NotOffered { api_key: h.api_key, version: h.api_version });
    };
    match api {
        ApiKey::Produce => return produce::handle(env, frame, h),
        ApiKey::Metadata => return Ok(metadata::handle(env, frame, h)),
        ApiKey::Fetch => return Ok(fetch::handle(env, frame, h)),
        _ => {}
    }
    let Some(judged) = Judged::of(api, h.api_version) else {
        return Ok(Route::Forward(frame.freeze(), passthrough(api)));
    };
    let body_offset = h.body_offset.ok_or(HandlerError::Malformed(api_name(h.api_key)))?;
    let ctx = env.ctx(&frame, h);
    let frame = frame.freeze();
    let at = split::Site { frame: &frame, body_offset, api_key: api, api: api_name(h.api_key) };
    match judged {
        Judged::LegacyCreateTopics => legacy::create_topics(&ctx, env.cluster, &at),
        Judged::LegacyDeleteTopics => legacy::delete_topics(&ctx, env.cluster, &at),
        Judged::CreateTopics => create_topics::handle(&ctx, &at),
        Judged::DeleteTopics => delete_topics::handle(&ctx, &at),
        Judged::DeleteRecords => delete_records::handle(&ctx, &at),
        Judged::CreatePartitions => partitions::create_partitions(&ctx, &at),
        Judged::Reassignments => partitions::reassign_partitions(&ctx, &at),
        // Boxed, with what it uses: it asks the cluster (a connection, maybe TLS and SASL), a
        // future of kilobytes that every session's task would otherwise carry for a rare request.
        Judged::AlterConfigs { incremental } => {
            Box::pin(async move {
                let at = split::Site { frame: &frame, body_offset, api_key: api, api: api_name(h.api_key) };
                alter_configs::handle(&ctx, env.cluster, &at, incremental).await
            })
            .await
        }
    }
}

/// The admin requests a handler judges.
enum Judged {
    LegacyCreateTopics,
    LegacyDeleteTopics,
    CreateTopics,
    DeleteTopics,
    DeleteRecords,
    CreatePartitions,
    Reassignments,
    AlterConfigs { incremental: bool },
}

impl Judged {
    fn of(api: ApiKey, version: i16) -> Option<Judged> {
        Some(match api {
            ApiKey::CreateTopics if version < 2 => Judged::LegacyCreateTopics,
            ApiKey::DeleteTopics if version < 1 => Judged::LegacyDeleteTopics,
            ApiKey::CreateTopics => Judged::CreateTopics,
            ApiKey::DeleteTopics => Judged::DeleteTopics,
            ApiKey::DeleteRecords => Judged::DeleteRecords,
            ApiKey::CreatePartitions => Judged::CreatePartitions,
            ApiKey::AlterPartitionReassignments => Judged::Reassignments,
            ApiKey::AlterConfigs => Judged::AlterConfigs { incremental: false },
            ApiKey::IncrementalAlterConfigs => Judged::AlterConfigs { incremental: true },
            _ => return None,
        })
    }
}

/// How the response to a request no handler judges is treated: address rewrites where the
/// response names brokers, untouched otherwise.
fn passthrough(api: ApiKey) -> Disposition {
    match api {
        ApiKey::FindCoordinator => Disposition::FindCoordinator,
        ApiKey::DescribeCluster => Disposition::DescribeCluster,
        ApiKey::ApiVersions => Disposition::ApiVersions,
        _ => Disposition::Forward,
    }
}

#[cfg(test)]
mod tests;

//! Every decoder of untrusted bytes as a target: which versions it takes, valid and random inputs
//! for it, and a runner that drives the crate's public API over any bytes the way the proxy does
//! (`prepare` does the setup a session has already done, `Prepared::run` only the decoding).

use std::ops::RangeInclusive;

use bytes::{Bytes, BytesMut};
use kafka_durability_proxy::handlers::legacy::{self as legacy_handler, Plan};
use kafka_durability_proxy::handlers::metadata::block_auto_create;
use kafka_durability_proxy::handlers::{split, Merge};
use kafka_durability_proxy::protocol::encode::decode_response;
use kafka_durability_proxy::protocol::sasl::{saslname, Mechanism, SaslState};
use kafka_durability_proxy::protocol::{self, batch, fetch, groups, guard, produce_response, split_frame};
use kafka_durability_proxy::rewrite::tail::{self, TailApi};
use kafka_durability_proxy::rewrite::{addresses, api_versions, Endpoints, RewriteError};
use kafka_protocol::messages::{ApiKey, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use proptest::collection::vec;
use proptest::prelude::*;

use super::frames::{header, produce, request_frame};
use super::legacy;
use super::requests::{self, Admin};
use super::responses::Resp;
use super::{mutation, Mutation};

/// Maps node ids 0-1000 to `proxy.test:20000+id`; others have no listener (an error path).
pub struct FakeEndpoints;

impl Endpoints for FakeEndpoints {
    fn proxy_address(&self, node_id: i32, _host: &str, _port: i32) -> Result<(StrBytes, i32), RewriteError> {
        if !(0..=1000).contains(&node_id) {
            return Err(RewriteError::NoListener { node_id });
        }
        Ok((StrBytes::from_static_str("proxy.test"), 20_000 + node_id))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `peek_request_header` (and the client id, the response correlation peek) on a frame.
    Header,
    /// `peek_produce`, `produce_topics` and `patch_acks` on a Produce frame, v0-13.
    Produce,
    /// `guard::metadata_auto_create_offset` and the in-place clear on a Metadata body, v0-13.
    AutoCreate,
    /// A count-walk guard on a body, then kafka-protocol's decode when it accepts.
    Guard(Admin),
    /// `handlers::legacy` on a CreateTopics v0 (0) / v1 (1) or DeleteTopics v0 (2) frame.
    LegacyRequest,
    /// The rewriter or reader of a broker response frame.
    Response(Resp),
    /// `split_frame` over a read buffer, with the size cap chosen by the version (see `split_max`).
    Split,
    /// The SASL tracker fed one token as the client's first and as the server's answers; the
    /// version picks the mechanism (`SASL_MECHANISMS`).
    SaslToken,
    /// `protocol::groups` on an OffsetCommit request frame, v2-9 (the group id every group
    /// request names, and the commits the offset-commit detector audits).
    OffsetCommit,
}

/// The mechanisms of the SaslToken target, by version.
pub const SASL_MECHANISMS: [&str; 4] = ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN", "OAUTHBEARER"];

impl Target {
    pub fn all() -> Vec<Target> {
        let mut all = vec![
            Target::Header,
            Target::Produce,
            Target::AutoCreate,
            Target::LegacyRequest,
            Target::Split,
            Target::SaslToken,
            Target::OffsetCommit,
        ];
        all.extend(Admin::ALL.iter().map(|a| Target::Guard(*a)));
        all.extend(Resp::all().into_iter().map(Target::Response));
        all
    }

    pub fn versions(self) -> RangeInclusive<i16> {
        match self {
            Target::Header => 0..=0,
            Target::Produce | Target::AutoCreate => 0..=13,
            Target::Guard(a) => a.versions(),
            Target::LegacyRequest => 0..=2,
            Target::Response(r) => r.versions(),
            Target::Split => 0..=3,
            Target::SaslToken => 0..=3,
            Target::OffsetCommit => 2..=9,
        }
    }

    /// A valid input at version `v`.
    pub fn valid(self, v: i16) -> BoxedStrategy<Vec<u8>> {
        match self {
            Target::Header => prop_oneof![
                (0i16..=13).prop_flat_map(produce).prop_map(|p| p.frame),
                (proptest::sample::select(&Admin::ALL[..]), header()).prop_flat_map(|(a, h)| {
                    a.versions().prop_flat_map(move |v| {
                        let h = h.clone();
                        a.body(v).prop_map(move |b| request_frame(a.api_key(), v, h.corr, h.client_id.as_deref(), &b))
                    })
                }),
            ]
            .boxed(),
            Target::Produce => produce(v).prop_map(|p| p.frame).boxed(),
            Target::AutoCreate => requests::metadata(v).prop_map(|(b, _)| b).boxed(),
            Target::Guard(a) => a.body(v),
            Target::LegacyRequest => Just(legacy::request(v)).boxed(),
            Target::Response(r) => r.frame(v),
            Target::SaslToken => sasl_token(v),
            Target::OffsetCommit => offset_commit(v),
            Target::Split => {
                let frame = prop_oneof![(0i16..=13).prop_flat_map(produce).prop_map(|p| p.frame), Resp::Metadata.frame(1)];
                (vec(frame, 1..4), any::<prop::sample::Index>())
                    .prop_map(|(frames, cut)| {
                        let all = frames.concat();
                        let keep = all.len() - cut.index(frames.last().map_or(1, Vec::len));
                        all[..keep].to_vec()
                    })
                    .boxed()
            }
        }
    }

    /// A plausible prefix (size, header) and random bytes after it.
    pub fn random(self, v: i16) -> BoxedStrategy<Vec<u8>> {
        let tail = vec(any::<u8>(), 0..160);
        let prefixed = move |prefix: Vec<u8>| {
            tail.clone()
                .prop_map(move |t| {
                    let mut f = prefix.clone();
                    f.extend_from_slice(&t);
                    let size = (f.len() - 4) as i32;
                    f[..4].copy_from_slice(&size.to_be_bytes());
                    f
                })
                .boxed()
        };
        match self {
            Target::Header | Target::AutoCreate | Target::Guard(_) | Target::Split | Target::SaslToken => vec(any::<u8>(), 0..200).boxed(),
            Target::Produce => prefixed(request_frame(ApiKey::Produce, v, 1, None, &[])),
            Target::OffsetCommit => prefixed(request_frame(ApiKey::OffsetCommit, v, 1, Some("c"), &[])),
            Target::LegacyRequest => {
                let api = if v == 2 { ApiKey::DeleteTopics } else { ApiKey::CreateTopics };
                prefixed(request_frame(api, v % 2, 1, Some("c"), &[]))
            }
            Target::Response(r) => {
                let mut p = vec![0, 0, 0, 0, 0, 0, 0, 1];
                if r.api_key().response_header_version(v) >= 1 {
                    p.push(0);
                }
                prefixed(p)
            }
        }
    }
}

/// One input for one target at one version.
#[derive(Clone, Debug)]
pub struct Case {
    pub target: Target,
    pub version: i16,
    pub bytes: Vec<u8>,
}

fn target_version() -> impl Strategy<Value = (Target, i16)> {
    proptest::sample::select(Target::all()).prop_flat_map(|t| (Just(t), t.versions()))
}

pub fn valid_case() -> impl Strategy<Value = Case> {
    target_version().prop_flat_map(|(target, version)| target.valid(version).prop_map(move |bytes| Case { target, version, bytes }))
}

/// A valid input with one to three mutations.
pub fn mutated_case() -> impl Strategy<Value = (Case, Vec<Mutation>)> {
    (valid_case(), vec(mutation(), 1..4)).prop_map(|(mut c, m)| {
        m.iter().for_each(|m| m.apply(&mut c.bytes));
        (c, m)
    })
}

pub fn random_case() -> impl Strategy<Value = Case> {
    target_version().prop_flat_map(|(target, version)| target.random(version).prop_map(move |bytes| Case { target, version, bytes }))
}

/// The size cap `split_frame` is given for each version of the Split target.
pub fn split_max(v: i16) -> usize {
    [0, 64, 4096, 1 << 16][usize::try_from(v).unwrap_or(0).min(3)]
}

/// A case with the setup a session has done before decoding: the frame in a `Bytes` (or a
/// `BytesMut`, where the proxy patches in place) and, for legacy answers, the plan.
pub struct Prepared {
    case: Case,
    frame: Bytes,
    buf: BytesMut,
    plan: Option<Box<Plan>>,
}

pub fn prepare(case: &Case) -> Prepared {
    legacy::warm_up();
    let plan = match case.target {
        Target::Response(r @ (Resp::LegacyCreateTopics | Resp::LegacyDeleteTopics)) => {
            Some(legacy::plan(legacy::which(r == Resp::LegacyDeleteTopics, case.version), case.version))
        }
        _ => None,
    };
    Prepared { case: case.clone(), frame: Bytes::copy_from_slice(&case.bytes), buf: BytesMut::from(&case.bytes[..]), plan }
}

impl Prepared {
    /// Runs the target; what it returns matters only in that it must not panic.
    pub fn run(mut self) {
        let v = self.case.version;
        match self.case.target {
            Target::Header => {
                if let Some(h) = protocol::peek_request_header(&self.frame) {
                    let _ = (h.client_id(&self.frame), h.known_api());
                }
                let _ = protocol::peek_response_correlation(&self.frame);
            }
            Target::Produce => {
                let Some(h) = protocol::peek_request_header(&self.buf) else { return };
                let Some(head) = protocol::peek_produce(&self.buf, &h) else { return };
                let _ = protocol::produce_topics(&self.buf, &h, &head);
                // What the idempotence rule and the redelivery stamper read: the batch headers.
                let _ = (batch::all_idempotent(&self.buf, &h, &head), batch::produce_batches(&self.buf, &h, &head));
                let _ = batch::partition_records(&self.buf, &h, &head);
                let _ = protocol::patch_acks(&mut self.buf, &head, -1);
            }
            Target::AutoCreate => {
                let _ = guard::metadata_auto_create_offset(&self.buf, v);
                let _ = block_auto_create(&mut self.buf, 0, v);
            }
            Target::Guard(a) => {
                if a.guard(&self.frame, v) {
                    let _ = a.decode_only(&self.frame, v);
                }
            }
            Target::LegacyRequest => {
                let _ = legacy::handle(&self.frame, v, if v == 2 { 6 } else { 7 });
            }
            Target::Response(r) => self.response(r, v),
            Target::Split => while let Ok(Some(_)) = split_frame(&mut self.buf, split_max(v)) {},
            Target::SaslToken => {
                let name = SASL_MECHANISMS[usize::try_from(v).unwrap_or(0).min(3)];
                let mut state = SaslState::new(true);
                state.on_handshake_request(Mechanism::from_name(name));
                state.on_handshake_response(0);
                state.on_client_token(&self.frame);
                state.on_server_token(0, &self.frame);
                state.on_client_token(&self.frame);
                state.on_server_token(0, &self.frame);
                let _ = (state.principal(), state.problem(), saslname(&String::from_utf8_lossy(&self.frame)));
            }
            Target::OffsetCommit => {
                if let Some(h) = protocol::peek_request_header(&self.frame) {
                    let _ = (groups::group_id(&self.frame, &h), groups::offset_commit(&self.frame, &h));
                }
            }
        }
    }

    fn response(self, r: Resp, v: i16) {
        let f = &self.frame;
        let eps = FakeEndpoints;
        match r {
            Resp::Metadata => drop(addresses::metadata(f, v, &eps)),
            Resp::FindCoordinator => drop(addresses::find_coordinator(f, v, &eps)),
            Resp::DescribeCluster => drop(addresses::describe_cluster(f, v, &eps)),
            Resp::ApiVersions => drop(api_versions::rewrite(f, v)),
            Resp::Produce => {
                if let Some(off) = produce_response::scan(f, v).and_then(|s| s.tagged_offset) {
                    drop(tail::rewrite(f, off, TailApi::Produce, v, &eps));
                }
            }
            Resp::Fetch => {
                // What the consumer-skip detector reads, then the KIP-951 tail rewrite.
                let _ = fetch::response_errors(f, v);
                if let Some(off) = tail::fetch_tagged_offset(f, v) {
                    drop(tail::rewrite(f, off, TailApi::Fetch, v, &eps));
                }
            }
            Resp::LegacyCreateTopics | Resp::LegacyDeleteTopics => {
                if let Some(plan) = self.plan {
                    drop(legacy_handler::answer(f, *plan));
                }
            }
            Resp::Merge(a) => drop(split::merge(f, v, empty_merge(a))),
            Resp::DescribeConfigs => drop(decode_response::<DescribeConfigsResponse>(f, ApiKey::DescribeConfigs, v)),
        }
    }
}

/// A merge with nothing of the proxy's own: the broker's answer is decoded, reordered and
/// re-encoded as it is.
pub fn empty_merge(a: Admin) -> Merge {
    let order = vec!["a".to_owned()];
    match a {
        Admin::CreateTopics => Merge::CreateTopics { order, local: vec![] },
        Admin::DeleteTopics => Merge::DeleteTopics { order, local: vec![] },
        Admin::DeleteRecords => Merge::DeleteRecords { order, local: vec![] },
        Admin::AlterConfigs => Merge::AlterConfigs { order, local: vec![] },
        Admin::IncrementalAlterConfigs => Merge::IncrementalAlterConfigs { order, local: vec![] },
        Admin::CreatePartitions => Merge::CreatePartitions { order, local: vec![] },
        Admin::Reassignments => Merge::Reassignments { order, local: vec![] },
    }
}

/// A client-first SASL token as clients write it: SCRAM `n,,n=user,r=nonce`, PLAIN
/// `authzid NUL user NUL password`, OAUTHBEARER `n,,^Aauth=Bearer header.payload.sig^A^A` with a
/// `sub` claim in the payload (base64url, no padding).
fn sasl_token(v: i16) -> BoxedStrategy<Vec<u8>> {
    let name = "[a-zA-Z0-9=,._-]{0,24}";
    match v {
        0 | 1 => (name, "[a-zA-Z0-9]{8,32}").prop_map(|(u, r)| format!("n,,n={u},r={r}").into_bytes()).boxed(),
        2 => (name, name).prop_map(|(u, p)| format!("\0{u}\0{p}").into_bytes()).boxed(),
        _ => name
            .prop_map(|sub| {
                let payload = base64url(format!("{{\"sub\":\"{sub}\",\"exp\":1}}").as_bytes());
                format!("n,,\x01auth=Bearer eyJhbGciOiJub25lIn0.{payload}.sig\x01\x01").into_bytes()
            })
            .boxed(),
    }
}

fn base64url(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// An OffsetCommit request frame as consumers send it: a group, a member, topics with
/// partitions and offsets.
fn offset_commit(v: i16) -> BoxedStrategy<Vec<u8>> {
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    use kafka_protocol::messages::{GroupId, OffsetCommitRequest, TopicName};
    let partition = (any::<i32>(), any::<i64>())
        .prop_map(|(i, o)| OffsetCommitRequestPartition::default().with_partition_index(i).with_committed_offset(o));
    let topic = (super::name(), vec(partition, 0..4))
        .prop_map(|(n, p)| OffsetCommitRequestTopic::default().with_name(TopicName(super::s(&n))).with_partitions(p));
    (super::name(), "[a-z0-9-]{0,12}", vec(topic, 0..4))
        .prop_map(move |(group, member, topics)| {
            let req = OffsetCommitRequest::default()
                .with_group_id(GroupId(super::s(&group)))
                .with_member_id(super::s(&member))
                .with_topics(topics);
            request_frame(ApiKey::OffsetCommit, v, 7, Some("consumer"), &super::requests::encode(&req, v))
        })
        .boxed()
}

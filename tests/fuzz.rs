//! Property tests of every decoder that reads untrusted bytes (client requests and broker
//! responses): none panics on any input; a guard that accepts a body hands kafka-protocol
//! something it decodes safely and reads the same way; the acks patch changes exactly two bytes;
//! valid frames of every API and version are accepted, and truncated, flipped and count-inflated
//! ones are survived. Allocation bounds are in `fuzz_alloc.rs` (their own binary: a global
//! allocator applies to a whole binary). Long runs: docs/fuzzing.md.

#[allow(dead_code)]
mod fuzz_support;

/// Where proptest keeps this binary's failures (replayed first on every run).
const REGRESSIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proptest-regressions/fuzz.txt");

use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::{Bytes, BytesMut};
use fuzz_support::frames::{acks, produce};
use fuzz_support::requests::{self, Admin};
use fuzz_support::responses::Resp;
use fuzz_support::targets::{empty_merge, mutated_case, prepare, random_case, valid_case, Case, FakeEndpoints};
use fuzz_support::{config, hex, legacy, mutation, sweep};
use kafka_durability_proxy::handlers::metadata::block_auto_create;
use kafka_durability_proxy::handlers::split;
use kafka_durability_proxy::protocol::cursor::Cursor;
use kafka_durability_proxy::protocol::encode::{decode_response, response_header_len};
use kafka_durability_proxy::protocol::{self, guard, produce_response, split_frame};
use kafka_durability_proxy::rewrite::tail::{self, TailApi};
use kafka_durability_proxy::rewrite::{addresses, api_versions, RewriteError, Rewritten};
use kafka_protocol::messages::{
    DescribeClusterResponse, DescribeConfigsResponse, FetchResponse, FindCoordinatorResponse, MetadataRequest, MetadataResponse,
    ProduceResponse,
};
use kafka_protocol::protocol::Decodable;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Runs `f`, turning a panic into a failure that prints the input.
fn no_panic<T>(what: &str, input: &[u8], f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|e| {
        let msg = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
        TestCaseError::fail(format!("{what} panicked ({msg}) on input {}", hex(input)))
    })
}

fn run(case: &Case) -> Result<(), TestCaseError> {
    let what = format!("{:?} v{}", case.target, case.version);
    no_panic(&what, &case.bytes, || prepare(case).run())
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn no_target_panics_on_random_bytes(case in random_case()) {
        run(&case)?;
    }

    #[test]
    fn no_target_panics_on_mutated_valid_input((case, _mutations) in mutated_case()) {
        run(&case)?;
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// Every truncation of a valid input, and a huge count, varint and string length written at
    /// every position.
    #[test]
    fn no_target_panics_on_any_truncation_or_huge_count(case in valid_case()) {
        for bytes in sweep(&case.bytes) {
            run(&Case { bytes, ..case.clone() })?;
        }
    }
}

/// An admin API, a version it takes, and a valid body of it.
fn admin_body() -> impl Strategy<Value = (Admin, i16, Vec<u8>)> {
    proptest::sample::select(&Admin::ALL[..]).prop_flat_map(|a| a.versions().prop_flat_map(move |v| (Just(a), Just(v), a.body(v))))
}

/// Property (3): whatever a guard accepts, kafka-protocol decodes without panicking, and when it
/// decodes, it reads the body the way the guard walked it (no bytes left over).
fn accepted_decodes_safely(a: Admin, v: i16, body: &[u8]) -> Result<bool, TestCaseError> {
    let what = format!("{a:?} v{v}");
    if !no_panic(&format!("guard {what}"), body, || a.guard(body, v))? {
        return Ok(false);
    }
    let (decodable, kv) = a.decodable(body, v);
    if let Ok((left, _)) = no_panic(&format!("decode {what}"), body, || a.decode(&decodable, kv))? {
        prop_assert_eq!(left, 0, "{} accepted by the guard, decoded with {} bytes left: {}", what, left, hex(body));
    }
    Ok(true)
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn guards_accept_valid_bodies_which_round_trip((a, v, body) in admin_body()) {
        prop_assert!(a.guard(&body, v), "{:?} v{} refused a valid body {}", a, v, hex(&body));
        let (decodable, kv) = a.decodable(&body, v);
        let (left, again) = a.decode(&decodable, kv).map_err(TestCaseError::fail)?;
        prop_assert_eq!(left, 0);
        prop_assert_eq!(hex(&again), hex(&decodable), "re-encoded differently");
        accepted_decodes_safely(a, v, &body)?;
    }

    #[test]
    fn what_a_guard_accepts_decodes_safely(
        (a, v, mut body) in admin_body(), muts in proptest::collection::vec(mutation(), 1..4),
    ) {
        muts.iter().for_each(|m| m.apply(&mut body));
        accepted_decodes_safely(a, v, &body)?;
    }

    #[test]
    fn acks_patch_changes_exactly_the_acks_bytes(p in (0i16..=13).prop_flat_map(produce), new_acks in acks()) {
        let v = p.version;
        let h = protocol::peek_request_header(&p.frame).ok_or_else(|| TestCaseError::fail("header"))?;
        prop_assert_eq!((h.api_key, h.api_version, h.correlation_id), (0, v, p.header.corr));
        prop_assert_eq!(h.client_id(&p.frame), p.header.client_id.as_deref());
        let head = protocol::peek_produce(&p.frame, &h).ok_or_else(|| TestCaseError::fail("peek_produce"))?;
        prop_assert_eq!((head.acks, head.transactional), (p.acks, p.transactional));
        let topics = protocol::produce_topics(&p.frame, &h, &head);
        prop_assert_eq!(topics.as_ref(), Some(&p.topics));
        let mut patched = BytesMut::from(&p.frame[..]);
        prop_assert!(protocol::patch_acks(&mut patched, &head, new_acks).is_some());
        let again = protocol::peek_produce(&patched, &h).ok_or_else(|| TestCaseError::fail("re-peek"))?;
        prop_assert_eq!((again.acks, again.acks_offset), (new_acks, head.acks_offset));
        let changed: Vec<usize> = patched.iter().zip(&p.frame).enumerate().filter(|(_, (a, b))| a != b).map(|(i, _)| i).collect();
        prop_assert!(changed.iter().all(|i| (head.acks_offset..head.acks_offset + 2).contains(i)), "changed {:?}", changed);
        prop_assert_eq!(protocol::produce_topics(&patched, &h, &again), topics);
    }

    #[test]
    fn auto_create_offset_points_at_the_flag((v, (body, auto)) in (0i16..=13).prop_flat_map(|v| (Just(v), requests::metadata(v)))) {
        let at = guard::metadata_auto_create_offset(&body, v);
        if v < 4 {
            prop_assert_eq!(at, None);
        } else {
            prop_assert_eq!(at.and_then(|at| body.get(at)).copied(), Some(u8::from(auto)));
            let mut patched = body.clone();
            prop_assert_eq!(block_auto_create(&mut patched, 0, v), auto);
            prop_assert_eq!(guard::metadata_auto_create_offset(&patched, v).and_then(|at| patched.get(at)).copied(), Some(0));
        }
    }

    /// The byte the proxy clears is the one the broker reads as allow_auto_topic_creation,
    /// whenever the broker could read the body at all.
    #[test]
    fn auto_create_offset_agrees_with_the_decoder(
        (v, (mut body, _)) in (4i16..=13).prop_flat_map(|v| (Just(v), requests::metadata(v))),
        muts in proptest::collection::vec(mutation(), 0..3),
    ) {
        muts.iter().for_each(|m| m.apply(&mut body));
        let at = no_panic("metadata_auto_create_offset", &body, || guard::metadata_auto_create_offset(&body, v))?;
        // The decoder pre-allocates the topics array from its count: only a count the bytes can
        // back is worth decoding (any other fails to decode anyway).
        let plausible = Cursor::new(&body).bounded_array_len_v(v >= 9).is_some();
        let mut b = Bytes::copy_from_slice(&body);
        let decoded = if plausible { MetadataRequest::decode(&mut b, v).ok() } else { None };
        if let Some(m) = decoded {
            if b.is_empty() {
                let flag = at.and_then(|at| body.get(at)).map(|f| *f != 0);
                prop_assert_eq!(flag, Some(m.allow_auto_topic_creation), "v{} {}", v, hex(&body));
            }
        }
    }

    #[test]
    fn split_frame_returns_each_whole_frame(frames in proptest::collection::vec((0i16..=13).prop_flat_map(produce), 1..4)) {
        let frames: Vec<Vec<u8>> = frames.into_iter().map(|p| p.frame).collect();
        let n = frames.len();
        let all = frames.concat();
        let mut buf = BytesMut::from(&all[..all.len() - 1]);
        for (i, f) in frames.iter().enumerate() {
            let got = split_frame(&mut buf, 1 << 20).map_err(|e| TestCaseError::fail(e.to_string()))?;
            if i + 1 < n {
                prop_assert_eq!(got.as_deref(), Some(&f[..]));
            } else {
                prop_assert_eq!(got, None, "the last frame is one byte short");
            }
        }
    }
}

/// A broker response, a version of it, and a valid frame.
fn resp_frame() -> impl Strategy<Value = (Resp, i16, Vec<u8>)> {
    proptest::sample::select(Resp::all()).prop_flat_map(|r| r.versions().prop_flat_map(move |v| (Just(r), Just(v), r.frame(v))))
}

fn decode_out<M: Decodable>(out: &[u8], r: Resp, v: i16) -> Result<M, TestCaseError> {
    let skip = 4 + response_header_len(r.api_key(), v);
    let mut b = Bytes::copy_from_slice(out.get(skip..).unwrap_or_default());
    M::decode(&mut b, v).map_err(|e| TestCaseError::fail(format!("rewritten {r:?} v{v} does not decode: {e}")))
}

/// Ok, or a node the proxy has no listener for: a valid response is never a decode error.
fn rewritten<T>(r: Resp, v: i16, res: Result<T, RewriteError>) -> Result<Option<T>, TestCaseError> {
    match res {
        Ok(t) => Ok(Some(t)),
        Err(RewriteError::NoListener { .. }) => Ok(None),
        Err(e) => Err(TestCaseError::fail(format!("valid {r:?} v{v}: {e}"))),
    }
}

fn proxy_hosts<'a>(hosts: impl IntoIterator<Item = &'a str>) -> Result<(), TestCaseError> {
    for h in hosts {
        prop_assert_eq!(h, "proxy.test");
    }
    Ok(())
}

fn check_response(r: Resp, v: i16, frame: &Bytes) -> Result<(), TestCaseError> {
    let eps = FakeEndpoints;
    let joined = |w: Rewritten| match w {
        Rewritten::Whole(b) => b.to_vec(),
        Rewritten::Pieces(p) => p.concat(),
    };
    match r {
        Resp::Metadata => {
            if let Some(out) = rewritten(r, v, addresses::metadata(frame, v, &eps))? {
                proxy_hosts(decode_out::<MetadataResponse>(&out, r, v)?.brokers.iter().map(|b| b.host.as_str()))?;
            }
        }
        Resp::DescribeCluster => {
            if let Some(out) = rewritten(r, v, addresses::describe_cluster(frame, v, &eps))? {
                proxy_hosts(decode_out::<DescribeClusterResponse>(&out, r, v)?.brokers.iter().map(|b| b.host.as_str()))?;
            }
        }
        Resp::FindCoordinator => {
            if let Some(out) = rewritten(r, v, addresses::find_coordinator(frame, v, &eps))? {
                decode_out::<FindCoordinatorResponse>(&out, r, v)?;
            }
        }
        Resp::ApiVersions => {
            rewritten(r, v, api_versions::rewrite(frame, v))?;
        }
        Resp::Produce => {
            let scan = produce_response::scan(frame, v).ok_or_else(|| TestCaseError::fail(format!("scan v{v} refused {}", hex(frame))))?;
            prop_assert_eq!(scan.tagged_offset.is_some(), v >= 9);
            if let Some(off) = scan.tagged_offset {
                if let Some(Some(out)) = rewritten(r, v, tail::rewrite(frame, off, TailApi::Produce, v, &eps))? {
                    proxy_hosts(decode_out::<ProduceResponse>(&joined(out), r, v)?.node_endpoints.iter().map(|e| e.host.as_str()))?;
                }
            }
        }
        Resp::Fetch => {
            let off = tail::fetch_tagged_offset(frame, v);
            prop_assert_eq!(off.is_some(), v >= 12);
            if let Some(off) = off {
                if let Some(Some(out)) = rewritten(r, v, tail::rewrite(frame, off, TailApi::Fetch, v, &eps))? {
                    proxy_hosts(decode_out::<FetchResponse>(&joined(out), r, v)?.node_endpoints.iter().map(|e| e.host.as_str()))?;
                }
            }
        }
        Resp::Merge(a) => {
            let out = split::merge(frame, v, empty_merge(a)).map_err(|e| TestCaseError::fail(format!("{r:?} v{v}: {e}")))?;
            prop_assert_eq!(protocol::peek_response_correlation(&out), protocol::peek_response_correlation(frame));
        }
        Resp::DescribeConfigs => {
            decode_response::<DescribeConfigsResponse>(frame, r.api_key(), v).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        Resp::LegacyCreateTopics | Resp::LegacyDeleteTopics => {
            let plan = legacy::plan(legacy::which(r == Resp::LegacyDeleteTopics, v), v);
            let out = kafka_durability_proxy::handlers::legacy::answer(frame, *plan).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(protocol::peek_response_correlation(&out), Some(9), "the client's correlation id");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn valid_responses_are_read_and_rewritten((r, v, frame) in resp_frame()) {
        let frame = Bytes::from(frame);
        no_panic(&format!("{r:?} v{v}"), &frame.clone(), || check_response(r, v, &frame))??;
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// The OffsetCommit target's valid frames are read back as the detector reads them, so its
    /// fuzzing starts from frames the walk accepts.
    #[test]
    fn valid_offset_commits_are_read_back((v, frame) in (2i16..=9).prop_flat_map(|v| (Just(v), fuzz_support::targets::Target::OffsetCommit.valid(v)))) {
        let h = protocol::peek_request_header(&frame).expect("header");
        let (group, _member, commits) = kafka_durability_proxy::protocol::groups::offset_commit(&frame, &h).expect("a valid OffsetCommit is read");
        prop_assert_eq!(kafka_durability_proxy::protocol::groups::group_id(&frame, &h), Some(group.as_str()), "v{}", v);
        let mut body = Bytes::copy_from_slice(&frame[h.body_offset.expect("body")..]);
        let req = kafka_protocol::messages::OffsetCommitRequest::decode(&mut body, v).expect("decode");
        prop_assert_eq!(group.as_str(), req.group_id.0.as_str());
        let want: Vec<(String, i32, i64)> =
            req.topics.iter().flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.to_string(), p.partition_index, p.committed_offset))).collect();
        let got: Vec<(String, i32, i64)> = commits.into_iter().map(|c| (c.topic, c.partition, c.offset)).collect();
        prop_assert_eq!(got, want, "v{}", v);
    }
}

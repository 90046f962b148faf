//! Shared by the property tests (`tests/fuzz.rs`) and the allocation bound (`tests/fuzz_alloc.rs`):
//! strategies for valid inputs of every decoder that reads untrusted bytes, the mutations applied
//! to them, and one runner per target that drives the crate's public API over any bytes.

pub mod admin_responses;
pub mod dense;
pub mod frames;
pub mod legacy;
pub mod requests;
pub mod responses;
pub mod targets;

use kafka_protocol::protocol::StrBytes;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// Set by each test binary: where its regressions file lives.
const REGRESSIONS: &str = super::REGRESSIONS;

/// Cases per property when `PROPTEST_CASES` is not set: small enough that the whole suite runs
/// in seconds in a debug build; set `PROPTEST_CASES` for longer runs (docs/fuzzing.md).
/// Failures are kept in `proptest-regressions/<binary>.txt` at the crate root (committed) and
/// replayed first on every run.
pub fn config(default_cases: u32) -> Config {
    let mut c = Config { failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))), ..Config::default() };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = default_cases;
    }
    c.max_shrink_iters = c.max_shrink_iters.min(4096);
    c
}

pub fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// Topic, config and resource names: mostly legal Kafka names, sometimes empty or any Unicode.
pub fn name() -> impl Strategy<Value = String> {
    prop_oneof![6 => "[a-zA-Z0-9._-]{1,24}", 1 => ".{0,6}", 1 => Just(String::new())]
}

pub fn host() -> impl Strategy<Value = String> {
    prop_oneof![6 => "[a-z0-9.-]{1,20}", 1 => Just(String::new())]
}

/// Node ids: mostly small (mapped to proxy listeners), sometimes -1 or anything.
pub fn node() -> impl Strategy<Value = i32> {
    prop_oneof![8 => -1i32..8, 1 => any::<i32>()]
}

pub fn uuid() -> impl Strategy<Value = uuid::Uuid> {
    any::<u128>().prop_map(uuid::Uuid::from_u128)
}

pub fn error_code() -> impl Strategy<Value = i16> {
    prop_oneof![4 => Just(0i16), 2 => 1i16..120, 1 => any::<i16>()]
}

/// Lowercase hex, for failure messages.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One change to a valid input.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// Keep only the first `n` bytes (index into the input length + 1).
    Truncate(prop::sample::Index),
    /// XOR one byte with a non-zero mask.
    Flip(prop::sample::Index, u8),
    /// Overwrite four bytes with a classic (i32) count of 0x7fffffff.
    HugeCount(prop::sample::Index),
    /// Replace one byte with the five-byte varint of u32::MAX (a compact count or length).
    HugeVarint(prop::sample::Index),
    /// Overwrite two bytes with i16 -2 or 0x7fff (a classic string length).
    HugeLength(prop::sample::Index, bool),
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
        any::<prop::sample::Index>().prop_map(Mutation::HugeCount),
        any::<prop::sample::Index>().prop_map(Mutation::HugeVarint),
        (any::<prop::sample::Index>(), any::<bool>()).prop_map(|(i, b)| Mutation::HugeLength(i, b)),
    ]
}

impl Mutation {
    pub fn apply(&self, b: &mut Vec<u8>) {
        let len = b.len();
        let at = |i: &prop::sample::Index| if len == 0 { 0 } else { i.index(len) };
        match self {
            Mutation::Truncate(i) => b.truncate(i.index(len + 1)),
            Mutation::Flip(i, m) if !b.is_empty() => {
                let p = at(i);
                b[p] ^= m;
            }
            Mutation::HugeCount(i) => overwrite(b, at(i), &0x7fff_ffffi32.to_be_bytes()),
            Mutation::HugeVarint(i) if !b.is_empty() => {
                let p = at(i);
                b.splice(p..=p, [0xff, 0xff, 0xff, 0xff, 0x0f]);
            }
            Mutation::HugeLength(i, neg) => overwrite(b, at(i), &if *neg { -2i16 } else { i16::MAX }.to_be_bytes()),
            _ => {}
        }
    }
}

/// Writes `with` at `p`, clipped to the input.
pub fn overwrite(b: &mut [u8], p: usize, with: &[u8]) {
    for (dst, src) in b.iter_mut().skip(p).zip(with) {
        *dst = *src;
    }
}

/// Every deterministic variant of a valid input: each truncation, and a huge count, varint and
/// length at each position. Cheap enough for inputs of a few hundred bytes.
pub fn sweep(b: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    let truncations = (0..b.len()).map(move |n| b[..n].to_vec());
    let counts = (0..b.len()).flat_map(move |p| {
        let mut i32s = b.to_vec();
        overwrite(&mut i32s, p, &0x7fff_ffffi32.to_be_bytes());
        let mut varint = b.to_vec();
        varint.splice(p..=p, [0xff, 0xff, 0xff, 0xff, 0x0f]);
        let mut len16 = b.to_vec();
        overwrite(&mut len16, p, &i16::MAX.to_be_bytes());
        [i32s, varint, len16]
    });
    truncations.chain(counts)
}

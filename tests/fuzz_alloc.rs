//! Allocation bound of every decoder that reads untrusted bytes: a counting global allocator
//! (its own test binary, as a global allocator applies to a whole binary) measures what one
//! decode of one input allocates, and it must stay within a small multiple of the input. Valid,
//! mutated and random inputs of every target (`fuzz_support::targets`), every truncation and
//! inflated count of valid ones, and the deterministic regressions of the bugs these found.

#[allow(dead_code)]
mod fuzz_support;

/// Where proptest keeps this binary's failures (replayed first on every run).
const REGRESSIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proptest-regressions/fuzz_alloc.txt");

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::io::Write;

use bytes::Bytes;
use fuzz_support::dense::{dense, produce_errors};
use fuzz_support::targets::{mutated_case, prepare, random_case, split_max, valid_case, Case, FakeEndpoints, Target};
use fuzz_support::{config, hex, sweep};
use kafka_durability_proxy::protocol::produce_response;
use kafka_durability_proxy::rewrite::{addresses, api_versions};
use proptest::prelude::*;

/// Allowed: this many bytes per input byte, plus a constant for fixed costs (a decoded message's
/// own struct, error strings, a re-encoding's first buffer).
const PER_BYTE: usize = 32;
const FIXED: usize = 16 << 10;
/// A single request above this aborts at once with the input printed: an allocation that large
/// could fail (and abort the process) or succeed on overcommit and hide.
const HUGE: usize = 64 << 20;

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    /// Bytes requested in all (every allocation and reallocation counted in full).
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
    /// Bytes held now and at most, relative to the start of the measurement.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    static INPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

struct Counting;

/// Counts a request on the measuring thread (`freed` is what a reallocation gives back);
/// aborts, printing the input, on a huge one.
fn count(size: usize, freed: usize) {
    if !MEASURING.with(Cell::get) {
        return;
    }
    ALLOCATED.with(|a| a.set(a.get().saturating_add(size)));
    let live = LIVE.with(|l| {
        l.set(l.get() + size as isize - freed as isize);
        l.get()
    });
    PEAK.with(|p| p.set(p.get().max(live)));
    if size > HUGE {
        MEASURING.with(|m| m.set(false));
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "fuzz_alloc: one allocation of {size} bytes while decoding:");
        INPUT.with(|i| {
            let _ = err.write_all(&i.borrow());
        });
        let _ = writeln!(err);
        std::process::abort();
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 0);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 0);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if MEASURING.with(Cell::get) {
            LIVE.with(|l| l.set(l.get() - layout.size() as isize));
        }
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size, layout.size());
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// What `f` allocated on this thread: (bytes requested in all, most bytes held at once). The
/// input is kept for the huge-allocation report.
fn measure(label: &str, input: &[u8], f: impl FnOnce()) -> (usize, usize) {
    INPUT.with(|i| *i.borrow_mut() = format!("{label}: {}", hex(input)).into_bytes());
    ALLOCATED.with(|a| a.set(0));
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    MEASURING.with(|m| m.set(true));
    f();
    MEASURING.with(|m| m.set(false));
    (ALLOCATED.with(Cell::get), PEAK.with(Cell::get).max(0) as usize)
}

/// What one input may cost. `split_frame` also reserves room for the rest of a frame whose size
/// prefix it has read, up to the cap: the read that fills it needs that buffer anyway.
fn bound(case: &Case) -> usize {
    let reserve = if case.target == Target::Split { split_max(case.version) + 4 } else { 0 };
    PER_BYTE * case.bytes.len() + FIXED + reserve
}

fn within_bound(case: &Case) -> Result<(), TestCaseError> {
    let label = format!("{:?} v{}", case.target, case.version);
    let prepared = prepare(case);
    let (used, peak) = measure(&label, &case.bytes, || prepared.run());
    prop_assert!(
        used <= bound(case),
        "{} allocated {} bytes (peak {}) for a {}-byte input (bound {}): {}",
        label,
        used,
        peak,
        case.bytes.len(),
        bound(case),
        hex(&case.bytes)
    );
    Ok(())
}

fn any_case() -> impl Strategy<Value = Case> {
    prop_oneof![valid_case(), mutated_case().prop_map(|(c, _)| c), random_case()]
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn any_input_allocates_a_small_multiple_of_itself(case in any_case()) {
        within_bound(&case)?;
    }
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn every_truncation_and_huge_count_allocates_a_small_multiple(case in valid_case()) {
        for bytes in sweep(&case.bytes) {
            within_bound(&Case { bytes, ..case.clone() })?;
        }
    }
}

#[test]
fn dense_inputs_allocate_a_small_multiple_of_themselves() {
    for target in Target::all() {
        for version in target.versions() {
            for (n, deep) in [(1, false), (400, false), (400, true)] {
                let Some(bytes) = dense(target, version, n, deep) else { continue };
                let case = Case { target, version, bytes };
                if let Err(e) = within_bound(&case) {
                    panic!("{e}");
                }
            }
        }
    }
}

/// Regression: `produce_response::scan` copied the topic name into every failed partition, so a
/// response naming one long topic with many failed partitions (a broker's answer to a request
/// that wrote them) cost name length x partitions.
#[test]
fn produce_response_errors_share_their_topic_name() {
    for version in [3, 8, 9, 12] {
        let frame = produce_errors(version, 8_000, 2_000);
        let (used, peak) = measure("scan", &frame, || {
            let scan = produce_response::scan(&frame, version).expect("scan");
            assert_eq!(scan.errors.len(), 2_000);
        });
        let bound = PER_BYTE * frame.len() + FIXED;
        assert!(used <= bound, "v{version}: scan allocated {used} bytes (peak {peak}) for a {}-byte response", frame.len());
    }
}

/// Regression: broker responses went to kafka-protocol unchecked, and it pre-allocates arrays
/// from their wire counts: one inflated count asked for gigabytes, and the failed allocation
/// aborted the whole proxy. Each is now refused by `protocol::response_guard` before decoding.
#[test]
fn inflated_counts_in_broker_responses_are_refused_before_decoding() {
    let eps = FakeEndpoints;
    // FindCoordinator v4: header (correlation id, no tags), throttle, coordinators count u32::MAX - 1.
    let find = Bytes::from_static(&[0, 0, 0, 14, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    // Metadata v0: correlation id, brokers count i32::MAX.
    let meta = Bytes::from_static(&[0, 0, 0, 8, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff]);
    // ApiVersions v3: error 0, no api keys, throttle, one tag: 0 (supported_features), 5 bytes, count u32::MAX - 1.
    let versions = Bytes::from_static(&[0, 0, 0, 18, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    for (name, frame, run) in [
        ("FindCoordinator v4", &find, &(|f: &Bytes| addresses::find_coordinator(f, 4, &eps).is_err()) as &dyn Fn(&Bytes) -> bool),
        ("Metadata v0", &meta, &|f: &Bytes| addresses::metadata(f, 0, &eps).is_err()),
        ("ApiVersions v3", &versions, &|f: &Bytes| api_versions::rewrite(f, 3).is_err()),
    ] {
        let mut refused = false;
        let (used, _) = measure(name, frame, || refused = run(frame));
        assert!(refused, "{name}: refused");
        assert!(used <= FIXED, "{name}: allocated {used} bytes for a {}-byte frame", frame.len());
    }
}

//! The replays against the plain implementations, and the stack curves against the runs.

use paging::pager::policy::PolicyKind;
use proptest::prelude::*;

use crate::policy::{Params, Policy};
use crate::reference;
use crate::sim::{Outcome, PageString, replay};
use crate::stack::{lru_curve, opt_curve};

/// Where the tests' pages live: page `p` of a string is page `BASE + p` of the space.
const BASE: u64 = 0x4_0000;

const FIFO: Policy = Policy::Pager(PolicyKind::Fifo);
const LRU: Policy = Policy::Pager(PolicyKind::Lru);
const CLOCK: Policy = Policy::Pager(PolicyKind::Clock);

fn string(refs: &[(u64, bool)]) -> PageString {
    PageString::new(refs.iter().map(|&(page, write)| (BASE + page, write)))
}

fn reads(pages: &[u64]) -> Vec<(u64, bool)> {
    pages.iter().map(|&page| (page, false)).collect()
}

fn run(refs: &[(u64, bool)], policy: Policy, frames: u32) -> Outcome {
    let string = string(refs);
    let next = string.next_uses();
    replay(&string, policy, frames, Params::default(), Some(&next)).expect("the replay runs")
}

const TEXTBOOK: [u64; 20] = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1];
const BELADY: [u64; 12] = [1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5];

#[test]
fn the_textbook_string_gives_fifo_15_lru_12_opt_9_with_3_frames() {
    let refs = reads(&TEXTBOOK);
    assert_eq!(run(&refs, FIFO, 3).faults, 15);
    assert_eq!(run(&refs, LRU, 3).faults, 12);
    assert_eq!(run(&refs, Policy::Opt, 3).faults, 9);
    let s = string(&refs);
    assert_eq!(lru_curve(&s, 8).faults(3), Some(12));
    assert_eq!(opt_curve(&s, &s.next_uses(), 8).faults(3), Some(9));
    let outcome = run(&refs, FIFO, 3);
    // Eight distinct pages, each first touched once; the rest come back from the store
    // or as zeros again (read-only pages leave without a write).
    assert_eq!((outcome.refs, outcome.writes, outcome.skipped), (20, 0, 0));
    assert_eq!(outcome.demand_zero + outcome.hard + outcome.soft, 15);
}

#[test]
fn fifo_shows_beladys_anomaly() {
    let refs = reads(&BELADY);
    assert_eq!(run(&refs, FIFO, 3).faults, 9);
    assert_eq!(run(&refs, FIFO, 4).faults, 10);
    assert_eq!(reference::fifo(&refs, 3).faults, 9);
    assert_eq!(reference::fifo(&refs, 4).faults, 10);
}

#[test]
fn written_pages_are_written_on_their_way_out() {
    // Pages 1 and 3 are written; with 2 frames each leaves once dirty.
    let refs = [(1, true), (2, false), (3, true), (1, false), (2, false), (3, false)];
    let counts = reference::fifo(&refs, 2);
    let outcome = run(&refs, FIFO, 2);
    assert_eq!((outcome.faults, outcome.writes), (counts.faults, counts.writes));
    assert_eq!((counts.faults, counts.writes), (6, 2));
    // Page 1 came back from the store: a hard fault; 2 was zeros, so it is zeros again.
    assert_eq!((outcome.hard, outcome.demand_zero), (2, 4));
}

#[test]
fn pages_outside_the_user_half_are_skipped_and_counted() {
    let string =
        PageString::new([(BASE, false), (0xFFFF_FFFF_FF60_0000 >> 12, false), (BASE, true)]);
    let outcome = replay(&string, CLOCK, 4, Params::default(), None).unwrap();
    assert_eq!((outcome.refs, outcome.skipped, outcome.faults), (2, 1, 1));
}

/// A random reference string over a few pages, a third of them writes.
fn strings() -> impl Strategy<Value = Vec<(u64, bool)>> {
    prop::collection::vec((0u64..12, prop::bool::weighted(0.3)), 1..120)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn fifo_lru_and_clock_replays_equal_the_plain_ones(refs in strings(), frames in 1u32..8) {
        let n = frames as usize;
        let plain = [reference::fifo(&refs, n), reference::lru(&refs, n), reference::clock(&refs, n)];
        for (policy, plain) in [FIFO, LRU, CLOCK].into_iter().zip(plain) {
            let outcome = run(&refs, policy, frames);
            prop_assert_eq!((outcome.faults, outcome.writes), (plain.faults, plain.writes), "{}", policy);
        }
        prop_assert_eq!(run(&refs, Policy::Opt, frames).faults, reference::opt(&refs, n));
    }

    #[test]
    fn the_stack_curves_equal_a_run_per_frame_count(refs in strings()) {
        let s = string(&refs);
        let next = s.next_uses();
        let (lru, opt) = (lru_curve(&s, 10), opt_curve(&s, &next, 10));
        for frames in 1..=10u32 {
            let n = frames as usize;
            prop_assert_eq!(lru.faults(frames), Some(reference::lru(&refs, n).faults));
            prop_assert_eq!(opt.faults(frames), Some(reference::opt(&refs, n)));
        }
        prop_assert_eq!(lru.faults(11), None);
    }
}

/// The committed lackey trace (of `/bin/true`), as a page string.
fn committed_trace() -> (PageString, Vec<(u64, bool)>) {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("replay/traces/true.lackey.xz");
    let refs: Vec<(u64, bool)> = crate::trace::open(&path)
        .expect("the committed trace opens")
        .map(|r| (r.page, r.write))
        .collect();
    (PageString::new(refs.iter().copied()), refs)
}

/// On a real program's trace, the pager's FIFO, LRU and Clock count exactly what the
/// plain implementations count, OPT's replay what its curve says, and the one-pass
/// curves equal runs per frame count.
#[test]
fn a_real_trace_replays_exactly() {
    let (string, refs) = committed_trace();
    let next = string.next_uses();
    let (lru, opt) = (lru_curve(&string, 64), opt_curve(&string, &next, 64));
    for frames in [8u32, 32] {
        let n = frames as usize;
        let plain =
            [reference::fifo(&refs, n), reference::lru(&refs, n), reference::clock(&refs, n)];
        for (policy, plain) in [FIFO, LRU, CLOCK].into_iter().zip(plain) {
            let outcome = replay(&string, policy, frames, Params::default(), None).unwrap();
            assert_eq!((outcome.faults, outcome.writes), (plain.faults, plain.writes), "{policy}");
        }
        assert_eq!(lru.faults(frames), Some(reference::lru(&refs, n).faults));
        let optimal = replay(&string, Policy::Opt, frames, Params::default(), Some(&next)).unwrap();
        assert_eq!(opt.faults(frames), Some(optimal.faults));
        assert!(optimal.faults <= lru.faults(frames).unwrap());
    }
}

/// Where valgrind is installed, a fresh trace of a real program replays: every policy
/// runs it, and OPT takes the fewest faults.
#[test]
fn a_fresh_valgrind_trace_replays() {
    let dir = std::env::temp_dir().join(format!("replay-lackey-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("true.txt");
    let ran = std::process::Command::new("valgrind")
        .args(["--tool=lackey", "--trace-mem=yes"])
        .arg(format!("--log-file={}", log.display()))
        .arg("/bin/true")
        .output();
    if !ran.is_ok_and(|out| out.status.success()) {
        eprintln!("valgrind is not installed here: no fresh trace");
        return;
    }
    let refs: Vec<(u64, bool)> =
        crate::trace::open(&log).unwrap().map(|r| (r.page, r.write)).collect();
    let string = PageString::new(refs.iter().copied());
    assert!(string.len() > 10_000, "a real program makes many references");
    let next = string.next_uses();
    let faults: Vec<u64> = Policy::ALL
        .iter()
        .map(|&policy| replay(&string, policy, 16, Params::default(), Some(&next)).unwrap().faults)
        .collect();
    let optimal = faults[Policy::ALL.iter().position(|&p| p == Policy::Opt).unwrap()];
    assert_eq!(faults.iter().min(), Some(&optimal), "{faults:?}");
    assert_eq!(faults[0], reference::fifo(&refs, 16).faults);
    std::fs::remove_dir_all(&dir).unwrap();
}

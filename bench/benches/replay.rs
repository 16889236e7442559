//! The `replay` program's speed on the committed lackey trace (decompressed beforehand, so
//! decompression is excluded): parsing and replaying Clock with 64 frames through the pager
//! on the simulated machine, beside a plain in-memory Clock loop over the same page string;
//! and LRU's and OPT's whole curves (one pass each) beside one Clock replay.

use std::hint::black_box;
use std::io::Read;
use std::path::Path;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use paging::pager::policy::PolicyKind;
use paging_examples::policy::{Params, Policy};
use paging_examples::sim::{PageString, replay};
use paging_examples::stack::{lru_curve, opt_curve};
use paging_examples::trace;

/// Frames of the replays.
const FRAMES: u32 = 64;
/// The largest frame count of the curves.
const CURVE_FRAMES: u32 = 256;

/// The committed trace, decompressed.
fn lackey_text() -> Vec<u8> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/replay/traces/true.lackey.xz");
    let mut text = Vec::new();
    trace::decompressed(&path)
        .and_then(|mut reader| reader.read_to_end(&mut text))
        .expect("the committed trace reads");
    text
}

/// The page string of lackey text.
fn parse(text: &[u8]) -> PageString {
    let trace = trace::from_reader(std::io::Cursor::new(text.to_vec()));
    PageString::new(trace.map(|r| (r.page, r.write)))
}

/// Plain Clock over a page string: a ring of frames, a hand, a referenced bit; pages found
/// through a vector indexed by the string's page ids. The floor of any Clock replay.
fn plain_clock(string: &PageString, frames: usize) -> u64 {
    let mut frame_of = vec![u32::MAX; string.pages.len()];
    let mut ring: Vec<(u32, bool)> = Vec::with_capacity(frames);
    let (mut hand, mut faults) = (0, 0u64);
    for &r in &string.refs {
        let id = r >> 1;
        let at = frame_of[id as usize];
        if at != u32::MAX {
            ring[at as usize].1 = true;
            continue;
        }
        faults += 1;
        if ring.len() < frames {
            frame_of[id as usize] = ring.len() as u32;
            ring.push((id, true));
            continue;
        }
        while ring[hand].1 {
            ring[hand].1 = false;
            hand = (hand + 1) % frames;
        }
        frame_of[ring[hand].0 as usize] = u32::MAX;
        ring[hand] = (id, true);
        frame_of[id as usize] = hand as u32;
        hand = (hand + 1) % frames;
    }
    faults
}

fn replay_clock(c: &mut Criterion) {
    let text = lackey_text();
    let string = parse(&text);
    let clock = Policy::Pager(PolicyKind::Clock);
    let params = Params::default();
    let mut group = c.benchmark_group("replay_clock");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group.bench_function("ours", |b| {
        b.iter(|| {
            let string = parse(black_box(&text));
            replay(&string, clock, FRAMES, params, None).expect("replays").faults
        });
    });
    group.bench_function("replay_only", |b| {
        b.iter(|| replay(black_box(&string), clock, FRAMES, params, None).expect("replays").faults);
    });
    group.bench_function("peer", |b| b.iter(|| plain_clock(black_box(&string), FRAMES as usize)));
    group.finish();
}

fn replay_curves(c: &mut Criterion) {
    let string = parse(&lackey_text());
    let next = string.next_uses();
    let clock = Policy::Pager(PolicyKind::Clock);
    let mut group = c.benchmark_group("replay_curves");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group.bench_function("ours", |b| {
        b.iter(|| {
            let lru = lru_curve(black_box(&string), CURVE_FRAMES);
            let opt = opt_curve(black_box(&string), &next, CURVE_FRAMES);
            (lru.faults(FRAMES), opt.faults(FRAMES))
        });
    });
    group.bench_function("peer", |b| {
        b.iter(|| {
            replay(black_box(&string), clock, FRAMES, Params::default(), None)
                .expect("replays")
                .faults
        });
    });
    group.finish();
}

criterion_group!(benches, replay_clock, replay_curves);
criterion_main!(benches);

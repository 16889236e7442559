//! `count-ops ROW SIDE`: runs one engine benchmark row once, ours or the peer's, with the
//! operation in a function named `counted_…` and its setup outside it, so that callgrind's
//! `--toggle-collect=*counted_*` counts the instructions of the operation alone.
//! `cargo xtask bench` runs it for every row and divides by the pages each run handles.

use std::hint::black_box;
use std::process::ExitCode;

use paging_bench::ops::{
    fresh, ours_map_each, ours_map_huge, ours_map_range, ours_translate, ours_unmap_reclaim,
    peer_map_each, peer_map_huge, peer_translate, peer_unmap_reclaim,
};
use paging_bench::sim_ops::{
    ACCESSES, DEMAND_ZERO_PAGES, HIT_PAGES, MISS_PAGES, demand_zero_machine, demand_zero_run,
    hit_offsets, machine_with, miss_offsets, sim_loads,
};
use paging_bench::{Arena, Frames, PAGES, random_pages};
use paging_sim::Machine;
use paging_x86::X86_64;

/// Builds tables, or changes them.
type Build = fn(&mut Arena, &mut Frames);
/// Translates pages, returning a sum of what it found.
type Translate = fn(&mut Arena, &[u64]) -> u64;

/// The rows, each with the pages one run handles.
const ROWS: &[(&str, u64)] = &[
    ("map_4k_each", PAGES),
    ("map_4k_range", PAGES),
    ("translate_random", PAGES),
    ("unmap_reclaim", PAGES),
    ("map_1g_huge", 512),
    ("sim_tlb_hit", ACCESSES),
    ("sim_tlb_miss", ACCESSES),
    ("sim_demand_zero", DEMAND_ZERO_PAGES),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [row, side] = args.as_slice() else {
        eprintln!("usage: count-ops ROW ours|peer (rows: {})", names());
        return ExitCode::FAILURE;
    };
    let ours = match side.as_str() {
        "ours" => true,
        "peer" => false,
        _ => {
            eprintln!("side must be ours or peer, not {side}");
            return ExitCode::FAILURE;
        }
    };
    let Some(&(_, pages)) = ROWS.iter().find(|(name, _)| name == row) else {
        eprintln!("no row {row} (rows: {})", names());
        return ExitCode::FAILURE;
    };
    run(row, ours);
    // What the caller divides the count by.
    println!("pages {pages}");
    ExitCode::SUCCESS
}

fn names() -> String {
    ROWS.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
}

fn run(row: &str, ours: bool) {
    let (mut arena, mut frames) = fresh();
    match (row, ours) {
        ("map_4k_each", true) => counted_map(&mut arena, &mut frames, ours_map_each),
        ("map_4k_each" | "map_4k_range", false) => {
            counted_map(&mut arena, &mut frames, peer_map_each);
        }
        ("map_4k_range", true) => counted_map(&mut arena, &mut frames, ours_map_range),
        ("map_1g_huge", true) => counted_map(&mut arena, &mut frames, ours_map_huge),
        ("map_1g_huge", false) => counted_map(&mut arena, &mut frames, peer_map_huge),
        ("translate_random", _) => {
            let probes = random_pages(PAGES);
            let (build, translate): (Build, Translate) = if ours {
                (ours_map_range, ours_translate)
            } else {
                (peer_map_each, peer_translate)
            };
            build(&mut arena, &mut frames);
            black_box(counted_translate(&mut arena, &probes, translate));
        }
        ("unmap_reclaim", _) => {
            let (build, unmap): (Build, Build) = if ours {
                (ours_map_each, ours_unmap_reclaim)
            } else {
                (peer_map_each, peer_unmap_reclaim)
            };
            build(&mut arena, &mut frames);
            counted_map(&mut arena, &mut frames, unmap);
        }
        ("sim_tlb_hit" | "sim_tlb_miss", true) => {
            let (pages, offsets) = if row == "sim_tlb_hit" {
                (HIT_PAGES, hit_offsets())
            } else {
                (MISS_PAGES, miss_offsets())
            };
            let mut machine = machine_with(pages);
            // Once outside the count: the TLB and the host's caches as a measurement finds them.
            black_box(sim_loads(&mut machine, &offsets));
            black_box(counted_loads(&mut machine, &offsets));
        }
        ("sim_demand_zero", true) => {
            let mut machine = demand_zero_machine();
            black_box(counted_demand_zero(&mut machine));
        }
        ("sim_demand_zero", false) => {
            black_box(counted_native_zero_pages());
        }
        ("sim_tlb_hit" | "sim_tlb_miss", false) => {
            let offsets = if row == "sim_tlb_hit" { hit_offsets() } else { miss_offsets() };
            let memory = vec![0u64; (MISS_PAGES * 512) as usize];
            black_box(counted_native(&memory, &offsets));
        }
        _ => unreachable!("main checked the row against ROWS"),
    }
    black_box((&arena, &frames));
}

/// The operation callgrind counts: `op` on the arena.
#[inline(never)]
fn counted_map(arena: &mut Arena, frames: &mut Frames, op: fn(&mut Arena, &mut Frames)) {
    op(black_box(arena), black_box(frames));
}

/// The simulated loads callgrind counts.
#[inline(never)]
fn counted_loads(machine: &mut Machine<X86_64>, offsets: &[u64]) -> u64 {
    sim_loads(black_box(machine), black_box(offsets))
}

/// The native loop the simulated loads are compared with, as the criterion group has it.
#[inline(never)]
fn counted_native(memory: &[u64], offsets: &[u64]) -> u64 {
    offsets
        .iter()
        .fold(0u64, |sum, &offset| sum.wrapping_add(black_box(memory)[(offset / 8) as usize]))
}

/// The demand-zero faults callgrind counts (the space's setup included, as the criterion
/// group times it).
#[inline(never)]
fn counted_demand_zero(machine: &mut Machine<X86_64>) -> u64 {
    demand_zero_run(black_box(machine))
}

/// The native loop the demand-zero faults are compared with: a fresh zeroed page per
/// touch, then the store.
#[inline(never)]
fn counted_native_zero_pages() -> Vec<Box<[u64; 512]>> {
    (0..DEMAND_ZERO_PAGES)
        .map(|page| {
            let mut frame = Box::new([0u64; 512]);
            frame[0] = page;
            frame
        })
        .collect()
}

/// The translations callgrind counts.
#[inline(never)]
fn counted_translate(arena: &mut Arena, probes: &[u64], op: fn(&mut Arena, &[u64]) -> u64) -> u64 {
    op(black_box(arena), black_box(probes))
}

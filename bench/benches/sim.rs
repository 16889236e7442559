//! The simulated machine against a plain native loop over the same access pattern: what
//! it costs to run kernel memory code on the simulator instead of the host.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use paging::VirtAddr;
use paging_bench::sim_ops::{
    DEMAND_ZERO_PAGES, HIT_PAGES, MISS_PAGES, SIM_VIRT, demand_zero_machine, demand_zero_run,
    hit_offsets, machine_with, miss_offsets,
};
use paging_sim::NoResolver;

/// Loads of 8 bytes at `offsets` (bytes from `VIRT`), on the machine and natively.
fn loads(c: &mut Criterion, name: &str, pages: u64, offsets: &[u64]) {
    let mut group = c.benchmark_group(name);
    let mut machine = machine_with(pages);
    group.bench_function("ours", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for &offset in offsets {
                let value: u64 =
                    machine.load_value(VirtAddr::new(SIM_VIRT + offset), &mut NoResolver).unwrap();
                sum = sum.wrapping_add(value);
            }
            black_box(sum)
        });
    });
    let memory = vec![0u64; (pages * 512) as usize];
    group.bench_function("peer", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for &offset in offsets {
                sum = sum.wrapping_add(black_box(&memory)[(offset / 8) as usize]);
            }
            black_box(sum)
        });
    });
    group.finish();
}

fn tlb_hits(c: &mut Criterion) {
    loads(c, "sim_tlb_hit", HIT_PAGES, &hit_offsets());
}

fn tlb_misses(c: &mut Criterion) {
    loads(c, "sim_tlb_miss", MISS_PAGES, &miss_offsets());
}

fn demand_zero(c: &mut Criterion) {
    const PAGES: u64 = DEMAND_ZERO_PAGES;
    let mut group = c.benchmark_group("sim_demand_zero");
    group.bench_function("ours", |b| {
        b.iter_batched(
            demand_zero_machine,
            |mut machine| black_box(demand_zero_run(&mut machine)),
            BatchSize::LargeInput,
        );
    });
    group.bench_function("peer", |b| {
        b.iter(|| {
            // The same pattern natively: a fresh zeroed page per touch, then the store.
            let mut pages: Vec<Box<[u64; 512]>> = Vec::with_capacity(PAGES as usize);
            for page in 0..PAGES {
                let mut frame = Box::new([0u64; 512]);
                frame[0] = page;
                pages.push(frame);
            }
            black_box(pages)
        });
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(15)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = sim;
    config = config();
    targets = tlb_hits, tlb_misses, demand_zero
}
criterion_main!(sim);

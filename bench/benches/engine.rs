//! The engine against the `x86_64` crate's `OffsetPageTable` on the same host memory, and
//! against a lower bound: each group measures `ours` and `peer` in the same run.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use paging_bench::ops::{
    fresh, ours_map_each, ours_map_huge, ours_map_range, ours_translate, ours_unmap_reclaim,
    peer_map_each, peer_map_huge, peer_translate, peer_unmap_reclaim,
};
use paging_bench::{Arena, PAGES, PHYS, TABLE_FRAMES, random_pages};

fn map_single(c: &mut Criterion) {
    let mut group = c.benchmark_group("map_4k_each");
    group.bench_function("ours", |b| {
        b.iter_batched_ref(
            fresh,
            |(arena, frames)| ours_map_each(arena, frames),
            BatchSize::LargeInput,
        );
    });
    group.bench_function("peer", |b| {
        b.iter_batched_ref(
            fresh,
            |(arena, frames)| peer_map_each(arena, frames),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

fn map_range(c: &mut Criterion) {
    let mut group = c.benchmark_group("map_4k_range");
    group.bench_function("ours", |b| {
        b.iter_batched_ref(
            fresh,
            |(arena, frames)| ours_map_range(arena, frames),
            BatchSize::LargeInput,
        );
    });
    group.bench_function("peer", |b| {
        b.iter_batched_ref(
            fresh,
            |(arena, frames)| peer_map_each(arena, frames),
            BatchSize::LargeInput,
        );
    });
    // The lower bound: storing the same number of entries into memory already there.
    group.bench_function("bound", |b| {
        b.iter_batched_ref(
            || Arena::new(TABLE_FRAMES),
            |arena| {
                // One plain store loop per table: what any engine must at least do.
                let tables = (PAGES / 512) as usize;
                for (t, table) in arena.frames_mut()[1..=tables].iter_mut().enumerate() {
                    let mut raw = (PHYS + t as u64 * 512 * 4096) | 0x3;
                    for word in &mut table.0 {
                        *word = raw;
                        raw += 4096;
                    }
                }
                black_box(&arena);
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

fn translate(c: &mut Criterion) {
    let probes = random_pages(PAGES);
    let mut group = c.benchmark_group("translate_random");
    let (mut arena, mut frames) = fresh();
    ours_map_range(&mut arena, &mut frames);
    group.bench_function("ours", |b| b.iter(|| black_box(ours_translate(&mut arena, &probes))));
    let (mut peer_arena, mut peer_frames) = fresh();
    peer_map_each(&mut peer_arena, &mut peer_frames);
    group.bench_function("peer", |b| {
        b.iter(|| black_box(peer_translate(&mut peer_arena, &probes)));
    });
    group.finish();
}

fn unmap_reclaim(c: &mut Criterion) {
    let mut group = c.benchmark_group("unmap_reclaim");
    group.bench_function("ours", |b| {
        b.iter_batched_ref(
            || {
                let (mut arena, mut frames) = fresh();
                ours_map_each(&mut arena, &mut frames);
                (arena, frames)
            },
            |(arena, frames)| ours_unmap_reclaim(arena, frames),
            BatchSize::LargeInput,
        );
    });
    group.bench_function("peer", |b| {
        b.iter_batched_ref(
            || {
                let (mut arena, mut frames) = fresh();
                peer_map_each(&mut arena, &mut frames);
                (arena, frames)
            },
            |(arena, frames)| peer_unmap_reclaim(arena, frames),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

fn map_huge(c: &mut Criterion) {
    // 1 GiB with 2 MiB pages: 512 leaves under one directory.
    let mut group = c.benchmark_group("map_1g_huge");
    group.bench_function("ours", |b| {
        b.iter_batched_ref(
            fresh,
            |(arena, frames)| ours_map_huge(arena, frames),
            BatchSize::LargeInput,
        );
    });
    group.bench_function("peer", |b| {
        b.iter_batched_ref(
            fresh,
            |(arena, frames)| peer_map_huge(arena, frames),
            BatchSize::LargeInput,
        );
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
    name = engine;
    config = config();
    targets = map_single, map_range, translate, unmap_reclaim, map_huge
}
criterion_main!(engine);

//! The engine against the `x86_64` crate's `OffsetPageTable` on the same host memory, and
//! against a lower bound: each group measures `ours` and `peer` in the same run.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use paging::table::Holes;
use paging::{Frame, Page, PageFlags, PageTable, PhysAddr, Size2MiB, Size4KiB, VirtAddr};
use paging_bench::{Arena, Frames, PAGES, PHYS, TABLE_FRAMES, VIRT, random_pages};
use paging_x86::X86_64;
use x86_64::structures::paging::{
    Mapper, Page as XPage, PageTableFlags as XFlags, PhysFrame, Size2MiB as X2M, Size4KiB as X4K,
    Translate, mapper::CleanUp,
};

const RW: PageFlags = PageFlags::READABLE.union(PageFlags::WRITABLE);
const XRW: XFlags = XFlags::PRESENT.union(XFlags::WRITABLE);

fn fresh() -> (Arena, Frames) {
    (Arena::new(TABLE_FRAMES), Frames::new(TABLE_FRAMES))
}

/// Our engine: `PAGES` pages mapped one `map` call at a time.
fn ours_map_each(arena: &mut Arena, frames: &mut Frames) {
    let mut table = PageTable::<X86_64, _>::new(arena.memory(), frames).unwrap();
    for i in 0..PAGES {
        let page = Page::<Size4KiB>::containing(VirtAddr::new(VIRT + i * 4096));
        let frame = Frame::containing(PhysAddr::new(PHYS + i * 4096));
        table.map(page, frame, RW, frames).unwrap().ignore();
    }
}

/// The x86_64 crate: `PAGES` pages mapped one `map_to` call at a time.
fn peer_map_each(arena: &mut Arena, frames: &mut Frames) {
    let mut table = arena.x86_64_table();
    for i in 0..PAGES {
        let page = XPage::<X4K>::containing_address(x86_64::VirtAddr::new(VIRT + i * 4096));
        let frame = PhysFrame::containing_address(x86_64::PhysAddr::new(PHYS + i * 4096));
        // SAFETY: the frame is never accessed; only the entry that points to it is built.
        unsafe { table.map_to(page, frame, XRW, frames) }.unwrap().ignore();
    }
}

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
            |(arena, frames)| {
                let mut table = PageTable::<X86_64, _>::new(arena.memory(), frames).unwrap();
                let (virt, phys) = (VirtAddr::new(VIRT), PhysAddr::new(PHYS));
                table
                    .map_range_limited::<Size4KiB, _>(virt, phys, PAGES * 4096, RW, frames)
                    .unwrap()
                    .ignore();
            },
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
    {
        let mut table = PageTable::<X86_64, _>::new(arena.memory(), &mut frames).unwrap();
        table
            .map_range_limited::<Size4KiB, _>(
                VirtAddr::new(VIRT),
                PhysAddr::new(PHYS),
                PAGES * 4096,
                RW,
                &mut frames,
            )
            .unwrap()
            .ignore();
    }
    let root = PhysAddr::new(4096); // the first frame `Frames` hands out
    group.bench_function("ours", |b| {
        let table = PageTable::<X86_64, _>::from_root(root, arena.memory());
        b.iter(|| {
            let mut sum = 0u64;
            for &p in &probes {
                sum = sum.wrapping_add(
                    table.translate(VirtAddr::new(VIRT + p * 4096 + 8)).unwrap().phys.as_u64(),
                );
            }
            black_box(sum)
        });
    });
    let (mut peer_arena, mut peer_frames) = fresh();
    peer_map_each(&mut peer_arena, &mut peer_frames);
    group.bench_function("peer", |b| {
        let table = peer_arena.x86_64_table();
        b.iter(|| {
            let mut sum = 0u64;
            for &p in &probes {
                let addr = x86_64::VirtAddr::new(VIRT + p * 4096 + 8);
                sum = sum.wrapping_add(table.translate_addr(addr).unwrap().as_u64());
            }
            black_box(sum)
        });
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
            |(arena, frames)| {
                let mut table =
                    PageTable::<X86_64, _>::from_root(PhysAddr::new(4096), arena.memory());
                table
                    .unmap_range(VirtAddr::new(VIRT), PAGES * 4096, Holes::Refuse, frames, |_| {})
                    .unwrap()
                    .ignore();
            },
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
            |(arena, frames)| {
                let mut table = arena.x86_64_table();
                for i in 0..PAGES {
                    let page =
                        XPage::<X4K>::containing_address(x86_64::VirtAddr::new(VIRT + i * 4096));
                    table.unmap(page).unwrap().1.ignore();
                }
                // SAFETY: every page was unmapped above; no table is in use any more.
                unsafe { table.clean_up(frames) };
            },
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
            |(arena, frames)| {
                let mut table = PageTable::<X86_64, _>::new(arena.memory(), frames).unwrap();
                for i in 0..512 {
                    let page = Page::<Size2MiB>::containing(VirtAddr::new(VIRT + (i << 21)));
                    let frame = Frame::containing(PhysAddr::new(PHYS + (i << 21)));
                    table.map(page, frame, RW, frames).unwrap().ignore();
                }
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function("peer", |b| {
        b.iter_batched_ref(
            fresh,
            |(arena, frames)| {
                let mut table = arena.x86_64_table();
                for i in 0..512 {
                    let page =
                        XPage::<X2M>::containing_address(x86_64::VirtAddr::new(VIRT + (i << 21)));
                    let frame =
                        PhysFrame::containing_address(x86_64::PhysAddr::new(PHYS + (i << 21)));
                    // SAFETY: the frame is never accessed; only the entry is built.
                    unsafe { table.map_to(page, frame, XRW, frames) }.unwrap().ignore();
                }
            },
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

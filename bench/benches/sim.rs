//! The simulated machine against a plain native loop over the same access pattern: what
//! it costs to run kernel memory code on the simulator instead of the host.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use paging::frame::{BitmapAllocator, MemoryRegion};
use paging::space::{AddressSpace, Layout, Protection, SpaceConfig};
use paging::{Asid, PageFlags, PageTable, PhysAddr, Size4KiB, VirtAddr};
use paging_bench::random_pages;
use paging_sim::{Machine, MachineConfig, NoResolver, SpaceKernel};
use paging_x86::X86_64;

/// Loads per measurement.
const ACCESSES: u64 = 1 << 16;
/// Where the benchmark maps its pages.
const VIRT: u64 = 0x4000_0000;

/// A machine (strict TLB checking off, as hardware) running one process with `pages`
/// pages mapped at `VIRT`.
fn machine_with(pages: u64) -> Machine<X86_64> {
    let config = MachineConfig { strict_tlb: false, ..MachineConfig::default() };
    let mut machine = Machine::<X86_64>::new(config);
    let mut bitmap = vec![0u64; 256];
    let usable = [MemoryRegion::usable(48 << 20, 16 << 20)];
    let mut frames = BitmapAllocator::new(&mut bitmap, &usable).unwrap();
    let mut table = PageTable::<X86_64, _>::new(machine.ram_mut(), &mut frames).unwrap();
    let rw = PageFlags::READABLE | PageFlags::WRITABLE | PageFlags::USER;
    table
        .map_range_limited::<Size4KiB, _>(
            VirtAddr::new(VIRT),
            PhysAddr::new(0),
            pages * 4096,
            rw,
            &mut frames,
        )
        .unwrap()
        .ignore();
    let root = table.root();
    let process = machine.add_process("bench", root, Asid(1));
    machine.switch_to(process);
    machine
}

/// Loads of 8 bytes at `offsets` (bytes from `VIRT`), on the machine and natively.
fn loads(c: &mut Criterion, name: &str, pages: u64, offsets: &[u64]) {
    let mut group = c.benchmark_group(name);
    let mut machine = machine_with(pages);
    group.bench_function("ours", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for &offset in offsets {
                let value: u64 =
                    machine.load_value(VirtAddr::new(VIRT + offset), &mut NoResolver).unwrap();
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
    // 16 pages: they all fit the 64-entry TLB.
    let offsets: Vec<u64> = (0..ACCESSES).map(|i| (i % 16) * 4096 + (i * 8) % 4096).collect();
    loads(c, "sim_tlb_hit", 16, &offsets);
}

fn tlb_misses(c: &mut Criterion) {
    // 4096 pages visited in a scattered order: almost every access misses the TLB.
    let offsets: Vec<u64> = random_pages(ACCESSES).iter().map(|p| (p % 4096) * 4096 + 64).collect();
    loads(c, "sim_tlb_miss", 4096, &offsets);
}

fn demand_zero(c: &mut Criterion) {
    const PAGES: u64 = 1024;
    let mut group = c.benchmark_group("sim_demand_zero");
    group.bench_function("ours", |b| {
        b.iter_batched(
            || {
                Machine::<X86_64>::new(MachineConfig {
                    strict_tlb: false,
                    ..MachineConfig::default()
                })
            },
            |mut machine| {
                let mut bitmap = vec![0u64; 256];
                let usable = [MemoryRegion::usable(32 << 20, 32 << 20)];
                let mut frames = BitmapAllocator::new(&mut bitmap, &usable).unwrap();
                let config = SpaceConfig::default();
                let ram = machine.ram_mut();
                let mut space = AddressSpace::<X86_64>::new(
                    Layout::X86_64,
                    config,
                    Asid(1),
                    None,
                    ram,
                    &mut frames,
                )
                .unwrap();
                let base = space.commit(None, PAGES * 4096, Protection::READ_WRITE).unwrap();
                let process = machine.add_process("bench", space.root(), space.asid());
                machine.switch_to(process);
                let mut kernel = SpaceKernel::new(&mut space, &mut frames);
                for page in 0..PAGES {
                    machine.store_value(base + page * 4096, page, &mut kernel).unwrap();
                }
                black_box(machine.counters().faults_not_present)
            },
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

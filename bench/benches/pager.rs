//! The pager on the simulated machine against plain baselines on the same machine: a soft
//! and a hard fault beside a demand-zero fault (and the hard fault beside a bare 4 KiB
//! copy, the floor of its I/O), and trimming 10^4 resident pages beside the engine clearing
//! the same 10^4 entries in one call. Setup (trimming, writing, repurposing, re-touching)
//! is outside the timed part: each timing covers only the operation measured.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use paging::frame::{BitmapAllocator, MemoryRegion};
use paging::pager::policy::{AnyPolicy, PolicyKind, PolicySlot, slots_needed};
use paging::pager::{FrameRecord, PAGE_BYTES, Pager, PagerCounters, PagerStorage};
use paging::space::{AddressSpace, Layout, Protection, SpaceConfig};
use paging::table::Rewrite;
use paging::{Asid, PageFlags, PageTable, PhysAddr, Size4KiB, VirtAddr};
use paging_sim::{Machine, MachineConfig, PagedKernel, ProcessId, SimDisk};
use paging_x86::X86_64;

/// Pages faulted per round of setup in the fault groups.
const BATCH: u64 = 1024;
/// Pages trimmed in one iteration of the trim group.
const TRIM_PAGES: u64 = 10_000;
/// Where the pager's frames start (page tables come from 16 to 32 MiB).
const USER_FRAMES: u64 = 64 << 20;
/// Where the trim baseline maps its pages (its own table, not the space's).
const UNMAP_VIRT: u64 = 0x4000_0000;
/// 4 KiB.
const PAGE: u64 = 4096;

type BenchPager<'s> = Pager<'s, X86_64, SimDisk, AnyPolicy<'s>>;

/// The pager's storage: its frame records, slot counts, write cluster and policy slots.
struct Books {
    records: Vec<FrameRecord>,
    counts: Vec<u8>,
    cluster: Vec<[u8; PAGE_BYTES]>,
    policy: Vec<PolicySlot>,
}

impl Books {
    fn new(frames: u64, slots: u64) -> Self {
        Self {
            records: vec![FrameRecord::FREE; frames as usize],
            counts: vec![0; slots as usize],
            cluster: vec![[0; PAGE_BYTES]; 16],
            policy: vec![PolicySlot::EMPTY; slots_needed(frames as u32)],
        }
    }

    /// A clock pager over the frames from `USER_FRAMES`, paging to a simulated disk.
    fn pager(&mut self) -> BenchPager<'_> {
        let (frames, slots) = (self.records.len() as u32, self.counts.len() as u32);
        let policy = AnyPolicy::new(PolicyKind::Clock, &mut self.policy, frames).unwrap();
        let storage = PagerStorage {
            records: &mut self.records,
            base: PhysAddr::new(USER_FRAMES),
            slot_counts: &mut self.counts,
            cluster: &mut self.cluster,
        };
        Pager::new(storage, SimDisk::new(slots), policy).unwrap()
    }
}

/// A machine (strict TLB checking off, as hardware) running one process whose private
/// pages come from the pager.
struct Rig<'b, 's> {
    machine: Machine<X86_64>,
    tables: BitmapAllocator<'b>,
    pager: BenchPager<'s>,
    space: AddressSpace<X86_64>,
    process: ProcessId,
}

impl<'b, 's> Rig<'b, 's> {
    fn new(bitmap: &'b mut [u64], books: &'s mut Books) -> Self {
        let config =
            MachineConfig { strict_tlb: false, ram_frames: 32 << 10, ..Default::default() };
        let mut machine = Machine::<X86_64>::new(config);
        let usable = [MemoryRegion::usable(16 << 20, 16 << 20)];
        let mut tables = BitmapAllocator::new(bitmap, &usable).unwrap();
        let mut pager = books.pager();
        let (ram, config) = (machine.ram_mut(), SpaceConfig::default());
        let space =
            AddressSpace::new(Layout::X86_64, config, Asid(1), None, ram, &mut tables).unwrap();
        pager.attach(space.root(), space.asid(), 0, u32::MAX).unwrap();
        let process = machine.add_process("bench", space.root(), space.asid());
        machine.switch_to(process);
        Self { machine, tables, pager, space, process }
    }

    /// Commits `pages` pages at `addr` (anywhere if `None`), charged to the pager.
    fn commit(&mut self, addr: Option<VirtAddr>, pages: u64) -> VirtAddr {
        let (_, mut tlb) = self.machine.split();
        let mut paging = self.pager.with(&mut self.tables, &mut tlb);
        self.space.commit_with(addr, pages * PAGE, Protection::READ_WRITE, &mut paging).unwrap()
    }

    /// Decommits `pages` pages at `addr`: their frames go back to the pager's free list.
    fn decommit(&mut self, addr: VirtAddr, pages: u64) {
        let (ram, mut tlb) = self.machine.split();
        let mut paging = self.pager.with(&mut self.tables, &mut tlb);
        let flush = self.space.decommit(addr, pages * PAGE, ram, &mut paging).unwrap();
        flush.apply(&mut tlb);
    }

    /// Loads 8 bytes from each of `pages` pages from `base`, faults resolved by the pager.
    fn load_pages(&mut self, base: VirtAddr, pages: u64) -> u64 {
        self.machine.switch_to(self.process);
        let mut kernel = PagedKernel::new(&mut self.space, &mut self.pager, &mut self.tables);
        let mut sum = 0u64;
        for page in 0..pages {
            let value: u64 = self.machine.load_value(base + page * PAGE, &mut kernel).unwrap();
            sum = sum.wrapping_add(value);
        }
        sum
    }

    /// Stores a nonzero value into each of `pages` pages from `base` (so that the page
    /// file holds real data, not a zero page).
    fn store_pages(&mut self, base: VirtAddr, pages: u64) {
        self.machine.switch_to(self.process);
        let mut kernel = PagedKernel::new(&mut self.space, &mut self.pager, &mut self.tables);
        for page in 0..pages {
            self.machine.store_value(base + page * PAGE, page + 1, &mut kernel).unwrap();
        }
    }

    /// Trims every page of the working set; returns how many left.
    fn empty_working_set(&mut self) -> usize {
        let (ram, mut tlb) = self.machine.split();
        let mut paging = self.pager.with(&mut self.tables, &mut tlb);
        paging.empty_working_set(self.space.root(), ram)
    }

    /// Runs the modified-page writer to the end; returns how many pages went to standby.
    fn write_modified(&mut self) -> usize {
        let (ram, mut tlb) = self.machine.split();
        self.pager.with(&mut self.tables, &mut tlb).write_modified(ram)
    }

    fn counters(&self) -> PagerCounters {
        self.pager.counters()
    }
}

/// The two regions of the fault groups: `BATCH` resident pages (`a`, on `BATCH` frames),
/// and a reservation of `2 * BATCH` decommitted pages (`b`) for demand-zero faults and for
/// taking every frame away from `a`. The pager has `2 * BATCH` frames.
struct FaultRig<'b, 's> {
    rig: Rig<'b, 's>,
    a: VirtAddr,
    b: VirtAddr,
}

impl<'b, 's> FaultRig<'b, 's> {
    fn new(bitmap: &'b mut [u64], books: &'s mut Books) -> Self {
        let mut rig = Rig::new(bitmap, books);
        let a = rig.commit(None, BATCH);
        rig.store_pages(a, BATCH);
        let b = rig.commit(None, 2 * BATCH);
        rig.decommit(b, 2 * BATCH);
        Self { rig, a, b }
    }

    /// Times `iters` loads of fresh committed pages of `b` (demand-zero faults taking free
    /// frames), `BATCH` at most per commit.
    fn demand_zero(&mut self, iters: u64) -> Duration {
        let (rig, b) = (&mut self.rig, self.b);
        batches(iters, |n| {
            rig.commit(Some(b), n);
            let before = rig.counters();
            let start = Instant::now();
            black_box(rig.load_pages(b, n));
            let time = start.elapsed();
            let after = rig.counters();
            assert_eq!(after.demand_zero_faults - before.demand_zero_faults, n);
            assert_eq!(after.pages_repurposed, before.pages_repurposed);
            rig.decommit(b, n);
            time
        })
    }

    /// Times `iters` soft faults: `a`'s pages trimmed and written (standby), touched again.
    fn soft_faults(&mut self, iters: u64) -> Duration {
        let (rig, a) = (&mut self.rig, self.a);
        batches(iters, |n| {
            rig.empty_working_set();
            rig.write_modified();
            let before = rig.counters();
            let start = Instant::now();
            black_box(rig.load_pages(a, n));
            let time = start.elapsed();
            let after = rig.counters();
            assert_eq!(after.soft_faults - before.soft_faults, n);
            assert_eq!(after.pages_read, before.pages_read);
            time
        })
    }

    /// Times `iters` hard faults: `a`'s pages trimmed and written, their frames repurposed
    /// for `b` (whose pages are then decommitted, so that frames are free), touched again:
    /// each fault takes a free frame and reads the page back from the simulated disk.
    fn hard_faults(&mut self, iters: u64) -> Duration {
        let (rig, a, b) = (&mut self.rig, self.a, self.b);
        batches(iters, |n| {
            rig.empty_working_set();
            rig.write_modified();
            rig.commit(Some(b), 2 * BATCH);
            rig.store_pages(b, 2 * BATCH);
            rig.decommit(b, 2 * BATCH);
            let before = rig.counters();
            let start = Instant::now();
            black_box(rig.load_pages(a, n));
            let time = start.elapsed();
            let after = rig.counters();
            assert_eq!(after.hard_faults - before.hard_faults, n);
            assert_eq!(after.pages_read - before.pages_read, n);
            time
        })
    }
}

/// Runs `batch(n)` for batches of at most `BATCH` until `iters` are done; sums their times.
fn batches(iters: u64, mut batch: impl FnMut(u64) -> Duration) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = (iters - done).min(BATCH);
        total += batch(n);
        done += n;
    }
    total
}

fn soft_fault(c: &mut Criterion) {
    let mut group = c.benchmark_group("pager_soft_fault");
    let (mut bitmap, mut books) = (vec![0u64; 64], Books::new(2 * BATCH, 4 * BATCH));
    let mut rig = FaultRig::new(&mut bitmap, &mut books);
    group.bench_function("ours", |b| b.iter_custom(|iters| rig.soft_faults(iters)));
    group.bench_function("demand_zero", |b| b.iter_custom(|iters| rig.demand_zero(iters)));
    group.finish();
}

fn hard_fault(c: &mut Criterion) {
    let mut group = c.benchmark_group("pager_hard_fault");
    let (mut bitmap, mut books) = (vec![0u64; 64], Books::new(2 * BATCH, 4 * BATCH));
    let mut rig = FaultRig::new(&mut bitmap, &mut books);
    group.bench_function("ours", |b| b.iter_custom(|iters| rig.hard_faults(iters)));
    group.bench_function("demand_zero", |b| b.iter_custom(|iters| rig.demand_zero(iters)));
    // The I/O floor: one 4 KiB copy per iteration, over as many pages as a batch faults.
    let source = vec![[7u8; PAGE_BYTES]; BATCH as usize];
    let mut frames = vec![[0u8; PAGE_BYTES]; BATCH as usize];
    let mut next = 0;
    group.bench_function("copy", |b| {
        b.iter(|| {
            let i = next % BATCH as usize;
            next += 1;
            frames[i].copy_from_slice(black_box(&source[i]));
            black_box(&frames[i]);
        });
    });
    group.finish();
}

/// Trimming `TRIM_PAGES` dirty resident pages (to the modified list; the writer does not
/// run), beside the engine clearing the same number of entries in one `rewrite_range`.
fn trim(c: &mut Criterion) {
    let mut group = c.benchmark_group("pager_trim");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    let (mut bitmap, mut books) = (vec![0u64; 64], Books::new(TRIM_PAGES, 64));
    let mut rig = Rig::new(&mut bitmap, &mut books);
    let base = rig.commit(None, TRIM_PAGES);
    group.bench_function("ours", |b| b.iter_custom(|iters| trims(&mut rig, base, iters, false)));
    // The same after an aging pass: the clock finds every Accessed bit clear, no second chance.
    group.bench_function("aged", |b| b.iter_custom(|iters| trims(&mut rig, base, iters, true)));
    let root = PageTable::<X86_64, _>::new(rig.machine.ram_mut(), &mut rig.tables).unwrap().root();
    group.bench_function("unmap_range", |b| {
        b.iter_custom(|iters| clear_range(&mut rig, root, iters));
    });
    group.finish();
}

/// Times `iters` trims of the `TRIM_PAGES` pages from `base`, each stored to first (and,
/// if `aged`, their Accessed bits cleared by an aging pass).
fn trims(rig: &mut Rig<'_, '_>, base: VirtAddr, iters: u64, aged: bool) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        rig.store_pages(base, TRIM_PAGES);
        if aged {
            let (ram, mut tlb) = rig.machine.split();
            rig.pager.with(&mut rig.tables, &mut tlb).age(ram);
        }
        let start = Instant::now();
        let trimmed = rig.empty_working_set();
        total += start.elapsed();
        assert_eq!(trimmed as u64, TRIM_PAGES);
    }
    total
}

/// Times `iters` clearings of `TRIM_PAGES` entries with `rewrite_range` (tables kept, as
/// a trim keeps them; the flush applied, as a trim invalidates), in the table at `root` in
/// the same machine's RAM (not the space's), mapped again before each.
fn clear_range(rig: &mut Rig<'_, '_>, root: PhysAddr, iters: u64) -> Duration {
    let (ram, mut tlb) = rig.machine.split();
    let tables = &mut rig.tables;
    let mut table = PageTable::<X86_64, _>::from_root(root, ram);
    table.keep_empty_tables(true);
    let (virt, len) = (VirtAddr::new(UNMAP_VIRT), TRIM_PAGES * PAGE);
    let rw = PageFlags::READABLE | PageFlags::WRITABLE | PageFlags::USER;
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let frames = PhysAddr::new(USER_FRAMES);
        table.map_range_limited::<Size4KiB, _>(virt, frames, len, rw, tables).unwrap().ignore();
        let start = Instant::now();
        let flush =
            table.rewrite_range(virt, len, tables, |_, _, _| Rewrite::Clear, |_, _| {}).unwrap();
        flush.apply(&mut tlb);
        total += start.elapsed();
    }
    total
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

criterion_group! {
    name = pager;
    config = config();
    targets = soft_fault, hard_fault, trim
}
criterion_main!(pager);

//! Pager operation sequences over two or three address spaces on the simulated machine,
//! against a model of what every committed page holds.
//!
//! A pager of 2 to 8 frames and a `SimDisk` of 1 to 12 slots serve the spaces; each space
//! has two reservations of four pages. The operations commit (charged), decommit,
//! release, reserve again, protect (no-access and back included), write and read pages
//! through faults, trim, empty working sets, run the modified-page writer and the aging
//! pass, and inject store failures. After every step the check walks every space's tables:
//! each entry (present, hidden, transition, paging-file) must hold the model's bytes in its
//! frame or slot, the frame database's lists and records must match the entries, the slots
//! in use must be exactly those the entries and clean frames name, and the counters must
//! match the model. A refused operation changes nothing. At the end every page is read
//! back, every space is destroyed through the pager and detached: every frame is free and
//! no slot is used.

/// Fails the check with a message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// Fails the check unless the two values are equal.
macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($fmt:tt)+) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            return Err(format!(
                "{} != {}: {:x?} vs {:x?}: {}",
                stringify!($left),
                stringify!($right),
                left,
                right,
                format!($($fmt)+)
            ));
        }
    }};
}

/// Runs the setup and operations decoded from `data` on a pager serving several address
/// spaces of a simulated machine, and on the model; panics on any disagreement, lost page
/// or leaked frame or slot. (The two bugs it found first, a hard fault with every frame
/// dirty and every slot full, and `age`'s count under Aging, are fixed; their inputs stay
/// in the corpus as `regression-*`.)
pub fn pager_ops(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let setup = setup(&mut u);
    let ops = ops(&mut u, setup.spaces());
    if let Err((step, message)) = run(&setup, &ops) {
        let upto = step.map_or(ops.len(), |i| i + 1);
        panic!("{message}\nsetup: {setup:?}\nsteps:\n{}", Numbered(&ops[..upto], step));
    }
}

use std::collections::BTreeSet;
use std::fmt;

use arbitrary::Unstructured;
use paging::frame::{BitmapAllocator, FrameAllocator};
use paging::pager::policy::{AnyPolicy, PolicyKind};
use paging::pager::{
    BackingStore, FrameList, FrameRecord, Owner, PAGE_BYTES, PagerCounters, PerformanceInfo,
    ProcessCounters, Slot,
};
use paging::space::{AddressSpace, Layout, Protection, RegionInfo, SpaceConfig, SpaceError};
use paging::table::Lookup;
use paging::{Access, Asid, Exception, PageFlags, PhysAddr, SoftwarePte, VirtAddr};
use paging_sim::{DiskCounters, Machine, MachineConfig, MachineError, PagedKernel, SimDisk};
use paging_sim::{ProcessId, Ram};
use paging_x86::X86_64;

use crate::fixtures::{PagerBooks, SimPager, sim_allocator};
use crate::show::{Hex, Numbered};
use crate::weighted;

type Space = AddressSpace<X86_64>;
type Page = [u8; PAGE_BYTES];

const PAGE: u64 = 0x1000;
/// Reservations per space, each of [`PAGES`] pages, 64 KiB apart from 64 KiB on.
const REGIONS: usize = 2;
const PAGES: usize = 4;
/// The bit that marks a frame the space owns (see `core/src/space/mod.rs`).
const OWNED: PageFlags = PageFlags::SOFTWARE_0;
/// The most operations after the warm-up.
const MAX_OPS: usize = 64;

/// Protections for commit and protect: the five private memory can have, then three it
/// cannot (write-copy, writable-executable under W^X, no-access with guard).
const PROTECTIONS: [(Protection, &str); 8] = [
    (Protection::NO_ACCESS, "NO_ACCESS"),
    (Protection::READ_ONLY, "READ_ONLY"),
    (Protection::READ_WRITE, "READ_WRITE"),
    (Protection::EXECUTE, "EXECUTE"),
    (Protection::EXECUTE_READ, "EXECUTE_READ"),
    (Protection::WRITE_COPY, "WRITE_COPY"),
    (Protection::EXECUTE_READ_WRITE, "EXECUTE_READ_WRITE"),
    (Protection::NO_ACCESS.guard(), "NO_ACCESS | GUARD"),
];
const VALID_PROTECTIONS: usize = 5;

// ---- operations ----

/// One of [`PROTECTIONS`], shown by name.
#[derive(Clone, Copy)]
struct Prot(usize);

impl Prot {
    fn get(self) -> Protection {
        PROTECTIONS[self.0].0
    }

    fn valid(self) -> bool {
        self.0 < VALID_PROTECTIONS
    }
}

impl fmt::Debug for Prot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PROTECTIONS[self.0].1)
    }
}

/// A page: space, reservation, page in it; shown as `s1:r0:p2`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct At {
    space: usize,
    region: usize,
    page: usize,
}

impl At {
    fn addr(self) -> u64 {
        region_base(self.region) + self.page as u64 * PAGE
    }
}

impl fmt::Debug for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}:r{}:p{}", self.space, self.region, self.page)
    }
}

fn region_base(region: usize) -> u64 {
    0x1_0000 * (region as u64 + 1)
}

#[derive(Clone, Debug)]
enum Op {
    Reserve {
        space: usize,
        region: usize,
    },
    Commit {
        at: At,
        pages: usize,
        protect: Prot,
    },
    Decommit {
        at: At,
        pages: usize,
    },
    Release {
        space: usize,
        region: usize,
    },
    Protect {
        at: At,
        pages: usize,
        protect: Prot,
    },
    /// The whole page, or 8 bytes at `offset`, of bytes made from `seed`.
    Write {
        at: At,
        whole: bool,
        offset: usize,
        seed: u8,
    },
    Read {
        at: At,
    },
    Trim {
        space: usize,
        pages: usize,
    },
    EmptyWorkingSet {
        space: usize,
    },
    TrimUntilAvailable {
        frames: u64,
    },
    WriteModified,
    Age,
    FailNextReads {
        count: u64,
    },
    /// Makes the slot that holds the page (if it is in one) fail its reads.
    FailReadOf {
        at: At,
    },
    FailReadSlot {
        slot: u32,
    },
    FailNextWrites {
        count: u64,
    },
    FailWriteSlot {
        slot: u32,
    },
    ClearFailures,
}

#[derive(Clone, Debug)]
struct Setup {
    frames: u32,
    slots: u32,
    cluster: usize,
    policy: PolicyKind,
    /// One per space: its working set's maximum.
    maxima: Vec<u32>,
}

impl Setup {
    fn spaces(&self) -> usize {
        self.maxima.len()
    }
}

fn setup(u: &mut Unstructured<'_>) -> Setup {
    let frames = u.int_in_range(2..=8).unwrap_or(2);
    let slots = u.int_in_range(1..=12).unwrap_or(4);
    let cluster = u.int_in_range(1..=4).unwrap_or(1);
    let policy = *u.choose(&PolicyKind::ALL).unwrap_or(&PolicyKind::Clock);
    let count = weighted(u, &[(2, 2), (1, 3)]);
    let maxima = (0..count)
        .map(|_| match weighted(u, &[(3, false), (1, true)]) {
            false => u32::MAX,
            true => u.int_in_range(1..=4).unwrap_or(1),
        })
        .collect();
    Setup { frames, slots, cluster, policy, maxima }
}

fn at(u: &mut Unstructured<'_>, spaces: usize) -> At {
    let space = u.int_in_range(0..=spaces - 1).unwrap_or(0);
    let region = weighted(u, &[(3, 0), (1, 1)]);
    let page = u.int_in_range(0..=PAGES - 1).unwrap_or(0);
    At { space, region, page }
}

/// Pages from `at` on, inside its reservation; none now and then.
fn pages(u: &mut Unstructured<'_>, at: At) -> usize {
    match weighted(u, &[(1, false), (12, true)]) {
        false => 0,
        true => u.int_in_range(1..=PAGES - at.page).unwrap_or(1),
    }
}

fn protection(u: &mut Unstructured<'_>) -> Prot {
    match weighted(u, &[(3, 2), (4, 0), (1, 1)]) {
        2 => Prot(2),
        0 => Prot(u.int_in_range(0..=VALID_PROTECTIONS - 1).unwrap_or(0)),
        _ => Prot(u.int_in_range(VALID_PROTECTIONS..=PROTECTIONS.len() - 1).unwrap_or(5)),
    }
}

fn op(u: &mut Unstructured<'_>, spaces: usize) -> Op {
    let weights = [(12, 0), (8, 1), (4, 2), (2, 3), (1, 4), (1, 5), (3, 6), (5, 7), (1, 8)];
    let space = |u: &mut Unstructured<'_>| u.int_in_range(0..=spaces - 1).unwrap_or(0);
    match weighted(u, &weights) {
        0 => {
            let at = at(u, spaces);
            let whole = u.ratio(2u8, 3).unwrap_or(true);
            let offset = u.int_in_range(0..=PAGE_BYTES / 8 - 1).unwrap_or(0) * 8;
            Op::Write { at, whole, offset, seed: u.arbitrary().unwrap_or(0) }
        }
        1 => Op::Read { at: at(u, spaces) },
        2 => {
            let at = at(u, spaces);
            Op::Commit { at, pages: pages(u, at), protect: protection(u) }
        }
        3 => {
            let at = at(u, spaces);
            Op::Decommit { at, pages: pages(u, at) }
        }
        4 => Op::Release { space: space(u), region: weighted(u, &[(3, 0), (1, 1)]) },
        5 => Op::Reserve { space: space(u), region: weighted(u, &[(3, 0), (1, 1)]) },
        6 => {
            let at = at(u, spaces);
            Op::Protect { at, pages: pages(u, at), protect: protection(u) }
        }
        7 => pager_op(u, spaces),
        _ => failure_op(u, spaces),
    }
}

/// The pager's own operations.
fn pager_op(u: &mut Unstructured<'_>, spaces: usize) -> Op {
    let space = u.int_in_range(0..=spaces - 1).unwrap_or(0);
    match weighted(u, &[(3, 0), (1, 1), (1, 2), (2, 3), (2, 4)]) {
        0 => Op::Trim { space, pages: u.int_in_range(1..=3).unwrap_or(1) },
        1 => Op::EmptyWorkingSet { space },
        2 => Op::TrimUntilAvailable { frames: u.int_in_range(1..=8).unwrap_or(1) },
        3 => Op::WriteModified,
        _ => Op::Age,
    }
}

/// Failures injected into the store, and their end.
fn failure_op(u: &mut Unstructured<'_>, spaces: usize) -> Op {
    let slot = |u: &mut Unstructured<'_>| u.int_in_range(0..=11).unwrap_or(0);
    match weighted(u, &[(2, 0), (3, 1), (1, 2), (2, 3), (1, 4), (3, 5)]) {
        0 => Op::FailNextReads { count: u.int_in_range(1..=3).unwrap_or(1) },
        1 => Op::FailReadOf { at: at(u, spaces) },
        2 => Op::FailReadSlot { slot: slot(u) },
        3 => Op::FailNextWrites { count: u.int_in_range(1..=3).unwrap_or(1) },
        4 => Op::FailWriteSlot { slot: slot(u) },
        _ => Op::ClearFailures,
    }
}

/// Every space commits its first reservation and writes a page or two of it, so that
/// the frames run out early; then the operations, as long as the data lasts.
fn ops(u: &mut Unstructured<'_>, spaces: usize) -> Vec<Op> {
    let mut ops = Vec::new();
    for space in 0..spaces {
        let at = At { space, region: 0, page: 0 };
        ops.push(Op::Commit { at, pages: PAGES, protect: Prot(2) });
        for page in 0..u.int_in_range(1..=2).unwrap_or(1) {
            let at = At { page, ..at };
            ops.push(Op::Write { at, whole: true, offset: 0, seed: u.arbitrary().unwrap_or(0) });
        }
    }
    let warm_up = ops.len();
    while ops.len() < warm_up + MAX_OPS && !u.is_empty() {
        ops.push(op(u, spaces));
    }
    ops
}

/// The bytes a write of `seed` puts at `at` (8 of them, or the whole page): a block of
/// 256 repeated (few loop steps: every one costs under the fuzzer's instrumentation).
fn written_bytes(at: At, whole: bool, seed: u8) -> Vec<u8> {
    let tag = (at.space * 16 + at.region * 4 + at.page) as u8;
    let block: [u8; 256] = core::array::from_fn(|i| (i as u8).wrapping_mul(seed | 1) ^ tag);
    if !whole {
        return block[..8].to_vec();
    }
    let mut page = vec![0; PAGE_BYTES];
    for (i, chunk) in page.chunks_mut(256).enumerate() {
        chunk.copy_from_slice(&block);
        chunk[0] ^= i as u8;
    }
    page
}

// ---- the model ----

#[derive(Clone, Debug, Default)]
struct MPage {
    committed: bool,
    protect: Option<Protection>,
    /// What the page holds once written; `None` reads as zeros.
    data: Option<Box<Page>>,
}

impl MPage {
    fn bytes(&self) -> &Page {
        self.data.as_deref().unwrap_or(&[0; PAGE_BYTES])
    }
}

#[derive(Clone, Debug, Default)]
struct MRegion {
    reserved: bool,
    pages: [MPage; PAGES],
}

#[derive(Debug, Default)]
struct Model {
    spaces: Vec<[MRegion; REGIONS]>,
    commit_limit: u64,
    /// The store's injected read failures: the next ones, and bad slots.
    failing_reads: u64,
    bad_reads: BTreeSet<u32>,
    /// Whether a write failure was injected since the last clear: a fault may then find
    /// no frame to free (every one dirty, none writable).
    writes_may_fail: bool,
}

impl Model {
    fn page(&self, at: At) -> &MPage {
        &self.spaces[at.space][at.region].pages[at.page]
    }

    fn page_mut(&mut self, at: At) -> &mut MPage {
        &mut self.spaces[at.space][at.region].pages[at.page]
    }

    fn committed_in(&self, s: usize) -> u64 {
        self.spaces[s].iter().flat_map(|r| &r.pages).filter(|p| p.committed).count() as u64
    }

    fn committed(&self) -> u64 {
        (0..self.spaces.len()).map(|s| self.committed_in(s)).sum()
    }

    /// The pages `[at, at + pages)`, if `pages` is not zero and the reservation exists.
    fn span(&self, at: At, pages: usize) -> Option<&[MPage]> {
        let region = &self.spaces[at.space][at.region];
        (pages > 0 && region.reserved).then(|| &region.pages[at.page..at.page + pages])
    }

    /// What a commit must do: `Ok` (or its refusal).
    fn commit(&self, at: At, pages: usize, protect: Prot) -> Result<(), Option<SpaceError>> {
        let span = self.span(at, pages).filter(|_| protect.valid()).ok_or(None)?;
        let requested = span.iter().filter(|p| !p.committed).count() as u64;
        let available = self.commit_limit.saturating_sub(self.committed());
        if requested > available {
            return Err(Some(SpaceError::CommitLimit { requested, available }));
        }
        Ok(())
    }

    /// What a protect must return: the old protection of the first page (or its refusal).
    fn protect(
        &self,
        at: At,
        pages: usize,
        protect: Prot,
    ) -> Result<Protection, Option<SpaceError>> {
        let span = self.span(at, pages).filter(|_| protect.valid()).ok_or(None)?;
        if let Some(i) = span.iter().position(|p| !p.committed) {
            let addr = VirtAddr::new(at.addr() + i as u64 * PAGE);
            return Err(Some(SpaceError::NotCommitted { addr }));
        }
        span[0].protect.ok_or(None)
    }

    fn set_span(&mut self, at: At, pages: usize, mut f: impl FnMut(&mut MPage)) {
        for page in &mut self.spaces[at.space][at.region].pages[at.page..at.page + pages] {
            f(page);
        }
    }
}

// ---- the world ----

struct World<'a> {
    machine: Machine<X86_64>,
    tables: BitmapAllocator<'a>,
    pager: SimPager<'a>,
    spaces: Vec<Space>,
    processes: Vec<ProcessId>,
    model: Model,
}

/// What a refused operation must leave as it was.
#[derive(PartialEq, Eq, Debug)]
struct Snapshot {
    counters: PagerCounters,
    performance: PerformanceInfo,
    used_slots: u32,
    lists: Vec<usize>,
    processes: Vec<Option<ProcessCounters>>,
    regions: Vec<Vec<RegionInfo>>,
    disk: DiskCounters,
    tables: usize,
}

/// Runs `ops` after `setup`; on a disagreement, the message and the step it came at (none
/// when it came before the first step or after the last).
fn run(setup: &Setup, ops: &[Op]) -> Result<(), (Option<usize>, String)> {
    let mut storage = PagerBooks::new(setup.frames, setup.slots, setup.cluster);
    let mut bitmap = Box::new([0u64; 128]);
    let tables = sim_allocator(&mut bitmap);
    let baseline = tables.frames_in_use();
    let disk = SimDisk::new(setup.slots);
    let pager = storage.pager(setup.policy, disk).map_err(|e| (None, e))?;
    let mut world = World::new(setup, tables, pager).map_err(|e| (None, e))?;
    world.check().map_err(|e| (None, e))?;
    for (i, op) in ops.iter().enumerate() {
        if let Err(e) = world.step(op).and_then(|()| world.check()) {
            return Err((Some(i), format!("step {i}, {op:?}: {e}\n{}", world.describe())));
        }
    }
    world.finish(baseline).map_err(|e| (None, format!("at the end: {e}\n{}", world.describe())))
}

impl<'a> World<'a> {
    /// The spaces, attached to the pager, each with its two reservations.
    fn new(
        setup: &Setup,
        tables: BitmapAllocator<'a>,
        pager: SimPager<'a>,
    ) -> Result<Self, String> {
        let mut world = Self {
            machine: Machine::new(MachineConfig::default()),
            tables,
            pager,
            spaces: Vec::new(),
            processes: Vec::new(),
            model: Model::default(),
        };
        // One slot is held back, so that a hard fault always finds a frame.
        world.model.commit_limit = u64::from(setup.frames + setup.slots.saturating_sub(1));
        for (i, &maximum) in setup.maxima.iter().enumerate() {
            let (memory, config) = (world.machine.ram_mut(), SpaceConfig::default());
            let asid = Asid(i as u16 + 1);
            let mut space =
                Space::new(Layout::X86_64, config, asid, None, memory, &mut world.tables)
                    .map_err(|e| format!("space {i}: {e}"))?;
            for region in 0..REGIONS {
                let base = Some(VirtAddr::new(region_base(region)));
                space
                    .reserve(base, PAGES as u64 * PAGE, Protection::READ_WRITE)
                    .map_err(|e| format!("reserve: {e}"))?;
            }
            world.pager.attach(space.root(), asid, 0, maximum).map_err(|e| e.to_string())?;
            let process = world.machine.add_process(&format!("p{i}"), space.root(), asid);
            world.spaces.push(space);
            world.processes.push(process);
            let mut regions: [MRegion; REGIONS] = Default::default();
            regions.iter_mut().for_each(|r| r.reserved = true);
            world.model.spaces.push(regions);
        }
        Ok(world)
    }

    /// The pager's state, for a failure message.
    fn describe(&self) -> String {
        let db = self.pager.database();
        let lists: Vec<_> = FrameList::ALL.iter().map(|&l| (l, db.count(l))).collect();
        let sets: Vec<_> =
            self.spaces.iter().map(|s| self.pager.process_counters(s.root())).collect();
        format!(
            "pager: {:?}\nlists: {lists:?}\nslots used: {}\nspaces: {sets:?}",
            self.pager,
            self.pager.slots().used_slots()
        )
    }

    fn snapshot(&mut self) -> Snapshot {
        let db = self.pager.database();
        Snapshot {
            counters: self.pager.counters(),
            performance: self.pager.performance(),
            used_slots: self.pager.slots().used_slots(),
            lists: FrameList::ALL.iter().map(|&l| db.count(l)).collect(),
            processes: self.spaces.iter().map(|s| self.pager.process_counters(s.root())).collect(),
            regions: self.spaces.iter().map(|s| s.regions().collect()).collect(),
            disk: self.pager.store().counters(),
            tables: self.tables.frames_in_use(),
        }
    }

    /// Checks a space operation's result against the model's: on `Ok` the model's change
    /// is made by the caller; a refusal (`Err(None)`: any error) must change nothing.
    fn compare<T: PartialEq + fmt::Debug>(
        &self,
        got: Result<T, SpaceError>,
        expected: Result<T, Option<SpaceError>>,
        before: &Snapshot,
        after: &Snapshot,
    ) -> Result<bool, String> {
        match (got, expected) {
            (Ok(got), Ok(expected)) => {
                ensure_eq!(got, expected, "the result");
                Ok(true)
            }
            (Err(got), Err(expected)) => {
                if let Some(expected) = expected {
                    ensure_eq!(got, expected, "the refusal");
                }
                ensure_eq!(after, before, "a refused operation ({got}) changed something");
                Ok(false)
            }
            (got, expected) => Err(format!("got {got:x?}, expected {expected:x?}")),
        }
    }

    fn step(&mut self, op: &Op) -> Result<(), String> {
        match *op {
            Op::Reserve { space, region } => self.reserve(space, region),
            Op::Commit { at, pages, protect } => self.commit(at, pages, protect),
            Op::Decommit { at, pages } => self.decommit(at, pages),
            Op::Release { space, region } => self.release(space, region),
            Op::Protect { at, pages, protect } => self.protect(at, pages, protect),
            Op::Write { at, whole, offset, seed } => {
                let offset = if whole { 0 } else { offset };
                self.access(at, offset, Some(written_bytes(at, whole, seed)))
            }
            Op::Read { at } => self.access(at, 0, None),
            Op::Trim { .. }
            | Op::EmptyWorkingSet { .. }
            | Op::TrimUntilAvailable { .. }
            | Op::WriteModified
            | Op::Age => self.pager_step(op),
            _ => {
                self.inject(op);
                Ok(())
            }
        }
    }

    fn reserve(&mut self, s: usize, region: usize) -> Result<(), String> {
        let before = self.snapshot();
        let base = Some(VirtAddr::new(region_base(region)));
        let got = self.spaces[s].reserve(base, PAGES as u64 * PAGE, Protection::READ_WRITE);
        let expected = if self.model.spaces[s][region].reserved { Err(None) } else { Ok(()) };
        let after = self.snapshot();
        if self.compare(got.map(|_| ()), expected, &before, &after)? {
            self.model.spaces[s][region] = MRegion { reserved: true, ..MRegion::default() };
        }
        Ok(())
    }

    fn commit(&mut self, at: At, pages: usize, protect: Prot) -> Result<(), String> {
        let before = self.snapshot();
        let got = {
            let (_, mut tlb) = self.machine.split();
            let mut paging = self.pager.with(&mut self.tables, &mut tlb);
            let (addr, size) = (Some(VirtAddr::new(at.addr())), pages as u64 * PAGE);
            self.spaces[at.space].commit_with(addr, size, protect.get(), &mut paging)
        };
        let expected = self.model.commit(at, pages, protect);
        let after = self.snapshot();
        if self.compare(got.map(|_| ()), expected, &before, &after)? {
            self.model.set_span(at, pages, |page| {
                if !page.committed {
                    *page = MPage { committed: true, protect: Some(protect.get()), data: None };
                }
            });
        }
        Ok(())
    }

    /// Runs `f` on space `s` with the pager's handle, then applies the flush it returns.
    fn with_paging<T>(
        &mut self,
        s: usize,
        f: impl FnOnce(
            &mut Space,
            &mut Ram,
            &mut paging::pager::Paging<'_, 'a, X86_64, SimDisk, AnyPolicy<'a>>,
        ) -> Result<(T, paging::tlb::Flush), SpaceError>,
    ) -> Result<T, SpaceError> {
        // The flush names pages of the running space.
        self.machine.switch_to(self.processes[s]);
        let (ram, mut tlb) = self.machine.split();
        let got = {
            let mut paging = self.pager.with(&mut self.tables, &mut tlb);
            f(&mut self.spaces[s], ram, &mut paging)
        };
        got.map(|(value, flush)| {
            flush.apply(&mut tlb);
            value
        })
    }

    fn decommit(&mut self, at: At, pages: usize) -> Result<(), String> {
        let before = self.snapshot();
        let (addr, size) = (VirtAddr::new(at.addr()), pages as u64 * PAGE);
        let got = self.with_paging(at.space, |space, ram, paging| {
            space.decommit(addr, size, ram, paging).map(|flush| ((), flush))
        });
        // Size zero decommits the whole reservation from its first page (Windows).
        let (at, pages) = match pages {
            0 if at.page == 0 => (at, PAGES),
            _ => (at, pages),
        };
        let expected = self.model.span(at, pages).map(|_| ()).ok_or(None);
        let after = self.snapshot();
        if self.compare(got, expected, &before, &after)? {
            self.model.set_span(at, pages, |page| *page = MPage::default());
        }
        Ok(())
    }

    fn release(&mut self, s: usize, region: usize) -> Result<(), String> {
        let before = self.snapshot();
        let base = VirtAddr::new(region_base(region));
        let got = self.with_paging(s, |space, ram, paging| {
            space.release(base, ram, paging).map(|flush| ((), flush))
        });
        let expected = if self.model.spaces[s][region].reserved { Ok(()) } else { Err(None) };
        let after = self.snapshot();
        if self.compare(got, expected, &before, &after)? {
            self.model.spaces[s][region] = MRegion::default();
        }
        Ok(())
    }

    fn protect(&mut self, at: At, pages: usize, protect: Prot) -> Result<(), String> {
        let before = self.snapshot();
        let (addr, size) = (VirtAddr::new(at.addr()), pages as u64 * PAGE);
        let got = self.with_paging(at.space, |space, ram, paging| {
            space.protect(addr, size, protect.get(), ram, paging)
        });
        let expected = self.model.protect(at, pages, protect);
        let after = self.snapshot();
        if self.compare(got, expected, &before, &after)? {
            self.model.set_span(at, pages, |page| page.protect = Some(protect.get()));
        }
        Ok(())
    }

    /// What the tables hold for the page at `at`, if it is a pager's entry.
    fn software_pte(&mut self, at: At) -> Option<SoftwarePte> {
        let table = self.spaces[at.space].page_table(self.machine.ram_mut());
        match table.lookup(VirtAddr::new(at.addr())) {
            Ok(Lookup::Payload { payload, .. }) => SoftwarePte::decode(payload).ok(),
            _ => None,
        }
    }

    /// Loads the page at `at`, or stores `data` at `offset` in it, through faults; checks
    /// the outcome against the model: the bytes, an access violation, or an in-page error
    /// exactly when the store was set to fail the page's read.
    fn access(&mut self, at: At, offset: usize, data: Option<Vec<u8>>) -> Result<(), String> {
        let access = if data.is_some() { Access::Write } else { Access::Read };
        let page = self.model.page(at);
        let region = &self.model.spaces[at.space][at.region];
        let allowed = region.reserved
            && page.committed
            && page.protect.is_some_and(|protect| protect.allows(access));
        let read_fails = allowed
            && matches!(self.software_pte(at), Some(SoftwarePte::PagingFile { slot })
                if self.model.failing_reads > 0 || self.model.bad_reads.contains(&slot.0));
        let addr = VirtAddr::new(at.addr() + offset as u64);
        let mut bytes = vec![0; PAGE_BYTES];
        let got = {
            self.machine.switch_to(self.processes[at.space]);
            let space = &mut self.spaces[at.space];
            let mut kernel = PagedKernel::new(space, &mut self.pager, &mut self.tables);
            match &data {
                Some(data) => self.machine.store(addr, data, &mut kernel),
                None => self.machine.load(addr, &mut bytes, &mut kernel),
            }
        };
        match got {
            Ok(()) => {
                ensure!(allowed && !read_fails, "{access:?} at {addr:x?} succeeded");
                let page = self.model.page_mut(at);
                match data {
                    Some(data) => {
                        let bytes = page.data.get_or_insert_with(|| Box::new([0; PAGE_BYTES]));
                        bytes[offset..offset + data.len()].copy_from_slice(&data);
                    }
                    None => ensure!(bytes[..] == page.bytes()[..], "{at:?} reads other bytes"),
                }
            }
            Err(MachineError::Unhandled(raised)) => {
                ensure_eq!(raised.fault.addr, addr, "the fault's address");
                // Allowed yet unresolved: no frame could be freed, which only a store
                // refusing writes excuses.
                ensure!(!allowed || self.model.writes_may_fail, "{access:?} at {addr:x?} failed");
            }
            Err(MachineError::Exception { exception, .. }) => {
                ensure_eq!(exception, Exception::InPageError { addr, access }, "the exception");
                ensure!(read_fails, "an in-page error with no read failure injected");
                self.model.failing_reads = self.model.failing_reads.saturating_sub(1);
            }
            Err(other) => return Err(format!("{access:?} at {addr:x?}: {other}")),
        }
        Ok(())
    }

    /// The pager's operations on working sets and lists, with what each must achieve.
    fn pager_step(&mut self, op: &Op) -> Result<(), String> {
        let db = self.pager.database();
        let (modified, standby) = (db.count(FrameList::Modified), db.count(FrameList::Standby));
        let free_slots = self.pager.slots().free_slots() as usize;
        let accessed = self.accessed_pages()?;
        let roots: Vec<PhysAddr> = self.spaces.iter().map(Space::root).collect();
        let ws = |pager: &SimPager<'_>, s: usize| {
            pager.process_counters(roots[s]).map_or(0, |c| c.working_set_size)
        };
        let ws_before: Vec<u64> = (0..roots.len()).map(|s| ws(&self.pager, s)).collect();
        let (ram, mut tlb) = self.machine.split();
        let mut paging = self.pager.with(&mut self.tables, &mut tlb);
        let done = match *op {
            Op::Trim { space, pages } => paging.trim(roots[space], pages, ram),
            Op::EmptyWorkingSet { space } => paging.empty_working_set(roots[space], ram),
            Op::TrimUntilAvailable { frames } => paging.trim_until_available(frames, ram),
            Op::WriteModified => paging.write_modified(ram),
            _ => paging.age(ram),
        };
        let ws_after: Vec<u64> = (0..roots.len()).map(|s| ws(&self.pager, s)).collect();
        let trimmed = (ws_before.iter().sum::<u64>() - ws_after.iter().sum::<u64>()) as usize;
        let db = self.pager.database();
        match *op {
            Op::Trim { space, pages } => {
                ensure_eq!(done, pages.min(ws_before[space] as usize), "pages trimmed");
                ensure_eq!(trimmed, done, "working sets shrunk by");
            }
            Op::EmptyWorkingSet { space } => {
                ensure_eq!(done, ws_before[space] as usize, "pages trimmed");
                ensure_eq!(ws_after[space], 0, "the working set left");
                ensure_eq!(trimmed, done, "working sets shrunk by");
            }
            Op::TrimUntilAvailable { frames } => {
                let available = self.pager.performance().physical_available;
                ensure!(available >= frames || ws_after.iter().all(|&w| w == 0), "short");
                ensure_eq!(trimmed, done, "working sets shrunk by");
            }
            Op::WriteModified => {
                ensure_eq!(db.count(FrameList::Modified), modified - done, "modified left");
                ensure_eq!(db.count(FrameList::Standby), standby + done, "standby now");
                if !self.model.writes_may_fail {
                    ensure_eq!(done, modified.min(free_slots), "pages written");
                }
            }
            _ => {
                ensure_eq!(done, accessed, "Accessed bits cleared");
                ensure_eq!(self.accessed_pages()?, 0, "Accessed bits left");
            }
        }
        Ok(())
    }

    /// How many present pages have their Accessed bit set.
    fn accessed_pages(&mut self) -> Result<usize, String> {
        let mut count = 0;
        for s in 0..self.spaces.len() {
            for (_, entry) in self.entries(s)? {
                if let Entry::Present { flags, .. } = entry {
                    count += usize::from(flags.contains(PageFlags::ACCESSED));
                }
            }
        }
        Ok(count)
    }

    fn inject(&mut self, op: &Op) {
        let slots = self.pager.slots().slots();
        let pte = match *op {
            Op::FailReadOf { at } => self.software_pte(at),
            _ => None,
        };
        let (disk, model) = (self.pager.store_mut(), &mut self.model);
        match *op {
            Op::FailNextReads { count } => {
                disk.fail_next_reads(count);
                model.failing_reads = count;
            }
            Op::FailReadOf { .. } => {
                if let Some(SoftwarePte::PagingFile { slot }) = pte {
                    disk.fail_read(slot);
                    model.bad_reads.insert(slot.0);
                }
            }
            Op::FailReadSlot { slot } => {
                disk.fail_read(Slot(slot % slots));
                model.bad_reads.insert(slot % slots);
            }
            Op::FailNextWrites { count } => {
                disk.fail_next_writes(count);
                model.writes_may_fail = true;
            }
            Op::FailWriteSlot { slot } => {
                disk.fail_write(Slot(slot % slots));
                model.writes_may_fail = true;
            }
            _ => {
                disk.clear_failures();
                model.failing_reads = 0;
                model.bad_reads.clear();
                model.writes_may_fail = false;
            }
        }
    }
}

// ---- the check ----

/// What the entries of every space name, counted as the check walks them.
#[derive(Default)]
struct Tally {
    active: Vec<u64>,
    standby: usize,
    modified: usize,
    frames: BTreeSet<PhysAddr>,
    slots: BTreeSet<u32>,
}

impl Tally {
    fn frame(&mut self, frame: PhysAddr) -> Result<(), String> {
        ensure!(self.frames.insert(frame), "frame {:?} is named twice", Hex(frame.as_u64()));
        Ok(())
    }

    fn slot(&mut self, slot: Slot) -> Result<(), String> {
        ensure!(self.slots.insert(slot.0), "slot {} is named twice", slot.0);
        Ok(())
    }
}

/// The store's slots, read without using up an injected failure or counting a read:
/// from a copy made on the first look.
struct Peek<'d> {
    disk: &'d SimDisk,
    copy: Option<SimDisk>,
}

impl Peek<'_> {
    fn read(&mut self, slot: Slot) -> Result<Page, String> {
        let copy = self.copy.get_or_insert_with(|| {
            let mut copy = self.disk.clone();
            copy.clear_failures();
            copy
        });
        let mut page = [0; PAGE_BYTES];
        copy.read(slot, &mut page).map_err(|e| format!("slot {}: {e}", slot.0))?;
        Ok(page)
    }
}

impl World<'_> {
    /// Compares every space's entries with the model and the frame database, then the
    /// books: list counts, slots, working sets, charges.
    fn check(&mut self) -> Result<(), String> {
        let mut tally = Tally { active: vec![0; self.spaces.len()], ..Tally::default() };
        for s in 0..self.spaces.len() {
            self.check_space(s, &mut tally)?;
        }
        let db = self.pager.database();
        let active = tally.active.iter().sum::<u64>() as usize;
        ensure_eq!(db.count(FrameList::Active), active, "active frames");
        ensure_eq!(db.count(FrameList::Standby), tally.standby, "standby frames");
        ensure_eq!(db.count(FrameList::Modified), tally.modified, "modified frames");
        let free = db.count(FrameList::Free) + db.count(FrameList::Zeroed);
        ensure_eq!(free + active + tally.standby + tally.modified, db.frames(), "frames");
        ensure_eq!(self.pager.slots().used_slots() as usize, tally.slots.len(), "used slots");
        let perf = self.pager.performance();
        ensure_eq!(perf.physical_available, (free + tally.standby) as u64, "available");
        ensure_eq!(perf.commit_total, self.model.committed(), "commit total");
        for (s, space) in self.spaces.iter().enumerate() {
            let counters = self.pager.process_counters(space.root()).unwrap_or_default();
            ensure_eq!(counters.working_set_size, tally.active[s], "working set of {}", s);
            ensure_eq!(counters.pagefile_usage, self.model.committed_in(s), "charge of {}", s);
            ensure_eq!(space.committed_pages(), self.model.committed_in(s), "committed in {}", s);
        }
        Ok(())
    }

    /// The entry of every page of every reservation slot of space `s`, looked up one by
    /// one (a walk of every table costs a hundred times more). An entry elsewhere would
    /// hold a frame or a slot that the counts of the check miss.
    fn entries(&mut self, s: usize) -> Result<Vec<(At, Entry)>, String> {
        let table = self.spaces[s].page_table(self.machine.ram_mut());
        let mut entries = Vec::new();
        for region in 0..REGIONS {
            for page in 0..PAGES {
                let at = At { space: s, region, page };
                let entry = match table.lookup(VirtAddr::new(at.addr())) {
                    Ok(Lookup::Unmapped) => continue,
                    Ok(Lookup::Mapped(t)) => {
                        Entry::Present { frame: t.frame, size: t.size, flags: t.flags }
                    }
                    Ok(Lookup::Payload { payload, level: 1 }) => match SoftwarePte::decode(payload)
                    {
                        Ok(pte) => Entry::Paged(pte),
                        Err(e) => return Err(format!("{at:?}: payload {payload:#x}: {e:?}")),
                    },
                    other => return Err(format!("{at:?}: {other:x?}")),
                };
                entries.push((at, entry));
            }
        }
        Ok(entries)
    }

    /// Every entry of space `s` against the model, the frame database and the store.
    fn check_space(&mut self, s: usize, tally: &mut Tally) -> Result<(), String> {
        let entries = self.entries(s)?;
        let root = self.spaces[s].root();
        let mut peek = Peek { disk: self.pager.store(), copy: None };
        let mut seen = BTreeSet::new();
        for (at, entry) in entries {
            let page = self.model.page(at);
            let reserved = self.model.spaces[s][at.region].reserved;
            ensure!(reserved && page.committed, "{at:?} has an entry, not committed: {entry:x?}");
            seen.insert(at);
            let owner = Owner::Private { root, page: VirtAddr::new(at.addr()) };
            let leaf = Leaf { at, page, owner, entry };
            leaf.check(&self.pager, self.machine.ram(), &mut peek, tally)?;
        }
        let regions = self.model.spaces[s].iter().enumerate();
        for (region, r) in regions.filter(|(_, r)| r.reserved) {
            for (page, p) in r.pages.iter().enumerate() {
                let at = At { space: s, region, page };
                ensure!(p.data.is_none() || seen.contains(&at), "{at:?} was written, now lost");
            }
        }
        Ok(())
    }

    /// Reads every page back, destroys every space through the pager and detaches it:
    /// every frame is free, no slot is used, no table frame beyond `baseline` stays.
    fn finish(&mut self, baseline: usize) -> Result<(), String> {
        self.inject(&Op::ClearFailures);
        for space in 0..self.spaces.len() {
            for region in 0..REGIONS {
                for page in 0..PAGES {
                    self.access(At { space, region, page }, 0, None)?;
                }
            }
        }
        self.check()?;
        let (ram, mut tlb) = self.machine.split();
        for space in self.spaces.drain(..) {
            let root = space.root();
            space.destroy(ram, &mut self.pager.with(&mut self.tables, &mut tlb));
            self.pager.detach(root).map_err(|e| format!("detach: {e}"))?;
        }
        let perf = self.pager.performance();
        ensure_eq!(perf.physical_available, perf.physical_total, "frames left");
        ensure_eq!(perf.commit_total, 0, "charge left");
        ensure_eq!(self.pager.slots().used_slots(), 0, "slots left");
        ensure_eq!(self.tables.frames_in_use(), baseline, "table frames left");
        Ok(())
    }
}

/// One leaf entry of a space: present, or a pager's (hidden, transition, paging-file).
#[derive(Debug)]
enum Entry {
    Present { frame: PhysAddr, size: u64, flags: PageFlags },
    Paged(SoftwarePte),
}

struct Leaf<'m> {
    at: At,
    page: &'m MPage,
    owner: Owner,
    entry: Entry,
}

impl Leaf<'_> {
    fn check(
        &self,
        pager: &SimPager<'_>,
        ram: &Ram,
        peek: &mut Peek<'_>,
        tally: &mut Tally,
    ) -> Result<(), String> {
        let at = self.at;
        let protect = self.page.protect.ok_or(format!("{at:?} has no protection"))?;
        let (frame, clean) = match self.entry {
            Entry::Present { frame, size, flags } => {
                ensure_eq!(size, PAGE, "{:?} is a 4 KiB page", at);
                ensure!(flags.contains(OWNED), "{at:?} is not the space's own frame");
                let expected = protect.page_flags(true);
                let got = flags.difference(PageFlags::MMU_STATE | OWNED);
                ensure_eq!(Some(got), expected, "flags of {:?}", at);
                (frame, !flags.contains(PageFlags::DIRTY))
            }
            Entry::Paged(SoftwarePte::Hidden { frame, owned }) => {
                ensure!(owned && protect.page_flags(true).is_none(), "{at:?} hidden");
                (frame, true)
            }
            Entry::Paged(SoftwarePte::Transition { frame, owned }) => {
                ensure!(owned, "{at:?}: a transition entry of a frame it does not own");
                return self.check_transition(frame, pager, ram, peek, tally);
            }
            Entry::Paged(SoftwarePte::PagingFile { slot }) => {
                ensure_eq!(pager.slots().references(slot), Ok(1), "references to {:?}", slot);
                ensure!(peek.read(slot)? == *self.page.bytes(), "{at:?} in {slot:?} differs");
                return tally.slot(slot);
            }
            // Zeros never written: the pager dropped them, and the page is demand-zero.
            Entry::Paged(SoftwarePte::DemandZero) => {
                ensure!(self.page.data.is_none(), "{at:?} was written, now demand-zero");
                return Ok(());
            }
            Entry::Paged(other) => return Err(format!("{at:?}: {other:x?}")),
        };
        let record = self.record(pager, frame, ram, tally)?;
        ensure_eq!(record.list(), FrameList::Active, "the list of {:?}", at);
        tally.active[at.space] += 1;
        if let Some(slot) = record.slot {
            tally.slot(slot)?;
            let good = !clean || peek.read(slot)? == *self.page.bytes();
            ensure!(good, "{at:?} is clean, but its copy in {slot:?} differs");
        }
        Ok(())
    }

    /// The record of `frame`, which must be the page's and hold its bytes.
    fn record(
        &self,
        pager: &SimPager<'_>,
        frame: PhysAddr,
        ram: &Ram,
        tally: &mut Tally,
    ) -> Result<FrameRecord, String> {
        let at = self.at;
        tally.frame(frame)?;
        let db = pager.database();
        let record = db.index_of(frame).and_then(|index| db.record(index)).copied();
        let record = record.ok_or(format!("{at:?} maps {frame:x?}, not the pager's"))?;
        ensure_eq!(record.owner, self.owner, "the owner of {:?}", at);
        let mut bytes = [0; PAGE_BYTES];
        ram.read(frame, &mut bytes).map_err(|e| e.to_string())?;
        ensure!(bytes == *self.page.bytes(), "{at:?}: its frame {frame:x?} holds other bytes");
        Ok(record)
    }

    /// A page on the standby list (its slot holds the same bytes) or the modified list
    /// (no slot).
    fn check_transition(
        &self,
        frame: PhysAddr,
        pager: &SimPager<'_>,
        ram: &Ram,
        peek: &mut Peek<'_>,
        tally: &mut Tally,
    ) -> Result<(), String> {
        let at = self.at;
        let record = self.record(pager, frame, ram, tally)?;
        match (record.list(), record.slot) {
            (FrameList::Standby, Some(slot)) => {
                tally.standby += 1;
                tally.slot(slot)?;
                ensure!(peek.read(slot)? == *self.page.bytes(), "{at:?} standby, {slot:?} differs");
            }
            // Zeros never written: no copy needed.
            (FrameList::Standby, None) if record.all_zero => {
                ensure!(self.page.data.is_none(), "{at:?} was written, yet standby as zeros");
                tally.standby += 1;
            }
            (FrameList::Modified, None) => tally.modified += 1,
            (list, slot) => return Err(format!("{at:?} in transition: {list:?}, {slot:?}")),
        }
        Ok(())
    }
}

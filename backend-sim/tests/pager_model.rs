//! The pager against a plain model: random operations over two or three spaces and shared
//! sections (commit, writes and reads of page-specific patterns, protect, decommit,
//! release, views with copy-on-write, trims, the modified-page writer, aging), with far
//! fewer frames than committed pages and a store whose reads and writes fail at random
//! points, on the simulated machine with a strict TLB.
//!
//! After every step: the pages read back the model's bytes (a rotating few each step,
//! every one at the end); every frame and every slot in use is one the model explains (a
//! page it says holds data, found through that page's entry); the commit charge is the
//! model's. At the end every space is destroyed and nothing is left: no frame, no slot,
//! no charge, no page-table frame.

use std::collections::BTreeSet;

use paging::frame::{BitmapAllocator, FrameAllocator};
use paging::pager::policy::{AnyPolicy, PolicyKind};
use paging::pager::{FrameList, FrameRecord, Owner, PAGE_BYTES, Paging, Slot};
use paging::space::{AddressSpace, FaultChain, Protection, Prototype, Section, SpaceError};
use paging::table::Lookup;
use paging::{Access, Exception, PageFlags, PhysAddr, SoftwarePte, Tlb, VirtAddr};
use paging_harness::fixtures::{PagerBooks as Storage, SimPager, sim_allocator, sim_space};
use paging_sim::{
    Machine, MachineConfig, MachineError, NoResolver, PagedKernel, ProcessId, Ram, SimDisk,
};
use paging_x86::X86_64;
use proptest::prelude::*;

/// The bytes of a page.
const PAGE: u64 = PAGE_BYTES as u64;

/// The page-table bit that marks a frame the space owns (the space's `OWNED`).
const OWNED: PageFlags = PageFlags::SOFTWARE_0;

/// The most reservations and views the model keeps in one space.
const MAX_REGIONS: usize = 6;

type TestPager<'s> = SimPager<'s>;
type TestPaging<'h, 's> = Paging<'h, 's, X86_64, SimDisk, AnyPolicy<'s>>;

// ---- the system under test ----

/// One process: its space and its id on the machine.
struct Process {
    space: AddressSpace<X86_64>,
    id: ProcessId,
}

/// What a page's entry holds, as the checks read it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum PteView {
    Unmapped,
    Present {
        frame: PhysAddr,
        owned: bool,
    },
    Hidden {
        frame: PhysAddr,
        owned: bool,
    },
    Transition {
        frame: PhysAddr,
    },
    PagingFile {
        slot: Slot,
    },
    /// A view's page whose section page the pager took away: the prototype says where.
    Prototype,
    /// A page of zeros the pager dropped: demand-zero again.
    DemandZero,
}

/// The machine, the kernel's table allocator, the pager, the processes and the sections.
struct World<'s, 'a> {
    machine: Machine<X86_64>,
    alloc: BitmapAllocator<'a>,
    pager: TestPager<'s>,
    procs: Vec<Process>,
    sections: Vec<Section>,
    /// Each section's header frame: the owner its pages' frame records name.
    headers: Vec<PhysAddr>,
    tables_at_start: usize,
}

impl<'s, 'a> World<'s, 'a> {
    /// A machine with `spaces` processes, each attached to `pager`, and sections of
    /// `sections` pages each, charged to the pager (those past the commit limit are
    /// refused with the exact error, and left out).
    fn new(
        mut pager: TestPager<'s>,
        bitmap: &'a mut [u64; 128],
        spaces: usize,
        sections: &[u64],
    ) -> Self {
        let mut machine = Machine::<X86_64>::new(MachineConfig::default());
        let mut alloc = sim_allocator(bitmap);
        let tables_at_start = alloc.frames_in_use();
        let mut procs = Vec::new();
        for asid in 1..=spaces as u16 {
            let (space, id) = sim_space(&mut machine, &mut alloc, asid);
            pager.attach(space.root(), space.asid(), 0, u32::MAX).unwrap();
            procs.push(Process { space, id });
        }
        let (mut created, mut headers) = (Vec::new(), Vec::new());
        for &pages in sections {
            let charged: u64 = created.iter().map(Section::pages).sum();
            let available = pager.commit_limit() - charged;
            let before = allocated_tables(&alloc);
            let (ram, mut tlb) = machine.split();
            let result = Section::create(pages, ram, &mut pager.with(&mut alloc, &mut tlb));
            if pages > available {
                let error = SpaceError::CommitLimit { requested: pages, available };
                assert_eq!(result, Err(error), "a section past the commit limit");
                continue;
            }
            let section = result.unwrap();
            let after = allocated_tables(&alloc);
            // The header is the first frame of the section's run.
            headers.push(*after.difference(&before).next().expect("the section's frames"));
            created.push(section);
        }
        let sections = created;
        Self { machine, alloc, pager, procs, sections, headers, tables_at_start }
    }

    /// Runs `f` on a space with the pager's handle (the space's process running, so that
    /// a flush applied to the handle's TLB reaches its entries).
    fn with_paging<R>(
        &mut self,
        space: usize,
        f: impl FnOnce(&mut AddressSpace<X86_64>, &mut Ram, &mut TestPaging<'_, 's>) -> R,
    ) -> R {
        let process = &mut self.procs[space];
        self.machine.switch_to(process.id);
        let (ram, mut tlb) = self.machine.split();
        let mut paging = self.pager.with(&mut self.alloc, &mut tlb);
        f(&mut process.space, ram, &mut paging)
    }

    /// Reads the page at `addr` (`write` is `None`) or writes `write` there, as the
    /// space's process, faults resolved by the pager.
    fn access(
        &mut self,
        space: usize,
        addr: VirtAddr,
        write: Option<&[u8]>,
    ) -> Result<Vec<u8>, MachineError> {
        let process = &mut self.procs[space];
        self.machine.switch_to(process.id);
        let mut kernel = PagedKernel::new(&mut process.space, &mut self.pager, &mut self.alloc);
        match write {
            Some(data) => self.machine.store(addr, data, &mut kernel).map(|()| Vec::new()),
            None => {
                let mut bytes = vec![0; PAGE_BYTES];
                self.machine.load(addr, &mut bytes, &mut kernel)?;
                Ok(bytes)
            }
        }
    }

    /// What the entry of the page at `addr` in `space` holds.
    fn pte(&mut self, space: usize, addr: VirtAddr) -> PteView {
        let root = self.procs[space].space.root();
        match self.machine.page_table_at(root).lookup(addr).unwrap() {
            Lookup::Mapped(t) => {
                PteView::Present { frame: t.frame, owned: t.flags.contains(OWNED) }
            }
            Lookup::Payload { payload, .. } => match SoftwarePte::decode(payload).unwrap() {
                SoftwarePte::Hidden { frame, owned } => PteView::Hidden { frame, owned },
                SoftwarePte::Prototype => PteView::Prototype,
                SoftwarePte::DemandZero => PteView::DemandZero,
                SoftwarePte::Transition { frame, owned: true } => PteView::Transition { frame },
                SoftwarePte::PagingFile { slot } => PteView::PagingFile { slot },
                other => panic!("{addr:?} in space {space}: unexpected entry {other:?}"),
            },
            Lookup::Unmapped => PteView::Unmapped,
        }
    }

    /// Where page `index` of section `section` is, as its prototype says.
    fn prototype(&self, section: usize, index: usize) -> Prototype {
        self.sections[section].page(self.machine.ram(), index as u64).unwrap()
    }

    /// The record of the pager's frame `frame`.
    fn record(&self, frame: PhysAddr) -> FrameRecord {
        let database = self.pager.database();
        let index =
            database.index_of(frame).unwrap_or_else(|| panic!("{frame:?} not a pager frame"));
        *database.record(index).unwrap()
    }
}

/// The page-table allocator's frames in use.
fn allocated_tables(alloc: &BitmapAllocator<'_>) -> BTreeSet<PhysAddr> {
    let (base, frames) = alloc.span();
    let all = (0..frames as u64).map(|i| base + i * PAGE);
    all.filter(|&frame| alloc.is_allocated(frame)).collect()
}

// ---- the model ----

/// The protections the model uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Prot {
    NoAccess,
    ReadOnly,
    ReadWrite,
    WriteCopy,
}

impl Prot {
    fn protection(self) -> Protection {
        match self {
            Self::NoAccess => Protection::NO_ACCESS,
            Self::ReadOnly => Protection::READ_ONLY,
            Self::ReadWrite => Protection::READ_WRITE,
            Self::WriteCopy => Protection::WRITE_COPY,
        }
    }

    fn allows(self, write: bool) -> bool {
        match self {
            Self::NoAccess => false,
            Self::ReadOnly => !write,
            Self::ReadWrite | Self::WriteCopy => true,
        }
    }
}

/// One page of a region.
#[derive(Clone, Debug)]
struct PageModel {
    committed: bool,
    prot: Prot,
    /// The bytes the space holds in a frame or a slot of its own: a private page once
    /// touched, a view's page once copied. `None`: a private page never touched (zeros, no
    /// frame), or a view page that shows its section's page.
    data: Option<Vec<u8>>,
    /// Whether the page was written since its data appeared: a page never written holds
    /// zeros only, and the pager may drop it (its entry demand-zero again).
    written: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RegionKind {
    Private,
    View { section: usize, write_copy: bool },
}

/// A reservation or a view.
#[derive(Clone, Debug)]
struct Region {
    base: VirtAddr,
    kind: RegionKind,
    pages: Vec<PageModel>,
}

/// A page of the model, by its space, its region and its index there.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct PageRef {
    space: usize,
    region: usize,
    page: usize,
}

/// What every space and section holds, and the failures the store was told to inject.
#[derive(Clone, Debug, Default)]
struct Model {
    spaces: Vec<Vec<Region>>,
    sections: Vec<Vec<Vec<u8>>>,
    /// Which pages of each section a view touched: they hold a frame or a slot.
    touched: Vec<Vec<bool>>,
    /// Which pages of each section were written since they were touched (the others hold
    /// zeros, and the pager may drop them: their prototype zero again).
    section_written: Vec<Vec<bool>>,
    /// Read requests the store fails next, whatever their slot.
    pending_reads: u64,
    /// Slots whose reads fail.
    bad_reads: BTreeSet<u32>,
    /// Whether some write may fail (the writer's requests are the pager's own business,
    /// so the model only knows that failures were injected and not cleared since).
    writes_may_fail: bool,
}

impl Model {
    fn region(&self, at: PageRef) -> &Region {
        &self.spaces[at.space][at.region]
    }

    fn page(&self, at: PageRef) -> &PageModel {
        &self.region(at).pages[at.page]
    }

    fn page_mut(&mut self, at: PageRef) -> &mut PageModel {
        &mut self.spaces[at.space][at.region].pages[at.page]
    }

    fn addr(&self, at: PageRef) -> VirtAddr {
        self.region(at).base + at.page as u64 * PAGE
    }

    /// Every page of every region, committed or not.
    fn all_pages(&self) -> Vec<PageRef> {
        let mut pages = Vec::new();
        for (space, regions) in self.spaces.iter().enumerate() {
            for (region, r) in regions.iter().enumerate() {
                pages.extend((0..r.pages.len()).map(|page| PageRef { space, region, page }));
            }
        }
        pages
    }

    fn committed_pages(&self, space: usize) -> Vec<PageRef> {
        let all = self.all_pages().into_iter();
        all.filter(|at| at.space == space && self.page(*at).committed).collect()
    }

    /// The regions of `space` of one type (private or views).
    fn regions(&self, space: usize, private: bool) -> Vec<usize> {
        let regions = self.spaces[space].iter().enumerate();
        regions
            .filter(|(_, r)| (r.kind == RegionKind::Private) == private)
            .map(|(i, _)| i)
            .collect()
    }

    /// The commit charge of `space`: its committed private pages, and every page of its
    /// write-copy views (each may become a private copy).
    fn charged(&self, space: usize) -> u64 {
        let regions = self.spaces[space].iter();
        let charged = |r: &Region| match r.kind {
            RegionKind::Private => r.pages.iter().filter(|p| p.committed).count(),
            RegionKind::View { write_copy: true, .. } => r.pages.len(),
            RegionKind::View { write_copy: false, .. } => 0,
        };
        regions.map(charged).sum::<usize>() as u64
    }

    fn charged_total(&self) -> u64 {
        (0..self.spaces.len()).map(|s| self.charged(s)).sum()
    }

    /// The pages of the open sections: their commit charge.
    fn section_charge(&self) -> u64 {
        self.sections.iter().map(|pages| pages.len() as u64).sum()
    }

    /// The pages that hold data of their own (each in a frame or a slot of the pager):
    /// the spaces' and the touched pages of the sections.
    fn materialised(&self) -> usize {
        let pages = self.spaces.iter().flatten().flat_map(|r| &r.pages);
        let touched = self.touched.iter().flatten().filter(|&&touched| touched).count();
        pages.filter(|p| p.data.is_some()).count() + touched
    }

    /// The bytes a read of the page gives; a private page's first touch gives it a page
    /// of zeros of its own.
    fn read(&mut self, at: PageRef) -> Vec<u8> {
        let kind = self.region(at).kind;
        let page = self.page_mut(at);
        match (kind, &page.data) {
            (_, Some(data)) => data.clone(),
            (RegionKind::Private, None) => page.data.insert(vec![0; PAGE_BYTES]).clone(),
            (RegionKind::View { section, .. }, None) => {
                self.touched[section][at.page] = true;
                self.sections[section][at.page].clone()
            }
        }
    }

    /// A write of `bytes` at `offset` in the page: a write-copy page (or any page of a
    /// write-copy view not yet copied) gets a private copy first and becomes read-write.
    fn write(&mut self, at: PageRef, offset: usize, bytes: &[u8]) {
        let kind = self.region(at).kind;
        let current = self.read(at);
        let page = self.page_mut(at);
        if let RegionKind::View { write_copy, .. } = kind
            && page.data.is_none()
            && (write_copy || page.prot == Prot::WriteCopy)
        {
            page.data = Some(current);
        }
        if page.prot == Prot::WriteCopy {
            page.prot = Prot::ReadWrite;
        }
        let target = match (kind, &mut page.data) {
            (_, Some(data)) => {
                page.written = true;
                data
            }
            // Views map their section whole: page `i` is the section's page `i`.
            (RegionKind::View { section, .. }, None) => {
                self.section_written[section][at.page] = true;
                &mut self.sections[section][at.page]
            }
            (RegionKind::Private, None) => unreachable!("read gave the page its bytes"),
        };
        target[offset..offset + bytes.len()].copy_from_slice(bytes);
    }

    /// Whether a read of `slot` fails now.
    fn read_fails(&self, slot: Slot) -> bool {
        self.pending_reads > 0 || self.bad_reads.contains(&slot.0)
    }

    fn clear_failures(&mut self) {
        self.pending_reads = 0;
        self.bad_reads.clear();
        self.writes_may_fail = false;
    }
}

/// A page of bytes that says which seed and page it belongs to.
fn pattern(seed: u32, addr: VirtAddr, len: usize) -> Vec<u8> {
    let mut x = (seed ^ (addr.as_u64() >> 12) as u32).wrapping_mul(0x9E37_79B9) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

// ---- the operations ----

/// One step. Numbers select among what the model holds at the time (modulo its size), so
/// that any sequence is valid and shrinks well.
#[derive(Clone, Copy, Debug)]
enum Op {
    Commit { space: u8, pages: u8 },
    Recommit { space: u8, region: u8, first: u8, count: u8 },
    Decommit { space: u8, region: u8, first: u8, count: u8 },
    Release { space: u8, region: u8 },
    Write { space: u8, target: u8, seed: u32, small: Option<u16> },
    Read { space: u8, target: u8 },
    Protect { space: u8, region: u8, first: u8, count: u8, prot: u8 },
    MapView { space: u8, section: u8, write_copy: bool },
    UnmapView { space: u8, region: u8 },
    Trim { space: u8, pages: u8 },
    EmptyWorkingSet { space: u8 },
    TrimUntilAvailable { frames: u8 },
    WriteModified,
    Age,
    FailNextReads { count: u8 },
    FailNextWrites { count: u8 },
    FailReadOf { space: u8, target: u8 },
    FailWrite { slot: u16 },
    ClearFailures,
}

fn op() -> impl Strategy<Value = Op> {
    let range = || (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>());
    prop_oneof![
        3 => (any::<u8>(), 1u8..=4).prop_map(|(space, pages)| Op::Commit { space, pages }),
        1 => range().prop_map(|(space, region, first, count)| Op::Recommit { space, region, first, count }),
        1 => range().prop_map(|(space, region, first, count)| Op::Decommit { space, region, first, count }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(space, region)| Op::Release { space, region }),
        7 => (any::<u8>(), any::<u8>(), any::<u32>(), prop::option::weighted(0.25, any::<u16>()))
            .prop_map(|(space, target, seed, small)| Op::Write { space, target, seed, small }),
        4 => (any::<u8>(), any::<u8>()).prop_map(|(space, target)| Op::Read { space, target }),
        3 => (range(), any::<u8>()).prop_map(|((space, region, first, count), prot)| {
            Op::Protect { space, region, first, count, prot }
        }),
        2 => (any::<u8>(), any::<u8>(), any::<bool>())
            .prop_map(|(space, section, write_copy)| Op::MapView { space, section, write_copy }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(space, region)| Op::UnmapView { space, region }),
        2 => (any::<u8>(), 1u8..=4).prop_map(|(space, pages)| Op::Trim { space, pages }),
        1 => any::<u8>().prop_map(|space| Op::EmptyWorkingSet { space }),
        1 => (1u8..=8).prop_map(|frames| Op::TrimUntilAvailable { frames }),
        1 => Just(Op::WriteModified),
        1 => Just(Op::Age),
        1 => (1u8..=2).prop_map(|count| Op::FailNextReads { count }),
        1 => (1u8..=3).prop_map(|count| Op::FailNextWrites { count }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(space, target)| Op::FailReadOf { space, target }),
        1 => any::<u16>().prop_map(|slot| Op::FailWrite { slot }),
        2 => Just(Op::ClearFailures),
    ]
}

/// The machine a case runs on.
#[derive(Clone, Debug)]
struct Config {
    frames: u32,
    /// `Some(n)`: the store has `frames + n` slots (a commit limit the operations reach);
    /// `None`: enough slots for everything the operations can commit and copy.
    few_slots: Option<u32>,
    policy: PolicyKind,
    cluster: usize,
    spaces: usize,
    sections: Vec<u64>,
}

impl Config {
    /// Committed private pages the operations stop at when the limit is far.
    fn commit_cap(&self) -> u64 {
        4 * u64::from(self.frames)
    }

    fn slots(&self) -> u32 {
        match self.few_slots {
            Some(extra) => self.frames + extra % (self.frames + 1),
            // Every committed page, and a private copy of every page of every view.
            None => 4 * self.frames + (self.spaces * MAX_REGIONS * 4) as u32,
        }
    }
}

fn config() -> impl Strategy<Value = Config> {
    let policies = vec![
        PolicyKind::Fifo,
        PolicyKind::Clock,
        PolicyKind::EnhancedClock,
        PolicyKind::Aging,
        PolicyKind::WsClock,
    ];
    (
        3u32..=8,
        prop::option::weighted(0.3, 0u32..=8),
        prop::sample::select(policies),
        1usize..=4,
        2usize..=3,
        prop::collection::vec(2u64..=4, 1..=2),
    )
        .prop_map(|(frames, few_slots, policy, cluster, spaces, sections)| Config {
            frames,
            few_slots,
            policy,
            cluster,
            spaces,
            sections,
        })
}

// ---- one case: the operations on the world and on the model ----

/// What the entries of the model's pages hold, counted by the checks.
#[derive(Default)]
struct Held {
    /// Pages in a working set, per space.
    active: Vec<usize>,
    /// Sections' pages in memory (active, in no working set).
    sections: usize,
    /// Pages in transition (on the standby or modified list).
    waiting: usize,
    /// Slots named by paging-file entries.
    paged: Vec<u32>,
}

struct Case<'s, 'a> {
    world: World<'s, 'a>,
    model: Model,
    config: Config,
    step: usize,
}

impl Case<'_, '_> {
    fn apply(&mut self, op: Op) {
        let spaces = self.model.spaces.len();
        let space = |s: u8| usize::from(s) % spaces;
        match op {
            Op::Commit { space: s, pages } => self.commit(space(s), u64::from(pages)),
            Op::Recommit { space: s, region, first, count } => {
                self.recommit(space(s), region, first, count);
            }
            Op::Decommit { space: s, region, first, count } => {
                self.decommit(space(s), region, first, count);
            }
            Op::Release { space: s, region } => self.release(space(s), region),
            Op::Write { space: s, target, seed, small } => {
                self.write(space(s), target, seed, small)
            }
            Op::Read { space: s, target } => {
                if let Some(at) = self.target(space(s), target) {
                    self.touch(at, None);
                }
            }
            Op::Protect { space: s, region, first, count, prot } => {
                self.protect(space(s), region, first, count, prot);
            }
            Op::MapView { space: s, section, write_copy } => {
                self.map_view(space(s), section, write_copy);
            }
            Op::UnmapView { space: s, region } => self.unmap_view(space(s), region),
            Op::Trim { space: s, pages } => self.trim(space(s), Some(usize::from(pages))),
            Op::EmptyWorkingSet { space: s } => self.trim(space(s), None),
            Op::TrimUntilAvailable { frames } => self.trim_until_available(u64::from(frames)),
            Op::WriteModified => self.write_modified(),
            Op::Age => self.age(),
            _ => self.inject(op),
        }
    }

    // ---- reservations and views ----

    /// The error a charge of `pages` more pages must give, if any.
    fn limit_error(&self, pages: u64) -> Option<SpaceError> {
        let limit = u64::from(self.config.frames + self.config.slots().saturating_sub(1));
        let available = limit - self.model.charged_total() - self.model.section_charge();
        (pages > available).then_some(SpaceError::CommitLimit { requested: pages, available })
    }

    /// Whether the operations stop short of committing `pages` more pages (the cap that
    /// keeps a case with many slots near four times its frames).
    fn over_cap(&self, pages: u64) -> bool {
        self.config.few_slots.is_none()
            && self.model.charged_total() + pages > self.config.commit_cap()
    }

    fn commit(&mut self, space: usize, pages: u64) {
        if self.model.spaces[space].len() >= MAX_REGIONS || self.over_cap(pages) {
            return;
        }
        let size = pages * PAGE;
        let result = self.world.with_paging(space, |s, _, paging| {
            s.commit_with(None, size, Protection::READ_WRITE, paging)
        });
        if let Some(error) = self.limit_error(pages) {
            assert_eq!(result, Err(error), "step {}: commit past the limit", self.step);
            return;
        }
        let base = result.unwrap_or_else(|e| panic!("step {}: commit: {e:?}", self.step));
        let page = PageModel { committed: true, prot: Prot::ReadWrite, data: None, written: false };
        let region = Region { base, kind: RegionKind::Private, pages: vec![page; pages as usize] };
        self.model.spaces[space].push(region);
    }

    /// Pages `[first, first + count)` of one region of `space` (private ones only if
    /// `private`), chosen by the selectors.
    fn range(
        &self,
        space: usize,
        region: u8,
        first: u8,
        count: u8,
        private: Option<bool>,
    ) -> Option<(usize, usize, usize)> {
        let regions = match private {
            Some(private) => self.model.regions(space, private),
            None => (0..self.model.spaces[space].len()).collect(),
        };
        let region = *regions.get(usize::from(region) % regions.len().max(1))?;
        let len = self.model.spaces[space][region].pages.len();
        let first = usize::from(first) % len;
        let count = 1 + usize::from(count) % (len - first);
        Some((region, first, count))
    }

    fn recommit(&mut self, space: usize, region: u8, first: u8, count: u8) {
        let Some((region, first, count)) = self.range(space, region, first, count, Some(true))
        else {
            return;
        };
        let pages = &self.model.spaces[space][region].pages[first..first + count];
        let fresh = pages.iter().filter(|p| !p.committed).count() as u64;
        if self.over_cap(fresh) {
            return;
        }
        let addr = self.model.spaces[space][region].base + first as u64 * PAGE;
        let size = count as u64 * PAGE;
        let result = self.world.with_paging(space, |s, _, paging| {
            s.commit_with(Some(addr), size, Protection::READ_WRITE, paging)
        });
        if let Some(error) = self.limit_error(fresh) {
            assert_eq!(result, Err(error), "step {}: commit past the limit", self.step);
            return;
        }
        assert_eq!(result, Ok(addr), "step {}: commit in a reservation", self.step);
        let pages = &mut self.model.spaces[space][region].pages[first..first + count];
        for page in pages.iter_mut().filter(|p| !p.committed) {
            *page =
                PageModel { committed: true, prot: Prot::ReadWrite, data: None, written: false };
        }
    }

    fn decommit(&mut self, space: usize, region: u8, first: u8, count: u8) {
        let Some((region, first, count)) = self.range(space, region, first, count, Some(true))
        else {
            return;
        };
        let addr = self.model.spaces[space][region].base + first as u64 * PAGE;
        let size = count as u64 * PAGE;
        let result = self.world.with_paging(space, |s, ram, paging| {
            s.decommit(addr, size, ram, paging).map(|flush| flush.apply(&mut *paging.tlb))
        });
        assert_eq!(result, Ok(()), "step {}: decommit", self.step);
        for page in &mut self.model.spaces[space][region].pages[first..first + count] {
            page.committed = false;
            page.data = None;
        }
    }

    fn release(&mut self, space: usize, region: u8) {
        let Some((region, ..)) = self.range(space, region, 0, 0, Some(true)) else { return };
        let base = self.model.spaces[space][region].base;
        let result = self.world.with_paging(space, |s, ram, paging| {
            s.release(base, ram, paging).map(|flush| flush.apply(&mut *paging.tlb))
        });
        assert_eq!(result, Ok(()), "step {}: release", self.step);
        self.model.spaces[space].remove(region);
    }

    fn protect(&mut self, space: usize, region: u8, first: u8, count: u8, prot: u8) {
        let Some((region, first, count)) = self.range(space, region, first, count, None) else {
            return;
        };
        // Write-copy is for views only.
        let choices: &[Prot] = match self.model.spaces[space][region].kind {
            RegionKind::Private => &[Prot::NoAccess, Prot::ReadOnly, Prot::ReadWrite],
            RegionKind::View { .. } => {
                &[Prot::NoAccess, Prot::ReadOnly, Prot::ReadWrite, Prot::WriteCopy]
            }
        };
        let prot = choices[usize::from(prot) % choices.len()];
        self.protect_pages(space, region, first, count, prot);
    }

    fn protect_pages(&mut self, space: usize, region: usize, first: usize, count: usize, to: Prot) {
        let addr = self.model.spaces[space][region].base + first as u64 * PAGE;
        let size = count as u64 * PAGE;
        let result = self.world.with_paging(space, |s, ram, paging| {
            let (old, flush) = s.protect(addr, size, to.protection(), ram, paging)?;
            flush.apply(&mut *paging.tlb);
            Ok(old)
        });
        let kind = self.model.spaces[space][region].kind;
        let pages = &mut self.model.spaces[space][region].pages[first..first + count];
        if let Some(i) = pages.iter().position(|p| !p.committed) {
            let error = SpaceError::NotCommitted { addr: addr + i as u64 * PAGE };
            assert_eq!(result, Err(error), "step {}: protect over reserved pages", self.step);
            return;
        }
        // A write-copy view grants no write to its section's pages (Windows: the
        // protection a view may take is bounded by its own).
        if to == Prot::ReadWrite && matches!(kind, RegionKind::View { write_copy: true, .. }) {
            assert_eq!(result, Err(SpaceError::ReadOnlyView), "step {}: protect", self.step);
            return;
        }
        assert_eq!(result, Ok(pages[0].prot.protection()), "step {}: protect", self.step);
        for page in pages {
            page.prot = to;
        }
    }

    fn map_view(&mut self, space: usize, section: u8, write_copy: bool) {
        if self.model.spaces[space].len() >= MAX_REGIONS || self.world.sections.is_empty() {
            return;
        }
        let section = usize::from(section) % self.world.sections.len();
        let prot = if write_copy { Prot::WriteCopy } else { Prot::ReadWrite };
        let pages = self.world.sections[section].pages();
        let charge = if write_copy { pages } else { 0 };
        if self.over_cap(charge) {
            return;
        }
        let World { machine, alloc, pager, procs, sections, .. } = &mut self.world;
        machine.switch_to(procs[space].id);
        let (ram, mut tlb) = machine.split();
        let mut paging = pager.with(alloc, &mut tlb);
        let (view, protect) = (&sections[section], prot.protection());
        let result =
            procs[space].space.map_view_with(view, None, 0, pages, protect, ram, &mut paging);
        if let Some(error) = self.limit_error(charge) {
            assert_eq!(result, Err(error), "step {}: a write-copy view past the limit", self.step);
            return;
        }
        let base = result.unwrap_or_else(|e| panic!("step {}: map a view: {e:?}", self.step));
        let page = PageModel { committed: true, prot, data: None, written: false };
        let kind = RegionKind::View { section, write_copy };
        self.model.spaces[space].push(Region { base, kind, pages: vec![page; pages as usize] });
    }

    fn unmap_view(&mut self, space: usize, region: u8) {
        let Some((region, ..)) = self.range(space, region, 0, 0, Some(false)) else { return };
        let base = self.model.spaces[space][region].base;
        let result = self.world.with_paging(space, |s, ram, paging| {
            s.unmap_view(base, ram, paging).map(|flush| flush.apply(&mut *paging.tlb))
        });
        assert_eq!(result, Ok(()), "step {}: unmap a view", self.step);
        self.model.spaces[space].remove(region);
    }
}

impl Case<'_, '_> {
    // ---- accesses ----

    /// A committed page of `space`, chosen by `target`.
    fn target(&self, space: usize, target: u8) -> Option<PageRef> {
        let pages = self.model.committed_pages(space);
        pages.get(usize::from(target) % pages.len().max(1)).copied()
    }

    fn write(&mut self, space: usize, target: u8, seed: u32, small: Option<u16>) {
        let Some(at) = self.target(space, target) else { return };
        let (offset, len) = match small {
            Some(offset) => (usize::from(offset) % (PAGE_BYTES - 16), 16),
            None => (0, PAGE_BYTES),
        };
        let bytes = pattern(seed, self.model.addr(at), len);
        self.touch(at, Some((offset, bytes)));
    }

    /// Whether a fault may find no frame: the store refuses writes (every frame may end
    /// up modified), or every frame and every slot holds a page.
    fn may_run_out_of_frames(&self) -> bool {
        let room = u64::from(self.config.frames + self.config.slots());
        // Pager limitation, see `every_page_committed_up_to_the_limit_can_be_touched_again`:
        // with as many pages as frames and slots, a paged-out page cannot come back.
        self.model.writes_may_fail || self.model.materialised() as u64 >= room
    }

    /// Reads the page (`write` is `None`) or writes bytes at an offset in it, and checks
    /// the outcome against the model: the bytes the model says, an access violation where
    /// the protection refuses, an in-page error exactly when the store fails the read of
    /// the page's slot (the page then stays in its slot).
    fn touch(&mut self, at: PageRef, write: Option<(usize, Vec<u8>)>) {
        let page_addr = self.model.addr(at);
        let offset = write.as_ref().map_or(0, |(offset, _)| *offset);
        let addr = page_addr + offset as u64;
        let allowed = self.model.page(at).prot.allows(write.is_some());
        let before = self.world.pte(at.space, page_addr);
        let section_before = self.section_page(at);
        let must_fail = allowed
            && match (before, section_before) {
                (PteView::PagingFile { slot }, _) => self.model.read_fails(slot),
                // The view's page shows its section's page, which is in a slot.
                (
                    PteView::Unmapped | PteView::Prototype,
                    Some((_, Prototype::PagingFile(slot))),
                ) => self.model.read_fails(slot),
                _ => false,
            };
        let data = write.as_ref().map(|(_, bytes)| bytes.as_slice());
        let result = self.world.access(at.space, addr, data);
        let access = if write.is_some() { Access::Write } else { Access::Read };
        match result {
            Ok(bytes) if allowed && !must_fail => match &write {
                Some((offset, data)) => self.model.write(at, *offset, data),
                None => {
                    let expected = self.model.read(at);
                    let wrong = bytes.iter().zip(&expected).position(|(a, b)| a != b);
                    assert_eq!(wrong, None, "step {}: {at:?} at {addr:?} reads back", self.step);
                }
            },
            Err(MachineError::Unhandled(raised))
                if raised.fault.addr == addr && (!allowed || self.may_run_out_of_frames()) =>
            {
                // Out of frames, the section's page may have come in before the copy
                // found no frame: it stays, for every view.
                if let Some((section, _)) = section_before
                    && allowed
                {
                    let now = self.world.prototype(section, at.page);
                    self.model.touched[section][at.page] |= now != Prototype::Zero;
                }
            }
            Err(MachineError::Exception { exception, .. })
                if must_fail && exception == Exception::InPageError { addr, access } =>
            {
                self.model.pending_reads = self.model.pending_reads.saturating_sub(1);
                let after = self.world.pte(at.space, page_addr);
                assert_eq!(after, before, "step {}: {at:?} stays in its slot", self.step);
                let section_after = self.section_page(at);
                assert_eq!(section_after, section_before, "step {}: stays in its slot", self.step);
            }
            other => panic!(
                "step {}: {access:?} of {at:?} at {addr:?} (allowed: {allowed}, entry before: \
                 {before:?}, read fails: {must_fail}): {other:?}",
                self.step
            ),
        }
    }

    /// The section and the prototype of a view's page that shows its section's page (no
    /// copy of its own).
    fn section_page(&self, at: PageRef) -> Option<(usize, Prototype)> {
        let RegionKind::View { section, .. } = self.model.region(at).kind else { return None };
        let shown = self.model.page(at).data.is_none();
        shown.then(|| (section, self.world.prototype(section, at.page)))
    }

    /// Reads a rotating two of the readable committed pages.
    fn read_some(&mut self) {
        let readable: Vec<PageRef> = (self.model.all_pages().into_iter())
            .filter(|&at| self.model.page(at).committed && self.model.page(at).prot.allows(false))
            .collect();
        for k in 0..2.min(readable.len()) {
            self.touch(readable[(self.step * 2 + k) % readable.len()], None);
        }
    }

    // ---- the pager's own work ----

    fn working_set_size(&self, space: usize) -> u64 {
        let root = self.world.procs[space].space.root();
        self.world.pager.process_counters(root).unwrap().working_set_size
    }

    /// Trims `pages` pages of `space`, or all of them (`None`): as many as asked leave.
    fn trim(&mut self, space: usize, pages: Option<usize>) {
        let root = self.world.procs[space].space.root();
        let before = self.working_set_size(space);
        let trimmed = self.world.with_paging(space, |_, ram, paging| match pages {
            Some(pages) => paging.trim(root, pages, ram),
            None => paging.empty_working_set(root, ram),
        }) as u64;
        let asked = pages.map_or(before, |pages| (pages as u64).min(before));
        assert_eq!(trimmed, asked, "step {}: pages trimmed from space {space}", self.step);
        assert_eq!(self.working_set_size(space), before - trimmed);
    }

    fn trim_until_available(&mut self, frames: u64) {
        self.world.with_paging(0, |_, ram, paging| paging.trim_until_available(frames, ram));
        let database = self.world.pager.database();
        let available = self.world.pager.performance().physical_available;
        // Dirty pages go to the modified list, which is not available.
        assert!(
            available >= frames || database.count(FrameList::Active) == 0,
            "step {}: {available} frames available, {frames} asked",
            self.step
        );
    }

    fn write_modified(&mut self) {
        self.world.with_paging(0, |_, ram, paging| paging.write_modified(ram));
        let modified = self.world.pager.database().count(FrameList::Modified);
        let free_slots = self.world.pager.slots().free_slots();
        if !self.model.writes_may_fail {
            assert!(
                modified == 0 || free_slots == 0,
                "step {}: {modified} pages left modified with {free_slots} slots free",
                self.step
            );
        }
    }

    fn age(&mut self) {
        let active = self.world.pager.database().count(FrameList::Active);
        let (first, second) =
            self.world.with_paging(0, |_, ram, paging| (paging.age(ram), paging.age(ram)));
        assert!(first <= active, "step {}: {first} Accessed bits of {active} pages", self.step);
        assert_eq!(second, 0, "step {}: nothing was touched between two passes", self.step);
    }

    /// Tells the store to fail reads or writes, or to stop failing, and the model so.
    fn inject(&mut self, op: Op) {
        let slots = self.config.slots();
        match op {
            Op::FailNextReads { count } => {
                self.world.pager.store_mut().fail_next_reads(u64::from(count));
                self.model.pending_reads = u64::from(count);
            }
            Op::FailNextWrites { count } => {
                self.world.pager.store_mut().fail_next_writes(u64::from(count));
                self.model.writes_may_fail = true;
            }
            Op::FailReadOf { space, target } => {
                let space = usize::from(space) % self.model.spaces.len();
                if let Some(slot) = self.target(space, target).and_then(|at| self.slot_of(at)) {
                    self.world.pager.store_mut().fail_read(slot);
                    self.model.bad_reads.insert(slot.0);
                }
            }
            Op::FailWrite { slot } => {
                self.world.pager.store_mut().fail_write(Slot(u32::from(slot) % slots));
                self.model.writes_may_fail = true;
            }
            Op::ClearFailures => {
                self.world.pager.store_mut().clear_failures();
                self.model.clear_failures();
            }
            other => unreachable!("{other:?} is not a failure"),
        }
    }

    /// The slot that holds (a copy of) the page, if one does.
    fn slot_of(&mut self, at: PageRef) -> Option<Slot> {
        match self.world.pte(at.space, self.model.addr(at)) {
            PteView::PagingFile { slot } => Some(slot),
            PteView::Transition { frame }
            | PteView::Present { frame, owned: true }
            | PteView::Hidden { frame, owned: true } => self.world.record(frame).slot,
            _ => match self.section_page(at)? {
                (_, Prototype::PagingFile(slot)) => Some(slot),
                (_, Prototype::Resident(frame) | Prototype::Transition(frame)) => {
                    self.world.record(frame).slot
                }
                (_, Prototype::Zero | Prototype::Reserved) => None,
            },
        }
    }
}

impl Case<'_, '_> {
    // ---- the checks after every step ----

    /// Every entry of the model's pages is what the model says; every frame and slot in
    /// use is one of those entries' (or the copy a frame's record keeps); the charges are
    /// the model's.
    fn check(&mut self) {
        let mut held = Held { active: vec![0; self.model.spaces.len()], ..Held::default() };
        for at in self.model.all_pages() {
            self.check_entry(at, &mut held);
        }
        self.check_sections(&mut held);
        self.check_frames_and_slots(&held);
        self.check_charges(&held);
    }

    fn check_entry(&mut self, at: PageRef, held: &mut Held) {
        let addr = self.model.addr(at);
        let pte = self.world.pte(at.space, addr);
        let root = self.world.procs[at.space].space.root();
        let (page, kind) = (self.model.page(at), self.model.region(at).kind);
        let own = page.data.is_some();
        let (step, committed, prot) = (self.step, page.committed, page.prot);
        let context = || {
            format!("step {step}: {at:?} at {addr:?}: {pte:?}, model {committed} {prot:?} {own}")
        };
        if !page.committed {
            assert_eq!(pte, PteView::Unmapped, "{}", context());
            return;
        }
        let owner = Owner::Private { root, page: addr };
        match pte {
            PteView::Unmapped => assert!(!own, "{}", context()),
            // A page never written since its first touch: the pager dropped its zeros,
            // and the next touch is a first touch again.
            PteView::DemandZero => {
                let page = self.model.page_mut(at);
                assert!(!page.written, "{}", context());
                assert!(page.data.as_ref().is_none_or(|d| d.iter().all(|&b| b == 0)));
                page.data = None;
            }
            PteView::Present { frame, owned } | PteView::Hidden { frame, owned } => {
                let hidden = matches!(pte, PteView::Hidden { .. });
                assert_eq!(hidden, page.prot == Prot::NoAccess, "{}", context());
                assert_eq!(owned, own, "{}", context());
                if owned {
                    let record = self.world.record(frame);
                    assert_eq!(
                        (record.list(), record.owner),
                        (FrameList::Active, owner),
                        "{}",
                        context()
                    );
                    held.active[at.space] += 1;
                } else {
                    let RegionKind::View { section, .. } = kind else { panic!("{}", context()) };
                    let index = at.page as u64;
                    let shown = self.world.sections[section].frame(self.world.machine.ram(), index);
                    assert_eq!(Some(frame), shown, "{}", context());
                    let prototype = self.world.prototype(section, at.page);
                    assert_eq!(prototype, Prototype::Resident(frame), "{}", context());
                }
            }
            PteView::Transition { frame } => {
                assert!(own, "{}", context());
                let record = self.world.record(frame);
                let waiting = matches!(record.list(), FrameList::Standby | FrameList::Modified);
                assert!(waiting && record.owner == owner, "{}: {record:?}", context());
                held.waiting += 1;
            }
            PteView::PagingFile { slot } => {
                assert!(own, "{}", context());
                held.paged.push(slot.0);
            }
            // The section's page was taken away from this view, so it was touched.
            PteView::Prototype => {
                let RegionKind::View { section, .. } = kind else { panic!("{}", context()) };
                assert!(!own, "{}", context());
                let prototype = self.world.prototype(section, at.page);
                // Unless its zeros were dropped (never written).
                let written = self.model.section_written[section][at.page];
                assert!(prototype != Prototype::Zero || !written, "{}", context());
            }
        }
    }

    /// Every section's page is where its prototype says, in a frame whose record names
    /// it, exactly when a view touched it.
    fn check_sections(&mut self, held: &mut Held) {
        let step = self.step;
        for (section, touched) in self.model.touched.clone().iter().enumerate() {
            let header = self.world.headers[section];
            for (index, &touched) in touched.iter().enumerate() {
                let prototype = self.world.prototype(section, index);
                let context = format!("step {step}: section {section} page {index}: {prototype}");
                let written = self.model.section_written[section][index];
                if prototype == Prototype::Zero && touched && !written {
                    // Touched, never written: the pager dropped its zeros.
                    self.model.touched[section][index] = false;
                    continue;
                }
                assert_eq!(prototype != Prototype::Zero, touched, "{context}");
                let owner = Owner::Section { section: header, index: index as u64 };
                match prototype {
                    Prototype::Zero => {}
                    Prototype::Resident(frame) => {
                        let record = self.world.record(frame);
                        let found = (record.list(), record.owner);
                        assert_eq!(found, (FrameList::Active, owner), "{context}");
                        held.sections += 1;
                    }
                    Prototype::Transition(frame) => {
                        let record = self.world.record(frame);
                        let waiting =
                            matches!(record.list(), FrameList::Standby | FrameList::Modified);
                        assert!(waiting && record.owner == owner, "{context}: {record:?}");
                        held.waiting += 1;
                    }
                    Prototype::PagingFile(slot) => held.paged.push(slot.0),
                    // The model's sections are SEC_COMMIT: every page committed.
                    Prototype::Reserved => panic!("{context}: a reserved page"),
                }
            }
        }
    }

    fn check_frames_and_slots(&self, held: &Held) {
        let step = self.step;
        let database = self.world.pager.database();
        let total: usize = FrameList::ALL.iter().map(|&list| database.count(list)).sum();
        assert_eq!(total, self.config.frames as usize, "step {step}: every frame on one list");
        let active: usize = held.active.iter().sum::<usize>() + held.sections;
        assert_eq!(database.count(FrameList::Active), active, "step {step}: active frames");
        let waiting = database.count(FrameList::Standby) + database.count(FrameList::Modified);
        assert_eq!(waiting, held.waiting, "step {step}: standby and modified frames");
        let mut slots = held.paged.clone();
        for list in [FrameList::Active, FrameList::Standby, FrameList::Modified] {
            for index in database.iter(list) {
                let record = database.record(index).unwrap();
                match list {
                    // A standby page has a good copy: in its slot, or it is all zeros.
                    FrameList::Standby => {
                        assert!(record.slot.is_some() || record.all_zero, "step {step}: {record:?}")
                    }
                    FrameList::Modified => {
                        assert!(record.slot.is_none(), "step {step}: {record:?}")
                    }
                    _ => {}
                }
                slots.extend(record.slot.map(|slot| slot.0));
            }
        }
        let distinct: BTreeSet<u32> = slots.iter().copied().collect();
        assert_eq!(distinct.len(), slots.len(), "step {step}: a slot held twice: {slots:?}");
        let used = self.world.pager.slots().used_slots() as usize;
        assert_eq!(used, slots.len(), "step {step}: slots in use");
        let holding = active + held.waiting + held.paged.len();
        assert_eq!(self.model.materialised(), holding, "step {step}: pages holding data");
    }

    fn check_charges(&self, held: &Held) {
        let step = self.step;
        for (space, process) in self.world.procs.iter().enumerate() {
            let counters = self.world.pager.process_counters(process.space.root()).unwrap();
            let set = counters.working_set_size;
            assert_eq!(set, held.active[space] as u64, "step {step}: working set of {space}");
            let charged = self.model.charged(space);
            assert_eq!(counters.pagefile_usage, charged, "step {step}: charge of {space}");
            let committed = self.model.committed_pages(space).len() as u64;
            assert_eq!(process.space.committed_pages(), committed, "step {step}: committed");
        }
        let total = self.world.pager.performance().commit_total;
        let charged = self.model.charged_total() + self.model.section_charge();
        assert_eq!(total, charged, "step {step}: commit total");
    }

    // ---- the end ----

    /// Stops the failures, reads every committed page (no-access ones made read-only
    /// first), then destroys everything and checks that nothing is left.
    fn finish(mut self) {
        self.world.pager.store_mut().clear_failures();
        self.model.clear_failures();
        for at in self.model.all_pages() {
            let page = self.model.page(at);
            if page.committed && page.prot == Prot::NoAccess {
                self.protect_pages(at.space, at.region, at.page, 1, Prot::ReadOnly);
            }
        }
        for at in self.model.all_pages() {
            if self.model.page(at).committed {
                self.touch(at, None);
            }
        }
        self.check();
        destroy_everything(self.world);
    }
}

/// Destroys every space and closes every section; then no frame, slot, charge or
/// page-table frame is left.
fn destroy_everything(world: World<'_, '_>) {
    let World { mut machine, mut alloc, mut pager, procs, sections, tables_at_start, .. } = world;
    for process in procs {
        let (root, asid) = (process.space.root(), process.space.asid());
        let (ram, mut tlb) = machine.split();
        process.space.destroy(ram, &mut pager.with(&mut alloc, &mut tlb));
        tlb.invalidate_space(asid);
        let counters = pager.detach(root).unwrap();
        assert_eq!((counters.working_set_size, counters.pagefile_usage), (0, 0));
    }
    for section in sections {
        let (ram, mut tlb) = machine.split();
        section.close(ram, &mut pager.with(&mut alloc, &mut tlb)).unwrap();
    }
    let performance = pager.performance();
    assert_eq!(performance.physical_available, performance.physical_total);
    assert_eq!(performance.commit_total, 0);
    let database = pager.database();
    assert_eq!(database.count(FrameList::Standby) + database.count(FrameList::Modified), 0);
    assert_eq!(database.count(FrameList::Active), 0);
    assert_eq!(pager.slots().used_slots(), 0);
    assert_eq!(alloc.frames_in_use(), tables_at_start);
}

/// Runs `ops` on a machine built as `config` says, checking after every step.
fn run(config: &Config, ops: &[Op]) {
    let slots = config.slots();
    let mut storage = Storage::new(config.frames, slots, config.cluster);
    let pager = storage.pager(config.policy, SimDisk::new(slots)).unwrap();
    let mut bitmap = Box::new([0; 128]);
    let world = World::new(pager, &mut bitmap, config.spaces, &config.sections);
    // One slot is held back, so that a hard fault always finds a frame.
    assert_eq!(world.pager.commit_limit(), u64::from(config.frames + slots - 1));
    let zeros = |pages: u64| vec![vec![0; PAGE_BYTES]; pages as usize];
    let sections = world.sections.iter().map(Section::pages);
    let model = Model {
        spaces: vec![Vec::new(); config.spaces],
        sections: sections.clone().map(zeros).collect(),
        touched: sections.clone().map(|pages| vec![false; pages as usize]).collect(),
        section_written: sections.map(|pages| vec![false; pages as usize]).collect(),
        ..Model::default()
    };
    let mut case = Case { world, model, config: config.clone(), step: 0 };
    for &op in ops {
        case.apply(op);
        case.read_some();
        case.check();
        case.step += 1;
    }
    case.finish();
}

/// 64 cases unless `PROPTEST_CASES` asks for more (or fewer).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn the_pager_keeps_every_page_and_leaks_nothing(
        config in config(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        run(&config, &ops);
    }
}

// ---- one test per failure ----

/// A machine with one space of `pages` committed read-write pages, paged by `frames`
/// frames (Clock) and `slots` slots.
fn one_space<'s, 'a>(
    storage: &'s mut Storage,
    bitmap: &'a mut [u64; 128],
    slots: u32,
    pages: u64,
) -> (World<'s, 'a>, VirtAddr) {
    let pager = storage.pager(PolicyKind::Clock, SimDisk::new(slots)).unwrap();
    let mut world = World::new(pager, bitmap, 1, &[]);
    let commit = |s: &mut AddressSpace<X86_64>, _: &mut Ram, paging: &mut TestPaging<'_, '_>| {
        s.commit_with(None, pages * PAGE, Protection::READ_WRITE, paging)
    };
    let base = world.with_paging(0, commit).unwrap();
    (world, base)
}

/// The page-specific bytes the tests write at `addr`.
fn page_bytes(addr: VirtAddr) -> Vec<u8> {
    pattern(7, addr, PAGE_BYTES)
}

/// A write the store refuses leaves the trimmed page on the modified list, in its frame:
/// a touch takes it back without I/O, and the writer's next pass writes it.
#[test]
fn a_failed_write_leaves_the_page_modified_in_its_frame_until_a_later_write() {
    let (mut storage, mut bitmap) = (Storage::new(2, 8, 4), Box::new([0; 128]));
    let (mut world, base) = one_space(&mut storage, &mut bitmap, 8, 3);
    let page = |i: u64| base + i * PAGE;
    for i in 0..2 {
        world.access(0, page(i), Some(&page_bytes(page(i)))).unwrap();
    }
    world.pager.store_mut().fail_next_writes(1);
    let root = world.procs[0].space.root();
    let trim_and_write =
        |_: &mut AddressSpace<X86_64>, ram: &mut Ram, p: &mut TestPaging<'_, '_>| {
            (p.empty_working_set(root, ram), p.write_modified(ram))
        };
    assert_eq!(world.with_paging(0, trim_and_write), (2, 0));
    let c = world.pager.counters();
    assert_eq!((c.write_errors, c.pages_written, c.write_clusters), (1, 0, 1));
    assert_eq!(world.pager.database().count(FrameList::Modified), 2);
    assert_eq!(world.pager.slots().used_slots(), 0);
    let PteView::Transition { frame } = world.pte(0, page(0)) else { panic!("in transition") };
    assert_eq!(world.record(frame).list(), FrameList::Modified);

    // The page is still in its frame: a soft fault, no read.
    assert_eq!(world.access(0, page(0), None).unwrap(), page_bytes(page(0)));
    let c = world.pager.counters();
    assert_eq!((c.soft_faults, c.hard_faults, c.pages_read), (1, 0, 0));

    // The writer's next pass writes the page still modified.
    let write = |_: &mut AddressSpace<X86_64>, ram: &mut Ram, p: &mut TestPaging<'_, '_>| {
        p.write_modified(ram)
    };
    assert_eq!(world.with_paging(0, write), 1);
    assert_eq!(world.pager.slots().used_slots(), 1);
    assert_eq!(world.pager.database().count(FrameList::Standby), 1);

    // A new page takes its frame; the page lives on in its slot, and reads back from it.
    world.access(0, page(2), Some(&page_bytes(page(2)))).unwrap();
    assert!(matches!(world.pte(0, page(1)), PteView::PagingFile { .. }));
    assert_eq!(world.access(0, page(1), None).unwrap(), page_bytes(page(1)));
    let c = world.pager.counters();
    assert_eq!((c.hard_faults, c.pages_read, c.write_errors), (1, 1, 1));
}

/// A read the store refuses is an in-page error: the fault chain offers it to the
/// process (second chance) and raises it; the page stays in its slot, and the next read
/// brings it back.
#[test]
fn a_failed_read_is_an_in_page_error_and_the_page_stays_in_its_slot() {
    let (mut storage, mut bitmap) = (Storage::new(2, 8, 4), Box::new([0; 128]));
    let (mut world, base) = one_space(&mut storage, &mut bitmap, 8, 3);
    let page = |i: u64| base + i * PAGE;
    world.access(0, page(0), Some(&page_bytes(page(0)))).unwrap();
    let root = world.procs[0].space.root();
    let trim_and_write =
        |_: &mut AddressSpace<X86_64>, ram: &mut Ram, p: &mut TestPaging<'_, '_>| {
            (p.empty_working_set(root, ram), p.write_modified(ram))
        };
    assert_eq!(world.with_paging(0, trim_and_write), (1, 1));
    // The second new page repurposes page 0's frame (the first takes the free one).
    for i in 1..3 {
        world.access(0, page(i), Some(&page_bytes(page(i)))).unwrap();
    }
    let PteView::PagingFile { slot } = world.pte(0, page(0)) else { panic!("in its slot") };

    world.pager.store_mut().fail_next_reads(1);
    let addr = page(0) + 8;
    let World { machine, pager, procs, alloc, .. } = &mut world;
    machine.switch_to(procs[0].id);
    let kernel = PagedKernel::new(&mut procs[0].space, pager, alloc);
    let mut chain = FaultChain::new(kernel, NoResolver);
    let mut bytes = [0; 8];
    let result = machine.load(addr, &mut bytes, &mut chain);
    let error = Exception::InPageError { addr, access: Access::Read };
    assert!(
        matches!(result, Err(MachineError::Exception { exception, .. }) if exception == error),
        "{result:?}"
    );
    assert_eq!((chain.exception, chain.second_chances), (Some(error), 1));
    assert_eq!(chain.terminated.map(|fault| fault.addr), Some(addr));

    assert_eq!(world.pte(0, page(0)), PteView::PagingFile { slot });
    // The frame the read was for came from another page, which went to a slot of its own.
    assert_eq!(world.pager.slots().used_slots(), 2);
    assert_eq!(world.pager.database().count(FrameList::Free), 1);
    let c = world.pager.counters();
    assert_eq!((c.read_errors, c.hard_faults, c.pages_read), (1, 0, 0));
    assert_eq!(world.access(0, page(0), None).unwrap(), page_bytes(page(0)));
    let c = world.pager.counters();
    assert_eq!((c.read_errors, c.hard_faults, c.pages_read), (1, 1, 1));
}

/// A commit past the limit (frames plus slots, less the one slot held back) fails with
/// the room left, and changes nothing; the room left can be committed.
#[test]
fn a_commit_past_the_limit_fails_and_changes_nothing() {
    let (mut storage, mut bitmap) = (Storage::new(2, 4, 4), Box::new([0; 128]));
    let (mut world, _) = one_space(&mut storage, &mut bitmap, 4, 3);
    let commit = |pages: u64| {
        move |s: &mut AddressSpace<X86_64>, _: &mut Ram, paging: &mut TestPaging<'_, '_>| {
            s.commit_with(None, pages * PAGE, Protection::READ_WRITE, paging)
        }
    };
    let error = world.with_paging(0, commit(3)).unwrap_err();
    assert_eq!(error, SpaceError::CommitLimit { requested: 3, available: 2 });
    assert_eq!(error.windows_error(), Some(1455));
    let root = world.procs[0].space.root();
    assert_eq!(world.pager.performance().commit_total, 3);
    assert_eq!(world.pager.process_counters(root).unwrap().pagefile_usage, 3);
    assert_eq!(world.procs[0].space.committed_pages(), 3);
    assert_eq!(world.procs[0].space.regions().count(), 2, "the first reservation, and free");
    world.with_paging(0, commit(2)).unwrap();
    let error = world.with_paging(0, commit(1)).unwrap_err();
    assert_eq!(error, SpaceError::CommitLimit { requested: 1, available: 0 });
    assert_eq!(world.pager.performance().commit_total, 5);
}

/// At the commit limit (frames plus slots, less the one slot held back) with every page
/// written, every paged-out page still comes back: with every frame dirty, a slot is free
/// for the writer. Committing one page more is refused.
#[test]
fn every_page_committed_up_to_the_limit_can_be_touched_again() {
    let (mut storage, mut bitmap) = (Storage::new(2, 2, 4), Box::new([0; 128]));
    let (mut world, base) = one_space(&mut storage, &mut bitmap, 2, 3);
    let page = |i: u64| base + i * PAGE;
    for i in 0..3 {
        world.access(0, page(i), Some(&page_bytes(page(i)))).unwrap();
    }
    for i in 0..3 {
        match world.access(0, page(i), None) {
            Ok(bytes) => assert!(bytes == page_bytes(page(i)), "page {i} reads back"),
            Err(error) => panic!("page {i}: {error:?}"),
        }
    }
    let commit = |s: &mut AddressSpace<X86_64>, _: &mut Ram, paging: &mut TestPaging<'_, '_>| {
        s.commit_with(None, PAGE, Protection::READ_WRITE, paging)
    };
    let refused = world.with_paging(0, commit).unwrap_err();
    assert_eq!(refused, SpaceError::CommitLimit { requested: 1, available: 0 });
}

/// A section's pages go to the paging file and come back for every view: the pager takes
/// them away from every view at once (their entries point back at the prototype), writes
/// them, gives their frames to other pages, and a fault in either view brings each back;
/// the other view maps it again without I/O. Closing the section gives everything back.
#[test]
fn section_pages_go_to_the_paging_file_and_come_back_through_every_view() {
    let (mut storage, mut bitmap) = (Storage::new(2, 8, 4), Box::new([0; 128]));
    let pager = storage.pager(PolicyKind::Clock, SimDisk::new(8)).unwrap();
    let mut world = World::new(pager, &mut bitmap, 2, &[2]);
    assert_eq!(world.pager.performance().commit_total, 2);
    let mut views = Vec::new();
    for space in 0..2 {
        let World { machine, procs, sections, .. } = &mut world;
        let ram = machine.ram_mut();
        let view =
            procs[space].space.map_view(&sections[0], None, 0, 2, Protection::READ_WRITE, ram);
        views.push(view.unwrap());
    }
    let page = |space: usize, i: u64| views[space] + i * PAGE;
    let bytes = |i: u64| page_bytes(VirtAddr::new(i * PAGE));
    for i in 0..2 {
        world.access(0, page(0, i), Some(&bytes(i))).unwrap();
    }
    assert_eq!(world.access(1, page(1, 0), None).unwrap(), bytes(0));
    let Prototype::Resident(frame) = world.prototype(0, 0) else { panic!("resident") };
    assert_eq!(world.pte(1, page(1, 0)), PteView::Present { frame, owned: false });
    let owner = Owner::Section { section: world.headers[0], index: 0 };
    assert_eq!((world.record(frame).list(), world.record(frame).owner), (FrameList::Active, owner));
    let root = world.procs[0].space.root();
    assert_eq!(world.pager.process_counters(root).unwrap().working_set_size, 0);

    // A space's own trim leaves the section alone; a global one takes both pages away.
    let empty = |_: &mut AddressSpace<X86_64>, ram: &mut Ram, p: &mut TestPaging<'_, '_>| {
        p.empty_working_set(root, ram)
    };
    assert_eq!(world.with_paging(0, empty), 0);
    let trim = |_: &mut AddressSpace<X86_64>, ram: &mut Ram, p: &mut TestPaging<'_, '_>| {
        p.trim_until_available(2, ram);
        p.write_modified(ram)
    };
    world.with_paging(0, trim);
    assert_eq!(world.pager.database().count(FrameList::Standby), 2);
    assert_eq!(world.prototype(0, 0), Prototype::Transition(frame));
    for (space, i) in [(0, 0), (0, 1), (1, 0)] {
        assert_eq!(world.pte(space, page(space, i)), PteView::Prototype);
    }
    assert_eq!(world.pte(1, page(1, 1)), PteView::Unmapped, "never touched there");

    // Two private pages take both frames: the section's pages live on in their slots.
    let commit = |s: &mut AddressSpace<X86_64>, _: &mut Ram, paging: &mut TestPaging<'_, '_>| {
        s.commit_with(None, 2 * PAGE, Protection::READ_WRITE, paging)
    };
    let private = world.with_paging(0, commit).unwrap();
    for i in 0..2 {
        let addr = private + i * PAGE;
        world.access(0, addr, Some(&page_bytes(addr))).unwrap();
    }
    for i in 0..2 {
        assert!(matches!(world.prototype(0, i as usize), Prototype::PagingFile(_)));
    }
    assert_eq!(world.pager.performance().commit_total, 4);

    // Each view brings a page back; the other maps it without I/O.
    assert_eq!(world.access(1, page(1, 1), None).unwrap(), bytes(1));
    assert_eq!(world.access(0, page(0, 0), None).unwrap(), bytes(0));
    let read = world.pager.counters().pages_read;
    assert_eq!(world.access(0, page(0, 1), None).unwrap(), bytes(1));
    assert_eq!(world.access(1, page(1, 0), None).unwrap(), bytes(0));
    assert_eq!(world.pager.counters().pages_read, read);

    // Unmapped, the section keeps its pages; closed, it gives everything back.
    for (space, &base) in views.iter().enumerate() {
        let unmap = |s: &mut AddressSpace<X86_64>, ram: &mut Ram, p: &mut TestPaging<'_, '_>| {
            s.unmap_view(base, ram, p).map(|flush| flush.apply(&mut *p.tlb))
        };
        world.with_paging(space, unmap).unwrap();
    }
    assert!(world.sections[0].frame(world.machine.ram(), 0).is_some());
    let release = |s: &mut AddressSpace<X86_64>, ram: &mut Ram, p: &mut TestPaging<'_, '_>| {
        s.release(private, ram, p).map(|flush| flush.apply(&mut *p.tlb))
    };
    world.with_paging(0, release).unwrap();
    destroy_everything(world);
}

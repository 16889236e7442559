//! One replay: a page string through the real pager on the simulated machine, with one
//! policy and a number of frames for the process's pages.
//!
//! The process is an x86-64 address space whose user half is one reservation; a page is
//! committed (a megabyte at a time, around it) when the trace first reaches it, by the
//! kernel's fault handler, as a Unix kernel grows a mapping. Every reference is a
//! [`Machine::touch`]: the MMU walks the tables or hits the TLB, sets Accessed and Dirty,
//! and faults go to [`PagedKernel`] — demand-zero, soft and hard faults, the modified-page
//! writer, the policy's choice of victim. Page tables come from a separate kernel pool and
//! are not counted among the frames.

use std::fmt;

use paging::frame::{BitmapAllocator, MemoryRegion};
use paging::pager::policy::{AnyPolicy, PolicySlot, ReplacementPolicy, slots_needed};
use paging::pager::{BackingStore, FrameRecord, PAGE_BYTES, Pager, PagerStorage, Slot, StoreError};
use paging::space::{AddressSpace, Layout, PageState, Protection, SpaceConfig};
use paging::tlb::Asid;
use paging::{Access, Fault, FaultPolicy, PhysAddr, Resolution, VirtAddr};
use paging_sim::{IoCost, Machine, MachineConfig, MachineError, PagedKernel};
use paging_x86::X86_64;

use crate::policy::{NEVER, Params, Policy, ReplayPolicy};

/// 4 KiB pages.
const PAGE: u64 = 4096;
/// How much is committed around a page the trace reaches first: the reservation's books
/// then hold a run per megabyte region the program uses, not one per page.
const CHUNK: u64 = 1 << 20;
/// Reservations and runs the space's books hold.
const REGIONS: usize = 1024;
/// Page-table frames in the kernel's pool (64 MiB of tables: far more than a trace needs).
const TABLE_FRAMES: u64 = 16 * 1024;
/// Where the table pool starts.
const TABLE_BASE: u64 = 1 << 20;
/// Slots of the page file: the commit limit is the frames plus these, and a committed
/// megabyte charges 256 pages.
const SLOTS: u32 = 1 << 22;
/// The writer's largest cluster.
const CLUSTER: usize = 16;

/// A trace reduced to what a replay needs: each distinct page once, and the references as
/// indices into them (with the write bit), 4 bytes a reference.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageString {
    /// The page numbers (address >> 12), by first reference.
    pub pages: Vec<u64>,
    /// Per reference: the page's index << 1, | 1 for a write.
    pub refs: Vec<u32>,
}

impl PageString {
    /// The string of `refs`, each a page number and whether it writes.
    pub fn new(refs: impl IntoIterator<Item = (u64, bool)>) -> Self {
        let mut string = Self::default();
        let mut index = rustc_hash::FxHashMap::default();
        for (page, write) in refs {
            let next = string.pages.len() as u32;
            let id = *index.entry(page).or_insert(next);
            if id == next {
                string.pages.push(page);
            }
            string.refs.push(id << 1 | u32::from(write));
        }
        string
    }

    /// The number of references.
    pub fn len(&self) -> usize {
        self.refs.len()
    }

    /// Whether there are no references.
    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }

    /// Per reference, the index of the next reference to the same page ([`NEVER`] if
    /// none): what OPT needs, found in one backward pass.
    pub fn next_uses(&self) -> Vec<u64> {
        let mut last = vec![NEVER; self.pages.len()];
        let mut next = vec![NEVER; self.refs.len()];
        for (t, &r) in self.refs.iter().enumerate().rev() {
            let id = (r >> 1) as usize;
            next[t] = last[id];
            last[id] = t as u64;
        }
        next
    }
}

/// What one replay counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// References replayed.
    pub refs: u64,
    /// Touches of a page not resident: the three kinds below.
    pub faults: u64,
    /// Of them, pages of zeros: first touches, and pages only read before they left.
    pub demand_zero: u64,
    /// Of them, pages read back from the store.
    pub hard: u64,
    /// Of them, pages taken back from the standby or modified list.
    pub soft: u64,
    /// Pages written to the store.
    pub writes: u64,
    /// References outside the user half (the kernel's vsyscall page): not replayed.
    pub skipped: u64,
}

/// Why a replay stopped.
#[derive(Debug)]
pub enum ReplayError {
    /// The machine, space or pager could not be set up (too many frames).
    Setup(String),
    /// An access failed in a way a correct kernel never lets it.
    Access {
        /// The reference's index in the string.
        index: usize,
        /// Its page number.
        page: u64,
        /// What the machine said.
        error: MachineError,
    },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Setup(why) => write!(f, "cannot set up the replay: {why}"),
            Self::Access { index, page, error } => {
                write!(f, "reference {index} (page {page:#x}) failed: {error}")
            }
        }
    }
}

impl std::error::Error for ReplayError {}

fn setup<E: fmt::Display>(what: &'static str) -> impl Fn(E) -> ReplayError {
    move |e| ReplayError::Setup(format!("{what}: {e}"))
}

/// A page file that keeps no bytes: a replay knows the addresses a program touched, not
/// the data, so every page it writes is as good as any other. It counts like a disk.
#[derive(Debug)]
pub struct DiscardStore {
    slots: u32,
}

impl BackingStore for DiscardStore {
    fn slots(&self) -> u32 {
        self.slots
    }

    fn read(&mut self, slot: Slot, page: &mut [u8; PAGE_BYTES]) -> Result<(), StoreError> {
        self.check(slot)?;
        page.fill(0);
        Ok(())
    }

    fn write(&mut self, slot: Slot, _page: &[u8; PAGE_BYTES]) -> Result<(), StoreError> {
        self.check(slot)
    }
}

impl DiscardStore {
    fn check(&self, slot: Slot) -> Result<(), StoreError> {
        if slot.0 < self.slots {
            Ok(())
        } else {
            Err(StoreError::OutOfRange { slot, slots: self.slots })
        }
    }
}

impl IoCost for DiscardStore {
    fn io_cycles(&self) -> u64 {
        0
    }
}

type ReplayPager<'s> = Pager<'s, X86_64, DiscardStore, ReplayPolicy<'s>>;
type Space = AddressSpace<X86_64, REGIONS>;

/// The kernel of the replayed process: the pager's fault path, and committing the
/// megabyte around a page the program reaches for the first time.
struct ReplayKernel<'a, 's> {
    space: &'a mut Space,
    pager: &'a mut ReplayPager<'s>,
    tables: &'a mut BitmapAllocator<'s>,
}

impl FaultPolicy<Machine<X86_64>> for ReplayKernel<'_, '_> {
    fn resolve(&mut self, machine: &mut Machine<X86_64>, fault: &Fault) -> Resolution {
        let resolution =
            PagedKernel::new(self.space, self.pager, self.tables).resolve(machine, fault);
        if !matches!(resolution, Resolution::Pass) {
            return resolution;
        }
        let Ok(region) = self.space.query(fault.addr) else { return resolution };
        if region.state != PageState::Reserved {
            return resolution;
        }
        let start = fault.addr.align_down(CHUNK).max(region.base);
        let end = (start.as_u64() + CHUNK).min(region.end().as_u64());
        let (_, mut tlb) = machine.split();
        let mut paging = self.pager.with(self.tables, &mut tlb);
        let committed = self.space.commit_with(
            Some(start),
            end - start.as_u64(),
            Protection::READ_WRITE,
            &mut paging,
        );
        if committed.is_ok() { Resolution::Retry } else { resolution }
    }
}

/// The books a replay's pager and tables keep, on the heap.
struct Books {
    records: Vec<FrameRecord>,
    counts: Vec<u8>,
    cluster: Vec<[u8; PAGE_BYTES]>,
    policy: Vec<PolicySlot>,
    bitmap: Vec<u64>,
}

impl Books {
    fn new(frames: u32) -> Self {
        Self {
            records: vec![FrameRecord::FREE; frames as usize],
            counts: vec![0; SLOTS as usize],
            cluster: vec![[0; PAGE_BYTES]; CLUSTER],
            policy: vec![PolicySlot::EMPTY; slots_needed(frames)],
            bitmap: vec![0; (TABLE_FRAMES as usize).div_ceil(64) + 64],
        }
    }
}

/// Replays `string` with `policy` over `frames` frames. OPT needs `next` (from
/// [`PageString::next_uses`]).
///
/// # Errors
///
/// [`ReplayError`] when the replay cannot be set up or an access fails.
pub fn replay(
    string: &PageString,
    policy: Policy,
    frames: u32,
    params: Params,
    next: Option<&[u64]>,
) -> Result<Outcome, ReplayError> {
    let mut books = Books::new(frames);
    let pager_base = TABLE_BASE + TABLE_FRAMES * PAGE;
    let config = MachineConfig {
        ram_frames: pager_base / PAGE + u64::from(frames),
        strict_tlb: false,
        ..MachineConfig::default()
    };
    let mut machine = Machine::<X86_64>::new(config);
    let pool = [MemoryRegion::usable(TABLE_BASE, TABLE_FRAMES * PAGE)];
    let mut tables = BitmapAllocator::new(&mut books.bitmap, &pool).map_err(setup("tables"))?;
    let policy_books =
        ReplayPolicy::new(policy, params, &mut books.policy, frames).map_err(setup("policy"))?;
    let storage = PagerStorage {
        records: &mut books.records,
        base: PhysAddr::new(pager_base),
        slot_counts: &mut books.counts,
        cluster: &mut books.cluster,
    };
    let store = DiscardStore { slots: SLOTS };
    let mut pager = Pager::new(storage, store, policy_books).map_err(setup("pager"))?;
    let layout = Layout::X86_64;
    let mut space = Box::new(
        Space::new(layout, SpaceConfig::default(), Asid(1), None, machine.ram_mut(), &mut tables)
            .map_err(setup("space"))?,
    );
    let process = machine.add_process("replay", space.root(), space.asid());
    machine.switch_to(process);
    let lowest = layout.lowest;
    let size = (layout.highest.as_u64() + 1).saturating_sub(lowest.as_u64()) & !0xFFFF;
    space.reserve(Some(lowest), size, Protection::READ_WRITE).map_err(setup("reserve"))?;
    pager.attach(space.root(), space.asid(), 0, u32::MAX).map_err(setup("attach"))?;
    let mut run = Run { machine, space, pager, tables, params, skipped: 0 };
    run.all(string, next)?;
    let c = run.pager.counters();
    Ok(Outcome {
        refs: string.len() as u64 - run.skipped,
        faults: c.demand_zero_faults + c.hard_faults + c.soft_faults,
        demand_zero: c.demand_zero_faults,
        hard: c.hard_faults,
        soft: c.soft_faults,
        writes: c.pages_written,
        skipped: run.skipped,
    })
}

/// A replay under way.
struct Run<'s> {
    machine: Machine<X86_64>,
    space: Box<Space>,
    pager: ReplayPager<'s>,
    tables: BitmapAllocator<'s>,
    params: Params,
    skipped: u64,
}

impl Run<'_> {
    fn all(&mut self, string: &PageString, next: Option<&[u64]>) -> Result<(), ReplayError> {
        let references = self.pager.policy().wants_references();
        let aging = matches!(self.pager.policy(), ReplayPolicy::Pager(AnyPolicy::Aging(_)));
        let tick = self.params.aging_tick.max(1);
        for (index, &r) in string.refs.iter().enumerate() {
            let page = string.pages[(r >> 1) as usize];
            let access = if r & 1 == 1 { Access::Write } else { Access::Read };
            let Some(frame) = self.touch(index, page, access)? else { continue };
            if references {
                self.pager.reference(frame);
            }
            if let Some(next) = next
                && let Some(at) = self.pager.database().index_of(frame)
                && let ReplayPolicy::Opt(opt) = self.pager.policy_mut()
            {
                opt.set_next_use(at, next[index]);
            }
            if aging && (index as u64 + 1) % tick == 0 {
                let (ram, mut tlb) = self.machine.split();
                self.pager.with(&mut self.tables, &mut tlb).age(ram);
            }
        }
        Ok(())
    }

    /// One reference; the frame it reached, or `None` for a page outside the user half.
    fn touch(
        &mut self,
        index: usize,
        page: u64,
        access: Access,
    ) -> Result<Option<PhysAddr>, ReplayError> {
        let layout = Layout::X86_64;
        let addr = page.checked_mul(PAGE).map(VirtAddr::new);
        let in_user_half = addr.filter(|a| (layout.lowest..=layout.highest).contains(a));
        let Some(addr) = in_user_half else {
            self.skipped += 1;
            return Ok(None);
        };
        let mut kernel = ReplayKernel {
            space: &mut self.space,
            pager: &mut self.pager,
            tables: &mut self.tables,
        };
        match self.machine.touch(addr, access, &mut kernel) {
            Ok(phys) => Ok(Some(phys.align_down(PAGE))),
            Err(error) => Err(ReplayError::Access { index, page, error }),
        }
    }
}

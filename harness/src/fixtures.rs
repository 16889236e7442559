//! What the test files of every crate build their cases from: addresses from numbers, host
//! RAM with an allocator over it, address spaces, faults, and the simulated machine's
//! allocator. One copy here instead of one per test file.
//!
//! These are test helpers: they panic on arguments a test would never pass (an unaligned
//! page, an allocator over no memory).

use paging::frame::{BitmapAllocator, FrameAllocator, LimitedAllocator, MemoryRegion};
use paging::pager::policy::{AnyPolicy, PolicyKind, PolicySlot, slots_needed};
use paging::pager::{FrameRecord, PAGE_BYTES, Pager, PagerStorage};
use paging::space::{AddressSpace, Layout, RegionInfo, SpaceConfig};
use paging::{
    Access, ArenaMemory, Asid, Fault, FaultCause, Frame, FrameBuf, Page, PageSize, PageTableFormat,
    PhysAddr, Privilege, Resolution, TableMemory, VirtAddr,
};
use paging_sim::{Machine, ProcessId, SimDisk};
use paging_x86::X86_64;

/// The bytes of a base page.
const PAGE: u64 = 0x1000;

/// The virtual address `raw`.
#[must_use]
pub fn va(raw: u64) -> VirtAddr {
    VirtAddr::new(raw)
}

/// The physical address `raw`.
#[must_use]
pub fn pa(raw: u64) -> PhysAddr {
    PhysAddr::new(raw)
}

/// The page of size `S` that starts at `raw`.
///
/// # Panics
///
/// If `raw` is not a multiple of the page size.
#[must_use]
pub fn page<S: PageSize>(raw: u64) -> Page<S> {
    Page::from_start(va(raw)).expect("a page-aligned address")
}

/// The frame of size `S` that starts at `raw`.
///
/// # Panics
///
/// If `raw` is not a multiple of the frame size.
#[must_use]
pub fn frame<S: PageSize>(raw: u64) -> Frame<S> {
    Frame::from_start(pa(raw)).expect("a frame-aligned address")
}

/// Host frames standing in for physical memory from address 0, every one of them usable:
/// table memory and a bitmap allocator over the same frames.
pub struct Arena {
    ram: Vec<FrameBuf>,
    bitmap: Vec<u64>,
}

impl Arena {
    /// `frames` zeroed frames, none handed out.
    #[must_use]
    pub fn new(frames: usize) -> Self {
        Self { ram: vec![FrameBuf::ZERO; frames], bitmap: vec![0; frames.div_ceil(64)] }
    }

    /// The frames as table memory, and an allocator that hands them out.
    ///
    /// # Panics
    ///
    /// If the arena has no frame.
    pub fn parts(&mut self) -> (ArenaMemory<'_>, BitmapAllocator<'_>) {
        let map = [MemoryRegion::usable(0, self.ram.len() as u64 * PAGE)];
        let alloc = BitmapAllocator::new(&mut self.bitmap, &map).expect("an arena of frames");
        (ArenaMemory::new(&mut self.ram, PhysAddr::ZERO), alloc)
    }

    /// [`Arena::parts`], with an allocator that can be told to run dry (no limit yet).
    pub fn limited_parts(&mut self) -> (ArenaMemory<'_>, LimitedAllocator<BitmapAllocator<'_>>) {
        let (memory, alloc) = self.parts();
        (memory, LimitedAllocator::new(alloc, usize::MAX))
    }
}

/// Where the tables of the simulated machine's tests start: frames below are data.
pub const SIM_TABLE_AREA: u64 = 32 << 20;

/// The allocator the simulated machine's tests take tables and pages from: 32 MiB of its
/// RAM from [`SIM_TABLE_AREA`], tracked in `bitmap`.
#[must_use]
pub fn sim_allocator(bitmap: &mut [u64; 128]) -> BitmapAllocator<'_> {
    let usable = [MemoryRegion::usable(SIM_TABLE_AREA, 8192 * PAGE)];
    BitmapAllocator::new(&mut bitmap[..], &usable).expect("the bitmap covers 8192 frames")
}

/// A fresh address space with `layout` and `config`, ASID 1, sharing no kernel half.
///
/// # Panics
///
/// If the space cannot be made (a layout the format cannot hold, no frame for the root).
pub fn space<F: PageTableFormat, const N: usize, M: TableMemory, A: FrameAllocator>(
    layout: Layout,
    config: SpaceConfig,
    memory: &mut M,
    alloc: &mut A,
) -> AddressSpace<F, N> {
    AddressSpace::new(layout, config, Asid(1), None, memory, alloc).expect("a new space")
}

/// A fresh x86-64 space with the default configuration in the simulated machine's RAM,
/// registered as a process with `asid` (not switched to).
///
/// # Panics
///
/// If there is no frame for the root.
pub fn sim_space<A: FrameAllocator>(
    machine: &mut Machine<X86_64>,
    alloc: &mut A,
    asid: u16,
) -> (AddressSpace<X86_64>, ProcessId) {
    let (memory, config) = (machine.ram_mut(), SpaceConfig::default());
    let space = AddressSpace::new(Layout::X86_64, config, Asid(asid), None, memory, alloc)
        .expect("a new space");
    let process = machine.add_process("p", space.root(), space.asid());
    (space, process)
}

/// The regions of `space`, lowest first.
#[must_use]
pub fn regions<F: PageTableFormat, const N: usize>(space: &AddressSpace<F, N>) -> Vec<RegionInfo> {
    space.regions().collect()
}

/// A user-mode `access` to `addr` that found no page.
#[must_use]
pub fn user_fault(addr: VirtAddr, access: Access) -> Fault {
    Fault { addr, access, privilege: Privilege::User, cause: FaultCause::NotPresent }
}

/// A user-mode `access` to the not-present `addr`, resolved by `space` (its flush
/// ignored: no TLB caches these tables).
pub fn touch<F: PageTableFormat, const N: usize, M: TableMemory, A: FrameAllocator>(
    space: &mut AddressSpace<F, N>,
    addr: VirtAddr,
    access: Access,
    memory: &mut M,
    alloc: &mut A,
) -> Resolution {
    let (resolution, flush) = space.resolve(&user_fault(addr, access), memory, alloc);
    flush.ignore();
    resolution
}

/// Where the pagers of the simulated machine's tests take their user frames: below
/// [`SIM_TABLE_AREA`], where the tables are.
pub const SIM_USER_FRAMES: u64 = 16 << 20;

/// A pager on the simulated machine, as the tests build it.
pub type SimPager<'s> = Pager<'s, X86_64, SimDisk, AnyPolicy<'s>>;

/// The caller's storage of a pager: frame records, slot counts, the writer's cluster
/// buffer and the policy's slots.
#[derive(Debug)]
pub struct PagerBooks {
    records: Vec<FrameRecord>,
    counts: Vec<u8>,
    cluster: Vec<[u8; PAGE_BYTES]>,
    policy: Vec<PolicySlot>,
}

impl PagerBooks {
    /// Storage for `frames` frames, `slots` slots and clusters of `cluster` pages.
    #[must_use]
    pub fn new(frames: u32, slots: u32, cluster: usize) -> Self {
        Self {
            records: vec![FrameRecord::FREE; frames as usize],
            counts: vec![0; slots as usize],
            cluster: vec![[0; PAGE_BYTES]; cluster],
            policy: vec![PolicySlot::EMPTY; slots_needed(frames)],
        }
    }

    /// A pager of these frames from [`SIM_USER_FRAMES`], paging to `disk` with a policy of
    /// kind `kind`.
    ///
    /// # Errors
    ///
    /// What the policy or the pager refuse (a disk with more slots than the storage).
    pub fn pager(&mut self, kind: PolicyKind, disk: SimDisk) -> Result<SimPager<'_>, String> {
        let frames = self.records.len() as u32;
        let policy =
            AnyPolicy::new(kind, &mut self.policy, frames).map_err(|e| format!("policy: {e:?}"))?;
        let storage = PagerStorage {
            records: &mut self.records,
            base: PhysAddr::new(SIM_USER_FRAMES),
            slot_counts: &mut self.counts,
            cluster: &mut self.cluster,
        };
        Pager::new(storage, disk, policy).map_err(|e| format!("pager: {e}"))
    }
}

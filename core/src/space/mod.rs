//! Address spaces: page tables turned into virtual memory with the Windows memory API's
//! semantics (reserve, commit, decommit, release, protect, query), sections shared between
//! spaces, images, and the kernel's first-chance fault resolution.
//!
//! A space keeps books of its reservations and of runs of pages inside them that share a
//! state and a protection; the page tables only cache what the books say. Committing
//! takes no frame: the first touch faults, and [`AddressSpace::resolve`] materialises the
//! page (demand-zero, a section's frame, or a private copy for write-copy pages).
//! Pages that must not be present but keep their contents (no-access, guard) hide their
//! frame in a payload entry.
//!
//! Every operation validates first and changes nothing on error.

use core::cell::RefCell;
use core::marker::PhantomData;

use crate::addr::{Frame, Page, PhysAddr, Size4KiB, VirtAddr};
use crate::error::{FrameError, Occupant};
use crate::fault::{Access, Exception, Fault, FaultCause, Resolution};
use crate::flags::PageFlags;
use crate::format::PageTableFormat;
use crate::frame::FrameAllocator;
use crate::memory::TableMemory;
use crate::table::{Lookup, NewEntry, PageTable, Rewrite};
use crate::tlb::{Asid, Flush};

mod chain;
mod error;
mod layout;
mod protection;
mod regions;
mod section;
mod unix;
mod violation;

pub use chain::FaultChain;
pub use error::SpaceError;
pub use layout::{Aslr, Layout};
pub use protection::{BaseProtection, MemoryType, PageState, Protection};
pub use section::Section;
pub use unix::{MapFixed, Prot};
pub use violation::{AccessViolation, Violation};

use regions::{Allocation, Backing, PAGE, Regions};

/// The page-table software bit that marks a frame this space owns (private memory, or a
/// private copy of a section page): such frames go back to the allocator when unmapped.
const OWNED: PageFlags = PageFlags::SOFTWARE_0;

/// How a space places and polices its memory.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SpaceConfig {
    /// The alignment of a reservation's base (Windows: 64 KiB).
    pub granularity: u64,
    /// Allow writable-and-executable memory (refused by default: W^X).
    pub allow_write_execute: bool,
    /// Randomise placement from this seed (ASLR); `None` places bottom-up.
    pub aslr_seed: Option<u64>,
}

impl Default for SpaceConfig {
    fn default() -> Self {
        Self { granularity: 0x1_0000, allow_write_execute: false, aslr_seed: None }
    }
}

/// One part of an image: pages of the image section with their own protection.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ImagePart {
    /// The first page, counted from the image's start.
    pub offset: u64,
    /// The number of pages.
    pub pages: u64,
    /// The protection (data that the image writes should be write-copy).
    pub protect: Protection,
}

/// What a view maps: pages of a section from an offset, with a type and protection.
#[derive(Clone, Copy, Debug)]
struct View {
    offset: u64,
    pages: u64,
    kind: MemoryType,
    protect: Protection,
}

/// What [`AddressSpace::query`] says about a run of pages (Windows
/// `MEMORY_BASIC_INFORMATION`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RegionInfo {
    /// The first page of the run.
    pub base: VirtAddr,
    /// The base of the reservation, if the run is in one.
    pub allocation_base: Option<VirtAddr>,
    /// The protection given at reservation.
    pub allocation_protect: Option<Protection>,
    /// The size of the run in bytes.
    pub size: u64,
    /// The state of its pages.
    pub state: PageState,
    /// Their protection (`None` for reserved pages, as Windows reports 0).
    pub protect: Option<Protection>,
    /// The type of memory (`None` for free pages).
    pub kind: Option<MemoryType>,
}

impl RegionInfo {
    /// The first address past the run.
    #[must_use]
    pub fn end(&self) -> VirtAddr {
        self.base + self.size
    }
}

/// A virtual address space: a root table, its address-space id, and the books of its
/// reservations. `N` bounds the number of reservations and of runs (heapless); with the
/// `alloc` feature the books grow without bound.
#[derive(Debug)]
pub struct AddressSpace<F: PageTableFormat, const N: usize = 64> {
    root: PhysAddr,
    asid: Asid,
    layout: Layout,
    config: SpaceConfig,
    regions: Regions<N>,
    aslr: Option<Aslr>,
    format: PhantomData<F>,
}

impl<F: PageTableFormat, const N: usize> AddressSpace<F, N> {
    /// Creates an empty space. With `kernel_root`, the root's kernel-half entries are
    /// copied from it, so that every space shares the kernel half (its pages are
    /// supervisor-only, unreachable from user mode). Entries the kernel adds to its root
    /// later are not copied: build the kernel half's top-level tables before spaces.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::OutsideUserSpace`] for a layout the format cannot address,
    /// [`SpaceError::Unaligned`] for a granularity that is not a power-of-two multiple of
    /// 4 KiB, and [`SpaceError::Table`] when no frame is free for the root.
    pub fn new<M: TableMemory, A: FrameAllocator + ?Sized>(
        layout: Layout,
        config: SpaceConfig,
        asid: Asid,
        kernel_root: Option<PhysAddr>,
        memory: &mut M,
        alloc: &mut A,
    ) -> Result<Self, SpaceError> {
        let size = layout.highest.as_u64().saturating_sub(layout.lowest.as_u64()) + 1;
        if !F::is_canonical(layout.lowest) || !F::is_canonical(layout.highest) {
            return Err(SpaceError::OutsideUserSpace { addr: layout.lowest, size });
        }
        if !config.granularity.is_power_of_two() || config.granularity < PAGE {
            return Err(SpaceError::Unaligned {
                addr: VirtAddr::new(config.granularity),
                align: PAGE,
            });
        }
        let table = PageTable::<F, _>::new(&mut *memory, alloc)?;
        let root = table.root();
        if let Some(kernel) = kernel_root {
            let entry = F::ENTRY_SIZE;
            let first = F::index(layout.kernel_start, F::LEVELS);
            for index in first..F::entries(F::LEVELS) {
                let at = index as u64 * entry.bytes();
                let raw = memory.read_entry(kernel + at, entry);
                memory.write_entry(root + at, entry, raw);
            }
        }
        Ok(Self {
            root,
            asid,
            layout,
            config,
            regions: Regions::new(),
            aslr: config.aslr_seed.map(Aslr::new),
            format: PhantomData,
        })
    }

    /// The root table (what CR3 holds while the space runs).
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    /// The address-space id.
    pub fn asid(&self) -> Asid {
        self.asid
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The configuration.
    pub fn config(&self) -> &SpaceConfig {
        &self.config
    }

    /// The space's page table over `memory`.
    pub fn page_table<'m, M: TableMemory>(&self, memory: &'m mut M) -> PageTable<F, &'m mut M> {
        PageTable::from_root(self.root, memory)
    }

    /// Reserves a range of addresses (Windows `VirtualAlloc` with `MEM_RESERVE`): at
    /// `addr` rounded down to the allocation granularity, or where the space chooses,
    /// covering every page that `[addr, addr + size)` touches. Takes no frame.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::ZeroSize`], [`SpaceError::WriteCopyOnPrivate`],
    /// [`SpaceError::WritableExecutable`], [`SpaceError::OutsideUserSpace`],
    /// [`SpaceError::Overlaps`], [`SpaceError::NoFreeRange`] and
    /// [`SpaceError::CapacityExhausted`].
    pub fn reserve(
        &mut self,
        addr: Option<VirtAddr>,
        size: u64,
        protect: Protection,
    ) -> Result<VirtAddr, SpaceError> {
        self.check_private_protection(protect)?;
        let (base, len) = self.place(addr, size)?;
        let allocation = Allocation {
            base,
            size: len,
            protect,
            kind: MemoryType::Private,
            backing: Backing::Private,
        };
        self.regions.add(allocation, PageState::Reserved, protect)?;
        Ok(base)
    }

    /// Commits pages of one reservation (Windows `VirtualAlloc` with `MEM_COMMIT`); with no
    /// address, reserves and commits. Takes no frame: each page gets a zeroed frame on its
    /// first touch. Pages already committed keep their protection and contents.
    ///
    /// # Errors
    ///
    /// As [`reserve`](Self::reserve), plus [`SpaceError::NotReserved`],
    /// [`SpaceError::CrossesReservation`] and [`SpaceError::WrongType`] (views are
    /// committed whole).
    pub fn commit(
        &mut self,
        addr: Option<VirtAddr>,
        size: u64,
        protect: Protection,
    ) -> Result<VirtAddr, SpaceError> {
        self.check_private_protection(protect)?;
        let Some(addr) = addr else {
            if !self.regions.can_set() {
                return Err(SpaceError::CapacityExhausted);
            }
            let base = self.reserve(None, size, protect)?;
            let allocation = self.regions.allocation(base.as_u64()).copied();
            let end = allocation.map_or(base.as_u64(), |a| a.end());
            self.regions.set(base.as_u64(), end, |_| (PageState::Committed, protect))?;
            return Ok(base);
        };
        let (start, end, allocation) = self.span_in_allocation(addr, size)?;
        expect_type(&allocation, MemoryType::Private)?;
        self.regions.set(start, end, |run| match run.state {
            PageState::Committed => (run.state, run.protect),
            _ => (PageState::Committed, protect),
        })?;
        Ok(VirtAddr::new(start))
    }

    /// Decommits pages of one private reservation (Windows `VirtualFree` with
    /// `MEM_DECOMMIT`): they become reserved and their frames go back to `alloc`.
    /// Decommitting pages that are not committed is not an error.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::ZeroSize`], [`SpaceError::NotReserved`],
    /// [`SpaceError::CrossesReservation`], [`SpaceError::OutsideUserSpace`],
    /// [`SpaceError::WrongType`], [`SpaceError::CapacityExhausted`] and
    /// [`SpaceError::Table`].
    pub fn decommit<M: TableMemory, A: FrameAllocator + ?Sized>(
        &mut self,
        addr: VirtAddr,
        size: u64,
        memory: &mut M,
        alloc: &mut A,
    ) -> Result<Flush, SpaceError> {
        let (start, end, allocation) = self.span_in_allocation(addr, size)?;
        expect_type(&allocation, MemoryType::Private)?;
        if !self.regions.can_set() {
            return Err(SpaceError::CapacityExhausted);
        }
        let flush = self.clear(start, end, memory, alloc)?;
        let protect = allocation.protect;
        self.regions.set(start, end, |_| (PageState::Reserved, protect))?;
        Ok(flush)
    }

    /// Releases a whole private reservation from its base (Windows `VirtualFree` with
    /// `MEM_RELEASE`): its frames go back to `alloc`, its addresses become free.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::NotReserved`], [`SpaceError::NotAllocationBase`],
    /// [`SpaceError::WrongType`] (views go with [`unmap_view`](Self::unmap_view)) and
    /// [`SpaceError::Table`].
    pub fn release<M: TableMemory, A: FrameAllocator + ?Sized>(
        &mut self,
        base: VirtAddr,
        memory: &mut M,
        alloc: &mut A,
    ) -> Result<Flush, SpaceError> {
        let allocation = self.allocation_at_base(base)?;
        expect_type(&allocation, MemoryType::Private)?;
        let flush = self.clear(allocation.base.as_u64(), allocation.end(), memory, alloc)?;
        self.regions.remove(allocation.base);
        Ok(flush)
    }

    /// Changes the protection of committed pages of one reservation (Windows
    /// `VirtualProtect`); returns the old protection of the first page. Materialised pages
    /// keep their contents: a no-access or guard page hides its frame until it is allowed
    /// again.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::ZeroSize`], [`SpaceError::NotReserved`],
    /// [`SpaceError::CrossesReservation`], [`SpaceError::OutsideUserSpace`],
    /// [`SpaceError::NotCommitted`], [`SpaceError::WriteCopyOnPrivate`],
    /// [`SpaceError::WritableExecutable`], [`SpaceError::ReadOnlyView`],
    /// [`SpaceError::CapacityExhausted`] and [`SpaceError::Table`].
    pub fn protect<M: TableMemory, A: FrameAllocator + ?Sized>(
        &mut self,
        addr: VirtAddr,
        size: u64,
        protect: Protection,
        memory: &mut M,
        alloc: &mut A,
    ) -> Result<(Protection, Flush), SpaceError> {
        self.check_protection(protect)?;
        let (start, end, allocation) = self.span_in_allocation(addr, size)?;
        match allocation.kind {
            MemoryType::Private if protect.is_write_copy() => {
                return Err(SpaceError::WriteCopyOnPrivate);
            }
            MemoryType::Mapped | MemoryType::Image
                if protect.allows(Access::Write) && !allocation.protect.allows(Access::Write) =>
            {
                return Err(SpaceError::ReadOnlyView);
            }
            _ => {}
        }
        if let Some(run) =
            self.regions.runs_in(start, end).find(|r| r.state != PageState::Committed)
        {
            return Err(SpaceError::NotCommitted { addr: VirtAddr::new(run.start.max(start)) });
        }
        let old = self.regions.run_index(start).map(|i| self.regions.runs.as_slice()[i].protect);
        let old = old.ok_or(SpaceError::NotReserved { addr })?;
        if !self.regions.can_set() {
            return Err(SpaceError::CapacityExhausted);
        }
        let mut table = self.page_table(memory);
        let flush = table.rewrite_range(
            VirtAddr::new(start),
            end - start,
            alloc,
            |_, _, occupant| {
                let (frame, owned) = match occupant {
                    Occupant::Page(mapped) => (mapped.frame, mapped.flags.contains(OWNED)),
                    Occupant::Payload(payload) => unhide(payload),
                };
                match page_flags(&allocation, protect, owned) {
                    Some(flags) => Rewrite::Page { frame, flags },
                    None => Rewrite::Payload(hide(frame, owned)),
                }
            },
            |_, _| {},
        )?;
        self.regions.set(start, end, |_| (PageState::Committed, protect))?;
        Ok((old, flush))
    }

    /// Describes the run of pages from `addr` (rounded down to a page) that share state,
    /// protection and reservation (Windows `VirtualQuery`). A free run reaches to the next
    /// reservation.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::OutsideUserSpace`] for an address above the user half's
    /// highest address (Windows `ERROR_INVALID_PARAMETER`).
    pub fn query(&self, addr: VirtAddr) -> Result<RegionInfo, SpaceError> {
        if addr > self.layout.highest {
            return Err(SpaceError::OutsideUserSpace { addr, size: 1 });
        }
        let page = addr.as_u64() & !(PAGE - 1);
        let Some(allocation) = self.regions.allocation(page) else {
            let next = self.regions.next_allocation(page).map(|a| a.base.as_u64());
            let end = next.unwrap_or(self.layout.highest.as_u64() + 1);
            return Ok(RegionInfo {
                base: VirtAddr::new(page),
                allocation_base: None,
                allocation_protect: None,
                size: end - page,
                state: PageState::Free,
                protect: Some(Protection::NO_ACCESS),
                kind: None,
            });
        };
        let runs = self.regions.runs.as_slice();
        let first = self.regions.run_index(page).unwrap_or(0);
        let run = runs[first];
        let end = runs[first..]
            .iter()
            .take_while(|r| {
                r.alloc_base == run.alloc_base && (r.state, r.protect) == (run.state, run.protect)
            })
            .last()
            .map_or(run.end, |r| r.end);
        Ok(RegionInfo {
            base: VirtAddr::new(page),
            allocation_base: Some(allocation.base),
            allocation_protect: Some(allocation.protect),
            size: end - page,
            state: run.state,
            protect: (run.state == PageState::Committed).then_some(run.protect),
            kind: Some(allocation.kind),
        })
    }

    /// Every run of the user half, free ones included, from the lowest address up (the
    /// debugger's `!address`).
    pub fn regions(&self) -> impl Iterator<Item = RegionInfo> + '_ {
        let mut at = Some(self.layout.lowest);
        core::iter::from_fn(move || {
            let info = self.query(at?).ok()?;
            at = info
                .end()
                .as_u64()
                .checked_sub(1)
                .filter(|&last| last < self.layout.highest.as_u64())
                .map(|_| info.end());
            Some(info)
        })
    }

    /// Maps `pages` pages of `section` from page `offset` (Windows `MapViewOfFileEx`), at
    /// `addr` (a multiple of the allocation granularity) or where the space chooses. The
    /// view is committed; its pages appear on first touch. In a write-copy view the
    /// section's frames are never mapped writable: every written page gets a private copy.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::ZeroSize`], [`SpaceError::OutsideSection`],
    /// [`SpaceError::Unaligned`], [`SpaceError::InvalidProtection`],
    /// [`SpaceError::WritableExecutable`], and the placement errors of
    /// [`reserve`](Self::reserve).
    #[allow(clippy::too_many_arguments, reason = "MapViewOfFile's own parameters")]
    pub fn map_view<M: TableMemory + ?Sized>(
        &mut self,
        section: &Section,
        addr: Option<VirtAddr>,
        offset: u64,
        pages: u64,
        protect: Protection,
        memory: &mut M,
    ) -> Result<VirtAddr, SpaceError> {
        self.check_protection(protect)?;
        let view = View { offset, pages, kind: MemoryType::Mapped, protect };
        self.add_view(section, addr, view, &[], memory)
    }

    /// Maps an executable image held in `image` (Windows `MapViewOfFile` of a
    /// `SEC_IMAGE` section): every page of the section, each part with its own
    /// protection, the rest read-only (headers). Unmap it with
    /// [`unmap_view`](Self::unmap_view).
    ///
    /// # Errors
    ///
    /// As [`map_view`](Self::map_view), for the image and for each part.
    pub fn map_image<M: TableMemory + ?Sized>(
        &mut self,
        image: &Section,
        addr: Option<VirtAddr>,
        parts: &[ImagePart],
        memory: &mut M,
    ) -> Result<VirtAddr, SpaceError> {
        for part in parts {
            self.check_protection(part.protect)?;
            let end = part.offset.checked_add(part.pages);
            if part.pages == 0 || end.is_none_or(|end| end > image.pages()) {
                return Err(SpaceError::OutsideSection { offset: part.offset, pages: part.pages });
            }
        }
        let view = View {
            offset: 0,
            pages: image.pages(),
            kind: MemoryType::Image,
            protect: Protection::EXECUTE_WRITE_COPY,
        };
        self.add_view(image, addr, view, parts, memory)
    }

    /// Unmaps the view at `base` (Windows `UnmapViewOfFile`); private copies go back to
    /// `alloc`, the section's frames stay with it, and the section counts one view less.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::NotReserved`], [`SpaceError::NotAllocationBase`],
    /// [`SpaceError::WrongType`] for private memory, and [`SpaceError::Table`].
    pub fn unmap_view<M: TableMemory, A: FrameAllocator + ?Sized>(
        &mut self,
        base: VirtAddr,
        memory: &mut M,
        alloc: &mut A,
    ) -> Result<Flush, SpaceError> {
        let allocation = self.allocation_at_base(base)?;
        let Backing::Section { section, .. } = allocation.backing else {
            return Err(SpaceError::WrongType {
                expected: MemoryType::Mapped,
                found: allocation.kind,
            });
        };
        let flush = self.clear(allocation.base.as_u64(), allocation.end(), memory, alloc)?;
        self.regions.remove(allocation.base);
        section::count_view(memory, section, -1);
        Ok(flush)
    }

    /// Releases every reservation and view, and gives the space's tables back (the root
    /// too; the kernel half's tables, shared, stay). Views' sections count one view less.
    /// Invalidate the space's address-space id in the TLB afterwards.
    pub fn destroy<M: TableMemory, A: FrameAllocator + ?Sized>(
        mut self,
        memory: &mut M,
        alloc: &mut A,
    ) {
        while let Some(allocation) = self.regions.allocations.as_slice().first().copied() {
            let _ = self.clear(allocation.base.as_u64(), allocation.end(), memory, alloc);
            self.regions.remove(allocation.base);
            if let Backing::Section { section, .. } = allocation.backing {
                section::count_view(memory, section, -1);
            }
        }
        let entry = F::ENTRY_SIZE;
        for index in F::index(self.layout.kernel_start, F::LEVELS)..F::entries(F::LEVELS) {
            memory.write_entry(self.root + index as u64 * entry.bytes(), entry, 0);
        }
        self.page_table(memory).destroy(alloc);
    }

    /// First-chance fault resolution: what the kernel can do about `fault` in this space.
    ///
    /// - a committed page touched for the first time gets a zeroed frame (demand-zero) or
    ///   its section's frame;
    /// - a guard page fires once: the guard is cleared and the process is notified;
    /// - a write to a write-copy page gets a private copy, and the page becomes read-write
    ///   (execute-read-write for execute-write-copy);
    /// - a page hidden by a protection change comes back with its protection.
    ///
    /// Anything else is [`Resolution::Pass`]: the process's handler gets a second chance,
    /// and [`explain`](Self::explain) says why it is a violation. Apply the returned flush.
    pub fn resolve<M: TableMemory, A: FrameAllocator + ?Sized>(
        &mut self,
        fault: &Fault,
        memory: &mut M,
        alloc: &mut A,
    ) -> (Resolution, Flush) {
        let pass = (Resolution::Pass, Flush::new());
        let page = fault.addr.align_down(PAGE);
        if fault.cause == FaultCause::ReservedBits || !self.layout.holds(page, PAGE) {
            return pass;
        }
        let (Some(allocation), Some(index)) = (
            self.regions.allocation(page.as_u64()).copied(),
            self.regions.run_index(page.as_u64()),
        ) else {
            return pass;
        };
        let run = self.regions.runs.as_slice()[index];
        if run.state != PageState::Committed {
            return pass;
        }
        if run.protect.is_guard() {
            let span = (page.as_u64(), page.as_u64() + PAGE);
            if self.regions.set(span.0, span.1, |r| (r.state, r.protect.without_guard())).is_err() {
                return pass;
            }
            return (Resolution::Notify(Exception::GuardPage { addr: fault.addr }), Flush::new());
        }
        if !run.protect.allows(fault.access) {
            return pass;
        }
        let write = fault.access == Access::Write;

        let looked_up = PageTable::<F, _>::from_root(self.root, &mut *memory).lookup(page);
        let current = match looked_up {
            Ok(Lookup::Mapped(t)) => Some((t.frame, t.flags.contains(OWNED), Some(t.flags))),
            Ok(Lookup::Payload { payload, .. }) => {
                let (frame, owned) = unhide(payload);
                Some((frame, owned, None))
            }
            Ok(Lookup::Unmapped) => None,
            Err(_) => return pass,
        };
        let (frame, owned, present) = match current {
            Some(found) => found,
            None => match allocation.backing {
                Backing::Private => match zeroed_frame(memory, alloc) {
                    Ok(frame) => (frame, true, None),
                    Err(_) => return pass,
                },
                Backing::Section { first, .. } => (first + (page - allocation.base), false, None),
            },
        };
        // A write to a write-copy page, or through a write-copy view to a section frame,
        // makes the page private: the books change (it becomes read-write), so they need
        // room for the split, and a frame the space does not own yet is copied now.
        let private = write
            && (run.protect.is_write_copy() || (!owned && allocation.protect.is_write_copy()));
        if private && !self.regions.can_set() {
            return pass;
        }
        let (frame, owned) = if private && !owned {
            match zeroed_frame(memory, alloc) {
                Ok(private) => {
                    memory.copy_frame(private, frame);
                    (private, true)
                }
                Err(_) => return pass,
            }
        } else {
            (frame, owned)
        };
        let protect = if private { run.protect.after_copy() } else { run.protect };
        let Some(flags) = page_flags(&allocation, protect, owned) else { return pass };
        if present == Some(flags) {
            // The entry already says what the books say: not a fault the kernel explains.
            return pass;
        }
        let new = NewEntry::Page { frame: Frame::<Size4KiB>::containing(frame), flags };
        let mut table = PageTable::<F, _>::from_root(self.root, &mut *memory);
        match table.set_entry(Page::<Size4KiB>::containing(page), new, alloc) {
            Ok((_, flush)) => {
                if private {
                    let span = (page.as_u64(), page.as_u64() + PAGE);
                    // `can_set` was checked above: this cannot run out of room.
                    let _ = self.regions.set(span.0, span.1, |r| (r.state, r.protect.after_copy()));
                }
                (Resolution::Retry, flush)
            }
            Err(_) => {
                if owned && current.is_none_or(|c| c.0 != frame) {
                    let _ = alloc.deallocate(frame);
                }
                pass
            }
        }
    }

    /// Says why `fault` is an access violation in this space, for the record a process
    /// ends with.
    #[must_use]
    pub fn explain(&self, fault: &Fault) -> AccessViolation {
        let page = fault.addr.as_u64() & !(PAGE - 1);
        let run = self.regions.run_index(page).map(|i| self.regions.runs.as_slice()[i]);
        let reason = if fault.addr >= self.layout.kernel_start {
            Violation::KernelSpace
        } else {
            match run {
                None => Violation::Free,
                Some(run) if run.state != PageState::Committed => Violation::Reserved,
                Some(run) if !run.protect.allows(Access::Read) => Violation::NoAccess(run.protect),
                Some(run) if !run.protect.allows(fault.access) => match fault.access {
                    Access::Execute => Violation::NotExecutable(run.protect),
                    _ => Violation::ReadOnly(run.protect),
                },
                Some(_) => Violation::Unresolved,
            }
        };
        AccessViolation { addr: fault.addr, access: fault.access, reason }
    }

    /// The number of committed pages.
    pub fn committed_pages(&self) -> u64 {
        let runs = self.regions.runs.as_slice().iter();
        runs.filter(|r| r.state == PageState::Committed).map(|r| (r.end - r.start) / PAGE).sum()
    }

    // ---- helpers ----

    /// Refuses protections private memory cannot have.
    fn check_private_protection(&self, protect: Protection) -> Result<(), SpaceError> {
        if protect.is_write_copy() {
            return Err(SpaceError::WriteCopyOnPrivate);
        }
        self.check_protection(protect)
    }

    /// Refuses guard with no-access, and writable-and-executable memory unless the space
    /// allows it.
    pub(crate) fn check_protection(&self, protect: Protection) -> Result<(), SpaceError> {
        if protect.is_guard() && protect.base() == BaseProtection::NoAccess {
            return Err(SpaceError::InvalidProtection { bits: protect.windows() });
        }
        if protect.is_writable_executable() && !self.config.allow_write_execute {
            return Err(SpaceError::WritableExecutable);
        }
        Ok(())
    }

    /// Chooses a reservation's base and length: at `addr` rounded down to the granularity
    /// (covering every page `[addr, addr + size)` touches), or a free range.
    fn place(&mut self, addr: Option<VirtAddr>, size: u64) -> Result<(VirtAddr, u64), SpaceError> {
        if size == 0 {
            return Err(SpaceError::ZeroSize);
        }
        let granularity = self.config.granularity;
        let outside = SpaceError::OutsideUserSpace { addr: addr.unwrap_or(VirtAddr::ZERO), size };
        let Some(addr) = addr else {
            let len = size.checked_next_multiple_of(PAGE).ok_or(outside)?;
            let base = self.find_free(len).ok_or(SpaceError::NoFreeRange { size })?;
            return Ok((base, len));
        };
        let base = addr.align_down(granularity);
        let end =
            addr.checked_add(size).and_then(|end| end.checked_align_up(PAGE)).ok_or(outside)?;
        let len = end - base;
        if !self.layout.holds(base, len) {
            return Err(outside);
        }
        if let Some(other) = self.regions.overlapping(base.as_u64(), end.as_u64()) {
            return Err(SpaceError::Overlaps { base: other.base });
        }
        Ok((base, len))
    }

    /// Finds a free, granularity-aligned range of `len` bytes: at random when ASLR is on
    /// (falling back to the lowest fit), else the lowest fit.
    fn find_free(&mut self, len: u64) -> Option<VirtAddr> {
        let granularity = self.config.granularity;
        let lowest = self.layout.lowest.checked_align_up(granularity)?.as_u64();
        let last_base = (self.layout.highest.as_u64() + 1).checked_sub(len)? & !(granularity - 1);
        if last_base < lowest {
            return None;
        }
        let fits =
            |regions: &Regions<N>, base: u64| regions.overlapping(base, base + len).is_none();
        if let Some(aslr) = self.aslr.as_mut() {
            let slots = (last_base - lowest) / granularity + 1;
            for _ in 0..32 {
                let base = lowest + aslr.below(slots) * granularity;
                if fits(&self.regions, base) {
                    return Some(VirtAddr::new(base));
                }
            }
        }
        let mut base = lowest;
        while base <= last_base {
            match self.regions.overlapping(base, base + len) {
                None => return Some(VirtAddr::new(base)),
                Some(other) => base = other.end().checked_next_multiple_of(granularity)?,
            }
        }
        None
    }

    /// The page range `[start, end)` that `[addr, addr + size)` touches, and the one
    /// reservation it must lie in.
    fn span_in_allocation(
        &self,
        addr: VirtAddr,
        size: u64,
    ) -> Result<(u64, u64, Allocation), SpaceError> {
        if size == 0 {
            return Err(SpaceError::ZeroSize);
        }
        let start = addr.align_down(PAGE).as_u64();
        let outside = SpaceError::OutsideUserSpace { addr, size };
        let end = addr
            .checked_add(size)
            .and_then(|end| end.checked_align_up(PAGE))
            .ok_or(outside)?
            .as_u64();
        let allocation = *self.regions.allocation(start).ok_or(SpaceError::NotReserved { addr })?;
        if end > allocation.end() {
            return Err(SpaceError::CrossesReservation { addr, size });
        }
        Ok((start, end, allocation))
    }

    /// The reservation whose base is `base`.
    fn allocation_at_base(&self, base: VirtAddr) -> Result<Allocation, SpaceError> {
        let allocation = *self
            .regions
            .allocation(base.as_u64())
            .ok_or(SpaceError::NotReserved { addr: base })?;
        if allocation.base != base {
            return Err(SpaceError::NotAllocationBase { addr: base, base: allocation.base });
        }
        Ok(allocation)
    }

    /// Adds a view (or image) of `section` with `parts` protected apart.
    fn add_view<M: TableMemory + ?Sized>(
        &mut self,
        section: &Section,
        addr: Option<VirtAddr>,
        view: View,
        parts: &[ImagePart],
        memory: &mut M,
    ) -> Result<VirtAddr, SpaceError> {
        let View { offset, pages, kind, protect } = view;
        if pages == 0 {
            return Err(SpaceError::ZeroSize);
        }
        if offset.checked_add(pages).is_none_or(|end| end > section.pages()) {
            return Err(SpaceError::OutsideSection { offset, pages });
        }
        // A view is exactly its pages, from an address on the allocation granularity.
        if let Some(addr) = addr.filter(|a| !a.is_aligned(self.config.granularity)) {
            return Err(SpaceError::Unaligned { addr, align: self.config.granularity });
        }
        if self.regions.runs.spare() < 1 + 2 * parts.len() {
            return Err(SpaceError::CapacityExhausted);
        }
        let (base, len) = self.place(addr, pages * PAGE)?;
        let backing =
            Backing::Section { section: section.header(), first: section.base() + offset * PAGE };
        let allocation = Allocation { base, size: len, protect, kind, backing };
        let initial = if parts.is_empty() { protect } else { Protection::READ_ONLY };
        self.regions.add(allocation, PageState::Committed, initial)?;
        for part in parts {
            let start = base.as_u64() + part.offset * PAGE;
            let protect = part.protect;
            // Room for every part's splits was checked above.
            self.regions
                .set(start, start + part.pages * PAGE, |_| (PageState::Committed, protect))?;
        }
        section::count_view(memory, section.header(), 1);
        Ok(base)
    }

    /// Clears every page table entry in `[start, end)`, giving owned frames back.
    fn clear<M: TableMemory, A: FrameAllocator + ?Sized>(
        &mut self,
        start: u64,
        end: u64,
        memory: &mut M,
        alloc: &mut A,
    ) -> Result<Flush, SpaceError> {
        let shared = RefCell::new(alloc);
        let mut tables = SharedAllocator(&shared);
        let mut table = self.page_table(memory);
        let flush = table.rewrite_range(
            VirtAddr::new(start),
            end - start,
            &mut tables,
            |_, _, _| Rewrite::Clear,
            |_, old| {
                let (frame, owned) = match old {
                    Occupant::Page(mapped) => (mapped.frame, mapped.flags.contains(OWNED)),
                    Occupant::Payload(payload) => unhide(payload),
                };
                if owned {
                    // The space allocated the frame; it goes back where it came from.
                    let _ = shared.borrow_mut().deallocate(frame);
                }
            },
        )?;
        Ok(flush)
    }
}

/// Refuses an operation meant for another type of memory.
fn expect_type(allocation: &Allocation, expected: MemoryType) -> Result<(), SpaceError> {
    if allocation.kind == expected {
        Ok(())
    } else {
        Err(SpaceError::WrongType { expected, found: allocation.kind })
    }
}

/// A fresh zeroed frame.
fn zeroed_frame<M: TableMemory, A: FrameAllocator + ?Sized>(
    memory: &mut M,
    alloc: &mut A,
) -> Result<PhysAddr, FrameError> {
    let frame = alloc.allocate()?;
    memory.zero_frame(frame);
    Ok(frame)
}

/// The flags of a present page with `protect` in `allocation`: in a write-copy view (or an
/// image) a section frame the space does not own is never writable, so that every write
/// makes a private copy.
pub(crate) fn page_flags(
    allocation: &Allocation,
    protect: Protection,
    owned: bool,
) -> Option<PageFlags> {
    let mut flags = protect.page_flags(true)?;
    if !owned && allocation.protect.is_write_copy() {
        flags.remove(PageFlags::WRITABLE);
    }
    Some(with_owned(flags, owned))
}

/// The flags with the owned bit as `owned` says.
fn with_owned(mut flags: PageFlags, owned: bool) -> PageFlags {
    flags.set(OWNED, owned);
    flags
}

/// The payload that hides `frame` (and whether the space owns it) in a non-present entry.
fn hide(frame: PhysAddr, owned: bool) -> u64 {
    (frame.as_u64() >> 12) << 2 | u64::from(owned) << 1 | 1
}

/// The frame and ownership a payload hides.
fn unhide(payload: u64) -> (PhysAddr, bool) {
    (PhysAddr::new((payload >> 2) << 12), payload & 2 != 0)
}

/// One allocator shared by the engine (tables) and the space (frames) during one call.
struct SharedAllocator<'r, 'a, A: FrameAllocator + ?Sized>(&'r RefCell<&'a mut A>);

impl<A: FrameAllocator + ?Sized> FrameAllocator for SharedAllocator<'_, '_, A> {
    fn allocate(&mut self) -> Result<PhysAddr, FrameError> {
        self.0.borrow_mut().allocate()
    }
    fn allocate_contiguous(&mut self, count: usize, align: u64) -> Result<PhysAddr, FrameError> {
        self.0.borrow_mut().allocate_contiguous(count, align)
    }
    fn deallocate(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
        self.0.borrow_mut().deallocate(frame)
    }
    fn deallocate_contiguous(&mut self, start: PhysAddr, count: usize) -> Result<(), FrameError> {
        self.0.borrow_mut().deallocate_contiguous(start, count)
    }
    fn frames_in_use(&self) -> usize {
        self.0.borrow().frames_in_use()
    }
}

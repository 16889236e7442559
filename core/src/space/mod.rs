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
//! Every operation validates first and changes nothing on error: it plans the change of
//! the books (which refuses a change that does not fit), changes the tables through the
//! engine (all-or-nothing), and only then the books.
//!
//! Where each part lives: the operations on reservations here; the books and their plans
//! in `regions.rs`; placement in `placement.rs`; views and images in `views.rs`; the
//! fault path in `fault_path.rs`; `VirtualQuery` in `query.rs`; the Unix face in
//! `unix.rs`.

use core::cell::RefCell;
use core::marker::PhantomData;

use crate::addr::{PageSize, PhysAddr, Size4KiB, VirtAddr};
use crate::error::{AddrKind, FrameError, Occupant, TableError};
use crate::flags::PageFlags;
use crate::format::PageTableFormat;
use crate::frame::{FrameAllocator, NoFrames};
use crate::memory::TableMemory;
use crate::table::{PageTable, Rewrite};
use crate::tlb::{Asid, Flush};

mod chain;
mod error;
mod fault_path;
mod layout;
mod lock;
mod placement;
mod protection;
mod query;
mod regions;
mod reset;
pub(crate) mod section;
mod source;
mod unix;
mod views;
mod violation;
mod write_watch;

pub use chain::FaultChain;
pub use error::SpaceError;
pub use layout::{Aslr, Layout};
pub use protection::{BaseProtection, MemoryType, PageState, Protection};
pub use query::RegionInfo;
pub use section::{MAX_VIEWS, Prototype, Section};
pub use source::{FaultKind, FrameSource, PageInError};
pub use unix::{MapFixed, Prot};
pub use views::ImagePart;
pub use violation::{AccessViolation, Violation};
pub use write_watch::MAX_WATCHED_PAGES;

pub(crate) use fault_path::OWNED;
use fault_path::{frame_of, hide, page_flags, release_entry};
pub(crate) use lock::LOCKED;
use regions::{Backing, Regions, Reservation, Run};
use write_watch::drop_watch;

/// The page of an address space: the base page, 4 KiB.
pub(crate) const PAGE: u64 = Size4KiB::SIZE;

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

/// A virtual address space: a root table, its address-space id, and the books of its
/// reservations. `N` bounds the number of reservations and of runs (heapless); with the
/// `alloc` feature the books grow without bound.
#[derive(Debug)]
pub struct AddressSpace<F: PageTableFormat, const N: usize = 64> {
    root: PhysAddr,
    /// Whether the root's kernel-half entries were copied from a kernel root (and are the
    /// kernel's, not the space's, to free).
    shares_kernel: bool,
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
    /// In a format whose root entries the CPU loads with the root (x86 PAE) the root's
    /// other entries get their tables now, as [`PageTable::new`] gives them.
    ///
    /// With a kernel's layout ([`Layout::kernel_part`]) the space is the kernel's own: a
    /// kernel heap, say, committed and materialised on first touch by the same fault path
    /// as a process's memory. Create it first, with no `kernel_root`: its root is the one
    /// processes then share (pass [`root`](Self::root) as their `kernel_root`; map the
    /// kernel image and the direct map into it through [`page_table`](Self::page_table)).
    /// Every root entry its layout covers gets its table now, so that processes created
    /// later see every page it will map; it keeps the tables it empties.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::OutsideUserSpace`] for a layout the format cannot address or
    /// that straddles the kernel half's start, [`SpaceError::KernelSpaceShares`] for a
    /// kernel's layout with a `kernel_root`,
    /// [`SpaceError::Unaligned`] for a granularity that is not a power-of-two multiple of
    /// 4 KiB, and [`SpaceError::Table`] when no frame is free for the root (or those
    /// tables: none is kept), or with
    /// [`TableError::Unaligned`] for a `kernel_root` that is
    /// not aligned to the size of a root table.
    pub fn new<M: TableMemory, A: FrameSource + ?Sized>(
        layout: Layout,
        config: SpaceConfig,
        asid: Asid,
        kernel_root: Option<PhysAddr>,
        memory: &mut M,
        alloc: &mut A,
    ) -> Result<Self, SpaceError> {
        // Saturating: a layout spanning all 2^64 addresses reports `u64::MAX` bytes.
        let size = layout.highest.as_u64().saturating_sub(layout.lowest.as_u64()).saturating_add(1);
        if !F::is_canonical(layout.lowest)
            || !F::is_canonical(layout.highest)
            || !layout.is_one_sided()
        {
            return Err(SpaceError::OutsideUserSpace { addr: layout.lowest, size });
        }
        if !config.granularity.is_power_of_two() || config.granularity < PAGE {
            return Err(SpaceError::Unaligned {
                addr: VirtAddr::new(config.granularity),
                align: PAGE,
            });
        }
        let entry = F::ENTRY_SIZE;
        let root_bytes = F::entries(F::LEVELS) as u64 * entry.bytes();
        if let Some(kernel) = kernel_root.filter(|kernel| !kernel.is_aligned(root_bytes)) {
            let value = kernel.as_u64();
            return Err(TableError::Unaligned {
                kind: AddrKind::Physical,
                value,
                align: root_bytes,
            }
            .into());
        }
        if layout.is_kernel() && kernel_root.is_some() {
            return Err(SpaceError::KernelSpaceShares);
        }
        let shared = kernel_root.map(|kernel| (kernel, F::index(layout.kernel_start, F::LEVELS)));
        // A kernel space's top tables exist from the start: spaces created later copy them.
        let linked = if layout.is_kernel() {
            F::index(layout.lowest, F::LEVELS)..F::index(layout.highest, F::LEVELS) + 1
        } else {
            0..0
        };
        let root =
            PageTable::<F, _>::new_sharing(&mut *memory, alloc.tables(), shared, linked)?.root();
        Ok(Self {
            root,
            shares_kernel: kernel_root.is_some(),
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

    /// The space's page table over `memory`. A kernel space's keeps the tables it empties
    /// (processes hold copies of its top entries, so a table given back could still be
    /// walked through them); [`destroy`](Self::destroy) frees them.
    pub fn page_table<'m, M: TableMemory>(&self, memory: &'m mut M) -> PageTable<F, &'m mut M> {
        let mut table = PageTable::from_root(self.root, memory);
        table.keep_empty_tables(self.layout.is_kernel());
        table
    }

    /// Whether this is a kernel space: its layout lies in the kernel half, its pages map
    /// supervisor-only and global, and only supervisor accesses fault them in.
    pub fn is_kernel(&self) -> bool {
        self.layout.is_kernel()
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
        self.add_private(addr, size, PageState::Reserved, protect)
    }

    /// Commits pages of one reservation (Windows `VirtualAlloc` with `MEM_COMMIT`); with no
    /// address, reserves and commits. Takes no frame: each page gets a zeroed frame on its
    /// first touch. Pages already committed keep their protection and contents (Windows
    /// gives them the new protection, which needs the tables:
    /// [`commit_over`](Self::commit_over)).
    ///
    /// # Errors
    ///
    /// As [`reserve`](Self::reserve), plus [`SpaceError::NotReserved`],
    /// [`SpaceError::CrossesReservation`] and [`SpaceError::WrongType`] (a view commits
    /// through [`commit_over`](Self::commit_over), which reads its section).
    pub fn commit(
        &mut self,
        addr: Option<VirtAddr>,
        size: u64,
        protect: Protection,
    ) -> Result<VirtAddr, SpaceError> {
        // Committing takes no frame, and an allocator charges nothing.
        self.commit_with(addr, size, protect, &mut NoFrames)
    }

    /// [`commit`](Self::commit), charging the newly committed pages to `source`: a pager
    /// refuses a commit past its commit limit. Commit through this in a space whose frames
    /// come from a pager.
    ///
    /// # Errors
    ///
    /// As [`commit`](Self::commit), plus [`SpaceError::CommitLimit`].
    pub fn commit_with<A: FrameSource + ?Sized>(
        &mut self,
        addr: Option<VirtAddr>,
        size: u64,
        protect: Protection,
        source: &mut A,
    ) -> Result<VirtAddr, SpaceError> {
        self.check_private_protection(protect)?;
        let Some(addr) = addr else {
            let pages = size.checked_next_multiple_of(PAGE).map_or(0, |len| len / PAGE);
            source.charge(self.root, pages)?;
            let added = self.add_private(None, size, PageState::Committed, protect);
            if added.is_err() {
                source.uncharge(self.root, pages);
            }
            return added;
        };
        let (start, end, reservation) = self.span_in_reservation(addr, size)?;
        expect_type(&reservation, MemoryType::Private)?;
        self.regions.plan().set(start, end).fits()?;
        let pages = (end - start) / PAGE - self.committed_in(start, end);
        source.charge(self.root, pages)?;
        // The plan said the books have room.
        let _ = self.regions.set(start, end, |run| match run.state {
            PageState::Committed => (run.state, run.protect),
            _ => (PageState::Committed, protect),
        });
        Ok(VirtAddr::new(start))
    }

    /// Decommits pages of one private reservation (Windows `VirtualFree` with
    /// `MEM_DECOMMIT`): they become reserved and their frames go back to `alloc`.
    /// Decommitting pages that are not committed is not an error. A size of zero decommits
    /// the whole reservation, and then `addr` must lie in its first page.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::NotAllocationBase`] (size zero), [`SpaceError::NotReserved`],
    /// [`SpaceError::CrossesReservation`], [`SpaceError::OutsideUserSpace`],
    /// [`SpaceError::WrongType`], [`SpaceError::CapacityExhausted`] and
    /// [`SpaceError::Table`].
    pub fn decommit<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        addr: VirtAddr,
        size: u64,
        memory: &mut M,
        alloc: &mut A,
    ) -> Result<Flush, SpaceError> {
        let (start, end, reservation) = if size == 0 {
            let reservation = self.reservation_at_base(addr)?;
            (reservation.base.as_u64(), reservation.end(), reservation)
        } else {
            self.span_in_reservation(addr, size)?
        };
        expect_type(&reservation, MemoryType::Private)?;
        self.regions.plan().set(start, end).fits()?;
        let committed = self.committed_in(start, end);
        let flush = self.clear(start, end, memory, alloc)?;
        let protect = reservation.protect;
        self.regions.set(start, end, |_| (PageState::Reserved, protect))?;
        alloc.uncharge(self.root, committed);
        Ok(flush)
    }

    /// Releases a whole private reservation from its base (Windows `VirtualFree` with
    /// `MEM_RELEASE` and size zero): its frames go back to `alloc`, its addresses become
    /// free. `base` is rounded down to its page, which must be the reservation's first.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::NotReserved`], [`SpaceError::NotAllocationBase`],
    /// [`SpaceError::WrongType`] (views go with [`unmap_view`](Self::unmap_view)) and
    /// [`SpaceError::Table`].
    pub fn release<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        base: VirtAddr,
        memory: &mut M,
        alloc: &mut A,
    ) -> Result<Flush, SpaceError> {
        let reservation = self.reservation_at_base(base)?;
        expect_type(&reservation, MemoryType::Private)?;
        self.drop_reservation(&reservation, memory, alloc)
    }

    /// Changes the protection of committed pages of one reservation (Windows
    /// `VirtualProtect`); returns the old protection of the first page. Materialised pages
    /// keep their contents: a no-access or guard page hides its frame until it is allowed
    /// again. As on modern Windows, the no-cache modifier is the allocation's, whatever
    /// `protect` says; a view takes only protections its own grants (write-copy counting as
    /// read), and an image page asked to be writable becomes write-copy.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::ZeroSize`], [`SpaceError::NotReserved`],
    /// [`SpaceError::CrossesReservation`], [`SpaceError::OutsideUserSpace`],
    /// [`SpaceError::NotCommitted`], [`SpaceError::WriteCopyOnPrivate`],
    /// [`SpaceError::WritableExecutable`], [`SpaceError::ReadOnlyView`],
    /// [`SpaceError::CapacityExhausted`] and [`SpaceError::Table`].
    pub fn protect<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        addr: VirtAddr,
        size: u64,
        protect: Protection,
        memory: &mut M,
        alloc: &mut A,
    ) -> Result<(Protection, Flush), SpaceError> {
        self.check_protection(protect)?;
        let (start, end, reservation) = self.span_in_reservation(addr, size)?;
        let protect = protection_in(&reservation, protect)?;
        self.expect_committed(start, end)?;
        let old = self.regions.run(start).ok_or(SpaceError::NotReserved { addr })?.protect;
        let flush = self.reprotect(start, end, reservation, protect, memory, alloc)?;
        Ok((old, flush))
    }

    /// Commits pages of one reservation as Windows `VirtualAlloc` with `MEM_COMMIT` does
    /// over pages that may already be committed: every page in the range, committed before
    /// or not, gets `protect` (materialised pages keep their contents), with the rules of
    /// [`protect`](Self::protect). In a view it changes the protection, and commits the
    /// pages of a `SEC_RESERVE` section ([`Section::create_reserved`]) that are still
    /// reserved: in the section, so for every view (the other views of it in this space
    /// show them committed with their own protection, as Windows does; a view in another
    /// space finds them committed when it touches them, and its books catch up when it
    /// commits them itself, at no charge). Only newly committed pages are charged to
    /// `source`: private memory's to the space, a section's to the section (as its
    /// creation charges a `SEC_COMMIT` section), given back when it is closed.
    /// Returns the first page and the flush the table changes need.
    ///
    /// # Errors
    ///
    /// As [`protect`](Self::protect) (without [`SpaceError::NotCommitted`]), plus
    /// [`SpaceError::WrongType`] for an image and [`SpaceError::CommitLimit`] (nothing is
    /// committed then). [`SpaceError::CapacityExhausted`] counts the other views' splits
    /// too.
    pub fn commit_over<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        addr: VirtAddr,
        size: u64,
        protect: Protection,
        memory: &mut M,
        source: &mut A,
    ) -> Result<(VirtAddr, Flush), SpaceError> {
        self.check_protection(protect)?;
        let (start, end, reservation) = self.span_in_reservation(addr, size)?;
        if reservation.kind == MemoryType::Image {
            return Err(SpaceError::WrongType {
                expected: MemoryType::Private,
                found: MemoryType::Image,
            });
        }
        let protect = protection_in(&reservation, protect)?;
        let twins = self.twin_views(&reservation, start, end);
        twins.fold(self.regions.plan().set(start, end), |plan, (a, b, _)| plan.set(a, b)).fits()?;
        // Private pages are the space's charge; a section's pages are the section's, as
        // its creation charged them.
        let (owner, pages) = match reservation.backing {
            Backing::Private => (self.root, (end - start) / PAGE - self.committed_in(start, end)),
            Backing::Section { section, .. } => {
                let (first, last) = section_pages(&reservation, start, end);
                (PhysAddr::ZERO, last - first - section::committed_in(memory, section, first, last))
            }
        };
        source.charge(owner, pages)?;
        let done = self.reprotect(start, end, reservation, protect, memory, source);
        if done.is_err() {
            source.uncharge(owner, pages);
        }
        if done.is_ok()
            && let Backing::Section { section, .. } = reservation.backing
        {
            self.commit_section_pages(section, &reservation, start, end, memory);
        }
        done.map(|flush| (VirtAddr::new(start), flush))
    }

    /// Commits the reserved pages of `section` behind `[start, end)` of the view
    /// `reservation`, for every view: the prototypes say so, and the other views of it in
    /// this space see them committed with their own protection (views in other spaces
    /// learn it from the prototypes when they touch them). The books have room: the
    /// caller planned the other views' changes with its own.
    fn commit_section_pages<M: TableMemory>(
        &mut self,
        section: PhysAddr,
        reservation: &Reservation,
        start: u64,
        end: u64,
        memory: &mut M,
    ) {
        let (first, last) = section_pages(reservation, start, end);
        for index in first..last {
            if !section::prototype(memory, section, index).is_committed() {
                section::set_prototype(memory, section, index, section::Prototype::Zero);
            }
        }
        for index in 0..self.regions.reservations.as_slice().len() {
            let view = self.regions.reservations.as_slice()[index];
            if let Some((a, b, protect)) = twin_span(&view, reservation, start, end) {
                let _ = self.regions.set(a, b, |run| match run.state {
                    PageState::Reserved => (PageState::Committed, protect),
                    _ => (run.state, run.protect),
                });
            }
        }
    }

    /// The spans of the other views of `reservation`'s section in this space that map the
    /// section pages behind `[start, end)`, each with its view's protection.
    fn twin_views<'a>(
        &'a self,
        reservation: &'a Reservation,
        start: u64,
        end: u64,
    ) -> impl Iterator<Item = (u64, u64, Protection)> + 'a {
        let views = self.regions.reservations.as_slice().iter();
        views.filter_map(move |view| twin_span(view, reservation, start, end))
    }

    /// Releases every reservation and view, and gives the space's tables back (the root
    /// too; the kernel half's tables, when shared from a kernel root, stay). Views' sections count one view less.
    /// Invalidate the space's address-space id in the TLB afterwards.
    pub fn destroy<M: TableMemory, A: FrameSource + ?Sized>(
        mut self,
        memory: &mut M,
        alloc: &mut A,
    ) {
        while let Some(reservation) = self.regions.reservations.as_slice().first().copied() {
            // A corrupt table keeps what it holds; the books let go all the same.
            let (start, end) = (reservation.base.as_u64(), reservation.end());
            let committed = self.charged_in(start, end);
            let _ = self.clear(start, end, memory, alloc);
            self.forget(&reservation, memory);
            alloc.uncharge(self.root, committed);
            drop_watch(&reservation, alloc);
        }
        let entry = F::ENTRY_SIZE;
        let first_shared = F::index(self.layout.kernel_start, F::LEVELS);
        let shared = if self.shares_kernel { first_shared } else { F::entries(F::LEVELS) };
        for index in shared..F::entries(F::LEVELS) {
            // The root came from `PageTable::new`, 4 KiB aligned: its entries stay in its frame.
            memory.write_entry(self.root + index as u64 * entry.bytes(), entry, 0);
        }
        self.page_table(memory).destroy(alloc.tables());
    }

    // ---- helpers ----

    /// Gives the pages `[start, end)` of `reservation` the (checked) protection `protect`
    /// and makes them committed: the tables of materialised pages first, then the books.
    fn reprotect<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        start: u64,
        end: u64,
        reservation: Reservation,
        protect: Protection,
        memory: &mut M,
        alloc: &mut A,
    ) -> Result<Flush, SpaceError> {
        self.regions.plan().set(start, end).fits()?;
        let shared = RefCell::new(alloc);
        // A hidden page is out of the hardware's reach, and out of its lock.
        let kernel = self.layout.is_kernel();
        let hides = page_flags(&reservation, protect, true, kernel).is_none();
        let mut unlocked = 0;
        let mut table = self.page_table(memory);
        let flush = table.rewrite_range(
            VirtAddr::new(start),
            end - start,
            &mut SharedTables(&shared),
            |_, _, occupant| {
                // A page the space does not hold (none yet, or paged out) gets its
                // protection when it comes back: the books say it.
                let Some((frame, owned)) = frame_of(occupant) else { return Rewrite::Keep };
                match page_flags(&reservation, protect, owned, kernel) {
                    Some(flags) => Rewrite::Page { frame, flags: flags | locked_in(occupant) },
                    None => Rewrite::Payload(hide::<F>(frame, owned)),
                }
            },
            |_, old| {
                if let Occupant::Page(page) = old
                    && page.flags.contains(PageFlags::DIRTY)
                {
                    // The rewrite drops the Dirty bit: the pager must still know.
                    shared.borrow_mut().dirtied(page.frame);
                }
                if hides && !locked_in(old).is_empty() {
                    unlocked += 1;
                }
            },
        )?;
        shared.into_inner().unlock(self.root, unlocked);
        self.regions.set(start, end, |_| (PageState::Committed, protect))?;
        Ok(flush)
    }

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

    /// Adds a private reservation with all its pages in `state` (placed as
    /// [`reserve`](Self::reserve) places).
    fn add_private(
        &mut self,
        addr: Option<VirtAddr>,
        size: u64,
        state: PageState,
        protect: Protection,
    ) -> Result<VirtAddr, SpaceError> {
        self.add_watched(addr, size, state, protect, None)
    }

    /// [`add_private`](Self::add_private), with the write-watch bitmap `watch`.
    fn add_watched(
        &mut self,
        addr: Option<VirtAddr>,
        size: u64,
        state: PageState,
        protect: Protection,
        watch: Option<PhysAddr>,
    ) -> Result<VirtAddr, SpaceError> {
        self.regions.plan().add().fits()?;
        let (base, size) = self.place_reservation(addr, size)?;
        let kind = MemoryType::Private;
        let reservation =
            Reservation { base, size, protect, kind, backing: Backing::Private, charge: 0, watch };
        self.regions.add(reservation, state, protect)?;
        Ok(base)
    }

    /// Refuses `[start, end)` unless every page in it is committed, naming the first that
    /// is not.
    fn expect_committed(&self, start: u64, end: u64) -> Result<(), SpaceError> {
        match self.regions.runs_in(start, end).find(|r| r.state != PageState::Committed) {
            Some(run) => {
                Err(SpaceError::NotCommitted { addr: VirtAddr::new(run.start.max(start)) })
            }
            None => Ok(()),
        }
    }

    /// The committed pages in `[start, end)`.
    fn committed_in(&self, start: u64, end: u64) -> u64 {
        let runs = self.regions.runs_in(start, end).filter(|r| r.state == PageState::Committed);
        runs.map(|r| (r.end.min(end) - r.start.max(start)) / PAGE).sum()
    }

    /// The pages in `[start, end)` that were charged to the source: the committed pages of
    /// private reservations, and the whole charge of every view the range covers entirely
    /// (views go whole: they are charged when mapped and uncharged when unmapped).
    pub(crate) fn charged_in(&self, start: u64, end: u64) -> u64 {
        let private = |r: &&Run| {
            self.regions.reservation(r.start).is_some_and(|v| v.backing == Backing::Private)
        };
        let runs = self.regions.runs_in(start, end).filter(private);
        let committed: u64 = runs
            .filter(|r| r.state == PageState::Committed)
            .map(|r| (r.end.min(end) - r.start.max(start)) / PAGE)
            .sum();
        let views = self.regions.reservations.as_slice().iter();
        let covered = |v: &&Reservation| start <= v.base.as_u64() && v.end() <= end;
        committed + views.filter(covered).map(|v| v.charge).sum::<u64>()
    }

    /// The page range `[start, end)` that `[addr, addr + size)` touches, and the one
    /// reservation it must lie in.
    fn span_in_reservation(
        &self,
        addr: VirtAddr,
        size: u64,
    ) -> Result<(u64, u64, Reservation), SpaceError> {
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
        let reservation =
            *self.regions.reservation(start).ok_or(SpaceError::NotReserved { addr })?;
        if end > reservation.end() {
            return Err(SpaceError::CrossesReservation { addr, size });
        }
        Ok((start, end, reservation))
    }

    /// The reservation whose first page holds `addr`.
    fn reservation_at_base(&self, addr: VirtAddr) -> Result<Reservation, SpaceError> {
        let reservation = self.reservation_holding(addr)?;
        if addr.align_down(PAGE) != reservation.base {
            return Err(SpaceError::NotAllocationBase { addr, base: reservation.base });
        }
        Ok(reservation)
    }

    /// The reservation holding `addr`.
    fn reservation_holding(&self, addr: VirtAddr) -> Result<Reservation, SpaceError> {
        self.regions.reservation(addr.as_u64()).copied().ok_or(SpaceError::NotReserved { addr })
    }

    /// Takes a whole reservation out of the tables and the books; a view's section counts
    /// one view less.
    fn drop_reservation<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        reservation: &Reservation,
        memory: &mut M,
        alloc: &mut A,
    ) -> Result<Flush, SpaceError> {
        let (start, end) = (reservation.base.as_u64(), reservation.end());
        let committed = self.charged_in(start, end);
        let flush = self.clear(start, end, memory, alloc)?;
        self.forget(reservation, memory);
        alloc.uncharge(self.root, committed);
        drop_watch(reservation, alloc);
        Ok(flush)
    }

    /// Takes a reservation out of the books; a view's section counts one view less.
    fn forget<M: TableMemory + ?Sized>(&mut self, reservation: &Reservation, memory: &mut M) {
        self.regions.remove(reservation.base);
        if let Backing::Section { section, offset } = reservation.backing {
            section::remove_view(memory, section, self.view_record(reservation.base, offset));
        }
    }

    /// Clears every page table entry in `[start, end)`, giving owned frames back.
    fn clear<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        start: u64,
        end: u64,
        memory: &mut M,
        alloc: &mut A,
    ) -> Result<Flush, SpaceError> {
        let shared = RefCell::new(alloc);
        let mut unlocked = 0;
        let mut table = self.page_table(memory);
        let flush = table.rewrite_range(
            VirtAddr::new(start),
            end - start,
            &mut SharedTables(&shared),
            |_, _, _| Rewrite::Clear,
            |_, old| {
                unlocked += u64::from(!locked_in(old).is_empty());
                release_entry(&mut **shared.borrow_mut(), old);
            },
        )?;
        shared.into_inner().unlock(self.root, unlocked);
        Ok(flush)
    }
}

/// The span of `view` that maps the same section pages as `[start, end)` of the view
/// `reservation` (another view of its section; `None` for any other reservation), and the
/// protection of `view`.
fn twin_span(
    view: &Reservation,
    reservation: &Reservation,
    start: u64,
    end: u64,
) -> Option<(u64, u64, Protection)> {
    let Backing::Section { section, .. } = reservation.backing else { return None };
    let Backing::Section { section: other, offset } = view.backing else { return None };
    if other != section || view.base == reservation.base {
        return None;
    }
    let (first, last) = section_pages(reservation, start, end);
    let (from, to) = (first.max(offset), last.min(offset + view.size / PAGE));
    let at = |index: u64| view.base.as_u64() + (index - offset) * PAGE;
    (from < to).then(|| (at(from), at(to), view.protect))
}

/// The section pages `[first, last)` behind `[start, end)` of the view `reservation`.
fn section_pages(reservation: &Reservation, start: u64, end: u64) -> (u64, u64) {
    let offset = match reservation.backing {
        Backing::Section { offset, .. } => offset,
        Backing::Private => 0,
    };
    let base = reservation.base.as_u64();
    (offset + (start - base) / PAGE, offset + (end - base) / PAGE)
}

/// The lock a present entry holds ([`LOCKED`], or nothing).
fn locked_in(occupant: Occupant) -> PageFlags {
    match occupant {
        Occupant::Page(page) => page.flags.intersection(LOCKED),
        Occupant::Payload(_) => PageFlags::empty(),
    }
}

/// What `protect` becomes on pages of `reservation` (the allocation's caching; an image's
/// writable pages write-copy), or why they cannot take it.
fn protection_in(reservation: &Reservation, protect: Protection) -> Result<Protection, SpaceError> {
    let protect = protect.cached_as(reservation.protect);
    match reservation.kind {
        MemoryType::Private if protect.is_write_copy() => Err(SpaceError::WriteCopyOnPrivate),
        MemoryType::Private => Ok(protect),
        MemoryType::Image => views::fit_view(reservation, protect.copy_on_write()),
        MemoryType::Mapped => views::fit_view(reservation, protect),
    }
}

/// Refuses an operation meant for another type of memory.
fn expect_type(reservation: &Reservation, expected: MemoryType) -> Result<(), SpaceError> {
    if reservation.kind == expected {
        Ok(())
    } else {
        Err(SpaceError::WrongType { expected, found: reservation.kind })
    }
}

/// The table allocator of a frame source that the space also gives frames back to during
/// one call of the engine.
pub(crate) struct SharedTables<'r, 'a, A: FrameSource + ?Sized>(&'r RefCell<&'a mut A>);

impl<A: FrameSource + ?Sized> FrameAllocator for SharedTables<'_, '_, A> {
    fn allocate(&mut self) -> Result<PhysAddr, FrameError> {
        self.0.borrow_mut().tables().allocate()
    }
    fn allocate_contiguous(&mut self, count: usize, align: u64) -> Result<PhysAddr, FrameError> {
        self.0.borrow_mut().tables().allocate_contiguous(count, align)
    }
    fn deallocate(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
        self.0.borrow_mut().tables().deallocate(frame)
    }
    fn deallocate_contiguous(&mut self, start: PhysAddr, count: usize) -> Result<(), FrameError> {
        self.0.borrow_mut().tables().deallocate_contiguous(start, count)
    }
    fn frames_in_use(&self) -> usize {
        self.0.borrow_mut().tables().frames_in_use()
    }
}

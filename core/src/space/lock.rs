//! Pages locked in the working set (Windows `VirtualLock` and `VirtualUnlock`): resident,
//! and never trimmed until unlocked.
//!
//! The lock lives in the page's present entry, as a software bit ([`LOCKED`]), as
//! Windows keeps it in the working-set entry rather than in the address descriptors: the
//! pager reads it beside the Accessed bit and passes locked pages over. Every rewrite of a
//! present entry carries the bit (a protection change, a private copy); an entry cleared
//! (decommit, release, unmap) or hidden (a no-access or guard protection) gives its lock
//! up, and the source hears of it ([`FrameSource::unlock`]).

use crate::addr::{Frame, Page, PhysAddr, Size4KiB, VirtAddr};
use crate::error::Occupant;
use crate::fault::Access;
use crate::flags::PageFlags;
use crate::format::PageTableFormat;
use crate::memory::TableMemory;
use crate::table::{Lookup, NewEntry, Rewrite};
use crate::tlb::Flush;

use super::fault_path::Refused;
use super::regions::Reservation;
use super::source::{FrameSource, PageInError};
use super::{AddressSpace, PAGE, SpaceError};

/// The page-table software bit that marks a page locked in the working set.
pub(crate) const LOCKED: PageFlags = PageFlags::SOFTWARE_1;

/// The software bit that marks a page locked by a call still under way: a call that
/// fails takes back exactly these, and leaves pages locked before it alone.
const LOCKING: PageFlags = PageFlags::SOFTWARE_2;

impl<F: PageTableFormat, const N: usize> AddressSpace<F, N> {
    /// Locks the pages `[addr, addr + size)` touches in the working set (Windows
    /// `VirtualLock`): each is made resident (a first touch, a soft or a hard fault, as an
    /// access would) and no trim takes it until [`unlock`](Self::unlock). Locking a locked
    /// page again is not an error, and one unlock undoes any number of locks. A pager
    /// allows as many locked pages as the working set's minimum; a plain allocator any
    /// number. All or nothing: a refusal leaves no page of the range newly locked (pages
    /// it made resident stay resident, as after a read), with one exception that is
    /// Windows': a guard page in the range fires (its guard is cleared) and the lock fails
    /// with [`SpaceError::GuardPage`]; locking again then succeeds. Apply the returned
    /// flush.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::ZeroSize`], [`SpaceError::NotReserved`],
    /// [`SpaceError::CrossesReservation`], [`SpaceError::OutsideUserSpace`],
    /// [`SpaceError::NotCommitted`], [`SpaceError::Inaccessible`] (a no-access page),
    /// [`SpaceError::GuardPage`], [`SpaceError::WorkingSetQuota`],
    /// [`SpaceError::NotResident`], [`SpaceError::CapacityExhausted`] and
    /// [`SpaceError::Table`].
    pub fn lock<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        addr: VirtAddr,
        size: u64,
        memory: &mut M,
        source: &mut A,
    ) -> Result<Flush, SpaceError> {
        let (start, end, reservation) = self.span_in_reservation(addr, size)?;
        self.expect_committed(start, end)?;
        // The lock touches the pages in order, as reads: the first that refuses ends it.
        let untouchable =
            |r: &&super::regions::Run| r.protect.is_guard() || !r.protect.allows(Access::Read);
        let refusing = self.regions.runs_in(start, end).find(untouchable).copied();
        if let Some(run) = refusing {
            let page = run.start.max(start);
            if run.protect.is_guard() {
                return Err(self.fire_guard(page));
            }
            return Err(SpaceError::Inaccessible { addr: VirtAddr::new(page) });
        }
        let pages = (start..end).step_by(PAGE as usize);
        let new = pages.clone().filter(|&page| !self.is_locked(page, memory)).count() as u64;
        source.lock(self.root, new)?;
        let mut flush = Flush::new();
        for page in pages {
            match self.pin(page, &reservation, memory, source) {
                Ok(pinned) => flush.merge(pinned),
                Err(error) => {
                    // Taking back a software bit the MMU ignores needs no flush.
                    self.settle(start, page, false, memory, source).ignore();
                    source.unlock(self.root, new);
                    flush.ignore();
                    return Err(error);
                }
            }
        }
        flush.merge(self.settle(start, end, true, memory, source));
        Ok(flush)
    }

    /// Unlocks the pages `[addr, addr + size)` touches (Windows `VirtualUnlock`): the
    /// pager may trim them again. Every page must be locked. Windows, finding one that is
    /// not, still takes the others out of the working set; this space changes nothing
    /// (trim them with the pager if that is what is wanted).
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::ZeroSize`], [`SpaceError::NotReserved`],
    /// [`SpaceError::CrossesReservation`], [`SpaceError::OutsideUserSpace`],
    /// [`SpaceError::NotLocked`] (Windows `ERROR_NOT_LOCKED`, 158) and
    /// [`SpaceError::Table`].
    pub fn unlock<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        addr: VirtAddr,
        size: u64,
        memory: &mut M,
        source: &mut A,
    ) -> Result<Flush, SpaceError> {
        let (start, end, _) = self.span_in_reservation(addr, size)?;
        let mut pages = (start..end).step_by(PAGE as usize);
        if let Some(page) = pages.find(|&page| !self.is_locked(page, memory)) {
            return Err(SpaceError::NotLocked { addr: VirtAddr::new(page) });
        }
        let mut table = self.page_table(memory);
        let flush = table.rewrite_range(
            VirtAddr::new(start),
            end - start,
            source.tables(),
            |_, _, occupant| match occupant {
                Occupant::Page(page) => {
                    Rewrite::Page { frame: page.frame, flags: page.flags.difference(LOCKED) }
                }
                Occupant::Payload(_) => Rewrite::Keep,
            },
            |_, _| {},
        )?;
        source.unlock(self.root, (end - start) / PAGE);
        Ok(flush)
    }

    /// The guard of `page` fires, as the lock's touch of the page would make it: the guard
    /// is cleared and the lock fails with the guard-page violation (Windows: the first
    /// `VirtualLock` of a guard page fails with `STATUS_GUARD_PAGE_VIOLATION`, the next
    /// one succeeds).
    fn fire_guard(&mut self, page: u64) -> SpaceError {
        match self.clear_guard(page) {
            Ok(()) => SpaceError::GuardPage { addr: VirtAddr::new(page) },
            Err(error) => error,
        }
    }

    /// Whether `page` is resident and locked.
    pub(crate) fn is_locked<M: TableMemory>(&self, page: u64, memory: &mut M) -> bool {
        let table = self.page_table(memory);
        matches!(table.lookup(VirtAddr::new(page)), Ok(Lookup::Mapped(t)) if t.flags.contains(LOCKED))
    }

    /// Makes the committed, accessible `page` resident and marks it locked by this call
    /// (unless it was locked already).
    fn pin<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        page: u64,
        reservation: &Reservation,
        memory: &mut M,
        source: &mut A,
    ) -> Result<Flush, SpaceError> {
        let addr = VirtAddr::new(page);
        let mut flush = Flush::new();
        if self.present(page, memory).is_none() {
            let run = self.regions.run(page).ok_or(SpaceError::NotCommitted { addr })?;
            flush = match self.materialise(page, reservation, &run, false, memory, source) {
                Ok(flush) => flush,
                Err(Refused::InPage) => {
                    return Err(SpaceError::NotResident { addr, error: PageInError::Store });
                }
                Err(Refused::Pass) => {
                    return Err(SpaceError::NotResident { addr, error: PageInError::NoFrame });
                }
            };
        }
        let Some((frame, flags)) = self.present(page, memory) else {
            return Err(SpaceError::NotResident { addr, error: PageInError::NoFrame });
        };
        if flags.contains(LOCKED) {
            return Ok(flush);
        }
        let new = NewEntry::Page {
            frame: Frame::<Size4KiB>::containing(frame),
            flags: flags | LOCKED | LOCKING,
        };
        let mut table = self.page_table(memory);
        let (_, marked) =
            table.set_entry(Page::<Size4KiB>::containing(addr), new, source.tables())?;
        // `settle` rewrites every page this call marked and reports those pages: adding
        // them here too would fill the flush twice over.
        marked.ignore();
        Ok(flush)
    }

    /// The frame and flags of `page` if it is present.
    fn present<M: TableMemory>(&self, page: u64, memory: &mut M) -> Option<(PhysAddr, PageFlags)> {
        match self.page_table(memory).lookup(VirtAddr::new(page)) {
            Ok(Lookup::Mapped(t)) => Some((t.frame, t.flags)),
            _ => None,
        }
    }

    /// Ends a lock call over `[start, end)`: the pages it locked keep [`LOCKED`]
    /// (`keep`), or lose it (the call failed).
    fn settle<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        start: u64,
        end: u64,
        keep: bool,
        memory: &mut M,
        source: &mut A,
    ) -> Flush {
        if start == end {
            return Flush::new();
        }
        let taken = if keep { LOCKING } else { LOCKING | LOCKED };
        let mut table = self.page_table(memory);
        // Only software bits change: no table is split or created, so this cannot fail
        // but on a corrupt table, which then keeps the marks.
        table
            .rewrite_range(
                VirtAddr::new(start),
                end - start,
                source.tables(),
                |_, _, occupant| match occupant {
                    Occupant::Page(page) if page.flags.contains(LOCKING) => {
                        Rewrite::Page { frame: page.frame, flags: page.flags.difference(taken) }
                    }
                    _ => Rewrite::Keep,
                },
                |_, _| {},
            )
            .unwrap_or_default()
    }
}

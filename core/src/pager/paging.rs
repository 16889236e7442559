//! The pager as a space sees it: a [`FrameSource`] whose frames can be taken away and
//! brought back, and the pager's own operations on working sets.

use crate::addr::PhysAddr;
use crate::error::FrameError;
use crate::format::PageTableFormat;
use crate::frame::FrameAllocator;
use crate::memory::TableMemory;
use crate::software_pte::SoftwarePte;
use crate::space::{FaultKind, FrameSource, PageInError, SpaceError};
use crate::tlb::Tlb;

use super::bits::{PteBits, Scope};
use super::database::{FrameList, Owner};
use super::manager::Pager;
use super::policy::{FrameIndex, PageBits, ReplacementPolicy};
use super::store::BackingStore;

/// A pager with the kernel's page-table allocator and the TLB, for one stretch of work:
/// what a space takes its frames from (see [`Pager::with`]).
pub struct Paging<'h, 's, F: PageTableFormat, S: BackingStore, P: ReplacementPolicy> {
    /// The pager.
    pub pager: &'h mut Pager<'s, F, S, P>,
    /// Where page tables come from.
    pub tables: &'h mut dyn FrameAllocator,
    /// Where the pager invalidates the entries it rewrites.
    pub tlb: &'h mut dyn Tlb,
}

impl<F: PageTableFormat, S: BackingStore, P: ReplacementPolicy> core::fmt::Debug
    for Paging<'_, '_, F, S, P>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Paging").field("pager", &self.pager).finish_non_exhaustive()
    }
}

impl<F: PageTableFormat, S: BackingStore, P: ReplacementPolicy> Paging<'_, '_, F, S, P> {
    /// Takes up to `pages` pages out of the working set of the space at `root` (the
    /// policy chooses which); returns how many left.
    pub fn trim<M: TableMemory + ?Sized>(
        &mut self,
        root: PhysAddr,
        pages: usize,
        memory: &mut M,
    ) -> usize {
        let mut trimmed = 0;
        while trimmed < pages && self.pager.trim_one(memory, self.tlb, Scope::Space(root)) {
            trimmed += 1;
        }
        trimmed
    }

    /// Takes every page out of the working set of the space at `root` (Windows
    /// `EmptyWorkingSet`); returns how many left.
    pub fn empty_working_set<M: TableMemory + ?Sized>(
        &mut self,
        root: PhysAddr,
        memory: &mut M,
    ) -> usize {
        let pages = self.pager.sets.get(root).map_or(0, |s| s.size() as usize);
        self.trim(root, pages, memory)
    }

    /// Trims working sets above their minimums until `available` frames are free, zeroed
    /// or on standby (the balance set manager's work), writing modified pages out as they
    /// come; returns how many pages left working sets.
    pub fn trim_until_available<M: TableMemory + ?Sized>(
        &mut self,
        available: u64,
        memory: &mut M,
    ) -> usize {
        let mut trimmed = 0;
        while self.pager.performance().physical_available < available {
            // Dirty pages already trimmed count once written: write before trimming more.
            let modified = self.pager.frames.count(FrameList::Modified) > 0;
            if modified && self.pager.write_modified(memory) > 0 {
                continue;
            }
            if !self.pager.trim_one(memory, self.tlb, Scope::Global) {
                break;
            }
            trimmed += 1;
        }
        trimmed
    }

    /// Writes every modified page to the store (the modified-page writer, run to the
    /// end); returns how many went to standby. Pages the store refuses stay modified.
    pub fn write_modified<M: TableMemory + ?Sized>(&mut self, memory: &mut M) -> usize {
        let mut written = 0;
        loop {
            let now = self.pager.write_modified(memory);
            if now == 0 {
                return written;
            }
            written += now;
        }
    }

    /// The working-set manager's aging pass: the policy's tick (Aging shifts its
    /// counters), then every Accessed bit of a resident page cleared (and its TLB entry
    /// invalidated), so that the next trim sees which pages were touched since. Returns how
    /// many bits were set.
    pub fn age<M: TableMemory + ?Sized>(&mut self, memory: &mut M) -> usize {
        let pager = &mut *self.pager;
        let mut bits =
            PteBits::<F, M>::new(&pager.frames, &pager.sets, memory, self.tlb, Scope::Global);
        // Counted before the tick: Aging takes the bits in it.
        let set =
            pager.frames.iter(FrameList::Active).filter(|&index| bits.accessed(index)).count();
        pager.policy.tick(&mut bits);
        for index in pager.frames.iter(FrameList::Active) {
            bits.take_accessed(index);
        }
        set
    }

    /// A reference to the page in `frame` (for a policy that wants every reference, exact
    /// LRU: the simulator reports them). Frames the pager does not manage are ignored.
    pub fn reference(&mut self, frame: PhysAddr) {
        self.pager.reference(frame);
    }

    /// Makes the frame `index` the active frame of `owner`'s page in its working set.
    fn activate(&mut self, index: FrameIndex, owner: Owner) -> Result<(), FrameError> {
        let pager = &mut *self.pager;
        pager.policy.insert(index, pager.clock).map_err(|_| FrameError::Exhausted)?;
        if let Some(record) = pager.frames.record_mut(index) {
            record.owner = owner;
        }
        pager.frames.move_to(index, FrameList::Active);
        if let Owner::Private { root, .. } = owner
            && let Some(set) = pager.sets.get_mut(root)
        {
            set.grow();
        }
        Ok(())
    }

    /// Takes the active frame `index` out of its owner's working set (the policy forgets
    /// it); the caller says which list it goes to.
    fn deactivate(&mut self, index: FrameIndex) {
        let pager = &mut *self.pager;
        let _ = pager.policy.remove(index);
        if let Some(Owner::Private { root, .. }) = pager.frames.record(index).map(|r| r.owner)
            && let Some(set) = pager.sets.get_mut(root)
        {
            set.shrink();
        }
    }

    /// Makes room in the working set of the space at `root` for one more page when it is
    /// at its maximum (the space replaces one of its own pages).
    fn make_room<M: TableMemory + ?Sized>(&mut self, root: PhysAddr, memory: &mut M) {
        if self.pager.sets.get(root).is_some_and(|s| s.at_maximum()) {
            self.pager.trim_one(memory, self.tlb, Scope::Space(root));
        }
    }

    /// The frame `pte` (a transition entry) names, if it holds `owner`'s page on the
    /// standby or modified list.
    fn in_transition(&self, frame: PhysAddr, owner: Owner) -> Option<FrameIndex> {
        let index = self.pager.frames.index_of(frame)?;
        let record = self.pager.frames.record(index)?;
        let waiting = matches!(record.list(), FrameList::Standby | FrameList::Modified);
        (waiting && record.owner == owner).then_some(index)
    }

    /// Reads `slot` into a fresh frame for `owner`'s page.
    fn read_in<M: TableMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        slot: super::Slot,
        owner: Owner,
    ) -> Result<PhysAddr, PageInError> {
        let index = self.pager.obtain(memory, self.tlb, false).map_err(|_| PageInError::NoFrame)?;
        let pager = &mut *self.pager;
        let frame = pager.address(index);
        let buffer = &mut pager.cluster[0];
        if pager.store.read(slot, buffer).is_err() {
            // The frame stays free; the page stays in its slot.
            pager.counters.read_errors += 1;
            return Err(PageInError::Store);
        }
        memory.write_frame(frame, buffer);
        pager.counters.pages_read += 1;
        self.activate(index, owner).map_err(|_| PageInError::NoFrame)?;
        // The entry's reference to the slot is the record's now: a clean page keeps it.
        if let Some(record) = self.pager.frames.record_mut(index) {
            record.slot = Some(slot);
        }
        Ok(frame)
    }
}

impl<'h, F: PageTableFormat, S: BackingStore, P: ReplacementPolicy> FrameSource
    for Paging<'h, '_, F, S, P>
{
    type Tables = dyn FrameAllocator + 'h;

    fn tables(&mut self) -> &mut Self::Tables {
        &mut *self.tables
    }

    fn take<M: TableMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        owner: Owner,
        zeroed: bool,
    ) -> Result<PhysAddr, FrameError> {
        match owner {
            Owner::Private { root, .. } if self.pager.sets.get(root).is_some() => {
                self.make_room(root, memory);
            }
            Owner::Section { .. } => {}
            _ => return Err(FrameError::Exhausted),
        }
        let index = self.pager.obtain(memory, self.tlb, zeroed)?;
        self.activate(index, owner)?;
        if let Some(record) = self.pager.frames.record_mut(index) {
            record.all_zero = zeroed;
            record.reset = false;
        }
        Ok(self.pager.address(index))
    }

    fn give_back(&mut self, frame: PhysAddr) {
        let Some(index) = self.pager.frames.index_of(frame) else { return };
        if self.pager.frames.record(index).is_some_and(|r| r.list() == FrameList::Active) {
            self.deactivate(index);
        }
        self.pager.release_frame(index);
    }

    fn dirtied(&mut self, frame: PhysAddr) {
        if let Some(index) = self.pager.frames.index_of(frame) {
            self.pager.forget_slot(index);
        }
    }

    fn reset(&mut self, frame: PhysAddr) {
        let Some(index) = self.pager.frames.index_of(frame) else { return };
        // Its copy in the store is not needed; without one, it leaves memory unwritten and
        // comes back as zeros once its frame is reused (as a page of zeros does).
        self.pager.forget_slot(index);
        let Some(record) = self.pager.frames.record_mut(index) else { return };
        record.all_zero = true;
        record.reset = true;
        if record.list() == FrameList::Modified {
            self.pager.frames.move_to(index, FrameList::Standby);
        }
    }

    fn undo_reset(&mut self, frame: PhysAddr) {
        let Some(index) = self.pager.frames.index_of(frame) else { return };
        let Some(record) = self.pager.frames.record_mut(index) else { return };
        if !record.reset {
            return;
        }
        // Its contents are kept from now on: written to the store before the frame is
        // reused, as a written page is.
        record.reset = false;
        record.all_zero = false;
        if record.list() == FrameList::Standby {
            self.pager.frames.move_to(index, FrameList::Modified);
        }
    }

    fn drop_paged(&mut self, pte: SoftwarePte) {
        match pte {
            SoftwarePte::Transition { frame, .. } => {
                if let Some(index) = self.pager.frames.index_of(frame) {
                    self.pager.release_frame(index);
                }
            }
            SoftwarePte::PagingFile { slot } => {
                let _ = self.pager.slots.release(slot);
            }
            _ => {}
        }
    }

    fn bring_back<M: TableMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        pte: SoftwarePte,
        owner: Owner,
    ) -> Result<PhysAddr, PageInError> {
        let root = match owner {
            Owner::Private { root, .. } if self.pager.sets.get(root).is_some() => Some(root),
            Owner::Section { .. } => None,
            _ => return Err(PageInError::Unknown),
        };
        match pte {
            SoftwarePte::Transition { frame, .. } => {
                let index = self.in_transition(frame, owner).ok_or(PageInError::Unknown)?;
                if let Some(root) = root {
                    self.make_room(root, memory);
                }
                self.activate(index, owner).map_err(|_| PageInError::NoFrame)?;
                Ok(frame)
            }
            SoftwarePte::PagingFile { slot } => {
                if self.pager.slots.references(slot).is_err() {
                    return Err(PageInError::Unknown);
                }
                if let Some(root) = root {
                    self.make_room(root, memory);
                }
                self.read_in(memory, slot, owner)
            }
            _ => Err(PageInError::Unknown),
        }
    }

    fn put_back(&mut self, frame: PhysAddr, pte: SoftwarePte) {
        let Some(index) = self.pager.frames.index_of(frame) else { return };
        self.deactivate(index);
        match pte {
            SoftwarePte::PagingFile { .. } => {
                // The slot's reference goes back to the entry, which still names it.
                if let Some(record) = self.pager.frames.record_mut(index) {
                    record.slot = None;
                }
                self.pager.release_frame(index);
            }
            _ => {
                let record = self.pager.frames.record(index);
                let clean = record.is_some_and(|r| r.slot.is_some() || r.all_zero);
                let list = if clean { FrameList::Standby } else { FrameList::Modified };
                self.pager.frames.move_to(index, list);
            }
        }
    }

    fn charge(&mut self, space: PhysAddr, pages: u64) -> Result<(), SpaceError> {
        let pager = &mut *self.pager;
        let available = pager.commit_limit().saturating_sub(pager.commit_total);
        if pages > available {
            return Err(SpaceError::CommitLimit { requested: pages, available });
        }
        pager.commit_total += pages;
        pager.commit_peak = pager.commit_peak.max(pager.commit_total);
        if let Some(set) = pager.sets.get_mut(space) {
            let c = &mut set.counters;
            c.pagefile_usage += pages;
            c.peak_pagefile_usage = c.peak_pagefile_usage.max(c.pagefile_usage);
        }
        Ok(())
    }

    fn uncharge(&mut self, space: PhysAddr, pages: u64) {
        let pager = &mut *self.pager;
        pager.commit_total = pager.commit_total.saturating_sub(pages);
        if let Some(set) = pager.sets.get_mut(space) {
            set.counters.pagefile_usage = set.counters.pagefile_usage.saturating_sub(pages);
        }
    }

    fn lock(&mut self, space: PhysAddr, pages: u64) -> Result<(), SpaceError> {
        let set = self.pager.sets.get_mut(space);
        // A space the pager does not serve has no working set to lock pages in.
        let available = set.as_ref().map_or(0, |s| u64::from(s.minimum).saturating_sub(s.locked));
        match set {
            Some(set) if pages <= available => {
                set.locked += pages;
                Ok(())
            }
            _ => Err(SpaceError::WorkingSetQuota { requested: pages, available }),
        }
    }

    fn unlock(&mut self, space: PhysAddr, pages: u64) {
        if let Some(set) = self.pager.sets.get_mut(space) {
            set.locked = set.locked.saturating_sub(pages);
        }
    }

    fn resolved(&mut self, owner: Owner, kind: FaultKind) {
        let pager = &mut *self.pager;
        pager.clock += 1;
        let counters = &mut pager.counters;
        match kind {
            FaultKind::DemandZero => counters.demand_zero_faults += 1,
            FaultKind::CopyOnWrite => counters.copy_on_write_faults += 1,
            FaultKind::Transition => counters.soft_faults += 1,
            FaultKind::PageRead => counters.hard_faults += 1,
            FaultKind::Mapped => {}
        }
        if let Owner::Private { root, .. } = owner
            && let Some(set) = pager.sets.get_mut(root)
        {
            set.counters.page_fault_count += 1;
        }
    }
}

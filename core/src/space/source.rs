//! Where a space's frames come from: a plain frame allocator, or a pager that can take
//! them away again.
//!
//! Every operation of an [`AddressSpace`](super::AddressSpace) that takes or gives back
//! frames takes a [`FrameSource`]. Any [`FrameAllocator`] is one (tables and data frames
//! from the same allocator, nothing ever paged out); a pager's
//! [`Paging`](crate::pager::Paging) handle is another (tables from the kernel's allocator,
//! data frames from the pager's working sets, pages that come back from standby or from the
//! backing store).

use crate::addr::PhysAddr;
use crate::error::FrameError;
use crate::frame::FrameAllocator;
use crate::memory::TableMemory;
use crate::pager::Owner;
use crate::software_pte::SoftwarePte;

/// Why a page could not be brought back into memory.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PageInError {
    /// The backing store failed to read the page (Windows `STATUS_IN_PAGE_ERROR`): the
    /// page stays where it was.
    Store,
    /// No frame could be freed for it.
    NoFrame,
    /// The entry names a frame or slot the source does not hold for this page (a corrupt
    /// entry, or a space moved between sources).
    Unknown,
}

/// How a fault was resolved, in the memory manager's own terms.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FaultKind {
    /// A committed page's first touch: a zeroed frame.
    DemandZero,
    /// A write to a write-copy page: a private copy.
    CopyOnWrite,
    /// A page taken back from the standby or modified list: a soft fault, no I/O.
    Transition,
    /// A page read back from the backing store: a hard fault.
    PageRead,
    /// A frame the page already had (a section's frame, a page a protection hid).
    Mapped,
}

/// The frames of an address space: page-table frames, and data frames that a pager may
/// take away (into a transition or paging-file entry) and bring back.
pub trait FrameSource {
    /// The allocator of page-table frames.
    type Tables: FrameAllocator + ?Sized;

    /// The allocator of page-table frames.
    fn tables(&mut self) -> &mut Self::Tables;

    /// A frame for a page of `owner` that has none yet, zeroed if `zeroed` (a private
    /// copy's frame is overwritten whole). The frame joins the owner's working set.
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::Exhausted`] when no frame is free and none can be freed.
    fn take<M: TableMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        owner: Owner,
        zeroed: bool,
    ) -> Result<PhysAddr, FrameError>;

    /// A frame that [`take`](Self::take) gave is no longer mapped: its page is gone.
    fn give_back(&mut self, frame: PhysAddr);

    /// A frame the space owns was written while mapped (its PTE's Dirty bit is about to
    /// be lost to a rewrite): any copy of the page in the store is stale.
    fn dirtied(&mut self, frame: PhysAddr) {
        let _ = frame;
    }

    /// The page in `frame` (one [`take`](Self::take) gave, resident or in transition) may
    /// lose its contents (`MEM_RESET`): it need not be written to the store, and may come
    /// back as zeros once its frame is reused. Its Dirty bit is already cleared.
    fn reset(&mut self, frame: PhysAddr) {
        let _ = frame;
    }

    /// The page in `frame` (resident or in transition) is to keep its contents again
    /// (`MEM_RESET_UNDO`): if [`reset`](Self::reset) was its last news, it is an ordinary
    /// page again, written to the store before its frame is reused. Else nothing changes.
    fn undo_reset(&mut self, frame: PhysAddr) {
        let _ = frame;
    }

    /// An entry holding `pte` (a transition or paging-file entry the source wrote) was
    /// cleared: the page is gone, and its frame or slot is free.
    fn drop_paged(&mut self, pte: SoftwarePte) {
        let _ = pte;
    }

    /// Brings the page of `owner` that `pte` (transition or paging-file) describes back
    /// into a frame: from the standby or modified list (a soft fault), or read from the
    /// store (a hard fault). The frame joins the owner's working set.
    ///
    /// # Errors
    ///
    /// Returns a [`PageInError`]; the page then stays where it was.
    fn bring_back<M: TableMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        pte: SoftwarePte,
        owner: Owner,
    ) -> Result<PhysAddr, PageInError> {
        let _ = (memory, pte, owner);
        Err(PageInError::Unknown)
    }

    /// Charges `pages` newly committed pages of the space whose root is `space` against
    /// the commit limit. A plain allocator has no limit.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::CommitLimit`](super::SpaceError::CommitLimit) when the charge
    /// does not fit; nothing is charged then.
    fn charge(&mut self, space: PhysAddr, pages: u64) -> Result<(), super::SpaceError> {
        let _ = (space, pages);
        Ok(())
    }

    /// Gives back the charge of `pages` pages that stopped being committed.
    fn uncharge(&mut self, space: PhysAddr, pages: u64) {
        let _ = (space, pages);
    }

    /// `pages` more pages of the space whose root is `space` are to be locked in its
    /// working set (Windows `VirtualLock`). A pager allows as many locked pages as the
    /// working set's minimum; a plain allocator pages nothing out, and allows any number.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::WorkingSetQuota`](super::SpaceError::WorkingSetQuota) when they
    /// do not fit; nothing is counted then.
    fn lock(&mut self, space: PhysAddr, pages: u64) -> Result<(), super::SpaceError> {
        let _ = (space, pages);
        Ok(())
    }

    /// `pages` locked pages of the space whose root is `space` were unlocked (unlocked,
    /// decommitted, released, or hidden by a no-access protection).
    fn unlock(&mut self, space: PhysAddr, pages: u64) {
        let _ = (space, pages);
    }

    /// A fault on the page of `owner` was resolved, in the way `kind` says (for the
    /// counters: only faults that ended well are counted).
    fn resolved(&mut self, owner: Owner, kind: FaultKind) {
        let _ = (owner, kind);
    }

    /// Undoes [`bring_back`](Self::bring_back) when the entry could not be written after
    /// all: the frame goes back to where `pte` says the page was.
    fn put_back(&mut self, frame: PhysAddr, pte: SoftwarePte) {
        let _ = (frame, pte);
    }
}

/// A plain allocator: tables and data frames from the same place, nothing ever paged out.
impl<A: FrameAllocator + ?Sized> FrameSource for A {
    type Tables = A;

    fn tables(&mut self) -> &mut A {
        self
    }

    fn take<M: TableMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        _owner: Owner,
        zeroed: bool,
    ) -> Result<PhysAddr, FrameError> {
        let frame = self.allocate()?;
        if zeroed {
            memory.zero_frame(frame);
        }
        Ok(frame)
    }

    fn give_back(&mut self, frame: PhysAddr) {
        // The frame came from this allocator; a refusal would mean it did not, and then
        // there is nothing to give back.
        let _ = self.deallocate(frame);
    }
}

//! The Accessed and Dirty bits a policy reads, from the PTEs of the pages it weighs.

use core::cell::RefCell;
use core::marker::PhantomData;

use crate::addr::PhysAddr;
use crate::flags::PageFlags;
use crate::format::PageTableFormat;
use crate::memory::TableMemory;
use crate::tlb::Tlb;

use super::database::{FrameDatabase, FrameList, Owner};
use super::policy::{FrameIndex, PageBits};
use super::pte::{self, NewPte, PteState};
use super::working_set::WorkingSets;

/// Which working sets a trim may take pages from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Scope {
    /// Any space above its minimum (memory is short).
    Global,
    /// Only the space at this root (it is at its maximum, or asked to shrink).
    Space(PhysAddr),
}

/// The bits of the pages in the pager's frames, read from (and cleared in) their PTEs.
pub(super) struct PteBits<'a, 's, F, M: ?Sized> {
    frames: &'a FrameDatabase<'s>,
    sets: &'a WorkingSets,
    memory: RefCell<&'a mut M>,
    tlb: &'a mut dyn Tlb,
    scope: Scope,
    format: PhantomData<F>,
}

impl<'a, 's, F: PageTableFormat, M: TableMemory + ?Sized> PteBits<'a, 's, F, M> {
    pub(super) fn new(
        frames: &'a FrameDatabase<'s>,
        sets: &'a WorkingSets,
        memory: &'a mut M,
        tlb: &'a mut dyn Tlb,
        scope: Scope,
    ) -> Self {
        Self { frames, sets, memory: RefCell::new(memory), tlb, scope, format: PhantomData }
    }

    /// The owner of the active private page in `frame`, if it is one.
    fn owner(&self, frame: FrameIndex) -> Option<(PhysAddr, crate::addr::VirtAddr)> {
        let record = self.frames.record(frame)?;
        match (record.list(), record.owner) {
            (FrameList::Active, Owner::Private { root, page }) => Some((root, page)),
            _ => None,
        }
    }

    /// The flags of the present PTE that maps `frame`'s page.
    fn flags(&self, frame: FrameIndex) -> Option<PageFlags> {
        let (root, page) = self.owner(frame)?;
        let address = self.frames.address(frame)?;
        let mut memory = self.memory.borrow_mut();
        match pte::read::<F, M>(&mut **memory, root, page) {
            PteState::Present { frame: held, flags } if held == address => Some(flags),
            _ => None,
        }
    }
}

impl<F: PageTableFormat, M: TableMemory + ?Sized> PageBits for PteBits<'_, '_, F, M> {
    fn accessed(&self, frame: FrameIndex) -> bool {
        self.flags(frame).is_some_and(|f| f.contains(PageFlags::ACCESSED))
    }

    fn take_accessed(&mut self, frame: FrameIndex) -> bool {
        let Some(flags) = self.flags(frame).filter(|f| f.contains(PageFlags::ACCESSED)) else {
            return false;
        };
        let (Some((root, page)), Some(address)) = (self.owner(frame), self.frames.address(frame))
        else {
            return false;
        };
        let new = NewPte::Page { frame: address, flags: flags.difference(PageFlags::ACCESSED) };
        let written = pte::write::<F, M>(&mut **self.memory.get_mut(), root, page, new);
        if written.is_ok()
            && let Some(set) = self.sets.get(root)
        {
            // A cached entry would never set the bit again (Intel SDM 4.8).
            self.tlb.invalidate_page_in(set.asid, page);
        }
        true
    }

    fn dirty(&self, frame: FrameIndex) -> bool {
        let no_copy = self.frames.record(frame).is_some_and(|r| r.slot.is_none());
        no_copy || self.flags(frame).is_some_and(|f| f.contains(PageFlags::DIRTY))
    }

    fn evictable(&self, frame: FrameIndex) -> bool {
        let Some((root, _)) = self.owner(frame) else { return false };
        match self.scope {
            Scope::Global => self.sets.get(root).is_some_and(|s| s.above_minimum()),
            Scope::Space(only) => only == root,
        }
    }
}

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

    /// The owner of the active page in `frame`, and its address.
    fn active(&self, frame: FrameIndex) -> Option<(Owner, PhysAddr)> {
        let record = self.frames.record(frame)?;
        let address = self.frames.address(frame)?;
        (record.list() == FrameList::Active && record.owner != Owner::None)
            .then_some((record.owner, address))
    }

    /// The union of the flags of every present PTE that maps `frame`'s page (one for a
    /// private page, one per view that maps a section page).
    fn flags(&self, frame: FrameIndex) -> PageFlags {
        let Some((owner, address)) = self.active(frame) else { return PageFlags::empty() };
        let mut memory = self.memory.borrow_mut();
        let mut union = PageFlags::empty();
        for slot in 0..pte::mapping_slots(owner) {
            let Some(at) = pte::mapping(&**memory, self.sets, owner, slot) else { continue };
            if let PteState::Present { frame: held, flags } =
                pte::read::<F, M>(&mut **memory, at.root, at.page)
                && held == address
            {
                union |= flags;
            }
        }
        union
    }
}

impl<F: PageTableFormat, M: TableMemory + ?Sized> PageBits for PteBits<'_, '_, F, M> {
    fn accessed(&self, frame: FrameIndex) -> bool {
        self.flags(frame).contains(PageFlags::ACCESSED)
    }

    fn take_accessed(&mut self, frame: FrameIndex) -> bool {
        let Some((owner, address)) = self.active(frame) else { return false };
        let memory = self.memory.get_mut();
        let mut accessed = false;
        for slot in 0..pte::mapping_slots(owner) {
            let Some(at) = pte::mapping(&**memory, self.sets, owner, slot) else { continue };
            let PteState::Present { frame: held, flags } =
                pte::read::<F, M>(&mut **memory, at.root, at.page)
            else {
                continue;
            };
            if held != address || !flags.contains(PageFlags::ACCESSED) {
                continue;
            }
            accessed = true;
            let new = NewPte::Page { frame: address, flags: flags.difference(PageFlags::ACCESSED) };
            if pte::write::<F, M>(&mut **memory, at.root, at.page, new).is_ok() {
                // A cached entry would never set the bit again (Intel SDM 4.8).
                self.tlb.invalidate_page_in(at.asid, at.page);
            }
        }
        accessed
    }

    fn dirty(&self, frame: FrameIndex) -> bool {
        let no_copy = self.frames.record(frame).is_some_and(|r| r.slot.is_none());
        no_copy || self.flags(frame).contains(PageFlags::DIRTY)
    }

    fn evictable(&self, frame: FrameIndex) -> bool {
        let allowed = match (self.active(frame).map(|(owner, _)| owner), self.scope) {
            (Some(Owner::Private { root, .. }), Scope::Global) => {
                self.sets.get(root).is_some_and(|s| s.above_minimum())
            }
            (Some(Owner::Private { root, .. }), Scope::Space(only)) => only == root,
            // Shared pages belong to no one working set: only a global trim takes them.
            (Some(Owner::Section { .. }), Scope::Global) => true,
            _ => false,
        };
        // A page locked in the working set (through any view) stays.
        allowed && !self.flags(frame).contains(crate::space::LOCKED)
    }
}

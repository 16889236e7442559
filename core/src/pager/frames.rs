//! Finding a frame for a page: from the zeroed or free list, by repurposing the oldest
//! standby frame, by writing modified pages out, or by trimming a working set.

use crate::addr::PhysAddr;
use crate::error::FrameError;
use crate::flags::PageFlags;
use crate::format::PageTableFormat;
use crate::memory::TableMemory;
use crate::software_pte::SoftwarePte;
use crate::space::Prototype;
use crate::space::section;
use crate::tlb::Tlb;

use super::bits::{PteBits, Scope};
use super::database::{FrameList, Owner};
use super::manager::Pager;
use super::policy::{FrameIndex, ReplacementPolicy};
use super::pte::{self, NewPte, PteState};
use super::store::BackingStore;

impl<F: PageTableFormat, S: BackingStore, P: ReplacementPolicy> Pager<'_, F, S, P> {
    /// A frame for a new page of `owner`, zeroed if asked, on no list yet (the caller
    /// makes it active). Frees one if none is free: repurposes standby, writes modified
    /// pages out, trims working sets. Fails only when every frame is in a working set at
    /// its minimum, or dirty with the store refusing writes.
    pub(super) fn obtain<M: TableMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        tlb: &mut dyn Tlb,
        zeroed: bool,
    ) -> Result<FrameIndex, FrameError> {
        // Each round frees at most one frame or moves pages one list on: bounded.
        for _ in 0..self.frames.frames() * 3 + 3 {
            if let Some(index) = self.frames.oldest(FrameList::Zeroed) {
                return Ok(index);
            }
            if let Some(index) = self.frames.oldest(FrameList::Free) {
                if zeroed {
                    memory.zero_frame(self.address(index));
                }
                return Ok(index);
            }
            if let Some(index) = self.frames.oldest(FrameList::Standby)
                && self.repurpose(index, memory)
            {
                if zeroed {
                    memory.zero_frame(self.address(index));
                }
                return Ok(index);
            }
            if self.frames.count(FrameList::Modified) > 0 && self.write_modified(memory) > 0 {
                continue;
            }
            if !self.trim_one(memory, tlb, Scope::Global) {
                break;
            }
        }
        Err(FrameError::Exhausted)
    }

    /// Gives the standby frame `index` to a new page: its old page lives on only in its
    /// slot, so the old owner's transition entry (a private page's PTE, or a section
    /// page's prototype) becomes a paging-file entry. The frame is left free. `false`
    /// (nothing changed) if the entry is not what the record says.
    fn repurpose<M: TableMemory + ?Sized>(&mut self, index: FrameIndex, memory: &mut M) -> bool {
        let frame = self.address(index);
        let Some(record) = self.frames.record(index).copied() else { return false };
        // A page of zeros leaves nothing behind: it is demand-zero again.
        // A page reset and not written since is discarded: its entry says so.
        let (entry, prototype) = match (record.slot, record.all_zero, record.reset) {
            (Some(slot), ..) => {
                (NewPte::Software(SoftwarePte::PagingFile { slot }), Prototype::PagingFile(slot))
            }
            (None, true, false) => (NewPte::Software(SoftwarePte::DemandZero), Prototype::Zero),
            (None, true, true) => (NewPte::Discarded, Prototype::Zero),
            (None, false, _) => return false,
        };
        match record.owner {
            Owner::Private { root, page } => {
                match pte::read::<F, M>(memory, root, page) {
                    PteState::Paged(SoftwarePte::Transition { frame: held, .. })
                        if held == frame => {}
                    _ => return false,
                }
                if pte::write::<F, M>(memory, root, page, entry).is_err() {
                    return false;
                }
            }
            Owner::Section { section: header, index: page } => {
                if section::prototype(memory, header, page) != Prototype::Transition(frame) {
                    return false;
                }
                section::set_prototype(memory, header, page, prototype);
            }
            Owner::None => return false,
        }
        // The slot's reference is the entry's now.
        if let Some(record) = self.frames.record_mut(index) {
            record.slot = None;
        }
        self.release_frame(index);
        self.counters.pages_repurposed += 1;
        true
    }

    /// Trims one page chosen by the policy from the working sets `scope` allows. Returns
    /// whether a page left.
    pub(super) fn trim_one<M: TableMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        tlb: &mut dyn Tlb,
        scope: Scope,
    ) -> bool {
        let now = self.clock;
        let victim = {
            let mut bits = PteBits::<F, M>::new(&self.frames, &self.sets, memory, tlb, scope);
            self.policy.victim(&mut bits, now)
        };
        let Some(index) = victim else { return false };
        if self.evict(index, memory, tlb) {
            return true;
        }
        // The page could not be taken away after all: it stays, and the policy keeps it.
        let _ = self.policy.insert(index, now);
        false
    }

    /// Takes the page in the active frame `index` out of memory: every PTE that maps it
    /// becomes a transition entry (a private page) or points back at its prototype (a
    /// section page, whose prototype becomes the transition entry), and the frame goes to
    /// the standby list if the store holds a good copy, to the modified list if not. The
    /// policy has already let it go.
    pub(super) fn evict<M: TableMemory + ?Sized>(
        &mut self,
        index: FrameIndex,
        memory: &mut M,
        tlb: &mut dyn Tlb,
    ) -> bool {
        let frame = self.address(index);
        let Some(record) = self.frames.record(index).copied() else { return false };
        let Some((unmapped, written)) = self.unmap_everywhere(record.owner, frame, memory, tlb)
        else {
            return false;
        };
        match record.owner {
            Owner::Private { root, .. } if unmapped == 1 => {
                if let Some(set) = self.sets.get_mut(root) {
                    set.shrink();
                }
            }
            Owner::Section { section: header, index: page } => {
                section::set_prototype(memory, header, page, Prototype::Transition(frame));
            }
            _ => return false,
        }
        let clean = !written && (record.slot.is_some() || record.all_zero);
        if !clean {
            self.forget_slot(index);
        }
        let list = if clean { FrameList::Standby } else { FrameList::Modified };
        self.frames.move_to(index, list);
        self.counters.pages_trimmed += 1;
        true
    }

    /// Rewrites every PTE that maps `frame` (`owner`'s page) to the entry a page away
    /// from memory has, invalidating what a TLB may cache. Returns how many PTEs it
    /// rewrote and whether any was dirty; `None` if a private page's PTE does not map the
    /// frame (nothing changed then).
    fn unmap_everywhere<M: TableMemory + ?Sized>(
        &self,
        owner: Owner,
        frame: PhysAddr,
        memory: &mut M,
        tlb: &mut dyn Tlb,
    ) -> Option<(u32, bool)> {
        let (mut unmapped, mut written) = (0, false);
        for slot in 0..pte::mapping_slots(owner) {
            let Some(at) = pte::mapping(memory, &self.sets, owner, slot) else { continue };
            let owned = match pte::read::<F, M>(memory, at.root, at.page) {
                PteState::Present { frame: held, flags } if held == frame => {
                    written |= flags.contains(PageFlags::DIRTY);
                    flags.contains(crate::space::OWNED)
                }
                // A hidden page was dirtied (if at all) before it was hidden: the space
                // said so then.
                PteState::Hidden { frame: held, owned } if held == frame => owned,
                _ => continue,
            };
            let entry = match owner {
                Owner::Private { .. } => SoftwarePte::Transition { frame, owned },
                _ => SoftwarePte::Prototype,
            };
            let Ok(flush) = pte::write::<F, M>(memory, at.root, at.page, NewPte::Software(entry))
            else {
                continue;
            };
            if !flush.is_empty() {
                tlb.invalidate_page_in(at.asid, at.page);
            }
            unmapped += 1;
        }
        let mapped_once = unmapped == 1 || !matches!(owner, Owner::Private { .. });
        mapped_once.then_some((unmapped, written))
    }

    /// Puts frame `index` on the free list, forgetting its owner and its slot.
    pub(super) fn release_frame(&mut self, index: FrameIndex) {
        self.forget_slot(index);
        if let Some(record) = self.frames.record_mut(index) {
            record.owner = Owner::None;
        }
        self.frames.move_to(index, FrameList::Free);
    }

    /// Drops the copy of frame `index`'s page in the store, which is stale or unneeded,
    /// and forgets that it held zeros (it was written, or it is leaving).
    pub(super) fn forget_slot(&mut self, index: FrameIndex) {
        let Some(record) = self.frames.record_mut(index) else { return };
        record.all_zero = false;
        record.reset = false;
        if let Some(slot) = record.slot.take() {
            let _ = self.slots.release(slot);
        }
    }

    /// The address of frame `index` (in range: the database gave it).
    pub(super) fn address(&self, index: FrameIndex) -> PhysAddr {
        self.frames.address(index).unwrap_or(PhysAddr::ZERO)
    }
}

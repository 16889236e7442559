//! The range operations, each a set of decisions for the driver in `range.rs`.

use core::marker::PhantomData;

use crate::addr::{PhysAddr, VirtAddr};
use crate::error::{Occupant, TableError};
use crate::flags::PageFlags;
use crate::format::{Entry, PageTableFormat};
use crate::frame::{FRAME_SIZE, FrameAllocator};

use super::MappedPage;
use super::range::{Action, Edit, Slot};

/// What an unmap took out of the tables, handed to the caller who owns the memory.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Unmapped {
    /// A page that was mapped (its flags with the accessed and dirty bits the MMU set).
    Page(MappedPage),
    /// A non-present entry that carried a payload.
    Payload {
        /// The first virtual address the entry covered.
        virt: VirtAddr,
        /// The entry's size in bytes.
        size: u64,
        /// The payload.
        payload: u64,
    },
}

/// What a range unmap does with pages in the range that are not mapped.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Holes {
    /// Refuse the whole call with [`TableError::NotMapped`] (the default).
    #[default]
    Refuse,
    /// Unmap what is mapped and pass over the rest, as `munmap` does.
    Skip,
}

/// What a level-`level` entry covering from `virt` holds, if it is a page or a payload.
pub(super) fn occupant<F: PageTableFormat>(
    entry: Entry,
    virt: VirtAddr,
    level: u8,
) -> Option<Occupant> {
    match entry {
        Entry::Leaf { frame, flags } => {
            Some(Occupant::Page(MappedPage { virt, frame, size: F::leaf_size(level), flags }))
        }
        Entry::Payload(payload) => Some(Occupant::Payload(payload)),
        Entry::Empty | Entry::Table { .. } | Entry::Invalid(_) => None,
    }
}

/// Returns the error for an occupied entry: the occupant if it has the size the caller
/// wanted, the huge page in the way if it is larger.
fn occupied<F: PageTableFormat>(slot: &Slot, wanted_here: bool) -> TableError {
    let addr = VirtAddr::new(slot.va);
    match occupant::<F>(slot.entry, addr, slot.level) {
        Some(occupant) if wanted_here => TableError::AlreadyMapped { addr, occupant },
        _ => {
            TableError::HugePageInTheWay { addr, level: slot.level, size: F::leaf_size(slot.level) }
        }
    }
}

/// Maps `[virt, virt + len)` to physical memory at a constant offset, with the largest
/// leaves that alignment allows up to `top_level`.
pub(crate) struct MapEdit<F> {
    /// The physical address minus the virtual address (wrapping).
    pub delta: u64,
    pub flags: PageFlags,
    /// The highest level a leaf may take (a table already where a leaf could go is a
    /// place to map smaller pages).
    pub top_level: u8,
    pub format: PhantomData<F>,
}

impl<F: PageTableFormat> MapEdit<F> {
    /// Whether a covered entry at `level` gets a leaf (the same for every entry of a level,
    /// because the offset between virtual and physical addresses is constant).
    fn leaf_here(&self, level: u8) -> bool {
        level <= self.top_level
            && F::leaf_allowed(level)
            && self.delta & (F::leaf_size(level) - 1) == 0
    }
}

impl<F: PageTableFormat> Edit<F> for MapEdit<F> {
    #[inline]
    fn decide(&self, slot: &Slot) -> Action {
        let leaf = slot.covered && self.leaf_here(slot.level);
        match slot.entry {
            Entry::Empty if leaf => {
                let frame = PhysAddr::new(slot.va.wrapping_add(self.delta));
                Action::Write(F::encode_leaf(frame, self.flags, slot.level))
            }
            Entry::Empty => Action::Create,
            Entry::Table { .. } => Action::Descend,
            Entry::Leaf { .. } | Entry::Payload(_) | Entry::Invalid(_) => {
                Action::Fail(occupied::<F>(slot, leaf))
            }
        }
    }

    fn fills_new_tables(&self) -> bool {
        // Every empty entry gets a leaf or a table: a covered new table is written whole.
        true
    }

    #[inline]
    fn fresh_leaf(&self, level: u8, va: u64) -> Option<u64> {
        let frame = PhysAddr::new(va.wrapping_add(self.delta));
        self.leaf_here(level).then(|| F::encode_leaf(frame, self.flags, level))
    }
}

/// Unmaps every page in the range, splitting huge pages the range covers in part.
pub(crate) struct UnmapEdit<F, C> {
    pub holes: Holes,
    pub reclaim: bool,
    pub on_unmapped: C,
    pub format: PhantomData<F>,
}

/// An unmap's decision for one entry: clear pages and payloads the range covers, split
/// huge pages it covers in part, and meet holes as `holes` says.
fn unmap_decision<F: PageTableFormat>(holes: Holes, slot: &Slot) -> Action {
    match slot.entry {
        Entry::Empty if holes == Holes::Skip => Action::Keep,
        Entry::Empty => Action::Fail(TableError::NotMapped { addr: VirtAddr::new(slot.first) }),
        Entry::Table { .. } => Action::Descend,
        Entry::Leaf { .. } | Entry::Payload(_) if slot.covered => Action::Write(0),
        Entry::Leaf { .. } if F::leaf_allowed(slot.level - 1) => Action::Split,
        _ => Action::Fail(occupied::<F>(slot, false)),
    }
}

/// What an overwritten entry held, as the caller is told of it.
fn unmapped<F: PageTableFormat>(slot: &Slot) -> Option<Unmapped> {
    let virt = VirtAddr::new(slot.va);
    match occupant::<F>(slot.entry, virt, slot.level)? {
        Occupant::Page(page) => Some(Unmapped::Page(page)),
        Occupant::Payload(payload) => {
            Some(Unmapped::Payload { virt, size: F::leaf_size(slot.level), payload })
        }
    }
}

impl<F: PageTableFormat, C: FnMut(Unmapped)> Edit<F> for UnmapEdit<F, C> {
    fn decide(&self, slot: &Slot) -> Action {
        unmap_decision::<F>(self.holes, slot)
    }

    #[inline]
    fn removed<A: FrameAllocator + ?Sized>(&mut self, slot: &Slot, _alloc: &mut A) {
        if let Some(removed) = unmapped::<F>(slot) {
            (self.on_unmapped)(removed);
        }
    }

    fn reclaims(&self) -> bool {
        self.reclaim
    }

    fn clears_covered_leaves(&self) -> bool {
        true
    }
}

/// Unmaps as [`UnmapEdit`] does, and gives each removed page's frames back to the
/// allocator the call holds (a huge page as one run of its size). What it cannot give back,
/// payloads and pages the allocator refuses, goes to `on_not_freed`.
pub(crate) struct UnmapFreeEdit<F, C> {
    pub holes: Holes,
    pub reclaim: bool,
    pub on_not_freed: C,
    pub format: PhantomData<F>,
}

impl<F: PageTableFormat, C: FnMut(Unmapped)> Edit<F> for UnmapFreeEdit<F, C> {
    fn decide(&self, slot: &Slot) -> Action {
        unmap_decision::<F>(self.holes, slot)
    }

    fn removed<A: FrameAllocator + ?Sized>(&mut self, slot: &Slot, alloc: &mut A) {
        let Some(removed) = unmapped::<F>(slot) else { return };
        if let Unmapped::Page(page) = removed {
            let frames = usize::try_from(page.size / FRAME_SIZE).unwrap_or(usize::MAX);
            let freed = match frames {
                1 => alloc.deallocate(page.frame),
                _ => alloc.deallocate_contiguous(page.frame, frames),
            };
            if freed.is_ok() {
                return;
            }
        }
        (self.on_not_freed)(removed);
    }

    fn reclaims(&self) -> bool {
        self.reclaim
    }

    fn clears_covered_leaves(&self) -> bool {
        true
    }
}

/// Maps every page of the range to a fresh zeroed frame from the reserve, with base pages
/// (the frames come one by one, not in aligned runs), where nothing is mapped yet.
pub(crate) struct FreshMapEdit<F> {
    pub flags: PageFlags,
    pub format: PhantomData<F>,
}

impl<F: PageTableFormat> Edit<F> for FreshMapEdit<F> {
    fn decide(&self, slot: &Slot) -> Action {
        match slot.entry {
            Entry::Empty if slot.level == 1 => Action::MapFresh(self.flags),
            Entry::Empty => Action::Create,
            Entry::Table { .. } => Action::Descend,
            Entry::Leaf { .. } | Entry::Payload(_) | Entry::Invalid(_) => {
                Action::Fail(occupied::<F>(slot, slot.level == 1))
            }
        }
    }

    fn fills_new_tables(&self) -> bool {
        // Every empty entry gets a fresh page or a table: a covered new table is written whole.
        true
    }
}

/// Gives every page in the range new flags, keeping the accessed and dirty bits the MMU
/// recorded, and splitting huge pages the range covers in part.
pub(crate) struct ProtectEdit<F> {
    pub flags: PageFlags,
    pub format: PhantomData<F>,
}

impl<F: PageTableFormat> Edit<F> for ProtectEdit<F> {
    fn decide(&self, slot: &Slot) -> Action {
        match slot.entry {
            Entry::Table { .. } => Action::Descend,
            Entry::Leaf { frame, flags } if slot.covered => {
                let new = self.flags | (flags & PageFlags::MMU_STATE) | F::IMPLIED;
                if new == flags {
                    Action::Keep
                } else {
                    Action::Write(F::encode_leaf(frame, new, slot.level))
                }
            }
            Entry::Leaf { .. } if F::leaf_allowed(slot.level - 1) => Action::Split,
            Entry::Empty | Entry::Payload(_) => {
                Action::Fail(TableError::NotMapped { addr: VirtAddr::new(slot.first) })
            }
            _ => Action::Fail(occupied::<F>(slot, false)),
        }
    }
}

/// What [`PageTable::rewrite_range`](super::PageTable::rewrite_range) does with one page or
/// payload.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Rewrite {
    /// Leave it.
    Keep,
    /// Make it a present page mapping `frame` with `flags`.
    Page {
        /// The first physical address (aligned to the entry's size).
        frame: PhysAddr,
        /// The flags.
        flags: PageFlags,
    },
    /// Make it a non-present entry carrying `payload` (nonzero).
    Payload(u64),
    /// Clear it.
    Clear,
}

/// Rewrites every page and payload in the range as a rule decides.
pub(crate) struct RewriteEdit<F, D, C> {
    pub decide: D,
    pub on_change: C,
    pub reclaim: bool,
    pub format: PhantomData<F>,
}

impl<F, D, C> Edit<F> for RewriteEdit<F, D, C>
where
    F: PageTableFormat,
    D: Fn(VirtAddr, u64, Occupant) -> Rewrite,
    C: FnMut(VirtAddr, Occupant),
{
    fn decide(&self, slot: &Slot) -> Action {
        let (virt, size) = (VirtAddr::new(slot.va), F::leaf_size(slot.level));
        let occupant = match slot.entry {
            Entry::Empty => return Action::Keep,
            Entry::Table { .. } => return Action::Descend,
            Entry::Leaf { .. } if !slot.covered && F::leaf_allowed(slot.level - 1) => {
                return Action::Split;
            }
            entry if slot.covered => occupant::<F>(entry, virt, slot.level),
            _ => None,
        };
        let Some(occupant) = occupant else {
            return Action::Fail(occupied::<F>(slot, false));
        };
        match (self.decide)(virt, size, occupant) {
            Rewrite::Keep => Action::Keep,
            Rewrite::Clear => Action::Write(0),
            Rewrite::Page { frame, flags } => {
                let extra = flags.difference(F::SUPPORTED);
                if !extra.is_empty() {
                    return Action::Fail(TableError::UnsupportedFlags { flags: extra });
                }
                // Aligned to `size`, the frame's last byte `frame + size - 1` cannot pass
                // 2^64 (the `||` tests the alignment first).
                if !frame.is_aligned(size) || !F::phys_in_range(frame + (size - 1)) {
                    return Action::Fail(TableError::Unaligned {
                        kind: crate::error::AddrKind::Physical,
                        value: frame.as_u64(),
                        align: size,
                    });
                }
                Action::Write(F::encode_leaf(frame, flags, slot.level))
            }
            Rewrite::Payload(payload) => match F::encode_payload(payload) {
                Some(raw) => Action::Write(raw),
                None => Action::Fail(TableError::PayloadTooWide { payload, bits: F::PAYLOAD_BITS }),
            },
        }
    }

    fn removed<A: FrameAllocator + ?Sized>(&mut self, slot: &Slot, _alloc: &mut A) {
        let virt = VirtAddr::new(slot.va);
        if let Some(old) = occupant::<F>(slot.entry, virt, slot.level) {
            (self.on_change)(virt, old);
        }
    }

    fn reclaims(&self) -> bool {
        self.reclaim
    }
}

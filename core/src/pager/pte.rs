//! The one PTE that maps a private page, found from the frame's owner (the reverse map),
//! read and rewritten when the pager takes the page away or clears its Accessed bit.

use crate::addr::{Frame, Page, PageSize, PhysAddr, Size4KiB, VirtAddr};
use crate::error::TableError;
use crate::flags::PageFlags;
use crate::format::PageTableFormat;
use crate::frame::NoFrames;
use crate::memory::TableMemory;
use crate::software_pte::SoftwarePte;
use crate::space::MAX_VIEWS;
use crate::space::section;
use crate::table::{Lookup, NewEntry, PageTable};
use crate::tlb::{Asid, Flush};

use super::database::Owner;
use super::working_set::WorkingSets;

/// What the PTE of a private page holds, as far as the pager cares.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum PteState {
    /// Present, mapping `frame` with `flags` (Accessed and Dirty included).
    Present { frame: PhysAddr, flags: PageFlags },
    /// Hidden by a no-access or guard protection, keeping `frame`.
    Hidden { frame: PhysAddr, owned: bool },
    /// A software entry the pager wrote.
    Paged(SoftwarePte),
    /// Anything else (nothing, a huge page, a corrupt table).
    Other,
}

/// Reads the PTE for `page` in the space at `root`.
pub(super) fn read<F: PageTableFormat, M: TableMemory + ?Sized>(
    memory: &mut M,
    root: PhysAddr,
    page: VirtAddr,
) -> PteState {
    let table = PageTable::<F, _>::from_root(root, &mut *memory);
    match table.lookup(page) {
        Ok(Lookup::Mapped(t)) if t.size == Size4KiB::SIZE => {
            PteState::Present { frame: t.frame, flags: t.flags }
        }
        Ok(Lookup::Payload { payload, .. }) => match SoftwarePte::decode(payload) {
            Ok(SoftwarePte::Hidden { frame, owned }) => PteState::Hidden { frame, owned },
            Ok(pte) => PteState::Paged(pte),
            Err(_) => PteState::Other,
        },
        _ => PteState::Other,
    }
}

/// Makes the PTE for `page` in the space at `root` hold `new`. The entry exists (the pager
/// read it first), so no table is created or freed.
///
/// # Errors
///
/// The engine's refusal (a format that cannot hold the payload, a corrupt table).
pub(super) fn write<F: PageTableFormat, M: TableMemory + ?Sized>(
    memory: &mut M,
    root: PhysAddr,
    page: VirtAddr,
    new: NewPte,
) -> Result<Flush, TableError> {
    let new = match new {
        NewPte::Page { frame, flags } => {
            NewEntry::Page { frame: Frame::<Size4KiB>::containing(frame), flags }
        }
        NewPte::Software(pte) => {
            let payload = pte
                .encode::<F>()
                .map_err(|_| TableError::PayloadTooWide { payload: 0, bits: F::PAYLOAD_BITS })?;
            NewEntry::Payload(payload)
        }
        NewPte::Discarded => NewEntry::Payload(crate::software_pte::DISCARDED),
    };
    let mut table = PageTable::<F, _>::from_root(root, &mut *memory);
    let (_, flush) = table.set_entry(Page::<Size4KiB>::containing(page), new, &mut NoFrames)?;
    Ok(flush)
}

/// What the pager writes in a PTE.
#[derive(Clone, Copy, Debug)]
pub(super) enum NewPte {
    Page {
        frame: PhysAddr,
        flags: PageFlags,
    },
    Software(SoftwarePte),
    /// A demand-zero entry marked discarded (a reset page whose frame is reused).
    Discarded,
}

/// One PTE that may map a frame: the space and the page.
#[derive(Clone, Copy, Debug)]
pub(super) struct Mapping {
    pub root: PhysAddr,
    pub asid: Asid,
    pub page: VirtAddr,
}

/// How many places [`mapping`] looks at for a frame of `owner`.
pub(super) fn mapping_slots(owner: Owner) -> u64 {
    match owner {
        Owner::Private { .. } => 1,
        Owner::Section { .. } => MAX_VIEWS,
        Owner::None => 0,
    }
}

/// The `slot`th place where a PTE may map `owner`'s page: the one PTE of a private page,
/// or the page in each view a section records.
pub(super) fn mapping<M: TableMemory + ?Sized>(
    memory: &M,
    sets: &WorkingSets,
    owner: Owner,
    slot: u64,
) -> Option<Mapping> {
    match owner {
        Owner::Private { root, page } if slot == 0 => {
            let asid = sets.get(root)?.asid;
            Some(Mapping { root, asid, page })
        }
        Owner::Section { section: header, index } => {
            let view = section::view_at(memory, header, slot)?;
            Some(Mapping { root: view.root, asid: view.asid, page: view.page(index) })
        }
        _ => None,
    }
}

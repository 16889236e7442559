//! `MEM_RESET`: the caller no longer needs the contents of a range of pages. They stay
//! committed, with their protection, and are never written to the paging file for what
//! they hold now: a later read finds the old data while a frame still holds it, and zeros
//! once that frame has gone to another page.

use crate::error::Occupant;
use crate::flags::PageFlags;
use crate::format::PageTableFormat;
use crate::memory::TableMemory;
use crate::software_pte::SoftwarePte;
use crate::table::Rewrite;
use crate::tlb::Flush;

use super::fault_path::OWNED;
use super::source::FrameSource;
use super::{AddressSpace, SpaceError};

impl<F: PageTableFormat, const N: usize> AddressSpace<F, N> {
    /// Windows `VirtualAlloc` with `MEM_RESET`: the contents of the pages
    /// `[addr, addr + size)` touches may be discarded. Their state and protection do not
    /// change (reserved pages are passed over); what the space owns of them is made clean:
    ///
    /// - a resident page loses its Dirty bit (the returned flush invalidates it, so that
    ///   the next write sets the bit again) and the source is told
    ///   ([`FrameSource::reset`]): a pager drops its copy in the store and, when it trims
    ///   the page, puts it on standby with no write; when the frame is reused, the page
    ///   becomes demand-zero;
    /// - a page in transition is told to the source the same way (one on the modified
    ///   list moves to standby, unwritten);
    /// - a page in the paging file becomes demand-zero at once, and its slot is freed.
    ///
    /// So a read after the reset gives the old data while a frame still holds the page,
    /// and zeros after (Windows allows either). Frames of a section are shared, and kept.
    /// A page written after the reset is dirty again and paged as usual. Apply the flush.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::ZeroSize`], [`SpaceError::NotReserved`],
    /// [`SpaceError::CrossesReservation`], [`SpaceError::OutsideUserSpace`] and
    /// [`SpaceError::Table`].
    pub fn reset<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        addr: crate::addr::VirtAddr,
        size: u64,
        memory: &mut M,
        source: &mut A,
    ) -> Result<Flush, SpaceError> {
        let (start, end, _) = self.span_in_reservation(addr, size)?;
        let zero = SoftwarePte::DemandZero.encode::<F>().ok();
        let shared = core::cell::RefCell::new(source);
        let mut table = self.page_table(memory);
        let flush = table.rewrite_range(
            crate::addr::VirtAddr::new(start),
            end - start,
            &mut super::SharedTables(&shared),
            |_, _, occupant| match occupant {
                Occupant::Page(page) if page.flags.contains(OWNED) => Rewrite::Page {
                    frame: page.frame,
                    flags: page.flags.difference(PageFlags::DIRTY),
                },
                Occupant::Payload(payload) => match (SoftwarePte::decode(payload), zero) {
                    (Ok(SoftwarePte::PagingFile { .. }), Some(zero)) => Rewrite::Payload(zero),
                    // Rewritten as it is, so that the source hears of it.
                    (Ok(SoftwarePte::Transition { owned: true, .. }), _) => {
                        Rewrite::Payload(payload)
                    }
                    _ => Rewrite::Keep,
                },
                Occupant::Page(_) => Rewrite::Keep,
            },
            |_, old| {
                let mut source = shared.borrow_mut();
                match old {
                    Occupant::Page(page) => source.reset(page.frame),
                    Occupant::Payload(payload) => match SoftwarePte::decode(payload) {
                        Ok(pte @ SoftwarePte::PagingFile { .. }) => source.drop_paged(pte),
                        Ok(SoftwarePte::Transition { frame, .. }) => source.reset(frame),
                        _ => {}
                    },
                }
            },
        )?;
        Ok(flush)
    }
}

//! `MEM_RESET`: the caller no longer needs the contents of a range of pages. They stay
//! committed, with their protection, and are never written to the paging file for what
//! they hold now: a later read finds the old data while a frame still holds it, and zeros
//! once that frame has gone to another page.

use crate::error::Occupant;
use crate::flags::PageFlags;
use crate::format::PageTableFormat;
use crate::memory::TableMemory;
use crate::software_pte::{DEMAND_ZERO, DISCARDED, SoftwarePte, is_discarded};
use crate::table::{Rewrite, Visit};
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
    /// - a page in the paging file becomes demand-zero at once (marked discarded, for
    ///   [`reset_undo`](Self::reset_undo)), and its slot is freed.
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
                Occupant::Payload(payload) => match SoftwarePte::decode(payload) {
                    // Its contents are gone at once: marked, for MEM_RESET_UNDO.
                    Ok(SoftwarePte::PagingFile { .. }) => Rewrite::Payload(DISCARDED),
                    // Rewritten as it is, so that the source hears of it.
                    Ok(SoftwarePte::Transition { owned: true, .. }) => Rewrite::Payload(payload),
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

    /// Windows `VirtualAlloc` with `MEM_RESET_UNDO` (Windows 8 and later): the pages
    /// `[addr, addr + size)` touches, reset before by [`reset`](Self::reset), are to keep
    /// their contents again. Where a frame still holds a reset page (resident, or on the
    /// standby list), the page becomes ordinary: the source is told
    /// ([`FrameSource::undo_reset`]), and a pager writes it to the store before its frame
    /// is reused. Pages never reset (or written since) do not change. Reserved pages are
    /// passed over, and a view's pages, which [`reset`](Self::reset) keeps, do not change.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::ResetDiscarded`] naming the first page whose contents were
    /// already replaced with zeros (its frame reused, or its slot freed by the reset):
    /// every page in the range is ordinary again all the same, the discarded ones
    /// demand-zero (Windows fails the call, "some of the data has been replaced with
    /// zeroes", and treats the pages normally from then on). Returns
    /// [`SpaceError::ZeroSize`], [`SpaceError::NotReserved`],
    /// [`SpaceError::CrossesReservation`], [`SpaceError::OutsideUserSpace`] and
    /// [`SpaceError::Table`] (a corrupt table) changing nothing.
    pub fn reset_undo<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        addr: crate::addr::VirtAddr,
        size: u64,
        memory: &mut M,
        source: &mut A,
    ) -> Result<Flush, SpaceError> {
        let (start, end, _) = self.span_in_reservation(addr, size)?;
        let mut lost = None;
        let mut table = self.page_table(memory);
        let shared = core::cell::RefCell::new(&mut *source);
        // Only non-present entries change (the mark goes): no TLB holds them.
        let flush = table.rewrite_range(
            crate::addr::VirtAddr::new(start),
            end - start,
            &mut super::SharedTables(&shared),
            |_, _, occupant| match occupant {
                Occupant::Payload(payload) if is_discarded(payload) => {
                    Rewrite::Payload(DEMAND_ZERO)
                }
                _ => Rewrite::Keep,
            },
            |at, _| {
                lost = lost.or(Some(at));
            },
        )?;
        let first = crate::addr::VirtAddr::new(start);
        let last = crate::addr::VirtAddr::new(end - 1);
        table.visit_range(first, last, |visit| match visit {
            Visit::Page(page) if page.flags.contains(OWNED) => {
                shared.borrow_mut().undo_reset(page.frame);
            }
            Visit::Payload { payload, .. } => {
                if let Ok(SoftwarePte::Transition { frame, owned: true }) =
                    SoftwarePte::decode(payload)
                {
                    shared.borrow_mut().undo_reset(frame);
                }
            }
            _ => {}
        });
        match lost {
            None => Ok(flush),
            Some(addr) => {
                flush.ignore();
                Err(SpaceError::ResetDiscarded { addr })
            }
        }
    }
}

//! Views of sections and images: reservations whose pages are a section's frames.
//!
//! A view is placed on the allocation granularity and committed as its section is: whole,
//! but for the pages of a `SEC_RESERVE` section that no view has committed yet, which it
//! maps reserved; its pages appear on first touch (see [`resolve`](AddressSpace::resolve)). The section counts its views, so
//! that it is closed only when none maps it. An image is a view whose parts carry their own
//! protections.

use crate::addr::VirtAddr;
use crate::fault::Access;
use crate::format::PageTableFormat;
use crate::frame::NoFrames;
use crate::memory::TableMemory;

use super::source::FrameSource;
use crate::tlb::Flush;

use super::regions::{Backing, Reservation};
use super::section::{self, Section, ViewRecord};
use super::{AddressSpace, MemoryType, PAGE, PageState, Protection, SpaceError};

/// One part of an image: pages of the image section with their own protection.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ImagePart {
    /// The first page, counted from the image's start.
    pub offset: u64,
    /// The number of pages.
    pub pages: u64,
    /// The protection (data that the image writes should be write-copy).
    pub protect: Protection,
}

/// What a view maps: pages of a section from an offset, with a type and protection.
#[derive(Clone, Copy, Debug)]
struct View {
    offset: u64,
    pages: u64,
    kind: MemoryType,
    protect: Protection,
}

impl<F: PageTableFormat, const N: usize> AddressSpace<F, N> {
    /// Maps `pages` pages of `section` from page `offset` (Windows `MapViewOfFileEx`), at
    /// `addr` (a multiple of the allocation granularity) or where the space chooses. The
    /// view is committed where its section is (a `SEC_RESERVE` section's pages that no
    /// view committed are reserved: commit them with
    /// [`commit_over`](Self::commit_over)); its pages appear on first touch. In a write-copy view the
    /// section's frames are never mapped writable: every written page gets a private copy.
    ///
    /// Charges nothing: in a space whose frames come from a pager, map through
    /// [`map_view_with`](Self::map_view_with).
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::ZeroSize`], [`SpaceError::OutsideSection`],
    /// [`SpaceError::Unaligned`], [`SpaceError::InvalidProtection`],
    /// [`SpaceError::WritableExecutable`], [`SpaceError::TooManyViews`] when the section
    /// records the most views it can, and the placement errors of
    /// [`reserve`](Self::reserve).
    #[allow(clippy::too_many_arguments, reason = "MapViewOfFile's own parameters")]
    pub fn map_view<M: TableMemory + ?Sized>(
        &mut self,
        section: &Section,
        addr: Option<VirtAddr>,
        offset: u64,
        pages: u64,
        protect: Protection,
        memory: &mut M,
    ) -> Result<VirtAddr, SpaceError> {
        self.map_view_with(section, addr, offset, pages, protect, memory, &mut NoFrames)
    }

    /// [`map_view`](Self::map_view), charging a write-copy view to `source` as Windows
    /// does: every page of it may become a private copy, so all of them count against the
    /// commit limit from the start (the section's own pages were charged when it was
    /// created). Unmapping gives the charge back.
    ///
    /// # Errors
    ///
    /// As [`map_view`](Self::map_view), plus [`SpaceError::CommitLimit`]; nothing is
    /// mapped or charged on error.
    #[allow(clippy::too_many_arguments, reason = "MapViewOfFile's own parameters")]
    pub fn map_view_with<M: TableMemory + ?Sized, A: FrameSource + ?Sized>(
        &mut self,
        section: &Section,
        addr: Option<VirtAddr>,
        offset: u64,
        pages: u64,
        protect: Protection,
        memory: &mut M,
        source: &mut A,
    ) -> Result<VirtAddr, SpaceError> {
        self.check_protection(protect)?;
        let view = View { offset, pages, kind: MemoryType::Mapped, protect };
        let charge = if protect.is_write_copy() { pages } else { 0 };
        self.add_charged_view(section, addr, view, &[], charge, memory, source)
    }

    /// Maps an executable image held in `image` (Windows `MapViewOfFile` of a
    /// `SEC_IMAGE` section): every page of the section, each part with its own
    /// protection, the rest read-only (headers). Unmap it with
    /// [`unmap_view`](Self::unmap_view).
    ///
    /// Charges nothing: in a space whose frames come from a pager, map through
    /// [`map_image_with`](Self::map_image_with).
    ///
    /// # Errors
    ///
    /// As [`map_view`](Self::map_view), for the image and for each part.
    pub fn map_image<M: TableMemory + ?Sized>(
        &mut self,
        image: &Section,
        addr: Option<VirtAddr>,
        parts: &[ImagePart],
        memory: &mut M,
    ) -> Result<VirtAddr, SpaceError> {
        self.map_image_with(image, addr, parts, memory, &mut NoFrames)
    }

    /// [`map_image`](Self::map_image), charging the pages of its write-copy parts (the
    /// data the image may write, each page a private copy to be) to `source`.
    ///
    /// # Errors
    ///
    /// As [`map_image`](Self::map_image), plus [`SpaceError::CommitLimit`]; nothing is
    /// mapped or charged on error.
    pub fn map_image_with<M: TableMemory + ?Sized, A: FrameSource + ?Sized>(
        &mut self,
        image: &Section,
        addr: Option<VirtAddr>,
        parts: &[ImagePart],
        memory: &mut M,
        source: &mut A,
    ) -> Result<VirtAddr, SpaceError> {
        for part in parts {
            self.check_protection(part.protect)?;
            let end = part.offset.checked_add(part.pages);
            if part.pages == 0 || end.is_none_or(|end| end > image.pages()) {
                return Err(SpaceError::OutsideSection { offset: part.offset, pages: part.pages });
            }
        }
        let view = View {
            offset: 0,
            pages: image.pages(),
            kind: MemoryType::Image,
            protect: Protection::EXECUTE_WRITE_COPY,
        };
        let copies = parts.iter().filter(|part| part.protect.is_write_copy());
        let charge = copies.map(|part| part.pages).sum();
        self.add_charged_view(image, addr, view, parts, charge, memory, source)
    }

    /// Unmaps the view holding `addr`, any address in it (Windows `UnmapViewOfFile`);
    /// private copies go back to `alloc`, the section's frames stay with it, and the
    /// section counts one view less.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::NotReserved`], [`SpaceError::WrongType`] for private memory,
    /// and [`SpaceError::Table`].
    pub fn unmap_view<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        addr: VirtAddr,
        memory: &mut M,
        alloc: &mut A,
    ) -> Result<Flush, SpaceError> {
        let reservation = self.reservation_holding(addr)?;
        if reservation.backing == Backing::Private {
            return Err(SpaceError::WrongType {
                expected: MemoryType::Mapped,
                found: reservation.kind,
            });
        }
        self.drop_reservation(&reservation, memory, alloc)
    }

    /// Adds a view (or image) of `section` with `parts` protected apart, charging `charge`
    /// pages to `source` first and giving them back if the view cannot be added.
    #[allow(clippy::too_many_arguments, reason = "the view, its parts and what it costs")]
    fn add_charged_view<M: TableMemory + ?Sized, A: FrameSource + ?Sized>(
        &mut self,
        section: &Section,
        addr: Option<VirtAddr>,
        view: View,
        parts: &[ImagePart],
        charge: u64,
        memory: &mut M,
        source: &mut A,
    ) -> Result<VirtAddr, SpaceError> {
        source.charge(self.root, charge)?;
        let added = self.add_view(section, addr, view, parts, charge, memory);
        if added.is_err() {
            source.uncharge(self.root, charge);
        }
        added
    }

    /// Adds a view (or image) of `section` with `parts` protected apart; the reservation
    /// records the `charge` its mapper made.
    fn add_view<M: TableMemory + ?Sized>(
        &mut self,
        section: &Section,
        addr: Option<VirtAddr>,
        view: View,
        parts: &[ImagePart],
        charge: u64,
        memory: &mut M,
    ) -> Result<VirtAddr, SpaceError> {
        let View { offset, pages, kind, protect } = view;
        if pages == 0 {
            return Err(SpaceError::ZeroSize);
        }
        if offset.checked_add(pages).is_none_or(|end| end > section.pages()) {
            return Err(SpaceError::OutsideSection { offset, pages });
        }
        // A view is exactly its pages, from an address on the allocation granularity.
        if let Some(addr) = addr.filter(|a| !a.is_aligned(self.config.granularity)) {
            return Err(SpaceError::Unaligned { addr, align: self.config.granularity });
        }
        let header = section.header();
        let reserved = section::reserved_spans(memory, header, offset, pages);
        let plan = parts.iter().fold(self.regions.plan().add(), |plan, _| plan.set_in_new());
        reserved.fold(plan, |plan, _| plan.set_in_new()).fits()?;
        if !section::has_room(memory, section.header()) {
            return Err(SpaceError::TooManyViews { max: section::MAX_VIEWS });
        }
        let (base, len) = self.place_reservation(addr, pages * PAGE)?;
        let backing = Backing::Section { section: section.header(), offset };
        let reservation =
            Reservation { base, size: len, protect, kind, backing, charge, watch: None };
        let initial = if parts.is_empty() { protect } else { Protection::READ_ONLY };
        self.regions.add(reservation, PageState::Committed, initial)?;
        for part in parts {
            let start = base.as_u64() + part.offset * PAGE;
            let protect = part.protect;
            // The plan above made room for every part.
            self.regions
                .set(start, start + part.pages * PAGE, |_| (PageState::Committed, protect))?;
        }
        // A view of a `SEC_RESERVE` section maps the pages no view has committed reserved.
        for (first, end) in section::reserved_spans(memory, header, offset, pages) {
            let (start, end) = (base.as_u64() + first * PAGE, base.as_u64() + end * PAGE);
            // The plan above made room for every span.
            self.regions.set(start, end, |_| (PageState::Reserved, protect))?;
        }
        section::add_view(memory, section.header(), self.view_record(base, offset));
        Ok(base)
    }
}

impl<F: PageTableFormat, const N: usize> AddressSpace<F, N> {
    /// How a section records a view of it at `base` from page `offset`.
    pub(super) fn view_record(&self, base: VirtAddr, offset: u64) -> ViewRecord {
        let page0 = base.as_u64().wrapping_sub(offset.wrapping_mul(PAGE));
        ViewRecord { root: self.root, asid: self.asid, page0: VirtAddr::new(page0) }
    }
}

/// Whether `protect` would let a view write where the view's own protection does not.
pub(super) fn writes_read_only_view(reservation: &Reservation, protect: Protection) -> bool {
    reservation.kind != MemoryType::Private
        && protect.allows(Access::Write)
        && !reservation.protect.allows(Access::Write)
}

/// `protect` if the view `reservation` grants every access it asks, else the refusal.
pub(super) fn fit_view(
    reservation: &Reservation,
    protect: Protection,
) -> Result<Protection, SpaceError> {
    if protect.fits_view(reservation.protect) { Ok(protect) } else { Err(SpaceError::ReadOnlyView) }
}

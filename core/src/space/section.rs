//! Sections: memory that several address spaces can map at once, paged once for all of
//! them through prototype entries.

use core::fmt;

use crate::addr::{PhysAddr, VirtAddr};
use crate::error::TableError;
use crate::format::EntrySize;
use crate::frame::FrameAllocator;
use crate::memory::TableMemory;
use crate::pager::Slot;
use crate::software_pte::SoftwarePte;
use crate::tlb::Asid;

use super::PAGE;
use super::error::SpaceError;
use super::source::FrameSource;

/// Prototype entries in one frame.
const PROTOTYPES_PER_FRAME: u64 = PAGE / 8;

/// Words of one view's record in the header: root, address-space id, and the address at
/// which the view would map the section's page 0.
const VIEW_WORDS: u64 = 3;

/// The most views a section records (the header frame's words after the count).
pub const MAX_VIEWS: u64 = (PAGE / 8 - 1) / VIEW_WORDS;

/// A section: pages that views in several address spaces map (Windows `CreateFileMapping`
/// backed by the paging file; an executable image's contents). A write through one
/// writable view is seen through every other view; write-copy views get private copies
/// instead.
///
/// Its memory is a header frame and an array of *prototype entries*, one per page (Windows
/// prototype PTEs), in frames from the page-table allocator. A page gets a zeroed frame on
/// its first touch in any view, from the same [`FrameSource`] as the views' spaces; a pager
/// can take it away once, for every view (their entries then point back at the prototype),
/// and brings it back for all of them. The header counts the views and records where each
/// maps the section, so that a view can be taken down (by `unmap_view`, or with its whole
/// space by `destroy`) without the section at hand, and so that the pager finds every
/// entry that maps a page. Close it with [`close`](Self::close) once no view maps it.
#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Section {
    header: PhysAddr,
    pages: u64,
}

/// Where a section's page is, as its prototype entry says.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Prototype {
    /// Committed, never touched: zero.
    Zero,
    /// Not committed: a page of a `SEC_RESERVE` section that no view has committed yet.
    /// It holds nothing and is never a frame's page; an access to it is a violation.
    Reserved,
    /// In this frame, mapped by views or not.
    Resident(PhysAddr),
    /// In this frame on the pager's standby or modified list; views do not map it.
    Transition(PhysAddr),
    /// Only in this slot of the backing store.
    PagingFile(Slot),
}

impl Prototype {
    const RESIDENT: u64 = 1;
    const TRANSITION: u64 = 2;
    const PAGING_FILE: u64 = 3;
    /// A reserved page is tagged alone (no value): the all-zero word stays "committed,
    /// demand zero", so a `SEC_COMMIT` section's prototypes start zeroed as before.
    const RESERVED: u64 = 4;

    fn encode(self) -> u64 {
        match self {
            Self::Zero => 0,
            Self::Reserved => Self::RESERVED,
            Self::Resident(frame) => frame.as_u64() | Self::RESIDENT,
            Self::Transition(frame) => frame.as_u64() | Self::TRANSITION,
            Self::PagingFile(slot) => (u64::from(slot.0) << 12) | Self::PAGING_FILE,
        }
    }

    fn decode(raw: u64) -> Self {
        let value = raw & !(PAGE - 1);
        match raw & (PAGE - 1) {
            Self::RESIDENT => Self::Resident(PhysAddr::new(value)),
            Self::TRANSITION => Self::Transition(PhysAddr::new(value)),
            Self::PAGING_FILE => Self::PagingFile(Slot((value >> 12) as u32)),
            Self::RESERVED => Self::Reserved,
            _ => Self::Zero,
        }
    }

    /// The software entry a pager gives back or brings back for this prototype.
    pub(crate) fn paged(self) -> Option<SoftwarePte> {
        match self {
            Self::Transition(frame) => Some(SoftwarePte::Transition { frame, owned: false }),
            Self::PagingFile(slot) => Some(SoftwarePte::PagingFile { slot }),
            Self::Zero | Self::Reserved | Self::Resident(_) => None,
        }
    }

    /// Whether the page is committed (every page but a reserved one).
    #[must_use]
    pub fn is_committed(self) -> bool {
        self != Self::Reserved
    }
}

impl fmt::Display for Prototype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Zero => f.write_str("demand zero"),
            Self::Reserved => f.write_str("reserved"),
            Self::Resident(frame) => write!(f, "resident in {:#x}", frame.as_u64()),
            Self::Transition(frame) => write!(f, "in transition in {:#x}", frame.as_u64()),
            Self::PagingFile(slot) => write!(f, "in slot {}", slot.0),
        }
    }
}

/// One view of a section, as its header records it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct ViewRecord {
    /// The space's root table.
    pub root: PhysAddr,
    /// The space's address-space id.
    pub asid: Asid,
    /// Where the view would map the section's page 0 (wrapping: views from an offset).
    pub page0: VirtAddr,
}

impl ViewRecord {
    /// Where the view maps page `index` (an address outside the view for pages it does
    /// not map: callers check the entry there).
    pub(crate) fn page(&self, index: u64) -> VirtAddr {
        VirtAddr::new(self.page0.as_u64().wrapping_add(index.wrapping_mul(PAGE)))
    }
}

impl Section {
    /// Creates a section of `pages` zero pages (Windows `CreateFileMapping` of the paging
    /// file with `SEC_COMMIT`, the default): a header and its prototype entries, from the
    /// page-table allocator of `source`, and every page charged to the commit limit now.
    /// Its pages take frames on first touch.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::ZeroSize`], [`SpaceError::CommitLimit`] when the source
    /// cannot charge the pages, or [`SpaceError::Table`] with
    /// [`TableError::OutOfFrames`] when no contiguous run of frames is free for the header
    /// and prototypes, or with [`TableError::FrameOutsideMemory`] when the allocator hands
    /// out a run that is unaligned or passes the top of the address space (given back).
    pub fn create<M: TableMemory + ?Sized, A: FrameSource + ?Sized>(
        pages: u64,
        memory: &mut M,
        source: &mut A,
    ) -> Result<Self, SpaceError> {
        Self::create_as(pages, Prototype::Zero, memory, source)
    }

    /// Creates a section of `pages` reserved pages (Windows `CreateFileMapping` of the
    /// paging file with `SEC_RESERVE`): nothing is charged. A view maps them reserved; they
    /// are committed, for every view at once, by
    /// [`AddressSpace::commit_over`](super::AddressSpace::commit_over) on a view, which
    /// charges them then. Closing gives back the charge of the committed pages only.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create), without [`SpaceError::CommitLimit`].
    pub fn create_reserved<M: TableMemory + ?Sized, A: FrameSource + ?Sized>(
        pages: u64,
        memory: &mut M,
        source: &mut A,
    ) -> Result<Self, SpaceError> {
        Self::create_as(pages, Prototype::Reserved, memory, source)
    }

    /// Creates a section whose prototypes all say `first` (zero: committed and charged;
    /// reserved: not charged).
    fn create_as<M: TableMemory + ?Sized, A: FrameSource + ?Sized>(
        pages: u64,
        first: Prototype,
        memory: &mut M,
        source: &mut A,
    ) -> Result<Self, SpaceError> {
        if pages == 0 {
            return Err(SpaceError::ZeroSize);
        }
        let count = usize::try_from(pages.div_ceil(PROTOTYPES_PER_FRAME) + 1)
            .map_err(|_| SpaceError::ZeroSize)?;
        let charge = if first.is_committed() { pages } else { 0 };
        source.charge(PhysAddr::ZERO, charge)?;
        let header = match source.tables().allocate_contiguous(count, PAGE) {
            Ok(header) => header,
            Err(refusal) => {
                source.uncharge(PhysAddr::ZERO, charge);
                let error = TableError::OutOfFrames { needed: count, got: 0, source: refusal };
                return Err(SpaceError::Table(error));
            }
        };
        if !run_fits(header, count) {
            // An allocator's run that passes 2^64 is not memory: refused, so that the
            // header and prototype arithmetic of every later call stays inside the run.
            let _ = source.tables().deallocate_contiguous(header, count);
            source.uncharge(PhysAddr::ZERO, charge);
            return Err(SpaceError::Table(TableError::FrameOutsideMemory { frame: header }));
        }
        for frame in 0..count as u64 {
            memory.zero_frame(header + frame * PAGE);
        }
        if first != Prototype::Zero {
            for index in 0..pages {
                set_prototype(memory, header, index, first);
            }
        }
        Ok(Self { header, pages })
    }

    /// The size in pages.
    #[must_use]
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// How many views map it.
    #[must_use]
    pub fn views<M: TableMemory + ?Sized>(&self, memory: &M) -> u32 {
        views_at(memory, self.header)
    }

    /// Where page `index` is (`None` past the end).
    #[must_use]
    pub fn page<M: TableMemory + ?Sized>(&self, memory: &M, index: u64) -> Option<Prototype> {
        (index < self.pages).then(|| prototype(memory, self.header, index))
    }

    /// The frame that holds page `index` now, resident or in transition.
    #[must_use]
    pub fn frame<M: TableMemory + ?Sized>(&self, memory: &M, index: u64) -> Option<PhysAddr> {
        match self.page(memory, index)? {
            Prototype::Resident(frame) | Prototype::Transition(frame) => Some(frame),
            Prototype::Zero | Prototype::Reserved | Prototype::PagingFile(_) => None,
        }
    }

    /// How many of its pages are committed (all of them, but in a `SEC_RESERVE` section).
    #[must_use]
    pub fn committed_pages<M: TableMemory + ?Sized>(&self, memory: &M) -> u64 {
        committed_in(memory, self.header, 0, self.pages)
    }

    /// The header frame, the section's identity in the books of the spaces that map it.
    pub(crate) fn header(&self) -> PhysAddr {
        self.header
    }

    /// Gives every page's frame or slot back to `source`, the charge of its committed
    /// pages, and the header and prototypes to its page-table allocator.
    ///
    /// # Errors
    ///
    /// Returns the section and [`SpaceError::SectionInUse`] while views map it.
    pub fn close<M: TableMemory + ?Sized, A: FrameSource + ?Sized>(
        self,
        memory: &M,
        source: &mut A,
    ) -> Result<(), (Self, SpaceError)> {
        let views = self.views(memory);
        if views > 0 {
            return Err((self, SpaceError::SectionInUse { views }));
        }
        let committed = self.committed_pages(memory);
        for index in 0..self.pages {
            let page = prototype(memory, self.header, index);
            match page {
                Prototype::Resident(frame) => source.give_back(frame),
                Prototype::Zero | Prototype::Reserved => {}
                _ => source.drop_paged(page.paged().unwrap_or(SoftwarePte::DemandZero)),
            }
        }
        source.uncharge(PhysAddr::ZERO, committed);
        let count = (self.pages.div_ceil(PROTOTYPES_PER_FRAME) + 1) as usize;
        // The run came from this allocator in `create`; whole, it goes back.
        let _ = source.tables().deallocate_contiguous(self.header, count);
        Ok(())
    }
}

/// Whether `count` frames from `header` are a 4 KiB aligned run ending at or below 2^64:
/// then `header + offset` cannot overflow for any offset inside the run.
fn run_fits(header: PhysAddr, count: usize) -> bool {
    let bytes = (count as u64).checked_mul(PAGE);
    header.is_aligned(PAGE) && bytes.is_some_and(|bytes| header.checked_add(bytes - 1).is_some())
}

/// The view count in the header at `header`.
fn views_at<M: TableMemory + ?Sized>(memory: &M, header: PhysAddr) -> u32 {
    u32::try_from(memory.read_entry(header, EntrySize::Eight)).unwrap_or(u32::MAX)
}

/// The prototype entry of page `index` of the section at `header`. (The header and
/// prototypes are a run `create` checked to end below 2^64, and callers pass an `index`
/// below the section's size: the sum stays inside the run.)
pub(crate) fn prototype<M: TableMemory + ?Sized>(
    memory: &M,
    header: PhysAddr,
    index: u64,
) -> Prototype {
    Prototype::decode(memory.read_entry(header + PAGE + index * 8, EntrySize::Eight))
}

/// How many of the pages `[first, end)` of the section at `header` are committed.
pub(crate) fn committed_in<M: TableMemory + ?Sized>(
    memory: &M,
    header: PhysAddr,
    first: u64,
    end: u64,
) -> u64 {
    (first..end).filter(|&index| prototype(memory, header, index).is_committed()).count() as u64
}

/// The spans of reserved pages among the pages `[first, first + pages)` of the section at
/// `header`, counted from `first` (a view's own page numbers), lowest first.
pub(crate) fn reserved_spans<M: TableMemory + ?Sized>(
    memory: &M,
    header: PhysAddr,
    first: u64,
    pages: u64,
) -> impl Iterator<Item = (u64, u64)> + '_ {
    let reserved = move |page: u64| !prototype(memory, header, first + page).is_committed();
    let mut at = 0;
    core::iter::from_fn(move || {
        let start = (at..pages).find(|&page| reserved(page))?;
        let end = (start..pages).find(|&page| !reserved(page)).unwrap_or(pages);
        at = end;
        Some((start, end))
    })
}

/// Makes the prototype entry of page `index` of the section at `header` say `page`.
pub(crate) fn set_prototype<M: TableMemory + ?Sized>(
    memory: &mut M,
    header: PhysAddr,
    index: u64,
    page: Prototype,
) {
    memory.write_entry(header + PAGE + index * 8, EntrySize::Eight, page.encode());
}

/// The view recorded in record `slot` (below [`MAX_VIEWS`]) of the header at `header`.
pub(crate) fn view_at<M: TableMemory + ?Sized>(
    memory: &M,
    header: PhysAddr,
    slot: u64,
) -> Option<ViewRecord> {
    if slot >= MAX_VIEWS {
        return None;
    }
    // Below `MAX_VIEWS`, the record lies in the header frame.
    let at = header + 8 + slot * VIEW_WORDS * 8;
    let root = memory.read_entry(at, EntrySize::Eight);
    (root != 0).then(|| ViewRecord {
        root: PhysAddr::new(root),
        asid: Asid(memory.read_entry(at + 8, EntrySize::Eight) as u16),
        page0: VirtAddr::new(memory.read_entry(at + 16, EntrySize::Eight)),
    })
}

/// Whether the header at `header` has room to record one more view.
pub(crate) fn has_room<M: TableMemory + ?Sized>(memory: &M, header: PhysAddr) -> bool {
    u64::from(views_at(memory, header)) < MAX_VIEWS
}

/// Records `view` in the header at `header` and counts it (the caller checked the room).
pub(crate) fn add_view<M: TableMemory + ?Sized>(
    memory: &mut M,
    header: PhysAddr,
    view: ViewRecord,
) {
    let free = (0..MAX_VIEWS)
        .map(|slot| header + 8 + slot * VIEW_WORDS * 8)
        .find(|&at| memory.read_entry(at, EntrySize::Eight) == 0);
    if let Some(at) = free {
        memory.write_entry(at, EntrySize::Eight, view.root.as_u64());
        memory.write_entry(at + 8, EntrySize::Eight, u64::from(view.asid.0));
        memory.write_entry(at + 16, EntrySize::Eight, view.page0.as_u64());
        let views = views_at(memory, header).saturating_add(1);
        memory.write_entry(header, EntrySize::Eight, u64::from(views));
    }
}

/// Forgets one record of `view` in the header at `header` and counts one view less.
pub(crate) fn remove_view<M: TableMemory + ?Sized>(
    memory: &mut M,
    header: PhysAddr,
    view: ViewRecord,
) {
    let found = (0..MAX_VIEWS).map(|slot| header + 8 + slot * VIEW_WORDS * 8).find(|&at| {
        memory.read_entry(at, EntrySize::Eight) == view.root.as_u64()
            && memory.read_entry(at + 16, EntrySize::Eight) == view.page0.as_u64()
    });
    if let Some(at) = found {
        for word in 0..VIEW_WORDS {
            memory.write_entry(at + word * 8, EntrySize::Eight, 0);
        }
        let views = views_at(memory, header).saturating_sub(1);
        memory.write_entry(header, EntrySize::Eight, u64::from(views));
    }
}

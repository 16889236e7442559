//! Sections: memory that several address spaces can map at once.

use crate::addr::PhysAddr;
use crate::format::EntrySize;
use crate::frame::FrameAllocator;
use crate::memory::TableMemory;

use super::PAGE;
use super::error::SpaceError;

/// A section: zeroed, physically contiguous frames that views in several address spaces
/// map (Windows `CreateFileMapping` backed by the paging file; an executable image's
/// contents). A write through one writable view is seen through every other view;
/// write-copy views get private copies instead.
///
/// The section keeps a header frame before its pages, where it counts its views: a view
/// can be taken down (by `unmap_view`, or with its whole space by `destroy`) without the
/// section at hand, as a kernel's object header allows. Close it with
/// [`close`](Self::close) once no view maps it; its frames then go back to the allocator.
#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Section {
    header: PhysAddr,
    pages: u64,
}

impl Section {
    /// Creates a section of `pages` zeroed pages (taking one more frame for its header).
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::ZeroSize`], or [`SpaceError::Table`] with
    /// [`TableError::OutOfFrames`](crate::TableError::OutOfFrames) when no contiguous run
    /// of frames is free.
    pub fn create<M: TableMemory + ?Sized, A: FrameAllocator + ?Sized>(
        pages: u64,
        memory: &mut M,
        alloc: &mut A,
    ) -> Result<Self, SpaceError> {
        let count = usize::try_from(pages)
            .ok()
            .and_then(|n| n.checked_add(1))
            .ok_or(SpaceError::ZeroSize)?;
        if pages == 0 {
            return Err(SpaceError::ZeroSize);
        }
        let out_of_frames = SpaceError::Table(crate::TableError::OutOfFrames { needed: count });
        let header = alloc.allocate_contiguous(count, PAGE).map_err(|_| out_of_frames)?;
        for page in 0..=pages {
            memory.zero_frame(header + page * PAGE);
        }
        Ok(Self { header, pages })
    }

    /// The first frame of the section's pages.
    #[must_use]
    pub fn base(&self) -> PhysAddr {
        self.header + PAGE
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

    /// The header frame, the section's identity in the books of the spaces that map it.
    pub(crate) fn header(&self) -> PhysAddr {
        self.header
    }

    /// Gives the frames back.
    ///
    /// # Errors
    ///
    /// Returns the section and [`SpaceError::SectionInUse`] while views map it.
    pub fn close<M: TableMemory + ?Sized, A: FrameAllocator + ?Sized>(
        self,
        memory: &M,
        alloc: &mut A,
    ) -> Result<(), (Self, SpaceError)> {
        let views = self.views(memory);
        if views > 0 {
            return Err((self, SpaceError::SectionInUse { views }));
        }
        // The run came from this allocator in `create`; whole, it goes back.
        let _ = alloc.deallocate_contiguous(self.header, self.pages as usize + 1);
        Ok(())
    }
}

/// The view count in the header at `header`.
fn views_at<M: TableMemory + ?Sized>(memory: &M, header: PhysAddr) -> u32 {
    u32::try_from(memory.read_entry(header, EntrySize::Eight)).unwrap_or(u32::MAX)
}

/// Adds `delta` (+1 or -1) to the view count in the header at `header`.
pub(crate) fn count_view<M: TableMemory + ?Sized>(memory: &mut M, header: PhysAddr, delta: i32) {
    let views = views_at(memory, header).saturating_add_signed(delta);
    memory.write_entry(header, EntrySize::Eight, u64::from(views));
}

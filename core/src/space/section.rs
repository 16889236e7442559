//! Sections: memory that several address spaces can map at once.

use crate::addr::PhysAddr;
use crate::frame::FrameAllocator;
use crate::memory::TableMemory;

use super::error::SpaceError;
use super::regions::PAGE;

/// A section: zeroed, physically contiguous frames that views in several address spaces
/// map (Windows `CreateFileMapping` backed by the paging file; an executable image's
/// contents). A write through one writable view is seen through every other view;
/// write-copy views get private copies instead.
///
/// The section counts its views. Close it with [`close`](Self::close) once no view maps
/// it; its frames then go back to the allocator.
#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Section {
    base: PhysAddr,
    pages: u64,
    views: u32,
}

impl Section {
    /// Creates a section of `pages` zeroed pages.
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
        let count = usize::try_from(pages).map_err(|_| SpaceError::ZeroSize)?;
        if count == 0 {
            return Err(SpaceError::ZeroSize);
        }
        let out_of_frames = SpaceError::Table(crate::TableError::OutOfFrames { needed: count });
        let base = alloc.allocate_contiguous(count, PAGE).map_err(|_| out_of_frames)?;
        for page in 0..pages {
            memory.zero_frame(base + page * PAGE);
        }
        Ok(Self { base, pages, views: 0 })
    }

    /// The first frame.
    #[must_use]
    pub fn base(&self) -> PhysAddr {
        self.base
    }

    /// The size in pages.
    #[must_use]
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// How many views map it.
    #[must_use]
    pub fn views(&self) -> u32 {
        self.views
    }

    pub(crate) fn add_view(&mut self) {
        self.views += 1;
    }

    pub(crate) fn drop_view(&mut self) {
        self.views = self.views.saturating_sub(1);
    }

    /// Gives the frames back.
    ///
    /// # Errors
    ///
    /// Returns the section and [`SpaceError::SectionInUse`] while views map it.
    pub fn close<A: FrameAllocator + ?Sized>(
        self,
        alloc: &mut A,
    ) -> Result<(), (Self, SpaceError)> {
        if self.views > 0 {
            let views = self.views;
            return Err((self, SpaceError::SectionInUse { views }));
        }
        // The run came from this allocator in `create`; whole, it goes back.
        let _ = alloc.deallocate_contiguous(self.base, self.pages as usize);
        Ok(())
    }
}

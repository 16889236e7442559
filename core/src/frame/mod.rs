//! Physical frame allocation: the trait, the memory map it is built from, and allocators
//! that keep their books in caller-provided storage (no `alloc`).

use crate::addr::{PageSize, PhysAddr, Size4KiB};
use crate::error::FrameError;

mod bitmap;
mod free_list;
mod limited;
mod memory_map;
mod none;

pub use bitmap::BitmapAllocator;
pub use free_list::{FreeListAllocator, FreeRun};
pub use limited::LimitedAllocator;
pub use memory_map::{MemoryRegion, RegionKind};
pub use none::NoFrames;

/// The size of the frames that allocators hand out.
pub const FRAME_SIZE: u64 = Size4KiB::SIZE;

/// Hands out 4 KiB physical frames, one at a time or as contiguous aligned runs.
///
/// Fallible: running dry is an error, never a panic. The engine takes frames for tables
/// through this trait and gives back the ones it no longer needs.
pub trait FrameAllocator {
    /// Takes one free frame.
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::Exhausted`] when no frame is free.
    fn allocate(&mut self) -> Result<PhysAddr, FrameError>;

    /// Takes `count` contiguous free frames whose first address is a multiple of `align`
    /// (a power of two, at least [`FRAME_SIZE`]); for example 512 frames aligned to 2 MiB
    /// back one 2 MiB page.
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::InvalidRequest`] for a zero count or a bad alignment, and
    /// [`FrameError::Exhausted`] when no such run is free.
    fn allocate_contiguous(&mut self, count: usize, align: u64) -> Result<PhysAddr, FrameError>;

    /// Gives back one frame.
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::NotAllocated`] if the frame is not one this allocator handed
    /// out (unaligned, outside its memory, or already free). An allocator whose books live
    /// in fixed storage may return [`FrameError::StorageTooSmall`] when recording the free
    /// frame needs a slot it does not have. Nothing changes on error.
    fn deallocate(&mut self, frame: PhysAddr) -> Result<(), FrameError>;

    /// Gives back `count` contiguous frames starting at `start`.
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::InvalidRequest`] for a zero count,
    /// [`FrameError::NotAllocated`] if any of the frames is not allocated, and
    /// [`FrameError::StorageTooSmall`] as [`deallocate`](Self::deallocate) does. Nothing
    /// changes on error.
    fn deallocate_contiguous(&mut self, start: PhysAddr, count: usize) -> Result<(), FrameError>;

    /// The number of frames currently handed out.
    fn frames_in_use(&self) -> usize;
}

impl<A: FrameAllocator + ?Sized> FrameAllocator for &mut A {
    #[inline]
    fn allocate(&mut self) -> Result<PhysAddr, FrameError> {
        (**self).allocate()
    }
    fn allocate_contiguous(&mut self, count: usize, align: u64) -> Result<PhysAddr, FrameError> {
        (**self).allocate_contiguous(count, align)
    }
    #[inline]
    fn deallocate(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
        (**self).deallocate(frame)
    }
    fn deallocate_contiguous(&mut self, start: PhysAddr, count: usize) -> Result<(), FrameError> {
        (**self).deallocate_contiguous(start, count)
    }
    fn frames_in_use(&self) -> usize {
        (**self).frames_in_use()
    }
}

/// Checks the `count` and `align` of a contiguous request.
pub(crate) fn check_request(count: usize, align: u64) -> Result<(), FrameError> {
    if count == 0 || !align.is_power_of_two() || align < FRAME_SIZE {
        Err(FrameError::InvalidRequest)
    } else {
        Ok(())
    }
}

/// Converts a count that is known to fit, saturating otherwise.
pub(crate) fn to_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

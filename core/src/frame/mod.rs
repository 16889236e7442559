//! Physical frame allocation: the trait, the memory map it is built from, and allocators
//! that keep their books in caller-provided storage (no `alloc`).

use crate::addr::{PageSize, PhysAddr, Size4KiB};
use crate::error::FrameError;

mod bitmap;
pub mod boot;
mod free_list;
mod limited;
mod memory_map;
mod none;
mod placement;

pub use bitmap::BitmapAllocator;
pub use free_list::{FreeListAllocator, FreeRun};
pub use limited::LimitedAllocator;
pub use memory_map::{MemoryRegion, RegionKind};
pub use none::NoFrames;
pub use placement::BooksPlacement;

/// The size of the frames that allocators hand out.
pub const FRAME_SIZE: u64 = Size4KiB::SIZE;

/// Hands out 4 KiB physical frames, one at a time or as contiguous aligned runs.
///
/// Fallible: running dry is an error, never a panic. The engine takes frames for tables
/// through this trait and gives back the ones it no longer needs.
///
/// Only [`allocate`](Self::allocate) and [`frames_in_use`](Self::frames_in_use) are
/// required. The other methods have defaults for an allocator that cannot do them, a bump
/// allocator for example: freeing refuses with [`FrameError::Unsupported`], runs are
/// served only when they are one frame long, and the counts are `None`.
///
/// ```
/// use paging::frame::FrameAllocator;
/// use paging::{FrameError, PhysAddr};
///
/// /// Hands out frames upwards from `next`, never takes one back.
/// struct Bump { next: u64, end: u64, used: usize }
///
/// impl FrameAllocator for Bump {
///     fn allocate(&mut self) -> Result<PhysAddr, FrameError> {
///         if self.next >= self.end {
///             return Err(FrameError::Exhausted);
///         }
///         self.next += 4096;
///         self.used += 1;
///         Ok(PhysAddr::new(self.next - 4096))
///     }
///     fn frames_in_use(&self) -> usize {
///         self.used
///     }
/// }
///
/// let mut bump = Bump { next: 0x10_0000, end: 0x20_0000, used: 0 };
/// let frame = bump.allocate()?;
/// assert_eq!(bump.deallocate(frame), Err(FrameError::Unsupported { operation: "deallocate" }));
/// assert_eq!(bump.frames_free(), None);
/// # Ok::<(), FrameError>(())
/// ```
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
    /// The default serves a single frame aligned to [`FRAME_SIZE`] with
    /// [`allocate`](Self::allocate) and refuses anything longer or more aligned.
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::ZeroCount`] for a zero count, [`FrameError::BadAlignment`]
    /// for a bad alignment, and [`FrameError::Exhausted`] when no such run is free; the default returns
    /// [`FrameError::Unsupported`] for a run it cannot serve.
    fn allocate_contiguous(&mut self, count: usize, align: u64) -> Result<PhysAddr, FrameError> {
        check_request(count, align)?;
        if count == 1 && align == FRAME_SIZE {
            self.allocate()
        } else {
            Err(FrameError::Unsupported { operation: "allocate_contiguous" })
        }
    }

    /// Gives back one frame.
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::Unaligned`] if the address is not the start of a frame, and
    /// [`FrameError::NotAllocated`] if the frame is not one this allocator handed out
    /// (outside its memory, or already free). An allocator whose books live
    /// in fixed storage may return [`FrameError::StorageTooSmall`] when recording the free
    /// frame needs a slot it does not have. The default, for allocators that never take a
    /// frame back, returns [`FrameError::Unsupported`]. Nothing changes on error.
    fn deallocate(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
        let _ = frame;
        Err(FrameError::Unsupported { operation: "deallocate" })
    }

    /// Gives back `count` contiguous frames starting at `start`.
    ///
    /// The default gives back a single frame with [`deallocate`](Self::deallocate) and
    /// refuses longer runs (it could not undo a partial free).
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::ZeroCount`] for a zero count, [`FrameError::Unaligned`] if
    /// `start` is not the start of a frame, [`FrameError::NotAllocated`] if any of the
    /// frames is not allocated, and
    /// [`FrameError::StorageTooSmall`] as [`deallocate`](Self::deallocate) does; the
    /// default returns [`FrameError::Unsupported`] for a longer run. Nothing changes on
    /// error.
    fn deallocate_contiguous(&mut self, start: PhysAddr, count: usize) -> Result<(), FrameError> {
        match count {
            0 => Err(FrameError::ZeroCount),
            1 => self.deallocate(start),
            _ => Err(FrameError::Unsupported { operation: "deallocate_contiguous" }),
        }
    }

    /// The number of frames currently handed out.
    fn frames_in_use(&self) -> usize;

    /// The number of frames free now, if the allocator knows (the default says `None`).
    fn frames_free(&self) -> Option<usize> {
        None
    }

    /// The number of frames the allocator manages, free or in use, if it knows (the
    /// default says `None`).
    fn frames_usable(&self) -> Option<usize> {
        None
    }
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
    fn frames_free(&self) -> Option<usize> {
        (**self).frames_free()
    }
    fn frames_usable(&self) -> Option<usize> {
        (**self).frames_usable()
    }
}

/// Checks the `count` and `align` of a contiguous request.
pub(crate) fn check_request(count: usize, align: u64) -> Result<(), FrameError> {
    if count == 0 {
        Err(FrameError::ZeroCount)
    } else if !align.is_power_of_two() || align < FRAME_SIZE {
        Err(FrameError::BadAlignment { align })
    } else {
        Ok(())
    }
}

/// Checks that a freed `frame` is the start of a frame, the first thing a free checks: an
/// unaligned address is a caller's slip, not a frame that is free or foreign.
pub(crate) fn check_frame(frame: PhysAddr) -> Result<(), FrameError> {
    if frame.is_aligned(FRAME_SIZE) { Ok(()) } else { Err(FrameError::Unaligned { frame }) }
}

/// Converts a count that is known to fit, saturating otherwise.
pub(crate) fn to_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

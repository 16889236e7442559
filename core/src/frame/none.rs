//! An allocator with no frames: for calls that must neither take nor give back one.

use crate::addr::PhysAddr;
use crate::error::FrameError;

use super::FrameAllocator;

/// An allocator that has no frame to give and takes none back. Pass it where an operation
/// must not create or free a table (rewriting an entry that exists), or where committing
/// charges nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct NoFrames;

impl FrameAllocator for NoFrames {
    fn allocate(&mut self) -> Result<PhysAddr, FrameError> {
        Err(FrameError::Exhausted)
    }
    fn allocate_contiguous(&mut self, _count: usize, _align: u64) -> Result<PhysAddr, FrameError> {
        Err(FrameError::Exhausted)
    }
    fn deallocate(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
        Err(FrameError::NotAllocated { frame })
    }
    fn deallocate_contiguous(&mut self, start: PhysAddr, _count: usize) -> Result<(), FrameError> {
        Err(FrameError::NotAllocated { frame: start })
    }
    fn frames_in_use(&self) -> usize {
        0
    }
    fn frames_free(&self) -> Option<usize> {
        Some(0)
    }
    fn frames_usable(&self) -> Option<usize> {
        Some(0)
    }
}

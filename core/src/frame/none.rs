//! An allocator with no frames: for calls that must neither take nor give back one.

use crate::addr::PhysAddr;
use crate::error::FrameError;

use super::{FrameAllocator, check_frame};

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
        check_frame(frame)?;
        Err(FrameError::NotAllocated { frame })
    }
    fn deallocate_contiguous(&mut self, start: PhysAddr, count: usize) -> Result<(), FrameError> {
        if count == 0 {
            return Err(FrameError::ZeroCount);
        }
        self.deallocate(start)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_every_free_and_names_an_unaligned_one() {
        let odd = PhysAddr::new(0x1234);
        assert_eq!(NoFrames.deallocate(odd), Err(FrameError::Unaligned { frame: odd }));
        let frame = PhysAddr::new(0x2000);
        assert_eq!(NoFrames.deallocate(frame), Err(FrameError::NotAllocated { frame }));
        assert_eq!(NoFrames.deallocate_contiguous(frame, 0), Err(FrameError::ZeroCount));
        assert_eq!(
            NoFrames.deallocate_contiguous(odd, 2),
            Err(FrameError::Unaligned { frame: odd })
        );
        assert_eq!(NoFrames.allocate(), Err(FrameError::Exhausted));
    }
}

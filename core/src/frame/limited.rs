//! An allocator wrapper that runs dry after a set number of allocations, for
//! fault-injection tests.

use super::FrameAllocator;
use super::check_request;
use crate::addr::PhysAddr;
use crate::error::FrameError;

/// Wraps a [`FrameAllocator`] and refuses with [`FrameError::Exhausted`] once a budget of
/// successful allocations is spent, so tests can make the allocator run dry at a chosen
/// point.
///
/// Each successful [`allocate`](FrameAllocator::allocate) or
/// [`allocate_contiguous`](FrameAllocator::allocate_contiguous) call spends one unit of
/// the budget, however many frames it takes; failed calls spend nothing. Invalid requests
/// are reported ([`FrameError::ZeroCount`], [`FrameError::BadAlignment`]) whatever the
/// budget. Frees pass
/// through and do not refill the budget.
///
/// ```
/// use paging::frame::{BitmapAllocator, FrameAllocator, LimitedAllocator, MemoryRegion};
/// use paging::FrameError;
///
/// let mut storage = [0u64; 1];
/// let frames = BitmapAllocator::new(&mut storage, &[MemoryRegion::usable(0, 0x4_0000)])?;
/// let mut frames = LimitedAllocator::new(frames, 2);
/// let a = frames.allocate()?;
/// frames.allocate_contiguous(4, 0x4000)?;
/// assert_eq!(frames.allocate(), Err(FrameError::Exhausted));
/// frames.deallocate(a)?; // frees still work
/// frames.set_budget(1);
/// assert_eq!(frames.allocate(), Ok(a));
/// assert_eq!(frames.remaining(), 0);
/// assert_eq!(frames.into_inner().frames_in_use(), 5);
/// # Ok::<(), FrameError>(())
/// ```
#[derive(Clone, Debug)]
pub struct LimitedAllocator<A> {
    inner: A,
    remaining: usize,
}

impl<A: FrameAllocator> LimitedAllocator<A> {
    /// Wraps `inner`, allowing `budget` more successful allocation calls.
    #[must_use]
    pub const fn new(inner: A, budget: usize) -> Self {
        Self { inner, remaining: budget }
    }

    /// Allows `budget` more successful allocation calls from now on.
    pub fn set_budget(&mut self, budget: usize) {
        self.remaining = budget;
    }

    /// The number of successful allocation calls still allowed.
    #[must_use]
    pub const fn remaining(&self) -> usize {
        self.remaining
    }

    /// The wrapped allocator.
    #[must_use]
    pub const fn inner(&self) -> &A {
        &self.inner
    }

    /// The wrapped allocator, mutably (allocations through it spend no budget).
    #[must_use]
    pub fn inner_mut(&mut self) -> &mut A {
        &mut self.inner
    }

    /// Unwraps the allocator.
    #[must_use]
    pub fn into_inner(self) -> A {
        self.inner
    }

    /// Spends one unit of budget, or refuses if none is left.
    fn spend(&mut self) -> Result<(), FrameError> {
        self.remaining = self.remaining.checked_sub(1).ok_or(FrameError::Exhausted)?;
        Ok(())
    }
}

impl<A: FrameAllocator> FrameAllocator for LimitedAllocator<A> {
    /// Takes one frame from the wrapped allocator if the budget allows.
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::Exhausted`] if the budget is spent, and whatever the
    /// wrapped allocator returns otherwise.
    fn allocate(&mut self) -> Result<PhysAddr, FrameError> {
        if self.remaining == 0 {
            return Err(FrameError::Exhausted);
        }
        let frame = self.inner.allocate()?;
        self.spend()?;
        Ok(frame)
    }

    /// Takes a contiguous run from the wrapped allocator if the budget allows.
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::ZeroCount`] for a zero count, [`FrameError::BadAlignment`]
    /// for a bad alignment,
    /// [`FrameError::Exhausted`] if the budget is spent, and whatever the wrapped
    /// allocator returns otherwise.
    fn allocate_contiguous(&mut self, count: usize, align: u64) -> Result<PhysAddr, FrameError> {
        check_request(count, align)?;
        if self.remaining == 0 {
            return Err(FrameError::Exhausted);
        }
        let start = self.inner.allocate_contiguous(count, align)?;
        self.spend()?;
        Ok(start)
    }

    /// Passes the frame back to the wrapped allocator.
    ///
    /// # Errors
    ///
    /// Whatever the wrapped allocator returns.
    fn deallocate(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
        self.inner.deallocate(frame)
    }

    /// Passes the frames back to the wrapped allocator.
    ///
    /// # Errors
    ///
    /// Whatever the wrapped allocator returns.
    fn deallocate_contiguous(&mut self, start: PhysAddr, count: usize) -> Result<(), FrameError> {
        self.inner.deallocate_contiguous(start, count)
    }

    fn frames_in_use(&self) -> usize {
        self.inner.frames_in_use()
    }

    fn frames_free(&self) -> Option<usize> {
        self.inner.frames_free()
    }

    fn frames_usable(&self) -> Option<usize> {
        self.inner.frames_usable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{BitmapAllocator, MemoryRegion};

    #[test]
    fn runs_dry_at_the_chosen_point() {
        let mut storage = [0u64; 1];
        let map = [MemoryRegion::usable(0, 64 * 4096)];
        let inner = BitmapAllocator::new(&mut storage, &map).unwrap();
        let mut frames = LimitedAllocator::new(inner, 3);
        assert_eq!(frames.allocate_contiguous(0, 4096), Err(FrameError::ZeroCount));
        assert_eq!(frames.allocate_contiguous(65, 4096), Err(FrameError::Exhausted));
        assert_eq!(frames.remaining(), 3, "failed calls spend nothing");
        let a = frames.allocate().unwrap();
        frames.allocate_contiguous(8, 4096).unwrap();
        frames.allocate().unwrap();
        assert_eq!(frames.remaining(), 0);
        assert_eq!(frames.allocate(), Err(FrameError::Exhausted));
        assert_eq!(frames.allocate_contiguous(1, 4096), Err(FrameError::Exhausted));
        assert_eq!(
            frames.allocate_contiguous(1, 3000),
            Err(FrameError::BadAlignment { align: 3000 })
        );
        assert_eq!(frames.frames_in_use(), 10);
        frames.deallocate(a).unwrap();
        assert_eq!(frames.deallocate(a), Err(FrameError::NotAllocated { frame: a }));
        let odd = PhysAddr::new(0x1234);
        assert_eq!(frames.deallocate(odd), Err(FrameError::Unaligned { frame: odd }));
        assert_eq!(frames.inner().frames_in_use(), 9);
        assert_eq!(frames.inner_mut().allocate(), Ok(a));
        frames.set_budget(1);
        assert!(frames.allocate().is_ok());
        assert_eq!(frames.allocate(), Err(FrameError::Exhausted));
        assert_eq!(frames.into_inner().frames_in_use(), 11);
    }

    #[test]
    fn wraps_a_mutable_reference() {
        let mut storage = [0u64; 1];
        let map = [MemoryRegion::usable(0, 4 * 4096)];
        let mut inner = BitmapAllocator::new(&mut storage, &map).unwrap();
        let mut frames = LimitedAllocator::new(&mut inner, 1);
        frames.allocate().unwrap();
        assert_eq!(frames.allocate(), Err(FrameError::Exhausted));
        assert_eq!(inner.frames_in_use(), 1);
    }
}

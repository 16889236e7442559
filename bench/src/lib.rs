//! Fixtures shared by the benchmarks: host memory that holds page tables, and one frame
//! allocator that both our engine and the `x86_64` crate use, so that the two are measured
//! on the same memory with the same allocation cost.

pub mod ops;
pub mod sim_ops;

use paging::{ArenaMemory, FrameAllocator, FrameBuf, FrameError, PhysAddr};
use x86_64::structures::paging::{
    FrameAllocator as X86FrameAllocator, FrameDeallocator, OffsetPageTable, PageTable as X86Table,
    PhysFrame, Size4KiB,
};

/// The number of 4 KiB pages the engine benchmarks map: 1 GiB.
pub const PAGES: u64 = 1 << 18;
/// Where the benchmarks map virtual memory (a 1 GiB-aligned user address).
pub const VIRT: u64 = 0x1000_0000_0000;
/// Where the mapped physical memory starts (never touched: only entries point there).
pub const PHYS: u64 = 0x1_0000_0000;
/// Frames of table memory: room for the tables of [`PAGES`] pages and a few more.
pub const TABLE_FRAMES: usize = 600;

/// Host memory standing in for physical RAM: frame `i` is physical address `i * 4096`.
#[derive(Debug)]
pub struct Arena {
    frames: Vec<FrameBuf>,
}

impl Arena {
    /// An arena of `frames` zeroed frames.
    #[must_use]
    pub fn new(frames: usize) -> Self {
        Self { frames: vec![FrameBuf::ZERO; frames] }
    }

    /// The arena as our engine's table memory.
    pub fn memory(&mut self) -> ArenaMemory<'_> {
        ArenaMemory::new(&mut self.frames, PhysAddr::ZERO)
    }

    /// The `x86_64` crate's page table whose root is frame 0 of the arena, with the arena as
    /// its physical-memory window.
    pub fn x86_64_table(&mut self) -> OffsetPageTable<'_> {
        let base = self.frames.as_mut_ptr();
        // SAFETY: frame 0 is a zeroed or previously built, 4 KiB-aligned page table inside
        // the arena, and the arena maps physical address `p` at `base + p` for every frame
        // the allocator hands out (all inside the arena). The table borrows the arena
        // mutably for its whole life, so nothing else aliases the memory.
        unsafe {
            let root = &mut *base.cast::<X86Table>();
            OffsetPageTable::new(root, x86_64::VirtAddr::new(base as u64))
        }
    }

    /// The raw frames, for the lower-bound loop.
    pub fn frames_mut(&mut self) -> &mut [FrameBuf] {
        &mut self.frames
    }
}

/// A frame allocator that hands out the arena's frames in order from frame 1 (frame 0 is
/// the `x86_64` crate's root) and takes frames back onto a stack. Both engines use it.
#[derive(Debug)]
pub struct Frames {
    next: u64,
    end: u64,
    free: Vec<u64>,
}

impl Frames {
    /// Frames 1 to `frames - 1`.
    #[must_use]
    pub fn new(frames: usize) -> Self {
        Self { next: 1, end: frames as u64, free: Vec::new() }
    }

    fn take(&mut self) -> Option<u64> {
        if let Some(frame) = self.free.pop() {
            return Some(frame);
        }
        (self.next < self.end).then(|| {
            self.next += 1;
            (self.next - 1) * 4096
        })
    }
}

impl FrameAllocator for Frames {
    fn allocate(&mut self) -> Result<PhysAddr, FrameError> {
        self.take().map(PhysAddr::new).ok_or(FrameError::Exhausted)
    }

    fn allocate_contiguous(&mut self, _count: usize, _align: u64) -> Result<PhysAddr, FrameError> {
        Err(FrameError::Exhausted)
    }

    fn deallocate(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
        self.free.push(frame.as_u64());
        Ok(())
    }

    fn deallocate_contiguous(&mut self, start: PhysAddr, count: usize) -> Result<(), FrameError> {
        (0..count as u64).for_each(|i| self.free.push(start.as_u64() + i * 4096));
        Ok(())
    }

    fn frames_in_use(&self) -> usize {
        (self.next - 1) as usize - self.free.len()
    }
}

// SAFETY: every frame handed out is a distinct, unused frame of the arena (a fresh one, or
// one given back by `deallocate_frame`, which the caller no longer uses).
unsafe impl X86FrameAllocator<Size4KiB> for Frames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        self.take().map(|addr| PhysFrame::containing_address(x86_64::PhysAddr::new(addr)))
    }
}

impl FrameDeallocator<Size4KiB> for Frames {
    unsafe fn deallocate_frame(&mut self, frame: PhysFrame<Size4KiB>) {
        self.free.push(frame.start_address().as_u64());
    }
}

/// `count` pseudo-random page indices below [`PAGES`] (a fixed permutation-like walk, the
/// same for every run and both engines).
#[must_use]
pub fn random_pages(count: u64) -> Vec<u64> {
    (0..count).map(|i| (i.wrapping_mul(2_654_435_761) ^ (i >> 7)) % PAGES).collect()
}

//! Frames taken before an operation changes anything, so that running dry can only happen
//! while nothing has been written yet.
//!
//! The reserve needs no storage of its own: each reserved frame holds the address of the
//! next one in its first word, a list threaded through memory the engine already owns.

use crate::addr::PhysAddr;
use crate::error::TableError;
use crate::format::{EntrySize, PageTableFormat};
use crate::frame::FrameAllocator;
use crate::memory::TableMemory;

/// The link value that ends the list (frame addresses are 4 KiB aligned, so never 1).
const END: u64 = 1;

/// Whether `frame` can hold a table or a fresh page: aligned, in `memory`, and within the
/// physical width of format `F` (aligned, its last byte cannot pass 2^64).
pub(crate) fn usable<F: PageTableFormat, M: TableMemory>(memory: &M, frame: PhysAddr) -> bool {
    frame.is_aligned(4096) && memory.contains(frame) && F::phys_in_range(frame + 4095)
}

/// A list of frames taken from the allocator for one operation.
#[derive(Debug)]
pub(crate) struct Reserve {
    head: u64,
    count: usize,
}

impl Reserve {
    /// An empty reserve.
    pub const fn empty() -> Self {
        Self { head: END, count: 0 }
    }

    /// Takes `needed` frames, or none at all. Each must be a 4 KiB frame that `memory`
    /// reaches and that format `F` can point to (a table, or a fresh page, goes in it).
    pub fn fill<F: PageTableFormat, M: TableMemory, A: FrameAllocator + ?Sized>(
        memory: &mut M,
        alloc: &mut A,
        needed: usize,
    ) -> Result<Self, TableError> {
        let mut reserve = Self::empty();
        while reserve.count < needed {
            let failure = match alloc.allocate() {
                Ok(frame) if usable::<F, M>(memory, frame) => {
                    memory.write_entry(frame, EntrySize::Eight, reserve.head);
                    reserve.head = frame.as_u64();
                    reserve.count += 1;
                    continue;
                }
                Ok(frame) => {
                    // The allocator handed out a frame the tables cannot live in.
                    let _ = alloc.deallocate(frame);
                    TableError::FrameOutsideMemory { frame }
                }
                Err(source) => TableError::OutOfFrames { needed, got: reserve.count, source },
            };
            reserve.release(memory, alloc);
            return Err(failure);
        }
        Ok(reserve)
    }

    /// Takes one frame from the reserve (its contents are garbage: zero it before use).
    pub fn pop<M: TableMemory>(&mut self, memory: &M) -> Option<PhysAddr> {
        if self.head == END {
            return None;
        }
        let frame = PhysAddr::new(self.head);
        self.head = memory.read_entry(frame, EntrySize::Eight);
        self.count -= 1;
        Some(frame)
    }

    /// Gives every frame left back to the allocator, with its link word zeroed: frames
    /// the engine frees are empty tables, so a refused call leaves free memory as it was.
    pub fn release<M: TableMemory, A: FrameAllocator + ?Sized>(
        &mut self,
        memory: &mut M,
        alloc: &mut A,
    ) {
        while let Some(frame) = self.pop(memory) {
            memory.write_entry(frame, EntrySize::Eight, 0);
            // The frame came from this allocator moments ago; it cannot refuse it back.
            let _ = alloc.deallocate(frame);
        }
    }
}

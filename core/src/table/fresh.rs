//! Ranges whose memory the engine takes from the frame allocator and gives back to it:
//! allocate and map (fresh zeroed frames), unmap and free.
//!
//! They run through the same two passes as every range operation. The dry run counts a
//! frame for each fresh page beside the tables, so the frames for both are taken before
//! anything is written: an allocator that runs dry halfway leaves the tables and the
//! allocator as they were. Frames unmapped are given back during the real run, with the
//! allocator the call already holds (a callback could not borrow it a second time).

use core::marker::PhantomData;

use crate::addr::VirtAddr;
use crate::error::TableError;
use crate::flags::PageFlags;
use crate::format::PageTableFormat;
use crate::frame::FrameAllocator;
use crate::memory::TableMemory;
use crate::tlb::Flush;

use super::edits::{FreshMapEdit, UnmapFreeEdit};
use super::{Holes, PageTable, Unmapped, check};

impl<F: PageTableFormat, M: TableMemory> PageTable<F, M> {
    /// Maps every base page of `[virt, virt + len)` to a fresh frame from `alloc`, zeroed
    /// through the table memory, with `flags`: all of it or nothing.
    ///
    /// The frames come one by one, so the pages are base pages (4 KiB on x86). Nothing may
    /// be mapped in the range yet. The tables and the frames are all taken before the first
    /// entry is written; on error, every frame taken went back and the tables are as they
    /// were. The new entries replace non-present ones: the returned flush is empty.
    /// [`unmap_and_free_range`](Self::unmap_and_free_range) undoes it.
    ///
    /// # Errors
    ///
    /// Returns [`TableError::EmptyRange`], [`TableError::Unaligned`],
    /// [`TableError::UnalignedSize`], [`TableError::NonCanonical`] (in a 32-bit format
    /// [`TableError::BeyondAddressSpace`]), [`TableError::OutOfRange`],
    /// [`TableError::UnsupportedFlags`], [`TableError::AlreadyMapped`] or
    /// [`TableError::HugePageInTheWay`] for the first occupied page,
    /// [`TableError::OutOfFrames`] (`needed` counts the tables and the pages),
    /// [`TableError::FrameOutsideMemory`] for a frame the tables cannot use, and
    /// [`TableError::CorruptEntry`]. Nothing changes on error.
    pub fn allocate_and_map_range<A: FrameAllocator + ?Sized>(
        &mut self,
        virt: VirtAddr,
        len: u64,
        flags: PageFlags,
        alloc: &mut A,
    ) -> Result<Flush, TableError> {
        let span = check::virt_range::<F>(virt, len, F::leaf_size(1))?;
        check::flags::<F>(flags)?;
        let mut edit = FreshMapEdit { flags, format: PhantomData };
        self.run_edit(&mut edit, span, alloc)
    }

    /// Unmaps every page in `[virt, virt + len)` as [`unmap_range`](Self::unmap_range)
    /// does, and gives each page's frames back to `alloc`: a huge page as one contiguous
    /// run of its size, a part of a huge page the range splits off frame by frame.
    ///
    /// What it cannot give back goes to `on_not_freed`: payloads (a swap slot is the
    /// caller's to free), and pages whose frames `alloc` refuses (a device's memory, or
    /// frames another allocator handed out), which stay the caller's.
    ///
    /// The frames are back in `alloc` before the returned flush is applied: apply it
    /// before `alloc` hands out a frame again, or another CPU's TLB may still write to a
    /// frame that has a new owner.
    ///
    /// # Errors
    ///
    /// As [`unmap_range`](Self::unmap_range). Nothing changes, no frame is given back and
    /// `on_not_freed` is not called on error.
    pub fn unmap_and_free_range<A: FrameAllocator + ?Sized>(
        &mut self,
        virt: VirtAddr,
        len: u64,
        holes: Holes,
        alloc: &mut A,
        on_not_freed: impl FnMut(Unmapped),
    ) -> Result<Flush, TableError> {
        let span = check::virt_range::<F>(virt, len, F::leaf_size(1))?;
        let mut edit =
            UnmapFreeEdit { holes, reclaim: self.reclaim, on_not_freed, format: PhantomData };
        self.run_edit(&mut edit, span, alloc)
    }
}

//! Working with the [`x86_64`] crate (feature `x86_64`): frame-allocator
//! adapters each way, and a guide for porting code from its `Mapper` to this engine.
//!
//! The conversions of addresses, pages, frames and flags are `From`/`TryFrom` impls in
//! `paging` ([`paging::interop::x86_64`], which this feature turns on): Rust's orphan rule
//! puts an impl between two foreign types in the crate of one of them.
//!
//! # The allocators
//!
//! - [`ForX86_64`] lends one of this crate's [`paging::FrameAllocator`]s to the x86_64
//!   crate, as its `FrameAllocator<S>` and `FrameDeallocator<S>` for 4 KiB, 2 MiB and
//!   1 GiB frames (the larger sizes through
//!   [`allocate_contiguous`](paging::FrameAllocator::allocate_contiguous)). The x86_64
//!   crate's deallocator cannot report an error, so the adapter counts refused frees
//!   ([`ForX86_64::failed_deallocations`]) and keeps the last error.
//! - [`FromX86_64`] lends the x86_64 crate's `FrameAllocator<Size4KiB> +
//!   FrameDeallocator<Size4KiB>` to this engine, and [`FromX86_64AllocateOnly`] one that
//!   cannot free (such as the boot-info allocators of many tutorials): its frees refuse
//!   with [`FrameError::Unsupported`]. Both serve single frames only; a longer run asked
//!   of them is [`FrameError::Unsupported`].
//!
//! # Porting from the x86_64 crate's `Mapper`
//!
//! | x86_64 crate | `paging` |
//! |---|---|
//! | `OffsetPageTable::new(level_4_table, offset)` | `PageTable::<X86_64, _>::from_root(root, DirectMap::new(offset, start, end))`: the `unsafe` is in [`DirectMap::new`](crate::hw::DirectMap::new), once |
//! | `unsafe { mapper.map_to(page, frame, flags, &mut frames) }?.flush()` | `table.map(page, frame, flags, &mut frames)?.apply(&mut tlb)`: a safe call; the new entry replaced a non-present one, so the [`Flush`](paging::Flush) is empty |
//! | `identity_map`, a loop of `map_to` | [`map_range`](paging::PageTable::map_range)`(virt, phys, len, flags, &mut frames)`: all or nothing, with the largest pages the alignment allows |
//! | `mapper.translate_addr(addr)` → `Option<PhysAddr>` | [`translate`](paging::PageTable::translate)`(addr)?.phys` (a [`Translation`](paging::Translation) also has the page, its size, level and flags; `Err(TableError::NotMapped)` where they give `None`) |
//! | `mapper.translate(addr)` → `TranslateResult` | the same [`translate`](paging::PageTable::translate), or [`walk`](paging::PageTable::walk) for every entry on the way |
//! | `mapper.unmap(page)?` → `(frame, MapperFlush)` | [`unmap`](paging::PageTable::unmap)`(page, &mut frames)?` → `(frame, flags, Flush)`: it takes the allocator to give back the tables the unmap left empty |
//! | `unsafe { mapper.update_flags(page, flags) }` | [`protect`](paging::PageTable::protect)`(page, flags)` (keeps the accessed and dirty bits) |
//! | `flush.flush()`, `flush.ignore()`, `tlb::flush_all()` | [`Flush::apply`](paging::Flush::apply)`(&mut tlb)` with a [`HwTlb`](crate::hw::HwTlb) (INVLPG, INVPCID or a CR3 reload as the flush needs), [`Flush::ignore`](paging::Flush::ignore) for a table that is not live |
//! | `unsafe { mapper.clean_up(&mut frames) }` | nothing to do: empty tables go back to the allocator as the unmap that empties them (unless [`keep_empty_tables`](paging::PageTable::keep_empty_tables)`(true)`); [`destroy`](paging::PageTable::destroy) gives back a whole tree |
//! | `Cr3::write(frame, flags)` | [`HwTlb::load_root`](crate::hw::HwTlb::load_root)`(root, asid)` |
//! | `PageTableFlags::PRESENT \| WRITABLE \| NO_EXECUTE` | [`PageFlags::WRITABLE`](paging::PageFlags::WRITABLE): present and no-execute are the default; ask for [`EXECUTABLE`](paging::PageFlags::EXECUTABLE) |
//! | `x86_64::VirtAddr`, `Page<S>`, `PhysFrame<S>` | [`paging::VirtAddr`], [`paging::Page<S>`], [`paging::Frame<S>`]: `.into()` from theirs, `.try_into()?` to theirs |
//!
//! Errors are typed ([`paging::TableError`]) and a refused call changes nothing, where the
//! x86_64 crate may leave the tables it created on the way.
//!
//! ```
//! use paging::frame::{BitmapAllocator, MemoryRegion};
//! use paging::{ArenaMemory, Frame, FrameBuf, Page, PageFlags, PageTable, PhysAddr};
//! use paging_x86::X86_64;
//! use paging_x86::interop::ForX86_64;
//! use x86_64::structures::paging::{FrameAllocator, PhysFrame, Size4KiB};
//!
//! let mut ram = vec![FrameBuf::ZERO; 64];
//! let mut memory = ArenaMemory::new(&mut ram, PhysAddr::ZERO);
//! let mut bitmap = [0u64; 1];
//! let mut frames = BitmapAllocator::new(&mut bitmap, &[MemoryRegion::usable(0, 64 * 4096)])?;
//!
//! // Code written for the x86_64 crate takes frames from our allocator...
//! // SAFETY: the bitmap manages frames that nothing else uses.
//! let mut lent = unsafe { ForX86_64::new(&mut frames) };
//! let theirs: PhysFrame<Size4KiB> = lent.allocate_frame().expect("a free frame");
//! drop(lent);
//!
//! // ...and the engine maps it with the x86_64 crate's types converted.
//! let page: Page = x86_64::structures::paging::Page::<Size4KiB>::containing_address(
//!     x86_64::VirtAddr::new(0xffff_8000_0000_0000),
//! )
//! .into();
//! let mut table = PageTable::<X86_64, _>::new(&mut memory, &mut frames)?;
//! table.map(page, Frame::from(theirs), PageFlags::WRITABLE, &mut frames)?.ignore();
//! assert_eq!(table.translate(page.start())?.phys, PhysAddr::from(theirs.start_address()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use ::x86_64::structures::paging::{self as theirs, FrameDeallocator, PhysFrame};
use paging::frame::FRAME_SIZE;
use paging::{Frame, FrameAllocator, FrameError, PageSize, PhysAddr};

/// Lends a [`paging::FrameAllocator`] to code written for the x86_64 crate, as its
/// `FrameAllocator<S>` and `FrameDeallocator<S>` for 4 KiB, 2 MiB and 1 GiB frames.
///
/// A frame the x86_64 crate cannot hold (at or beyond 2^52) is given back at once and
/// reported as no frame. A free the inner allocator refuses (a double free, a frame it
/// does not manage) is counted in [`failed_deallocations`](Self::failed_deallocations) and
/// kept in [`last_error`](Self::last_error): the x86_64 crate's trait cannot return it.
#[derive(Debug)]
pub struct ForX86_64<A> {
    inner: A,
    failed_deallocations: usize,
    last_error: Option<FrameError>,
}

impl<A: FrameAllocator> ForX86_64<A> {
    /// Wraps `inner`.
    ///
    /// # Safety
    ///
    /// The x86_64 crate's `FrameAllocator` is an `unsafe` trait: it trusts the frames it
    /// gets to be unused. `inner` must hand out only frames that nothing else uses (an
    /// allocator built from a memory map whose usable ranges are really free, for
    /// example).
    pub const unsafe fn new(inner: A) -> Self {
        Self { inner, failed_deallocations: 0, last_error: None }
    }

    /// The wrapped allocator.
    pub const fn inner(&self) -> &A {
        &self.inner
    }

    /// Unwraps the allocator.
    pub fn into_inner(self) -> A {
        self.inner
    }

    /// How many frees the inner allocator refused.
    pub const fn failed_deallocations(&self) -> usize {
        self.failed_deallocations
    }

    /// The last error of the inner allocator, of an allocation or a free.
    pub const fn last_error(&self) -> Option<FrameError> {
        self.last_error
    }

    /// Takes a frame of size `S` from the inner allocator, as the x86_64 crate's type.
    fn take<S: PageSize, T>(&mut self) -> Option<PhysFrame<T>>
    where
        T: theirs::PageSize,
        PhysFrame<T>: TryFrom<Frame<S>>,
    {
        let frames = usize::try_from(S::SIZE / FRAME_SIZE).unwrap_or(usize::MAX);
        let start = match self.inner.allocate_contiguous(frames, S::SIZE) {
            Ok(start) => start,
            Err(error) => return self.fail(error),
        };
        match Frame::<S>::from_start(start).ok().and_then(|frame| frame.try_into().ok()) {
            Some(frame) => Some(frame),
            None => {
                // Out of the x86_64 crate's reach (or misaligned): give it straight back.
                self.give_back(start, frames);
                None
            }
        }
    }

    /// Gives `frames` frames from `start` back to the inner allocator, recording a refusal.
    fn give_back(&mut self, start: PhysAddr, frames: usize) {
        if let Err(error) = self.inner.deallocate_contiguous(start, frames) {
            self.failed_deallocations = self.failed_deallocations.saturating_add(1);
            self.fail::<()>(error);
        }
    }

    /// Records `error` and returns no value.
    fn fail<T>(&mut self, error: FrameError) -> Option<T> {
        self.last_error = Some(error);
        None
    }
}

/// Writes the x86_64 crate's allocator traits for one frame size, as (ours, theirs).
macro_rules! lend_size {
    ($($ours:ty => $theirs:ty),* $(,)?) => {$(
        // SAFETY: the frames come from `inner`, which hands out only unused frames (the
        // contract of `ForX86_64::new`), each at most once until it is given back.
        unsafe impl<A: FrameAllocator> theirs::FrameAllocator<$theirs> for ForX86_64<A> {
            fn allocate_frame(&mut self) -> Option<PhysFrame<$theirs>> {
                self.take::<$ours, $theirs>()
            }
        }

        impl<A: FrameAllocator> FrameDeallocator<$theirs> for ForX86_64<A> {
            /// Gives the frame back to the inner allocator; a refusal is counted in
            /// [`failed_deallocations`](ForX86_64::failed_deallocations).
            unsafe fn deallocate_frame(&mut self, frame: PhysFrame<$theirs>) {
                let frames = usize::try_from(<$ours>::SIZE / FRAME_SIZE).unwrap_or(usize::MAX);
                self.give_back(frame.start_address().into(), frames);
            }
        }
    )*};
}

lend_size!(
    paging::Size4KiB => theirs::Size4KiB,
    paging::Size2MiB => theirs::Size2MiB,
    paging::Size1GiB => theirs::Size1GiB,
);

/// Lends the x86_64 crate's `FrameAllocator<Size4KiB> + FrameDeallocator<Size4KiB>` to
/// this engine as a [`paging::FrameAllocator`].
///
/// It serves single frames; a longer run is [`FrameError::Unsupported`] (the x86_64 crate
/// has no contiguous allocation). It counts the frames it handed out and took back, and
/// refuses to give back an unaligned address ([`FrameError::Unaligned`]) or one beyond
/// 2^52 ([`FrameError::NotAllocated`]); it cannot tell a double free, which the inner
/// deallocator receives.
#[derive(Debug)]
pub struct FromX86_64<A> {
    inner: A,
    in_use: usize,
}

impl<A> FromX86_64<A> {
    /// Wraps `inner`.
    ///
    /// # Safety
    ///
    /// Every frame given back through this adapter's
    /// [`deallocate`](paging::FrameAllocator::deallocate) reaches the x86_64 crate's
    /// `unsafe fn deallocate_frame`, whose contract is that the frame is unused. The
    /// caller must see to it that only unused frames are given back: the engine gives back
    /// only tables it has unlinked (and flushed from the TLB once the returned
    /// [`Flush`](paging::Flush) is applied); other code holding the adapter must do as well.
    pub const unsafe fn new(inner: A) -> Self {
        Self { inner, in_use: 0 }
    }

    /// The wrapped allocator.
    pub const fn inner(&self) -> &A {
        &self.inner
    }

    /// Unwraps the allocator.
    pub fn into_inner(self) -> A {
        self.inner
    }
}

impl<A> FrameAllocator for FromX86_64<A>
where
    A: theirs::FrameAllocator<theirs::Size4KiB> + FrameDeallocator<theirs::Size4KiB>,
{
    /// Takes a frame from the inner allocator.
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::Exhausted`] when the inner allocator has none.
    fn allocate(&mut self) -> Result<PhysAddr, FrameError> {
        let frame = self.inner.allocate_frame().ok_or(FrameError::Exhausted)?;
        self.in_use = self.in_use.saturating_add(1);
        Ok(frame.start_address().into())
    }

    /// Gives `frame` to the inner deallocator.
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::Unaligned`] for an unaligned address, and
    /// [`FrameError::NotAllocated`] for one beyond 2^52 or when this adapter has no frame
    /// out.
    fn deallocate(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
        let refused = FrameError::NotAllocated { frame };
        let start = Frame::<paging::Size4KiB>::from_start(frame)
            .map_err(|_| FrameError::Unaligned { frame })?;
        let theirs = PhysFrame::<theirs::Size4KiB>::try_from(start).map_err(|_| refused)?;
        self.in_use = self.in_use.checked_sub(1).ok_or(refused)?;
        // SAFETY: `FromX86_64::new`'s caller promised that only unused frames come back.
        unsafe {
            self.inner.deallocate_frame(theirs);
        }
        Ok(())
    }

    fn frames_in_use(&self) -> usize {
        self.in_use
    }
}

/// Lends the x86_64 crate's `FrameAllocator<Size4KiB>` that cannot free to this engine:
/// frees refuse with [`FrameError::Unsupported`], and the engine keeps a table it cannot
/// give back linked (empty, reused by the next mapping there) instead of losing it.
#[derive(Debug)]
pub struct FromX86_64AllocateOnly<A> {
    inner: A,
    in_use: usize,
}

impl<A> FromX86_64AllocateOnly<A> {
    /// Wraps `inner`.
    pub const fn new(inner: A) -> Self {
        Self { inner, in_use: 0 }
    }

    /// The wrapped allocator.
    pub const fn inner(&self) -> &A {
        &self.inner
    }

    /// Unwraps the allocator.
    pub fn into_inner(self) -> A {
        self.inner
    }
}

impl<A: theirs::FrameAllocator<theirs::Size4KiB>> FrameAllocator for FromX86_64AllocateOnly<A> {
    /// Takes a frame from the inner allocator.
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::Exhausted`] when the inner allocator has none.
    fn allocate(&mut self) -> Result<PhysAddr, FrameError> {
        let frame = self.inner.allocate_frame().ok_or(FrameError::Exhausted)?;
        self.in_use = self.in_use.saturating_add(1);
        Ok(frame.start_address().into())
    }

    fn frames_in_use(&self) -> usize {
        self.in_use
    }
}

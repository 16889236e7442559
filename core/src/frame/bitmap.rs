//! A bitmap frame allocator: one bit per 4 KiB frame, in storage the caller provides.

use core::fmt;

use super::memory_map::{Map, UsableRuns, summarize};
use super::placement::{BooksPlacement, place};
use super::{FRAME_SIZE, FrameAllocator, MemoryRegion, check_frame, check_request, to_usize};
use crate::addr::PhysAddr;
use crate::error::FrameError;

/// Bits in one storage word.
const WORD_BITS: usize = 64;

/// The bits `[lo, hi)` of a word, for `lo < hi <= 64`.
fn word_mask(lo: usize, hi: usize) -> u64 {
    let upper = u32::try_from(hi)
        .ok()
        .and_then(|hi| 1u64.checked_shl(hi))
        .map_or(u64::MAX, |bit| bit.wrapping_sub(1));
    let lower = u32::try_from(lo).ok().and_then(|lo| u64::MAX.checked_shl(lo)).unwrap_or(0);
    upper & lower
}

// ---------------------------------------------------------------------------------------
// The allocator.
// ---------------------------------------------------------------------------------------

/// A frame allocator that keeps one bit per 4 KiB frame in a caller-provided `&mut [u64]`.
///
/// It manages the span from the lowest to the highest usable frame of a memory map (see
/// [`MemoryRegion`] for what counts as usable). The storage holds the bitmap of that span
/// ([`words_needed`](Self::words_needed) words) followed by two words for each hole, a
/// stretch of unusable frames between two usable ones, so that frees of reserved frames
/// are caught; [`words_needed_for`](Self::words_needed_for) gives the exact size for a
/// map.
///
/// Single frames come from the lowest free frame: a hint word, below which every word
/// is full, makes that amortised O(1); contiguous runs are found by scanning whole words.
/// Freeing validates first and changes nothing when it refuses. No operation panics.
///
/// ```
/// use paging::frame::{BitmapAllocator, FrameAllocator, MemoryRegion};
/// use paging::{FrameError, PhysAddr};
///
/// let map = [
///     MemoryRegion::usable(0x10_0000, 0x80_0000), // 1 MiB..9 MiB
///     MemoryRegion::reserved(0x20_0000, 0x1800),  // firmware in the middle
/// ];
/// let mut storage = [0u64; 64];
/// assert!(BitmapAllocator::words_needed_for(&map) <= storage.len());
/// let mut frames = BitmapAllocator::new(&mut storage, &map)?;
///
/// let frame = frames.allocate()?;
/// assert_eq!(frame, PhysAddr::new(0x10_0000));
/// let huge = frames.allocate_contiguous(512, 0x20_0000)?; // one 2 MiB page
/// assert_eq!(huge, PhysAddr::new(0x40_0000));
/// assert_eq!(frames.frames_in_use(), 513);
///
/// frames.deallocate(frame)?;
/// assert_eq!(frames.deallocate(frame), Err(FrameError::NotAllocated { frame }));
/// // The reserved frames were never handed out, so they cannot be freed either.
/// let firmware = PhysAddr::new(0x20_1000);
/// assert!(!frames.is_allocated(firmware));
/// assert!(frames.deallocate(firmware).is_err());
/// # Ok::<(), FrameError>(())
/// ```
pub struct BitmapAllocator<'a> {
    /// One bit per frame of the span, set when the frame is free; bits for unusable
    /// frames and past the span stay clear.
    bits: &'a mut [u64],
    /// The holes, as pairs `(first, end)` of frame indices, ascending and disjoint.
    holes: &'a [u64],
    /// The address of frame index 0.
    base: u64,
    /// Frames in the span.
    frames: usize,
    /// Every word before this one has no free bit.
    hint: usize,
    /// Frames handed out.
    in_use: usize,
    /// Frames free.
    free: usize,
}

impl<'a> BitmapAllocator<'a> {
    /// The number of bitmap words for a span of `span_bytes` bytes (rounded up to whole
    /// frames), which is all the storage a map without holes needs. Saturates at
    /// `usize::MAX`.
    ///
    /// ```
    /// use paging::frame::BitmapAllocator;
    ///
    /// assert_eq!(BitmapAllocator::words_needed(64 * 4096), 1);
    /// assert_eq!(BitmapAllocator::words_needed(64 * 4096 + 1), 2);
    /// // Storage for 1 GiB of RAM without holes, sized at compile time.
    /// const WORDS: usize = BitmapAllocator::words_needed(1 << 30);
    /// let bitmap = [0u64; WORDS];
    /// assert_eq!(bitmap.len(), 4096);
    /// ```
    #[must_use]
    pub const fn words_needed(span_bytes: u64) -> usize {
        let words = span_bytes.div_ceil(FRAME_SIZE).div_ceil(WORD_BITS as u64);
        if words > usize::MAX as u64 { usize::MAX } else { words as usize }
    }

    /// The exact number of storage words [`new`](Self::new) needs for `map`: the bitmap
    /// of the span plus two words per hole. Saturates at `usize::MAX`.
    #[must_use]
    pub fn words_needed_for(map: &[MemoryRegion]) -> usize {
        Self::layout(map.iter().copied()).map_or(usize::MAX, |(.., needed)| needed)
    }

    /// Finds room for this allocator's storage in the usable memory of `regions`
    /// ([`words_needed_for`](Self::words_needed_for) words at the start of the lowest run
    /// of usable frames long enough; see [`BooksPlacement`]).
    ///
    /// ```
    /// use paging::frame::{BitmapAllocator, FrameAllocator, MemoryRegion};
    ///
    /// let map = [MemoryRegion::usable(0, 0x1000), MemoryRegion::usable(0x10_0000, 0x4000_0000)];
    /// let books = BitmapAllocator::place_storage(map)?;
    /// assert_eq!(books.region, MemoryRegion::reserved(0x10_0000, 8 * 4102));
    /// // In a kernel: a slice of `books.entries` words at `books.region.start`.
    /// let mut storage = vec![0u64; books.entries];
    /// let frames = BitmapAllocator::from_regions(&mut storage, map.into_iter().chain([books.region]))?;
    /// assert!(!frames.is_allocated(books.region.start)); // reserved, never handed out
    /// assert_eq!(frames.free_frames(), 1 + 0x4_0000 - 9);
    /// # Ok::<(), paging::FrameError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::Exhausted`] if no run of usable frames holds the storage (or
    /// the map has no usable frame).
    pub fn place_storage<I>(regions: I) -> Result<BooksPlacement, FrameError>
    where
        I: IntoIterator<Item = MemoryRegion>,
        I::IntoIter: Clone,
    {
        let map = regions.into_iter();
        let words = Self::layout(map.clone()).map_or(usize::MAX, |(.., needed)| needed);
        place(map, words, size_of::<u64>())
    }

    /// `(first usable byte, frames in the span, bitmap words, storage words)` for `map`, or
    /// `None` if the span does not fit in `usize` frames.
    fn layout<M: Map>(map: M) -> Option<(u64, usize, usize, usize)> {
        let (runs, first, end, _) = summarize(map);
        // Leave room for the last word's padding bits, so that bit indices never overflow.
        let frames = usize::try_from((end - first) / FRAME_SIZE)
            .ok()
            .filter(|&frames| frames <= usize::MAX - WORD_BITS)?;
        let words = frames.div_ceil(WORD_BITS);
        let hole_words = runs.saturating_sub(1).checked_mul(2)?;
        Some((first, frames, words, words.checked_add(hole_words)?))
    }

    /// Builds an allocator for the usable frames of `map`, keeping its books in
    /// `storage`. Every usable frame starts free. A map without usable frames gives an
    /// allocator that is always exhausted.
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::StorageTooSmall`] with the number of words needed (see
    /// [`words_needed_for`](Self::words_needed_for)) if `storage` is shorter than that.
    pub fn new(storage: &'a mut [u64], map: &[MemoryRegion]) -> Result<Self, FrameError> {
        Self::from_regions(storage, map.iter().copied())
    }

    /// As [`new`](Self::new), from any memory map that can be read more than once: an
    /// iterator that can be cloned, such as a bootloader map's adapter in
    /// [`boot`](super::boot).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn from_regions<I>(storage: &'a mut [u64], regions: I) -> Result<Self, FrameError>
    where
        I: IntoIterator<Item = MemoryRegion>,
        I::IntoIter: Clone,
    {
        let map = regions.into_iter();
        let too_small = |needed| FrameError::StorageTooSmall { needed };
        let (base, frames, words, needed) =
            Self::layout(map.clone()).ok_or(too_small(usize::MAX))?;
        let (bits, rest) = storage.split_at_mut_checked(words).ok_or(too_small(needed))?;
        let (holes, _) = rest.split_at_mut_checked(needed - words).ok_or(too_small(needed))?;

        bits.fill(0);
        let mut alloc = Self { bits, holes: &[], base, frames, hint: 0, in_use: 0, free: 0 };
        let mut hole_words = holes.iter_mut();
        let mut previous_end = None;
        for (start, end) in UsableRuns::new(map) {
            let first = to_usize((start - base) / FRAME_SIZE);
            let last = to_usize((end - base) / FRAME_SIZE);
            alloc.set_range(first, last, true);
            alloc.free = alloc.free.saturating_add(last - first);
            if let Some(previous_end) = previous_end {
                for value in [previous_end, first] {
                    if let Some(word) = hole_words.next() {
                        *word = value as u64;
                    }
                }
            }
            previous_end = Some(last);
        }
        alloc.holes = holes;
        Ok(alloc)
    }

    /// The number of frames free.
    #[must_use]
    pub fn free_frames(&self) -> usize {
        self.free
    }

    /// The number of usable frames this allocator manages, free or in use.
    #[must_use]
    pub fn usable_frames(&self) -> usize {
        self.free.saturating_add(self.in_use)
    }

    /// The managed span: its first frame and its length in frames, holes included.
    #[must_use]
    pub fn span(&self) -> (PhysAddr, usize) {
        (PhysAddr::new(self.base), self.frames)
    }

    /// Returns whether `frame` is handed out. Free frames, frames reserved or outside
    /// the managed memory, and unaligned addresses are not.
    #[must_use]
    pub fn is_allocated(&self, frame: PhysAddr) -> bool {
        self.index_of(frame).is_some_and(|i| {
            self.find(i, i + 1, true).is_none() && self.hole_in(i, i + 1).is_none()
        })
    }

    /// The index of `frame` in the span, if it is a frame of the span.
    fn index_of(&self, frame: PhysAddr) -> Option<usize> {
        let offset = frame.as_u64().checked_sub(self.base)?;
        if !frame.is_aligned(FRAME_SIZE) {
            return None;
        }
        usize::try_from(offset / FRAME_SIZE).ok().filter(|&i| i < self.frames)
    }

    /// The address of the frame with index `i` (at most `frames`, so in range).
    fn addr_of(&self, i: usize) -> PhysAddr {
        PhysAddr::new(self.base.saturating_add((i as u64).saturating_mul(FRAME_SIZE)))
    }

    /// The first index in `[start, end)` whose bit is set (`free`) or clear (`!free`).
    /// Indices past the bitmap count as clear.
    fn find(&self, start: usize, end: usize, free: bool) -> Option<usize> {
        let mut i = start;
        while i < end {
            let (w, lo) = (i / WORD_BITS, i % WORD_BITS);
            let hi = lo + (WORD_BITS - lo).min(end - i);
            let word = self.bits.get(w).copied().unwrap_or(0);
            let hits = if free { word } else { !word } & word_mask(lo, hi);
            if hits != 0 {
                return Some(w * WORD_BITS + hits.trailing_zeros() as usize);
            }
            i = (w + 1).saturating_mul(WORD_BITS);
        }
        None
    }

    /// Sets (`free`) or clears the bits `[start, end)`.
    fn set_range(&mut self, start: usize, end: usize, free: bool) {
        let mut i = start;
        while i < end {
            let (w, lo) = (i / WORD_BITS, i % WORD_BITS);
            let hi = lo + (WORD_BITS - lo).min(end - i);
            let mask = word_mask(lo, hi);
            if let Some(word) = self.bits.get_mut(w) {
                if free {
                    *word |= mask;
                } else {
                    *word &= !mask;
                }
            }
            i = (w + 1).saturating_mul(WORD_BITS);
        }
    }

    /// The hole with index `k` as `(first, end)` frame indices.
    fn hole(&self, k: usize) -> Option<(usize, usize)> {
        let at = k.checked_mul(2)?;
        let first = *self.holes.get(at)?;
        let end = *self.holes.get(at.checked_add(1)?)?;
        Some((to_usize(first), to_usize(end)))
    }

    /// The first index in `[start, end)` that lies in a hole.
    fn hole_in(&self, start: usize, end: usize) -> Option<usize> {
        // Binary search for the first hole that ends after `start`.
        let (mut lo, mut hi) = (0, self.holes.len() / 2);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.hole(mid).is_some_and(|(_, hole_end)| hole_end <= start) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let (first, _) = self.hole(lo)?;
        (first < end).then_some(first.max(start))
    }

    /// The first index at or after `i` whose frame starts at a multiple of `align_frames`
    /// frames.
    fn align_index(&self, i: usize, align_frames: u64) -> Option<usize> {
        let base_frame = self.base / FRAME_SIZE;
        let frame = base_frame.checked_add(u64::try_from(i).ok()?)?;
        let aligned = frame.checked_next_multiple_of(align_frames)?;
        usize::try_from(aligned - base_frame).ok()
    }

    /// Marks `[start, end)` as free again; the caller has checked that it is allocated.
    fn release(&mut self, start: usize, end: usize) {
        self.set_range(start, end, true);
        self.hint = self.hint.min(start / WORD_BITS);
        self.in_use = self.in_use.saturating_sub(end - start);
        self.free = self.free.saturating_add(end - start);
    }
}

impl FrameAllocator for BitmapAllocator<'_> {
    /// Takes the lowest free frame.
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::Exhausted`] when no frame is free.
    fn allocate(&mut self) -> Result<PhysAddr, FrameError> {
        let mut w = self.hint;
        while let Some(word) = self.bits.get_mut(w) {
            if *word != 0 {
                let bit = word.trailing_zeros() as usize;
                *word &= *word - 1; // clear the lowest set bit
                self.hint = w;
                self.in_use = self.in_use.saturating_add(1);
                self.free = self.free.saturating_sub(1);
                return Ok(self.addr_of(w * WORD_BITS + bit));
            }
            w += 1;
        }
        self.hint = w;
        Err(FrameError::Exhausted)
    }

    /// Takes the lowest run of `count` free frames that starts at a multiple of `align`.
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::ZeroCount`] for a zero count, [`FrameError::BadAlignment`] for
    /// an alignment that is not a power of two of at least [`FRAME_SIZE`], and
    /// [`FrameError::Exhausted`] when
    /// no such run is free.
    fn allocate_contiguous(&mut self, count: usize, align: u64) -> Result<PhysAddr, FrameError> {
        check_request(count, align)?;
        let align_frames = align / FRAME_SIZE;
        let exhausted = FrameError::Exhausted;
        let mut candidate =
            self.find(self.hint.saturating_mul(WORD_BITS), self.frames, true).ok_or(exhausted)?;
        loop {
            let start = self.align_index(candidate, align_frames).ok_or(exhausted)?;
            let end =
                start.checked_add(count).filter(|&end| end <= self.frames).ok_or(exhausted)?;
            match self.find(start, end, false) {
                None => {
                    self.set_range(start, end, false);
                    self.in_use = self.in_use.saturating_add(count);
                    self.free = self.free.saturating_sub(count);
                    return Ok(self.addr_of(start));
                }
                Some(taken) => {
                    candidate = self.find(taken + 1, self.frames, true).ok_or(exhausted)?;
                }
            }
        }
    }

    /// Gives back one frame.
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::Unaligned`] if `frame` is not the start of a frame, and
    /// [`FrameError::NotAllocated`] if it is outside the managed memory (reserved frames
    /// included) or free; nothing changes then.
    fn deallocate(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
        check_frame(frame)?;
        match self.index_of(frame) {
            Some(i) if self.is_allocated(frame) => {
                self.release(i, i + 1);
                Ok(())
            }
            _ => Err(FrameError::NotAllocated { frame }),
        }
    }

    /// Gives back `count` frames from `start`, all or nothing.
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::ZeroCount`] for a zero count, [`FrameError::Unaligned`] if
    /// `start` is not the start of a frame, and [`FrameError::NotAllocated`] with the
    /// lowest offending frame if any of the frames is outside the managed memory or free;
    /// nothing changes then.
    fn deallocate_contiguous(&mut self, start: PhysAddr, count: usize) -> Result<(), FrameError> {
        if count == 0 {
            return Err(FrameError::ZeroCount);
        }
        check_frame(start)?;
        let first = self.index_of(start).ok_or(FrameError::NotAllocated { frame: start })?;
        let end = match first.checked_add(count) {
            Some(end) if end <= self.frames => end,
            _ => {
                return Err(FrameError::NotAllocated { frame: self.addr_of(self.frames) });
            }
        };
        let hole = self.hole_in(first, end);
        let free = self.find(first, end, true);
        if let Some(bad) = hole.into_iter().chain(free).min() {
            return Err(FrameError::NotAllocated { frame: self.addr_of(bad) });
        }
        self.release(first, end);
        Ok(())
    }

    fn frames_in_use(&self) -> usize {
        self.in_use
    }

    fn frames_free(&self) -> Option<usize> {
        Some(self.free_frames())
    }

    fn frames_usable(&self) -> Option<usize> {
        Some(self.usable_frames())
    }
}

impl fmt::Debug for BitmapAllocator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BitmapAllocator")
            .field("base", &PhysAddr::new(self.base))
            .field("frames", &self.frames)
            .field("holes", &(self.holes.len() / 2))
            .field("in_use", &self.in_use)
            .field("free", &self.free)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K4: u64 = FRAME_SIZE;

    #[test]
    fn sizes_storage_and_reports_too_small() {
        assert_eq!(BitmapAllocator::words_needed(0), 0);
        assert_eq!(BitmapAllocator::words_needed(1), 1);
        assert_eq!(BitmapAllocator::words_needed(u64::MAX), 1 << 46);
        let map = [
            MemoryRegion::usable(0x10_0000, 65 * K4),
            MemoryRegion::reserved(0x10_0000 + 10 * K4, K4),
        ];
        // 65 frames: two bitmap words, one hole: two more.
        assert_eq!(BitmapAllocator::words_needed_for(&map), 4);
        let mut storage = [0u64; 3];
        assert_eq!(
            BitmapAllocator::new(&mut storage, &map).err(),
            Some(FrameError::StorageTooSmall { needed: 4 })
        );
        let mut storage = [u64::MAX; 4];
        let alloc = BitmapAllocator::new(&mut storage, &map).unwrap();
        assert_eq!(alloc.free_frames(), 64);
        assert_eq!(alloc.span(), (PhysAddr::new(0x10_0000), 65));
    }

    #[test]
    fn empty_map_is_always_exhausted() {
        let mut storage = [];
        let mut alloc =
            BitmapAllocator::new(&mut storage, &[MemoryRegion::reserved(0, K4)]).unwrap();
        assert_eq!(alloc.allocate(), Err(FrameError::Exhausted));
        assert_eq!(alloc.allocate_contiguous(1, K4), Err(FrameError::Exhausted));
        let frame = PhysAddr::ZERO;
        assert_eq!(alloc.deallocate(frame), Err(FrameError::NotAllocated { frame }));
        assert_eq!(alloc.frames_in_use(), 0);
    }

    #[test]
    fn skips_reserved_holes_and_runs_dry() {
        let map = [
            MemoryRegion::usable(0x1000, 10 * K4),   // frames 1..11
            MemoryRegion::reserved(0x3800, 0x1000),  // frames 3, 4
            MemoryRegion::usable(0x10_0000, 2 * K4), // 256, 257
        ];
        let mut storage = [0u64; 16];
        let mut alloc = BitmapAllocator::new(&mut storage, &map).unwrap();
        assert_eq!(alloc.free_frames(), 10);
        let mut got = Vec::new();
        while let Ok(frame) = alloc.allocate() {
            got.push(frame.as_u64() / K4);
        }
        assert_eq!(got, [1, 2, 5, 6, 7, 8, 9, 10, 256, 257]);
        assert_eq!(alloc.frames_in_use(), 10);
        assert_eq!(alloc.free_frames(), 0);
        assert_eq!(alloc.allocate_contiguous(1, K4), Err(FrameError::Exhausted));
        for hole in [3, 4, 11, 100, 255] {
            let frame = PhysAddr::new(hole * K4);
            assert!(!alloc.is_allocated(frame));
            assert_eq!(alloc.deallocate(frame), Err(FrameError::NotAllocated { frame }));
        }
        assert_eq!(alloc.frames_in_use(), 10);
        alloc.deallocate(PhysAddr::new(7 * K4)).unwrap();
        assert_eq!(alloc.allocate(), Ok(PhysAddr::new(7 * K4)));
    }

    #[test]
    fn aligned_runs() {
        // 8 MiB from 1 MiB + 4 KiB: the first 2 MiB boundary is at 2 MiB.
        let map = [MemoryRegion::usable(0x10_1000, 0x80_0000)];
        let mut storage = [0u64; 40];
        let mut alloc = BitmapAllocator::new(&mut storage, &map).unwrap();
        assert_eq!(alloc.allocate(), Ok(PhysAddr::new(0x10_1000)));
        assert_eq!(alloc.allocate_contiguous(512, 0x20_0000), Ok(PhysAddr::new(0x20_0000)));
        assert_eq!(alloc.allocate_contiguous(512, 0x20_0000), Ok(PhysAddr::new(0x40_0000)));
        assert_eq!(alloc.allocate_contiguous(512, 0x20_0000), Ok(PhysAddr::new(0x60_0000)));
        // 0x80_0000..0x90_1000 is left: not a whole aligned 2 MiB.
        assert_eq!(alloc.allocate_contiguous(512, 0x20_0000), Err(FrameError::Exhausted));
        assert_eq!(alloc.allocate_contiguous(3, 0x4000), Ok(PhysAddr::new(0x10_4000)));
        assert_eq!(alloc.allocate_contiguous(2, K4), Ok(PhysAddr::new(0x10_2000)));
        assert_eq!(alloc.frames_in_use(), 1 + 3 * 512 + 3 + 2);
        assert_eq!(alloc.allocate_contiguous(0, K4), Err(FrameError::ZeroCount));
        for align in [0, 2048, 3000, 3 * K4, K4 + 1] {
            assert_eq!(
                alloc.allocate_contiguous(1, align),
                Err(FrameError::BadAlignment { align })
            );
        }
        assert_eq!(alloc.allocate_contiguous(usize::MAX, K4), Err(FrameError::Exhausted));
        assert_eq!(alloc.allocate_contiguous(1, 1 << 63), Err(FrameError::Exhausted));
    }

    #[test]
    fn aligned_run_skips_a_taken_frame_in_the_middle() {
        let map = [MemoryRegion::usable(0, 256 * K4)];
        let mut storage = [0u64; 4];
        let mut alloc = BitmapAllocator::new(&mut storage, &map).unwrap();
        let run = alloc.allocate_contiguous(128, K4).unwrap();
        assert_eq!(run, PhysAddr::ZERO);
        alloc.deallocate_contiguous(PhysAddr::ZERO, 60).unwrap();
        alloc.deallocate_contiguous(PhysAddr::new(61 * K4), 67).unwrap();
        // Frame 60 is still taken: a run of 100 fits only after it.
        assert_eq!(alloc.allocate_contiguous(100, K4), Ok(PhysAddr::new(61 * K4)));
        assert_eq!(alloc.allocate_contiguous(61, K4), Ok(PhysAddr::new(161 * K4)));
        assert_eq!(alloc.allocate_contiguous(60, K4), Ok(PhysAddr::ZERO));
        assert_eq!(alloc.free_frames(), 256 - 1 - 100 - 61 - 60);
    }

    #[test]
    fn double_free_and_bad_addresses_are_refused() {
        let map = [MemoryRegion::usable(0x10_0000, 16 * K4)];
        let mut storage = [0u64; 1];
        let mut alloc = BitmapAllocator::new(&mut storage, &map).unwrap();
        let frame = alloc.allocate().unwrap();
        assert!(alloc.is_allocated(frame));
        alloc.deallocate(frame).unwrap();
        assert!(!alloc.is_allocated(frame));
        assert_eq!(alloc.deallocate(frame), Err(FrameError::NotAllocated { frame }));
        let frame = alloc.allocate().unwrap();
        for bad in [frame.as_u64() + 1, u64::MAX, 0x1234] {
            let bad = PhysAddr::new(bad);
            assert_eq!(alloc.deallocate(bad), Err(FrameError::Unaligned { frame: bad }));
        }
        for bad in [0, 0x10_0000 + 16 * K4, u64::MAX - K4 + 1] {
            let bad = PhysAddr::new(bad);
            assert_eq!(alloc.deallocate(bad), Err(FrameError::NotAllocated { frame: bad }));
        }
        assert_eq!(alloc.frames_in_use(), 1);
    }

    #[test]
    fn deallocate_contiguous_is_all_or_nothing() {
        let map = [MemoryRegion::usable(0, 32 * K4), MemoryRegion::reserved(20 * K4, K4)];
        let mut storage = [0u64; 3];
        let mut alloc = BitmapAllocator::new(&mut storage, &map).unwrap();
        let run = alloc.allocate_contiguous(8, K4).unwrap();
        assert_eq!(run, PhysAddr::ZERO);
        alloc.deallocate(PhysAddr::new(5 * K4)).unwrap();
        // Frame 5 is free: freeing 0..8 is refused, and nothing changes.
        assert_eq!(
            alloc.deallocate_contiguous(run, 8),
            Err(FrameError::NotAllocated { frame: PhysAddr::new(5 * K4) })
        );
        assert_eq!(alloc.frames_in_use(), 7);
        assert!(alloc.is_allocated(PhysAddr::ZERO));
        // Past the span, unaligned, zero.
        assert_eq!(
            alloc.deallocate_contiguous(run, 100),
            Err(FrameError::NotAllocated { frame: PhysAddr::new(32 * K4) })
        );
        assert_eq!(
            alloc.deallocate_contiguous(run, usize::MAX),
            Err(FrameError::NotAllocated { frame: PhysAddr::new(32 * K4) })
        );
        let odd = PhysAddr::new(0x800);
        assert_eq!(alloc.deallocate_contiguous(odd, 1), Err(FrameError::Unaligned { frame: odd }));
        assert_eq!(alloc.deallocate_contiguous(run, 0), Err(FrameError::ZeroCount));
        // Over the reserved frame 20: refused even though 16..20 and 21..24 are taken.
        assert_eq!(alloc.allocate_contiguous(12, K4), Ok(PhysAddr::new(8 * K4)));
        assert_eq!(alloc.allocate_contiguous(3, K4), Ok(PhysAddr::new(21 * K4)));
        assert_eq!(
            alloc.deallocate_contiguous(PhysAddr::new(16 * K4), 8),
            Err(FrameError::NotAllocated { frame: PhysAddr::new(20 * K4) })
        );
        assert_eq!(alloc.frames_in_use(), 7 + 12 + 3);
        alloc.deallocate_contiguous(PhysAddr::ZERO, 5).unwrap();
        alloc.deallocate_contiguous(PhysAddr::new(6 * K4), 14).unwrap();
        assert_eq!(alloc.frames_in_use(), 3);
    }

    #[test]
    fn word_masks() {
        assert_eq!(word_mask(0, 64), u64::MAX);
        assert_eq!(word_mask(63, 64), 1 << 63);
        assert_eq!(word_mask(0, 1), 1);
        assert_eq!(word_mask(4, 8), 0xf0);
    }
}

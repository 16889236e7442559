//! A free-list frame allocator: sorted, coalesced runs of free frames in storage the
//! caller provides.

use core::fmt;

use super::memory_map::{Map, UsableRuns, summarize};
use super::placement::{BooksPlacement, place};
use super::{FRAME_SIZE, FrameAllocator, MemoryRegion};
use super::{check_frame, check_request, to_usize};
use crate::addr::PhysAddr;
use crate::error::FrameError;

/// A run of `frames` consecutive 4 KiB frames from `start`: one slot of a
/// [`FreeListAllocator`]'s storage.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FreeRun {
    /// The first frame.
    pub start: PhysAddr,
    /// The number of frames.
    pub frames: u64,
}

impl FreeRun {
    /// An empty run at address zero, to fill storage with (also in a `static`).
    pub const EMPTY: Self = Self { start: PhysAddr::ZERO, frames: 0 };

    /// The first byte past the run (saturating at the top of the address space).
    #[must_use]
    pub const fn end(&self) -> PhysAddr {
        PhysAddr::new(self.start.as_u64().saturating_add(self.frames.saturating_mul(FRAME_SIZE)))
    }
}

/// A frame allocator that keeps the free memory as a sorted list of runs
/// ([`FreeRun`]) in a caller-provided `&mut [FreeRun]`, coalescing on free.
///
/// It manages the usable frames of a memory map (see [`MemoryRegion`] for what counts as
/// usable). A map with `n` maximal runs of usable frames takes `2n - 1` slots
/// ([`slots_needed`](Self::slots_needed)): `n` for the free runs and `n - 1` for the
/// holes between them, kept so that frees of reserved frames are caught. Every further
/// slot lets the free memory split into one more run, so give the storage
/// `slots_needed(map) + N` slots, with `N` the fragmentation you expect: when a free
/// cannot coalesce and no slot is left it fails with [`FrameError::StorageTooSmall`],
/// and a contiguous request that would split a run skips that run.
///
/// Single frames come from the top of the highest free run in O(1), which keeps low
/// memory for the contiguous runs (first fit, lowest address) and for devices that need
/// it. Freeing finds its place by binary search and shifts at most the slots after it.
/// Refused calls change nothing. No operation panics.
///
/// ```
/// use paging::frame::{FrameAllocator, FreeListAllocator, FreeRun, MemoryRegion};
/// use paging::{FrameError, PhysAddr};
///
/// let map = [MemoryRegion::usable(0, 0x80_0000), MemoryRegion::reserved(0, 0x1000)];
/// let mut storage = [FreeRun::EMPTY; 8];
/// assert_eq!(FreeListAllocator::slots_needed(&map), 1);
/// let mut frames = FreeListAllocator::new(&mut storage, &map)?;
///
/// let top = frames.allocate()?;
/// assert_eq!(top, PhysAddr::new(0x7f_f000));
/// let huge = frames.allocate_contiguous(512, 0x20_0000)?;
/// assert_eq!(huge, PhysAddr::new(0x20_0000));
/// assert_eq!(frames.free_runs().len(), 2); // 4 KiB..2 MiB and 4 MiB..8 MiB - 4 KiB
///
/// frames.deallocate_contiguous(huge, 512)?;
/// frames.deallocate(top)?;
/// assert_eq!(frames.free_runs(), [FreeRun { start: PhysAddr::new(0x1000), frames: 2047 }]);
/// assert_eq!(frames.deallocate(top), Err(FrameError::NotAllocated { frame: top }));
/// # Ok::<(), FrameError>(())
/// ```
pub struct FreeListAllocator<'a> {
    /// The free runs in `runs[..len]`: ascending, non-empty, none touching the next.
    runs: &'a mut [FreeRun],
    /// How many slots of `runs` are in use.
    len: usize,
    /// The stretches of unusable frames between the usable ones, ascending.
    holes: &'a [FreeRun],
    /// The first managed byte.
    start: u64,
    /// The first byte past the managed memory.
    end: u64,
    /// Frames handed out.
    in_use: u64,
    /// Frames free.
    free: u64,
}

impl<'a> FreeListAllocator<'a> {
    /// The number of slots [`new`](Self::new) needs for `map`: `2n - 1` for `n` maximal
    /// runs of usable frames (zero for none). Saturates at `usize::MAX`.
    #[must_use]
    pub fn slots_needed(map: &[MemoryRegion]) -> usize {
        Self::slots_for(map.iter().copied())
    }

    /// [`slots_needed`](Self::slots_needed) for any memory map.
    fn slots_for<M: Map>(map: M) -> usize {
        let (runs, ..) = summarize(map);
        runs.saturating_mul(2).saturating_sub(1)
    }

    /// Finds room for this allocator's storage in the usable memory of `regions`:
    /// [`slots_needed`](Self::slots_needed) plus `spare` slots (the fragmentation to
    /// allow) at the start of the lowest run of usable frames long enough; see
    /// [`BooksPlacement`].
    ///
    /// ```
    /// use paging::frame::{FreeListAllocator, FreeRun, MemoryRegion};
    ///
    /// let map = [MemoryRegion::usable(0x10_0000, 0x100_0000)];
    /// let books = FreeListAllocator::place_storage(map, 255)?;
    /// assert_eq!(books.region, MemoryRegion::reserved(0x10_0000, 256 * 16));
    /// let mut storage = vec![FreeRun::EMPTY; books.entries];
    /// let frames = FreeListAllocator::from_regions(&mut storage, map.into_iter().chain([books.region]))?;
    /// assert_eq!(frames.free_runs()[0].start.as_u64(), 0x10_1000);
    /// # Ok::<(), paging::FrameError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::Exhausted`] if no run of usable frames holds the storage (or
    /// the map has no usable frame).
    pub fn place_storage<I>(regions: I, spare: usize) -> Result<BooksPlacement, FrameError>
    where
        I: IntoIterator<Item = MemoryRegion>,
        I::IntoIter: Clone,
    {
        let map = regions.into_iter();
        let slots = Self::slots_for(map.clone()).saturating_add(spare);
        place(map, slots, size_of::<FreeRun>())
    }

    /// Builds an allocator for the usable frames of `map`, keeping its books in
    /// `storage`. Every usable frame starts free. A map without usable frames gives an
    /// allocator that is always exhausted.
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::StorageTooSmall`] with the number of slots needed (see
    /// [`slots_needed`](Self::slots_needed)) if `storage` is shorter than that.
    pub fn new(storage: &'a mut [FreeRun], map: &[MemoryRegion]) -> Result<Self, FrameError> {
        Self::from_regions(storage, map.iter().copied())
    }

    /// As [`new`](Self::new), from any memory map that can be read more than once: an
    /// iterator that can be cloned, such as a bootloader map's adapter in
    /// [`boot`](super::boot).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn from_regions<I>(storage: &'a mut [FreeRun], regions: I) -> Result<Self, FrameError>
    where
        I: IntoIterator<Item = MemoryRegion>,
        I::IntoIter: Clone,
    {
        let map = regions.into_iter();
        let (count, start, end, free) = summarize(map.clone());
        let needed = count.saturating_mul(2).saturating_sub(1);
        let too_small = FrameError::StorageTooSmall { needed };
        let capacity = storage.len().checked_sub(count.saturating_sub(1)).ok_or(too_small)?;
        if capacity < count {
            return Err(too_small);
        }
        let (runs, holes) = storage.split_at_mut_checked(capacity).ok_or(too_small)?;

        let mut run_slots = runs.iter_mut();
        let mut hole_slots = holes.iter_mut();
        let mut previous_end = None;
        for (run_start, run_end) in UsableRuns::new(map) {
            if let Some(slot) = run_slots.next() {
                *slot = FreeRun {
                    start: PhysAddr::new(run_start),
                    frames: (run_end - run_start) / FRAME_SIZE,
                };
            }
            if let Some(previous_end) = previous_end {
                if let Some(slot) = hole_slots.next() {
                    *slot = FreeRun {
                        start: PhysAddr::new(previous_end),
                        frames: (run_start - previous_end) / FRAME_SIZE,
                    };
                }
            }
            previous_end = Some(run_end);
        }
        Ok(Self { runs, len: count, holes, start, end, in_use: 0, free })
    }

    /// The free runs, ascending by address and coalesced.
    #[must_use]
    pub fn free_runs(&self) -> &[FreeRun] {
        self.runs.get(..self.len).unwrap_or(&[])
    }

    /// The number of frames free (saturating at `usize::MAX`).
    #[must_use]
    pub fn free_frames(&self) -> usize {
        to_usize(self.free)
    }

    /// The number of usable frames this allocator manages, free or in use (saturating
    /// at `usize::MAX`).
    #[must_use]
    pub fn usable_frames(&self) -> usize {
        to_usize(self.free.saturating_add(self.in_use))
    }

    /// The number of storage slots in use: free runs plus holes.
    #[must_use]
    pub fn slots_used(&self) -> usize {
        self.len.saturating_add(self.holes.len())
    }

    /// The number of storage slots: [`slots_used`](Self::slots_used) plus the spare ones.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.runs.len().saturating_add(self.holes.len())
    }

    /// Returns whether `frame` is handed out. Free frames, frames reserved or outside
    /// the managed memory, and unaligned addresses are not.
    #[must_use]
    pub fn is_allocated(&self, frame: PhysAddr) -> bool {
        let end = frame.as_u64().saturating_add(FRAME_SIZE);
        frame.is_aligned(FRAME_SIZE)
            && self.start <= frame.as_u64()
            && end <= self.end
            && self.first_offender(frame.as_u64(), end).is_none()
    }

    /// The lowest frame in `[start, end)` (inside the managed span) that is in a hole or
    /// free.
    fn first_offender(&self, start: u64, end: u64) -> Option<u64> {
        let hole = self.holes.partition_point(|h| h.end().as_u64() <= start);
        let hole = self.holes.get(hole).map(|h| h.start.as_u64()).filter(|&s| s < end);
        let (before, after) = self.neighbours(start);
        let before = before.filter(|r| r.end().as_u64() > start).map(|_| start);
        let after = after.map(|r| r.start.as_u64()).filter(|&s| s < end);
        [hole, before, after].into_iter().flatten().min().map(|s| s.max(start))
    }

    /// The index of the first free run that starts after `addr`.
    fn position(&self, addr: u64) -> usize {
        self.free_runs().partition_point(|r| r.start.as_u64() <= addr)
    }

    /// The free runs just below (starting at or before) and just above `addr`.
    fn neighbours(&self, addr: u64) -> (Option<&FreeRun>, Option<&FreeRun>) {
        let p = self.position(addr);
        let runs = self.free_runs();
        (p.checked_sub(1).and_then(|b| runs.get(b)), runs.get(p))
    }

    /// Removes the free run at `i`.
    fn remove(&mut self, i: usize) {
        if let Some(tail) = self.runs.get_mut(i..self.len) {
            tail.rotate_left(1);
            self.len -= 1;
        }
    }

    /// Inserts `run` at `i`, or returns `false` if no slot is spare.
    fn insert(&mut self, i: usize, run: FreeRun) -> bool {
        match self.runs.get_mut(i..=self.len) {
            Some(tail) => {
                tail.rotate_right(1);
                if let Some(slot) = tail.first_mut() {
                    *slot = run;
                }
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// Books `frames` frames as handed out.
    fn took(&mut self, frames: u64) {
        self.in_use = self.in_use.saturating_add(frames);
        self.free = self.free.saturating_sub(frames);
    }
}

impl FrameAllocator for FreeListAllocator<'_> {
    /// Takes the highest free frame, in O(1).
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::Exhausted`] when no frame is free.
    fn allocate(&mut self) -> Result<PhysAddr, FrameError> {
        let last = self.len.checked_sub(1).ok_or(FrameError::Exhausted)?;
        let run = self.runs.get_mut(last).ok_or(FrameError::Exhausted)?;
        run.frames = run.frames.checked_sub(1).ok_or(FrameError::Exhausted)?;
        let frame = run.end();
        if run.frames == 0 {
            self.len = last;
        }
        self.took(1);
        Ok(frame)
    }

    /// Takes `count` frames that start at a multiple of `align`, from the lowest free run
    /// that holds them (first fit). A run the request would split in two needs a spare
    /// slot; without one, that run is skipped.
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::ZeroCount`] for a zero count, [`FrameError::BadAlignment`] for
    /// an alignment that is not a power of two of at least [`FRAME_SIZE`], and
    /// [`FrameError::Exhausted`] when
    /// no such run is free (or only in runs that cannot be split for want of a slot).
    fn allocate_contiguous(&mut self, count: usize, align: u64) -> Result<PhysAddr, FrameError> {
        check_request(count, align)?;
        let frames = u64::try_from(count).map_err(|_| FrameError::Exhausted)?;
        let size = frames.checked_mul(FRAME_SIZE).ok_or(FrameError::Exhausted)?;
        let spare = self.len < self.runs.len();
        let found = self.free_runs().iter().enumerate().find_map(|(i, run)| {
            let at = run.start.checked_align_up(align)?;
            let at_end = at.checked_add(size)?;
            let run_end = run.end();
            let split = at > run.start && at_end < run_end;
            (at_end <= run_end && (spare || !split)).then_some((i, *run, at, at_end))
        });
        let (i, run, at, at_end) = found.ok_or(FrameError::Exhausted)?;
        let run_end = run.end();
        // `run.start <= at` (aligned up from it) and `at_end <= run_end` (the search's
        // condition): neither difference can go below zero.
        let before = FreeRun { start: run.start, frames: (at - run.start) / FRAME_SIZE };
        let after = FreeRun { start: at_end, frames: (run_end - at_end) / FRAME_SIZE };
        match (before.frames > 0, after.frames > 0) {
            (false, false) => self.remove(i),
            (true, true) => {
                if let Some(slot) = self.runs.get_mut(i) {
                    *slot = before;
                }
                // A slot is spare: checked above.
                self.insert(i + 1, after);
            }
            (_, has_after) => {
                if let Some(slot) = self.runs.get_mut(i) {
                    *slot = if has_after { after } else { before };
                }
            }
        }
        self.took(frames);
        Ok(at)
    }

    /// Gives back one frame.
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::Unaligned`] if `frame` is not the start of a frame,
    /// [`FrameError::NotAllocated`] if it is outside the managed memory (reserved frames
    /// included) or free, and
    /// [`FrameError::StorageTooSmall`] if it would start a new free run and no slot is
    /// spare; nothing changes then.
    fn deallocate(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
        self.deallocate_contiguous(frame, 1)
    }

    /// Gives back `count` frames from `start`, all or nothing, merging them with the free
    /// runs they touch.
    ///
    /// # Errors
    ///
    /// Returns [`FrameError::ZeroCount`] for a zero count; [`FrameError::Unaligned`] if
    /// `start` is not the start of a frame; [`FrameError::NotAllocated`] with the lowest
    /// offending frame if any of the frames is outside the managed memory (reserved frames
    /// included) or free; and [`FrameError::StorageTooSmall`] with the number of slots
    /// needed if the frames would form a new free run and no slot is spare. Nothing
    /// changes then.
    fn deallocate_contiguous(&mut self, start: PhysAddr, count: usize) -> Result<(), FrameError> {
        if count == 0 {
            return Err(FrameError::ZeroCount);
        }
        check_frame(start)?;
        let first = start.as_u64();
        if first < self.start || first >= self.end {
            return Err(FrameError::NotAllocated { frame: start });
        }
        let frames = u64::try_from(count).unwrap_or(u64::MAX);
        let end = match frames.checked_mul(FRAME_SIZE).and_then(|size| first.checked_add(size)) {
            Some(end) if end <= self.end => end,
            _ => {
                return Err(FrameError::NotAllocated { frame: PhysAddr::new(self.end) });
            }
        };
        if let Some(bad) = self.first_offender(first, end) {
            return Err(FrameError::NotAllocated { frame: PhysAddr::new(bad) });
        }

        let p = self.position(first);
        let (before, after) = self.neighbours(first);
        let joins_before = before.is_some_and(|r| r.end().as_u64() == first);
        let joins_after = after.is_some_and(|r| r.start.as_u64() == end);
        match (joins_before, joins_after) {
            (true, true) => {
                let merged = after.map_or(0, |r| r.frames).saturating_add(frames);
                if let Some(run) = p.checked_sub(1).and_then(|b| self.runs.get_mut(b)) {
                    run.frames = run.frames.saturating_add(merged);
                }
                self.remove(p);
            }
            (true, false) => {
                if let Some(run) = p.checked_sub(1).and_then(|b| self.runs.get_mut(b)) {
                    run.frames = run.frames.saturating_add(frames);
                }
            }
            (false, true) => {
                if let Some(run) = self.runs.get_mut(p) {
                    run.start = start;
                    run.frames = run.frames.saturating_add(frames);
                }
            }
            (false, false) => {
                if !self.insert(p, FreeRun { start, frames }) {
                    let needed = self.slots_used().saturating_add(1);
                    return Err(FrameError::StorageTooSmall { needed });
                }
            }
        }
        self.in_use = self.in_use.saturating_sub(frames);
        self.free = self.free.saturating_add(frames);
        Ok(())
    }

    fn frames_in_use(&self) -> usize {
        to_usize(self.in_use)
    }

    fn frames_free(&self) -> Option<usize> {
        Some(self.free_frames())
    }

    fn frames_usable(&self) -> Option<usize> {
        Some(self.usable_frames())
    }
}

impl fmt::Debug for FreeListAllocator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FreeListAllocator")
            .field("free_runs", &self.free_runs())
            .field("holes", &self.holes)
            .field("spare_slots", &self.runs.len().saturating_sub(self.len))
            .field("in_use", &self.in_use)
            .field("free", &self.free)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K4: u64 = FRAME_SIZE;

    fn run(start: u64, frames: u64) -> FreeRun {
        FreeRun { start: PhysAddr::new(start), frames }
    }

    #[test]
    fn builds_runs_and_holes_from_a_messy_map() {
        let map = [
            MemoryRegion::usable(0x1800, 0x1800), // with the next: frames 0..3
            MemoryRegion::usable(0x10, 0x17f0),
            MemoryRegion::usable(0x10_0000, 0x10_0000), // 256..512
            MemoryRegion::reserved(0x10_8000, 0x1001),  // 264, 265
            MemoryRegion::usable(0x10_0000, 0x800),     // overlaps, adds nothing
        ];
        // 0x10..0x1800 leaves frame 0 short of its first bytes.
        assert_eq!(FreeListAllocator::slots_needed(&map), 5);
        let mut storage = [FreeRun::EMPTY; 4];
        assert_eq!(
            FreeListAllocator::new(&mut storage, &map).err(),
            Some(FrameError::StorageTooSmall { needed: 5 })
        );
        let mut storage = [FreeRun::EMPTY; 5];
        let alloc = FreeListAllocator::new(&mut storage, &map).unwrap();
        assert_eq!(alloc.free_runs(), [run(K4, 2), run(0x10_0000, 8), run(0x10_a000, 246)]);
        assert_eq!(alloc.free_frames(), 256);
        assert_eq!(alloc.slots_used(), 5);
        assert_eq!(alloc.capacity(), 5);
    }

    #[test]
    fn empty_map_is_always_exhausted() {
        let mut storage = [];
        let mut alloc = FreeListAllocator::new(&mut storage, &[]).unwrap();
        assert_eq!(alloc.allocate(), Err(FrameError::Exhausted));
        assert_eq!(alloc.allocate_contiguous(1, K4), Err(FrameError::Exhausted));
        let frame = PhysAddr::ZERO;
        assert_eq!(alloc.deallocate(frame), Err(FrameError::NotAllocated { frame }));
    }

    #[test]
    fn single_frames_come_from_the_top_and_run_dry() {
        let map = [MemoryRegion::usable(0, 3 * K4), MemoryRegion::usable(0x10_0000, 2 * K4)];
        let mut storage = [FreeRun::EMPTY; 3];
        let mut alloc = FreeListAllocator::new(&mut storage, &map).unwrap();
        let got: Vec<u64> =
            core::iter::from_fn(|| alloc.allocate().ok()).map(|f| f.as_u64()).collect();
        assert_eq!(got, [0x10_1000, 0x10_0000, 0x2000, 0x1000, 0]);
        assert_eq!(alloc.frames_in_use(), 5);
        assert_eq!(alloc.free_runs(), []);
        assert_eq!(alloc.allocate_contiguous(1, K4), Err(FrameError::Exhausted));
        // The hole between the two runs can never be freed.
        let hole = PhysAddr::new(0x5_0000);
        assert_eq!(alloc.deallocate(hole), Err(FrameError::NotAllocated { frame: hole }));
        assert!(!alloc.is_allocated(hole));
        assert!(alloc.is_allocated(PhysAddr::new(0x2000)));
    }

    #[test]
    fn aligned_runs_split_with_a_spare_slot_only() {
        let map = [MemoryRegion::usable(0x10_1000, 0x80_0000)];
        let mut storage = [FreeRun::EMPTY; 1];
        let mut alloc = FreeListAllocator::new(&mut storage, &map).unwrap();
        // 2 MiB in the middle would split the only run: no slot for that.
        assert_eq!(alloc.allocate_contiguous(512, 0x20_0000), Err(FrameError::Exhausted));
        assert_eq!(alloc.allocate_contiguous(2, K4), Ok(PhysAddr::new(0x10_1000)));
        assert_eq!(alloc.free_runs(), [run(0x10_3000, 2046)]);

        let mut storage = [FreeRun::EMPTY; 4];
        let mut alloc = FreeListAllocator::new(&mut storage, &map).unwrap();
        assert_eq!(alloc.allocate_contiguous(512, 0x20_0000), Ok(PhysAddr::new(0x20_0000)));
        assert_eq!(alloc.allocate_contiguous(512, 0x20_0000), Ok(PhysAddr::new(0x40_0000)));
        assert_eq!(alloc.allocate_contiguous(512, 0x20_0000), Ok(PhysAddr::new(0x60_0000)));
        assert_eq!(alloc.allocate_contiguous(512, 0x20_0000), Err(FrameError::Exhausted));
        assert_eq!(alloc.free_runs(), [run(0x10_1000, 255), run(0x80_0000, 257)]);
        // Exact fit at the end of a run, then at its start.
        assert_eq!(alloc.allocate_contiguous(1, 0x10_0000), Ok(PhysAddr::new(0x80_0000)));
        assert_eq!(alloc.allocate_contiguous(255, K4), Ok(PhysAddr::new(0x10_1000)));
        assert_eq!(alloc.free_runs(), [run(0x80_1000, 256)]);
        assert_eq!(alloc.frames_in_use(), 3 * 512 + 1 + 255);
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
    fn frees_coalesce() {
        let map = [MemoryRegion::usable(0, 16 * K4)];
        let mut storage = [FreeRun::EMPTY; 4];
        let mut alloc = FreeListAllocator::new(&mut storage, &map).unwrap();
        assert_eq!(alloc.allocate_contiguous(16, K4), Ok(PhysAddr::ZERO));
        alloc.deallocate(PhysAddr::new(5 * K4)).unwrap();
        alloc.deallocate(PhysAddr::new(7 * K4)).unwrap();
        assert_eq!(alloc.free_runs(), [run(5 * K4, 1), run(7 * K4, 1)]);
        alloc.deallocate(PhysAddr::new(6 * K4)).unwrap(); // joins both
        assert_eq!(alloc.free_runs(), [run(5 * K4, 3)]);
        alloc.deallocate(PhysAddr::new(4 * K4)).unwrap(); // joins the one after
        alloc.deallocate(PhysAddr::new(8 * K4)).unwrap(); // joins the one before
        assert_eq!(alloc.free_runs(), [run(4 * K4, 5)]);
        alloc.deallocate_contiguous(PhysAddr::ZERO, 4).unwrap();
        alloc.deallocate_contiguous(PhysAddr::new(9 * K4), 7).unwrap();
        assert_eq!(alloc.free_runs(), [run(0, 16)]);
        assert_eq!(alloc.frames_in_use(), 0);
    }

    #[test]
    fn double_free_and_bad_addresses_are_refused() {
        let map = [MemoryRegion::usable(0x10_0000, 16 * K4)];
        let mut storage = [FreeRun::EMPTY; 2];
        let mut alloc = FreeListAllocator::new(&mut storage, &map).unwrap();
        let frame = alloc.allocate().unwrap();
        alloc.deallocate(frame).unwrap();
        assert_eq!(alloc.deallocate(frame), Err(FrameError::NotAllocated { frame }));
        let frame = alloc.allocate_contiguous(1, K4).unwrap();
        for bad in [frame.as_u64() + 1, u64::MAX, 0x1234] {
            let bad = PhysAddr::new(bad);
            assert_eq!(alloc.deallocate(bad), Err(FrameError::Unaligned { frame: bad }));
        }
        for bad in [0, 0x10_0000 + 16 * K4, u64::MAX - K4 + 1] {
            let bad = PhysAddr::new(bad);
            assert_eq!(alloc.deallocate(bad), Err(FrameError::NotAllocated { frame: bad }));
        }
        // A free frame inside a larger run.
        let inside = PhysAddr::new(0x10_5000);
        assert_eq!(alloc.deallocate(inside), Err(FrameError::NotAllocated { frame: inside }));
        assert_eq!(alloc.frames_in_use(), 1);
        assert_eq!(alloc.free_runs(), [run(0x10_1000, 15)]);
    }

    #[test]
    fn deallocate_contiguous_is_all_or_nothing() {
        let map = [MemoryRegion::usable(0, 32 * K4), MemoryRegion::reserved(20 * K4, K4)];
        let mut storage = [FreeRun::EMPTY; 8];
        let mut alloc = FreeListAllocator::new(&mut storage, &map).unwrap();
        assert_eq!(alloc.allocate_contiguous(20, K4), Ok(PhysAddr::ZERO));
        assert_eq!(alloc.allocate_contiguous(11, K4), Ok(PhysAddr::new(21 * K4)));
        alloc.deallocate(PhysAddr::new(5 * K4)).unwrap();
        let before: Vec<FreeRun> = alloc.free_runs().to_vec();
        let cases = [
            (0, 8, 5 * K4),     // frame 5 is free
            (16, 8, 20 * K4),   // frame 20 is reserved
            (24, 100, 32 * K4), // past the end
            (24, usize::MAX, 32 * K4),
        ];
        for (first, count, bad) in cases {
            assert_eq!(
                alloc.deallocate_contiguous(PhysAddr::new(first * K4), count),
                Err(FrameError::NotAllocated { frame: PhysAddr::new(bad) })
            );
        }
        assert_eq!(alloc.deallocate_contiguous(PhysAddr::ZERO, 0), Err(FrameError::ZeroCount));
        let odd = PhysAddr::new(0x1234);
        assert_eq!(alloc.deallocate_contiguous(odd, 1), Err(FrameError::Unaligned { frame: odd }));
        assert_eq!(alloc.free_runs(), before);
        assert_eq!(alloc.frames_in_use(), 30);
    }

    #[test]
    fn a_free_without_a_slot_is_refused() {
        let map = [MemoryRegion::usable(0, 16 * K4)];
        let mut storage = [FreeRun::EMPTY; 2];
        let mut alloc = FreeListAllocator::new(&mut storage, &map).unwrap();
        assert_eq!(alloc.allocate_contiguous(16, K4), Ok(PhysAddr::ZERO));
        alloc.deallocate(PhysAddr::new(2 * K4)).unwrap();
        alloc.deallocate(PhysAddr::new(8 * K4)).unwrap();
        let lone = PhysAddr::new(12 * K4);
        assert_eq!(alloc.deallocate(lone), Err(FrameError::StorageTooSmall { needed: 3 }));
        assert!(alloc.is_allocated(lone));
        assert_eq!(alloc.frames_in_use(), 14);
        // Frees that coalesce need no slot.
        alloc.deallocate(PhysAddr::new(9 * K4)).unwrap();
        alloc.deallocate_contiguous(PhysAddr::new(3 * K4), 5).unwrap(); // joins both
        assert_eq!(alloc.free_runs(), [run(2 * K4, 8)]);
        alloc.deallocate(lone).unwrap();
        assert_eq!(alloc.frames_in_use(), 7);
    }

    #[test]
    fn near_the_top_of_the_address_space() {
        let top = u64::MAX - 8 * K4 + 1;
        let map = [MemoryRegion::usable(top, u64::MAX)];
        let mut storage = [FreeRun::EMPTY; 4];
        let mut alloc = FreeListAllocator::new(&mut storage, &map).unwrap();
        assert_eq!(alloc.free_frames(), 7); // the topmost frame is never whole
        assert_eq!(alloc.allocate(), Ok(PhysAddr::new(top + 6 * K4)));
        assert_eq!(alloc.allocate_contiguous(2, 2 * K4), Ok(PhysAddr::new(top)));
        assert_eq!(alloc.allocate_contiguous(5, 2 * K4), Err(FrameError::Exhausted));
        let last = PhysAddr::new(top + 7 * K4);
        assert_eq!(alloc.deallocate(last), Err(FrameError::NotAllocated { frame: last }));
        assert_eq!(
            alloc.deallocate_contiguous(PhysAddr::new(top + 6 * K4), 2),
            Err(FrameError::NotAllocated { frame: last })
        );
        alloc.deallocate(PhysAddr::new(top + 6 * K4)).unwrap();
        alloc.deallocate_contiguous(PhysAddr::new(top), 2).unwrap();
        assert_eq!(alloc.free_runs(), [run(top, 7)]);
    }
}

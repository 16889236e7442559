//! The one seam between the engine and RAM, simulated or real.

use crate::addr::PhysAddr;
use crate::format::EntrySize;
use crate::pager::PAGE_BYTES;

/// Reads and writes page-table entries held in physical frames.
///
/// The simulator implements it over simulated RAM, `paging-x86` over a direct map of
/// physical memory, and [`ArenaMemory`] over a slice of host memory. Implementations must
/// not panic: a read outside the memory returns zero and a write outside it is dropped
/// (the engine asks [`contains`](Self::contains) before it follows an entry, and reports a
/// table outside the memory as a corrupt entry).
pub trait TableMemory {
    /// Reads the entry of `size` bytes at `at` (aligned to `size`).
    fn read_entry(&self, at: PhysAddr, size: EntrySize) -> u64;

    /// Writes the entry of `size` bytes at `at` (aligned to `size`).
    fn write_entry(&mut self, at: PhysAddr, size: EntrySize, value: u64);

    /// Fills the 4 KiB frame at `frame` with zeros.
    fn zero_frame(&mut self, frame: PhysAddr);

    /// Returns whether the 4 KiB frame at `frame` is memory this implementation can reach.
    fn contains(&self, frame: PhysAddr) -> bool;

    /// Writes `count` consecutive entries of `size` bytes from `at`: `first`, then each
    /// value `step` more than the one before (a run of leaves mapping consecutive frames).
    /// The default writes them one by one.
    fn fill_entries(&mut self, at: PhysAddr, size: EntrySize, count: usize, first: u64, step: u64) {
        fill_one_by_one(self, at, size, count, first, step);
    }

    /// Reads `out.len()` consecutive entries of `size` bytes from `at`, all in the frame of
    /// `at` (part of one table): `out[i]` is the entry at `at + i * size`. Entries past the
    /// frame read as zero. Walks over whole tables use it; the default reads the entries
    /// one by one, and memories where finding a frame costs (a simulator's RAM) find it once.
    fn read_entries(&self, at: PhysAddr, size: EntrySize, out: &mut [u64]) {
        read_entries_one_by_one(self, at, size, out);
    }

    /// The 4 KiB frame at `frame` as 512 eight-byte words, when this memory holds it as
    /// such in host memory that nothing else changes while it is borrowed (not memory a
    /// CPU's page walker writes Accessed bits into). The walk's fast path checks a table
    /// once and reads its entries without a check each; `None` (the default, and for a
    /// frame outside the memory or unaligned) sends it the ordinary way.
    fn table_words(&self, frame: PhysAddr) -> Option<&[u64; 512]> {
        let _ = frame;
        None
    }

    /// The 4 KiB frame at `frame` as 512 eight-byte words to write, on the terms of
    /// [`table_words`](Self::table_words) (which lends a frame exactly when this does).
    fn table_words_mut(&mut self, frame: PhysAddr) -> Option<&mut [u64; 512]> {
        let _ = frame;
        None
    }

    /// Copies the 4 KiB frame at `from` to the frame at `to` (copy-on-write uses it). The
    /// default copies word by word through the entry accessors.
    fn copy_frame(&mut self, to: PhysAddr, from: PhysAddr) {
        // Whole frames, as `read_frame` reads them: an offset below 4 KiB added to a 4 KiB
        // aligned address stays in its frame and cannot pass the top of the address space.
        let (to, from) =
            (to.align_down(crate::frame::FRAME_SIZE), from.align_down(crate::frame::FRAME_SIZE));
        for offset in (0..4096).step_by(8) {
            let word = self.read_entry(from + offset, EntrySize::Eight);
            self.write_entry(to + offset, EntrySize::Eight, word);
        }
    }

    /// Reads the bytes of the 4 KiB frame holding `frame` (the pager moves them to a backing
    /// store), as little-endian memory holds them. A frame outside the memory reads as
    /// zeros. The default reads word by word through the entry accessors.
    fn read_frame(&self, frame: PhysAddr, bytes: &mut [u8; PAGE_BYTES]) {
        // Aligned down, the base plus an offset below 4 KiB cannot overflow.
        let base = frame.align_down(crate::frame::FRAME_SIZE);
        for (offset, chunk) in (0..).step_by(8).zip(bytes.chunks_exact_mut(8)) {
            let word = self.read_entry(base + offset, EntrySize::Eight);
            chunk.copy_from_slice(&word.to_le_bytes());
        }
    }

    /// Writes `bytes` to the 4 KiB frame holding `frame` (the pager brings a page back from
    /// a backing store). A write outside the memory is dropped. The default writes word by
    /// word through the entry accessors.
    fn write_frame(&mut self, frame: PhysAddr, bytes: &[u8; PAGE_BYTES]) {
        // Aligned down, the base plus an offset below 4 KiB cannot overflow.
        let base = frame.align_down(crate::frame::FRAME_SIZE);
        for (offset, chunk) in (0..).step_by(8).zip(bytes.chunks_exact(8)) {
            self.write_entry(base + offset, EntrySize::Eight, le_word(chunk));
        }
    }
}

/// [`TableMemory::read_entries`] through `read_entry`, one entry at a time.
fn read_entries_one_by_one<M: TableMemory + ?Sized>(
    memory: &M,
    at: PhysAddr,
    size: EntrySize,
    out: &mut [u64],
) {
    // The last frame of the address space ends at 2^64, which saturates to `u64::MAX`:
    // its last entry then reads as outside the frame (zero), never as a panic.
    let frame_end =
        at.align_down(crate::frame::FRAME_SIZE).as_u64().saturating_add(crate::frame::FRAME_SIZE);
    let mut entry = at.as_u64();
    for value in out {
        *value = if entry < frame_end { memory.read_entry(PhysAddr::new(entry), size) } else { 0 };
        entry = entry.wrapping_add(size.bytes());
    }
}

/// Writes `count` entries of `size` bytes from `at` one by one, `first` and then each
/// value `step` more. An entry past the top of the address space is outside every memory,
/// so the run stops there (as a write outside memory is dropped) rather than wrapping to
/// address zero.
fn fill_one_by_one<M: TableMemory + ?Sized>(
    memory: &mut M,
    at: PhysAddr,
    size: EntrySize,
    count: usize,
    first: u64,
    step: u64,
) {
    let mut entry = Some(at);
    let mut value = first;
    for _ in 0..count {
        let Some(here) = entry else { return };
        memory.write_entry(here, size, value);
        entry = here.checked_add(size.bytes());
        value = value.wrapping_add(step);
    }
}

/// The little-endian value of the (up to) 8 bytes of `chunk`.
fn le_word(chunk: &[u8]) -> u64 {
    let mut word = [0; 8];
    for (to, from) in word.iter_mut().zip(chunk) {
        *to = *from;
    }
    u64::from_le_bytes(word)
}

impl<T: TableMemory + ?Sized> TableMemory for &mut T {
    #[inline]
    fn read_entry(&self, at: PhysAddr, size: EntrySize) -> u64 {
        (**self).read_entry(at, size)
    }
    #[inline]
    fn write_entry(&mut self, at: PhysAddr, size: EntrySize, value: u64) {
        (**self).write_entry(at, size, value);
    }
    #[inline]
    fn read_entries(&self, at: PhysAddr, size: EntrySize, out: &mut [u64]) {
        (**self).read_entries(at, size, out);
    }
    #[inline]
    fn zero_frame(&mut self, frame: PhysAddr) {
        (**self).zero_frame(frame);
    }
    #[inline]
    fn contains(&self, frame: PhysAddr) -> bool {
        (**self).contains(frame)
    }
    #[inline]
    fn table_words(&self, frame: PhysAddr) -> Option<&[u64; 512]> {
        (**self).table_words(frame)
    }
    #[inline]
    fn table_words_mut(&mut self, frame: PhysAddr) -> Option<&mut [u64; 512]> {
        (**self).table_words_mut(frame)
    }
    fn copy_frame(&mut self, to: PhysAddr, from: PhysAddr) {
        (**self).copy_frame(to, from);
    }
    #[inline]
    fn fill_entries(&mut self, at: PhysAddr, size: EntrySize, count: usize, first: u64, step: u64) {
        (**self).fill_entries(at, size, count, first, step);
    }
    fn read_frame(&self, frame: PhysAddr, bytes: &mut [u8; PAGE_BYTES]) {
        (**self).read_frame(frame, bytes);
    }
    fn write_frame(&mut self, frame: PhysAddr, bytes: &[u8; PAGE_BYTES]) {
        (**self).write_frame(frame, bytes);
    }
}

/// One 4 KiB frame of host memory, aligned as a page table must be.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(C, align(4096))]
pub struct FrameBuf(pub [u64; 512]);

impl FrameBuf {
    /// A frame of zeros.
    pub const ZERO: Self = Self([0; 512]);
}

impl Default for FrameBuf {
    fn default() -> Self {
        Self::ZERO
    }
}

/// Table memory over a slice of host frames: physical address `base + i * 4096` is
/// `frames[i]`.
///
/// For tests, benchmarks and examples on a host, and for early boot code that keeps its
/// tables in a static array.
///
/// ```
/// use paging::{ArenaMemory, EntrySize, FrameBuf, PhysAddr, TableMemory};
///
/// let mut frames = [FrameBuf::ZERO; 2];
/// let mut memory = ArenaMemory::new(&mut frames, PhysAddr::new(0x10_0000));
/// memory.write_entry(PhysAddr::new(0x10_1008), EntrySize::Eight, 0xABCD);
/// assert_eq!(memory.read_entry(PhysAddr::new(0x10_1008), EntrySize::Eight), 0xABCD);
/// assert_eq!(memory.read_entry(PhysAddr::new(0x10_1008), EntrySize::Four), 0xABCD);
/// assert!(!memory.contains(PhysAddr::new(0x10_2000)));
/// ```
#[derive(Debug)]
pub struct ArenaMemory<'a> {
    frames: &'a mut [FrameBuf],
    base: PhysAddr,
}

impl<'a> ArenaMemory<'a> {
    /// Creates table memory whose first frame is at physical address `base` (rounded down
    /// to 4 KiB).
    #[must_use]
    pub fn new(frames: &'a mut [FrameBuf], base: PhysAddr) -> Self {
        Self { frames, base: base.align_down(4096) }
    }

    /// The physical address of the first frame.
    #[must_use]
    pub fn base(&self) -> PhysAddr {
        self.base
    }

    /// The frames, for inspection.
    #[must_use]
    pub fn frames(&self) -> &[FrameBuf] {
        self.frames
    }

    /// The index in `frames` of the frame that starts at `frame`, if it is a frame's start;
    /// not checked against the length (an address below the base gives an index past any
    /// slice: 4 KiB frames never number 2^52 - 1).
    #[inline]
    fn frame_index(&self, frame: PhysAddr) -> Option<usize> {
        let offset = frame.as_u64().wrapping_sub(self.base.as_u64());
        if offset % 4096 != 0 {
            return None;
        }
        usize::try_from(offset >> 12).ok()
    }

    /// Returns the frame index and the 64-bit word index of `at`, if inside.
    #[inline]
    fn locate(&self, at: PhysAddr) -> Option<(usize, usize)> {
        let offset = at.as_u64().checked_sub(self.base.as_u64())?;
        let frame = usize::try_from(offset >> 12).ok()?;
        if frame < self.frames.len() {
            Some((frame, ((offset & 0xFFF) >> 3) as usize))
        } else {
            None
        }
    }
}

impl TableMemory for ArenaMemory<'_> {
    #[inline]
    fn read_entry(&self, at: PhysAddr, size: EntrySize) -> u64 {
        let Some((frame, word)) = self.locate(at) else { return 0 };
        let value = self.frames[frame].0[word];
        match size {
            EntrySize::Eight => value,
            EntrySize::Four => (value >> ((at.as_u64() & 4) * 8)) & 0xFFFF_FFFF,
        }
    }

    #[inline]
    fn write_entry(&mut self, at: PhysAddr, size: EntrySize, value: u64) {
        let Some((frame, word)) = self.locate(at) else { return };
        let slot = &mut self.frames[frame].0[word];
        match size {
            EntrySize::Eight => *slot = value,
            EntrySize::Four => {
                let shift = (at.as_u64() & 4) * 8;
                *slot = (*slot & !(0xFFFF_FFFF << shift)) | ((value & 0xFFFF_FFFF) << shift);
            }
        }
    }

    fn read_entries(&self, at: PhysAddr, size: EntrySize, out: &mut [u64]) {
        // Eight-byte entries inside one frame are a slice of it; the rest go one by one.
        if let Some((frame, word)) = self.locate(at) {
            let words = &self.frames[frame].0[word..];
            if size == EntrySize::Eight && at.is_aligned(8) && out.len() <= words.len() {
                return out.copy_from_slice(&words[..out.len()]);
            }
        }
        read_entries_one_by_one(self, at, size, out);
    }

    fn zero_frame(&mut self, frame: PhysAddr) {
        if let Some((index, _)) = self.locate(frame) {
            self.frames[index] = FrameBuf::ZERO;
        }
    }

    #[inline]
    fn contains(&self, frame: PhysAddr) -> bool {
        self.locate(frame).is_some()
    }

    #[inline]
    fn table_words(&self, frame: PhysAddr) -> Option<&[u64; 512]> {
        self.frames.get(self.frame_index(frame)?).map(|frame| &frame.0)
    }

    #[inline]
    fn table_words_mut(&mut self, frame: PhysAddr) -> Option<&mut [u64; 512]> {
        let index = self.frame_index(frame)?;
        self.frames.get_mut(index).map(|frame| &mut frame.0)
    }

    #[inline]
    fn fill_entries(&mut self, at: PhysAddr, size: EntrySize, count: usize, first: u64, step: u64) {
        let Some((frame, word)) = self.locate(at) else { return };
        let fits = count <= 512 - word && at.is_aligned(8) && size == EntrySize::Eight;
        if !fits {
            // Runs that leave the frame, and 4-byte entries, take the one-by-one path.
            return fill_one_by_one(self, at, size, count, first, step);
        }
        let mut value = first;
        for slot in &mut self.frames[frame].0[word..word + count] {
            *slot = value;
            value = value.wrapping_add(step);
        }
    }

    fn read_frame(&self, frame: PhysAddr, bytes: &mut [u8; PAGE_BYTES]) {
        let Some((index, _)) = self.locate(frame) else { return bytes.fill(0) };
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(self.frames[index].0) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
    }

    fn write_frame(&mut self, frame: PhysAddr, bytes: &[u8; PAGE_BYTES]) {
        let Some((index, _)) = self.locate(frame) else { return };
        for (word, chunk) in self.frames[index].0.iter_mut().zip(bytes.chunks_exact(8)) {
            *word = le_word(chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_byte_entries_share_a_word() {
        let mut frames = [FrameBuf::ZERO; 1];
        let mut memory = ArenaMemory::new(&mut frames, PhysAddr::ZERO);
        memory.write_entry(PhysAddr::new(0), EntrySize::Four, 0x1111_1111);
        memory.write_entry(PhysAddr::new(4), EntrySize::Four, 0x2222_2222);
        assert_eq!(memory.read_entry(PhysAddr::new(0), EntrySize::Eight), 0x2222_2222_1111_1111);
        assert_eq!(memory.read_entry(PhysAddr::new(4), EntrySize::Four), 0x2222_2222);
    }

    #[test]
    fn outside_reads_zero_and_drops_writes() {
        let mut frames = [FrameBuf::ZERO; 1];
        let mut memory = ArenaMemory::new(&mut frames, PhysAddr::new(0x1000));
        memory.write_entry(PhysAddr::new(0x2000), EntrySize::Eight, 7);
        memory.zero_frame(PhysAddr::new(0));
        assert_eq!(memory.read_entry(PhysAddr::new(0x0), EntrySize::Eight), 0);
        assert_eq!(memory.read_entry(PhysAddr::new(u64::MAX - 7), EntrySize::Eight), 0);
        assert!(memory.contains(PhysAddr::new(0x1000)));
    }

    #[test]
    fn entries_read_in_runs_stop_at_the_frame_end() {
        let mut frames = [FrameBuf::ZERO; 2];
        frames[0].0[510] = 0x1111_2222_3333_4444;
        frames[0].0[511] = 5;
        frames[1].0[0] = 6;
        let memory = ArenaMemory::new(&mut frames, PhysAddr::ZERO);
        let mut out = [9; 3];
        memory.read_entries(PhysAddr::new(0xFF0), EntrySize::Eight, &mut out);
        assert_eq!(out, [0x1111_2222_3333_4444, 5, 0], "the frame's words, then zero past it");
        memory.read_entries(PhysAddr::new(0xFF0), EntrySize::Eight, &mut out[..2]);
        assert_eq!(out, [0x1111_2222_3333_4444, 5, 0]);
        memory.read_entries(PhysAddr::new(0xFF4), EntrySize::Four, &mut out);
        assert_eq!(out, [0x1111_2222, 5, 0]);
        memory.read_entries(PhysAddr::new(0x2000), EntrySize::Eight, &mut out);
        assert_eq!(out, [0; 3], "outside the arena");
    }

    /// A memory that records where it was written (and reads zeros).
    #[derive(Default)]
    struct WriteLog(std::vec::Vec<(u64, u64)>);

    impl TableMemory for WriteLog {
        fn read_entry(&self, _: PhysAddr, _: EntrySize) -> u64 {
            0
        }
        fn write_entry(&mut self, at: PhysAddr, _: EntrySize, value: u64) {
            self.0.push((at.as_u64(), value));
        }
        fn zero_frame(&mut self, _: PhysAddr) {}
        fn contains(&self, _: PhysAddr) -> bool {
            true
        }
    }

    #[test]
    fn a_run_of_entries_stops_at_the_top_of_the_address_space() {
        let mut log = WriteLog::default();
        log.fill_entries(PhysAddr::new(u64::MAX - 0xf), EntrySize::Eight, 4, 0x10, 0x1000);
        assert_eq!(log.0, [(u64::MAX - 0xf, 0x10), (u64::MAX - 7, 0x1010)]);
        let mut log = WriteLog::default();
        log.copy_frame(PhysAddr::new(u64::MAX - 7), PhysAddr::new(0x1234));
        assert_eq!(log.0.len(), 512);
        assert_eq!((log.0[0].0, log.0[511].0), (u64::MAX - 0xfff, u64::MAX - 7), "whole frames");
    }

    /// A frame's worth of bytes that differ from word to word and within each word.
    fn pattern() -> [u8; PAGE_BYTES] {
        core::array::from_fn(|i| (i % 251) as u8)
    }

    #[test]
    fn frames_round_trip_as_little_endian_bytes() {
        let mut frames = [FrameBuf::ZERO; 2];
        let mut memory = ArenaMemory::new(&mut frames, PhysAddr::new(0x1000));
        memory.write_frame(PhysAddr::new(0x2000), &pattern());
        assert_eq!(memory.frames()[1].0[0], 0x0706_0504_0302_0100);
        assert_eq!(
            memory.read_entry(PhysAddr::new(0x2FF8), EntrySize::Eight),
            0x4F4E_4D4C_4B4A_4948
        );
        let mut back = [0xAA; PAGE_BYTES];
        // Any address inside the frame names it.
        memory.read_frame(PhysAddr::new(0x2ABC), &mut back);
        assert_eq!(back, pattern());
        assert_eq!(memory.frames()[0], FrameBuf::ZERO);
    }

    #[test]
    fn frames_outside_read_zero_and_drop_writes() {
        let mut frames = [FrameBuf::ZERO; 1];
        let mut memory = ArenaMemory::new(&mut frames, PhysAddr::new(0x1000));
        memory.write_frame(PhysAddr::new(0x2000), &pattern());
        memory.write_frame(PhysAddr::new(0), &pattern());
        assert_eq!(memory.frames()[0], FrameBuf::ZERO);
        let mut back = [0xAA; PAGE_BYTES];
        memory.read_frame(PhysAddr::new(u64::MAX), &mut back);
        assert_eq!(back, [0; PAGE_BYTES]);
    }

    /// Table memory that only has the required methods, to test the provided ones.
    struct Plain<'a>(ArenaMemory<'a>);

    impl TableMemory for Plain<'_> {
        fn read_entry(&self, at: PhysAddr, size: EntrySize) -> u64 {
            self.0.read_entry(at, size)
        }
        fn write_entry(&mut self, at: PhysAddr, size: EntrySize, value: u64) {
            self.0.write_entry(at, size, value);
        }
        fn zero_frame(&mut self, frame: PhysAddr) {
            self.0.zero_frame(frame);
        }
        fn contains(&self, frame: PhysAddr) -> bool {
            self.0.contains(frame)
        }
    }

    #[test]
    fn default_frame_copies_agree_with_the_arena() {
        let mut frames = [FrameBuf::ZERO; 1];
        let mut plain = Plain(ArenaMemory::new(&mut frames, PhysAddr::new(0x1000)));
        // Through `&mut Plain`, which forwards to the defaults.
        let mut memory = &mut plain;
        TableMemory::write_frame(&mut memory, PhysAddr::new(0x1008), &pattern());
        TableMemory::write_frame(&mut memory, PhysAddr::new(0x5000), &[0xFF; PAGE_BYTES]);
        let mut back = [0xAA; PAGE_BYTES];
        TableMemory::read_frame(&memory, PhysAddr::new(0x1000), &mut back);
        assert_eq!(back, pattern());
        plain.0.read_frame(PhysAddr::new(0x1000), &mut back);
        assert_eq!(back, pattern());
        plain.read_frame(PhysAddr::new(0x0), &mut back);
        assert_eq!(back, [0; PAGE_BYTES]);
    }
}

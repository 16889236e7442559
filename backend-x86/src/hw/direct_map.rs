//! Table memory over a direct map: all of physical memory mapped at one virtual offset.

use core::ptr::{self, NonNull};

use paging::{EntrySize, PhysAddr, TableMemory, VirtAddr};
use volatile::VolatilePtr;

/// Reads and writes page tables through a direct map of physical memory: physical
/// address `p` is reachable at virtual address `p + offset`, for `p` in a range.
///
/// Every access is volatile: the MMU reads the same memory behind the compiler's back, and
/// sets accessed and dirty bits in it. Addresses outside the range read as zero and drop
/// writes, as [`TableMemory`] asks.
///
/// On a host it works over any buffer (the tests map a `Vec` this way); in a kernel, over
/// the direct map its page tables provide. Early boot code with identity-mapped memory uses
/// offset 0.
#[derive(Debug)]
pub struct DirectMap {
    offset: u64,
    start: u64,
    end: u64,
}

impl DirectMap {
    /// Creates table memory for the physical range `[start, end)` at `offset`.
    ///
    /// # Safety
    ///
    /// For as long as the value lives, every 8-byte-aligned physical address `p` in
    /// `[start, end)` must be mapped readable and writable at virtual address
    /// `p + offset` (wrapping), with provenance exposed for it, and no Rust reference may
    /// cover those bytes: this memory is accessed only through raw volatile accesses, by
    /// this value and by whatever else shares the frames (the MMU, other `DirectMap`s).
    /// Frames that the engine treats as tables must not be in use for anything else.
    /// When the map is provided by a live table, that table must keep providing it: an
    /// engine call that unmaps or remaps the direct map (a safe call, even through this
    /// very value) breaks this promise.
    #[must_use]
    pub const unsafe fn new(offset: u64, start: PhysAddr, end: PhysAddr) -> Self {
        Self { offset, start: start.as_u64(), end: end.as_u64() }
    }

    /// The virtual offset of the map.
    #[must_use]
    pub const fn offset(&self) -> u64 {
        self.offset
    }

    /// The physical range covered, `[start, end)`.
    #[must_use]
    pub const fn range(&self) -> (PhysAddr, PhysAddr) {
        (PhysAddr::new(self.start), PhysAddr::new(self.end))
    }

    /// The virtual address where `phys` is reachable, if it is in the range.
    #[must_use]
    pub fn virt(&self, phys: PhysAddr) -> Option<VirtAddr> {
        let raw = phys.as_u64();
        (self.start <= raw && raw < self.end).then(|| VirtAddr::new(raw.wrapping_add(self.offset)))
    }

    /// A pointer to the `size` bytes at `at`, if they lie in the range and are aligned.
    fn pointer<T>(&self, at: PhysAddr) -> Option<NonNull<T>> {
        let size = core::mem::size_of::<T>() as u64;
        let raw = at.as_u64();
        if raw % size != 0 || raw < self.start || raw.checked_add(size)? > self.end {
            return None;
        }
        let addr = usize::try_from(raw.wrapping_add(self.offset)).ok()?;
        NonNull::new(ptr::with_exposed_provenance_mut(addr))
    }

    /// A pointer to the first word of the 4 KiB frame holding `frame`, if the whole frame
    /// lies in the range.
    fn frame_words(&self, frame: PhysAddr) -> Option<NonNull<u64>> {
        let base = frame.align_down(4096);
        if self.contains(base) { self.pointer::<u64>(base) } else { None }
    }

    /// Reads the value at `at` (zero outside the range).
    fn read<T: Copy + Default>(&self, at: PhysAddr) -> T {
        match self.pointer::<T>(at) {
            // SAFETY: `pointer` checked that `at` is aligned and inside the range, which
            // `new`'s contract says is mapped at `at + offset` and not covered by a reference.
            Some(p) => unsafe { VolatilePtr::new_read_only(p) }.read(),
            None => T::default(),
        }
    }

    /// Writes `value` at `at` (dropped outside the range).
    fn write<T: Copy>(&mut self, at: PhysAddr, value: T) {
        if let Some(p) = self.pointer::<T>(at) {
            // SAFETY: as in `read`: aligned, inside the range, mapped writable, and
            // reached only through raw volatile accesses.
            unsafe { VolatilePtr::new(p) }.write(value);
        }
    }
}

impl TableMemory for DirectMap {
    fn read_entry(&self, at: PhysAddr, size: EntrySize) -> u64 {
        match size {
            EntrySize::Eight => self.read::<u64>(at),
            EntrySize::Four => u64::from(self.read::<u32>(at)),
        }
    }

    fn write_entry(&mut self, at: PhysAddr, size: EntrySize, value: u64) {
        match size {
            EntrySize::Eight => self.write(at, value),
            // A 4-byte entry holds the low half; the format never asks for more.
            EntrySize::Four => self.write(at, value as u32),
        }
    }

    fn zero_frame(&mut self, frame: PhysAddr) {
        if self.contains(frame) {
            // `contains` checked the whole frame lies below the range's end: no overflow.
            for offset in (0..4096).step_by(8) {
                self.write(frame + offset, 0u64);
            }
        }
    }

    fn contains(&self, frame: PhysAddr) -> bool {
        let raw = frame.as_u64();
        raw % 4096 == 0 && raw >= self.start && raw.checked_add(4096).is_some_and(|e| e <= self.end)
    }

    /// Copies the frame holding `frame` word by word with one range check (zeros outside).
    fn read_frame(&self, frame: PhysAddr, bytes: &mut [u8; 4096]) {
        let Some(first) = self.frame_words(frame) else { return bytes.fill(0) };
        for (i, chunk) in bytes.chunks_exact_mut(8).enumerate() {
            // SAFETY: `frame_words` checked that the whole frame is in the range, and i <
            // 512 keeps the word inside it; `new`'s contract maps it and keeps references off.
            let word = unsafe { VolatilePtr::new_read_only(first.add(i)) }.read();
            chunk.copy_from_slice(&word.to_le_bytes());
        }
    }

    /// Copies `bytes` into the frame holding `frame` word by word with one range check
    /// (dropped outside).
    fn write_frame(&mut self, frame: PhysAddr, bytes: &[u8; 4096]) {
        let Some(first) = self.frame_words(frame) else { return };
        for (i, chunk) in bytes.chunks_exact(8).enumerate() {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            // SAFETY: as in `read_frame`: inside the checked frame, mapped writable, and
            // reached only through raw volatile accesses.
            unsafe { VolatilePtr::new(first.add(i)) }.write(u64::from_le_bytes(word));
        }
    }
}

#[cfg(test)]
mod tests {
    use paging::FrameBuf;

    use super::*;

    const BASE: u64 = 0x10_0000;

    #[test]
    fn frames_round_trip_through_the_map() {
        let mut frames = [FrameBuf::ZERO; 2];
        let virt = frames.as_mut_ptr().expose_provenance() as u64;
        // SAFETY: the two frames are mapped at `virt`, i.e. physical BASE + offset, and are
        // not used through a reference until the map is done with.
        let mut memory = unsafe {
            DirectMap::new(
                virt.wrapping_sub(BASE),
                PhysAddr::new(BASE),
                PhysAddr::new(BASE + 0x2000),
            )
        };
        let page: [u8; 4096] = core::array::from_fn(|i| (i % 251) as u8);
        memory.write_frame(PhysAddr::new(BASE + 0x1234), &page);
        memory.write_frame(PhysAddr::new(BASE + 0x2000), &page);
        let mut back = [0xAA; 4096];
        memory.read_frame(PhysAddr::new(BASE + 0x1000), &mut back);
        assert_eq!(back, page);
        memory.read_frame(PhysAddr::new(BASE - 1), &mut back);
        assert_eq!(back, [0; 4096]);
        assert_eq!(
            memory.read_entry(PhysAddr::new(BASE + 0x1000), EntrySize::Eight),
            0x0706_0504_0302_0100
        );
        // The map is done with: the frames are read as Rust values again.
        assert_eq!(frames[0], FrameBuf::ZERO);
        assert_eq!(frames[1].0[1], 0x0F0E_0D0C_0B0A_0908);
    }
}

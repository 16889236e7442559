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
            for offset in (0..4096).step_by(8) {
                self.write(frame + offset, 0u64);
            }
        }
    }

    fn contains(&self, frame: PhysAddr) -> bool {
        let raw = frame.as_u64();
        raw % 4096 == 0 && raw >= self.start && raw.checked_add(4096).is_some_and(|e| e <= self.end)
    }
}

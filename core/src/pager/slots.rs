//! Which slots of the backing store hold pages, with a reference count per slot.

use core::fmt;

use super::store::Slot;

/// Why the slot allocator refused a request. A refused request changed nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SlotError {
    /// Fewer free slots than asked for.
    Exhausted {
        /// The number of slots asked for.
        wanted: usize,
        /// The number of slots free.
        free: u32,
    },
    /// Enough slots are free, but no run of `wanted` contiguous ones.
    Fragmented {
        /// The length of the run asked for.
        wanted: usize,
    },
    /// A cluster of zero slots was asked for.
    EmptyCluster,
    /// The slot is not one of the allocator's.
    OutOfRange {
        /// The slot.
        slot: Slot,
        /// The number of slots the allocator manages.
        slots: u32,
    },
    /// The slot is free: nothing references it.
    NotAllocated {
        /// The slot.
        slot: Slot,
    },
    /// The slot already has the most references a count can hold (255).
    TooManyReferences {
        /// The slot.
        slot: Slot,
    },
    /// The storage given for the books is shorter than the number of slots.
    StorageTooSmall {
        /// Bytes needed: one per slot.
        needed: usize,
        /// Bytes given.
        provided: usize,
    },
}

impl fmt::Display for SlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Exhausted { wanted, free } => {
                write!(f, "{wanted} slots asked for but only {free} are free")
            }
            Self::Fragmented { wanted } => write!(f, "no run of {wanted} contiguous free slots"),
            Self::EmptyCluster => f.write_str("a cluster of zero slots was asked for"),
            Self::OutOfRange { slot, slots } => {
                write!(f, "{slot} is outside the {slots} slots of the allocator")
            }
            Self::NotAllocated { slot } => write!(f, "{slot} is not allocated"),
            Self::TooManyReferences { slot } => write!(f, "{slot} already has 255 references"),
            Self::StorageTooSmall { needed, provided } => {
                write!(f, "slot storage of {provided} bytes is smaller than the {needed} needed")
            }
        }
    }
}

impl core::error::Error for SlotError {}

/// Hands out slots of a backing store and counts the references to each, in storage the
/// caller provides (one byte per slot, no `alloc`).
///
/// A slot is free while its count is zero. Several page-table entries may name one slot
/// (a shared page written once), so the count goes up with
/// [`add_reference`](Self::add_reference) and down with [`release`](Self::release), and the
/// slot is free again when it reaches zero. Counts never wrap: a 256th reference is refused.
///
/// Allocation is first fit from a hint that moves past each allocation, so successive
/// clusters are laid out one after another like a log, and the modified page writer finds
/// long free runs ahead of it instead of refilling holes at the start.
///
/// ```
/// use paging::pager::{Slot, SlotAllocator, SlotError};
///
/// let mut books = [0u8; 8];
/// let mut slots = SlotAllocator::new(&mut books);
/// assert_eq!(slots.allocate_cluster(3)?, Slot(0));
/// assert_eq!(slots.allocate()?, Slot(3));
/// slots.add_reference(Slot(3))?;
/// assert_eq!(slots.release(Slot(3))?, 1);
/// assert_eq!(slots.release(Slot(3))?, 0);
/// assert_eq!(slots.release(Slot(3)), Err(SlotError::NotAllocated { slot: Slot(3) }));
/// assert_eq!((slots.used_slots(), slots.free_slots()), (3, 5));
/// # Ok::<(), SlotError>(())
/// ```
pub struct SlotAllocator<'s> {
    counts: &'s mut [u8],
    hint: usize,
    used: u32,
}

impl<'s> SlotAllocator<'s> {
    /// The bytes of storage needed for `slots` slots.
    #[must_use]
    pub const fn storage_needed(slots: u32) -> usize {
        slots as usize
    }

    /// Creates an allocator with one slot per byte of `storage` (at most `u32::MAX`), all
    /// free. The storage is cleared.
    #[must_use]
    pub fn new(storage: &'s mut [u8]) -> Self {
        let slots = storage.len().min(u32::MAX as usize);
        let (counts, _) = storage.split_at_mut(slots);
        counts.fill(0);
        Self { counts, hint: 0, used: 0 }
    }

    /// Creates an allocator of `slots` slots, all free, keeping its books in the first
    /// `slots` bytes of `storage` (cleared; the rest is not touched).
    ///
    /// # Errors
    ///
    /// [`SlotError::StorageTooSmall`] if `storage` has fewer than `slots` bytes.
    pub fn with_slots(storage: &'s mut [u8], slots: u32) -> Result<Self, SlotError> {
        let needed = Self::storage_needed(slots);
        let provided = storage.len();
        let (counts, _) = storage
            .split_at_mut_checked(needed)
            .ok_or(SlotError::StorageTooSmall { needed, provided })?;
        counts.fill(0);
        Ok(Self { counts, hint: 0, used: 0 })
    }

    /// The number of slots managed.
    #[must_use]
    pub fn slots(&self) -> u32 {
        // `new` and `with_slots` keep the length at most `u32::MAX`.
        self.counts.len() as u32
    }

    /// The number of slots with at least one reference.
    #[must_use]
    pub fn used_slots(&self) -> u32 {
        self.used
    }

    /// The number of free slots.
    #[must_use]
    pub fn free_slots(&self) -> u32 {
        self.slots() - self.used
    }

    /// The references to `slot` (0 when it is free).
    ///
    /// # Errors
    ///
    /// [`SlotError::OutOfRange`] for a slot the allocator does not manage.
    pub fn references(&self, slot: Slot) -> Result<u8, SlotError> {
        let slots = self.slots();
        self.counts.get(slot.0 as usize).copied().ok_or(SlotError::OutOfRange { slot, slots })
    }

    /// Takes one free slot, with one reference.
    ///
    /// # Errors
    ///
    /// [`SlotError::Exhausted`] when no slot is free.
    pub fn allocate(&mut self) -> Result<Slot, SlotError> {
        self.allocate_cluster(1)
    }

    /// Takes `count` contiguous free slots, each with one reference, and returns the first.
    /// The run is the first that fits at or after the hint, else the first from slot 0.
    ///
    /// # Errors
    ///
    /// [`SlotError::EmptyCluster`] for a zero count, [`SlotError::Exhausted`] when fewer
    /// than `count` slots are free, and [`SlotError::Fragmented`] when they are but no
    /// `count` of them are contiguous.
    pub fn allocate_cluster(&mut self, count: usize) -> Result<Slot, SlotError> {
        if count == 0 {
            return Err(SlotError::EmptyCluster);
        }
        let free = self.free_slots();
        if count > free as usize {
            return Err(SlotError::Exhausted { wanted: count, free });
        }
        // Runs starting at the hint or later first; then runs starting before it, which
        // may reach at most `count - 1` slots past it (a longer one would start later).
        let wrap_end = self.hint.saturating_add(count - 1).min(self.counts.len());
        let start = self
            .find_run(self.hint, self.counts.len(), count)
            .or_else(|| self.find_run(0, wrap_end, count))
            .ok_or(SlotError::Fragmented { wanted: count })?;
        let run = self
            .counts
            .get_mut(start..start + count)
            .ok_or(SlotError::Fragmented { wanted: count })?;
        run.fill(1);
        // `count <= free <= u32::MAX`, checked above.
        self.used += count as u32;
        let end = start + count;
        self.hint = if end == self.counts.len() { 0 } else { end };
        Ok(Slot(start as u32))
    }

    /// The start of the first run of `count` free slots inside `from..to`, if any.
    fn find_run(&self, from: usize, to: usize, count: usize) -> Option<usize> {
        let mut run = 0;
        for (i, &references) in self.counts.get(from..to)?.iter().enumerate() {
            run = if references == 0 { run + 1 } else { 0 };
            if run == count {
                return Some(from + i + 1 - count);
            }
        }
        None
    }

    /// Adds a reference to the allocated `slot` and returns its new count.
    ///
    /// # Errors
    ///
    /// [`SlotError::OutOfRange`] for a slot the allocator does not manage,
    /// [`SlotError::NotAllocated`] for a free slot, and [`SlotError::TooManyReferences`]
    /// when it already has 255.
    pub fn add_reference(&mut self, slot: Slot) -> Result<u8, SlotError> {
        let references = self.allocated(slot)?;
        let more = references.checked_add(1).ok_or(SlotError::TooManyReferences { slot })?;
        *references = more;
        Ok(more)
    }

    /// Drops a reference to the allocated `slot` and returns the references left; at 0
    /// the slot is free again.
    ///
    /// # Errors
    ///
    /// [`SlotError::OutOfRange`] for a slot the allocator does not manage, and
    /// [`SlotError::NotAllocated`] for a free slot.
    pub fn release(&mut self, slot: Slot) -> Result<u8, SlotError> {
        let references = self.allocated(slot)?;
        // `allocated` guarantees at least one reference.
        *references -= 1;
        let left = *references;
        if left == 0 {
            self.used -= 1;
        }
        Ok(left)
    }

    /// The count of `slot`, which must be allocated.
    fn allocated(&mut self, slot: Slot) -> Result<&mut u8, SlotError> {
        let slots = self.slots();
        let references =
            self.counts.get_mut(slot.0 as usize).ok_or(SlotError::OutOfRange { slot, slots })?;
        if *references == 0 {
            return Err(SlotError::NotAllocated { slot });
        }
        Ok(references)
    }
}

impl fmt::Debug for SlotAllocator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotAllocator")
            .field("slots", &self.slots())
            .field("used", &self.used)
            .field("hint", &self.hint)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The references of every slot.
    fn snapshot(slots: &SlotAllocator<'_>) -> Vec<u8> {
        (0..slots.slots()).map(|s| slots.references(Slot(s)).unwrap()).collect()
    }

    #[test]
    fn clusters_follow_the_hint_and_wrap() {
        let mut books = [0u8; 8];
        let mut slots = SlotAllocator::new(&mut books);
        assert_eq!(slots.allocate_cluster(3), Ok(Slot(0)));
        assert_eq!(slots.allocate_cluster(3), Ok(Slot(3)));
        assert_eq!(slots.release(Slot(0)), Ok(0));
        assert_eq!(slots.release(Slot(1)), Ok(0));
        // The hint is at 6: slot 6 goes before the lower hole.
        assert_eq!(slots.allocate(), Ok(Slot(6)));
        // Slots 0 and 1 are free and 7 is free, but no run of 3.
        assert_eq!(slots.allocate_cluster(3), Err(SlotError::Fragmented { wanted: 3 }));
        // A run of 2 wraps to the start past the single free slot 7.
        assert_eq!(slots.allocate_cluster(2), Ok(Slot(0)));
        assert_eq!(slots.allocate(), Ok(Slot(7)));
        assert_eq!(slots.allocate(), Err(SlotError::Exhausted { wanted: 1, free: 0 }));
        assert_eq!(snapshot(&slots), [1; 8]);
        assert_eq!((slots.used_slots(), slots.free_slots()), (8, 0));
    }

    #[test]
    fn a_run_may_start_before_the_hint_and_cross_it() {
        let mut books = [0u8; 8];
        let mut slots = SlotAllocator::new(&mut books);
        assert_eq!(slots.allocate_cluster(2), Ok(Slot(0)));
        assert_eq!(slots.allocate_cluster(3), Ok(Slot(2)));
        assert_eq!(slots.allocate_cluster(3), Ok(Slot(5)));
        for s in [1, 2, 3] {
            slots.release(Slot(s)).unwrap();
        }
        // The last cluster ended at the end: the hint is back at 0, so slot 1 goes next.
        assert_eq!(slots.allocate(), Ok(Slot(1)));
        slots.release(Slot(1)).unwrap();
        slots.release(Slot(7)).unwrap();
        // Hint 2: from there only 2..4 and 7..8 are free; the run 1..4 crosses the hint.
        assert_eq!(slots.allocate_cluster(3), Ok(Slot(1)));
        assert_eq!(snapshot(&slots), [1, 1, 1, 1, 1, 1, 1, 0]);
    }

    #[test]
    fn reference_counts_saturate_with_an_error() {
        let mut books = [0u8; 2];
        let mut slots = SlotAllocator::new(&mut books);
        let slot = slots.allocate().unwrap();
        for expected in 2..=255 {
            assert_eq!(slots.add_reference(slot), Ok(expected));
        }
        assert_eq!(slots.add_reference(slot), Err(SlotError::TooManyReferences { slot }));
        assert_eq!(slots.references(slot), Ok(255));
        for expected in (0..255).rev() {
            assert_eq!(slots.release(slot), Ok(expected));
        }
        assert_eq!(slots.used_slots(), 0);
    }

    #[test]
    fn bad_requests_change_nothing() {
        let mut books = [0u8; 4];
        let mut slots = SlotAllocator::new(&mut books);
        slots.allocate_cluster(2).unwrap();
        let before = snapshot(&slots);
        let out = SlotError::OutOfRange { slot: Slot(4), slots: 4 };
        assert_eq!(slots.add_reference(Slot(4)), Err(out));
        assert_eq!(slots.release(Slot(4)), Err(out));
        assert_eq!(slots.references(Slot(4)), Err(out));
        assert_eq!(slots.release(Slot(3)), Err(SlotError::NotAllocated { slot: Slot(3) }));
        assert_eq!(slots.add_reference(Slot(2)), Err(SlotError::NotAllocated { slot: Slot(2) }));
        assert_eq!(slots.allocate_cluster(0), Err(SlotError::EmptyCluster));
        let exhausted = SlotError::Exhausted { wanted: 3, free: 2 };
        assert_eq!(slots.allocate_cluster(3), Err(exhausted));
        assert_eq!(
            slots.allocate_cluster(usize::MAX),
            Err(SlotError::Exhausted { wanted: usize::MAX, free: 2 })
        );
        assert_eq!(snapshot(&slots), before);
        assert_eq!(slots.used_slots(), 2);
        // The hint did not move either: the next slot is 2.
        assert_eq!(slots.allocate(), Ok(Slot(2)));
        assert_eq!(exhausted.to_string(), "3 slots asked for but only 2 are free");
        assert_eq!(out.to_string(), "slot 4 is outside the 4 slots of the allocator");
    }

    #[test]
    fn storage_sizes() {
        let mut books = [7u8; 5];
        let err = SlotAllocator::with_slots(&mut books, 6).unwrap_err();
        assert_eq!(err, SlotError::StorageTooSmall { needed: 6, provided: 5 });
        let slots = SlotAllocator::with_slots(&mut books, 3).unwrap();
        assert_eq!((slots.slots(), slots.free_slots()), (3, 3));
        assert_eq!(format!("{slots:?}"), "SlotAllocator { slots: 3, used: 0, hint: 0, .. }");
        // Only the slots' bytes are cleared.
        assert_eq!(books, [0, 0, 0, 7, 7]);
        let mut none: [u8; 0] = [];
        let mut empty = SlotAllocator::new(&mut none);
        assert_eq!(empty.allocate(), Err(SlotError::Exhausted { wanted: 1, free: 0 }));
    }
}

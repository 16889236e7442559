//! Aging: an 8-bit history of the Accessed bit per page, the smallest goes.

use super::ring::{Ring, ring_queries};
use super::{FrameIndex, PageBits, PolicyError, PolicySlot, ReplacementPolicy};

/// The counter a page starts with: as if the tick to come had seen it referenced. With
/// 0 a new page would be the first victim until the next tick, however recent it is.
const NEW_PAGE_COUNTER: u8 = 0x80;

/// Aging (a software approximation of LRU): each page has an 8-bit counter; every
/// [`tick`](ReplacementPolicy::tick) shifts it right and puts the page's Accessed bit
/// in the top bit, clearing A (`c = c >> 1 | A << 7`). The victim is the evictable page
/// with the smallest counter, the oldest loaded among equals.
///
/// A new page's counter is `0x80`. Its own A bit, set by the access that faulted it in,
/// is folded in by the next tick like any other.
///
/// Storage: one [`PolicySlot`] per frame: the links and the counter (16 bytes).
#[derive(Debug)]
pub struct Aging<'s> {
    /// Resident frames in load order, the cursor on the oldest; the value is the counter.
    ring: Ring<'s>,
}

impl<'s> Aging<'s> {
    /// An aging policy for `frames` frames, keeping its books in `storage`.
    ///
    /// # Errors
    /// [`PolicyError::StorageTooSmall`] when `storage` holds fewer than
    /// [`slots_needed(frames)`](super::slots_needed) records;
    /// [`PolicyError::TooManyFrames`] for `u32::MAX` frames.
    pub fn new(storage: &'s mut [PolicySlot], frames: u32) -> Result<Self, PolicyError> {
        Ok(Self { ring: Ring::new(storage, frames)? })
    }

    /// The counter of the page in `frame`; `None` when it holds none.
    #[must_use]
    pub fn counter(&self, frame: FrameIndex) -> Option<u8> {
        let at = self.ring.check_present(frame).ok()?;
        u8::try_from(self.ring.value(at)).ok()
    }
}

impl ReplacementPolicy for Aging<'_> {
    ring_queries!();

    fn insert(&mut self, frame: FrameIndex, _now: u64) -> Result<(), PolicyError> {
        self.ring.insert(frame, u64::from(NEW_PAGE_COUNTER))
    }

    fn tick<B: PageBits + ?Sized>(&mut self, bits: &mut B) {
        let Some(mut at) = self.ring.cursor() else { return };
        for _ in 0..self.ring.len() {
            let accessed = u64::from(bits.take_accessed(FrameIndex(at)));
            self.ring.set_value(at, self.ring.value(at) >> 1 | accessed << 7);
            at = self.ring.next(at);
        }
    }

    fn victim<B: PageBits + ?Sized>(&mut self, bits: &mut B, _now: u64) -> Option<FrameIndex> {
        // `min_by_key` keeps the first of equal minima: the oldest, as the ring starts there.
        let at = self
            .ring
            .iter()
            .filter(|&at| bits.evictable(FrameIndex(at)))
            .min_by_key(|&at| self.ring.value(at))?;
        self.ring.unlink(at);
        Some(FrameIndex(at))
    }
}

//! Clock: FIFO that gives a referenced page a second chance.

use super::ring::{Ring, ring_queries};
use super::{FrameIndex, PageBits, PolicyError, PolicySlot, ReplacementPolicy};

/// Second chance on the hardware Accessed bit: a hand goes round the resident frames;
/// a page with A set loses the bit and stays, the first evictable one with A clear goes.
///
/// A new page joins just behind the hand, so it is the last the hand reaches. Two
/// sweeps always suffice: the first clears A on every evictable page it passes.
///
/// Storage: one [`PolicySlot`] per frame, of which it uses the links (8 bytes).
#[derive(Debug)]
pub struct Clock<'s> {
    /// Resident frames in ring order, the cursor is the hand.
    ring: Ring<'s>,
}

impl<'s> Clock<'s> {
    /// A clock policy for `frames` frames, keeping its books in `storage`.
    ///
    /// # Errors
    /// [`PolicyError::StorageTooSmall`] when `storage` holds fewer than
    /// [`slots_needed(frames)`](super::slots_needed) records;
    /// [`PolicyError::TooManyFrames`] for `u32::MAX` frames.
    pub fn new(storage: &'s mut [PolicySlot], frames: u32) -> Result<Self, PolicyError> {
        Ok(Self { ring: Ring::new(storage, frames)? })
    }
}

impl ReplacementPolicy for Clock<'_> {
    ring_queries!();

    fn insert(&mut self, frame: FrameIndex, _now: u64) -> Result<(), PolicyError> {
        self.ring.insert(frame, 0)
    }

    fn victim<B: PageBits + ?Sized>(&mut self, bits: &mut B, _now: u64) -> Option<FrameIndex> {
        for _ in 0..self.ring.len().saturating_mul(2) {
            let frame = FrameIndex(self.ring.cursor()?);
            if bits.evictable(frame) && !bits.take_accessed(frame) {
                self.ring.unlink(frame.0);
                return Some(frame);
            }
            self.ring.advance();
        }
        None
    }
}

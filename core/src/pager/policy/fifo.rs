//! FIFO: the page that came in first leaves first.

use super::ring::{Ring, ring_queries};
use super::{FrameIndex, PageBits, PolicyError, PolicySlot, ReplacementPolicy};

/// First in, first out: evicts the evictable page loaded earliest, whatever its use.
///
/// It reads no hardware bit, and shows Belady's anomaly: more frames can mean more
/// faults (1 2 3 4 1 2 5 1 2 3 4 5 faults 9 times with 3 frames, 10 with 4).
///
/// Storage: one [`PolicySlot`] per frame, of which it uses the links (8 bytes).
#[derive(Debug)]
pub struct Fifo<'s> {
    /// Resident frames in load order, the cursor on the oldest.
    ring: Ring<'s>,
}

impl<'s> Fifo<'s> {
    /// A FIFO policy for `frames` frames, keeping its books in `storage`.
    ///
    /// # Errors
    /// [`PolicyError::StorageTooSmall`] when `storage` holds fewer than
    /// [`slots_needed(frames)`](super::slots_needed) records;
    /// [`PolicyError::TooManyFrames`] for `u32::MAX` frames.
    pub fn new(storage: &'s mut [PolicySlot], frames: u32) -> Result<Self, PolicyError> {
        Ok(Self { ring: Ring::new(storage, frames)? })
    }
}

impl ReplacementPolicy for Fifo<'_> {
    ring_queries!();

    fn insert(&mut self, frame: FrameIndex, _now: u64) -> Result<(), PolicyError> {
        self.ring.insert(frame, 0)
    }

    fn victim<B: PageBits + ?Sized>(&mut self, bits: &mut B, _now: u64) -> Option<FrameIndex> {
        let at = self.ring.iter().find(|&at| bits.evictable(FrameIndex(at)))?;
        self.ring.unlink(at);
        Some(FrameIndex(at))
    }
}

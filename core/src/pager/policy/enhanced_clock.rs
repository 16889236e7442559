//! Enhanced Clock (NRU): the clock hand prefers pages neither used nor dirty.

use super::ring::{Ring, ring_queries};
use super::{FrameIndex, PageBits, PolicyError, PolicySlot, ReplacementPolicy};

/// The two kinds of sweep, alternated up to twice each.
#[derive(Clone, Copy)]
enum Sweep {
    /// Takes the first page of class (A,D) = (0,0), changing no bit.
    Look,
    /// Takes the first page with A clear, clearing A on each page it passes.
    Clear,
}

/// Clock with classes by (Accessed, Dirty): (0,0) goes first, then (0,1), then (1,0),
/// then (1,1), since a clean page costs no write and an unused one is likely not needed.
///
/// The classic multi-sweep: a first sweep looks for (0,0) without changing anything; a
/// second takes the first page with A clear ((0,1) by then), clearing A as it passes;
/// if both fail, every A is clear and the two sweeps run again, which must find a page
/// if any is evictable. Each sweep starts at the hand and the hand stops behind the
/// victim.
///
/// Storage: one [`PolicySlot`] per frame, of which it uses the links (8 bytes).
#[derive(Debug)]
pub struct EnhancedClock<'s> {
    /// Resident frames in ring order, the cursor is the hand.
    ring: Ring<'s>,
}

impl<'s> EnhancedClock<'s> {
    /// An enhanced clock policy for `frames` frames, keeping its books in `storage`.
    ///
    /// # Errors
    /// [`PolicyError::StorageTooSmall`] when `storage` holds fewer than
    /// [`slots_needed(frames)`](super::slots_needed) records;
    /// [`PolicyError::TooManyFrames`] for `u32::MAX` frames.
    pub fn new(storage: &'s mut [PolicySlot], frames: u32) -> Result<Self, PolicyError> {
        Ok(Self { ring: Ring::new(storage, frames)? })
    }

    /// One turn of the hand; takes the first evictable page `sweep` accepts.
    fn sweep<B: PageBits + ?Sized>(&mut self, bits: &mut B, sweep: Sweep) -> Option<FrameIndex> {
        for _ in 0..self.ring.len() {
            let frame = FrameIndex(self.ring.cursor()?);
            let take = bits.evictable(frame)
                && match sweep {
                    Sweep::Look => !bits.accessed(frame) && !bits.dirty(frame),
                    Sweep::Clear => !bits.take_accessed(frame),
                };
            if take {
                self.ring.unlink(frame.0);
                return Some(frame);
            }
            self.ring.advance();
        }
        None
    }
}

impl ReplacementPolicy for EnhancedClock<'_> {
    ring_queries!();

    fn insert(&mut self, frame: FrameIndex, _now: u64) -> Result<(), PolicyError> {
        self.ring.insert(frame, 0)
    }

    fn victim<B: PageBits + ?Sized>(&mut self, bits: &mut B, _now: u64) -> Option<FrameIndex> {
        [Sweep::Look, Sweep::Clear, Sweep::Look, Sweep::Clear]
            .into_iter()
            .find_map(|sweep| self.sweep(bits, sweep))
    }
}

//! Exact LRU: the page used least recently leaves first.

use super::ring::{Ring, ring_queries};
use super::{FrameIndex, PageBits, PolicyError, PolicySlot, ReplacementPolicy};

/// Least recently used, exactly: evicts the evictable page whose last reference is the
/// oldest.
///
/// Hardware keeps no time of use, so it needs every reference
/// ([`wants_references`](ReplacementPolicy::wants_references)): a simulator can report
/// them, a real pager cannot. Each [`touch`](ReplacementPolicy::touch) moves the frame
/// to the back of an intrusive list in O(1), so the front is always the victim.
///
/// Storage: one [`PolicySlot`] per frame, of which it uses the links (8 bytes).
#[derive(Debug)]
pub struct Lru<'s> {
    /// Resident frames from least to most recently used, the cursor on the least.
    ring: Ring<'s>,
}

impl<'s> Lru<'s> {
    /// An LRU policy for `frames` frames, keeping its books in `storage`.
    ///
    /// # Errors
    /// [`PolicyError::StorageTooSmall`] when `storage` holds fewer than
    /// [`slots_needed(frames)`](super::slots_needed) records;
    /// [`PolicyError::TooManyFrames`] for `u32::MAX` frames.
    pub fn new(storage: &'s mut [PolicySlot], frames: u32) -> Result<Self, PolicyError> {
        Ok(Self { ring: Ring::new(storage, frames)? })
    }
}

impl ReplacementPolicy for Lru<'_> {
    ring_queries!();

    fn wants_references(&self) -> bool {
        true
    }

    fn insert(&mut self, frame: FrameIndex, _now: u64) -> Result<(), PolicyError> {
        self.ring.insert(frame, 0)
    }

    fn touch(&mut self, frame: FrameIndex, _now: u64) -> Result<(), PolicyError> {
        // The order of the list is the order of use, so no time needs keeping.
        let at = self.ring.check_present(frame)?;
        self.ring.unlink(at);
        self.ring.push_back(at);
        Ok(())
    }

    fn victim<B: PageBits + ?Sized>(&mut self, bits: &mut B, _now: u64) -> Option<FrameIndex> {
        let at = self.ring.iter().find(|&at| bits.evictable(FrameIndex(at)))?;
        self.ring.unlink(at);
        Some(FrameIndex(at))
    }
}

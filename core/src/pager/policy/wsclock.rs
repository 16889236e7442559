//! WSClock (Carr and Hennessy, 1981): a clock over the working set's times of last use.

use super::ring::{Ring, ring_queries};
use super::{FrameIndex, PageBits, PolicyError, PolicySlot, ReplacementPolicy};

/// The two knobs of [`WsClock`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WsClockParams {
    /// The working-set window, in ticks of the pager's clock (`now`): a page unused for
    /// longer is out of the working set and may go.
    pub tau: u64,
    /// At most this many writes scheduled by one sweep, so that a fault does not queue
    /// the whole of memory at the disk.
    pub max_writes_per_sweep: u32,
}

impl Default for WsClockParams {
    /// A starting point, not a tuned value: a window of 1024 ticks, 16 writes a sweep
    /// (a modified-page-writer cluster's worth).
    fn default() -> Self {
        Self { tau: 1024, max_writes_per_sweep: 16 }
    }
}

/// WSClock: a hand goes round the resident frames, each stamped with its time of last
/// use. Per evictable page: A set → clear it, stamp `now`, go on; A clear and older than
/// `tau` and clean → evict it; older and dirty → ask for its write
/// ([`PageBits::schedule_write`], at most `max_writes_per_sweep` a sweep) and go on.
///
/// If a whole sweep finds nothing (every page in the working set, or dirty), it evicts
/// the oldest clean evictable page, or else the oldest evictable one (which the pager
/// must write first); among equals, the first from the hand.
///
/// Storage: one [`PolicySlot`] per frame: the links and the time of last use (16 bytes).
#[derive(Debug)]
pub struct WsClock<'s> {
    /// Resident frames in ring order, the cursor is the hand; the value is the last use.
    ring: Ring<'s>,
    params: WsClockParams,
}

impl<'s> WsClock<'s> {
    /// A WSClock policy for `frames` frames with [`WsClockParams::default`].
    ///
    /// # Errors
    /// [`PolicyError::StorageTooSmall`] when `storage` holds fewer than
    /// [`slots_needed(frames)`](super::slots_needed) records;
    /// [`PolicyError::TooManyFrames`] for `u32::MAX` frames.
    pub fn new(storage: &'s mut [PolicySlot], frames: u32) -> Result<Self, PolicyError> {
        Self::with_params(storage, frames, WsClockParams::default())
    }

    /// A WSClock policy for `frames` frames with the given window and write cap.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_params(
        storage: &'s mut [PolicySlot],
        frames: u32,
        params: WsClockParams,
    ) -> Result<Self, PolicyError> {
        Ok(Self { ring: Ring::new(storage, frames)?, params })
    }

    /// The window and write cap.
    #[must_use]
    pub fn params(&self) -> WsClockParams {
        self.params
    }

    /// The time of last use of the page in `frame` as the policy last saw it; `None`
    /// when it holds none.
    #[must_use]
    pub fn last_use(&self, frame: FrameIndex) -> Option<u64> {
        let at = self.ring.check_present(frame).ok()?;
        Some(self.ring.value(at))
    }

    /// One turn of the hand by the working-set rule; the victim if it finds one.
    fn sweep<B: PageBits + ?Sized>(&mut self, bits: &mut B, now: u64) -> Option<FrameIndex> {
        let mut writes = 0;
        for _ in 0..self.ring.len() {
            let frame = FrameIndex(self.ring.cursor()?);
            if bits.evictable(frame) {
                if bits.take_accessed(frame) {
                    self.ring.set_value(frame.0, now);
                } else if now.saturating_sub(self.ring.value(frame.0)) > self.params.tau {
                    if !bits.dirty(frame) {
                        self.ring.unlink(frame.0);
                        return Some(frame);
                    }
                    if writes < self.params.max_writes_per_sweep && bits.schedule_write(frame) {
                        writes += 1;
                    }
                }
            }
            self.ring.advance();
        }
        None
    }

    /// After a fruitless sweep: the oldest clean evictable page, else the oldest
    /// evictable one. The hand stays where the sweep left it.
    fn fallback<B: PageBits + ?Sized>(&mut self, bits: &B) -> Option<FrameIndex> {
        let oldest = |clean_only: bool| {
            self.ring
                .iter()
                .filter(|&at| bits.evictable(FrameIndex(at)))
                .filter(|&at| !clean_only || !bits.dirty(FrameIndex(at)))
                .min_by_key(|&at| self.ring.value(at))
        };
        let at = oldest(true).or_else(|| oldest(false))?;
        self.ring.unlink(at);
        Some(FrameIndex(at))
    }
}

impl ReplacementPolicy for WsClock<'_> {
    ring_queries!();

    fn insert(&mut self, frame: FrameIndex, now: u64) -> Result<(), PolicyError> {
        self.ring.insert(frame, now)
    }

    fn victim<B: PageBits + ?Sized>(&mut self, bits: &mut B, now: u64) -> Option<FrameIndex> {
        match self.sweep(bits, now) {
            Some(frame) => Some(frame),
            None => self.fallback(bits),
        }
    }
}

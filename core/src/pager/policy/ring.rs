//! The ring every policy keeps its resident frames in: a circular doubly linked list
//! threaded through the caller's per-frame records, with a cursor on one of them.
//!
//! The cursor is where a scan starts: the oldest page (FIFO, Aging), the least recently
//! used one (LRU), or a clock's hand. A page joins just behind the cursor, so it is the
//! last a scan reaches. Linking through the frames' own records makes insert, remove and
//! a move to the back O(1) without allocating.

use super::{FrameIndex, PolicyError};

/// Marks a record whose frame is not in the ring; also why `u32::MAX` frames cannot be.
const NO_FRAME: u32 = u32::MAX;

/// One frame's record in a policy's storage: 16 bytes, the same for every policy.
///
/// A policy links its resident frames through the records, and keeps one number per
/// frame beside the links (Aging's counter, WSClock's time of last use). The content is
/// private; a policy resets the storage it is given, so any records will do.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PolicySlot {
    /// The frame before this one in the ring, or `NO_FRAME`.
    prev: u32,
    /// The frame after this one in the ring, or `NO_FRAME` when not in the ring.
    next: u32,
    /// The policy's number for the frame.
    value: u64,
}

impl PolicySlot {
    /// A record for a frame that holds no page, to fill storage arrays with.
    pub const EMPTY: Self = Self { prev: NO_FRAME, next: NO_FRAME, value: 0 };
}

impl Default for PolicySlot {
    fn default() -> Self {
        Self::EMPTY
    }
}

/// The number of [`PolicySlot`]s any policy needs for `frames` frames: one per frame.
#[must_use]
pub const fn slots_needed(frames: u32) -> usize {
    frames as usize
}

/// The resident frames of a policy, in ring order from the cursor.
///
/// Invariant: every link and the cursor is `NO_FRAME` or below `frames`, which is the
/// length of `slots`; so indexing `slots` with them cannot fail.
#[derive(Debug)]
pub(super) struct Ring<'s> {
    slots: &'s mut [PolicySlot],
    frames: u32,
    cursor: u32,
    len: u32,
}

impl<'s> Ring<'s> {
    /// An empty ring over the first `frames` records of `storage`.
    pub(super) fn new(storage: &'s mut [PolicySlot], frames: u32) -> Result<Self, PolicyError> {
        if frames == NO_FRAME {
            return Err(PolicyError::TooManyFrames { frames });
        }
        let needed = slots_needed(frames);
        let provided = storage.len();
        let slots =
            storage.get_mut(..needed).ok_or(PolicyError::StorageTooSmall { needed, provided })?;
        slots.fill(PolicySlot::EMPTY);
        Ok(Self { slots, frames, cursor: NO_FRAME, len: 0 })
    }

    pub(super) fn frames(&self) -> u32 {
        self.frames
    }

    pub(super) fn len(&self) -> u32 {
        self.len
    }

    pub(super) fn contains(&self, frame: FrameIndex) -> bool {
        frame.0 < self.frames && self.slot(frame.0).next != NO_FRAME
    }

    /// `frame`'s index, if it is in range.
    fn check_range(&self, frame: FrameIndex) -> Result<u32, PolicyError> {
        if frame.0 < self.frames {
            Ok(frame.0)
        } else {
            Err(PolicyError::FrameOutOfRange { frame, frames: self.frames })
        }
    }

    /// `frame`'s index, if it is in range and not in the ring (about to be inserted).
    pub(super) fn check_absent(&self, frame: FrameIndex) -> Result<u32, PolicyError> {
        let at = self.check_range(frame)?;
        if self.contains(frame) { Err(PolicyError::AlreadyResident { frame }) } else { Ok(at) }
    }

    /// `frame`'s index, if it is in the ring.
    pub(super) fn check_present(&self, frame: FrameIndex) -> Result<u32, PolicyError> {
        let at = self.check_range(frame)?;
        if self.contains(frame) { Ok(at) } else { Err(PolicyError::NotResident { frame }) }
    }

    /// The frame under the cursor; `None` when the ring is empty.
    pub(super) fn cursor(&self) -> Option<u32> {
        (self.cursor != NO_FRAME).then_some(self.cursor)
    }

    /// The frame after `at` (which must be in the ring).
    pub(super) fn next(&self, at: u32) -> u32 {
        self.slot(at).next
    }

    /// Moves the cursor one frame on (a clock hand's step).
    pub(super) fn advance(&mut self) {
        if let Some(at) = self.cursor() {
            self.cursor = self.next(at);
        }
    }

    pub(super) fn value(&self, at: u32) -> u64 {
        self.slot(at).value
    }

    pub(super) fn set_value(&mut self, at: u32, value: u64) {
        self.slot_mut(at).value = value;
    }

    /// Makes `frame` resident with `value` beside it, just behind the cursor.
    pub(super) fn insert(&mut self, frame: FrameIndex, value: u64) -> Result<(), PolicyError> {
        let at = self.check_absent(frame)?;
        self.push_back(at);
        self.set_value(at, value);
        Ok(())
    }

    /// Takes resident `frame` out of the ring.
    pub(super) fn remove(&mut self, frame: FrameIndex) -> Result<(), PolicyError> {
        let at = self.check_present(frame)?;
        self.unlink(at);
        Ok(())
    }

    /// Links `at` (not in the ring) just behind the cursor: the last frame a scan from
    /// the cursor reaches.
    pub(super) fn push_back(&mut self, at: u32) {
        let Some(head) = self.cursor() else {
            *self.slot_mut(at) = PolicySlot { prev: at, next: at, value: 0 };
            self.cursor = at;
            self.len = 1;
            return;
        };
        let tail = self.slot(head).prev;
        *self.slot_mut(at) = PolicySlot { prev: tail, next: head, value: 0 };
        self.slot_mut(tail).next = at;
        self.slot_mut(head).prev = at;
        self.len += 1;
    }

    /// Unlinks `at` (in the ring). A cursor on it moves on to the next frame, as a clock
    /// hand does past the page it takes.
    pub(super) fn unlink(&mut self, at: u32) {
        let PolicySlot { prev, next, .. } = self.slot(at);
        if next == at {
            self.cursor = NO_FRAME;
        } else {
            self.slot_mut(prev).next = next;
            self.slot_mut(next).prev = prev;
            if self.cursor == at {
                self.cursor = next;
            }
        }
        *self.slot_mut(at) = PolicySlot::EMPTY;
        self.len -= 1;
    }

    /// The frames once around, from the cursor on.
    pub(super) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        core::iter::successors(self.cursor(), |&at| Some(self.next(at))).take(self.len as usize)
    }

    fn slot(&self, at: u32) -> PolicySlot {
        self.slots[at as usize]
    }

    fn slot_mut(&mut self, at: u32) -> &mut PolicySlot {
        &mut self.slots[at as usize]
    }
}

/// The [`ReplacementPolicy`](super::ReplacementPolicy) methods every policy answers from
/// its ring, kept in a field named `ring`.
macro_rules! ring_queries {
    () => {
        fn frames(&self) -> u32 {
            self.ring.frames()
        }

        fn resident(&self) -> u32 {
            self.ring.len()
        }

        fn is_resident(&self, frame: FrameIndex) -> bool {
            self.ring.contains(frame)
        }

        fn remove(&mut self, frame: FrameIndex) -> Result<(), PolicyError> {
            self.ring.remove(frame)
        }
    };
}
pub(super) use ring_queries;

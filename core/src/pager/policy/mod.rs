//! Page replacement: which resident page leaves memory when a frame is needed.
//!
//! A policy sees frames, not pages: the pager tells it when a page becomes resident in a
//! frame ([`ReplacementPolicy::insert`]) or leaves it other than as a victim
//! ([`remove`](ReplacementPolicy::remove)), and asks it for a
//! [`victim`](ReplacementPolicy::victim). The hardware's view of a page, its Accessed and
//! Dirty bits and whether it may go at all, comes through [`PageBits`], which the pager
//! implements over its page tables (and a test over a model of them).
//!
//! | policy | kind name | reads | notes |
//! |---|---|---|---|
//! | [`Fifo`] | `fifo` | nothing | Belady's anomaly |
//! | [`Clock`] | `clock` | A | second chance |
//! | [`EnhancedClock`] | `enhanced-clock` | A, D | classes (A,D), up to four sweeps |
//! | [`Aging`] | `aging` | A | 8-bit counters shifted by [`tick`](ReplacementPolicy::tick) |
//! | [`WsClock`] | `wsclock` | A, D | working-set clock, schedules writes of dirty pages |
//! | [`Lru`] | `lru` | every reference | exact, O(1) per [`touch`](ReplacementPolicy::touch) |
//!
//! Every policy keeps its books in storage the caller provides: one [`PolicySlot`]
//! (16 bytes) per frame, [`slots_needed`] in all. The record is the same for every
//! policy so that a pager can size its storage once and pick the policy at run time
//! ([`AnyPolicy`], [`PolicyKind`]). No operation panics: a frame out of range, a page
//! inserted twice or a frame removed that holds none is a [`PolicyError`], and a refused
//! call changes nothing.
//!
//! ```
//! use paging::pager::policy::{AnyPolicy, FrameIndex, PageBits, PolicyKind, PolicySlot};
//! use paging::pager::policy::ReplacementPolicy;
//!
//! /// Hardware bits for four frames: nothing accessed, nothing dirty, all evictable.
//! struct Quiet;
//! impl PageBits for Quiet {
//!     fn accessed(&self, _: FrameIndex) -> bool { false }
//!     fn take_accessed(&mut self, _: FrameIndex) -> bool { false }
//!     fn dirty(&self, _: FrameIndex) -> bool { false }
//!     fn evictable(&self, _: FrameIndex) -> bool { true }
//! }
//!
//! let kind: PolicyKind = "clock".parse()?;
//! let mut storage = [PolicySlot::EMPTY; 4];
//! let mut policy = AnyPolicy::new(kind, &mut storage, 4)?;
//! for (now, frame) in (0..4).enumerate() {
//!     policy.insert(FrameIndex(frame), now as u64)?;
//! }
//! // Nothing was referenced again: the clock's hand takes the oldest page.
//! assert_eq!(policy.victim(&mut Quiet, 4), Some(FrameIndex(0)));
//! assert_eq!(policy.resident(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod aging;
mod any;
mod clock;
mod enhanced_clock;
mod error;
mod fifo;
mod lru;
mod ring;
mod wsclock;

pub use aging::Aging;
pub use any::{AnyPolicy, PolicyKind};
pub use clock::Clock;
pub use enhanced_clock::EnhancedClock;
pub use error::{PolicyError, UnknownPolicy};
pub use fifo::Fifo;
pub use lru::Lru;
pub use ring::{PolicySlot, slots_needed};
pub use wsclock::{WsClock, WsClockParams};

/// A data frame the pager manages, by its index in the pager's range (`0..frames`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FrameIndex(pub u32);

/// What a policy may ask the pager (or a test's model of the hardware) about the page
/// resident in a frame.
pub trait PageBits {
    /// Reads the Accessed bit of the page in `frame`, leaving it set. Enhanced Clock looks
    /// before it clears, so that a first sweep changes nothing.
    fn accessed(&self, frame: FrameIndex) -> bool;
    /// Reads the Accessed bit of the page in `frame` and clears it. The pager rewrites
    /// the PTE and invalidates its TLB entry: a cached entry would never set the bit
    /// again (Intel SDM 4.8).
    fn take_accessed(&mut self, frame: FrameIndex) -> bool;
    /// Reads the Dirty bit of the page in `frame` (not cleared: only a write to the
    /// store makes a page clean).
    fn dirty(&self, frame: FrameIndex) -> bool;
    /// Whether the page in `frame` may be evicted now (its working set is above its
    /// minimum and it is not locked). A victim search passes over pages that may not,
    /// without clearing their bits or asking for their write.
    fn evictable(&self, frame: FrameIndex) -> bool;
    /// Asks for the dirty page in `frame` to be written to the store ahead of eviction
    /// (WSClock); returns whether the write was scheduled. The default schedules nothing.
    fn schedule_write(&mut self, _frame: FrameIndex) -> bool {
        false
    }
}

/// A page-replacement policy: the books on which resident page to evict next.
///
/// Frames are `0..frames()`. Every method that names a frame checks it, and a refused
/// call changes nothing.
pub trait ReplacementPolicy {
    /// The number of frames the policy was built for.
    fn frames(&self) -> u32;

    /// The number of frames that hold a resident page.
    fn resident(&self) -> u32;

    /// Whether `frame` holds a resident page (`false` for a frame out of range).
    fn is_resident(&self, frame: FrameIndex) -> bool;

    /// Whether the policy needs every reference (exact LRU): the pager, or the simulator,
    /// then reports each through [`touch`](Self::touch).
    fn wants_references(&self) -> bool {
        false
    }

    /// A page became resident in `frame` at time `now` (a logical clock the pager keeps;
    /// it never goes backwards). The insertion counts as a reference: no `touch` needed.
    ///
    /// # Errors
    /// [`PolicyError::FrameOutOfRange`], or [`PolicyError::AlreadyResident`] when
    /// `frame` already holds a page.
    fn insert(&mut self, frame: FrameIndex, now: u64) -> Result<(), PolicyError>;

    /// The page in `frame` left memory other than as a victim (freed, unmapped).
    ///
    /// # Errors
    /// [`PolicyError::FrameOutOfRange`], or [`PolicyError::NotResident`] when `frame`
    /// holds no page.
    fn remove(&mut self, frame: FrameIndex) -> Result<(), PolicyError>;

    /// A reference to the page in `frame` at `now`. Policies that do not want references
    /// keep no books on them, but check the frame all the same, so that a caller's
    /// mistake shows the same under every policy.
    ///
    /// # Errors
    /// [`PolicyError::FrameOutOfRange`], or [`PolicyError::NotResident`].
    fn touch(&mut self, frame: FrameIndex, _now: u64) -> Result<(), PolicyError> {
        if frame.0 >= self.frames() {
            Err(PolicyError::FrameOutOfRange { frame, frames: self.frames() })
        } else if !self.is_resident(frame) {
            Err(PolicyError::NotResident { frame })
        } else {
            Ok(())
        }
    }

    /// A periodic tick: Aging shifts its counters here (reading A through `bits`). The
    /// others have nothing to do.
    fn tick<B: PageBits + ?Sized>(&mut self, _bits: &mut B) {}

    /// Chooses a page to evict among the evictable resident ones and forgets it; `None`
    /// when none may go (then nothing is forgotten).
    fn victim<B: PageBits + ?Sized>(&mut self, bits: &mut B, now: u64) -> Option<FrameIndex>;
}

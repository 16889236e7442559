//! Choosing the policy at run time: one enum over all of them, and their names.

use core::fmt;
use core::str::FromStr;

use super::{
    Aging, Clock, EnhancedClock, Fifo, FrameIndex, Lru, PageBits, PolicyError, PolicySlot,
    ReplacementPolicy, UnknownPolicy, WsClock,
};

/// The replacement policies this crate provides, by name.
///
/// Prints as, and parses from, `fifo`, `clock`, `enhanced-clock`, `aging`, `wsclock`,
/// `lru`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PolicyKind {
    /// [`Fifo`].
    Fifo,
    /// [`Clock`].
    Clock,
    /// [`EnhancedClock`].
    EnhancedClock,
    /// [`Aging`].
    Aging,
    /// [`WsClock`].
    WsClock,
    /// [`Lru`].
    Lru,
}

impl PolicyKind {
    /// Every kind, in the order of the module's table.
    pub const ALL: [Self; 6] =
        [Self::Fifo, Self::Clock, Self::EnhancedClock, Self::Aging, Self::WsClock, Self::Lru];

    /// The kind's name, as [`Display`](fmt::Display) prints it.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Fifo => "fifo",
            Self::Clock => "clock",
            Self::EnhancedClock => "enhanced-clock",
            Self::Aging => "aging",
            Self::WsClock => "wsclock",
            Self::Lru => "lru",
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PolicyKind {
    type Err = UnknownPolicy;

    /// The kind named exactly `name` (lower case, as printed).
    fn from_str(name: &str) -> Result<Self, UnknownPolicy> {
        Self::ALL.into_iter().find(|kind| kind.name() == name).ok_or(UnknownPolicy)
    }
}

/// Any of the policies, chosen at run time; it forwards every call to the one it holds.
///
/// Built by [`AnyPolicy::new`] from a [`PolicyKind`] (WSClock with its default
/// parameters), or around a policy built by hand, as in
/// `AnyPolicy::WsClock(WsClock::with_params(..)?)`. Storage: one [`PolicySlot`] per frame
/// whatever the kind.
#[derive(Debug)]
pub enum AnyPolicy<'s> {
    /// First in, first out.
    Fifo(Fifo<'s>),
    /// Second chance.
    Clock(Clock<'s>),
    /// Clock by (Accessed, Dirty) classes.
    EnhancedClock(EnhancedClock<'s>),
    /// 8-bit aging counters.
    Aging(Aging<'s>),
    /// Working-set clock.
    WsClock(WsClock<'s>),
    /// Exact least recently used.
    Lru(Lru<'s>),
}

/// Forwards a call to the policy an `AnyPolicy` holds.
macro_rules! forward {
    ($self:expr, $policy:ident => $call:expr) => {
        match $self {
            AnyPolicy::Fifo($policy) => $call,
            AnyPolicy::Clock($policy) => $call,
            AnyPolicy::EnhancedClock($policy) => $call,
            AnyPolicy::Aging($policy) => $call,
            AnyPolicy::WsClock($policy) => $call,
            AnyPolicy::Lru($policy) => $call,
        }
    };
}

impl<'s> AnyPolicy<'s> {
    /// A policy of kind `kind` for `frames` frames, keeping its books in `storage`.
    ///
    /// # Errors
    /// [`PolicyError::StorageTooSmall`] when `storage` holds fewer than
    /// [`slots_needed(frames)`](super::slots_needed) records;
    /// [`PolicyError::TooManyFrames`] for `u32::MAX` frames.
    pub fn new(
        kind: PolicyKind,
        storage: &'s mut [PolicySlot],
        frames: u32,
    ) -> Result<Self, PolicyError> {
        Ok(match kind {
            PolicyKind::Fifo => Self::Fifo(Fifo::new(storage, frames)?),
            PolicyKind::Clock => Self::Clock(Clock::new(storage, frames)?),
            PolicyKind::EnhancedClock => Self::EnhancedClock(EnhancedClock::new(storage, frames)?),
            PolicyKind::Aging => Self::Aging(Aging::new(storage, frames)?),
            PolicyKind::WsClock => Self::WsClock(WsClock::new(storage, frames)?),
            PolicyKind::Lru => Self::Lru(Lru::new(storage, frames)?),
        })
    }

    /// The kind of the policy it holds.
    #[must_use]
    pub fn kind(&self) -> PolicyKind {
        match self {
            Self::Fifo(_) => PolicyKind::Fifo,
            Self::Clock(_) => PolicyKind::Clock,
            Self::EnhancedClock(_) => PolicyKind::EnhancedClock,
            Self::Aging(_) => PolicyKind::Aging,
            Self::WsClock(_) => PolicyKind::WsClock,
            Self::Lru(_) => PolicyKind::Lru,
        }
    }
}

impl ReplacementPolicy for AnyPolicy<'_> {
    fn frames(&self) -> u32 {
        forward!(self, p => p.frames())
    }

    fn resident(&self) -> u32 {
        forward!(self, p => p.resident())
    }

    fn is_resident(&self, frame: FrameIndex) -> bool {
        forward!(self, p => p.is_resident(frame))
    }

    fn wants_references(&self) -> bool {
        forward!(self, p => p.wants_references())
    }

    fn insert(&mut self, frame: FrameIndex, now: u64) -> Result<(), PolicyError> {
        forward!(self, p => p.insert(frame, now))
    }

    fn remove(&mut self, frame: FrameIndex) -> Result<(), PolicyError> {
        forward!(self, p => p.remove(frame))
    }

    fn touch(&mut self, frame: FrameIndex, now: u64) -> Result<(), PolicyError> {
        forward!(self, p => p.touch(frame, now))
    }

    fn tick<B: PageBits + ?Sized>(&mut self, bits: &mut B) {
        forward!(self, p => p.tick(bits));
    }

    fn victim<B: PageBits + ?Sized>(&mut self, bits: &mut B, now: u64) -> Option<FrameIndex> {
        forward!(self, p => p.victim(bits, now))
    }
}

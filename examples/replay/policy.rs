//! The policies a replay can ask for: the pager's own, and OPT, which needs the future and
//! so lives here, told each resident page's next use by the replayer.

use std::fmt;
use std::str::FromStr;

use paging::pager::policy::{
    AnyPolicy, FrameIndex, PageBits, PolicyError, PolicyKind, PolicySlot, ReplacementPolicy,
    WsClock, WsClockParams,
};

/// A policy by name, as `--policy` takes it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Policy {
    /// One of the pager's policies.
    Pager(PolicyKind),
    /// Belady's optimum: evicts the page used again furthest in the future.
    Opt,
}

impl Policy {
    /// Every policy, in the order `all` runs them.
    pub const ALL: [Self; 7] = [
        Self::Pager(PolicyKind::Fifo),
        Self::Pager(PolicyKind::Clock),
        Self::Pager(PolicyKind::EnhancedClock),
        Self::Pager(PolicyKind::Aging),
        Self::Pager(PolicyKind::WsClock),
        Self::Pager(PolicyKind::Lru),
        Self::Opt,
    ];

    /// The name `--policy` takes and the output prints.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pager(PolicyKind::Fifo) => "fifo",
            Self::Pager(PolicyKind::Clock) => "clock",
            Self::Pager(PolicyKind::EnhancedClock) => "enhanced-clock",
            Self::Pager(PolicyKind::Aging) => "aging",
            Self::Pager(PolicyKind::WsClock) => "wsclock",
            Self::Pager(PolicyKind::Lru) => "lru",
            Self::Opt => "opt",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Policy {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        let known = Self::ALL.iter().find(|p| p.name() == name.trim().to_ascii_lowercase());
        known.copied().ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|p| p.name()).collect();
            format!("unknown policy {name:?}: expected one of {}, or all", names.join(", "))
        })
    }
}

/// Parameters of the policies that have some.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// WSClock's window, in ticks of the pager's clock (one per fault).
    pub tau: u64,
    /// References between two of Aging's ticks.
    pub aging_tick: u64,
}

impl Default for Params {
    fn default() -> Self {
        Self { tau: WsClockParams::default().tau, aging_tick: 100 }
    }
}

/// The policy a replay's pager runs: one of the pager's, or OPT.
#[derive(Debug)]
pub enum ReplayPolicy<'s> {
    /// One of the pager's own policies.
    Pager(AnyPolicy<'s>),
    /// Belady's optimum.
    Opt(Opt),
}

impl<'s> ReplayPolicy<'s> {
    /// `policy` for `frames` frames, its books in `storage`.
    ///
    /// # Errors
    ///
    /// What the pager's policies refuse: storage too small, too many frames.
    pub fn new(
        policy: Policy,
        params: Params,
        storage: &'s mut [PolicySlot],
        frames: u32,
    ) -> Result<Self, PolicyError> {
        Ok(match policy {
            Policy::Pager(PolicyKind::WsClock) => {
                let params = WsClockParams { tau: params.tau, ..WsClockParams::default() };
                Self::Pager(AnyPolicy::WsClock(WsClock::with_params(storage, frames, params)?))
            }
            Policy::Pager(kind) => Self::Pager(AnyPolicy::new(kind, storage, frames)?),
            Policy::Opt => Self::Opt(Opt::new(frames)),
        })
    }
}

/// Forwards a call to the policy inside.
macro_rules! forward {
    ($self:ident, $p:ident => $call:expr) => {
        match $self {
            ReplayPolicy::Pager($p) => $call,
            ReplayPolicy::Opt($p) => $call,
        }
    };
}

impl ReplacementPolicy for ReplayPolicy<'_> {
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

/// A next use that never comes.
pub const NEVER: u64 = u64::MAX;

/// Belady's OPT (MIN): evicts the resident page whose next reference is furthest away.
/// No hardware can know that; the replayer does, having read the trace once already, and
/// tells it after every reference ([`set_next_use`](Self::set_next_use)).
#[derive(Debug)]
pub struct Opt {
    /// Per frame: the index of the next reference to its page, if resident.
    next_use: Vec<Option<u64>>,
    resident: u32,
}

impl Opt {
    /// OPT over `frames` frames, none resident.
    pub fn new(frames: u32) -> Self {
        Self { next_use: vec![None; frames as usize], resident: 0 }
    }

    /// The page in `frame` is referenced next at `next` ([`NEVER`] if not again).
    pub fn set_next_use(&mut self, frame: FrameIndex, next: u64) {
        if let Some(Some(slot)) = self.next_use.get_mut(frame.0 as usize) {
            *slot = next;
        }
    }

    fn check(&self, frame: FrameIndex) -> Result<Option<u64>, PolicyError> {
        let frames = self.frames();
        let slot = self.next_use.get(frame.0 as usize);
        slot.copied().ok_or(PolicyError::FrameOutOfRange { frame, frames })
    }
}

impl ReplacementPolicy for Opt {
    fn frames(&self) -> u32 {
        self.next_use.len() as u32
    }

    fn resident(&self) -> u32 {
        self.resident
    }

    fn is_resident(&self, frame: FrameIndex) -> bool {
        matches!(self.check(frame), Ok(Some(_)))
    }

    fn insert(&mut self, frame: FrameIndex, _now: u64) -> Result<(), PolicyError> {
        if self.check(frame)?.is_some() {
            return Err(PolicyError::AlreadyResident { frame });
        }
        // Until the replayer says, the page is as good as never used again.
        self.next_use[frame.0 as usize] = Some(NEVER);
        self.resident += 1;
        Ok(())
    }

    fn remove(&mut self, frame: FrameIndex) -> Result<(), PolicyError> {
        if self.check(frame)?.is_none() {
            return Err(PolicyError::NotResident { frame });
        }
        self.next_use[frame.0 as usize] = None;
        self.resident -= 1;
        Ok(())
    }

    fn victim<B: PageBits + ?Sized>(&mut self, bits: &mut B, _now: u64) -> Option<FrameIndex> {
        let resident = self.next_use.iter().enumerate().filter_map(|(i, next)| Some((i, (*next)?)));
        let evictable = resident.filter(|&(i, _)| bits.evictable(FrameIndex(i as u32)));
        // The furthest next use; among pages never used again, the lowest frame.
        let (index, _) = evictable.min_by_key(|&(i, next)| (std::cmp::Reverse(next), i))?;
        let frame = FrameIndex(index as u32);
        self.remove(frame).ok()?;
        Some(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct AllEvictable;

    impl PageBits for AllEvictable {
        fn accessed(&self, _: FrameIndex) -> bool {
            false
        }
        fn take_accessed(&mut self, _: FrameIndex) -> bool {
            false
        }
        fn dirty(&self, _: FrameIndex) -> bool {
            false
        }
        fn evictable(&self, _: FrameIndex) -> bool {
            true
        }
    }

    #[test]
    fn opt_evicts_the_furthest_next_use_and_checks_frames() {
        let mut opt = Opt::new(3);
        for (frame, next) in [(0, 9), (1, 4), (2, 7)] {
            opt.insert(FrameIndex(frame), 0).unwrap();
            opt.set_next_use(FrameIndex(frame), next);
        }
        assert_eq!(opt.victim(&mut AllEvictable, 0), Some(FrameIndex(0)));
        assert_eq!(opt.resident(), 2);
        opt.set_next_use(FrameIndex(1), NEVER);
        assert_eq!(opt.victim(&mut AllEvictable, 0), Some(FrameIndex(1)));
        assert_eq!(
            opt.insert(FrameIndex(2), 0),
            Err(PolicyError::AlreadyResident { frame: FrameIndex(2) })
        );
        assert_eq!(
            opt.remove(FrameIndex(1)),
            Err(PolicyError::NotResident { frame: FrameIndex(1) })
        );
        let out = FrameIndex(3);
        assert_eq!(opt.insert(out, 0), Err(PolicyError::FrameOutOfRange { frame: out, frames: 3 }));
    }

    #[test]
    fn policy_names_round_trip() {
        for policy in Policy::ALL {
            assert_eq!(policy.name().parse::<Policy>(), Ok(policy));
        }
        assert!("belady".parse::<Policy>().unwrap_err().contains("unknown policy \"belady\""));
    }
}

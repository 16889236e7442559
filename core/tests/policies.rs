//! The replacement policies against plain reference implementations of themselves, on a
//! small simulated memory with a model of the hardware's Accessed and Dirty bits; the
//! textbook fault counts; and the refusals.

use std::collections::VecDeque;

use paging::pager::policy::{
    AnyPolicy, FrameIndex, PageBits, PolicyError, PolicyKind, PolicySlot, ReplacementPolicy,
    UnknownPolicy, WsClock, WsClockParams, slots_needed,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// The hardware model.
// ---------------------------------------------------------------------------------------

/// The bits of the page in each frame, as an MMU and a pager would keep them.
#[derive(Clone, Debug)]
struct Hardware {
    resident: Vec<bool>,
    accessed: Vec<bool>,
    dirty: Vec<bool>,
    locked: Vec<bool>,
    /// Whether `schedule_write` accepts; an accepted write completes at once (D clears).
    accept_writes: bool,
    /// Set while a victim is being chosen: then locked pages' bits are out of bounds.
    choosing: bool,
    writes: u32,
}

impl Hardware {
    fn new(frames: usize, accept_writes: bool) -> Self {
        let none = vec![false; frames];
        Self {
            resident: none.clone(),
            accessed: none.clone(),
            dirty: none.clone(),
            locked: none,
            accept_writes,
            choosing: false,
            writes: 0,
        }
    }

    /// A frame whose page a policy may look at: resident.
    fn check(&self, frame: FrameIndex) -> usize {
        let at = frame.0 as usize;
        assert!(self.resident[at], "a policy asked about empty frame {at}");
        at
    }

    /// A frame whose bits a policy may change: resident, and evictable when a victim is
    /// being chosen (Aging's tick reads every page).
    fn check_evictable(&self, frame: FrameIndex) -> usize {
        let at = self.check(frame);
        let passed_over = self.choosing && self.locked[at];
        assert!(!passed_over, "a victim search changed the bits of locked frame {at}");
        at
    }

    fn load(&mut self, frame: u32) {
        self.clear(frame);
        self.resident[frame as usize] = true;
    }

    fn clear(&mut self, frame: u32) {
        let at = frame as usize;
        self.resident[at] = false;
        self.accessed[at] = false;
        self.dirty[at] = false;
        self.locked[at] = false;
    }
}

impl PageBits for Hardware {
    fn accessed(&self, frame: FrameIndex) -> bool {
        self.accessed[self.check(frame)]
    }

    fn take_accessed(&mut self, frame: FrameIndex) -> bool {
        let at = self.check_evictable(frame);
        std::mem::take(&mut self.accessed[at])
    }

    fn dirty(&self, frame: FrameIndex) -> bool {
        self.dirty[self.check(frame)]
    }

    fn evictable(&self, frame: FrameIndex) -> bool {
        !self.locked[self.check(frame)]
    }

    fn schedule_write(&mut self, frame: FrameIndex) -> bool {
        let at = self.check_evictable(frame);
        assert!(self.dirty[at], "a policy asked to write clean frame {at}");
        if self.accept_writes {
            self.dirty[at] = false;
            self.writes += 1;
        }
        self.accept_writes
    }
}

// ---------------------------------------------------------------------------------------
// The driver: a memory of k frames, pages faulted in on reference.
// ---------------------------------------------------------------------------------------

/// One step of a run.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// A read or write of a page.
    Ref { page: u8, write: bool },
    /// A periodic tick (Aging's shift).
    Tick,
    /// The page is freed (leaves memory other than as a victim).
    Unmap { page: u8 },
    /// The page may not be evicted for now.
    Lock { page: u8 },
    /// The page may be evicted again.
    Unlock { page: u8 },
}

/// How a fault found its frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FaultFrame {
    Free(u32),
    Victim(u32),
    /// Memory full, nothing evictable: the reference is not served.
    Stalled,
}

/// A memory of `frames` frames under policy `P`.
struct Machine<P> {
    policy: P,
    hw: Hardware,
    frame_of: Vec<Option<u32>>,
    page_in: Vec<Option<u8>>,
    now: u64,
    trace: Vec<FaultFrame>,
}

impl<P: ReplacementPolicy> Machine<P> {
    fn new(policy: P, pages: usize, accept_writes: bool) -> Self {
        let frames = policy.frames() as usize;
        Self {
            policy,
            hw: Hardware::new(frames, accept_writes),
            frame_of: vec![None; pages],
            page_in: vec![None; frames],
            now: 0,
            trace: Vec::new(),
        }
    }

    fn faults(&self) -> usize {
        self.trace.len()
    }

    fn run(&mut self, ops: &[Op]) {
        for &op in ops {
            self.step(op);
            let resident = self.page_in.iter().filter(|page| page.is_some()).count();
            assert_eq!(self.policy.resident() as usize, resident);
        }
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Ref { page, write } => self.reference(page, write),
            Op::Tick => self.policy.tick(&mut self.hw),
            Op::Unmap { page } => {
                if let Some(frame) = self.frame_of[usize::from(page)] {
                    self.policy.remove(FrameIndex(frame)).expect("remove a resident page");
                    self.evict(frame);
                }
            }
            Op::Lock { page } => self.set_locked(page, true),
            Op::Unlock { page } => self.set_locked(page, false),
        }
    }

    fn set_locked(&mut self, page: u8, locked: bool) {
        if let Some(frame) = self.frame_of[usize::from(page)] {
            self.hw.locked[frame as usize] = locked;
        }
    }

    fn reference(&mut self, page: u8, write: bool) {
        self.now += 1;
        let frame = match self.frame_of[usize::from(page)] {
            Some(frame) => {
                if self.policy.wants_references() {
                    self.policy.touch(FrameIndex(frame), self.now).expect("touch a resident page");
                }
                frame
            }
            None => match self.fault(page) {
                Some(frame) => frame,
                None => return,
            },
        };
        self.hw.accessed[frame as usize] = true;
        self.hw.dirty[frame as usize] |= write;
    }

    /// Brings `page` in; its frame, or `None` when nothing may be evicted.
    fn fault(&mut self, page: u8) -> Option<u32> {
        let free = self.page_in.iter().position(Option::is_none);
        let how = match free {
            Some(frame) => FaultFrame::Free(frame as u32),
            None => match self.choose_victim() {
                Some(FrameIndex(frame)) => FaultFrame::Victim(frame),
                None => FaultFrame::Stalled,
            },
        };
        self.trace.push(how);
        let frame = match how {
            FaultFrame::Free(frame) => frame,
            FaultFrame::Victim(frame) => {
                assert!(self.hw.resident[frame as usize], "victim {frame} held no page");
                assert!(!self.hw.locked[frame as usize], "victim {frame} was not evictable");
                assert!(!self.policy.is_resident(FrameIndex(frame)), "victim not forgotten");
                self.evict(frame);
                frame
            }
            FaultFrame::Stalled => {
                assert!(self.hw.locked.iter().all(|&locked| locked), "stalled with a victim");
                return None;
            }
        };
        self.policy.insert(FrameIndex(frame), self.now).expect("insert into a free frame");
        self.hw.load(frame);
        self.frame_of[usize::from(page)] = Some(frame);
        self.page_in[frame as usize] = Some(page);
        Some(frame)
    }

    fn choose_victim(&mut self) -> Option<FrameIndex> {
        self.hw.choosing = true;
        let victim = self.policy.victim(&mut self.hw, self.now);
        self.hw.choosing = false;
        victim
    }

    fn evict(&mut self, frame: u32) {
        if let Some(page) = self.page_in[frame as usize].take() {
            self.frame_of[usize::from(page)] = None;
        }
        self.hw.clear(frame);
    }
}

/// Reads of `pages` in order, as a list of operations.
fn reads(pages: &[u8]) -> Vec<Op> {
    pages.iter().map(|&page| Op::Ref { page, write: false }).collect()
}

/// The faults of `ops` on `frames` frames under the crate's policy of kind `kind`.
fn faults_of(kind: PolicyKind, frames: u32, ops: &[Op]) -> usize {
    let mut storage = vec![PolicySlot::EMPTY; slots_needed(frames)];
    let policy = AnyPolicy::new(kind, &mut storage, frames).unwrap();
    let mut machine = Machine::new(policy, 256, true);
    machine.run(ops);
    machine.faults()
}

// ---------------------------------------------------------------------------------------
// The reference implementations: a VecDeque per policy, as the textbooks describe them.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct Resident {
    frame: u32,
    /// Aging's counter; WSClock's and LRU's time of last use.
    value: u64,
}

/// Every policy, plainly: resident pages in a deque, front = oldest or the clock's hand.
struct Reference {
    kind: PolicyKind,
    params: WsClockParams,
    frames: u32,
    pages: VecDeque<Resident>,
}

impl Reference {
    fn new(kind: PolicyKind, frames: u32, params: WsClockParams) -> Self {
        Self { kind, params, frames, pages: VecDeque::new() }
    }

    fn position(&self, frame: FrameIndex) -> Option<usize> {
        self.pages.iter().position(|page| page.frame == frame.0)
    }

    fn evict_at(&mut self, position: usize) -> Option<FrameIndex> {
        self.pages.remove(position).map(|page| FrameIndex(page.frame))
    }

    /// The first page `pick` accepts, from the front.
    fn first(&mut self, mut pick: impl FnMut(FrameIndex) -> bool) -> Option<FrameIndex> {
        let position = self.pages.iter().position(|page| pick(FrameIndex(page.frame)))?;
        self.evict_at(position)
    }

    /// The accepted page with the smallest value, the first of equals.
    fn smallest(&mut self, pick: impl Fn(FrameIndex) -> bool) -> Option<FrameIndex> {
        let (position, _) = self
            .pages
            .iter()
            .enumerate()
            .filter(|(_, page)| pick(FrameIndex(page.frame)))
            .min_by_key(|(_, page)| page.value)?;
        self.evict_at(position)
    }

    fn clock<B: PageBits + ?Sized>(&mut self, bits: &mut B) -> Option<FrameIndex> {
        for _ in 0..2 * self.pages.len() {
            let front = FrameIndex(self.pages[0].frame);
            if bits.evictable(front) && !bits.take_accessed(front) {
                return self.evict_at(0);
            }
            self.pages.rotate_left(1);
        }
        None
    }

    fn enhanced_clock<B: PageBits + ?Sized>(&mut self, bits: &mut B) -> Option<FrameIndex> {
        for sweep in 0..4 {
            for _ in 0..self.pages.len() {
                let front = FrameIndex(self.pages[0].frame);
                let take = bits.evictable(front)
                    && if sweep % 2 == 0 {
                        !bits.accessed(front) && !bits.dirty(front)
                    } else {
                        !bits.take_accessed(front)
                    };
                if take {
                    return self.evict_at(0);
                }
                self.pages.rotate_left(1);
            }
        }
        None
    }

    fn wsclock<B: PageBits + ?Sized>(&mut self, bits: &mut B, now: u64) -> Option<FrameIndex> {
        let mut writes = 0;
        for _ in 0..self.pages.len() {
            let front = FrameIndex(self.pages[0].frame);
            if bits.evictable(front) {
                if bits.take_accessed(front) {
                    self.pages[0].value = now;
                } else if now.saturating_sub(self.pages[0].value) > self.params.tau {
                    if !bits.dirty(front) {
                        return self.evict_at(0);
                    }
                    if writes < self.params.max_writes_per_sweep && bits.schedule_write(front) {
                        writes += 1;
                    }
                }
            }
            self.pages.rotate_left(1);
        }
        let bits = &*bits;
        self.smallest(|frame| bits.evictable(frame) && !bits.dirty(frame))
            .or_else(|| self.smallest(|frame| bits.evictable(frame)))
    }
}

impl ReplacementPolicy for Reference {
    fn frames(&self) -> u32 {
        self.frames
    }

    fn resident(&self) -> u32 {
        self.pages.len() as u32
    }

    fn is_resident(&self, frame: FrameIndex) -> bool {
        self.position(frame).is_some()
    }

    fn wants_references(&self) -> bool {
        self.kind == PolicyKind::Lru
    }

    fn insert(&mut self, frame: FrameIndex, now: u64) -> Result<(), PolicyError> {
        assert!(frame.0 < self.frames && !self.is_resident(frame));
        let value = if self.kind == PolicyKind::Aging { 0x80 } else { now };
        self.pages.push_back(Resident { frame: frame.0, value });
        Ok(())
    }

    fn remove(&mut self, frame: FrameIndex) -> Result<(), PolicyError> {
        let position = self.position(frame).expect("remove a resident page");
        self.pages.remove(position);
        Ok(())
    }

    fn touch(&mut self, frame: FrameIndex, now: u64) -> Result<(), PolicyError> {
        let position = self.position(frame).expect("touch a resident page");
        self.pages[position].value = now;
        Ok(())
    }

    fn tick<B: PageBits + ?Sized>(&mut self, bits: &mut B) {
        if self.kind == PolicyKind::Aging {
            for page in &mut self.pages {
                let accessed = u64::from(bits.take_accessed(FrameIndex(page.frame)));
                page.value = page.value >> 1 | accessed << 7;
            }
        }
    }

    fn victim<B: PageBits + ?Sized>(&mut self, bits: &mut B, now: u64) -> Option<FrameIndex> {
        match self.kind {
            PolicyKind::Fifo => self.first(|frame| bits.evictable(frame)),
            PolicyKind::Lru | PolicyKind::Aging => self.smallest(|frame| bits.evictable(frame)),
            PolicyKind::Clock => self.clock(bits),
            PolicyKind::EnhancedClock => self.enhanced_clock(bits),
            PolicyKind::WsClock => self.wsclock(bits, now),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Property: every policy chooses exactly as its reference.
// ---------------------------------------------------------------------------------------

const PAGES: u8 = 10;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0..PAGES, any::<bool>()).prop_map(|(page, write)| Op::Ref { page, write }),
        2 => Just(Op::Tick),
        1 => (0..PAGES).prop_map(|page| Op::Unmap { page }),
        1 => (0..PAGES).prop_map(|page| Op::Lock { page }),
        2 => (0..PAGES).prop_map(|page| Op::Unlock { page }),
    ]
}

/// A run of `ops` on `frames` frames under the crate's policy and under the reference.
fn compare(kind: PolicyKind, frames: u32, params: WsClockParams, writes: bool, ops: &[Op]) {
    let mut storage = vec![PolicySlot::EMPTY; slots_needed(frames)];
    let policy = match kind {
        PolicyKind::WsClock => {
            AnyPolicy::WsClock(WsClock::with_params(&mut storage, frames, params).unwrap())
        }
        _ => AnyPolicy::new(kind, &mut storage, frames).unwrap(),
    };
    assert_eq!(policy.kind(), kind);
    let mut real = Machine::new(policy, usize::from(PAGES), writes);
    let mut model = Machine::new(Reference::new(kind, frames, params), usize::from(PAGES), writes);
    real.run(ops);
    model.run(ops);
    assert_eq!(real.trace, model.trace, "{kind}: the frames of every fault");
    assert_eq!(real.hw.writes, model.hw.writes, "{kind}: writes scheduled");
    assert_eq!(real.frame_of, model.frame_of, "{kind}: resident pages");
}

proptest! {
    #[test]
    fn every_policy_chooses_as_its_reference(
        frames in 1u32..=6,
        tau in 0u64..12,
        max_writes_per_sweep in 0u32..3,
        writes in any::<bool>(),
        ops in prop::collection::vec(op(), 0..300),
    ) {
        let params = WsClockParams { tau, max_writes_per_sweep };
        for kind in PolicyKind::ALL {
            compare(kind, frames, params, writes, &ops);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Textbook counts.
// ---------------------------------------------------------------------------------------

#[test]
fn fifo_shows_beladys_anomaly() {
    let string = reads(&[1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5]);
    assert_eq!(faults_of(PolicyKind::Fifo, 3, &string), 9);
    assert_eq!(faults_of(PolicyKind::Fifo, 4, &string), 10);
}

#[test]
fn textbook_string_fifo_15_lru_12() {
    let string = reads(&[7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1]);
    assert_eq!(faults_of(PolicyKind::Fifo, 3, &string), 15);
    assert_eq!(faults_of(PolicyKind::Lru, 3, &string), 12);
}

// ---------------------------------------------------------------------------------------
// Hand-checked choices (so that a misreading shared by a policy and its reference shows).
// ---------------------------------------------------------------------------------------

/// A machine with frames 0..n loaded with pages 0..n, A and D cleared.
fn loaded(policy: AnyPolicy<'_>) -> Machine<AnyPolicy<'_>> {
    let frames = policy.frames();
    let mut machine = Machine::new(policy, 16, true);
    machine.run(&reads(&(0..frames as u8).collect::<Vec<_>>()));
    machine.hw.accessed.fill(false);
    machine
}

fn victim(machine: &mut Machine<AnyPolicy<'_>>) -> Option<u32> {
    machine.choose_victim().map(|frame| frame.0)
}

#[test]
fn clock_gives_referenced_pages_a_second_chance() {
    let mut storage = [PolicySlot::EMPTY; 4];
    let mut m = loaded(AnyPolicy::new(PolicyKind::Clock, &mut storage, 4).unwrap());
    m.hw.accessed[0] = true;
    m.hw.accessed[1] = true;
    assert_eq!(victim(&mut m), Some(2));
    assert!(!m.hw.accessed[0] && !m.hw.accessed[1], "passed pages lose A");
    assert_eq!(victim(&mut m), Some(3), "the hand goes on from behind the victim");
    assert_eq!(victim(&mut m), Some(0));
}

#[test]
fn enhanced_clock_takes_classes_in_order() {
    let mut storage = [PolicySlot::EMPTY; 4];
    let mut m = loaded(AnyPolicy::new(PolicyKind::EnhancedClock, &mut storage, 4).unwrap());
    // Frames 0..4 in classes (1,1), (1,0), (0,1), (0,0).
    m.hw.accessed[..2].fill(true);
    m.hw.dirty = vec![true, false, true, false];
    assert_eq!(victim(&mut m), Some(3));
    assert_eq!(m.hw.accessed, [true, true, false, false], "the first sweep clears nothing");
    assert_eq!(victim(&mut m), Some(2), "(0,1) next");
    assert_eq!(victim(&mut m), Some(1), "(1,0) next: the last sweep cleared its A");
    assert_eq!(victim(&mut m), Some(0));
}

#[test]
fn aging_counts_ticks_and_breaks_ties_by_age() {
    let mut storage = [PolicySlot::EMPTY; 3];
    let mut m = loaded(AnyPolicy::new(PolicyKind::Aging, &mut storage, 3).unwrap());
    m.hw.accessed[1] = true;
    m.policy.tick(&mut m.hw); // counters 0x40, 0xC0, 0x40
    m.hw.accessed[0] = true;
    m.policy.tick(&mut m.hw); // counters 0xA0, 0x60, 0x20
    let AnyPolicy::Aging(aging) = &m.policy else { unreachable!() };
    assert_eq!([0, 1, 2].map(|f| aging.counter(FrameIndex(f))), [0xA0, 0x60, 0x20].map(Some));
    assert_eq!(victim(&mut m), Some(2));
    assert_eq!(victim(&mut m), Some(1));
}

#[test]
fn wsclock_writes_old_dirty_pages_and_takes_old_clean_ones() {
    let mut storage = [PolicySlot::EMPTY; 4];
    let params = WsClockParams { tau: 10, max_writes_per_sweep: 1 };
    let policy = WsClock::with_params(&mut storage, 4, params).unwrap();
    let mut m = loaded(AnyPolicy::WsClock(policy));
    m.hw.accept_writes = false;
    m.hw.dirty = vec![true, true, false, false];
    m.hw.accessed[2] = true;
    m.now = 100;
    // 0 and 1 are old and dirty (one write asked, refused), 2 is in use, 3 old and clean.
    assert_eq!(victim(&mut m), Some(3));
    let AnyPolicy::WsClock(ws) = &m.policy else { unreachable!() };
    assert_eq!(ws.last_use(FrameIndex(2)), Some(100), "a referenced page is stamped");
    // Nothing old and clean is left: the oldest clean (2, in the working set) goes.
    assert_eq!(victim(&mut m), Some(2));
    m.hw.accept_writes = true;
    // 0's write is asked for and done at once, 1's is over the cap: 0 is now old and clean.
    assert_eq!(victim(&mut m), Some(0));
    assert_eq!(m.hw.writes, 1, "at most one write a sweep");
    assert!(m.hw.dirty[1]);
}

// ---------------------------------------------------------------------------------------
// What may not go, and bad calls.
// ---------------------------------------------------------------------------------------

#[test]
fn locked_pages_are_never_chosen() {
    for kind in PolicyKind::ALL {
        let mut storage = [PolicySlot::EMPTY; 4];
        let mut m = loaded(AnyPolicy::new(kind, &mut storage, 4).unwrap());
        m.hw.locked = vec![true, true, false, true];
        m.hw.accessed[2] = true;
        m.hw.dirty[2] = true;
        m.now = 1 << 20; // past WSClock's window
        assert_eq!(victim(&mut m), Some(2), "{kind}");
        assert_eq!(victim(&mut m), None, "{kind}: nothing evictable");
        assert_eq!(m.policy.resident(), 3, "{kind}: a refusal forgets nothing");
        m.hw.locked[1] = false;
        assert_eq!(victim(&mut m), Some(1), "{kind}");
    }
}

#[test]
fn an_empty_policy_has_no_victim() {
    for kind in PolicyKind::ALL {
        let mut storage = [PolicySlot::EMPTY; 2];
        let policy = AnyPolicy::new(kind, &mut storage, 2).unwrap();
        let mut m = Machine::new(policy, 2, true);
        assert_eq!(victim(&mut m), None, "{kind}");
        let mut none: [PolicySlot; 0] = [];
        let mut m = Machine::new(AnyPolicy::new(kind, &mut none, 0).unwrap(), 2, true);
        assert_eq!(victim(&mut m), None, "{kind}: no frames at all");
    }
}

#[test]
fn bad_calls_are_refused_and_change_nothing() {
    use PolicyError::{AlreadyResident, FrameOutOfRange, NotResident};
    for kind in PolicyKind::ALL {
        let mut storage = [PolicySlot::EMPTY; 3];
        let mut policy = AnyPolicy::new(kind, &mut storage, 3).unwrap();
        let (zero, one, three) = (FrameIndex(0), FrameIndex(1), FrameIndex(3));
        policy.insert(zero, 0).unwrap();
        let out = FrameOutOfRange { frame: three, frames: 3 };
        assert_eq!(policy.insert(three, 1), Err(out), "{kind}");
        assert_eq!(policy.remove(three), Err(out), "{kind}");
        assert_eq!(policy.touch(three, 1), Err(out), "{kind}");
        assert_eq!(policy.insert(zero, 1), Err(AlreadyResident { frame: zero }), "{kind}");
        assert_eq!(policy.remove(one), Err(NotResident { frame: one }), "{kind}");
        assert_eq!(policy.touch(one, 1), Err(NotResident { frame: one }), "{kind}");
        assert!(!policy.is_resident(three) && !policy.is_resident(one), "{kind}");
        assert_eq!(policy.resident(), 1, "{kind}");
        assert_eq!(policy.touch(zero, 2), Ok(()), "{kind}");
        assert_eq!(policy.remove(zero), Ok(()), "{kind}");
        assert_eq!(policy.remove(zero), Err(NotResident { frame: zero }), "{kind}");
        assert_eq!(policy.resident(), 0, "{kind}");
    }
}

#[test]
fn storage_too_small_is_refused() {
    for kind in PolicyKind::ALL {
        let mut storage = [PolicySlot::EMPTY; 3];
        let err = AnyPolicy::new(kind, &mut storage, 4).unwrap_err();
        assert_eq!(err, PolicyError::StorageTooSmall { needed: 4, provided: 3 });
        let err = AnyPolicy::new(kind, &mut storage, u32::MAX).unwrap_err();
        assert_eq!(err, PolicyError::TooManyFrames { frames: u32::MAX });
        assert!(AnyPolicy::new(kind, &mut storage, 2).is_ok(), "larger storage is fine");
    }
    assert_eq!(slots_needed(7), 7);
    assert_eq!(std::mem::size_of::<PolicySlot>(), 16);
}

#[test]
fn storage_is_reset_whatever_it_held() {
    let mut storage = [PolicySlot::EMPTY; 3];
    {
        let mut policy = AnyPolicy::new(PolicyKind::Lru, &mut storage, 3).unwrap();
        for frame in 0..3 {
            policy.insert(FrameIndex(frame), 0).unwrap();
        }
    }
    let policy = AnyPolicy::new(PolicyKind::Fifo, &mut storage, 3).unwrap();
    assert_eq!(policy.resident(), 0);
    assert!(!policy.is_resident(FrameIndex(1)));
}

#[test]
fn kinds_print_and_parse() {
    let names = ["fifo", "clock", "enhanced-clock", "aging", "wsclock", "lru"];
    for (kind, name) in PolicyKind::ALL.into_iter().zip(names) {
        assert_eq!(kind.to_string(), name);
        assert_eq!(name.parse::<PolicyKind>(), Ok(kind));
    }
    for bad in ["", "FIFO", "clock ", "enhanced_clock", "opt"] {
        assert_eq!(bad.parse::<PolicyKind>(), Err(UnknownPolicy), "{bad:?}");
    }
    assert!(UnknownPolicy.to_string().contains("wsclock"));
    let err = PolicyError::StorageTooSmall { needed: 4, provided: 3 };
    assert_eq!(err.to_string(), "policy storage holds 3 records, 4 needed");
}

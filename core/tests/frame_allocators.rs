//! The frame allocators against a plain model: a set of usable frames worked out byte by
//! byte from the memory map, and a `BTreeSet` of the frames handed out.
//!
//! Random memory maps (unaligned, overlapping, reserved holes, some at the top of the
//! address space) and random sequences of allocations and frees, valid and invalid. After
//! every step each allocator must agree with the model on what it handed out, and on
//! whether a request could be met at all.

use std::collections::BTreeSet;

use paging::frame::{
    BitmapAllocator, FRAME_SIZE, FrameAllocator, FreeListAllocator, FreeRun, LimitedAllocator,
    MemoryRegion, RegionKind,
};
use paging::{FrameError, PhysAddr};
use proptest::prelude::*;

/// Frames in the stretch of address space the random maps live in.
const UNIVERSE: u64 = 256;
/// The longest random region, in frames.
const MAX_REGION: u64 = 64;

// ---------------------------------------------------------------------------------------
// The model.
// ---------------------------------------------------------------------------------------

/// Merges half-open `u128` intervals.
fn merged(mut ranges: Vec<(u128, u128)>) -> Vec<(u128, u128)> {
    ranges.retain(|&(s, e)| s < e);
    ranges.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::new();
    for (s, e) in ranges {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// The usable frames of `map` among the frames from `base`, straight from the definition:
/// every byte covered by some usable range and by no reserved one.
fn usable_frames(map: &[MemoryRegion], base: u64) -> BTreeSet<u64> {
    let ranges = |kind| {
        merged(
            map.iter()
                .filter(|r| r.kind == kind)
                .map(|r| (u128::from(r.start.as_u64()), u128::from(r.end())))
                .collect(),
        )
    };
    let (usable, reserved) = (ranges(RegionKind::Usable), ranges(RegionKind::Reserved));
    (0..2 * UNIVERSE + MAX_REGION)
        .map(|i| u128::from(base) + u128::from(i * FRAME_SIZE))
        .filter(|&f| f + u128::from(FRAME_SIZE) <= 1 << 64)
        .filter(|&f| {
            let end = f + u128::from(FRAME_SIZE);
            usable.iter().any(|&(s, e)| s <= f && end <= e)
                && !reserved.iter().any(|&(s, e)| s < end && f < e)
        })
        .map(|f| f as u64)
        .collect()
}

/// The model: what is usable, what is handed out, and the budget of a limited allocator.
struct Model {
    usable: BTreeSet<u64>,
    held: BTreeSet<u64>,
    budget: Option<usize>,
}

impl Model {
    fn is_free(&self, frame: u64) -> bool {
        self.usable.contains(&frame) && !self.held.contains(&frame)
    }

    fn free(&self) -> impl DoubleEndedIterator<Item = u64> + '_ {
        self.usable.iter().copied().filter(|f| !self.held.contains(f))
    }

    /// The `count` frames from `start`, if none of them runs off the address space.
    fn run(start: u64, count: usize) -> Option<Vec<u64>> {
        (0..count as u64).map(|i| start.checked_add(i.checked_mul(FRAME_SIZE)?)).collect()
    }

    /// The lowest start of `count` free frames at a multiple of `align`.
    fn lowest_fit(&self, count: usize, align: u64) -> Option<u64> {
        self.free().filter(|f| f % align == 0).find(|&start| {
            Self::run(start, count).is_some_and(|run| run.iter().all(|&f| self.is_free(f)))
        })
    }

    /// Whether all `count` frames from `start` are handed out.
    fn holds_run(&self, start: u64, count: usize) -> bool {
        count > 0
            && Self::run(start, count).is_some_and(|run| run.iter().all(|f| self.held.contains(f)))
    }
}

// ---------------------------------------------------------------------------------------
// The operations.
// ---------------------------------------------------------------------------------------

/// Which frame an allocator hands out for a single allocation.
#[derive(Clone, Copy, Debug)]
enum Policy {
    Lowest,
    Highest,
}

#[derive(Clone, Debug)]
enum Op {
    Allocate,
    AllocateContiguous {
        count: usize,
        align: u64,
    },
    /// Frees a frame the model holds (an invalid free if it holds none).
    DeallocateHeld {
        pick: usize,
    },
    /// Frees any address near the map, aligned or not.
    DeallocateAny {
        offset: u64,
    },
    /// Frees `count` frames from a frame the model holds.
    DeallocateRunHeld {
        pick: usize,
        count: usize,
    },
    /// Frees `count` frames from any address near the map.
    DeallocateRunAny {
        offset: u64,
        count: usize,
    },
}

fn align() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => (0u32..=6).prop_map(|shift| FRAME_SIZE << shift),
        1 => prop::sample::select(vec![0, 1, 2048, 3 * FRAME_SIZE, FRAME_SIZE + 1, 1 << 63]),
    ]
}

fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => (0..2 * UNIVERSE).prop_map(|f| f * FRAME_SIZE),
        1 => 0..2 * UNIVERSE * FRAME_SIZE,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Allocate),
        3 => (0usize..=24, align()).prop_map(|(count, align)| Op::AllocateContiguous { count, align }),
        5 => any::<usize>().prop_map(|pick| Op::DeallocateHeld { pick }),
        1 => offset().prop_map(|offset| Op::DeallocateAny { offset }),
        2 => (any::<usize>(), 0usize..=8)
            .prop_map(|(pick, count)| Op::DeallocateRunHeld { pick, count }),
        1 => (offset(), 0usize..=8).prop_map(|(offset, count)| Op::DeallocateRunAny { offset, count }),
    ]
}

fn region(base: u64) -> impl Strategy<Value = MemoryRegion> {
    let start = prop_oneof![
        3 => (0..UNIVERSE).prop_map(|f| f * FRAME_SIZE),
        2 => 0..UNIVERSE * FRAME_SIZE,
    ];
    let len = prop_oneof![
        1 => (0..=MAX_REGION).prop_map(|f| f * FRAME_SIZE),
        1 => 0..MAX_REGION * FRAME_SIZE,
    ];
    // Usable ranges stay short (saturating only at the top of the address space) so the
    // bitmap stays small; reserved ones may run to the end of the address space.
    let usable = (start.clone(), len.clone()).prop_map(move |(start, len)| MemoryRegion {
        start: PhysAddr::new(base + start),
        len,
        kind: RegionKind::Usable,
    });
    let reserved_len = prop_oneof![8 => len, 1 => Just(u64::MAX)];
    let reserved = (start, reserved_len).prop_map(move |(start, len)| MemoryRegion {
        start: PhysAddr::new(base + start),
        len,
        kind: RegionKind::Reserved,
    });
    prop_oneof![3 => usable, 1 => reserved]
}

/// A base for the map (low, high, or the very top of the address space) and its regions.
fn map() -> impl Strategy<Value = (u64, Vec<MemoryRegion>)> {
    let top = 0u64.wrapping_sub(UNIVERSE * FRAME_SIZE);
    prop::sample::select(vec![0, 0x1_2345_6000, top])
        .prop_flat_map(|base| (Just(base), prop::collection::vec(region(base), 1..8)))
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..200)
}

// ---------------------------------------------------------------------------------------
// The harness.
// ---------------------------------------------------------------------------------------

/// What the tests inspect beyond the trait.
trait Inspect: FrameAllocator {
    fn free_frames(&self) -> usize;
    fn is_allocated(&self, frame: PhysAddr) -> bool;
    fn remaining(&self) -> Option<usize> {
        None
    }
    /// The free runs, for allocators that keep them.
    fn free_runs(&self) -> Option<&[FreeRun]> {
        None
    }
}

impl Inspect for BitmapAllocator<'_> {
    fn free_frames(&self) -> usize {
        self.free_frames()
    }
    fn is_allocated(&self, frame: PhysAddr) -> bool {
        self.is_allocated(frame)
    }
}

impl Inspect for FreeListAllocator<'_> {
    fn free_frames(&self) -> usize {
        self.free_frames()
    }
    fn is_allocated(&self, frame: PhysAddr) -> bool {
        self.is_allocated(frame)
    }
    fn free_runs(&self) -> Option<&[FreeRun]> {
        Some(self.free_runs())
    }
}

impl<A: Inspect> Inspect for LimitedAllocator<A> {
    fn free_frames(&self) -> usize {
        self.inner().free_frames()
    }
    fn is_allocated(&self, frame: PhysAddr) -> bool {
        self.inner().is_allocated(frame)
    }
    fn remaining(&self) -> Option<usize> {
        Some(LimitedAllocator::remaining(self))
    }
}

/// Checks everything the model knows against the allocator.
fn check_state<A: Inspect>(alloc: &A, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(alloc.frames_in_use(), model.held.len());
    prop_assert_eq!(alloc.free_frames(), model.usable.len() - model.held.len());
    prop_assert_eq!(alloc.remaining(), model.budget);
    if let Some(runs) = alloc.free_runs() {
        check_runs(runs, &model.usable, &model.held)?;
    }
    for &frame in &model.usable {
        prop_assert_eq!(
            alloc.is_allocated(PhysAddr::new(frame)),
            model.held.contains(&frame),
            "frame {:#x}",
            frame
        );
    }
    Ok(())
}

/// Checks that free runs are sorted, coalesced, and hold exactly the free frames.
fn check_runs(
    runs: &[FreeRun],
    usable: &BTreeSet<u64>,
    held: &BTreeSet<u64>,
) -> Result<(), TestCaseError> {
    for pair in runs.windows(2) {
        prop_assert!(pair[0].end() < pair[1].start, "{:?}", pair);
    }
    let mut listed = BTreeSet::new();
    for run in runs {
        prop_assert!(run.frames > 0);
        listed.extend(Model::run(run.start.as_u64(), run.frames as usize).unwrap());
    }
    let free: BTreeSet<u64> = usable.difference(held).copied().collect();
    prop_assert_eq!(listed, free);
    Ok(())
}

/// Checks a fresh allocation of `count` frames at `align` and books it in the model.
fn took(model: &mut Model, start: u64, count: usize, align: u64) -> Result<(), TestCaseError> {
    prop_assert_eq!(start % align, 0, "{:#x} is not aligned to {:#x}", start, align);
    let run = Model::run(start, count).unwrap();
    for frame in run {
        prop_assert!(model.usable.contains(&frame), "{:#x} is not usable", frame);
        prop_assert!(model.held.insert(frame), "{:#x} was handed out twice", frame);
    }
    if let Some(budget) = &mut model.budget {
        *budget -= 1;
    }
    Ok(())
}

/// Applies one operation to the allocator and the model and checks the outcome.
fn step<A: Inspect>(
    alloc: &mut A,
    model: &mut Model,
    base: u64,
    op: &Op,
    policy: Policy,
) -> Result<(), TestCaseError> {
    let dry = model.budget == Some(0);
    match *op {
        Op::Allocate => {
            let expected = match policy {
                Policy::Lowest => model.free().next(),
                Policy::Highest => model.free().next_back(),
            };
            match (alloc.allocate(), expected) {
                (Ok(frame), Some(expected)) if !dry => {
                    prop_assert_eq!(frame.as_u64(), expected);
                    took(model, frame.as_u64(), 1, FRAME_SIZE)?;
                }
                (Err(FrameError::Exhausted), None) => {}
                (Err(FrameError::Exhausted), Some(_)) if dry => {}
                (got, expected) => prop_assert!(false, "allocate: {:?}, model {:?}", got, expected),
            }
        }
        Op::AllocateContiguous { count, align } => {
            let valid_align = align.is_power_of_two() && align >= FRAME_SIZE;
            let got = alloc.allocate_contiguous(count, align);
            if count == 0 {
                prop_assert_eq!(got, Err(FrameError::ZeroCount));
            } else if !valid_align {
                prop_assert_eq!(got, Err(FrameError::BadAlignment { align }));
            } else {
                let expected = if dry { None } else { model.lowest_fit(count, align) };
                match expected {
                    Some(start) => {
                        prop_assert_eq!(
                            got,
                            Ok(PhysAddr::new(start)),
                            "{} frames at {:#x}",
                            count,
                            align
                        );
                        took(model, start, count, align)?;
                    }
                    None => prop_assert_eq!(got, Err(FrameError::Exhausted)),
                }
            }
        }
        Op::DeallocateHeld { pick } | Op::DeallocateRunHeld { pick, .. }
            if model.held.is_empty() =>
        {
            let _ = pick;
            let frame = PhysAddr::new(base);
            prop_assert_eq!(alloc.deallocate(frame), Err(FrameError::NotAllocated { frame }));
        }
        Op::DeallocateHeld { pick } => {
            let frame = *model.held.iter().nth(pick % model.held.len()).unwrap();
            prop_assert_eq!(alloc.deallocate(PhysAddr::new(frame)), Ok(()));
            model.held.remove(&frame);
        }
        Op::DeallocateAny { offset } => {
            let frame = base.saturating_add(offset);
            let got = alloc.deallocate(PhysAddr::new(frame));
            if model.held.remove(&frame) {
                prop_assert_eq!(got, Ok(()));
            } else if frame % FRAME_SIZE != 0 {
                prop_assert_eq!(got, Err(FrameError::Unaligned { frame: PhysAddr::new(frame) }));
            } else {
                prop_assert_eq!(got, Err(FrameError::NotAllocated { frame: PhysAddr::new(frame) }));
            }
        }
        Op::DeallocateRunHeld { pick, count } => {
            let start = *model.held.iter().nth(pick % model.held.len()).unwrap();
            free_run(alloc, model, start, count)?;
        }
        Op::DeallocateRunAny { offset, count } => {
            free_run(alloc, model, base.saturating_add(offset), count)?;
        }
    }
    Ok(())
}

/// Frees `count` frames from `start`: all of them if the model holds all, else none.
fn free_run<A: Inspect>(
    alloc: &mut A,
    model: &mut Model,
    start: u64,
    count: usize,
) -> Result<(), TestCaseError> {
    let got = alloc.deallocate_contiguous(PhysAddr::new(start), count);
    if count == 0 {
        prop_assert_eq!(got, Err(FrameError::ZeroCount));
    } else if start % FRAME_SIZE != 0 {
        prop_assert_eq!(got, Err(FrameError::Unaligned { frame: PhysAddr::new(start) }));
    } else if model.holds_run(start, count) {
        prop_assert_eq!(got, Ok(()));
        for frame in Model::run(start, count).unwrap() {
            model.held.remove(&frame);
        }
    } else {
        // The offending frame: one the model does not hold (or the end of the memory).
        let Err(FrameError::NotAllocated { frame }) = got else {
            return Err(TestCaseError::fail(format!("freed {start:#x}+{count}: {got:?}")));
        };
        prop_assert!(!model.held.contains(&frame.as_u64()), "{:#x} is held", frame.as_u64());
    }
    Ok(())
}

/// Runs `ops`, then frees everything and takes every frame once more.
fn exercise<A: Inspect>(
    alloc: &mut A,
    mut model: Model,
    base: u64,
    ops: &[Op],
    policy: Policy,
) -> Result<(), TestCaseError> {
    check_state(alloc, &model)?;
    for op in ops {
        step(alloc, &mut model, base, op, policy)?;
        check_state(alloc, &model)?;
    }
    // Nothing outside the usable frames counts as allocated.
    for i in 0..2 * UNIVERSE + MAX_REGION {
        let frame = base.saturating_add(i * FRAME_SIZE);
        for addr in [frame, frame.saturating_add(1)] {
            if !model.held.contains(&addr) {
                prop_assert!(!alloc.is_allocated(PhysAddr::new(addr)), "{:#x}", addr);
            }
        }
    }
    // Give everything back, then the allocator hands out exactly the usable frames.
    for frame in std::mem::take(&mut model.held) {
        prop_assert_eq!(alloc.deallocate(PhysAddr::new(frame)), Ok(()));
    }
    prop_assert_eq!(alloc.frames_in_use(), 0);
    if model.budget.is_none() {
        let mut got = BTreeSet::new();
        while let Ok(frame) = alloc.allocate() {
            prop_assert!(got.insert(frame.as_u64()));
        }
        prop_assert_eq!(got, model.usable);
    }
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: 256, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn bitmap_matches_the_model((base, map) in map(), ops in ops()) {
        let usable = usable_frames(&map, base);
        let needed = BitmapAllocator::words_needed_for(&map);
        let mut storage = vec![u64::MAX; needed];
        if needed > 0 {
            let short = BitmapAllocator::new(&mut storage[..needed - 1], &map);
            prop_assert_eq!(short.err(), Some(FrameError::StorageTooSmall { needed }));
        }
        let mut alloc = BitmapAllocator::new(&mut storage, &map).unwrap();
        prop_assert_eq!(alloc.usable_frames(), usable.len());
        let model = Model { usable, held: BTreeSet::new(), budget: None };
        exercise(&mut alloc, model, base, &ops, Policy::Lowest)?;
    }

    #[test]
    fn free_list_matches_the_model((base, map) in map(), ops in ops()) {
        let usable = usable_frames(&map, base);
        let needed = FreeListAllocator::slots_needed(&map);
        if needed > 0 {
            let mut short = vec![FreeRun::EMPTY; needed - 1];
            let short = FreeListAllocator::new(&mut short, &map);
            prop_assert_eq!(short.err(), Some(FrameError::StorageTooSmall { needed }));
        }
        // Enough spare slots for any fragmentation, so no request fails for want of one.
        let mut storage = vec![FreeRun::EMPTY; needed + usable.len()];
        let mut alloc = FreeListAllocator::new(&mut storage, &map).unwrap();
        prop_assert_eq!(alloc.usable_frames(), usable.len());
        let model = Model { usable, held: BTreeSet::new(), budget: None };
        exercise(&mut alloc, model, base, &ops, Policy::Highest)?;
    }

    #[test]
    fn limited_bitmap_matches_the_model((base, map) in map(), ops in ops(), budget in 0usize..40) {
        let usable = usable_frames(&map, base);
        let mut storage = vec![0; BitmapAllocator::words_needed_for(&map)];
        let inner = BitmapAllocator::new(&mut storage, &map).unwrap();
        let mut alloc = LimitedAllocator::new(inner, budget);
        let model = Model { usable, held: BTreeSet::new(), budget: Some(budget) };
        exercise(&mut alloc, model, base, &ops, Policy::Lowest)?;
    }

    /// With no spare slots, the free list may refuse splits and lone frees, but only
    /// those, and a refusal changes nothing.
    #[test]
    fn free_list_without_spare_slots_stays_consistent((base, map) in map(), ops in ops()) {
        let usable = usable_frames(&map, base);
        let mut storage = vec![FreeRun::EMPTY; FreeListAllocator::slots_needed(&map)];
        let mut alloc = FreeListAllocator::new(&mut storage, &map).unwrap();
        let mut held = BTreeSet::new();
        for op in &ops {
            let before = alloc.free_runs().to_vec();
            match *op {
                Op::Allocate => {
                    if let Ok(frame) = alloc.allocate() {
                        prop_assert!(usable.contains(&frame.as_u64()) && held.insert(frame.as_u64()));
                    }
                }
                Op::AllocateContiguous { count, align } => {
                    if let Ok(start) = alloc.allocate_contiguous(count, align) {
                        prop_assert_eq!(start.as_u64() % align, 0);
                        for frame in Model::run(start.as_u64(), count).unwrap() {
                            prop_assert!(usable.contains(&frame) && held.insert(frame));
                        }
                    } else {
                        prop_assert_eq!(alloc.free_runs(), &before[..]);
                    }
                }
                Op::DeallocateHeld { pick } | Op::DeallocateRunHeld { pick, count: _ } if !held.is_empty() => {
                    let frame = *held.iter().nth(pick % held.len()).unwrap();
                    match alloc.deallocate(PhysAddr::new(frame)) {
                        Ok(()) => {
                            held.remove(&frame);
                        }
                        Err(FrameError::StorageTooSmall { needed }) => {
                            prop_assert_eq!(needed, alloc.capacity() + 1);
                            prop_assert_eq!(alloc.free_runs(), &before[..]);
                        }
                        Err(other) => prop_assert!(false, "{:?}", other),
                    }
                }
                _ => {}
            }
            prop_assert_eq!(alloc.frames_in_use(), held.len());
            prop_assert_eq!(alloc.free_frames(), usable.len() - held.len());
            prop_assert!(alloc.slots_used() <= alloc.capacity());
            check_runs(alloc.free_runs(), &usable, &held)?;
        }
    }
}

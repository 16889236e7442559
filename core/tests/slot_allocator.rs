//! The slot allocator against a plain model: a `Vec<u8>` of reference counts and the hint.
//!
//! Random sequences of allocations, cluster allocations, added references and releases,
//! valid and invalid (out-of-range slots, free slots, zero and oversized clusters, counts
//! pushed past 255). After every step the allocator must agree with the model on every
//! count and on the result, and a refused step must change nothing.

use paging::pager::{Slot, SlotAllocator, SlotError};
use proptest::prelude::*;

/// The most slots a random allocator has.
const MAX_SLOTS: u32 = 12;

/// One step of a random sequence. Slots range a little past the end to hit `OutOfRange`.
#[derive(Clone, Debug)]
enum Op {
    Allocate,
    AllocateCluster(usize),
    AddReference(u32),
    Release(u32),
    /// Many added references to one slot, one step each, to reach the 255 ceiling.
    AddReferences(u32, u16),
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..MAX_SLOTS + 2;
    prop_oneof![
        3 => Just(Op::Allocate),
        3 => (0..MAX_SLOTS as usize + 2).prop_map(Op::AllocateCluster),
        3 => slot.clone().prop_map(Op::AddReference),
        4 => slot.clone().prop_map(Op::Release),
        1 => (slot, 1..300u16).prop_map(|(s, n)| Op::AddReferences(s, n)),
    ]
}

/// The model: a count per slot and where the next search starts.
struct Model {
    counts: Vec<u8>,
    hint: usize,
}

impl Model {
    fn free(&self) -> u32 {
        self.counts.iter().filter(|&&c| c == 0).count() as u32
    }

    /// First fit from the hint, then from slot 0, by the definition: every candidate start
    /// in that order, the first whose whole run is free.
    fn allocate_cluster(&mut self, count: usize) -> Result<Slot, SlotError> {
        let slots = self.counts.len();
        if count == 0 {
            return Err(SlotError::EmptyCluster);
        }
        if count > self.free() as usize {
            return Err(SlotError::Exhausted { wanted: count, free: self.free() });
        }
        let start = (self.hint..slots)
            .chain(0..self.hint)
            .find(|&s| s + count <= slots && self.counts[s..s + count].iter().all(|&c| c == 0))
            .ok_or(SlotError::Fragmented { wanted: count })?;
        self.counts[start..start + count].fill(1);
        self.hint = (start + count) % slots;
        Ok(Slot(start as u32))
    }

    fn check(&self, slot: u32) -> Result<usize, SlotError> {
        let index = slot as usize;
        let slots = self.counts.len() as u32;
        match self.counts.get(index) {
            None => Err(SlotError::OutOfRange { slot: Slot(slot), slots }),
            Some(0) => Err(SlotError::NotAllocated { slot: Slot(slot) }),
            Some(_) => Ok(index),
        }
    }

    fn add_reference(&mut self, slot: u32) -> Result<u8, SlotError> {
        let index = self.check(slot)?;
        if self.counts[index] == 255 {
            return Err(SlotError::TooManyReferences { slot: Slot(slot) });
        }
        self.counts[index] += 1;
        Ok(self.counts[index])
    }

    fn release(&mut self, slot: u32) -> Result<u8, SlotError> {
        let index = self.check(slot)?;
        self.counts[index] -= 1;
        Ok(self.counts[index])
    }
}

/// The allocator's counts, read through its public interface.
fn counts(slots: &SlotAllocator<'_>) -> Vec<u8> {
    (0..slots.slots()).map(|s| slots.references(Slot(s)).unwrap()).collect()
}

/// Applies one single step to both and checks they agree, and that an error changed nothing.
fn step(slots: &mut SlotAllocator<'_>, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    let before = counts(slots);
    let (got, expected) = match *op {
        Op::Allocate => (slots.allocate().map(|s| s.0), model.allocate_cluster(1).map(|s| s.0)),
        Op::AllocateCluster(n) => {
            (slots.allocate_cluster(n).map(|s| s.0), model.allocate_cluster(n).map(|s| s.0))
        }
        Op::AddReference(s) => {
            (slots.add_reference(Slot(s)).map(u32::from), model.add_reference(s).map(u32::from))
        }
        Op::Release(s) => (slots.release(Slot(s)).map(u32::from), model.release(s).map(u32::from)),
        Op::AddReferences(..) => unreachable!("expanded by the caller"),
    };
    prop_assert_eq!(got, expected, "{:?}", op);
    let after = counts(slots);
    prop_assert_eq!(&after, &model.counts);
    if got.is_err() {
        prop_assert_eq!(&after, &before, "a refused {:?} changed the counts", op);
    }
    prop_assert_eq!(slots.free_slots(), model.free());
    prop_assert_eq!(slots.used_slots(), slots.slots() - model.free());
    Ok(())
}

proptest! {
    #[test]
    fn slot_allocator_matches_the_model(
        slot_count in 0..=MAX_SLOTS,
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let mut books = vec![0xEE_u8; slot_count as usize + 3];
        let mut slots = SlotAllocator::with_slots(&mut books, slot_count).unwrap();
        let mut model = Model { counts: vec![0; slot_count as usize], hint: 0 };
        for op in &ops {
            match *op {
                Op::AddReferences(s, n) => {
                    for _ in 0..n {
                        step(&mut slots, &mut model, &Op::AddReference(s))?;
                    }
                }
                _ => step(&mut slots, &mut model, op)?,
            }
        }
        // Outside the slots' bytes the storage was never touched.
        prop_assert_eq!(&books[slot_count as usize..], &[0xEE; 3]);
    }
}

//! The range driver: one traversal that every range operation runs twice.
//!
//! The first pass is a dry run. It reads the tables, asks the operation what it would do
//! with each entry, and stops at the first refusal; tables the operation would create or
//! split are stood in for by virtual sources, so the pass counts the frames it needs
//! without taking any. The frames are then taken all at once (see
//! [`Reserve`](super::reserve::Reserve)), and the second pass applies the same decisions to
//! the same entries. It cannot fail: everything it needs was checked or is in hand.
//!
//! The traversal is recursive over levels, one loop per table: consecutive entries of a
//! table are visited without walking from the root again, which is what a cursor buys.

use crate::addr::{PhysAddr, VirtAddr};
use crate::error::TableError;
use crate::flags::PageFlags;
use crate::format::{Entry, PageTableFormat};
use crate::frame::FrameAllocator;
use crate::memory::TableMemory;
use crate::tlb::Flush;

use super::PageTable;
use super::check::Span;
use super::reserve::Reserve;

/// One entry as an operation sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    /// The level of the entry.
    pub level: u8,
    /// The first virtual address the entry covers.
    pub va: u64,
    /// The first address of the entry's span inside the operation's range.
    pub first: u64,
    /// Whether the operation's range covers the entry's whole span.
    pub covered: bool,
    /// What the entry holds.
    pub entry: Entry,
}

/// What an operation does with one entry.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Action {
    /// Leave it.
    Keep,
    /// Store this raw value.
    Write(u64),
    /// Go into the table the entry points to.
    Descend,
    /// Put a new empty table here and go into it (the entry is empty).
    Create,
    /// Replace the huge leaf with a table of the next level's leaves mapping the same
    /// memory with the same flags, and go into it.
    Split,
    /// Refuse the whole operation.
    Fail(TableError),
}

/// A range operation: what to do with each entry.
pub(crate) trait Edit<F: PageTableFormat> {
    /// Decides for one entry. For an empty entry that the range covers, the decision must
    /// depend on nothing but the level: the dry run decides once for a run of them.
    fn decide(&mut self, slot: &Slot) -> Action;

    /// Called in the second pass after a leaf or payload entry was overwritten.
    fn removed(&mut self, _slot: &Slot) {}

    /// For a covered entry of a table the real pass has just created, the leaf to write,
    /// if the operation writes one into every such entry of `level` (`None` otherwise).
    fn fresh_leaf(&self, _level: u8, _va: u64) -> Option<u64> {
        None
    }

    /// Whether the operation writes every entry of a new table whose span the range covers
    /// whole (so the real pass need not zero it first).
    fn fills_new_tables(&self) -> bool {
        false
    }

    /// Whether tables left empty are given back.
    fn reclaims(&self) -> bool {
        false
    }
}

/// Where a table's entries come from.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// A table in memory; `fresh` when it was just zeroed by this pass.
    Memory { table: PhysAddr, fresh: bool },
    /// A table the first pass pretends to have created: all empty.
    Empty,
    /// A table the first pass pretends to have split from a huge leaf.
    Split { frame: PhysAddr, flags: PageFlags },
}

/// The state of one pass.
struct Pass<'a, A: ?Sized> {
    needed: usize,
    reserve: Reserve,
    flush: Flush,
    alloc: &'a mut A,
}

impl<F: PageTableFormat, M: TableMemory> PageTable<F, M> {
    /// Runs `op` over `span`: a dry run, then the frames, then the real run.
    pub(crate) fn run_edit<E: Edit<F>, A: FrameAllocator + ?Sized>(
        &mut self,
        op: &mut E,
        span: Span,
        alloc: &mut A,
    ) -> Result<Flush, TableError> {
        let root = Source::Memory { table: self.root, fresh: false };
        let mut dry = Pass { needed: 0, reserve: Reserve::empty(), flush: Flush::new(), alloc };
        self.edit::<E, A, true>(op, &mut dry, root, F::LEVELS, span)?;

        let reserve = Reserve::fill(&mut self.memory, dry.alloc, dry.needed)?;
        let mut real = Pass { needed: 0, reserve, flush: Flush::new(), alloc: dry.alloc };
        // The real pass repeats decisions the dry pass accepted on unchanged tables: it has
        // no refusal left to meet, so its result carries no error worth reporting.
        let _ = self.edit::<E, A, false>(op, &mut real, root, F::LEVELS, span);
        // Every reserved frame was used; releasing is a safety net that costs nothing.
        real.reserve.release(&mut self.memory, real.alloc);
        Ok(real.flush)
    }

    /// Visits the entries of one table that `span` touches; returns whether the table is
    /// empty afterwards (computed only in the real pass of a reclaiming operation).
    fn edit<E: Edit<F>, A: FrameAllocator + ?Sized, const DRY: bool>(
        &mut self,
        op: &mut E,
        pass: &mut Pass<'_, A>,
        source: Source,
        level: u8,
        span: Span,
    ) -> Result<bool, TableError> {
        if DRY && matches!(source, Source::Empty) {
            pass.needed += self.dry_empty(op, level, span)?;
            return Ok(false);
        }
        let size = F::leaf_size(level);
        let first_index = F::index(VirtAddr::new(span.first), level);
        let last_index = F::index(VirtAddr::new(span.last), level);
        let first_va = span.first & !(size - 1);
        let mut holds_something = false;
        // In a table this pass just created, covered entries get consecutive leaves.
        let mut index = first_index;
        while index <= last_index {
            let va = first_va.wrapping_add((index - first_index) as u64 * size);
            let last = va + (size - 1);
            let covered = va >= span.first && last <= span.last;
            index += 1;
            if let (false, Source::Memory { table, fresh: true }, true) = (DRY, source, covered) {
                if let Some(raw) = op.fresh_leaf(level, va).filter(|_| F::LINEAR_LEAVES) {
                    // Every covered entry from here gets the next leaf: only the last entry
                    // of the span can be partly covered.
                    let last_covered =
                        if last_index_covered(span, first_va, first_index, last_index, size) {
                            last_index
                        } else {
                            last_index - 1
                        };
                    let count = last_covered + 1 - (index - 1);
                    let at = table + (index - 1) as u64 * F::ENTRY_SIZE.bytes();
                    self.memory.fill_entries(at, F::ENTRY_SIZE, count, raw, size);
                    holds_something = true;
                    index = last_covered + 1;
                    continue;
                }
            }
            let index = index - 1;
            let (table, raw) = match source {
                Source::Memory { table, fresh: false } => (table, self.read(table, index)),
                Source::Memory { table, fresh: true } => (table, 0),
                Source::Empty | Source::Split { .. } => (PhysAddr::ZERO, 0),
            };
            let entry = match source {
                Source::Split { frame, flags } => {
                    Entry::Leaf { frame: frame + index as u64 * size, flags }
                }
                _ if raw == 0 => Entry::Empty,
                _ => F::decode(raw, level),
            };
            let sub = Span { first: va.max(span.first), last: last.min(span.last) };
            let slot = Slot { level, va, first: sub.first, covered, entry };
            let action = match entry {
                Entry::Invalid(_) => Action::Fail(corrupt(&slot, raw)),
                _ => op.decide(&slot),
            };
            let action = match action {
                Action::Descend | Action::Create | Action::Split if level == 1 => {
                    Action::Fail(corrupt(&slot, raw))
                }
                action => action,
            };
            holds_something |= match action {
                Action::Keep => entry != Entry::Empty,
                Action::Write(raw) => {
                    if !DRY {
                        self.write(table, index, raw);
                        if let Entry::Leaf { flags, .. } = entry {
                            pass.flush.add(VirtAddr::new(va), flags.contains(PageFlags::GLOBAL));
                        }
                        if matches!(entry, Entry::Leaf { .. } | Entry::Payload(_)) {
                            op.removed(&slot);
                        }
                    }
                    raw != 0
                }
                Action::Descend => {
                    let Entry::Table { frame, .. } = entry else {
                        return Err(corrupt(&slot, raw));
                    };
                    if !self.memory.contains(frame) {
                        return Err(corrupt(&slot, raw));
                    }
                    let child = Source::Memory { table: frame, fresh: false };
                    let emptied = self.edit::<E, A, DRY>(op, pass, child, level - 1, sub)?;
                    if !DRY && emptied && op.reclaims() {
                        self.write(table, index, 0);
                        pass.flush.add(VirtAddr::new(va), false);
                        // The frame was a table of this tree; the allocator handed it out.
                        let _ = pass.alloc.deallocate(frame);
                        false
                    } else {
                        true
                    }
                }
                Action::Create => {
                    if DRY {
                        pass.needed += 1;
                        self.edit::<E, A, true>(op, pass, Source::Empty, level - 1, sub)?;
                    } else if let Some(frame) = pass.reserve.pop(&self.memory) {
                        // A table the operation fills whole needs no zeroing first.
                        if !(covered && op.fills_new_tables()) {
                            self.memory.zero_frame(frame);
                        }
                        let child = Source::Memory { table: frame, fresh: true };
                        self.edit::<E, A, false>(op, pass, child, level - 1, sub)?;
                        self.write(table, index, F::encode_table(frame, level));
                    }
                    true
                }
                Action::Split => {
                    let Entry::Leaf { frame, flags } = entry else {
                        return Err(corrupt(&slot, raw));
                    };
                    if DRY {
                        pass.needed += 1;
                        let child = Source::Split { frame, flags };
                        self.edit::<E, A, true>(op, pass, child, level - 1, sub)?;
                    } else if let Some(new) = pass.reserve.pop(&self.memory) {
                        self.fill_split(new, frame, flags, level - 1);
                        let child = Source::Memory { table: new, fresh: false };
                        self.edit::<E, A, false>(op, pass, child, level - 1, sub)?;
                        // The table mirrors the huge leaf before it replaces it.
                        self.write(table, index, F::encode_table(new, level));
                        pass.flush.add(VirtAddr::new(va), flags.contains(PageFlags::GLOBAL));
                    }
                    true
                }
                Action::Fail(error) => return Err(error),
            };
        }
        if DRY || holds_something || !op.reclaims() {
            return Ok(false);
        }
        let Source::Memory { table, .. } = source else { return Ok(false) };
        let entries = F::entries(level);
        let outside = (0..first_index).chain(last_index + 1..entries);
        Ok(outside.into_iter().all(|index| self.read(table, index) == 0))
    }

    /// Counts the tables a dry run needs below an empty entry, deciding once for the
    /// covered middle of the span (every covered empty entry gets the same decision).
    fn dry_empty<E: Edit<F>>(
        &self,
        op: &mut E,
        level: u8,
        span: Span,
    ) -> Result<usize, TableError> {
        let size = F::leaf_size(level);
        let first_index = F::index(VirtAddr::new(span.first), level);
        let last_index = F::index(VirtAddr::new(span.last), level);
        let first_va = span.first & !(size - 1);
        let mut one = |va: u64| -> Result<usize, TableError> {
            let last = va + (size - 1);
            let covered = va >= span.first && last <= span.last;
            let sub = Span { first: va.max(span.first), last: last.min(span.last) };
            let slot = Slot { level, va, first: sub.first, covered, entry: Entry::Empty };
            match op.decide(&slot) {
                Action::Keep | Action::Write(_) => Ok(0),
                Action::Create if level > 1 => Ok(1 + self.dry_empty(op, level - 1, sub)?),
                Action::Fail(error) => Err(error),
                Action::Create | Action::Descend | Action::Split => Err(corrupt(&slot, 0)),
            }
        };
        let mut needed = one(first_va)?;
        if last_index > first_index {
            let last_va = first_va + (last_index - first_index) as u64 * size;
            needed += one(last_va)?;
            let middle = last_index - first_index - 1;
            if middle > 0 {
                needed += middle * one(first_va + size)?;
            }
        }
        Ok(needed)
    }

    /// Fills `table` (at `level`) with leaves mapping the huge page at `frame`.
    fn fill_split(&mut self, table: PhysAddr, frame: PhysAddr, flags: PageFlags, level: u8) {
        let size = F::leaf_size(level);
        for index in 0..F::entries(level) {
            let raw = F::encode_leaf(frame + index as u64 * size, flags, level);
            self.write(table, index, raw);
        }
    }
}

/// Whether the span covers the whole of the last entry it touches in a table.
fn last_index_covered(
    span: Span,
    first_va: u64,
    first_index: usize,
    last_index: usize,
    size: u64,
) -> bool {
    let va = first_va.wrapping_add((last_index - first_index) as u64 * size);
    va >= span.first && va + (size - 1) <= span.last
}

/// The error for an entry that does not hold what the walk needs.
fn corrupt(slot: &Slot, raw: u64) -> TableError {
    let reason = match slot.entry {
        Entry::Invalid(reason) => Some(reason),
        _ => None,
    };
    TableError::CorruptEntry { addr: VirtAddr::new(slot.va), level: slot.level, raw, reason }
}

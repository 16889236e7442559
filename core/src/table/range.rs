//! The range driver: one traversal that every range operation runs twice.
//!
//! The first pass is a dry run ([`DryRun`]). It reads the tables, asks the operation what
//! it would do with each entry, and stops at the first refusal; tables the operation would
//! create or split are stood in for by virtual sources, so the pass counts the frames it
//! needs without taking any. The frames are then taken all at once (see
//! [`Reserve`](super::reserve::Reserve)), and the second pass ([`RealRun`]) applies the
//! same decisions to the same entries. It cannot fail: everything it needs was checked or
//! is in hand.
//!
//! The traversal ([`Pass::edit_table`]) is shared: it visits the entries, asks the
//! operation, and hands each action to the pass, which says what that action means to it.
//! It is recursive over levels, one loop per table: consecutive entries of a table are
//! visited without walking from the root again, which is what a cursor buys. A leaf table
//! an unmap covers whole is cleared in one sweep, where the memory lends it
//! ([`Pass::clear_leaf_table`]).

mod dry_run;
mod real_run;

use crate::addr::{PhysAddr, VirtAddr};
use crate::error::TableError;
use crate::flags::PageFlags;
use crate::format::{Entry, EntrySize, PageTableFormat};
use crate::frame::FrameAllocator;
use crate::memory::TableMemory;
use crate::tlb::Flush;

use super::PageTable;
use super::check::Span;
use super::reserve::Reserve;
use dry_run::{DryRun, DrySource};
use real_run::{RealRun, Target};

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
    /// Store a leaf with these flags mapping a fresh frame from the reserve, zeroed (the
    /// entry is empty and at level 1: one base page, one frame).
    MapFresh(PageFlags),
    /// Refuse the whole operation.
    Fail(TableError),
}

/// A range operation: what to do with each entry.
pub(crate) trait Edit<F: PageTableFormat> {
    /// Decides for one entry. Both passes ask, and must get the same answer: the decision
    /// is a function of the slot alone. For an empty entry that the range covers, it must
    /// depend on nothing but the level: the dry run decides once for a run of them.
    fn decide(&self, slot: &Slot) -> Action;

    /// Called in the second pass after a leaf or payload entry was overwritten, with the
    /// allocator the call holds (an unmap that frees gives the page's frames back to it).
    fn removed<A: FrameAllocator + ?Sized>(&mut self, _slot: &Slot, _alloc: &mut A) {}

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

    /// Whether the operation clears every well-formed leaf the range covers (an unmap),
    /// calling [`removed`](Self::removed) for each: then a leaf table the range covers whole
    /// and that holds nothing but such leaves is cleared in one sweep.
    fn clears_covered_leaves(&self) -> bool {
        false
    }
}

impl<F: PageTableFormat, M: TableMemory> PageTable<F, M> {
    /// Runs `op` over `span`: a dry run, then the frames, then the real run.
    pub(crate) fn run_edit<E: Edit<F>, A: FrameAllocator + ?Sized>(
        &mut self,
        op: &mut E,
        span: Span,
        alloc: &mut A,
    ) -> Result<Flush, TableError> {
        let mut dry = DryRun::new(self, op);
        dry.edit_table(DrySource::Memory(self.root), F::LEVELS, span)?;
        let needed = dry.needed();
        let reserve = Reserve::fill::<F, M, A>(&mut self.memory, alloc, needed)?;

        let root = Target { table: self.root, fresh: false };
        let mut real = RealRun::new(self, op, reserve, alloc);
        // The real pass repeats decisions the dry pass accepted, with the frames the dry
        // pass counted: in a tree it has no refusal left to meet, and uses every frame.
        // Tables that alias (one table reached through two entries of the span, which
        // fuzzing builds) are the exception: an entry this pass wrote is read again
        // through the alias and decided anew. The pass then stops there; the edit stands
        // as far as it got, as it did before the passes were split, and the tables'
        // corruption is for `visit` to report. So neither success nor an empty reserve
        // can be asserted here (fuzzing found both; its input is in the corpus).
        let _ = real.edit_table(root, F::LEVELS, span);
        Ok(real.finish())
    }
}

/// The entries of one table that a span touches, in order.
#[derive(Clone, Debug)]
struct Entries {
    /// The span.
    span: Span,
    /// The size of one entry's span.
    size: u64,
    /// The first entry the span touches, and the first address it covers.
    first_index: usize,
    first_va: u64,
    /// The last entry the span touches.
    last_index: usize,
    /// The next entry to visit.
    next: usize,
}

/// Where one entry lies against the span.
#[derive(Clone, Copy, Debug)]
struct Place {
    /// Its index in its table.
    index: usize,
    /// The first virtual address it covers.
    va: u64,
    /// The part of the span it covers.
    sub: Span,
    /// Whether the span covers it whole.
    covered: bool,
}

impl Entries {
    fn new<F: PageTableFormat>(level: u8, span: Span) -> Self {
        let size = F::leaf_size(level);
        let first_index = F::index(VirtAddr::new(span.first), level);
        Self {
            span,
            size,
            first_index,
            first_va: span.first & !(size - 1),
            last_index: F::index(VirtAddr::new(span.last), level),
            next: first_index,
        }
    }

    /// The place of entry `index` (one the span touches).
    #[inline]
    fn place(&self, index: usize) -> Place {
        let va = self.first_va.wrapping_add((index - self.first_index) as u64 * self.size);
        let last = va + (self.size - 1);
        let sub = Span { first: va.max(self.span.first), last: last.min(self.span.last) };
        Place { index, va, sub, covered: va >= self.span.first && last <= self.span.last }
    }

    /// Takes the rest of the run of covered entries that `from` (a covered entry just
    /// visited) starts, and returns the run's length. Only the last entry the span touches
    /// can be partly covered, so the run goes to it or to the one before.
    fn take_covered_run(&mut self, from: &Place) -> usize {
        let last = self.last_index;
        let run_end = if self.place(last).covered { last } else { last - 1 };
        self.next = run_end + 1;
        run_end + 1 - from.index
    }

    /// Whether the span covers every entry of a table at this level.
    fn covers_whole_table<F: PageTableFormat>(&self) -> bool {
        let count = F::entries(1);
        self.first_index == 0
            && self.last_index + 1 == count
            && self.place(0).covered
            && self.place(self.last_index).covered
    }

    /// The indices of a table of `count` entries that the span does not touch.
    fn untouched(&self, count: usize) -> impl Iterator<Item = usize> {
        (0..self.first_index).chain(self.last_index + 1..count)
    }
}

impl Iterator for Entries {
    type Item = Place;

    #[inline]
    fn next(&mut self) -> Option<Place> {
        let index = self.next;
        (index <= self.last_index).then(|| {
            self.next += 1;
            self.place(index)
        })
    }
}

impl Place {
    /// The slot an operation sees for this place holding `entry` at `level`.
    #[inline]
    fn slot(&self, level: u8, entry: Entry) -> Slot {
        Slot { level, va: self.va, first: self.sub.first, covered: self.covered, entry }
    }
}

/// An entry a pass is acting on: the table it is in, where, and what the operation saw.
#[derive(Clone, Copy, Debug)]
struct At<S> {
    source: S,
    index: usize,
    sub: Span,
    slot: Slot,
}

/// One of the two passes over the tables: what each action the operation decides means to
/// it. The traversal itself, [`edit_table`](Pass::edit_table), is the same for both.
trait Pass<F: PageTableFormat> {
    /// Where the pass reads the entries of one table.
    type Source: Copy;
    /// The memory the tables live in.
    type Memory: TableMemory;
    /// The operation.
    type Op: Edit<F>;

    /// The page table and the operation the pass runs over.
    fn parts(&self) -> (&PageTable<F, Self::Memory>, &Self::Op);

    /// Entry `index` of the table `source` at `level`: its raw value and meaning.
    fn entry(&self, source: Self::Source, index: usize, level: u8) -> (u64, Entry);

    /// Writes, in one run, the covered entries from `place` on of a table this pass just
    /// created, if the operation fills them with consecutive leaves; returns whether it did
    /// (having taken the run from `entries`).
    fn fill_fresh(
        &mut self,
        _source: Self::Source,
        _level: u8,
        _place: &Place,
        _entries: &mut Entries,
    ) -> bool {
        false
    }

    /// [`Action::Write`]: stores `raw` in the entry.
    fn write(&mut self, at: &At<Self::Source>, raw: u64);

    /// [`Action::Descend`]: edits the table `child` the entry points to. Returns whether
    /// the entry still points to it (it does unless the table was emptied and given back).
    fn descend(&mut self, at: &At<Self::Source>, child: PhysAddr) -> Result<bool, TableError>;

    /// [`Action::Create`]: puts a new table in the (empty) entry and edits it.
    fn create(&mut self, at: &At<Self::Source>) -> Result<(), TableError>;

    /// [`Action::MapFresh`]: maps a fresh zeroed frame with `flags` in the (empty) entry.
    fn map_fresh(&mut self, at: &At<Self::Source>, flags: PageFlags);

    /// [`Action::Split`]: replaces the huge leaf mapping `frame` with `flags` by a table
    /// of smaller leaves, and edits it.
    fn split(
        &mut self,
        at: &At<Self::Source>,
        frame: PhysAddr,
        flags: PageFlags,
    ) -> Result<(), TableError>;

    /// Whether the table `source` at `level`, whose entries in the span hold nothing now,
    /// is empty and to be given back.
    fn emptied(&self, source: Self::Source, level: u8, entries: &Entries) -> bool;

    /// Clears the leaf table `source` whole, in one sweep, if the table memory lends it
    /// ([`TableMemory::table_words`]) and every entry is a well-formed leaf (for an
    /// operation that [clears covered leaves](Edit::clears_covered_leaves)). Returns
    /// whether it did; `false` leaves the table to the entry-by-entry visit, which says
    /// what it finds.
    fn clear_leaf_table(&mut self, _source: Self::Source, _span: Span) -> bool {
        false
    }

    /// Visits the entries of one table that `span` touches; returns whether the table is
    /// to be given back (see [`emptied`](Pass::emptied)).
    fn edit_table(
        &mut self,
        source: Self::Source,
        level: u8,
        span: Span,
    ) -> Result<bool, TableError> {
        let mut entries = Entries::new::<F>(level, span);
        // Tables lent as 512 eight-byte words are what the sweep reads.
        if level == 1
            && F::ENTRY_SIZE == EntrySize::Eight
            && F::entries(1) == 512
            && entries.covers_whole_table::<F>()
            && self.parts().1.clears_covered_leaves()
            && self.clear_leaf_table(source, span)
        {
            return Ok(self.emptied(source, level, &entries));
        }
        let mut holds_something = false;
        while let Some(place) = entries.next() {
            if place.covered && self.fill_fresh(source, level, &place, &mut entries) {
                holds_something = true;
                continue;
            }
            holds_something |= self.edit_entry(source, level, place)?;
        }
        Ok(!holds_something && self.emptied(source, level, &entries))
    }

    /// Decides for one entry and acts; returns whether the entry holds something after.
    #[inline]
    fn edit_entry(
        &mut self,
        source: Self::Source,
        level: u8,
        place: Place,
    ) -> Result<bool, TableError> {
        let (raw, entry) = self.entry(source, place.index, level);
        let slot = place.slot(level, entry);
        let at = At { source, index: place.index, sub: place.sub, slot };
        match self.checked_decision(&slot, raw) {
            Action::Keep => Ok(entry != Entry::Empty),
            Action::Write(new) => {
                self.write(&at, new);
                Ok(new != 0)
            }
            Action::Descend => match entry {
                Entry::Table { frame, .. } if self.parts().0.memory.contains(frame) => {
                    self.descend(&at, frame)
                }
                _ => Err(corrupt(&slot, raw)),
            },
            Action::Create => self.create(&at).map(|()| true),
            Action::MapFresh(flags) => {
                self.map_fresh(&at, flags);
                Ok(true)
            }
            Action::Split => match entry {
                Entry::Leaf { frame, flags } => self.split(&at, frame, flags).map(|()| true),
                _ => Err(corrupt(&slot, raw)),
            },
            Action::Fail(error) => Err(error),
        }
    }

    /// The operation's decision for `slot` (holding `raw`), refused where the tables cannot
    /// follow it: the operation is not asked about a malformed entry, and no table goes
    /// below level 1.
    #[inline]
    fn checked_decision(&self, slot: &Slot, raw: u64) -> Action {
        if let Entry::Invalid(_) = slot.entry {
            return Action::Fail(corrupt(slot, raw));
        }
        match self.parts().1.decide(slot) {
            Action::Descend | Action::Create | Action::Split if slot.level == 1 => {
                Action::Fail(corrupt(slot, raw))
            }
            // A fresh frame is one base page: only a level-1 entry, an empty one, takes it.
            Action::MapFresh(_) if slot.level != 1 || slot.entry != Entry::Empty => {
                Action::Fail(corrupt(slot, raw))
            }
            action => action,
        }
    }
}

/// The error for an entry that does not hold what the walk needs.
fn corrupt(slot: &Slot, raw: u64) -> TableError {
    let reason = match slot.entry {
        Entry::Invalid(reason) => Some(reason),
        _ => None,
    };
    TableError::corrupt_entry(VirtAddr::new(slot.va), slot.level, raw, reason)
}

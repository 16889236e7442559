//! The first pass: reads the tables, checks every decision, and counts the frames the real
//! run will take. It writes nothing and takes nothing.

use crate::addr::PhysAddr;
use crate::error::TableError;
use crate::flags::PageFlags;
use crate::format::{Entry, PageTableFormat};
use crate::memory::TableMemory;

use super::super::PageTable;
use super::super::check::Span;
use super::{Action, At, Edit, Entries, Pass, Place, corrupt};

/// Where the dry run reads the entries of one table.
#[derive(Clone, Copy, Debug)]
pub(super) enum DrySource {
    /// A table in memory.
    Memory(PhysAddr),
    /// A table the dry run pretends to have split from the huge leaf mapping `frame` with
    /// `flags`: smaller leaves mapping the same memory.
    Split { frame: PhysAddr, flags: PageFlags },
}

/// The dry run over one operation.
pub(super) struct DryRun<'a, F: PageTableFormat, M: TableMemory, E> {
    tables: &'a PageTable<F, M>,
    op: &'a E,
    /// The frames the real run will take: for new tables and fresh pages.
    needed: usize,
}

impl<'a, F: PageTableFormat, M: TableMemory, E: Edit<F>> DryRun<'a, F, M, E> {
    pub(super) fn new(tables: &'a PageTable<F, M>, op: &'a E) -> Self {
        Self { tables, op, needed: 0 }
    }

    /// The frames the real run will take: for new tables and fresh pages.
    pub(super) fn needed(&self) -> usize {
        self.needed
    }

    /// Counts the frames the operation would take (tables, fresh pages) in and below a new
    /// (empty) table at `level`. It decides once for the covered middle of the span: every
    /// covered empty entry gets the same decision. Counts saturate: a count past `usize`
    /// is more than any allocator has, and filling the reserve refuses it.
    fn tables_in_new(&self, level: u8, span: Span) -> Result<usize, TableError> {
        let entries = Entries::new::<F>(level, span);
        let (first, last) = (entries.first_index, entries.last_index);
        let mut needed = self.tables_for_empty(entries.place(first), level)?;
        if last > first {
            needed = needed.saturating_add(self.tables_for_empty(entries.place(last), level)?);
            let middle = last - first - 1;
            if middle > 0 {
                let each = self.tables_for_empty(entries.place(first + 1), level)?;
                needed = needed.saturating_add(middle.saturating_mul(each));
            }
        }
        Ok(needed)
    }

    /// Counts the frames the operation would take for one empty entry at `level`.
    fn tables_for_empty(&self, place: Place, level: u8) -> Result<usize, TableError> {
        let slot = place.slot(level, Entry::Empty);
        match self.checked_decision(&slot, 0) {
            Action::Keep | Action::Write(_) => Ok(0),
            Action::MapFresh(_) => Ok(1),
            Action::Create => Ok(self.tables_in_new(level - 1, place.sub)?.saturating_add(1)),
            Action::Fail(error) => Err(error),
            Action::Descend | Action::Split => Err(corrupt(&slot, 0)),
        }
    }
}

impl<F: PageTableFormat, M: TableMemory, E: Edit<F>> Pass<F> for DryRun<'_, F, M, E> {
    type Source = DrySource;
    type Memory = M;
    type Op = E;

    #[inline]
    fn parts(&self) -> (&PageTable<F, M>, &E) {
        (self.tables, self.op)
    }

    #[inline]
    fn entry(&self, source: DrySource, index: usize, level: u8) -> (u64, Entry) {
        match source {
            DrySource::Memory(table) => self.tables.entry_at(table, index, level),
            DrySource::Split { frame, flags } => {
                // Aligned to the huge page it splits: see `RealRun::fill_split`.
                let frame = frame.wrapping_add(index as u64 * F::leaf_size(level));
                (0, Entry::Leaf { frame, flags })
            }
        }
    }

    #[inline]
    fn write(&mut self, _at: &At<DrySource>, _raw: u64) {}

    fn descend(&mut self, at: &At<DrySource>, child: PhysAddr) -> Result<bool, TableError> {
        self.edit_table(DrySource::Memory(child), at.slot.level - 1, at.sub)?;
        Ok(true)
    }

    fn create(&mut self, at: &At<DrySource>) -> Result<(), TableError> {
        let below = self.tables_in_new(at.slot.level - 1, at.sub)?;
        self.needed = self.needed.saturating_add(below).saturating_add(1);
        Ok(())
    }

    fn map_fresh(&mut self, _at: &At<DrySource>, _flags: PageFlags) {
        self.needed = self.needed.saturating_add(1);
    }

    fn split(
        &mut self,
        at: &At<DrySource>,
        frame: PhysAddr,
        flags: PageFlags,
    ) -> Result<(), TableError> {
        self.needed = self.needed.saturating_add(1);
        self.edit_table(DrySource::Split { frame, flags }, at.slot.level - 1, at.sub)?;
        Ok(())
    }

    fn clear_leaf_table(&mut self, source: DrySource, _span: Span) -> bool {
        // Checking is all a dry run does: every entry a well-formed leaf, no frame needed.
        let DrySource::Memory(table) = source else { return false };
        self.tables.memory.table_words(table).is_some_and(all_plain_leaves::<F>)
    }

    fn emptied(&self, _source: DrySource, _level: u8, _entries: &Entries) -> bool {
        // Nothing is given back in a dry run.
        false
    }
}

/// Whether every entry of a leaf table is a present, well-formed leaf.
pub(super) fn all_plain_leaves<F: PageTableFormat>(words: &[u64; 512]) -> bool {
    words.iter().all(|&raw| F::leaf_frame(raw, 1).is_some())
}

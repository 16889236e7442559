//! The second pass: applies the decisions the dry run accepted, with the frames it counted
//! in hand.

use crate::addr::{PhysAddr, VirtAddr};
use crate::error::{FrameError, TableError};
use crate::flags::PageFlags;
use crate::format::{Entry, PageTableFormat};
use crate::frame::FrameAllocator;
use crate::memory::TableMemory;
use crate::tlb::{FLUSH_BATCH, Flush};

use super::super::PageTable;
use super::super::check::Span;
use super::super::may_give_back;
use super::super::reserve::Reserve;
use super::dry_run::all_plain_leaves;
use super::{At, Edit, Entries, Pass, Place, Slot};

/// A table the real run edits.
#[derive(Clone, Copy, Debug)]
pub(super) struct Target {
    /// Where it is.
    pub table: PhysAddr,
    /// Whether this run just created it: its entries are empty, and not read (a table the
    /// operation fills whole is not even zeroed).
    pub fresh: bool,
}

/// The real run over one operation.
pub(super) struct RealRun<'a, F: PageTableFormat, M: TableMemory, E, A: ?Sized> {
    tables: &'a mut PageTable<F, M>,
    op: &'a mut E,
    /// The frames for the tables and fresh pages the run creates, as many as the dry run
    /// counted.
    reserve: Reserve,
    flush: Flush,
    alloc: &'a mut A,
}

impl<'a, F, M, E, A> RealRun<'a, F, M, E, A>
where
    F: PageTableFormat,
    M: TableMemory,
    E: Edit<F>,
    A: FrameAllocator + ?Sized,
{
    pub(super) fn new(
        tables: &'a mut PageTable<F, M>,
        op: &'a mut E,
        reserve: Reserve,
        alloc: &'a mut A,
    ) -> Self {
        Self { tables, op, reserve, flush: Flush::new(), alloc }
    }

    /// Ends the run, returning the flush of what it changed.
    ///
    /// In a tree the reserve is empty by now. Aliased tables can leave frames in it (a
    /// table this run created is met again through the alias, so a second creation the dry
    /// run counted does not happen); they go back to the allocator.
    pub(super) fn finish(mut self) -> Flush {
        self.reserve.release(&mut self.tables.memory, self.alloc);
        self.flush
    }

    /// Takes a frame for a new table from the reserve.
    fn take_frame(&mut self) -> Result<PhysAddr, TableError> {
        // The dry run counted every table this run creates: the reserve does not run dry.
        let dry = TableError::OutOfFrames { needed: 1, got: 0, source: FrameError::Exhausted };
        self.reserve.pop(&self.tables.memory).ok_or(dry)
    }

    /// Fills `table` (at `level`) with leaves mapping the huge page at `frame`.
    fn fill_split(&mut self, table: PhysAddr, frame: PhysAddr, flags: PageFlags, level: u8) {
        let size = F::leaf_size(level);
        for index in 0..F::entries(level) {
            // The huge frame is aligned to the whole run (a format decodes leaves aligned
            // to their size), so no leaf passes 2^64; a format that breaks that gets junk
            // frames, not a panic.
            let raw = F::encode_leaf(frame.wrapping_add(index as u64 * size), flags, level);
            self.tables.write(table, index, raw);
        }
    }
}

impl<F, M, E, A> Pass<F> for RealRun<'_, F, M, E, A>
where
    F: PageTableFormat,
    M: TableMemory,
    E: Edit<F>,
    A: FrameAllocator + ?Sized,
{
    type Source = Target;
    type Memory = M;
    type Op = E;

    #[inline]
    fn parts(&self) -> (&PageTable<F, M>, &E) {
        (self.tables, self.op)
    }

    #[inline]
    fn entry(&self, source: Target, index: usize, level: u8) -> (u64, Entry) {
        if source.fresh {
            (0, Entry::Empty)
        } else {
            self.tables.entry_at(source.table, index, level)
        }
    }

    #[inline]
    fn fill_fresh(
        &mut self,
        source: Target,
        level: u8,
        place: &Place,
        entries: &mut Entries,
    ) -> bool {
        if !source.fresh || !F::LINEAR_LEAVES {
            return false;
        }
        let Some(first_leaf) = self.op.fresh_leaf(level, place.va) else { return false };
        let count = entries.take_covered_run(place);
        let Some(at) = PageTable::<F, M>::entry_address(source.table, place.index) else {
            return false;
        };
        self.tables.memory.fill_entries(at, F::ENTRY_SIZE, count, first_leaf, F::leaf_size(level));
        true
    }

    #[inline]
    fn write(&mut self, at: &At<Target>, raw: u64) {
        self.tables.write(at.source.table, at.index, raw);
        let slot = &at.slot;
        match slot.entry {
            Entry::Leaf { flags, .. } => {
                self.flush.add(VirtAddr::new(slot.va), flags.contains(PageFlags::GLOBAL));
                self.op.removed(slot, self.alloc);
            }
            Entry::Payload(_) => self.op.removed(slot, self.alloc),
            Entry::Empty | Entry::Table { .. } | Entry::Invalid(_) => {}
        }
    }

    fn descend(&mut self, at: &At<Target>, child: PhysAddr) -> Result<bool, TableError> {
        let below = Target { table: child, fresh: false };
        if !self.edit_table(below, at.slot.level - 1, at.sub)? {
            return Ok(true);
        }
        // The frame was a table of this tree; the allocator handed it out. One that
        // cannot take it back (a bump allocator) leaves it linked, empty, rather than lost.
        if self.alloc.deallocate(child).is_err() {
            return Ok(true);
        }
        self.tables.write(at.source.table, at.index, 0);
        self.flush.add(VirtAddr::new(at.slot.va), false);
        Ok(false)
    }

    fn create(&mut self, at: &At<Target>) -> Result<(), TableError> {
        let frame = self.take_frame()?;
        // A table the operation fills whole needs no zeroing first.
        if !(at.slot.covered && self.op.fills_new_tables()) {
            self.tables.memory.zero_frame(frame);
        }
        let level = at.slot.level;
        self.edit_table(Target { table: frame, fresh: true }, level - 1, at.sub)?;
        self.tables.write(at.source.table, at.index, F::encode_table(frame, level));
        Ok(())
    }

    fn map_fresh(&mut self, at: &At<Target>, flags: PageFlags) {
        // The dry run counted one frame for this entry: the reserve holds it. Aliased
        // tables aside: there the entry is left empty (written: a new table that the
        // edit fills whole was not zeroed first).
        let Some(frame) = self.reserve.pop(&self.tables.memory) else {
            return self.tables.write(at.source.table, at.index, 0);
        };
        self.tables.memory.zero_frame(frame);
        self.tables.write(at.source.table, at.index, F::encode_leaf(frame, flags, at.slot.level));
    }

    fn split(
        &mut self,
        at: &At<Target>,
        frame: PhysAddr,
        flags: PageFlags,
    ) -> Result<(), TableError> {
        let table = self.take_frame()?;
        let level = at.slot.level;
        self.fill_split(table, frame, flags, level - 1);
        self.edit_table(Target { table, fresh: false }, level - 1, at.sub)?;
        // The table mirrors the huge leaf before it replaces it.
        self.tables.write(at.source.table, at.index, F::encode_table(table, level));
        self.flush.add(VirtAddr::new(at.slot.va), flags.contains(PageFlags::GLOBAL));
        Ok(())
    }

    fn clear_leaf_table(&mut self, source: Target, span: Span) -> bool {
        if source.fresh {
            return false;
        }
        let Some(words) = self.tables.memory.table_words(source.table) else { return false };
        // Checked again: an alias may have changed the table since the dry run.
        if !all_plain_leaves::<F>(words) {
            return false;
        }
        let size = F::leaf_size(1);
        let first_va = span.first & !(size - 1);
        let mut global = false;
        for (index, &raw) in words.iter().enumerate() {
            let entry = F::decode(raw, 1);
            let va = first_va.wrapping_add(index as u64 * size);
            if let Entry::Leaf { flags, .. } = entry {
                global |= flags.contains(PageFlags::GLOBAL);
            }
            // Past the batch the flush covers the whole space: no need to name more.
            if index <= FLUSH_BATCH {
                self.flush.add(VirtAddr::new(va), false);
            }
            let slot = Slot { level: 1, va, first: va, covered: true, entry };
            self.op.removed(&slot, self.alloc);
        }
        if global {
            self.flush.add(VirtAddr::new(first_va), true);
        }
        // Zeroed whole, given back or not: frames the engine frees are empty tables (a
        // refused call's reserve gives them back as they were).
        self.tables.memory.zero_frame(source.table);
        true
    }

    fn emptied(&self, source: Target, level: u8, entries: &Entries) -> bool {
        self.op.reclaims()
            && may_give_back::<F>(level)
            && entries
                .untouched(F::entries(level))
                .all(|index| self.tables.read(source.table, index) == 0)
    }
}

//! The tables right under a root whose entries the CPU loads with the root
//! ([`PageTableFormat::ROOT_ENTRIES_LOADED_WITH_ROOT`], x86 PAE, SDM 4.4.1).
//!
//! The CPU walks through its copies of the root entries until the root is loaded again, so
//! a table linked under the root later would stay unseen, and one unlinked would still be
//! walked. Such a table is therefore created with the root, all of them or none, and is
//! never given back while the root lives: [`PageTable::destroy`] frees them with it.
//!
//! A kernel space's root gets the tables under the root entries its layout covers the
//! same way, for another reason: spaces created later copy those entries (they share the
//! kernel half), so the tables must exist before them and outlive them.

use core::ops::Range;

use crate::error::TableError;
use crate::format::{Entry, PageTableFormat};
use crate::frame::FrameAllocator;
use crate::memory::TableMemory;

use super::{PageTable, reserve};

impl<F: PageTableFormat, M: TableMemory> PageTable<F, M> {
    /// Gives root entries `indexes` of a new, zeroed root an empty table each. On error
    /// the entries linked so far stay for [`unlink_root_tables`](Self::unlink_root_tables).
    pub(super) fn link_root_tables<A: FrameAllocator + ?Sized>(
        &mut self,
        indexes: Range<usize>,
        alloc: &mut A,
    ) -> Result<(), TableError> {
        // The root itself holds the frames taken so far: none is zeroed or linked for good
        // until all are in hand.
        let needed = 1 + indexes.len();
        for (got, index) in indexes.clone().enumerate() {
            let frame = alloc.allocate().map_err(|source| TableError::OutOfFrames {
                needed,
                got: 1 + got,
                source,
            })?;
            if !reserve::usable::<F, M>(&self.memory, frame) {
                let _ = alloc.deallocate(frame);
                return Err(TableError::FrameOutsideMemory { frame });
            }
            self.write(self.root, index, F::encode_table(frame, F::LEVELS));
        }
        for index in indexes {
            if let Entry::Table { frame, .. } = F::decode(self.read(self.root, index), F::LEVELS) {
                self.memory.zero_frame(frame);
            }
        }
        Ok(())
    }

    /// Gives back the tables that root entries `indexes` point to and clears the entries
    /// (undoing an unfinished [`link_root_tables`](Self::link_root_tables)).
    pub(super) fn unlink_root_tables<A: FrameAllocator + ?Sized>(
        &mut self,
        indexes: Range<usize>,
        alloc: &mut A,
    ) {
        for index in indexes {
            if let Entry::Table { frame, .. } = F::decode(self.read(self.root, index), F::LEVELS) {
                // The frame came from this allocator moments ago; it cannot refuse it back.
                let _ = alloc.deallocate(frame);
            }
            self.write(self.root, index, 0);
        }
    }
}

/// Whether unmapping may give back an emptied table at `level`: never the root, nor, in a
/// format whose root entries the CPU loads with the root, a table right under it (the CPU
/// would not see its replacement until the root is loaded again).
#[inline]
pub(crate) fn may_give_back<F: PageTableFormat>(level: u8) -> bool {
    level < F::LEVELS.saturating_sub(u8::from(F::ROOT_ENTRIES_LOADED_WITH_ROOT))
}

//! Windows `SetProcessWorkingSetSize`: a space's working-set limits in bytes, the maximum
//! enforced at once, and the pair of `(SIZE_T)-1` that empties the working set instead.

use crate::addr::PhysAddr;
use crate::format::PageTableFormat;
use crate::memory::TableMemory;

use super::manager::PagerError;
use super::paging::Paging;
use super::policy::ReplacementPolicy;
use super::store::{BackingStore, PAGE_BYTES};

/// What `SetProcessWorkingSetSize` did.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WorkingSetChange {
    /// New limits, in pages; `trimmed` pages left to bring the working set under the new
    /// maximum.
    Limits {
        /// The new minimum, in pages.
        minimum: u32,
        /// The new maximum, in pages.
        maximum: u32,
        /// The pages trimmed.
        trimmed: usize,
    },
    /// Both sizes were `usize::MAX` (`(SIZE_T)-1`): the working set was emptied of every
    /// page that can leave (locked pages stay), and the limits were left as they were.
    Emptied {
        /// The pages trimmed.
        trimmed: usize,
    },
}

impl<F: PageTableFormat, S: BackingStore, P: ReplacementPolicy> Paging<'_, '_, F, S, P> {
    /// Sets the working-set limits of the space at `root` in bytes, as Windows
    /// `SetProcessWorkingSetSize` does: each size counts its whole pages; the maximum caps
    /// the working set at once (pages past it are trimmed now, and a fault at the maximum
    /// replaces one of the space's own pages); the minimum is what trims for others leave,
    /// and the most pages the space may lock. Both sizes `usize::MAX` (Windows'
    /// `(SIZE_T)-1`) remove as many pages as possible from the working set instead
    /// ([`empty_working_set`](Self::empty_working_set)) and change no limit. Locked pages
    /// never leave: a working set of locked pages may stay above its maximum.
    ///
    /// # Errors
    ///
    /// Returns [`PagerError::UnknownSpace`], and [`PagerError::MinimumAboveMaximum`]
    /// (nothing changes then).
    pub fn set_process_working_set_size<M: TableMemory + ?Sized>(
        &mut self,
        root: PhysAddr,
        minimum: usize,
        maximum: usize,
        memory: &mut M,
    ) -> Result<WorkingSetChange, PagerError> {
        if self.pager.sets.get(root).is_none() {
            return Err(PagerError::UnknownSpace { root });
        }
        if (minimum, maximum) == (usize::MAX, usize::MAX) {
            let trimmed = self.empty_working_set(root, memory);
            return Ok(WorkingSetChange::Emptied { trimmed });
        }
        if minimum > maximum {
            return Err(PagerError::MinimumAboveMaximum { minimum, maximum });
        }
        let (minimum, maximum) = (pages(minimum), pages(maximum));
        self.pager.set_working_set_size(root, minimum, maximum)?;
        let above = self.pager.sets.get(root).map_or(0, |s| {
            usize::try_from(s.size().saturating_sub(u64::from(maximum))).unwrap_or(usize::MAX)
        });
        let trimmed = self.trim(root, above, memory);
        Ok(WorkingSetChange::Limits { minimum, maximum, trimmed })
    }
}

/// The whole pages in `bytes` (past `u32::MAX` pages, more than any pager holds: all of
/// them).
fn pages(bytes: usize) -> u32 {
    u32::try_from(bytes / PAGE_BYTES).unwrap_or(u32::MAX)
}

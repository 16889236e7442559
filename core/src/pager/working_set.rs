//! Working sets: the pages of each space that are resident, between a minimum the pager
//! leaves alone and a maximum past which the space replaces its own pages.

use crate::addr::PhysAddr;
use crate::tlb::Asid;

use super::counters::ProcessCounters;

/// How many spaces one pager serves.
pub const MAX_SPACES: usize = 32;

/// The working set of one address space, and its counters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WorkingSet {
    /// The space's root table (its identity).
    pub root: PhysAddr,
    /// The space's address-space id (which TLB entries to invalidate).
    pub asid: Asid,
    /// Pages the pager leaves resident when it trims for others.
    pub minimum: u32,
    /// Pages past which a new page replaces one of the space's own.
    pub maximum: u32,
    pub(super) counters: ProcessCounters,
    pub(super) locked: u64,
}

impl WorkingSet {
    /// A working set between `minimum` and `maximum` pages for the space at `root`.
    #[must_use]
    pub fn new(root: PhysAddr, asid: Asid, minimum: u32, maximum: u32) -> Self {
        let counters = ProcessCounters { root, ..ProcessCounters::default() };
        Self { root, asid, minimum, maximum: maximum.max(minimum), counters, locked: 0 }
    }

    /// The pages locked in the working set (Windows `VirtualLock`): no trim takes them.
    #[must_use]
    pub fn locked(&self) -> u64 {
        self.locked
    }

    /// The pages resident now.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.counters.working_set_size
    }

    /// The space's counters.
    #[must_use]
    pub fn counters(&self) -> ProcessCounters {
        self.counters
    }

    pub(super) fn grow(&mut self) {
        let c = &mut self.counters;
        c.working_set_size += 1;
        c.peak_working_set_size = c.peak_working_set_size.max(c.working_set_size);
    }

    pub(super) fn shrink(&mut self) {
        self.counters.working_set_size = self.counters.working_set_size.saturating_sub(1);
    }

    /// Whether the pager may trim the space for others (it is above its minimum).
    pub(super) fn above_minimum(&self) -> bool {
        self.counters.working_set_size > u64::from(self.minimum)
    }

    /// Whether a new page must replace one of the space's own (it is at its maximum).
    pub(super) fn at_maximum(&self) -> bool {
        self.counters.working_set_size >= u64::from(self.maximum)
    }
}

/// The working sets of the spaces a pager serves.
#[derive(Debug, Default)]
pub(super) struct WorkingSets {
    sets: heapless::Vec<WorkingSet, MAX_SPACES>,
}

impl WorkingSets {
    pub(super) fn get(&self, root: PhysAddr) -> Option<&WorkingSet> {
        self.sets.iter().find(|s| s.root == root)
    }

    pub(super) fn get_mut(&mut self, root: PhysAddr) -> Option<&mut WorkingSet> {
        self.sets.iter_mut().find(|s| s.root == root)
    }

    pub(super) fn add(&mut self, set: WorkingSet) -> Result<(), WorkingSet> {
        self.sets.push(set)
    }

    pub(super) fn remove(&mut self, root: PhysAddr) -> Option<WorkingSet> {
        let at = self.sets.iter().position(|s| s.root == root)?;
        Some(self.sets.swap_remove(at))
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &WorkingSet> {
        self.sets.iter()
    }
}

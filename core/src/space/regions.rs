//! The books of an address space: its reservations and the runs of pages inside them.

use crate::addr::{PhysAddr, VirtAddr};

use super::error::SpaceError;
use super::protection::{MemoryType, PageState, Protection};

/// The page size of address spaces.
pub(crate) const PAGE: u64 = 4096;

/// A list with fixed capacity `N` (heapless), or unbounded with the `alloc` feature.
#[derive(Clone, Debug)]
pub(crate) struct List<T, const N: usize> {
    #[cfg(not(feature = "alloc"))]
    items: heapless::Vec<T, N>,
    #[cfg(feature = "alloc")]
    items: alloc::vec::Vec<T>,
}

impl<T, const N: usize> List<T, N> {
    pub fn new() -> Self {
        Self { items: Default::default() }
    }

    pub fn as_slice(&self) -> &[T] {
        &self.items
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        self.items.get_mut(index)
    }

    /// How many more items fit.
    pub fn spare(&self) -> usize {
        #[cfg(not(feature = "alloc"))]
        return N - self.items.len();
        #[cfg(feature = "alloc")]
        return usize::MAX;
    }

    pub fn insert(&mut self, index: usize, item: T) -> Result<(), SpaceError> {
        #[cfg(not(feature = "alloc"))]
        return self.items.insert(index, item).map_err(|_| SpaceError::CapacityExhausted);
        #[cfg(feature = "alloc")]
        {
            self.items.insert(index, item);
            Ok(())
        }
    }

    pub fn remove(&mut self, index: usize) -> T {
        self.items.remove(index)
    }
}

/// What backs a reservation's pages.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Backing {
    /// Frames of this space's own, allocated on first touch.
    Private,
    /// The frames of a section, from `first` on (the section's frame at the view's offset).
    Section {
        /// The section's first frame (its identity).
        section: PhysAddr,
        /// The frame behind the view's first page.
        first: PhysAddr,
    },
}

/// A reservation: what `VirtualAlloc` with `MEM_RESERVE`, a mapped view or an image makes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Allocation {
    pub base: VirtAddr,
    pub size: u64,
    pub protect: Protection,
    pub kind: MemoryType,
    pub backing: Backing,
}

impl Allocation {
    pub fn end(&self) -> u64 {
        self.base.as_u64() + self.size
    }
}

/// Pages of one reservation that share state and protection.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Run {
    pub start: u64,
    pub end: u64,
    pub alloc_base: VirtAddr,
    pub state: PageState,
    pub protect: Protection,
}

/// Reservations and runs, each sorted by address; the runs of a reservation cover it
/// exactly.
#[derive(Clone, Debug)]
pub(crate) struct Regions<const N: usize> {
    pub allocations: List<Allocation, N>,
    pub runs: List<Run, N>,
}

impl<const N: usize> Regions<N> {
    pub fn new() -> Self {
        Self { allocations: List::new(), runs: List::new() }
    }

    /// The reservation holding `addr`.
    pub fn allocation(&self, addr: u64) -> Option<&Allocation> {
        let list = self.allocations.as_slice();
        let index = list.partition_point(|a| a.base.as_u64() <= addr).checked_sub(1)?;
        list.get(index).filter(|a| addr < a.end())
    }

    /// The first reservation that overlaps `[start, end)`.
    pub fn overlapping(&self, start: u64, end: u64) -> Option<&Allocation> {
        self.allocations.as_slice().iter().find(|a| a.base.as_u64() < end && start < a.end())
    }

    /// The first reservation at or after `addr`.
    pub fn next_allocation(&self, addr: u64) -> Option<&Allocation> {
        self.allocations.as_slice().iter().find(|a| a.base.as_u64() >= addr)
    }

    /// The index of the run holding `addr`.
    pub fn run_index(&self, addr: u64) -> Option<usize> {
        let list = self.runs.as_slice();
        let index = list.partition_point(|r| r.start <= addr).checked_sub(1)?;
        (addr < list.get(index)?.end).then_some(index)
    }

    /// The runs that overlap `[start, end)`.
    pub fn runs_in(&self, start: u64, end: u64) -> impl Iterator<Item = &Run> {
        self.runs.as_slice().iter().filter(move |r| r.start < end && start < r.end)
    }

    /// Adds a reservation whose pages all start in `state` with `protect`.
    pub fn add(
        &mut self,
        allocation: Allocation,
        state: PageState,
        protect: Protection,
    ) -> Result<(), SpaceError> {
        if self.allocations.spare() < 1 || self.runs.spare() < 1 {
            return Err(SpaceError::CapacityExhausted);
        }
        let base = allocation.base.as_u64();
        let at = self.allocations.as_slice().partition_point(|a| a.base.as_u64() < base);
        self.allocations.insert(at, allocation)?;
        let run =
            Run { start: base, end: allocation.end(), alloc_base: allocation.base, state, protect };
        let at = self.runs.as_slice().partition_point(|r| r.start < base);
        self.runs.insert(at, run)
    }

    /// Removes the reservation at `base` and its runs.
    pub fn remove(&mut self, base: VirtAddr) {
        if let Some(at) = self.allocations.as_slice().iter().position(|a| a.base == base) {
            self.allocations.remove(at);
        }
        while let Some(at) = self.runs.as_slice().iter().position(|r| r.alloc_base == base) {
            self.runs.remove(at);
        }
    }

    /// Whether [`set`](Self::set) has room for the splits it may need.
    pub fn can_set(&self) -> bool {
        self.runs.spare() >= 2
    }

    /// Gives the pages `[start, end)` of one reservation `state` and `protect` (through
    /// `update`, which sees each run's current values), splitting and merging runs.
    pub fn set(
        &mut self,
        start: u64,
        end: u64,
        update: impl Fn(&Run) -> (PageState, Protection),
    ) -> Result<(), SpaceError> {
        if !self.can_set() {
            return Err(SpaceError::CapacityExhausted);
        }
        self.split_at(start)?;
        self.split_at(end)?;
        for index in 0..self.runs.as_slice().len() {
            let Some(run) = self.runs.get_mut(index) else { break };
            if run.start >= start && run.end <= end {
                (run.state, run.protect) = update(run);
            }
        }
        self.merge();
        Ok(())
    }

    /// What splitting the reservation holding `at` in two there takes: a reservation slot,
    /// and a run slot when no run starts at `at`. `(false, false)` when no reservation
    /// holds `at` or `at` is its base (nothing to split).
    pub fn split_needs(&self, at: u64) -> (bool, bool) {
        match self.allocation(at) {
            Some(allocation) if allocation.base.as_u64() != at => {
                let runs = self.runs.as_slice();
                let run = self.run_index(at).and_then(|i| runs.get(i));
                (true, run.is_some_and(|r| r.start != at))
            }
            _ => (false, false),
        }
    }

    /// Splits the reservation holding `at` (a page boundary) in two there: the head keeps
    /// the base, the tail becomes a reservation of its own from `at` with the same
    /// protection, type and backing (a view's tail starts at its frame for `at`), and the
    /// runs from `at` on move to it. Does nothing when no reservation holds `at` or `at`
    /// is its base. Refused, changing nothing, when there is no room
    /// ([`split_needs`](Self::split_needs) says what it takes).
    pub fn split_allocation(&mut self, at: u64) -> Result<(), SpaceError> {
        let (allocation, run) = self.split_needs(at);
        if !allocation {
            return Ok(());
        }
        if self.allocations.spare() < 1 || (run && self.runs.spare() < 1) {
            return Err(SpaceError::CapacityExhausted);
        }
        let list = self.allocations.as_slice();
        let Some(index) = list.partition_point(|a| a.base.as_u64() <= at).checked_sub(1) else {
            return Ok(());
        };
        let Some(&head) = list.get(index) else { return Ok(()) };
        let offset = at - head.base.as_u64();
        let backing = match head.backing {
            Backing::Section { section, first } => {
                Backing::Section { section, first: first + offset }
            }
            Backing::Private => Backing::Private,
        };
        let tail =
            Allocation { base: VirtAddr::new(at), size: head.size - offset, backing, ..head };
        self.split_at(at)?;
        if let Some(shrunk) = self.allocations.get_mut(index) {
            shrunk.size = offset;
        }
        self.allocations.insert(index + 1, tail)?;
        for index in 0..self.runs.as_slice().len() {
            if let Some(run) = self.runs.get_mut(index)
                && run.alloc_base == head.base
                && run.start >= at
            {
                run.alloc_base = tail.base;
            }
        }
        Ok(())
    }

    /// Splits the run holding `addr` so that a run starts there.
    fn split_at(&mut self, addr: u64) -> Result<(), SpaceError> {
        let Some(index) = self.run_index(addr) else { return Ok(()) };
        let Some(run) = self.runs.get_mut(index) else { return Ok(()) };
        if run.start == addr {
            return Ok(());
        }
        let tail = Run { start: addr, ..*run };
        run.end = addr;
        self.runs.insert(index + 1, tail)
    }

    /// Joins neighbouring runs of one reservation that share state and protection.
    fn merge(&mut self) {
        let mut index = 1;
        while index < self.runs.as_slice().len() {
            let list = self.runs.as_slice();
            let (before, run) = (list[index - 1], list[index]);
            if before.end == run.start
                && before.alloc_base == run.alloc_base
                && (before.state, before.protect) == (run.state, run.protect)
            {
                if let Some(joined) = self.runs.get_mut(index - 1) {
                    joined.end = run.end;
                }
                self.runs.remove(index);
            } else {
                index += 1;
            }
        }
    }
}

//! The books of an address space: its reservations and the runs of pages inside them, and
//! the plans that say whether a change of the books fits before anything changes.
//!
//! Every change of the books is all-or-nothing: an operation plans it first
//! ([`Regions::plan`]), refuses it while nothing has changed when the books have no room,
//! and only then changes the tables and the books. The counting lives here, once.

use crate::addr::{PhysAddr, VirtAddr};

use super::PAGE;
use super::error::SpaceError;
use super::protection::{MemoryType, PageState, Protection};

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
        return self
            .items
            .insert(index, item)
            .map_err(|_| SpaceError::CapacityExhausted { capacity: N });
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
    /// The pages of a section, from `offset` on.
    Section {
        /// The section's header frame (its identity).
        section: PhysAddr,
        /// The section's page behind the reservation's first page.
        offset: u64,
    },
}

/// A reservation: what `VirtualAlloc` with `MEM_RESERVE`, a mapped view or an image makes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Reservation {
    pub base: VirtAddr,
    pub size: u64,
    pub protect: Protection,
    pub kind: MemoryType,
    pub backing: Backing,
    /// The pages charged to the commit limit when the reservation was made: a write-copy
    /// view's (each page may become a private copy). Private memory charges its committed
    /// pages instead, as they are committed.
    pub charge: u64,
    /// The frame of the write-watch bitmap (`MEM_WRITE_WATCH`): one bit per page, set by
    /// the first write since the last reset.
    pub watch: Option<PhysAddr>,
}

impl Reservation {
    pub fn end(&self) -> u64 {
        self.base.as_u64() + self.size
    }

    /// Whether the reservation overlaps `[start, end)`.
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.base.as_u64() < end && start < self.end()
    }
}

/// Pages of one reservation that share state and protection.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Run {
    pub start: u64,
    pub end: u64,
    /// The base of the reservation the run belongs to.
    pub reservation: VirtAddr,
    pub state: PageState,
    pub protect: Protection,
}

impl Run {
    /// The number of pages in the run.
    pub fn pages(&self) -> u64 {
        (self.end - self.start) / PAGE
    }
}

/// Reservations and runs, each sorted by address; the runs of a reservation cover it
/// exactly.
#[derive(Clone, Debug)]
pub(crate) struct Regions<const N: usize> {
    pub reservations: List<Reservation, N>,
    pub runs: List<Run, N>,
}

impl<const N: usize> Regions<N> {
    pub fn new() -> Self {
        Self { reservations: List::new(), runs: List::new() }
    }

    /// The reservation holding `addr`.
    pub fn reservation(&self, addr: u64) -> Option<&Reservation> {
        let list = self.reservations.as_slice();
        let index = list.partition_point(|a| a.base.as_u64() <= addr).checked_sub(1)?;
        list.get(index).filter(|a| addr < a.end())
    }

    /// The reservations that overlap `[start, end)`, from the lowest.
    pub fn overlapping_all(&self, start: u64, end: u64) -> impl Iterator<Item = &Reservation> {
        self.reservations.as_slice().iter().filter(move |a| a.overlaps(start, end))
    }

    /// The first reservation that overlaps `[start, end)`.
    pub fn overlapping(&self, start: u64, end: u64) -> Option<&Reservation> {
        self.overlapping_all(start, end).next()
    }

    /// The first reservation at or after `addr`.
    pub fn next_reservation(&self, addr: u64) -> Option<&Reservation> {
        self.reservations.as_slice().iter().find(|a| a.base.as_u64() >= addr)
    }

    /// The index of the run holding `addr`.
    pub fn run_index(&self, addr: u64) -> Option<usize> {
        let list = self.runs.as_slice();
        let index = list.partition_point(|r| r.start <= addr).checked_sub(1)?;
        (addr < list.get(index)?.end).then_some(index)
    }

    /// The run holding `addr`.
    pub fn run(&self, addr: u64) -> Option<Run> {
        self.run_index(addr).map(|index| self.runs.as_slice()[index])
    }

    /// The runs that overlap `[start, end)`.
    pub fn runs_in(&self, start: u64, end: u64) -> impl Iterator<Item = &Run> {
        self.runs.as_slice().iter().filter(move |r| r.start < end && start < r.end)
    }

    /// A plan of a change, to which each step adds what it takes and gives back.
    pub fn plan(&self) -> Plan<'_, N> {
        Plan { regions: self, reservations: Demand::default(), runs: Demand::default() }
    }

    /// Adds a reservation whose pages all start in `state` with `protect`.
    pub fn add(
        &mut self,
        reservation: Reservation,
        state: PageState,
        protect: Protection,
    ) -> Result<(), SpaceError> {
        self.plan().add().fits()?;
        let base = reservation.base.as_u64();
        let at = self.reservations.as_slice().partition_point(|a| a.base.as_u64() < base);
        self.reservations.insert(at, reservation)?;
        let run = Run {
            start: base,
            end: reservation.end(),
            reservation: reservation.base,
            state,
            protect,
        };
        let at = self.runs.as_slice().partition_point(|r| r.start < base);
        self.runs.insert(at, run)
    }

    /// Removes the reservation at `base` and its runs.
    pub fn remove(&mut self, base: VirtAddr) {
        if let Some(at) = self.reservations.as_slice().iter().position(|a| a.base == base) {
            self.reservations.remove(at);
        }
        while let Some(at) = self.runs.as_slice().iter().position(|r| r.reservation == base) {
            self.runs.remove(at);
        }
    }

    /// Gives the pages `[start, end)` of one reservation `state` and `protect` (through
    /// `update`, which sees each run's current values), splitting and merging runs.
    pub fn set(
        &mut self,
        start: u64,
        end: u64,
        update: impl Fn(&Run) -> (PageState, Protection),
    ) -> Result<(), SpaceError> {
        self.plan().set(start, end).fits()?;
        self.split_run_at(start)?;
        self.split_run_at(end)?;
        for index in 0..self.runs.as_slice().len() {
            let Some(run) = self.runs.get_mut(index) else { break };
            if run.start >= start && run.end <= end {
                (run.state, run.protect) = update(run);
            }
        }
        self.merge();
        Ok(())
    }

    /// Takes `[start, end)` out of the books: reservations it covers in part are split at
    /// its edges, then every piece inside goes.
    pub fn take_out(&mut self, start: u64, end: u64) -> Result<(), SpaceError> {
        self.plan().take_out(start, end).fits()?;
        self.split_reservation(start)?;
        self.split_reservation(end)?;
        while let Some(base) = self.overlapping(start, end).map(|a| a.base) {
            self.remove(base);
        }
        Ok(())
    }

    /// What splitting the reservation holding `at` in two there takes: a reservation slot,
    /// and a run slot when no run starts at `at`. `(false, false)` when no reservation
    /// holds `at` or `at` is its base (nothing to split).
    fn split_needs(&self, at: u64) -> (bool, bool) {
        match self.reservation(at) {
            Some(reservation) if reservation.base.as_u64() != at => {
                (true, self.run(at).is_some_and(|r| r.start != at))
            }
            _ => (false, false),
        }
    }

    /// Splits the reservation holding `at` (a page boundary) in two there: the head keeps
    /// the base, the tail becomes a reservation of its own from `at` with the same
    /// protection, type and backing (a view's tail starts at its frame for `at`), and the
    /// runs from `at` on move to it. Does nothing when no reservation holds `at` or `at`
    /// is its base. Refused, changing nothing, when there is no room.
    fn split_reservation(&mut self, at: u64) -> Result<(), SpaceError> {
        self.plan().split_reservation(at).fits()?;
        let list = self.reservations.as_slice();
        let Some(index) = list.partition_point(|a| a.base.as_u64() <= at).checked_sub(1) else {
            return Ok(());
        };
        let Some(&head) = list.get(index).filter(|a| a.base.as_u64() != at && at < a.end()) else {
            return Ok(());
        };
        let offset = at - head.base.as_u64();
        let backing = match head.backing {
            Backing::Section { section, offset: first } => {
                Backing::Section { section, offset: first + offset / super::PAGE }
            }
            Backing::Private => Backing::Private,
        };
        let tail =
            // The charge stays with the head, so the two halves still hold it once.
            Reservation { base: VirtAddr::new(at), size: head.size - offset, backing, charge: 0, ..head };
        self.split_run_at(at)?;
        if let Some(shrunk) = self.reservations.get_mut(index) {
            shrunk.size = offset;
        }
        self.reservations.insert(index + 1, tail)?;
        for index in 0..self.runs.as_slice().len() {
            if let Some(run) = self.runs.get_mut(index)
                && run.reservation == head.base
                && run.start >= at
            {
                run.reservation = tail.base;
            }
        }
        Ok(())
    }

    /// Splits the run holding `addr` so that a run starts there.
    fn split_run_at(&mut self, addr: u64) -> Result<(), SpaceError> {
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
                && before.reservation == run.reservation
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

/// The slots of one list that a plan takes: how many more are in use now, and at most.
#[derive(Clone, Copy, Debug, Default)]
struct Demand {
    now: isize,
    peak: isize,
}

impl Demand {
    fn take(&mut self, slots: usize) {
        self.now += slots as isize;
        self.peak = self.peak.max(self.now);
    }

    fn give(&mut self, slots: usize) {
        self.now -= slots as isize;
    }

    /// Whether the peak fits in `spare` slots.
    fn fits(&self, spare: usize) -> bool {
        usize::try_from(self.peak).is_ok_and(|peak| peak <= spare)
    }
}

/// A change of the books, step by step, counted against the books as they are: each step
/// takes the slots it needs while it runs and gives back those it frees. The change fits
/// when its peak does.
#[derive(Clone, Copy, Debug)]
#[must_use = "a plan only counts: ask `fits`"]
pub(crate) struct Plan<'r, const N: usize> {
    regions: &'r Regions<N>,
    reservations: Demand,
    runs: Demand,
}

impl<const N: usize> Plan<'_, N> {
    /// A new reservation with one run.
    pub fn add(mut self) -> Self {
        self.reservations.take(1);
        self.runs.take(1);
        self
    }

    /// A change of state or protection over `[start, end)` of a reservation in the books.
    /// It wants room for a split at both edges before it looks, then keeps what it used.
    pub fn set(mut self, start: u64, end: u64) -> Self {
        let regions = self.regions;
        let splits = [start, end].into_iter();
        let used = splits.filter(|&at| regions.run(at).is_some_and(|r| r.start != at)).count();
        self.runs.take(2);
        self.runs.give(2 - used);
        self
    }

    /// A change of state or protection inside a reservation not yet in the books (the
    /// parts of an image): two splits, as its runs are not known.
    pub fn set_in_new(mut self) -> Self {
        self.runs.take(2);
        self
    }

    /// Splitting the reservation holding `at` in two there.
    pub fn split_reservation(mut self, at: u64) -> Self {
        let (reservation, run) = self.regions.split_needs(at);
        self.reservations.take(usize::from(reservation));
        self.runs.take(usize::from(run));
        self
    }

    /// Taking `[start, end)` out of the books: the splits at its edges, then the pieces
    /// inside go (each reservation and run that overlaps the range leaves one there).
    pub fn take_out(self, start: u64, end: u64) -> Self {
        let mut plan = self.split_reservation(start).split_reservation(end);
        let regions = plan.regions;
        plan.reservations.give(regions.overlapping_all(start, end).count());
        plan.runs.give(regions.runs_in(start, end).count());
        plan
    }

    /// Whether the books have room for the whole change.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::CapacityExhausted`] when they do not.
    pub fn fits(self) -> Result<(), SpaceError> {
        let regions = self.regions;
        if self.reservations.fits(regions.reservations.spare())
            && self.runs.fits(regions.runs.spare())
        {
            Ok(())
        } else {
            Err(SpaceError::CapacityExhausted { capacity: N })
        }
    }
}

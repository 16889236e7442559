//! What the books say: Windows `VirtualQuery` of one run, the `!address` listing of the
//! whole user half, and how much is committed.

use crate::addr::VirtAddr;
use crate::format::PageTableFormat;

use super::regions::Run;
use super::{AddressSpace, MemoryType, PAGE, PageState, Protection, SpaceError};

/// What [`AddressSpace::query`] says about a run of pages (Windows
/// `MEMORY_BASIC_INFORMATION`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RegionInfo {
    /// The first page of the run.
    pub base: VirtAddr,
    /// The base of the reservation, if the run is in one.
    pub allocation_base: Option<VirtAddr>,
    /// The protection given at reservation.
    pub allocation_protect: Option<Protection>,
    /// The size of the run in bytes.
    pub size: u64,
    /// The state of its pages.
    pub state: PageState,
    /// Their protection (`None` for reserved pages, as Windows reports 0).
    pub protect: Option<Protection>,
    /// The type of memory (`None` for free pages).
    pub kind: Option<MemoryType>,
}

impl RegionInfo {
    /// The first address past the run (saturating at the top of the address space, which
    /// a run the space reports never reaches).
    #[must_use]
    pub fn end(&self) -> VirtAddr {
        VirtAddr::new(self.base.as_u64().saturating_add(self.size))
    }
}

impl<F: PageTableFormat, const N: usize> AddressSpace<F, N> {
    /// Describes the run of pages from `addr` (rounded down to a page) that share state,
    /// protection and reservation (Windows `VirtualQuery`). A free run reaches to the next
    /// reservation.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::OutsideUserSpace`] for an address above the user half's
    /// highest address (Windows `ERROR_INVALID_PARAMETER`).
    pub fn query(&self, addr: VirtAddr) -> Result<RegionInfo, SpaceError> {
        if addr > self.layout.highest {
            return Err(SpaceError::OutsideUserSpace { addr, size: 1 });
        }
        let page = addr.as_u64() & !(PAGE - 1);
        let Some(reservation) = self.regions.reservation(page) else {
            let next = self.regions.next_reservation(page).map(|a| a.base.as_u64());
            let end = next.unwrap_or(self.layout.highest.as_u64() + 1);
            return Ok(RegionInfo {
                base: VirtAddr::new(page),
                allocation_base: None,
                allocation_protect: None,
                size: end - page,
                state: PageState::Free,
                protect: Some(Protection::NO_ACCESS),
                kind: None,
            });
        };
        let runs = self.regions.runs.as_slice();
        let first = self.regions.run_index(page).unwrap_or(0);
        let run = runs[first];
        let end = runs[first..]
            .iter()
            .take_while(|r| {
                r.reservation == run.reservation && (r.state, r.protect) == (run.state, run.protect)
            })
            .last()
            .map_or(run.end, |r| r.end);
        Ok(RegionInfo {
            base: VirtAddr::new(page),
            allocation_base: Some(reservation.base),
            allocation_protect: Some(reservation.protect),
            size: end - page,
            state: run.state,
            protect: (run.state == PageState::Committed).then_some(run.protect),
            kind: Some(reservation.kind),
        })
    }

    /// Every run of the user half, free ones included, from the lowest address up (the
    /// debugger's `!address`).
    pub fn regions(&self) -> impl Iterator<Item = RegionInfo> + '_ {
        let mut at = Some(self.layout.lowest);
        core::iter::from_fn(move || {
            let info = self.query(at?).ok()?;
            at = info
                .end()
                .as_u64()
                .checked_sub(1)
                .filter(|&last| last < self.layout.highest.as_u64())
                .map(|_| info.end());
            Some(info)
        })
    }

    /// The number of committed pages.
    pub fn committed_pages(&self) -> u64 {
        let runs = self.regions.runs.as_slice().iter();
        runs.filter(|r| r.state == PageState::Committed).map(Run::pages).sum()
    }
}

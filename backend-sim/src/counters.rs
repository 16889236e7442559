//! What the machine counts, and what each event costs.

use core::fmt;

use paging::FaultCause;

/// Cycles charged per event: a simple model so that users see what their choices cost.
///
/// The defaults are round numbers of the right order for a modern x86 core: a TLB hit is
/// nearly free, each entry a walk reads is a memory access that misses the caches about
/// half the time, and a page fault is an exception entry and exit plus the handler.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct CostModel {
    /// A translation found in the TLB.
    pub tlb_hit: u64,
    /// One entry read by a page walk.
    pub walk_read: u64,
    /// A page fault taken (the handler's own accesses are counted as they happen).
    pub fault: u64,
}

impl Default for CostModel {
    fn default() -> Self {
        Self { tlb_hit: 1, walk_read: 40, fault: 2_000 }
    }
}

/// Events since the machine started or the counters were reset.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub struct Counters {
    /// Load instructions.
    pub loads: u64,
    /// Store instructions.
    pub stores: u64,
    /// Instruction fetches.
    pub fetches: u64,
    /// Address translations (one per page an access touches, retries included).
    pub translations: u64,
    /// Translations served by the TLB.
    pub tlb_hits: u64,
    /// Translations the TLB could not serve.
    pub tlb_misses: u64,
    /// Page walks.
    pub walks: u64,
    /// Entries read by page walks.
    pub walk_reads: u64,
    /// Faults on non-present pages.
    pub faults_not_present: u64,
    /// Faults on present pages that forbid the access.
    pub faults_protection: u64,
    /// Faults on entries with reserved bits set.
    pub faults_reserved: u64,
    /// Other faults (protection keys, shadow stacks).
    pub faults_other: u64,
    /// TLB invalidations requested by the kernel.
    pub invalidations: u64,
    /// Cycles of backing-store I/O the kernel's pager waited for (see
    /// [`PagedKernel`](crate::PagedKernel)), also part of `cycles`.
    pub io_cycles: u64,
    /// Cycles charged by the [`CostModel`], and by the store's own cost model for I/O.
    pub cycles: u64,
}

impl Counters {
    /// All faults.
    #[must_use]
    pub fn faults(&self) -> u64 {
        self.faults_not_present + self.faults_protection + self.faults_reserved + self.faults_other
    }

    /// Counts one fault.
    pub(crate) fn count_fault(&mut self, cause: FaultCause) {
        match cause {
            FaultCause::NotPresent => self.faults_not_present += 1,
            FaultCause::Protection => self.faults_protection += 1,
            FaultCause::ReservedBits => self.faults_reserved += 1,
            FaultCause::ProtectionKey | FaultCause::ShadowStack => self.faults_other += 1,
        }
    }
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hit_rate = if self.translations == 0 {
            0.0
        } else {
            self.tlb_hits as f64 * 100.0 / self.translations as f64
        };
        writeln!(
            f,
            "accesses     {} loads, {} stores, {} fetches",
            self.loads, self.stores, self.fetches
        )?;
        writeln!(
            f,
            "TLB          {} hits, {} misses ({hit_rate:.1}% hits), {} invalidations",
            self.tlb_hits, self.tlb_misses, self.invalidations
        )?;
        writeln!(f, "page walks   {} walks reading {} entries", self.walks, self.walk_reads)?;
        writeln!(
            f,
            "page faults  {} not present, {} protection, {} reserved bits, {} other",
            self.faults_not_present,
            self.faults_protection,
            self.faults_reserved,
            self.faults_other
        )?;
        write!(f, "cycles       {}", self.cycles)
    }
}

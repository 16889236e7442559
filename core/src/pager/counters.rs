//! What the pager counts, under the names Windows gives the same numbers.

use crate::addr::PhysAddr;

/// A process's memory counters (Windows `PROCESS_MEMORY_COUNTERS`), in pages where Windows
/// gives bytes (multiply by [`PAGE_BYTES`](super::PAGE_BYTES)).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ProcessCounters {
    /// The space's root table (its identity).
    pub root: PhysAddr,
    /// Faults the kernel resolved for the space: demand-zero, copy-on-write, soft and hard.
    pub page_fault_count: u64,
    /// Pages in the working set now.
    pub working_set_size: u64,
    /// The most pages the working set ever held.
    pub peak_working_set_size: u64,
    /// Committed private pages (the space's commit charge).
    pub pagefile_usage: u64,
    /// The most committed private pages the space ever had.
    pub peak_pagefile_usage: u64,
}

/// The system's memory numbers (Windows `PERFORMANCE_INFORMATION`), in pages.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PerformanceInfo {
    /// Pages committed by every space.
    pub commit_total: u64,
    /// The most pages that can be committed: the pager's frames plus the store's slots.
    pub commit_limit: u64,
    /// The highest commit total so far.
    pub commit_peak: u64,
    /// The frames the pager manages.
    pub physical_total: u64,
    /// Frames that can be given to a page at once: free, zeroed and standby.
    pub physical_available: u64,
}

/// What the pager did, system-wide.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PagerCounters {
    /// First touches of committed pages, given a zeroed frame.
    pub demand_zero_faults: u64,
    /// Writes to write-copy pages, given a private copy.
    pub copy_on_write_faults: u64,
    /// Pages taken back from the standby or modified list (soft faults, no I/O).
    pub soft_faults: u64,
    /// Pages read back from the store (hard faults).
    pub hard_faults: u64,
    /// Pages read from the store.
    pub pages_read: u64,
    /// Pages written to the store.
    pub pages_written: u64,
    /// Write requests (clusters of contiguous slots) sent to the store.
    pub write_clusters: u64,
    /// Reads the store refused.
    pub read_errors: u64,
    /// Writes the store refused.
    pub write_errors: u64,
    /// Pages taken out of working sets.
    pub pages_trimmed: u64,
    /// Standby frames given to another page (their old page now only in the store).
    pub pages_repurposed: u64,
}

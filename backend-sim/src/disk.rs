//! Backing stores for the simulated machine: a disk with a cost per I/O and injectable
//! failures, and a page file over a real host file.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use paging::pager::{
    BackingStore, ClusterError, PAGE_BYTES, Slot, StoreError, check_cluster, check_slot,
};

/// One page of a [`SimDisk`], in host memory.
type PageData = Box<[u8; PAGE_BYTES]>;

/// Cycles a [`SimDisk`] charges per I/O request and per page moved.
///
/// The defaults are of the order of a fast SSD on a 3 GHz core: some 30 µs of latency
/// per request, and a little more per 4 KiB transferred. So one cluster of 16 pages costs
/// far less than 16 single writes, which is why the modified page writer clusters.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct DiskCost {
    /// Latency of a read request.
    pub read: u64,
    /// Latency of a write request (a single page or a cluster).
    pub write: u64,
    /// Transfer of one page, read or written.
    pub page: u64,
}

impl Default for DiskCost {
    fn default() -> Self {
        Self { read: 100_000, write: 100_000, page: 2_000 }
    }
}

/// What a [`SimDisk`] has done since it was created or its counters were reset. Counters
/// count transfers: a request refused before it moved a page counts only as a failure.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub struct DiskCounters {
    /// Pages read (one request each).
    pub reads: u64,
    /// Pages written, singly or in clusters.
    pub writes: u64,
    /// Write requests: single-page writes and clusters.
    pub write_requests: u64,
    /// Cluster write requests.
    pub clusters: u64,
    /// Requests that failed with [`StoreError::Device`] (injected failures).
    pub failures: u64,
}

/// A simulated disk: slots in host memory, allocated when first written with something
/// other than zeros, with counters and a cost per I/O for the machine's cost model, and
/// failures to inject.
///
/// Failures: [`fail_read`](Self::fail_read) and [`fail_write`](Self::fail_write) make a
/// slot bad until [`clear_failures`](Self::clear_failures);
/// [`fail_next_reads`](Self::fail_next_reads) and
/// [`fail_next_writes`](Self::fail_next_writes) fail the next requests, whatever their
/// slot (a cluster is one request). An out-of-range request uses up no injected failure.
/// A failed request returns
/// [`StoreError::Device`] and changes no slot; a cluster that reaches a bad slot has
/// written the pages before it, as [`ClusterError::written`] says.
///
/// ```
/// use paging::pager::{BackingStore, PAGE_BYTES, Slot, StoreError};
/// use paging_sim::SimDisk;
///
/// let mut disk = SimDisk::new(64);
/// disk.write_cluster(Slot(8), &[&[1; PAGE_BYTES], &[2; PAGE_BYTES]])?;
/// disk.fail_read(Slot(9));
/// let mut page = [0; PAGE_BYTES];
/// assert_eq!(disk.read(Slot(9), &mut page), Err(StoreError::Device { slot: Slot(9), write: false }));
/// disk.read(Slot(8), &mut page)?;
/// assert_eq!(page, [1; PAGE_BYTES]);
/// let counters = disk.counters();
/// assert_eq!((counters.reads, counters.writes, counters.clusters, counters.failures), (1, 2, 1, 1));
/// assert_eq!(disk.cost_cycles(), 100_000 + 2_000 + 100_000 + 2 * 2_000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct SimDisk {
    slots: u32,
    pages: HashMap<u32, PageData>,
    cost: DiskCost,
    counters: DiskCounters,
    bad_reads: HashSet<u32>,
    bad_writes: HashSet<u32>,
    failing_reads: u64,
    failing_writes: u64,
}

impl SimDisk {
    /// Creates a disk of `slots` slots, all zero, with the default [`DiskCost`].
    #[must_use]
    pub fn new(slots: u32) -> Self {
        Self::with_cost(slots, DiskCost::default())
    }

    /// Creates a disk of `slots` slots, all zero, charging `cost`.
    #[must_use]
    pub fn with_cost(slots: u32, cost: DiskCost) -> Self {
        Self { slots, cost, ..Self::default() }
    }

    /// The counters.
    #[must_use]
    pub fn counters(&self) -> DiskCounters {
        self.counters
    }

    /// Sets every counter to zero.
    pub fn reset_counters(&mut self) {
        self.counters = DiskCounters::default();
    }

    /// The cycles the I/O counted so far costs under the disk's [`DiskCost`].
    #[must_use]
    pub fn cost_cycles(&self) -> u64 {
        let c = &self.counters;
        let requests = c
            .reads
            .saturating_mul(self.cost.read)
            .saturating_add(c.write_requests.saturating_mul(self.cost.write));
        requests.saturating_add(c.reads.saturating_add(c.writes).saturating_mul(self.cost.page))
    }

    /// How many slots hold host memory (written with something other than zeros).
    #[must_use]
    pub fn stored_pages(&self) -> usize {
        self.pages.len()
    }

    /// Makes every read of `slot` fail until [`clear_failures`](Self::clear_failures).
    pub fn fail_read(&mut self, slot: Slot) {
        self.bad_reads.insert(slot.0);
    }

    /// Makes every write of `slot`, alone or in a cluster, fail until
    /// [`clear_failures`](Self::clear_failures).
    pub fn fail_write(&mut self, slot: Slot) {
        self.bad_writes.insert(slot.0);
    }

    /// Makes the next `count` read requests fail, whatever their slot.
    pub fn fail_next_reads(&mut self, count: u64) {
        self.failing_reads = count;
    }

    /// Makes the next `count` write requests (single pages or clusters) fail.
    pub fn fail_next_writes(&mut self, count: u64) {
        self.failing_writes = count;
    }

    /// Forgets every injected failure.
    pub fn clear_failures(&mut self) {
        self.bad_reads.clear();
        self.bad_writes.clear();
        self.failing_reads = 0;
        self.failing_writes = 0;
    }

    /// Whether the next write request fails as a whole; consumes one injected failure.
    fn take_write_failure(&mut self) -> bool {
        let fails = self.failing_writes > 0;
        self.failing_writes = self.failing_writes.saturating_sub(1);
        fails
    }

    /// Counts a failed request and returns its error.
    fn failure(&mut self, slot: Slot, write: bool) -> StoreError {
        self.counters.failures += 1;
        StoreError::Device { slot, write }
    }

    /// Stores `page` in `slot` (in range), keeping zero pages unallocated.
    fn store(&mut self, slot: Slot, page: &[u8; PAGE_BYTES]) {
        if page.iter().all(|&b| b == 0) {
            self.pages.remove(&slot.0);
        } else {
            self.pages.insert(slot.0, Box::new(*page));
        }
    }
}

impl BackingStore for SimDisk {
    fn slots(&self) -> u32 {
        self.slots
    }

    fn read(&mut self, slot: Slot, page: &mut [u8; PAGE_BYTES]) -> Result<(), StoreError> {
        check_slot(slot, self.slots)?;
        if self.failing_reads > 0 {
            self.failing_reads -= 1;
            return Err(self.failure(slot, false));
        }
        if self.bad_reads.contains(&slot.0) {
            return Err(self.failure(slot, false));
        }
        match self.pages.get(&slot.0) {
            Some(data) => page.copy_from_slice(&data[..]),
            None => page.fill(0),
        }
        self.counters.reads += 1;
        Ok(())
    }

    fn write(&mut self, slot: Slot, page: &[u8; PAGE_BYTES]) -> Result<(), StoreError> {
        check_slot(slot, self.slots)?;
        if self.take_write_failure() || self.bad_writes.contains(&slot.0) {
            return Err(self.failure(slot, true));
        }
        self.store(slot, page);
        self.counters.writes += 1;
        self.counters.write_requests += 1;
        Ok(())
    }

    /// One request for the whole cluster; it stops at the first bad slot.
    fn write_cluster(
        &mut self,
        first: Slot,
        pages: &[&[u8; PAGE_BYTES]],
    ) -> Result<(), ClusterError> {
        check_cluster(first, pages.len(), self.slots)
            .map_err(|error| ClusterError { written: 0, error })?;
        if pages.is_empty() {
            return Ok(());
        }
        if self.take_write_failure() {
            return Err(ClusterError { written: 0, error: self.failure(first, true) });
        }
        let mut result = Ok(());
        let mut written = 0;
        for (slot, page) in (first.0..).map(Slot).zip(pages) {
            if self.bad_writes.contains(&slot.0) {
                result = Err(ClusterError { written, error: self.failure(slot, true) });
                break;
            }
            self.store(slot, page);
            written += 1;
        }
        if written > 0 {
            self.counters.writes += written as u64;
            self.counters.write_requests += 1;
            self.counters.clusters += 1;
        }
        result
    }
}

/// A page file: a backing store over a host file, slot `s` at byte `s * 4096`.
///
/// The file is sized when the store is made, so never-written slots read as zeros (and
/// cost no disk space where the file system supports sparse files). The typed errors of
/// [`BackingStore`] cannot carry an [`io::Error`]; the last one is kept for
/// [`last_io_error`](Self::last_io_error).
///
/// ```
/// use paging::pager::{BackingStore, PAGE_BYTES, Slot};
/// use paging_sim::FileStore;
///
/// let path = std::env::temp_dir().join(format!("paging-doc-{}.pagefile", std::process::id()));
/// let mut store = FileStore::create(&path, 16)?;
/// store.write(Slot(3), &[7; PAGE_BYTES])?;
/// let mut page = [1; PAGE_BYTES];
/// store.read(Slot(4), &mut page)?;
/// assert_eq!(page, [0; PAGE_BYTES]);
/// drop(store);
/// std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FileStore {
    file: File,
    slots: u32,
    last_error: Option<io::Error>,
}

impl FileStore {
    /// Creates (or truncates) the file at `path` and sizes it for `slots` slots of zeros.
    ///
    /// # Errors
    ///
    /// The [`io::Error`] of opening or sizing the file.
    pub fn create(path: impl AsRef<Path>, slots: u32) -> io::Result<Self> {
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
        Self::from_file(file, slots)
    }

    /// Uses an open `file` (readable and writable) for `slots` slots, keeping what the
    /// first `slots` pages hold and sizing it to exactly `slots` pages.
    ///
    /// # Errors
    ///
    /// The [`io::Error`] of sizing the file.
    pub fn from_file(file: File, slots: u32) -> io::Result<Self> {
        file.set_len(u64::from(slots) * PAGE_BYTES as u64)?;
        Ok(Self { file, slots, last_error: None })
    }

    /// The host error behind the last [`StoreError::Device`], if any.
    #[must_use]
    pub fn last_io_error(&self) -> Option<&io::Error> {
        self.last_error.as_ref()
    }

    /// Gives the file back.
    #[must_use]
    pub fn into_file(self) -> File {
        self.file
    }

    /// Moves the file position to the start of `slot`.
    fn seek_to(&mut self, slot: Slot) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(u64::from(slot.0) * PAGE_BYTES as u64)).map(drop)
    }

    /// Records `error` and returns the device error for `slot`.
    fn device_error(&mut self, error: io::Error, slot: Slot, write: bool) -> StoreError {
        self.last_error = Some(error);
        StoreError::Device { slot, write }
    }
}

impl BackingStore for FileStore {
    fn slots(&self) -> u32 {
        self.slots
    }

    fn read(&mut self, slot: Slot, page: &mut [u8; PAGE_BYTES]) -> Result<(), StoreError> {
        check_slot(slot, self.slots)?;
        // Read into a buffer of our own: a failed `read_exact` leaves its buffer undefined,
        // and the caller's page must stay as it was.
        let mut buffer = [0; PAGE_BYTES];
        let result = self.seek_to(slot).and_then(|()| self.file.read_exact(&mut buffer));
        result.map_err(|error| self.device_error(error, slot, false))?;
        *page = buffer;
        Ok(())
    }

    fn write(&mut self, slot: Slot, page: &[u8; PAGE_BYTES]) -> Result<(), StoreError> {
        check_slot(slot, self.slots)?;
        let result = self.seek_to(slot).and_then(|()| self.file.write_all(page));
        result.map_err(|error| self.device_error(error, slot, true))
    }

    /// One seek, then the pages back to back.
    fn write_cluster(
        &mut self,
        first: Slot,
        pages: &[&[u8; PAGE_BYTES]],
    ) -> Result<(), ClusterError> {
        check_cluster(first, pages.len(), self.slots)
            .map_err(|error| ClusterError { written: 0, error })?;
        if let Err(error) = self.seek_to(first) {
            return Err(ClusterError { written: 0, error: self.device_error(error, first, true) });
        }
        for (written, (slot, page)) in (first.0..).map(Slot).zip(pages).enumerate() {
            if let Err(error) = self.file.write_all(*page) {
                return Err(ClusterError { written, error: self.device_error(error, slot, true) });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page whose bytes differ from its neighbours' and from each other.
    fn page(tag: u8) -> [u8; PAGE_BYTES] {
        core::array::from_fn(|i| tag ^ (i % 253) as u8)
    }

    fn read(store: &mut impl BackingStore, slot: u32) -> Result<[u8; PAGE_BYTES], StoreError> {
        let mut page = [0xAA; PAGE_BYTES];
        store.read(Slot(slot), &mut page).map(|()| page)
    }

    #[test]
    fn sim_disk_round_trips_lazily() {
        let mut disk = SimDisk::new(8);
        disk.write(Slot(7), &page(7)).unwrap();
        disk.write_cluster(Slot(2), &[&page(2), &[0; PAGE_BYTES], &page(4)]).unwrap();
        assert_eq!(disk.stored_pages(), 3);
        assert_eq!(read(&mut disk, 7), Ok(page(7)));
        assert_eq!(read(&mut disk, 4), Ok(page(4)));
        assert_eq!(read(&mut disk, 3), Ok([0; PAGE_BYTES]));
        assert_eq!(read(&mut disk, 0), Ok([0; PAGE_BYTES]));
        // Zeros free the host memory.
        disk.write(Slot(7), &[0; PAGE_BYTES]).unwrap();
        assert_eq!(disk.stored_pages(), 2);
        let expected =
            DiskCounters { reads: 4, writes: 5, write_requests: 3, clusters: 1, failures: 0 };
        assert_eq!(disk.counters(), expected);
        assert_eq!(disk.cost_cycles(), 4 * 100_000 + 3 * 100_000 + 9 * 2_000);
        disk.reset_counters();
        assert_eq!((disk.counters(), disk.cost_cycles()), (DiskCounters::default(), 0));
    }

    #[test]
    fn sim_disk_costs_are_configurable() {
        let mut disk = SimDisk::with_cost(4, DiskCost { read: 10, write: 20, page: 1 });
        disk.write_cluster(Slot(0), &[&page(0); 4]).unwrap();
        read(&mut disk, 1).unwrap();
        assert_eq!(disk.cost_cycles(), 20 + 4 + 10 + 1);
    }

    #[test]
    fn injected_read_failures_change_nothing() {
        let mut disk = SimDisk::new(4);
        disk.write(Slot(1), &page(1)).unwrap();
        disk.fail_read(Slot(1));
        let device = |slot| StoreError::Device { slot: Slot(slot), write: false };
        let mut buffer = page(9);
        assert_eq!(disk.read(Slot(1), &mut buffer), Err(device(1)));
        assert_eq!(buffer, page(9));
        assert_eq!(read(&mut disk, 0), Ok([0; PAGE_BYTES]));
        disk.fail_next_reads(2);
        assert_eq!(read(&mut disk, 0), Err(device(0)));
        assert_eq!(read(&mut disk, 2), Err(device(2)));
        assert_eq!(read(&mut disk, 0), Ok([0; PAGE_BYTES]));
        // Out of range is reported as such and uses up no injected failure.
        disk.fail_next_reads(1);
        assert_eq!(read(&mut disk, 4), Err(StoreError::OutOfRange { slot: Slot(4), slots: 4 }));
        assert_eq!(read(&mut disk, 3), Err(device(3)));
        disk.clear_failures();
        assert_eq!(read(&mut disk, 1), Ok(page(1)));
        let counters = disk.counters();
        assert_eq!((counters.reads, counters.failures), (3, 4));
    }

    #[test]
    fn injected_write_failures_change_nothing() {
        let mut disk = SimDisk::new(8);
        disk.write_cluster(Slot(0), &[&page(0), &page(1), &page(2), &page(3)]).unwrap();
        disk.fail_write(Slot(2));
        let device = |slot| StoreError::Device { slot: Slot(slot), write: true };
        assert_eq!(disk.write(Slot(2), &page(9)), Err(device(2)));
        // A cluster stops at the bad slot, having written the pages before it.
        let err = disk.write_cluster(Slot(1), &[&page(11), &page(12), &page(13)]).unwrap_err();
        assert_eq!(err, ClusterError { written: 1, error: device(2) });
        disk.fail_next_writes(2);
        assert_eq!(disk.write(Slot(5), &page(5)), Err(device(5)));
        let err = disk.write_cluster(Slot(4), &[&page(14)]).unwrap_err();
        assert_eq!(err, ClusterError { written: 0, error: device(4) });
        let got: Vec<_> = (0..6).map(|s| read(&mut disk, s).unwrap()).collect();
        let zero = [0; PAGE_BYTES];
        assert_eq!(got, [page(0), page(11), page(2), page(3), zero, zero]);
        let counters = disk.counters();
        let expected =
            DiskCounters { reads: 6, writes: 5, write_requests: 2, clusters: 2, failures: 4 };
        assert_eq!(counters, expected);
        disk.clear_failures();
        disk.write(Slot(2), &page(9)).unwrap();
        assert_eq!(read(&mut disk, 2), Ok(page(9)));
    }

    #[test]
    fn sim_disk_range_errors() {
        let mut disk = SimDisk::new(2);
        let out = |slot| StoreError::OutOfRange { slot: Slot(slot), slots: 2 };
        assert_eq!(disk.write(Slot(2), &page(1)), Err(out(2)));
        let err = disk.write_cluster(Slot(1), &[&page(1), &page(2)]).unwrap_err();
        assert_eq!(err, ClusterError { written: 0, error: out(2) });
        assert_eq!(disk.write_cluster(Slot(2), &[]), Ok(()));
        assert_eq!((disk.counters(), disk.stored_pages()), (DiskCounters::default(), 0));
    }

    /// A path in the temporary directory unique to this process and test.
    fn temp_path(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("paging-sim-{}-{name}.pagefile", std::process::id()))
    }

    #[test]
    fn file_store_round_trips() {
        let path = temp_path("round-trip");
        let mut store = FileStore::create(&path, 8).unwrap();
        assert_eq!(store.slots(), 8);
        store.write(Slot(7), &page(7)).unwrap();
        store.write_cluster(Slot(2), &[&page(2), &page(3)]).unwrap();
        assert_eq!(read(&mut store, 7), Ok(page(7)));
        assert_eq!(read(&mut store, 3), Ok(page(3)));
        assert_eq!(read(&mut store, 4), Ok([0; PAGE_BYTES]));
        let out = StoreError::OutOfRange { slot: Slot(8), slots: 8 };
        assert_eq!(read(&mut store, 8), Err(out));
        let err = store.write_cluster(Slot(7), &[&page(1), &page(1)]).unwrap_err();
        assert_eq!(err, ClusterError { written: 0, error: out });
        assert!(store.last_io_error().is_none());
        // Reopened over the same file, the pages are still there.
        let file = store.into_file();
        let mut store = FileStore::from_file(file, 8).unwrap();
        assert_eq!(read(&mut store, 2), Ok(page(2)));
        drop(store);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 8 * 4096);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn file_store_reports_host_errors() {
        let path = temp_path("write-only");
        let file = OpenOptions::new().write(true).create(true).truncate(true).open(&path).unwrap();
        let mut store = FileStore::from_file(file, 2).unwrap();
        store.write(Slot(1), &page(1)).unwrap();
        // The file cannot be read: a device error, and the page is left as it was.
        let mut buffer = page(5);
        let device = StoreError::Device { slot: Slot(1), write: false };
        assert_eq!(store.read(Slot(1), &mut buffer), Err(device));
        assert_eq!(buffer, page(5));
        assert!(store.last_io_error().is_some());
        drop(store);
        std::fs::remove_file(&path).unwrap();
    }
}

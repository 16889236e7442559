//! A backing store in memory the caller provides.

use core::fmt;

use super::store::{BackingStore, ClusterError, PAGE_BYTES, Slot, StoreError, check_cluster};

/// A backing store over a slice of pages, one slot per page (at most `u32::MAX`).
///
/// It never fails on a slot it has. For tests, for kernels that compress or park pages in
/// memory they cannot map, and as the simplest model of a store.
///
/// ```
/// use paging::pager::{BackingStore, PAGE_BYTES, RamDisk, Slot};
///
/// let mut pages = [[0u8; PAGE_BYTES]; 2];
/// let mut disk = RamDisk::new(&mut pages);
/// disk.write(Slot(1), &[7; PAGE_BYTES])?;
/// let mut page = [0; PAGE_BYTES];
/// disk.read(Slot(1), &mut page)?;
/// assert_eq!(page, [7; PAGE_BYTES]);
/// assert!(disk.read(Slot(2), &mut page).is_err());
/// # Ok::<(), paging::pager::StoreError>(())
/// ```
pub struct RamDisk<'d> {
    pages: &'d mut [[u8; PAGE_BYTES]],
}

impl<'d> RamDisk<'d> {
    /// Creates a RAM disk over `pages`, keeping what they hold (so a disk can be reopened).
    #[must_use]
    pub fn new(pages: &'d mut [[u8; PAGE_BYTES]]) -> Self {
        let slots = pages.len().min(u32::MAX as usize);
        let (pages, _) = pages.split_at_mut(slots);
        Self { pages }
    }

    /// The pages, for inspection.
    #[must_use]
    pub fn pages(&self) -> &[[u8; PAGE_BYTES]] {
        self.pages
    }
}

impl BackingStore for RamDisk<'_> {
    fn slots(&self) -> u32 {
        // `new` keeps the length at most `u32::MAX`.
        self.pages.len() as u32
    }

    fn read(&mut self, slot: Slot, page: &mut [u8; PAGE_BYTES]) -> Result<(), StoreError> {
        let slots = self.slots();
        *page = *self.pages.get(slot.0 as usize).ok_or(StoreError::OutOfRange { slot, slots })?;
        Ok(())
    }

    fn write(&mut self, slot: Slot, page: &[u8; PAGE_BYTES]) -> Result<(), StoreError> {
        let slots = self.slots();
        let stored = self.pages.get_mut(slot.0 as usize);
        *stored.ok_or(StoreError::OutOfRange { slot, slots })? = *page;
        Ok(())
    }

    /// Copies the whole cluster after one range check: memory cannot fail halfway.
    fn write_cluster(
        &mut self,
        first: Slot,
        pages: &[&[u8; PAGE_BYTES]],
    ) -> Result<(), ClusterError> {
        let slots = self.slots();
        let out_of_range = |error| ClusterError { written: 0, error };
        let start = check_cluster(first, pages.len(), slots).map_err(out_of_range)?;
        let targets = self.pages.get_mut(start..).unwrap_or_default();
        for (target, page) in targets.iter_mut().zip(pages) {
            *target = **page;
        }
        Ok(())
    }
}

impl fmt::Debug for RamDisk<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RamDisk").field("slots", &self.slots()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(byte: u8) -> [u8; PAGE_BYTES] {
        let mut page = [byte; PAGE_BYTES];
        page[PAGE_BYTES - 1] = !byte;
        page
    }

    #[test]
    fn pages_round_trip() {
        let mut pages = vec![[0u8; PAGE_BYTES]; 4];
        let mut disk = RamDisk::new(&mut pages);
        assert_eq!(disk.slots(), 4);
        disk.write(Slot(3), &page(3)).unwrap();
        disk.write_cluster(Slot(0), &[&page(10), &page(11)]).unwrap();
        let mut back = [0u8; PAGE_BYTES];
        for (slot, expected) in [(0, page(10)), (1, page(11)), (2, [0; PAGE_BYTES]), (3, page(3))] {
            disk.read(Slot(slot), &mut back).unwrap();
            assert_eq!(back, expected, "slot {slot}");
        }
        assert_eq!(format!("{disk:?}"), "RamDisk { slots: 4, .. }");
        // Reopening keeps the contents.
        let mut disk = RamDisk::new(&mut pages);
        disk.read(Slot(1), &mut back).unwrap();
        assert_eq!(back, page(11));
    }

    #[test]
    fn out_of_range_changes_nothing() {
        let mut pages = vec![[0u8; PAGE_BYTES]; 2];
        let mut disk = RamDisk::new(&mut pages);
        let out = |slot| StoreError::OutOfRange { slot: Slot(slot), slots: 2 };
        let mut back = page(5);
        assert_eq!(disk.read(Slot(2), &mut back), Err(out(2)));
        assert_eq!(back, page(5));
        assert_eq!(disk.write(Slot(u32::MAX), &page(1)), Err(out(u32::MAX)));
        let err = disk.write_cluster(Slot(1), &[&page(1), &page(2)]).unwrap_err();
        assert_eq!(err, ClusterError { written: 0, error: out(2) });
        assert_eq!(disk.write_cluster(Slot(2), &[]), Ok(()));
        assert_eq!(disk.pages(), [[0; PAGE_BYTES]; 2]);
    }
}

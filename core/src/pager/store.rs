//! The backing store: where pages go when their frames are taken away.

use core::fmt;

use crate::frame::FRAME_SIZE;

/// The size of a page of the backing store in bytes: one frame.
pub const PAGE_BYTES: usize = FRAME_SIZE as usize;

/// A slot of the backing store: room for one page.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Slot(pub u32);

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "slot {}", self.0)
    }
}

/// Why a read or write of the backing store failed. A failed read leaves the caller's page
/// as it was; a failed write leaves the slot as it was, as far as the device can promise.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StoreError {
    /// The slot is not one of the store's.
    OutOfRange {
        /// The slot asked for (for a cluster, its first slot past the end).
        slot: Slot,
        /// The number of slots the store has.
        slots: u32,
    },
    /// The device reported an I/O error.
    Device {
        /// The slot the failed transfer was for.
        slot: Slot,
        /// Whether it was a write (else a read).
        write: bool,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::OutOfRange { slot, slots } => {
                write!(f, "{slot} is outside the backing store of {slots} slots")
            }
            Self::Device { slot, write } => {
                let what = if write { "write to" } else { "read of" };
                write!(f, "device error on the {what} {slot}")
            }
        }
    }
}

impl core::error::Error for StoreError {}

/// Why a cluster write failed, and how far it got: the first `written` pages are in the
/// store, the rest are not (the caller keeps them dirty).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClusterError {
    /// How many of the leading pages were written.
    pub written: usize,
    /// What stopped the write.
    pub error: StoreError,
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cluster write stopped after {} pages: {}", self.written, self.error)
    }
}

impl core::error::Error for ClusterError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// A store of pages addressed by slot: a disk partition, a page file, a RAM disk.
///
/// Implement it over your disk driver to let the pager swap to it. Every transfer is a
/// whole page, and every one may fail with a typed error instead of panicking.
pub trait BackingStore {
    /// The number of slots; slots `0..slots()` exist.
    fn slots(&self) -> u32;

    /// Reads slot `slot` into `page`.
    ///
    /// # Errors
    ///
    /// [`StoreError::OutOfRange`] for a slot the store does not have, and
    /// [`StoreError::Device`] for an I/O error. `page` is unchanged on error.
    fn read(&mut self, slot: Slot, page: &mut [u8; PAGE_BYTES]) -> Result<(), StoreError>;

    /// Writes `page` to slot `slot`.
    ///
    /// # Errors
    ///
    /// [`StoreError::OutOfRange`] for a slot the store does not have, and
    /// [`StoreError::Device`] for an I/O error.
    fn write(&mut self, slot: Slot, page: &[u8; PAGE_BYTES]) -> Result<(), StoreError>;

    /// Writes `pages` to the consecutive slots from `first` (a cluster). The default checks
    /// that the cluster fits and then writes page by page; a disk overrides it with one
    /// request. An empty cluster writes nothing and succeeds.
    ///
    /// # Errors
    ///
    /// A [`ClusterError`] saying how many leading pages were written: none when the
    /// cluster does not fit ([`StoreError::OutOfRange`]), and those before the failing
    /// page on a [`StoreError::Device`] error.
    fn write_cluster(
        &mut self,
        first: Slot,
        pages: &[&[u8; PAGE_BYTES]],
    ) -> Result<(), ClusterError> {
        check_cluster(first, pages.len(), self.slots())
            .map_err(|error| ClusterError { written: 0, error })?;
        let mut slot = first;
        for (written, page) in pages.iter().enumerate() {
            self.write(slot, page).map_err(|error| ClusterError { written, error })?;
            // The cluster was checked to fit below `slots()`, so this stays in range.
            slot = Slot(slot.0.wrapping_add(1));
        }
        Ok(())
    }
}

impl<S: BackingStore + ?Sized> BackingStore for &mut S {
    fn slots(&self) -> u32 {
        (**self).slots()
    }
    fn read(&mut self, slot: Slot, page: &mut [u8; PAGE_BYTES]) -> Result<(), StoreError> {
        (**self).read(slot, page)
    }
    fn write(&mut self, slot: Slot, page: &[u8; PAGE_BYTES]) -> Result<(), StoreError> {
        (**self).write(slot, page)
    }
    fn write_cluster(
        &mut self,
        first: Slot,
        pages: &[&[u8; PAGE_BYTES]],
    ) -> Result<(), ClusterError> {
        (**self).write_cluster(first, pages)
    }
}

/// Checks that `slot` is one of `slots` slots and returns its index, for implementations.
///
/// # Errors
///
/// [`StoreError::OutOfRange`] if `slot.0 >= slots`.
pub fn check_slot(slot: Slot, slots: u32) -> Result<usize, StoreError> {
    if slot.0 < slots {
        // A u32 fits in usize on every target the crate builds for (32 and 64 bits).
        Ok(slot.0 as usize)
    } else {
        Err(StoreError::OutOfRange { slot, slots })
    }
}

/// Checks that the `count` slots from `first` all lie in `0..slots` and returns the index
/// of `first`, for implementations. An empty cluster fits anywhere up to `slots`.
///
/// # Errors
///
/// [`StoreError::OutOfRange`] naming the first slot past the end (or `first` itself when
/// it is already outside).
pub fn check_cluster(first: Slot, count: usize, slots: u32) -> Result<usize, StoreError> {
    let room = slots.saturating_sub(first.0) as usize;
    if first.0 <= slots && count <= room {
        Ok(first.0 as usize)
    } else {
        let slot = if first.0 < slots { Slot(slots) } else { first };
        Err(StoreError::OutOfRange { slot, slots })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store whose writes fail from one slot on, counting what it writes.
    struct Failing {
        written: [u8; 4],
        bad: u32,
    }

    impl BackingStore for Failing {
        fn slots(&self) -> u32 {
            4
        }
        fn read(&mut self, slot: Slot, page: &mut [u8; PAGE_BYTES]) -> Result<(), StoreError> {
            let index = check_slot(slot, 4)?;
            page.fill(self.written[index]);
            Ok(())
        }
        fn write(&mut self, slot: Slot, page: &[u8; PAGE_BYTES]) -> Result<(), StoreError> {
            let index = check_slot(slot, 4)?;
            if slot.0 >= self.bad {
                return Err(StoreError::Device { slot, write: true });
            }
            self.written[index] = page[0];
            Ok(())
        }
    }

    #[test]
    fn default_cluster_reports_the_written_prefix() {
        let mut store = Failing { written: [0; 4], bad: 2 };
        let (a, b, c) = ([1; PAGE_BYTES], [2; PAGE_BYTES], [3; PAGE_BYTES]);
        let err = store.write_cluster(Slot(0), &[&a, &b, &c]).unwrap_err();
        let device = StoreError::Device { slot: Slot(2), write: true };
        assert_eq!(err, ClusterError { written: 2, error: device });
        assert_eq!(store.written, [1, 2, 0, 0]);
        assert_eq!(
            err.to_string(),
            "cluster write stopped after 2 pages: device error on the write to slot 2"
        );
    }

    #[test]
    fn default_cluster_that_does_not_fit_writes_nothing() {
        let mut store = Failing { written: [0; 4], bad: 4 };
        let a = [9; PAGE_BYTES];
        let err = store.write_cluster(Slot(3), &[&a, &a]).unwrap_err();
        let range = StoreError::OutOfRange { slot: Slot(4), slots: 4 };
        assert_eq!(err, ClusterError { written: 0, error: range });
        assert_eq!(store.written, [0; 4]);
        // Through `&mut Failing`, which forwards.
        let mut by_ref = &mut store;
        assert_eq!(BackingStore::write_cluster(&mut by_ref, Slot(4), &[]), Ok(()));
        BackingStore::write_cluster(&mut by_ref, Slot(2), &[&a, &a]).unwrap();
        assert_eq!(by_ref.slots(), 4);
        assert_eq!(store.written, [0, 0, 9, 9]);
    }

    #[test]
    fn range_checks() {
        assert_eq!(check_slot(Slot(3), 4), Ok(3));
        let out = |slot| Err(StoreError::OutOfRange { slot: Slot(slot), slots: 4 });
        assert_eq!(check_slot(Slot(4), 4), out(4));
        assert_eq!(check_cluster(Slot(1), 3, 4), Ok(1));
        assert_eq!(check_cluster(Slot(4), 0, 4), Ok(4));
        assert_eq!(check_cluster(Slot(1), 4, 4), out(4));
        assert_eq!(check_cluster(Slot(5), 0, 4), out(5));
        assert_eq!(check_cluster(Slot(u32::MAX), 1, 4), out(u32::MAX));
        assert_eq!(check_cluster(Slot(0), usize::MAX, 4), out(4));
        assert_eq!(
            StoreError::OutOfRange { slot: Slot(7), slots: 4 }.to_string(),
            "slot 7 is outside the backing store of 4 slots"
        );
        assert_eq!(
            StoreError::Device { slot: Slot(1), write: false }.to_string(),
            "device error on the read of slot 1"
        );
    }
}

//! limine's memory map entries (feature `limine`).

use core::ops::Range;

use ::limine::memory_map::{Entry, EntryType};

use super::with_reserved;
use crate::frame::MemoryRegion;

impl From<&Entry> for MemoryRegion {
    /// `USABLE` is usable; every other type is reserved: `BOOTLOADER_RECLAIMABLE` too (it
    /// holds limine's responses and the page tables it built), and
    /// `EXECUTABLE_AND_MODULES` (the kernel and its modules).
    fn from(entry: &Entry) -> Self {
        if entry.entry_type == EntryType::USABLE {
            Self::usable(entry.base, entry.length)
        } else {
            Self::reserved(entry.base, entry.length)
        }
    }
}

/// The entries of a `MemoryMapResponse` (`response.entries()`), with the ranges of
/// `reserve` reserved on top.
///
/// ```
/// use limine::memory_map::{Entry, EntryType};
/// use paging::frame::{MemoryRegion, boot};
///
/// let usable = Entry { base: 0x10_0000, length: 0x7f0_0000, entry_type: EntryType::USABLE };
/// let limine =
///     Entry { base: 0x800_0000, length: 0x1000, entry_type: EntryType::BOOTLOADER_RECLAIMABLE };
/// let regions: Vec<_> = boot::from_limine(&[&usable, &limine], &[]).collect();
/// assert_eq!(
///     regions,
///     [MemoryRegion::usable(0x10_0000, 0x7f0_0000), MemoryRegion::reserved(0x800_0000, 0x1000)]
/// );
/// ```
pub fn from_limine<'a>(
    entries: &'a [&'a Entry],
    reserve: &'a [Range<u64>],
) -> impl Iterator<Item = MemoryRegion> + Clone + 'a {
    with_reserved(entries.iter().map(|entry| MemoryRegion::from(*entry)), reserve)
}

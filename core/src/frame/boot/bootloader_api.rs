//! `bootloader_api`'s memory regions (feature `bootloader_api`).

use core::ops::Range;

use ::bootloader_api::info::{MemoryRegion as BootRegion, MemoryRegionKind};

use super::with_reserved;
use crate::frame::MemoryRegion;

impl From<&BootRegion> for MemoryRegion {
    /// `Usable` is usable; `Bootloader` (its page tables, the boot information) and the
    /// firmware's other kinds are reserved. An end below the start gives an empty region.
    fn from(region: &BootRegion) -> Self {
        let len = region.end.saturating_sub(region.start);
        match region.kind {
            MemoryRegionKind::Usable => Self::usable(region.start, len),
            _ => Self::reserved(region.start, len),
        }
    }
}

/// The memory map in `BootInfo::memory_regions` (a `MemoryRegions`, which derefs to this
/// slice), with the ranges of `reserve` reserved on top.
///
/// ```
/// use bootloader_api::info::{MemoryRegion as BootRegion, MemoryRegionKind};
/// use paging::frame::{MemoryRegion, boot};
///
/// let map = [
///     BootRegion { start: 0x1000, end: 0x9_f000, kind: MemoryRegionKind::Usable },
///     BootRegion { start: 0x10_0000, end: 0x20_0000, kind: MemoryRegionKind::Bootloader },
/// ];
/// let regions: Vec<_> = boot::from_bootloader_api(&map, &[0x8000..0x9000]).collect();
/// assert_eq!(
///     regions,
///     [
///         MemoryRegion::usable(0x1000, 0x9_e000),
///         MemoryRegion::reserved(0x10_0000, 0x10_0000),
///         MemoryRegion::reserved(0x8000, 0x1000),
///     ]
/// );
/// ```
pub fn from_bootloader_api<'a>(
    regions: &'a [BootRegion],
    reserve: &'a [Range<u64>],
) -> impl Iterator<Item = MemoryRegion> + Clone + 'a {
    with_reserved(regions.iter().map(MemoryRegion::from), reserve)
}

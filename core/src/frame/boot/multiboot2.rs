//! multiboot2's memory areas (feature `multiboot2`).

use core::ops::Range;

use ::multiboot2::{MemoryArea, MemoryAreaType};

use super::with_reserved;
use crate::frame::MemoryRegion;

impl From<&MemoryArea> for MemoryRegion {
    /// `Available` is usable; every other type is reserved (`AcpiAvailable` too: it holds
    /// the ACPI tables until the kernel has read them).
    fn from(area: &MemoryArea) -> Self {
        let (start, len) = (area.start_address(), area.size());
        match area.typ() {
            MemoryAreaType::Available => Self::usable(start, len),
            _ => Self::reserved(start, len),
        }
    }
}

/// The areas of a `MemoryMapTag` (`tag.memory_areas()`), with the ranges of `reserve`
/// reserved on top.
///
/// Multiboot2 reports the kernel image, the modules and the boot information as
/// available: reserve them here (the ELF sections tag or linker symbols give the kernel's
/// range, `BootInformation::start_address` and `total_size` the boot information's, each
/// module tag its own), or the allocator hands them out.
///
/// ```
/// use multiboot2::{MemoryArea, MemoryAreaType};
/// use paging::frame::{MemoryRegion, boot};
///
/// let areas = [
///     MemoryArea::new(0, 0x9_fc00, MemoryAreaType::Available),
///     MemoryArea::new(0x10_0000, 0x7ee_0000, MemoryAreaType::Available),
///     MemoryArea::new(0x7fe_0000, 0x2_0000, MemoryAreaType::Reserved),
/// ];
/// let kernel = 0x10_0000..0x18_0000;
/// let boot_info = 0x18_0000..0x18_0468;
/// let regions: Vec<_> = boot::from_multiboot2(&areas, &[kernel, boot_info]).collect();
/// assert_eq!(regions[4], MemoryRegion::reserved(0x18_0000, 0x468));
/// ```
pub fn from_multiboot2<'a>(
    areas: &'a [MemoryArea],
    reserve: &'a [Range<u64>],
) -> impl Iterator<Item = MemoryRegion> + Clone + 'a {
    with_reserved(areas.iter().map(MemoryRegion::from), reserve)
}

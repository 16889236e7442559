//! Memory maps from bootloaders, as [`MemoryRegion`]s for the allocators'
//! [`from_regions`](super::BitmapAllocator::from_regions) constructors.
//!
//! Each bootloader crate has a feature, off by default: `bootloader_api`, `limine` and
//! `multiboot2`. Each gives a `From<&Entry> for MemoryRegion` for its entry type and a
//! function that reads a whole map plus ranges the caller reserves on top:
//!
//! | Feature | Entry | Whole map | Usable |
//! |---|---|---|---|
//! | `bootloader_api` | `bootloader_api::info::MemoryRegion` | `from_bootloader_api` | `Usable` |
//! | `limine` | `limine::memmap::Entry` | `from_limine` | `MEMMAP_USABLE` |
//! | `multiboot2` | `multiboot2::MemoryArea` | `from_multiboot2` | `Available` |
//!
//! Every other kind is [`RegionKind::Reserved`](super::RegionKind::Reserved), including
//! memory that becomes free later (limine's bootloader-reclaimable memory, ACPI tables
//! once parsed): the allocators cannot grow, so build them once the kernel no longer needs
//! it, or accept not having it.
//!
//! Multiboot2 reports the kernel image, the modules and the boot information itself as
//! available memory: pass their ranges in `reserve`, or the allocator hands them out.
//! Reserved ranges win over usable ones wherever they overlap, whatever the order.
//!
//! ```
//! use core::ops::Range;
//! use paging::frame::{BitmapAllocator, FrameAllocator, MemoryRegion, boot};
//!
//! // A map as some bootloader gave it, and the kernel image it forgot.
//! let map = [MemoryRegion::usable(0x10_0000, 0x70_0000)];
//! let kernel: Range<u64> = 0x10_0000..0x23_4567;
//! let regions = boot::with_reserved(map.iter().copied(), core::slice::from_ref(&kernel));
//!
//! let mut words = [0u64; 64];
//! let mut frames = BitmapAllocator::from_regions(&mut words, regions)?;
//! assert_eq!(frames.allocate()?.as_u64(), 0x23_5000);
//! # Ok::<(), paging::FrameError>(())
//! ```

use core::ops::Range;

use super::MemoryRegion;

#[cfg(feature = "bootloader_api")]
mod bootloader_api;
#[cfg(feature = "limine")]
mod limine;
#[cfg(feature = "multiboot2")]
mod multiboot2;

#[cfg(feature = "bootloader_api")]
pub use bootloader_api::from_bootloader_api;
#[cfg(feature = "limine")]
pub use limine::from_limine;
#[cfg(feature = "multiboot2")]
pub use multiboot2::from_multiboot2;

/// `regions` followed by each of `reserve` as a reserved region (an empty or reversed
/// range reserves nothing).
pub fn with_reserved<'a, I>(
    regions: I,
    reserve: &'a [Range<u64>],
) -> impl Iterator<Item = MemoryRegion> + Clone + 'a
where
    I: Iterator<Item = MemoryRegion> + Clone + 'a,
{
    let reserved = reserve
        .iter()
        .map(|range| MemoryRegion::reserved(range.start, range.end.saturating_sub(range.start)));
    regions.chain(reserved)
}

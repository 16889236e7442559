//! The memory map QEMU passes in the PVH `hvm_start_info` structure (Xen's
//! `arch-x86/hvm/start_info.h`), turned into the regions a frame allocator is built from.

use heapless::Vec;
use paging::frame::MemoryRegion;

/// `hvm_start_info.magic`.
const MAGIC: u32 = 0x336E_C578;
/// Offsets in `hvm_start_info` (version 1 and later for the memory map).
const VERSION: u64 = 0x04;
const MEMMAP_PADDR: u64 = 0x28;
const MEMMAP_ENTRIES: u64 = 0x30;
/// An `hvm_memmap_table_entry`: addr (u64), size (u64), type (u32), reserved (u32).
const ENTRY_SIZE: u64 = 24;
/// The entry type of usable RAM.
const TYPE_RAM: u32 = 1;
/// Entries read at most.
pub const MAX_ENTRIES: usize = 64;

/// The regions of the map, plus what the kernel reserves.
pub type Regions = Vec<MemoryRegion, { MAX_ENTRIES + 4 }>;

/// Reads the memory map at physical `start_info`, keeping RAM below `limit` (what the
/// boot tables map), and marks the first MiB and `reserved` (the kernel image) reserved.
///
/// # Safety
///
/// Physical memory below 4 GiB must be mapped at its own address, and `start_info` must
/// be what the PVH entry received in `%ebx`.
pub unsafe fn read(
    start_info: u64,
    limit: u64,
    reserved: (u64, u64),
) -> Result<Regions, &'static str> {
    // SAFETY: the caller's promise: the structure is identity-mapped, and QEMU wrote it.
    let read32 = |at: u64| unsafe {
        core::ptr::read_volatile(core::ptr::with_exposed_provenance::<u32>(at as usize))
    };
    // SAFETY: as above.
    let read64 = |at: u64| unsafe {
        core::ptr::read_volatile(core::ptr::with_exposed_provenance::<u64>(at as usize))
    };
    if read32(start_info) != MAGIC {
        return Err("no hvm_start_info magic: not booted through PVH");
    }
    if read32(start_info + VERSION) < 1 {
        return Err("hvm_start_info version 0 has no memory map");
    }
    let table = read64(start_info + MEMMAP_PADDR);
    let entries = u64::from(read32(start_info + MEMMAP_ENTRIES)).min(MAX_ENTRIES as u64);
    let mut regions = Regions::new();
    for index in 0..entries {
        let at = table + index * ENTRY_SIZE;
        let (addr, size, kind) = (read64(at), read64(at + 8), read32(at + 16));
        let end = addr.saturating_add(size).min(limit);
        if kind == TYPE_RAM && end > addr {
            let _ = regions.push(MemoryRegion::usable(addr, end - addr));
        }
    }
    let _ = regions.push(MemoryRegion::reserved(0, 0x10_0000));
    let _ = regions.push(MemoryRegion::reserved(reserved.0, reserved.1 - reserved.0));
    Ok(regions)
}

/// The end of the highest usable region.
pub fn ram_end(regions: &Regions) -> u64 {
    regions
        .iter()
        .filter(|r| r.kind == paging::frame::RegionKind::Usable)
        .map(|r| r.end())
        .max()
        .unwrap_or(0)
}

//! The engine operations the benchmarks compare, ours and the `x86_64` crate's, each on
//! tables built the same way: the criterion groups time them, and `count-ops` counts their
//! instructions under callgrind.

use paging::table::Holes;
use paging::{Frame, Page, PageFlags, PageTable, PhysAddr, Size2MiB, Size4KiB, VirtAddr};
use paging_x86::X86_64;
use x86_64::structures::paging::{
    Mapper, Page as XPage, PageTableFlags as XFlags, PhysFrame, Size2MiB as X2M, Size4KiB as X4K,
    Translate, mapper::CleanUp,
};

use crate::{Arena, Frames, PAGES, PHYS, TABLE_FRAMES, VIRT};

const RW: PageFlags = PageFlags::READABLE.union(PageFlags::WRITABLE);
const XRW: XFlags = XFlags::PRESENT.union(XFlags::WRITABLE);
/// The root our engine takes from [`Frames`]: its first frame.
const OUR_ROOT: PhysAddr = PhysAddr::new(4096);

/// A fresh arena and allocator.
#[must_use]
pub fn fresh() -> (Arena, Frames) {
    (Arena::new(TABLE_FRAMES), Frames::new(TABLE_FRAMES))
}

/// Our engine: [`PAGES`] pages mapped one `map` call at a time.
pub fn ours_map_each(arena: &mut Arena, frames: &mut Frames) {
    let mut table = PageTable::<X86_64, _>::new(arena.memory(), frames).unwrap();
    for i in 0..PAGES {
        let page = Page::<Size4KiB>::containing(VirtAddr::new(VIRT + i * 4096));
        let frame = Frame::containing(PhysAddr::new(PHYS + i * 4096));
        table.map(page, frame, RW, frames).unwrap().ignore();
    }
}

/// The x86_64 crate: [`PAGES`] pages mapped one `map_to` call at a time.
pub fn peer_map_each(arena: &mut Arena, frames: &mut Frames) {
    let mut table = arena.x86_64_table();
    for i in 0..PAGES {
        let page = XPage::<X4K>::containing_address(x86_64::VirtAddr::new(VIRT + i * 4096));
        let frame = PhysFrame::containing_address(x86_64::PhysAddr::new(PHYS + i * 4096));
        // SAFETY: the frame is never accessed; only the entry that points to it is built.
        unsafe { table.map_to(page, frame, XRW, frames) }.unwrap().ignore();
    }
}

/// Our engine: [`PAGES`] pages mapped by one `map_range` call, 4 KiB pages only.
pub fn ours_map_range(arena: &mut Arena, frames: &mut Frames) {
    let mut table = PageTable::<X86_64, _>::new(arena.memory(), frames).unwrap();
    let (virt, phys) = (VirtAddr::new(VIRT), PhysAddr::new(PHYS));
    table.map_range_limited::<Size4KiB, _>(virt, phys, PAGES * 4096, RW, frames).unwrap().ignore();
}

/// The sum of the physical addresses our engine translates `VIRT + page * 4096 + 8` to,
/// for each page of `probes`, in tables [`ours_map_range`] built.
#[must_use]
pub fn ours_translate(arena: &mut Arena, probes: &[u64]) -> u64 {
    let table = PageTable::<X86_64, _>::from_root(OUR_ROOT, arena.memory());
    probes.iter().fold(0u64, |sum, &p| {
        let phys = table.translate_addr(VirtAddr::new(VIRT + p * 4096 + 8)).unwrap();
        sum.wrapping_add(phys.as_u64())
    })
}

/// The same sum through the x86_64 crate's `translate_addr`, in tables
/// [`peer_map_each`] built.
#[must_use]
pub fn peer_translate(arena: &mut Arena, probes: &[u64]) -> u64 {
    let table = arena.x86_64_table();
    probes.iter().fold(0u64, |sum, &p| {
        let addr = x86_64::VirtAddr::new(VIRT + p * 4096 + 8);
        sum.wrapping_add(table.translate_addr(addr).unwrap().as_u64())
    })
}

/// Our engine: the [`PAGES`] pages [`ours_map_each`] mapped, unmapped by one call that
/// gives the emptied tables back.
pub fn ours_unmap_reclaim(arena: &mut Arena, frames: &mut Frames) {
    let mut table = PageTable::<X86_64, _>::from_root(OUR_ROOT, arena.memory());
    table
        .unmap_range(VirtAddr::new(VIRT), PAGES * 4096, Holes::Refuse, frames, |_| {})
        .unwrap()
        .ignore();
}

/// The x86_64 crate: the pages [`peer_map_each`] mapped, unmapped one at a time, then
/// `clean_up` giving the emptied tables back.
pub fn peer_unmap_reclaim(arena: &mut Arena, frames: &mut Frames) {
    let mut table = arena.x86_64_table();
    for i in 0..PAGES {
        let page = XPage::<X4K>::containing_address(x86_64::VirtAddr::new(VIRT + i * 4096));
        table.unmap(page).unwrap().1.ignore();
    }
    // SAFETY: every page was unmapped above; no table is in use any more.
    unsafe { table.clean_up(frames) };
}

/// Our engine: 1 GiB of 2 MiB pages, one `map` call each (512 leaves under one directory).
pub fn ours_map_huge(arena: &mut Arena, frames: &mut Frames) {
    let mut table = PageTable::<X86_64, _>::new(arena.memory(), frames).unwrap();
    for i in 0..512 {
        let page = Page::<Size2MiB>::containing(VirtAddr::new(VIRT + (i << 21)));
        let frame = Frame::containing(PhysAddr::new(PHYS + (i << 21)));
        table.map(page, frame, RW, frames).unwrap().ignore();
    }
}

/// The x86_64 crate: the same 512 2 MiB pages, one `map_to` call each.
pub fn peer_map_huge(arena: &mut Arena, frames: &mut Frames) {
    let mut table = arena.x86_64_table();
    for i in 0..512 {
        let page = XPage::<X2M>::containing_address(x86_64::VirtAddr::new(VIRT + (i << 21)));
        let frame = PhysFrame::containing_address(x86_64::PhysAddr::new(PHYS + (i << 21)));
        // SAFETY: the frame is never accessed; only the entry is built.
        unsafe { table.map_to(page, frame, XRW, frames) }.unwrap().ignore();
    }
}

//! Page and frame ranges, and address arithmetic at the top of the address space: checked
//! and wrapping methods, operators that panic on overflow as the `x86_64` crate's do, and
//! engine calls that refuse such ranges with an error instead of panicking.

use paging::addr::{FrameRange, PageRange};
use paging::frame::FrameAllocator;
use paging::space::{AddressSpace, Layout, SpaceConfig, SpaceError};
use paging::table::{Holes, Visit};
use paging::{
    AddrKind, Asid, Frame, Page, PageFlags, PageTable, PhysAddr, Size2MiB, Size4KiB, TableError,
    VirtAddr,
};
use paging_harness::fixtures::{Arena, pa, va};
use paging_x86::{Legacy32, Pae, X86_64};

fn page(addr: u64) -> Page {
    Page::containing(VirtAddr::new(addr))
}

#[test]
fn half_open_ranges() {
    let range = Page::range(page(0x1000), page(0x4000));
    assert_eq!(range.count_blocks(), 3);
    assert_eq!(range.size_hint(), (3, Some(3)));
    let starts: Vec<u64> = range.map(|p| p.start().as_u64()).collect();
    assert_eq!(starts, [0x1000, 0x2000, 0x3000]);
    assert!(Page::range(page(0x4000), page(0x1000)).is_empty());
    assert_eq!(Page::range(page(0x4000), page(0x1000)).count(), 0);

    let huge = Frame::<Size2MiB>::containing(PhysAddr::new(0x40_0000));
    let frames: FrameRange<Size2MiB> = Frame::range(huge, huge.checked_add(2).unwrap());
    assert_eq!(frames.last(), huge.checked_add(1));
}

#[test]
fn inclusive_ranges_reach_the_top_without_overflow() {
    let top = page(u64::MAX);
    let pages: Vec<Page> = Page::range_inclusive(page(u64::MAX - 0x2fff), top).collect();
    assert_eq!(pages.len(), 3);
    assert_eq!(pages.last(), Some(&top));
    let mut one = Page::range_inclusive(top, top);
    assert_eq!(one.size_hint(), (1, Some(1)));
    assert_eq!((one.next(), one.next()), (Some(top), None));
    assert!(one.is_empty());
    assert_eq!(Page::<Size4KiB>::range_inclusive(page(0x2000), page(0x1000)).count(), 0);
    // The half-open range stops one short of the top page, which it cannot name as an end.
    let range: PageRange = Page::range(page(u64::MAX - 0x1fff), top);
    assert_eq!(range.count(), 1);
}

#[test]
fn checked_address_arithmetic() {
    let near_top = VirtAddr::new(u64::MAX - 0xfff);
    assert_eq!(near_top.checked_add(0x2000), None);
    assert_eq!(near_top.checked_add(0xfff), Some(VirtAddr::new(u64::MAX)));
    assert_eq!(VirtAddr::new(0x1000).checked_sub(0x2000), None);
    assert_eq!(PhysAddr::new(0x3000).checked_sub(0x1000), Some(PhysAddr::new(0x2000)));
    assert_eq!(page(u64::MAX).checked_add(1), None);
}

#[test]
fn wrapping_and_offset_methods() {
    assert_eq!(VirtAddr::new(u64::MAX - 0xfff).wrapping_add(0x2000), VirtAddr::new(0x1000));
    assert_eq!(PhysAddr::new(0x1000).wrapping_sub(0x2000), PhysAddr::new(u64::MAX - 0xfff));
    assert_eq!(va(0x5000).checked_offset_from(va(0x3000)), Some(0x2000));
    assert_eq!(va(0x3000).checked_offset_from(va(0x5000)), None);
    assert_eq!(pa(u64::MAX).checked_offset_from(pa(0)), Some(u64::MAX));
}

#[test]
fn operators_within_range() {
    assert_eq!(va(0x1000) + 0x234, va(0x1234));
    assert_eq!(VirtAddr::new(u64::MAX - 0xfff) + 0xfff, va(u64::MAX));
    assert_eq!(pa(0x3000) - 0x1000, pa(0x2000));
    assert_eq!(pa(0x3000) - pa(0x1000), 0x2000);
    assert_eq!(va(u64::MAX) - va(0), u64::MAX);
    let mut addr = va(0x1000);
    addr += 0x1000;
    assert_eq!(addr, va(0x2000));
    addr -= 0x2000;
    assert_eq!(addr, VirtAddr::ZERO);
}

#[test]
#[should_panic(expected = "address overflow: VirtAddr(0xfffffffffffff000) + 0x2000")]
fn adding_past_the_top_panics() {
    // The example: it used to wrap to 0x1000.
    let _ = VirtAddr::new(u64::MAX - 0xfff) + 0x2000;
}

#[test]
#[should_panic(expected = "address overflow: PhysAddr(0xffffffffffffffff) + 0x1")]
fn add_assign_past_the_top_panics() {
    let mut addr = pa(u64::MAX);
    addr += 1;
}

#[test]
#[should_panic(expected = "address underflow: PhysAddr(0x0) - 0x1")]
fn subtracting_below_zero_panics() {
    let _ = PhysAddr::ZERO - 1;
}

#[test]
#[should_panic(expected = "address underflow: VirtAddr(0x1000) - 0x2000")]
fn sub_assign_below_zero_panics() {
    let mut addr = va(0x1000);
    addr -= 0x2000;
}

#[test]
#[should_panic(expected = "address underflow: VirtAddr(0x1000) - VirtAddr(0x2000)")]
fn a_negative_distance_panics() {
    let _ = va(0x1000) - va(0x2000);
}

const RW: PageFlags = PageFlags::READABLE.union(PageFlags::WRITABLE);
/// The last 4 KiB page of the 64-bit address space (canonical on x86-64: the kernel half).
const TOP_PAGE: u64 = u64::MAX - 0xfff;

#[test]
fn engine_ranges_past_the_top_are_errors_not_panics() {
    let mut rig = Arena::new(16);
    let (memory, mut alloc) = rig.parts();
    let mut table = PageTable::<X86_64, _>::new(memory, &mut alloc).unwrap();
    let past_top = TableError::OutOfRange { kind: AddrKind::Virtual, start: TOP_PAGE, len: 0x2000 };
    assert_eq!(table.map_range(va(TOP_PAGE), pa(0x1000), 0x2000, RW, &mut alloc), Err(past_top));
    let flush = table.unmap_range(va(TOP_PAGE), 0x2000, Holes::Skip, &mut alloc, |_| {});
    assert_eq!(flush, Err(past_top));
    let huge_len = table.map_range(va(0x1000), pa(0x1000), u64::MAX - 0xfff, RW, &mut alloc);
    assert_eq!(
        huge_len,
        Err(TableError::OutOfRange {
            kind: AddrKind::Virtual,
            start: 0x1000,
            len: u64::MAX - 0xfff
        })
    );
    let phys_past_top = table.map_range(va(0x1000), pa(TOP_PAGE), 0x2000, RW, &mut alloc);
    assert_eq!(
        phys_past_top,
        Err(TableError::OutOfRange { kind: AddrKind::Physical, start: TOP_PAGE, len: 0x2000 })
    );
    assert_eq!(table.translate(va(u64::MAX)), Err(TableError::NotMapped { addr: va(u64::MAX) }));
    assert_eq!(alloc.frames_in_use(), 1, "only the root: nothing was built on the way");

    // The top page itself maps, translates to its last byte and unmaps.
    table.map_range(va(TOP_PAGE), pa(0x5000), 0x1000, RW, &mut alloc).unwrap().ignore();
    assert_eq!(table.translate(va(u64::MAX)).map(|hit| hit.phys), Ok(pa(0x5fff)));
    table.unmap_range(va(TOP_PAGE), 0x1000, Holes::Refuse, &mut alloc, |_| {}).unwrap().ignore();
    assert_eq!(alloc.frames_in_use(), 1);
}

#[test]
fn a_32_bit_range_past_4_gib_is_an_error() {
    let mut rig = Arena::new(16);
    let (memory, mut alloc) = rig.parts();
    let mut table = PageTable::<Legacy32, _>::new(memory, &mut alloc).unwrap();
    let top = 0xffff_f000;
    assert_eq!(
        table.map_range(va(top), pa(0x1000), 0x2000, RW, &mut alloc),
        Err(TableError::OutOfRange { kind: AddrKind::Virtual, start: top, len: 0x2000 })
    );
    assert_eq!(
        table.translate(va(u64::MAX)),
        Err(TableError::BeyondAddressSpace { addr: va(u64::MAX), bits: 32 })
    );
}

#[test]
fn a_root_at_the_top_of_physical_memory_reads_as_empty() {
    // An unaligned root whose entries would lie past 2^64: outside every memory, so every
    // entry reads as zero (as outside memory), and nothing panics.
    let mut rig = Arena::new(16);
    let (memory, _) = rig.parts();
    let table = PageTable::<X86_64, _>::from_root(pa(u64::MAX - 7), memory);
    assert_eq!(table.translate(va(u64::MAX)), Err(TableError::NotMapped { addr: va(u64::MAX) }));
    assert_eq!(table.translate(va(0)), Err(TableError::NotMapped { addr: va(0) }));
    let mut visits = Vec::new();
    table.visit(|visit| visits.push(visit));
    let root = Visit::Table { level: 4, frame: pa(u64::MAX - 7), virt: VirtAddr::ZERO };
    assert_eq!(visits, [root], "the root, and no entry in it");
}

#[test]
fn a_kernel_root_not_aligned_to_a_root_table_is_refused() {
    let mut rig = Arena::new(16);
    let (mut memory, mut alloc) = rig.parts();
    let layout = Layout::X86_64;
    let space = AddressSpace::<X86_64, 8>::new(
        layout,
        SpaceConfig::default(),
        Asid(1),
        Some(pa(u64::MAX - 7)),
        &mut memory,
        &mut alloc,
    );
    let unaligned =
        TableError::Unaligned { kind: AddrKind::Physical, value: u64::MAX - 7, align: 4096 };
    assert_eq!(space.err(), Some(SpaceError::Table(unaligned)));
    assert_eq!(alloc.frames_in_use(), 0, "refused before the root was allocated");
    // PAE's root table is four entries: 32-byte aligned is enough.
    let pae = AddressSpace::<Pae, 8>::new(
        Layout::X86_32_2G,
        SpaceConfig::default(),
        Asid(2),
        Some(pa(0x1020)),
        &mut memory,
        &mut alloc,
    );
    assert!(pae.is_ok(), "{:?}", pae.err());
}

//! Page and frame ranges, and checked address arithmetic at the top of the address space.

use paging::addr::{FrameRange, PageRange};
use paging::{Frame, Page, PhysAddr, Size2MiB, Size4KiB, VirtAddr};

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

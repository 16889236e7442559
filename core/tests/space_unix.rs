//! The Unix face of address spaces: mmap, munmap and mprotect on x86-64 tables.

use paging::frame::FrameAllocator;
use paging::space::{
    AddressSpace, Layout, MapFixed, MemoryType, PageState, Prot, Protection, Section, SpaceConfig,
    SpaceError,
};
use paging::{Access, ArenaMemory, PageFlags, Resolution, VirtAddr};
use paging_harness::fixtures::{self, Arena, regions, space, touch, va};
use paging_x86::X86_64;

const FRAMES: usize = 128;
const PAGE: u64 = 4096;

fn flags_at<const N: usize>(
    space: &AddressSpace<X86_64, N>,
    addr: VirtAddr,
    memory: &mut ArenaMemory<'_>,
) -> Option<PageFlags> {
    space.page_table(memory).translate(addr).ok().map(|t| t.flags)
}

#[test]
fn mmap_uses_a_free_aligned_hint_and_chooses_otherwise() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut space: AddressSpace<X86_64> =
        space(Layout::X86_64, SpaceConfig::default(), &mut memory, &mut alloc);

    let hint = va(0x4000_3000);
    let (base, flush) = space
        .mmap(Some(hint), 0x1800, Prot::READ_WRITE, MapFixed::No, &mut memory, &mut alloc)
        .unwrap();
    assert!(flush.is_empty());
    assert_eq!(base, hint, "page-granular: a page-aligned hint is used as is");
    let info = space.query(base).unwrap();
    assert_eq!(info.size, 0x2000, "the length is rounded up to pages");
    assert_eq!((info.state, info.protect), (PageState::Committed, Some(Protection::READ_WRITE)));
    assert_eq!(info.kind, Some(MemoryType::Private));

    // The hint is taken: the space chooses (lowest fit, page-granular).
    let (other, _) =
        space.mmap(Some(hint), PAGE, Prot::READ, MapFixed::No, &mut memory, &mut alloc).unwrap();
    assert_eq!(other, va(0x1_0000));
    let (next, _) =
        space.mmap(None, PAGE, Prot::READ, MapFixed::No, &mut memory, &mut alloc).unwrap();
    assert_eq!(next, va(0x1_1000), "placement is page-granular, not 64 KiB");

    // An unaligned hint is only a hint.
    let (chosen, _) = space
        .mmap(Some(va(0x5000_0123)), PAGE, Prot::READ, MapFixed::No, &mut memory, &mut alloc)
        .unwrap();
    assert_eq!(chosen, va(0x1_2000));

    // Committed memory: zero on first touch, a frame only then.
    let before = alloc.frames_in_use();
    assert_eq!(
        touch(&mut space, base + 8, Access::Write, &mut memory, &mut alloc),
        Resolution::Retry
    );
    assert!(alloc.frames_in_use() > before);
}

#[test]
fn fixed_no_replace_refuses_anything_in_the_way() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut space: AddressSpace<X86_64> =
        space(Layout::X86_64, SpaceConfig::default(), &mut memory, &mut alloc);
    let at = va(0x4000_0000);
    let (base, _) = space
        .mmap(Some(at), 0x3000, Prot::READ_WRITE, MapFixed::NoReplace, &mut memory, &mut alloc)
        .unwrap();
    assert_eq!(base, at);
    let before = regions(&space);
    assert_eq!(
        space.mmap(
            Some(at + 0x2000),
            0x2000,
            Prot::READ,
            MapFixed::NoReplace,
            &mut memory,
            &mut alloc
        ),
        Err(SpaceError::Overlaps { base: at })
    );
    assert_eq!(regions(&space), before);
    // Right after it is free.
    let (next, _) = space
        .mmap(Some(at + 0x3000), PAGE, Prot::READ, MapFixed::NoReplace, &mut memory, &mut alloc)
        .unwrap();
    assert_eq!(next, at + 0x3000);
}

#[test]
fn fixed_replace_unmaps_what_is_in_the_way() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut space: AddressSpace<X86_64> =
        space(Layout::X86_64, SpaceConfig::default(), &mut memory, &mut alloc);
    let at = va(0x4000_0000);
    let (_, flush) = space
        .mmap(Some(at), 0x4000, Prot::READ_WRITE, MapFixed::Replace, &mut memory, &mut alloc)
        .unwrap();
    assert!(flush.is_empty(), "nothing was in the way");
    for page in 0..4 {
        assert_eq!(
            touch(&mut space, at + page * PAGE, Access::Write, &mut memory, &mut alloc),
            Resolution::Retry
        );
    }
    let touched = alloc.frames_in_use();

    // Replace the middle two pages with a read-only mapping.
    let (base, flush) = space
        .mmap(Some(at + PAGE), 0x2000, Prot::READ, MapFixed::Replace, &mut memory, &mut alloc)
        .unwrap();
    assert_eq!(base, at + PAGE);
    assert_eq!(flush.pages(), [at + PAGE, at + 0x2000]);
    assert_eq!(alloc.frames_in_use(), touched - 2, "the replaced pages' frames went back");

    let regions: Vec<_> = regions(&space)
        .into_iter()
        .filter(|r| r.state != PageState::Free)
        .map(|r| (r.base, r.size, r.allocation_base, r.protect))
        .collect();
    assert_eq!(
        regions,
        [
            (at, PAGE, Some(at), Some(Protection::READ_WRITE)),
            (at + PAGE, 0x2000, Some(at + PAGE), Some(Protection::READ_ONLY)),
            (at + 0x3000, PAGE, Some(at + 0x3000), Some(Protection::READ_WRITE)),
        ]
    );
    // The new pages are fresh: not mapped until touched.
    assert_eq!(flags_at(&space, at + PAGE, &mut memory), None);
    // Read-write user pages, with the software bit that marks a frame the space owns.
    let rw = PageFlags::READABLE | PageFlags::WRITABLE | PageFlags::USER;
    let kept = Some(rw | PageFlags::SOFTWARE_0);
    assert_eq!(flags_at(&space, at, &mut memory), kept, "the head kept its page");
    assert_eq!(flags_at(&space, at + 0x3000, &mut memory), kept, "the tail kept its page");

    // Replacing a span of several mappings and free space.
    let (base, _) = space
        .mmap(
            Some(va(at.as_u64() - 0x2000)),
            0x8000,
            Prot::NONE,
            MapFixed::Replace,
            &mut memory,
            &mut alloc,
        )
        .unwrap();
    assert_eq!(base, va(at.as_u64() - 0x2000));
    let info = space.query(base).unwrap();
    assert_eq!((info.size, info.protect), (0x8000, Some(Protection::NO_ACCESS)));
    assert_eq!(space.committed_pages(), 8);
}

#[test]
fn munmap_splits_partly_covered_mappings_and_frees_frames() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut space: AddressSpace<X86_64> =
        space(Layout::X86_64, SpaceConfig::default(), &mut memory, &mut alloc);
    let baseline = alloc.frames_in_use();
    let (base, _) =
        space.mmap(None, 0x4000, Prot::READ_WRITE, MapFixed::No, &mut memory, &mut alloc).unwrap();
    for page in 0..4 {
        assert_eq!(
            touch(&mut space, base + page * PAGE, Access::Write, &mut memory, &mut alloc),
            Resolution::Retry
        );
    }
    let touched = alloc.frames_in_use();
    assert_eq!(touched, baseline + 4 + 3, "four pages and three tables");

    // The middle: the mapping splits in two.
    let flush = space.munmap(base + PAGE, 0x1001, &mut memory, &mut alloc).unwrap();
    assert_eq!(flush.pages(), [base + PAGE, base + 0x2000], "the length rounds up to pages");
    assert_eq!(alloc.frames_in_use(), touched - 2);
    assert_eq!(space.committed_pages(), 2);
    let head = space.query(base).unwrap();
    assert_eq!((head.allocation_base, head.size), (Some(base), PAGE));
    let hole = space.query(base + PAGE).unwrap();
    assert_eq!((hole.state, hole.size), (PageState::Free, 0x2000));
    let tail = space.query(base + 0x3000).unwrap();
    assert_eq!((tail.allocation_base, tail.size), (Some(base + 0x3000), PAGE));
    assert_eq!(
        touch(&mut space, base + PAGE, Access::Write, &mut memory, &mut alloc),
        Resolution::Pass
    );

    // Unmapped ranges are not an error; a range over both pieces and the hole takes them.
    let empty = space.munmap(va(0x7000_0000), 0x10_0000, &mut memory, &mut alloc).unwrap();
    assert!(empty.is_empty());
    space.munmap(base, 0x4000, &mut memory, &mut alloc).unwrap().ignore();
    assert_eq!(alloc.frames_in_use(), baseline, "every frame and table went back");
    assert_eq!(space.committed_pages(), 0);
    assert_eq!(space.query(base).unwrap().state, PageState::Free);
}

#[test]
fn munmap_and_mprotect_check_their_arguments() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut space: AddressSpace<X86_64> =
        space(Layout::X86_64, SpaceConfig::default(), &mut memory, &mut alloc);
    let (base, _) =
        space.mmap(None, 0x2000, Prot::READ_WRITE, MapFixed::No, &mut memory, &mut alloc).unwrap();
    let before = regions(&space);
    let m = &mut memory;
    let a = &mut alloc;
    assert_eq!(space.mmap(None, 0, Prot::READ, MapFixed::No, m, a), Err(SpaceError::ZeroSize));
    assert_eq!(space.munmap(base, 0, m, a), Err(SpaceError::ZeroSize));
    assert_eq!(space.mprotect(base, 0, Prot::READ, m, a), Err(SpaceError::ZeroSize));
    let odd = base + 0x10;
    let unaligned = SpaceError::Unaligned { addr: odd, align: PAGE };
    assert_eq!(space.munmap(odd, PAGE, m, a), Err(unaligned));
    assert_eq!(space.mprotect(odd, PAGE, Prot::READ, m, a), Err(unaligned));
    assert_eq!(
        space.mmap(Some(odd), PAGE, Prot::READ, MapFixed::Replace, m, a),
        Err(SpaceError::Unaligned { addr: odd, align: PAGE })
    );
    assert_eq!(
        space.mmap(Some(odd), PAGE, Prot::READ, MapFixed::NoReplace, m, a),
        Err(SpaceError::Unaligned { addr: odd, align: PAGE })
    );
    assert_eq!(
        space.mmap(Some(va(0x1000)), PAGE, Prot::READ, MapFixed::Replace, m, a),
        Err(SpaceError::OutsideUserSpace { addr: va(0x1000), size: PAGE }),
        "the null region is never handed out"
    );
    assert_eq!(
        space.munmap(base, u64::MAX, m, a),
        Err(SpaceError::OutsideUserSpace { addr: base, size: u64::MAX })
    );
    assert_eq!(regions(&space), before);
}

#[test]
fn mprotect_spans_mappings_and_refuses_holes_whole() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut space: AddressSpace<X86_64> =
        space(Layout::X86_64, SpaceConfig::default(), &mut memory, &mut alloc);
    let at = va(0x4000_0000);
    let (m, a) = (&mut memory, &mut alloc);
    space.mmap(Some(at), 0x2000, Prot::READ_WRITE, MapFixed::NoReplace, m, a).unwrap().1.ignore();
    let second = space.mmap(Some(at + 0x2000), 0x2000, Prot::READ_WRITE, MapFixed::NoReplace, m, a);
    second.unwrap().1.ignore();
    for page in 0..4 {
        assert_eq!(touch(&mut space, at + page * PAGE, Access::Write, m, a), Resolution::Retry);
    }
    let rw = flags_at(&space, at, m).unwrap();
    assert!(rw.contains(PageFlags::WRITABLE));

    let flush = space.mprotect(at + PAGE, 0x2000, Prot::READ, m, a).unwrap();
    assert_eq!(flush.pages(), [at + PAGE, at + 0x2000]);
    let protects: Vec<_> = regions(&space)
        .into_iter()
        .filter(|r| r.state != PageState::Free)
        .map(|r| (r.base, r.size, r.allocation_base, r.protect))
        .collect();
    assert_eq!(
        protects,
        [
            (at, PAGE, Some(at), Some(Protection::READ_WRITE)),
            (at + PAGE, PAGE, Some(at), Some(Protection::READ_ONLY)),
            (at + 0x2000, PAGE, Some(at + 0x2000), Some(Protection::READ_ONLY)),
            (at + 0x3000, PAGE, Some(at + 0x2000), Some(Protection::READ_WRITE)),
        ]
    );
    assert!(!flags_at(&space, at + 0x2000, m).unwrap().contains(PageFlags::WRITABLE));
    assert_eq!(flags_at(&space, at + 0x3000, m), Some(rw));

    // PROT_NONE hides the pages; they come back with their contents' frames.
    space.mprotect(at, 0x4000, Prot::NONE, m, a).unwrap().ignore();
    assert_eq!(flags_at(&space, at, m), None);
    space.mprotect(at, 0x4000, Prot::READ_EXEC, m, a).unwrap().ignore();
    let rx = flags_at(&space, at + 0x3000, m).unwrap();
    assert!(rx.contains(PageFlags::EXECUTABLE) && !rx.contains(PageFlags::WRITABLE));

    // A hole after the two mappings: ENOMEM, and nothing changes (the first mapping's
    // pages, which could have been changed first, included).
    let before = regions(&space);
    let frames = alloc.frames_in_use();
    let (m, a) = (&mut memory, &mut alloc);
    assert_eq!(
        space.mprotect(at, 0x5000, Prot::READ_WRITE, m, a),
        Err(SpaceError::NotCommitted { addr: at + 0x4000 })
    );
    // A hole before: ENOMEM too.
    assert_eq!(
        space.mprotect(va(at.as_u64() - PAGE), 0x2000, Prot::READ_WRITE, m, a),
        Err(SpaceError::NotCommitted { addr: va(at.as_u64() - PAGE) })
    );
    assert_eq!(regions(&space), before);
    assert_eq!(flags_at(&space, at, m), Some(rx));
    assert_eq!(alloc.frames_in_use(), frames);

    // Reserved (uncommitted) pages are ENOMEM as well.
    let (m, a) = (&mut memory, &mut alloc);
    let reserved = space.reserve(None, 0x2000, Protection::READ_WRITE).unwrap();
    assert_eq!(
        space.mprotect(reserved, 0x2000, Prot::READ, m, a),
        Err(SpaceError::NotCommitted { addr: reserved })
    );
    // munmap takes reserved private memory too.
    space.munmap(reserved, 0x2000, m, a).unwrap().ignore();
    assert_eq!(space.query(reserved).unwrap().state, PageState::Free);
}

#[test]
fn write_and_execute_together_are_refused_unless_allowed() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut space: AddressSpace<X86_64> =
        space(Layout::X86_64, SpaceConfig::default(), &mut memory, &mut alloc);
    let (m, a) = (&mut memory, &mut alloc);
    assert_eq!(
        space.mmap(None, PAGE, Prot::READ_WRITE_EXEC, MapFixed::No, m, a),
        Err(SpaceError::WritableExecutable)
    );
    let (base, _) = space.mmap(None, PAGE, Prot::READ_WRITE, MapFixed::No, m, a).unwrap();
    let before = regions(&space);
    assert_eq!(
        space.mprotect(base, PAGE, Prot::READ_WRITE_EXEC, m, a),
        Err(SpaceError::WritableExecutable)
    );
    assert_eq!(regions(&space), before);

    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let config = SpaceConfig { allow_write_execute: true, ..SpaceConfig::default() };
    let (m, a) = (&mut memory, &mut alloc);
    let mut jit: AddressSpace<X86_64> = fixtures::space(Layout::X86_64, config, m, a);
    let (base, _) = jit.mmap(None, PAGE, Prot::READ_WRITE_EXEC, MapFixed::No, m, a).unwrap();
    assert_eq!(jit.query(base).unwrap().protect, Some(Protection::EXECUTE_READ_WRITE));
}

#[test]
fn views_are_not_unmapped_or_replaced() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut space: AddressSpace<X86_64> =
        space(Layout::X86_64, SpaceConfig::default(), &mut memory, &mut alloc);
    let (m, a) = (&mut memory, &mut alloc);
    let section = Section::create(2, m, a).unwrap();
    let view = space.map_view(&section, None, 0, 2, Protection::READ_WRITE, m).unwrap();
    let before = regions(&space);
    assert_eq!(
        space.munmap(view + PAGE, PAGE, m, a),
        Err(SpaceError::WrongType { expected: MemoryType::Private, found: MemoryType::Mapped })
    );
    assert_eq!(
        space.mmap(Some(view), PAGE, Prot::READ, MapFixed::Replace, m, a),
        Err(SpaceError::Overlaps { base: view })
    );
    assert_eq!(regions(&space), before);
    // mprotect works on views, within the view's own protection.
    space.mprotect(view, 0x2000, Prot::READ, m, a).unwrap().ignore();
    assert_eq!(space.query(view).unwrap().protect, Some(Protection::READ_ONLY));
    space.unmap_view(view, m, a).unwrap().ignore();
}

#[test]
#[cfg(not(feature = "alloc"))] // with `alloc` the books grow without bound
fn a_full_region_table_refuses_before_changing_anything() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    // Three reservations and three runs at most.
    let mut space: AddressSpace<X86_64, 3> =
        space(Layout::X86_64, SpaceConfig::default(), &mut memory, &mut alloc);
    let (m, a) = (&mut memory, &mut alloc);
    let (base, _) = space.mmap(None, 0x4000, Prot::READ_WRITE, MapFixed::No, m, a).unwrap();
    for page in 0..4 {
        assert_eq!(touch(&mut space, base + page * PAGE, Access::Write, m, a), Resolution::Retry);
    }
    // One slot left.
    let (extra, _) = space.mmap(None, PAGE, Prot::READ, MapFixed::No, m, a).unwrap();
    let before = regions(&space);
    let frames = a.frames_in_use();

    // A hole in the middle needs two splits.
    assert_eq!(
        space.munmap(base + PAGE, PAGE, m, a),
        Err(SpaceError::CapacityExhausted { capacity: 3 })
    );
    // So does replacing the middle.
    assert_eq!(
        space.mmap(Some(base + PAGE), PAGE, Prot::READ, MapFixed::Replace, m, a),
        Err(SpaceError::CapacityExhausted { capacity: 3 })
    );
    // mprotect wants room for two run splits.
    assert_eq!(
        space.mprotect(base, PAGE, Prot::READ, m, a),
        Err(SpaceError::CapacityExhausted { capacity: 3 })
    );
    assert_eq!(regions(&space), before);
    assert_eq!(a.frames_in_use(), frames);

    // With the extra mapping gone, the middle can go (two splits, one removal).
    space.munmap(extra, PAGE, m, a).unwrap().ignore();
    space.munmap(base + PAGE, PAGE, m, a).unwrap().ignore();
    assert_eq!(space.query(base + 0x2000).unwrap().allocation_base, Some(base + 0x2000));
    assert_eq!(a.frames_in_use(), frames - 1);
    // Replacing whole mappings reuses their slots.
    let (again, _) = space.mmap(Some(base), 0x4000, Prot::READ, MapFixed::Replace, m, a).unwrap();
    assert_eq!(again, base);
    let info = space.query(again).unwrap();
    assert_eq!((info.size, info.protect), (0x4000, Some(Protection::READ_ONLY)));
}

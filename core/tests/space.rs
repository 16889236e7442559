//! Address spaces with the Windows memory API's semantics: exact outcomes, and every
//! refusal as its own typed error that changes nothing.

use paging::frame::FrameAllocator;
use paging::space::{
    AddressSpace, ImagePart, Layout, MemoryType, PageState, Protection, RegionInfo, Section,
    SpaceConfig, SpaceError,
};
use paging::{Access, Asid, Exception, FrameError, PhysAddr, Resolution, TableError, VirtAddr};
use paging_harness::fixtures::{Arena, regions, space, touch, va};
use paging_x86::{Legacy32, X86_64};

const FRAMES: usize = 256;

#[test]
fn reserve_rounds_to_the_granularity_and_covers_every_page_touched() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut s: AddressSpace<X86_64> =
        space(Layout::X86_64, SpaceConfig::default(), &mut memory, &mut alloc);
    let in_use = alloc.frames_in_use();
    let base = s.reserve(Some(va(0x1234_5678)), 0x1000, Protection::READ_WRITE).unwrap();
    assert_eq!(base, va(0x1234_0000));
    let info = s.query(va(0x1234_0abc)).unwrap();
    assert_eq!(
        info,
        RegionInfo {
            base: va(0x1234_0000),
            allocation_base: Some(base),
            allocation_protect: Some(Protection::READ_WRITE),
            size: 0x7000,
            state: PageState::Reserved,
            protect: None,
            kind: Some(MemoryType::Private),
        }
    );
    assert_eq!(alloc.frames_in_use(), in_use, "reserving takes no frame");
    // The free run after it reaches to the end of user space; before it, to the base.
    let after = s.query(va(0x1234_7000)).unwrap();
    assert_eq!((after.state, after.end()), (PageState::Free, va(0x7FFF_FFFF_0000)));
    let before = s.query(va(0x1_0000)).unwrap();
    assert_eq!(
        (before.state, before.end(), before.protect),
        (PageState::Free, base, Some(Protection::NO_ACCESS))
    );
}

#[test]
fn commit_decommit_protect_and_release_follow_windows() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut s: AddressSpace<X86_64> =
        space(Layout::X86_64, SpaceConfig::default(), &mut memory, &mut alloc);
    let base = s.reserve(None, 0x10_0000, Protection::READ_WRITE).unwrap();
    assert_eq!(base, va(0x1_0000), "bottom-up without ASLR, above the null region");
    let in_use = alloc.frames_in_use();
    assert_eq!(s.commit(Some(base + 0x2100), 0x2000, Protection::READ_ONLY), Ok(base + 0x2000));
    assert_eq!(alloc.frames_in_use(), in_use, "committing takes no frame");
    let info = s.query(base + 0x2000).unwrap();
    // [base + 0x2100, base + 0x4100) touches three pages.
    assert_eq!(
        (info.size, info.state, info.protect),
        (0x3000, PageState::Committed, Some(Protection::READ_ONLY))
    );
    // Committing committed pages again succeeds and keeps their protection.
    s.commit(Some(base), 0x4000, Protection::READ_WRITE).unwrap();
    assert_eq!(s.query(base + 0x2000).unwrap().protect, Some(Protection::READ_ONLY));
    assert_eq!(s.query(base).unwrap().protect, Some(Protection::READ_WRITE));
    assert_eq!(s.committed_pages(), 5);

    // The first touch takes a zeroed frame.
    assert_eq!(touch(&mut s, base + 8, Access::Write, &mut memory, &mut alloc), Resolution::Retry);
    assert!(alloc.frames_in_use() > in_use);
    // Protect returns the old protection of the first page.
    let (old, flush) =
        s.protect(base, 0x1000, Protection::EXECUTE_READ, &mut memory, &mut alloc).unwrap();
    flush.ignore();
    assert_eq!(old, Protection::READ_WRITE);
    let hit = s.page_table(&mut memory).translate(base).unwrap();
    assert!(
        hit.flags.contains(paging::PageFlags::EXECUTABLE)
            && !hit.flags.contains(paging::PageFlags::WRITABLE)
    );
    // Decommitting reserved pages too is fine; the frames go back.
    s.decommit(base, 0x10_0000, &mut memory, &mut alloc).unwrap().ignore();
    assert_eq!(alloc.frames_in_use(), in_use);
    assert_eq!(s.query(base).unwrap().state, PageState::Reserved);
    assert_eq!(s.query(base).unwrap().size, 0x10_0000, "one reserved run again");
    s.release(base, &mut memory, &mut alloc).unwrap().ignore();
    assert_eq!(s.query(base).unwrap().state, PageState::Free);
    assert_eq!(alloc.frames_in_use(), in_use);
}

#[test]
fn every_refusal_is_its_own_error_and_changes_nothing() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut s: AddressSpace<X86_64, 8> =
        space(Layout::X86_64, SpaceConfig::default(), &mut memory, &mut alloc);
    let r = s.reserve(Some(va(0x100_0000)), 0x4_0000, Protection::READ_WRITE).unwrap();
    s.commit(Some(r), 0x1000, Protection::READ_WRITE).unwrap();
    let other = s.reserve(Some(va(0x200_0000)), 0x1000, Protection::READ_ONLY).unwrap();
    let before = regions(&s);
    let frames = alloc.frames_in_use();
    let rw = Protection::READ_WRITE;
    let top = Layout::X86_64.highest;

    let results: Vec<(Result<(), SpaceError>, SpaceError)> = vec![
        (s.reserve(None, 0, rw).map(drop), SpaceError::ZeroSize),
        (s.commit(Some(r), 0, rw).map(drop), SpaceError::ZeroSize),
        (
            s.reserve(Some(va(0)), 0x1000, rw).map(drop),
            SpaceError::OutsideUserSpace { addr: va(0), size: 0x1000 },
        ),
        (
            s.reserve(Some(top), 0x2000, rw).map(drop),
            SpaceError::OutsideUserSpace { addr: top, size: 0x2000 },
        ),
        (
            s.reserve(Some(va(0x300_0000)), u64::MAX, rw).map(drop),
            SpaceError::OutsideUserSpace { addr: va(0x300_0000), size: u64::MAX },
        ),
        (s.reserve(Some(r + 0x1_0000), 0x1000, rw).map(drop), SpaceError::Overlaps { base: r }),
        (
            s.commit(Some(va(0x500_0000)), 0x1000, rw).map(drop),
            SpaceError::NotReserved { addr: va(0x500_0000) },
        ),
        (
            s.commit(Some(r + 0x3_f000), 0x2000, rw).map(drop),
            SpaceError::CrossesReservation { addr: r + 0x3_f000, size: 0x2000 },
        ),
        (
            s.commit(Some(r), 0x1000, Protection::WRITE_COPY).map(drop),
            SpaceError::WriteCopyOnPrivate,
        ),
        (
            s.commit(Some(r), 0x1000, Protection::EXECUTE_READ_WRITE).map(drop),
            SpaceError::WritableExecutable,
        ),
        (
            s.protect(r, 0x2000, Protection::READ_ONLY, &mut memory, &mut alloc).map(drop),
            SpaceError::NotCommitted { addr: r + 0x1000 },
        ),
        (
            s.release(r + 0x1000, &mut memory, &mut alloc).map(drop),
            SpaceError::NotAllocationBase { addr: r + 0x1000, base: r },
        ),
        (
            s.release(va(0x500_0000), &mut memory, &mut alloc).map(drop),
            SpaceError::NotReserved { addr: va(0x500_0000) },
        ),
        (
            s.decommit(other, 0x1001, &mut memory, &mut alloc).map(drop),
            SpaceError::CrossesReservation { addr: other, size: 0x1001 },
        ),
        (s.query(top + 1).map(drop), SpaceError::OutsideUserSpace { addr: top + 1, size: 1 }),
    ];
    for (got, want) in results {
        assert_eq!(got, Err(want));
        assert!(!want.to_string().is_empty());
    }
    assert_eq!(Protection::from_windows(0x06), Err(SpaceError::InvalidProtection { bits: 0x06 }));
    assert_eq!(Protection::from_windows(0x101), Err(SpaceError::InvalidProtection { bits: 0x101 }));
    assert_eq!(regions(&s), before);
    assert_eq!(alloc.frames_in_use(), frames);

    // The fixed region table: 8 runs in all; a full table refuses, changing nothing. (With
    // the `alloc` feature the books grow without bound: no table fills.)
    #[cfg(not(feature = "alloc"))]
    {
        let mut placed = 0;
        let full = loop {
            match s.reserve(None, 0x1000, rw) {
                Ok(_) => placed += 1,
                Err(error) => break error,
            }
        };
        assert_eq!(full, SpaceError::CapacityExhausted { capacity: 8 });
        assert_eq!(
            full.to_string(),
            "the space's region table is full: AddressSpace<_, N> with N = 8 holds at most 8 \
             reservations and runs; raise N or enable the `alloc` feature"
        );
        assert!(placed > 0);
    }
}

#[test]
fn write_execute_is_refused_unless_the_space_opts_in() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut strict: AddressSpace<X86_64> =
        space(Layout::X86_64, SpaceConfig::default(), &mut memory, &mut alloc);
    assert_eq!(
        strict.commit(None, 0x1000, Protection::EXECUTE_READ_WRITE),
        Err(SpaceError::WritableExecutable)
    );
    let base = strict.commit(None, 0x1000, Protection::READ_WRITE).unwrap();
    let err = strict.protect(base, 0x1000, Protection::EXECUTE_READ_WRITE, &mut memory, &mut alloc);
    assert_eq!(err.unwrap_err(), SpaceError::WritableExecutable);
    let config = SpaceConfig { allow_write_execute: true, ..SpaceConfig::default() };
    let mut jit: AddressSpace<X86_64> = space(Layout::X86_64, config, &mut memory, &mut alloc);
    assert_eq!(jit.commit(None, 0x1000, Protection::EXECUTE_READ_WRITE), Ok(va(0x1_0000)));
}

#[test]
fn aslr_places_from_the_seed() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut place = |seed: Option<u64>| {
        let config = SpaceConfig { aslr_seed: seed, ..SpaceConfig::default() };
        let mut s: AddressSpace<X86_64> = space(Layout::X86_64, config, &mut memory, &mut alloc);
        let bases: Vec<VirtAddr> =
            (0..3).map(|_| s.reserve(None, 0x2_0000, Protection::READ_ONLY).unwrap()).collect();
        for &b in &bases {
            assert!(
                b.is_aligned(0x1_0000) && b >= va(0x1_0000) && b + 0x2_0000 <= va(0x7FFF_FFFF_0000)
            );
        }
        bases
    };
    assert_eq!(place(None), [va(0x1_0000), va(0x3_0000), va(0x5_0000)]);
    assert_eq!(place(Some(7)), place(Some(7)), "the same seed, the same placement");
    assert_ne!(place(Some(7)), place(Some(8)));
}

#[test]
fn thirty_two_bit_layouts_hand_out_what_they_should() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    for (layout, top) in [(Layout::X86_32_2G, 0x7FFE_FFFF_u64), (Layout::X86_32_3G, 0xBFFE_FFFF)] {
        let mut s: AddressSpace<Legacy32> =
            space(layout, SpaceConfig::default(), &mut memory, &mut alloc);
        let near_top = VirtAddr::new(top + 1 - 0x1_0000);
        assert_eq!(s.reserve(Some(near_top), 0x1_0000, Protection::READ_WRITE), Ok(near_top));
        let err = s.reserve(Some(near_top), 0x1_0001, Protection::READ_WRITE);
        assert_eq!(err, Err(SpaceError::OutsideUserSpace { addr: near_top, size: 0x1_0001 }));
        let above = va(top + 1);
        assert_eq!(
            s.query(above),
            Err(SpaceError::OutsideUserSpace { addr: above, size: 1 }),
            "above the user half"
        );
    }
    // The 64-bit layout cannot be used with a 32-bit format.
    let err = AddressSpace::<Legacy32>::new(
        Layout::X86_64,
        SpaceConfig::default(),
        Asid(1),
        None,
        &mut memory,
        &mut alloc,
    );
    let (lowest, highest) = (Layout::X86_64.lowest, Layout::X86_64.highest);
    let user_half = SpaceError::OutsideUserSpace { addr: lowest, size: highest - lowest + 1 };
    assert_eq!(err.err(), Some(user_half));
}

#[test]
fn sections_views_and_images() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut s: AddressSpace<X86_64> =
        space(Layout::X86_64, SpaceConfig::default(), &mut memory, &mut alloc);
    let section = Section::create(4, &mut memory, &mut alloc).unwrap();
    let other = Section::create(1, &mut memory, &mut alloc).unwrap();
    let ro = s.map_view(&section, None, 1, 2, Protection::READ_ONLY, &mut memory).unwrap();
    assert_eq!(section.views(&memory), 1);
    // A view's address must be on the allocation granularity.
    let err = s.map_view(&section, Some(va(0x2_3000)), 0, 2, Protection::READ_WRITE, &mut memory);
    assert_eq!(err, Err(SpaceError::Unaligned { addr: va(0x2_3000), align: 0x1_0000 }));
    let err = s.commit(None, 0x1000, Protection::NO_ACCESS.guard());
    assert_eq!(err, Err(SpaceError::InvalidProtection { bits: 0x101 }));
    let info = s.query(ro).unwrap();
    assert_eq!(
        (info.size, info.state, info.kind),
        (0x2000, PageState::Committed, Some(MemoryType::Mapped))
    );
    // A read-only view cannot be made writable; views are not private memory.
    let err = s.protect(ro, 0x1000, Protection::READ_WRITE, &mut memory, &mut alloc);
    assert_eq!(err.unwrap_err(), SpaceError::ReadOnlyView);
    assert_eq!(
        s.release(ro, &mut memory, &mut alloc).unwrap_err(),
        SpaceError::WrongType { expected: MemoryType::Private, found: MemoryType::Mapped }
    );
    assert_eq!(
        s.map_view(&section, None, 3, 2, Protection::READ_ONLY, &mut memory),
        Err(SpaceError::OutsideSection { offset: 3, pages: 2 })
    );
    assert_eq!(
        s.unmap_view(va(0x7000_0000), &mut memory, &mut alloc).unwrap_err(),
        SpaceError::NotReserved { addr: va(0x7000_0000) }
    );
    // The first touch maps the section's own frame, the one at the view's offset.
    assert_eq!(touch(&mut s, ro, Access::Read, &mut memory, &mut alloc), Resolution::Retry);
    let frame = s.page_table(&mut memory).translate(ro).unwrap().frame;
    assert_eq!(Some(frame), section.frame(&memory, 1));
    assert_eq!(
        touch(&mut s, ro, Access::Write, &mut memory, &mut alloc),
        Resolution::Pass,
        "read-only view"
    );

    // A section still mapped cannot be closed.
    let (section, err) = section.close(&memory, &mut alloc).unwrap_err();
    assert_eq!(err, SpaceError::SectionInUse { views: 1 });
    s.unmap_view(ro, &mut memory, &mut alloc).unwrap().ignore();

    // An image: text execute-read, data write-copy, the rest read-only.
    let parts = [
        ImagePart { offset: 1, pages: 1, protect: Protection::EXECUTE_READ },
        ImagePart { offset: 2, pages: 2, protect: Protection::WRITE_COPY },
    ];
    let image = s.map_image(&section, None, &parts, &mut memory).unwrap();
    let kinds: Vec<_> =
        (0..4).map(|i| s.query(image + i * 0x1000).unwrap().protect.unwrap()).collect();
    assert_eq!(
        kinds,
        [
            Protection::READ_ONLY,
            Protection::EXECUTE_READ,
            Protection::WRITE_COPY,
            Protection::WRITE_COPY
        ]
    );
    assert_eq!(s.query(image).unwrap().kind, Some(MemoryType::Image));
    // A write to the data makes a private copy; the page reads write-copy no more.
    let before = alloc.frames_in_use();
    assert_eq!(
        touch(&mut s, image + 0x2000, Access::Write, &mut memory, &mut alloc),
        Resolution::Retry
    );
    assert_eq!(s.query(image + 0x2000).unwrap().protect, Some(Protection::READ_WRITE));
    assert_eq!(s.query(image + 0x3000).unwrap().protect, Some(Protection::WRITE_COPY));
    assert!(alloc.frames_in_use() > before);
    s.unmap_view(image, &mut memory, &mut alloc).unwrap().ignore();
    section.close(&memory, &mut alloc).unwrap();
    other.close(&memory, &mut alloc).unwrap();
    assert_eq!(Section::create(0, &mut memory, &mut alloc).unwrap_err(), SpaceError::ZeroSize);
    // A header and one frame of prototype entries per 512 pages; the pages come later.
    let huge = Section::create(1 << 40, &mut memory, &mut alloc).unwrap_err();
    let needed = (1 << 31) + 1;
    let out_of_frames = TableError::OutOfFrames { needed, got: 0, source: FrameError::Exhausted };
    assert_eq!(huge, SpaceError::Table(out_of_frames));
}

#[test]
fn no_access_and_guard_pages_keep_their_contents() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut s: AddressSpace<X86_64> =
        space(Layout::X86_64, SpaceConfig::default(), &mut memory, &mut alloc);
    let base = s.commit(None, 0x1000, Protection::READ_WRITE).unwrap();
    assert_eq!(touch(&mut s, base, Access::Write, &mut memory, &mut alloc), Resolution::Retry);
    let frame = s.page_table(&mut memory).translate(base).unwrap().frame;
    let frames = alloc.frames_in_use();
    s.protect(base, 0x1000, Protection::NO_ACCESS, &mut memory, &mut alloc).unwrap().1.ignore();
    assert_eq!(
        s.page_table(&mut memory).translate(base),
        Err(TableError::NotMapped { addr: base }),
        "not present"
    );
    assert_eq!(alloc.frames_in_use(), frames, "the frame is kept");
    assert_eq!(touch(&mut s, base, Access::Read, &mut memory, &mut alloc), Resolution::Pass);
    s.protect(base, 0x1000, Protection::READ_ONLY.guard(), &mut memory, &mut alloc)
        .unwrap()
        .1
        .ignore();
    let fired = touch(&mut s, base + 4, Access::Read, &mut memory, &mut alloc);
    assert_eq!(
        fired,
        Resolution::Notify(Exception::GuardPage { addr: base + 4, access: Access::Read })
    );
    assert_eq!(touch(&mut s, base + 4, Access::Read, &mut memory, &mut alloc), Resolution::Retry);
    assert_eq!(
        s.page_table(&mut memory).translate(base).unwrap().frame,
        frame,
        "the same frame back"
    );
    s.release(base, &mut memory, &mut alloc).unwrap().ignore();
    assert!(alloc.frames_in_use() < frames);
}

#[test]
fn the_kernel_half_is_shared_and_supervisor_only() {
    use paging::{Frame, Page, PageFlags, PageTable, Size4KiB};
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut kernel = PageTable::<X86_64, _>::new(&mut memory, &mut alloc).unwrap();
    let kpage = Page::<Size4KiB>::from_start(va(0xffff_8000_0000_0000)).unwrap();
    let kframe = Frame::from_start(PhysAddr::new(0x10_0000)).unwrap();
    kernel
        .map(
            kpage,
            kframe,
            PageFlags::READABLE | PageFlags::WRITABLE | PageFlags::GLOBAL,
            &mut alloc,
        )
        .unwrap()
        .ignore();
    let kernel_root = kernel.root();
    let a: AddressSpace<X86_64> = AddressSpace::new(
        Layout::X86_64,
        SpaceConfig::default(),
        Asid(1),
        Some(kernel_root),
        &mut memory,
        &mut alloc,
    )
    .unwrap();
    let b: AddressSpace<X86_64> = AddressSpace::new(
        Layout::X86_64,
        SpaceConfig::default(),
        Asid(2),
        Some(kernel_root),
        &mut memory,
        &mut alloc,
    )
    .unwrap();
    for s in [&a, &b] {
        let hit = s.page_table(&mut memory).translate(kpage.start()).unwrap();
        assert_eq!(hit.frame, kframe.start());
        assert!(!hit.flags.contains(PageFlags::USER), "unreachable from user mode");
    }
    let in_use = alloc.frames_in_use();
    a.destroy(&mut memory, &mut alloc);
    assert_eq!(alloc.frames_in_use(), in_use - 1, "only a's root went; the kernel's tables stay");
    let mut kernel = PageTable::<X86_64, _>::from_root(kernel_root, &mut memory);
    assert_eq!(kernel.translate(kpage.start()).map(|hit| hit.frame), Ok(kframe.start()));
    let _ = &mut kernel;
    b.destroy(&mut memory, &mut alloc);
}

//! Exact outcomes of the engine on x86-64 4-level tables: errors, huge pages, splitting,
//! reclaiming, flushes, and all-or-nothing failure.

use paging::frame::{BitmapAllocator, FrameAllocator, MemoryRegion};
use paging::table::{Holes, Lookup, Unmapped, Visit};
use paging::{
    AddrKind, ArenaMemory, Entry, EntrySize, FrameBuf, FrameError, InvalidEntry, MappedPage,
    Occupant, PageFlags, PageTable, PhysAddr, Size1GiB, Size2MiB, Size4KiB, Size4MiB, TableError,
    TableMemory,
};
use paging_harness::fixtures::{Arena, frame, pa, page, va};
use paging_x86::{Legacy32, X86_64};

const RW: PageFlags = PageFlags::READABLE.union(PageFlags::WRITABLE);
const FRAMES: usize = 64;

#[test]
fn map_translate_unmap_one_page_and_reclaim() {
    let mut rig = Arena::new(FRAMES);
    let (memory, mut alloc) = rig.limited_parts();
    let mut table = PageTable::<X86_64, _>::new(memory, &mut alloc).unwrap();
    let flush = table
        .map(page::<Size4KiB>(0x7fff_f000), frame(0x5000), RW | PageFlags::USER, &mut alloc)
        .unwrap();
    assert!(flush.is_empty(), "a new mapping replaces a non-present entry: nothing to flush");
    assert_eq!(alloc.frames_in_use(), 4, "root, PDPT, PD, PT");

    let hit = table.translate(va(0x7fff_f123)).unwrap();
    assert_eq!((hit.phys, hit.size, hit.level), (pa(0x5123), 4096, 1));
    assert_eq!(hit.flags, RW | PageFlags::USER);

    let (frame, flags, flush) = table.unmap(page::<Size4KiB>(0x7fff_f000), &mut alloc).unwrap();
    assert_eq!((frame.start(), flags), (pa(0x5000), RW | PageFlags::USER));
    assert_eq!(flush.pages(), [va(0x7fff_f000)]);
    assert_eq!(alloc.frames_in_use(), 1, "empty tables went back; the root stays");
    assert_eq!(
        table.translate(va(0x7fff_f000)),
        Err(TableError::NotMapped { addr: va(0x7fff_f000) })
    );
}

#[test]
fn keeping_empty_tables() {
    let mut rig = Arena::new(FRAMES);
    let (memory, mut alloc) = rig.limited_parts();
    let mut table = PageTable::<X86_64, _>::new(memory, &mut alloc).unwrap();
    table.keep_empty_tables(true);
    table.map(page::<Size4KiB>(0x1000), frame(0x1000), RW, &mut alloc).unwrap().ignore();
    table.unmap(page::<Size4KiB>(0x1000), &mut alloc).unwrap().2.ignore();
    assert_eq!((alloc.frames_in_use(), table.table_count()), (4, 4));
    table.map_range(va(0x2000), pa(0x2000), 0x2000, RW, &mut alloc).unwrap().ignore();
    table.unmap_range(va(0x2000), 0x2000, Holes::Refuse, &mut alloc, |_| {}).unwrap().ignore();
    assert_eq!(alloc.frames_in_use(), 4);
}

#[test]
fn a_failed_small_map_never_touches_the_huge_page_in_the_way() {
    // The x86_64 crate's map_to adds flags to an existing 2 MiB entry before it fails.
    let mut rig = Arena::new(FRAMES);
    let (memory, mut alloc) = rig.limited_parts();
    let mut table = PageTable::<X86_64, _>::new(memory, &mut alloc).unwrap();
    table
        .map(page::<Size2MiB>(0x20_0000), frame(0x4000_0000), PageFlags::READABLE, &mut alloc)
        .unwrap()
        .ignore();
    let before = table.memory().frames().to_vec();
    let err = table
        .map(page::<Size4KiB>(0x20_1000), frame(0x1000), RW | PageFlags::USER, &mut alloc)
        .unwrap_err();
    assert_eq!(
        err,
        TableError::HugePageInTheWay { addr: va(0x20_0000), level: 2, size: 0x20_0000 }
    );
    assert!(table.memory().frames() == &before[..], "memory changed");
    assert_eq!(table.translate(va(0x20_1000)).unwrap().flags, PageFlags::READABLE);
}

#[test]
fn already_mapped_names_the_occupant() {
    let mut rig = Arena::new(FRAMES);
    let (memory, mut alloc) = rig.limited_parts();
    let mut table = PageTable::<X86_64, _>::new(memory, &mut alloc).unwrap();
    table.map(page::<Size4KiB>(0x5000), frame(0x9000), RW, &mut alloc).unwrap().ignore();
    let err = table.map(page::<Size4KiB>(0x5000), frame(0xa000), RW, &mut alloc).unwrap_err();
    let occupant =
        Occupant::Page(MappedPage { virt: va(0x5000), frame: pa(0x9000), size: 4096, flags: RW });
    assert_eq!(err, TableError::AlreadyMapped { addr: va(0x5000), occupant });
    assert_eq!(
        err.to_string(),
        "0x5000 is already mapped: a 0x1000-byte page at 0x9000 (PageFlags(READABLE | WRITABLE))"
    );
    // A huge page where smaller pages' table stands.
    let err = table.map(page::<Size2MiB>(0), frame(0), RW, &mut alloc).unwrap_err();
    assert_eq!(err, TableError::TableInTheWay { addr: va(0), level: 2 });
    // A range over it stops at the first occupied page, changing nothing.
    let err = table.map_range(va(0x3000), pa(0x3000), 0x3000, RW, &mut alloc).unwrap_err();
    assert_eq!(err, TableError::AlreadyMapped { addr: va(0x5000), occupant });
    assert_eq!(table.translate(va(0x3000)), Err(TableError::NotMapped { addr: va(0x3000) }));
}

#[test]
fn ranges_take_the_largest_pages_alignment_allows() {
    let mut rig = Arena::new(FRAMES);
    let (memory, mut alloc) = rig.limited_parts();
    let mut table = PageTable::<X86_64, _>::new(memory, &mut alloc).unwrap();
    // 4 KiB up to a 2 MiB boundary, 2 MiB pages up to 1 GiB, one 1 GiB page, one 2 MiB page
    // and one 4 KiB page.
    let start = 0x4000_0000 - 0x20_0000 - 0x1000;
    let len = 0x1000 + 0x20_0000 + 0x4000_0000 + 0x20_0000 + 0x1000;
    table.map_range(va(start), pa(start + 0x1_0000_0000), len, RW, &mut alloc).unwrap().ignore();
    let sizes: Vec<u64> = [start, start + 0x1000, 0x4000_0000, 0x8000_0000, 0x8020_0000]
        .iter()
        .map(|&a| table.translate(va(a)).unwrap().size)
        .collect();
    assert_eq!(sizes, [0x1000, 0x20_0000, 0x4000_0000, 0x20_0000, 0x1000]);
    // A cap keeps them small.
    table
        .map_range_limited::<Size4KiB, _>(va(0x100_0000_0000), pa(0), 0x40_0000, RW, &mut alloc)
        .unwrap()
        .ignore();
    assert_eq!(table.translate(va(0x100_0020_0000)).unwrap().size, 0x1000);
}

#[test]
fn running_dry_halfway_changes_nothing() {
    let mut rig = Arena::new(FRAMES);
    let (memory, mut alloc) = rig.limited_parts();
    let mut table = PageTable::<X86_64, _>::new(memory, &mut alloc).unwrap();
    table.map(page::<Size4KiB>(0x1000), frame(0x1000), RW, &mut alloc).unwrap().ignore();
    let before = table.memory().frames().to_vec();
    let in_use = alloc.frames_in_use();
    // 6 MiB of 4 KiB pages from 2 MiB needs three page tables; allow two.
    alloc.set_budget(2);
    let err = table.map_range_limited::<Size4KiB, _>(
        va(0x20_0000),
        pa(0x20_0000),
        0x60_0000,
        RW,
        &mut alloc,
    );
    let err = err.unwrap_err();
    assert_eq!(err, TableError::OutOfFrames { needed: 3, got: 2, source: FrameError::Exhausted });
    assert_eq!(
        err.to_string(),
        "out of frames: the operation needed 3 and the allocator gave 2 before refusing"
    );
    let source = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(source.as_deref(), Some("no free frames"));
    assert!(table.memory().frames() == &before[..], "memory changed");
    assert_eq!(alloc.frames_in_use(), in_use);
    // A single page needing three tables, with two to be had.
    alloc.set_budget(2);
    let err = table.map(page::<Size4KiB>(0x7f00_0000_0000), frame(0), RW, &mut alloc);
    let two_of_three = TableError::OutOfFrames { needed: 3, got: 2, source: FrameError::Exhausted };
    assert_eq!(err.unwrap_err(), two_of_three);
    assert!(table.memory().frames() == &before[..], "memory changed");
    assert_eq!(alloc.frames_in_use(), in_use);
    // Splitting a huge page needs a table too.
    alloc.set_budget(usize::MAX);
    table.map(page::<Size2MiB>(0x4000_0000), frame(0x20_0000), RW, &mut alloc).unwrap().ignore();
    let before = table.memory().frames().to_vec();
    alloc.set_budget(0);
    let err = table.protect_range(va(0x4000_0000), 0x1000, PageFlags::READABLE, &mut alloc);
    let none_of_one = TableError::OutOfFrames { needed: 1, got: 0, source: FrameError::Exhausted };
    assert_eq!(err.unwrap_err(), none_of_one);
    assert!(table.memory().frames() == &before[..], "memory changed");
}

#[test]
fn unmapping_part_of_a_huge_page_splits_it() {
    let mut rig = Arena::new(FRAMES);
    let (memory, mut alloc) = rig.limited_parts();
    let mut table = PageTable::<X86_64, _>::new(memory, &mut alloc).unwrap();
    let flags = RW | PageFlags::GLOBAL;
    table
        .map(page::<Size1GiB>(0x4000_0000), frame(0x8000_0000), flags, &mut alloc)
        .unwrap()
        .ignore();
    let mut gone = Vec::new();
    let flush = table
        .unmap_range(va(0x4020_1000), 0x2000, Holes::Refuse, &mut alloc, |u| gone.push(u))
        .unwrap();
    assert!(flush.touches_global());
    assert_eq!(
        gone,
        [0x4020_1000, 0x4020_2000].map(|v| Unmapped::Page(MappedPage {
            virt: va(v),
            frame: pa(v + 0x4000_0000),
            size: 0x1000,
            flags
        }))
    );
    assert_eq!(table.translate(va(0x4000_0000)).unwrap().size, 0x20_0000, "1 GiB split into 2 MiB");
    assert_eq!(
        table.translate(va(0x4020_0000)).unwrap().size,
        0x1000,
        "that 2 MiB split into 4 KiB"
    );
    assert_eq!(table.translate(va(0x4020_3000)).unwrap().phys, pa(0x8020_3000));
    assert_eq!(
        table.translate(va(0x4020_1000)),
        Err(TableError::NotMapped { addr: va(0x4020_1000) })
    );
    assert_eq!(table.translate(va(0x7fff_f000)).unwrap().flags, flags);
}

#[test]
fn protect_keeps_what_the_mmu_recorded_and_splits() {
    let mut rig = Arena::new(FRAMES);
    let (memory, mut alloc) = rig.limited_parts();
    let mut table = PageTable::<X86_64, _>::new(memory, &mut alloc).unwrap();
    table.map(page::<Size2MiB>(0x20_0000), frame(0x20_0000), RW, &mut alloc).unwrap().ignore();
    // The MMU marks the page accessed and dirty.
    let step = *table.walk(va(0x20_0000)).last().unwrap();
    let at = step.table + step.index as u64 * 8;
    let raw = table.memory().read_entry(at, EntrySize::Eight);
    table.memory_mut().write_entry(at, EntrySize::Eight, raw | 0x60);

    let flush =
        table.protect_range(va(0x20_0000), 0x1000, PageFlags::READABLE, &mut alloc).unwrap();
    assert_eq!(flush.pages(), [va(0x20_0000)], "the split replaced one present entry");
    let low = table.translate(va(0x20_0000)).unwrap();
    let high = table.translate(va(0x20_1000)).unwrap();
    assert_eq!(low.flags, PageFlags::READABLE | PageFlags::MMU_STATE);
    assert_eq!(high.flags, RW | PageFlags::MMU_STATE);
    assert_eq!((low.size, high.phys), (0x1000, pa(0x20_1000)));
    // Protecting with the same flags changes nothing and flushes nothing.
    let same = table.protect(page::<Size4KiB>(0x20_1000), RW).unwrap();
    assert!(same.is_empty());
}

#[test]
fn refused_arguments() {
    let mut rig = Arena::new(FRAMES);
    let (memory, mut alloc) = rig.limited_parts();
    let mut table = PageTable::<X86_64, _>::new(memory, &mut alloc).unwrap();
    let before = table.memory().frames().to_vec();
    let cases = [
        (
            table.map_range(va(0x1001), pa(0), 0x1000, RW, &mut alloc),
            TableError::Unaligned { kind: AddrKind::Virtual, value: 0x1001, align: 0x1000 },
        ),
        (
            table.map_range(va(0x1000), pa(0x10), 0x1000, RW, &mut alloc),
            TableError::Unaligned { kind: AddrKind::Physical, value: 0x10, align: 0x1000 },
        ),
        (
            table.map_range(va(0x1000), pa(0), 0x10, RW, &mut alloc),
            TableError::UnalignedSize { size: 0x10, align: 0x1000 },
        ),
        (table.map_range(va(0x1000), pa(0), 0, RW, &mut alloc), TableError::EmptyRange),
        (
            table.map_range(va(0x8000_0000_0000), pa(0), 0x1000, RW, &mut alloc),
            TableError::NonCanonical { addr: va(0x8000_0000_0000) },
        ),
        (
            table.map_range(va(0x7fff_ffff_f000), pa(0), 0x2000, RW, &mut alloc),
            TableError::OutOfRange {
                kind: AddrKind::Virtual,
                start: 0x7fff_ffff_f000,
                len: 0x2000,
            },
        ),
        (
            table.map_range(va(0xffff_ffff_ffff_f000), pa(0), 0x2000, RW, &mut alloc),
            TableError::OutOfRange {
                kind: AddrKind::Virtual,
                start: 0xffff_ffff_ffff_f000,
                len: 0x2000,
            },
        ),
        (
            table.map_range(va(0), pa(1 << 52), 0x1000, RW, &mut alloc),
            TableError::OutOfRange { kind: AddrKind::Physical, start: 1 << 52, len: 0x1000 },
        ),
        (
            table
                .map(page::<Size4MiB>(0), frame(0), RW, &mut alloc)
                .map(drop)
                .map(|()| Default::default()),
            TableError::UnsupportedPageSize { size: 0x40_0000 },
        ),
        (
            table.unmap_range(va(0x1000), 0x1000, Holes::Refuse, &mut alloc, |_| {}),
            TableError::NotMapped { addr: va(0x1000) },
        ),
        (
            table.protect_range(va(0x1000), 0x1000, RW, &mut alloc),
            TableError::NotMapped { addr: va(0x1000) },
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got.unwrap_err(), want);
        assert!(!want.to_string().is_empty());
    }
    assert_eq!(
        table.unmap(page::<Size4KiB>(0x1000), &mut alloc).unwrap_err(),
        TableError::NotMapped { addr: va(0x1000) }
    );
    assert!(
        table.unmap_range(va(0x1000), 0x1000, Holes::Skip, &mut alloc, |_| {}).unwrap().is_empty()
    );
    assert!(table.memory().frames() == &before[..], "memory changed");
    assert_eq!(alloc.frames_in_use(), 1);
}

#[test]
fn refusals_read_plainly() {
    let mut rig = Arena::new(FRAMES);
    let (memory, mut alloc) = rig.limited_parts();
    let mut table = PageTable::<X86_64, _>::new(memory, &mut alloc).unwrap();
    let size = table.map_range(va(0x1000), pa(0), 0x1001, RW, &mut alloc).unwrap_err();
    assert_eq!(size.to_string(), "size 0x1001 is not a multiple of the page size 0x1000");
    let size = table.unmap_range(va(0x1000), 0x1001, Holes::Skip, &mut alloc, |_| {});
    assert_eq!(size.unwrap_err(), TableError::UnalignedSize { size: 0x1001, align: 0x1000 });
    let addr = table.map_range(va(0x1001), pa(0), 0x1000, RW, &mut alloc).unwrap_err();
    assert_eq!(addr.to_string(), "virtual address 0x1001 is not aligned to 0x1000");
    let non_canonical = table.translate(va(0x8000_0000_0000)).unwrap_err();
    assert_eq!(non_canonical.to_string(), "address 0x800000000000 is not canonical");

    let mut rig = Arena::new(FRAMES);
    let (memory, mut alloc) = rig.limited_parts();
    let mut legacy = PageTable::<Legacy32, _>::new(memory, &mut alloc).unwrap();
    let beyond = legacy.map(page::<Size4KiB>(1 << 32), frame(0), RW, &mut alloc).unwrap_err();
    assert_eq!(beyond, TableError::BeyondAddressSpace { addr: va(1 << 32), bits: 32 });
    assert_eq!(beyond.to_string(), "address 0x100000000 is beyond the 32-bit address space");
    assert_eq!(legacy.translate(va(1 << 32)).unwrap_err(), beyond);
}

#[test]
fn flags_a_format_cannot_express_are_refused() {
    let mut rig = Arena::new(FRAMES);
    let (memory, mut alloc) = rig.limited_parts();
    let mut table = PageTable::<Legacy32, _>::new(memory, &mut alloc).unwrap();
    let err = table.map(page::<Size4KiB>(0), frame(0), RW.with_protection_key(3), &mut alloc);
    assert_eq!(
        err.unwrap_err(),
        TableError::UnsupportedFlags { flags: PageFlags::empty().with_protection_key(3) }
    );
    table.map(page::<Size4MiB>(0x40_0000), frame(0x80_0000), RW, &mut alloc).unwrap().ignore();
    let hit = table.translate(va(0x41_2345)).unwrap();
    assert_eq!((hit.phys, hit.size), (pa(0x81_2345), 0x40_0000));
    assert!(
        hit.flags.contains(PageFlags::EXECUTABLE),
        "no NX on legacy 32-bit: every page executes"
    );
}

#[test]
fn corrupt_entries_are_reported_not_followed() {
    let mut rig = Arena::new(FRAMES);
    let (memory, mut alloc) = rig.limited_parts();
    let mut table = PageTable::<X86_64, _>::new(memory, &mut alloc).unwrap();
    let root = table.root();
    // Root entry 0: PS set where no leaf may be. Root entry 1: a table outside memory.
    table.memory_mut().write_entry(root, EntrySize::Eight, 0x1000 | 1 << 7 | 0x3);
    table.memory_mut().write_entry(root + 8, EntrySize::Eight, 0x7_0000_0000 | 0x3);
    let corrupt = |addr: u64, raw: u64, reason| TableError::CorruptEntry {
        addr: va(addr),
        level: 4,
        raw,
        reason,
    };
    let leaf_in_root = |addr| corrupt(addr, 0x1083, Some(InvalidEntry::ReservedBits));
    let outside = corrupt(0x80_0000_0000, 0x7_0000_0003, None);
    let before = table.memory().frames().to_vec();
    let err = table.map(page::<Size4KiB>(0x1000), frame(0), RW, &mut alloc).unwrap_err();
    assert_eq!(err, leaf_in_root(0x1000));
    let err = table.map_range(va(0x80_0000_0000), pa(0), 0x1000, RW, &mut alloc).unwrap_err();
    assert_eq!(err, outside);
    assert_eq!(table.lookup(va(0x80_0000_0000)), Err(outside));
    let err = table.unmap_range(va(0), 0x100_0000_0000, Holes::Skip, &mut alloc, |_| {});
    assert_eq!(err.unwrap_err(), leaf_in_root(0));
    assert!(table.memory().frames() == &before[..], "memory changed");
    assert_eq!(alloc.frames_in_use(), 1);
}

#[test]
fn payload_entries_are_kept_apart_from_mappings() {
    let mut rig = Arena::new(FRAMES);
    let (memory, mut alloc) = rig.limited_parts();
    let mut table = PageTable::<X86_64, _>::new(memory, &mut alloc).unwrap();
    table.map(page::<Size4KiB>(0x1000), frame(0x1000), RW, &mut alloc).unwrap().ignore();
    let step = *table.walk(va(0x1000)).last().unwrap();
    // Swap the page out by hand: a payload in its entry.
    table.memory_mut().write_entry(step.table + 8, EntrySize::Eight, 0x2A << 1);
    assert_eq!(table.lookup(va(0x1000)).unwrap(), Lookup::Payload { payload: 0x2A, level: 1 });
    assert_eq!(table.walk(va(0x1000)).last().unwrap().entry, Entry::Payload(0x2A));
    let err = table.map(page::<Size4KiB>(0x1000), frame(0x1000), RW, &mut alloc).unwrap_err();
    assert_eq!(
        err,
        TableError::AlreadyMapped { addr: va(0x1000), occupant: Occupant::Payload(0x2A) }
    );
    let mut gone = Vec::new();
    table
        .unmap_range(va(0x1000), 0x1000, Holes::Refuse, &mut alloc, |u| gone.push(u))
        .unwrap()
        .ignore();
    assert_eq!(gone, [Unmapped::Payload { virt: va(0x1000), size: 0x1000, payload: 0x2A }]);
    assert_eq!(alloc.frames_in_use(), 1);
}

#[test]
fn flushes_batch_then_cover_the_space() {
    let mut rig = Arena::new(FRAMES);
    let (memory, mut alloc) = rig.limited_parts();
    let mut table = PageTable::<X86_64, _>::new(memory, &mut alloc).unwrap();
    table.map_range(va(0x10_0000), pa(0), 0x40_000, RW, &mut alloc).unwrap().ignore();
    let few = table.unmap_range(va(0x10_0000), 0x3000, Holes::Refuse, &mut alloc, |_| {}).unwrap();
    assert_eq!(few.pages(), [va(0x10_0000), va(0x10_1000), va(0x10_2000)]);
    assert!(!few.touches_global());
    let many =
        table.unmap_range(va(0x10_3000), 0x3d_000, Holes::Refuse, &mut alloc, |_| {}).unwrap();
    assert!(many.is_whole_space());
    assert_eq!(alloc.frames_in_use(), 1);
}

#[test]
fn a_frame_outside_table_memory_is_refused_and_returned() {
    let mut ram = vec![FrameBuf::ZERO; 4];
    let mut bitmap = [0u64; 1];
    // The allocator manages 8 frames; the memory reaches only the first 4.
    let map = [MemoryRegion::usable(0, 8 * 4096)];
    let mut alloc = BitmapAllocator::new(&mut bitmap, &map).unwrap();
    let memory = ArenaMemory::new(&mut ram, PhysAddr::ZERO);
    let mut table = PageTable::<X86_64, _>::new(memory, &mut alloc).unwrap();
    table.map(page::<Size4KiB>(0), frame(0), RW, &mut alloc).unwrap().ignore(); // frames 1..=3
    let in_use = alloc.frames_in_use();
    let err = table.map(page::<Size4KiB>(0x80_0000_0000), frame(0), RW, &mut alloc).unwrap_err();
    assert_eq!(err, TableError::FrameOutsideMemory { frame: pa(0x4000) });
    assert_eq!(alloc.frames_in_use(), in_use);
    let err = table.map_range(va(0x80_0000_0000), pa(0), 0x1000, RW, &mut alloc).unwrap_err();
    assert_eq!(err, TableError::FrameOutsideMemory { frame: pa(0x4000) });
    assert_eq!(alloc.frames_in_use(), in_use);
}

#[test]
fn visit_and_destroy_account_for_every_table() {
    let mut rig = Arena::new(FRAMES);
    let (memory, mut alloc) = rig.limited_parts();
    let mut table = PageTable::<X86_64, _>::new(memory, &mut alloc).unwrap();
    table.map_range(va(0xffff_8000_0000_0000), pa(0), 0x40_2000, RW, &mut alloc).unwrap().ignore();
    table.map(page::<Size4KiB>(0x1000), frame(0), RW, &mut alloc).unwrap().ignore();
    let mut pages = Vec::new();
    table.visit(|v| {
        if let Visit::Page(MappedPage { virt, size, .. }) = v {
            pages.push((virt, size));
        }
    });
    assert_eq!(
        pages,
        [
            (va(0x1000), 0x1000),
            (va(0xffff_8000_0000_0000), 0x20_0000),
            (va(0xffff_8000_0020_0000), 0x20_0000),
            (va(0xffff_8000_0040_0000), 0x1000),
            (va(0xffff_8000_0040_1000), 0x1000),
        ]
    );
    assert_eq!(table.table_count(), alloc.frames_in_use());
    table.destroy(&mut alloc);
    assert_eq!(alloc.frames_in_use(), 0);
}

#[test]
fn set_entry_hides_a_frame_behind_a_payload_and_brings_it_back() {
    use paging::table::NewEntry;
    let mut rig = Arena::new(FRAMES);
    let (memory, mut alloc) = rig.limited_parts();
    let mut table = PageTable::<X86_64, _>::new(memory, &mut alloc).unwrap();
    let at = page::<Size4KiB>(0x7000);
    let (before, flush) = table
        .set_entry(at, NewEntry::Page { frame: frame(0x9000), flags: RW }, &mut alloc)
        .unwrap();
    assert_eq!((before, flush.is_empty()), (None, true));
    // Hide it: the frame number travels in the payload.
    let (before, flush) = table.set_entry(at, NewEntry::Payload(0x9 << 1 | 1), &mut alloc).unwrap();
    let hidden = MappedPage { virt: va(0x7000), frame: pa(0x9000), size: 0x1000, flags: RW };
    assert_eq!(before, Some(Occupant::Page(hidden)));
    assert_eq!(flush.pages(), [va(0x7000)], "a present entry went away");
    assert_eq!(table.lookup(va(0x7000)).unwrap(), Lookup::Payload { payload: 0x13, level: 1 });
    // Bring it back read-only, then clear it: the tables go back to the allocator.
    let (before, flush) = table
        .set_entry(
            at,
            NewEntry::Page { frame: frame(0x9000), flags: PageFlags::READABLE },
            &mut alloc,
        )
        .unwrap();
    assert_eq!((before, flush.is_empty()), (Some(Occupant::Payload(0x13)), true));
    assert_eq!(table.translate(va(0x7000)).unwrap().flags, PageFlags::READABLE);
    let (before, _) = table.set_entry(at, NewEntry::Empty, &mut alloc).unwrap();
    let hidden = MappedPage {
        virt: va(0x7000),
        frame: pa(0x9000),
        size: 0x1000,
        flags: PageFlags::READABLE,
    };
    assert_eq!(before, Some(Occupant::Page(hidden)));
    assert_eq!(alloc.frames_in_use(), 1);
    // Clearing what is not there changes nothing; a zero payload is refused.
    assert_eq!(table.set_entry(at, NewEntry::Empty, &mut alloc).unwrap().0, None);
    let err = table.set_entry(at, NewEntry::Payload(0), &mut alloc).unwrap_err();
    assert_eq!(err, TableError::PayloadTooWide { payload: 0, bits: 63 });
    // A huge page in the way is refused too.
    table.map(page::<Size2MiB>(0x20_0000), frame(0x20_0000), RW, &mut alloc).unwrap().ignore();
    let err =
        table.set_entry(page::<Size4KiB>(0x20_1000), NewEntry::Empty, &mut alloc).unwrap_err();
    assert_eq!(
        err,
        TableError::HugePageInTheWay { addr: va(0x20_0000), level: 2, size: 0x20_0000 }
    );
}

#[test]
fn copy_frame_copies_every_byte() {
    let mut frames = [FrameBuf::ZERO; 2];
    frames[0].0.iter_mut().enumerate().for_each(|(i, w)| *w = i as u64 * 0x0101_0101);
    let mut memory = ArenaMemory::new(&mut frames, PhysAddr::ZERO);
    memory.copy_frame(pa(0x1000), pa(0));
    assert!(memory.frames()[1] == memory.frames()[0]);
}

#[test]
fn rewrite_range_hides_restores_and_clears_as_told() {
    use paging::table::Rewrite;
    let mut rig = Arena::new(FRAMES);
    let (memory, mut alloc) = rig.limited_parts();
    let mut table = PageTable::<X86_64, _>::new(memory, &mut alloc).unwrap();
    table.map_range(va(0x10_0000), pa(0x50_0000), 0x4000, RW, &mut alloc).unwrap().ignore();
    // Hide the pages: the frame number goes into the payload.
    let mut seen = Vec::new();
    let flush = table
        .rewrite_range(
            va(0x10_0000),
            0x4000,
            &mut alloc,
            |_, _, old| match old {
                Occupant::Page(MappedPage { frame, .. }) => Rewrite::Payload(frame.as_u64() >> 12),
                Occupant::Payload(_) => Rewrite::Keep,
            },
            |virt, old| seen.push((virt, old)),
        )
        .unwrap();
    assert_eq!(seen.len(), 4, "told once per rewritten entry");
    assert_eq!(flush.pages().len(), 4);
    assert_eq!(table.lookup(va(0x10_2000)).unwrap(), Lookup::Payload { payload: 0x502, level: 1 });
    // Bring the first two back read-only, clear the rest: their table stays for the first two.
    let flush = table
        .rewrite_range(
            va(0x10_0000),
            0x4000,
            &mut alloc,
            |virt, _, old| match old {
                Occupant::Payload(n) if virt < va(0x10_2000) => {
                    Rewrite::Page { frame: pa(n << 12), flags: PageFlags::READABLE }
                }
                _ => Rewrite::Clear,
            },
            |_, _| {},
        )
        .unwrap();
    assert!(flush.is_empty(), "only non-present entries changed");
    assert_eq!(table.translate(va(0x10_1000)).unwrap().phys, pa(0x50_1000));
    assert_eq!(table.translate(va(0x10_2000)), Err(TableError::NotMapped { addr: va(0x10_2000) }));
    // A bad answer from the rule refuses the whole call.
    let before = table.memory().frames().to_vec();
    let err = table.rewrite_range(
        va(0x10_0000),
        0x2000,
        &mut alloc,
        |_, _, _| Rewrite::Payload(0),
        |_, _| {},
    );
    assert_eq!(err.unwrap_err(), TableError::PayloadTooWide { payload: 0, bits: 63 });
    assert!(table.memory().frames() == &before[..]);
    table
        .rewrite_range(va(0x10_0000), 0x4000, &mut alloc, |_, _, _| Rewrite::Clear, |_, _| {})
        .unwrap()
        .ignore();
    assert_eq!(alloc.frames_in_use(), 1);
}

/// The pages `visit_range` reports for `first..=last`.
fn pages_in<M: TableMemory>(
    table: &PageTable<X86_64, M>,
    first: u64,
    last: u64,
) -> Vec<(u64, u64)> {
    let mut pages = Vec::new();
    table.visit_range(va(first), va(last), |v| {
        if let Visit::Page(MappedPage { virt, size, .. }) = v {
            pages.push((virt.as_u64(), size));
        }
    });
    pages
}

#[test]
fn a_range_visit_reports_the_pages_that_meet_the_range_and_their_tables() {
    let mut rig = Arena::new(FRAMES);
    let (memory, mut alloc) = rig.limited_parts();
    let mut table = PageTable::<X86_64, _>::new(memory, &mut alloc).unwrap();
    table.map_range(va(0xffff_8000_0000_0000), pa(0), 0x40_2000, RW, &mut alloc).unwrap().ignore();
    for at in [0x1000, 0x2000, 0x4000_0000] {
        table.map(page::<Size4KiB>(at), frame(at), RW, &mut alloc).unwrap().ignore();
    }
    let high = 0xffff_8000_0000_0000;
    // A byte of a 2 MiB page meets it; the range's ends are inclusive.
    assert_eq!(
        pages_in(&table, high + 0x20_0123, high + 0x20_0123),
        [(high + 0x20_0000, 0x20_0000)]
    );
    assert_eq!(pages_in(&table, 0x1fff, 0x2000), [(0x1000, 0x1000), (0x2000, 0x1000)]);
    assert_eq!(pages_in(&table, 0x3000, 0x3fff_ffff), []);
    // Across the hole between the halves, in address order.
    assert_eq!(
        pages_in(&table, 0x2000, high + 0x1f_ffff),
        [(0x2000, 0x1000), (0x4000_0000, 0x1000), (high, 0x20_0000)]
    );
    // The whole space is the full visit; a non-canonical or reversed range meets nothing.
    assert_eq!(pages_in(&table, 0, u64::MAX).len(), 7);
    assert_eq!(pages_in(&table, 0x8000_0000_0000, u64::MAX), []);
    assert_eq!(pages_in(&table, 0x2000, 0x1000), []);
    // Tables: the root always, then those on the way to the range only.
    let mut tables = Vec::new();
    table.visit_range(va(0x1000), va(0x1000), |v| {
        if let Visit::Table { level, .. } = v {
            tables.push(level);
        }
    });
    assert_eq!(tables, [4, 3, 2, 1]);
}

#[test]
fn a_recursive_mapping_is_visited_once_not_followed() {
    let mut rig = Arena::new(FRAMES);
    let (memory, mut alloc) = rig.limited_parts();
    let mut table = PageTable::<X86_64, _>::new(memory, &mut alloc).unwrap();
    table.map(page::<Size4KiB>(0x1000), frame(0x1000), RW, &mut alloc).unwrap().ignore();
    // Root entry 510 points at the root itself, as recursive-mapping kernels do.
    let root = table.root();
    table.memory_mut().write_entry(root + 510 * 8, EntrySize::Eight, root.as_u64() | 0x3);
    let mut visits = 0;
    let mut corrupt = 0;
    table.visit(|v| {
        visits += 1;
        corrupt += usize::from(matches!(v, Visit::Corrupt { .. }));
    });
    assert_eq!((visits, corrupt), (6, 1), "root, 3 tables, the page, the self-reference");
    assert_eq!(table.table_count(), 4);
    table.memory_mut().write_entry(root + 510 * 8, EntrySize::Eight, 0);
    table.destroy(&mut alloc);
    assert_eq!(alloc.frames_in_use(), 0);
}

#[test]
fn a_frame_beyond_the_formats_physical_width_is_refused() {
    // Legacy 32-bit entries hold 32-bit frame addresses: RAM at 4 GiB cannot hold a page
    // table or a fresh page, and the reserve gives back what it took. The arena's first
    // frame is the last below 4 GiB.
    let mut ram = vec![FrameBuf::ZERO; 9];
    let mut memory = ArenaMemory::new(&mut ram, pa(0xFFFF_F000));
    let mut bitmap = [0u64; 1];
    let usable = [MemoryRegion::usable(0x1_0000_0000, 8 * 4096)];
    let mut alloc = BitmapAllocator::new(&mut bitmap, &usable).unwrap();
    assert_eq!(
        PageTable::<Legacy32, _>::new(&mut memory, &mut alloc).map(|_| ()),
        Err(TableError::FrameOutsideMemory { frame: pa(0x1_0000_0000) }),
        "not even the root"
    );
    assert_eq!(alloc.frames_in_use(), 0);
    let mut table = PageTable::<Legacy32, _>::from_root(pa(0xFFFF_F000), &mut memory);
    assert_eq!(
        table.allocate_and_map_range(va(0x1000), 0x1000, RW, &mut alloc),
        Err(TableError::FrameOutsideMemory { frame: pa(0x1_0000_0000) })
    );
    assert_eq!(alloc.frames_in_use(), 0, "the reserve gave back what it took");
}

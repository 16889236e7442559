//! Bootloader memory maps turned into regions, allocators built from them, and room found
//! for the allocators' own books.

use paging::frame::{
    BitmapAllocator, BooksPlacement, FrameAllocator, FreeListAllocator, FreeRun, MemoryRegion, boot,
};
use paging::{FrameError, PhysAddr};

const MIB: u64 = 1 << 20;

#[cfg(feature = "bootloader_api")]
#[test]
fn bootloader_api_regions() {
    use bootloader_api::info::{MemoryRegion as Region, MemoryRegionKind as Kind};
    let map = [
        Region { start: 0, end: 0x1000, kind: Kind::UnknownBios(2) },
        Region { start: 0x1000, end: 0x9_f000, kind: Kind::Usable },
        Region { start: 0x10_0000, end: 0x40_0000, kind: Kind::Bootloader },
        Region { start: 0x40_0000, end: 128 * MIB, kind: Kind::Usable },
        Region { start: 0xFEC0_0000, end: 0xFEC0_1000, kind: Kind::UnknownUefi(11) },
        Region { start: 0x5000, end: 0x4000, kind: Kind::Usable }, // end below start
    ];
    let regions: Vec<_> =
        boot::from_bootloader_api(&map, &[0x8000..0x9000, 0x9000..0x9000]).collect();
    assert_eq!(
        regions,
        [
            MemoryRegion::reserved(0, 0x1000),
            MemoryRegion::usable(0x1000, 0x9_e000),
            MemoryRegion::reserved(0x10_0000, 0x30_0000),
            MemoryRegion::usable(0x40_0000, 128 * MIB - 0x40_0000),
            MemoryRegion::reserved(0xFEC0_0000, 0x1000),
            MemoryRegion::usable(0x5000, 0),
            MemoryRegion::reserved(0x8000, 0x1000),
            MemoryRegion::reserved(0x9000, 0), // an empty range reserves nothing
        ]
    );
    let mut words = vec![0u64; 1024];
    let frames = BitmapAllocator::from_regions(
        &mut words,
        boot::from_bootloader_api(&map, &[0x8000..0x9000, 0x9000..0x9000]),
    )
    .unwrap();
    // 0x1000..0x9f000 less the reserved frame, and 4 MiB..128 MiB.
    assert_eq!(frames.free_frames(), 0x9e - 1 + (128 * MIB - 4 * MIB) as usize / 4096);
    assert!(!frames.is_allocated(PhysAddr::new(0x8000)));
}

#[cfg(feature = "limine")]
#[test]
fn limine_regions() {
    use limine::memory_map::{Entry, EntryType};
    let entry = |base, length, entry_type| Entry { base, length, entry_type };
    let map = [
        entry(0, 0x1000, EntryType::RESERVED),
        entry(0x1000, 0x9_e000, EntryType::USABLE),
        entry(0x10_0000, 0x20_0000, EntryType::EXECUTABLE_AND_MODULES),
        entry(0x30_0000, 0x10_0000, EntryType::BOOTLOADER_RECLAIMABLE),
        entry(0x40_0000, 60 * MIB, EntryType::USABLE),
        entry(0x7FE_0000, 0x2_0000, EntryType::ACPI_RECLAIMABLE),
        entry(0xFD00_0000, 0x30_0000, EntryType::FRAMEBUFFER),
    ];
    let refs: Vec<&Entry> = map.iter().collect();
    let regions: Vec<_> = boot::from_limine(&refs, &[]).collect();
    assert_eq!(
        regions,
        [
            MemoryRegion::reserved(0, 0x1000),
            MemoryRegion::usable(0x1000, 0x9_e000),
            MemoryRegion::reserved(0x10_0000, 0x20_0000),
            MemoryRegion::reserved(0x30_0000, 0x10_0000),
            MemoryRegion::usable(0x40_0000, 60 * MIB),
            MemoryRegion::reserved(0x7FE_0000, 0x2_0000),
            MemoryRegion::reserved(0xFD00_0000, 0x30_0000),
        ]
    );
    let mut slots = [FreeRun::EMPTY; 8];
    let frames =
        FreeListAllocator::from_regions(&mut slots, boot::from_limine(&refs, &[])).unwrap();
    assert_eq!(
        frames.free_runs(),
        [
            FreeRun { start: PhysAddr::new(0x1000), frames: 0x9e },
            FreeRun { start: PhysAddr::new(0x40_0000), frames: 60 * 256 },
        ]
    );
}

#[cfg(feature = "multiboot2")]
#[test]
fn multiboot2_regions_with_the_kernel_and_boot_information_carved_out() {
    use multiboot2::{MemoryArea, MemoryAreaType};
    let areas = [
        MemoryArea::new(0, 0x9_fc00, MemoryAreaType::Available),
        MemoryArea::new(0x9_fc00, 0x400, MemoryAreaType::Reserved),
        MemoryArea::new(0x10_0000, 0x7ee_0000, MemoryAreaType::Available),
        MemoryArea::new(0x7fe_0000, 0x1_0000, MemoryAreaType::AcpiAvailable),
        MemoryArea::new(0x7ff_0000, 0x1_0000, MemoryAreaType::ReservedHibernate),
        MemoryArea::new(0xFFFC_0000, 0x4_0000, MemoryAreaType::Custom(0xF00)),
    ];
    // Multiboot2 reports these as available: the caller carves them out.
    let reserve = [0x10_0000..0x18_2345, 0x18_3000..0x18_3468];
    let regions: Vec<_> = boot::from_multiboot2(&areas, &reserve).collect();
    assert_eq!(
        regions,
        [
            MemoryRegion::usable(0, 0x9_fc00),
            MemoryRegion::reserved(0x9_fc00, 0x400),
            MemoryRegion::usable(0x10_0000, 0x7ee_0000),
            MemoryRegion::reserved(0x7fe_0000, 0x1_0000),
            MemoryRegion::reserved(0x7ff_0000, 0x1_0000),
            MemoryRegion::reserved(0xFFFC_0000, 0x4_0000),
            MemoryRegion::reserved(0x10_0000, 0x8_2345),
            MemoryRegion::reserved(0x18_3000, 0x468),
        ]
    );
    let mut slots = [FreeRun::EMPTY; 8];
    let mut frames =
        FreeListAllocator::from_regions(&mut slots, boot::from_multiboot2(&areas, &reserve))
            .unwrap();
    assert_eq!(
        frames.free_runs(),
        [
            FreeRun { start: PhysAddr::new(0), frames: 0x9f },
            FreeRun { start: PhysAddr::new(0x18_4000), frames: (0x7fe_0000 - 0x18_4000) / 4096 },
        ]
    );
    // Neither the kernel nor the boot information is ever handed out.
    let kernel = PhysAddr::new(0x18_2000);
    assert!(!frames.is_allocated(kernel));
    assert_eq!(frames.deallocate(kernel), Err(FrameError::NotAllocated { frame: kernel }));
}

#[test]
fn books_go_at_the_start_of_the_lowest_run_that_holds_them() {
    // Runs of usable frames: 4 KiB..12 KiB, 1 MiB..2 MiB, 2 MiB + 4 KiB..65 MiB.
    let map = [
        MemoryRegion::usable(0x1000, 0x2000),
        MemoryRegion::usable(MIB, 64 * MIB),
        MemoryRegion::reserved(2 * MIB, 0x1000),
    ];
    let usable = 2 + 256 + (63 * MIB / 4096 - 1) as usize;

    // The bitmap: a span of 16639 frames (260 words) and two holes (four words), which
    // fit in the first run.
    let books = BitmapAllocator::place_storage(map).unwrap();
    assert_eq!(
        books,
        BooksPlacement { region: MemoryRegion::reserved(0x1000, 264 * 8), entries: 264 }
    );
    let mut storage = vec![0u64; books.entries];
    let with_books = map.iter().copied().chain([books.region]);
    let mut frames = BitmapAllocator::from_regions(&mut storage, with_books).unwrap();
    assert_eq!(frames.free_frames(), usable - 1, "one frame holds the books");
    let mut taken = 0;
    while let Ok(frame) = frames.allocate() {
        assert_ne!(frame, books.region.start);
        taken += 1;
    }
    assert_eq!(taken, usable - 1);

    // The free list with 1000 spare slots: 1005 slots of 16 bytes, four frames, which the
    // first run cannot hold.
    let books = FreeListAllocator::place_storage(map, 1000).unwrap();
    assert_eq!(
        books,
        BooksPlacement { region: MemoryRegion::reserved(MIB, 1005 * 16), entries: 1005 }
    );
    let mut slots = vec![FreeRun::EMPTY; books.entries];
    let with_books = map.iter().copied().chain([books.region]);
    let frames = FreeListAllocator::from_regions(&mut slots, with_books).unwrap();
    assert_eq!(frames.free_runs()[1].start, PhysAddr::new(MIB + 0x4000));
    assert_eq!(frames.free_frames(), usable - 4);

    // Nowhere to go.
    assert_eq!(BitmapAllocator::place_storage([]), Err(FrameError::Exhausted));
    let tiny = [MemoryRegion::usable(0, 0x1000)];
    assert_eq!(FreeListAllocator::place_storage(tiny, 256), Err(FrameError::Exhausted));
}

#[test]
fn reserved_ranges_win_whatever_the_order() {
    let map = [MemoryRegion::usable(0, 16 * 4096)];
    let reversed = core::ops::Range { start: 0x5000, end: 0x4000 };
    let regions: Vec<_> =
        boot::with_reserved(map.iter().copied(), &[0x1800..0x2001, reversed]).collect();
    assert_eq!(
        regions,
        [
            MemoryRegion::usable(0, 16 * 4096),
            MemoryRegion::reserved(0x1800, 0x801),
            MemoryRegion::reserved(0x5000, 0), // a reversed range reserves nothing
        ]
    );
    let mut words = [0u64; 4];
    let frames = BitmapAllocator::from_regions(&mut words, regions).unwrap();
    // Frames 1 and 2 are touched by the reserved range; the others are free.
    assert_eq!(frames.free_frames(), 14);
    assert!(!frames.is_allocated(PhysAddr::new(0x2000)));
}

//! Allocate-and-map and unmap-and-free on the simulated machine: fresh frames come zeroed
//! from the allocator and the kernel reaches them through the MMU; a refused call, even one
//! whose allocator runs dry halfway, leaves the tables and the allocator as they were;
//! unmapping gives every data frame back (a huge page as one run), and what it cannot give
//! back goes to the caller.

use paging::frame::{FrameAllocator, LimitedAllocator};
use paging::table::{Holes, MappedPage, NewEntry, Unmapped, Visit};
use paging::{Access, Asid};
use paging::{
    FrameError, Occupant, PageFlags, PageSize, PageTable, PhysAddr, Size2MiB, Size4KiB, TableError,
};
use paging_harness::fixtures::{SIM_TABLE_AREA, frame, pa, page, sim_allocator, va};
use paging_sim::{Machine, MachineConfig, NoResolver, Ram};
use paging_x86::X86_64;

const RW: PageFlags = PageFlags::READABLE.union(PageFlags::WRITABLE);
const PAGE: u64 = 0x1000;

/// The tree of `table`: every table, page and payload, in order.
fn tree(table: &PageTable<X86_64, &mut Ram>) -> Vec<Visit> {
    let mut visits = Vec::new();
    table.visit(|visit| visits.push(visit));
    visits
}

/// Fills the first `frames` frames the allocator hands out with 0xAA bytes, so that a
/// fresh page that is not zeroed shows it.
fn dirty_the_allocator_area(machine: &mut Machine<X86_64>, frames: u64) {
    let garbage = vec![0xAA; (frames * PAGE) as usize];
    machine.ram_mut().write(pa(SIM_TABLE_AREA), &garbage).unwrap();
}

#[test]
fn fresh_pages_are_zeroed_and_reachable() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    dirty_the_allocator_area(&mut machine, 16);
    let mut bitmap = [0; 128];
    let mut alloc = sim_allocator(&mut bitmap);
    let mut table = PageTable::<X86_64, _>::new(machine.ram_mut(), &mut alloc).unwrap();
    let root = table.root();
    let flush = table.allocate_and_map_range(va(0x40_0000), 3 * PAGE, RW, &mut alloc).unwrap();
    assert!(flush.is_empty(), "new entries replace non-present ones");
    assert_eq!(alloc.frames_in_use(), 7, "root, PDPT, PD, PT and three pages");

    let frames: Vec<PhysAddr> =
        (0..3).map(|i| table.translate(va(0x40_0000 + i * PAGE)).unwrap().phys).collect();
    // The reserve hands its frames out last-taken first: tables, then pages in order.
    let area = SIM_TABLE_AREA;
    assert_eq!(frames, [pa(area + 0x3000), pa(area + 0x2000), pa(area + 0x1000)]);
    assert_eq!(root, pa(area));
    for &frame in &frames {
        let mut bytes = [0xFFu8; PAGE as usize];
        machine.ram().read(frame, &mut bytes).unwrap();
        assert!(bytes.iter().all(|&b| b == 0), "{frame:?} is zeroed");
    }

    machine.enter_kernel(root, Asid(0)).unwrap();
    machine.store_value(va(0x40_1008), 0x1234_5678_u64, &mut NoResolver).unwrap();
    assert_eq!(machine.ram().read_u64(pa(area + 0x2008)), Ok(0x1234_5678));
    assert_eq!(machine.probe(va(0x40_2000), Access::Write), Ok(pa(area + 0x1000)));
}

#[test]
fn an_allocator_running_dry_halfway_changes_nothing() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = [0; 128];
    let mut alloc = LimitedAllocator::new(sim_allocator(&mut bitmap), usize::MAX);
    let mut table = PageTable::<X86_64, _>::new(machine.ram_mut(), &mut alloc).unwrap();
    table.allocate_and_map_range(va(0x1000), PAGE, RW, &mut alloc).unwrap().ignore();
    let (before, frames_before) = (tree(&table), alloc.frames_in_use());
    assert_eq!(frames_before, 5);

    // 600 pages from 2 MiB: a new page table for the first 512, another for the rest
    // (the PD exists), and the pages: 602 frames; the allocator gives 300.
    alloc.set_budget(300);
    let dry = table.allocate_and_map_range(va(0x20_0000), 600 * PAGE, RW, &mut alloc);
    assert_eq!(
        dry,
        Err(TableError::OutOfFrames { needed: 602, got: 300, source: FrameError::Exhausted })
    );
    assert_eq!(alloc.frames_in_use(), frames_before, "every frame taken went back");
    assert_eq!(tree(&table), before, "the tables are as they were");
    assert_eq!(table.translate(va(0x20_0000)), Err(TableError::NotMapped { addr: va(0x20_0000) }));

    // With enough frames, the same call succeeds and takes exactly what it counted.
    alloc.set_budget(602);
    table.allocate_and_map_range(va(0x20_0000), 600 * PAGE, RW, &mut alloc).unwrap().ignore();
    assert_eq!((alloc.frames_in_use(), alloc.remaining()), (frames_before + 602, 0));
    // The first new page table, covered whole, was written whole rather than zeroed
    // first: every one of its entries maps a page of its own.
    let mut frames: Vec<u64> = (0..600)
        .map(|i| table.translate(va(0x20_0000 + i * PAGE)).unwrap().phys.as_u64())
        .collect();
    frames.sort_unstable();
    frames.dedup();
    assert_eq!(frames.len(), 600);
}

#[test]
fn an_occupied_page_refuses_the_whole_range() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = [0; 128];
    let mut alloc = sim_allocator(&mut bitmap);
    let mut table = PageTable::<X86_64, _>::new(machine.ram_mut(), &mut alloc).unwrap();
    table.map(page::<Size4KiB>(0x3000), frame(0x9000), RW, &mut alloc).unwrap().ignore();
    let (before, frames_before) = (tree(&table), alloc.frames_in_use());
    let refused = table.allocate_and_map_range(va(0x1000), 4 * PAGE, RW, &mut alloc);
    let occupant =
        Occupant::Page(MappedPage { virt: va(0x3000), frame: pa(0x9000), size: PAGE, flags: RW });
    assert_eq!(refused, Err(TableError::AlreadyMapped { addr: va(0x3000), occupant }));
    assert_eq!((tree(&table), alloc.frames_in_use()), (before, frames_before));
}

#[test]
fn unmap_and_free_gives_every_frame_back() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = [0; 128];
    let mut alloc = sim_allocator(&mut bitmap);
    let mut table = PageTable::<X86_64, _>::new(machine.ram_mut(), &mut alloc).unwrap();
    table.allocate_and_map_range(va(0x7000), 4 * PAGE, RW, &mut alloc).unwrap().ignore();
    assert_eq!(alloc.frames_in_use(), 8);

    let mut not_freed = Vec::new();
    let flush = table
        .unmap_and_free_range(va(0x8000), 2 * PAGE, Holes::Refuse, &mut alloc, |u| {
            not_freed.push(u);
        })
        .unwrap();
    assert_eq!(flush.pages(), [va(0x8000), va(0x9000)]);
    assert_eq!(alloc.frames_in_use(), 6, "two data frames back; the tables still hold two");

    let flush = table
        .unmap_and_free_range(va(0x0), 0x20_0000, Holes::Skip, &mut alloc, |u| not_freed.push(u))
        .unwrap();
    flush.ignore();
    assert_eq!(alloc.frames_in_use(), 1, "the pages and the emptied tables: the root stays");
    assert_eq!(not_freed, []);
}

#[test]
fn a_huge_page_goes_back_as_one_run_and_a_split_part_frame_by_frame() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = [0; 128];
    let mut alloc = sim_allocator(&mut bitmap);
    let mut table = PageTable::<X86_64, _>::new(machine.ram_mut(), &mut alloc).unwrap();
    let huge = alloc.allocate_contiguous(512, Size2MiB::SIZE).unwrap();
    let huge_page = page::<Size2MiB>(0x4000_0000);
    table.map(huge_page, frame(huge.as_u64()), RW, &mut alloc).unwrap().ignore();
    assert_eq!(alloc.frames_in_use(), 1 + 512 + 2, "root, the run, PDPT and PD");

    // One 4 KiB page of it: the rest stays mapped through a new page table.
    table
        .unmap_and_free_range(va(0x4000_1000), PAGE, Holes::Refuse, &mut alloc, |_| {})
        .unwrap()
        .ignore();
    assert_eq!(alloc.frames_in_use(), 1 + 511 + 2 + 1, "one frame back, one page table taken");
    assert_eq!(
        table.translate(va(0x4000_2000)).map(|hit| hit.phys),
        Ok(PhysAddr::new(huge.as_u64() + 0x2000))
    );

    // The remaining 511 pages go back frame by frame, and the run is whole again.
    table
        .unmap_and_free_range(va(0x4000_0000), 0x20_0000, Holes::Skip, &mut alloc, |_| {})
        .unwrap()
        .ignore();
    assert_eq!(alloc.frames_in_use(), 1);
    assert_eq!(alloc.allocate_contiguous(512, Size2MiB::SIZE), Ok(huge));
    alloc.deallocate_contiguous(huge, 512).unwrap();

    // Mapped whole and unmapped whole: one contiguous free of 512 frames.
    table.map(huge_page, frame(huge.as_u64()), RW, &mut alloc).unwrap().ignore();
    table
        .unmap_and_free_range(va(0x4000_0000), 0x20_0000, Holes::Refuse, &mut alloc, |_| {})
        .unwrap()
        .ignore();
    assert_eq!(alloc.frames_in_use(), 1);
}

#[test]
fn payloads_and_refused_frames_stay_the_callers() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = [0; 128];
    let mut alloc = sim_allocator(&mut bitmap);
    let mut table = PageTable::<X86_64, _>::new(machine.ram_mut(), &mut alloc).unwrap();
    // A device's page (not the allocator's), a swap slot's payload, and a fresh page.
    table.map(page::<Size4KiB>(0x1000), frame(0xFEE0_0000), RW, &mut alloc).unwrap().ignore();
    table
        .set_entry(page::<Size4KiB>(0x2000), NewEntry::Payload(0x40), &mut alloc)
        .unwrap()
        .1
        .ignore();
    table.allocate_and_map_range(va(0x3000), PAGE, RW, &mut alloc).unwrap().ignore();
    assert_eq!(alloc.frames_in_use(), 5);

    let mut not_freed = Vec::new();
    table
        .unmap_and_free_range(va(0x1000), 3 * PAGE, Holes::Refuse, &mut alloc, |u| {
            not_freed.push(u);
        })
        .unwrap()
        .ignore();
    let device = MappedPage { virt: va(0x1000), frame: pa(0xFEE0_0000), size: PAGE, flags: RW };
    assert_eq!(
        not_freed,
        [Unmapped::Page(device), Unmapped::Payload { virt: va(0x2000), size: PAGE, payload: 0x40 }]
    );
    assert_eq!(alloc.frames_in_use(), 1);
}

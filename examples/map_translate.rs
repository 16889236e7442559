//! Maps, translates and unmaps on an x86-64 4-level table held in host memory, printing
//! each step and the walk the MMU would make.

use paging::frame::{BitmapAllocator, FrameAllocator, MemoryRegion};
use paging::table::{Holes, Unmapped};
use paging::{
    ArenaMemory, Entry, Frame, FrameBuf, Page, PageFlags, PageTable, PhysAddr, Size2MiB, Size4KiB,
    VirtAddr,
};
use paging_x86::X86_64;

/// 4 MiB of simulated physical memory: 1024 frames.
const FRAMES: usize = 1024;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut ram = vec![FrameBuf::ZERO; FRAMES];
    let mut memory = ArenaMemory::new(&mut ram, PhysAddr::ZERO);
    let mut bitmap = [0u64; FRAMES / 64];
    // The first 2 MiB hold the "kernel"; frames for tables come from the rest.
    let map = [MemoryRegion::usable(0, (FRAMES as u64) * 4096), MemoryRegion::reserved(0, 2 << 20)];
    let mut frames = BitmapAllocator::new(&mut bitmap, &map)?;
    let mut table = PageTable::<X86_64, _>::new(&mut memory, &mut frames)?;
    println!("root table at {}, frames in use: {}", table.root(), frames.frames_in_use());

    let rw = PageFlags::READABLE | PageFlags::WRITABLE;
    let page = Page::<Size4KiB>::from_start(VirtAddr::new(0x7fff_0000_0000))?;
    let frame = Frame::<Size4KiB>::from_start(PhysAddr::new(0x1234_5000))?;
    table.map(page, frame, rw | PageFlags::USER, &mut frames)?.ignore();
    println!("\nmapped {page:?} -> {frame:?}; tables now: {}", table.table_count());
    print_walk(&table, VirtAddr::new(0x7fff_0000_0abc));

    let huge = Page::<Size2MiB>::from_start(VirtAddr::new(0xffff_8000_0020_0000))?;
    table
        .map(
            huge,
            Frame::from_start(PhysAddr::new(0x4000_0000))?,
            rw | PageFlags::GLOBAL,
            &mut frames,
        )?
        .ignore();
    let hit = table.translate(VirtAddr::new(0xffff_8000_0023_4567))?;
    println!(
        "\n2 MiB kernel page: {:#x} -> {} ({:#x}-byte page, {:?})",
        0xffff_8000_0023_4567_u64, hit.phys, hit.size, hit.flags
    );

    // A range picks the largest pages alignment allows: here 2 MiB pages in the middle.
    let start = VirtAddr::new(0x1000_0000 - 0x3000);
    table
        .map_range(start, PhysAddr::new(0x8000_0000 - 0x3000), 0x60_6000, rw, &mut frames)?
        .ignore();
    println!("\nmapped a 6 MiB range: 3 pages of 4 KiB, then 2 MiB pages, then 4 KiB pages");
    for probe in [0x0fff_d000_u64, 0x1000_0000, 0x1040_0000, 0x1060_2000] {
        let hit = table.translate(VirtAddr::new(probe))?;
        println!("  {probe:#x} -> {} in a {:#x}-byte page", hit.phys, hit.size);
    }

    // Mapping over what is there is refused, and nothing changes.
    let before = table.table_count();
    let refused = table.map(page, frame, rw, &mut frames);
    println!("\nmapping {page:?} again: {}", refused.unwrap_err());
    assert_eq!(table.table_count(), before);

    // Unmapping part of a 2 MiB page splits it.
    let mut removed = 0;
    let flush =
        table.unmap_range(VirtAddr::new(0x1000_0000), 0x1000, Holes::Refuse, &mut frames, |u| {
            if let Unmapped::Page(_) = u {
                removed += 1;
            }
        })?;
    println!(
        "\nunmapped one 4 KiB page out of a 2 MiB page: {removed} removed, {} page(s) to flush",
        flush.pages().len()
    );
    flush.ignore();
    println!("  {:#x}: {}", 0x1000_0000, table.translate(VirtAddr::new(0x1000_0000)).unwrap_err());
    println!("  {:#x} -> {}", 0x1000_1000, table.translate(VirtAddr::new(0x1000_1000))?.phys);

    // Unmap everything; the empty tables go back to the allocator.
    table.unmap(page, &mut frames)?.2.ignore();
    table.unmap(huge, &mut frames)?.2.ignore();
    table.unmap_range(start, 0x60_6000, Holes::Skip, &mut frames, |_| {})?.ignore();
    println!(
        "\nall unmapped: tables {}, frames in use {} (the root)",
        table.table_count(),
        frames.frames_in_use()
    );
    Ok(())
}

fn print_walk<M: paging::TableMemory>(table: &PageTable<X86_64, M>, addr: VirtAddr) {
    println!("walk of {addr}:");
    for step in table.walk(addr) {
        let what = match step.entry {
            Entry::Table { frame, .. } => format!("table at {frame}"),
            Entry::Leaf { frame, flags } => format!("page at {frame}, {flags:?}"),
            other => format!("{other:?}"),
        };
        println!("  level {} [{:3}] = {:#018x}  {what}", step.level, step.index, step.raw);
    }
}

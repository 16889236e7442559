//! PAE's root entries, which the CPU loads with CR3: the engine gives every PDPTE its page
//! directory with the root, all or nothing, unmapping never takes one away, and destroy
//! gives them back.

use paging::frame::{BitmapAllocator, FrameAllocator, MemoryRegion};
use paging::space::{AddressSpace, Layout, SpaceConfig};
use paging::table::{Holes, NewEntry, Rewrite};
use paging::{
    ArenaMemory, Asid, EntrySize, FrameBuf, FrameError, PageFlags, PageTable, PageTableFormat,
    PhysAddr, Size2MiB, Size4KiB, TableError, TableMemory,
};
use paging_harness::fixtures::{Arena, frame, pa, page, va};
use paging_x86::{Legacy32, Pae, X86_64, X86_64La57};

const RW: PageFlags = PageFlags::READABLE.union(PageFlags::WRITABLE);

/// The four PDPTEs of the PDPT at `root`.
fn pdptes(memory: &impl TableMemory, root: PhysAddr) -> [u64; 4] {
    [0, 1, 2, 3].map(|index| memory.read_entry(root + index * 8, EntrySize::Eight))
}

/// The PDPTEs of a new table in an arena whose allocator hands out frames from 0 up: the
/// root at 0, and its four directories in the next frames (present, address only).
const FRESH: [u64; 4] = [0x1001, 0x2001, 0x3001, 0x4001];

/// Maps the 4 KiB page at 1 GiB (taking a page table under the second directory).
fn map_one<M: TableMemory, A: FrameAllocator>(table: &mut PageTable<Pae, M>, alloc: &mut A) {
    table.map(page::<Size4KiB>(0x4000_0000), frame(0x10_0000), RW, alloc).unwrap().ignore();
}

#[test]
fn only_pae_loads_its_root_entries_with_the_root() {
    let loaded = [
        Pae::ROOT_ENTRIES_LOADED_WITH_ROOT,
        Legacy32::ROOT_ENTRIES_LOADED_WITH_ROOT,
        X86_64::ROOT_ENTRIES_LOADED_WITH_ROOT,
        X86_64La57::ROOT_ENTRIES_LOADED_WITH_ROOT,
    ];
    assert_eq!(loaded, [true, false, false, false]);
}

#[test]
fn a_new_pae_table_has_a_directory_under_every_pdpte() {
    let mut rig = Arena::new(16);
    let (memory, mut alloc) = rig.limited_parts();
    let table = PageTable::<Pae, _>::new(memory, &mut alloc).unwrap();
    assert_eq!(table.root(), pa(0));
    assert_eq!(pdptes(table.memory(), table.root()), FRESH);
    assert_eq!((alloc.frames_in_use(), table.table_count()), (5, 5));
    assert_eq!(
        table.translate(va(0xC000_0000)),
        Err(TableError::NotMapped { addr: va(0xC000_0000) })
    );
    // Formats that walk their root from memory still start with the root alone.
    let x86_64 = PageTable::<X86_64, _>::new(table.destroy(&mut alloc), &mut alloc).unwrap();
    assert_eq!((alloc.frames_in_use(), x86_64.table_count()), (1, 1));
}

#[test]
fn unmapping_gives_back_page_tables_but_never_a_directory() {
    let mut rig = Arena::new(32);
    let (memory, mut alloc) = rig.limited_parts();
    let mut table = PageTable::<Pae, _>::new(memory, &mut alloc).unwrap();
    let root = table.root();

    // A 4 KiB page takes a page table; unmapping it gives that back, not the directory.
    table.map(page::<Size4KiB>(0xC000_0000), frame(0x10_0000), RW, &mut alloc).unwrap().ignore();
    assert_eq!(alloc.frames_in_use(), 6);
    table.unmap(page::<Size4KiB>(0xC000_0000), &mut alloc).unwrap().2.ignore();
    assert_eq!((alloc.frames_in_use(), pdptes(table.memory(), root)), (5, FRESH));

    // The same through set_entry, unmap_range, rewrite_range and unmap_and_free_range.
    map_one(&mut table, &mut alloc);
    table.set_entry(page::<Size4KiB>(0x4000_0000), NewEntry::Empty, &mut alloc).unwrap().1.ignore();
    assert_eq!((alloc.frames_in_use(), pdptes(table.memory(), root)), (5, FRESH));
    map_one(&mut table, &mut alloc);
    table.unmap_range(va(0), 1 << 32, Holes::Skip, &mut alloc, |_| {}).unwrap().ignore();
    assert_eq!((alloc.frames_in_use(), pdptes(table.memory(), root)), (5, FRESH));
    map_one(&mut table, &mut alloc);
    let clear = |_, _, _| Rewrite::Clear;
    table.rewrite_range(va(0), 1 << 32, &mut alloc, clear, |_, _| {}).unwrap().ignore();
    assert_eq!((alloc.frames_in_use(), pdptes(table.memory(), root)), (5, FRESH));
    table.allocate_and_map_range(va(0x8000_0000), 0x2000, RW, &mut alloc).unwrap().ignore();
    assert_eq!(alloc.frames_in_use(), 8, "a page table and two pages");
    let flush = table.unmap_and_free_range(va(0), 1 << 32, Holes::Skip, &mut alloc, |_| {});
    flush.unwrap().ignore();
    assert_eq!((alloc.frames_in_use(), pdptes(table.memory(), root)), (5, FRESH));

    // A 2 MiB page lives in the directory itself: nothing to take or give back.
    table.map(page::<Size2MiB>(0x4020_0000), frame(0x20_0000), RW, &mut alloc).unwrap().ignore();
    assert_eq!(alloc.frames_in_use(), 5);
    table.unmap(page::<Size2MiB>(0x4020_0000), &mut alloc).unwrap().2.ignore();
    assert_eq!((alloc.frames_in_use(), pdptes(table.memory(), root)), (5, FRESH));

    // Destroy gives back the directories with the root.
    let _ = table.destroy(&mut alloc);
    assert_eq!(alloc.frames_in_use(), 0);
}

#[test]
fn a_pae_table_is_made_whole_or_not_at_all() {
    let mut rig = Arena::new(16);
    let (memory, mut alloc) = rig.limited_parts();
    let mut memory = memory;
    for budget in 0..5 {
        alloc.set_budget(budget);
        let refused = PageTable::<Pae, _>::new(&mut memory, &mut alloc).map(|table| table.root());
        let error =
            TableError::OutOfFrames { needed: 5, got: budget, source: FrameError::Exhausted };
        assert_eq!(refused, Err(error), "budget {budget}");
        assert_eq!(alloc.frames_in_use(), 0, "budget {budget}: frames kept");
        assert!(memory.frames().iter().all(|frame| *frame == FrameBuf::ZERO), "budget {budget}");
    }
    alloc.set_budget(5);
    let table = PageTable::<Pae, _>::new(&mut memory, &mut alloc).unwrap();
    assert_eq!(pdptes(table.memory(), table.root()), FRESH);
}

#[test]
fn a_directory_frame_outside_table_memory_refuses_the_table() {
    // Three frames of table memory, an allocator that hands out eight.
    let mut ram = vec![FrameBuf::ZERO; 3];
    let mut memory = ArenaMemory::new(&mut ram, PhysAddr::ZERO);
    let mut bitmap = [0u64; 1];
    let usable = [MemoryRegion::usable(0, 8 * 4096)];
    let mut alloc = BitmapAllocator::new(&mut bitmap, &usable).unwrap();
    let refused = PageTable::<Pae, _>::new(&mut memory, &mut alloc).map(|table| table.root());
    assert_eq!(refused, Err(TableError::FrameOutsideMemory { frame: pa(0x3000) }));
    assert_eq!(alloc.frames_in_use(), 0);
    assert!(memory.frames().iter().all(|frame| *frame == FrameBuf::ZERO));
}

#[test]
fn a_pae_space_sharing_a_kernel_half_makes_directories_for_its_user_half_only() {
    let mut rig = Arena::new(32);
    let (mut memory, mut alloc) = rig.limited_parts();
    let kernel = PageTable::<Pae, _>::new(&mut memory, &mut alloc).unwrap().root();
    let kernel_pdptes = pdptes(&memory, kernel);
    let (layout, config) = (Layout::X86_32_2G, SpaceConfig::default());
    let space =
        AddressSpace::<Pae, 8>::new(layout, config, Asid(1), Some(kernel), &mut memory, &mut alloc)
            .unwrap();
    assert_eq!(alloc.frames_in_use(), 5 + 3, "the space's root and two directories");
    let user = [0x6001, 0x7001];
    assert_eq!(
        pdptes(&memory, space.root()),
        [user[0], user[1], kernel_pdptes[2], kernel_pdptes[3]]
    );
    space.destroy(&mut memory, &mut alloc);
    assert_eq!(alloc.frames_in_use(), 5, "the kernel's directories stay");
    assert_eq!(pdptes(&memory, kernel), kernel_pdptes);

    // Without a kernel root the space owns all four, and gives all four back.
    let space = AddressSpace::<Pae, 8>::new(layout, config, Asid(2), None, &mut memory, &mut alloc)
        .unwrap();
    assert_eq!(alloc.frames_in_use(), 10);
    space.destroy(&mut memory, &mut alloc);
    assert_eq!(alloc.frames_in_use(), 5);
}

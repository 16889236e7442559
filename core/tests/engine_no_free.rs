//! An allocator that cannot take frames back (a bump allocator): the engine keeps the
//! tables it would have given back linked, empty, instead of unlinking and losing them.

use paging::frame::{BitmapAllocator, FrameAllocator, MemoryRegion};
use paging::table::Holes;
use paging::{ArenaMemory, Frame, FrameBuf, FrameError, Page, PageFlags, PageTable, PhysAddr};
use paging::{Size4KiB, VirtAddr};
use paging_x86::X86_64;

/// Hands frames out and takes none back: `deallocate` is the trait's default.
struct Bump<'a>(BitmapAllocator<'a>);

impl FrameAllocator for Bump<'_> {
    fn allocate(&mut self) -> Result<PhysAddr, FrameError> {
        self.0.allocate()
    }
    fn frames_in_use(&self) -> usize {
        self.0.frames_in_use()
    }
}

#[test]
fn tables_that_cannot_go_back_stay_in_the_tree() {
    let mut ram = vec![FrameBuf::ZERO; 32];
    let mut memory = ArenaMemory::new(&mut ram, PhysAddr::ZERO);
    let mut words = [0u64; 1];
    let mut frames =
        Bump(BitmapAllocator::new(&mut words, &[MemoryRegion::usable(0, 32 * 4096)]).unwrap());
    assert_eq!(
        frames.deallocate(PhysAddr::ZERO),
        Err(FrameError::Unsupported { operation: "deallocate" })
    );

    let mut table = PageTable::<X86_64, _>::new(&mut memory, &mut frames).unwrap();
    let page = Page::<Size4KiB>::containing(VirtAddr::new(0x4000_0000));
    let frame = Frame::containing(PhysAddr::new(0x1_F000));
    table.map(page, frame, PageFlags::WRITABLE, &mut frames).unwrap().ignore();
    assert_eq!(table.table_count(), 4);

    table.unmap(page, &mut frames).unwrap().2.ignore();
    assert_eq!(table.table_count(), 4, "the emptied tables stay linked");
    assert!(table.translate(page.start()).is_err());
    // Mapping there again reuses them: no frame is taken.
    table.map(page, frame, PageFlags::WRITABLE, &mut frames).unwrap().ignore();
    assert_eq!(frames.frames_in_use(), 4);

    // The range driver does the same.
    let start = VirtAddr::new(0x80_0000_0000);
    table
        .map_range(start, PhysAddr::new(0x1_0000), 0x3000, PageFlags::empty(), &mut frames)
        .unwrap()
        .ignore();
    assert_eq!(frames.frames_in_use(), 7);
    table.unmap_range(start, 0x3000, Holes::Refuse, &mut frames, |_| {}).unwrap().ignore();
    assert_eq!((table.table_count(), frames.frames_in_use()), (7, 7));
    table
        .map_range(start, PhysAddr::new(0x1_0000), 0x3000, PageFlags::empty(), &mut frames)
        .unwrap()
        .ignore();
    assert_eq!(frames.frames_in_use(), 7);
}

//! The frame-allocator adapters between `paging` and the `x86_64` crate.
#![cfg(feature = "x86_64")]
#![allow(unsafe_code, reason = "the x86_64 crate's allocator traits are unsafe")]

use paging::frame::{BitmapAllocator, FrameAllocator, MemoryRegion};
use paging::{ArenaMemory, FrameBuf, FrameError, Page, PageFlags, PageTable, PhysAddr, VirtAddr};
use paging_x86::X86_64;
use paging_x86::interop::{ForX86_64, FromX86_64, FromX86_64AllocateOnly};
use proptest::prelude::*;
use x86_64::structures::paging as theirs;
use x86_64::structures::paging::{FrameDeallocator, PhysFrame, Size1GiB, Size2MiB, Size4KiB};

/// An x86_64-crate allocator over a stack of free frames, as a kernel might have written.
struct Stack {
    free: Vec<PhysFrame<Size4KiB>>,
}

impl Stack {
    fn new(frames: u64) -> Self {
        let free = (0..frames)
            .rev()
            .map(|i| PhysFrame::containing_address(x86_64::PhysAddr::new(i * 4096)))
            .collect();
        Self { free }
    }
}

// SAFETY: the frames are host-memory stand-ins that nothing else uses.
unsafe impl theirs::FrameAllocator<Size4KiB> for Stack {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        self.free.pop()
    }
}

impl FrameDeallocator<Size4KiB> for Stack {
    unsafe fn deallocate_frame(&mut self, frame: PhysFrame<Size4KiB>) {
        self.free.push(frame);
    }
}

#[test]
fn our_allocator_serves_every_x86_64_frame_size() {
    // 2 GiB of usable memory from 1 GiB on: room for one aligned 1 GiB frame.
    let map = [MemoryRegion::usable(1 << 30, 2 << 30)];
    let mut storage = vec![0u64; BitmapAllocator::words_needed_for(&map)];
    let bitmap = BitmapAllocator::new(&mut storage, &map).unwrap();
    // SAFETY: nothing uses the (imaginary) memory the bitmap manages.
    let mut lent = unsafe { ForX86_64::new(bitmap) };

    let small: PhysFrame<Size4KiB> = theirs::FrameAllocator::allocate_frame(&mut lent).unwrap();
    assert_eq!(small.start_address().as_u64(), 1 << 30);
    let medium: PhysFrame<Size2MiB> = theirs::FrameAllocator::allocate_frame(&mut lent).unwrap();
    assert_eq!(medium.start_address().as_u64() % (2 << 20), 0);
    let large: PhysFrame<Size1GiB> = theirs::FrameAllocator::allocate_frame(&mut lent).unwrap();
    assert_eq!(large.start_address().as_u64(), 2 << 30);
    let none: Option<PhysFrame<Size1GiB>> = theirs::FrameAllocator::allocate_frame(&mut lent);
    assert_eq!(none, None);
    assert_eq!(lent.last_error(), Some(FrameError::Exhausted));
    assert_eq!(lent.inner().frames_in_use(), 1 + 512 + (1 << 18));

    // SAFETY: the frames are not in use.
    unsafe {
        lent.deallocate_frame(large);
        lent.deallocate_frame(medium);
        lent.deallocate_frame(small);
    }
    assert_eq!(lent.failed_deallocations(), 0);
    // A double free cannot be returned through the x86_64 crate's trait: it is counted.
    // SAFETY: the inner allocator refuses it; nothing is freed twice.
    unsafe { lent.deallocate_frame(small) };
    assert_eq!(lent.failed_deallocations(), 1);
    assert_eq!(
        lent.last_error(),
        Some(FrameError::NotAllocated { frame: PhysAddr::from(small.start_address()) })
    );
    assert_eq!(lent.into_inner().frames_in_use(), 0);
}

#[test]
fn the_engine_runs_on_an_x86_64_crate_allocator() {
    let mut ram = vec![FrameBuf::ZERO; 16];
    let mut memory = ArenaMemory::new(&mut ram, PhysAddr::ZERO);
    // SAFETY: the engine gives back only tables it unlinked, and nothing else frees.
    let mut frames = unsafe { FromX86_64::new(Stack::new(16)) };

    let mut table = PageTable::<X86_64, _>::new(&mut memory, &mut frames).unwrap();
    let page = Page::<paging::Size4KiB>::containing(VirtAddr::new(0x4000_0000));
    let frame = paging::Frame::containing(PhysAddr::new(0xF000));
    table.map(page, frame, PageFlags::WRITABLE, &mut frames).unwrap().ignore();
    assert_eq!(frames.frames_in_use(), 4); // the root and three tables
    let (_, _, flush) = table.unmap(page, &mut frames).unwrap();
    flush.ignore();
    assert_eq!(frames.frames_in_use(), 1, "the emptied tables went back");
    assert_eq!(frames.inner().free.len(), 15);

    assert_eq!(
        frames.deallocate(PhysAddr::new(0x1234)),
        Err(FrameError::Unaligned { frame: PhysAddr::new(0x1234) })
    );
    assert_eq!(
        frames.allocate_contiguous(2, 4096),
        Err(FrameError::Unsupported { operation: "allocate_contiguous" })
    );
}

#[test]
fn an_allocator_that_cannot_free_says_so() {
    let mut frames = FromX86_64AllocateOnly::new(Stack::new(2));
    let frame = frames.allocate().unwrap();
    assert_eq!(frames.deallocate(frame), Err(FrameError::Unsupported { operation: "deallocate" }));
    assert_eq!(frames.allocate_contiguous(1, 4096), Ok(PhysAddr::new(0x1000)));
    assert_eq!(frames.allocate(), Err(FrameError::Exhausted));
    assert_eq!((frames.frames_in_use(), frames.frames_free()), (2, None));
}

proptest! {
    /// Ours lent to the x86_64 crate and lent back behaves as ours does.
    #[test]
    fn lending_both_ways_round_trips(steps in proptest::collection::vec(any::<bool>(), 1..64)) {
        let map = [MemoryRegion::usable(0, 32 * 4096)];
        let (mut direct_words, mut lent_words) = ([0u64; 1], [0u64; 1]);
        let mut direct = BitmapAllocator::new(&mut direct_words, &map).unwrap();
        let bitmap = BitmapAllocator::new(&mut lent_words, &map).unwrap();
        // SAFETY: imaginary memory; frames come back only after they were handed out here.
        let mut both_ways = unsafe { FromX86_64::new(ForX86_64::new(bitmap)) };
        let mut held = Vec::new();
        for allocate in steps {
            if allocate || held.is_empty() {
                let expected = direct.allocate();
                prop_assert_eq!(both_ways.allocate().ok(), expected.ok());
                if let Ok(frame) = expected {
                    held.push(frame);
                }
            } else if let Some(frame) = held.pop() {
                prop_assert_eq!(both_ways.deallocate(frame), direct.deallocate(frame));
            }
            prop_assert_eq!(both_ways.frames_in_use(), direct.frames_in_use());
        }
        prop_assert_eq!(both_ways.inner().failed_deallocations(), 0);
    }
}

//! Regression tests for bugs the address-space model found: each was a failing case of
//! the property test (now `paging_harness::space_ops`, driven by `space_model.rs` and by
//! the fuzzer), kept here as a fixed scenario.

use paging::VirtAddr;
use paging::frame::FrameAllocator;
use paging::space::{Protection, Section, SpaceError};
use paging_harness::fixtures::{sim_allocator, sim_space};
use paging_sim::{Machine, MachineConfig, SpaceKernel};
use paging_x86::X86_64;

const PAGE: u64 = 0x1000;
const GRANULARITY: u64 = 0x1_0000;

// ---- the bugs the model found, one by one ----

/// A view asked for at an address that is not a multiple of the granularity is refused
/// (as `MapViewOfFileEx` refuses it); a view at an aligned address holds its pages and
/// nothing else: no page of it maps a frame outside its section.
#[test]
fn a_view_at_an_unaligned_address_maps_only_its_section() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0u64; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let section = Section::create(2, machine.ram_mut(), &mut alloc).unwrap();
    // The space's root table takes the frame right after the section's.
    let (mut space, process) = sim_space(&mut machine, &mut alloc, 1);
    let asked = VirtAddr::new(0x2_3000);
    let refused =
        space.map_view(&section, Some(asked), 0, 2, Protection::READ_WRITE, machine.ram_mut());
    assert_eq!(refused, Err(SpaceError::Unaligned { addr: asked, align: GRANULARITY }));
    assert_eq!(section.views(machine.ram()), 0, "a refused view is not counted");
    let aligned = Some(VirtAddr::new(0x2_0000));
    let base = space.map_view(&section, aligned, 0, 2, Protection::READ_WRITE, machine.ram_mut());
    let base = base.unwrap();
    assert_eq!(Some(base), aligned);
    let info = space.query(base).unwrap();
    machine.switch_to(process);
    for (index, page) in (base.as_u64()..info.end().as_u64()).step_by(PAGE as usize).enumerate() {
        let mut kernel = SpaceKernel::new(&mut space, &mut alloc);
        machine.load_value::<u8, _>(VirtAddr::new(page), &mut kernel).unwrap();
        let frame = space.page_table(machine.ram_mut()).translate(VirtAddr::new(page));
        let frame = frame.unwrap().frame;
        let own = section.frame(machine.ram(), index as u64);
        assert_eq!(Some(frame), own, "{page:#x} maps {frame:?}, not the section's page");
    }
    assert_eq!(info.size, 2 * PAGE, "the view holds its 2 pages");
}

/// A write through a write-copy view never reaches the section, whatever protection the
/// view's pages are given: read-write is refused (a view takes only what its own protection
/// grants, Wine's test_mapping), and after read-only and back to write-copy a page still
/// gets a private copy on its first write.
#[test]
fn writes_through_a_write_copy_view_never_reach_the_section() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0u64; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let section = Section::create(1, machine.ram_mut(), &mut alloc).unwrap();
    let (mut space, process) = sim_space(&mut machine, &mut alloc, 1);
    let view = space.map_view(&section, None, 0, 1, Protection::WRITE_COPY, machine.ram_mut());
    let view = view.unwrap();
    machine.switch_to(process);
    let (memory, frames) = (machine.ram_mut(), &mut alloc);
    let refused = space.protect(view, PAGE, Protection::READ_WRITE, memory, frames).unwrap_err();
    assert_eq!((refused, refused.windows_error()), (SpaceError::ReadOnlyView, Some(87)));
    assert_eq!(space.query(view).unwrap().protect, Some(Protection::WRITE_COPY));
    for (to, was) in [
        (Protection::READ_ONLY, Protection::WRITE_COPY),
        (Protection::WRITE_COPY, Protection::READ_ONLY),
    ] {
        let (memory, frames) = (machine.ram_mut(), &mut alloc);
        let (old, flush) = space.protect(view, PAGE, to, memory, frames).unwrap();
        assert_eq!(old, was);
        flush.apply(&mut machine);
    }
    let mut kernel = SpaceKernel::new(&mut space, &mut alloc);
    machine.store_value(view, 0x55_u8, &mut kernel).unwrap();
    assert_eq!(machine.load_value::<u8, _>(view, &mut kernel).unwrap(), 0x55, "the copy");
    let mut byte = [0u8];
    if let Some(frame) = section.frame(machine.ram(), 0) {
        machine.ram().read(frame, &mut byte).unwrap();
    }
    assert_eq!(byte, [0], "the section's page is unchanged");
    // The page is a private copy now, and reads as read-write (as Windows reports it).
    assert_eq!(space.query(view).unwrap().protect, Some(Protection::READ_WRITE));
}

/// Windows: `PAGE_GUARD` cannot be combined with `PAGE_NOACCESS`
/// (`ERROR_INVALID_PARAMETER`), as `Protection::from_windows(0x101)` says too.
#[test]
fn guard_cannot_combine_with_no_access() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0u64; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let (mut space, _) = sim_space(&mut machine, &mut alloc, 1);
    let invalid = Err(SpaceError::InvalidProtection { bits: 0x101 });
    let guarded = Protection::NO_ACCESS.guard();
    assert_eq!(space.reserve(None, PAGE, guarded), invalid);
    assert_eq!(space.commit(None, PAGE, guarded), invalid);
    let base = space.commit(None, PAGE, Protection::READ_WRITE).unwrap();
    let (memory, frames) = (machine.ram_mut(), &mut alloc);
    let changed = space.protect(base, PAGE, guarded, memory, frames).map(|(old, _)| old);
    assert_eq!(changed, invalid.map(|_: VirtAddr| Protection::READ_WRITE));
}

/// `destroy` "releases every reservation and view ... views' sections count one view
/// less": a section whose views went with their space can be closed, and no frame stays
/// in use.
#[test]
fn destroying_a_space_lets_its_views_sections_close() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0u64; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let section = Section::create(1, machine.ram_mut(), &mut alloc).unwrap();
    let (mut space, _) = sim_space(&mut machine, &mut alloc, 1);
    space.map_view(&section, None, 0, 1, Protection::READ_WRITE, machine.ram_mut()).unwrap();
    assert_eq!(section.views(machine.ram()), 1);
    space.destroy(machine.ram_mut(), &mut alloc);
    assert_eq!(section.views(machine.ram()), 0, "the view went with the space");
    assert_eq!(section.close(machine.ram(), &mut alloc), Ok(()));
    assert_eq!(alloc.frames_in_use(), 0);
}

//! Address spaces running on the simulated machine: the fault path end to end.

use paging::frame::{BitmapAllocator, FrameAllocator};

use paging::space::{
    AccessViolation, AddressSpace, FaultChain, Layout, MemoryType, PageState, Protection, Section,
    SpaceConfig, Violation,
};
use paging::table::{MappedPage, Visit};
use paging::{Access, Asid, Exception, Fault, Privilege, Resolution};
use paging_harness::fixtures::{sim_allocator, sim_space, user_fault};
use paging_sim::{Machine, MachineConfig, MachineError, NoResolver, RaisedFault, SpaceKernel};
use paging_x86::X86_64;

type Space = AddressSpace<X86_64>;

struct World {
    machine: Machine<X86_64>,
    bitmap: Box<[u64; 128]>,
}

impl World {
    fn new() -> Self {
        Self { machine: Machine::new(MachineConfig::default()), bitmap: Box::new([0; 128]) }
    }
}

#[test]
fn committed_memory_is_zero_on_first_touch_and_takes_a_frame_only_then() {
    let mut world = World::new();
    let mut alloc = sim_allocator(&mut world.bitmap);
    let machine = &mut world.machine;
    let (mut space, process) = sim_space(machine, &mut alloc, 1);
    machine.switch_to(process);
    let base = space.commit(None, 0x3000, Protection::READ_WRITE).unwrap();
    let before = alloc.frames_in_use();
    let mut kernel = SpaceKernel::new(&mut space, &mut alloc);
    assert_eq!(machine.load_value::<u64, _>(base + 0x1008, &mut kernel), Ok(0));
    machine.store_value(base + 0x1008, 0xFEED_u64, &mut kernel).unwrap();
    assert_eq!(machine.load_value::<u64, _>(base + 0x1008, &mut kernel), Ok(0xFEED));
    // One data frame and the three tables below the root.
    assert_eq!(alloc.frames_in_use() - before, 4);
    assert_eq!(machine.counters().faults_not_present, 1);
    // Decommit gives the frame and the tables back.
    let flush = space.decommit(base, 0x3000, machine.ram_mut(), &mut alloc).unwrap();
    flush.apply(machine);
    assert_eq!(alloc.frames_in_use(), before);
    assert_eq!(space.query(base).unwrap().state, PageState::Reserved);
}

#[test]
fn a_guard_page_fires_once() {
    let mut world = World::new();
    let mut alloc = sim_allocator(&mut world.bitmap);
    let machine = &mut world.machine;
    let (mut space, process) = sim_space(machine, &mut alloc, 1);
    machine.switch_to(process);
    let base = space.commit(None, 0x2000, Protection::READ_WRITE.guard()).unwrap();
    let mut kernel = SpaceKernel::new(&mut space, &mut alloc);
    let err = machine.load_value::<u8, _>(base, &mut kernel).unwrap_err();
    assert!(
        matches!(err, MachineError::Exception { exception: Exception::GuardPage { .. }, .. }),
        "{err}"
    );
    assert_eq!(machine.load_value::<u8, _>(base, &mut kernel), Ok(0), "the guard is gone");
    assert_eq!(space.query(base).unwrap().protect, Some(Protection::READ_WRITE));
    assert_eq!(space.query(base + 0x1000).unwrap().protect, Some(Protection::READ_WRITE.guard()));
}

/// The guard-page exception carries the access that fired it, as Windows' exception record
/// does (`ExceptionInformation[0]`: 0 read, 1 write, 8 execute; Wine's `test_guard_page`
/// and, for execution with NX, its `execute_fault_seh_handler` expecting
/// `EXCEPTION_EXECUTE_FAULT`) with the address beside it.
#[test]
fn a_guard_page_exception_names_the_access() {
    let mut world = World::new();
    let mut alloc = sim_allocator(&mut world.bitmap);
    let machine = &mut world.machine;
    let (mut space, process) = sim_space(machine, &mut alloc, 1);
    machine.switch_to(process);
    let base = space.commit(None, 0x3000, Protection::READ_WRITE.guard()).unwrap();
    let code = space.commit(None, 0x1000, Protection::EXECUTE_READ.guard()).unwrap();
    let mut kernel = SpaceKernel::new(&mut space, &mut alloc);
    let fired = |error: MachineError| match error {
        MachineError::Exception { exception: e @ Exception::GuardPage { .. }, .. } => e,
        other => panic!("expected a guard-page exception, got {other}"),
    };
    let read = fired(machine.load_value::<u8, _>(base + 0x10, &mut kernel).unwrap_err());
    assert_eq!(read, Exception::GuardPage { addr: base + 0x10, access: Access::Read });
    assert_eq!(read.information(), [0, (base + 0x10).as_u64()]);
    let write = fired(machine.store_value(base + 0x1020, 7_u8, &mut kernel).unwrap_err());
    assert_eq!(write, Exception::GuardPage { addr: base + 0x1020, access: Access::Write });
    assert_eq!(write.information(), [1, (base + 0x1020).as_u64()]);
    let mut byte = [0; 1];
    let execute = fired(machine.fetch(code + 0x30, &mut byte, &mut kernel).unwrap_err());
    assert_eq!(execute, Exception::GuardPage { addr: code + 0x30, access: Access::Execute });
    assert_eq!(execute.information(), [8, (code + 0x30).as_u64()]);
    assert_eq!(execute.status(), 0x8000_0001);
    assert_eq!(
        execute.to_string(),
        format!("guard page violation: execute of {:#x}", (code + 0x30).as_u64())
    );
}

#[test]
fn copy_on_write_between_two_processes_sharing_a_section() {
    let mut world = World::new();
    let mut alloc = sim_allocator(&mut world.bitmap);
    let machine = &mut world.machine;
    let section = Section::create(4, machine.ram_mut(), &mut alloc).unwrap();
    let (mut a, pa) = sim_space(machine, &mut alloc, 1);
    let (mut b, pb) = sim_space(machine, &mut alloc, 2);
    let view_a =
        a.map_view(&section, None, 0, 4, Protection::READ_WRITE, machine.ram_mut()).unwrap();
    let view_b =
        b.map_view(&section, None, 0, 4, Protection::WRITE_COPY, machine.ram_mut()).unwrap();

    machine.switch_to(pa);
    machine.store_value(view_a, 1111_u32, &mut SpaceKernel::new(&mut a, &mut alloc)).unwrap();
    machine.switch_to(pb);
    let mut kernel_b = SpaceKernel::new(&mut b, &mut alloc);
    assert_eq!(machine.load_value::<u32, _>(view_b, &mut kernel_b), Ok(1111), "shared");
    machine.store_value(view_b, 2222_u32, &mut kernel_b).unwrap();
    assert_eq!(machine.load_value::<u32, _>(view_b, &mut kernel_b), Ok(2222), "B's private copy");
    let info = b.query(view_b).unwrap();
    assert_eq!((info.protect, info.kind), (Some(Protection::READ_WRITE), Some(MemoryType::Mapped)));
    machine.switch_to(pa);
    assert_eq!(
        machine.load_value::<u32, _>(view_a, &mut SpaceKernel::new(&mut a, &mut alloc)),
        Ok(1111),
        "A unaffected"
    );

    // Unmapping gives B's private copy back; the section keeps its frames until closed.
    let in_use = alloc.frames_in_use();
    b.unmap_view(view_b, machine.ram_mut(), &mut alloc).unwrap().apply(machine);
    assert!(alloc.frames_in_use() < in_use);
    let (section, err) = section.close(machine.ram(), &mut alloc).unwrap_err();
    assert_eq!(section.views(machine.ram()), 1, "{err}");
    // Destroying A's space takes its view down too; the section can close then.
    a.destroy(machine.ram_mut(), &mut alloc);
    section.close(machine.ram(), &mut alloc).unwrap();
}

#[test]
fn unresolved_faults_go_to_the_process_then_terminate_it() {
    let mut world = World::new();
    let mut alloc = sim_allocator(&mut world.bitmap);
    let machine = &mut world.machine;
    let (mut space, process) = sim_space(machine, &mut alloc, 1);
    machine.switch_to(process);
    let ro = space.commit(None, 0x1000, Protection::READ_ONLY).unwrap();
    let data = space.commit(None, 0x1000, Protection::READ_WRITE).unwrap();
    let reserved = space.reserve(None, 0x1000, Protection::READ_WRITE).unwrap();

    let mut chain = FaultChain::new(SpaceKernel::new(&mut space, &mut alloc), NoResolver);
    let err = machine.store_value(ro, 1u8, &mut chain).unwrap_err();
    assert!(matches!(
        err,
        MachineError::Exception {
            exception: Exception::AccessViolation { access: Access::Write, .. },
            ..
        }
    ));
    let err = machine.fetch(data, &mut [0u8; 4], &mut chain).unwrap_err();
    let MachineError::Exception { fault, .. } = err else { panic!() };
    assert_eq!(chain.second_chances, 2);
    let record: AccessViolation = space.explain(&fault.fault);
    assert_eq!(record.reason, Violation::NotExecutable(Protection::READ_WRITE));
    assert_eq!(record.windows_access(), 8);
    assert!(record.to_string().contains("data execution prevention"), "{record}");

    let fault = user_fault(reserved, Access::Read);
    assert_eq!(space.explain(&fault).reason, Violation::Reserved);

    // A process handler that commits reserved memory on demand resolves it at second
    // chance; kernel and handler share the space, one call at a time.
    let shared = std::cell::RefCell::new((space, alloc));
    let kernel = |m: &mut Machine<X86_64>, f: &Fault| {
        let (space, alloc) = &mut *shared.borrow_mut();
        let (resolution, flush) = space.resolve(f, m.ram_mut(), alloc);
        flush.apply(m);
        resolution
    };
    let handler = |_: &mut Machine<X86_64>, f: &Fault| {
        let (space, _) = &mut *shared.borrow_mut();
        match space.commit(Some(f.addr), 1, Protection::READ_WRITE) {
            Ok(_) => Resolution::Retry,
            Err(_) => Resolution::Pass,
        }
    };
    let mut chain = FaultChain::new(kernel, handler);
    assert_eq!(machine.load_value::<u8, _>(reserved, &mut chain), Ok(0));
    assert_eq!((chain.second_chances, chain.terminated), (1, None));
    let (space, _) = &*shared.borrow();
    assert_eq!(space.query(reserved).unwrap().state, PageState::Committed);
}

#[test]
fn spaces_are_isolated_and_share_only_the_kernel_half() {
    use paging::{Frame, Page, PageFlags, PageTable, Size4KiB};
    let mut world = World::new();
    let mut alloc = sim_allocator(&mut world.bitmap);
    let machine = &mut world.machine;
    // The kernel maps one supervisor page in its half before the spaces exist.
    let mut kernel = PageTable::<X86_64, _>::new(machine.ram_mut(), &mut alloc).unwrap();
    let kpage = Page::<Size4KiB>::from_start(paging::VirtAddr::new(0xffff_8000_0000_0000)).unwrap();
    let kframe = Frame::from_start(paging::PhysAddr::new(0x10_0000)).unwrap();
    let kflags = PageFlags::READABLE | PageFlags::WRITABLE | PageFlags::GLOBAL;
    kernel.map(kpage, kframe, kflags, &mut alloc).unwrap().ignore();
    let kernel_root = kernel.root();
    let mut spaces = Vec::new();
    for asid in [1, 2] {
        let config = SpaceConfig::default();
        let ram = machine.ram_mut();
        let space =
            Space::new(Layout::X86_64, config, Asid(asid), Some(kernel_root), ram, &mut alloc)
                .unwrap();
        let process = machine.add_process("p", space.root(), space.asid());
        spaces.push((space, process));
    }
    let addr = paging::VirtAddr::new(0x7000_0000);
    for (value, (space, process)) in [0xAAAA_u32, 0xBBBB].into_iter().zip(spaces.iter_mut()) {
        space.reserve(Some(addr), 0x1000, Protection::READ_WRITE).unwrap();
        space.commit(Some(addr), 0x1000, Protection::READ_WRITE).unwrap();
        machine.switch_to(*process);
        machine.store_value(addr, value, &mut SpaceKernel::new(space, &mut alloc)).unwrap();
    }
    let frames: Vec<_> = spaces
        .iter()
        .map(|(space, _)| space.page_table(machine.ram_mut()).translate(addr).unwrap().frame)
        .collect();
    assert_ne!(frames[0], frames[1]);
    for (index, (space, process)) in spaces.iter_mut().enumerate() {
        machine.switch_to(*process);
        let mut kernel = SpaceKernel::new(space, &mut alloc);
        let expected = [0xAAAA, 0xBBBB][index];
        assert_eq!(machine.load_value::<u32, _>(addr, &mut kernel), Ok(expected));
        // The other space's frame is mapped nowhere in this space.
        let other = frames[1 - index];
        space_maps_nothing_of(&mut kernel, machine, other);
        // The kernel page is there, but user mode cannot touch it.
        let err = machine.load_value::<u32, _>(kpage.start(), &mut kernel).unwrap_err();
        assert!(matches!(err, MachineError::Unhandled(f) if f.error_code == 0b101), "{err}");
        machine.set_mode(Privilege::Supervisor);
        machine.load_value::<u32, _>(kpage.start(), &mut NoResolver).unwrap();
        machine.set_mode(Privilege::User);
    }
}

/// Asserts that no page of the space maps `frame`.
fn space_maps_nothing_of(
    kernel: &mut SpaceKernel<'_, X86_64, 64, BitmapAllocator<'_>>,
    machine: &mut Machine<X86_64>,
    frame: paging::PhysAddr,
) {
    kernel.space.page_table(machine.ram_mut()).visit(|visit| {
        if let Visit::Page(MappedPage { frame: mapped, size, virt, .. }) = visit {
            let user = virt.as_u64() < 0x8000_0000_0000;
            assert!(!user || frame < mapped || frame >= mapped + size, "{virt:?} maps {frame:?}");
        }
    });
}

#[test]
fn a_copied_page_made_write_copy_again_stays_writable_without_a_second_copy() {
    let mut world = World::new();
    let mut alloc = sim_allocator(&mut world.bitmap);
    let machine = &mut world.machine;
    let section = Section::create(1, machine.ram_mut(), &mut alloc).unwrap();
    let (mut space, process) = sim_space(machine, &mut alloc, 1);
    let view =
        space.map_view(&section, None, 0, 1, Protection::WRITE_COPY, machine.ram_mut()).unwrap();
    machine.switch_to(process);
    machine.store_value(view, 0x55_u8, &mut SpaceKernel::new(&mut space, &mut alloc)).unwrap();
    let copy = space.page_table(machine.ram_mut()).translate(view).unwrap().frame;
    let (_, flush) =
        space.protect(view, 0x1000, Protection::WRITE_COPY, machine.ram_mut(), &mut alloc).unwrap();
    flush.apply(machine);
    let frames = alloc.frames_in_use();
    machine.store_value(view, 0x66_u8, &mut SpaceKernel::new(&mut space, &mut alloc)).unwrap();
    assert_eq!(space.page_table(machine.ram_mut()).translate(view).unwrap().frame, copy);
    assert_eq!(alloc.frames_in_use(), frames, "no second copy");
    assert_eq!(space.query(view).unwrap().protect, Some(Protection::READ_WRITE));
    let mut byte = [0_u8; 1];
    if let Some(frame) = section.frame(machine.ram(), 0) {
        machine.ram().read(frame, &mut byte).unwrap();
    }
    assert_eq!(byte, [0], "the section itself was never written");
}

#[test]
fn a_kernel_adds_its_own_resolver_for_stack_growth() {
    let mut world = World::new();
    let mut alloc = sim_allocator(&mut world.bitmap);
    let machine = &mut world.machine;
    let (space, process) = sim_space(machine, &mut alloc, 1);
    machine.switch_to(process);
    let shared = std::cell::RefCell::new((space, alloc));
    // A stack: 16 pages reserved, the top one committed.
    let (stack, top) = {
        let (space, _) = &mut *shared.borrow_mut();
        let stack = space.reserve(None, 0x1_0000, Protection::READ_WRITE).unwrap();
        space.commit(Some(stack + 0xf000), 0x1000, Protection::READ_WRITE).unwrap();
        (stack, stack + 0x1_0000)
    };
    // The kernel's own resolver: a touch of the reserved part of the stack commits down
    // to the touched page; everything else goes on to the address space's resolution.
    let grows = std::cell::Cell::new(0);
    let stack_growth = |_: &mut Machine<X86_64>, f: &Fault| {
        let (space, _) = &mut *shared.borrow_mut();
        let in_stack = f.addr >= stack && f.addr < top;
        let reserved = space.query(f.addr).is_ok_and(|i| i.state == PageState::Reserved);
        if !in_stack || !reserved {
            return Resolution::Pass;
        }
        let page = f.addr.align_down(0x1000);
        match space.commit(Some(page), top - page, Protection::READ_WRITE) {
            Ok(_) => {
                grows.set(grows.get() + 1);
                Resolution::Retry
            }
            Err(_) => Resolution::Pass,
        }
    };
    let kernel = |m: &mut Machine<X86_64>, f: &Fault| {
        let (space, alloc) = &mut *shared.borrow_mut();
        let (resolution, flush) = space.resolve(f, m.ram_mut(), alloc);
        flush.apply(m);
        resolution
    };
    let mut chain = FaultChain::new((stack_growth, kernel), NoResolver);
    // Pushing down the stack: each new page grows it; nothing reaches the process.
    for depth in [0x10, 0x1010, 0x3008] {
        machine
            .store_value(paging::VirtAddr::new(top.as_u64() - depth), depth, &mut chain)
            .unwrap();
    }
    assert_eq!(grows.get(), 2);
    assert_eq!((chain.second_chances, chain.terminated), (0, None));
    // Below the stack, nothing grows: an access violation ends the process.
    let below = paging::VirtAddr::new(stack.as_u64() - 0x1000);
    let violation = MachineError::Exception {
        exception: Exception::AccessViolation { addr: below, access: Access::Read },
        fault: RaisedFault { fault: user_fault(below, Access::Read), error_code: 0x4 },
    };
    assert_eq!(machine.load_value::<u8, _>(below, &mut chain), Err(violation));
    assert_eq!(chain.terminated.map(|f| f.addr), Some(below));
    let (space, _) = &*shared.borrow();
    assert_eq!(
        space.query(paging::VirtAddr::new(top.as_u64() - 0x4000)).unwrap().state,
        PageState::Committed
    );
    assert_eq!(
        space.query(paging::VirtAddr::new(top.as_u64() - 0x5000)).unwrap().state,
        PageState::Reserved
    );
}

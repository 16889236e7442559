//! Address spaces running on the simulated machine: the fault path end to end.

use paging::frame::{BitmapAllocator, FrameAllocator, MemoryRegion};

use paging::space::{
    AccessViolation, AddressSpace, FaultChain, Layout, MemoryType, PageState, Protection, Section,
    SpaceConfig, Violation,
};
use paging::{Access, Asid, Exception, Fault, Privilege, Resolution};
use paging_sim::{Machine, MachineConfig, MachineError, NoResolver, ProcessId, SpaceKernel};
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

fn allocator(bitmap: &mut [u64; 128]) -> BitmapAllocator<'_> {
    BitmapAllocator::new(bitmap, &[MemoryRegion::usable(32 << 20, 8192 * 4096)]).unwrap()
}

fn new_space(
    machine: &mut Machine<X86_64>,
    alloc: &mut BitmapAllocator<'_>,
    asid: u16,
) -> (Space, ProcessId) {
    let space = Space::new(
        Layout::X86_64,
        SpaceConfig::default(),
        Asid(asid),
        None,
        machine.ram_mut(),
        alloc,
    )
    .unwrap();
    let process = machine.add_process("p", space.root(), space.asid());
    (space, process)
}

#[test]
fn committed_memory_is_zero_on_first_touch_and_takes_a_frame_only_then() {
    let mut world = World::new();
    let mut alloc = allocator(&mut world.bitmap);
    let machine = &mut world.machine;
    let (mut space, process) = new_space(machine, &mut alloc, 1);
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
    let mut alloc = allocator(&mut world.bitmap);
    let machine = &mut world.machine;
    let (mut space, process) = new_space(machine, &mut alloc, 1);
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

#[test]
fn copy_on_write_between_two_processes_sharing_a_section() {
    let mut world = World::new();
    let mut alloc = allocator(&mut world.bitmap);
    let machine = &mut world.machine;
    let mut section = Section::create(4, machine.ram_mut(), &mut alloc).unwrap();
    let (mut a, pa) = new_space(machine, &mut alloc, 1);
    let (mut b, pb) = new_space(machine, &mut alloc, 2);
    let view_a = a.map_view(&mut section, None, 0, 4, Protection::READ_WRITE).unwrap();
    let view_b = b.map_view(&mut section, None, 0, 4, Protection::WRITE_COPY).unwrap();

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
    b.unmap_view(&mut section, view_b, machine.ram_mut(), &mut alloc).unwrap().apply(machine);
    assert!(alloc.frames_in_use() < in_use);
    let (mut section, err) = section.close(&mut alloc).unwrap_err();
    assert_eq!(section.views(), 1, "{err}");
    a.unmap_view(&mut section, view_a, machine.ram_mut(), &mut alloc).unwrap().apply(machine);
    section.close(&mut alloc).unwrap();
}

#[test]
fn unresolved_faults_go_to_the_process_then_terminate_it() {
    let mut world = World::new();
    let mut alloc = allocator(&mut world.bitmap);
    let machine = &mut world.machine;
    let (mut space, process) = new_space(machine, &mut alloc, 1);
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

    let fault = Fault {
        addr: reserved,
        access: Access::Read,
        privilege: Privilege::User,
        cause: paging::FaultCause::NotPresent,
    };
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

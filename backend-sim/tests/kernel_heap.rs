//! Kernel-half demand paging: a kernel space (a layout in the kernel half) whose heap is
//! committed and materialised on first touch through the same fault path as a process's
//! memory, seen alike by every process that shares the kernel half, out of user mode's
//! reach, and paged to disk by the same pager.

use paging::frame::{BitmapAllocator, FrameAllocator};
use paging::pager::PAGE_BYTES;
use paging::pager::policy::PolicyKind;
use paging::space::{AddressSpace, Layout, Protection, SpaceConfig, SpaceError, Violation};
use paging::{Access, Asid, Entry, PageFlags, PageTableFormat, Privilege, VirtAddr};
use paging_harness::fixtures::{PagerBooks, sim_allocator};
use paging_sim::{
    Machine, MachineConfig, MachineError, PagedKernel, ProcessId, SimDisk, SpaceKernel,
};
use paging_x86::X86_64;

/// The kernel heap: 1 GiB at the start of the 384th root entry of the kernel half.
const HEAP: Layout = Layout::X86_64.kernel_part(
    "kernel heap",
    VirtAddr::new(0xFFFF_C000_0000_0000),
    VirtAddr::new(0xFFFF_C000_3FFF_FFFF),
);

/// The heap's root entry.
const HEAP_ROOT_INDEX: usize = 384;

fn kernel_space(
    machine: &mut Machine<X86_64>,
    alloc: &mut BitmapAllocator<'_>,
) -> AddressSpace<X86_64> {
    AddressSpace::new(HEAP, SpaceConfig::default(), Asid(0), None, machine.ram_mut(), alloc)
        .expect("a kernel space")
}

/// The allocator's free frames (a bitmap allocator always knows).
fn free(alloc: &BitmapAllocator<'_>) -> usize {
    alloc.frames_free().expect("a bitmap counts its free frames")
}

/// A process sharing the kernel half of `kernel`.
fn process(
    machine: &mut Machine<X86_64>,
    alloc: &mut BitmapAllocator<'_>,
    kernel: &AddressSpace<X86_64>,
    asid: u16,
) -> (AddressSpace<X86_64>, ProcessId) {
    let config = SpaceConfig::default();
    let space = AddressSpace::new(
        Layout::X86_64,
        config,
        Asid(asid),
        Some(kernel.root()),
        machine.ram_mut(),
        alloc,
    )
    .expect("a process space");
    let id = machine.add_process("p", space.root(), space.asid());
    (space, id)
}

/// The table the root entry `index` of `root` links, if any.
fn root_table(machine: &mut Machine<X86_64>, root: paging::PhysAddr, index: usize) -> Option<u64> {
    let raw = machine.ram().read_u64(root + index as u64 * 8).expect("in RAM");
    match X86_64::decode(raw, X86_64::LEVELS) {
        Entry::Table { frame, .. } => Some(frame.as_u64()),
        _ => None,
    }
}

#[test]
fn a_kernel_heap_faults_in_for_the_kernel_in_every_process_and_never_for_user_mode() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let free_at_start = free(&alloc);
    let m = &mut machine;

    // The kernel space takes its root and the table under the heap's root entry now, so
    // that processes created later copy the entry.
    let mut kernel = kernel_space(m, &mut alloc);
    assert_eq!(free_at_start - free(&alloc), 2);
    let heap_table = root_table(m, kernel.root(), HEAP_ROOT_INDEX).expect("linked at creation");
    let (mut a, a_id) = process(m, &mut alloc, &kernel, 1);
    let (mut b, b_id) = process(m, &mut alloc, &kernel, 2);
    assert_eq!(root_table(m, a.root(), HEAP_ROOT_INDEX), Some(heap_table));
    assert_eq!(root_table(m, b.root(), HEAP_ROOT_INDEX), Some(heap_table));

    let heap = kernel.commit(None, 0x1_0000, Protection::READ_WRITE).unwrap();
    assert_eq!(heap, HEAP.lowest);
    let free_before_touch = free(&alloc);

    // User mode in process A cannot reach it: the fault passes, and says why.
    m.switch_to(a_id);
    let mut policy = SpaceKernel::new(&mut a, &mut alloc).with_kernel(&mut kernel);
    let Err(MachineError::Unhandled(raised)) = m.load_value::<u64, _>(heap, &mut policy) else {
        panic!("a user-mode load of the kernel heap must fault");
    };
    assert_eq!(raised.fault.privilege, Privilege::User);
    assert_eq!(kernel.explain(&raised.fault).reason, Violation::KernelSpace);
    assert_eq!(free(&alloc), free_before_touch, "no frame for a refused fault");

    // The kernel, running in A's root, touches it: demand-zero (a frame, and the three
    // tables under the heap's top table).
    m.set_mode(Privilege::Supervisor);
    let mut policy = SpaceKernel::new(&mut a, &mut alloc).with_kernel(&mut kernel);
    m.store_value(heap + 8, 0x1234_5678_u64, &mut policy).unwrap();
    assert_eq!(free_before_touch - free(&alloc), 3, "the frame and two tables");
    let entry = kernel.page_table(m.ram_mut()).translate(heap).unwrap();
    let expected = PageFlags::READABLE | PageFlags::WRITABLE | PageFlags::GLOBAL;
    assert_eq!(
        entry.flags & !(PageFlags::ACCESSED | PageFlags::DIRTY | PageFlags::SOFTWARE_0),
        expected
    );

    // Process B's kernel code sees the same byte without a fault; its user code does not.
    m.switch_to(b_id);
    m.set_mode(Privilege::Supervisor);
    let faults = m.counters().faults_not_present;
    let mut policy = SpaceKernel::new(&mut b, &mut alloc).with_kernel(&mut kernel);
    assert_eq!(m.load_value::<u64, _>(heap + 8, &mut policy).unwrap(), 0x1234_5678);
    assert_eq!(m.counters().faults_not_present, faults);
    m.set_mode(Privilege::User);
    let mut policy = SpaceKernel::new(&mut b, &mut alloc).with_kernel(&mut kernel);
    assert!(matches!(
        m.load_value::<u64, _>(heap + 8, &mut policy),
        Err(MachineError::Unhandled(_))
    ));

    // Decommitted while B runs, the page is gone for A as well: the entry was global, so
    // the invalidation reached the translation A's kernel code cached (the strict TLB
    // would report a stale use otherwise). A's kernel code faults on the reserved page;
    // committed again, the page comes back as a fresh demand-zero page.
    let (ram, mut tlb) = m.split();
    kernel.decommit(heap, 0x1000, ram, &mut alloc).unwrap().apply(&mut tlb);
    m.switch_to(a_id);
    m.set_mode(Privilege::Supervisor);
    let mut policy = SpaceKernel::new(&mut a, &mut alloc).with_kernel(&mut kernel);
    let Err(MachineError::Unhandled(raised)) = m.load_value::<u64, _>(heap + 8, &mut policy) else {
        panic!("a decommitted kernel page must fault");
    };
    assert_eq!(kernel.explain(&raised.fault).reason, Violation::Reserved);
    kernel.commit(Some(heap), 0x1000, Protection::READ_WRITE).unwrap();
    let mut policy = SpaceKernel::new(&mut a, &mut alloc).with_kernel(&mut kernel);
    assert_eq!(m.load_value::<u64, _>(heap + 8, &mut policy).unwrap(), 0);

    // Released, the heap's pages go; its tables stay (processes hold copies of the top
    // entry), and a new reservation reuses them.
    let (ram, mut tlb) = m.split();
    kernel.release(heap, ram, &mut alloc).unwrap().apply(&mut tlb);
    assert_eq!(free_before_touch - free(&alloc), 2, "the two tables kept");
    assert_eq!(root_table(m, a.root(), HEAP_ROOT_INDEX), Some(heap_table));
    let again = kernel.commit(None, 0x1000, Protection::READ_WRITE).unwrap();
    let mut policy = SpaceKernel::new(&mut a, &mut alloc).with_kernel(&mut kernel);
    m.store_value(again, 7_u8, &mut policy).unwrap();
    assert_eq!(free_before_touch - free(&alloc), 3);

    // Torn down (processes first: they share the kernel's tables), every frame is back.
    a.destroy(m.ram_mut(), &mut alloc);
    b.destroy(m.ram_mut(), &mut alloc);
    kernel.destroy(m.ram_mut(), &mut alloc);
    assert_eq!(free(&alloc), free_at_start);
}

#[test]
fn a_kernel_layout_is_checked() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let free_at_start = free(&alloc);
    let m = &mut machine;
    let kernel = kernel_space(m, &mut alloc);

    // A kernel space owns the kernel half's tables: it shares none.
    let shared = AddressSpace::<X86_64>::new(
        HEAP,
        SpaceConfig::default(),
        Asid(3),
        Some(kernel.root()),
        m.ram_mut(),
        &mut alloc,
    );
    assert_eq!(shared.unwrap_err(), SpaceError::KernelSpaceShares);
    assert_eq!(
        SpaceError::KernelSpaceShares.to_string(),
        "a kernel space owns the kernel half's tables: it cannot share another root's"
    );

    // A layout across the kernel half's start is neither a process's nor a kernel's.
    let straddling = Layout::X86_64.kernel_part(
        "straddling",
        VirtAddr::new(0x1_0000),
        VirtAddr::new(0xFFFF_8000_0000_FFFF),
    );
    assert!(!straddling.is_one_sided());
    let refused = AddressSpace::<X86_64>::new(
        straddling,
        SpaceConfig::default(),
        Asid(3),
        None,
        m.ram_mut(),
        &mut alloc,
    );
    assert!(matches!(refused, Err(SpaceError::OutsideUserSpace { .. })));

    // The heap hands out its own range only.
    let mut kernel = kernel;
    assert!(matches!(
        kernel.reserve(Some(VirtAddr::new(0x10_0000)), 0x1000, Protection::READ_WRITE),
        Err(SpaceError::OutsideUserSpace { .. })
    ));
    kernel.destroy(m.ram_mut(), &mut alloc);
    assert_eq!(free(&alloc), free_at_start);
}

/// The kernel heap and a process share one pager with four frames for data: the heap's
/// pages go to the page file and come back, with their supervisor-only, global flags.
#[test]
fn a_kernel_heap_pages_to_disk_and_back_beside_a_process() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let mut storage = PagerBooks::new(4, 64, 4);
    let mut pager = storage.pager(PolicyKind::Clock, SimDisk::new(64)).unwrap();
    let m = &mut machine;
    let mut kernel = kernel_space(m, &mut alloc);
    let (mut process, id) = process(m, &mut alloc, &kernel, 1);
    pager.attach(kernel.root(), kernel.asid(), 0, u32::MAX).unwrap();
    pager.attach(process.root(), process.asid(), 0, u32::MAX).unwrap();

    let (heap, user) = {
        let (_, mut tlb) = m.split();
        let mut paging = pager.with(&mut alloc, &mut tlb);
        let heap = kernel.commit_with(None, 12 * 0x1000, Protection::READ_WRITE, &mut paging);
        let user = process.commit_with(None, 4 * 0x1000, Protection::READ_WRITE, &mut paging);
        (heap.unwrap(), user.unwrap())
    };
    let pattern = |tag: u8, page: u64| -> Vec<u8> {
        (0..PAGE_BYTES).map(|i| tag ^ (page as u8).wrapping_mul(13) ^ (i as u8)).collect()
    };

    // Kernel code (in the process's root) fills the heap; user code fills its pages.
    m.switch_to(id);
    for page in 0..12 {
        m.set_mode(Privilege::Supervisor);
        let mut policy =
            PagedKernel::new(&mut process, &mut pager, &mut alloc).with_kernel(&mut kernel);
        m.store(heap + page * 0x1000, &pattern(0xA5, page), &mut policy).unwrap();
    }
    m.set_mode(Privilege::User);
    for page in 0..4 {
        let mut policy =
            PagedKernel::new(&mut process, &mut pager, &mut alloc).with_kernel(&mut kernel);
        m.store(user + page * 0x1000, &pattern(0x5A, page), &mut policy).unwrap();
    }
    // User mode still cannot read the heap, paged out or not.
    let mut policy =
        PagedKernel::new(&mut process, &mut pager, &mut alloc).with_kernel(&mut kernel);
    let mut byte = [0];
    assert!(matches!(m.load(heap, &mut byte, &mut policy), Err(MachineError::Unhandled(_))));

    // Everything reads back: the kernel's pages through hard faults.
    m.set_mode(Privilege::Supervisor);
    for page in 0..12 {
        let mut policy =
            PagedKernel::new(&mut process, &mut pager, &mut alloc).with_kernel(&mut kernel);
        let mut bytes = vec![0; PAGE_BYTES];
        m.load(heap + page * 0x1000, &mut bytes, &mut policy).unwrap();
        assert_eq!(bytes, pattern(0xA5, page), "heap page {page}");
    }
    m.set_mode(Privilege::User);
    for page in 0..4 {
        let mut policy =
            PagedKernel::new(&mut process, &mut pager, &mut alloc).with_kernel(&mut kernel);
        let mut bytes = vec![0; PAGE_BYTES];
        m.load(user + page * 0x1000, &mut bytes, &mut policy).unwrap();
        assert_eq!(bytes, pattern(0x5A, page), "user page {page}");
    }
    let c = pager.counters();
    assert_eq!((c.demand_zero_faults, c.hard_faults), (16, 16));
    let last = heap + 11 * 0x1000;
    let entry = kernel.page_table(m.ram_mut()).translate(last);
    assert!(entry.is_err() || !entry.unwrap().flags.contains(PageFlags::USER));

    // Torn down: no frame, slot or charge left.
    {
        let (ram, mut tlb) = m.split();
        let mut paging = pager.with(&mut alloc, &mut tlb);
        process.destroy(ram, &mut paging);
        kernel.destroy(ram, &mut paging);
    }
    assert_eq!(pager.slots().used_slots(), 0);
    assert_eq!(pager.performance().commit_total, 0);
    assert_eq!(pager.performance().physical_available, 4);
    let _ = Access::Read;
}

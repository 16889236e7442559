//! The simulated machine behaves like x86 hardware: it caches, it isolates, it records
//! accessed and dirty, it faults with the right codes, and bad tables never hang it.

use paging::frame::{BitmapAllocator, FrameAllocator};
use paging::table::{Holes, MappedPage, Visit};
use paging::{
    Access, Asid, EntrySize, Exception, Fault, FaultCause, Frame, Page, PageFlags, PageTable,
    PhysAddr, Privilege, Resolution, Size4KiB, TableMemory, Tlb,
};
use paging_harness::fixtures::{frame, pa, page, sim_allocator, va};
use paging_sim::{Machine, MachineConfig, MachineError, NoResolver};
use paging_x86::X86_64;

const USER_RW: PageFlags = PageFlags::READABLE.union(PageFlags::WRITABLE).union(PageFlags::USER);
/// A machine running one process with `mappings` (virtual, physical, flags) of 4 KiB.
fn one_process(
    alloc: &mut BitmapAllocator<'_>,
    mappings: &[(u64, u64, PageFlags)],
) -> (Machine<X86_64>, PhysAddr) {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let root = space(&mut machine, alloc, mappings);
    let process = machine.add_process("p", root, Asid(1));
    assert!(machine.switch_to(process));
    (machine, root)
}

/// Builds an address space with `mappings` and returns its root.
fn space(
    machine: &mut Machine<X86_64>,
    alloc: &mut BitmapAllocator<'_>,
    mappings: &[(u64, u64, PageFlags)],
) -> PhysAddr {
    let mut table = PageTable::<X86_64, _>::new(machine.ram_mut(), alloc).unwrap();
    for &(virt, phys, flags) in mappings {
        table.map(page::<Size4KiB>(virt), frame(phys), flags, alloc).unwrap().ignore();
    }
    table.root()
}

#[test]
fn a_missing_invalidation_is_caught_in_strict_mode() {
    let mut bitmap = [0; 128];
    let mut alloc = sim_allocator(&mut bitmap);
    let (mut machine, root) = one_process(&mut alloc, &[(0x40_0000, 0x1_0000, USER_RW)]);
    machine.store_value(va(0x40_0000), 0xAAu8, &mut NoResolver).unwrap();
    machine.ram_mut().write(pa(0x2_0000), &[0xBB]).unwrap();

    // Remap the page to another frame and forget the flush.
    let mut table = machine.page_table_at(root);
    let (_, _, flush) = table.unmap(page::<Size4KiB>(0x40_0000), &mut alloc).unwrap();
    table.map(page::<Size4KiB>(0x40_0000), frame(0x2_0000), USER_RW, &mut alloc).unwrap().ignore();
    let forgotten = flush;
    let err = machine.load_value::<u8, _>(va(0x40_0000), &mut NoResolver).unwrap_err();
    let MachineError::StaleTlb(stale) = &err else { panic!("expected a stale TLB use, got {err}") };
    assert_eq!(stale.cached.page, va(0x40_0000));
    assert_eq!(stale.cached.frame, pa(0x1_0000));
    assert_eq!(stale.entry_now & 0x000f_ffff_ffff_f000, 0x2_0000, "the entry now in memory");
    assert!(err.to_string().starts_with("stale TLB entry: the access to 0x400000"), "{err}");

    // Without strict mode the machine does what hardware does: it uses the old frame.
    machine.set_strict_tlb(false);
    assert_eq!(machine.load_value::<u8, _>(va(0x40_0000), &mut NoResolver), Ok(0xAA));

    // The same sequence with the flush the engine returned passes.
    machine.set_strict_tlb(true);
    forgotten.apply(&mut machine);
    assert_eq!(machine.load_value::<u8, _>(va(0x40_0000), &mut NoResolver), Ok(0xBB));
}

#[test]
fn an_unmap_without_invalidation_is_caught_and_with_it_faults() {
    let mut bitmap = [0; 128];
    let mut alloc = sim_allocator(&mut bitmap);
    let (mut machine, root) = one_process(&mut alloc, &[(0x40_0000, 0x1_0000, USER_RW)]);
    machine.load_value::<u32, _>(va(0x40_0000), &mut NoResolver).unwrap();
    let flush = machine
        .page_table_at(root)
        .unmap_range(va(0x40_0000), 0x1000, Holes::Refuse, &mut alloc, |_| {})
        .unwrap();
    assert!(matches!(
        machine.load_value::<u32, _>(va(0x40_0000), &mut NoResolver),
        Err(MachineError::StaleTlb(_))
    ));
    flush.apply(&mut machine);
    let err = machine.load_value::<u32, _>(va(0x40_0000), &mut NoResolver).unwrap_err();
    let MachineError::Unhandled(raised) = err else { panic!("{err}") };
    assert_eq!(raised.fault.cause, FaultCause::NotPresent);
    assert_eq!(raised.error_code, 0b100, "user read of a non-present page");
}

#[test]
fn two_processes_share_an_address_but_not_memory() {
    let mut bitmap = [0; 128];
    let mut alloc = sim_allocator(&mut bitmap);
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let shared_va = 0x1234_5000;
    let root_a = space(&mut machine, &mut alloc, &[(shared_va, 0x10_0000, USER_RW)]);
    let root_b = space(&mut machine, &mut alloc, &[(shared_va, 0x20_0000, USER_RW)]);
    let a = machine.add_process("A", root_a, Asid(1));
    let b = machine.add_process("B", root_b, Asid(2));

    machine.switch_to(a);
    machine.store_value(va(shared_va + 8), 0xA_u64, &mut NoResolver).unwrap();
    machine.switch_to(b);
    machine.store_value(va(shared_va + 8), 0xB_u64, &mut NoResolver).unwrap();
    machine.switch_to(a);
    assert_eq!(machine.load_value::<u64, _>(va(shared_va + 8), &mut NoResolver), Ok(0xA));
    machine.switch_to(b);
    assert_eq!(machine.load_value::<u64, _>(va(shared_va + 8), &mut NoResolver), Ok(0xB));
    assert_eq!(machine.ram().read_u64(pa(0x10_0008)), Ok(0xA));
    assert_eq!(machine.ram().read_u64(pa(0x20_0008)), Ok(0xB));

    // Neither space maps a page of the other's frames, so no address reaches them.
    for (root, foreign) in [(root_a, 0x20_0000), (root_b, 0x10_0000)] {
        machine.page_table_at(root).visit(|visit| {
            if let Visit::Page(MappedPage { frame, size, .. }) = visit {
                assert!(foreign < frame.as_u64() || foreign >= frame.as_u64() + size);
            }
        });
    }
    // Both spaces' translations sit in the TLB at once, told apart by their tags.
    assert!(machine.tlb().entries().filter(|e| e.page == va(shared_va)).count() >= 2);
}

#[test]
fn accessed_and_dirty_appear_as_on_x86() {
    const A: u64 = 1 << 5;
    const D: u64 = 1 << 6;
    let mut bitmap = [0; 128];
    let mut alloc = sim_allocator(&mut bitmap);
    let (mut machine, root) = one_process(&mut alloc, &[(0x7000, 0x1_0000, USER_RW)]);
    let entries = |machine: &mut Machine<X86_64>| -> Vec<u64> {
        machine.page_table_at(root).walk(va(0x7000)).iter().map(|s| s.raw).collect()
    };
    assert!(entries(&mut machine).iter().all(|raw| raw & (A | D) == 0), "fresh tables");

    machine.load_value::<u8, _>(va(0x7010), &mut NoResolver).unwrap();
    let after_read = entries(&mut machine);
    assert!(after_read.iter().all(|raw| raw & A != 0), "accessed on every level: {after_read:x?}");
    assert!(after_read.iter().all(|raw| raw & D == 0), "no dirty after a read");

    // The write hits the TLB entry cached by the read; the CPU still walks to set D.
    machine.store_value(va(0x7010), 1u8, &mut NoResolver).unwrap();
    let after_write = entries(&mut machine);
    assert_ne!(after_write[3] & D, 0, "dirty on the leaf");
    assert!(after_write[..3].iter().all(|raw| raw & D == 0), "never on tables");
    let flags = machine.page_table_at(root).translate(va(0x7000)).unwrap().flags;
    assert!(flags.contains(PageFlags::ACCESSED | PageFlags::DIRTY));
}

#[test]
fn faults_go_to_the_policy_and_the_access_is_retried() {
    let mut bitmap = [0; 128];
    let mut alloc = sim_allocator(&mut bitmap);
    let (mut machine, _root) = one_process(&mut alloc, &[]);
    // Demand-zero: the kernel maps a zeroed frame on the first touch.
    let mut zero_fill = |m: &mut Machine<X86_64>, fault: &Fault| -> Resolution {
        if fault.cause != FaultCause::NotPresent {
            return Resolution::Pass;
        }
        let Ok(new) = alloc.allocate() else { return Resolution::Pass };
        m.ram_mut().zero_frame(new);
        let mut table = m.page_table().unwrap();
        let at = Page::<Size4KiB>::containing(fault.addr);
        match table.map(at, Frame::from_start(new).unwrap(), USER_RW, &mut alloc) {
            Ok(flush) => {
                flush.apply(m);
                Resolution::Retry
            }
            Err(_) => Resolution::Pass,
        }
    };
    assert_eq!(machine.load_value::<u64, _>(va(0x5000_0000), &mut zero_fill), Ok(0));
    machine.store_value(va(0x5000_0008), 42u64, &mut zero_fill).unwrap();
    assert_eq!(machine.load_value::<u64, _>(va(0x5000_0008), &mut zero_fill), Ok(42));
    assert_eq!(machine.counters().faults_not_present, 1);
    assert!(machine.counters().cycles > machine.config().costs.fault);

    // A policy that says "retry" without fixing anything is stopped.
    let mut stubborn = |_: &mut Machine<X86_64>, _: &Fault| Resolution::Retry;
    let err = machine.load_value::<u8, _>(va(0x6000_0000), &mut stubborn).unwrap_err();
    assert!(matches!(err, MachineError::RetryLimit(_)), "{err}");

    // An exception raised by the policy ends the access with it.
    let mut violation = |_: &mut Machine<X86_64>, f: &Fault| {
        Resolution::Raise(Exception::AccessViolation { addr: f.addr, access: f.access })
    };
    let err = machine.store_value(va(0x6000_0000), 1u8, &mut violation).unwrap_err();
    let MachineError::Exception { exception, fault } = err else { panic!() };
    assert_eq!(
        exception,
        Exception::AccessViolation { addr: va(0x6000_0000), access: Access::Write }
    );
    assert_eq!(fault.error_code, 0b110, "user write, not present");
}

#[test]
fn protection_faults_carry_x86_error_codes() {
    let mut bitmap = [0; 128];
    let mut alloc = sim_allocator(&mut bitmap);
    let read_only = PageFlags::READABLE | PageFlags::USER;
    let kernel = PageFlags::READABLE | PageFlags::WRITABLE;
    let (mut machine, _) =
        one_process(&mut alloc, &[(0x1000, 0x1000, read_only), (0x2000, 0x2000, kernel)]);
    let code = |machine: &mut Machine<X86_64>, addr: u64, access: Access| match machine
        .probe(va(addr), access)
    {
        Err(MachineError::Unhandled(raised)) => raised.error_code,
        other => panic!("{addr:#x} {access}: expected a fault, got {other:?}"),
    };
    assert_eq!(code(&mut machine, 0x1000, Access::Write), 0x7, "user write to read-only");
    assert_eq!(code(&mut machine, 0x1000, Access::Execute), 0x15, "user fetch from NX");
    assert_eq!(code(&mut machine, 0x2000, Access::Read), 0x5, "user read of a kernel page");
    machine.set_mode(Privilege::Supervisor);
    assert_eq!(code(&mut machine, 0x1000, Access::Write), 0x3, "kernel write to read-only, WP on");
    assert_eq!(machine.probe(va(0x2000), Access::Write), Ok(pa(0x2000)));
    assert_eq!(code(&mut machine, 0x1000, Access::Read), 0x1, "SMAP: kernel read of a user page");
    assert_eq!(machine.counters().faults_protection, 5);
}

/// Kernel code is one call away: `enter_kernel` loads the kernel's root and switches to
/// supervisor mode, and a supervisor-only page that faulted from user mode is reached.
#[test]
fn kernel_code_runs_after_one_call() {
    let mut bitmap = [0; 128];
    let mut alloc = sim_allocator(&mut bitmap);
    let kernel = PageFlags::READABLE | PageFlags::WRITABLE;
    let (mut machine, _) = one_process(&mut alloc, &[(0x1000, 0x1000, USER_RW)]);
    let kernel_root = space(&mut machine, &mut alloc, &[(0x2000, 0x3000, kernel)]);
    let refused = machine.probe(va(0x2000), Access::Read);
    assert!(matches!(refused, Err(MachineError::Unhandled(r)) if r.error_code == 0x4));
    machine.enter_kernel(kernel_root, Asid(0)).unwrap();
    assert_eq!(machine.mode(), Privilege::Supervisor);
    assert_eq!(machine.probe(va(0x2000), Access::Write), Ok(pa(0x3000)));
    assert_eq!(
        machine.probe(va(0x1000), Access::Read).ok(),
        None,
        "the process's page is not mapped here"
    );
}

#[test]
fn an_access_across_pages_is_all_or_nothing() {
    let mut bitmap = [0; 128];
    let mut alloc = sim_allocator(&mut bitmap);
    let (mut machine, _) = one_process(&mut alloc, &[(0x1000, 0x8000, USER_RW)]);
    // The second page is not mapped: the store must not write its first half either.
    let err = machine.store_value(va(0x1ffc), u64::MAX, &mut NoResolver).unwrap_err();
    assert!(matches!(err, MachineError::Unhandled(r) if r.fault.addr == va(0x2000)), "{err}");
    assert_eq!(machine.ram().read_u64(pa(0x8ff8)), Ok(0));
    // Across two mapped pages, a slice lands in both frames.
    let mut machine2 =
        one_process(&mut alloc, &[(0x1000, 0x8000, USER_RW), (0x2000, 0x3000, USER_RW)]).0;
    machine2.store(va(0x1ffe), &[1, 2, 3, 4], &mut NoResolver).unwrap();
    let mut back = [0u8; 4];
    machine2.load(va(0x1ffe), &mut back, &mut NoResolver).unwrap();
    assert_eq!(back, [1, 2, 3, 4]);
    assert_eq!(machine2.ram().read_u64(pa(0x3000)).unwrap() & 0xFFFF, 0x0403);
}

#[test]
fn bad_tables_give_errors_not_hangs() {
    let mut bitmap = [0; 128];
    let mut alloc = sim_allocator(&mut bitmap);
    let (mut machine, root) = one_process(&mut alloc, &[(0x1000, 0x1000, USER_RW)]);
    // A non-canonical address is a general-protection fault.
    assert_eq!(
        machine.probe(va(0x8000_0000_0000), Access::Read),
        Err(MachineError::NonCanonical { addr: va(0x8000_0000_0000) })
    );
    // Root entry 1 points outside RAM; root entry 2 has PS set (reserved at the root);
    // root entry 3 points back at the root (a cycle).
    let ram = machine.ram_mut();
    ram.write_entry(root + 8, EntrySize::Eight, (1 << 40) | 0x7);
    ram.write_entry(root + 16, EntrySize::Eight, 0x1000 | 0x87);
    ram.write_entry(root + 24, EntrySize::Eight, root.as_u64() | 0x7);
    let err = machine.probe(va(1 << 39), Access::Read).unwrap_err();
    assert!(matches!(err, MachineError::TableOutsideRam { level: 4, .. }), "{err}");
    let err = machine.probe(va(2 << 39), Access::Read).unwrap_err();
    let MachineError::Unhandled(raised) = err else { panic!("{err}") };
    assert_eq!((raised.fault.cause, raised.error_code), (FaultCause::ReservedBits, 0b1101));
    // The cycle resolves in at most four reads, to whatever the entries say.
    let _ = machine.probe(va(3 << 39), Access::Read);
    assert!(machine.counters().walk_reads < 20);
    // A page mapping a frame beyond RAM.
    let mut table = machine.page_table_at(root);
    table.map(page::<Size4KiB>(0x9000), frame(1 << 40), USER_RW, &mut alloc).unwrap().ignore();
    let err = machine.probe(va(0x9000), Access::Read).unwrap_err();
    assert!(matches!(err, MachineError::PhysicalOutsideRam { .. }), "{err}");
}

#[test]
fn counters_and_costs_follow_the_tlb() {
    let mut bitmap = [0; 128];
    let mut alloc = sim_allocator(&mut bitmap);
    let (mut machine, _) = one_process(&mut alloc, &[(0x1000, 0x1000, USER_RW)]);
    for _ in 0..10 {
        machine.load_value::<u32, _>(va(0x1000), &mut NoResolver).unwrap();
    }
    let counters = *machine.counters();
    assert_eq!((counters.loads, counters.tlb_hits, counters.tlb_misses), (10, 9, 1));
    assert_eq!((counters.walks, counters.walk_reads), (1, 4));
    let costs = machine.config().costs;
    assert_eq!(counters.cycles, 9 * costs.tlb_hit + 4 * costs.walk_read);
    machine.invalidate_current();
    machine.load_value::<u32, _>(va(0x1000), &mut NoResolver).unwrap();
    assert_eq!(machine.counters().tlb_misses, 2);
    assert!(machine.counters().to_string().contains("9 hits"));
}

#[test]
fn global_kernel_pages_survive_a_switch_and_fetches_need_execute() {
    let mut bitmap = [0; 128];
    let mut alloc = sim_allocator(&mut bitmap);
    let kernel_text = PageFlags::READABLE | PageFlags::EXECUTABLE | PageFlags::GLOBAL;
    let user_code = PageFlags::READABLE | PageFlags::EXECUTABLE | PageFlags::USER;
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let both = [(0xffff_8000_0000_0000, 0x5000, kernel_text), (0x40_0000, 0x6000, user_code)];
    let root_a = space(&mut machine, &mut alloc, &both);
    let root_b = space(&mut machine, &mut alloc, &both[..1]);
    machine.ram_mut().write(pa(0x5000), &[0x90, 0xC3]).unwrap();
    let a = machine.add_process("A", root_a, Asid(1));
    let b = machine.add_process("B", root_b, Asid(2));

    machine.switch_to(a);
    let mut code = [0u8; 2];
    machine.fetch(va(0x40_0000), &mut code, &mut NoResolver).unwrap();
    let err = machine.fetch(va(0xffff_8000_0000_0000), &mut code, &mut NoResolver).unwrap_err();
    assert!(matches!(err, MachineError::Unhandled(r) if r.error_code == 0x15), "{err}");
    machine.set_mode(Privilege::Supervisor);
    machine.fetch(va(0xffff_8000_0000_0000), &mut code, &mut NoResolver).unwrap();
    assert_eq!(code, [0x90, 0xC3]);
    let walks = machine.counters().walks;

    // Process B's tag differs, but the global kernel entry still hits.
    machine.switch_to(b);
    machine.set_mode(Privilege::Supervisor);
    machine.fetch(va(0xffff_8000_0000_0000), &mut code, &mut NoResolver).unwrap();
    assert_eq!(machine.counters().walks, walks, "served by the global TLB entry");
    // A's user page is not B's: B has no such mapping, whatever the TLB holds for A.
    let err = machine.probe(va(0x40_0000), Access::Execute).unwrap_err();
    assert!(matches!(err, MachineError::Unhandled(r) if r.fault.cause == FaultCause::NotPresent));
    assert_eq!(machine.counters().fetches, 4);
}

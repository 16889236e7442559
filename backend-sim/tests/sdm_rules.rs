//! Rules of the Intel SDM the simulated MMU follows to the letter: PAE's PDPTE registers
//! (loaded with the root, refused with reserved bits), bit 63 reserved without NXE, and
//! the text of a stale-TLB report.

use paging::frame::BitmapAllocator;
use paging::table::Holes;
use paging::{
    Access, Asid, EntrySize, FaultCause, PageFlags, PageTable, PageTableFormat, PhysAddr,
    Privilege, Size4KiB, TableMemory, Tlb,
};
use paging_harness::fixtures::{frame, pa, page, sim_allocator, va};
use paging_sim::{Control, Machine, MachineConfig, MachineError, RootRefused};
use paging_x86::{Pae, X86_64};

const USER_RW: PageFlags = PageFlags::READABLE.union(PageFlags::WRITABLE).union(PageFlags::USER);
const USER_RWX: PageFlags = USER_RW.union(PageFlags::EXECUTABLE);
/// The page every test maps.
const PAGE: u64 = 0x40_0000;

/// A new space of format `F` mapping `PAGE` to `phys` with `flags`; returns its root.
fn space<F: PageTableFormat>(
    machine: &mut Machine<F>,
    alloc: &mut BitmapAllocator<'_>,
    phys: u64,
    flags: PageFlags,
) -> PhysAddr {
    let mut table = PageTable::<F, _>::new(machine.ram_mut(), alloc).unwrap();
    table.map(page::<Size4KiB>(PAGE), frame(phys), flags, alloc).unwrap().ignore();
    table.root()
}

/// The raw entry at `at` (8 bytes).
fn entry_at<F: PageTableFormat>(machine: &Machine<F>, at: PhysAddr) -> u64 {
    machine.ram().read_entry(at, EntrySize::Eight)
}

fn set_entry<F: PageTableFormat>(machine: &mut Machine<F>, at: PhysAddr, raw: u64) {
    machine.ram_mut().write_entry(at, EntrySize::Eight, raw);
}

/// The page-fault error code of `result`, which must be an unhandled fault of `cause`.
fn fault_code(result: Result<PhysAddr, MachineError>, cause: FaultCause) -> u32 {
    match result {
        Err(MachineError::Unhandled(raised)) if raised.fault.cause == cause => raised.error_code,
        other => panic!("expected a {cause:?} fault, got {other:?}"),
    }
}

#[test]
fn a_pae_pdpt_write_after_the_load_changes_no_translation_until_a_reload() {
    let mut bitmap = [0; 128];
    let mut alloc = sim_allocator(&mut bitmap);
    let mut machine = Machine::<Pae>::new(MachineConfig::default());
    let root = space(&mut machine, &mut alloc, 0x1_0000, USER_RW);
    let other = space(&mut machine, &mut alloc, 0x2_0000, USER_RW);
    machine.load_root(root, Asid(1)).unwrap();
    machine.set_mode(Privilege::User);
    let loaded = machine.loaded_root().unwrap();
    assert_eq!(loaded.address(), root);
    // The engine gave each PDPTE its page directory with the root: the frames after it.
    let pdptes = [0x200_1001, 0x200_2001, 0x200_3001, 0x200_4001];
    assert_eq!(root, pa(0x200_0000));
    assert_eq!(loaded.registers(), Some(pdptes), "the four PDPTEs, read at the load");
    assert_eq!(machine.probe(va(PAGE), Access::Read), Ok(pa(0x1_0000)));

    // Point PDPTE 0 in memory at the other space's directory: the registers keep the old
    // one, with the TLB entry (strict mode finds nothing stale) and without it.
    let other_pdpte = entry_at(&machine, other);
    set_entry(&mut machine, root, other_pdpte);
    assert_eq!(machine.probe(va(PAGE), Access::Read), Ok(pa(0x1_0000)));
    machine.invalidate_all();
    assert_eq!(machine.probe(va(PAGE), Access::Read), Ok(pa(0x1_0000)), "a flush reloads nothing");
    assert_eq!(machine.loaded_root(), Some(loaded));

    // A load of the same root reads the new PDPTE: the cached translation is now stale...
    machine.load_root(root, Asid(1)).unwrap();
    assert_eq!(machine.loaded_root().unwrap().registers().unwrap()[0], other_pdpte);
    assert!(matches!(machine.probe(va(PAGE), Access::Read), Err(MachineError::StaleTlb(_))));
    // ...and once invalidated, the walk goes through the new directory.
    machine.invalidate_current();
    assert_eq!(machine.probe(va(PAGE), Access::Read), Ok(pa(0x2_0000)));
}

#[test]
fn switching_processes_and_smep_reload_the_pdptes_but_a_tlb_port_waits() {
    let mut bitmap = [0; 128];
    let mut alloc = sim_allocator(&mut bitmap);
    let mut machine = Machine::<Pae>::new(MachineConfig::default());
    let root = space(&mut machine, &mut alloc, 0x1_0000, USER_RW);
    let other = space(&mut machine, &mut alloc, 0x2_0000, USER_RW);
    let process = machine.add_process("p", root, Asid(1));
    assert!(machine.switch_to(process));
    let old = entry_at(&machine, root);
    let new = entry_at(&machine, other);

    set_entry(&mut machine, root, new);
    assert!(machine.switch_to(process));
    assert_eq!(machine.loaded_root().unwrap().registers().unwrap()[0], new, "switch_to loads");

    set_entry(&mut machine, root, old);
    machine.set_control(Control { write_protect: false, ..Control::default() });
    assert_eq!(machine.loaded_root().unwrap().registers().unwrap()[0], new, "WP: no reload");
    machine.set_control(Control { smep: false, ..Control::default() });
    assert_eq!(machine.loaded_root().unwrap().registers().unwrap()[0], old, "SMEP reloads");

    // A TLB port cannot read RAM: its load completes at the machine's next translation.
    set_entry(&mut machine, root, new);
    machine.split().1.activate(root, Asid(1));
    assert_eq!((machine.active_root(), machine.loaded_root()), (Some(root), None));
    machine.invalidate_all();
    machine.set_mode(Privilege::User);
    assert_eq!(machine.probe(va(PAGE), Access::Read), Ok(pa(0x2_0000)));
    assert_eq!(machine.loaded_root().unwrap().registers().unwrap()[0], new);
}

#[test]
fn a_pdpte_with_reserved_bits_refuses_the_load_and_changes_nothing() {
    let mut bitmap = [0; 128];
    let mut alloc = sim_allocator(&mut bitmap);
    let mut machine = Machine::<Pae>::new(MachineConfig::default());
    let good = space(&mut machine, &mut alloc, 0x1_0000, USER_RW);
    let bad = space(&mut machine, &mut alloc, 0x2_0000, USER_RW);
    let running = machine.add_process("good", good, Asid(1));
    let refused = machine.add_process("bad", bad, Asid(2));
    assert!(machine.switch_to(running));
    assert_eq!(machine.probe(va(PAGE), Access::Read), Ok(pa(0x1_0000)));
    let loaded = machine.loaded_root();
    let directory = entry_at(&machine, bad);

    // Bits 2:1, 8:5 (PS included), 51:MAXPHYADDR is none with 52 bits, 63:52 (NX included).
    for bit in [1, 2, 5, 6, 7, 8, 52, 62, 63] {
        let raw = directory | 1 << bit;
        set_entry(&mut machine, bad + 16, raw);
        let error = MachineError::RootRefused(RootRefused { root: bad, index: 2, raw });
        assert_eq!(machine.load_root(bad, Asid(2)), Err(error.clone()), "bit {bit}");
        assert!(!machine.switch_to(refused), "bit {bit}");
        assert_eq!(machine.loaded_root(), loaded, "bit {bit}: the old registers stay");
        assert_eq!(machine.active_asid(), Asid(1));
        assert_eq!(machine.current(), Some(running));
        assert_eq!(machine.probe(va(PAGE), Access::Read), Ok(pa(0x1_0000)));
        if bit == 1 {
            let text = format!(
                "general protection: root entry 2 ({raw:#x}) of the table at {:#x} has reserved \
                 bits set",
                bad.as_u64()
            );
            assert_eq!(error.to_string(), text);
        }
    }

    // Reserved bits count only in a present PDPTE.
    set_entry(&mut machine, bad + 16, 0xFFFF_FFFF_FFFF_FFFE);
    assert!(machine.switch_to(refused));
    assert_eq!(machine.probe(va(PAGE), Access::Read), Ok(pa(0x2_0000)));

    // Through `Tlb::activate`, which cannot return the error, every access reports it
    // until a load succeeds.
    set_entry(&mut machine, bad + 16, directory | 0b10);
    machine.activate(bad, Asid(2));
    let refusal = RootRefused { root: bad, index: 2, raw: directory | 0b10 };
    assert_eq!(machine.probe(va(PAGE), Access::Read), Err(MachineError::RootRefused(refusal)));
    set_entry(&mut machine, bad + 16, 0);
    assert_eq!(machine.probe(va(PAGE), Access::Read), Ok(pa(0x2_0000)));
}

#[test]
fn without_nxe_bit_63_is_reserved_in_leaves_and_tables() {
    let mut bitmap = [0; 128];
    let mut alloc = sim_allocator(&mut bitmap);
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let root = space(&mut machine, &mut alloc, 0x1_0000, USER_RW);
    let mut table = machine.page_table_at(root);
    let code = va(0x8000_0000);
    table
        .map(page::<Size4KiB>(code.as_u64()), frame(0x3_0000), USER_RWX, &mut alloc)
        .unwrap()
        .ignore();
    assert!(machine.load_root(root, Asid(1)).is_ok());
    machine.set_mode(Privilege::User);
    let no_nxe = Control { no_execute: false, ..Control::default() };
    machine.set_control(no_nxe);

    // The leaf of `PAGE` has NX (bit 63) set: P | U/S | RSVD, with W/R for a write and I/D
    // for a fetch (SMEP is on).
    assert_eq!(fault_code(machine.probe(va(PAGE), Access::Read), FaultCause::ReservedBits), 0xD);
    assert_eq!(fault_code(machine.probe(va(PAGE), Access::Write), FaultCause::ReservedBits), 0xF);
    let fetch = machine.probe(va(PAGE), Access::Execute);
    assert_eq!(fault_code(fetch, FaultCause::ReservedBits), 0x1D);
    // The executable page sets no bit 63 anywhere on its walk.
    assert_eq!(machine.probe(code, Access::Execute), Ok(pa(0x3_0000)));

    // Bit 63 in a table entry above it (level 3) is reserved too...
    let steps = machine.page_table_at(root).walk(code);
    let level_3 = steps.iter().find(|step| step.level == 3).unwrap();
    let at = level_3.table + level_3.index as u64 * 8;
    set_entry(&mut machine, at, level_3.raw | 1 << 63);
    machine.invalidate_all();
    assert_eq!(fault_code(machine.probe(code, Access::Read), FaultCause::ReservedBits), 0xD);
    // ...and with NXE it is NX: the page reads but no longer executes.
    machine.set_control(Control::default());
    assert_eq!(machine.probe(code, Access::Read), Ok(pa(0x3_0000)));
    let fetch = machine.probe(code, Access::Execute);
    assert_eq!(fault_code(fetch, FaultCause::Protection), 0x15);
}

#[test]
fn without_nxe_a_pae_leaf_with_nx_faults_on_reserved_bits() {
    let mut bitmap = [0; 128];
    let mut alloc = sim_allocator(&mut bitmap);
    let mut machine = Machine::<Pae>::new(MachineConfig::default());
    let root = space(&mut machine, &mut alloc, 0x1_0000, PageFlags::READABLE);
    machine.load_root(root, Asid(1)).unwrap();
    machine.set_control(Control { no_execute: false, smep: false, ..Control::default() });
    // Supervisor read: P | RSVD.
    assert_eq!(fault_code(machine.probe(va(PAGE), Access::Read), FaultCause::ReservedBits), 0x9);
    // No I/D without SMEP or NXE.
    let fetch = machine.probe(va(PAGE), Access::Execute);
    assert_eq!(fault_code(fetch, FaultCause::ReservedBits), 0x9);
}

#[test]
fn a_stale_tlb_report_names_the_address_the_page_and_both_translations() {
    let mut bitmap = [0; 128];
    let mut alloc = sim_allocator(&mut bitmap);
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let root = space(&mut machine, &mut alloc, 0x1_0000, USER_RW);
    machine.load_root(root, Asid(1)).unwrap();
    machine.set_mode(Privilege::User);
    assert_eq!(machine.probe(va(PAGE + 0xab8), Access::Write), Ok(pa(0x1_0ab8)));

    let mut table = machine.page_table_at(root);
    let (_, _, forgotten) = table.unmap(page::<Size4KiB>(PAGE), &mut alloc).unwrap();
    let read_only = PageFlags::READABLE | PageFlags::USER;
    table.map(page::<Size4KiB>(PAGE), frame(0x2_0000), read_only, &mut alloc).unwrap().ignore();
    let error = machine.probe(va(PAGE + 0xab8), Access::Read).unwrap_err();
    assert_eq!(
        error.to_string(),
        "stale TLB entry: the access to 0x400ab8 hit the cached page 0x400000 -> 0x10000 \
         (PageFlags(READABLE | WRITABLE | USER | ACCESSED | DIRTY)), but its entry in memory \
         is now 0x8000000000020005, mapping 0x20000 (PageFlags(READABLE | USER))"
    );
    forgotten.apply(&mut machine);

    // A page unmapped without its flush: the entry is described as not present.
    assert_eq!(machine.probe(va(PAGE), Access::Read), Ok(pa(0x2_0000)));
    let flush = machine
        .page_table_at(root)
        .unmap_range(va(PAGE), 0x1000, Holes::Refuse, &mut alloc, |_| {})
        .unwrap();
    let error = machine.probe(va(PAGE + 8), Access::Read).unwrap_err();
    assert!(error.to_string().ends_with("is now 0x0, not present"), "{error}");
    flush.apply(&mut machine);
}

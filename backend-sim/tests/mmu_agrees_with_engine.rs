//! The simulator's MMU and the engine's software translation agree on random mappings, on
//! every address and every access, permissions included.
//!
//! Three views are compared for each probed address:
//!
//! - a model of the mappings the test made (what each successful call asked for);
//! - the engine's [`PageTable::lookup`];
//! - the machine's [`Machine::probe`], through its TLB and page walk, with the outcome that
//!   the permission predicate of this file (written apart from `mmu::refuse`) expects, and
//!   the x86 error code of the fault when it refuses. With NXE clear, a page whose NX bit
//!   is set (in a format that has one) faults on reserved bits whatever the access.

use paging::frame::{BitmapAllocator, MemoryRegion};
use paging::table::{Lookup, MappedPage, Visit};
use paging::{
    Access, FaultCause, Frame, PageFlags, PageSize, PageTable, PageTableFormat, PhysAddr,
    Privilege, Size1GiB, Size2MiB, Size4KiB, Size4MiB, TableError, VirtAddr,
};
use paging::{Asid, Page, Tlb};
use paging_sim::{Control, Machine, MachineConfig, MachineError};
use paging_x86::{Legacy32, Pae, X86_64};
use proptest::prelude::*;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// The kernel's frames (for tables): the upper 16 MiB of the machine's 64 MiB.
const TABLE_AREA: MemoryRegion = MemoryRegion::usable(48 * MIB, 16 * MIB);
/// Mapped frames start below this (they may still run into the table area; the MMU does
/// not care).
const PHYS_LIMIT: u64 = 48 * MIB;
/// The size of each virtual window the mappings go to.
const WINDOW: u64 = 8 * MIB;

const ACCESSES: [Access; 3] = [Access::Read, Access::Write, Access::Execute];
const MODES: [Privilege; 2] = [Privilege::User, Privilege::Supervisor];

/// The control-bit combinations every address is probed under.
const CONTROLS: [Control; 5] = [
    // Everything on (the default).
    Control { write_protect: true, no_execute: true, smep: true, smap: true },
    // Everything off.
    Control { write_protect: false, no_execute: false, smep: false, smap: false },
    // WP only.
    Control { write_protect: true, no_execute: false, smep: false, smap: false },
    // NX on, SMEP and SMAP off.
    Control { write_protect: true, no_execute: true, smep: false, smap: false },
    // SMEP on, NX off.
    Control { write_protect: false, no_execute: false, smep: true, smap: true },
];

/// One random edit, format-independent; [`apply`] reads it for a format.
#[derive(Clone, Debug)]
struct OpSpec {
    /// 0 to 3: a single page of the format's size `kind % sizes`; 4 and 5: a range.
    kind: u8,
    /// Which virtual window.
    high: bool,
    /// Where in the window (reduced modulo what fits).
    index: u32,
    /// A range's length in 4 KiB pages (1 to 1100).
    pages: u16,
    /// Which physical frame (reduced modulo what fits).
    phys: u32,
    /// A range: give the physical start the virtual start's offset in a huge page, so that
    /// huge pages fit.
    congruent: bool,
    /// WRITABLE, USER, EXECUTABLE, GLOBAL (bits 0 to 3).
    flags: u8,
}

fn op_spec() -> impl Strategy<Value = OpSpec> {
    (0u8..6, any::<bool>(), any::<u32>(), 1u16..=1100, any::<u32>(), any::<bool>(), any::<u8>())
        .prop_map(|(kind, high, index, pages, phys, congruent, flags)| OpSpec {
            kind,
            high,
            index,
            pages,
            phys,
            congruent,
            flags,
        })
}

/// What the test mapped: `[virt, virt + len)` to `[phys, phys + len)` with `flags`.
#[derive(Clone, Copy, Debug)]
struct Mapped {
    virt: u64,
    len: u64,
    phys: u64,
    flags: PageFlags,
}

/// The leaf sizes of `F`.
fn page_sizes<F: PageTableFormat>() -> Vec<u64> {
    (1..=F::LEVELS).filter(|&level| F::leaf_allowed(level)).map(F::leaf_size).collect()
}

/// The first address of each virtual window of `F`: one low, one at the top (the kernel's
/// half on x86-64, the last 8 MiB of the 4 GiB on 32-bit formats).
fn window<F: PageTableFormat>(high: bool) -> u64 {
    match (high, F::SIGN_EXTENDED) {
        (false, _) => GIB,
        (true, true) => 0u64.wrapping_sub(WINDOW),
        (true, false) => (1 << F::VIRT_BITS) - WINDOW,
    }
}

fn flags_of<F: PageTableFormat>(bits: u8) -> PageFlags {
    let mut flags = PageFlags::READABLE;
    flags.set(PageFlags::WRITABLE, bits & 1 != 0);
    flags.set(PageFlags::USER, bits & 2 != 0);
    flags.set(PageFlags::EXECUTABLE, bits & 4 != 0);
    flags.set(PageFlags::GLOBAL, bits & 8 != 0);
    flags & F::SUPPORTED
}

fn map_one<F: PageTableFormat, M: paging::TableMemory, S: PageSize>(
    table: &mut PageTable<F, M>,
    virt: u64,
    phys: u64,
    flags: PageFlags,
    alloc: &mut BitmapAllocator<'_>,
) -> Result<(), TableError> {
    let page = Page::<S>::from_start(VirtAddr::new(virt)).expect("aligned page");
    let frame = Frame::<S>::from_start(PhysAddr::new(phys)).expect("aligned frame");
    table.map(page, frame, flags, alloc).map(paging::Flush::ignore)
}

/// Applies `op` to `table`; returns what it mapped, or `None` if the engine refused.
fn apply<F: PageTableFormat, M: paging::TableMemory>(
    table: &mut PageTable<F, M>,
    op: &OpSpec,
    alloc: &mut BitmapAllocator<'_>,
) -> Option<Mapped> {
    let sizes = page_sizes::<F>();
    let base = window::<F>(op.high);
    let flags = flags_of::<F>(op.flags);
    if op.kind < 4 {
        let size = sizes[usize::from(op.kind) % sizes.len()];
        let virt = if size > WINDOW {
            // Huge pages larger than the window: the one holding the window, or the next.
            base.align_down_to(size).checked_add(u64::from(op.index % 2) * size)?
        } else {
            base + u64::from(op.index) % (WINDOW / size) * size
        };
        let phys = u64::from(op.phys) % PHYS_LIMIT.div_ceil(size) * size;
        let result = match size {
            s if s == 4 * KIB => map_one::<F, M, Size4KiB>(table, virt, phys, flags, alloc),
            s if s == 2 * MIB => map_one::<F, M, Size2MiB>(table, virt, phys, flags, alloc),
            s if s == 4 * MIB => map_one::<F, M, Size4MiB>(table, virt, phys, flags, alloc),
            s if s == GIB => map_one::<F, M, Size1GiB>(table, virt, phys, flags, alloc),
            other => unreachable!("no page size {other:#x} in x86 formats"),
        };
        result.ok().map(|()| Mapped { virt, len: size, phys, flags })
    } else {
        let len = u64::from(op.pages) * 4 * KIB;
        let virt = base + u64::from(op.index) % (WINDOW / (4 * KIB)) * 4 * KIB;
        let huge = sizes.iter().copied().filter(|&s| s <= 4 * MIB).max().unwrap_or(4 * KIB);
        let mut phys = u64::from(op.phys) % (PHYS_LIMIT / (4 * KIB)) * 4 * KIB;
        if op.congruent {
            phys = phys.align_down_to(huge) + virt % huge;
        }
        table.map_range(VirtAddr::new(virt), PhysAddr::new(phys), len, flags, alloc).ok()?.ignore();
        Some(Mapped { virt, len, phys, flags })
    }
}

trait AlignDown {
    fn align_down_to(self, align: u64) -> u64;
}

impl AlignDown for u64 {
    fn align_down_to(self, align: u64) -> u64 {
        self & !(align - 1)
    }
}

/// Whether the permissions `flags` let `access` at `mode` through under `control`, by the
/// x86 rules (SDM vol. 3, 4.6), written apart from `mmu::refuse`.
fn allowed(flags: PageFlags, access: Access, mode: Privilege, control: Control) -> bool {
    let user_page = flags.contains(PageFlags::USER);
    let writable = flags.contains(PageFlags::WRITABLE);
    let fetchable = !control.no_execute || flags.contains(PageFlags::EXECUTABLE);
    match (mode, access) {
        (Privilege::User, Access::Read) => user_page,
        (Privilege::User, Access::Write) => user_page && writable,
        (Privilege::User, Access::Execute) => user_page && fetchable,
        (Privilege::Supervisor, Access::Read) => !control.smap || !user_page,
        (Privilege::Supervisor, Access::Write) => {
            let smap_refuses = control.smap && user_page;
            let wp_refuses = control.write_protect && !writable;
            !smap_refuses && !wp_refuses
        }
        (Privilege::Supervisor, Access::Execute) => !(control.smep && user_page) && fetchable,
    }
}

/// Whether the format has an NX bit: PAE and 4-level paging, whose entries are 8 bytes
/// (legacy 32-bit paging has none).
fn has_nx<F: PageTableFormat>() -> bool {
    F::ENTRY_SIZE.bytes() == 8
}

/// The x86 #PF error code (SDM vol. 3, 4.7): P, W/R, U/S, RSVD, and I/D, which is set for
/// an instruction fetch when CR4.SMEP is set, or when NX is in force (EFER.NXE with a
/// format that has an NX bit).
fn expected_error_code<F: PageTableFormat>(
    cause: FaultCause,
    access: Access,
    mode: Privilege,
    control: Control,
) -> u32 {
    let nx_in_force = control.no_execute && has_nx::<F>();
    let fetch_flag = access == Access::Execute && (control.smep || nx_in_force);
    u32::from(cause != FaultCause::NotPresent)
        | u32::from(access == Access::Write) << 1
        | u32::from(mode == Privilege::User) << 2
        | u32::from(cause == FaultCause::ReservedBits) << 3
        | u32::from(fetch_flag) << 4
}

/// Every address worth probing: the edges, middles and neighbours of the pages and of the
/// ranges mapped, random addresses in the windows, and some elsewhere.
fn probe_addresses<F: PageTableFormat, M: paging::TableMemory>(
    table: &PageTable<F, M>,
    mapped: &[Mapped],
    random: &[u64],
) -> Vec<u64> {
    let mut pages = Vec::new();
    table.visit(|visit| {
        if let Visit::Page(MappedPage { virt, size, .. }) = visit {
            pages.push((virt.as_u64(), size));
        }
    });
    // Sample the pages so that big ranges do not make the test slow.
    let step = pages.len().div_ceil(48).max(1);
    let sampled = pages.iter().step_by(step).chain(pages.last());
    let spans = sampled.copied().chain(mapped.iter().map(|m| (m.virt, m.len)));
    let mut addrs = Vec::new();
    for (start, len) in spans {
        let end = start.wrapping_add(len);
        addrs.extend([
            start,
            start.wrapping_add(len / 2 + 0x123),
            end.wrapping_sub(1),
            end.wrapping_sub(8),
            start.wrapping_sub(1),
            end,
        ]);
    }
    for (i, &r) in random.iter().enumerate() {
        addrs.push(window::<F>(i % 2 == 1) + r % WINDOW);
    }
    addrs.extend([0, 0xFFF, 0x1000, 2 * GIB, 3 * GIB + 0x1234, 0xFFFF_FFFF]);
    // Non-canonical on every format here.
    addrs.extend([0x0000_8000_0000_0000, 0xFFFF_7FFF_FFFF_F000, 0x1234_5678_9ABC_DEF0]);
    if !F::SIGN_EXTENDED {
        addrs.extend([1 << F::VIRT_BITS, u64::MAX]);
    } else {
        addrs.extend([0xFFFF_8000_0000_0000, u64::MAX, 0x0000_7FFF_FFFF_FFFF]);
    }
    addrs.sort_unstable();
    addrs.dedup();
    addrs
}

/// What the model says about `addr`: the last successful mapping covering it.
fn model_lookup(mapped: &[Mapped], addr: u64) -> Option<(u64, PageFlags)> {
    mapped
        .iter()
        .find(|m| addr.wrapping_sub(m.virt) < m.len)
        .map(|m| (m.phys + (addr - m.virt), m.flags))
}

fn check_format<F: PageTableFormat>(ops: &[OpSpec], random: &[u64]) -> Result<(), TestCaseError> {
    let mut machine = Machine::<F>::new(MachineConfig::default());
    machine.set_strict_tlb(true);
    let ram_bytes = machine.ram().size_bytes();
    let mut bitmap = [0u64; 64];
    let mut alloc = BitmapAllocator::new(&mut bitmap, &[TABLE_AREA]).expect("bitmap storage");

    let mut table = PageTable::<F, _>::new(machine.ram_mut(), &mut alloc).expect("root table");
    let mut mapped = Vec::new();
    for op in ops {
        if let Some(m) = apply(&mut table, op, &mut alloc) {
            mapped.push(m);
        }
    }
    let addrs = probe_addresses(&table, &mapped, random);
    let root = table.root();

    let process = machine.add_process("p", root, Asid(1));
    prop_assert!(machine.switch_to(process));

    // The engine's view, checked against the model, before any probe.
    let mut expected = Vec::with_capacity(addrs.len());
    for &raw in &addrs {
        let addr = VirtAddr::new(raw);
        let lookup = machine.page_table_at(root).lookup(addr);
        if !F::is_canonical(addr) {
            prop_assert_eq!(lookup, Err(TableError::unaddressable::<F>(addr)));
            expected.push((addr, None));
            continue;
        }
        let lookup = lookup.map_err(|e| TestCaseError::fail(format!("{raw:#x}: {e}")))?;
        match (model_lookup(&mapped, raw), lookup) {
            (Some((phys, flags)), Lookup::Mapped(t)) => {
                prop_assert_eq!(t.phys.as_u64(), phys, "engine vs model at {:#x}", raw);
                prop_assert_eq!(
                    t.flags.difference(PageFlags::MMU_STATE),
                    flags | F::IMPLIED,
                    "flags at {:#x}",
                    raw
                );
            }
            (None, Lookup::Unmapped) => {}
            (model, engine) => {
                return Err(TestCaseError::fail(format!(
                    "{raw:#x}: the model says {model:x?}, the engine {engine:x?}"
                )));
            }
        }
        expected.push((addr, Some(lookup)));
    }

    for control in CONTROLS {
        machine.set_control(control);
        // Entries cached under the old NXE would keep its rule for NX (as on hardware).
        machine.invalidate_all();
        // With NXE clear, bit 63 (NX) is reserved: a page that sets it faults on it.
        let nx_reserved = !control.no_execute && has_nx::<F>();
        for mode in MODES {
            machine.set_mode(mode);
            for &(addr, lookup) in &expected {
                for access in ACCESSES {
                    let got = machine.probe(addr, access);
                    let ctx = || format!("{} {addr:#x} {access:?} {mode:?} {control:?}", F::NAME);
                    let Some(lookup) = lookup else {
                        prop_assert_eq!(got, Err(MachineError::NonCanonical { addr }), "{}", ctx());
                        continue;
                    };
                    let cause = match lookup {
                        Lookup::Mapped(t)
                            if nx_reserved && !t.flags.contains(PageFlags::EXECUTABLE) =>
                        {
                            FaultCause::ReservedBits
                        }
                        Lookup::Mapped(t) if allowed(t.flags, access, mode, control) => {
                            if t.phys.as_u64() < ram_bytes {
                                prop_assert_eq!(got, Ok(t.phys), "{}", ctx());
                                // The walk recorded the access in the tables.
                                let after = machine.page_table_at(root).translate(addr);
                                let flags =
                                    after.map_err(|e| TestCaseError::fail(e.to_string()))?;
                                prop_assert!(flags.flags.contains(PageFlags::ACCESSED));
                                if access == Access::Write {
                                    prop_assert!(flags.flags.contains(PageFlags::DIRTY));
                                }
                            } else {
                                let outside =
                                    MachineError::PhysicalOutsideRam { addr, phys: t.phys };
                                prop_assert_eq!(got, Err(outside), "{}", ctx());
                            }
                            continue;
                        }
                        Lookup::Mapped(_) => FaultCause::Protection,
                        Lookup::Unmapped | Lookup::Payload { .. } => FaultCause::NotPresent,
                    };
                    let Err(MachineError::Unhandled(raised)) = got else {
                        return Err(TestCaseError::fail(format!(
                            "{}: expected a {cause:?} fault, got {got:x?}",
                            ctx()
                        )));
                    };
                    prop_assert_eq!(raised.fault.cause, cause, "{}", ctx());
                    prop_assert_eq!(raised.fault.addr, addr, "{}", ctx());
                    prop_assert_eq!(raised.fault.access, access, "{}", ctx());
                    prop_assert_eq!(raised.fault.privilege, mode, "{}", ctx());
                    let code = expected_error_code::<F>(cause, access, mode, control);
                    prop_assert_eq!(
                        raised.error_code,
                        code,
                        "{}: error code {:#x}, expected {:#x}",
                        ctx(),
                        raised.error_code,
                        code
                    );
                }
            }
        }
    }
    Ok(())
}

fn ops() -> impl Strategy<Value = Vec<OpSpec>> {
    prop::collection::vec(op_spec(), 1..24)
}

fn randoms() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(any::<u64>(), 16)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn x86_64_mmu_agrees_with_engine(ops in ops(), random in randoms()) {
        check_format::<X86_64>(&ops, &random)?;
    }

    #[test]
    fn pae_mmu_agrees_with_engine(ops in ops(), random in randoms()) {
        check_format::<Pae>(&ops, &random)?;
    }

    #[test]
    fn legacy32_mmu_agrees_with_engine(ops in ops(), random in randoms()) {
        check_format::<Legacy32>(&ops, &random)?;
    }
}

/// The classic error codes on x86-64 with every protection on.
#[test]
fn classic_error_codes() -> Result<(), Box<dyn std::error::Error>> {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = [0u64; 64];
    let mut alloc = BitmapAllocator::new(&mut bitmap, &[TABLE_AREA])?;
    let mut table = PageTable::<X86_64, _>::new(machine.ram_mut(), &mut alloc)?;
    let user_ro = VirtAddr::new(0x40_0000);
    let kernel = VirtAddr::new(0x40_1000);
    let unmapped = VirtAddr::new(0x40_2000);
    let user = PageFlags::READABLE | PageFlags::USER;
    table.map_range(user_ro, PhysAddr::new(0x10_0000), 0x1000, user, &mut alloc)?.ignore();
    let rw = PageFlags::READABLE | PageFlags::WRITABLE;
    table.map_range(kernel, PhysAddr::new(0x10_1000), 0x1000, rw, &mut alloc)?.ignore();
    let root = table.root();
    let process = machine.add_process("p", root, Asid(1));
    machine.switch_to(process);

    let code = |machine: &mut Machine<X86_64>, addr, access| match machine.probe(addr, access) {
        Err(MachineError::Unhandled(raised)) => raised.error_code,
        other => panic!("{addr:#x} {access:?}: expected a page fault, got {other:?}"),
    };
    machine.set_mode(Privilege::User);
    assert_eq!(code(&mut machine, user_ro, Access::Write), 0x7, "user write, read-only page");
    assert_eq!(code(&mut machine, user_ro, Access::Execute), 0x15, "user fetch, NX page");
    assert_eq!(code(&mut machine, kernel, Access::Read), 0x5, "user read, supervisor page");
    assert_eq!(machine.probe(user_ro, Access::Read)?, PhysAddr::new(0x10_0000));
    machine.set_mode(Privilege::Supervisor);
    assert_eq!(code(&mut machine, unmapped, Access::Read), 0x0, "supervisor read, unmapped");
    assert_eq!(machine.probe(kernel + 0x10, Access::Write)?, PhysAddr::new(0x10_1010));
    Ok(())
}

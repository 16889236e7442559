//! The simulator's MMU walking arbitrary RAM contents as page tables: cycles, tables that
//! point to themselves or to each other at any level, entries outside RAM, reserved bits,
//! unaligned or missing roots.
//!
//! Checked for every address the input names:
//!
//! - the hardware walk ([`paging_sim::mmu::walk`]) ends, reads at most one entry per level,
//!   and what it returns is consistent (page, size, level, frame alignment, path);
//! - the engine's software walk ([`PageTable::lookup`] and [`PageTable::walk`]), written
//!   apart from it, agrees with it: the same page, frame, size and permissions, a payload
//!   or nothing where the MMU faults "not present", a corrupt entry where it faults on
//!   reserved bits or finds a table outside RAM;
//! - the machine's loads, stores and fetches (through its TLB, strict mode on) end with
//!   what a fresh walk from the root as loaded (PAE's PDPTE registers) and the permission
//!   check predict: the bytes of the frame, the page fault with its x86 error code, or the
//!   error for a table or frame outside RAM;
//! - a root load refuses exactly the PAE roots with a present PDPTE whose reserved bits are
//!   set, naming the first, and leaves no root active.
//!
//! Then the engine's range operations run over the same tables: they may refuse, but
//! never panic, and a refused one changes no byte of RAM and keeps no frame.

use crate::journal::Journaled;

use arbitrary::{Arbitrary, Unstructured};
use paging::frame::{BitmapAllocator, FrameAllocator, MemoryRegion};
use paging::table::{Holes, Lookup};
use paging::{
    Access, Asid, Entry, EntrySize, Fault, FaultCause, PageFlags, PageTable, PageTableFormat,
    PhysAddr, Privilege, TableError, TableMemory, Tlb, VirtAddr,
};
use paging_sim::mmu::{self, Control, LoadedRoot, RootRefused, WalkError};
use paging_sim::{Machine, MachineConfig, MachineError, NoResolver, RaisedFault, Ram};
use paging_x86::{Legacy32, Pae, X86_64, X86_64La57};

/// Frames whose contents the input writes (tables, data, anything).
const MAX_TABLE_FRAMES: u64 = 6;
/// Where the frames of the engine's allocator start: far from the input's frames, so that
/// no table the input writes is, by chance, a free frame (RAM is lazy: the gap is free).
const ALLOC_BASE: u64 = 1 << 20;
/// How many frames the engine's allocator has.
const ALLOC_FRAMES: u64 = 8;
/// Frames of RAM.
const RAM_FRAMES: u64 = ALLOC_BASE + ALLOC_FRAMES;
/// The most entries one input writes.
const MAX_ENTRIES: usize = 48;
/// The most operations one input runs.
const MAX_OPS: usize = 32;

/// Keeps the address field of an entry out of the allocator's frames (a free frame must
/// not be part of any tree).
fn away_from_allocator(raw: u64) -> u64 {
    // (A 4-byte entry's frame is below `ALLOC_BASE`.)
    let frame = (raw & 0x000F_FFFF_FFFF_F000) >> 12;
    if (ALLOC_BASE..RAM_FRAMES).contains(&frame) { raw ^ (1 << 40) } else { raw }
}

/// Walks the tables that `data` writes into a small RAM; panics on a disagreement between
/// the MMU, the engine and the machine, or on a broken promise.
pub fn mmu_walk(data: &[u8]) {
    let mut u = Unstructured::new(data);
    match u.int_in_range(0u8..=3).unwrap_or(0) {
        0 => run::<X86_64>(&mut u),
        1 => run::<X86_64La57>(&mut u),
        2 => run::<Pae>(&mut u),
        _ => run::<Legacy32>(&mut u),
    }
}

/// A frame number: mostly one of the input's frames, sometimes just past RAM, sometimes
/// anywhere (never the allocator's).
#[derive(Clone, Copy, Debug, Arbitrary)]
enum FrameRef {
    Inside(u8),
    Past(u8),
    Anywhere(u64),
}

impl FrameRef {
    fn number(self, frames: u64) -> u64 {
        match self {
            Self::Inside(n) => u64::from(n) % frames,
            Self::Past(n) => RAM_FRAMES + u64::from(n % 4),
            Self::Anywhere(n) => n & ((1 << 40) - 1),
        }
    }
}

/// An index in a table: the first entries, the last one, or any.
#[derive(Clone, Copy, Debug, Arbitrary)]
enum Index {
    Low(u8),
    Last,
    Any(u16),
}

impl Index {
    fn get<F: PageTableFormat>(self, level: u8) -> u64 {
        let entries = F::entries(level) as u64;
        match self {
            Self::Low(n) => u64::from(n % 4) % entries,
            Self::Last => entries - 1,
            Self::Any(n) => u64::from(n) % entries,
        }
    }
}

/// What one entry holds.
#[derive(Clone, Copy, Debug, Arbitrary)]
enum Value {
    /// A present entry with these low bits (PS and the rest) pointing to a frame, with
    /// some high bits (NX, protection keys, reserved bits) when `high` says so.
    Pointer { frame: FrameRef, low: u16, high: u8 },
    /// Anything.
    Raw(u64),
}

impl Value {
    fn raw(self, frames: u64) -> u64 {
        match self {
            Self::Pointer { frame, low, high } => {
                let high = match high % 8 {
                    0 => 1 << 63,
                    1 => u64::from(high) << 52,
                    2 => 1 << (32 + u32::from(high >> 3)),
                    _ => 0,
                };
                let raw = (frame.number(frames) << 12) | u64::from(low & 0xFFF) | 1 | high;
                away_from_allocator(raw)
            }
            Self::Raw(raw) => away_from_allocator(raw),
        }
    }
}

/// One entry the input writes: in which frame, at which index (read as a table of which
/// level), and what.
#[derive(Clone, Copy, Debug, Arbitrary)]
struct Write {
    frame: u8,
    level: u8,
    index: Index,
    value: Value,
}

/// A virtual address: an index at every level and an offset, or anything.
#[derive(Clone, Copy, Debug, Arbitrary)]
enum Addr {
    Indices { indices: [Index; 5], offset: u16, high: bool },
    Raw(u64),
}

impl Addr {
    fn get<F: PageTableFormat>(self) -> VirtAddr {
        match self {
            Self::Indices { indices, offset, high } => {
                let mut addr = u64::from(offset & 0xFFF);
                for level in 1..=F::LEVELS {
                    let index = indices[usize::from(level - 1)].get::<F>(level);
                    addr |= index << F::SHIFTS[usize::from(level)];
                }
                // The canonical form (the upper half when `high` asks for it and the top
                // index allows it).
                let bits = F::VIRT_BITS;
                if F::SIGN_EXTENDED && bits < 64 && (high || addr >> (bits - 1) & 1 == 1) {
                    addr |= u64::MAX << (bits - 1);
                }
                VirtAddr::new(addr)
            }
            Self::Raw(raw) => VirtAddr::new(raw),
        }
    }
}

/// The root: one of the input's frames (maybe unaligned), or outside RAM.
#[derive(Clone, Copy, Debug, Arbitrary)]
struct Root {
    frame: FrameRef,
    misalign: u8,
}

#[derive(Clone, Copy, Debug, Arbitrary)]
enum Kind {
    Load,
    Store,
    Fetch,
}

#[derive(Clone, Copy, Debug, Arbitrary)]
enum Op {
    /// A software and a hardware walk of one address.
    Walk { addr: Addr },
    /// An access by the machine.
    Access { kind: Kind, addr: Addr, len: u8, user: bool, flush: bool, value: u64 },
    /// New control bits.
    Control { bits: u8 },
    /// An engine range operation over the tables.
    Engine { addr: Addr, pages: u8, what: u8 },
}

fn run<F: PageTableFormat>(u: &mut Unstructured<'_>) {
    let frames = u64::from(u.int_in_range(1u8..=MAX_TABLE_FRAMES as u8).unwrap_or(1));
    let config = MachineConfig { ram_frames: RAM_FRAMES, ..MachineConfig::default() };
    let mut machine = Machine::<F>::new(config);
    let entry = F::ENTRY_SIZE.bytes();
    let count = u.int_in_range(0..=MAX_ENTRIES).unwrap_or(0);
    for _ in 0..count {
        let Ok(w) = Write::arbitrary(u) else { break };
        let level = w.level % F::LEVELS + 1;
        let at = (u64::from(w.frame) % frames) * 4096 + w.index.get::<F>(level) * entry;
        let raw = w.value.raw(frames);
        let bytes = raw.to_le_bytes();
        machine.ram_mut().write(PhysAddr::new(at), &bytes[..entry as usize]).unwrap();
    }
    let root = Root::arbitrary(u).unwrap_or(Root { frame: FrameRef::Inside(0), misalign: 0 });
    let misalign = if root.misalign < 0xF0 { 0 } else { u64::from(root.misalign & 0xF) * 4 };
    let root = away_from_allocator(root.frame.number(frames) << 12) + misalign;
    let root = PhysAddr::new(root);
    let process = machine.add_process("fuzz", root, Asid(1));
    if !machine.switch_to(process) {
        check_refused::<F>(&mut machine, root);
    }
    let mut bitmap = [0u64; 1];
    let usable = [MemoryRegion::usable(ALLOC_BASE * 4096, ALLOC_FRAMES * 4096)];
    let mut alloc = BitmapAllocator::new(&mut bitmap, &usable).unwrap();

    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let Ok(op) = Op::arbitrary(u) else { break };
        match op {
            Op::Walk { addr } => walk::<F>(&mut machine, root, addr.get::<F>()),
            Op::Access { kind, addr, len, user, flush, value } => {
                let value = away_from_allocator(value);
                access::<F>(&mut machine, kind, addr.get::<F>(), len, user, flush, value);
            }
            Op::Control { bits } => machine.set_control(Control {
                write_protect: bits & 1 != 0,
                no_execute: bits & 2 != 0,
                smep: bits & 4 != 0,
                smap: bits & 8 != 0,
            }),
            Op::Engine { addr, pages, what } => {
                engine::<F>(&mut machine, &mut alloc, root, addr.get::<F>(), pages, what);
            }
        }
    }
}

/// Checks why the root at `root` refused to load: a PAE PDPTE, the first one present that
/// decodes as invalid (reserved bits); no root is active after it.
fn check_refused<F: PageTableFormat>(machine: &mut Machine<F>, root: PhysAddr) {
    let name = F::NAME;
    let refused = machine.load_root(root, Asid(1));
    let first_invalid = (0..mmu::ROOT_REGISTERS).find_map(|index| {
        // A refused root was in RAM (registers load only from there): no wrap.
        let raw = machine.ram().read_entry(root.wrapping_add(index as u64 * 8), EntrySize::Eight);
        matches!(F::decode(raw, F::LEVELS), Entry::Invalid(_)).then_some((index, raw))
    });
    assert!(mmu::root_in_registers::<F>(), "{name}: a root refused: {refused:?}");
    let Some((index, raw)) = first_invalid else { panic!("{name}: refused: {refused:?}") };
    assert_eq!(refused, Err(MachineError::RootRefused(RootRefused { root, index, raw })));
    assert_eq!((machine.active_root(), machine.loaded_root()), (None, None), "{name}");
}

/// Compares the hardware walk of `addr` with the engine's.
fn walk<F: PageTableFormat>(machine: &mut Machine<F>, root: PhysAddr, addr: VirtAddr) {
    let name = F::NAME;
    let (lookup, steps) = {
        let table = PageTable::<F, _>::from_root(root, machine.ram_mut());
        (table.lookup(addr), table.walk(addr))
    };
    let ram = machine.ram();
    if !F::is_canonical(addr) {
        assert_eq!(lookup, Err(TableError::unaddressable::<F>(addr)), "{name}: {addr:?}");
        assert!(steps.is_empty(), "{name}: a walk of non-canonical {addr:?}");
        return;
    }
    // The engine reads the tables as they are in memory, NX as NXE has it (the formats
    // assume it): so does this walk, PAE's PDPT included.
    let hardware = mmu::walk::<F, Ram>(ram, &LoadedRoot::in_memory(root), addr, true);
    let root_in_ram = TableMemory::contains(ram, root);
    match hardware {
        Ok(w) => {
            assert!(w.reads >= 1 && w.reads <= u32::from(F::LEVELS), "{name}: {w:?}");
            assert_eq!(w.reads, u32::from(F::LEVELS - w.level + 1), "{name}: {w:?}");
            assert!(F::leaf_allowed(w.level), "{name}: a leaf at {}", w.level);
            assert_eq!(w.size, F::leaf_size(w.level), "{name}: {w:?}");
            assert_eq!(w.page, addr.align_down(w.size), "{name}: {w:?}");
            assert!(w.frame.is_aligned(w.size), "{name}: {w:?}");
            assert!(w.flags.contains(F::IMPLIED), "{name}: {w:?}");
            let Ok(Lookup::Mapped(t)) = lookup else {
                panic!("{name}: {addr:?}: the MMU maps it ({w:?}), the engine says {lookup:?}")
            };
            assert_eq!(
                (t.page, t.frame, t.size, t.level, t.flags),
                (w.page, w.frame, w.size, w.level, w.flags),
                "{name}: {addr:?}: the engine and the MMU disagree"
            );
            // `w.frame` is aligned to `w.size` (asserted above): the sum cannot overflow.
            assert_eq!(t.phys, w.frame + addr.offset_in(w.size), "{name}: {addr:?}");
            assert_eq!(steps.len(), w.reads as usize, "{name}: {addr:?}: {steps:?}");
            for step in &steps {
                // As the hardware walk computes its path (its tables are in RAM: no wrap).
                let at = step.table.wrapping_add(step.index as u64 * F::ENTRY_SIZE.bytes());
                assert_eq!(at, w.path[usize::from(step.level)], "{name}: {addr:?}: path");
            }
            assert_eq!(w.leaf_raw, steps.last().unwrap().raw, "{name}: {addr:?}");
        }
        Err(WalkError::Fault { cause, reads }) => {
            assert!(reads >= 1 && reads <= u32::from(F::LEVELS), "{name}: {reads} reads");
            assert_eq!(steps.len(), reads as usize, "{name}: {addr:?}: {steps:?}");
            let last = steps.last().unwrap();
            match cause {
                FaultCause::NotPresent => {
                    assert!(
                        matches!(lookup, Ok(Lookup::Unmapped | Lookup::Payload { .. })),
                        "{name}: {addr:?}: not present to the MMU, {lookup:?} to the engine"
                    );
                    assert!(matches!(last.entry, Entry::Empty | Entry::Payload(_)), "{name}");
                }
                FaultCause::ReservedBits => {
                    assert!(
                        matches!(
                            lookup,
                            Err(TableError::CorruptEntry { reason: Some(_), level, raw, .. })
                                if level == last.level && raw == last.raw
                        ),
                        "{name}: {addr:?}: reserved bits to the MMU, {lookup:?} to the engine"
                    );
                }
                other => panic!("{name}: {addr:?}: a walk faulted with {other:?}"),
            }
        }
        Err(WalkError::TableOutsideRam { level, raw }) if !root_in_ram => {
            assert_eq!((level, raw), (F::LEVELS, root.as_u64()), "{name}: {addr:?}");
            // The engine trusts its root: outside memory it reads as empty.
            assert_eq!(lookup, Ok(Lookup::Unmapped), "{name}: {addr:?}: root outside RAM");
        }
        Err(WalkError::TableOutsideRam { level, raw }) => {
            assert!(level > 1 && level <= F::LEVELS, "{name}: {addr:?}: level {level}");
            assert!(
                matches!(
                    lookup,
                    Err(TableError::CorruptEntry { reason: None, level: l, raw: r, .. })
                        if l == level && r == raw
                ),
                "{name}: {addr:?}: a table outside RAM to the MMU ({level}, {raw:#x}), \
                 {lookup:?} to the engine"
            );
        }
    }
}

/// One access by the machine, checked against a fresh walk when the TLB was flushed.
#[allow(clippy::too_many_arguments, reason = "the fields of one operation")]
fn access<F: PageTableFormat>(
    machine: &mut Machine<F>,
    kind: Kind,
    addr: VirtAddr,
    len: u8,
    user: bool,
    flush: bool,
    value: u64,
) {
    let name = F::NAME;
    let len = [1usize, 2, 4, 8][usize::from(len % 4)];
    let access = match kind {
        Kind::Load => Access::Read,
        Kind::Store => Access::Write,
        Kind::Fetch => Access::Execute,
    };
    let mode = if user { Privilege::User } else { Privilege::Supervisor };
    machine.set_mode(mode);
    if flush {
        machine.invalidate_all();
    }
    let control = machine.config().control;
    let one_page = addr.offset_in(4096) + len as u64 <= 4096;
    // What a fresh walk predicts, before the access marks anything.
    let expected = (flush && one_page).then(|| {
        if !F::is_canonical(addr) {
            return Err(MachineError::NonCanonical { addr });
        }
        let has_nx = !F::IMPLIED.contains(PageFlags::EXECUTABLE);
        let raised = |cause| {
            let fault = Fault { addr, access, privilege: mode, cause };
            let error_code = mmu::error_code(cause, access, mode, control, has_nx);
            MachineError::Unhandled(RaisedFault { fault, error_code })
        };
        let Some(root) = machine.loaded_root() else { return Err(MachineError::NoActiveSpace) };
        match mmu::walk::<F, Ram>(machine.ram(), &root, addr, control.no_execute) {
            Err(WalkError::Fault { cause, .. }) => Err(raised(cause)),
            Err(WalkError::TableOutsideRam { level, raw }) => {
                Err(MachineError::TableOutsideRam { addr, level, raw })
            }
            Ok(w) => {
                if let Some(cause) = mmu::refuse(w.flags, access, mode, control) {
                    return Err(raised(cause));
                }
                // As `Machine` computes it: a walked leaf's frame is aligned to its size.
                let phys = w.frame.wrapping_add(addr.offset_in(w.size));
                let end = phys.as_u64().checked_add(len as u64);
                if end.is_none_or(|end| end > machine.ram().size_bytes()) {
                    return Err(MachineError::PhysicalOutsideRam { addr, phys });
                }
                Ok(phys)
            }
        }
    });
    let data = &value.to_le_bytes()[..len];
    let mut buf = [0u8; 8];
    let got = match kind {
        Kind::Load => machine.load(addr, &mut buf[..len], &mut NoResolver),
        Kind::Store => machine.store(addr, data, &mut NoResolver),
        Kind::Fetch => machine.fetch(addr, &mut buf[..len], &mut NoResolver),
    };
    match &got {
        Ok(())
        | Err(
            MachineError::Unhandled(_)
            | MachineError::NonCanonical { .. }
            | MachineError::NoActiveSpace
            | MachineError::TableOutsideRam { .. }
            | MachineError::PhysicalOutsideRam { .. },
        ) => {}
        // A TLB entry may go stale: a store may rewrite a table. (Walks only set Accessed
        // and Dirty, which change no translation: PAE's PDPTEs, whose bit 5 is reserved,
        // are read from the registers loaded with the root.)
        Err(MachineError::StaleTlb(_)) if !flush => {}
        Err(other) => panic!("{name}: {kind:?} of {len} at {addr:?} (flush {flush}): {other}"),
    }
    if let Err(MachineError::Unhandled(raised)) = &got {
        let offset = raised.fault.addr.as_u64().wrapping_sub(addr.as_u64());
        assert!(offset < len as u64, "{name}: a fault at {:?} for {addr:?}", raised.fault.addr);
        assert_eq!((raised.fault.access, raised.fault.privilege), (access, mode), "{name}");
    }
    let Some(expected) = expected else { return };
    match (got, expected) {
        (Ok(()), Ok(phys)) => {
            let mut now = [0u8; 8];
            machine.ram().read(phys, &mut now[..len]).unwrap();
            match kind {
                Kind::Store => assert_eq!(&now[..len], data, "{name}: store to {addr:?}"),
                _ => assert_eq!(now[..len], buf[..len], "{name}: {kind:?} of {addr:?}"),
            }
        }
        (got, expected) => {
            assert_eq!(got, expected.map(drop), "{name}: {kind:?} of {len} at {addr:?} as {mode:?}")
        }
    }
}

/// An engine range operation over the input's tables, with frames from `alloc`: it may
/// refuse, but a refusal changes no byte of RAM and keeps no frame.
fn engine<F: PageTableFormat>(
    machine: &mut Machine<F>,
    alloc: &mut BitmapAllocator<'_>,
    root: PhysAddr,
    addr: VirtAddr,
    pages: u8,
    what: u8,
) {
    let name = F::NAME;
    let sizes: Vec<u64> =
        (1..=F::LEVELS).filter(|&l| F::leaf_allowed(l)).map(F::leaf_size).collect();
    let size = sizes[usize::from(what >> 4) % sizes.len()];
    let va = VirtAddr::new(addr.as_u64() & !(size - 1));
    let len = (u64::from(pages % 4) + 1) * size;
    let in_use = alloc.frames_in_use();
    let mut memory = Journaled::new(machine.ram_mut());
    let mut table = PageTable::<F, _>::from_root(root, &mut memory);
    table.keep_empty_tables(what & 8 != 0);
    let flags = PageFlags::READABLE | PageFlags::WRITABLE | PageFlags::USER;
    let result = match what % 4 {
        0 => table.map_range(va, PhysAddr::new(0x40_0000), len, flags, alloc),
        1 => table.unmap_range(va, len, Holes::Skip, alloc, |_| {}),
        2 => table.unmap_range(va, len, Holes::Refuse, alloc, |_| {}),
        _ => table.protect_range(va, len, PageFlags::READABLE, alloc),
    };
    let changed = memory.changed_frame();
    match result {
        Ok(flush) => flush.apply(machine),
        Err(error) => {
            // Frames taken and given back may have been written in between, but every
            // byte is as it was.
            assert_eq!(changed, None, "{name}: {error} at {va:?}+{len:#x} changed RAM");
            assert_eq!(alloc.frames_in_use(), in_use, "{name}: {error} kept frames");
        }
    }
}

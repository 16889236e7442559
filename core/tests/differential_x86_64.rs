//! Differential tests of the engine and the [`X86_64`] format against the `x86_64` crate.
//!
//! Both directions work on the same host arena of table frames, whose physical address 0 is
//! the first frame:
//!
//! - **our encoder, their decoder**: random single pages (4 KiB, 2 MiB, 1 GiB) and ranges,
//!   in the lower and the upper half, are mapped with our engine; then every page the engine
//!   visits and a set of probe addresses (page starts, ends, random offsets, neighbours and
//!   unmapped addresses) are translated by both sides, and the results must agree: the same
//!   physical address, page size and bit-for-bit corresponding flags, or "not mapped" on both
//!   sides. The results must also agree with the list of calls the engine accepted.
//! - **their encoder, our decoder**: random pages are mapped with the `x86_64` crate's
//!   `map_to_with_table_flags`; then our engine, taking over the root with
//!   [`PageTable::from_root`], must translate every probe as the `x86_64` crate does.
//!
//! The two sides never hold live borrows of the arena at the same time: each phase ends
//! (and drops its view of the arena) before the other begins.

use std::fmt;

use paging::frame::{BitmapAllocator, MemoryRegion};
use paging::table::{MappedPage, Visit};
use paging::{
    ArenaMemory, Frame, FrameBuf, Page, PageFlags, PageSize, PageTable, PhysAddr, Size1GiB,
    Size2MiB, Size4KiB, TableError, Translation, VirtAddr,
};
use paging_harness::show::{Flags, Hex};
use paging_x86::X86_64;
use proptest::prelude::*;
use x86_64::structures::paging::mapper::{MappedFrame, TranslateResult};
use x86_64::structures::paging::{
    FrameAllocator as X86FrameAllocator, Mapper, OffsetPageTable, Page as X86Page,
    PageTable as X86PageTable, PageTableFlags as X, PhysFrame, Size1GiB as X1GiB,
    Size2MiB as X2MiB, Size4KiB as X4KiB, Translate,
};

/// Frames of table memory in the arena (2 MiB).
const ARENA_FRAMES: usize = 512;

const KIB4: u64 = 1 << 12;
const MIB2: u64 = 1 << 21;
const GIB: u64 = 1 << 30;
/// One past the largest physical address of the format (52 bits).
const PHYS_LIMIT: u64 = 1 << 52;

/// The four 4 GiB windows mappings and probes are drawn from: the bottom and the top of the
/// lower half, and the bottom and the top (kernel) of the upper half.
const WINDOWS: [u64; 4] =
    [0x0000_0000_0000_0000, 0x0000_7fff_0000_0000, 0xffff_8000_0000_0000, 0xffff_ffff_0000_0000];
/// The size of each window.
const WINDOW_SPAN: u64 = 4 * GIB;
/// Within each GiB of a window, pages smaller than 1 GiB start in the first 32 MiB, so that
/// they share tables and sometimes collide.
const HOT_SPAN: u64 = 32 << 20;

/// The flags a random mapping may carry besides `READABLE` (which every x86 page has).
const OPTIONAL_FLAGS: [PageFlags; 10] = [
    PageFlags::WRITABLE,
    PageFlags::EXECUTABLE,
    PageFlags::USER,
    PageFlags::GLOBAL,
    PageFlags::NO_CACHE,
    PageFlags::WRITE_THROUGH,
    PageFlags::SOFTWARE_0,
    PageFlags::SOFTWARE_1,
    PageFlags::SOFTWARE_2,
    PageFlags::SOFTWARE_3,
];

/// The leaf bits a random `x86_64`-crate mapping may carry besides `PRESENT`.
const OPTIONAL_X86_FLAGS: [X; 13] = [
    X::WRITABLE,
    X::USER_ACCESSIBLE,
    X::WRITE_THROUGH,
    X::NO_CACHE,
    X::ACCESSED,
    X::DIRTY,
    X::GLOBAL,
    X::BIT_9,
    X::BIT_10,
    X::BIT_11,
    X::BIT_52,
    X::BIT_62,
    X::NO_EXECUTE,
];

/// The bits of the protection-key field of an IA-32e leaf (62:59).
const PK_SHIFT: u32 = 59;

// ---------------------------------------------------------------------------------------
// Flag correspondence.
// ---------------------------------------------------------------------------------------

/// Our flags and the `x86_64` crate's bits that stand for the same thing (NX, the page
/// size and the protection key aside, which do not map one to one).
const SAME_BITS: [(PageFlags, X); 11] = [
    (PageFlags::WRITABLE, X::WRITABLE),
    (PageFlags::USER, X::USER_ACCESSIBLE),
    (PageFlags::WRITE_THROUGH, X::WRITE_THROUGH),
    (PageFlags::NO_CACHE, X::NO_CACHE),
    (PageFlags::ACCESSED, X::ACCESSED),
    (PageFlags::DIRTY, X::DIRTY),
    (PageFlags::GLOBAL, X::GLOBAL),
    (PageFlags::SOFTWARE_0, X::BIT_9),
    (PageFlags::SOFTWARE_1, X::BIT_10),
    (PageFlags::SOFTWARE_2, X::BIT_11),
    (PageFlags::SOFTWARE_3, X::BIT_52),
];

/// The leaf bits (everything but the address) that our `flags` stand for in a page of
/// `size` bytes, as the `x86_64` crate names them.
fn to_x86(flags: PageFlags, size: u64) -> X {
    let mut x = X::PRESENT;
    for (ours, theirs) in SAME_BITS {
        x.set(theirs, flags.contains(ours));
    }
    x.set(X::NO_EXECUTE, !flags.contains(PageFlags::EXECUTABLE));
    x.set(X::HUGE_PAGE, size > KIB4);
    x | X::from_bits_retain(u64::from(flags.protection_key()) << PK_SHIFT)
}

/// Our flags for the leaf bits `x` (the inverse of [`to_x86`] on the bits both know).
fn from_x86(x: X) -> PageFlags {
    let mut flags = PageFlags::READABLE;
    for (ours, theirs) in SAME_BITS {
        flags.set(ours, x.contains(theirs));
    }
    flags.set(PageFlags::EXECUTABLE, !x.contains(X::NO_EXECUTE));
    // The mask keeps four bits.
    flags.with_protection_key(((x.bits() >> PK_SHIFT) & 0xF) as u8)
}

/// Our flags from a random selector: `READABLE` and the chosen optional flags.
fn our_flags(bits: u16) -> PageFlags {
    OPTIONAL_FLAGS
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .fold(PageFlags::READABLE, |flags, (_, &flag)| flags | flag)
}

/// Leaf bits for the `x86_64` crate from a random selector: `PRESENT` and the chosen bits.
fn x86_flags(bits: u16) -> X {
    OPTIONAL_X86_FLAGS
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .fold(X::PRESENT, |flags, (_, &flag)| flags | flag)
}

// ---------------------------------------------------------------------------------------
// What each side says about one address.
// ---------------------------------------------------------------------------------------

/// The `x86_64` crate's answer for one address, copied out of the walk.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Theirs {
    Mapped { frame: u64, offset: u64, size: u64, flags: X },
    NotMapped,
    InvalidFrameAddress(u64),
}

impl Theirs {
    fn of(result: TranslateResult) -> Self {
        match result {
            TranslateResult::Mapped { frame, offset, flags } => {
                let size = match frame {
                    MappedFrame::Size4KiB(_) => KIB4,
                    MappedFrame::Size2MiB(_) => MIB2,
                    MappedFrame::Size1GiB(_) => GIB,
                };
                assert_eq!(size, frame.size());
                Self::Mapped { frame: frame.start_address().as_u64(), offset, size, flags }
            }
            TranslateResult::NotMapped => Self::NotMapped,
            TranslateResult::InvalidFrameAddress(addr) => Self::InvalidFrameAddress(addr.as_u64()),
        }
    }
}

/// Checks that our translation of `addr` and theirs say the same thing.
fn agree(
    addr: u64,
    ours: &Result<Translation, TableError>,
    theirs: Theirs,
) -> Result<(), TestCaseError> {
    match (ours, theirs) {
        (Ok(t), Theirs::Mapped { frame, offset, size, flags }) => {
            prop_assert_eq!(t.phys.as_u64(), frame + offset, "physical address of {:#x}", addr);
            prop_assert_eq!(t.frame.as_u64(), frame, "frame of {:#x}", addr);
            prop_assert_eq!(t.size, size, "page size at {:#x}", addr);
            prop_assert_eq!(t.page.as_u64(), addr - offset, "page of {:#x}", addr);
            let level = match size {
                KIB4 => 1,
                MIB2 => 2,
                _ => 3,
            };
            prop_assert_eq!(t.level, level, "level of {:#x}", addr);
            prop_assert_eq!(
                to_x86(t.flags, t.size),
                flags,
                "flags at {:#x}: ours {:?}",
                addr,
                t.flags
            );
            prop_assert_eq!(t.flags, from_x86(flags), "flags at {:#x}: theirs {:?}", addr, flags);
        }
        (Err(TableError::NotMapped { addr: at }), Theirs::NotMapped) => {
            prop_assert_eq!(at.as_u64(), addr);
        }
        _ => {
            return Err(TestCaseError::fail(format!(
                "{addr:#x}: ours {ours:?}, theirs {theirs:?}"
            )));
        }
    }
    Ok(())
}

/// Sign-extends bit 47.
fn canonical(addr: u64) -> u64 {
    (((addr << 16) as i64) >> 16) as u64
}

/// A cheap mix of two numbers, for offsets derived from a seed.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Probe addresses around a page `[start, start + size)`: its start, its last byte, a
/// random offset inside it, and the addresses just outside it (if canonical).
fn page_probes(start: u64, size: u64, seed: u64, out: &mut Vec<u64>) {
    out.push(start);
    out.push(start + (size - 1));
    out.push(start + mix(seed, start) % size);
    for outside in [start.wrapping_sub(1), start.wrapping_add(size)] {
        if canonical(outside) == outside {
            out.push(outside);
        }
    }
}

/// Random canonical probes: inside the windows, and anywhere.
fn random_probes(window_probes: &[(usize, u64)], anywhere: &[u64], out: &mut Vec<u64>) {
    for &(window, offset) in window_probes {
        out.push(WINDOWS[window] + offset % WINDOW_SPAN);
    }
    out.extend(anywhere.iter().map(|&r| canonical(r)));
}

/// A bitmap allocator whose usable region is the whole arena.
fn bitmap_over(storage: &mut [u64]) -> BitmapAllocator<'_> {
    let map = [MemoryRegion::usable(0, ARENA_FRAMES as u64 * KIB4)];
    BitmapAllocator::new(storage, &map).expect("bitmap storage fits the arena")
}

/// Translates every address of `probes` with the `x86_64` crate, reading the tables in
/// `frames` whose root is at physical address `root`.
fn their_translations(frames: &mut [FrameBuf], root: u64, probes: &[u64]) -> Vec<Theirs> {
    assert!(root % KIB4 == 0 && root / KIB4 < frames.len() as u64, "root {root:#x} in the arena");
    let arena = frames.as_mut_ptr();
    // SAFETY: `frames` is borrowed mutably for this whole function and nothing else reads or
    // writes it meanwhile (the engine's `ArenaMemory` was dropped before the call). `root`
    // is the index of a frame inside `frames` (checked above), and `FrameBuf` (a 4096-aligned
    // `[u64; 512]`) has the layout of the `x86_64` crate's `PageTable` (a 4096-aligned array
    // of 512 transparent `u64` entries). The offset mapping makes physical address `p` the
    // host address `arena + p`, and every table entry the engine wrote points to a frame of
    // the arena (`ArenaMemory::contains` was checked when it was written), so the walker
    // only forms references to frames of `frames`, distinct from the root, which are valid
    // for the lifetime of the mapper. Translation only reads.
    let mapper = unsafe {
        let root_table = &mut *arena.add((root / KIB4) as usize).cast::<X86PageTable>();
        OffsetPageTable::new(root_table, x86_64::VirtAddr::new(arena as u64))
    };
    probes.iter().map(|&addr| Theirs::of(mapper.translate(x86_64::VirtAddr::new(addr)))).collect()
}

// ---------------------------------------------------------------------------------------
// Direction 1: our encoder, their decoder.
// ---------------------------------------------------------------------------------------

/// One call to our engine.
#[derive(Clone, Copy)]
enum Op {
    /// `map::<S>` of one page of `size` bytes.
    Page { size: u64, virt: u64, phys: u64, flags: PageFlags },
    /// `map_range`.
    Range { virt: u64, phys: u64, len: u64, flags: PageFlags },
}

/// In hex, flags by name: what a shrunk failing case prints.
impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Page { size, virt, phys, flags } => f
                .debug_struct("Page")
                .field("size", &Hex(size))
                .field("virt", &Hex(virt))
                .field("phys", &Hex(phys))
                .field("flags", &Flags(flags))
                .finish(),
            Self::Range { virt, phys, len, flags } => f
                .debug_struct("Range")
                .field("virt", &Hex(virt))
                .field("phys", &Hex(phys))
                .field("len", &Hex(len))
                .field("flags", &Flags(flags))
                .finish(),
        }
    }
}

/// A virtual address aligned to `size`, in one of the windows.
fn virt_strategy(size: u64) -> impl Strategy<Value = u64> {
    let slots = (HOT_SPAN / size).max(1);
    (0..WINDOWS.len(), 0..WINDOW_SPAN / GIB, 0..slots)
        .prop_map(move |(window, gib, slot)| WINDOWS[window] + gib * GIB + slot * size)
}

/// A physical address below 2^52 aligned to `align`.
fn phys_strategy(align: u64) -> impl Strategy<Value = u64> {
    any::<u64>().prop_map(move |r| (r % PHYS_LIMIT) & !(align - 1))
}

fn page_op(size: u64) -> impl Strategy<Value = Op> {
    (virt_strategy(size), phys_strategy(size), any::<u16>())
        .prop_map(move |(virt, phys, bits)| Op::Page { size, virt, phys, flags: our_flags(bits) })
}

fn range_op() -> impl Strategy<Value = Op> {
    let aligns = [KIB4, MIB2, GIB];
    (0..3usize, any::<bool>(), 0..3usize, 0..1024u64, any::<u16>()).prop_flat_map(
        move |(class, same_phys_align, big, extra, bits)| {
            let align = aligns[class];
            let phys_align = if same_phys_align { align } else { KIB4 };
            let len = (big as u64 * align + extra * KIB4).max(KIB4);
            (virt_strategy(align), phys_strategy(phys_align))
                .prop_map(move |(virt, phys)| Op::Range { virt, phys, len, flags: our_flags(bits) })
        },
    )
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => page_op(KIB4),
        2 => page_op(MIB2),
        1 => page_op(GIB),
        3 => range_op(),
    ]
}

/// One mapping the engine accepted: `[virt, virt + len)` to `[phys, phys + len)`.
#[derive(Clone, Copy, Debug)]
struct Accepted {
    virt: u64,
    phys: u64,
    len: u64,
    flags: PageFlags,
    /// The page size, for single pages.
    size: Option<u64>,
}

impl Accepted {
    fn covers(&self, addr: u64) -> bool {
        addr.wrapping_sub(self.virt) < self.len
    }
}

/// Runs `op` on `table`; returns the mapping if the engine accepted it.
fn apply<M: paging::TableMemory>(
    table: &mut PageTable<X86_64, M>,
    op: Op,
    alloc: &mut BitmapAllocator<'_>,
) -> Option<Accepted> {
    let (virt, phys, len, flags, size, result) = match op {
        Op::Page { size, virt, phys, flags } => {
            let virt_addr = VirtAddr::new(virt);
            let phys_addr = PhysAddr::new(phys);
            let result = match size {
                KIB4 => map_one::<Size4KiB, M>(table, virt_addr, phys_addr, flags, alloc),
                MIB2 => map_one::<Size2MiB, M>(table, virt_addr, phys_addr, flags, alloc),
                _ => map_one::<Size1GiB, M>(table, virt_addr, phys_addr, flags, alloc),
            };
            (virt, phys, size, flags, Some(size), result)
        }
        Op::Range { virt, phys, len, flags } => {
            let result =
                table.map_range(VirtAddr::new(virt), PhysAddr::new(phys), len, flags, alloc);
            (virt, phys, len, flags, None, result)
        }
    };
    // Refused calls (collisions, non-canonical or too-high ranges, no frames) are skipped.
    let flush = result.ok()?;
    flush.ignore();
    Some(Accepted { virt, phys, len, flags, size })
}

fn map_one<S: PageSize, M: paging::TableMemory>(
    table: &mut PageTable<X86_64, M>,
    virt: VirtAddr,
    phys: PhysAddr,
    flags: PageFlags,
    alloc: &mut BitmapAllocator<'_>,
) -> Result<paging::Flush, TableError> {
    let page = Page::<S>::from_start(virt).expect("aligned page");
    let frame = Frame::<S>::from_start(phys).expect("aligned frame");
    table.map(page, frame, flags, alloc)
}

/// A mapped page as [`PageTable::visit`] reports it.
#[derive(Clone, Copy, Debug)]
struct VisitedPage {
    virt: u64,
    frame: u64,
    size: u64,
    flags: PageFlags,
}

fn check_ours_against_theirs(
    ops: &[Op],
    window_probes: &[(usize, u64)],
    anywhere: &[u64],
    seed: u64,
) -> Result<(), TestCaseError> {
    let mut frames = vec![FrameBuf::ZERO; ARENA_FRAMES];
    let mut storage = [0u64; ARENA_FRAMES / 64];

    // Phase 1: build with our engine, visit, and translate with our engine.
    let (root, accepted, pages, probes, ours) = {
        let mut alloc = bitmap_over(&mut storage);
        let memory = ArenaMemory::new(&mut frames, PhysAddr::ZERO);
        let mut table = PageTable::<X86_64, _>::new(memory, &mut alloc).expect("a root frame");
        let accepted: Vec<Accepted> =
            ops.iter().filter_map(|&op| apply(&mut table, op, &mut alloc)).collect();

        let mut pages = Vec::new();
        let mut corrupt = Vec::new();
        table.visit(|visit| match visit {
            Visit::Page(MappedPage { virt, frame, size, flags }) => {
                pages.push(VisitedPage { virt: virt.as_u64(), frame: frame.as_u64(), size, flags });
            }
            Visit::Table { .. } => {}
            other => corrupt.push(other),
        });
        prop_assert!(corrupt.is_empty(), "the engine wrote non-page entries: {:?}", corrupt);

        let mut probes = Vec::new();
        for page in &pages {
            page_probes(page.virt, page.size, seed, &mut probes);
        }
        for a in &accepted {
            // The edges of every accepted mapping, and just outside them.
            page_probes(a.virt, a.len, seed, &mut probes);
        }
        random_probes(window_probes, anywhere, &mut probes);

        let ours: Vec<_> =
            probes.iter().map(|&addr| table.translate(VirtAddr::new(addr))).collect();

        // Non-canonical addresses: refused by ours, unrepresentable in theirs.
        for &addr in probes.iter().take(64) {
            let bad = addr ^ (1 << 50);
            let refused = x86_64::VirtAddr::try_new(bad).map_err(|not_valid| not_valid.0);
            prop_assert_eq!(refused, Err(bad));
            prop_assert_eq!(
                table.translate(VirtAddr::new(bad)),
                Err(TableError::NonCanonical { addr: VirtAddr::new(bad) })
            );
        }

        let (root, _memory) = table.into_parts();
        (root, accepted, pages, probes, ours)
    };

    // The visited pages are exactly the accepted mappings.
    let mut visited_bytes = 0u64;
    for page in &pages {
        let Some(a) = accepted.iter().find(|a| a.covers(page.virt)) else {
            return Err(TestCaseError::fail(format!("visited page {page:x?} that nothing mapped")));
        };
        prop_assert!(page.virt - a.virt + page.size <= a.len, "page {:x?} leaves {:x?}", page, a);
        prop_assert_eq!(page.frame, a.phys + (page.virt - a.virt), "frame of {:x?}", page);
        prop_assert_eq!(page.flags, a.flags, "flags of {:x?}", page);
        if let Some(size) = a.size {
            prop_assert_eq!(page.size, size, "size of {:x?}", page);
        }
        visited_bytes += page.size;
    }
    let accepted_bytes: u64 = accepted.iter().map(|a| a.len).sum();
    prop_assert_eq!(visited_bytes, accepted_bytes, "visited pages cover what was mapped");

    // Phase 2: the `x86_64` crate walks the same tables (our table and memory are gone).
    let theirs = their_translations(&mut frames, root.as_u64(), &probes);

    for ((&addr, our), &their) in probes.iter().zip(&ours).zip(&theirs) {
        agree(addr, our, their)?;
        // And both agree with what the engine accepted.
        match accepted.iter().find(|a| a.covers(addr)) {
            Some(a) => {
                let Ok(t) = our else {
                    return Err(TestCaseError::fail(format!("{addr:#x} in {a:x?} but not mapped")));
                };
                prop_assert_eq!(
                    t.phys.as_u64(),
                    a.phys + (addr - a.virt),
                    "{:#x} in {:x?}",
                    addr,
                    a
                );
                prop_assert_eq!(t.flags, a.flags, "{:#x} in {:x?}", addr, a);
            }
            None => prop_assert_eq!(
                our,
                &Err(TableError::NotMapped { addr: VirtAddr::new(addr) }),
                "{:#x} mapped by nothing",
                addr
            ),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Direction 2: their encoder, our decoder.
// ---------------------------------------------------------------------------------------

/// Hands the `x86_64` crate the arena frames `next..end` for its tables.
struct ArenaFrames {
    next: u64,
    end: u64,
}

// SAFETY: every frame is handed out at most once, lies inside the arena (frames `next..end`,
// all of which exist), and is never the root (frame 0, which the allocator never covers), so
// a frame handed out is unused and the mapper may zero it and use it as a table.
unsafe impl X86FrameAllocator<X4KiB> for ArenaFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<X4KiB>> {
        if self.next >= self.end {
            return None;
        }
        let frame = PhysFrame::containing_address(x86_64::PhysAddr::new(self.next * KIB4));
        self.next += 1;
        Some(frame)
    }
}

/// One call to the `x86_64` crate's mapper.
#[derive(Clone, Copy)]
struct XOp {
    size: u64,
    virt: u64,
    phys: u64,
    flags: X,
}

/// In hex, flags by the `x86_64` crate's names.
impl fmt::Debug for XOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XOp")
            .field("size", &Hex(self.size))
            .field("virt", &Hex(self.virt))
            .field("phys", &Hex(self.phys))
            .field("flags", &self.flags)
            .finish()
    }
}

fn xop_strategy() -> impl Strategy<Value = XOp> {
    prop_oneof![3 => Just(KIB4), 2 => Just(MIB2), 1 => Just(GIB)].prop_flat_map(|size| {
        (virt_strategy(size), phys_strategy(size), any::<u16>())
            .prop_map(move |(virt, phys, bits)| XOp { size, virt, phys, flags: x86_flags(bits) })
    })
}

/// Maps one page of size `S` with the `x86_64` crate.
fn x86_map<S>(mapper: &mut OffsetPageTable<'_>, op: XOp, alloc: &mut ArenaFrames) -> bool
where
    S: x86_64::structures::paging::PageSize,
    for<'a> OffsetPageTable<'a>: Mapper<S>,
{
    let page =
        X86Page::<S>::from_start_address(x86_64::VirtAddr::new(op.virt)).expect("aligned page");
    let frame =
        PhysFrame::<S>::from_start_address(x86_64::PhysAddr::new(op.phys)).expect("aligned frame");
    let parents = X::PRESENT | X::WRITABLE | X::USER_ACCESSIBLE;
    // SAFETY: the mapped frame is never accessed by anyone (the tables are only walked in
    // software, never loaded into CR3), so mapping it cannot alias anything; the tables the
    // mapper creates come from `alloc`, which hands out unused arena frames.
    let result = unsafe { mapper.map_to_with_table_flags(page, frame, op.flags, parents, alloc) };
    result.map(|flush| flush.ignore()).is_ok()
}

fn check_theirs_against_ours(
    ops: &[XOp],
    window_probes: &[(usize, u64)],
    anywhere: &[u64],
    seed: u64,
) -> Result<(), TestCaseError> {
    let mut frames = vec![FrameBuf::ZERO; ARENA_FRAMES];

    // Phase 1: build and translate with the `x86_64` crate. The root is frame 0.
    let mut accepted = Vec::new();
    let (probes, theirs) = {
        let arena = frames.as_mut_ptr();
        // SAFETY: `frames` is borrowed mutably (through `arena`) until the end of this block
        // and nothing else touches it meanwhile. Frame 0 is a zeroed table, and `FrameBuf`
        // has the layout of the `x86_64` crate's `PageTable` (4096-aligned, 512 `u64`
        // entries). With the offset `arena`, physical address `p` is host address
        // `arena + p`; every table the mapper creates or follows comes from `ArenaFrames`,
        // which hands out frames 1..ARENA_FRAMES of `frames`, never the root.
        let mut mapper = unsafe {
            OffsetPageTable::new(
                &mut *arena.cast::<X86PageTable>(),
                x86_64::VirtAddr::new(arena as u64),
            )
        };
        let mut alloc = ArenaFrames { next: 1, end: ARENA_FRAMES as u64 };
        for &op in ops {
            let ok = match op.size {
                KIB4 => x86_map::<X4KiB>(&mut mapper, op, &mut alloc),
                MIB2 => x86_map::<X2MiB>(&mut mapper, op, &mut alloc),
                _ => x86_map::<X1GiB>(&mut mapper, op, &mut alloc),
            };
            if ok {
                accepted.push(op);
            }
        }

        let mut probes = Vec::new();
        for op in &accepted {
            page_probes(op.virt, op.size, seed, &mut probes);
        }
        random_probes(window_probes, anywhere, &mut probes);
        let theirs: Vec<_> = probes
            .iter()
            .map(|&addr| Theirs::of(mapper.translate(x86_64::VirtAddr::new(addr))))
            .collect();
        (probes, theirs)
    };

    // Phase 2: our engine takes over the root and reads the same tables.
    let table = PageTable::<X86_64, _>::from_root(
        PhysAddr::ZERO,
        ArenaMemory::new(&mut frames, PhysAddr::ZERO),
    );
    for (&addr, &their) in probes.iter().zip(&theirs) {
        let ours = table.translate(VirtAddr::new(addr));
        agree(addr, &ours, their)?;
    }

    // Every page the crate mapped, and nothing else, is visited.
    let mut pages = Vec::new();
    let mut others = Vec::new();
    table.visit(|visit| match visit {
        Visit::Page(MappedPage { virt, frame, size, .. }) => {
            pages.push((virt.as_u64(), frame.as_u64(), size));
        }
        Visit::Table { .. } => {}
        other => others.push(other),
    });
    prop_assert!(
        others.is_empty(),
        "the crate wrote entries we do not read as pages or tables: {:?}",
        others
    );
    let mut expected: Vec<_> =
        accepted.iter().map(|op| (canonical(op.virt), op.phys, op.size)).collect();
    expected.sort_unstable();
    pages.sort_unstable();
    prop_assert_eq!(pages, expected);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The properties.
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn x86_64_crate_reads_what_we_write(
        ops in prop::collection::vec(op_strategy(), 1..24),
        window_probes in prop::collection::vec((0..WINDOWS.len(), any::<u64>()), 64),
        anywhere in prop::collection::vec(any::<u64>(), 16),
        seed in any::<u64>(),
    ) {
        check_ours_against_theirs(&ops, &window_probes, &anywhere, seed)?;
    }

    #[test]
    fn we_read_what_x86_64_crate_writes(
        ops in prop::collection::vec(xop_strategy(), 1..32),
        window_probes in prop::collection::vec((0..WINDOWS.len(), any::<u64>()), 64),
        anywhere in prop::collection::vec(any::<u64>(), 16),
        seed in any::<u64>(),
    ) {
        check_theirs_against_ours(&ops, &window_probes, &anywhere, seed)?;
    }
}

/// A fixed case of each page size in each half, so that a failure is easy to read.
#[test]
fn fixed_pages_in_both_halves() {
    let ops = [
        Op::Page { size: KIB4, virt: 0x1000, phys: 0x0000_000f_ffff_f000, flags: our_flags(0x3FF) },
        Op::Page { size: MIB2, virt: 0x40_0000, phys: 0x000f_ffff_ffe0_0000, flags: our_flags(0) },
        Op::Page {
            size: GIB,
            virt: 0x4000_0000,
            phys: 0x000f_ffff_c000_0000,
            flags: our_flags(0x155),
        },
        Op::Page { size: KIB4, virt: 0xffff_ffff_ffff_f000, phys: 0x2000, flags: our_flags(0x2AA) },
        Op::Page {
            size: MIB2,
            virt: 0xffff_8000_0020_0000,
            phys: 0x20_0000,
            flags: our_flags(0x0F),
        },
        Op::Page { size: GIB, virt: 0xffff_ffff_8000_0000, phys: GIB, flags: our_flags(0x3F0) },
        Op::Range {
            virt: 0xffff_8000_3fe0_0000,
            phys: 0x3fe0_0000,
            len: GIB + 2 * MIB2 + KIB4,
            flags: our_flags(0x1),
        },
    ];
    check_ours_against_theirs(&ops, &[(0, 0), (3, u64::MAX)], &[0x0000_7fff_ffff_ffff], 7).unwrap();

    let xops = [
        XOp { size: KIB4, virt: 0x1000, phys: 0x0000_000f_ffff_f000, flags: x86_flags(0x1FFF) },
        XOp {
            size: MIB2,
            virt: 0xffff_8000_0040_0000,
            phys: 0x000f_ffff_ffe0_0000,
            flags: x86_flags(0),
        },
        XOp { size: GIB, virt: 0xffff_ffff_c000_0000, phys: GIB, flags: x86_flags(0x0AAA) },
    ];
    check_theirs_against_ours(&xops, &[(1, 0)], &[], 7).unwrap();
}

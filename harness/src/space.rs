//! Address-space operation sequences over several spaces, with faults, against a model of
//! the Windows memory API's semantics: `backend-sim/tests/space_model.rs` driven by bytes.
//!
//! The model keeps, per space, its reservations and each page's state, protection and
//! (once the page has a frame of the space's own) contents; per section, its contents and
//! its views. After every step it compares each operation's result, every region of every
//! space, each access's outcome on the simulated machine, the page tables against the
//! books, and the frame count. At the end every space is destroyed and every section
//! closed: no frame stays in use.

/// Fails the check with a message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// Fails the check unless the two values are equal.
macro_rules! ensure_eq {
    ($left:expr, $right:expr) => {
        ensure_eq!($left, $right, "")
    };
    ($left:expr, $right:expr, $($fmt:tt)+) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            return Err(format!(
                "{} != {}: {:x?} vs {:x?}: {}",
                stringify!($left),
                stringify!($right),
                left,
                right,
                format!($($fmt)+)
            ));
        }
    }};
}

/// Runs the setup and operations decoded from `data` on several address spaces of a
/// simulated machine and on the model; panics on any disagreement or leaked frame.
pub fn space_ops(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let setup = setup(&mut u);
    let ops = ops(&mut u);
    if let Err((step, message)) = run(&setup, &ops) {
        let upto = step.map_or(ops.len(), |i| i + 1);
        panic!("{message}\nsetup: {setup:?}\nsteps:\n{}", Numbered(&ops[..upto], step));
    }
}

use std::collections::BTreeMap;
use std::fmt;

use arbitrary::Unstructured;
use paging::frame::{BitmapAllocator, FrameAllocator};
use paging::space::{
    AddressSpace, FaultChain, Layout, MemoryType, PageState, Protection, RegionInfo, Section,
    SpaceConfig, SpaceError,
};
use paging::table::{MappedPage, Visit};
use paging::{Access, Asid, Exception, PageFlags, SoftwarePte, VirtAddr};
use paging_sim::{Machine, MachineConfig, MachineError, NoResolver, ProcessId, SpaceKernel};
use paging_x86::X86_64;

use crate::fixtures::sim_allocator;
use crate::show::{Hex, Numbered};
use crate::weighted;

/// Room for every reservation and run a sequence can make: the region table never fills.
type Space = AddressSpace<X86_64, 256>;

const PAGE: u64 = 0x1000;
const GRANULARITY: u64 = 0x1_0000;
const LOWEST: u64 = 0x1_0000;
const HIGHEST: u64 = 0x7FFF_FFFE_FFFF;
/// The bit that marks a frame the space owns (see `core/src/space/mod.rs`).
const OWNED: PageFlags = PageFlags::SOFTWARE_0;

/// Where operations aim: the null region, granularity slots that reservations share and
/// overlap, the top of the user half, its last (never handed out) 64 KiB, the kernel half.
const SLOTS: [u64; 10] = [
    0x0,
    0x1_0000,
    0x2_0000,
    0x3_0000,
    0x4_0000,
    0x5_0000,
    0x6_0000,
    0x7FFF_FFFE_0000,
    0x7FFF_FFFF_0000,
    0xFFFF_8000_0000_0000,
];

/// Protections for private memory and `protect`: write-copy (refused on private memory),
/// execute-read-write (refused by W^X) and no-access with guard (an invalid combination)
/// included.
const PROTECTIONS: [Protection; 10] = [
    Protection::NO_ACCESS,
    Protection::READ_ONLY,
    Protection::READ_WRITE,
    Protection::EXECUTE,
    Protection::EXECUTE_READ,
    Protection::WRITE_COPY,
    Protection::EXECUTE_READ_WRITE,
    Protection::READ_WRITE.guard(),
    Protection::READ_ONLY.guard(),
    Protection::NO_ACCESS.guard(),
];

/// Protections of views.
const VIEW_PROTECTIONS: [Protection; 4] = [
    Protection::READ_WRITE,
    Protection::READ_ONLY,
    Protection::WRITE_COPY,
    Protection::EXECUTE_READ_WRITE,
];

// ---- operations ----

/// An address: a slot, or (when `pick` is set and the space has any) the base of one of
/// the space's reservations, plus an offset (kept inside the reservation when `inside`).
#[derive(Clone, Copy)]
struct Target {
    slot: usize,
    pick: Option<usize>,
    inside: bool,
    page: u64,
    in_page: u64,
}

/// Shown as `reservation 2 (or 0x3_0000) + 1 pages + 0x7ff`: the base (a reservation of
/// the space by index, the slot when it has none), the page and the offset in it.
impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slot = Hex(SLOTS[self.slot]);
        match self.pick {
            Some(k) => write!(f, "reservation {k} (or {slot})")?,
            None => write!(f, "{slot}")?,
        }
        let wrapped = if self.pick.is_some() && self.inside { " (wrapped into it)" } else { "" };
        write!(f, " + {} pages{wrapped} + {:#x}", self.page, self.in_page)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Load,
    Store,
    Fetch,
}

#[derive(Clone)]
enum Op {
    Reserve {
        space: usize,
        at: Option<Target>,
        size: u64,
        protect: Protection,
    },
    Commit {
        space: usize,
        at: Option<Target>,
        size: u64,
        protect: Protection,
    },
    Decommit {
        space: usize,
        at: Target,
        size: u64,
    },
    Release {
        space: usize,
        at: Target,
    },
    Protect {
        space: usize,
        at: Target,
        size: u64,
        protect: Protection,
    },
    Query {
        space: usize,
        at: Target,
    },
    MapView {
        space: usize,
        section: usize,
        at: Option<Target>,
        offset: u64,
        pages: u64,
        protect: Protection,
    },
    UnmapView {
        space: usize,
        at: Target,
    },
    CloseSection {
        section: usize,
    },
    Access {
        space: usize,
        at: Target,
        kind: Kind,
        len: usize,
        value: u64,
    },
}

/// Sizes and offsets in hex, protections by their Windows names.
impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |p: &Protection| Shown(p.to_string());
        match self {
            Self::Reserve { space, at, size, protect }
            | Self::Commit { space, at, size, protect } => {
                let name = if matches!(self, Self::Reserve { .. }) { "Reserve" } else { "Commit" };
                f.debug_struct(name)
                    .field("space", space)
                    .field("at", at)
                    .field("size", &Hex(*size))
                    .field("protect", &shown(protect))
                    .finish()
            }
            Self::Decommit { space, at, size } => f
                .debug_struct("Decommit")
                .field("space", space)
                .field("at", at)
                .field("size", &Hex(*size))
                .finish(),
            Self::Release { space, at } => {
                f.debug_struct("Release").field("space", space).field("at", at).finish()
            }
            Self::Protect { space, at, size, protect } => f
                .debug_struct("Protect")
                .field("space", space)
                .field("at", at)
                .field("size", &Hex(*size))
                .field("protect", &shown(protect))
                .finish(),
            Self::Query { space, at } => {
                f.debug_struct("Query").field("space", space).field("at", at).finish()
            }
            Self::MapView { space, section, at, offset, pages, protect } => f
                .debug_struct("MapView")
                .field("space", space)
                .field("section", section)
                .field("at", at)
                .field("offset", offset)
                .field("pages", pages)
                .field("protect", &shown(protect))
                .finish(),
            Self::UnmapView { space, at } => {
                f.debug_struct("UnmapView").field("space", space).field("at", at).finish()
            }
            Self::CloseSection { section } => {
                f.debug_struct("CloseSection").field("section", section).finish()
            }
            Self::Access { space, at, kind, len, value } => f
                .debug_struct("Access")
                .field("space", space)
                .field("at", at)
                .field("kind", kind)
                .field("len", len)
                .field("value", &Hex(*value))
                .finish(),
        }
    }
}

/// Text shown as it is, without quotes.
struct Shown(String);

impl fmt::Debug for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Debug)]
struct Setup {
    /// One per space: its ASLR seed.
    spaces: Vec<Option<u64>>,
    /// One per section: its size in pages.
    sections: Vec<u64>,
}

/// The most operations after the warm-up.
const MAX_OPS: usize = 56;

/// Two spaces (sometimes three), each with ASLR one time in four; one or two sections of
/// 1 to 6 pages.
fn setup(u: &mut Unstructured<'_>) -> Setup {
    let count = weighted(u, &[(2, 2), (1, 3)]);
    let spaces = (0..count)
        .map(|_| u.ratio(1u8, 4).unwrap_or(false).then(|| u.arbitrary().unwrap_or(0)))
        .collect();
    let count = u.int_in_range(1..=2).unwrap_or(1);
    let sections = (0..count).map(|_| u.int_in_range(1u64..=6).unwrap_or(1)).collect();
    Setup { spaces, sections }
}

fn slot(u: &mut Unstructured<'_>) -> usize {
    match weighted(u, &[(8, 0), (1, 1), (1, 2)]) {
        0 => u.int_in_range(1usize..=6).unwrap_or(1),
        1 => 0,
        _ => u.int_in_range(7..=SLOTS.len() - 1).unwrap_or(7),
    }
}

fn maybe<T>(
    u: &mut Unstructured<'_>,
    percent: u8,
    f: impl FnOnce(&mut Unstructured<'_>) -> T,
) -> Option<T> {
    u.ratio(percent, 100).unwrap_or(false).then(|| f(u))
}

fn target(u: &mut Unstructured<'_>) -> Target {
    let in_page = weighted(u, &[(4, 0u64), (1, 1), (1, 0x7FF), (1, 0xFF8), (1, 0xFFC), (1, 0xFFF)]);
    let max = weighted(u, &[(4, 2u64), (1, 6)]);
    let page = u.int_in_range(0..=max - 1).unwrap_or(0);
    let slot = slot(u);
    let pick = maybe(u, 80, |u| u.int_in_range(0usize..=7).unwrap_or(0));
    let inside = u.ratio(4u8, 5).unwrap_or(true);
    Target { slot, pick, inside, page, in_page }
}

/// An address that is most often a reservation's base.
fn base_target(u: &mut Unstructured<'_>) -> Target {
    let page = match weighted(u, &[(4, 0u64), (1, 4)]) {
        0 => 0,
        max => u.int_in_range(0..=max - 1).unwrap_or(0),
    };
    let in_page = weighted(u, &[(4, 0u64), (1, 0x800)]);
    let slot = slot(u);
    let pick = maybe(u, 70, |u| u.int_in_range(0usize..=7).unwrap_or(0));
    Target { slot, pick, inside: false, page, in_page }
}

/// A view's address: a slot or a reservation's base, sometimes not aligned.
fn view_target(u: &mut Unstructured<'_>) -> Target {
    let page = match weighted(u, &[(6, 0u64), (1, 4)]) {
        0 => 0,
        max => u.int_in_range(0..=max - 1).unwrap_or(0),
    };
    let in_page = weighted(u, &[(6, 0u64), (1, 0x800)]);
    let slot = slot(u);
    let pick = maybe(u, 30, |u| u.int_in_range(0usize..=7).unwrap_or(0));
    Target { slot, pick, inside: false, page, in_page }
}

fn size(u: &mut Unstructured<'_>, max_pages: u64) -> u64 {
    match weighted(u, &[(1, 0), (10, 1), (4, 2), (4, 3)]) {
        0 => 0,
        1 => u.int_in_range(1..=max_pages.min(2)).unwrap_or(1) * PAGE,
        2 => u.int_in_range(1..=max_pages).unwrap_or(1) * PAGE,
        _ => {
            let pages = u.int_in_range(1..=max_pages).unwrap_or(1);
            pages * PAGE - u.int_in_range(1..=PAGE - 1).unwrap_or(1)
        }
    }
}

/// Mostly protections private memory can have, sometimes one it cannot.
fn protection(u: &mut Unstructured<'_>) -> Protection {
    let invalid = [PROTECTIONS[5], PROTECTIONS[6], PROTECTIONS[9]];
    match weighted(u, &[(6, 0), (2, 1), (1, 2)]) {
        0 => *u.choose(&PROTECTIONS[..5]).unwrap_or(&PROTECTIONS[0]),
        1 => *u.choose(&PROTECTIONS[7..9]).unwrap_or(&PROTECTIONS[7]),
        _ => *u.choose(&invalid).unwrap_or(&invalid[0]),
    }
}

fn space(u: &mut Unstructured<'_>) -> usize {
    u.int_in_range(0usize..=2).unwrap_or(0)
}

fn op(u: &mut Unstructured<'_>) -> Op {
    let weights = [(4, 0), (6, 1), (2, 2), (1, 3), (4, 4), (2, 5), (2, 6), (2, 7), (1, 8), (12, 9)];
    match weighted(u, &weights) {
        0 => {
            let space = space(u);
            let at = maybe(u, 50, target);
            Op::Reserve { space, at, size: size(u, 20), protect: protection(u) }
        }
        1 => {
            let space = space(u);
            let at = maybe(u, 50, target);
            Op::Commit { space, at, size: size(u, 6), protect: protection(u) }
        }
        2 => Op::Decommit { space: space(u), at: target(u), size: size(u, 6) },
        3 => Op::Release { space: space(u), at: base_target(u) },
        4 => {
            let (space, at) = (space(u), target(u));
            Op::Protect { space, at, size: size(u, 6), protect: protection(u) }
        }
        5 => Op::Query { space: space(u), at: target(u) },
        6 => {
            let space = space(u);
            let section = u.int_in_range(0usize..=1).unwrap_or(0);
            let at = maybe(u, 50, view_target);
            let offset = match weighted(u, &[(3, false), (1, true)]) {
                false => 0,
                true => u.int_in_range(0u64..=3).unwrap_or(0),
            };
            let pages = match weighted(u, &[(1, false), (8, true)]) {
                false => 0,
                true => u.int_in_range(1u64..=3).unwrap_or(1),
            };
            let protect = match weighted(u, &[(6, false), (1, true)]) {
                false => *u.choose(&VIEW_PROTECTIONS[..3]).unwrap_or(&VIEW_PROTECTIONS[0]),
                true => VIEW_PROTECTIONS[3],
            };
            Op::MapView { space, section, at, offset, pages, protect }
        }
        7 => Op::UnmapView { space: space(u), at: base_target(u) },
        8 => Op::CloseSection { section: u.int_in_range(0usize..=1).unwrap_or(0) },
        _ => {
            let (space, at) = (space(u), target(u));
            let kind = weighted(u, &[(3, Kind::Load), (3, Kind::Store), (1, Kind::Fetch)]);
            let len = *u.choose(&[1usize, 4, 8]).unwrap_or(&1);
            Op::Access { space, at, kind, len, value: u.arbitrary().unwrap_or(0) }
        }
    }
}

/// A few allocations to start with, so that the operations find memory to work on; then
/// the operations, as long as the data lasts.
fn ops(u: &mut Unstructured<'_>) -> Vec<Op> {
    let warm_up = u.int_in_range(2..=6).unwrap_or(2);
    let mut ops: Vec<Op> = (0..warm_up)
        .map(|_| {
            let space = space(u);
            if weighted(u, &[(3, true), (1, false)]) {
                let pages = u.int_in_range(1u64..=4).unwrap_or(1);
                let protect = *u.choose(&PROTECTIONS[..5]).unwrap_or(&PROTECTIONS[2]);
                Op::Commit { space, at: None, size: pages * PAGE, protect }
            } else {
                let section = u.int_in_range(0usize..=1).unwrap_or(0);
                let protect = *u.choose(&VIEW_PROTECTIONS[..3]).unwrap_or(&VIEW_PROTECTIONS[0]);
                Op::MapView { space, section, at: None, offset: 0, pages: 1, protect }
            }
        })
        .collect();
    while ops.len() < warm_up + MAX_OPS && !u.is_empty() {
        ops.push(op(u));
    }
    ops
}

// ---- the model ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backing {
    Private,
    View { section: usize, offset: u64 },
}

#[derive(Clone, Copy, Debug)]
struct MAlloc {
    base: u64,
    size: u64,
    protect: Protection,
    backing: Backing,
}

impl MAlloc {
    fn end(&self) -> u64 {
        self.base + self.size
    }

    fn kind(&self) -> MemoryType {
        match self.backing {
            Backing::Private => MemoryType::Private,
            Backing::View { .. } => MemoryType::Mapped,
        }
    }
}

#[derive(Clone, Debug)]
struct MPage {
    committed: bool,
    /// The page's protection (for a reserved page, the reservation's).
    protect: Protection,
    /// The contents of the frame the space owns for this page (private memory once
    /// touched, or a view page's private copy).
    owned: Option<Vec<u8>>,
}

#[derive(Debug, Default)]
struct MSpace {
    aslr: bool,
    allocs: BTreeMap<u64, MAlloc>,
    pages: BTreeMap<u64, MPage>,
}

#[derive(Debug)]
struct MSection {
    bytes: Vec<u8>,
    views: u32,
}

#[derive(Debug, Default)]
struct Model {
    spaces: Vec<MSpace>,
    /// `None` once closed.
    sections: Vec<Option<MSection>>,
}

/// Windows: no-access cannot carry the guard modifier (`ERROR_INVALID_PARAMETER`).
fn check_valid(protect: Protection) -> Result<(), SpaceError> {
    if protect.is_guard() && protect.base() == Protection::NO_ACCESS.base() {
        return Err(SpaceError::InvalidProtection { bits: protect.windows() });
    }
    Ok(())
}

/// W^X is on in every space of this test.
fn check_wx(protect: Protection) -> Result<(), SpaceError> {
    if protect.is_writable_executable() { Err(SpaceError::WritableExecutable) } else { Ok(()) }
}

fn check_private(protect: Protection) -> Result<(), SpaceError> {
    check_valid(protect)?;
    if protect.is_write_copy() {
        return Err(SpaceError::WriteCopyOnPrivate);
    }
    check_wx(protect)
}

fn holds(base: u64, len: u64) -> bool {
    len > 0 && base >= LOWEST && base.checked_add(len - 1).is_some_and(|last| last <= HIGHEST)
}

fn outside(addr: u64, size: u64) -> SpaceError {
    SpaceError::OutsideUserSpace { addr: VirtAddr::new(addr), size }
}

impl MSpace {
    fn alloc_at(&self, addr: u64) -> Option<MAlloc> {
        let (_, a) = self.allocs.range(..=addr).next_back()?;
        (addr < a.end()).then_some(*a)
    }

    fn overlapping(&self, start: u64, end: u64) -> Option<MAlloc> {
        self.allocs.values().find(|a| a.base < end && start < a.end()).copied()
    }

    /// The lowest free granularity-aligned range of `len` bytes.
    fn lowest_fit(&self, len: u64) -> Option<u64> {
        let last_base = (HIGHEST + 1).checked_sub(len)? & !(GRANULARITY - 1);
        let mut base = LOWEST;
        while base <= last_base {
            match self.overlapping(base, base + len) {
                None => return Some(base),
                Some(other) => base = other.end().next_multiple_of(GRANULARITY),
            }
        }
        None
    }

    /// Where a reservation of `size` bytes at `addr` goes: rounded down to the granularity,
    /// covering every page `[addr, addr + size)` touches.
    fn place_at(&self, addr: u64, size: u64) -> Result<(u64, u64), SpaceError> {
        if size == 0 {
            return Err(SpaceError::ZeroSize);
        }
        let base = addr & !(GRANULARITY - 1);
        let end = addr
            .checked_add(size)
            .and_then(|end| end.checked_next_multiple_of(PAGE))
            .ok_or(outside(addr, size))?;
        let len = end - base;
        self.check_free(addr, size, base, len)?;
        Ok((base, len))
    }

    fn check_free(&self, addr: u64, size: u64, base: u64, len: u64) -> Result<(), SpaceError> {
        if !holds(base, len) {
            return Err(outside(addr, size));
        }
        if let Some(other) = self.overlapping(base, base + len) {
            return Err(SpaceError::Overlaps { base: VirtAddr::new(other.base) });
        }
        Ok(())
    }

    /// Checks where the space chose to put `len` bytes: the lowest fit, or with ASLR any
    /// free aligned range.
    fn check_choice(&self, chosen: u64, len: u64) -> Result<(), String> {
        if self.aslr {
            let free = chosen % GRANULARITY == 0
                && holds(chosen, len)
                && self.overlapping(chosen, chosen + len).is_none();
            if free { Ok(()) } else { Err(format!("chose {chosen:#x}+{len:#x}, not free")) }
        } else if self.lowest_fit(len) == Some(chosen) {
            Ok(())
        } else {
            Err(format!("chose {chosen:#x}, lowest fit is {:x?}", self.lowest_fit(len)))
        }
    }

    fn add(&mut self, alloc: MAlloc, committed: bool) {
        for page in (alloc.base..alloc.end()).step_by(PAGE as usize) {
            self.pages.insert(page, MPage { committed, protect: alloc.protect, owned: None });
        }
        self.allocs.insert(alloc.base, alloc);
    }

    fn remove(&mut self, alloc: MAlloc) {
        for page in (alloc.base..alloc.end()).step_by(PAGE as usize) {
            self.pages.remove(&page);
        }
        self.allocs.remove(&alloc.base);
    }

    /// The pages `[start, end)` that `[addr, addr + size)` touches, and their reservation.
    fn span(&self, addr: u64, size: u64) -> Result<(u64, u64, MAlloc), SpaceError> {
        if size == 0 {
            return Err(SpaceError::ZeroSize);
        }
        let start = addr & !(PAGE - 1);
        let end = addr
            .checked_add(size)
            .and_then(|end| end.checked_next_multiple_of(PAGE))
            .ok_or(outside(addr, size))?;
        let alloc =
            self.alloc_at(start).ok_or(SpaceError::NotReserved { addr: VirtAddr::new(addr) })?;
        if end > alloc.end() {
            return Err(SpaceError::CrossesReservation { addr: VirtAddr::new(addr), size });
        }
        Ok((start, end, alloc))
    }

    /// The reservation whose first page holds `addr` (VirtualFree rounds the address down
    /// to its page).
    fn alloc_at_base(&self, addr: u64) -> Result<MAlloc, SpaceError> {
        let alloc =
            self.alloc_at(addr).ok_or(SpaceError::NotReserved { addr: VirtAddr::new(addr) })?;
        if alloc.base != addr & !(PAGE - 1) {
            return Err(SpaceError::NotAllocationBase {
                addr: VirtAddr::new(addr),
                base: VirtAddr::new(alloc.base),
            });
        }
        Ok(alloc)
    }

    fn pages_mut(&mut self, start: u64, end: u64) -> impl Iterator<Item = &mut MPage> {
        self.pages.range_mut(start..end).map(|(_, p)| p)
    }

    fn key(&self, page: u64) -> (bool, Option<Protection>) {
        let p = &self.pages[&page];
        (p.committed, p.committed.then_some(p.protect))
    }

    fn query(&self, addr: u64) -> Result<RegionInfo, SpaceError> {
        if addr > HIGHEST {
            return Err(SpaceError::OutsideUserSpace { addr: VirtAddr::new(addr), size: 1 });
        }
        let page = addr & !(PAGE - 1);
        let Some(alloc) = self.alloc_at(page) else {
            let next = self.allocs.range(page..).next().map_or(HIGHEST + 1, |(&base, _)| base);
            return Ok(RegionInfo {
                base: VirtAddr::new(page),
                allocation_base: None,
                allocation_protect: None,
                size: next - page,
                state: PageState::Free,
                protect: Some(Protection::NO_ACCESS),
                kind: None,
            });
        };
        let key = self.key(page);
        let mut end = page + PAGE;
        while end < alloc.end() && self.key(end) == key {
            end += PAGE;
        }
        Ok(RegionInfo {
            base: VirtAddr::new(page),
            allocation_base: Some(VirtAddr::new(alloc.base)),
            allocation_protect: Some(alloc.protect),
            size: end - page,
            state: if key.0 { PageState::Committed } else { PageState::Reserved },
            protect: key.1,
            kind: Some(alloc.kind()),
        })
    }

    fn regions(&self) -> Vec<RegionInfo> {
        let mut regions = Vec::new();
        let mut at = LOWEST;
        loop {
            let info = self.query(at).expect("inside the user half");
            regions.push(info);
            if info.end().as_u64() > HIGHEST {
                return regions;
            }
            at = info.end().as_u64();
        }
    }
}

impl Model {
    fn section_page(&self, section: usize, page: u64) -> &[u8] {
        let bytes = &self.sections[section].as_ref().expect("a view keeps its section").bytes;
        &bytes[(page * PAGE) as usize..((page + 1) * PAGE) as usize]
    }

    /// The first touch of the page holding `at` by `access`: what the kernel's first-chance
    /// resolution and the hardware make of it.
    fn touch(&mut self, s: usize, at: u64, access: Access) -> Result<(), Exception> {
        let page = at & !(PAGE - 1);
        let violation = Exception::AccessViolation { addr: VirtAddr::new(at), access };
        let Some(alloc) = self.spaces[s].alloc_at(page) else { return Err(violation) };
        let copy_of = match alloc.backing {
            Backing::View { section, offset } => {
                Some(self.section_page(section, offset + (page - alloc.base) / PAGE).to_vec())
            }
            Backing::Private => None,
        };
        let p = self.spaces[s].pages.get_mut(&page).expect("a reservation's page");
        if !p.committed {
            return Err(violation);
        }
        if p.protect.is_guard() {
            p.protect = p.protect.without_guard();
            return Err(Exception::GuardPage { addr: VirtAddr::new(at), access });
        }
        if !p.protect.allows(access) {
            return Err(violation);
        }
        // A write-copy page, or any page of a write-copy view, gets its private copy on
        // the first write: a write-copy view never writes to its section.
        if access == Access::Write
            && (p.protect.is_write_copy() || (p.owned.is_none() && alloc.protect.is_write_copy()))
        {
            if p.owned.is_none() {
                p.owned = copy_of;
            }
            p.protect = p.protect.after_copy();
        }
        if alloc.backing == Backing::Private && p.owned.is_none() {
            p.owned = Some(vec![0; PAGE as usize]);
        }
        Ok(())
    }

    /// The byte at `addr`, which a successful access just touched.
    fn byte(&mut self, s: usize, addr: u64) -> &mut u8 {
        let page = addr & !(PAGE - 1);
        let offset = (addr - page) as usize;
        let alloc = self.spaces[s].alloc_at(page).expect("touched");
        let owned = self.spaces[s].pages.get_mut(&page).expect("touched").owned.as_mut();
        match (owned, alloc.backing) {
            (Some(owned), _) => &mut owned[offset],
            (None, Backing::View { section, offset: first }) => {
                let index = first + (page - alloc.base) / PAGE;
                let section = self.sections[section].as_mut().expect("open");
                &mut section.bytes[(index * PAGE) as usize + offset]
            }
            (None, Backing::Private) => unreachable!("private pages are owned once touched"),
        }
    }

    /// A load, store or fetch of `len` bytes: every page it touches is translated (and its
    /// fault resolved) in order before any byte moves.
    fn access(
        &mut self,
        s: usize,
        addr: u64,
        kind: Kind,
        data: &[u8],
    ) -> Result<Vec<u8>, Exception> {
        let access = match kind {
            Kind::Load => Access::Read,
            Kind::Store => Access::Write,
            Kind::Fetch => Access::Execute,
        };
        let (mut at, end) = (addr, addr + data.len() as u64);
        while at < end {
            self.touch(s, at, access)?;
            at = (at & !(PAGE - 1)) + PAGE;
        }
        let mut read = Vec::new();
        for (i, &value) in data.iter().enumerate() {
            let byte = self.byte(s, addr + i as u64);
            if kind == Kind::Store {
                *byte = value;
            } else {
                read.push(*byte);
            }
        }
        Ok(read)
    }

    fn owned_frames(&self, s: usize) -> usize {
        self.spaces[s].pages.values().filter(|p| p.owned.is_some()).count()
    }
}

// ---- the system under test ----

struct World<'b> {
    machine: Machine<X86_64>,
    alloc: BitmapAllocator<'b>,
    spaces: Vec<Space>,
    processes: Vec<ProcessId>,
    sections: Vec<Option<Section>>,
    model: Model,
}

fn fail(message: String) -> String {
    message
}

impl World<'_> {
    fn address(&self, s: usize, target: Target) -> u64 {
        self.address_among(s, target, |_| true)
    }

    /// The address `target` names, picking among the reservations that `wanted` accepts
    /// (all of them if it accepts none).
    fn address_among(&self, s: usize, target: Target, wanted: impl Fn(&MAlloc) -> bool) -> u64 {
        let model = &self.model.spaces[s];
        let mut allocs: Vec<&MAlloc> = model.allocs.values().filter(|a| wanted(a)).collect();
        if allocs.is_empty() {
            allocs = model.allocs.values().collect();
        }
        let (base, page) = match target.pick {
            Some(k) if !allocs.is_empty() => {
                let alloc = allocs[k % allocs.len()];
                let pages = alloc.size / PAGE;
                (alloc.base, if target.inside { target.page % pages } else { target.page })
            }
            _ => (SLOTS[target.slot], target.page),
        };
        base + page * PAGE + target.in_page
    }

    /// Runs process `s`, so that flushes of its space reach its TLB entries.
    fn run(&mut self, s: usize) {
        assert!(self.machine.switch_to(self.processes[s]));
    }

    fn step(&mut self, op: &Op) -> Result<(), String> {
        let spaces = self.spaces.len();
        let sections = self.sections.len();
        match *op {
            Op::Reserve { space, at, size, protect } => {
                let s = space % spaces;
                let addr = at.map(|t| self.address(s, t));
                let got = self.spaces[s].reserve(addr.map(VirtAddr::new), size, protect);
                self.placed(s, addr, size, protect, got, false)?;
            }
            Op::Commit { space, at: None, size, protect } => {
                let s = space % spaces;
                let got = self.spaces[s].commit(None, size, protect);
                self.placed(s, None, size, protect, got, true)?;
            }
            Op::Commit { space, at: Some(at), size, protect } => {
                let s = space % spaces;
                let addr = self.address(s, at);
                let got = self.spaces[s].commit(Some(VirtAddr::new(addr)), size, protect);
                let model = &mut self.model.spaces[s];
                let expected = check_private(protect).and_then(|()| model.span(addr, size));
                let expected = expected.and_then(|(start, end, alloc)| {
                    if alloc.backing != Backing::Private {
                        return Err(wrong_type(MemoryType::Private, alloc.kind()));
                    }
                    for p in model.pages_mut(start, end).filter(|p| !p.committed) {
                        (p.committed, p.protect) = (true, protect);
                    }
                    Ok(VirtAddr::new(start))
                });
                ensure_eq!(got, expected);
            }
            Op::Decommit { space, at, size } => {
                let s = space % spaces;
                let addr = self.address(s, at);
                let (memory, alloc) = (self.machine.ram_mut(), &mut self.alloc);
                let got = self.spaces[s].decommit(VirtAddr::new(addr), size, memory, alloc);
                let model = &mut self.model.spaces[s];
                // Size zero decommits the whole reservation, from an address in its first
                // page (Wine's ntdll test_NtAllocateVirtualMemory).
                let span = match size {
                    0 => model.alloc_at_base(addr).map(|alloc| (alloc.base, alloc.end(), alloc)),
                    _ => model.span(addr, size),
                };
                let expected = span.and_then(|(start, end, alloc)| {
                    if alloc.backing != Backing::Private {
                        return Err(wrong_type(MemoryType::Private, alloc.kind()));
                    }
                    for p in model.pages_mut(start, end) {
                        *p = MPage { committed: false, protect: alloc.protect, owned: None };
                    }
                    Ok(())
                });
                self.run(s);
                ensure_eq!(got.map(|flush| flush.apply(&mut self.machine)), expected);
            }
            Op::Release { space, at } => {
                let s = space % spaces;
                let addr = self.address(s, at);
                let (memory, alloc) = (self.machine.ram_mut(), &mut self.alloc);
                let got = self.spaces[s].release(VirtAddr::new(addr), memory, alloc);
                let model = &mut self.model.spaces[s];
                let expected = model.alloc_at_base(addr).and_then(|alloc| {
                    if alloc.backing != Backing::Private {
                        return Err(wrong_type(MemoryType::Private, alloc.kind()));
                    }
                    model.remove(alloc);
                    Ok(())
                });
                self.run(s);
                ensure_eq!(got.map(|flush| flush.apply(&mut self.machine)), expected);
            }
            Op::Protect { space, at, size, protect } => {
                let s = space % spaces;
                let addr = self.address(s, at);
                let model = &mut self.model.spaces[s];
                let (memory, alloc) = (self.machine.ram_mut(), &mut self.alloc);
                let got = self.spaces[s].protect(VirtAddr::new(addr), size, protect, memory, alloc);
                let expected = model_protect(model, addr, size, protect);
                self.run(s);
                let got = got.map(|(old, flush)| {
                    flush.apply(&mut self.machine);
                    old
                });
                ensure_eq!(got, expected);
            }
            Op::Query { space, at } => {
                let s = space % spaces;
                let addr = self.address(s, at);
                let got = self.spaces[s].query(VirtAddr::new(addr));
                ensure_eq!(got, self.model.spaces[s].query(addr));
            }
            Op::MapView { space, section, at, offset, pages, protect } => {
                let (s, k) = (space % spaces, section % sections);
                let addr = at.map(|t| self.address(s, t));
                let Some(sec) = self.sections[k].as_ref() else { return Ok(()) };
                let memory = self.machine.ram_mut();
                let at = addr.map(VirtAddr::new);
                let got = self.spaces[s].map_view(sec, at, offset, pages, protect, memory);
                let section_pages = sec.pages();
                let model = &self.model.spaces[s];
                let expected =
                    check_valid(protect).and_then(|()| check_wx(protect)).and_then(|()| {
                        if pages == 0 {
                            return Err(SpaceError::ZeroSize);
                        }
                        if offset + pages > section_pages {
                            return Err(SpaceError::OutsideSection { offset, pages });
                        }
                        // A view holds exactly its pages, at `addr`: a multiple of the
                        // granularity (MapViewOfFileEx refuses any other base).
                        let len = pages * PAGE;
                        match addr {
                            Some(addr) if addr % GRANULARITY != 0 => Err(SpaceError::Unaligned {
                                addr: VirtAddr::new(addr),
                                align: GRANULARITY,
                            }),
                            Some(addr) => {
                                model.check_free(addr, len, addr, len).map(|()| Some(addr))
                            }
                            None => Ok(None),
                        }
                    });
                let base = match (got, expected) {
                    (Ok(got), Ok(Some(base))) if got.as_u64() == base => base,
                    (Ok(got), Ok(None)) => {
                        model.check_choice(got.as_u64(), pages * PAGE).map_err(fail)?;
                        got.as_u64()
                    }
                    (Err(got), Err(expected)) if got == expected => return Ok(()),
                    (got, expected) => {
                        return Err(fail(format!(
                            "map_view: got {got:x?}, expected {expected:x?}"
                        )));
                    }
                };
                let view = MAlloc {
                    base,
                    size: pages * PAGE,
                    protect,
                    backing: Backing::View { section: k, offset },
                };
                self.model.spaces[s].add(view, true);
                self.model.sections[k].as_mut().unwrap().views += 1;
            }
            Op::UnmapView { space, at } => {
                let s = space % spaces;
                let addr = self.address_among(s, at, |a| a.backing != Backing::Private);
                let (memory, alloc) = (self.machine.ram_mut(), &mut self.alloc);
                let got = self.spaces[s].unmap_view(VirtAddr::new(addr), memory, alloc);
                let model = &mut self.model.spaces[s];
                // Any address inside the view unmaps it (Wine's test_MapViewOfFile).
                let holding = model
                    .alloc_at(addr)
                    .ok_or(SpaceError::NotReserved { addr: VirtAddr::new(addr) });
                let expected = holding.and_then(|alloc| match alloc.backing {
                    Backing::Private => Err(wrong_type(MemoryType::Mapped, alloc.kind())),
                    Backing::View { section, .. } => {
                        model.remove(alloc);
                        Ok(section)
                    }
                });
                // The view's section counts one view less.
                if let Ok(k) = expected {
                    self.model.sections[k].as_mut().expect("a view keeps its section").views -= 1;
                }
                let expected = expected.map(|_| ());
                self.run(s);
                ensure_eq!(got.map(|flush| flush.apply(&mut self.machine)), expected);
            }
            Op::CloseSection { section } => {
                let k = section % sections;
                let Some(sec) = self.sections[k].take() else { return Ok(()) };
                let views = self.model.sections[k].as_ref().unwrap().views;
                match sec.close(self.machine.ram(), &mut self.alloc) {
                    Ok(()) => {
                        // Closed; a fresh section of the same size takes its place.
                        ensure_eq!(views, 0, "closed with views");
                        let closed = self.model.sections[k].take().unwrap();
                        let pages = closed.bytes.len() as u64 / PAGE;
                        self.check()?;
                        let (memory, alloc) = (self.machine.ram_mut(), &mut self.alloc);
                        let section = Section::create(pages, memory, alloc).unwrap();
                        self.sections[k] = Some(section);
                        let bytes = vec![0; (pages * PAGE) as usize];
                        self.model.sections[k] = Some(MSection { bytes, views: 0 });
                    }
                    Err((sec, error)) => {
                        ensure_eq!(error, SpaceError::SectionInUse { views });
                        ensure_eq!(sec.views(self.machine.ram()), views);
                        self.sections[k] = Some(sec);
                    }
                }
            }
            Op::Access { space, at, kind, len, value } => {
                let s = space % spaces;
                let pages = &self.model.spaces[s].pages;
                let committed = |a: &MAlloc| pages.range(a.base..a.end()).any(|(_, p)| p.committed);
                let addr = self.address_among(s, at, committed);
                let data = &value.to_le_bytes()[..len];
                self.run(s);
                let mut buf = [0u8; 8];
                let got = {
                    let kernel = SpaceKernel::new(&mut self.spaces[s], &mut self.alloc);
                    let mut chain = FaultChain::new(kernel, NoResolver);
                    let at = VirtAddr::new(addr);
                    match kind {
                        Kind::Load => self.machine.load(at, &mut buf[..len], &mut chain),
                        Kind::Store => self.machine.store(at, data, &mut chain),
                        Kind::Fetch => self.machine.fetch(at, &mut buf[..len], &mut chain),
                    }
                };
                let got = match got {
                    Ok(()) if kind == Kind::Store => Ok(Vec::new()),
                    Ok(()) => Ok(buf[..len].to_vec()),
                    Err(MachineError::Exception { exception, fault }) => {
                        ensure_eq!(fault.fault.addr, exception_addr(&exception));
                        Err(exception)
                    }
                    Err(other) => return Err(fail(format!("{kind:?} {addr:#x}: {other}"))),
                };
                ensure_eq!(got, self.model.access(s, addr, kind, data));
            }
        }
        Ok(())
    }

    /// Checks a reservation (or a reserve-and-commit) and records it in the model.
    fn placed(
        &mut self,
        s: usize,
        addr: Option<u64>,
        size: u64,
        protect: Protection,
        got: Result<VirtAddr, SpaceError>,
        committed: bool,
    ) -> Result<(), String> {
        let model = &mut self.model.spaces[s];
        let expected = check_private(protect).and_then(|()| match addr {
            Some(addr) => model.place_at(addr, size).map(Some),
            None if size == 0 => Err(SpaceError::ZeroSize),
            None => Ok(None),
        });
        let (base, len) = match (got, expected) {
            (Ok(got), Ok(Some((base, len)))) if got.as_u64() == base => (base, len),
            (Ok(got), Ok(None)) => {
                let len = size.next_multiple_of(PAGE);
                model.check_choice(got.as_u64(), len).map_err(fail)?;
                (got.as_u64(), len)
            }
            (Err(got), Err(expected)) if got == expected => return Ok(()),
            (got, expected) => {
                return Err(fail(format!("reserve/commit: got {got:x?}, expected {expected:x?}")));
            }
        };
        model.add(MAlloc { base, size: len, protect, backing: Backing::Private }, committed);
        Ok(())
    }

    /// Compares the books, the tables, the contents and the frame count with the model.
    fn check(&mut self) -> Result<(), String> {
        let mut expected_frames = 0;
        for s in 0..self.spaces.len() {
            let space = &self.spaces[s];
            let model = &self.model.spaces[s];
            let (got, expected): (Vec<_>, _) = (space.regions().collect(), model.regions());
            if let Some(i) =
                (0..got.len().max(expected.len())).find(|&i| got.get(i) != expected.get(i))
            {
                let (got, expected) = (got.get(i), expected.get(i));
                return Err(fail(format!(
                    "space {s}, region {i}: {got:x?}, expected {expected:x?}"
                )));
            }
            let committed = model.pages.values().filter(|p| p.committed).count() as u64;
            ensure_eq!(space.committed_pages(), committed);

            let mut visits = Vec::new();
            space.page_table(self.machine.ram_mut()).visit(|visit| visits.push(visit));
            let mut tables = 0;
            let mut owned_frames = 0;
            for visit in visits {
                let (virt, frame, owned, flags) = match visit {
                    Visit::Table { .. } => {
                        tables += 1;
                        continue;
                    }
                    Visit::Page(MappedPage { virt, frame, size, flags }) => {
                        ensure_eq!(size, PAGE, "a 4 KiB page at {:#x}", virt.as_u64());
                        (virt.as_u64(), frame, flags.contains(OWNED), Some(flags))
                    }
                    Visit::Payload { virt, level, payload } => {
                        ensure_eq!(level, 1, "a payload leaf at {:#x}", virt.as_u64());
                        let Ok(SoftwarePte::Hidden { frame, owned }) = SoftwarePte::decode(payload)
                        else {
                            return Err(fail(format!("payload {payload:#x} at {virt:#x?}")));
                        };
                        (virt.as_u64(), frame, owned, None)
                    }
                    Visit::Corrupt { virt, level, raw } => {
                        return Err(fail(format!("corrupt entry {raw:#x} at {virt:#x?} L{level}")));
                    }
                };
                owned_frames += usize::from(owned);
                let Some(page) = model.pages.get(&virt) else {
                    return Err(fail(format!("space {s}: {virt:#x} is mapped, not reserved")));
                };
                ensure!(page.committed, "space {}: {:#x} mapped, not committed", s, virt);
                ensure_eq!(owned, page.owned.is_some(), "space {}: owned {:#x}", s, virt);
                let alloc = model.alloc_at(virt).expect("a reservation's page");
                if let Some(flags) = flags {
                    let mut expected = page.protect.page_flags(true);
                    // A write-copy view maps its section's frames read-only, whatever the
                    // page's protection.
                    if page.owned.is_none() && alloc.protect.is_write_copy() {
                        expected = expected.map(|f| f.difference(PageFlags::WRITABLE));
                    }
                    let flags = flags.difference(PageFlags::MMU_STATE | OWNED);
                    ensure_eq!(Some(flags), expected, "space {}: flags of {:#x}", s, virt);
                }
                match &page.owned {
                    Some(bytes) => {
                        let mut ram = vec![0u8; PAGE as usize];
                        self.machine
                            .ram()
                            .read(frame, &mut ram)
                            .map_err(|e| fail(e.to_string()))?;
                        ensure!(ram == *bytes, "space {}: contents of {:#x}", s, virt);
                    }
                    None => {
                        let Backing::View { section, offset } = alloc.backing else {
                            return Err(fail(format!("space {s}: {virt:#x} private, not owned")));
                        };
                        let sec = self.sections[section].as_ref().expect("mapped, so open");
                        let index = offset + (virt - alloc.base) / PAGE;
                        let held = sec.frame(self.machine.ram(), index);
                        ensure_eq!(Some(frame), held, "frame of {:#x}", virt);
                    }
                }
            }
            ensure_eq!(owned_frames, self.model.owned_frames(s), "owned frames of {}", s);
            expected_frames += tables + owned_frames;
        }
        for (sec, model) in self.sections.iter().zip(&self.model.sections) {
            match (sec, model) {
                (Some(sec), Some(model)) => {
                    let ram = self.machine.ram();
                    ensure_eq!(sec.views(ram), model.views);
                    let mut resident = 0;
                    for (index, expected) in model.bytes.chunks(PAGE as usize).enumerate() {
                        let mut bytes = vec![0u8; PAGE as usize];
                        if let Some(frame) = sec.frame(ram, index as u64) {
                            ram.read(frame, &mut bytes).map_err(|e| fail(e.to_string()))?;
                            resident += 1;
                        }
                        ensure!(bytes == expected, "contents of page {} of a section", index);
                    }
                    // Its resident pages, its header and its prototypes.
                    expected_frames += resident + 1 + sec.pages().div_ceil(512) as usize;
                }
                (None, None) => {}
                _ => return Err(fail("a section open in one, closed in the other".into())),
            }
        }
        ensure_eq!(self.alloc.frames_in_use(), expected_frames, "frames in use");
        Ok(())
    }
}

fn wrong_type(expected: MemoryType, found: MemoryType) -> SpaceError {
    SpaceError::WrongType { expected, found }
}

fn exception_addr(exception: &Exception) -> VirtAddr {
    exception.addr()
}

fn model_protect(
    model: &mut MSpace,
    addr: u64,
    size: u64,
    protect: Protection,
) -> Result<Protection, SpaceError> {
    check_valid(protect)?;
    check_wx(protect)?;
    let (start, end, alloc) = model.span(addr, size)?;
    match alloc.backing {
        Backing::Private if protect.is_write_copy() => return Err(SpaceError::WriteCopyOnPrivate),
        // A view takes only the accesses its own protection grants; a write-copy
        // protection grants reads of the view's pages (its writes go to copies). Wine's
        // test_mapping.
        Backing::View { .. } if !view_grants(alloc.protect, protect) => {
            return Err(SpaceError::ReadOnlyView);
        }
        _ => {}
    }
    if let Some((&page, _)) = model.pages.range(start..end).find(|(_, p)| !p.committed) {
        return Err(SpaceError::NotCommitted { addr: VirtAddr::new(page) });
    }
    let old = model.pages[&start].protect;
    for p in model.pages_mut(start, end) {
        p.protect = protect;
    }
    Ok(old)
}

/// Whether a view mapped with `view` may take `asked`: every access `asked` grants the
/// view's pages, `view` grants too.
fn view_grants(view: Protection, asked: Protection) -> bool {
    let writes = |p: Protection| p.allows(Access::Write) && !p.is_write_copy();
    let grants = |p: Protection| (p.allows(Access::Read), writes(p), p.allows(Access::Execute));
    let ((read, write, execute), (view_read, view_write, view_execute)) =
        (grants(asked), grants(view));
    (!read || view_read) && (!write || view_write) && (!execute || view_execute)
}

/// Runs `ops` after `setup`; on a disagreement, the message and the step it came at (none
/// when it came before the first step or after the last).
fn run(setup: &Setup, ops: &[Op]) -> Result<(), (Option<usize>, String)> {
    let mut bitmap = Box::new([0u64; 128]);
    let alloc = sim_allocator(&mut bitmap);
    let mut world = World {
        machine: Machine::new(MachineConfig::default()),
        alloc,
        spaces: Vec::new(),
        processes: Vec::new(),
        sections: Vec::new(),
        model: Model::default(),
    };
    let baseline = world.alloc.frames_in_use();
    for &pages in &setup.sections {
        let section = Section::create(pages, world.machine.ram_mut(), &mut world.alloc).unwrap();
        world.sections.push(Some(section));
        let bytes = vec![0; (pages * PAGE) as usize];
        world.model.sections.push(Some(MSection { bytes, views: 0 }));
    }
    for (i, &aslr_seed) in setup.spaces.iter().enumerate() {
        let config = SpaceConfig { aslr_seed, ..SpaceConfig::default() };
        let asid = Asid(i as u16 + 1);
        let (memory, alloc) = (world.machine.ram_mut(), &mut world.alloc);
        let space = Space::new(Layout::X86_64, config, asid, None, memory, alloc).unwrap();
        let process = world.machine.add_process(&format!("p{i}"), space.root(), space.asid());
        world.spaces.push(space);
        world.processes.push(process);
        world.model.spaces.push(MSpace { aslr: aslr_seed.is_some(), ..MSpace::default() });
    }
    world.check().map_err(|e| (None, e))?;
    for (i, op) in ops.iter().enumerate() {
        let context = |e: String| (Some(i), format!("step {i}, {op:?}: {e}"));
        world.step(op).map_err(context)?;
        world.check().map_err(context)?;
    }
    world.finish(baseline).map_err(|e| (None, e))
}

impl World<'_> {
    /// Destroys every space and closes every section: no frame beyond `baseline` stays.
    fn finish(&mut self, baseline: usize) -> Result<(), String> {
        for space in self.spaces.drain(..) {
            space.destroy(self.machine.ram_mut(), &mut self.alloc);
        }
        // `destroy` documents that views' sections count one view less: every section closes.
        for section in self.sections.drain(..).flatten() {
            if let Err((section, error)) = section.close(self.machine.ram(), &mut self.alloc) {
                let views = section.views(self.machine.ram());
                return Err(fail(format!("after destroy: {error} ({views} views left)")));
            }
        }
        ensure_eq!(self.alloc.frames_in_use(), baseline, "frames left after the end");
        Ok(())
    }
}

//! Engine operation sequences against a model, with the allocator failing at chosen points.
//!
//! The model and its checks are those of `core/tests/engine_model.rs`: after every step
//! the leaves of the tree are exactly the model's pages, translate agrees with the model,
//! the frames in use are exactly the tables reachable from the root, and a refused step
//! left the table memory byte for byte as it was (the frames it wrote, journaled by
//! [`Journaled`], hold what they held before it: no other frame was written). At the end the table is destroyed and no
//! frame stays in use. A failure names the format, the step, and every step up to it with
//! its addresses worked out (in hex) and its flags by name.

use std::fmt;

use arbitrary::{Arbitrary, Unstructured};
use paging::frame::FrameAllocator;
use paging::table::{Holes, Visit};
use paging::{
    Frame, Page, PageFlags, PageSize, PageTable, PageTableFormat, PhysAddr, Size1GiB, Size2MiB,
    Size4KiB, Size4MiB, TableError, TableMemory, VirtAddr,
};
use paging_x86::{Legacy32, Pae, X86_64, X86_64La57};

use crate::fixtures::Arena;

mod changes;
mod model;
use crate::journal::Journaled;
use crate::show::{Flags, Hex, Numbered};
use model::{Model, ModelPage};

const RAM_FRAMES: usize = 96;
/// The most steps one input runs.
const MAX_STEPS: usize = 32;

/// Runs a sequence of engine operations decoded from `data` against the model; panics on
/// any disagreement.
pub fn engine_ops(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(format) = u.int_in_range(0u8..=4) else { return };
    let mut steps = Vec::new();
    while steps.len() < MAX_STEPS && !u.is_empty() {
        let Ok(step) = Step::arbitrary(&mut u) else { break };
        steps.push(step);
    }
    match format {
        0 => Harness::<X86_64>::new(0x40_0000_0000).run(&steps),
        1 => Harness::<X86_64>::new(0xffff_8000_0000_0000).run(&steps),
        2 => Harness::<X86_64La57>::new(0xff00_0000_0000_0000).run(&steps),
        3 => Harness::<Pae>::new(0x1000_0000).run(&steps),
        _ => Harness::<Legacy32>::new(0x1000_0000).run(&steps),
    }
}

/// A virtual offset: `a` of the largest page size, `b` of the middle one, `c` base pages,
/// so that operations collide, straddle huge pages and share tables.
#[derive(Clone, Copy, Debug, Arbitrary)]
struct Offset {
    a: u8,
    b: u8,
    c: u8,
}

#[derive(Clone, Copy, Debug, Arbitrary)]
enum Op {
    Map { size: u8, virt: Offset, delta: u8, flags: u8 },
    MapRange { virt: Offset, delta: u8, pages: u8, unit: u8, flags: u8, limit: u8 },
    Unmap { size: u8, virt: Offset },
    UnmapRange { virt: Offset, pages: u8, unit: u8, skip_holes: bool },
    Protect { size: u8, virt: Offset, flags: u8 },
    ProtectRange { virt: Offset, pages: u8, unit: u8, flags: u8 },
    Translate { virt: Offset },
}

/// A step and the allocator budget it runs with: one time in four a budget of 0 to 3
/// frames, else unlimited.
#[derive(Clone, Copy, Debug, Arbitrary)]
struct Step {
    op: Op,
    budget: u8,
}

impl Step {
    fn budget(&self) -> usize {
        if self.budget < 64 { usize::from(self.budget % 4) } else { usize::MAX }
    }
}

/// An operation with its addresses, sizes and flags worked out for the format under test:
/// what runs, and what a failure message shows (in hex, see [`Action`]'s `Debug`).
#[derive(Clone, Copy)]
enum Action {
    Map {
        va: u64,
        pa: u64,
        size: u64,
        flags: PageFlags,
    },
    /// `max` caps the page size (`u64::MAX`: no cap).
    MapRange {
        va: u64,
        pa: u64,
        len: u64,
        flags: PageFlags,
        max: u64,
    },
    Unmap {
        va: u64,
        size: u64,
    },
    UnmapRange {
        va: u64,
        len: u64,
        skip_holes: bool,
    },
    Protect {
        va: u64,
        size: u64,
        flags: PageFlags,
    },
    ProtectRange {
        va: u64,
        len: u64,
        flags: PageFlags,
    },
    Translate {
        va: u64,
    },
}

impl Action {
    /// Whether the model changes when the action succeeds.
    fn changes_model(&self) -> bool {
        !matches!(self, Self::Translate { .. })
    }

    /// The addresses the action changes, first and last (`None` for a translation).
    fn range(&self) -> Option<(u64, u64)> {
        let (va, len) = match *self {
            Self::Map { va, size, .. }
            | Self::Unmap { va, size }
            | Self::Protect { va, size, .. } => (va, size),
            Self::MapRange { va, len, .. }
            | Self::UnmapRange { va, len, .. }
            | Self::ProtectRange { va, len, .. } => (va, len),
            Self::Translate { .. } => return None,
        };
        Some((va, va.wrapping_add(len.max(1) - 1)))
    }
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Map { va, pa, size, flags } => f
                .debug_struct("Map")
                .field("va", &Hex(va))
                .field("pa", &Hex(pa))
                .field("size", &Hex(size))
                .field("flags", &Flags(flags))
                .finish(),
            Self::MapRange { va, pa, len, flags, max } => {
                let mut map = f.debug_struct("MapRange");
                map.field("va", &Hex(va)).field("pa", &Hex(pa)).field("len", &Hex(len));
                map.field("flags", &Flags(flags));
                if max != u64::MAX {
                    map.field("max_page", &Hex(max));
                }
                map.finish()
            }
            Self::Unmap { va, size } => {
                f.debug_struct("Unmap").field("va", &Hex(va)).field("size", &Hex(size)).finish()
            }
            Self::UnmapRange { va, len, skip_holes } => f
                .debug_struct("UnmapRange")
                .field("va", &Hex(va))
                .field("len", &Hex(len))
                .field("holes", &if skip_holes { Holes::Skip } else { Holes::Refuse })
                .finish(),
            Self::Protect { va, size, flags } => f
                .debug_struct("Protect")
                .field("va", &Hex(va))
                .field("size", &Hex(size))
                .field("flags", &Flags(flags))
                .finish(),
            Self::ProtectRange { va, len, flags } => f
                .debug_struct("ProtectRange")
                .field("va", &Hex(va))
                .field("len", &Hex(len))
                .field("flags", &Flags(flags))
                .finish(),
            Self::Translate { va } => f.debug_struct("Translate").field("va", &Hex(va)).finish(),
        }
    }
}

/// An action and the allocator budget it runs with.
#[derive(Clone, Copy)]
struct Planned {
    action: Action,
    budget: usize,
}

impl fmt::Debug for Planned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.action)?;
        if self.budget != usize::MAX {
            write!(f, " with {} frames to spare", self.budget)?;
        }
        Ok(())
    }
}

/// Where a run is, for failure messages: the format, the step and every step up to it.
struct At<'a> {
    format: &'static str,
    steps: &'a [Planned],
    now: usize,
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (now, steps) = (self.now, &self.steps[..=self.now]);
        write!(f, "{}, step {now}: {:?}\n{}", self.format, steps[now], Numbered(steps, Some(now)))
    }
}

/// The format under test with its geometry.
struct Harness<F: PageTableFormat> {
    /// Leaf sizes, smallest first.
    sizes: Vec<u64>,
    /// Where the virtual offsets start.
    virt_base: u64,
    format: std::marker::PhantomData<F>,
}

impl<F: PageTableFormat> Harness<F> {
    fn new(virt_base: u64) -> Self {
        let sizes = (1..=F::LEVELS).filter(|&l| F::leaf_allowed(l)).map(F::leaf_size).collect();
        Self { sizes, virt_base, format: std::marker::PhantomData }
    }

    fn pick(&self, i: u8) -> u64 {
        self.sizes[usize::from(i) % self.sizes.len()]
    }

    fn pages(pages: u8) -> u64 {
        u64::from(pages % 4) + 1
    }

    fn virt(&self, o: Offset) -> u64 {
        let (a, b, c) = (u64::from(o.a % 3), u64::from(o.b % 3), u64::from(o.c % 4));
        let big = *self.sizes.last().unwrap();
        let mid = self.sizes[self.sizes.len().min(2) - 1];
        self.virt_base + a * big + b * mid + c * self.sizes[0]
    }

    /// A physical offset from the virtual address: aligned to every size, to the middle
    /// size only, or to the base page only.
    fn delta(&self, choice: u8) -> u64 {
        let big = *self.sizes.last().unwrap();
        [big * 4, big * 4 + self.sizes[self.sizes.len().min(2) - 1], big * 4 + 0x1000]
            [usize::from(choice % 3)]
    }

    fn flags(bits: u8) -> PageFlags {
        let choices = [
            PageFlags::WRITABLE,
            PageFlags::EXECUTABLE,
            PageFlags::USER,
            PageFlags::GLOBAL,
            PageFlags::NO_CACHE,
            PageFlags::SOFTWARE_1,
        ];
        let mut flags = PageFlags::READABLE;
        for (i, flag) in choices.into_iter().enumerate() {
            if bits & (1 << i) != 0 {
                flags |= flag;
            }
        }
        flags & F::SUPPORTED
    }

    /// Works out what `step` does in this format.
    fn plan(&self, step: &Step) -> Planned {
        let pa_of = |va: u64, delta: u8| va - self.virt_base + self.delta(delta);
        let action = match step.op {
            Op::Map { size, virt, delta, flags } => {
                let va = self.virt(virt);
                let (size, flags) = (self.pick(size), Self::flags(flags));
                Action::Map { va, pa: pa_of(va, delta), size, flags }
            }
            Op::MapRange { virt, delta, pages, unit, flags, limit } => {
                let (va, len) = (self.virt(virt), Self::pages(pages) * self.pick(unit));
                // One time in four, a cap on the page size (maybe below every size).
                let max = match limit % 8 {
                    0 => self.pick(limit / 8),
                    1 => 0x800,
                    _ => u64::MAX,
                };
                Action::MapRange { va, pa: pa_of(va, delta), len, flags: Self::flags(flags), max }
            }
            Op::Unmap { size, virt } => {
                Action::Unmap { va: self.virt(virt), size: self.pick(size) }
            }
            Op::UnmapRange { virt, pages, unit, skip_holes } => {
                let len = Self::pages(pages) * self.pick(unit);
                Action::UnmapRange { va: self.virt(virt), len, skip_holes }
            }
            Op::Protect { size, virt, flags } => {
                let (va, size, flags) = (self.virt(virt), self.pick(size), Self::flags(flags));
                Action::Protect { va, size, flags }
            }
            Op::ProtectRange { virt, pages, unit, flags } => {
                let (va, len) = (self.virt(virt), Self::pages(pages) * self.pick(unit));
                Action::ProtectRange { va, len, flags: Self::flags(flags) }
            }
            Op::Translate { virt } => Action::Translate { va: self.virt(virt) + 0x123 },
        };
        Planned { action, budget: step.budget() }
    }

    fn run(&self, steps: &[Step]) {
        let planned: Vec<Planned> = steps.iter().map(|step| self.plan(step)).collect();
        let mut arena = Arena::new(RAM_FRAMES);
        let (memory, mut alloc) = arena.limited_parts();
        let mut memory = Journaled::new(memory);
        let mut table = PageTable::<F, _>::new(&mut memory, &mut alloc).unwrap();
        let mut model = Model::default();
        let mut tables = changes::Tables::of(&table);

        for (now, step) in planned.iter().enumerate() {
            let at = At { format: F::NAME, steps: &planned, now };
            alloc.set_budget(step.budget);
            table.memory_mut().mark();
            let in_use = alloc.frames_in_use();
            let model_span = step.action.range().map(|(first, last)| model.widened(first, last));
            let (expect_ok, result) =
                self.step(&step.action, &mut table, &mut alloc, &mut model, &at);
            match (&result, expect_ok) {
                (Ok(()), true) => {}
                // A budget, or the RAM itself, may run out: then nothing may have changed.
                (Err(TableError::OutOfFrames { .. }), true) => {}
                (Err(e), false) if !matches!(e, TableError::OutOfFrames { .. }) => {}
                _ => panic!("got {result:?}, the model expected ok={expect_ok}: {at}"),
            }
            let unchanged = table.memory().changed_frame().is_none();
            if result.is_err() {
                assert!(unchanged, "failed but changed memory: {at}");
                assert_eq!(alloc.frames_in_use(), in_use, "failed but kept frames: {at}");
            }
            // Memory, frames in use and model as they were at the last check: the tree
            // (a function of memory) still agrees with the model, so the check would only
            // repeat itself. A model changed on its own (a success that wrote nothing)
            // is still checked.
            let model_changed = result.is_ok() && expect_ok && step.action.changes_model();
            if !unchanged || model_changed || alloc.frames_in_use() != in_use {
                let span = model_span.filter(|_| model_changed);
                let sample = changes::check_changes(&table, &model, &mut tables, span)
                    .unwrap_or_else(|why| panic!("{why} after {at}"));
                let (used, reachable) = (alloc.frames_in_use(), tables.count());
                assert_eq!(
                    used, reachable,
                    "frames in use are not the reachable tables after {at}"
                );
                // Translation elsewhere reads what it read at the last check.
                Self::probe_pages(&table, &sample, &at);
            }
        }
        // The whole tree, once, as every step's check saw its changed parts.
        if let Some(last) = planned.len().checked_sub(1) {
            self.check(&table, &alloc, &model, &At { format: F::NAME, steps: &planned, now: last });
        }
        alloc.set_budget(usize::MAX);
        table.destroy(&mut alloc);
        assert_eq!(alloc.frames_in_use(), 0, "{}: frames left after destroy", F::NAME);
    }

    /// Applies `action` to the table and, where the model says it succeeds, to the model
    /// (`at` names it in a failure). Returns the model's verdict and the engine's result.
    fn step<M: TableMemory, A: FrameAllocator>(
        &self,
        action: &Action,
        table: &mut PageTable<F, M>,
        alloc: &mut A,
        model: &mut Model,
        at: &At<'_>,
    ) -> (bool, Result<(), TableError>) {
        let sizes = &self.sizes;
        match *action {
            Action::Map { va, pa, size, flags } => {
                let ok = va % size == 0 && pa % size == 0 && !model.overlaps(va, va + size - 1);
                let result = map_sized(table, size, va, pa, flags, alloc);
                if ok && result.is_ok() {
                    model.insert(va, ModelPage { size, frame: pa, flags: flags | F::IMPLIED });
                }
                (ok, result)
            }
            Action::MapRange { va, pa, len, flags, max } => {
                let ok = !model.overlaps(va, va + len - 1);
                let (va_, pa_) = (VirtAddr::new(va), PhysAddr::new(pa));
                let result = map_range_capped(table, va_, pa_, len, flags, max, alloc);
                if ok && result.is_ok() {
                    let (flags, mut at) = (flags | F::IMPLIED, 0);
                    let mut runs: Vec<(u64, ModelPage, u64)> = Vec::new();
                    while at < len {
                        let fits =
                            |s: u64| (va + at) % s == 0 && (pa + at) % s == 0 && len - at >= s;
                        // Below every size, the base page.
                        let size = sizes
                            .iter()
                            .rev()
                            .copied()
                            .find(|&s| s <= max && fits(s))
                            .unwrap_or(sizes[0]);
                        // A page like the last one extends its run.
                        match runs.last_mut() {
                            Some((_, page, count)) if page.size == size => *count += 1,
                            _ => {
                                let first = ModelPage { size, frame: pa + at, flags };
                                runs.push((va + at, first, 1));
                            }
                        }
                        at += size;
                    }
                    for (start, first, count) in runs {
                        model.insert_run(start, first, count);
                    }
                }
                (ok, result)
            }
            Action::Unmap { va, size } => {
                let ok = va % size == 0 && model.page_starting(va).is_some_and(|p| p.size == size);
                let result = unmap_sized(table, size, va, alloc);
                if ok && result.is_ok() {
                    model.remove_page(va, size);
                }
                (ok, result)
            }
            Action::UnmapRange { va, len, skip_holes } => {
                let last = va + len - 1;
                let ok = skip_holes || model.covers(va, last);
                let holes = if skip_holes { Holes::Skip } else { Holes::Refuse };
                let mut reported = Vec::new();
                let result = table
                    .unmap_range(VirtAddr::new(va), len, holes, alloc, |u| reported.push(u))
                    .map(drop);
                if ok && result.is_ok() {
                    model.split_edges(va, last, sizes);
                    let gone = model.remove_runs(va, last);
                    assert_eq!(reported.len() as u64, gone, "one report per removed page: {at}");
                } else {
                    assert!(reported.is_empty(), "a refused unmap reported pages: {at}");
                }
                (ok, result)
            }
            Action::Protect { va, size, flags } => {
                let ok = va % size == 0 && model.page_starting(va).is_some_and(|p| p.size == size);
                let result = protect_sized(table, size, va, flags);
                if ok && result.is_ok() {
                    model.protect_page(va, size, flags | F::IMPLIED);
                }
                (ok, result)
            }
            Action::ProtectRange { va, len, flags } => {
                let last = va + len - 1;
                let ok = model.covers(va, last);
                let result = table.protect_range(VirtAddr::new(va), len, flags, alloc).map(drop);
                if ok && result.is_ok() {
                    model.split_edges(va, last, sizes);
                    model.protect_runs(va, last, flags | F::IMPLIED);
                }
                (ok, result)
            }
            Action::Translate { va } => {
                let got =
                    table.translate(VirtAddr::new(va)).ok().map(|t| (t.phys.as_u64(), t.flags));
                let want = model.page_at(va).map(|(start, p)| (p.frame + (va - start), p.flags));
                assert_eq!(got, want, "translate: {at}");
                let addr = table.translate_addr(VirtAddr::new(va)).ok().map(|p| p.as_u64());
                assert_eq!(addr, want.map(|(phys, _)| phys), "translate_addr: {at}");
                (true, Ok(()))
            }
        }
    }

    fn check<M: TableMemory, A: FrameAllocator>(
        &self,
        table: &PageTable<F, M>,
        alloc: &A,
        model: &Model,
        at: &At<'_>,
    ) {
        // `visit` goes in address order: the leaves compare with the model's pages in turn.
        let mut check = changes::LeafCheck::new(model.meeting(0, u64::MAX));
        let mut tables = 0;
        table.visit(|visit| match visit {
            Visit::Table { .. } => tables += 1,
            other => check.visit(other),
        });
        if !check.agrees() {
            let why = changes::explain(model.pages(), |visitor| table.visit(visitor));
            panic!("{why} after {at}");
        }
        assert_eq!(
            alloc.frames_in_use(),
            tables,
            "frames in use are not the reachable tables after {at}"
        );
        self.probe(table, model, at);
    }

    /// Translate agrees with the model at some pages (the ends of runs spread over the
    /// space: the visits compared every leaf).
    fn probe<M: TableMemory>(&self, table: &PageTable<F, M>, model: &Model, at: &At<'_>) {
        Self::probe_pages(table, &model.sample(0, u64::MAX), at);
    }

    /// Translate agrees with the model at both ends of some of `pages` (at most 32).
    fn probe_pages<M: TableMemory>(
        table: &PageTable<F, M>,
        pages: &[(u64, ModelPage)],
        at: &At<'_>,
    ) {
        let stride = pages.len().div_ceil(32).max(1);
        for &(start, ref page) in pages.iter().step_by(stride) {
            for probe in [start, start + page.size - 1] {
                let t = table.translate(VirtAddr::new(probe)).unwrap();
                let (phys, flags) = (page.frame + (probe - start), page.flags);
                assert_eq!(t.phys.as_u64(), phys, "translate {} after {at}", Hex(probe));
                assert_eq!(t.flags, flags, "flags at {} after {at}", Hex(probe));
                let addr = table.translate_addr(VirtAddr::new(probe)).map(|p| p.as_u64());
                assert_eq!(addr, Ok(phys), "translate_addr {} after {at}", Hex(probe));
            }
        }
    }
}

fn map_sized<F: PageTableFormat, M: TableMemory, A: FrameAllocator>(
    table: &mut PageTable<F, M>,
    size: u64,
    va: u64,
    pa: u64,
    flags: PageFlags,
    alloc: &mut A,
) -> Result<(), TableError> {
    fn go<S: PageSize, F: PageTableFormat, M: TableMemory, A: FrameAllocator>(
        t: &mut PageTable<F, M>,
        va: u64,
        pa: u64,
        flags: PageFlags,
        alloc: &mut A,
    ) -> Result<(), TableError> {
        let (Ok(page), Ok(frame)) =
            (Page::<S>::from_start(VirtAddr::new(va)), Frame::<S>::from_start(PhysAddr::new(pa)))
        else {
            return Err(TableError::EmptyRange); // stands for "refused before the call"
        };
        t.map(page, frame, flags, alloc).map(drop)
    }
    match size {
        Size4KiB::SIZE => go::<Size4KiB, _, _, _>(table, va, pa, flags, alloc),
        Size2MiB::SIZE => go::<Size2MiB, _, _, _>(table, va, pa, flags, alloc),
        Size4MiB::SIZE => go::<Size4MiB, _, _, _>(table, va, pa, flags, alloc),
        _ => go::<Size1GiB, _, _, _>(table, va, pa, flags, alloc),
    }
}

/// `map_range_limited` with the page-size type for cap `max` (a cap below every size
/// caps at the base page, as the model has it; `u64::MAX` is no cap).
fn map_range_capped<F: PageTableFormat, M: TableMemory, A: FrameAllocator>(
    table: &mut PageTable<F, M>,
    va: VirtAddr,
    pa: PhysAddr,
    len: u64,
    flags: PageFlags,
    max: u64,
    alloc: &mut A,
) -> Result<(), TableError> {
    let flush = match max {
        u64::MAX => table.map_range(va, pa, len, flags, alloc),
        Size1GiB::SIZE => table.map_range_limited::<Size1GiB, _>(va, pa, len, flags, alloc),
        Size4MiB::SIZE => table.map_range_limited::<Size4MiB, _>(va, pa, len, flags, alloc),
        Size2MiB::SIZE => table.map_range_limited::<Size2MiB, _>(va, pa, len, flags, alloc),
        _ => table.map_range_limited::<Size4KiB, _>(va, pa, len, flags, alloc),
    };
    flush.map(drop)
}

fn unmap_sized<F: PageTableFormat, M: TableMemory, A: FrameAllocator>(
    table: &mut PageTable<F, M>,
    size: u64,
    va: u64,
    alloc: &mut A,
) -> Result<(), TableError> {
    fn go<S: PageSize, F: PageTableFormat, M: TableMemory, A: FrameAllocator>(
        t: &mut PageTable<F, M>,
        va: u64,
        alloc: &mut A,
    ) -> Result<(), TableError> {
        let Ok(page) = Page::<S>::from_start(VirtAddr::new(va)) else {
            return Err(TableError::EmptyRange);
        };
        t.unmap(page, alloc).map(drop)
    }
    match size {
        Size4KiB::SIZE => go::<Size4KiB, _, _, _>(table, va, alloc),
        Size2MiB::SIZE => go::<Size2MiB, _, _, _>(table, va, alloc),
        Size4MiB::SIZE => go::<Size4MiB, _, _, _>(table, va, alloc),
        _ => go::<Size1GiB, _, _, _>(table, va, alloc),
    }
}

fn protect_sized<F: PageTableFormat, M: TableMemory>(
    table: &mut PageTable<F, M>,
    size: u64,
    va: u64,
    flags: PageFlags,
) -> Result<(), TableError> {
    fn go<S: PageSize, F: PageTableFormat, M: TableMemory>(
        t: &mut PageTable<F, M>,
        va: u64,
        flags: PageFlags,
    ) -> Result<(), TableError> {
        let Ok(page) = Page::<S>::from_start(VirtAddr::new(va)) else {
            return Err(TableError::EmptyRange);
        };
        t.protect(page, flags).map(drop)
    }
    match size {
        Size4KiB::SIZE => go::<Size4KiB, _, _>(table, va, flags),
        Size2MiB::SIZE => go::<Size2MiB, _, _>(table, va, flags),
        Size4MiB::SIZE => go::<Size4MiB, _, _>(table, va, flags),
        _ => go::<Size1GiB, _, _>(table, va, flags),
    }
}

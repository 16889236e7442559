//! Random sequences of map, unmap, protect and translate, for single pages of every size
//! and for ranges, against a plain model, with the allocator failing at random points.
//!
//! After every step: the leaves of the tree are exactly the model's pages; translate agrees
//! with the model; the frames in use are exactly the tables reachable from the root; and a
//! refused step left the table memory byte for byte as it was.

use std::collections::BTreeMap;

use paging::frame::{BitmapAllocator, FrameAllocator, LimitedAllocator, MemoryRegion};
use paging::table::{Holes, Visit};
use paging::{
    ArenaMemory, Frame, FrameBuf, Page, PageFlags, PageSize, PageTable, PageTableFormat, PhysAddr,
    Size1GiB, Size2MiB, Size4KiB, Size4MiB, TableError, VirtAddr,
};
use paging_x86::{Legacy32, Pae, X86_64, X86_64La57};
use proptest::prelude::*;

const RAM_FRAMES: usize = 96;

/// One mapped page in the model.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct ModelPage {
    size: u64,
    frame: u64,
    flags: PageFlags,
}

/// The model: pages by first virtual address.
#[derive(Default, Clone, Debug)]
struct Model(BTreeMap<u64, ModelPage>);

impl Model {
    fn page_at(&self, addr: u64) -> Option<(u64, ModelPage)> {
        let (&start, &page) = self.0.range(..=addr).next_back()?;
        (addr - start < page.size).then_some((start, page))
    }

    fn overlaps(&self, first: u64, last: u64) -> bool {
        if self.page_at(first).is_some() {
            return true;
        }
        self.0.range(first..=last).next().is_some()
    }

    /// Whether every byte of `[first, last]` is mapped.
    fn covers(&self, first: u64, last: u64) -> bool {
        let mut at = first;
        loop {
            let Some((start, page)) = self.page_at(at) else { return false };
            let end = start + (page.size - 1);
            if end >= last {
                return true;
            }
            at = end + 1;
        }
    }

    /// Splits pages that straddle `first` or `last + 1` until none does.
    fn split_edges(&mut self, first: u64, last: u64, sizes: &[u64]) {
        loop {
            let straddler = [first, last.wrapping_add(1)].into_iter().find_map(|edge| {
                let (start, page) = self.page_at(edge)?;
                (start != edge).then_some((start, page))
            });
            let Some((start, page)) = straddler else { return };
            let smaller = *sizes.iter().rev().find(|&&s| s < page.size).expect("a smaller size");
            self.0.remove(&start);
            for i in 0..page.size / smaller {
                let piece =
                    ModelPage { size: smaller, frame: page.frame + i * smaller, flags: page.flags };
                self.0.insert(start + i * smaller, piece);
            }
        }
    }

    fn starts_in(&self, first: u64, last: u64) -> Vec<u64> {
        self.0.range(first..=last).map(|(&s, _)| s).collect()
    }
}

#[derive(Clone, Debug)]
enum Op {
    Map { size: usize, virt: u64, delta: u64, flags: u32 },
    MapRange { virt: u64, delta: u64, pages: u64, unit: usize, flags: u32 },
    Unmap { size: usize, virt: u64 },
    UnmapRange { virt: u64, pages: u64, unit: usize, skip_holes: bool },
    Protect { size: usize, virt: u64, flags: u32 },
    ProtectRange { virt: u64, pages: u64, unit: usize, flags: u32 },
    Translate { virt: u64 },
}

/// A step and the allocator budget it runs with (`None`: unlimited).
type Step = (Op, Option<usize>);

/// Virtual offsets built from a few multiples of each page size, so that operations
/// collide, straddle huge pages and share tables.
fn offset() -> impl Strategy<Value = u64> {
    (0..3u64, 0..3u64, 0..4u64).prop_map(|(a, b, c)| (a, b, c).0 << 32 | (b << 8) | c)
}

fn op() -> impl Strategy<Value = Op> {
    let flags = any::<u32>();
    prop_oneof![
        (0..3usize, offset(), 0..3u64, flags).prop_map(|(size, virt, delta, flags)| Op::Map {
            size,
            virt,
            delta,
            flags
        }),
        (offset(), 0..3u64, 1..5u64, 0..3usize, flags).prop_map(
            |(virt, delta, pages, unit, flags)| Op::MapRange { virt, delta, pages, unit, flags }
        ),
        (0..3usize, offset()).prop_map(|(size, virt)| Op::Unmap { size, virt }),
        (offset(), 1..5u64, 0..3usize, any::<bool>()).prop_map(
            |(virt, pages, unit, skip_holes)| Op::UnmapRange { virt, pages, unit, skip_holes }
        ),
        (0..3usize, offset(), flags).prop_map(|(size, virt, flags)| Op::Protect {
            size,
            virt,
            flags
        }),
        (offset(), 1..5u64, 0..3usize, flags)
            .prop_map(|(virt, pages, unit, flags)| Op::ProtectRange { virt, pages, unit, flags }),
        offset().prop_map(|virt| Op::Translate { virt }),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec((op(), prop::option::weighted(0.25, 0..4usize)), 1..40)
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

    /// Turns a packed offset (a, b, c) into a virtual address: `a` of the largest size,
    /// `b` of the middle size, `c` base pages.
    fn virt(&self, packed: u64) -> u64 {
        let (a, b, c) = (packed >> 32, (packed >> 8) & 0xFF, packed & 0xFF);
        let big = *self.sizes.last().unwrap();
        let mid = self.sizes[self.sizes.len().min(2) - 1];
        self.virt_base + a * big + b * mid + c * self.sizes[0]
    }

    /// A physical offset from the virtual address: aligned to every size, to the middle
    /// size only, or to the base page only.
    fn delta(&self, choice: u64) -> u64 {
        let big = *self.sizes.last().unwrap();
        [big * 4, big * 4 + self.sizes[self.sizes.len().min(2) - 1], big * 4 + 0x1000]
            [choice as usize]
    }

    fn flags(&self, bits: u32) -> PageFlags {
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

    fn run(&self, steps: &[Step]) -> Result<(), TestCaseError> {
        let mut ram = vec![FrameBuf::ZERO; RAM_FRAMES];
        let mut memory = ArenaMemory::new(&mut ram, PhysAddr::ZERO);
        let mut bitmap = [0u64; RAM_FRAMES.div_ceil(64)];
        let map = [MemoryRegion::usable(0, RAM_FRAMES as u64 * 4096)];
        let bits = BitmapAllocator::new(&mut bitmap, &map).unwrap();
        let mut alloc = LimitedAllocator::new(bits, usize::MAX);
        let mut table = PageTable::<F, _>::new(&mut memory, &mut alloc).unwrap();
        let mut model = Model::default();

        for (op, budget) in steps {
            alloc.set_budget(budget.unwrap_or(usize::MAX));
            let before: Vec<FrameBuf> = table.memory().frames().to_vec();
            let in_use = alloc.frames_in_use();
            let (expect_ok, result) = self.step(op, &mut table, &mut alloc, &mut model);
            match (&result, expect_ok) {
                (Ok(()), true) => {}
                // A budget, or the RAM itself, may run out: then nothing may have changed.
                (Err(TableError::OutOfFrames { .. }), true) => {}
                (Err(e), false) if !matches!(e, TableError::OutOfFrames { .. }) => {}
                _ => {
                    return Err(TestCaseError::fail(format!(
                        "{op:?}: got {result:?}, model expected ok={expect_ok}"
                    )));
                }
            }
            if result.is_err() {
                prop_assert!(
                    table.memory().frames() == &before[..],
                    "{op:?} failed but changed memory"
                );
                prop_assert_eq!(alloc.frames_in_use(), in_use, "{:?} failed but kept frames", op);
            }
            self.check(&table, &alloc, &model, op)?;
        }
        Ok(())
    }

    /// Applies `op` to the table and, where the model says it succeeds, to the model.
    /// Returns the model's verdict and the engine's result.
    fn step<M: paging::TableMemory, A: FrameAllocator>(
        &self,
        op: &Op,
        table: &mut PageTable<F, M>,
        alloc: &mut A,
        model: &mut Model,
    ) -> (bool, Result<(), TableError>) {
        let sizes = &self.sizes;
        let pick = |i: usize| sizes[i.min(sizes.len() - 1)];
        match *op {
            Op::Map { size, virt, delta, flags } => {
                let (size, va) = (pick(size), self.virt(virt));
                let pa = va - self.virt_base + self.delta(delta);
                let flags = self.flags(flags);
                let ok = va % size == 0 && pa % size == 0 && !model.overlaps(va, va + size - 1);
                let result = map_sized(table, size, va, pa, flags, alloc);
                if ok && result.is_ok() {
                    model.0.insert(va, ModelPage { size, frame: pa, flags: flags | F::IMPLIED });
                }
                (ok, result)
            }
            Op::MapRange { virt, delta, pages, unit, flags } => {
                let (va, len) = (self.virt(virt), pages * pick(unit));
                let pa = va - self.virt_base + self.delta(delta);
                let flags = self.flags(flags);
                let ok = !model.overlaps(va, va + len - 1);
                let result = table
                    .map_range(VirtAddr::new(va), PhysAddr::new(pa), len, flags, alloc)
                    .map(drop);
                if ok && result.is_ok() {
                    let mut at = 0;
                    while at < len {
                        let size = *sizes
                            .iter()
                            .rev()
                            .find(|&&s| (va + at) % s == 0 && (pa + at) % s == 0 && len - at >= s)
                            .unwrap();
                        model.0.insert(
                            va + at,
                            ModelPage { size, frame: pa + at, flags: flags | F::IMPLIED },
                        );
                        at += size;
                    }
                }
                (ok, result)
            }
            Op::Unmap { size, virt } => {
                let (size, va) = (pick(size), self.virt(virt));
                let ok = va % size == 0 && model.0.get(&va).is_some_and(|p| p.size == size);
                let result = unmap_sized(table, size, va, alloc);
                if ok && result.is_ok() {
                    model.0.remove(&va);
                }
                (ok, result)
            }
            Op::UnmapRange { virt, pages, unit, skip_holes } => {
                let (va, len) = (self.virt(virt), pages * pick(unit));
                let last = va + len - 1;
                let ok = skip_holes || model.covers(va, last);
                let holes = if skip_holes { Holes::Skip } else { Holes::Refuse };
                let mut reported = Vec::new();
                let result = table
                    .unmap_range(VirtAddr::new(va), len, holes, alloc, |u| reported.push(u))
                    .map(drop);
                if ok && result.is_ok() {
                    model.split_edges(va, last, sizes);
                    let gone = model.starts_in(va, last);
                    assert_eq!(reported.len(), gone.len(), "one report per removed page");
                    for start in gone {
                        model.0.remove(&start);
                    }
                } else {
                    assert!(reported.is_empty(), "a refused unmap reported pages");
                }
                (ok, result)
            }
            Op::Protect { size, virt, flags } => {
                let (size, va) = (pick(size), self.virt(virt));
                let flags = self.flags(flags);
                let ok = va % size == 0 && model.0.get(&va).is_some_and(|p| p.size == size);
                let result = protect_sized(table, size, va, flags);
                if ok && result.is_ok() {
                    model.0.get_mut(&va).unwrap().flags = flags | F::IMPLIED;
                }
                (ok, result)
            }
            Op::ProtectRange { virt, pages, unit, flags } => {
                let (va, len) = (self.virt(virt), pages * pick(unit));
                let last = va + len - 1;
                let flags = self.flags(flags);
                let ok = model.covers(va, last);
                let result = table.protect_range(VirtAddr::new(va), len, flags, alloc).map(drop);
                if ok && result.is_ok() {
                    model.split_edges(va, last, sizes);
                    for start in model.starts_in(va, last) {
                        model.0.get_mut(&start).unwrap().flags = flags | F::IMPLIED;
                    }
                }
                (ok, result)
            }
            Op::Translate { virt } => {
                let va = self.virt(virt) + 0x123;
                let got =
                    table.translate(VirtAddr::new(va)).ok().map(|t| (t.phys.as_u64(), t.flags));
                let want = model.page_at(va).map(|(start, p)| (p.frame + (va - start), p.flags));
                assert_eq!(got, want, "translate {va:#x}");
                (true, Ok(()))
            }
        }
    }

    fn check<M: paging::TableMemory, A: FrameAllocator>(
        &self,
        table: &PageTable<F, M>,
        alloc: &A,
        model: &Model,
        op: &Op,
    ) -> Result<(), TestCaseError> {
        let mut leaves = BTreeMap::new();
        let mut tables = 0;
        table.visit(|visit| match visit {
            Visit::Table { .. } => tables += 1,
            Visit::Page { virt, frame, size, flags } => {
                leaves.insert(virt.as_u64(), ModelPage { size, frame: frame.as_u64(), flags });
            }
            other => panic!("unexpected {other:?}"),
        });
        prop_assert_eq!(&leaves, &model.0, "leaves differ from the model after {:?}", op);
        prop_assert_eq!(
            alloc.frames_in_use(),
            tables,
            "frames in use are not the reachable tables after {:?}",
            op
        );
        for (&start, page) in &model.0 {
            for probe in [start, start + page.size - 1] {
                let t = table.translate(VirtAddr::new(probe)).unwrap();
                prop_assert_eq!(t.phys.as_u64(), page.frame + (probe - start));
                prop_assert_eq!(t.flags, page.flags);
            }
        }
        Ok(())
    }
}

fn map_sized<F: PageTableFormat, M: paging::TableMemory, A: FrameAllocator>(
    table: &mut PageTable<F, M>,
    size: u64,
    va: u64,
    pa: u64,
    flags: PageFlags,
    alloc: &mut A,
) -> Result<(), TableError> {
    fn go<S: PageSize, F: PageTableFormat, M: paging::TableMemory, A: FrameAllocator>(
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

fn unmap_sized<F: PageTableFormat, M: paging::TableMemory, A: FrameAllocator>(
    table: &mut PageTable<F, M>,
    size: u64,
    va: u64,
    alloc: &mut A,
) -> Result<(), TableError> {
    fn go<S: PageSize, F: PageTableFormat, M: paging::TableMemory, A: FrameAllocator>(
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

fn protect_sized<F: PageTableFormat, M: paging::TableMemory>(
    table: &mut PageTable<F, M>,
    size: u64,
    va: u64,
    flags: PageFlags,
) -> Result<(), TableError> {
    fn go<S: PageSize, F: PageTableFormat, M: paging::TableMemory>(
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn x86_64_lower_half(steps in steps()) {
        Harness::<X86_64>::new(0x40_0000_0000).run(&steps)?;
    }

    #[test]
    fn x86_64_upper_half(steps in steps()) {
        Harness::<X86_64>::new(0xffff_8000_0000_0000).run(&steps)?;
    }

    #[test]
    fn x86_64_5_level(steps in steps()) {
        Harness::<X86_64La57>::new(0xff00_0000_0000_0000).run(&steps)?;
    }

    #[test]
    fn pae(steps in steps()) {
        Harness::<Pae>::new(0x1000_0000).run(&steps)?;
    }

    #[test]
    fn legacy_32_bit(steps in steps()) {
        Harness::<Legacy32>::new(0x1000_0000).run(&steps)?;
    }
}

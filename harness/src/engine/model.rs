//! The model of a page table: the pages it maps, as runs of like pages.
//!
//! A range mapped with small pages is thousands of pages alike but for their address and
//! frame; the model keeps each such run as one entry, so that mapping, splitting,
//! protecting and unmapping a range costs a few map operations, not one per page. Runs
//! need not be as long as they could be: two runs side by side may hold pages that one
//! run could.

use std::collections::{BTreeMap, btree_map};
use std::fmt;
use std::ops::Bound::{Excluded, Included};

use paging::PageFlags;

use crate::show::{Flags, Hex};

/// One mapped page.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct ModelPage {
    pub(super) size: u64,
    pub(super) frame: u64,
    pub(super) flags: PageFlags,
}

impl fmt::Debug for ModelPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Page")
            .field("size", &Hex(self.size))
            .field("frame", &Hex(self.frame))
            .field("flags", &Flags(self.flags))
            .finish()
    }
}

/// `count` pages of one size and flags, side by side, on frames side by side: page `i`
/// of a run at `start` maps `start + i * size` to `first.frame + i * size`.
#[derive(Clone, Copy, Debug)]
struct Run {
    first: ModelPage,
    count: u64,
}

impl Run {
    fn bytes(&self) -> u64 {
        self.count * self.first.size
    }

    fn page(&self, i: u64) -> ModelPage {
        ModelPage { frame: self.first.frame + i * self.first.size, ..self.first }
    }

    /// Its pages from page `i`, with their first addresses, for a run at `start`.
    fn pages_from(self, start: u64, i: u64) -> impl Iterator<Item = (u64, ModelPage)> {
        (i..self.count).map(move |i| (start + i * self.first.size, self.page(i)))
    }
}

/// The model: runs of pages by first virtual address.
#[derive(Default, Clone)]
pub(super) struct Model(BTreeMap<u64, Run>);

impl Model {
    /// The run holding `addr`, with its start and the index of the page holding `addr`.
    fn run_at(&self, addr: u64) -> Option<(u64, Run, u64)> {
        let (&start, &run) = self.0.range(..=addr).next_back()?;
        (addr - start < run.bytes()).then(|| (start, run, (addr - start) / run.first.size))
    }

    /// The page holding `addr`, with its first address.
    pub(super) fn page_at(&self, addr: u64) -> Option<(u64, ModelPage)> {
        let (start, run, i) = self.run_at(addr)?;
        Some((start + i * run.first.size, run.page(i)))
    }

    /// The page that starts at `addr`, if one does.
    pub(super) fn page_starting(&self, addr: u64) -> Option<ModelPage> {
        self.page_at(addr).and_then(|(start, page)| (start == addr).then_some(page))
    }

    pub(super) fn overlaps(&self, first: u64, last: u64) -> bool {
        self.run_at(first).is_some() || self.0.range(first..=last).next().is_some()
    }

    /// Whether every byte of `[first, last]` is mapped.
    pub(super) fn covers(&self, first: u64, last: u64) -> bool {
        let Some((start, run, _)) = self.run_at(first) else { return false };
        // The runs in order: each must start where the last one ended.
        let mut end = start + (run.bytes() - 1);
        for (&next, run) in self.0.range((Excluded(start), Included(last))) {
            if end >= last || next != end + 1 {
                break;
            }
            end = next + (run.bytes() - 1);
        }
        end >= last
    }

    /// Adds `page` at `start` (where nothing is mapped).
    pub(super) fn insert(&mut self, start: u64, page: ModelPage) {
        self.insert_run(start, page, 1);
    }

    /// Adds `count` pages like `first` from `start` (where nothing is mapped).
    pub(super) fn insert_run(&mut self, start: u64, first: ModelPage, count: u64) {
        self.0.insert(start, Run { first, count });
    }

    /// Splits pages that straddle `first` or `last + 1` until none does, and ends runs
    /// there: afterwards every run lies inside `[first, last]` or outside it.
    pub(super) fn split_edges(&mut self, first: u64, last: u64, sizes: &[u64]) {
        for edge in [first, last.wrapping_add(1)] {
            while let Some((start, page)) = self.page_at(edge).filter(|&(start, _)| start != edge) {
                let smaller =
                    *sizes.iter().rev().find(|&&s| s < page.size).expect("a smaller size");
                self.isolate(start, page.size);
                let pieces = ModelPage { size: smaller, ..page };
                self.insert_run(start, pieces, page.size / smaller);
            }
            self.cut(edge);
        }
    }

    /// Ends the run holding `at` there, if `at` is a page boundary inside it.
    fn cut(&mut self, at: u64) {
        let Some((start, run, i)) = self.run_at(at) else { return };
        if start == at || at - start != i * run.first.size {
            return;
        }
        self.0.insert(start, Run { count: i, ..run });
        self.0.insert(at, Run { first: run.page(i), count: run.count - i });
    }

    /// Takes the page `[start, start + size)` out of its run, leaving it unmapped.
    fn isolate(&mut self, start: u64, size: u64) {
        self.cut(start);
        self.cut(start.wrapping_add(size));
        self.0.remove(&start);
    }

    /// Removes the page at `start` (of `size`).
    pub(super) fn remove_page(&mut self, start: u64, size: u64) {
        self.isolate(start, size);
    }

    /// Sets the flags of the page at `start` (of `size`).
    pub(super) fn protect_page(&mut self, start: u64, size: u64, flags: PageFlags) {
        if let Some(page) = self.page_starting(start) {
            self.isolate(start, size);
            self.insert(start, ModelPage { flags, ..page });
        }
    }

    /// Removes the runs starting in `[first, last]` (after [`split_edges`](Self::split_edges)
    /// they lie inside it), returning how many pages went.
    pub(super) fn remove_runs(&mut self, first: u64, last: u64) -> u64 {
        let starts: Vec<u64> = self.0.range(first..=last).map(|(&start, _)| start).collect();
        starts.iter().filter_map(|start| self.0.remove(start)).map(|run| run.count).sum()
    }

    /// Sets the flags of the runs starting in `[first, last]`.
    pub(super) fn protect_runs(&mut self, first: u64, last: u64, flags: PageFlags) {
        for run in self.0.range_mut(first..=last).map(|(_, run)| run) {
            run.first.flags = flags;
        }
    }

    /// The pages any byte of `[first, last]` lies in, in address order.
    pub(super) fn meeting(&self, first: u64, last: u64) -> Pages<'_> {
        let straddling = self.run_at(first).filter(|&(start, ..)| start < first);
        Pages::new(self.0.range(first..=last), straddling, last)
    }

    /// Some pages meeting `[first, last]` to probe: the first and last of up to 32 runs
    /// spread over it.
    pub(super) fn sample(&self, first: u64, last: u64) -> Vec<(u64, ModelPage)> {
        let straddling = self.run_at(first).filter(|&(start, ..)| start < first);
        let head = straddling.map(|(start, run, _)| (start, run));
        let runs: Vec<(u64, Run)> =
            head.into_iter().chain(self.0.range(first..=last).map(|(&s, &r)| (s, r))).collect();
        let stride = runs.len().div_ceil(32).max(1);
        let ends = runs.iter().step_by(stride).flat_map(|&(start, run)| {
            [0, run.count - 1].map(|i| (start + i * run.first.size, run.page(i)))
        });
        let meets =
            |&(start, page): &(u64, ModelPage)| start <= last && start + (page.size - 1) >= first;
        ends.filter(meets).collect()
    }

    /// Every page, in address order.
    pub(super) fn pages(&self) -> impl Iterator<Item = (u64, ModelPage)> + '_ {
        self.0.iter().flat_map(|(&start, &run)| run.pages_from(start, 0))
    }

    /// The span `[first, last]` widened to the pages at its ends: what a change of the
    /// range (splitting the pages at its edges included) may change in the model.
    pub(super) fn widened(&self, first: u64, last: u64) -> (u64, u64) {
        let first = self.page_at(first).map_or(first, |(start, _)| start);
        let last = self.page_at(last).map_or(last, |(start, page)| start + (page.size - 1));
        (first, last)
    }
}

/// The pages of a span in address order, run after run: a cursor rather than an adapter
/// chain, with one test a page, as the check after every step walks thousands of them
/// (each comparison an instrumented branch under the fuzzer).
pub(super) struct Pages<'a> {
    runs: btree_map::Range<'a, u64, Run>,
    /// The next page of the run being walked, and how many of its pages are left in the
    /// span.
    page: (u64, ModelPage),
    left: u64,
    last: u64,
}

impl<'a> Pages<'a> {
    fn new(runs: btree_map::Range<'a, u64, Run>, head: Option<(u64, Run, u64)>, last: u64) -> Self {
        let none = (0, ModelPage { size: 0, frame: 0, flags: PageFlags::empty() });
        let mut pages = Self { runs, page: none, left: 0, last };
        if let Some((start, run, i)) = head {
            pages.enter(start, run, i);
        }
        pages
    }

    /// Walks `run` (at `start`) from its page `i`, as far as the span goes.
    fn enter(&mut self, start: u64, run: Run, i: u64) {
        let at = start + i * run.first.size;
        let in_span = (self.last - at) / run.first.size + 1;
        (self.page, self.left) = ((at, run.page(i)), in_span.min(run.count - i));
    }
}

impl Iterator for Pages<'_> {
    type Item = (u64, ModelPage);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            let (&start, &run) = self.runs.next()?;
            self.enter(start, run, 0);
        }
        let page = self.page;
        self.left -= 1;
        self.page.0 += page.1.size;
        self.page.1.frame += page.1.size;
        Some(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K4: u64 = 0x1000;
    const M2: u64 = 0x20_0000;

    fn page(size: u64, frame: u64) -> ModelPage {
        ModelPage { size, frame, flags: PageFlags::READABLE }
    }

    #[test]
    fn a_run_answers_for_each_of_its_pages() {
        let mut model = Model::default();
        model.insert_run(0x10_0000, page(K4, 0x50_0000), 4);
        assert_eq!(model.page_at(0x10_2fff), Some((0x10_2000, page(K4, 0x50_2000))));
        assert_eq!(model.page_at(0x10_4000), None);
        assert!(model.covers(0x10_0000, 0x10_3fff) && !model.covers(0x10_0000, 0x10_4000));
        let starts: Vec<u64> = model.meeting(0x10_1800, 0x10_2000).map(|(s, _)| s).collect();
        assert_eq!(starts, [0x10_1000, 0x10_2000]);
    }

    #[test]
    fn splitting_breaks_a_huge_page_and_cuts_runs_at_the_edges() {
        let mut model = Model::default();
        model.insert(0, page(M2, 0x4000_0000));
        model.split_edges(0x3000, 0x4fff, &[K4, M2]);
        assert_eq!(model.0.len(), 3, "pages 0-2, 3-4 and 5-511: {:?}", model.0);
        assert_eq!(model.remove_runs(0x3000, 0x4fff), 2);
        assert_eq!(model.page_at(0x3000), None);
        assert_eq!(model.page_at(0x5000), Some((0x5000, page(K4, 0x4000_5000))));
        assert_eq!(model.pages().count(), 510);
        model.protect_page(0x1000, K4, PageFlags::WRITABLE);
        assert_eq!(model.page_starting(0x1000).map(|p| p.flags), Some(PageFlags::WRITABLE));
        assert_eq!(model.page_starting(0x2000).map(|p| p.flags), Some(PageFlags::READABLE));
        model.remove_page(0x1000, K4);
        assert_eq!(model.pages().count(), 509);
    }
}

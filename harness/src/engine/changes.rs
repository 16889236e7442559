//! The check after a step, by the parts of the tree the step changed.
//!
//! The tree is a function of table memory, and memory changes only where the step wrote:
//! the journal names every entry whose bytes differ from before the step. Each changed
//! entry maps a span of addresses; outside those spans every leaf is where it was, on an
//! unchanged path, so it still agrees with the model as it did at the last check. Inside
//! them (and inside the span the model changed, in case the engine failed to change what
//! it should have), the leaves are compared with the model one by one, as a full check
//! does. The tables of the tree are tracked the same way, so that the frames in use can
//! still be compared with the tables reachable from the root. A written frame that is no
//! table before or after the step fails the check: the engine wrote where it must not.

use paging::table::{MappedPage, Visit};
use paging::{PageTable, PageTableFormat, PhysAddr, TableMemory, VirtAddr};
use rustc_hash::FxHashMap;

use super::model::Pages;
use super::{Model, ModelPage};
use crate::journal::Journaled;
use crate::show::Hex;

/// The tables of the tree at the last check: frame -> (level of its entries, the first
/// address its span maps).
pub(super) struct Tables(FxHashMap<PhysAddr, (u8, u64)>);

impl Tables {
    /// The tables of `table` as it is: a new one is one empty root, or in a format whose
    /// root entries the CPU loads with the root (PAE) the root and a table for each entry.
    pub(super) fn of<F: PageTableFormat, M: TableMemory>(table: &PageTable<F, M>) -> Self {
        let mut tables = FxHashMap::default();
        table.visit(|visit| {
            if let Visit::Table { level, frame, virt } = visit {
                tables.insert(frame, (level, virt.as_u64()));
            }
        });
        Self(tables)
    }

    pub(super) fn count(&self) -> usize {
        self.0.len()
    }
}

/// Checks the tree against `model` where the last step changed either: the spans of the
/// entries the journal shows changed, and `model_span` (inclusive). Returns some of the
/// model's pages in those spans (the ends of up to 32 runs a span) to probe with
/// translations, or a failure message.
pub(super) fn check_changes<F: PageTableFormat, M: TableMemory>(
    table: &PageTable<F, &mut Journaled<M>>,
    model: &Model,
    tables: &mut Tables,
    model_span: Option<(u64, u64)>,
) -> Result<Vec<(u64, ModelPage)>, String> {
    let mut spans: Vec<(u64, u64)> = model_span.into_iter().collect();
    let mut strangers = Vec::new();
    for (frame, first, last) in table.memory().changed_runs(F::ENTRY_SIZE) {
        match tables.0.get(&frame) {
            Some(&(level, virt)) => {
                let (from, _) = entry_span::<F>(level, virt, first);
                let (_, to) = entry_span::<F>(level, virt, last);
                extend::<F>(&mut spans, (from, to));
            }
            None => strangers.push(frame),
        }
    }
    let mut sample = Vec::new();
    for (first, last) in merged::<F>(spans) {
        sample.extend(check_span(table, model, tables, first, last)?);
    }
    // A frame that was no table may have become one (linked by a changed entry above).
    match strangers.into_iter().find(|frame| !tables.0.contains_key(frame)) {
        Some(frame) => Err(format!("the step wrote {frame}, a frame that is no table of the tree")),
        None => Ok(sample),
    }
}

/// The first and last address entry `index` of a table at `level` mapping from `virt`
/// covers.
fn entry_span<F: PageTableFormat>(level: u8, virt: u64, index: usize) -> (u64, u64) {
    let size = F::leaf_size(level);
    let first = canonical::<F>(linear::<F>(virt).wrapping_add(index as u64 * size));
    (first, first.wrapping_add(size - 1))
}

/// Adds `span` to `spans`, joining it to the last one when it follows it: the changed
/// entries of a table come in order, and a range operation changes runs of them.
fn extend<F: PageTableFormat>(spans: &mut Vec<(u64, u64)>, (first, last): (u64, u64)) {
    match spans.last_mut() {
        Some(prev) if linear::<F>(first) == linear::<F>(prev.1).wrapping_add(1) => prev.1 = last,
        _ => spans.push((first, last)),
    }
}

/// `spans` sorted in address order, overlapping or touching ones merged.
fn merged<F: PageTableFormat>(mut spans: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    spans.sort_unstable_by_key(|&(first, _)| linear::<F>(first));
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (first, last) in spans {
        match merged.last_mut() {
            Some(prev) if linear::<F>(first) <= linear::<F>(prev.1).saturating_add(1) => {
                if linear::<F>(last) > linear::<F>(prev.1) {
                    prev.1 = last;
                }
            }
            _ => merged.push((first, last)),
        }
    }
    merged
}

/// Compares the leaves meeting `first..=last` with the model's pages meeting it, and
/// refreshes the tables under the span. Returns some of the pages to probe.
fn check_span<F: PageTableFormat, M: TableMemory>(
    table: &PageTable<F, &mut Journaled<M>>,
    model: &Model,
    tables: &mut Tables,
    first: u64,
    last: u64,
) -> Result<Vec<(u64, ModelPage)>, String> {
    let inside = |level: u8, virt: u64| {
        let end = linear::<F>(virt) + (F::entries(level) as u64 * F::leaf_size(level) - 1);
        linear::<F>(virt) >= linear::<F>(first) && end <= linear::<F>(last)
    };
    tables.0.retain(|_, &mut (level, virt)| !inside(level, virt));
    let mut check = LeafCheck::new(model.meeting(first, last));
    table.visit_range(VirtAddr::new(first), VirtAddr::new(last), |visit| match visit {
        Visit::Table { level, frame, virt } => {
            tables.0.insert(frame, (level, virt.as_u64()));
        }
        other => check.visit(other),
    });
    if !check.agrees() {
        let walk = |visitor: &mut dyn FnMut(Visit)| {
            table.visit_range(VirtAddr::new(first), VirtAddr::new(last), visitor);
        };
        return Err(explain(model.meeting(first, last), walk));
    }
    Ok(model.sample(first, last))
}

/// The leaves a visit meets, compared with the model's pages in turn: every field XORed
/// with the model's and ORed together, with one test at the end rather than four a leaf
/// (each an instrumented branch under the fuzzer). A difference is then found again the
/// slow way, by [`explain`], to be named.
pub(super) struct LeafCheck<'a> {
    pages: Pages<'a>,
    diff: u64,
    /// A leaf with no page left to compare, or a visit that is neither leaf nor table.
    odd: bool,
}

impl<'a> LeafCheck<'a> {
    pub(super) fn new(pages: Pages<'a>) -> Self {
        Self { pages, diff: 0, odd: false }
    }

    /// Takes one visit that is not a table.
    pub(super) fn visit(&mut self, visit: Visit) {
        match (visit, self.pages.next()) {
            (Visit::Page(MappedPage { virt, frame, size, flags }), Some((start, page))) => {
                self.diff |= (virt.as_u64() ^ start)
                    | (frame.as_u64() ^ page.frame)
                    | (size ^ page.size)
                    | u64::from((flags ^ page.flags).bits());
            }
            _ => self.odd = true,
        }
    }

    /// Whether every leaf was the model's page and no page was left over.
    pub(super) fn agrees(mut self) -> bool {
        self.diff == 0 && !self.odd && self.pages.next().is_none()
    }
}

/// The first difference between the leaves `walk` visits and `pages`.
pub(super) fn explain(
    mut pages: impl Iterator<Item = (u64, ModelPage)>,
    walk: impl FnOnce(&mut dyn FnMut(Visit)),
) -> String {
    let mut why = None;
    walk(&mut |visit| match visit {
        Visit::Table { .. } => {}
        Visit::Page(MappedPage { virt, frame, size, flags }) => {
            let leaf = (Hex(virt.as_u64()), ModelPage { size, frame: frame.as_u64(), flags });
            let want = pages.next().map(|(start, page)| (Hex(start), page));
            if why.is_none() && Some(leaf) != want {
                why = Some(format!("a leaf differs from the model: {leaf:?}, model {want:?}"));
            }
        }
        other => why = why.take().or_else(|| Some(format!("unexpected {other:?}"))),
    });
    why.or_else(|| pages.next().map(|page| format!("a page of the model is missing: {page:x?}")))
        .unwrap_or_else(|| "the leaves differ from the model".into())
}

/// `virt` with the sign extension of `F`'s canonical form stripped.
fn linear<F: PageTableFormat>(virt: u64) -> u64 {
    if F::VIRT_BITS >= 64 { virt } else { virt & ((1 << F::VIRT_BITS) - 1) }
}

/// The canonical form of linear address `linear`.
fn canonical<F: PageTableFormat>(linear: u64) -> u64 {
    if F::SIGN_EXTENDED && F::VIRT_BITS < 64 {
        let unused = 64 - F::VIRT_BITS;
        (((linear << unused) as i64) >> unused) as u64
    } else {
        linear
    }
}

//! The memory map allocators are built from: ranges of usable and reserved physical
//! memory as a bootloader reports them (unaligned, overlapping), and their normalisation
//! into runs of whole usable frames, which both allocators share.

use super::FRAME_SIZE;
use crate::addr::PhysAddr;

/// What a range of physical memory is, as a bootloader's memory map says.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RegionKind {
    /// Free RAM the allocator may hand out.
    Usable,
    /// Anything else: firmware, ACPI tables, device memory, the kernel image.
    Reserved,
}

/// One range of a memory map: `[start, start + len)`. Ranges may be unaligned and may
/// overlap; a byte is usable only if some usable range covers it and no reserved range
/// does, and a frame only if all its bytes are usable.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MemoryRegion {
    /// The first byte.
    pub start: PhysAddr,
    /// The length in bytes.
    pub len: u64,
    /// What it is.
    pub kind: RegionKind,
}

impl MemoryRegion {
    /// A usable range.
    #[must_use]
    pub const fn usable(start: u64, len: u64) -> Self {
        Self { start: PhysAddr::new(start), len, kind: RegionKind::Usable }
    }

    /// A reserved range.
    #[must_use]
    pub const fn reserved(start: u64, len: u64) -> Self {
        Self { start: PhysAddr::new(start), len, kind: RegionKind::Reserved }
    }

    /// The first byte past the range (saturating at the top of the address space).
    #[must_use]
    pub const fn end(&self) -> u64 {
        self.start.as_u64().saturating_add(self.len)
    }
}

/// A memory map the allocators read: regions in any order, as an iterator that can be
/// cloned to read it again (a slice's `iter().copied()`, or a bootloader map's adapter).
pub(crate) trait Map: Iterator<Item = MemoryRegion> + Clone {}

impl<I: Iterator<Item = MemoryRegion> + Clone> Map for I {}

/// The non-empty ranges of one kind in a memory map.
fn regions<M: Map>(map: &M, kind: RegionKind) -> impl Iterator<Item = MemoryRegion> + use<M> {
    map.clone().filter(move |r| r.kind == kind && r.len > 0)
}

/// The first frame at or after the frame `x` that no reserved range touches, or `None`
/// if reserved ranges cover everything from `x` to the top of the address space.
fn skip_reserved<M: Map>(map: &M, mut x: u64) -> Option<u64> {
    'rescan: loop {
        for r in regions(map, RegionKind::Reserved) {
            if r.start.align_down(FRAME_SIZE).as_u64() > x {
                continue;
            }
            // Reserved ranges round outward: the frame holding their last byte is out too.
            let end = PhysAddr::new(r.end()).checked_align_up(FRAME_SIZE)?.as_u64();
            if end > x {
                x = end;
                continue 'rescan;
            }
        }
        return Some(x);
    }
}

/// The end of the stretch from `x` that the union of the usable ranges covers without a
/// gap (`x` itself when no usable range covers `x`).
fn coverage_end<M: Map>(map: &M, x: u64) -> u64 {
    let mut covered = x;
    'rescan: loop {
        for r in regions(map, RegionKind::Usable) {
            if r.start.as_u64() <= covered && covered < r.end() {
                covered = r.end();
                continue 'rescan;
            }
        }
        return covered;
    }
}

/// The first maximal run `[start, end)` of usable frames at or after the frame `x`.
fn next_run<M: Map>(map: &M, mut x: u64) -> Option<(u64, u64)> {
    loop {
        x = skip_reserved(map, x)?;
        let covered = coverage_end(map, x);
        let full = PhysAddr::new(covered).align_down(FRAME_SIZE).as_u64();
        if full > x {
            // Cut the run at the first frame a later reserved range touches.
            let end = regions(map, RegionKind::Reserved)
                .map(|r| r.start.align_down(FRAME_SIZE).as_u64())
                .filter(|&first| first > x)
                .fold(full, u64::min);
            return Some((x, end));
        }
        // Frame `x` is not fully covered: go on at the frame after the coverage, or at
        // the next usable range if nothing covers `x`. Either way `x` grows.
        let next = if covered > x {
            covered
        } else {
            regions(map, RegionKind::Usable).map(|r| r.start.as_u64()).filter(|&s| s > x).min()?
        };
        x = PhysAddr::new(next).checked_align_up(FRAME_SIZE)?.as_u64();
    }
}

/// The maximal runs of usable frames of a memory map, in ascending order, as
/// frame-aligned byte ranges `[start, end)`.
///
/// A frame is usable if the union of the usable ranges covers all its bytes and no
/// reserved range touches any of them. The topmost frame of the address space is never
/// usable, since a range's end saturates at `u64::MAX`.
#[derive(Clone, Debug)]
pub(crate) struct UsableRuns<M> {
    map: M,
    next: Option<u64>,
}

impl<M: Map> UsableRuns<M> {
    /// The runs of `map`.
    pub(crate) fn new(map: M) -> Self {
        Self { map, next: Some(0) }
    }
}

impl<M: Map> Iterator for UsableRuns<M> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        let run = next_run(&self.map, self.next?);
        self.next = run.map(|(_, end)| end);
        run
    }
}

/// Summary of a memory map: `(runs, first usable byte, end of the last run, usable frames)`.
pub(crate) fn summarize<M: Map>(map: M) -> (usize, u64, u64, u64) {
    UsableRuns::new(map).fold((0, 0, 0, 0), |(runs, first, _, frames), (start, end)| {
        let first = if runs == 0 { start } else { first };
        let frames = frames.saturating_add((end - start) / FRAME_SIZE);
        (runs.saturating_add(1), first, end, frames)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const K4: u64 = FRAME_SIZE;

    fn runs(map: &[MemoryRegion]) -> Vec<(u64, u64)> {
        UsableRuns::new(map.iter().copied()).collect()
    }

    #[test]
    fn runs_round_usable_inward_and_reserved_outward() {
        let map = [MemoryRegion::usable(0x800, 5 * K4)]; // 0x800..0x5800
        assert_eq!(runs(&map), [(K4, 5 * K4)]);
        let map = [MemoryRegion::usable(0, 8 * K4), MemoryRegion::reserved(2 * K4 + 1, 1)];
        assert_eq!(runs(&map), [(0, 2 * K4), (3 * K4, 8 * K4)]);
        let map = [MemoryRegion::usable(0, 8 * K4), MemoryRegion::reserved(2 * K4 - 1, 2)];
        assert_eq!(runs(&map), [(0, K4), (3 * K4, 8 * K4)]);
    }

    #[test]
    fn runs_join_adjacent_and_overlapping_usable_ranges() {
        // Unaligned pieces that together cover frames 0..3 fully.
        let map = [
            MemoryRegion::usable(0x1800, 0x1800),
            MemoryRegion::usable(0, 0x1800),
            MemoryRegion::usable(0x100, 0x200),
        ];
        assert_eq!(runs(&map), [(0, 3 * K4)]);
        // A gap of one byte splits them.
        let map = [MemoryRegion::usable(0, 0x17ff), MemoryRegion::usable(0x1800, 0x1800)];
        assert_eq!(runs(&map), [(0, K4), (2 * K4, 3 * K4)]);
        // Empty ranges count for nothing.
        let map = [MemoryRegion::usable(0, 2 * K4), MemoryRegion::reserved(K4, 0)];
        assert_eq!(runs(&map), [(0, 2 * K4)]);
        assert_eq!(runs(&[]), []);
        assert_eq!(runs(&[MemoryRegion::usable(1, K4)]), []);
    }

    #[test]
    fn runs_near_the_top_of_the_address_space() {
        let top = u64::MAX - 4 * K4 + 1; // the last four frames
        let map = [MemoryRegion::usable(top, u64::MAX)];
        // The end saturates at u64::MAX, so the topmost frame is never whole.
        assert_eq!(runs(&map), [(top, top + 3 * K4)]);
        let map = [MemoryRegion::usable(top, u64::MAX), MemoryRegion::reserved(top + K4, u64::MAX)];
        assert_eq!(runs(&map), [(top, top + K4)]);
        let map = [MemoryRegion::usable(0, u64::MAX), MemoryRegion::reserved(K4, u64::MAX)];
        assert_eq!(runs(&map), [(0, K4)]);
    }
}

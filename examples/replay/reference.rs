//! Plain implementations of the policies whose counts have one right answer, a few lines
//! each, written from the definitions in the program's help and nothing else: what the
//! pager's replays and the stack curves must equal exactly.

use std::collections::VecDeque;

/// Faults and writes of one plain run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Counts {
    /// Touches of a page not resident.
    pub faults: u64,
    /// Dirty pages evicted.
    pub writes: u64,
}

/// A resident page: its number and whether it was written since it was loaded.
#[derive(Clone, Copy)]
struct Resident {
    page: u64,
    dirty: bool,
}

/// FIFO: evict the page loaded earliest.
pub fn fifo(refs: &[(u64, bool)], frames: usize) -> Counts {
    let mut queue: VecDeque<Resident> = VecDeque::new();
    let mut counts = Counts { faults: 0, writes: 0 };
    for &(page, write) in refs {
        if let Some(r) = queue.iter_mut().find(|r| r.page == page) {
            r.dirty |= write;
            continue;
        }
        counts.faults += 1;
        if queue.len() == frames {
            let out = queue.pop_front().expect("full");
            counts.writes += u64::from(out.dirty);
        }
        queue.push_back(Resident { page, dirty: write });
    }
    counts
}

/// LRU: evict the page referenced least recently.
pub fn lru(refs: &[(u64, bool)], frames: usize) -> Counts {
    // Most recently used last.
    let mut order: Vec<Resident> = Vec::new();
    let mut counts = Counts { faults: 0, writes: 0 };
    for &(page, write) in refs {
        let dirty = match order.iter().position(|r| r.page == page) {
            Some(at) => order.remove(at).dirty,
            None => {
                counts.faults += 1;
                if order.len() == frames {
                    counts.writes += u64::from(order.remove(0).dirty);
                }
                false
            }
        };
        order.push(Resident { page, dirty: dirty | write });
    }
    counts
}

/// OPT: evict the page whose next reference is furthest away (faults only: which of the
/// pages never used again goes first changes the writes, not the faults).
pub fn opt(refs: &[(u64, bool)], frames: usize) -> u64 {
    let mut resident: Vec<u64> = Vec::new();
    let mut faults = 0;
    for (t, &(page, _)) in refs.iter().enumerate() {
        if resident.contains(&page) {
            continue;
        }
        faults += 1;
        if resident.len() == frames {
            let next =
                |p: u64| refs[t + 1..].iter().position(|&(q, _)| q == p).unwrap_or(usize::MAX);
            let (at, _) = resident.iter().enumerate().max_by_key(|&(_, &p)| next(p)).expect("full");
            resident.remove(at);
        }
        resident.push(page);
    }
    faults
}

/// Clock: a ring of frames with one hand. A page loaded by a fault is referenced (the
/// retried access sets its bit). On a fault: a free frame if there is one; else clear
/// set bits, advancing, until a clear one; evict it, load the page in its frame, and
/// advance one past it.
pub fn clock(refs: &[(u64, bool)], frames: usize) -> Counts {
    // (page, referenced, dirty) per frame.
    let mut ring: Vec<(u64, bool, bool)> = Vec::new();
    let mut hand = 0;
    let mut counts = Counts { faults: 0, writes: 0 };
    for &(page, write) in refs {
        if let Some(slot) = ring.iter_mut().find(|s| s.0 == page) {
            slot.1 = true;
            slot.2 |= write;
            continue;
        }
        counts.faults += 1;
        if ring.len() < frames {
            ring.push((page, true, write));
            continue;
        }
        while ring[hand].1 {
            ring[hand].1 = false;
            hand = (hand + 1) % frames;
        }
        counts.writes += u64::from(ring[hand].2);
        ring[hand] = (page, true, write);
        hand = (hand + 1) % frames;
    }
    counts
}

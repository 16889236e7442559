//! Mattson's stack algorithm (Mattson, Gecsei, Slutz and Traiger, 1970): LRU and OPT are
//! stack algorithms — the pages resident with N frames are always among those resident
//! with N + 1 — so one pass over a page string gives each reference's stack distance, and
//! the faults for every number of frames at once: a reference faults with N frames
//! exactly when its distance is above N (first touches are infinitely far).

use crate::policy::NEVER;
use crate::sim::PageString;

/// Faults for every number of frames from 1 to `max`, from one pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Curve {
    /// `at_distance[d]`: references at stack distance exactly `d` (index 0 unused).
    at_distance: Vec<u64>,
    /// References further than `max` (first touches included).
    beyond: u64,
}

impl Curve {
    fn new(max: u32) -> Self {
        Self { at_distance: vec![0; max as usize + 1], beyond: 0 }
    }

    fn record(&mut self, distance: Option<usize>) {
        match distance.filter(|&d| d < self.at_distance.len()) {
            Some(d) => self.at_distance[d] += 1,
            None => self.beyond += 1,
        }
    }

    /// The faults with `frames` frames (`frames` from 1 to the curve's maximum), or `None`
    /// outside the curve.
    pub fn faults(&self, frames: u32) -> Option<u64> {
        let frames = frames as usize;
        if frames == 0 || frames >= self.at_distance.len() {
            return None;
        }
        Some(self.beyond + self.at_distance[frames + 1..].iter().sum::<u64>())
    }
}

/// LRU's curve up to `max` frames. The distance of a reference is the number of distinct
/// pages referenced since the last reference to its page (itself included): a Fenwick
/// tree over time marks each page's last reference, so each costs O(log n).
pub fn lru_curve(string: &PageString, max: u32) -> Curve {
    let mut curve = Curve::new(max);
    let mut marks = Fenwick::new(string.refs.len());
    let mut last = vec![usize::MAX; string.pages.len()];
    for (t, &r) in string.refs.iter().enumerate() {
        let id = (r >> 1) as usize;
        let previous = last[id];
        let distance = (previous != usize::MAX).then(|| {
            let since = marks.sum_to(t) - marks.sum_to(previous);
            marks.add(previous, -1);
            since as usize
        });
        curve.record(distance);
        marks.add(t, 1);
        last[id] = t;
    }
    curve
}

/// OPT's curve up to `max` frames: the stack ordered by priority (the sooner a page is
/// used again, the higher). On a reference the page goes on top, and the page carried
/// down from the top meets each page above the referenced one's old place: the one used
/// again later is carried on. Pages never move up otherwise, so a stack cut at `max`
/// gives every distance up to `max` exactly. `next` is [`PageString::next_uses`].
pub fn opt_curve(string: &PageString, next: &[u64], max: u32) -> Curve {
    let mut curve = Curve::new(max);
    // (page, its next use), top first, at most `max` deep.
    let mut stack: Vec<(u32, u64)> = Vec::with_capacity(max as usize + 1);
    for (t, &r) in string.refs.iter().enumerate() {
        let id = r >> 1;
        let found = stack.iter().position(|&(page, _)| page == id);
        curve.record(found.map(|at| at + 1));
        let entry = (id, next.get(t).copied().unwrap_or(NEVER));
        let Some(top) = stack.first_mut() else {
            stack.push(entry);
            continue;
        };
        let mut carried = std::mem::replace(top, entry);
        if found == Some(0) {
            continue;
        }
        // The pages between the top and the referenced page's old place (or the bottom).
        let depth = found.unwrap_or(stack.len());
        for slot in &mut stack[1..depth] {
            // The one used again sooner stays; the one used later is carried down.
            if slot.1 > carried.1 {
                std::mem::swap(slot, &mut carried);
            }
        }
        match found {
            Some(at) => stack[at] = carried,
            None if stack.len() < max as usize => stack.push(carried),
            // Deeper than any curve point: it leaves the cut stack.
            None => {}
        }
    }
    curve
}

/// A Fenwick (binary indexed) tree of counts over positions `0..n`.
struct Fenwick {
    tree: Vec<i32>,
}

impl Fenwick {
    fn new(n: usize) -> Self {
        Self { tree: vec![0; n + 1] }
    }

    fn add(&mut self, at: usize, delta: i32) {
        let mut i = at + 1;
        while i < self.tree.len() {
            self.tree[i] += delta;
            i += i & i.wrapping_neg();
        }
    }

    /// The sum over positions `0..at`.
    fn sum_to(&self, at: usize) -> i32 {
        let (mut i, mut sum) = (at, 0);
        while i > 0 {
            sum += self.tree[i];
            i -= i & i.wrapping_neg();
        }
        sum
    }
}

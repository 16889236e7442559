//! Table memory that keeps, for every frame written since a mark, what the frame held at
//! the mark: a refused operation must leave memory byte for byte as it was, and checking
//! that needs only the frames it wrote, not a copy of all RAM before every step.

use paging::pager::PAGE_BYTES;
use paging::{EntrySize, PhysAddr, TableMemory};

const FRAME: u64 = PAGE_BYTES as u64;
/// The 64-bit words of a frame.
const WORDS: usize = PAGE_BYTES / 8;
/// The words [`Journaled::changed_entries`] compares at once before looking at entries.
const BLOCK: usize = 8;

/// A frame as the 64-bit words memory holds.
type Words = [u64; WORDS];

/// `M` with a journal of the frames written since the last [`mark`](Self::mark). Every
/// write the engine makes goes through [`TableMemory`], so a frame missing from the
/// journal holds what it held at the mark: comparing the journal's frames is as strong as
/// comparing all of memory.
#[derive(Debug)]
pub struct Journaled<M> {
    inner: M,
    /// The frames written since the mark, in the order of their first write.
    frames: Vec<PhysAddr>,
    /// What they held at the mark, in the same order.
    then: Vec<Words>,
}

impl<M: TableMemory> Journaled<M> {
    /// `inner`, marked now.
    pub fn new(inner: M) -> Self {
        Self { inner, frames: Vec::new(), then: Vec::new() }
    }

    /// The memory under the journal.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// Forgets the journal: memory as it is now is what later writes compare with.
    pub fn mark(&mut self) {
        self.frames.clear();
        self.then.clear();
    }

    /// The frames written since the mark.
    pub fn written(&self) -> &[PhysAddr] {
        &self.frames
    }

    /// The first frame whose bytes differ from what it held at the mark, if any.
    pub fn changed_frame(&self) -> Option<PhysAddr> {
        let mut now = [0; WORDS];
        self.frames.iter().zip(&self.then).find_map(|(&frame, then)| {
            self.read_words(frame, &mut now);
            differ(&now, then).then_some(frame)
        })
    }

    /// The runs of entries of `size` bytes that differ from what they held at the mark:
    /// `(frame, first, last)` for entries `first..=last` of `frame`, frame by frame in the
    /// order of their first write, runs in index order.
    pub fn changed_runs(&self, size: EntrySize) -> Vec<(PhysAddr, usize, usize)> {
        let mut now = [0; WORDS];
        let mut runs: Vec<(PhysAddr, usize, usize)> = Vec::new();
        for (&frame, then) in self.frames.iter().zip(&self.then) {
            self.read_words(frame, &mut now);
            // Block by block: most of a written table is as it was (one comparison each).
            let blocks = now.chunks_exact(BLOCK).zip(then.chunks_exact(BLOCK)).enumerate();
            for (block, (now, then)) in blocks.filter(|(_, (now, then))| differ(now, then)) {
                let (mut changed, first) = changed_mask(now, then, size, block * BLOCK);
                // The set bits in order, each joining the run before it when it follows it.
                while changed != 0 {
                    let index = first + changed.trailing_zeros() as usize;
                    changed &= changed - 1;
                    match runs.last_mut() {
                        Some((f, _, last)) if *f == frame && *last + 1 == index => *last = index,
                        _ => runs.push((frame, index, index)),
                    }
                }
            }
        }
        runs
    }

    /// Records the frame holding `at` before its first write since the mark.
    fn save(&mut self, at: PhysAddr) {
        let frame = at.align_down(FRAME);
        // Writes come in runs to one table: the last frame saved is the likely one.
        if self.frames.last() == Some(&frame) || self.frames.contains(&frame) {
            return;
        }
        let mut then = [0; WORDS];
        self.read_words(frame, &mut then);
        self.frames.push(frame);
        self.then.push(then);
    }

    /// The words of `frame` as memory holds them now.
    fn read_words(&self, frame: PhysAddr, words: &mut Words) {
        self.inner.read_entries(frame, EntrySize::Eight, words);
    }

    /// Records every frame the bytes `[at, at + len)` touch.
    fn save_span(&mut self, at: PhysAddr, len: u64) {
        let (first, end) = (at.as_u64() / FRAME, (at.as_u64() + len.max(1) - 1) / FRAME);
        for frame in first..=end {
            self.save(PhysAddr::new(frame * FRAME));
        }
    }
}

/// Which entries of a block differ between `now` and `then` (one bit each, the first
/// entry in bit 0), and the index of the block's first entry (its first word is
/// `first_word` of the frame). The bits are worked out
/// with arithmetic, not a comparison per entry: each comparison is an instrumented branch
/// under the fuzzer.
fn changed_mask(now: &[u64], then: &[u64], size: EntrySize, first_word: usize) -> (u64, usize) {
    // 1 when `x` is not zero: its top bit, or the top bit of its negation.
    let nonzero = |x: u64| (x | x.wrapping_neg()) >> 63;
    let word = |i: usize| now[i] ^ then[i];
    match size {
        EntrySize::Eight => {
            ((0..BLOCK).fold(0, |mask, i| mask | nonzero(word(i)) << i), first_word)
        }
        // Two entries a word, the one at the lower address in the low half.
        EntrySize::Four => {
            let halves = |i: usize| nonzero(word(i) & 0xFFFF_FFFF) | nonzero(word(i) >> 32) << 1;
            ((0..BLOCK).fold(0, |mask, i| mask | halves(i) << (2 * i)), 2 * first_word)
        }
    }
}

/// Whether `a` and `b` (of one length) differ: the XOR of their words, ORed together,
/// with one test at the end. A slice comparison would call `memcmp`, which libFuzzer
/// intercepts and records on every call, a cost paid for every step.
fn differ(a: &[u64], b: &[u64]) -> bool {
    a.iter().zip(b).fold(0, |any, (a, b)| any | (a ^ b)) != 0
}

impl<M: TableMemory> TableMemory for Journaled<M> {
    fn read_entry(&self, at: PhysAddr, size: EntrySize) -> u64 {
        self.inner.read_entry(at, size)
    }

    fn read_entries(&self, at: PhysAddr, size: EntrySize, out: &mut [u64]) {
        self.inner.read_entries(at, size, out);
    }

    fn write_entry(&mut self, at: PhysAddr, size: EntrySize, value: u64) {
        self.save(at);
        self.inner.write_entry(at, size, value);
    }

    fn zero_frame(&mut self, frame: PhysAddr) {
        self.save(frame);
        self.inner.zero_frame(frame);
    }

    fn contains(&self, frame: PhysAddr) -> bool {
        self.inner.contains(frame)
    }

    // Lent as the inner memory lends them, so that the engine's fast paths run under the
    // fuzzer; a frame lent for writing is saved first, as any write's.
    fn table_words(&self, frame: PhysAddr) -> Option<&[u64; 512]> {
        self.inner.table_words(frame)
    }

    fn table_words_mut(&mut self, frame: PhysAddr) -> Option<&mut [u64; 512]> {
        self.inner.table_words(frame)?;
        self.save(frame);
        self.inner.table_words_mut(frame)
    }

    fn fill_entries(&mut self, at: PhysAddr, size: EntrySize, count: usize, first: u64, step: u64) {
        self.save_span(at, count as u64 * size.bytes());
        self.inner.fill_entries(at, size, count, first, step);
    }

    fn copy_frame(&mut self, to: PhysAddr, from: PhysAddr) {
        self.save(to);
        self.inner.copy_frame(to, from);
    }

    fn read_frame(&self, frame: PhysAddr, bytes: &mut [u8; PAGE_BYTES]) {
        self.inner.read_frame(frame, bytes);
    }

    fn write_frame(&mut self, frame: PhysAddr, bytes: &[u8; PAGE_BYTES]) {
        self.save(frame);
        self.inner.write_frame(frame, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paging::{ArenaMemory, FrameBuf};

    #[test]
    fn a_write_undone_is_no_change_and_a_write_kept_is_one() {
        let mut ram = vec![FrameBuf::ZERO; 4];
        let mut memory = Journaled::new(ArenaMemory::new(&mut ram, PhysAddr::ZERO));
        memory.write_entry(PhysAddr::new(0x1008), EntrySize::Eight, 7);
        memory.write_entry(PhysAddr::new(0x1008), EntrySize::Eight, 0);
        assert_eq!(
            (memory.written(), memory.changed_frame()),
            (&[PhysAddr::new(0x1000)][..], None)
        );
        memory.fill_entries(PhysAddr::new(0x2ff8), EntrySize::Eight, 2, 5, 1);
        assert_eq!(memory.written().len(), 3);
        assert_eq!(memory.changed_frame(), Some(PhysAddr::new(0x2000)));
        memory.mark();
        assert_eq!((memory.written().len(), memory.changed_frame()), (0, None));
        memory.zero_frame(PhysAddr::new(0x3000));
        assert_eq!(memory.changed_frame(), Some(PhysAddr::new(0x3000)), "the 6 at 0x3000 went");
        memory.write_entry(PhysAddr::new(0x3010), EntrySize::Four, 1);
        memory.write_entry(PhysAddr::new(0x3ffc), EntrySize::Four, 1);
        assert_eq!(memory.changed_frame(), Some(PhysAddr::new(0x3000)));
        let changes = memory.changed_runs(EntrySize::Four);
        let at = |index| (PhysAddr::new(0x3000), index, index);
        assert_eq!(changes, [at(0), at(4), at(1023)]);
        assert_eq!(memory.changed_runs(EntrySize::Eight), [at(0), at(2), at(511)]);
        memory.fill_entries(PhysAddr::new(0x3ff0), EntrySize::Eight, 2, 5, 1);
        let runs = memory.changed_runs(EntrySize::Eight);
        assert_eq!(runs, [at(0), at(2), (PhysAddr::new(0x3000), 510, 511)], "one run of two");
    }
}

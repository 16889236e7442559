//! Reading the tables: software translation, the walk of one address, and a visit of the
//! whole tree.

use crate::addr::{PhysAddr, VirtAddr};
use crate::error::TableError;
use crate::flags::PageFlags;
use crate::format::{Entry, EntrySize, PageTableFormat};
use crate::frame::FrameAllocator;
use crate::memory::TableMemory;

use super::PageTable;

/// How many entries [`PageTable::visit`] reads at once.
const VISIT_CHUNK: usize = 64;

/// A page the tables map: one leaf entry, as the table holds it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MappedPage {
    /// Its first virtual address.
    pub virt: VirtAddr,
    /// Its first physical address.
    pub frame: PhysAddr,
    /// Its size in bytes.
    pub size: u64,
    /// Its flags as the leaf holds them, accessed and dirty bits included.
    pub flags: PageFlags,
}

/// A successful translation of one address.
///
/// Not a [`MappedPage`]: a translation answers for one address rather than one leaf. It
/// carries the physical address that address maps to and the level of the leaf, and its
/// flags are what the whole walk grants: the leaf's, less the permissions an intermediate
/// entry withholds.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Translation {
    /// The first virtual address of the page.
    pub page: VirtAddr,
    /// The physical address the translated address maps to.
    pub phys: PhysAddr,
    /// The first physical address of the page.
    pub frame: PhysAddr,
    /// The page size in bytes.
    pub size: u64,
    /// The level of the leaf.
    pub level: u8,
    /// The leaf's flags, less the permissions an intermediate entry withholds.
    pub flags: PageFlags,
}

/// What the tables say about one address.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Lookup {
    /// Mapped.
    Mapped(Translation),
    /// Not present, with a software payload in the entry at `level`.
    Payload {
        /// The payload.
        payload: u64,
        /// The level of the entry.
        level: u8,
    },
    /// Not mapped.
    Unmapped,
}

/// One step of a walk: the entry read at one level.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WalkStep {
    /// The level of the entry.
    pub level: u8,
    /// The table holding it.
    pub table: PhysAddr,
    /// Its index in the table.
    pub index: usize,
    /// Its raw value.
    pub raw: u64,
    /// What it means.
    pub entry: Entry,
}

/// One thing found by [`PageTable::visit`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Visit {
    /// A table (the root first) whose entries are at `level`, covering from `virt`.
    Table {
        /// The level of its entries.
        level: u8,
        /// Its physical address.
        frame: PhysAddr,
        /// The first virtual address it covers.
        virt: VirtAddr,
    },
    /// A mapped page.
    Page(MappedPage),
    /// A non-present entry carrying a payload.
    Payload {
        /// The first virtual address it covers.
        virt: VirtAddr,
        /// The entry's level.
        level: u8,
        /// The payload.
        payload: u64,
    },
    /// An entry that is malformed or points outside table memory.
    Corrupt {
        /// The first virtual address it covers.
        virt: VirtAddr,
        /// The entry's level.
        level: u8,
        /// The raw entry.
        raw: u64,
    },
}

use crate::format::WALK_PERMISSIONS;

impl<F: PageTableFormat, M: TableMemory> PageTable<F, M> {
    /// Returns what the tables say about `addr`, as the MMU would find it.
    ///
    /// # Errors
    ///
    /// Returns [`TableError::NonCanonical`] (in a 32-bit format
    /// [`TableError::BeyondAddressSpace`]) and [`TableError::CorruptEntry`].
    pub fn lookup(&self, addr: VirtAddr) -> Result<Lookup, TableError> {
        if !F::is_canonical(addr) {
            return Err(TableError::unaddressable::<F>(addr));
        }
        // The fast path takes the walk as far as the entries grant everything; from there
        // on, each entry is decoded and may withhold permissions from what lies below.
        let (mut table, mut level) = self.descend(addr, 1, &mut [PhysAddr::ZERO; 6]);
        let mut granted = WALK_PERMISSIONS;
        loop {
            let raw = self.read(table, F::index(addr, level));
            match F::decode(raw, level) {
                Entry::Empty => return Ok(Lookup::Unmapped),
                Entry::Payload(payload) => return Ok(Lookup::Payload { payload, level }),
                Entry::Table { frame, flags } => {
                    // `follow` refuses a table below level 1, so `level` stays above zero.
                    self.follow(frame, addr, level, raw)?;
                    granted &= flags | !WALK_PERMISSIONS;
                    table = frame;
                    level -= 1;
                }
                Entry::Leaf { frame, flags } => {
                    let size = F::leaf_size(level);
                    let offset = addr.offset_in(size);
                    return Ok(Lookup::Mapped(Translation {
                        page: VirtAddr::new(addr.as_u64() - offset),
                        // A format decodes a leaf's frame aligned to its size, so adding
                        // an offset below the size stays below 2^64; wrapping keeps a format
                        // that breaks this from panicking the walk.
                        phys: frame.wrapping_add(offset),
                        frame,
                        size,
                        level,
                        flags: flags & (granted | !WALK_PERMISSIONS),
                    }));
                }
                Entry::Invalid(reason) => {
                    return Err(TableError::corrupt_entry(addr, level, raw, Some(reason)));
                }
            }
        }
    }

    /// Translates `addr` to the physical address it maps to.
    ///
    /// # Errors
    ///
    /// Returns [`TableError::NotMapped`] when no present page maps `addr`, as well as the
    /// errors of [`lookup`](Self::lookup).
    pub fn translate(&self, addr: VirtAddr) -> Result<Translation, TableError> {
        match self.lookup(addr)? {
            Lookup::Mapped(translation) => Ok(translation),
            _ => Err(TableError::NotMapped { addr }),
        }
    }

    /// Translates `addr` to the physical address it maps to, and nothing more: the x86_64
    /// crate's `translate_addr`. Cheaper than [`translate`](Self::translate) where the
    /// table memory lends whole tables ([`TableMemory::table_words`]): one check a table,
    /// and no flags decoded.
    ///
    /// # Errors
    ///
    /// As [`translate`](Self::translate).
    #[inline]
    pub fn translate_addr(&self, addr: VirtAddr) -> Result<PhysAddr, TableError> {
        match self.walk_fast(addr) {
            Some(phys) => Ok(phys),
            None => self.translate_addr_walking(addr),
        }
    }

    /// [`translate_addr`](Self::translate_addr) the ordinary way, out of line.
    #[cold]
    #[inline(never)]
    fn translate_addr_walking(&self, addr: VirtAddr) -> Result<PhysAddr, TableError> {
        self.translate(addr).map(|translation| translation.phys)
    }

    /// The fast path of [`translate_addr`](Self::translate_addr): tables lent whole,
    /// entries that grant everything on the way, a well-formed leaf at the end. `None`
    /// sends the walk the ordinary way, which names what it finds.
    #[inline]
    fn walk_fast(&self, addr: VirtAddr) -> Option<PhysAddr> {
        if F::ENTRY_SIZE != EntrySize::Eight || !F::is_canonical(addr) {
            return None;
        }
        let (mut table, mut level) = (self.root, F::LEVELS);
        loop {
            let raw = self.memory.table_words(table)?[F::index(addr, level) % 512];
            match F::next_table(raw, level) {
                Some(next) if level > 1 => {
                    table = next;
                    level -= 1;
                }
                _ => {
                    let frame = F::leaf_frame(raw, level)?;
                    // Aligned to the leaf's size: the offset stays inside the frame.
                    return Some(frame.wrapping_add(addr.offset_in(F::leaf_size(level))));
                }
            }
        }
    }

    /// Returns every entry the walk of `addr` reads, from the root down, for teaching and
    /// debugging. A non-canonical address gives an empty walk.
    pub fn walk(&self, addr: VirtAddr) -> heapless::Vec<WalkStep, 5> {
        let mut steps = heapless::Vec::new();
        if !F::is_canonical(addr) {
            return steps;
        }
        let mut table = self.root;
        for level in (1..=F::LEVELS).rev() {
            let index = F::index(addr, level);
            let raw = self.read(table, index);
            let entry = F::decode(raw, level);
            if steps.push(WalkStep { level, table, index, raw, entry }).is_err() {
                break;
            }
            match entry {
                Entry::Table { frame, .. } if self.follow(frame, addr, level, raw).is_ok() => {
                    table = frame;
                }
                _ => break,
            }
        }
        steps
    }

    /// Calls `visitor` for every table (parents before children), page and payload of the
    /// tree, in address order.
    pub fn visit(&self, visitor: impl FnMut(Visit)) {
        self.visit_span(0, linear_end::<F>(), visitor);
    }

    /// Calls `visitor` as [`visit`](Self::visit) does, for the part of the tree that maps
    /// `first..=last` only: every table (the root included) and every entry whose span
    /// meets the range, in address order. A range the format cannot address, or with
    /// `last` below `first`, meets nothing but the root.
    ///
    /// It costs what the range holds, not what the tree holds: a check after an edit
    /// looks at the edited part only.
    pub fn visit_range(&self, first: VirtAddr, last: VirtAddr, visitor: impl FnMut(Visit)) {
        let (first, last) = (linear::<F>(first), linear::<F>(last));
        match (first, last) {
            (Some(first), Some(last)) if first <= last => self.visit_span(first, last, visitor),
            _ => self.visit_span(1, 0, visitor),
        }
    }

    /// The visit of the linear addresses `first..=last` (none when `last < first`).
    fn visit_span(&self, first: u64, last: u64, mut visitor: impl FnMut(Visit)) {
        let top = F::LEVELS;
        visitor(Visit::Table { level: top, frame: self.root, virt: VirtAddr::ZERO });
        if last < first {
            return;
        }
        let mut path = [PhysAddr::ZERO; 8];
        path[usize::from(top & 7)] = self.root;
        let span = Span { first, last };
        self.visit_table(self.root, top, 0, span, &mut path, &mut visitor);
    }

    /// Visits one table; `path[n]` holds the table visited at level `n` above this one. An
    /// entry that points back to a table on the path (a recursive mapping, or a cycle) is
    /// reported as corrupt and not followed: the visit stays linear in the tree's size.
    fn visit_table(
        &self,
        table: PhysAddr,
        level: u8,
        base: u64,
        span: Span,
        path: &mut [PhysAddr; 8],
        visitor: &mut impl FnMut(Visit),
    ) {
        // Tables are mostly empty: a zero entry is skipped without decoding when zero
        // decodes as empty (it does in every x86 format), a zero chunk with one test.
        let zero_is_empty = matches!(F::decode(0, level), Entry::Empty);
        let (low, high) = span.indices::<F>(base, level);
        // A chunk of entries at a time: one read per chunk (a simulator's RAM finds the
        // frame once), and a buffer small enough for a kernel stack at every level.
        let mut chunk = [0u64; VISIT_CHUNK];
        for first in (low..=high).step_by(VISIT_CHUNK) {
            let chunk = &mut chunk[..VISIT_CHUNK.min(high + 1 - first)];
            // Past the top of the address space (a junk root): outside memory, all empty.
            let Some(at) = Self::entry_address(table, first) else { return };
            self.memory.read_entries(at, F::ENTRY_SIZE, chunk);
            // An OR rather than a test per entry: one branch for the whole chunk.
            if zero_is_empty && chunk.iter().fold(0, |any, &raw| any | raw) == 0 {
                continue;
            }
            for (index, &raw) in (first..).zip(chunk.iter()) {
                if !(zero_is_empty && raw == 0) {
                    self.visit_entry(raw, index, (level, base, span), path, visitor);
                }
            }
        }
    }

    /// Visits entry `index` (holding `raw`) of a table at `level` that maps from `base`,
    /// and the table it points to.
    fn visit_entry(
        &self,
        raw: u64,
        index: usize,
        (level, base, span): (u8, u64, Span),
        path: &mut [PhysAddr; 8],
        visitor: &mut impl FnMut(Visit),
    ) {
        let size = F::leaf_size(level);
        let virt = canonical::<F>(base.wrapping_add(index as u64 * size));
        match F::decode(raw, level) {
            Entry::Empty => {}
            Entry::Table { frame, .. }
                if level > 1
                    && self.memory.contains(frame)
                    && !path[usize::from(level & 7)..].contains(&frame) =>
            {
                visitor(Visit::Table { level: level - 1, frame, virt });
                path[usize::from((level - 1) & 7)] = frame;
                let child_base = base.wrapping_add(index as u64 * size);
                self.visit_table(frame, level - 1, child_base, span, path, visitor);
                path[usize::from((level - 1) & 7)] = PhysAddr::ZERO;
            }
            Entry::Leaf { frame, flags } => {
                visitor(Visit::Page(MappedPage { virt, frame, size, flags }));
            }
            Entry::Payload(payload) => visitor(Visit::Payload { virt, level, payload }),
            Entry::Table { .. } | Entry::Invalid(_) => {
                visitor(Visit::Corrupt { virt, level, raw });
            }
        }
    }

    /// Counts the tables of the tree, the root included.
    pub fn table_count(&self) -> usize {
        let mut count = 0;
        self.visit(|visit| count += usize::from(matches!(visit, Visit::Table { .. })));
        count
    }

    /// Gives every table of the tree, the root included, back to `alloc`, and returns the
    /// memory. The pages the tables mapped are the caller's: [`visit`](Self::visit) them
    /// first if they must be freed too.
    pub fn destroy<A: FrameAllocator + ?Sized>(self, alloc: &mut A) -> M {
        self.visit(|visit| {
            if let Visit::Table { frame, .. } = visit {
                // Each table was handed out by the allocator that built the tree.
                let _ = alloc.deallocate(frame);
            }
        });
        self.memory
    }
}

/// Sign-extends `addr` for formats whose upper half mirrors the lower.
/// Linear addresses `first..=last` (the canonical sign extension stripped), never empty.
#[derive(Clone, Copy)]
struct Span {
    first: u64,
    last: u64,
}

impl Span {
    /// The first and last index of the entries of a table at `level` mapping from `base`
    /// whose spans meet this one (the table's own span meets it: the caller checked).
    fn indices<F: PageTableFormat>(self, base: u64, level: u8) -> (usize, usize) {
        let shift = F::SHIFTS[usize::from(level)];
        let last_index = F::entries(level) - 1;
        let index = |addr: u64| -> usize {
            let offset = addr.saturating_sub(base) >> shift;
            usize::try_from(offset).map_or(last_index, |i| i.min(last_index))
        };
        (index(self.first), index(self.last))
    }
}

/// The last linear address of `F`.
fn linear_end<F: PageTableFormat>() -> u64 {
    if F::VIRT_BITS >= 64 { u64::MAX } else { (1 << F::VIRT_BITS) - 1 }
}

/// `addr` as a linear address of `F` (below `2^VIRT_BITS`), if the format can address it.
fn linear<F: PageTableFormat>(addr: VirtAddr) -> Option<u64> {
    let raw = addr.as_u64();
    let linear = raw & linear_end::<F>();
    (canonical::<F>(linear) == addr).then_some(linear)
}

fn canonical<F: PageTableFormat>(addr: u64) -> VirtAddr {
    let bits = F::VIRT_BITS;
    if F::SIGN_EXTENDED && bits < 64 {
        let unused = 64 - bits;
        VirtAddr::new((((addr << unused) as i64) >> unused) as u64)
    } else {
        VirtAddr::new(addr)
    }
}

//! The engine: one page table over any format and any table memory.
//!
//! Single pages of every size the format allows, and ranges, which take the largest pages
//! that alignment allows and split huge pages they cover in part. Every call checks before
//! it changes anything; a refused call leaves every entry and every frame as it was, even
//! when the frame allocator runs dry in the middle of a range.
//!
//! # Intermediate entries
//!
//! Entries that point to tables grant everything the format can grant (present, writable,
//! user, executable): the leaf alone decides what a page allows. Tables written by someone
//! else may restrict more; [`PageTable::lookup`] then reports the most restrictive
//! permissions along the walk, as the MMU applies them.
//!
//! # Empty tables
//!
//! Unmapping gives back tables that become empty, unless
//! [`keep_empty_tables`](PageTable::keep_empty_tables) says otherwise. The root stays, and
//! in a format whose root entries the CPU loads with the root
//! ([`PageTableFormat::ROOT_ENTRIES_LOADED_WITH_ROOT`]) so do the tables right under it:
//! [`PageTable::new`] creates them all, and [`PageTable::destroy`] gives them back.

use core::marker::PhantomData;
use core::ops::Range;

use crate::addr::{Frame, Page, PageSize, PhysAddr, VirtAddr};
use crate::error::{Occupant, TableError};
use crate::flags::PageFlags;
use crate::format::{Entry, EntrySize, PageTableFormat};
use crate::frame::FrameAllocator;
use crate::memory::TableMemory;
use crate::tlb::Flush;

mod check;
mod edits;
mod fresh;
mod inspect;
mod range;
mod reserve;
mod root_tables;

use root_tables::may_give_back;

pub use edits::{Holes, Rewrite, Unmapped};

/// What [`PageTable::set_entry`] puts in an entry.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NewEntry<S: PageSize> {
    /// A present page.
    Page {
        /// The frame it maps.
        frame: Frame<S>,
        /// Its flags.
        flags: PageFlags,
    },
    /// A non-present entry carrying a nonzero software payload.
    Payload(u64),
    /// Nothing.
    Empty,
}
pub use inspect::{Lookup, MappedPage, Translation, Visit, WalkStep};

use edits::{MapEdit, ProtectEdit, RewriteEdit, UnmapEdit};

/// A page table: a root frame, the memory its tables live in, and the format that gives
/// the entries their meaning.
///
/// The table borrows nothing but its memory, which may itself be a `&mut` borrow; frame
/// allocators are passed to each call that may take or give back frames.
#[derive(Debug)]
pub struct PageTable<F: PageTableFormat, M: TableMemory> {
    root: PhysAddr,
    memory: M,
    reclaim: bool,
    format: PhantomData<F>,
}

impl<F: PageTableFormat, M: TableMemory> PageTable<F, M> {
    /// Creates an empty page table with a root frame from `alloc`.
    ///
    /// In a format whose root entries the CPU loads with the root
    /// ([`PageTableFormat::ROOT_ENTRIES_LOADED_WITH_ROOT`], x86 PAE) every root entry gets
    /// its empty table now, so that the tree never changes under a loaded root: all of
    /// them or, on error, none (every frame taken goes back).
    ///
    /// # Errors
    ///
    /// Returns [`TableError::OutOfFrames`] if the allocator runs dry (`needed` counts the
    /// root and its tables), and [`TableError::FrameOutsideMemory`] if it hands out a
    /// frame `memory` cannot reach or the format cannot point to (the frame is given back).
    pub fn new<A: FrameAllocator + ?Sized>(memory: M, alloc: &mut A) -> Result<Self, TableError> {
        Self::new_sharing(memory, alloc, None, 0..0)
    }

    /// As [`new`](Self::new), with the root entries from index `first` on copied from the
    /// root table at `shared` (a kernel half every space shares) instead of getting tables
    /// of their own. Both roots must lie in `memory`, aligned to a root table's size.
    /// Root entries `linked` get their empty tables now as well (a kernel half that
    /// spaces created later will copy), all or none.
    pub(crate) fn new_sharing<A: FrameAllocator + ?Sized>(
        mut memory: M,
        alloc: &mut A,
        shared: Option<(PhysAddr, usize)>,
        linked: Range<usize>,
    ) -> Result<Self, TableError> {
        let own = shared.map_or(F::entries(F::LEVELS), |(_, first)| first);
        let linked = if F::ROOT_ENTRIES_LOADED_WITH_ROOT { 0..own } else { linked };
        let needed = 1 + linked.len();
        let root = alloc.allocate().map_err(|source| TableError::OutOfFrames {
            needed,
            got: 0,
            source,
        })?;
        if !reserve::usable::<F, M>(&memory, root) {
            let _ = alloc.deallocate(root);
            return Err(TableError::FrameOutsideMemory { frame: root });
        }
        memory.zero_frame(root);
        let mut table = Self::from_root(root, memory);
        if let Err(error) = table.link_root_tables(linked.clone(), alloc) {
            table.unlink_root_tables(linked, alloc);
            let _ = alloc.deallocate(root);
            return Err(error);
        }
        if let Some((kernel, first)) = shared {
            for index in first..F::entries(F::LEVELS) {
                let raw = table.read(kernel, index);
                table.write(root, index, raw);
            }
        }
        Ok(table)
    }

    /// Takes over the table whose root is at `root` (for example the tables a bootloader
    /// built). Malformed entries are reported as [`TableError::CorruptEntry`] when a call
    /// walks through them.
    pub fn from_root(root: PhysAddr, memory: M) -> Self {
        Self { root, memory, reclaim: true, format: PhantomData }
    }

    /// The physical address of the root table (what x86 loads into CR3).
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    /// The table memory.
    pub fn memory(&self) -> &M {
        &self.memory
    }

    /// The table memory, mutably.
    pub fn memory_mut(&mut self) -> &mut M {
        &mut self.memory
    }

    /// Gives up the table, returning its root and memory. The tables stay as they are.
    pub fn into_parts(self) -> (PhysAddr, M) {
        (self.root, self.memory)
    }

    /// Says whether unmapping keeps tables that become empty (by default it gives them back).
    pub fn keep_empty_tables(&mut self, keep: bool) {
        self.reclaim = !keep;
    }

    /// Maps `page` to `frame` with `flags`, creating the tables on the way.
    ///
    /// The new entry replaces a non-present one, which no TLB caches: the returned flush
    /// is empty, and exists so that every change hands back the same kind of value.
    ///
    /// # Errors
    ///
    /// Returns [`TableError::UnsupportedPageSize`] if the format has no pages of size `S`,
    /// [`TableError::NonCanonical`] (in a 32-bit format [`TableError::BeyondAddressSpace`]),
    /// [`TableError::OutOfRange`] for a frame beyond the physical-address width,
    /// [`TableError::UnsupportedFlags`],
    /// [`TableError::AlreadyMapped`] (with what is there), [`TableError::HugePageInTheWay`]
    /// when a larger page covers `page`, [`TableError::TableInTheWay`] when smaller pages'
    /// table occupies the entry, [`TableError::OutOfFrames`], and
    /// [`TableError::CorruptEntry`]. Nothing changes on error.
    pub fn map<S: PageSize, A: FrameAllocator + ?Sized>(
        &mut self,
        page: Page<S>,
        frame: Frame<S>,
        flags: PageFlags,
        alloc: &mut A,
    ) -> Result<Flush, TableError> {
        // A page mapped where nothing was needs no invalidation: the flush is built here,
        // empty, rather than moved out of the walk (it is a few hundred bytes).
        if self.map_fast(page, frame, flags) {
            return Ok(Flush::new());
        }
        self.map_walking(page, frame, flags, alloc)
    }

    /// [`map`](Self::map) the ordinary way: kept out of line, so that the fast path's
    /// caller does not pay for the walk's registers.
    #[cold]
    #[inline(never)]
    fn map_walking<S: PageSize, A: FrameAllocator + ?Sized>(
        &mut self,
        page: Page<S>,
        frame: Frame<S>,
        flags: PageFlags,
        alloc: &mut A,
    ) -> Result<Flush, TableError> {
        let new = NewEntry::Page { frame, flags };
        self.write_page_entry(page, new, false, alloc).map(|_| Flush::new())
    }

    /// [`map`](Self::map) when its arguments pass and [`fill_empty_fast`]
    /// (Self::fill_empty_fast) finds every table there: says whether it mapped the page.
    /// Anything else is left to the ordinary walk, which checks again and says why.
    #[inline]
    fn map_fast<S: PageSize>(&mut self, page: Page<S>, frame: Frame<S>, flags: PageFlags) -> bool {
        let Some(target) = F::level_for_size(S::SIZE) else { return false };
        let valid = check::page::<F, S>(page).is_ok()
            && check::frame::<F, S>(frame).is_ok()
            && check::flags::<F>(flags).is_ok();
        valid
            && self.fill_empty_fast(
                page.start(),
                target,
                F::encode_leaf(frame.start(), flags, target),
            )
    }

    /// Makes the entry for `page` hold `new`, whatever it held, creating tables on the way
    /// (and giving back tables that [`NewEntry::Empty`] leaves empty). Returns what was
    /// there. The kernel's tool for per-page state: a page hidden behind a payload (its
    /// frame kept for later), a frame swapped for a private copy, an entry cleared.
    ///
    /// # Errors
    ///
    /// As [`map`](Self::map), less [`TableError::AlreadyMapped`]. Nothing changes on error.
    pub fn set_entry<S: PageSize, A: FrameAllocator + ?Sized>(
        &mut self,
        page: Page<S>,
        new: NewEntry<S>,
        alloc: &mut A,
    ) -> Result<(Option<Occupant>, Flush), TableError> {
        let (occupant, invalidate) = self.write_page_entry(page, new, true, alloc)?;
        let mut flush = Flush::new();
        if let Some(global) = invalidate {
            flush.add(page.start(), global);
        }
        Ok((occupant, flush))
    }

    /// The walk of [`map`](Self::map) and [`set_entry`](Self::set_entry): makes the entry
    /// for `page` hold `new`, creating tables on the way. An entry that holds a page or a
    /// payload is replaced if `replace` says so, and refused otherwise. Returns what was
    /// there and, when a present page was replaced, whether its entry was global (the page
    /// must be invalidated).
    fn write_page_entry<S: PageSize, A: FrameAllocator + ?Sized>(
        &mut self,
        page: Page<S>,
        new: NewEntry<S>,
        replace: bool,
        alloc: &mut A,
    ) -> Result<(Option<Occupant>, Option<bool>), TableError> {
        let target = check::level_for::<F>(S::SIZE)?;
        let va = page.start();
        check::page::<F, S>(page)?;
        let raw_new = match new {
            NewEntry::Page { frame, flags } => {
                check::frame::<F, S>(frame)?;
                check::flags::<F>(flags)?;
                F::encode_leaf(frame.start(), flags, target)
            }
            NewEntry::Payload(payload) => F::encode_payload(payload)
                .ok_or(TableError::PayloadTooWide { payload, bits: F::PAYLOAD_BITS })?,
            NewEntry::Empty => 0,
        };

        let mut path = [PhysAddr::ZERO; 6];
        let (mut table, mut level) = self.descend(va, target, &mut path);
        loop {
            path[usize::from(level)] = table;
            let (raw, entry) = self.entry_at(table, F::index(va, level), level);
            let here = VirtAddr::new(va.as_u64() & !(F::leaf_size(level) - 1));
            match (entry, edits::occupant::<F>(entry, here, level)) {
                (Entry::Empty, _) if raw_new == 0 => return Ok((None, None)),
                (Entry::Empty, _) => break,
                (Entry::Table { frame: next, .. }, _) if level > target => {
                    self.follow(next, va, level, raw)?;
                    table = next;
                    level -= 1;
                }
                (Entry::Table { .. }, _) => {
                    return Err(TableError::TableInTheWay { addr: here, level });
                }
                (_, Some(occupant)) if level == target => {
                    if !replace {
                        return Err(TableError::AlreadyMapped { addr: here, occupant });
                    }
                    self.write(table, F::index(va, level), raw_new);
                    let invalidate = match occupant {
                        Occupant::Page(old) => Some(old.flags.contains(PageFlags::GLOBAL)),
                        Occupant::Payload(_) => None,
                    };
                    if raw_new == 0 {
                        self.reclaim_path(&path, target, va, alloc);
                    }
                    return Ok((Some(occupant), invalidate));
                }
                (Entry::Leaf { .. } | Entry::Payload(_), _) => {
                    let size = F::leaf_size(level);
                    return Err(TableError::HugePageInTheWay { addr: here, level, size });
                }
                (Entry::Invalid(reason), _) => {
                    return Err(TableError::corrupt_entry(va, level, raw, Some(reason)));
                }
            }
        }
        if level == target {
            // The common case: every table on the way is there.
            self.write(table, F::index(va, level), raw_new);
        } else {
            self.link_new_tables(table, level, target, va, raw_new, alloc)?;
        }
        Ok((None, None))
    }

    /// The common case of [`write_page_entry`](Self::write_page_entry), where the table
    /// memory lends whole tables: every table on the way there (and granting everything),
    /// the entry at `target` empty. Writes `raw_new` there and says so; `false` leaves
    /// everything to the ordinary walk, which names what it finds.
    #[inline]
    fn fill_empty_fast(&mut self, va: VirtAddr, target: u8, raw_new: u64) -> bool {
        if F::ENTRY_SIZE != EntrySize::Eight {
            return false;
        }
        let (mut table, mut level) = (self.root, F::LEVELS);
        while level > target {
            let Some(words) = self.memory.table_words(table) else { return false };
            let Some(next) = F::next_table(words[F::index(va, level) % 512], level) else {
                return false;
            };
            table = next;
            level -= 1;
        }
        let Some(words) = self.memory.table_words_mut(table) else { return false };
        let slot = &mut words[F::index(va, level) % 512];
        if *slot != 0 {
            return false;
        }
        *slot = raw_new;
        true
    }

    /// Puts `raw_new` in the entry for `va` at `target`, below the empty entry at `level`
    /// in `table`: takes the tables for every level in between first, then builds the
    /// chain bottom-up, so that the entry in the live table is written last.
    fn link_new_tables<A: FrameAllocator + ?Sized>(
        &mut self,
        table: PhysAddr,
        level: u8,
        target: u8,
        va: VirtAddr,
        raw_new: u64,
        alloc: &mut A,
    ) -> Result<(), TableError> {
        let needed = usize::from(level - target);
        let mut fresh = [PhysAddr::ZERO; 5];
        for taken in 0..needed {
            match alloc.allocate() {
                Ok(new) if reserve::usable::<F, M>(&self.memory, new) => fresh[taken] = new,
                outcome => {
                    for &frame in fresh[..taken].iter().chain(outcome.as_ref().ok()) {
                        let _ = alloc.deallocate(frame);
                    }
                    return Err(match outcome {
                        Ok(frame) => TableError::FrameOutsideMemory { frame },
                        Err(source) => TableError::OutOfFrames { needed, got: taken, source },
                    });
                }
            }
        }
        let mut entry = raw_new;
        for (depth, &new) in fresh[..needed].iter().enumerate().rev() {
            let new_level = level - 1 - depth as u8;
            self.memory.zero_frame(new);
            self.write(new, F::index(va, new_level), entry);
            entry = F::encode_table(new, new_level + 1);
        }
        self.write(table, F::index(va, level), entry);
        Ok(())
    }

    /// Unmaps `page`, returning the frame and flags it had, and gives back tables that
    /// become empty.
    ///
    /// # Errors
    ///
    /// Returns [`TableError::UnsupportedPageSize`], [`TableError::NonCanonical`] (in a
    /// 32-bit format [`TableError::BeyondAddressSpace`]), [`TableError::NotMapped`], [`TableError::HugePageInTheWay`] when a larger page
    /// covers `page`, [`TableError::TableInTheWay`] when smaller pages do, and
    /// [`TableError::CorruptEntry`]. Nothing changes on error.
    pub fn unmap<S: PageSize, A: FrameAllocator + ?Sized>(
        &mut self,
        page: Page<S>,
        alloc: &mut A,
    ) -> Result<(Frame<S>, PageFlags, Flush), TableError> {
        let (path, frame, flags) = self.find_leaf::<S>(page)?;
        let target = check::level_for::<F>(S::SIZE)?;
        let va = page.start();
        self.write(path[usize::from(target)], F::index(va, target), 0);
        let mut flush = Flush::new();
        flush.add(va, flags.contains(PageFlags::GLOBAL));
        self.reclaim_path(&path, target, va, alloc);
        Ok((Frame::containing(frame), flags, flush))
    }

    /// After the entry for `va` at `target` was cleared, gives back the tables on its path
    /// (`path[level]` is the table at each level) that are now empty, bottom-up; the root
    /// stays, and so do the tables under a root whose entries the CPU loads with it. The
    /// caller's flush of `va` covers the paging-structure caches too.
    fn reclaim_path<A: FrameAllocator + ?Sized>(
        &mut self,
        path: &[PhysAddr; 6],
        target: u8,
        va: VirtAddr,
        alloc: &mut A,
    ) {
        if !self.reclaim {
            return;
        }
        for level in (target..F::LEVELS).take_while(|&level| may_give_back::<F>(level)) {
            let table = path[usize::from(level)];
            if !self.is_empty_table(table, level, F::index(va, level)) {
                break;
            }
            // The table was part of this tree; its allocator takes it back. One that
            // cannot (a bump allocator) keeps it linked, empty, rather than losing it.
            if alloc.deallocate(table).is_err() {
                break;
            }
            self.write(path[usize::from(level) + 1], F::index(va, level + 1), 0);
        }
    }

    /// Gives `page` new flags, keeping the accessed and dirty bits the MMU recorded.
    ///
    /// # Errors
    ///
    /// As [`unmap`](Self::unmap), plus [`TableError::UnsupportedFlags`]. Nothing changes
    /// on error.
    pub fn protect<S: PageSize>(
        &mut self,
        page: Page<S>,
        flags: PageFlags,
    ) -> Result<Flush, TableError> {
        check::flags::<F>(flags)?;
        let (path, frame, old) = self.find_leaf::<S>(page)?;
        let target = check::level_for::<F>(S::SIZE)?;
        let new = flags | (old & PageFlags::MMU_STATE) | F::IMPLIED;
        let mut flush = Flush::new();
        if new != old {
            let raw = F::encode_leaf(frame, new, target);
            self.write(path[usize::from(target)], F::index(page.start(), target), raw);
            flush.add(page.start(), (old | new).contains(PageFlags::GLOBAL));
        }
        Ok(flush)
    }

    /// Maps `[virt, virt + len)` to `[phys, phys + len)` with `flags`, using the largest
    /// pages that the alignment of both addresses allows.
    ///
    /// An existing table where a huge page could go is used for smaller pages. See
    /// [`map_range_limited`](Self::map_range_limited) to cap the page size.
    ///
    /// # Errors
    ///
    /// Returns [`TableError::EmptyRange`], [`TableError::Unaligned`] and
    /// [`TableError::UnalignedSize`] (addresses and length must be multiples of the base
    /// page size), [`TableError::NonCanonical`] (in a 32-bit format
    /// [`TableError::BeyondAddressSpace`]), [`TableError::OutOfRange`], [`TableError::UnsupportedFlags`],
    /// [`TableError::AlreadyMapped`] or [`TableError::HugePageInTheWay`] for the first
    /// occupied page, [`TableError::OutOfFrames`] and [`TableError::CorruptEntry`].
    /// Nothing changes on error.
    pub fn map_range<A: FrameAllocator + ?Sized>(
        &mut self,
        virt: VirtAddr,
        phys: PhysAddr,
        len: u64,
        flags: PageFlags,
        alloc: &mut A,
    ) -> Result<Flush, TableError> {
        self.map_range_capped(virt, phys, len, flags, u64::MAX, alloc)
    }

    /// As [`map_range`](Self::map_range), with pages no larger than `S` (the largest
    /// leaf size of the format that is at most `S::SIZE`): a direct map with 2 MiB pages on
    /// a CPU without 1 GiB pages is `map_range_limited::<Size2MiB, _>`.
    ///
    /// # Errors
    ///
    /// As [`map_range`](Self::map_range).
    pub fn map_range_limited<S: PageSize, A: FrameAllocator + ?Sized>(
        &mut self,
        virt: VirtAddr,
        phys: PhysAddr,
        len: u64,
        flags: PageFlags,
        alloc: &mut A,
    ) -> Result<Flush, TableError> {
        self.map_range_capped(virt, phys, len, flags, S::SIZE, alloc)
    }

    /// [`map_range`](Self::map_range) with pages of at most `max_page_size` bytes.
    fn map_range_capped<A: FrameAllocator + ?Sized>(
        &mut self,
        virt: VirtAddr,
        phys: PhysAddr,
        len: u64,
        flags: PageFlags,
        max_page_size: u64,
        alloc: &mut A,
    ) -> Result<Flush, TableError> {
        let base = F::leaf_size(1);
        let span = check::virt_range::<F>(virt, len, base)?;
        check::phys_range::<F>(phys, len, base)?;
        check::flags::<F>(flags)?;
        let top_level =
            (1..=F::LEVELS).rev().find(|&level| F::leaf_size(level) <= max_page_size).unwrap_or(1);
        let mut edit = MapEdit {
            delta: phys.as_u64().wrapping_sub(virt.as_u64()),
            flags,
            top_level,
            format: PhantomData,
        };
        self.run_edit(&mut edit, span, alloc)
    }

    /// Unmaps every page in `[virt, virt + len)`, splitting huge pages the range covers in
    /// part, and hands each removed page or payload to `on_unmapped` (the caller owns the
    /// memory behind them). Gives back tables that become empty.
    ///
    /// # Errors
    ///
    /// Returns [`TableError::EmptyRange`], [`TableError::Unaligned`],
    /// [`TableError::UnalignedSize`], [`TableError::NonCanonical`] (in a 32-bit format
    /// [`TableError::BeyondAddressSpace`]), [`TableError::OutOfRange`],
    /// [`TableError::NotMapped`] for the first hole when `holes` is [`Holes::Refuse`], [`TableError::OutOfFrames`]
    /// when splitting needs tables, and [`TableError::CorruptEntry`]. Nothing changes and
    /// `on_unmapped` is not called on error.
    pub fn unmap_range<A: FrameAllocator + ?Sized>(
        &mut self,
        virt: VirtAddr,
        len: u64,
        holes: Holes,
        alloc: &mut A,
        on_unmapped: impl FnMut(Unmapped),
    ) -> Result<Flush, TableError> {
        let span = check::virt_range::<F>(virt, len, F::leaf_size(1))?;
        let mut edit = UnmapEdit { holes, reclaim: self.reclaim, on_unmapped, format: PhantomData };
        self.run_edit(&mut edit, span, alloc)
    }

    /// Gives every page in `[virt, virt + len)` new flags, keeping the accessed and dirty
    /// bits, and splitting huge pages the range covers in part.
    ///
    /// # Errors
    ///
    /// Returns [`TableError::EmptyRange`], [`TableError::Unaligned`],
    /// [`TableError::UnalignedSize`], [`TableError::NonCanonical`] (in a 32-bit format
    /// [`TableError::BeyondAddressSpace`]), [`TableError::OutOfRange`],
    /// [`TableError::UnsupportedFlags`], [`TableError::NotMapped`] for the first hole,
    /// [`TableError::OutOfFrames`] when splitting needs tables, and
    /// [`TableError::CorruptEntry`]. Nothing changes on error.
    pub fn protect_range<A: FrameAllocator + ?Sized>(
        &mut self,
        virt: VirtAddr,
        len: u64,
        flags: PageFlags,
        alloc: &mut A,
    ) -> Result<Flush, TableError> {
        let span = check::virt_range::<F>(virt, len, F::leaf_size(1))?;
        check::flags::<F>(flags)?;
        let mut edit = ProtectEdit { flags, format: PhantomData };
        self.run_edit(&mut edit, span, alloc)
    }

    /// Rewrites every page and payload in `[virt, virt + len)` as `decide` says, splitting
    /// huge pages the range covers in part; empty entries are passed over. `decide` gets
    /// each entry's first address, its size and what it holds, and is called twice per
    /// entry (a dry run, then the real run): it is a `Fn`, and must answer from its
    /// arguments alone, the same both times.
    /// `on_change` is told, once, what each rewritten entry held before. Tables left empty
    /// are given back.
    ///
    /// This is the tool of the layers above: hide pages behind payloads, bring them back
    /// with new permissions, or clear them and free their frames.
    ///
    /// # Errors
    ///
    /// Returns [`TableError::EmptyRange`], [`TableError::Unaligned`] (of the range, or of
    /// a frame `decide` gives), [`TableError::UnalignedSize`], [`TableError::NonCanonical`]
    /// (in a 32-bit format [`TableError::BeyondAddressSpace`]), [`TableError::OutOfRange`],
    /// [`TableError::UnsupportedFlags`], [`TableError::PayloadTooWide`],
    /// [`TableError::OutOfFrames`] when splitting needs tables, and
    /// [`TableError::CorruptEntry`]. Nothing changes, and `on_change` is not called, on
    /// error.
    pub fn rewrite_range<A: FrameAllocator + ?Sized>(
        &mut self,
        virt: VirtAddr,
        len: u64,
        alloc: &mut A,
        decide: impl Fn(VirtAddr, u64, Occupant) -> Rewrite,
        on_change: impl FnMut(VirtAddr, Occupant),
    ) -> Result<Flush, TableError> {
        let span = check::virt_range::<F>(virt, len, F::leaf_size(1))?;
        let mut edit =
            RewriteEdit { decide, on_change, reclaim: self.reclaim, format: PhantomData };
        self.run_edit(&mut edit, span, alloc)
    }

    /// Walks to the leaf of size `S` mapping `page`: returns the table at each level (by
    /// level number) and the leaf's frame and flags.
    fn find_leaf<S: PageSize>(
        &self,
        page: Page<S>,
    ) -> Result<([PhysAddr; 6], PhysAddr, PageFlags), TableError> {
        let target = check::level_for::<F>(S::SIZE)?;
        let va = page.start();
        if !F::is_canonical(va) {
            return Err(TableError::unaddressable::<F>(va));
        }
        let mut path = [PhysAddr::ZERO; 6];
        let (mut table, mut level) = self.descend(va, target, &mut path);
        loop {
            path[usize::from(level)] = table;
            let raw = self.read(table, F::index(va, level));
            let here = VirtAddr::new(va.as_u64() & !(F::leaf_size(level) - 1));
            match F::decode(raw, level) {
                Entry::Leaf { frame, flags } if level == target => return Ok((path, frame, flags)),
                Entry::Table { .. } if level == target => {
                    return Err(TableError::TableInTheWay { addr: here, level });
                }
                Entry::Table { frame, .. } => {
                    self.follow(frame, va, level, raw)?;
                    table = frame;
                    level -= 1;
                }
                Entry::Leaf { .. } => {
                    let size = F::leaf_size(level);
                    return Err(TableError::HugePageInTheWay { addr: here, level, size });
                }
                Entry::Empty | Entry::Payload(_) => return Err(TableError::NotMapped { addr: va }),
                Entry::Invalid(reason) => {
                    return Err(TableError::corrupt_entry(va, level, raw, Some(reason)));
                }
            }
        }
    }

    /// Follows table entries that grant everything (the format's one-compare fast path)
    /// from the root toward `target`, recording the table of each level in `path`; returns
    /// the table and level where the fast path stops, for the caller to look at closely.
    #[inline]
    fn descend(&self, va: VirtAddr, target: u8, path: &mut [PhysAddr; 6]) -> (PhysAddr, u8) {
        let (mut table, mut level) = (self.root, F::LEVELS);
        while level > target {
            path[usize::from(level)] = table;
            let raw = self.read(table, F::index(va, level));
            match F::next_table(raw, level).filter(|&next| self.memory.contains(next)) {
                Some(next) => {
                    table = next;
                    level -= 1;
                }
                None => break,
            }
        }
        (table, level)
    }

    /// Checks that a table entry at `level` (holding `raw`) leads somewhere walkable.
    fn follow(&self, next: PhysAddr, va: VirtAddr, level: u8, raw: u64) -> Result<(), TableError> {
        if level > 1 && self.memory.contains(next) {
            Ok(())
        } else {
            Err(TableError::corrupt_entry(va, level, raw, None))
        }
    }

    /// Returns whether the table at `table` (at `level`) is all zero, looking first at the
    /// entries after `cleared` (the one just cleared): tables emptied in order stop at once.
    fn is_empty_table(&self, table: PhysAddr, level: u8, cleared: usize) -> bool {
        let after = cleared + 1..F::entries(level);
        after.chain(0..cleared).all(|index| self.read(table, index) == 0)
    }

    /// Reads entry `index` of the table at `table` (at `level`): its raw value and meaning.
    #[inline]
    fn entry_at(&self, table: PhysAddr, index: usize, level: u8) -> (u64, Entry) {
        let raw = self.read(table, index);
        (raw, if raw == 0 { Entry::Empty } else { F::decode(raw, level) })
    }

    /// The address of entry `index` of the table at `table`, `None` past the top of the
    /// address space. Tables the engine allocates are aligned and never get there, but a
    /// root given to [`from_root`](Self::from_root) may be any address: an entry beyond
    /// 2^64 is outside every memory, and reads as zero and drops writes as such entries do.
    #[inline]
    pub(crate) fn entry_address(table: PhysAddr, index: usize) -> Option<PhysAddr> {
        table.checked_add(index as u64 * F::ENTRY_SIZE.bytes())
    }

    /// Reads entry `index` of the table at `table`.
    #[inline]
    fn read(&self, table: PhysAddr, index: usize) -> u64 {
        Self::entry_address(table, index).map_or(0, |at| self.memory.read_entry(at, F::ENTRY_SIZE))
    }

    /// Writes entry `index` of the table at `table`.
    #[inline]
    fn write(&mut self, table: PhysAddr, index: usize, raw: u64) {
        if let Some(at) = Self::entry_address(table, index) {
            self.memory.write_entry(at, F::ENTRY_SIZE, raw);
        }
    }
}

//! A simulated TLB: a set-associative cache of translations that really caches.
//!
//! A translation stays cached until it is evicted or invalidated, so a mapping that
//! changes in RAM without the matching invalidation keeps giving the old translation,
//! as on hardware. The machine wraps a [`SimTlb`] and implements
//! [`paging::Tlb`] on top of it.
//!
//! # Set index with mixed page sizes
//!
//! An entry of size `s` lives in the set `(page >> log2(s)) % sets`: the set is picked
//! from the page number counted in pages of the entry's own size (for 4 KiB pages, the
//! 4 KiB page number). A lookup does not know the size of the page that holds an address,
//! so it probes one set per size of [`PAGE_SIZES`] (up to four sets). Entries of other
//! sizes are not cached at all: [`SimTlb::insert`] ignores them.

use core::fmt;

use paging::{Asid, PageFlags, PhysAddr, VirtAddr};

/// The page sizes the TLB caches and probes: 4 KiB, 2 MiB, 4 MiB and 1 GiB.
pub const PAGE_SIZES: [u64; 4] = [1 << 12, 1 << 21, 1 << 22, 1 << 30];

/// The most entries a [`TlbConfig`] may describe (`sets × ways`), so that building a
/// [`SimTlb`] never attempts an absurd allocation.
pub const MAX_ENTRIES: usize = 1 << 20;

/// Why a [`TlbConfig`] was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TlbConfigError {
    /// The number of sets is zero.
    ZeroSets,
    /// The number of ways is zero.
    ZeroWays,
    /// The number of sets is not a power of two.
    SetsNotPowerOfTwo(usize),
    /// `sets × ways` exceeds [`MAX_ENTRIES`].
    TooLarge,
}

impl fmt::Display for TlbConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroSets => f.write_str("a TLB needs at least one set"),
            Self::ZeroWays => f.write_str("a TLB needs at least one way"),
            Self::SetsNotPowerOfTwo(sets) => {
                write!(f, "the number of TLB sets ({sets}) is not a power of two")
            }
            Self::TooLarge => write!(f, "the TLB has more than {MAX_ENTRIES} entries"),
        }
    }
}

impl std::error::Error for TlbConfigError {}

/// The geometry of a [`SimTlb`]: `sets` sets of `ways` entries each.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TlbConfig {
    /// The number of sets, a power of two (at least 1).
    pub sets: usize,
    /// The number of entries per set (at least 1).
    pub ways: usize,
}

impl TlbConfig {
    /// Returns a validated geometry.
    ///
    /// # Errors
    ///
    /// Returns [`TlbConfigError`] if `sets` or `ways` is zero, `sets` is not a power of
    /// two, or `sets × ways` exceeds [`MAX_ENTRIES`].
    pub const fn new(sets: usize, ways: usize) -> Result<Self, TlbConfigError> {
        if sets == 0 {
            return Err(TlbConfigError::ZeroSets);
        }
        if ways == 0 {
            return Err(TlbConfigError::ZeroWays);
        }
        if !sets.is_power_of_two() {
            return Err(TlbConfigError::SetsNotPowerOfTwo(sets));
        }
        match sets.checked_mul(ways) {
            Some(entries) if entries <= MAX_ENTRIES => {}
            _ => return Err(TlbConfigError::TooLarge),
        }
        Ok(Self { sets, ways })
    }

    /// The number of entries the TLB holds at most.
    #[must_use]
    pub const fn capacity(&self) -> usize {
        self.sets.saturating_mul(self.ways)
    }
}

impl Default for TlbConfig {
    /// 16 sets × 4 ways (64 entries).
    fn default() -> Self {
        Self { sets: 16, ways: 4 }
    }
}

/// One cached translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbEntry {
    /// The address space the translation belongs to.
    pub asid: Asid,
    /// The first address of the page.
    pub page: VirtAddr,
    /// The page size in bytes, one of [`PAGE_SIZES`].
    pub size: u64,
    /// The first physical address of the frame.
    pub frame: PhysAddr,
    /// The effective permissions found by the walk.
    pub flags: PageFlags,
    /// Whether the translation hits in every address space.
    pub global: bool,
    /// The physical address of the leaf entry in RAM.
    pub leaf_at: PhysAddr,
    /// The raw leaf entry as it was when cached.
    pub leaf_raw: u64,
}

impl TlbEntry {
    /// Returns whether the page contains `addr`.
    #[must_use]
    pub fn contains(&self, addr: VirtAddr) -> bool {
        addr.align_down(self.size) == self.page
    }

    /// Returns the physical address that `addr` (inside the page) translates to.
    #[must_use]
    pub fn translate(&self, addr: VirtAddr) -> PhysAddr {
        // A cached frame is aligned to the page size, so the offset cannot carry it past
        // 2^64; a hand-built entry whose frame is not wraps rather than panics.
        self.frame.wrapping_add(addr.offset_in(self.size))
    }
}

/// Counters of a [`SimTlb`]'s activity.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct TlbStats {
    /// Lookups that found a translation.
    pub hits: u64,
    /// Lookups that found none.
    pub misses: u64,
    /// Valid entries dropped to make room for an insertion.
    pub evictions: u64,
    /// Entries dropped by the `invalidate_*` operations (one per entry dropped).
    pub invalidations: u64,
}

/// One way of a set: an entry (if any) and when it was last used.
#[derive(Clone, Copy, Debug)]
struct Slot {
    entry: Option<TlbEntry>,
    last_used: u64,
}

/// A set-associative TLB with least-recently-used replacement within each set.
#[derive(Clone, Debug)]
pub struct SimTlb {
    config: TlbConfig,
    /// `sets × ways` slots, set by set.
    slots: Vec<Slot>,
    /// A clock that ticks on every use, for LRU.
    clock: u64,
    len: usize,
    stats: TlbStats,
}

impl Default for SimTlb {
    fn default() -> Self {
        Self::new(TlbConfig::default())
    }
}

impl SimTlb {
    /// Returns an empty TLB of the given geometry.
    #[must_use]
    pub fn new(config: TlbConfig) -> Self {
        let config = TlbConfig::new(config.sets, config.ways).unwrap_or_default();
        let slots = vec![Slot { entry: None, last_used: 0 }; config.capacity()];
        Self { config, slots, clock: 0, len: 0, stats: TlbStats::default() }
    }

    /// The geometry of the TLB.
    #[must_use]
    pub const fn config(&self) -> TlbConfig {
        self.config
    }

    /// The activity counters.
    #[must_use]
    pub const fn stats(&self) -> TlbStats {
        self.stats
    }

    /// Sets the activity counters back to zero.
    pub fn reset_stats(&mut self) {
        self.stats = TlbStats::default();
    }

    /// The number of cached translations.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Returns whether no translation is cached.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every cached translation, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = &TlbEntry> + '_ {
        self.slots.iter().filter_map(|slot| slot.entry.as_ref())
    }

    /// The range of slot indices of the set that holds the page of `size` bytes
    /// containing `addr` (`size` a power of two).
    fn set_range(&self, addr: VirtAddr, size: u64) -> core::ops::Range<usize> {
        let number = addr.as_u64() >> size.trailing_zeros();
        // `sets` is a power of two, so the mask keeps the value below `sets`; the
        // truncation of `number` to usize keeps its low bits, which is all the mask uses.
        let set = (number as usize) & (self.config.sets - 1);
        let start = set * self.config.ways;
        start..start + self.config.ways
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Looks up the translation of `addr` in address space `asid`.
    ///
    /// A hit is an entry whose page contains `addr` and whose ASID is `asid` or which is
    /// global; it becomes the most recently used of its set.
    pub fn lookup(&mut self, asid: Asid, addr: VirtAddr) -> Option<TlbEntry> {
        for size in PAGE_SIZES {
            let range = self.set_range(addr, size);
            let page = addr.align_down(size);
            // One bounds check a set, then a plain scan of its ways.
            let Some(set) = self.slots.get_mut(range) else { continue };
            let found = set.iter_mut().find(|slot| {
                slot.entry.as_ref().is_some_and(|e| {
                    e.page == page && e.size == size && (e.asid == asid || e.global)
                })
            });
            if let Some(slot) = found {
                self.clock += 1;
                slot.last_used = self.clock;
                self.stats.hits += 1;
                return slot.entry;
            }
        }
        self.stats.misses += 1;
        None
    }

    /// Caches a translation.
    ///
    /// The page is aligned down to its size first (and the frame likewise). An entry of a
    /// size not in [`PAGE_SIZES`] is ignored. An entry for the same ASID, page and size
    /// is replaced; otherwise the entry fills an empty way of its set, or evicts the
    /// least recently used one.
    pub fn insert(&mut self, mut entry: TlbEntry) {
        if !PAGE_SIZES.contains(&entry.size) {
            return;
        }
        entry.page = entry.page.align_down(entry.size);
        entry.frame = entry.frame.align_down(entry.size);
        let range = self.set_range(entry.page, entry.size);
        let now = self.tick();
        let same = range.clone().find(|&i| {
            self.slots[i].entry.is_some_and(|e| {
                e.asid == entry.asid && e.page == entry.page && e.size == entry.size
            })
        });
        let empty = || range.clone().find(|&i| self.slots[i].entry.is_none());
        let index = match same.or_else(empty) {
            Some(i) => i,
            None => {
                // The set is full: evict the least recently used way.
                let victim =
                    range.clone().min_by_key(|&i| self.slots[i].last_used).unwrap_or(range.start);
                self.stats.evictions += 1;
                self.len -= 1;
                self.slots[victim].entry = None;
                victim
            }
        };
        let slot = &mut self.slots[index];
        if slot.entry.is_none() {
            self.len += 1;
        }
        *slot = Slot { entry: Some(entry), last_used: now };
    }

    /// Drops every entry for which `drop` holds, counting them as invalidations.
    fn drop_where(&mut self, drop: impl Fn(&TlbEntry) -> bool) {
        for slot in &mut self.slots {
            if slot.entry.as_ref().is_some_and(&drop) {
                slot.entry = None;
                self.len -= 1;
                self.stats.invalidations += 1;
            }
        }
    }

    /// Drops every entry of `asid` whose page contains `addr`, global entries containing
    /// `addr` included (like x86 `INVLPG`).
    pub fn invalidate_page(&mut self, asid: Asid, addr: VirtAddr) {
        // An entry lives in the set its page and size choose: three sets hold every entry
        // that can contain `addr`, one per page size.
        for size in PAGE_SIZES {
            let range = self.set_range(addr, size);
            let Some(set) = self.slots.get_mut(range) else { continue };
            for slot in set {
                let hit = slot.entry.as_ref().is_some_and(|e| {
                    e.size == size && (e.asid == asid || e.global) && e.contains(addr)
                });
                if hit {
                    slot.entry = None;
                    self.len -= 1;
                    self.stats.invalidations += 1;
                }
            }
        }
    }

    /// Drops every non-global entry of `asid`.
    pub fn invalidate_asid(&mut self, asid: Asid) {
        self.drop_where(|e| e.asid == asid && !e.global);
    }

    /// Drops every entry, global ones included.
    pub fn invalidate_all(&mut self) {
        self.drop_where(|_| true);
    }

    /// Drops every non-global entry of every address space.
    pub fn invalidate_non_global(&mut self) {
        self.drop_where(|e| !e.global);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB4: u64 = 1 << 12;
    const MIB2: u64 = 1 << 21;

    fn entry(asid: u16, page: u64, size: u64, global: bool) -> TlbEntry {
        TlbEntry {
            asid: Asid(asid),
            page: VirtAddr::new(page),
            size,
            frame: PhysAddr::new(0x4000_0000 + page % (1 << 30)),
            flags: PageFlags::READABLE,
            global,
            leaf_at: PhysAddr::new(0x1000),
            leaf_raw: 0x1,
        }
    }

    fn tlb(sets: usize, ways: usize) -> SimTlb {
        SimTlb::new(TlbConfig::new(sets, ways).unwrap())
    }

    #[test]
    fn hit_after_insert_and_miss_in_other_asid() {
        let mut t = SimTlb::default();
        assert!(t.lookup(Asid(1), VirtAddr::new(0x5123)).is_none());
        let e = entry(1, 0x5000, KIB4, false);
        t.insert(e);
        assert_eq!(t.len(), 1);
        let hit = t.lookup(Asid(1), VirtAddr::new(0x5123)).unwrap();
        assert_eq!(hit, e);
        assert_eq!(hit.translate(VirtAddr::new(0x5123)), e.frame + 0x123);
        assert!(t.lookup(Asid(2), VirtAddr::new(0x5123)).is_none());
        assert!(t.lookup(Asid(1), VirtAddr::new(0x6000)).is_none());
    }

    #[test]
    fn really_caches_stale_translations() {
        let mut t = SimTlb::default();
        let e = entry(1, 0x5000, KIB4, false);
        t.insert(e);
        // Nothing here knows that RAM changed: the old translation stays.
        assert_eq!(t.lookup(Asid(1), VirtAddr::new(0x5000)), Some(e));
    }

    #[test]
    fn global_entries() {
        let mut t = SimTlb::default();
        t.insert(entry(1, 0x7000, KIB4, true));
        t.insert(entry(1, 0x8000, KIB4, false));
        assert!(t.lookup(Asid(9), VirtAddr::new(0x7abc)).is_some());
        t.invalidate_asid(Asid(1));
        assert!(t.lookup(Asid(9), VirtAddr::new(0x7000)).is_some());
        assert!(t.lookup(Asid(1), VirtAddr::new(0x8000)).is_none());
        t.invalidate_non_global();
        assert!(t.lookup(Asid(1), VirtAddr::new(0x7000)).is_some());
        // INVLPG from another space drops the global entry too.
        t.invalidate_page(Asid(3), VirtAddr::new(0x7fff));
        assert!(t.is_empty());
        t.insert(entry(1, 0x7000, KIB4, true));
        t.invalidate_all();
        assert!(t.is_empty());
        assert!(t.lookup(Asid(1), VirtAddr::new(0x7000)).is_none());
    }

    #[test]
    fn invalidate_page_keeps_other_spaces() {
        let mut t = SimTlb::default();
        t.insert(entry(1, 0x5000, KIB4, false));
        t.insert(entry(2, 0x5000, KIB4, false));
        t.invalidate_page(Asid(1), VirtAddr::new(0x5000));
        assert!(t.lookup(Asid(1), VirtAddr::new(0x5000)).is_none());
        assert!(t.lookup(Asid(2), VirtAddr::new(0x5000)).is_some());
    }

    #[test]
    fn lru_eviction_with_two_ways() {
        let mut t = tlb(4, 2);
        // 4 sets: 4 KiB pages 0, 4 and 8 share set 0.
        let (a, b, c) = (0, 4 * KIB4, 8 * KIB4);
        t.insert(entry(1, a, KIB4, false));
        t.insert(entry(1, b, KIB4, false));
        assert!(t.lookup(Asid(1), VirtAddr::new(a)).is_some());
        t.insert(entry(1, c, KIB4, false));
        assert_eq!(t.len(), 2);
        assert_eq!(t.stats().evictions, 1);
        assert!(t.lookup(Asid(1), VirtAddr::new(a)).is_some());
        assert!(t.lookup(Asid(1), VirtAddr::new(b)).is_none());
        assert!(t.lookup(Asid(1), VirtAddr::new(c)).is_some());
    }

    #[test]
    fn huge_pages_hit_anywhere_inside() {
        let mut t = tlb(4, 2);
        t.insert(entry(1, 0x4000_0000, 1 << 30, false));
        t.insert(entry(1, 0x20_0000, MIB2, false));
        t.insert(entry(1, 0x80_0000, 1 << 22, false));
        for addr in [0x20_0000, 0x20_0fff, 0x2f_ffff, 0x3f_ffff] {
            let hit = t.lookup(Asid(1), VirtAddr::new(addr)).unwrap();
            assert_eq!(hit.size, MIB2);
            assert_eq!(hit.translate(VirtAddr::new(addr)), hit.frame + (addr - 0x20_0000));
        }
        assert_eq!(t.lookup(Asid(1), VirtAddr::new(0x7fff_ffff)).unwrap().size, 1 << 30);
        assert_eq!(t.lookup(Asid(1), VirtAddr::new(0xbf_ffff)).unwrap().size, 1 << 22);
        assert!(t.lookup(Asid(1), VirtAddr::new(0x40_0000)).is_none());
        // A 4 KiB entry and a 2 MiB entry coexist; each hits its own addresses.
        t.insert(entry(1, 0x1000, KIB4, false));
        assert_eq!(t.lookup(Asid(1), VirtAddr::new(0x1008)).unwrap().size, KIB4);
    }

    #[test]
    fn invalidate_page_inside_huge_page() {
        let mut t = SimTlb::default();
        t.insert(entry(1, 0x20_0000, MIB2, false));
        t.insert(entry(1, 0x40_0000, MIB2, false));
        t.invalidate_page(Asid(1), VirtAddr::new(0x31_2345));
        assert!(t.lookup(Asid(1), VirtAddr::new(0x20_0000)).is_none());
        assert!(t.lookup(Asid(1), VirtAddr::new(0x40_0000)).is_some());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn reinsert_replaces() {
        let mut t = tlb(1, 4);
        t.insert(entry(1, 0x5000, KIB4, false));
        let mut newer = entry(1, 0x5000, KIB4, false);
        newer.frame = PhysAddr::new(0x9_9000);
        newer.leaf_raw = 0x9_9003;
        t.insert(newer);
        assert_eq!(t.len(), 1);
        assert_eq!(t.stats().evictions, 0);
        assert_eq!(t.lookup(Asid(1), VirtAddr::new(0x5000)), Some(newer));
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let mut t = tlb(1, 1);
        // Unaligned page: aligned down.
        t.insert(entry(1, 0x20_1234, MIB2, false));
        assert_eq!(t.entries().next().unwrap().page, VirtAddr::new(0x20_0000));
        // Unsupported sizes are not cached.
        t.insert(entry(1, 0x1_0000, 1 << 16, false));
        t.insert(entry(1, 0, 0, false));
        t.insert(entry(1, 0, 3, false));
        assert_eq!(t.len(), 1);
        // Extreme addresses.
        t.insert(entry(1, u64::MAX, KIB4, true));
        assert!(t.lookup(Asid(u16::MAX), VirtAddr::new(u64::MAX)).is_some());
        t.invalidate_page(Asid(0), VirtAddr::new(u64::MAX));
        assert!(t.is_empty());
        // An invalid config given directly falls back to the default.
        let t = SimTlb::new(TlbConfig { sets: 3, ways: 0 });
        assert_eq!(t.config(), TlbConfig::default());
    }

    #[test]
    fn stats_count() {
        let mut t = tlb(1, 1);
        t.lookup(Asid(1), VirtAddr::new(0));
        t.insert(entry(1, 0, KIB4, false));
        t.lookup(Asid(1), VirtAddr::new(0));
        t.lookup(Asid(1), VirtAddr::new(0x10));
        t.insert(entry(1, KIB4, KIB4, false));
        t.insert(entry(2, KIB4, KIB4, false));
        t.invalidate_all();
        t.invalidate_all();
        assert_eq!(t.stats(), TlbStats { hits: 2, misses: 1, evictions: 2, invalidations: 1 });
        assert_eq!(t.entries().count(), 0);
        t.reset_stats();
        assert_eq!(t.stats(), TlbStats::default());
    }

    #[test]
    fn config_validation() {
        assert_eq!(TlbConfig::default(), TlbConfig { sets: 16, ways: 4 });
        assert_eq!(TlbConfig::new(8, 2), Ok(TlbConfig { sets: 8, ways: 2 }));
        assert_eq!(TlbConfig::new(0, 2), Err(TlbConfigError::ZeroSets));
        assert_eq!(TlbConfig::new(4, 0), Err(TlbConfigError::ZeroWays));
        assert_eq!(TlbConfig::new(6, 2), Err(TlbConfigError::SetsNotPowerOfTwo(6)));
        assert_eq!(TlbConfig::new(1 << 20, usize::MAX), Err(TlbConfigError::TooLarge));
        assert_eq!(TlbConfig::new(1 << 20, 2), Err(TlbConfigError::TooLarge));
        assert!(TlbConfig::new(1 << 20, 1).is_ok());
        let err: Box<dyn std::error::Error> = Box::new(TlbConfigError::SetsNotPowerOfTwo(6));
        assert_eq!(err.to_string(), "the number of TLB sets (6) is not a power of two");
        assert!(!TlbConfigError::ZeroWays.to_string().is_empty());
    }
}

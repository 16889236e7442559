//! TLB maintenance: the trait a machine implements, and the flushes the engine returns.

use core::fmt;

use crate::addr::{PhysAddr, VirtAddr};

/// An address-space identifier (x86 PCID, Arm ASID): tags TLB entries so that switching
/// spaces need not flush them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Asid(pub u16);

/// TLB maintenance operations of a machine.
pub trait Tlb {
    /// Drops any cached translation of the page containing `addr` in the active address
    /// space, a global one included.
    fn invalidate_page(&mut self, addr: VirtAddr);
    /// Drops every non-global cached translation of the active address space.
    fn invalidate_current(&mut self);
    /// Drops every non-global cached translation tagged `asid`.
    fn invalidate_space(&mut self, asid: Asid);
    /// Drops any cached translation of the page containing `addr` in the address space
    /// tagged `asid`, active or not (x86 `INVPCID` type 0). The pager calls it when it
    /// takes a page away from a space that may not be running. The default drops the
    /// whole space's entries, which is correct and coarser.
    fn invalidate_page_in(&mut self, asid: Asid, addr: VirtAddr) {
        let _ = addr;
        self.invalidate_space(asid);
    }
    /// Drops every cached translation of every address space, global ones included.
    fn invalidate_all(&mut self);
    /// Makes the table at `root` the active one, tagged `asid`, keeping cached entries of
    /// other tags.
    fn activate(&mut self, root: PhysAddr, asid: Asid);
}

/// How many pages a [`Flush`] names one by one before it becomes a flush of the whole
/// address space (Linux's x86 ceiling is 33 pages; past a few dozen, reloading is cheaper).
pub const FLUSH_BATCH: usize = 32;

/// The TLB invalidations that a change of the tables requires.
///
/// The engine returns one from every call that changes present entries. Apply it with
/// [`apply`](Self::apply), or say that it is not needed with [`ignore`](Self::ignore)
/// (for tables that are not active yet, or when switching spaces flushes anyway).
#[must_use = "the TLB may still hold the old translations: apply the flush or ignore it"]
#[derive(Clone)]
pub struct Flush {
    state: Batch,
    global: bool,
}

/// What a [`Flush`] covers. An empty flush is a tag alone, so that the many calls that
/// return one with nothing to invalidate (every map of a new page) do not write out the
/// batch's slots: they are written when the first page comes.
// Large on purpose: the point is that the small variant is cheap to write, and no_std
// has no box to put the batch in.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Batch {
    Nothing,
    Pages { pages: [VirtAddr; FLUSH_BATCH], len: u8 },
    WholeSpace,
}

impl Default for Flush {
    fn default() -> Self {
        Self::new()
    }
}

/// Two flushes are equal when they invalidate the same: the same pages in the same order
/// (or both the whole space), and both global or neither.
impl PartialEq for Flush {
    fn eq(&self, other: &Self) -> bool {
        self.global == other.global
            && self.is_whole_space() == other.is_whole_space()
            && self.pages() == other.pages()
    }
}

impl Eq for Flush {}

impl Flush {
    /// A flush with nothing to invalidate.
    #[inline]
    pub const fn new() -> Self {
        Self { state: Batch::Nothing, global: false }
    }

    /// Adds the page containing `addr`; `global` says whether its entry was global.
    #[inline]
    pub fn add(&mut self, addr: VirtAddr, global: bool) {
        self.global |= global;
        match &mut self.state {
            Batch::Nothing => {
                let mut pages = [VirtAddr::ZERO; FLUSH_BATCH];
                pages[0] = addr;
                self.state = Batch::Pages { pages, len: 1 };
            }
            Batch::Pages { pages, len } => {
                let count = usize::from(*len);
                if count.checked_sub(1).and_then(|last| pages.get(last)) == Some(&addr) {
                    return;
                }
                match pages.get_mut(count) {
                    Some(slot) => {
                        *slot = addr;
                        *len += 1;
                    }
                    None => self.state = Batch::WholeSpace,
                }
            }
            Batch::WholeSpace => {}
        }
    }

    /// Adds everything `other` invalidates.
    pub fn merge(&mut self, other: Self) {
        self.global |= other.global;
        if other.is_whole_space() {
            self.state = Batch::WholeSpace;
        }
        for &page in other.pages() {
            self.add(page, false);
        }
    }

    /// The pages named one by one (empty once the flush covers the whole space).
    #[must_use]
    pub fn pages(&self) -> &[VirtAddr] {
        match &self.state {
            Batch::Pages { pages, len } => pages.get(..usize::from(*len)).unwrap_or(&[]),
            Batch::Nothing | Batch::WholeSpace => &[],
        }
    }

    /// Returns whether the flush covers the whole address space.
    #[must_use]
    pub const fn is_whole_space(&self) -> bool {
        matches!(self.state, Batch::WholeSpace)
    }

    /// Returns whether a global entry changed.
    #[must_use]
    pub const fn touches_global(&self) -> bool {
        self.global
    }

    /// Returns whether there is nothing to invalidate.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        matches!(self.state, Batch::Nothing)
    }

    /// Performs the invalidations on `tlb`.
    pub fn apply<T: Tlb + ?Sized>(self, tlb: &mut T) {
        if self.is_whole_space() {
            if self.global { tlb.invalidate_all() } else { tlb.invalidate_current() }
        } else {
            for &page in self.pages() {
                tlb.invalidate_page(page);
            }
        }
    }

    /// Drops the flush on purpose.
    pub fn ignore(self) {}
}

/// Prints what [`apply`](Flush::apply) would invalidate, not the unused slots of the batch:
/// `Flush(nothing)`, `Flush([0x1000, 0x5000])`, `Flush(whole space)`, with `, global`
/// when a global entry changed.
impl fmt::Debug for Flush {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Flush(")?;
        if self.is_whole_space() {
            f.write_str("whole space")?;
        } else if self.is_empty() {
            f.write_str("nothing")?;
        } else {
            f.debug_list().entries(self.pages().iter().map(|page| PageAddr(*page))).finish()?;
        }
        if self.global {
            f.write_str(", global")?;
        }
        f.write_str(")")
    }
}

/// A page address printed as bare hex inside a [`Flush`]'s debug list.
struct PageAddr(VirtAddr);

impl fmt::Debug for PageAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0.as_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    #[derive(Default)]
    struct Log(Vec<&'static str>, usize);
    impl Tlb for Log {
        fn invalidate_page(&mut self, _: VirtAddr) {
            self.1 += 1;
        }
        fn invalidate_current(&mut self) {
            self.0.push("current");
        }
        fn invalidate_space(&mut self, _: Asid) {
            self.0.push("space");
        }
        fn invalidate_all(&mut self) {
            self.0.push("all");
        }
        fn activate(&mut self, _: PhysAddr, _: Asid) {}
    }

    #[test]
    fn batches_then_widens() {
        let mut flush = Flush::new();
        assert!(flush.is_empty());
        for i in 0..FLUSH_BATCH as u64 {
            flush.add(VirtAddr::new(i << 12), false);
        }
        assert_eq!(flush.pages().len(), FLUSH_BATCH);
        let mut log = Log::default();
        flush.clone().apply(&mut log);
        assert_eq!(log.1, FLUSH_BATCH);
        flush.add(VirtAddr::new(1 << 40), true);
        assert!(flush.is_whole_space() && flush.touches_global());
        flush.apply(&mut log);
        assert_eq!(log.0, ["all"]);
    }

    #[test]
    fn debug_prints_what_it_flushes() {
        let mut flush = Flush::new();
        assert_eq!(std::format!("{flush:?}"), "Flush(nothing)");
        flush.add(VirtAddr::new(0x1000), false);
        flush.add(VirtAddr::new(0x5000), false);
        assert_eq!(std::format!("{flush:?}"), "Flush([0x1000, 0x5000])");
        for i in 0..FLUSH_BATCH as u64 {
            flush.add(VirtAddr::new(0x10_0000 + (i << 12)), true);
        }
        assert_eq!(std::format!("{flush:?}"), "Flush(whole space, global)");
        let mut global = Flush::new();
        global.add(VirtAddr::new(0xffff_8000_0000_0000), true);
        assert_eq!(std::format!("{global:?}"), "Flush([0xffff800000000000], global)");
    }

    #[test]
    fn merge_keeps_both() {
        let mut a = Flush::new();
        a.add(VirtAddr::new(0x1000), false);
        let mut b = Flush::new();
        b.add(VirtAddr::new(0x2000), false);
        a.merge(b);
        assert_eq!(a.pages(), [VirtAddr::new(0x1000), VirtAddr::new(0x2000)]);
    }
}

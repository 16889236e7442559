//! The frame database: one record for every data frame the pager manages, in storage the
//! caller provides (the Windows PFN database).
//!
//! Every frame is on exactly one list: free, zeroed, standby (clean, its old owner's PTE
//! in transition), modified (dirty, to be written before reuse) or active (in a working
//! set, or a section's resident page). The lists are doubly linked through the records, so
//! moving a frame is O(1) and each list keeps the order frames joined it: standby and
//! modified give their oldest first, as the memory manager repurposes them.

use core::fmt;

use crate::addr::{PhysAddr, VirtAddr};
use crate::frame::FRAME_SIZE;

use super::policy::FrameIndex;
use super::store::Slot;

/// The lists a frame can be on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FrameList {
    /// Free, contents unknown.
    Free,
    /// Free and zeroed.
    Zeroed,
    /// Clean, still holding its page's data; the owner's PTE is in transition.
    Standby,
    /// Dirty, still holding its page's data, to be written before it is reused.
    Modified,
    /// Mapped: in a working set, or a section's resident page.
    Active,
}

impl FrameList {
    /// Every list, in the order of [`FrameDatabase::count`]'s index.
    pub const ALL: [Self; 5] =
        [Self::Free, Self::Zeroed, Self::Standby, Self::Modified, Self::Active];

    fn index(self) -> usize {
        self as usize
    }
}

/// Whose page a frame holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Owner {
    /// Nobody (a free or zeroed frame).
    #[default]
    None,
    /// A private page (or private copy) of an address space, by its root table.
    Private {
        /// The space's root table: with `page`, it finds the one PTE that maps the frame.
        root: PhysAddr,
        /// The page's virtual address.
        page: VirtAddr,
    },
    /// A page of a section, by the section's header frame and the page's index.
    Section {
        /// The section's header frame (its identity).
        section: PhysAddr,
        /// The page's index in the section.
        index: u64,
    },
}

/// What the pager knows of one frame.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FrameRecord {
    list: FrameList,
    prev: u32,
    next: u32,
    /// Whose page the frame holds.
    pub owner: Owner,
    /// The slot that holds a copy of the page, if the copy is still good: a clean page
    /// with one is dropped without a write, and its PTE becomes that slot.
    pub slot: Option<Slot>,
    /// The page's contents need not be kept: it holds nothing but zeros (a demand-zero
    /// page never written since), or its owner reset it (`MEM_RESET`) and has not written
    /// it since. It leaves memory without a write (the store need not keep zeros) and,
    /// once its frame is reused, its entry goes back to demand-zero, as Linux maps the zero
    /// page for reads of anonymous memory.
    pub all_zero: bool,
    /// Its owner reset it (`MEM_RESET`) and has neither written it nor undone the reset
    /// since: when its frame is reused its entry says the contents were discarded, so that
    /// `MEM_RESET_UNDO` fails (a page of zeros never reset leaves a plain demand-zero
    /// entry).
    pub reset: bool,
}

impl FrameRecord {
    /// A free record, linked nowhere yet.
    pub const FREE: Self = Self {
        list: FrameList::Free,
        prev: NONE,
        next: NONE,
        owner: Owner::None,
        slot: None,
        all_zero: false,
        reset: false,
    };

    /// The list the frame is on.
    #[must_use]
    pub fn list(&self) -> FrameList {
        self.list
    }
}

/// No record: the end of a list.
const NONE: u32 = u32::MAX;

/// The first and last record of a list, and how many it holds.
#[derive(Clone, Copy, Debug)]
struct Ends {
    head: u32,
    tail: u32,
    count: u32,
}

impl Ends {
    const EMPTY: Self = Self { head: NONE, tail: NONE, count: 0 };
}

/// Why a frame database cannot be built.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DatabaseError {
    /// The first frame is not 4 KiB aligned.
    Unaligned {
        /// The address given.
        base: PhysAddr,
    },
    /// More frames than a record index can name, or than the address space holds.
    TooManyFrames {
        /// The number of records given.
        frames: usize,
    },
}

impl fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unaligned { base } => {
                write!(f, "frame database base {base:#x} is not 4 KiB aligned")
            }
            Self::TooManyFrames { frames } => {
                write!(f, "{frames} frames are more than a frame database can index")
            }
        }
    }
}

impl core::error::Error for DatabaseError {}

/// The records of the frames `[base, base + records.len() * 4 KiB)`, on their lists.
pub struct FrameDatabase<'s> {
    base: PhysAddr,
    records: &'s mut [FrameRecord],
    lists: [Ends; 5],
}

impl<'s> FrameDatabase<'s> {
    /// Manages one frame per record from `base` on, all of them free, in address order.
    ///
    /// # Errors
    ///
    /// Returns [`DatabaseError::Unaligned`] for a `base` that is not 4 KiB aligned and
    /// [`DatabaseError::TooManyFrames`] when the frames do not fit a `u32` index or the
    /// physical address space.
    pub fn new(records: &'s mut [FrameRecord], base: PhysAddr) -> Result<Self, DatabaseError> {
        if !base.is_aligned(FRAME_SIZE) {
            return Err(DatabaseError::Unaligned { base });
        }
        let frames = records.len();
        let fits = u32::try_from(frames).is_ok_and(|n| n < NONE)
            && (frames as u64)
                .checked_mul(FRAME_SIZE)
                .and_then(|len| base.as_u64().checked_add(len))
                .is_some();
        if !fits {
            return Err(DatabaseError::TooManyFrames { frames });
        }
        records.fill(FrameRecord::FREE);
        let mut database = Self { base, records, lists: [Ends::EMPTY; 5] };
        for index in 0..frames as u32 {
            database.push_tail(index, FrameList::Free);
        }
        Ok(database)
    }

    /// The number of frames managed.
    #[must_use]
    pub fn frames(&self) -> usize {
        self.records.len()
    }

    /// The number of frames on `list`.
    #[must_use]
    pub fn count(&self, list: FrameList) -> usize {
        self.lists[list.index()].count as usize
    }

    /// The index of the frame at `frame`, if the database manages it.
    #[must_use]
    pub fn index_of(&self, frame: PhysAddr) -> Option<FrameIndex> {
        let offset = frame.as_u64().checked_sub(self.base.as_u64())?;
        let index = u32::try_from(offset / FRAME_SIZE).ok()?;
        (frame.is_aligned(FRAME_SIZE) && (index as usize) < self.records.len())
            .then_some(FrameIndex(index))
    }

    /// The address of the frame at `index` (`None` past the last).
    #[must_use]
    pub fn address(&self, index: FrameIndex) -> Option<PhysAddr> {
        self.records.get(index.0 as usize)?;
        // `new` checked that the frame past the last record fits below 2^64.
        Some(self.base + u64::from(index.0) * FRAME_SIZE)
    }

    /// The record of the frame at `index`.
    #[must_use]
    pub fn record(&self, index: FrameIndex) -> Option<&FrameRecord> {
        self.records.get(index.0 as usize)
    }

    /// The record of the frame at `index`, to change its owner, share count or slot (its
    /// list changes through [`move_to`](Self::move_to) only).
    pub fn record_mut(&mut self, index: FrameIndex) -> Option<&mut FrameRecord> {
        self.records.get_mut(index.0 as usize)
    }

    /// The frame that has been on `list` longest, if any.
    #[must_use]
    pub fn oldest(&self, list: FrameList) -> Option<FrameIndex> {
        let head = self.lists[list.index()].head;
        (head != NONE).then_some(FrameIndex(head))
    }

    /// The frames on `list`, oldest first.
    pub fn iter(&self, list: FrameList) -> impl Iterator<Item = FrameIndex> + '_ {
        let mut at = self.lists[list.index()].head;
        core::iter::from_fn(move || {
            let index = (at != NONE).then_some(at)?;
            at = self.records.get(index as usize).map_or(NONE, |r| r.next);
            Some(FrameIndex(index))
        })
    }

    /// Moves the frame at `index` to the end of `list` (the newest there); returns the
    /// list it left, or `None` (changing nothing) for an index past the last frame.
    pub fn move_to(&mut self, index: FrameIndex, list: FrameList) -> Option<FrameList> {
        let from = self.records.get(index.0 as usize)?.list;
        self.unlink(index.0);
        self.push_tail(index.0, list);
        Some(from)
    }

    /// Takes the frame out of the list it is on.
    fn unlink(&mut self, index: u32) {
        let Some(&FrameRecord { list, prev, next, .. }) = self.records.get(index as usize) else {
            return;
        };
        match self.records.get_mut(prev as usize) {
            Some(before) => before.next = next,
            None => self.lists[list.index()].head = next,
        }
        match self.records.get_mut(next as usize) {
            Some(after) => after.prev = prev,
            None => self.lists[list.index()].tail = prev,
        }
        self.lists[list.index()].count -= 1;
    }

    /// Appends the (unlinked) frame to `list`.
    fn push_tail(&mut self, index: u32, list: FrameList) {
        let ends = &mut self.lists[list.index()];
        let tail = ends.tail;
        ends.tail = index;
        if tail == NONE {
            ends.head = index;
        }
        ends.count += 1;
        if let Some(last) = self.records.get_mut(tail as usize) {
            last.next = index;
        }
        if let Some(record) = self.records.get_mut(index as usize) {
            *record = FrameRecord { list, prev: tail, next: NONE, ..*record };
        }
    }
}

impl fmt::Debug for FrameDatabase<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("FrameDatabase");
        out.field("base", &self.base).field("frames", &self.records.len());
        for list in FrameList::ALL {
            out.field(list_name(list), &self.count(list));
        }
        out.finish()
    }
}

/// A list's name, for `Debug`.
fn list_name(list: FrameList) -> &'static str {
    match list {
        FrameList::Free => "free",
        FrameList::Zeroed => "zeroed",
        FrameList::Standby => "standby",
        FrameList::Modified => "modified",
        FrameList::Active => "active",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: PhysAddr = PhysAddr::new(0x10_0000);

    #[test]
    fn starts_free_in_address_order() {
        let mut records = [FrameRecord::FREE; 4];
        let db = FrameDatabase::new(&mut records, BASE).unwrap();
        assert_eq!(db.count(FrameList::Free), 4);
        assert_eq!(db.iter(FrameList::Free).map(|i| i.0).collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert_eq!(db.address(FrameIndex(3)), Some(PhysAddr::new(0x10_3000)));
        assert_eq!(db.address(FrameIndex(4)), None);
        assert_eq!(db.index_of(PhysAddr::new(0x10_2000)), Some(FrameIndex(2)));
        assert_eq!(db.index_of(PhysAddr::new(0x10_2008)), None);
        assert_eq!(db.index_of(PhysAddr::new(0x10_4000)), None);
        assert_eq!(db.index_of(PhysAddr::new(0xf_f000)), None);
    }

    #[test]
    fn lists_keep_the_order_frames_joined() {
        let mut records = [FrameRecord::FREE; 4];
        let mut db = FrameDatabase::new(&mut records, BASE).unwrap();
        assert_eq!(db.move_to(FrameIndex(2), FrameList::Standby), Some(FrameList::Free));
        db.move_to(FrameIndex(0), FrameList::Standby);
        db.move_to(FrameIndex(3), FrameList::Standby);
        assert_eq!(db.iter(FrameList::Standby).map(|i| i.0).collect::<Vec<_>>(), [2, 0, 3]);
        assert_eq!(db.oldest(FrameList::Standby), Some(FrameIndex(2)));
        db.move_to(FrameIndex(0), FrameList::Active);
        assert_eq!(db.iter(FrameList::Standby).map(|i| i.0).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(db.iter(FrameList::Free).map(|i| i.0).collect::<Vec<_>>(), [1]);
        assert_eq!(db.record(FrameIndex(0)).map(FrameRecord::list), Some(FrameList::Active));
        assert_eq!(db.move_to(FrameIndex(9), FrameList::Active), None);
        assert_eq!(db.count(FrameList::Active), 1);
    }

    #[test]
    fn refuses_what_it_cannot_index() {
        let mut records = [FrameRecord::FREE; 1];
        let base = PhysAddr::new(0x800);
        assert_eq!(
            FrameDatabase::new(&mut records, base).err(),
            Some(DatabaseError::Unaligned { base })
        );
        let top = PhysAddr::new(u64::MAX - 0xfff);
        assert_eq!(
            FrameDatabase::new(&mut records, top).err(),
            Some(DatabaseError::TooManyFrames { frames: 1 })
        );
    }

    proptest::proptest! {
        /// Random moves against a plain model: one ordered list of indices per list.
        #[test]
        fn moves_agree_with_a_model(moves in proptest::collection::vec((0u32..10, 0usize..5), 0..200)) {
            let mut records = [FrameRecord::FREE; 8];
            let mut db = FrameDatabase::new(&mut records, BASE).unwrap();
            let mut model: Vec<Vec<u32>> = vec![(0..8).collect(), vec![], vec![], vec![], vec![]];
            for (index, list) in moves {
                let list = FrameList::ALL[list];
                let from = model.iter().position(|l| l.contains(&index));
                proptest::prop_assert_eq!(db.move_to(FrameIndex(index), list), from.map(|f| FrameList::ALL[f]));
                if let Some(from) = from {
                    model[from].retain(|&i| i != index);
                    model[list.index()].push(index);
                }
                for (at, list) in FrameList::ALL.into_iter().enumerate() {
                    let got: Vec<u32> = db.iter(list).map(|i| i.0).collect();
                    proptest::prop_assert_eq!(&got, &model[at]);
                    proptest::prop_assert_eq!(db.count(list), model[at].len());
                    proptest::prop_assert_eq!(db.oldest(list).map(|i| i.0), model[at].first().copied());
                }
            }
        }
    }
}

//! The kernel's pager: a block of frames for user data, the pager's books in static
//! memory (no heap), and a page file on the IDE disk. Each swap test builds a pager of
//! its own over its own part of the disk, so that the pages one test leaves there stay
//! for the host to check after the run.

use paging::PhysAddr;
use paging::frame::FrameAllocator;
use paging::pager::policy::{AnyPolicy, PolicyKind, PolicySlot, slots_needed};
use paging::pager::{FrameRecord, PAGE_BYTES, Pager, PagerStorage};

use crate::ata::{Ata, PageFile};
use crate::fail::Fail;
use crate::global::TakeOnce;
use crate::println;

/// The frames the pager may give to user data.
pub const PAGER_FRAMES: u32 = 64;
/// The most slots one page file may have.
const MAX_SLOTS: usize = 1024;
/// The largest write cluster, in pages.
const CLUSTER_PAGES: usize = 16;
const POLICY_SLOTS: usize = slots_needed(PAGER_FRAMES);

/// What a pager keeps about its frames, slots and policy, and its cluster buffer.
pub struct Books {
    records: [FrameRecord; PAGER_FRAMES as usize],
    slot_counts: [u8; MAX_SLOTS],
    cluster: [[u8; PAGE_BYTES]; CLUSTER_PAGES],
    policy: [PolicySlot; POLICY_SLOTS],
}

static BOOKS: TakeOnce<Books> = TakeOnce::new(Books {
    records: [FrameRecord::FREE; PAGER_FRAMES as usize],
    slot_counts: [0; MAX_SLOTS],
    cluster: [[0; PAGE_BYTES]; CLUSTER_PAGES],
    policy: [PolicySlot::EMPTY; POLICY_SLOTS],
});

/// The pager of the swap tests, over format `F`.
pub type KernelPager<'s, F> = Pager<'s, F, PageFile<'s>, AnyPolicy<'s>>;

/// The disk and the books, as the machine holds them.
pub struct Swap {
    /// The page file's disk, if QEMU attached one.
    pub disk: Option<Ata>,
    books: &'static mut Books,
}

impl Swap {
    /// Finds the disk and takes the books (once per boot).
    pub fn boot() -> Result<Self, Fail> {
        let books = BOOKS.take().ok_or_else(|| crate::fail!("swap books taken twice"))?;
        let disk = match Ata::probe() {
            Ok(disk) => {
                println!("disk: ATA primary master, {} sectors", disk.sectors());
                Some(disk)
            }
            Err(why) => {
                println!("note: no page file disk: {why}");
                None
            }
        };
        Ok(Self { disk, books })
    }

    /// A pager of the [`PAGER_FRAMES`] frames from `base`, paging to disk slots
    /// `first..first + slots`, choosing victims by `kind`.
    pub fn pager<F: paging::PageTableFormat>(
        &mut self,
        base: PhysAddr,
        (first, slots): (u32, u32),
        kind: PolicyKind,
    ) -> Result<KernelPager<'_, F>, Fail> {
        let disk = self.disk.as_mut().ok_or_else(|| Fail::skip("no disk attached"))?;
        let file = PageFile::new(disk, first, slots)?;
        let books = &mut *self.books;
        books.records.fill(FrameRecord::FREE);
        books.slot_counts.fill(0);
        books.policy.fill(PolicySlot::EMPTY);
        let policy = AnyPolicy::new(kind, &mut books.policy, PAGER_FRAMES)
            .map_err(|why| crate::fail!("policy: {why:?}"))?;
        let storage = PagerStorage {
            records: &mut books.records,
            base,
            slot_counts: &mut books.slot_counts[..slots as usize],
            cluster: &mut books.cluster,
        };
        Ok(Pager::new(storage, file, policy)?)
    }
}

/// The frames a pager manages, taken from the kernel's allocator as one block and given
/// back when the test ends.
pub struct FrameBlock {
    /// The first frame.
    pub base: PhysAddr,
}

impl FrameBlock {
    /// [`PAGER_FRAMES`] contiguous frames.
    pub fn take(frames: &mut dyn FrameAllocator) -> Result<Self, Fail> {
        Ok(Self { base: frames.allocate_contiguous(PAGER_FRAMES as usize, 4096)? })
    }

    /// Gives the frames back.
    pub fn give_back(self, frames: &mut dyn FrameAllocator) -> Result<(), Fail> {
        Ok(frames.deallocate_contiguous(self.base, PAGER_FRAMES as usize)?)
    }
}

/// Word `index` of the page a test fills with pattern `seed`. The host checks the disk
/// image with the same function (xtask/src/qemu.rs, `pattern_word`): keep them equal.
pub fn pattern_word(seed: u64, index: u64) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index.wrapping_mul(0x0101_0101_0101_0101)
}

/// The seed of page `page` of test `test`.
pub fn seed(test: u64, page: u64) -> u64 {
    test << 32 | page
}

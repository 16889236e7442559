//! The pager: the frame database, the slots of the backing store, the replacement policy
//! and the working sets, kept together and consistent.

use core::fmt;
use core::marker::PhantomData;

use crate::addr::PhysAddr;
use crate::format::PageTableFormat;
use crate::frame::FrameAllocator;
use crate::memory::TableMemory;
use crate::tlb::{Asid, Tlb};

use super::counters::{PagerCounters, PerformanceInfo, ProcessCounters};
use super::database::{DatabaseError, FrameDatabase, FrameList, FrameRecord};
use super::paging::Paging;
use super::policy::ReplacementPolicy;
use super::pte::{self, PteState};
use super::slots::{SlotAllocator, SlotError};
use super::store::{BackingStore, PAGE_BYTES};
use super::working_set::{WorkingSet, WorkingSets};

/// The caller's storage for a pager: one record per frame, one reference count per slot,
/// and the buffer the modified-page writer gathers a cluster in (its length is the
/// largest cluster).
#[derive(Debug)]
pub struct PagerStorage<'s> {
    /// One record per data frame the pager manages.
    pub records: &'s mut [FrameRecord],
    /// The first of those frames (they are contiguous).
    pub base: PhysAddr,
    /// One reference count per slot of the store (at least `store.slots()` of them).
    pub slot_counts: &'s mut [u8],
    /// Pages the writer copies a cluster through before one store request.
    pub cluster: &'s mut [[u8; PAGE_BYTES]],
}

/// Why a pager could not be built, or refused a call.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PagerError {
    /// The frame database refused the frames.
    Database(DatabaseError),
    /// The slot storage does not fit the store.
    Slots(SlotError),
    /// The policy was built for another number of frames, or already holds pages.
    PolicyMismatch {
        /// The frames the policy counts.
        policy: u32,
        /// The frames the pager manages.
        frames: usize,
    },
    /// The writer's cluster buffer is empty.
    NoClusterBuffer,
    /// The pager already serves [`MAX_SPACES`](super::MAX_SPACES) spaces.
    TooManySpaces,
    /// The pager already serves the space at this root.
    AlreadyAttached {
        /// The space's root table.
        root: PhysAddr,
    },
    /// The pager does not serve the space at this root.
    UnknownSpace {
        /// The space's root table.
        root: PhysAddr,
    },
    /// The space still holds pages or commit charge (destroy it through the pager first).
    SpaceInUse {
        /// The space's root table.
        root: PhysAddr,
    },
    /// A working-set minimum above its maximum (in bytes, as given).
    MinimumAboveMaximum {
        /// The minimum asked for.
        minimum: usize,
        /// The maximum asked for.
        maximum: usize,
    },
}

impl fmt::Display for PagerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Database(error) => write!(f, "frame database: {error}"),
            Self::Slots(error) => write!(f, "slots: {error}"),
            Self::PolicyMismatch { policy, frames } => {
                write!(f, "the policy counts {policy} frames, the pager {frames} (or it is in use)")
            }
            Self::NoClusterBuffer => f.write_str("the writer's cluster buffer is empty"),
            Self::TooManySpaces => f.write_str("the pager serves as many spaces as it can"),
            Self::AlreadyAttached { root } => {
                write!(f, "the space at {:#x} is already attached", root.as_u64())
            }
            Self::UnknownSpace { root } => {
                write!(f, "the pager does not serve the space at {:#x}", root.as_u64())
            }
            Self::SpaceInUse { root } => {
                write!(f, "the space at {:#x} still holds pages or charge", root.as_u64())
            }
            Self::MinimumAboveMaximum { minimum, maximum } => write!(
                f,
                "a working-set minimum of {minimum:#x} bytes is above its maximum ({maximum:#x})"
            ),
        }
    }
}

impl core::error::Error for PagerError {}

/// Paging to a backing store, as the Windows memory manager does it: each space has a
/// working set; when no frame is free the policy picks a page to trim, which leaves a
/// transition entry and goes to the standby list (clean) or the modified list (dirty);
/// the modified-page writer writes modified pages to the store in clusters; a frame
/// repurposed from standby leaves a paging-file entry behind. A fault on a transition
/// entry takes the frame back (soft fault); on a paging-file entry it reads the slot
/// (hard fault).
///
/// `F` is the page-table format of the spaces it serves, `S` the store, `P` the policy.
/// The pager manages data frames only: page tables come from the kernel's allocator,
/// passed with the TLB to [`with`](Self::with), which gives the [`Paging`] handle that
/// spaces take as their [`FrameSource`](crate::space::FrameSource).
pub struct Pager<'s, F: PageTableFormat, S: BackingStore, P: ReplacementPolicy> {
    pub(super) frames: FrameDatabase<'s>,
    pub(super) slots: SlotAllocator<'s>,
    pub(super) store: S,
    pub(super) policy: P,
    pub(super) cluster: &'s mut [[u8; PAGE_BYTES]],
    pub(super) sets: WorkingSets,
    pub(super) commit_total: u64,
    pub(super) commit_peak: u64,
    pub(super) counters: PagerCounters,
    pub(super) clock: u64,
    format: PhantomData<F>,
}

impl<F: PageTableFormat, S: BackingStore, P: ReplacementPolicy> fmt::Debug for Pager<'_, F, S, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pager")
            .field("performance", &self.performance())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl<'s, F: PageTableFormat, S: BackingStore, P: ReplacementPolicy> Pager<'s, F, S, P> {
    /// A pager of the frames `storage` describes, paging to `store`, choosing victims with
    /// `policy` (built for as many frames). Every frame starts free.
    ///
    /// # Errors
    ///
    /// Returns [`PagerError::Database`] for frames the database refuses,
    /// [`PagerError::Slots`] when `storage.slot_counts` is shorter than the store,
    /// [`PagerError::PolicyMismatch`] when the policy counts other frames, and
    /// [`PagerError::NoClusterBuffer`].
    pub fn new(storage: PagerStorage<'s>, store: S, policy: P) -> Result<Self, PagerError> {
        let PagerStorage { records, base, slot_counts, cluster } = storage;
        if cluster.is_empty() {
            return Err(PagerError::NoClusterBuffer);
        }
        let frames = records.len();
        if usize::try_from(policy.frames()).ok() != Some(frames) || policy.resident() != 0 {
            return Err(PagerError::PolicyMismatch { policy: policy.frames(), frames });
        }
        let slots =
            SlotAllocator::with_slots(slot_counts, store.slots()).map_err(PagerError::Slots)?;
        let frames = FrameDatabase::new(records, base).map_err(PagerError::Database)?;
        Ok(Self {
            frames,
            slots,
            store,
            policy,
            cluster,
            sets: WorkingSets::default(),
            commit_total: 0,
            commit_peak: 0,
            counters: PagerCounters::default(),
            clock: 0,
            format: PhantomData,
        })
    }

    /// The handle spaces take frames from: this pager, with the kernel's allocator for
    /// page tables and the TLB to invalidate what the pager rewrites.
    pub fn with<'h>(
        &'h mut self,
        tables: &'h mut dyn FrameAllocator,
        tlb: &'h mut dyn Tlb,
    ) -> Paging<'h, 's, F, S, P> {
        Paging { pager: self, tables, tlb }
    }

    /// How many page-table entries hold `frame` now (Windows' share count): for a private
    /// page 1 (or 0 once it left the working set), for a section page the views whose
    /// entry maps it, present or hidden by a no-access protection. Counted through the
    /// reverse map (the owner's PTE, or every view the section records), so it is never
    /// stale; 0 for a frame the pager does not manage.
    pub fn share_count<M: TableMemory + ?Sized>(&self, memory: &mut M, frame: PhysAddr) -> u32 {
        let Some(record) = self.frames.index_of(frame).and_then(|i| self.frames.record(i)) else {
            return 0;
        };
        let owner = record.owner;
        let holds =
            |memory: &mut M, at: pte::Mapping| match pte::read::<F, M>(memory, at.root, at.page) {
                PteState::Present { frame: held, .. } | PteState::Hidden { frame: held, .. } => {
                    held == frame
                }
                _ => false,
            };
        let mut count = 0;
        for slot in 0..pte::mapping_slots(owner) {
            if let Some(at) = pte::mapping(&*memory, &self.sets, owner, slot) {
                count += u32::from(holds(memory, at));
            }
        }
        count
    }

    /// A reference to the page in `frame`, for a policy that wants every reference (exact
    /// LRU, see [`ReplacementPolicy::wants_references`]): hardware records none, a
    /// simulator reports each. Frames the pager does not manage, or that hold no page in a
    /// working set, are ignored.
    pub fn reference(&mut self, frame: PhysAddr) {
        if let Some(index) = self.frames.index_of(frame) {
            let _ = self.policy.touch(index, self.clock);
        }
    }

    /// Serves the space at `root` (tagged `asid`) with a working set of `minimum` to
    /// `maximum` pages.
    ///
    /// # Errors
    ///
    /// Returns [`PagerError::AlreadyAttached`] and [`PagerError::TooManySpaces`].
    pub fn attach(
        &mut self,
        root: PhysAddr,
        asid: Asid,
        minimum: u32,
        maximum: u32,
    ) -> Result<(), PagerError> {
        if self.sets.get(root).is_some() {
            return Err(PagerError::AlreadyAttached { root });
        }
        let set = WorkingSet::new(root, asid, minimum, maximum);
        self.sets.add(set).map_err(|_| PagerError::TooManySpaces)
    }

    /// Stops serving the space at `root`, which must hold no page and no charge (destroy
    /// it with the pager's handle first). Returns its last counters.
    ///
    /// # Errors
    ///
    /// Returns [`PagerError::UnknownSpace`] and [`PagerError::SpaceInUse`].
    pub fn detach(&mut self, root: PhysAddr) -> Result<ProcessCounters, PagerError> {
        let set = self.sets.get(root).ok_or(PagerError::UnknownSpace { root })?;
        if set.counters.working_set_size != 0 || set.counters.pagefile_usage != 0 {
            return Err(PagerError::SpaceInUse { root });
        }
        Ok(self.sets.remove(root).map(|s| s.counters).unwrap_or_default())
    }

    /// Sets the working-set limits of the space at `root` (Windows
    /// `SetProcessWorkingSetSize`); the next fault of a space above its new maximum
    /// replaces one of its own pages.
    ///
    /// # Errors
    ///
    /// Returns [`PagerError::UnknownSpace`].
    pub fn set_working_set_size(
        &mut self,
        root: PhysAddr,
        minimum: u32,
        maximum: u32,
    ) -> Result<(), PagerError> {
        let set = self.sets.get_mut(root).ok_or(PagerError::UnknownSpace { root })?;
        set.minimum = minimum;
        set.maximum = maximum.max(minimum);
        Ok(())
    }

    /// The working set of the space at `root`.
    #[must_use]
    pub fn working_set(&self, root: PhysAddr) -> Option<&WorkingSet> {
        self.sets.get(root)
    }

    /// The counters of the space at `root` (Windows `GetProcessMemoryInfo`).
    #[must_use]
    pub fn process_counters(&self, root: PhysAddr) -> Option<ProcessCounters> {
        self.sets.get(root).map(|s| s.counters)
    }

    /// The working sets of every space served.
    pub fn working_sets(&self) -> impl Iterator<Item = &WorkingSet> {
        self.sets.iter()
    }

    /// The system's numbers (Windows `GetPerformanceInfo`).
    #[must_use]
    pub fn performance(&self) -> PerformanceInfo {
        let available = [FrameList::Free, FrameList::Zeroed, FrameList::Standby]
            .iter()
            .map(|&list| self.frames.count(list) as u64)
            .sum();
        PerformanceInfo {
            commit_total: self.commit_total,
            commit_limit: self.commit_limit(),
            commit_peak: self.commit_peak,
            physical_total: self.frames.frames() as u64,
            physical_available: available,
        }
    }

    /// What the pager did so far.
    #[must_use]
    pub fn counters(&self) -> PagerCounters {
        self.counters
    }

    /// The frame database (the state of every frame).
    #[must_use]
    pub fn database(&self) -> &FrameDatabase<'s> {
        &self.frames
    }

    /// The slots of the store.
    #[must_use]
    pub fn slots(&self) -> &SlotAllocator<'s> {
        &self.slots
    }

    /// The backing store.
    #[must_use]
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The backing store, mutably (a test's injected failures).
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// The replacement policy.
    #[must_use]
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// The replacement policy, to give it what only the caller knows (an OPT policy told
    /// each resident page's next use by a trace replayer). Which frames are resident is
    /// the pager's business: calling `insert`, `remove` or `victim` here desynchronises
    /// the policy from the frame lists.
    pub fn policy_mut(&mut self) -> &mut P {
        &mut self.policy
    }

    /// The most pages that can be committed: the frames plus the slots, less one slot
    /// held back. With every frame holding a dirty page and every slot a paged-out one, a
    /// hard fault could free no frame (the writer needs a free slot to clean one); one page
    /// less committed leaves a free slot or a clean frame, always.
    #[must_use]
    pub fn commit_limit(&self) -> u64 {
        self.frames.frames() as u64 + u64::from(self.slots.slots().saturating_sub(1))
    }

    /// The pager's logical clock, one tick per fault it resolved.
    #[must_use]
    pub fn now(&self) -> u64 {
        self.clock
    }
}

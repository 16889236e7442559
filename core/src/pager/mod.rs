//! Paging to a backing store: taking frames away from pages that are not in use, keeping
//! their contents in a store of page-sized slots, and bringing them back on a fault.
//!
//! The Windows memory manager is the model. A [`Pager`] manages a fixed range of data
//! frames (the [frame database](database)), the slots of a [`BackingStore`], a
//! [replacement policy](policy) and the working set of every space it serves. Spaces
//! take their frames from it through its [`Paging`] handle, a
//! [`FrameSource`](crate::space::FrameSource):
//!
//! - a page trimmed from a working set leaves a *transition* entry and goes to the
//!   standby list (the store holds a good copy) or the modified list (it does not);
//! - the modified-page writer writes modified pages in clusters of contiguous slots and
//!   moves them to standby;
//! - a standby frame given to another page leaves a *paging-file* entry behind;
//! - a fault on a transition entry takes the frame back (soft fault), on a paging-file
//!   entry reads the slot (hard fault; a failed read is an in-page error);
//! - committing charges the commit limit, the frames plus the slots.
//!
//! Where each part lives: the pager and its registry in `manager.rs`; finding a frame and
//! trimming in `frames.rs`; the bits a policy reads in `bits.rs`; the writer in
//! `writer.rs`; the handle in `paging.rs`; the PTE of a page found from its owner in
//! `pte.rs`; working sets in `working_set.rs`, their limits in bytes (Windows
//! `SetProcessWorkingSetSize`) in `limits.rs`; counters in `counters.rs`.

mod bits;
mod counters;
pub mod database;
mod frames;
mod limits;
mod manager;
mod paging;
pub mod policy;
mod pte;
mod ram_disk;
mod slots;
mod store;
mod working_set;
mod writer;

pub use counters::{PagerCounters, PerformanceInfo, ProcessCounters};
pub use database::{DatabaseError, FrameDatabase, FrameList, FrameRecord, Owner};
pub use limits::WorkingSetChange;
pub use manager::{Pager, PagerError, PagerStorage};
pub use paging::Paging;
pub use policy::{FrameIndex, PageBits, ReplacementPolicy};
pub use ram_disk::RamDisk;
pub use slots::{SlotAllocator, SlotError};
pub use store::{
    BackingStore, ClusterError, PAGE_BYTES, Slot, StoreError, check_cluster, check_slot,
};
pub use working_set::{MAX_SPACES, WorkingSet};

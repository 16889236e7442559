//! Paging to a backing store: taking frames away from pages that are not in use, keeping
//! their contents in a store of page-sized slots, and bringing them back on a fault.
//!
//! Being built (issue 10). Here so far: the frame database ([`database`]), the backing
//! store with its slot allocator and a RAM disk, and the replacement policies
//! ([`policy`]). Working sets, soft and hard faults, the modified-page writer and the
//! commit charge come next.

pub mod database;
pub mod policy;
mod ram_disk;
mod slots;
mod store;

pub use database::{DatabaseError, FrameDatabase, FrameList, FrameRecord, Owner};
pub use policy::{FrameIndex, PageBits, ReplacementPolicy};
pub use ram_disk::RamDisk;
pub use slots::{SlotAllocator, SlotError};
pub use store::{
    BackingStore, ClusterError, PAGE_BYTES, Slot, StoreError, check_cluster, check_slot,
};

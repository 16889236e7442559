//! Paging to a backing store: taking frames away from pages that are not in use, keeping
//! their contents in a store of page-sized slots, and bringing them back on a fault.

mod ram_disk;
mod slots;
mod store;

pub use ram_disk::RamDisk;
pub use slots::{SlotAllocator, SlotError};
pub use store::{
    BackingStore, ClusterError, PAGE_BYTES, Slot, StoreError, check_cluster, check_slot,
};

//! Paging to a backing store: the pages of more memory than there are frames live on a
//! store, and come back into frames when they are touched again.
//!
//! Being built (issue 10): the frame database ([`database`]) and the replacement
//! policies ([`policy`]) are here; working sets, faults and the writer come next.

pub mod database;
pub mod policy;

pub use database::{DatabaseError, FrameDatabase, FrameList, FrameRecord, Owner};
pub use policy::{FrameIndex, PageBits, ReplacementPolicy};

//! Paging to a backing store: the pages of more memory than there are frames live on a
//! store, and come back into frames when they are touched again.

pub mod policy;

//! Paging to a backing store (stub for a compile check).
pub mod database;
pub mod policy {
    //! stub
    /// stub
    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
    pub struct FrameIndex(pub u32);
}

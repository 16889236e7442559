//! Conversions to and from other crates' types, each behind a feature that is off by
//! default.
//!
//! - `x86_64` (feature `x86_64`): addresses, pages, frames and page-table flags of the
//!   `x86_64` crate. The frame-allocator adapters, which need `unsafe`, and the
//!   porting guide are in `paging-x86`'s `interop` module (its feature `x86_64`).
//!
//! The bootloader memory maps are read in [`frame`](crate::frame), next to
//! [`MemoryRegion`](crate::frame::MemoryRegion).

#[cfg(feature = "x86_64")]
pub mod x86_64;

//! `paging`: virtual memory for `no_std` kernels.
//!
//! One generic page-table engine ([`PageTable`]) runs over any entry encoding
//! ([`PageTableFormat`]; the x86 formats live in `paging-x86`) and any table memory
//! ([`TableMemory`]): simulated RAM, a direct map of real RAM, or host memory in tests.
//! Frame allocators ([`frame`]) keep their books in storage the caller provides. Every
//! operation validates before it changes anything: a refused call, even one whose
//! allocator ran dry halfway, leaves every entry and every frame as it was.
//!
//! ```
//! use paging::frame::{BitmapAllocator, MemoryRegion};
//! use paging::{ArenaMemory, FrameBuf, PageFlags, PageTable, PhysAddr, VirtAddr};
//! use paging_x86::X86_64;
//!
//! // 64 frames of host memory stand in for physical RAM at 0..256 KiB.
//! let mut ram = vec![FrameBuf::ZERO; 64];
//! let mut memory = ArenaMemory::new(&mut ram, PhysAddr::ZERO);
//! let mut bitmap = [0u64; 1];
//! let mut frames = BitmapAllocator::new(&mut bitmap, &[MemoryRegion::usable(0, 64 * 4096)])?;
//!
//! let mut table = PageTable::<X86_64, _>::new(&mut memory, &mut frames)?;
//! let flags = PageFlags::READABLE | PageFlags::WRITABLE;
//! table
//!     .map_range(VirtAddr::new(0x4000_0000), PhysAddr::new(0x3_0000), 0x2000, flags, &mut frames)?
//!     .ignore(); // not the active table: nothing cached to flush
//! let hit = table.translate(VirtAddr::new(0x4000_1234))?;
//! assert_eq!(hit.phys, PhysAddr::new(0x3_1234));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod addr;
pub mod error;
pub mod fault;
pub mod flags;
pub mod format;
pub mod frame;
pub mod interop;
pub mod memory;
pub mod pager;
pub mod software_pte;
pub mod space;
pub mod table;
pub mod tlb;

pub use addr::{
    Frame, FrameRange, FrameRangeInclusive, Page, PageRange, PageRangeInclusive, PageSize,
    PhysAddr, Size1GiB, Size2MiB, Size4KiB, Size4MiB, VirtAddr,
};
pub use error::{AddrError, AddrKind, FrameError, Occupant, TableError};
pub use fault::{Access, Exception, Fault, FaultCause, FaultPolicy, Privilege, Resolution};
pub use flags::PageFlags;
pub use format::{Entry, EntrySize, InvalidEntry, PageTableFormat};
pub use frame::FrameAllocator;
pub use memory::{ArenaMemory, FrameBuf, TableMemory};
pub use software_pte::{SoftwarePte, SoftwarePteError};
pub use table::{MappedPage, PageTable, Translation};
pub use tlb::{Asid, Flush, Tlb};

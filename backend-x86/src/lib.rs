//! `paging-x86`: the x86 page-table entry formats for the `paging` engine.
//!
//! Four zero-sized types implement [`paging::PageTableFormat`]:
//!
//! - [`X86_64`]: 4-level IA-32e paging (48-bit virtual addresses);
//! - [`X86_64La57`]: 5-level IA-32e paging (57-bit virtual addresses, CR4.LA57);
//! - [`Pae`]: 3-level PAE paging (32-bit virtual, 52-bit physical addresses);
//! - [`Legacy32`]: 2-level 32-bit paging with 4 MiB PSE pages and no NX.
//!
//! Levels count from the bottom, as everywhere in `paging`: level 1 is the page table
//! (4 KiB leaves), level 2 the page directory, and so on up to the root. The raw bits, with
//! the SDM's names, are in [`bits`]; how each format reads them is documented in
//! [`format`].
//!
//! ```
//! use paging::{Entry, PageFlags, PageTableFormat, PhysAddr};
//! use paging_x86::{X86_64, bits};
//!
//! let flags = PageFlags::READABLE | PageFlags::WRITABLE;
//! let raw = X86_64::encode_leaf(PhysAddr::new(0x1234_5000), flags, 1);
//! assert_eq!(raw, 0x1234_5000 | bits::P | bits::RW | bits::NX);
//! assert_eq!(X86_64::decode(raw, 1), Entry::Leaf { frame: PhysAddr::new(0x1234_5000), flags });
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod bits;
pub mod format;

pub use format::{Legacy32, Pae, X86_64, X86_64La57};

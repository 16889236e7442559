//! `paging-x86`: the x86 page-table entry formats for the `paging` engine, and the
//! hardware side that puts them on a real x86-64 CPU.
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
//! The [`hw`] module drives the MMU: table memory over a direct map, the TLB (INVLPG,
//! INVPCID, CR3 with PCIDs), the #PF error code decoded into core's fault, and the
//! control bits paging needs. Its decoding is pure and host-tested; its instructions are
//! compiled for `x86_64` only and run in `examples/kernel` under QEMU.
//!
//! Engine calls are safe even on the table the CPU runs on: they only write table memory.
//! The `unsafe` is where a table becomes live ([`hw::HwTlb::load_root`], CR3 loads) and
//! where table memory is vouched for ([`hw::DirectMap::new`]). Edits to one table must be
//! serialised by the caller; the MMU may walk concurrently, and an accessed or dirty bit it
//! sets between the engine's read and write of an entry is lost. [`hw`] says what this
//! means and what a caller who needs exact dirty bits does.
//!
//! With the feature `x86_64` (off by default), `interop` adapts the frame allocators of
//! the `x86_64` crate, converts its types, and has a guide for porting code from its
//! `Mapper`.
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
// Only the hardware module may use `unsafe`, and it says why at every use.
#![deny(unsafe_code)]

pub mod bits;
pub mod format;
#[allow(unsafe_code, reason = "privileged instructions and raw accesses to physical memory")]
pub mod hw;
#[cfg(feature = "x86_64")]
#[allow(unsafe_code, reason = "the x86_64 crate's frame-allocator traits are unsafe")]
pub mod interop;

pub use format::{Legacy32, Pae, X86_64, X86_64La57};

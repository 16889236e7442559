//! The hardware side: what the engine needs to drive a real x86-64 MMU.
//!
//! Pure, and tested on any host:
//! - [`PageFaultCode`] and [`decode_fault`]: the #PF error code and CR2 as core's
//!   [`Fault`](paging::Fault);
//! - [`CpuFeatures`]: the CPUID bits paging depends on; [`cr0`], [`cr4`], [`efer`]: the
//!   control bits; [`Cr3`]: a root, a PCID and the no-flush bit;
//! - [`DirectMap`]: table memory over a direct map of physical memory, with volatile
//!   accesses (it runs over any mapped buffer, so host tests use it too).
//!
//! Compiled for `x86_64` only, and never executed by host tests (they are privileged):
//! - [`instructions`]: CR0, CR2, CR3, CR4, MSRs, INVLPG, INVPCID, STAC and CLAC;
//! - [`HwTlb`]: core's [`Tlb`](paging::Tlb) over INVLPG, INVPCID and CR3 loads with PCIDs;
//! - [`control`]: switching on EFER.NXE, CR0.WP, CR4.PGE, PCIDE, SMEP and SMAP after
//!   checking CPUID, and reading whether LA57 is active.
//!
//! `examples/kernel` boots all of it under QEMU and checks it against the emulated CPU.
//!
//! # Soundness and concurrency
//!
//! **Safe calls on a live table.** The engine reads and writes tables only through
//! [`TableMemory`](paging::TableMemory), here [`DirectMap`], whose accesses stay inside the
//! range its unsafe constructor vouched for. So every engine call is safe in Rust's sense,
//! even one that unmaps the running code, the stack or the direct map from the table the
//! CPU runs on: that edit is a store to a frame Rust does not otherwise use. What the
//! store means to the running program is decided where the table became live, by an
//! `unsafe` call: loading it into CR3 ([`HwTlb::load_root`], or
//! [`instructions::write_cr3`]), whose contract includes keeping the running code, its
//! stack, its data and the direct map mapped as they are for as long as the root is
//! loaded, and [`DirectMap::new`], whose contract keeps the direct map in place for the
//! value's life. An edit that breaks them breaks a promise made in `unsafe` code: an
//! unmapped page faults on its next access, a remapped one changes under Rust's feet.
//!
//! **One editor per table.** The engine has no lock: [`PageTable`](paging::table::PageTable)
//! edits take `&mut self`, and two CPUs that edit one table (each with its own handle on
//! the same root) must hold a lock of their own around every call, reads included. The
//! MMU may walk the table at any moment, and that is safe: [`DirectMap`] writes each entry
//! with one aligned store (8 bytes, or 4 in [`Legacy32`](crate::Legacy32)), which x86
//! makes atomic, and the engine builds new tables bottom-up (a chain of new tables, a range
//! map's new tables, the table that replaces a huge page) and links each into the live
//! table last, so a walker sees the old entry or a complete new subtree, never a half-built
//! one. Its volatile accesses keep the compiler from reordering those stores, and x86 keeps
//! stores in order. [`HwTlb`] invalidates on the running CPU only: flushes for a table that
//! other CPUs run on must be applied on each of them, and frames of tables the engine gave
//! back to the allocator must not be reused until they have been.
//!
//! **Accessed and dirty bits.** The CPU sets A and D with locked read-modify-writes (SDM
//! Vol. 3A, "Automatic Locking"), but the engine's edits are a plain read, then a plain
//! store. A bit the MMU sets in between is lost: `protect` writes back the A and D it
//! read, and `unmap` (and `unmap_range`, `set_entry`, `rewrite_range`) replaces the entry
//! and reports the flags it read before the store, so a page written in that window can
//! be reported clean. The window is short but real while other CPUs run on the table. A caller that
//! needs exact dirty tracking must close it: write-protect the page (or unmap it), apply
//! the flush on every CPU that may cache it, and only then read the entry again, or take
//! the old value with an atomic exchange on the entry (`xchg`, which the engine does not
//! do) before flushing.

mod cpu;
mod direct_map;
mod fault;

pub use cpu::{ControlError, CpuFeatures, CpuidLeaves, Cr3, Cr3Error, cr0, cr4, efer};
pub use direct_map::DirectMap;
pub use fault::{PageFaultCode, decode_fault};

#[cfg(target_arch = "x86_64")]
pub mod control;
#[cfg(target_arch = "x86_64")]
pub mod instructions;
#[cfg(target_arch = "x86_64")]
mod tlb;

#[cfg(target_arch = "x86_64")]
pub use tlb::HwTlb;

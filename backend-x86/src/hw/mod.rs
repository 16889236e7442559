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

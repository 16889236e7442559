//! The privileged instructions of paging, one thin wrapper each. x86-64 only.
//!
//! Every wrapper that changes state is `unsafe`: a wrong CR3, CR0 or CR4 value takes the
//! ground from under the running code. The readers are `unsafe` too, because outside ring 0
//! they fault (#GP): host tests compile this module but never call it.

use core::arch::asm;
use core::arch::x86_64::{__cpuid_count, CpuidResult};

use paging::{Asid, VirtAddr};

use super::cpu::{CpuFeatures, CpuidLeaves};

/// Executes CPUID for `leaf` and `sub_leaf`.
#[allow(unused_unsafe, reason = "Rust releases before the intrinsic became safe need the block")]
fn cpuid_leaf(leaf: u32, sub_leaf: u32) -> CpuidResult {
    // SAFETY: every x86-64 CPU has CPUID; it only reads identification registers.
    unsafe { __cpuid_count(leaf, sub_leaf) }
}

/// Reads the CPUID leaves paging needs. Unprivileged: it runs anywhere, a host included.
#[must_use]
pub fn cpuid() -> CpuidLeaves {
    let max = cpuid_leaf(0, 0).eax;
    let max_ext = cpuid_leaf(0x8000_0000, 0).eax;
    let leaf1 = cpuid_leaf(1, 0);
    let leaf7 = (max >= 7).then(|| cpuid_leaf(7, 0));
    let (leaf7_ebx, leaf7_ecx) = leaf7.map_or((0, 0), |r| (r.ebx, r.ecx));
    CpuidLeaves {
        leaf1_ecx: leaf1.ecx,
        leaf1_edx: leaf1.edx,
        leaf7_ebx,
        leaf7_ecx,
        ext1_edx: if max_ext >= 0x8000_0001 { cpuid_leaf(0x8000_0001, 0).edx } else { 0 },
        ext8_eax: if max_ext >= 0x8000_0008 { cpuid_leaf(0x8000_0008, 0).eax } else { 0 },
    }
}

/// The paging features of this CPU.
#[must_use]
pub fn features() -> CpuFeatures {
    CpuFeatures::from_cpuid(&cpuid())
}

macro_rules! control_register {
    ($read:ident, $write:ident, $reg:literal, $name:literal) => {
        #[doc = concat!("Reads ", $name, ".")]
        ///
        /// # Safety
        ///
        /// Runs in ring 0 only (elsewhere it raises #GP).
        #[must_use]
        #[inline]
        pub unsafe fn $read() -> u64 {
            let value: u64;
            // SAFETY: the caller runs in ring 0; the read has no side effect.
            unsafe { asm!(concat!("mov {}, ", $reg), out(reg) value, options(nomem, nostack, preserves_flags)) };
            value
        }

        #[doc = concat!("Writes ", $name, ".")]
        ///
        /// # Safety
        ///
        /// Runs in ring 0; the new value must keep the running code, its stack and its data
        /// mapped as they are, and be a value the CPU accepts (else #GP).
        #[inline]
        pub unsafe fn $write(value: u64) {
            // SAFETY: the caller vouches for the value. Not `nomem`: the memory the
            // compiler sees may change meaning.
            unsafe { asm!(concat!("mov ", $reg, ", {}"), in(reg) value, options(nostack, preserves_flags)) };
        }
    };
}

control_register!(read_cr0, write_cr0, "cr0", "CR0");
control_register!(read_cr3, write_cr3, "cr3", "CR3");
control_register!(read_cr4, write_cr4, "cr4", "CR4");

/// Reads CR2, the linear address of the last page fault.
///
/// # Safety
///
/// Runs in ring 0 only.
#[must_use]
#[inline]
pub unsafe fn read_cr2() -> u64 {
    let value: u64;
    // SAFETY: the caller runs in ring 0; the read has no side effect.
    unsafe { asm!("mov {}, cr2", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// Reads a model-specific register.
///
/// # Safety
///
/// Runs in ring 0, and `msr` must exist (else #GP).
#[must_use]
#[inline]
pub unsafe fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: the caller vouches for ring 0 and the MSR.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags));
    }
    u64::from(hi) << 32 | u64::from(lo)
}

/// Writes a model-specific register.
///
/// # Safety
///
/// Runs in ring 0; `msr` must exist and accept `value`, and the change must keep the
/// running code valid (clearing EFER.NXE while entries have NX set makes them reserved).
#[inline]
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // The halves of a 64-bit value: the truncations are the point.
    let (lo, hi) = (value as u32, (value >> 32) as u32);
    // SAFETY: the caller vouches for ring 0, the MSR and the value.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") lo, in("edx") hi, options(nostack, preserves_flags))
    };
}

/// Drops the TLB entries of the page holding `addr` in the current PCID (global ones
/// included) and the paging-structure caches of the current PCID.
///
/// # Safety
///
/// Runs in ring 0. It cannot break memory safety by itself, but it is privileged.
#[inline]
pub unsafe fn invlpg(addr: VirtAddr) {
    // SAFETY: the caller runs in ring 0; INVLPG only drops cached translations.
    unsafe { asm!("invlpg [{}]", in(reg) addr.as_u64(), options(nostack, preserves_flags)) };
}

/// The INVPCID types.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Invpcid {
    /// Type 0: one address in one PCID (global entries excepted).
    Address(Asid, VirtAddr),
    /// Type 1: every non-global entry of one PCID.
    Single(Asid),
    /// Type 2: everything, global entries included, in every PCID.
    AllIncludingGlobal,
    /// Type 3: everything but global entries, in every PCID.
    AllButGlobal,
}

/// Executes INVPCID.
///
/// # Safety
///
/// Runs in ring 0 on a CPU that has INVPCID (else #UD), with a canonical address for
/// [`Invpcid::Address`] and a PCID below 4096 (else #GP).
#[inline]
pub unsafe fn invpcid(what: Invpcid) {
    let (kind, pcid, addr): (u64, u16, u64) = match what {
        Invpcid::Address(asid, addr) => (0, asid.0, addr.as_u64()),
        Invpcid::Single(asid) => (1, asid.0, 0),
        Invpcid::AllIncludingGlobal => (2, 0, 0),
        Invpcid::AllButGlobal => (3, 0, 0),
    };
    let descriptor: [u64; 2] = [u64::from(pcid), addr];
    // SAFETY: the caller vouches for ring 0, the instruction and the operands; the
    // descriptor lives on the stack for the duration of the instruction.
    unsafe {
        asm!("invpcid {}, [{}]", in(reg) kind, in(reg) descriptor.as_ptr(), options(nostack, preserves_flags));
    }
}

/// Sets RFLAGS.AC: with CR4.SMAP on, supervisor code may access user pages until
/// [`clac`].
///
/// # Safety
///
/// Runs on a CPU with SMAP (else #UD); privileged in effect (user mode cannot execute it).
#[inline]
pub unsafe fn stac() {
    // SAFETY: the caller vouches for SMAP support; AC changes what later accesses may do.
    unsafe { asm!("stac", options(nostack)) };
}

/// Clears RFLAGS.AC: supervisor accesses to user pages fault again under SMAP.
///
/// # Safety
///
/// As [`stac`].
#[inline]
pub unsafe fn clac() {
    // SAFETY: as in `stac`.
    unsafe { asm!("clac", options(nostack)) };
}

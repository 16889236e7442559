//! Switching on what paging relies on, each after checking that the CPU has it. x86-64 only.

use super::cpu::{ControlError, CpuFeatures, Cr3, cr0, cr4, efer};
use super::instructions::{rdmsr, read_cr0, read_cr3, read_cr4, write_cr0, write_cr4, wrmsr};

/// Sets EFER.NXE: bit 63 of an entry becomes execute-disable (the x86 formats assume it).
///
/// # Safety
///
/// Runs in ring 0.
///
/// # Errors
///
/// Returns [`ControlError::Unsupported`] if the CPU has no NX.
pub unsafe fn enable_nxe(cpu: &CpuFeatures) -> Result<(), ControlError> {
    if !cpu.nx {
        return Err(ControlError::Unsupported("NX (EFER.NXE)"));
    }
    // SAFETY: ring 0; setting NXE only makes bit 63 meaningful, which it is nowhere yet
    // or already (the entry formats set it only for no-execute pages).
    unsafe { wrmsr(efer::MSR, rdmsr(efer::MSR) | efer::NXE) };
    Ok(())
}

/// Sets CR0.WP: supervisor writes to read-only pages fault, as copy-on-write needs.
///
/// # Safety
///
/// Runs in ring 0, and the running code must not write to pages it mapped read-only.
pub unsafe fn enable_write_protect() {
    // SAFETY: the caller's promise; WP only adds faults.
    unsafe { write_cr0(read_cr0() | cr0::WP) };
}

/// Sets a CR4 bit after checking for it.
///
/// # Safety
///
/// Runs in ring 0, and the bit must not take away what the running code relies on.
unsafe fn set_cr4(supported: bool, bit: u64, name: &'static str) -> Result<(), ControlError> {
    if !supported {
        return Err(ControlError::Unsupported(name));
    }
    // SAFETY: the caller's promise.
    unsafe { write_cr4(read_cr4() | bit) };
    Ok(())
}

/// Sets CR4.PGE: global pages (G) survive CR3 loads.
///
/// # Safety
///
/// Runs in ring 0.
///
/// # Errors
///
/// Returns [`ControlError::Unsupported`] if the CPU has no PGE.
pub unsafe fn enable_global_pages(cpu: &CpuFeatures) -> Result<(), ControlError> {
    // SAFETY: ring 0; PGE changes only what the TLB keeps.
    unsafe { set_cr4(cpu.pge, cr4::PGE, "global pages (CR4.PGE)") }
}

/// Sets CR4.PCIDE: CR3 bits 11:0 tag TLB entries.
///
/// # Safety
///
/// Runs in ring 0 in long mode.
///
/// # Errors
///
/// Returns [`ControlError::Unsupported`] if the CPU has no PCID, and
/// [`ControlError::WrongState`] if CR3 bits 11:0 are not zero (the CPU would raise #GP).
pub unsafe fn enable_pcids(cpu: &CpuFeatures) -> Result<(), ControlError> {
    // SAFETY: ring 0.
    if cpu.pcid && unsafe { read_cr3() } & Cr3::PCID_MASK != 0 {
        return Err(ControlError::WrongState("CR3 bits 11:0 must be zero"));
    }
    // SAFETY: ring 0 in long mode with CR3[11:0] = 0: the current PCID becomes 0.
    unsafe { set_cr4(cpu.pcid, cr4::PCIDE, "PCIDs (CR4.PCIDE)") }
}

/// Sets CR4.SMEP: supervisor fetches from user pages fault.
///
/// # Safety
///
/// Runs in ring 0, and the kernel must not run code from user pages.
///
/// # Errors
///
/// Returns [`ControlError::Unsupported`] if the CPU has no SMEP.
pub unsafe fn enable_smep(cpu: &CpuFeatures) -> Result<(), ControlError> {
    // SAFETY: the caller's promise.
    unsafe { set_cr4(cpu.smep, cr4::SMEP, "SMEP (CR4.SMEP)") }
}

/// Sets CR4.SMAP: supervisor data accesses to user pages fault unless RFLAGS.AC is set
/// (see [`stac`](super::instructions::stac)).
///
/// # Safety
///
/// Runs in ring 0, and the kernel must touch user pages only between STAC and CLAC.
///
/// # Errors
///
/// Returns [`ControlError::Unsupported`] if the CPU has no SMAP.
pub unsafe fn enable_smap(cpu: &CpuFeatures) -> Result<(), ControlError> {
    // SAFETY: the caller's promise.
    unsafe { set_cr4(cpu.smap, cr4::SMAP, "SMAP (CR4.SMAP)") }
}

/// Clears CR4.SMAP.
///
/// # Safety
///
/// Runs in ring 0.
pub unsafe fn disable_smap() {
    // SAFETY: ring 0; clearing SMAP only removes faults.
    unsafe { write_cr4(read_cr4() & !cr4::SMAP) };
}

/// Whether 5-level paging is active (CR4.LA57): use `X86_64La57` then, else `X86_64`.
///
/// # Safety
///
/// Runs in ring 0.
#[must_use]
pub unsafe fn la57_active() -> bool {
    // SAFETY: ring 0.
    let control4 = unsafe { read_cr4() };
    control4 & cr4::LA57 != 0
}

/// What paging needs, as the CPU has it now.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[allow(clippy::struct_excessive_bools, reason = "one flag per control bit")]
pub struct PagingState {
    /// EFER.NXE.
    pub nxe: bool,
    /// CR0.WP.
    pub write_protect: bool,
    /// CR4.PGE.
    pub global_pages: bool,
    /// CR4.PCIDE.
    pub pcids: bool,
    /// CR4.SMEP.
    pub smep: bool,
    /// CR4.SMAP.
    pub smap: bool,
    /// CR4.LA57.
    pub la57: bool,
}

/// Reads the control bits paging depends on.
///
/// # Safety
///
/// Runs in ring 0.
#[must_use]
pub unsafe fn paging_state() -> PagingState {
    // SAFETY: ring 0; reads only.
    let (control0, control4, extended) = unsafe { (read_cr0(), read_cr4(), rdmsr(efer::MSR)) };
    PagingState {
        nxe: extended & efer::NXE != 0,
        write_protect: control0 & cr0::WP != 0,
        global_pages: control4 & cr4::PGE != 0,
        pcids: control4 & cr4::PCIDE != 0,
        smep: control4 & cr4::SMEP != 0,
        smap: control4 & cr4::SMAP != 0,
        la57: control4 & cr4::LA57 != 0,
    }
}

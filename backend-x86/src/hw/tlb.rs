//! The real TLB behind core's [`Tlb`] trait: INVLPG, INVPCID and CR3 loads. x86-64 only.

use paging::{Asid, PhysAddr, Tlb, VirtAddr};

use super::cpu::{CpuFeatures, Cr3, cr4};
use super::instructions::{self, Invpcid};

/// The TLB of the CPU this code runs on.
///
/// - a page: INVLPG;
/// - the current space: INVPCID single-context, else a CR3 reload;
/// - another PCID: INVPCID single-context, else (no INVPCID) a flush of everything;
/// - everything: INVPCID all-including-global, else toggling CR4.PGE;
/// - [`activate`](Tlb::activate): a CR3 load tagged with the PCID and, with CR4.PCIDE,
///   the no-flush bit, so the space's entries survive a switch away and back. Reusing a
///   PCID for another root therefore needs [`invalidate_space`](Tlb::invalidate_space)
///   first.
#[derive(Debug)]
pub struct HwTlb {
    invpcid: bool,
    pcide: bool,
}

impl HwTlb {
    /// Takes hold of the TLB, reading CR4.PCIDE once: create it after switching PCIDs on.
    ///
    /// # Safety
    ///
    /// Runs in ring 0 of a CPU in long mode whose features are `cpu`; CR4.PCIDE must not
    /// change while the value lives; roots given to [`activate`](Tlb::activate) must map
    /// the running code, its stack and its data as the current root does.
    #[must_use]
    pub unsafe fn new(cpu: &CpuFeatures) -> Self {
        // SAFETY: ring 0, as the caller promises.
        let pcide = unsafe { instructions::read_cr4() } & cr4::PCIDE != 0;
        Self { invpcid: cpu.invpcid && pcide, pcide }
    }

    /// Whether PCIDs tag the TLB (CR4.PCIDE was set at creation).
    #[must_use]
    pub fn pcids(&self) -> bool {
        self.pcide
    }

    /// The current CR3.
    fn cr3(&self) -> Cr3 {
        // SAFETY: ring 0 (the contract of `new`).
        Cr3::from_bits(unsafe { instructions::read_cr3() })
    }

    /// Reloads CR3 without the no-flush bit: drops the current PCID's non-global entries.
    fn reload(&self) {
        let cr3 = self.cr3().bits() & !Cr3::NO_FLUSH;
        // SAFETY: the same root and PCID as now: nothing the running code needs moves.
        unsafe { instructions::write_cr3(cr3) };
    }

    /// Toggles CR4.PGE twice: drops every entry of every PCID, global ones included.
    fn flush_everything(&self) {
        // SAFETY: ring 0; PGE changes only what the TLB keeps, not any translation.
        unsafe {
            let cr4 = instructions::read_cr4();
            instructions::write_cr4(cr4 ^ cr4::PGE);
            instructions::write_cr4(cr4);
        }
    }
}

impl Tlb for HwTlb {
    fn invalidate_page(&mut self, addr: VirtAddr) {
        // SAFETY: ring 0 (the contract of `new`); INVLPG only drops cached entries.
        unsafe { instructions::invlpg(addr) };
    }

    fn invalidate_current(&mut self) {
        self.reload();
    }

    fn invalidate_space(&mut self, asid: Asid) {
        if self.invpcid && u64::from(asid.0) <= Cr3::PCID_MASK {
            // SAFETY: the CPU has INVPCID (checked at creation) and the PCID fits.
            unsafe { instructions::invpcid(Invpcid::Single(asid)) };
        } else if !self.pcide || self.cr3().pcid() == asid {
            self.reload();
        } else {
            self.flush_everything();
        }
    }

    fn invalidate_all(&mut self) {
        if self.invpcid {
            // SAFETY: the CPU has INVPCID (checked at creation).
            unsafe { instructions::invpcid(Invpcid::AllIncludingGlobal) };
        } else {
            self.flush_everything();
        }
    }

    fn activate(&mut self, root: PhysAddr, asid: Asid) {
        let pcid = if self.pcide { asid } else { Asid(0) };
        // A root that cannot be loaded is a bug of the caller's; loading it anyway would
        // fault or worse, so it is refused here without a change.
        let Ok(cr3) = Cr3::new(root, pcid, self.pcide) else { return };
        // SAFETY: the contract of `new`: the root maps the running code as the current one.
        unsafe { instructions::write_cr3(cr3.bits()) };
    }
}

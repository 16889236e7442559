//! The real TLB behind core's [`Tlb`] trait: INVLPG, INVPCID and CR3 loads. x86-64 only.

use paging::{Asid, PhysAddr, Tlb, VirtAddr};

use super::cpu::{CpuFeatures, Cr3, Cr3Error, cr4};
use super::instructions::{self, Invpcid};

/// The TLB of the CPU this code runs on.
///
/// - a page: INVLPG;
/// - the current space: INVPCID single-context, else a CR3 reload;
/// - another PCID: INVPCID single-context, else (no INVPCID) a flush of everything;
/// - everything: INVPCID all-including-global, else toggling CR4.PGE;
/// - [`activate`](Tlb::activate): [`load_root`](Self::load_root), a CR3 load tagged with
///   the PCID and, with CR4.PCIDE, the no-flush bit, so the space's entries survive a
///   switch away and back. Reusing a PCID for another root therefore needs
///   [`invalidate_space`](Tlb::invalidate_space) first.
///
/// It acts on this CPU only: a change to a table that other CPUs run on needs the flush
/// applied on each of them (a shootdown), which is the caller's to arrange.
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
    /// Runs in ring 0 of a CPU in long mode whose features are `cpu`, and CR4.PCIDE must
    /// not change while the value lives.
    ///
    /// Core's [`Tlb::activate`] is a safe method, and this type implements it with
    /// [`load_root`](Self::load_root): every root given to it must meet the contract of
    /// `load_root`. Code that switches roots itself should call `load_root`, which carries
    /// that contract to each switch.
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

    /// Makes the table at `root` the active one: loads CR3 with `root`, tagged with `asid`
    /// and the no-flush bit when PCIDs are on (the PCID's cached entries are kept), or
    /// untagged without them (the load drops every non-global entry).
    ///
    /// # Safety
    ///
    /// `root` is the root of a table in the format the CPU walks (4- or 5-level, as
    /// CR4.LA57 says) that maps the running code, its stack, its data and every other page
    /// Rust may reach (the [`DirectMap`](super::DirectMap) included) at the addresses they
    /// have now, to the same frames, with at least the access they have now; and it keeps
    /// doing so for as long as it is loaded. Engine calls on a live table are safe calls
    /// (they only write table memory), but one that unmaps or remaps those pages breaks
    /// this promise: unmapping makes the next access fault, remapping makes memory change
    /// under Rust's feet. The TLB must hold nothing stale for `asid`: a PCID last used with
    /// another root needs [`invalidate_space`](Tlb::invalidate_space) first.
    ///
    /// # Errors
    ///
    /// Returns the [`Cr3Error`] of a root that is unaligned or beyond 52 bits, or of a PCID
    /// above 4095; CR3 is then left as it was.
    pub unsafe fn load_root(&mut self, root: PhysAddr, asid: Asid) -> Result<(), Cr3Error> {
        let pcid = if self.pcide { asid } else { Asid(0) };
        let cr3 = Cr3::new(root, pcid, self.pcide)?;
        // SAFETY: ring 0 (the contract of `new`); the caller vouches for the root and the
        // PCID's cached entries.
        unsafe { instructions::write_cr3(cr3.bits()) };
        Ok(())
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
        // A root that cannot be loaded is a bug of the caller's; loading it anyway would
        // fault or worse, so `load_root` refuses it without a change, and this method
        // (which has no error to return) drops the refusal.
        // SAFETY: the contract of `new`: every root given to this safe method meets the
        // contract of `load_root`.
        let _ = unsafe { self.load_root(root, asid) };
    }
}

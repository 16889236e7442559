//! What the CPU says it has (CPUID), the control-register bits paging depends on, and the
//! value of CR3. Pure: the instructions that read and write them are in
//! [`instructions`](super::instructions).

use core::fmt;

use paging::{Asid, PhysAddr};

/// CR0 bits (Intel SDM vol. 3A, 2.5).
pub mod cr0 {
    /// Protection enable (bit 0).
    pub const PE: u64 = 1 << 0;
    /// Write protect (bit 16): supervisor writes to read-only pages fault.
    pub const WP: u64 = 1 << 16;
    /// Paging (bit 31).
    pub const PG: u64 = 1 << 31;
}

/// CR4 bits (Intel SDM vol. 3A, 2.5).
pub mod cr4 {
    /// Page-size extensions (bit 4): 4 MiB pages in 32-bit paging.
    pub const PSE: u64 = 1 << 4;
    /// Physical-address extension (bit 5): 64-bit entries.
    pub const PAE: u64 = 1 << 5;
    /// Page global enable (bit 7): the G bit keeps translations across CR3 loads.
    pub const PGE: u64 = 1 << 7;
    /// 57-bit linear addresses (bit 12): 5-level paging. Set only while paging is off.
    pub const LA57: u64 = 1 << 12;
    /// Process-context identifiers (bit 17): CR3 bits 11:0 tag the TLB.
    pub const PCIDE: u64 = 1 << 17;
    /// Supervisor-mode execution prevention (bit 20).
    pub const SMEP: u64 = 1 << 20;
    /// Supervisor-mode access prevention (bit 21).
    pub const SMAP: u64 = 1 << 21;
    /// Protection keys for user pages (bit 22).
    pub const PKE: u64 = 1 << 22;
}

/// IA32_EFER (MSR 0xC000_0080) bits.
pub mod efer {
    /// The MSR's number.
    pub const MSR: u32 = 0xC000_0080;
    /// Long-mode enable (bit 8).
    pub const LME: u64 = 1 << 8;
    /// Long mode active (bit 10), set by the CPU.
    pub const LMA: u64 = 1 << 10;
    /// No-execute enable (bit 11): bit 63 of an entry is XD instead of reserved.
    pub const NXE: u64 = 1 << 11;
}

/// The CPUID registers paging features are read from.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CpuidLeaves {
    /// Leaf 1, ECX.
    pub leaf1_ecx: u32,
    /// Leaf 1, EDX.
    pub leaf1_edx: u32,
    /// Leaf 7 sub-leaf 0, EBX (zero if the CPU has no leaf 7).
    pub leaf7_ebx: u32,
    /// Leaf 7 sub-leaf 0, ECX (zero if the CPU has no leaf 7).
    pub leaf7_ecx: u32,
    /// Leaf 0x8000_0001, EDX.
    pub ext1_edx: u32,
    /// Leaf 0x8000_0008, EAX (zero if the CPU has no such leaf).
    pub ext8_eax: u32,
}

/// The paging features a CPU reports.
///
/// ```
/// use paging_x86::hw::{CpuFeatures, CpuidLeaves};
///
/// let leaves = CpuidLeaves { ext1_edx: 1 << 20 | 1 << 26, ext8_eax: 0x3028, ..Default::default() };
/// let cpu = CpuFeatures::from_cpuid(&leaves);
/// assert!(cpu.nx && cpu.huge_1gib && !cpu.pcid);
/// assert_eq!((cpu.phys_bits, cpu.virt_bits), (40, 48));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[allow(clippy::struct_excessive_bools, reason = "one flag per CPUID feature bit")]
pub struct CpuFeatures {
    /// Execute disable (EFER.NXE can be set).
    pub nx: bool,
    /// Global pages (CR4.PGE).
    pub pge: bool,
    /// Process-context identifiers (CR4.PCIDE).
    pub pcid: bool,
    /// The INVPCID instruction.
    pub invpcid: bool,
    /// Supervisor-mode execution prevention (CR4.SMEP).
    pub smep: bool,
    /// Supervisor-mode access prevention (CR4.SMAP, STAC and CLAC).
    pub smap: bool,
    /// Protection keys for user pages (CR4.PKE).
    pub pku: bool,
    /// 1 GiB pages (PS in a PDPTE).
    pub huge_1gib: bool,
    /// 5-level paging (CR4.LA57).
    pub la57: bool,
    /// MAXPHYADDR (36 when the CPU does not say).
    pub phys_bits: u8,
    /// Linear-address bits (48 when the CPU does not say).
    pub virt_bits: u8,
}

impl CpuFeatures {
    /// Decodes the CPUID registers.
    #[must_use]
    pub const fn from_cpuid(leaves: &CpuidLeaves) -> Self {
        let (phys_bits, virt_bits) = match leaves.ext8_eax {
            0 => (36, 48),
            eax => ((eax & 0xFF) as u8, ((eax >> 8) & 0xFF) as u8),
        };
        Self {
            nx: bit(leaves.ext1_edx, 20),
            pge: bit(leaves.leaf1_edx, 13),
            pcid: bit(leaves.leaf1_ecx, 17),
            invpcid: bit(leaves.leaf7_ebx, 10),
            smep: bit(leaves.leaf7_ebx, 7),
            smap: bit(leaves.leaf7_ebx, 20),
            pku: bit(leaves.leaf7_ecx, 3),
            huge_1gib: bit(leaves.ext1_edx, 26),
            la57: bit(leaves.leaf7_ecx, 16),
            phys_bits,
            virt_bits,
        }
    }
}

/// Whether bit `n` of `word` is set.
const fn bit(word: u32, n: u32) -> bool {
    word & (1 << n) != 0
}

/// A paging feature the CPU lacks, or a control-register switch refused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ControlError {
    /// CPUID does not report the feature.
    Unsupported(&'static str),
    /// The switch needs a state the CPU is not in (for example CR4.PCIDE while CR3 holds
    /// a nonzero PCID).
    WrongState(&'static str),
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsupported(what) => write!(f, "the CPU does not support {what}"),
            Self::WrongState(why) => write!(f, "cannot switch it on now: {why}"),
        }
    }
}

impl core::error::Error for ControlError {}

/// Why a CR3 value cannot be built.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Cr3Error {
    /// The root table is not 4 KiB aligned, or lies beyond 52 bits.
    BadRoot(PhysAddr),
    /// A PCID is 12 bits: 0 to 4095.
    PcidTooLarge(Asid),
}

impl fmt::Display for Cr3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadRoot(root) => {
                write!(f, "root table {root:#x} is not a 4 KiB-aligned 52-bit address")
            }
            Self::PcidTooLarge(asid) => write!(f, "PCID {} does not fit in 12 bits", asid.0),
        }
    }
}

impl core::error::Error for Cr3Error {}

/// A CR3 value for 4- and 5-level paging: the root table, the PCID (bits 11:0, with
/// CR4.PCIDE) and the no-flush bit (bit 63: a load need not drop that PCID's entries).
///
/// ```
/// use paging::{Asid, PhysAddr};
/// use paging_x86::hw::Cr3;
///
/// let cr3 = Cr3::new(PhysAddr::new(0x12_3000), Asid(7), true)?;
/// assert_eq!(cr3.bits(), 1 << 63 | 0x12_3000 | 7);
/// assert_eq!((cr3.root(), cr3.pcid(), cr3.no_flush()), (PhysAddr::new(0x12_3000), Asid(7), true));
/// # Ok::<(), paging_x86::hw::Cr3Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Cr3(u64);

impl Cr3 {
    /// The no-flush bit (63), meaningful in a load with CR4.PCIDE set; it reads as 0.
    pub const NO_FLUSH: u64 = 1 << 63;
    /// The PCID field (bits 11:0).
    pub const PCID_MASK: u64 = 0xFFF;
    /// The root table's address (bits 51:12).
    pub const ROOT_MASK: u64 = 0x000F_FFFF_FFFF_F000;

    /// Builds the value that loads `root` tagged `pcid`, keeping that PCID's cached
    /// translations if `no_flush`.
    ///
    /// # Errors
    ///
    /// Returns [`Cr3Error::BadRoot`] for a root that is unaligned or beyond 52 bits, and
    /// [`Cr3Error::PcidTooLarge`] for a PCID above 4095.
    pub const fn new(root: PhysAddr, pcid: Asid, no_flush: bool) -> Result<Self, Cr3Error> {
        if root.as_u64() & !Self::ROOT_MASK != 0 {
            return Err(Cr3Error::BadRoot(root));
        }
        if pcid.0 as u64 > Self::PCID_MASK {
            return Err(Cr3Error::PcidTooLarge(pcid));
        }
        let flush = if no_flush { Self::NO_FLUSH } else { 0 };
        Ok(Self(root.as_u64() | pcid.0 as u64 | flush))
    }

    /// Wraps a raw value (as read from CR3).
    #[must_use]
    pub const fn from_bits(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw value.
    #[must_use]
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// The root table.
    #[must_use]
    pub const fn root(self) -> PhysAddr {
        PhysAddr::new(self.0 & Self::ROOT_MASK)
    }

    /// The PCID (meaningful with CR4.PCIDE; otherwise bits 3 and 4 are PWT and PCD).
    #[must_use]
    pub const fn pcid(self) -> Asid {
        Asid((self.0 & Self::PCID_MASK) as u16)
    }

    /// Whether the no-flush bit is set.
    #[must_use]
    pub const fn no_flush(self) -> bool {
        self.0 & Self::NO_FLUSH != 0
    }
}

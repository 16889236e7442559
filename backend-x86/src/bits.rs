//! The raw bits of x86 paging-structure entries, named as in the Intel SDM vol. 3A ch. 4.
//!
//! The positions are the same in 32-bit and 64-bit entries up to bit 12; the bits above 31
//! exist only in the 64-bit entries of PAE and IA-32e (4- and 5-level) paging. Not every bit
//! means something in every entry: [`PS`] and [`PAT_4K`] share bit 7, [`PAT_HUGE`] is an
//! address bit in a table pointer, and the PDPTE of PAE paging reserves most of them
//! ([`PAE_PDPTE_RESERVED`]).

use static_assertions::const_assert_eq;

/// Returns the mask of bits `lo` (inclusive) to `hi` (exclusive); empty if `hi <= lo`.
#[must_use]
pub const fn field(lo: u32, hi: u32) -> u64 {
    if hi <= lo || lo >= 64 {
        0
    } else {
        let top = if hi >= 64 { u64::MAX } else { (1 << hi) - 1 };
        top & !((1 << lo) - 1)
    }
}

/// Present (bit 0). With P = 0 the CPU ignores every other bit.
pub const P: u64 = 1 << 0;
/// Read/write (bit 1): stores are allowed.
pub const RW: u64 = 1 << 1;
/// User/supervisor (bit 2): user-mode accesses are allowed.
pub const US: u64 = 1 << 2;
/// Page-level write-through (bit 3).
pub const PWT: u64 = 1 << 3;
/// Page-level cache disable (bit 4).
pub const PCD: u64 = 1 << 4;
/// Accessed (bit 5), set by the CPU.
pub const A: u64 = 1 << 5;
/// Dirty (bit 6), set by the CPU on a write; leaves only.
pub const D: u64 = 1 << 6;
/// Page size (bit 7) in a directory entry: the entry is a huge leaf.
pub const PS: u64 = 1 << 7;
/// The PAT memory-type bit of a 4 KiB leaf (bit 7, where directories have [`PS`]).
pub const PAT_4K: u64 = 1 << 7;
/// Global (bit 8), with CR4.PGE; leaves only.
pub const G: u64 = 1 << 8;
/// The first bit ignored by the CPU and free for software (bit 9).
pub const SW0: u64 = 1 << 9;
/// The second software bit (bit 10).
pub const SW1: u64 = 1 << 10;
/// The third software bit (bit 11).
pub const SW2: u64 = 1 << 11;
/// The PAT memory-type bit of a huge (2 MiB, 4 MiB, 1 GiB) leaf (bit 12).
pub const PAT_HUGE: u64 = 1 << 12;
/// A software bit in IA-32e leaves (bit 52; bits 58:52 are ignored there). PAE reserves it.
pub const SW_HIGH: u64 = 1 << 52;
/// The shift of the protection-key field (bits 62:59 of IA-32e leaves, with CR4.PKE).
pub const PK_SHIFT: u32 = 59;
/// The protection-key field (bits 62:59).
pub const PK_MASK: u64 = 0xF << PK_SHIFT;
/// Execute disable (XD/NX, bit 63), with EFER.NXE; 64-bit entries only.
pub const NX: u64 = 1 << 63;

/// The widest physical-address field of a 64-bit entry: bits 51:12 (MAXPHYADDR is at most 52).
pub const ADDR_MASK: u64 = field(12, 52);
/// The physical-address field of a 32-bit entry (bits 31:12).
pub const ADDR_MASK_32: u64 = field(12, 32);
/// The bits a PAE PDPTE reserves below its address: 2:1 and 8:5 (no R/W, U/S, A, D, PS, G).
/// Bits 63:MAXPHYADDR are reserved as well, NX included.
pub const PAE_PDPTE_RESERVED: u64 = RW | US | field(5, 9);

/// The software bits 11:9, which every x86 format leaves to software.
pub const SW_LOW: u64 = SW0 | SW1 | SW2;

// The flag bits of a 64-bit leaf (PAT_4K aliases PS, so only one of them is counted) are
// all distinct, and none of them lies in the address field.
const LEAF_BITS: [u64; 15] =
    [P, RW, US, PWT, PCD, A, D, PS, G, SW0, SW1, SW2, SW_HIGH, PK_MASK, NX];
const fn or_all(bits: &[u64]) -> (u64, u32) {
    let (mut all, mut ones, mut i) = (0, 0, 0);
    while i < bits.len() {
        all |= bits[i];
        ones += bits[i].count_ones();
        i += 1;
    }
    (all, ones)
}
const_assert_eq!(or_all(&LEAF_BITS).0.count_ones(), or_all(&LEAF_BITS).1);
const_assert_eq!(or_all(&LEAF_BITS).0 & ADDR_MASK, 0);
const_assert_eq!(PAT_4K, PS);
const_assert_eq!(PAT_HUGE & ADDR_MASK, PAT_HUGE);
const_assert_eq!(PAE_PDPTE_RESERVED, 0x1E6);
const_assert_eq!(PK_MASK, 0x7800_0000_0000_0000);
const_assert_eq!(ADDR_MASK, 0x000F_FFFF_FFFF_F000);
const_assert_eq!(field(0, 64), u64::MAX);
const_assert_eq!(field(13, 21), 0x1F_E000);

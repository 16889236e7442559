//! PAE paging ([`Pae`]): 32-bit virtual addresses, 64-bit entries, three levels.

use paging::{Entry, EntrySize, InvalidEntry, PageFlags, PageTableFormat, PhysAddr};
use static_assertions::const_assert_eq;

use super::{Codec, clamp_level, non_present};
use crate::bits::{P, PAE_PDPTE_RESERVED, field};

/// The PAE PD and PT entry: as IA-32e, but bits 62:52 are reserved (no software bit 52, no
/// protection keys: PKE applies to IA-32e paging only).
const CODEC: Codec = Codec { phys_bits: 52, reserved_top: 63, nx: true, long_mode: false };

/// The level of the page-directory-pointer table (the root).
const PDPT: u8 = 3;

/// Every bit a PAE PDPTE reserves: 2:1, 8:5 and 63:MAXPHYADDR (NX included).
const PDPTE_RESERVED: u64 = PAE_PDPTE_RESERVED | field(CODEC.phys_bits, 64);

/// PAE paging: a 4-entry PDPT (indexed by bits 31:30), then a PD and a PT of 512 8-byte
/// entries; 4 KiB and 2 MiB leaves, NX, 52-bit physical addresses.
///
/// A PDPTE has no R/W, U/S or NX bit (the CPU loads the four of them with CR3), so it
/// grants everything and cannot be a leaf: [`encode_table`](PageTableFormat::encode_table)
/// at level 3 sets P and the address only, and a PDPTE with a reserved bit set (PS
/// included) decodes as [`InvalidEntry::ReservedBits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Pae {}

impl PageTableFormat for Pae {
    const NAME: &'static str = "x86 PAE";
    const LEVELS: u8 = 3;
    const ENTRY_SIZE: EntrySize = EntrySize::Eight;
    const INDEX_BITS: &'static [u32] = &[9, 9, 2];
    /// 4 KiB (PTE) and 2 MiB (PDE) leaves.
    const LEAF_LEVELS: u8 = 0b011;
    const SIGN_EXTENDED: bool = false;
    const PAYLOAD_BITS: u32 = 63;
    /// The CPU loads the four PDPTEs with CR3 (SDM 4.4.1): each must point to a page
    /// directory for as long as the PDPT is a root.
    const ROOT_ENTRIES_LOADED_WITH_ROOT: bool = true;
    codec_constants!(CODEC);

    #[inline(always)]
    fn decode(raw: u64, level: u8) -> Entry {
        if clamp_level::<Self>(level) != PDPT {
            CODEC.decode::<Self>(raw, level)
        } else if raw & P == 0 {
            non_present(raw)
        } else if raw & PDPTE_RESERVED != 0 {
            Entry::Invalid(InvalidEntry::ReservedBits)
        } else {
            let flags = PageFlags::READABLE
                .union(PageFlags::WRITABLE)
                .union(PageFlags::USER)
                .union(PageFlags::EXECUTABLE);
            Entry::Table { frame: PhysAddr::new(raw & CODEC.addr(12)), flags }
        }
    }

    #[inline(always)]
    fn encode_leaf(frame: PhysAddr, flags: PageFlags, level: u8) -> u64 {
        CODEC.encode_leaf::<Self>(frame, flags, level)
    }

    #[inline(always)]
    fn next_table(raw: u64, level: u8) -> Option<PhysAddr> {
        if clamp_level::<Self>(level) == PDPT {
            // A PDPTE grants everything: present and no reserved bit is enough.
            (raw & (P | PDPTE_RESERVED) == P).then(|| PhysAddr::new(raw & CODEC.addr(12)))
        } else {
            CODEC.next_table(raw, level)
        }
    }

    #[inline(always)]
    fn mark_walked(raw: u64, level: u8, dirty: bool) -> u64 {
        if clamp_level::<Self>(level) == PDPT {
            raw
        } else {
            CODEC.mark_walked::<Self>(raw, level, dirty)
        }
    }

    #[inline(always)]
    fn encode_table(table: PhysAddr, level: u8) -> u64 {
        if clamp_level::<Self>(level) == PDPT {
            P | (table.as_u64() & CODEC.addr(12))
        } else {
            CODEC.table(table)
        }
    }
}

const_assert_eq!(<Pae as PageTableFormat>::VIRT_BITS, 32);
const_assert_eq!(<Pae as PageTableFormat>::SHIFTS[2], 21);
const_assert_eq!(PDPTE_RESERVED, 0xFFF0_0000_0000_01E6);

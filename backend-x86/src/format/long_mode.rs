//! IA-32e paging: 4-level ([`X86_64`]) and 5-level ([`X86_64La57`]).
//!
//! The two differ only in the number of 9-bit levels, so one macro writes both
//! implementations over the shared [`Codec`]; what they share with the other formats comes
//! from `codec_constants!` and `codec_methods!` in the parent module.

use paging::{EntrySize, PageTableFormat};
use static_assertions::const_assert_eq;

use super::Codec;

/// The IA-32e entry: 52-bit addresses, NX, bit 52 for software, protection keys in 62:59.
const CODEC: Codec = Codec { phys_bits: 52, reserved_top: 52, nx: true, long_mode: true };

macro_rules! long_mode {
    ($(#[$doc:meta])* $name:ident, $text:literal, $levels:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub enum $name {}

        impl PageTableFormat for $name {
            const NAME: &'static str = $text;
            const LEVELS: u8 = $levels;
            const ENTRY_SIZE: EntrySize = EntrySize::Eight;
            const INDEX_BITS: &'static [u32] = &[9; $levels];
            /// 4 KiB (PTE), 2 MiB (PDE) and 1 GiB (PDPTE) leaves.
            const LEAF_LEVELS: u8 = 0b111;
            const SIGN_EXTENDED: bool = true;
            const PAYLOAD_BITS: u32 = 63;
            codec_constants!(CODEC);
            codec_methods!(CODEC);
        }
    };
}

long_mode!(
    /// 4-level IA-32e paging (PML4, PDPT, PD, PT): 48-bit canonical virtual addresses.
    X86_64,
    "x86-64 4-level",
    4
);
long_mode!(
    /// 5-level IA-32e paging (CR4.LA57; PML5 above the four levels of [`X86_64`]): 57-bit
    /// canonical virtual addresses.
    X86_64La57,
    "x86-64 5-level",
    5
);

const_assert_eq!(<X86_64 as PageTableFormat>::VIRT_BITS, 48);
const_assert_eq!(<X86_64La57 as PageTableFormat>::VIRT_BITS, 57);
const_assert_eq!(<X86_64 as PageTableFormat>::SHIFTS[3], 30);
const_assert_eq!(<X86_64La57 as PageTableFormat>::SHIFTS[5], 48);
const_assert_eq!(<X86_64 as PageTableFormat>::INDEX_BITS.len(), 4);
const_assert_eq!(<X86_64La57 as PageTableFormat>::INDEX_BITS.len(), 5);

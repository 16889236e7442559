//! Legacy 32-bit paging ([`Legacy32`]): 4-byte entries, two levels.

use paging::{EntrySize, PageTableFormat};
use static_assertions::const_assert_eq;

use super::Codec;

/// The 32-bit entry: no NX (every page is executable), 32-bit addresses, and bits 63:32
/// (which a 4-byte entry cannot hold) treated as reserved.
const CODEC: Codec = Codec { phys_bits: 32, reserved_top: 64, nx: false, long_mode: false };

/// 32-bit paging (CR4.PAE = 0): a page directory and page tables of 1024 4-byte entries;
/// 4 KiB leaves, and 4 MiB leaves in the directory (with CR4.PSE).
///
/// Without NX every present page is executable, so [`EXECUTABLE`](paging::PageFlags::EXECUTABLE)
/// is [`IMPLIED`](PageTableFormat::IMPLIED) along with `READABLE`. There are no protection
/// keys and only bits 11:9 are free for software.
///
/// PSE-36 is not supported: [`PHYS_BITS`](PageTableFormat::PHYS_BITS) is 32, so bits 20:13
/// of a 4 MiB PDE (physical-address bits 39:32 under PSE-36) must be zero, like its
/// reserved bit 21, and a set one decodes as
/// [`InvalidEntry::ReservedBits`](paging::InvalidEntry::ReservedBits). So does any of
/// bits 63:32 of a present `raw` value; a non-present one decodes as the payload `raw >> 1`
/// whatever its width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Legacy32 {}

impl PageTableFormat for Legacy32 {
    const NAME: &'static str = "x86 32-bit";
    const LEVELS: u8 = 2;
    const ENTRY_SIZE: EntrySize = EntrySize::Four;
    const INDEX_BITS: &'static [u32] = &[10, 10];
    /// 4 KiB (PTE) and 4 MiB (PDE) leaves.
    const LEAF_LEVELS: u8 = 0b11;
    const SIGN_EXTENDED: bool = false;
    const PAYLOAD_BITS: u32 = 31;
    codec_constants!(CODEC);
    codec_methods!(CODEC);
}

const_assert_eq!(<Legacy32 as PageTableFormat>::VIRT_BITS, 32);
const_assert_eq!(<Legacy32 as PageTableFormat>::SHIFTS[2], 22);

//! The four x86 entry formats, and the codec they share.
//!
//! | format | levels | entry | leaves | NX | protection keys | software bits |
//! |---|---|---|---|---|---|---|
//! | [`X86_64`] | 4 | 8 bytes | 4 KiB, 2 MiB, 1 GiB | yes | yes | 9-11, 52 |
//! | [`X86_64La57`] | 5 | 8 bytes | 4 KiB, 2 MiB, 1 GiB | yes | yes | 9-11, 52 |
//! | [`Pae`] | 3 | 8 bytes | 4 KiB, 2 MiB | yes | no | 9-11 |
//! | [`Legacy32`] | 2 | 4 bytes | 4 KiB, 4 MiB | no | no | 9-11 |
//!
//! All four assume the control bits that make their whole encoding meaningful: EFER.NXE
//! (bit 63 is NX, not reserved), CR4.PGE (G), CR4.PSE for legacy 4 MiB pages, CR4.PKE for
//! protection keys (without it bits 62:59 are merely ignored), the PAT, and 1 GiB pages
//! (CPUID.80000001H:EDX.Page1GB; without it PS in a PDPTE is reserved).
//!
//! # Decoding
//!
//! A non-present entry (P = 0) is [`Entry::Empty`] if it is all zero, otherwise
//! [`Entry::Payload`] of its bits 63:1. A present entry is [`Entry::Invalid`] with
//! [`InvalidEntry::ReservedBits`] when a bit the SDM reserves is set, which is exactly when
//! a hardware walk through it would fault with RSVD = 1 (or, for a PAE PDPTE, when loading
//! CR3 would raise #GP):
//!
//! - address bits 51:MAXPHYADDR (none in the 64-bit formats, whose
//!   [`PHYS_BITS`](PageTableFormat::PHYS_BITS) is 52), and in PAE entries bits 62:52 too;
//! - in a huge leaf, the bits between the PAT bit and the page alignment (20:13 for 2 MiB,
//!   29:13 for 1 GiB, 21:13 for legacy 4 MiB: see [`Legacy32`] about PSE-36);
//! - PS (bit 7) where the SDM reserves it: in a PML4E and a PML5E, and in a PAE PDPTE (with
//!   the PDPTE's other reserved bits). These are the only levels where an x86 entry could
//!   claim to be a leaf of a level that has none, so the x86 formats report them as
//!   `ReservedBits`, as the hardware does, and never return
//!   [`InvalidEntry::LeafNotAllowed`];
//! - in [`Legacy32`], any of bits 63:32, which a 4-byte entry cannot hold.
//!
//! A level outside `1..=LEVELS` is clamped into it, as the trait's provided methods do.

/// Writes the associated constants that every x86 format takes from its [`Codec`]: the
/// physical width, the flags a leaf can express and those it always has, and linear leaves.
macro_rules! codec_constants {
    ($codec:expr) => {
        const PHYS_BITS: u32 = $codec.phys_bits;
        const SUPPORTED: paging::PageFlags = $codec.supported();
        const IMPLIED: paging::PageFlags = $codec.implied();
        // The address is one field of plain bits: consecutive frames are consecutive values.
        const LINEAR_LEAVES: bool = true;
    };
}

/// Writes the five entry methods of a format whose every level reads bit 7 as PS (or PAT),
/// each handing straight to its [`Codec`]: every format but [`Pae`], whose PDPT differs.
macro_rules! codec_methods {
    ($codec:expr) => {
        #[inline(always)]
        fn decode(raw: u64, level: u8) -> paging::Entry {
            $codec.decode::<Self>(raw, level)
        }

        #[inline(always)]
        fn encode_leaf(frame: paging::PhysAddr, flags: paging::PageFlags, level: u8) -> u64 {
            $codec.encode_leaf::<Self>(frame, flags, level)
        }

        #[inline(always)]
        fn next_table(raw: u64, level: u8) -> Option<paging::PhysAddr> {
            $codec.next_table(raw, level)
        }

        #[inline(always)]
        fn leaf_frame(raw: u64, level: u8) -> Option<paging::PhysAddr> {
            $codec.leaf_frame::<Self>(raw, level)
        }

        #[inline(always)]
        fn mark_walked(raw: u64, level: u8, dirty: bool) -> u64 {
            $codec.mark_walked::<Self>(raw, level, dirty)
        }

        #[inline(always)]
        fn encode_table(table: paging::PhysAddr, _level: u8) -> u64 {
            $codec.table(table)
        }
    };
}

mod legacy;
mod long_mode;
mod pae;

pub use legacy::Legacy32;
pub use long_mode::{X86_64, X86_64La57};
pub use pae::Pae;

use paging::{Entry, InvalidEntry, PageFlags, PageTableFormat, PhysAddr};

use crate::bits::{
    A, D, G, NX, P, PAT_4K, PAT_HUGE, PCD, PK_MASK, PK_SHIFT, PS, PWT, RW, SW_HIGH, SW0, SW1, SW2,
    US, field,
};

/// The flags that sit on the same bit in every x86 leaf, 32-bit or 64-bit.
const COMMON: [(PageFlags, u64); 10] = [
    (PageFlags::WRITABLE, RW),
    (PageFlags::USER, US),
    (PageFlags::WRITE_THROUGH, PWT),
    (PageFlags::NO_CACHE, PCD),
    (PageFlags::ACCESSED, A),
    (PageFlags::DIRTY, D),
    (PageFlags::GLOBAL, G),
    (PageFlags::SOFTWARE_0, SW0),
    (PageFlags::SOFTWARE_1, SW1),
    (PageFlags::SOFTWARE_2, SW2),
];

/// The leaf bits that sit where [`PageFlags`] keeps the same flag: RW, U/S, PWT, PCD, A,
/// D, G and the three low software bits. A mask converts them both ways.
const SAME_BITS: u64 = RW | US | PWT | PCD | A | D | G | SW0 | SW1 | SW2;

// The generic flags mirror these bits; the fast conversion relies on it.
static_assertions::const_assert!({
    let mut i = 0;
    let mut same = true;
    while i < COMMON.len() {
        same &= COMMON[i].0.bits() as u64 == COMMON[i].1;
        i += 1;
    }
    same && PageFlags::READABLE.bits() as u64 == P
});

/// What tells one x86 entry family from another; the shared encoder and decoder read it.
#[derive(Clone, Copy)]
struct Codec {
    /// Physical-address bits: an address field ends at bit `phys_bits - 1`.
    phys_bits: u32,
    /// Bits `reserved_top - 1` to `phys_bits` are reserved in every present entry.
    reserved_top: u32,
    /// Bit 63 is NX.
    nx: bool,
    /// IA-32e leaves: bit 52 is `SOFTWARE_3` and bits 62:59 the protection key.
    long_mode: bool,
}

impl Codec {
    /// The flags a leaf can express.
    #[inline]
    const fn supported(self) -> PageFlags {
        let mut flags = PageFlags::READABLE.union(PageFlags::EXECUTABLE).union(PageFlags::PAT);
        let mut i = 0;
        while i < COMMON.len() {
            flags = flags.union(COMMON[i].0);
            i += 1;
        }
        if self.long_mode {
            flags = flags.union(PageFlags::SOFTWARE_3).union(PageFlags::PROTECTION_KEY);
        }
        flags
    }

    /// The flags every present leaf has: readable, and executable without NX.
    #[inline]
    const fn implied(self) -> PageFlags {
        if self.nx { PageFlags::READABLE } else { PageFlags::READABLE.union(PageFlags::EXECUTABLE) }
    }

    /// The address field of an entry whose target is aligned to `1 << shift`.
    #[inline]
    const fn addr(self, shift: u32) -> u64 {
        field(shift, self.phys_bits)
    }

    /// The reserved bits above the address field.
    #[inline]
    const fn high_reserved(self) -> u64 {
        field(self.phys_bits, self.reserved_top)
    }

    /// Encodes a leaf: a 4 KiB one if `huge_shift` is `None`, else one of `1 << huge_shift`.
    #[inline(always)]
    fn leaf(self, frame: PhysAddr, flags: PageFlags, huge_shift: Option<u32>) -> u64 {
        let bits = u64::from(flags.bits());
        let mut raw =
            P | (frame.as_u64() & self.addr(huge_shift.unwrap_or(12))) | (bits & SAME_BITS);
        let pat = if huge_shift.is_some() {
            raw |= PS;
            PAT_HUGE
        } else {
            PAT_4K
        };
        if flags.contains(PageFlags::PAT) {
            raw |= pat;
        }
        if self.nx && !flags.contains(PageFlags::EXECUTABLE) {
            raw |= NX;
        }
        if self.long_mode {
            if flags.contains(PageFlags::SOFTWARE_3) {
                raw |= SW_HIGH;
            }
            raw |= u64::from(flags.protection_key()) << PK_SHIFT;
        }
        raw
    }

    /// Encodes a pointer to a table that grants everything.
    #[inline(always)]
    fn table(self, table: PhysAddr) -> u64 {
        P | RW | US | (table.as_u64() & self.addr(12))
    }

    /// Decodes a present leaf (see [`Codec::leaf`] for `huge_shift`).
    #[inline(always)]
    fn decode_leaf(self, raw: u64, huge_shift: Option<u32>) -> Entry {
        let (shift, pat) = match huge_shift {
            Some(shift) => (shift, PAT_HUGE),
            None => (12, PAT_4K),
        };
        if raw & (self.high_reserved() | field(13, shift)) != 0 {
            return Entry::Invalid(InvalidEntry::ReservedBits);
        }
        // P is set: it reads as READABLE, the rest of the low bits as themselves.
        let mut bits = (raw & (SAME_BITS | P)) as u32;
        bits |= u32::from(raw & pat != 0) * PageFlags::PAT.bits();
        bits |= u32::from(!self.nx || raw & NX == 0) * PageFlags::EXECUTABLE.bits();
        if self.long_mode {
            bits |= u32::from(raw & SW_HIGH != 0) * PageFlags::SOFTWARE_3.bits();
            // The mask keeps four bits: the field fits.
            bits |= (((raw & PK_MASK) >> PK_SHIFT) as u32) << 16;
        }
        let flags = PageFlags::from_bits_retain(bits);
        Entry::Leaf { frame: PhysAddr::new(raw & self.addr(shift)), flags }
    }

    /// Decodes a present pointer to a next-level table.
    #[inline(always)]
    fn decode_table(self, raw: u64) -> Entry {
        if raw & self.high_reserved() != 0 {
            return Entry::Invalid(InvalidEntry::ReservedBits);
        }
        // P, RW, U/S and A sit where READABLE, WRITABLE, USER and ACCESSED do.
        let mut bits = (raw & (P | RW | US | A)) as u32;
        bits |= u32::from(!self.nx || raw & NX == 0) * PageFlags::EXECUTABLE.bits();
        Entry::Table {
            frame: PhysAddr::new(raw & self.addr(12)),
            flags: PageFlags::from_bits_retain(bits),
        }
    }

    /// The walk's fast path: a present table entry (no PS) that grants RW, U/S and X and
    /// has no reserved bit.
    #[inline(always)]
    fn next_table(self, raw: u64, level: u8) -> Option<PhysAddr> {
        let checked = P | RW | US | PS | NX | self.high_reserved();
        (level > 1 && raw & checked == P | RW | US).then(|| PhysAddr::new(raw & self.addr(12)))
    }

    /// The frame of a present leaf with no reserved bit set, as [`Codec::decode`] would
    /// find it, without decoding its flags.
    #[inline(always)]
    fn leaf_frame<F: PageTableFormat>(self, raw: u64, level: u8) -> Option<PhysAddr> {
        let shift = if level == 1 {
            12
        } else if raw & PS != 0 && level <= F::LEVELS && F::leaf_allowed(level) {
            F::SHIFTS[usize::from(level)]
        } else {
            return None;
        };
        let reserved = self.high_reserved() | if shift > 12 { field(13, shift) } else { 0 };
        (raw & P != 0 && raw & reserved == 0).then(|| PhysAddr::new(raw & self.addr(shift)))
    }

    /// Decodes an entry at a level where bit 7 is PS (or, at level 1, PAT): every level of
    /// every format but the PAE PDPT.
    #[inline(always)]
    fn decode<F: PageTableFormat>(self, raw: u64, level: u8) -> Entry {
        let level = clamp_level::<F>(level);
        if raw & P == 0 {
            non_present(raw)
        } else if level == 1 {
            self.decode_leaf(raw, None)
        } else if raw & PS == 0 {
            self.decode_table(raw)
        } else if F::leaf_allowed(level) {
            self.decode_leaf(raw, Some(F::SHIFTS[usize::from(level)]))
        } else {
            // PS in a PML4E or PML5E: the SDM reserves bit 7 there.
            Entry::Invalid(InvalidEntry::ReservedBits)
        }
    }

    /// Sets A on a present entry, and D too on a leaf when `dirty`: every level of every
    /// format but the PAE PDPT, whose bit 5 is reserved.
    #[inline]
    fn mark_walked<F: PageTableFormat>(self, raw: u64, level: u8, dirty: bool) -> u64 {
        if raw & P == 0 {
            return raw;
        }
        let leaf = clamp_level::<F>(level) == 1 || raw & PS != 0;
        raw | A | if leaf && dirty { D } else { 0 }
    }

    /// Encodes a leaf at `level` of format `F`: PS and a huge PAT above level 1.
    #[inline(always)]
    fn encode_leaf<F: PageTableFormat>(self, frame: PhysAddr, flags: PageFlags, level: u8) -> u64 {
        let level = clamp_level::<F>(level);
        let huge_shift = (level > 1).then(|| F::SHIFTS[usize::from(level)]);
        self.leaf(frame, flags, huge_shift)
    }
}

/// Clamps `level` into `1..=F::LEVELS`.
#[inline]
fn clamp_level<F: PageTableFormat>(level: u8) -> u8 {
    level.clamp(1, F::LEVELS)
}

/// Decodes an entry whose P bit is clear.
#[inline]
const fn non_present(raw: u64) -> Entry {
    if raw == 0 { Entry::Empty } else { Entry::Payload(raw >> 1) }
}

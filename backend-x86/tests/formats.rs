//! The x86 formats against the bit positions of the Intel SDM vol. 3A ch. 4.
//!
//! The expected values are written as plain numbers, not with `paging_x86::bits`, so that
//! the constants are checked too.

use paging::{Entry, InvalidEntry, PageFlags, PageTableFormat, PhysAddr, VirtAddr};
use paging_x86::{Legacy32, Pae, X86_64, X86_64La57};
use proptest::prelude::*;

const KIB4: u64 = 1 << 12;
const MIB2: u64 = 1 << 21;
const MIB4: u64 = 1 << 22;
const GIB1: u64 = 1 << 30;
const NX: u64 = 1 << 63;
const RSVD: Entry = Entry::Invalid(InvalidEntry::ReservedBits);

fn rw() -> PageFlags {
    PageFlags::READABLE | PageFlags::WRITABLE
}

/// The raw leaf `F` makes of `flags` at `level`, mapping frame 0.
fn leaf<F: PageTableFormat>(flags: PageFlags, level: u8) -> u64 {
    F::encode_leaf(PhysAddr::ZERO, flags, level)
}

/// Checks that each flag lands on the bit the SDM gives it, at every leaf level of `F`.
/// `pat_huge` is where PAT goes in a huge leaf; `high` says whether bit 52 and the
/// protection key exist; `nx` whether bit 63 is NX.
fn check_flag_bits<F: PageTableFormat>(high: bool, nx: bool) {
    let x = PageFlags::EXECUTABLE;
    for level in (1..=F::LEVELS).filter(|&l| F::leaf_allowed(l)) {
        // P, and PS in a huge leaf.
        let base = if level == 1 { 1 } else { 1 | 1 << 7 };
        let pat = if level == 1 { 1 << 7 } else { 1 << 12 };
        let mut expected = vec![
            (PageFlags::READABLE, 0),
            (PageFlags::WRITABLE, 1 << 1),
            (PageFlags::USER, 1 << 2),
            (PageFlags::WRITE_THROUGH, 1 << 3),
            (PageFlags::NO_CACHE, 1 << 4),
            (PageFlags::ACCESSED, 1 << 5),
            (PageFlags::DIRTY, 1 << 6),
            (PageFlags::GLOBAL, 1 << 8),
            (PageFlags::PAT, pat),
            (PageFlags::SOFTWARE_0, 1 << 9),
            (PageFlags::SOFTWARE_1, 1 << 10),
            (PageFlags::SOFTWARE_2, 1 << 11),
        ];
        if high {
            expected.push((PageFlags::SOFTWARE_3, 1 << 52));
            for key in 0..16u8 {
                expected.push((PageFlags::empty().with_protection_key(key), u64::from(key) << 59));
            }
        }
        for (flag, bit) in expected {
            assert!(F::SUPPORTED.contains(flag), "{}: {flag:?} supported", F::NAME);
            assert_eq!(
                leaf::<F>(flag | x, level),
                base | bit,
                "{}: {flag:?} at level {level}",
                F::NAME
            );
        }
        let nx_bit = if nx { NX } else { 0 };
        assert_eq!(leaf::<F>(PageFlags::READABLE, level), base | nx_bit, "{} NX", F::NAME);
        assert_eq!(leaf::<F>(PageFlags::empty(), level), base | nx_bit, "{} NX", F::NAME);
        // Everything at once: the bits are distinct.
        let all = F::SUPPORTED;
        let raw = leaf::<F>(all, level);
        assert_eq!(F::decode(raw, level), Entry::Leaf { frame: PhysAddr::ZERO, flags: all });
    }
}

#[test]
fn flags_land_on_the_sdm_bits() {
    check_flag_bits::<X86_64>(true, true);
    check_flag_bits::<X86_64La57>(true, true);
    check_flag_bits::<Pae>(false, true);
    check_flag_bits::<Legacy32>(false, false);
}

#[test]
fn supported_and_implied() {
    let common = PageFlags::READABLE
        | PageFlags::WRITABLE
        | PageFlags::EXECUTABLE
        | PageFlags::USER
        | PageFlags::GLOBAL
        | PageFlags::ACCESSED
        | PageFlags::DIRTY
        | PageFlags::NO_CACHE
        | PageFlags::WRITE_THROUGH
        | PageFlags::PAT
        | PageFlags::SOFTWARE_0
        | PageFlags::SOFTWARE_1
        | PageFlags::SOFTWARE_2;
    let long = common | PageFlags::SOFTWARE_3 | PageFlags::PROTECTION_KEY;
    assert_eq!(X86_64::SUPPORTED, long);
    assert_eq!(X86_64La57::SUPPORTED, long);
    assert_eq!(Pae::SUPPORTED, common);
    assert_eq!(Legacy32::SUPPORTED, common);
    assert_eq!(X86_64::IMPLIED, PageFlags::READABLE);
    assert_eq!(X86_64La57::IMPLIED, PageFlags::READABLE);
    assert_eq!(Pae::IMPLIED, PageFlags::READABLE);
    assert_eq!(Legacy32::IMPLIED, PageFlags::READABLE | PageFlags::EXECUTABLE);
}

#[test]
fn worked_examples() {
    let raw = X86_64::encode_leaf(PhysAddr::new(0x1234_5000), rw(), 1);
    assert_eq!(raw, 0x1234_5000 | 0b11 | 1 << 63);
    let raw = X86_64::encode_leaf(PhysAddr::new(0x4000_0000), rw() | PageFlags::EXECUTABLE, 3);
    assert_eq!(raw, 0x4000_0000 | 0b11 | 1 << 7);
    let raw = Pae::encode_leaf(PhysAddr::new(0x1_0020_0000), PageFlags::USER, 2);
    assert_eq!(raw, 0x1_0020_0000 | 0b101 | 1 << 7 | 1 << 63);
    let raw = Legacy32::encode_leaf(PhysAddr::new(0xFFC0_0000), rw() | PageFlags::PAT, 2);
    assert_eq!(raw, 0xFFC0_0000 | 0b11 | 1 << 7 | 1 << 12);
    let raw = Legacy32::encode_leaf(PhysAddr::new(0xFFFF_F000), PageFlags::PAT, 1);
    assert_eq!(raw, 0xFFFF_F000 | 1 | 1 << 7);
}

#[test]
fn encode_leaf_masks_the_frame() {
    // Misaligned or too-wide frames never spill into flag bits.
    assert_eq!(
        X86_64::encode_leaf(PhysAddr::new(u64::MAX), PageFlags::EXECUTABLE, 1),
        0x000F_FFFF_FFFF_F001
    );
    assert_eq!(
        X86_64::encode_leaf(PhysAddr::new(u64::MAX), PageFlags::EXECUTABLE, 2),
        0x000F_FFFF_FFE0_0081
    );
    assert_eq!(
        X86_64::encode_leaf(PhysAddr::new(u64::MAX), PageFlags::EXECUTABLE, 3),
        0x000F_FFFF_C000_0081
    );
    assert_eq!(Legacy32::encode_leaf(PhysAddr::new(u64::MAX), PageFlags::empty(), 1), 0xFFFF_F001);
    assert_eq!(Legacy32::encode_leaf(PhysAddr::new(u64::MAX), PageFlags::empty(), 2), 0xFFC0_0081);
    assert_eq!(X86_64::encode_table(PhysAddr::new(u64::MAX), 2), 0x000F_FFFF_FFFF_F007);
    assert_eq!(Legacy32::encode_table(PhysAddr::new(u64::MAX), 2), 0xFFFF_F007);
}

#[test]
fn tables_grant_everything() {
    let all = PageFlags::READABLE | PageFlags::WRITABLE | PageFlags::USER | PageFlags::EXECUTABLE;
    let t = PhysAddr::new(0x7_6543_2000);
    for level in 2..=4 {
        assert_eq!(X86_64::encode_table(t, level), 0x7_6543_2007);
        assert_eq!(X86_64::decode(0x7_6543_2007, level), Entry::Table { frame: t, flags: all });
    }
    for level in 2..=5 {
        assert_eq!(X86_64La57::encode_table(t, level), 0x7_6543_2007);
    }
    assert_eq!(Pae::encode_table(t, 2), 0x7_6543_2007);
    // The PDPTE has no R/W or U/S: P and the address only.
    assert_eq!(Pae::encode_table(t, 3), 0x7_6543_2001);
    assert_eq!(Pae::decode(0x7_6543_2001, 3), Entry::Table { frame: t, flags: all });
    // PWT and PCD are allowed in a PDPTE; the software bits are ignored.
    assert_eq!(Pae::decode(0x7_6543_2E19, 3), Entry::Table { frame: t, flags: all });
    let t32 = PhysAddr::new(0x8765_4000);
    assert_eq!(Legacy32::encode_table(t32, 2), 0x8765_4007);
    assert_eq!(Legacy32::decode(0x8765_4007, 2), Entry::Table { frame: t32, flags: all });

    // A table entry's R/W, U/S, NX and A are reported.
    assert_eq!(
        X86_64::decode(0x7_6543_2021 | NX, 4),
        Entry::Table { frame: t, flags: PageFlags::READABLE | PageFlags::ACCESSED }
    );
    assert_eq!(
        Legacy32::decode(0x8765_4001, 2),
        Entry::Table { frame: t32, flags: PageFlags::READABLE | PageFlags::EXECUTABLE }
    );
    // Bits the SDM ignores in a non-leaf IA-32e entry: 6, 8, 11:9, 62:52.
    let ignored = 1 << 6 | 1 << 8 | 0b111 << 9 | 0x7FF << 52;
    assert_eq!(X86_64::decode(0x7_6543_2007 | ignored, 4), Entry::Table { frame: t, flags: all });
}

#[test]
fn ps_and_pat_positions() {
    let pat = PageFlags::PAT | PageFlags::EXECUTABLE;
    assert_eq!(X86_64::encode_leaf(PhysAddr::ZERO, pat, 1), 1 | 1 << 7);
    assert_eq!(X86_64::encode_leaf(PhysAddr::ZERO, pat, 2), 1 | 1 << 7 | 1 << 12);
    assert_eq!(X86_64::encode_leaf(PhysAddr::ZERO, pat, 3), 1 | 1 << 7 | 1 << 12);
    assert_eq!(Pae::encode_leaf(PhysAddr::ZERO, pat, 2), 1 | 1 << 7 | 1 << 12);
    // At level 1 bit 7 is PAT, not PS.
    assert_eq!(
        X86_64::decode(1 | 1 << 7 | 0x5000, 1),
        Entry::Leaf { frame: PhysAddr::new(0x5000), flags: PageFlags::READABLE | pat }
    );
    // Bit 12 is an address bit at level 1 and in a table pointer, PAT in a huge leaf.
    assert_eq!(
        X86_64::decode(1 | 1 << 12, 1),
        Entry::Leaf {
            frame: PhysAddr::new(0x1000),
            flags: PageFlags::READABLE | PageFlags::EXECUTABLE
        }
    );
    assert_eq!(
        X86_64::decode(1 | 1 << 7 | 1 << 12 | MIB2, 2),
        Entry::Leaf { frame: PhysAddr::new(MIB2), flags: PageFlags::READABLE | pat }
    );
    assert_eq!(
        Legacy32::decode(1 | 1 << 7 | 1 << 12 | MIB4, 2),
        Entry::Leaf { frame: PhysAddr::new(MIB4), flags: PageFlags::READABLE | pat }
    );
}

#[test]
fn reserved_bits() {
    // Huge leaves: the bits between PAT (12) and the alignment.
    let huge = 1 | 1 << 7;
    for bit in 13..21 {
        assert_eq!(X86_64::decode(huge | 1 << bit, 2), RSVD, "2 MiB bit {bit}");
        assert_eq!(Pae::decode(huge | 1 << bit, 2), RSVD, "PAE 2 MiB bit {bit}");
    }
    for bit in 13..30 {
        assert_eq!(X86_64::decode(huge | 1 << bit, 3), RSVD, "1 GiB bit {bit}");
        assert_eq!(X86_64La57::decode(huge | 1 << bit, 3), RSVD, "1 GiB bit {bit}");
    }
    assert!(matches!(X86_64::decode(huge | 1 << 21, 2), Entry::Leaf { .. }));
    assert!(matches!(X86_64::decode(huge | 1 << 30, 3), Entry::Leaf { .. }));
    // A table pointer at level 2 or 3 has no such bits.
    assert!(matches!(X86_64::decode(1 | 1 << 13, 3), Entry::Table { .. }));

    // PS in a PML4E or PML5E is a reserved bit.
    assert_eq!(X86_64::decode(huge, 4), RSVD);
    assert_eq!(X86_64La57::decode(huge, 4), RSVD);
    assert_eq!(X86_64La57::decode(huge, 5), RSVD);

    // IA-32e leaves ignore 58:52; PAE reserves 62:52.
    let pte = 1 | 0x5000;
    for bit in 52..63 {
        assert!(matches!(X86_64::decode(pte | 1 << bit, 1), Entry::Leaf { .. }), "bit {bit}");
        assert_eq!(Pae::decode(pte | 1 << bit, 1), RSVD, "PAE PTE bit {bit}");
        assert_eq!(Pae::decode(pte | 1 << bit, 2), RSVD, "PAE PDE bit {bit}");
        assert_eq!(Pae::decode(huge | 1 << bit, 2), RSVD, "PAE 2 MiB bit {bit}");
    }
    assert!(matches!(Pae::decode(pte | NX, 1), Entry::Leaf { .. }));
    assert!(matches!(Pae::decode(pte | NX, 2), Entry::Table { .. }));

    // The PAE PDPTE: 2:1, 8:5 and 63:52.
    for bit in [1, 2, 5, 6, 7, 8, 52, 62, 63] {
        assert_eq!(Pae::decode(pte | 1 << bit, 3), RSVD, "PDPTE bit {bit}");
    }
    for bit in [3, 4, 9, 10, 11, 12, 51] {
        assert!(matches!(Pae::decode(pte | 1 << bit, 3), Entry::Table { .. }), "PDPTE bit {bit}");
    }

    // Legacy 4 MiB PDE: 21 reserved, 20:13 (PSE-36 address bits) too with 32-bit addresses.
    for bit in 13..22 {
        assert_eq!(Legacy32::decode(huge | 1 << bit, 2), RSVD, "4 MiB bit {bit}");
    }
    assert!(matches!(Legacy32::decode(huge | 1 << 22, 2), Entry::Leaf { .. }));
    // A 4-byte entry has no bits 63:32.
    for bit in 32..64 {
        assert_eq!(Legacy32::decode(pte | 1 << bit, 1), RSVD, "legacy bit {bit}");
        assert_eq!(Legacy32::decode(pte | 1 << bit, 2), RSVD, "legacy bit {bit}");
    }
}

#[test]
fn non_present_entries() {
    fn check<F: PageTableFormat>() {
        for level in 0..=F::LEVELS + 1 {
            assert_eq!(F::decode(0, level), Entry::Empty);
            assert_eq!(F::decode(2, level), Entry::Payload(1));
            assert_eq!(F::decode(u64::MAX - 1, level), Entry::Payload(u64::MAX >> 1));
        }
        let top = (1u64 << F::PAYLOAD_BITS) - 1;
        assert_eq!(F::encode_payload(top), Some(top << 1));
        assert_eq!(F::encode_payload(top + 1), None);
        assert_eq!(F::encode_payload(0), None);
        assert_eq!(F::decode(top << 1, 1), Entry::Payload(top));
    }
    check::<X86_64>();
    check::<X86_64La57>();
    check::<Pae>();
    check::<Legacy32>();
    assert_eq!(X86_64::PAYLOAD_BITS, 63);
    assert_eq!(Legacy32::PAYLOAD_BITS, 31);
    // A legacy payload fits the 4-byte entry.
    assert_eq!(Legacy32::encode_payload(0x7FFF_FFFF), Some(0xFFFF_FFFE));
}

#[test]
fn canonical_addresses() {
    let canon = |raw| X86_64::is_canonical(VirtAddr::new(raw));
    assert!(canon(0));
    assert!(canon(0x0000_7FFF_FFFF_FFFF));
    assert!(!canon(0x0000_8000_0000_0000));
    assert!(!canon(0xFFFF_7FFF_FFFF_FFFF));
    assert!(canon(0xFFFF_8000_0000_0000));
    assert!(canon(u64::MAX));

    let canon57 = |raw| X86_64La57::is_canonical(VirtAddr::new(raw));
    assert!(canon57(0x0000_8000_0000_0000));
    assert!(canon57(0x00FF_FFFF_FFFF_FFFF));
    assert!(!canon57(0x0100_0000_0000_0000));
    assert!(!canon57(0xFEFF_FFFF_FFFF_FFFF));
    assert!(canon57(0xFF00_0000_0000_0000));
    assert!(canon57(u64::MAX));

    for canon32 in [Pae::is_canonical, Legacy32::is_canonical] {
        assert!(canon32(VirtAddr::new(0)));
        assert!(canon32(VirtAddr::new(0xFFFF_FFFF)));
        assert!(!canon32(VirtAddr::new(0x1_0000_0000)));
        assert!(!canon32(VirtAddr::new(u64::MAX)));
    }

    let half =
        |raw| X86_64::canonical_half(VirtAddr::new(raw)).map(|(a, b)| (a.as_u64(), b.as_u64()));
    assert_eq!(half(0x1000), Some((0, 0x0000_7FFF_FFFF_FFFF)));
    assert_eq!(half(0xFFFF_8000_0000_1000), Some((0xFFFF_8000_0000_0000, u64::MAX)));
    assert_eq!(half(0x0000_8000_0000_0000), None);
    assert_eq!(
        Legacy32::canonical_half(VirtAddr::new(0xC000_0000)),
        Some((VirtAddr::ZERO, VirtAddr::new(0xFFFF_FFFF)))
    );
}

#[test]
fn geometry() {
    assert_eq!(
        (X86_64::VIRT_BITS, X86_64La57::VIRT_BITS, Pae::VIRT_BITS, Legacy32::VIRT_BITS),
        (48, 57, 32, 32)
    );
    assert_eq!(
        (X86_64::PHYS_BITS, X86_64La57::PHYS_BITS, Pae::PHYS_BITS, Legacy32::PHYS_BITS),
        (52, 52, 52, 32)
    );
    assert_eq!(X86_64::ENTRY_SIZE.bytes(), 8);
    assert_eq!(Pae::ENTRY_SIZE.bytes(), 8);
    assert_eq!(Legacy32::ENTRY_SIZE.bytes(), 4);

    // X86_64
    for level in 1..=4 {
        assert_eq!(X86_64::entries(level), 512);
    }
    let sizes: Vec<u64> = (1..=4).map(X86_64::leaf_size).collect();
    assert_eq!(sizes, [KIB4, MIB2, GIB1, 1 << 39]);
    assert_eq!(X86_64::level_for_size(KIB4), Some(1));
    assert_eq!(X86_64::level_for_size(MIB2), Some(2));
    assert_eq!(X86_64::level_for_size(GIB1), Some(3));
    assert_eq!(X86_64::level_for_size(1 << 39), None);
    assert_eq!(X86_64::level_for_size(MIB4), None);
    let a = VirtAddr::new(0xFFFF_8765_4321_F000);
    let idx: Vec<usize> = (1..=4).map(|l| X86_64::index(a, l)).collect();
    assert_eq!(idx, [0x1F, 0x19, 0x195, 0x10E]);
    assert!(!X86_64::leaf_allowed(4));
    assert!(!X86_64::leaf_allowed(0));

    // X86_64La57
    assert_eq!(X86_64La57::entries(5), 512);
    assert_eq!(X86_64La57::leaf_size(5), 1 << 48);
    assert_eq!(X86_64La57::level_for_size(GIB1), Some(3));
    assert_eq!(X86_64La57::level_for_size(1 << 39), None);
    assert_eq!(X86_64La57::index(VirtAddr::new(0xFF00_0000_0000_0000), 5), 256);
    assert_eq!(X86_64La57::index(VirtAddr::new(0x00FF_FFFF_FFFF_FFFF), 5), 255);
    assert_eq!(X86_64La57::index(a, 4), 0x10E);

    // Pae
    assert_eq!((Pae::entries(1), Pae::entries(2), Pae::entries(3)), (512, 512, 4));
    assert_eq!((Pae::leaf_size(1), Pae::leaf_size(2), Pae::leaf_size(3)), (KIB4, MIB2, GIB1));
    assert_eq!(Pae::level_for_size(KIB4), Some(1));
    assert_eq!(Pae::level_for_size(MIB2), Some(2));
    assert_eq!(Pae::level_for_size(GIB1), None);
    let b = VirtAddr::new(0xC07F_E123);
    assert_eq!((Pae::index(b, 3), Pae::index(b, 2), Pae::index(b, 1)), (3, 3, 0x1FE));

    // Legacy32
    assert_eq!((Legacy32::entries(1), Legacy32::entries(2)), (1024, 1024));
    assert_eq!((Legacy32::leaf_size(1), Legacy32::leaf_size(2)), (KIB4, MIB4));
    assert_eq!(Legacy32::level_for_size(MIB4), Some(2));
    assert_eq!(Legacy32::level_for_size(MIB2), None);
    assert_eq!((Legacy32::index(b, 2), Legacy32::index(b, 1)), (0x301, 0x3FE));
}

// ---- properties ------------------------------------------------------------------------

/// Flags within `F::SUPPORTED`.
fn flags_of<F: PageTableFormat>() -> impl Strategy<Value = PageFlags> {
    any::<u32>().prop_map(|bits| PageFlags::from_bits_truncate(bits) & F::SUPPORTED)
}

/// A leaf level of `F`, and a frame aligned to it within `F::PHYS_BITS`.
fn leaf_of<F: PageTableFormat>() -> impl Strategy<Value = (u8, PhysAddr)> {
    let levels: Vec<u8> = (1..=F::LEVELS).filter(|&l| F::leaf_allowed(l)).collect();
    (proptest::sample::select(levels), any::<u64>()).prop_map(|(level, raw)| {
        let addr = raw & ((1u64 << F::PHYS_BITS) - 1);
        (level, PhysAddr::new(addr).align_down(F::leaf_size(level)))
    })
}

fn round_trip<F: PageTableFormat>(
    flags: PageFlags,
    level: u8,
    frame: PhysAddr,
) -> Result<(), TestCaseError> {
    let raw = F::encode_leaf(frame, flags, level);
    prop_assert_eq!(F::decode(raw, level), Entry::Leaf { frame, flags: flags | F::IMPLIED });
    if F::ENTRY_SIZE.bytes() == 4 {
        prop_assert_eq!(raw >> 32, 0);
    }
    Ok(())
}

fn table_round_trip<F: PageTableFormat>(raw: u64) -> Result<(), TestCaseError> {
    let table = PhysAddr::new(raw & ((1u64 << F::PHYS_BITS) - 1)).align_down(KIB4);
    let all = PageFlags::READABLE | PageFlags::WRITABLE | PageFlags::USER | PageFlags::EXECUTABLE;
    for level in 2..=F::LEVELS {
        let entry = F::decode(F::encode_table(table, level), level);
        prop_assert_eq!(entry, Entry::Table { frame: table, flags: all });
    }
    Ok(())
}

/// Whatever `decode` says is self-consistent.
fn decode_total<F: PageTableFormat>(raw: u64, level: u8) -> Result<(), TestCaseError> {
    match F::decode(raw, level) {
        Entry::Empty => prop_assert_eq!(raw, 0),
        Entry::Payload(p) => {
            prop_assert_eq!(raw & 1, 0);
            prop_assert_eq!(p, raw >> 1);
        }
        Entry::Leaf { frame, flags } => {
            prop_assert_eq!(raw & 1, 1);
            prop_assert!(F::SUPPORTED.contains(flags) && flags.contains(F::IMPLIED));
            prop_assert!(F::phys_in_range(frame));
            let level = level.clamp(1, F::LEVELS);
            prop_assert!(F::leaf_allowed(level));
            prop_assert!(frame.is_aligned(F::leaf_size(level)));
            // Re-encoding gives the same entry back, but for bits the CPU ignores.
            let again = F::encode_leaf(frame, flags, level);
            prop_assert_eq!(F::decode(again, level), Entry::Leaf { frame, flags });
        }
        Entry::Table { frame, .. } => {
            prop_assert_eq!(raw & 1, 1);
            prop_assert!(F::phys_in_range(frame) && frame.is_aligned(KIB4));
        }
        Entry::Invalid(why) => {
            prop_assert_eq!(raw & 1, 1);
            prop_assert_eq!(why, InvalidEntry::ReservedBits);
        }
    }
    // Encoding is total as well.
    let _ = F::encode_leaf(PhysAddr::new(raw), PageFlags::from_bits_retain(raw as u32), level);
    let _ = F::encode_table(PhysAddr::new(raw), level);
    let _ = F::encode_payload(raw);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn round_trip_x86_64(flags in flags_of::<X86_64>(), (level, frame) in leaf_of::<X86_64>()) {
        round_trip::<X86_64>(flags, level, frame)?;
    }

    #[test]
    fn round_trip_la57(flags in flags_of::<X86_64La57>(), (level, frame) in leaf_of::<X86_64La57>()) {
        round_trip::<X86_64La57>(flags, level, frame)?;
    }

    #[test]
    fn round_trip_pae(flags in flags_of::<Pae>(), (level, frame) in leaf_of::<Pae>()) {
        round_trip::<Pae>(flags, level, frame)?;
    }

    #[test]
    fn round_trip_legacy(flags in flags_of::<Legacy32>(), (level, frame) in leaf_of::<Legacy32>()) {
        round_trip::<Legacy32>(flags, level, frame)?;
    }

    #[test]
    fn tables_round_trip(raw in any::<u64>()) {
        table_round_trip::<X86_64>(raw)?;
        table_round_trip::<X86_64La57>(raw)?;
        table_round_trip::<Pae>(raw)?;
        table_round_trip::<Legacy32>(raw)?;
    }

    #[test]
    fn payloads_round_trip(payload in 1..=u64::MAX >> 1) {
        for (encoded, bits, decoded) in [
            (X86_64::encode_payload(payload), X86_64::PAYLOAD_BITS, X86_64::decode(payload << 1, 1)),
            (Pae::encode_payload(payload), Pae::PAYLOAD_BITS, Pae::decode(payload << 1, 3)),
            (Legacy32::encode_payload(payload), Legacy32::PAYLOAD_BITS, Legacy32::decode(payload << 1, 2)),
        ] {
            if payload >> bits == 0 {
                prop_assert_eq!(encoded, Some(payload << 1));
                prop_assert_eq!(decoded, Entry::Payload(payload));
            } else {
                prop_assert_eq!(encoded, None);
            }
        }
    }

    #[test]
    fn decode_is_total(raw in any::<u64>(), level in any::<u8>()) {
        decode_total::<X86_64>(raw, level)?;
        decode_total::<X86_64La57>(raw, level)?;
        decode_total::<Pae>(raw, level)?;
        decode_total::<Legacy32>(raw, level)?;
    }

    #[test]
    fn decode_is_total_near_valid(raw in any::<u64>(), mask in any::<u64>(), level in 0u8..7) {
        // Mostly-clear values reach the present-entry paths more often than uniform ones.
        let raw = (raw & mask) | 1;
        decode_total::<X86_64>(raw, level)?;
        decode_total::<X86_64La57>(raw, level)?;
        decode_total::<Pae>(raw, level)?;
        decode_total::<Legacy32>(raw, level)?;
    }
}

#[test]
fn the_mmu_marks_accessed_on_the_walk_and_dirty_on_written_leaves() {
    const A: u64 = 1 << 5;
    const D: u64 = 1 << 6;
    let rw = PageFlags::READABLE | PageFlags::WRITABLE;
    let table = X86_64::encode_table(PhysAddr::new(0x1000), 4);
    assert_eq!(X86_64::mark_walked(table, 4, true), table | A, "no D on a table entry");
    let leaf = X86_64::encode_leaf(PhysAddr::new(0x2000), rw, 1);
    assert_eq!(X86_64::mark_walked(leaf, 1, false), leaf | A);
    assert_eq!(X86_64::mark_walked(leaf, 1, true), leaf | A | D);
    let huge = X86_64::encode_leaf(PhysAddr::new(0x20_0000), rw, 2);
    assert_eq!(X86_64::mark_walked(huge, 2, true), huge | A | D);
    assert_eq!(X86_64::mark_walked(0x2A << 1, 1, true), 0x2A << 1, "not present: untouched");
    let pdpte = Pae::encode_table(PhysAddr::new(0x3000), 3);
    assert_eq!(Pae::mark_walked(pdpte, 3, true), pdpte, "a PAE PDPTE has no A bit");
    let big = Legacy32::encode_leaf(PhysAddr::new(0x40_0000), rw, 2);
    assert_eq!(Legacy32::mark_walked(big, 2, true), big | A | D);
    let round = X86_64::decode(X86_64::mark_walked(leaf, 1, true), 1);
    assert_eq!(
        round,
        Entry::Leaf { frame: PhysAddr::new(0x2000), flags: rw | PageFlags::MMU_STATE }
    );
}

fn next_table_agrees_with_decode<F: PageTableFormat>(raw: u64, level: u8) {
    let decoded = F::decode(raw, level);
    let full = paging::format::WALK_PERMISSIONS;
    match (F::next_table(raw, level), decoded) {
        (Some(frame), Entry::Table { frame: table, flags }) => {
            assert_eq!(frame, table);
            assert!(flags.contains(full), "{raw:#x} at {level}: {flags:?}");
        }
        (Some(_), other) => {
            panic!("{raw:#x} at level {level}: fast path says table, decode says {other:?}")
        }
        (None, Entry::Table { flags, .. }) => {
            assert!(!flags.contains(full), "{raw:#x} at {level}: a table granting all was missed");
        }
        (None, _) => {}
    }
}

proptest! {
    #[test]
    fn the_walk_fast_path_is_decode(raw in any::<u64>(), level in 0u8..7, bits in any::<u8>()) {
        // Bias toward present table entries: P, RW, U/S set, PS and NX often clear.
        let table_like = (raw & !0x8000_0000_0000_0080) | 0x7;
        for raw in [raw, table_like, raw & 0xFFFF_FFFF, table_like & 0xFFFF_FFFF | u64::from(bits & 1) << 7] {
            next_table_agrees_with_decode::<X86_64>(raw, level);
            next_table_agrees_with_decode::<X86_64La57>(raw, level);
            next_table_agrees_with_decode::<Pae>(raw, level);
            next_table_agrees_with_decode::<Legacy32>(raw, level);
        }
    }
}

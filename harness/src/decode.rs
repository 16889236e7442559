//! Decoding arbitrary raw entries at any level, in every format.
//!
//! Whatever `decode` says must be self-consistent and survive a round trip: a leaf is
//! present, at a level that may hold one, aligned, within the physical width, with
//! supported and implied flags, and encodes back to the same leaf; a table pointer points
//! to an aligned frame within the width and encodes back to a pointer to it; a payload is
//! the entry without its present bit and encodes back to the entry; the x86 formats call
//! an entry invalid only for reserved bits. `mark_walked` leaves a non-present entry alone
//! and changes a present one only by Accessed (and Dirty on a written leaf). Encoding is
//! total: any frame, flags and level give a value, never a panic.

use arbitrary::{Arbitrary, Unstructured};
use paging::{Entry, InvalidEntry, PageFlags, PageTableFormat, PhysAddr};
use paging_x86::{Legacy32, Pae, X86_64, X86_64La57};

/// The most entries one input decodes.
const MAX_ENTRIES: usize = 256;

/// One raw value to decode, and what to do with it.
#[derive(Clone, Copy, Debug, Arbitrary)]
struct Case {
    raw: u64,
    /// Cleared from `raw` (mostly-clear values reach the present-entry paths more often).
    clear: u64,
    /// Forces the present bit when set.
    present: bool,
    level: u8,
    flags: u32,
    dirty: bool,
}

/// Decodes the raw entries in `data` in every format; panics on an inconsistency.
pub fn decode_entries(data: &[u8]) {
    let mut u = Unstructured::new(data);
    for _ in 0..MAX_ENTRIES {
        if u.is_empty() {
            break;
        }
        let Ok(case) = Case::arbitrary(&mut u) else { break };
        let mut raw = case.raw & !case.clear;
        if case.present {
            raw |= 1;
        }
        check::<X86_64>(raw, case);
        check::<X86_64La57>(raw, case);
        check::<Pae>(raw, case);
        check::<Legacy32>(raw, case);
    }
}

fn check<F: PageTableFormat>(raw: u64, case: Case) {
    // Levels in range mostly, sometimes out of it (the formats clamp).
    let level = if case.level < 0xF0 { case.level % F::LEVELS + 1 } else { case.level };
    let clamped = level.clamp(1, F::LEVELS);
    let name = F::NAME;
    let entry = F::decode(raw, level);
    assert_eq!(entry, F::decode(raw, clamped), "{name}: {raw:#x} at {level}: clamping");
    let table_bits = PageFlags::READABLE
        | PageFlags::WRITABLE
        | PageFlags::USER
        | PageFlags::EXECUTABLE
        | PageFlags::ACCESSED;
    match entry {
        Entry::Empty => assert_eq!(raw, 0, "{name}: {raw:#x} decoded as empty"),
        Entry::Payload(p) => {
            assert_eq!(raw & 1, 0, "{name}: a present {raw:#x} decoded as a payload");
            assert_eq!(p, raw >> 1, "{name}: payload of {raw:#x}");
            assert_ne!(p, 0, "{name}: a zero payload");
            if p >> F::PAYLOAD_BITS == 0 {
                assert_eq!(F::encode_payload(p), Some(raw), "{name}: payload {p:#x} re-encoded");
            } else {
                assert_eq!(F::encode_payload(p), None, "{name}: payload {p:#x} is too wide");
            }
        }
        Entry::Leaf { frame, flags } => {
            assert_eq!(raw & 1, 1, "{name}: {raw:#x} is a leaf but not present");
            assert!(F::SUPPORTED.contains(flags), "{name}: {raw:#x} has {flags:?}");
            assert!(flags.contains(F::IMPLIED), "{name}: {raw:#x} lacks implied flags");
            assert!(F::phys_in_range(frame), "{name}: {raw:#x} maps {frame:?}");
            assert!(F::leaf_allowed(clamped), "{name}: {raw:#x} is a leaf at {clamped}");
            assert!(frame.is_aligned(F::leaf_size(clamped)), "{name}: {raw:#x}: {frame:?}");
            // Re-encoding gives the same leaf back (bits the CPU ignores aside), and the
            // encoding is canonical: encoding the decoded again gives the same value.
            let again = F::encode_leaf(frame, flags, level);
            assert_eq!(F::decode(again, level), entry, "{name}: {raw:#x} -> {again:#x}");
            let Entry::Leaf { frame: f2, flags: g2 } = F::decode(again, level) else {
                unreachable!()
            };
            assert_eq!(F::encode_leaf(f2, g2, level), again, "{name}: {raw:#x}: not canonical");
            if F::ENTRY_SIZE.bytes() == 4 {
                assert_eq!(again >> 32, 0, "{name}: {again:#x} does not fit 4 bytes");
            }
        }
        Entry::Table { frame, flags } => {
            assert_eq!(raw & 1, 1, "{name}: {raw:#x} is a table but not present");
            assert!(clamped > 1, "{name}: {raw:#x} is a table at level 1");
            assert!(F::phys_in_range(frame), "{name}: {raw:#x} points to {frame:?}");
            assert!(frame.is_aligned(4096), "{name}: {raw:#x} points to {frame:?}");
            assert!(table_bits.contains(flags), "{name}: {raw:#x} grants {flags:?}");
            assert!(flags.contains(PageFlags::READABLE), "{name}: {raw:#x}: {flags:?}");
            let again = F::encode_table(frame, level);
            match F::decode(again, level) {
                Entry::Table { frame: f2, flags: g2 } => {
                    assert_eq!(f2, frame, "{name}: {raw:#x} -> {again:#x}");
                    let grants = PageFlags::WRITABLE | PageFlags::USER | PageFlags::EXECUTABLE;
                    assert!(g2.contains(grants), "{name}: a new table pointer grants {g2:?}");
                }
                other => panic!("{name}: table {raw:#x} re-encoded as {again:#x}: {other:?}"),
            }
        }
        Entry::Invalid(why) => {
            assert_eq!(raw & 1, 1, "{name}: a non-present {raw:#x} is invalid");
            assert_eq!(why, InvalidEntry::ReservedBits, "{name}: {raw:#x}");
        }
    }

    // What the MMU writes back on a walk.
    let marked = F::mark_walked(raw, level, case.dirty);
    if F::ENTRY_SIZE.bytes() == 4 && raw >> 32 == 0 {
        assert_eq!(marked >> 32, 0, "{name}: marking {raw:#x} gave {marked:#x}");
    }
    match (entry, F::decode(marked, level)) {
        (Entry::Empty | Entry::Payload(_), _) => {
            assert_eq!(marked, raw, "{name}: marking non-present {raw:#x}");
        }
        (Entry::Leaf { frame, flags }, Entry::Leaf { frame: f2, flags: g2 }) => {
            assert_eq!(f2, frame, "{name}: marking {raw:#x} moved the frame");
            let mut expected = flags | PageFlags::ACCESSED;
            if case.dirty {
                expected |= PageFlags::DIRTY;
            }
            assert_eq!(g2, expected, "{name}: marking leaf {raw:#x} (dirty: {})", case.dirty);
        }
        (Entry::Table { frame, flags }, Entry::Table { frame: f2, flags: g2 }) => {
            assert_eq!(f2, frame, "{name}: marking {raw:#x} moved the table");
            let perms = PageFlags::WRITABLE | PageFlags::USER | PageFlags::EXECUTABLE;
            assert_eq!(g2 & perms, flags & perms, "{name}: marking {raw:#x} changed grants");
        }
        (Entry::Invalid(_), Entry::Invalid(_)) => {}
        (before, after) => {
            panic!("{name}: marking {raw:#x} at {level} gave {marked:#x}: {before:?} -> {after:?}")
        }
    }

    // Encoding is total, whatever the arguments.
    let frame = PhysAddr::new(raw);
    let _ = F::encode_leaf(frame, PageFlags::from_bits_retain(case.flags), level);
    let _ = F::encode_table(frame, level);
    let _ = F::encode_payload(raw);
    // And valid arguments give the leaf back.
    if F::leaf_allowed(clamped) {
        let size = F::leaf_size(clamped);
        let frame = PhysAddr::new(raw & ((1u64 << F::PHYS_BITS) - 1) & !(size - 1));
        let flags = PageFlags::from_bits_truncate(case.flags) & F::SUPPORTED;
        let encoded = F::encode_leaf(frame, flags, level);
        assert_eq!(
            F::decode(encoded, level),
            Entry::Leaf { frame, flags: flags | F::IMPLIED },
            "{name}: leaf {frame:?} {flags:?} at {level} encoded as {encoded:#x}"
        );
    }
}

//! `translate_addr`'s fast path (tables lent whole, flags not decoded) against the ordinary
//! walk of `translate`, on tables of random raw entries in every format: the same answer
//! for every address, junk and corrupt entries included.

use paging::{ArenaMemory, FrameBuf, PageTable, PageTableFormat, PhysAddr, TableError, VirtAddr};
use paging_x86::{Legacy32, Pae, X86_64, X86_64La57};
use proptest::prelude::*;

/// Frames in the arena, from physical address 0; the root is frame 0.
const FRAMES: u64 = 6;

/// A raw entry: empty, a table pointer (to a frame in or out of the arena) or a leaf with
/// random low and high bits, or anything at all.
fn raw_entry() -> impl Strategy<Value = u64> {
    let low = any::<u16>().prop_map(|bits| u64::from(bits) & 0xFFF);
    let high =
        prop_oneof![Just(0u64), Just(1 << 63), any::<u64>().prop_map(|b| b & !0xF_FFFF_FFFF_F000)];
    prop_oneof![
        2 => Just(0u64),
        4 => (0..FRAMES + 2, low.clone()).prop_map(|(frame, low)| (frame << 12) | 0x7 | low),
        3 => (0..0x1_0000u64, low, high).prop_map(|(frame, low, high)| (frame << 12) | 1 | low | high),
        1 => any::<u64>(),
    ]
}

/// Tables where every walk of the probed addresses meets a random entry: entries
/// `0..8` of each frame are random, and the probes index only those.
fn tables() -> impl Strategy<Value = Vec<[u64; 8]>> {
    prop::collection::vec(prop::array::uniform8(raw_entry()), FRAMES as usize)
}

/// An address whose index at every level is below 8 (so it meets the random entries),
/// sign-extended or not, with a random offset.
fn probe() -> impl Strategy<Value = u64> {
    (prop::array::uniform5(0..8u64), any::<u32>(), any::<bool>()).prop_map(
        |(indexes, offset, high)| {
            let mut addr = u64::from(offset) & 0x1F_FFFF;
            for (level, index) in indexes.iter().enumerate() {
                addr |= index << (12 + 9 * level as u32);
            }
            if high { addr | 0xFF00_0000_0000_0000 } else { addr }
        },
    )
}

fn agree<F: PageTableFormat>(tables: &[[u64; 8]], probes: &[u64]) {
    let mut frames = vec![FrameBuf::ZERO; FRAMES as usize];
    for (frame, entries) in frames.iter_mut().zip(tables) {
        frame.0[..8].copy_from_slice(entries);
    }
    let memory = ArenaMemory::new(&mut frames, PhysAddr::ZERO);
    let table = PageTable::<F, _>::from_root(PhysAddr::ZERO, memory);
    for &probe in probes {
        // 32-bit formats see the low half of the probe.
        let addr = VirtAddr::new(if F::VIRT_BITS <= 32 { probe & 0xFFFF_FFFF } else { probe });
        let slow = table.translate(addr).map(|translation| translation.phys);
        assert_eq!(table.translate_addr(addr), slow, "{} at {addr:?}", F::NAME);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn translate_addr_agrees_with_translate(tables in tables(), probes in prop::collection::vec(probe(), 1..16)) {
        agree::<X86_64>(&tables, &probes);
        agree::<X86_64La57>(&tables, &probes);
        agree::<Pae>(&tables, &probes);
        agree::<Legacy32>(&tables, &probes);
    }
}

/// A mapped page found by the fast path, and one past a table outside the arena found by
/// the ordinary walk as a corrupt entry: the same errors either way.
#[test]
fn translate_addr_answers_as_translate_does() {
    let mut frames = vec![FrameBuf::ZERO; 4];
    frames[0].0[0] = 0x1000 | 0x7;
    frames[1].0[0] = 0x2000 | 0x7;
    frames[2].0[0] = 0x3000 | 0x7;
    frames[3].0[5] = 0xABC_D000 | 0x3;
    frames[3].0[6] = 0x9_9999_9000 | 0x7;
    frames[0].0[1] = 0x50_0000 | 0x7;
    let memory = ArenaMemory::new(&mut frames, PhysAddr::ZERO);
    let table = PageTable::<X86_64, _>::from_root(PhysAddr::ZERO, memory);
    assert_eq!(table.translate_addr(VirtAddr::new(0x5123)), Ok(PhysAddr::new(0xABC_D123)));
    assert_eq!(table.translate_addr(VirtAddr::new(0x6008)), Ok(PhysAddr::new(0x9_9999_9008)));
    let unmapped = VirtAddr::new(0x7000);
    assert_eq!(table.translate_addr(unmapped), Err(TableError::NotMapped { addr: unmapped }));
    let past_the_arena = VirtAddr::new(0x80_0000_0000);
    assert!(matches!(
        table.translate_addr(past_the_arena),
        Err(TableError::CorruptEntry { level: 4, raw: 0x50_0007, .. })
    ));
}

//! Software page-table entries in every x86 format: exact layouts, round trips through a
//! real non-present entry, the bits an erratum may set, and the refusals.

use paging::pager::Slot;
use paging::{Entry, PageTableFormat, PhysAddr, SoftwarePte, SoftwarePteError};
use paging_x86::{Legacy32, Pae, X86_64, X86_64La57};
use proptest::prelude::*;

/// `pte` as format `F` stores it in a level-1 entry, read back.
fn through_entry<F: PageTableFormat>(pte: SoftwarePte) -> Result<SoftwarePte, SoftwarePteError> {
    let payload = pte.encode::<F>()?;
    let raw = F::encode_payload(payload).expect("a software PTE is a valid payload");
    assert_eq!(raw & 1, 0, "{}: a software PTE is never present", F::NAME);
    match F::decode(raw, 1) {
        Entry::Payload(read) => SoftwarePte::decode(read),
        other => panic!("{}: {raw:#x} decoded as {other:?}", F::NAME),
    }
}

#[test]
fn the_layout_is_exact() {
    let frame = PhysAddr::new(0x1234_5000);
    assert_eq!(SoftwarePte::DemandZero.encode::<X86_64>(), Ok(0b001));
    assert_eq!(
        SoftwarePte::Hidden { frame, owned: true }.encode::<X86_64>(),
        Ok(0x12345 << 6 | 0b1010)
    );
    assert_eq!(
        SoftwarePte::Transition { frame, owned: false }.encode::<X86_64>(),
        Ok(0x12345 << 6 | 0b011)
    );
    assert_eq!(SoftwarePte::PagingFile { slot: Slot(7) }.encode::<X86_64>(), Ok(7 << 6 | 0b100));
    assert_eq!(SoftwarePte::Prototype.encode::<X86_64>(), Ok(0b101));
    // In the entry: one bit up, present clear.
    assert_eq!(X86_64::encode_payload(0b001), Some(0b10));
}

#[test]
fn value_bits_per_format() {
    assert_eq!(SoftwarePte::value_bits::<X86_64>(), 57);
    assert_eq!(SoftwarePte::value_bits::<X86_64La57>(), 57);
    assert_eq!(SoftwarePte::value_bits::<Pae>(), 57);
    assert_eq!(SoftwarePte::value_bits::<Legacy32>(), 25);
}

#[test]
fn refusals() {
    let too_far = SoftwarePte::PagingFile { slot: Slot(1 << 25) };
    assert_eq!(
        too_far.encode::<Legacy32>(),
        Err(SoftwarePteError::TooWide { value: 1 << 25, bits: 25 })
    );
    assert_eq!(too_far.encode::<X86_64>(), Ok((1 << 25) << 6 | 0b100));
    let unaligned = PhysAddr::new(0x1_0800);
    assert_eq!(
        SoftwarePte::Transition { frame: unaligned, owned: true }.encode::<Pae>(),
        Err(SoftwarePteError::UnalignedFrame { frame: unaligned })
    );
    for payload in [0, 6, 7, 0x40 | 6] {
        assert_eq!(SoftwarePte::decode(payload), Err(SoftwarePteError::UnknownKind { payload }));
    }
    let wide = (1u64 << 32) << 6 | 0b100;
    assert_eq!(
        SoftwarePte::decode(wide),
        Err(SoftwarePteError::TooWide { value: 1 << 32, bits: 32 })
    );
    assert_eq!(
        SoftwarePteError::TooWide { value: 0x200_0000, bits: 25 }.to_string(),
        "value 0x2000000 does not fit the format's 25 value bits"
    );
}

#[test]
fn accessed_and_dirty_set_on_a_non_present_entry_change_nothing() {
    fn check<F: PageTableFormat>() {
        let pte = SoftwarePte::Transition { frame: PhysAddr::new(0xabc_d000), owned: true };
        let raw = F::encode_payload(pte.encode::<F>().unwrap()).unwrap();
        let marked = raw | 1 << 5 | 1 << 6;
        assert_eq!(F::decode(marked, 1), Entry::Payload(marked >> 1), "{}", F::NAME);
        assert_eq!(SoftwarePte::decode(marked >> 1), Ok(pte), "{}", F::NAME);
    }
    check::<X86_64>();
    check::<X86_64La57>();
    check::<Pae>();
    check::<Legacy32>();
}

/// Any software PTE whose frame or slot fits `phys_bits` of physical address and
/// `value_bits` of value.
fn any_pte(phys_bits: u32, value_bits: u32) -> impl Strategy<Value = SoftwarePte> {
    let frame = (0..1u64 << (phys_bits - 12)).prop_map(|n| PhysAddr::new(n << 12));
    let slot = 0..(1u64 << value_bits.min(32)).min(u64::from(u32::MAX) + 1);
    prop_oneof![
        Just(SoftwarePte::DemandZero),
        (frame.clone(), any::<bool>())
            .prop_map(|(frame, owned)| SoftwarePte::Hidden { frame, owned }),
        (frame, any::<bool>()).prop_map(|(frame, owned)| SoftwarePte::Transition { frame, owned }),
        slot.prop_map(|slot| SoftwarePte::PagingFile { slot: Slot(slot as u32) }),
        Just(SoftwarePte::Prototype),
    ]
}

proptest! {
    #[test]
    fn round_trips_in_x86_64(pte in any_pte(X86_64::PHYS_BITS, 57)) {
        prop_assert_eq!(through_entry::<X86_64>(pte), Ok(pte));
        prop_assert_eq!(through_entry::<X86_64La57>(pte), Ok(pte));
    }

    #[test]
    fn round_trips_in_pae(pte in any_pte(Pae::PHYS_BITS, 57)) {
        prop_assert_eq!(through_entry::<Pae>(pte), Ok(pte));
    }

    #[test]
    fn round_trips_in_legacy_32_bit(pte in any_pte(Legacy32::PHYS_BITS, 25)) {
        prop_assert_eq!(through_entry::<Legacy32>(pte), Ok(pte));
    }
}

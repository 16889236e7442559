//! Conversions between this crate's addresses, pages, frames and flags and those of the
//! [`x86_64`] crate (feature `x86_64`).
//!
//! | `paging` | `x86_64` | `paging` → `x86_64` | `x86_64` → `paging` |
//! |---|---|---|---|
//! | [`VirtAddr`] | [`x86_64::VirtAddr`] | `TryFrom`: canonical (48-bit) only | `From` |
//! | [`PhysAddr`] | [`x86_64::PhysAddr`] | `TryFrom`: below 2^52 only | `From` |
//! | [`Page<S>`](Page) | [`Page<S>`](::x86_64::structures::paging::Page) | `TryFrom`: canonical only | `From` |
//! | [`Frame<S>`](Frame) | [`PhysFrame<S>`](::x86_64::structures::paging::PhysFrame) | `TryFrom`: below 2^52 only | `From` |
//! | [`PageFlags`] | [`PageTableFlags`] | `TryFrom`: not `PAT` | `TryFrom`: `PRESENT` only |
//!
//! Pages and frames convert for each size both crates have: 4 KiB, 2 MiB and 1 GiB. Every
//! refusal is a [`ConversionError`]; nothing is truncated or wrapped.
//!
//! # Flags: the meanings differ
//!
//! [`PageFlags`] describe a *present* page: empty flags are a present, read-only,
//! no-execute page, and execution is a permission ([`PageFlags::EXECUTABLE`]). The x86_64
//! crate's [`PageTableFlags`] are the raw entry bits: empty flags are a *non-present*
//! entry, and execution is allowed unless [`PageTableFlags::NO_EXECUTE`] is set. So:
//!
//! - `PageFlags` → `PageTableFlags` always sets `PRESENT`, and sets `NO_EXECUTE` unless
//!   `EXECUTABLE` is asked for. `READABLE` has no bit: every present x86 page is readable,
//!   which is why the x86 formats imply it. `PAT` is refused: the x86_64 crate names bit 7
//!   `HUGE_PAGE` and sets it itself in huge leaves, so it cannot carry the PAT bit.
//! - `PageTableFlags` → `PageFlags` refuses flags without `PRESENT` (they are no page),
//!   always sets `READABLE`, sets `EXECUTABLE` unless `NO_EXECUTE` is set, ignores
//!   `HUGE_PAGE` (the page size is in the page's type here) and refuses bits 53 to 58,
//!   which have no name here.
//! - The other bits match one to one: `WRITABLE`, `USER` (`USER_ACCESSIBLE`),
//!   `WRITE_THROUGH`, `NO_CACHE`, `ACCESSED`, `DIRTY`, `GLOBAL`, `SOFTWARE_0` to `SOFTWARE_2`
//!   (`BIT_9` to `BIT_11`), `SOFTWARE_3` (`BIT_52`), and the protection key (`BIT_59` to
//!   `BIT_62`).
//!
//! ```
//! use paging::PageFlags;
//! use x86_64::structures::paging::PageTableFlags;
//!
//! let theirs = PageTableFlags::try_from(PageFlags::WRITABLE)?;
//! assert_eq!(theirs, PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE);
//! let ours = PageFlags::try_from(PageTableFlags::PRESENT)?;
//! assert_eq!(ours, PageFlags::READABLE | PageFlags::EXECUTABLE);
//! assert!(PageFlags::try_from(PageTableFlags::empty()).is_err()); // not present
//!
//! let page = paging::Page::<paging::Size2MiB>::containing(paging::VirtAddr::new(0x4020_1234));
//! let theirs: x86_64::structures::paging::Page<x86_64::structures::paging::Size2MiB> =
//!     page.try_into()?;
//! assert_eq!(paging::Page::from(theirs), page);
//! # Ok::<(), paging::interop::x86_64::ConversionError>(())
//! ```

use core::fmt;

use ::x86_64::structures::paging as theirs;
use ::x86_64::structures::paging::PageTableFlags;

use crate::addr::{Frame, Page, PhysAddr, Size1GiB, Size2MiB, Size4KiB, VirtAddr};
use crate::flags::PageFlags;

/// Why a value has no counterpart in the other crate.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConversionError {
    /// A virtual address that is not canonical for 4-level paging (bits 63:47 not all
    /// equal); the x86_64 crate's addresses always are.
    NonCanonical {
        /// The raw address.
        addr: u64,
    },
    /// A physical address at or beyond 2^52, the architectural limit the x86_64 crate
    /// enforces.
    BeyondPhysicalLimit {
        /// The raw address.
        addr: u64,
    },
    /// x86_64 flags without `PRESENT`: a non-present entry, not a page.
    NotPresent,
    /// x86_64 flag bits that [`PageFlags`] has no name for (bits 53 to 58).
    UnmatchedTableFlags {
        /// The bits that do not convert.
        bits: u64,
    },
    /// [`PageFlags`] that the x86_64 crate cannot express (`PAT`, or bits with no name).
    UnmatchedPageFlags {
        /// The flags that do not convert.
        flags: u32,
    },
}

impl fmt::Display for ConversionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NonCanonical { addr } => {
                write!(f, "virtual address {addr:#x} is not canonical for 4-level paging")
            }
            Self::BeyondPhysicalLimit { addr } => {
                write!(f, "physical address {addr:#x} is beyond the 52-bit limit")
            }
            Self::NotPresent => f.write_str("x86_64 flags without PRESENT describe no page"),
            Self::UnmatchedTableFlags { bits } => {
                write!(f, "x86_64 flag bits {bits:#x} have no PageFlags counterpart")
            }
            Self::UnmatchedPageFlags { flags } => {
                write!(f, "page flags {flags:#x} have no x86_64 counterpart (PAT or unnamed bits)")
            }
        }
    }
}

impl core::error::Error for ConversionError {}

impl TryFrom<VirtAddr> for ::x86_64::VirtAddr {
    type Error = ConversionError;

    /// Refuses an address that is not canonical for 4-level paging.
    fn try_from(addr: VirtAddr) -> Result<Self, ConversionError> {
        let raw = addr.as_u64();
        Self::try_new(raw).map_err(|_| ConversionError::NonCanonical { addr: raw })
    }
}

impl From<::x86_64::VirtAddr> for VirtAddr {
    fn from(addr: ::x86_64::VirtAddr) -> Self {
        Self::new(addr.as_u64())
    }
}

impl TryFrom<PhysAddr> for ::x86_64::PhysAddr {
    type Error = ConversionError;

    /// Refuses an address at or beyond 2^52.
    fn try_from(addr: PhysAddr) -> Result<Self, ConversionError> {
        let raw = addr.as_u64();
        Self::try_new(raw).map_err(|_| ConversionError::BeyondPhysicalLimit { addr: raw })
    }
}

impl From<::x86_64::PhysAddr> for PhysAddr {
    fn from(addr: ::x86_64::PhysAddr) -> Self {
        Self::new(addr.as_u64())
    }
}

/// Writes the conversions of pages and frames of one size, given as (ours, theirs).
macro_rules! sized_conversions {
    ($($ours:ty => $theirs:ty),* $(,)?) => {$(
        impl TryFrom<Page<$ours>> for theirs::Page<$theirs> {
            type Error = ConversionError;

            /// Refuses a page that is not canonical for 4-level paging.
            fn try_from(page: Page<$ours>) -> Result<Self, ConversionError> {
                // Aligned in both crates' eyes: the sizes are the same.
                Ok(Self::containing_address(page.start().try_into()?))
            }
        }

        impl From<theirs::Page<$theirs>> for Page<$ours> {
            fn from(page: theirs::Page<$theirs>) -> Self {
                Self::containing(page.start_address().into())
            }
        }

        impl TryFrom<Frame<$ours>> for theirs::PhysFrame<$theirs> {
            type Error = ConversionError;

            /// Refuses a frame at or beyond 2^52.
            fn try_from(frame: Frame<$ours>) -> Result<Self, ConversionError> {
                Ok(Self::containing_address(frame.start().try_into()?))
            }
        }

        impl From<theirs::PhysFrame<$theirs>> for Frame<$ours> {
            fn from(frame: theirs::PhysFrame<$theirs>) -> Self {
                Self::containing(frame.start_address().into())
            }
        }
    )*};
}

sized_conversions!(
    Size4KiB => theirs::Size4KiB,
    Size2MiB => theirs::Size2MiB,
    Size1GiB => theirs::Size1GiB,
);

/// The flags with the same meaning on both sides, as (ours, theirs).
const SAME_MEANING: [(PageFlags, PageTableFlags); 11] = [
    (PageFlags::WRITABLE, PageTableFlags::WRITABLE),
    (PageFlags::USER, PageTableFlags::USER_ACCESSIBLE),
    (PageFlags::WRITE_THROUGH, PageTableFlags::WRITE_THROUGH),
    (PageFlags::NO_CACHE, PageTableFlags::NO_CACHE),
    (PageFlags::ACCESSED, PageTableFlags::ACCESSED),
    (PageFlags::DIRTY, PageTableFlags::DIRTY),
    (PageFlags::GLOBAL, PageTableFlags::GLOBAL),
    (PageFlags::SOFTWARE_0, PageTableFlags::BIT_9),
    (PageFlags::SOFTWARE_1, PageTableFlags::BIT_10),
    (PageFlags::SOFTWARE_2, PageTableFlags::BIT_11),
    (PageFlags::SOFTWARE_3, PageTableFlags::BIT_52),
];

/// Where the x86_64 crate keeps the protection key: bits 62:59, as x86 does.
const KEY_SHIFT: u32 = 59;
/// The protection-key bits on the x86_64 side.
const KEY_BITS: u64 = 0xF << KEY_SHIFT;

impl TryFrom<PageFlags> for PageTableFlags {
    type Error = ConversionError;

    /// The entry bits of a present page with `flags` (see the [module](self) for the
    /// mapping).
    ///
    /// Refuses `PAT` and bits without a name with [`ConversionError::UnmatchedPageFlags`].
    fn try_from(flags: PageFlags) -> Result<Self, ConversionError> {
        let mut known = PageFlags::READABLE | PageFlags::EXECUTABLE | PageFlags::PROTECTION_KEY;
        let mut out = Self::PRESENT;
        for (ours, theirs) in SAME_MEANING {
            known |= ours;
            out.set(theirs, flags.contains(ours));
        }
        let unmatched = flags.bits() & !known.bits();
        if unmatched != 0 {
            return Err(ConversionError::UnmatchedPageFlags { flags: unmatched });
        }
        out.set(Self::NO_EXECUTE, !flags.contains(PageFlags::EXECUTABLE));
        let key = u64::from(flags.protection_key()) << KEY_SHIFT;
        Ok(out | Self::from_bits_retain(key))
    }
}

impl TryFrom<PageTableFlags> for PageFlags {
    type Error = ConversionError;

    /// The flags of the present page that `flags` describe (see the [module](self) for the
    /// mapping).
    ///
    /// Refuses flags without `PRESENT` with [`ConversionError::NotPresent`], and bits 53
    /// to 58 with [`ConversionError::UnmatchedTableFlags`]. `HUGE_PAGE` is ignored.
    fn try_from(flags: PageTableFlags) -> Result<Self, ConversionError> {
        if !flags.contains(PageTableFlags::PRESENT) {
            return Err(ConversionError::NotPresent);
        }
        let mut known = PageTableFlags::PRESENT
            | PageTableFlags::HUGE_PAGE
            | PageTableFlags::NO_EXECUTE
            | PageTableFlags::from_bits_retain(KEY_BITS);
        let mut out = Self::READABLE;
        for (ours, theirs) in SAME_MEANING {
            known |= theirs;
            out.set(ours, flags.contains(theirs));
        }
        let unmatched = flags.bits() & !known.bits();
        if unmatched != 0 {
            return Err(ConversionError::UnmatchedTableFlags { bits: unmatched });
        }
        out.set(Self::EXECUTABLE, !flags.contains(PageTableFlags::NO_EXECUTE));
        let key = (flags.bits() & KEY_BITS) >> KEY_SHIFT;
        Ok(out.with_protection_key(u8::try_from(key).unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A canonical 48-bit address.
    fn canonical() -> impl Strategy<Value = u64> {
        prop_oneof![0u64..(1 << 47), (0xFFFF_8000_0000_0000u64..=u64::MAX)]
    }

    /// Our flags that convert: everything but `PAT`, `READABLE` always set (it is implied).
    fn page_flags() -> impl Strategy<Value = PageFlags> {
        any::<u32>().prop_map(|bits| {
            let all = PageFlags::all().difference(PageFlags::PAT);
            PageFlags::from_bits_truncate(bits).intersection(all).union(PageFlags::READABLE)
        })
    }

    proptest! {
        #[test]
        fn virtual_addresses_round_trip(raw in canonical()) {
            let theirs = ::x86_64::VirtAddr::try_from(VirtAddr::new(raw)).unwrap();
            prop_assert_eq!(theirs.as_u64(), raw);
            prop_assert_eq!(VirtAddr::from(theirs), VirtAddr::new(raw));
        }

        #[test]
        fn physical_addresses_round_trip(raw in 0u64..(1 << 52)) {
            let theirs = ::x86_64::PhysAddr::try_from(PhysAddr::new(raw)).unwrap();
            prop_assert_eq!(PhysAddr::from(theirs), PhysAddr::new(raw));
        }

        #[test]
        fn pages_and_frames_round_trip(virt in canonical(), phys in 0u64..(1 << 52)) {
            macro_rules! check {
                ($ours:ty, $theirs:ty) => {{
                    let page = Page::<$ours>::containing(VirtAddr::new(virt));
                    let converted = theirs::Page::<$theirs>::try_from(page).unwrap();
                    prop_assert_eq!(converted.start_address().as_u64(), page.start().as_u64());
                    prop_assert_eq!(Page::from(converted), page);
                    let frame = Frame::<$ours>::containing(PhysAddr::new(phys));
                    let converted = theirs::PhysFrame::<$theirs>::try_from(frame).unwrap();
                    prop_assert_eq!(converted.start_address().as_u64(), frame.start().as_u64());
                    prop_assert_eq!(Frame::from(converted), frame);
                }};
            }
            check!(Size4KiB, theirs::Size4KiB);
            check!(Size2MiB, theirs::Size2MiB);
            check!(Size1GiB, theirs::Size1GiB);
        }

        #[test]
        fn page_flags_round_trip(flags in page_flags()) {
            let theirs = PageTableFlags::try_from(flags).unwrap();
            prop_assert!(theirs.contains(PageTableFlags::PRESENT));
            prop_assert_eq!(PageFlags::try_from(theirs), Ok(flags));
        }

        #[test]
        fn table_flags_round_trip(bits in any::<u64>()) {
            // Present, and only bits with a counterpart (HUGE_PAGE is dropped, so not it).
            let convertible = SAME_MEANING
                .iter()
                .fold(PageTableFlags::NO_EXECUTE.bits() | KEY_BITS, |all, (_, f)| all | f.bits());
            let flags = PageTableFlags::from_bits_retain(bits & convertible) | PageTableFlags::PRESENT;
            let ours = PageFlags::try_from(flags).unwrap();
            prop_assert_eq!(PageTableFlags::try_from(ours), Ok(flags));
        }
    }

    #[test]
    fn refusals_are_typed() {
        let high = VirtAddr::new(1 << 47);
        assert_eq!(
            ::x86_64::VirtAddr::try_from(high),
            Err(ConversionError::NonCanonical { addr: 1 << 47 })
        );
        let page = Page::<Size4KiB>::containing(high);
        assert!(theirs::Page::<theirs::Size4KiB>::try_from(page).is_err());
        let far = PhysAddr::new(1 << 52);
        assert_eq!(
            ::x86_64::PhysAddr::try_from(far),
            Err(ConversionError::BeyondPhysicalLimit { addr: 1 << 52 })
        );
        assert!(theirs::PhysFrame::<theirs::Size1GiB>::try_from(Frame::containing(far)).is_err());
        assert_eq!(PageFlags::try_from(PageTableFlags::WRITABLE), Err(ConversionError::NotPresent));
        let odd = PageTableFlags::PRESENT | PageTableFlags::BIT_55;
        assert_eq!(
            PageFlags::try_from(odd),
            Err(ConversionError::UnmatchedTableFlags { bits: 1 << 55 })
        );
        let pat = PageFlags::WRITABLE | PageFlags::PAT;
        assert_eq!(
            PageTableFlags::try_from(pat),
            Err(ConversionError::UnmatchedPageFlags { flags: PageFlags::PAT.bits() })
        );
        assert_eq!(
            ConversionError::NotPresent.to_string(),
            "x86_64 flags without PRESENT describe no page"
        );
    }

    #[test]
    fn flags_translate_meaning_not_bits() {
        let none = PageTableFlags::try_from(PageFlags::empty()).unwrap();
        assert_eq!(none, PageTableFlags::PRESENT | PageTableFlags::NO_EXECUTE);
        let code = PageTableFlags::try_from(PageFlags::READABLE | PageFlags::EXECUTABLE).unwrap();
        assert_eq!(code, PageTableFlags::PRESENT);
        let huge = PageTableFlags::PRESENT | PageTableFlags::HUGE_PAGE | PageTableFlags::NO_EXECUTE;
        assert_eq!(PageFlags::try_from(huge), Ok(PageFlags::READABLE));
        let keyed = PageFlags::USER.with_protection_key(0xA);
        let theirs = PageTableFlags::try_from(keyed).unwrap();
        assert_eq!(theirs.bits() >> 59 & 0xF, 0xA);
        assert_eq!(PageFlags::try_from(theirs), Ok(keyed | PageFlags::READABLE));
    }
}

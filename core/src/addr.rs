//! Addresses, page sizes, and pages and frames that carry their size in their type.
//!
//! [`VirtAddr`] and [`PhysAddr`] are plain 64-bit numbers: whether a virtual address is
//! canonical, or a physical address within reach, depends on the page-table format, so
//! the format checks it ([`PageTableFormat`](crate::PageTableFormat)), not the type.
//!
//! Arithmetic does not wrap silently. The operators (`addr + offset`, `addr - offset`,
//! `end - start`, and their assigning forms) panic on overflow, as the `x86_64` crate's
//! addresses do; `checked_add`, `checked_sub` and `checked_offset_from` return `None`
//! instead, and `wrapping_add` and `wrapping_sub` wrap for code that means it.
//!
//! ```
//! use paging::VirtAddr;
//!
//! let top = VirtAddr::new(u64::MAX - 0xfff);
//! assert_eq!(top.checked_add(0x2000), None);
//! assert_eq!(top.wrapping_add(0x2000), VirtAddr::new(0x1000));
//! assert_eq!(top + 0xfff, VirtAddr::new(u64::MAX));
//! ```

use core::fmt;
use core::ops::{Add, AddAssign, Sub, SubAssign};

use crate::error::AddrError;

macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        #[repr(transparent)]
        pub struct $name(u64);

        impl $name {
            /// The address zero.
            pub const ZERO: Self = Self(0);

            /// Wraps a raw address.
            #[must_use]
            pub const fn new(raw: u64) -> Self {
                Self(raw)
            }

            /// Returns the raw address.
            #[must_use]
            pub const fn as_u64(self) -> u64 {
                self.0
            }

            /// Returns whether the address is a multiple of `align` (a power of two).
            #[must_use]
            pub const fn is_aligned(self, align: u64) -> bool {
                self.0 & align.wrapping_sub(1) == 0
            }

            /// Rounds down to a multiple of `align` (a power of two).
            #[must_use]
            pub const fn align_down(self, align: u64) -> Self {
                Self(self.0 & !align.wrapping_sub(1))
            }

            /// Rounds up to a multiple of `align` (a power of two), or `None` on overflow.
            #[must_use]
            pub const fn checked_align_up(self, align: u64) -> Option<Self> {
                match self.0.checked_add(align.wrapping_sub(1)) {
                    Some(raw) => Some(Self(raw & !align.wrapping_sub(1))),
                    None => None,
                }
            }

            /// Adds `offset`, or returns `None` on overflow.
            #[must_use]
            pub const fn checked_add(self, offset: u64) -> Option<Self> {
                match self.0.checked_add(offset) {
                    Some(raw) => Some(Self(raw)),
                    None => None,
                }
            }

            /// Subtracts `offset`, or returns `None` below zero.
            #[must_use]
            pub const fn checked_sub(self, offset: u64) -> Option<Self> {
                match self.0.checked_sub(offset) {
                    Some(raw) => Some(Self(raw)),
                    None => None,
                }
            }

            /// Adds `offset` modulo 2^64: past the top of the address space it wraps to zero.
            /// For arithmetic that means to wrap; [`checked_add`](Self::checked_add) reports
            /// the overflow instead.
            #[must_use]
            pub const fn wrapping_add(self, offset: u64) -> Self {
                Self(self.0.wrapping_add(offset))
            }

            /// Subtracts `offset` modulo 2^64: below zero it wraps to the top.
            #[must_use]
            pub const fn wrapping_sub(self, offset: u64) -> Self {
                Self(self.0.wrapping_sub(offset))
            }

            /// The number of bytes from `origin` up to this address, or `None` if the
            /// address is below `origin` (the checked form of `self - origin`).
            #[must_use]
            pub const fn checked_offset_from(self, origin: Self) -> Option<u64> {
                self.0.checked_sub(origin.0)
            }

            /// The offset of the address within a block of `align` bytes (a power of two).
            #[must_use]
            pub const fn offset_in(self, align: u64) -> u64 {
                self.0 & align.wrapping_sub(1)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "({:#x})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }

        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }


        /// `address + offset`, as the `x86_64` crate's addresses add.
        ///
        /// # Panics
        ///
        /// Panics if the sum passes `u64::MAX`; [`checked_add`](Self::checked_add) returns
        /// `None` instead, and [`wrapping_add`](Self::wrapping_add) wraps on purpose.
        impl Add<u64> for $name {
            type Output = Self;
            #[track_caller]
            fn add(self, offset: u64) -> Self {
                match self.checked_add(offset) {
                    Some(sum) => sum,
                    None => panic!(concat!("address overflow: ", $prefix, "({:#x}) + {:#x}"), self.0, offset),
                }
            }
        }

        /// `address += offset`.
        ///
        /// # Panics
        ///
        /// Panics if the sum passes `u64::MAX`; see [`checked_add`](Self::checked_add).
        impl AddAssign<u64> for $name {
            #[track_caller]
            fn add_assign(&mut self, offset: u64) {
                *self = *self + offset;
            }
        }

        /// `address - offset`.
        ///
        /// # Panics
        ///
        /// Panics below zero; [`checked_sub`](Self::checked_sub) returns `None` instead, and
        /// [`wrapping_sub`](Self::wrapping_sub) wraps on purpose.
        impl Sub<u64> for $name {
            type Output = Self;
            #[track_caller]
            fn sub(self, offset: u64) -> Self {
                match self.checked_sub(offset) {
                    Some(difference) => difference,
                    None => panic!(concat!("address underflow: ", $prefix, "({:#x}) - {:#x}"), self.0, offset),
                }
            }
        }

        /// `address -= offset`.
        ///
        /// # Panics
        ///
        /// Panics below zero; see [`checked_sub`](Self::checked_sub).
        impl SubAssign<u64> for $name {
            #[track_caller]
            fn sub_assign(&mut self, offset: u64) {
                *self = *self - offset;
            }
        }

        /// `end - start`: the number of bytes between two addresses.
        ///
        /// # Panics
        ///
        /// Panics if `start` is above `end`;
        /// [`checked_offset_from`](Self::checked_offset_from) returns `None` instead.
        impl Sub<$name> for $name {
            type Output = u64;
            #[track_caller]
            fn sub(self, start: $name) -> u64 {
                match self.checked_offset_from(start) {
                    Some(bytes) => bytes,
                    None => panic!(concat!("address underflow: ", $prefix, "({:#x}) - ", $prefix, "({:#x})"), self.0, start.0),
                }
            }
        }
    };
}

address_type!(
    /// A virtual (linear) address.
    VirtAddr,
    "VirtAddr"
);
address_type!(
    /// A physical address.
    PhysAddr,
    "PhysAddr"
);

/// A page size known at compile time.
///
/// Which sizes a page table can map depends on its format: x86-64 maps 4 KiB, 2 MiB and
/// 1 GiB pages, legacy 32-bit x86 4 KiB and 4 MiB pages. The engine refuses a size its
/// format cannot hold with [`TableError::UnsupportedPageSize`](crate::TableError).
pub trait PageSize: Copy + Eq + Ord + core::hash::Hash + fmt::Debug + 'static {
    /// The size in bytes, a power of two.
    const SIZE: u64;
    /// A short name for messages, such as `"4KiB"`.
    const NAME: &'static str;
}

macro_rules! page_size {
    ($(#[$doc:meta])* $name:ident, $size:expr, $text:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub enum $name {}

        impl PageSize for $name {
            const SIZE: u64 = $size;
            const NAME: &'static str = $text;
        }
    };
}

page_size!(
    /// A 4 KiB page, the base page of every format.
    Size4KiB,
    1 << 12,
    "4KiB"
);
page_size!(
    /// A 2 MiB page (x86-64 and PAE directory leaves).
    Size2MiB,
    1 << 21,
    "2MiB"
);
page_size!(
    /// A 4 MiB page (legacy 32-bit directory leaves with PSE).
    Size4MiB,
    1 << 22,
    "4MiB"
);
page_size!(
    /// A 1 GiB page (x86-64 third-level leaves).
    Size1GiB,
    1 << 30,
    "1GiB"
);

macro_rules! sized_block {
    ($(#[$doc:meta])* $name:ident, $addr:ident, $range:ident, $inclusive:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub struct $name<S: PageSize = Size4KiB> {
            start: $addr,
            size: core::marker::PhantomData<S>,
        }

        impl<S: PageSize> $name<S> {
            /// The size of this kind of block in bytes.
            pub const SIZE: u64 = S::SIZE;

            /// Returns the block that starts at `start`.
            ///
            /// # Errors
            ///
            /// Returns [`AddrError::Unaligned`] if `start` is not a multiple of the size.
            pub const fn from_start(start: $addr) -> Result<Self, AddrError> {
                if start.is_aligned(S::SIZE) {
                    Ok(Self { start, size: core::marker::PhantomData })
                } else {
                    Err(AddrError::Unaligned { addr: start.as_u64(), align: S::SIZE })
                }
            }

            /// Returns the block that contains `addr`.
            #[must_use]
            pub const fn containing(addr: $addr) -> Self {
                Self { start: addr.align_down(S::SIZE), size: core::marker::PhantomData }
            }

            /// The first address of the block.
            #[must_use]
            pub const fn start(self) -> $addr {
                self.start
            }

            /// The block `count` blocks further on, or `None` on overflow.
            #[must_use]
            pub const fn checked_add(self, count: u64) -> Option<Self> {
                match count.checked_mul(S::SIZE) {
                    Some(bytes) => match self.start.checked_add(bytes) {
                        Some(start) => Some(Self { start, size: core::marker::PhantomData }),
                        None => None,
                    },
                    None => None,
                }
            }
        }

        impl<S: PageSize> fmt::Debug for $name<S> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "<{}>({:#x})"), S::NAME, self.start.as_u64())
            }
        }

        impl<S: PageSize> $name<S> {
            /// The blocks from `start` up to, not including, `end` (empty if `end` is not
            /// after `start`).
            #[must_use]
            pub const fn range(start: Self, end: Self) -> $range<S> {
                $range { start, end }
            }

            /// The blocks from `start` up to and including `end` (empty if `end` is before
            /// `start`); it reaches the last block of the address space without overflow.
            #[must_use]
            pub const fn range_inclusive(start: Self, end: Self) -> $inclusive<S> {
                $inclusive { next: Some(start), end }
            }
        }

        #[doc = concat!("The [`", stringify!($name), "`]s of a half-open range, in ascending order: see [`", stringify!($name), "::range`].")]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub struct $range<S: PageSize = Size4KiB> {
            /// The first block.
            pub start: $name<S>,
            /// The block just past the last one.
            pub end: $name<S>,
        }

        impl<S: PageSize> $range<S> {
            /// Returns whether the range holds no block.
            #[must_use]
            pub fn is_empty(&self) -> bool {
                self.start >= self.end
            }

            /// The number of blocks in the range.
            #[must_use]
            pub fn count_blocks(&self) -> u64 {
                self.end.start.as_u64().saturating_sub(self.start.start.as_u64()) / S::SIZE
            }
        }

        impl<S: PageSize> Iterator for $range<S> {
            type Item = $name<S>;

            fn next(&mut self) -> Option<$name<S>> {
                if self.is_empty() {
                    return None;
                }
                let block = self.start;
                // Below `end`, so the next block exists.
                self.start = block.checked_add(1).unwrap_or(self.end);
                Some(block)
            }

            fn size_hint(&self) -> (usize, Option<usize>) {
                let count = usize::try_from(self.count_blocks()).ok();
                (count.unwrap_or(usize::MAX), count)
            }
        }

        #[doc = concat!("The [`", stringify!($name), "`]s of a closed range, in ascending order: see [`", stringify!($name), "::range_inclusive`].")]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub struct $inclusive<S: PageSize = Size4KiB> {
            /// The next block to yield, `None` once the range is exhausted.
            next: Option<$name<S>>,
            /// The last block.
            end: $name<S>,
        }

        impl<S: PageSize> $inclusive<S> {
            /// Returns whether the range holds no (more) block.
            #[must_use]
            pub fn is_empty(&self) -> bool {
                self.next.is_none_or(|next| next > self.end)
            }
        }

        impl<S: PageSize> Iterator for $inclusive<S> {
            type Item = $name<S>;

            fn next(&mut self) -> Option<$name<S>> {
                let block = self.next.filter(|&next| next <= self.end)?;
                // Past the last block of the address space, the range is exhausted.
                self.next = if block == self.end { None } else { block.checked_add(1) };
                Some(block)
            }

            fn size_hint(&self) -> (usize, Option<usize>) {
                let count = match self.next {
                    Some(next) if next <= self.end => usize::try_from(
                        (self.end.start.as_u64() - next.start.as_u64()) / S::SIZE,
                    )
                    .ok()
                    .and_then(|n| n.checked_add(1)),
                    _ => Some(0),
                };
                (count.unwrap_or(usize::MAX), count)
            }
        }
    };
}

sized_block!(
    /// A virtual page of size `S`, aligned to its size.
    Page,
    VirtAddr,
    PageRange,
    PageRangeInclusive
);
sized_block!(
    /// A physical frame of size `S`, aligned to its size.
    Frame,
    PhysAddr,
    FrameRange,
    FrameRangeInclusive
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_helpers() {
        let a = VirtAddr::new(0x1234);
        assert_eq!(a.align_down(0x1000), VirtAddr::new(0x1000));
        assert_eq!(a.checked_align_up(0x1000), Some(VirtAddr::new(0x2000)));
        assert_eq!(VirtAddr::new(u64::MAX).checked_align_up(0x1000), None);
        assert_eq!(a.offset_in(0x1000), 0x234);
        assert!(VirtAddr::new(0x20_0000).is_aligned(Size2MiB::SIZE));
    }

    #[test]
    fn pages_carry_their_size() {
        let p = Page::<Size2MiB>::containing(VirtAddr::new(0x40_1234));
        assert_eq!(p.start(), VirtAddr::new(0x40_0000));
        assert_eq!(
            Page::<Size4KiB>::from_start(VirtAddr::new(0x1001)),
            Err(AddrError::Unaligned { addr: 0x1001, align: 0x1000 })
        );
        assert_eq!(format!("{p:?}"), "Page<2MiB>(0x400000)");
        assert_eq!(Frame::<Size1GiB>::SIZE, 1 << 30);
        assert_eq!(p.checked_add(1).map(Page::start), Some(VirtAddr::new(0x60_0000)));
    }
}

//! Argument checks shared by every engine operation: run before anything is read or written.

use crate::addr::{Frame, Page, PageSize, PhysAddr, VirtAddr};
use crate::error::{AddrKind, TableError};
use crate::flags::PageFlags;
use crate::format::PageTableFormat;

/// An inclusive virtual range `[first, last]` that lies inside one canonical half.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    pub first: u64,
    pub last: u64,
}

/// Checks a virtual range: nonempty, aligned to `align`, canonical, inside one half.
pub(crate) fn virt_range<F: PageTableFormat>(
    start: VirtAddr,
    len: u64,
    align: u64,
) -> Result<Span, TableError> {
    if len == 0 {
        return Err(TableError::EmptyRange);
    }
    if !start.is_aligned(align) {
        return Err(TableError::Unaligned {
            kind: AddrKind::Virtual,
            value: start.as_u64(),
            align,
        });
    }
    if len & (align - 1) != 0 {
        return Err(TableError::UnalignedSize { size: len, align });
    }
    let Some((_, top)) = F::canonical_half(start) else {
        return Err(TableError::unaddressable::<F>(start));
    };
    let out_of_range =
        TableError::OutOfRange { kind: AddrKind::Virtual, start: start.as_u64(), len };
    let last = start.as_u64().checked_add(len - 1).ok_or(out_of_range)?;
    if last > top.as_u64() {
        return Err(out_of_range);
    }
    Ok(Span { first: start.as_u64(), last })
}

/// Checks a page (aligned by its type): canonical. Its last byte is in the same half, as
/// the halves are aligned to more than any page size.
#[inline]
pub(crate) fn page<F: PageTableFormat, S: PageSize>(page: Page<S>) -> Result<(), TableError> {
    let start = page.start();
    if F::is_canonical(start) { Ok(()) } else { Err(TableError::unaddressable::<F>(start)) }
}

/// Checks a frame (aligned by its type): within the format's address width. Its last
/// byte cannot pass 2^64, its start being aligned to its size.
#[inline]
pub(crate) fn frame<F: PageTableFormat, S: PageSize>(frame: Frame<S>) -> Result<(), TableError> {
    let start = frame.start();
    if F::phys_in_range(PhysAddr::new(start.as_u64() | (S::SIZE - 1))) {
        Ok(())
    } else {
        Err(TableError::OutOfRange {
            kind: AddrKind::Physical,
            start: start.as_u64(),
            len: S::SIZE,
        })
    }
}

/// Checks a physical range: aligned to `align` and within the format's address width.
pub(crate) fn phys_range<F: PageTableFormat>(
    start: PhysAddr,
    len: u64,
    align: u64,
) -> Result<(), TableError> {
    if !start.is_aligned(align) {
        return Err(TableError::Unaligned {
            kind: AddrKind::Physical,
            value: start.as_u64(),
            align,
        });
    }
    let out_of_range =
        TableError::OutOfRange { kind: AddrKind::Physical, start: start.as_u64(), len };
    let last = start.as_u64().checked_add(len.saturating_sub(1)).ok_or(out_of_range)?;
    if F::phys_in_range(PhysAddr::new(last)) { Ok(()) } else { Err(out_of_range) }
}

/// Checks that the format can express `flags`.
pub(crate) fn flags<F: PageTableFormat>(flags: PageFlags) -> Result<(), TableError> {
    let extra = flags.difference(F::SUPPORTED);
    if extra.is_empty() { Ok(()) } else { Err(TableError::UnsupportedFlags { flags: extra }) }
}

/// Returns the level whose leaves are `size` bytes.
pub(crate) fn level_for<F: PageTableFormat>(size: u64) -> Result<u8, TableError> {
    F::level_for_size(size).ok_or(TableError::UnsupportedPageSize { size })
}

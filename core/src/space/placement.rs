//! Where new reservations go: at the caller's address, or in a free range the space finds
//! (the lowest fit, or at random with ASLR). The Windows face places on the allocation
//! granularity, the Unix face on pages; both search here.

use crate::addr::VirtAddr;
use crate::format::PageTableFormat;

use super::{AddressSpace, PAGE, SpaceError};

/// How many random bases ASLR tries before it falls back to the lowest fit.
const RANDOM_TRIES: u32 = 32;

impl<F: PageTableFormat, const N: usize> AddressSpace<F, N> {
    /// Chooses a reservation's base and length: at `addr` rounded down to the granularity
    /// (covering every page `[addr, addr + size)` touches), or a free range.
    pub(super) fn place_reservation(
        &mut self,
        addr: Option<VirtAddr>,
        size: u64,
    ) -> Result<(VirtAddr, u64), SpaceError> {
        if size == 0 {
            return Err(SpaceError::ZeroSize);
        }
        let outside = SpaceError::OutsideUserSpace { addr: addr.unwrap_or(VirtAddr::ZERO), size };
        let Some(addr) = addr else {
            let len = size.checked_next_multiple_of(PAGE).ok_or(outside)?;
            let base = self
                .find_free(len, self.config.granularity)
                .ok_or(SpaceError::NoFreeRange { size })?;
            return Ok((base, len));
        };
        let base = addr.align_down(self.config.granularity);
        let end =
            addr.checked_add(size).and_then(|end| end.checked_align_up(PAGE)).ok_or(outside)?;
        // `base <= addr <= end`: `base` is rounded down from `addr`, `end` up from past it.
        let len = end - base;
        if !self.layout.holds(base, len) {
            return Err(outside);
        }
        if let Some(other) = self.regions.overlapping(base.as_u64(), end.as_u64()) {
            return Err(SpaceError::Overlaps { base: other.base });
        }
        Ok((base, len))
    }

    /// Whether `[base, base + len)` is inside the part of the space that can be handed out
    /// and no reservation is in it.
    pub(super) fn is_free(&self, base: VirtAddr, len: u64) -> bool {
        self.layout.holds(base, len)
            && self.regions.overlapping(base.as_u64(), base.as_u64() + len).is_none()
    }

    /// Finds a free range of `len` bytes (not 0) whose base is a multiple of `align` (a
    /// power of two): at random when ASLR is on (falling back to the lowest fit), else the
    /// lowest fit.
    pub(super) fn find_free(&mut self, len: u64, align: u64) -> Option<VirtAddr> {
        let lowest = self.layout.lowest.checked_align_up(align)?.as_u64();
        let last_base =
            self.layout.highest.as_u64().checked_sub(len.checked_sub(1)?)? & !(align - 1);
        if last_base < lowest {
            return None;
        }
        if let Some(aslr) = self.aslr.as_mut() {
            let slots = (last_base - lowest) / align + 1;
            for _ in 0..RANDOM_TRIES {
                let base = lowest + aslr.below(slots) * align;
                if self.regions.overlapping(base, base + len).is_none() {
                    return Some(VirtAddr::new(base));
                }
            }
        }
        let mut base = lowest;
        while base <= last_base {
            match self.regions.overlapping(base, base + len) {
                None => return Some(VirtAddr::new(base)),
                Some(other) => base = other.end().checked_next_multiple_of(align)?,
            }
        }
        None
    }
}

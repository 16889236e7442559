//! A Unix-minded face over the same machinery: `mmap`, `munmap` and `mprotect` of
//! private anonymous memory, with read/write/execute protections, at a fixed or a chosen
//! address.
//!
//! Placement is page-granular (not the Windows allocation granularity). Each `mmap` makes
//! a private reservation of its own, committed whole: its pages read as zero and take a
//! frame on first touch, as the Windows face's committed memory does, so the two faces
//! mix (`query` describes an `mmap`ed range, `munmap` takes back reserved memory).
//! `munmap` of part of a reservation splits it, so that only the covered part goes.
//!
//! Views of sections (and images) are not this face's to unmap: a range that touches one
//! is refused. Like the rest of the space, every call validates first and changes nothing
//! on error.

use crate::addr::VirtAddr;
use crate::format::PageTableFormat;
use crate::memory::TableMemory;

use super::source::FrameSource;
use crate::tlb::Flush;

use super::protection::{BaseProtection, MemoryType, PageState, Protection};
use super::regions::{Backing, Reservation};
use super::{AddressSpace, PAGE, SpaceError, expect_type, views};

/// A Unix protection: `PROT_READ`, `PROT_WRITE` and `PROT_EXEC` as three switches.
///
/// x86 cannot make a page writable or executable without making it readable, so write
/// implies read and exec implies read, as on Linux.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Prot {
    /// `PROT_READ`.
    pub read: bool,
    /// `PROT_WRITE`.
    pub write: bool,
    /// `PROT_EXEC`.
    pub exec: bool,
}

impl Prot {
    /// `PROT_NONE`: every access faults.
    pub const NONE: Self = Self { read: false, write: false, exec: false };
    /// `PROT_READ`.
    pub const READ: Self = Self { read: true, write: false, exec: false };
    /// `PROT_READ | PROT_WRITE`.
    pub const READ_WRITE: Self = Self { read: true, write: true, exec: false };
    /// `PROT_READ | PROT_EXEC`.
    pub const READ_EXEC: Self = Self { read: true, write: false, exec: true };
    /// `PROT_READ | PROT_WRITE | PROT_EXEC` (refused by W^X unless the space allows it).
    pub const READ_WRITE_EXEC: Self = Self { read: true, write: true, exec: true };

    /// Decodes Linux `PROT_*` bits: `PROT_READ` 1, `PROT_WRITE` 2, `PROT_EXEC` 4.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::InvalidProtection`] for any other bit.
    pub fn from_bits(bits: u32) -> Result<Self, SpaceError> {
        if bits & !7 != 0 {
            return Err(SpaceError::InvalidProtection { bits });
        }
        Ok(Self { read: bits & 1 != 0, write: bits & 2 != 0, exec: bits & 4 != 0 })
    }

    /// The Linux `PROT_*` bits.
    #[must_use]
    pub const fn bits(self) -> u32 {
        self.read as u32 | (self.write as u32) << 1 | (self.exec as u32) << 2
    }

    /// The protection of private memory: none → `PAGE_NOACCESS`, read → `PAGE_READONLY`,
    /// write (with or without read) → `PAGE_READWRITE`, exec (with or without read) →
    /// `PAGE_EXECUTE_READ`, write and exec → `PAGE_EXECUTE_READWRITE`.
    #[must_use]
    pub const fn protection(self) -> Protection {
        match (self.read, self.write, self.exec) {
            (false, false, false) => Protection::NO_ACCESS,
            (true, false, false) => Protection::READ_ONLY,
            (_, true, false) => Protection::READ_WRITE,
            (_, false, true) => Protection::EXECUTE_READ,
            (_, true, true) => Protection::EXECUTE_READ_WRITE,
        }
    }
}

impl From<Prot> for Protection {
    fn from(prot: Prot) -> Self {
        prot.protection()
    }
}

/// How `mmap` treats its address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MapFixed {
    /// The address is a hint: used when it is page-aligned and the range there is free,
    /// else the space chooses.
    #[default]
    No,
    /// `MAP_FIXED`: exactly there, replacing the private memory in the way.
    Replace,
    /// `MAP_FIXED_NOREPLACE`: exactly there, refused ([`SpaceError::Overlaps`], Unix
    /// `EEXIST`) when anything is in the way.
    NoReplace,
}

impl<F: PageTableFormat, const N: usize> AddressSpace<F, N> {
    /// Maps `len` bytes (rounded up to pages) of private anonymous memory with `prot`
    /// (Unix `mmap` with `MAP_PRIVATE | MAP_ANONYMOUS`): committed, zero on first touch,
    /// taking a frame only then. Placement is page-granular:
    ///
    /// - [`MapFixed::No`]: `addr` is a hint, used when page-aligned and free, else (and
    ///   with no address) the space chooses a free page-aligned range (the lowest fit, or
    ///   at random with ASLR);
    /// - [`MapFixed::Replace`]: exactly at `addr`; private memory in the way is unmapped
    ///   first, as [`munmap`](Self::munmap) would;
    /// - [`MapFixed::NoReplace`]: exactly at `addr`, and only if nothing is in the way.
    ///
    /// With no address, `Replace` and `NoReplace` choose as `No` does. Returns the base
    /// and the flush that replacing needs (empty otherwise).
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::ZeroSize`] for `len` 0 (Unix `EINVAL`),
    /// [`SpaceError::WritableExecutable`] for write and exec together in a space that
    /// refuses them (W^X), [`SpaceError::Unaligned`] for a fixed address that is not
    /// page-aligned, [`SpaceError::OutsideUserSpace`] for a fixed range outside the part
    /// of the space that can be handed out (or a length that overflows),
    /// [`SpaceError::Overlaps`] (Unix `EEXIST`) for anything in the way of `NoReplace`,
    /// or a view of a section in the way of `Replace` (views are unmapped with
    /// [`unmap_view`](Self::unmap_view)), [`SpaceError::NoFreeRange`],
    /// [`SpaceError::CapacityExhausted`] when the books have no room for the new
    /// reservation (and the splits replacing needs), and [`SpaceError::Table`].
    #[allow(clippy::too_many_arguments, reason = "mmap's own arguments and the space's tools")]
    pub fn mmap<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        addr: Option<VirtAddr>,
        len: u64,
        prot: Prot,
        fixed: MapFixed,
        memory: &mut M,
        alloc: &mut A,
    ) -> Result<(VirtAddr, Flush), SpaceError> {
        if len == 0 {
            return Err(SpaceError::ZeroSize);
        }
        let protect = prot.protection();
        self.check_private_protection(protect)?;
        let outside =
            SpaceError::OutsideUserSpace { addr: addr.unwrap_or(VirtAddr::ZERO), size: len };
        let size = len.checked_next_multiple_of(PAGE).ok_or(outside)?;
        let (base, span) = match (fixed, addr) {
            (MapFixed::No, hint) | (_, hint @ None) => {
                let free = hint.filter(|&at| at.is_aligned(PAGE) && self.is_free(at, size));
                let base = match free {
                    Some(at) => at,
                    None => {
                        self.find_free(size, PAGE).ok_or(SpaceError::NoFreeRange { size: len })?
                    }
                };
                (base, None)
            }
            (fixed, Some(at)) => {
                if !at.is_aligned(PAGE) {
                    return Err(SpaceError::Unaligned { addr: at, align: PAGE });
                }
                if !self.layout.holds(at, size) {
                    return Err(outside);
                }
                let (start, end) = (at.as_u64(), at.as_u64() + size);
                if fixed == MapFixed::NoReplace
                    && let Some(other) = self.regions.overlapping(start, end)
                {
                    return Err(SpaceError::Overlaps { base: other.base });
                }
                let mut overlapping = self.regions.overlapping_all(start, end);
                if let Some(view) = overlapping.find(|a| a.kind != MemoryType::Private) {
                    return Err(SpaceError::Overlaps { base: view.base });
                }
                (at, self.private_span(start, end)?)
            }
        };
        let (start, end) = (base.as_u64(), base.as_u64() + size);
        // What is in the way goes first; then the new reservation needs its slots.
        self.regions.plan().take_out(start, end).add().fits()?;
        alloc.charge(self.root, size / PAGE)?;
        let flush = match self.take_out(start, end, span, memory, alloc) {
            Ok(flush) => flush,
            Err(error) => {
                alloc.uncharge(self.root, size / PAGE);
                return Err(error);
            }
        };
        let kind = MemoryType::Private;
        let reservation = Reservation {
            base,
            size,
            protect,
            kind,
            backing: Backing::Private,
            charge: 0,
            watch: None,
        };
        // The plan said the books have room.
        let _ = self.regions.add(reservation, PageState::Committed, protect);
        Ok((base, flush))
    }

    /// Unmaps the pages of `[addr, addr + len)` (Unix `munmap`; `len` is rounded up to
    /// pages): their frames go back to `alloc`, their addresses become free. Reservations
    /// the range covers in part are split, so that only the covered part goes; ranges
    /// with nothing mapped are not an error. Reserved (uncommitted) private memory goes
    /// too.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::ZeroSize`] for `len` 0, [`SpaceError::Unaligned`] for an
    /// address that is not page-aligned (Unix `EINVAL`), [`SpaceError::OutsideUserSpace`]
    /// for a range past the user half's highest address,
    /// [`SpaceError::WrongType`] when the range touches a view of a section (unmap views
    /// whole with [`unmap_view`](Self::unmap_view)), [`SpaceError::CapacityExhausted`]
    /// when the books have no room for the splits, and [`SpaceError::Table`].
    pub fn munmap<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        addr: VirtAddr,
        len: u64,
        memory: &mut M,
        alloc: &mut A,
    ) -> Result<Flush, SpaceError> {
        let (start, end) = self.unix_range(addr, len)?;
        let span = self.private_span(start, end)?;
        self.regions.plan().take_out(start, end).fits()?;
        self.take_out(start, end, span, memory, alloc)
    }

    /// Changes the protection of the pages of `[addr, addr + len)` (Unix `mprotect`;
    /// `len` is rounded up to pages), which may span several reservations. Materialised
    /// pages keep their contents. In a view whose section view is write-copy, a writable
    /// protection becomes the write-copy one, so that writes stay private.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::ZeroSize`] for `len` 0, [`SpaceError::Unaligned`] for an
    /// address that is not page-aligned (Unix `EINVAL`), [`SpaceError::OutsideUserSpace`]
    /// for a range past the user half's highest address, [`SpaceError::NotCommitted`]
    /// (Unix `ENOMEM`) for the first page that is free or only reserved,
    /// [`SpaceError::WritableExecutable`] (W^X), [`SpaceError::ReadOnlyView`] for write
    /// in a read-only view, [`SpaceError::CapacityExhausted`] and [`SpaceError::Table`].
    /// Every piece is checked before any changes.
    pub fn mprotect<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        addr: VirtAddr,
        len: u64,
        prot: Prot,
        memory: &mut M,
        alloc: &mut A,
    ) -> Result<Flush, SpaceError> {
        let (start, end) = self.unix_range(addr, len)?;
        let mut plan = self.regions.plan();
        let mut at = start;
        while at < end {
            let (reservation, piece_end) = self.protect_piece(at, end)?;
            let protect = protection_in(prot, &reservation);
            self.check_protection(protect)?;
            if views::writes_read_only_view(&reservation, protect) {
                return Err(SpaceError::ReadOnlyView);
            }
            self.expect_committed(at, piece_end)?;
            plan = plan.set(at, piece_end);
            at = piece_end;
        }
        plan.fits()?;
        let mut flush = Flush::new();
        let mut at = start;
        while at < end {
            let (reservation, piece_end) = self.protect_piece(at, end)?;
            let protect = protection_in(prot, &reservation);
            let (_, piece) =
                self.protect(VirtAddr::new(at), piece_end - at, protect, memory, alloc)?;
            flush.merge(piece);
            at = piece_end;
        }
        Ok(flush)
    }

    // ---- helpers ----

    /// The page range of a `munmap` or `mprotect`: `addr` page-aligned, `len` rounded up.
    fn unix_range(&self, addr: VirtAddr, len: u64) -> Result<(u64, u64), SpaceError> {
        if len == 0 {
            return Err(SpaceError::ZeroSize);
        }
        if !addr.is_aligned(PAGE) {
            return Err(SpaceError::Unaligned { addr, align: PAGE });
        }
        let end = addr
            .checked_add(len)
            .and_then(|end| end.checked_align_up(PAGE))
            .filter(|end| end.as_u64() - 1 <= self.layout.highest.as_u64())
            .ok_or(SpaceError::OutsideUserSpace { addr, size: len })?;
        Ok((addr.as_u64(), end.as_u64()))
    }

    /// The reservation holding `at` and where its part of `[at, end)` ends.
    fn protect_piece(&self, at: u64, end: u64) -> Result<(Reservation, u64), SpaceError> {
        let reservation = self
            .regions
            .reservation(at)
            .copied()
            .ok_or(SpaceError::NotCommitted { addr: VirtAddr::new(at) })?;
        Ok((reservation, reservation.end().min(end)))
    }

    /// The part of `[start, end)` that reservations cover, from the first to the last;
    /// refused when a view of a section is in it (views go whole).
    fn private_span(&self, start: u64, end: u64) -> Result<Option<(u64, u64)>, SpaceError> {
        let mut span = None;
        for reservation in self.regions.overlapping_all(start, end) {
            expect_type(reservation, MemoryType::Private)?;
            let first = span.map_or(reservation.base.as_u64(), |(first, _)| first);
            span = Some((first.max(start), reservation.end().min(end)));
        }
        Ok(span)
    }

    /// Takes `[start, end)` out of the tables (over `span`, what reservations cover) and
    /// the books; the books' room was planned.
    fn take_out<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        start: u64,
        end: u64,
        span: Option<(u64, u64)>,
        memory: &mut M,
        alloc: &mut A,
    ) -> Result<Flush, SpaceError> {
        let Some((first, last)) = span else { return Ok(Flush::new()) };
        let committed = self.charged_in(start, end);
        // One rewrite over the covered span: nothing is mapped between reservations, and
        // the rewrite changes nothing on error.
        let flush = self.clear(first, last, memory, alloc)?;
        self.regions.take_out(start, end)?;
        alloc.uncharge(self.root, committed);
        Ok(flush)
    }
}

/// The protection `prot` means in `reservation`: write-copy views keep writes private.
fn protection_in(prot: Prot, reservation: &Reservation) -> Protection {
    let protect = prot.protection();
    if reservation.kind == MemoryType::Private || !reservation.protect.is_write_copy() {
        return protect;
    }
    match protect.base() {
        BaseProtection::ReadWrite => Protection::WRITE_COPY,
        BaseProtection::ExecuteReadWrite => Protection::EXECUTE_WRITE_COPY,
        _ => protect,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prot_maps_to_protection() {
        assert_eq!(Prot::NONE.protection(), Protection::NO_ACCESS);
        assert_eq!(Prot::READ.protection(), Protection::READ_ONLY);
        assert_eq!(Prot::READ_WRITE.protection(), Protection::READ_WRITE);
        let write = Prot { write: true, ..Prot::NONE };
        assert_eq!(write.protection(), Protection::READ_WRITE);
        let exec = Prot { exec: true, ..Prot::NONE };
        assert_eq!(exec.protection(), Protection::EXECUTE_READ);
        assert_eq!(Prot::READ_EXEC.protection(), Protection::EXECUTE_READ);
        assert_eq!(Prot::READ_WRITE_EXEC.protection(), Protection::EXECUTE_READ_WRITE);
        assert_eq!(Protection::from(Prot::READ), Protection::READ_ONLY);
    }

    #[test]
    fn prot_bits_round_trip() {
        for bits in 0..8 {
            assert_eq!(Prot::from_bits(bits).map(Prot::bits), Ok(bits));
        }
        assert_eq!(Prot::from_bits(8), Err(SpaceError::InvalidProtection { bits: 8 }));
    }
}

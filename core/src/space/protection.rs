//! Page protections, states and types, with the Windows memory API's meaning and values.

use core::fmt;

use crate::fault::Access;
use crate::flags::PageFlags;

use super::error::SpaceError;

/// The base of a protection: exactly one of the Windows `PAGE_*` access constants.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BaseProtection {
    /// `PAGE_NOACCESS`: every access faults.
    NoAccess,
    /// `PAGE_READONLY`.
    ReadOnly,
    /// `PAGE_READWRITE`.
    ReadWrite,
    /// `PAGE_WRITECOPY`: reads see the shared page, the first write makes a private copy.
    WriteCopy,
    /// `PAGE_EXECUTE`. x86 cannot express execute-only: the page is also readable.
    Execute,
    /// `PAGE_EXECUTE_READ`.
    ExecuteRead,
    /// `PAGE_EXECUTE_READWRITE`: refused unless the space allows writable code (W^X).
    ExecuteReadWrite,
    /// `PAGE_EXECUTE_WRITECOPY`: refused unless the space allows writable code (W^X).
    ExecuteWriteCopy,
}

impl BaseProtection {
    const ALL: [(Self, u32, &'static str); 8] = [
        (Self::NoAccess, 0x01, "PAGE_NOACCESS"),
        (Self::ReadOnly, 0x02, "PAGE_READONLY"),
        (Self::ReadWrite, 0x04, "PAGE_READWRITE"),
        (Self::WriteCopy, 0x08, "PAGE_WRITECOPY"),
        (Self::Execute, 0x10, "PAGE_EXECUTE"),
        (Self::ExecuteRead, 0x20, "PAGE_EXECUTE_READ"),
        (Self::ExecuteReadWrite, 0x40, "PAGE_EXECUTE_READWRITE"),
        (Self::ExecuteWriteCopy, 0x80, "PAGE_EXECUTE_WRITECOPY"),
    ];

    fn entry(self) -> (Self, u32, &'static str) {
        Self::ALL[self as usize]
    }
}

/// A page protection: a base access and the guard and no-cache modifiers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Protection {
    base: BaseProtection,
    guard: bool,
    no_cache: bool,
}

impl Protection {
    /// `PAGE_NOACCESS`.
    pub const NO_ACCESS: Self = Self::of(BaseProtection::NoAccess);
    /// `PAGE_READONLY`.
    pub const READ_ONLY: Self = Self::of(BaseProtection::ReadOnly);
    /// `PAGE_READWRITE`.
    pub const READ_WRITE: Self = Self::of(BaseProtection::ReadWrite);
    /// `PAGE_WRITECOPY`.
    pub const WRITE_COPY: Self = Self::of(BaseProtection::WriteCopy);
    /// `PAGE_EXECUTE`.
    pub const EXECUTE: Self = Self::of(BaseProtection::Execute);
    /// `PAGE_EXECUTE_READ`.
    pub const EXECUTE_READ: Self = Self::of(BaseProtection::ExecuteRead);
    /// `PAGE_EXECUTE_READWRITE`.
    pub const EXECUTE_READ_WRITE: Self = Self::of(BaseProtection::ExecuteReadWrite);
    /// `PAGE_EXECUTE_WRITECOPY`.
    pub const EXECUTE_WRITE_COPY: Self = Self::of(BaseProtection::ExecuteWriteCopy);

    /// The protection with base `base` and no modifier.
    #[must_use]
    pub const fn of(base: BaseProtection) -> Self {
        Self { base, guard: false, no_cache: false }
    }

    /// Decodes Windows `PAGE_*` bits: exactly one base constant, optionally with
    /// `PAGE_GUARD` (0x100) and `PAGE_NOCACHE` (0x200).
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::InvalidProtection`] for zero, several base constants, unknown
    /// bits, or `PAGE_GUARD` with `PAGE_NOACCESS`.
    pub fn from_windows(bits: u32) -> Result<Self, SpaceError> {
        let invalid = SpaceError::InvalidProtection { bits };
        if bits & !0x3FF != 0 || (bits & 0xFF).count_ones() != 1 {
            return Err(invalid);
        }
        let base =
            BaseProtection::ALL.iter().find(|e| e.1 == bits & 0xFF).map(|e| e.0).ok_or(invalid)?;
        let protection = Self { base, guard: bits & 0x100 != 0, no_cache: bits & 0x200 != 0 };
        if protection.guard && base == BaseProtection::NoAccess {
            return Err(invalid);
        }
        Ok(protection)
    }

    /// The Windows `PAGE_*` bits.
    #[must_use]
    pub fn windows(self) -> u32 {
        self.base.entry().1 | u32::from(self.guard) << 8 | u32::from(self.no_cache) << 9
    }

    /// The base access.
    #[must_use]
    pub const fn base(self) -> BaseProtection {
        self.base
    }

    /// With the guard modifier: the first access raises a guard-page exception and clears it.
    #[must_use]
    pub const fn guard(self) -> Self {
        Self { guard: true, ..self }
    }

    /// With caching disabled.
    #[must_use]
    pub const fn no_cache(self) -> Self {
        Self { no_cache: true, ..self }
    }

    /// Without the guard modifier (what a guard page becomes once it fired).
    #[must_use]
    pub const fn without_guard(self) -> Self {
        Self { guard: false, ..self }
    }

    /// Whether the guard modifier is set.
    #[must_use]
    pub const fn is_guard(self) -> bool {
        self.guard
    }

    /// Whether the no-cache modifier is set.
    #[must_use]
    pub const fn is_no_cache(self) -> bool {
        self.no_cache
    }

    /// Whether `access` is allowed (the guard modifier aside).
    #[must_use]
    pub fn allows(self, access: Access) -> bool {
        use BaseProtection::*;
        match access {
            Access::Read => self.base != NoAccess,
            Access::Write => {
                matches!(self.base, ReadWrite | WriteCopy | ExecuteReadWrite | ExecuteWriteCopy)
            }
            Access::Execute => {
                matches!(self.base, Execute | ExecuteRead | ExecuteReadWrite | ExecuteWriteCopy)
            }
        }
    }

    /// Whether the first write makes a private copy.
    #[must_use]
    pub fn is_write_copy(self) -> bool {
        matches!(self.base, BaseProtection::WriteCopy | BaseProtection::ExecuteWriteCopy)
    }

    /// Whether the page can be both written and executed (what W^X refuses).
    #[must_use]
    pub fn is_writable_executable(self) -> bool {
        matches!(self.base, BaseProtection::ExecuteReadWrite | BaseProtection::ExecuteWriteCopy)
    }

    /// What a write-copy protection becomes once the page has its private copy.
    #[must_use]
    pub fn after_copy(self) -> Self {
        let base = match self.base {
            BaseProtection::WriteCopy => BaseProtection::ReadWrite,
            BaseProtection::ExecuteWriteCopy => BaseProtection::ExecuteReadWrite,
            other => other,
        };
        Self { base, ..self }
    }

    /// Whether every access this protection grants to the view's own pages, `view` grants
    /// too (Windows' rule for `VirtualProtect` and recommitting in a view). A write-copy
    /// protection grants only reads of the view's pages: its writes go to private copies.
    #[must_use]
    pub fn fits_view(self, view: Self) -> bool {
        let granted = |p: Self| {
            [Access::Read, Access::Write, Access::Execute]
                .map(|access| p.allows(access) && !(access == Access::Write && p.is_write_copy()))
        };
        let (asked, held) = (granted(self), granted(view));
        asked.iter().zip(held).all(|(&asked, held)| !asked || held)
    }

    /// The write-copy form of a writable protection (what an image page becomes when asked
    /// to be writable: it never writes the image).
    #[must_use]
    pub fn copy_on_write(self) -> Self {
        let base = match self.base {
            BaseProtection::ReadWrite => BaseProtection::WriteCopy,
            BaseProtection::ExecuteReadWrite => BaseProtection::ExecuteWriteCopy,
            other => other,
        };
        Self { base, ..self }
    }

    /// With the no-cache modifier of `allocation` instead of its own: modern Windows caches
    /// a whole allocation one way, whatever a later call asks of its pages.
    #[must_use]
    pub fn cached_as(self, allocation: Self) -> Self {
        Self { no_cache: allocation.no_cache, ..self }
    }

    /// The page-table flags of a present page with this protection, or `None` when the
    /// page must not be present (no access, or a guard that has not fired). Write-copy
    /// pages are mapped read-only until their first write.
    #[must_use]
    pub fn page_flags(self, user: bool) -> Option<PageFlags> {
        if self.guard || self.base == BaseProtection::NoAccess {
            return None;
        }
        let mut flags = PageFlags::READABLE;
        flags.set(
            PageFlags::WRITABLE,
            matches!(self.base, BaseProtection::ReadWrite | BaseProtection::ExecuteReadWrite),
        );
        flags.set(PageFlags::EXECUTABLE, self.allows(Access::Execute));
        flags.set(PageFlags::USER, user);
        flags.set(PageFlags::NO_CACHE, self.no_cache);
        Some(flags)
    }
}

impl fmt::Display for Protection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base.entry().2)?;
        if self.guard {
            f.write_str("|PAGE_GUARD")?;
        }
        if self.no_cache {
            f.write_str("|PAGE_NOCACHE")?;
        }
        Ok(())
    }
}

/// The state of a page.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PageState {
    /// `MEM_FREE`: not part of any reservation.
    Free,
    /// `MEM_RESERVE`: addresses held, no storage charged.
    Reserved,
    /// `MEM_COMMIT`: storage charged; materialised on first touch.
    Committed,
}

impl PageState {
    /// The Windows `MEM_*` value.
    #[must_use]
    pub fn windows(self) -> u32 {
        match self {
            Self::Free => 0x1_0000,
            Self::Reserved => 0x2000,
            Self::Committed => 0x1000,
        }
    }
}

impl fmt::Display for PageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Free => "MEM_FREE",
            Self::Reserved => "MEM_RESERVE",
            Self::Committed => "MEM_COMMIT",
        })
    }
}

/// What backs a region.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MemoryType {
    /// `MEM_PRIVATE`: this space's own memory.
    Private,
    /// `MEM_MAPPED`: a view of a section that several spaces can map.
    Mapped,
    /// `MEM_IMAGE`: a view of an executable image, each part with its own protection.
    Image,
}

impl MemoryType {
    /// The Windows `MEM_*` value.
    #[must_use]
    pub fn windows(self) -> u32 {
        match self {
            Self::Private => 0x2_0000,
            Self::Mapped => 0x4_0000,
            Self::Image => 0x100_0000,
        }
    }
}

impl fmt::Display for MemoryType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Private => "MEM_PRIVATE",
            Self::Mapped => "MEM_MAPPED",
            Self::Image => "MEM_IMAGE",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_values_round_trip() {
        for bits in [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x104, 0x202, 0x320] {
            assert_eq!(Protection::from_windows(bits).unwrap().windows(), bits);
        }
        for bits in [0, 0x06, 0x22, 0x101, 0x400, 0x100] {
            assert_eq!(Protection::from_windows(bits), Err(SpaceError::InvalidProtection { bits }));
        }
    }

    #[test]
    fn flags_follow_the_protection() {
        let rw = PageFlags::READABLE | PageFlags::WRITABLE | PageFlags::USER;
        assert_eq!(Protection::READ_WRITE.page_flags(true), Some(rw));
        assert_eq!(Protection::WRITE_COPY.page_flags(false), Some(PageFlags::READABLE));
        let rx = PageFlags::READABLE | PageFlags::EXECUTABLE;
        assert_eq!(Protection::EXECUTE.page_flags(false), Some(rx), "execute-only reads too");
        assert_eq!(Protection::NO_ACCESS.page_flags(true), None);
        assert_eq!(Protection::READ_ONLY.guard().page_flags(true), None);
        assert_eq!(Protection::EXECUTE_WRITE_COPY.after_copy(), Protection::EXECUTE_READ_WRITE);
        assert_eq!(
            Protection::READ_WRITE.guard().no_cache().to_string(),
            "PAGE_READWRITE|PAGE_GUARD|PAGE_NOCACHE"
        );
    }
}

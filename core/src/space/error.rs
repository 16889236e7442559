//! Why an address-space operation was refused. A refused operation changed nothing (but a
//! guard page a lock touched: it fires; and `MEM_RESET_UNDO`, whose pages are ordinary
//! again whether it succeeds or not).

use core::fmt;

use crate::addr::VirtAddr;
use crate::error::TableError;

use super::protection::MemoryType;
use super::source::PageInError;

/// Why an address-space operation was refused. Each refusal leaves the space, its tables
/// and every frame as they were, but [`GuardPage`](Self::GuardPage): a guard fires as the
/// access it stands for would; and [`ResetDiscarded`](Self::ResetDiscarded).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SpaceError {
    /// A size of zero (Windows `ERROR_INVALID_PARAMETER`, Unix `EINVAL`).
    ZeroSize,
    /// An address that must be aligned is not.
    Unaligned {
        /// The address.
        addr: VirtAddr,
        /// The alignment it needs.
        align: u64,
    },
    /// The range leaves the part of the space that can be handed out: the null region,
    /// the top of the user half, or past the end (with overflow).
    OutsideUserSpace {
        /// The first address asked for.
        addr: VirtAddr,
        /// The size asked for.
        size: u64,
    },
    /// The range overlaps an existing reservation (Unix `EEXIST`).
    Overlaps {
        /// The base of the reservation in the way.
        base: VirtAddr,
    },
    /// No reservation holds the address (Windows `ERROR_INVALID_ADDRESS`).
    NotReserved {
        /// The address.
        addr: VirtAddr,
    },
    /// The range runs past the end of its reservation (Windows `ERROR_INVALID_ADDRESS`).
    CrossesReservation {
        /// The first address asked for.
        addr: VirtAddr,
        /// The size asked for.
        size: u64,
    },
    /// A page in the range is not committed (Unix `ENOMEM` for `mprotect`).
    NotCommitted {
        /// The first such page.
        addr: VirtAddr,
    },
    /// The address is not in the first page of its reservation (release, and decommit of a
    /// whole reservation, need its base): Windows `STATUS_FREE_VM_NOT_AT_BASE`,
    /// `ERROR_INVALID_ADDRESS`.
    NotAllocationBase {
        /// The address given.
        addr: VirtAddr,
        /// The base of the reservation it lies in.
        base: VirtAddr,
    },
    /// Invalid `PAGE_*` bits: zero, several bases, unknown bits, guard with no-access.
    InvalidProtection {
        /// The bits.
        bits: u32,
    },
    /// Write-copy protections are for mapped views and images, not private memory.
    WriteCopyOnPrivate,
    /// Writable and executable memory, in a space that does not allow it (W^X).
    WritableExecutable,
    /// The operation is for another type of memory (release a view with `unmap_view`):
    /// Windows `ERROR_INVALID_PARAMETER` when a private-memory call meets a view,
    /// `ERROR_INVALID_ADDRESS` when `UnmapViewOfFile` meets private memory.
    WrongType {
        /// The type the operation needs.
        expected: MemoryType,
        /// The type found.
        found: MemoryType,
    },
    /// A protection that grants an access the view's own protection does not (write on a
    /// read-only or write-copy view, execute on a view mapped without it): Windows
    /// `ERROR_INVALID_PARAMETER`.
    ReadOnlyView,

    /// No free range of the size asked for.
    NoFreeRange {
        /// The size.
        size: u64,
    },
    /// The space's fixed region table is full: it holds at most `N` reservations and `N`
    /// runs of pages, `N` being the const parameter of
    /// [`AddressSpace<F, N>`](super::AddressSpace). A larger `N`, or the `alloc` feature
    /// (which makes the table grow), lifts the bound.
    CapacityExhausted {
        /// The bound `N`.
        capacity: usize,
    },
    /// The section already records the most views it can
    /// ([`MAX_VIEWS`](super::MAX_VIEWS)).
    TooManyViews {
        /// The bound.
        max: u64,
    },
    /// A view that runs past the end of its section, or a part outside its image.
    OutsideSection {
        /// The offset in pages.
        offset: u64,
        /// The number of pages.
        pages: u64,
    },
    /// A section still mapped by views cannot be closed.
    SectionInUse {
        /// How many views map it.
        views: u32,
    },
    /// Committing would take the commit total past the commit limit (the pager's frames
    /// plus its backing store's slots): Windows `ERROR_COMMITMENT_LIMIT` (1455).
    CommitLimit {
        /// The pages the call would have charged.
        requested: u64,
        /// The pages still free under the limit.
        available: u64,
    },
    /// A page in the range to unlock is not locked (Windows `VirtualUnlock`,
    /// `ERROR_NOT_LOCKED`, 158).
    NotLocked {
        /// The first such page.
        addr: VirtAddr,
    },
    /// Locking would take the space's locked pages past what its working set allows: its
    /// minimum (Windows `ERROR_WORKING_SET_QUOTA`, 1453).
    WorkingSetQuota {
        /// The pages the call would have locked.
        requested: u64,
        /// The pages that can still be locked.
        available: u64,
    },
    /// A page in the range cannot be touched (no-access), so it cannot be made resident and
    /// locked (Windows `ERROR_NOACCESS`, 998).
    Inaccessible {
        /// The first such page.
        addr: VirtAddr,
    },
    /// The lock touched a guard page: its guard fired and is cleared (the one refusal that
    /// changes something, as the access it stands for would). Windows' `GetLastError` is
    /// then `STATUS_GUARD_PAGE_VIOLATION` (0x80000001); locking again succeeds.
    GuardPage {
        /// The guard page.
        addr: VirtAddr,
    },
    /// A page could not be made resident to be locked: no frame could be freed for it, or
    /// the store failed to read it back.
    NotResident {
        /// The page.
        addr: VirtAddr,
        /// Why.
        error: PageInError,
    },
    /// A write-watch call on a range not inside one reservation made with
    /// `MEM_WRITE_WATCH` (Windows `ERROR_INVALID_PARAMETER`).
    NotWatched {
        /// The first address asked for.
        addr: VirtAddr,
    },
    /// A write-watch reservation larger than one frame of bits covers (Windows has no such
    /// bound; `ERROR_NOT_ENOUGH_MEMORY` stands for it).
    WriteWatchTooLarge {
        /// The pages asked for.
        pages: u64,
        /// The most pages a watched reservation holds.
        max: u64,
    },
    /// No room for the answer: `GetWriteWatch` with a count of zero (Windows
    /// `ERROR_INVALID_PARAMETER`).
    NoRoom,
    /// A kernel space was given a kernel root to share: it owns the kernel half's
    /// tables, which processes share from it.
    KernelSpaceShares,
    /// `MEM_RESET_UNDO` found a page whose contents a reset had already let go (replaced
    /// with zeros). Like [`GuardPage`](Self::GuardPage), a refusal that changed
    /// something: every page of the range is ordinary again. No Windows error code is
    /// documented for it (the call fails).
    ResetDiscarded {
        /// The first such page.
        addr: VirtAddr,
    },
    /// The page tables refused (most often: out of frames for a table).
    Table(TableError),
}

impl SpaceError {
    /// The Windows error code (`GetLastError`) of the refusals that have one.
    #[must_use]
    pub const fn windows_error(&self) -> Option<u32> {
        match self {
            Self::ZeroSize
            | Self::InvalidProtection { .. }
            | Self::WriteCopyOnPrivate
            | Self::ReadOnlyView
            | Self::WrongType { expected: MemoryType::Private, .. } => Some(87),
            Self::WrongType { .. } => Some(487),
            Self::NotReserved { .. }
            | Self::CrossesReservation { .. }
            | Self::NotAllocationBase { .. }
            | Self::Overlaps { .. } => Some(487),
            Self::NotCommitted { .. } => Some(487),
            Self::NoFreeRange { .. }
            | Self::CapacityExhausted { .. }
            | Self::TooManyViews { .. } => Some(8),
            Self::CommitLimit { .. } => Some(1455),
            Self::NotLocked { .. } => Some(158),
            Self::WorkingSetQuota { .. } => Some(1453),
            Self::Inaccessible { .. } => Some(998),
            Self::GuardPage { .. } => Some(0x8000_0001),
            Self::NotWatched { .. } | Self::NoRoom => Some(87),
            Self::WriteWatchTooLarge { .. } => Some(8),
            _ => None,
        }
    }
}

impl From<TableError> for SpaceError {
    fn from(error: TableError) -> Self {
        Self::Table(error)
    }
}

impl fmt::Display for SpaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ZeroSize => f.write_str("the size is zero"),
            Self::Unaligned { addr, align } => {
                write!(f, "{:#x} is not aligned to {align:#x}", addr.as_u64())
            }
            Self::OutsideUserSpace { addr, size } => write!(
                f,
                "{:#x}+{size:#x} is outside the part of the space that can be handed out",
                addr.as_u64()
            ),
            Self::Overlaps { base } => {
                write!(f, "the range overlaps the reservation at {:#x}", base.as_u64())
            }
            Self::NotReserved { addr } => write!(f, "{:#x} is not reserved", addr.as_u64()),
            Self::CrossesReservation { addr, size } => {
                write!(f, "{:#x}+{size:#x} runs past the end of its reservation", addr.as_u64())
            }
            Self::NotCommitted { addr } => write!(f, "{:#x} is not committed", addr.as_u64()),
            Self::NotAllocationBase { addr, base } => write!(
                f,
                "{:#x} is not the base of its reservation ({:#x})",
                addr.as_u64(),
                base.as_u64()
            ),
            Self::InvalidProtection { bits } => write!(f, "invalid protection {bits:#x}"),
            Self::WriteCopyOnPrivate => {
                f.write_str("write-copy protection is for mapped views and images")
            }
            Self::WritableExecutable => {
                f.write_str("writable and executable memory is refused in this space (W^X)")
            }
            Self::WrongType { expected, found } => {
                write!(f, "the operation is for {expected} memory, not {found}")
            }
            Self::ReadOnlyView => {
                f.write_str("the view's protection does not grant that access: it cannot be given")
            }

            Self::NoFreeRange { size } => write!(f, "no free range of {size:#x} bytes"),
            Self::CapacityExhausted { capacity } => write!(
                f,
                "the space's region table is full: AddressSpace<_, N> with N = {capacity} holds \
                 at most {capacity} reservations and runs; raise N or enable the `alloc` feature"
            ),
            Self::TooManyViews { max } => {
                write!(f, "the section is mapped by {max} views, the most it can record")
            }
            Self::OutsideSection { offset, pages } => {
                write!(f, "pages {offset}..{} are outside the section", offset + pages)
            }
            Self::SectionInUse { views } => {
                write!(f, "the section is still mapped by {views} views")
            }
            Self::CommitLimit { requested, available } => write!(
                f,
                "committing {requested} pages passes the commit limit ({available} pages left)"
            ),
            Self::NotLocked { addr } => write!(f, "{:#x} is not locked", addr.as_u64()),
            Self::WorkingSetQuota { requested, available } => write!(
                f,
                "locking {requested} pages passes the working set's minimum \
                 ({available} pages left)"
            ),
            Self::Inaccessible { addr } => {
                write!(f, "{:#x} is no-access: it cannot be locked", addr.as_u64())
            }
            Self::ResetDiscarded { addr } => write!(
                f,
                "the contents of the reset page at {:#x} were already replaced with zeros",
                addr.as_u64()
            ),
            Self::GuardPage { addr } => {
                write!(
                    f,
                    "the lock touched the guard page at {:#x}: its guard fired",
                    addr.as_u64()
                )
            }
            Self::NotResident { addr, error } => {
                let why = match error {
                    PageInError::Store => "the store failed to read it",
                    PageInError::NoFrame => "no frame could be freed for it",
                    PageInError::Unknown => "its entry names nothing the source holds",
                };
                write!(f, "{:#x} could not be made resident: {why}", addr.as_u64())
            }
            Self::NotWatched { addr } => write!(
                f,
                "{:#x}: the range is not inside one reservation made with MEM_WRITE_WATCH",
                addr.as_u64()
            ),
            Self::WriteWatchTooLarge { pages, max } => {
                write!(f, "a write watch of {pages} pages passes the most one bitmap holds ({max})")
            }
            Self::NoRoom => f.write_str("no room for the answer"),
            Self::KernelSpaceShares => f.write_str(
                "a kernel space owns the kernel half's tables: it cannot share another root's",
            ),
            Self::Table(error) => write!(f, "page tables: {error}"),
        }
    }
}

impl core::error::Error for SpaceError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Table(error) => Some(error),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;

    #[test]
    fn a_full_region_table_names_its_bound_and_the_alloc_feature() {
        assert_eq!(
            SpaceError::CapacityExhausted { capacity: 64 }.to_string(),
            "the space's region table is full: AddressSpace<_, N> with N = 64 holds at most 64 \
             reservations and runs; raise N or enable the `alloc` feature"
        );
        assert_eq!(
            SpaceError::TooManyViews { max: 170 }.to_string(),
            "the section is mapped by 170 views, the most it can record"
        );
    }
}

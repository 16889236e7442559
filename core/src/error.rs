//! Typed errors. Each implements `Display` and `core::error::Error`.

use core::fmt;

use crate::addr::{PhysAddr, VirtAddr};
use crate::flags::PageFlags;
use crate::format::{InvalidEntry, PageTableFormat};
use crate::table::MappedPage;

/// An address that does not fit what was asked of it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AddrError {
    /// `addr` is not a multiple of `align`.
    Unaligned {
        /// The raw address.
        addr: u64,
        /// The required alignment.
        align: u64,
    },
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Unaligned { addr, align } => {
                write!(f, "address {addr:#x} is not aligned to {align:#x}")
            }
        }
    }
}

impl core::error::Error for AddrError {}

/// What an entry already holds, reported when it is in the way.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Occupant {
    /// A mapped page.
    Page(MappedPage),
    /// A non-present entry carrying a software payload.
    Payload(u64),
}

/// Which kind of address an error is about.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AddrKind {
    /// A virtual address.
    Virtual,
    /// A physical address.
    Physical,
}

impl fmt::Display for AddrKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Virtual => "virtual",
            Self::Physical => "physical",
        })
    }
}

/// Why a page-table operation was refused. A refused operation changed nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TableError {
    /// An address is not a multiple of the page size it must be.
    Unaligned {
        /// Virtual or physical.
        kind: AddrKind,
        /// The offending address.
        value: u64,
        /// The required alignment.
        align: u64,
    },
    /// A length is not a multiple of the page size.
    UnalignedSize {
        /// The length in bytes.
        size: u64,
        /// The page size it must be a multiple of.
        align: u64,
    },
    /// A range of length zero.
    EmptyRange,
    /// A virtual address outside the canonical form of a sign-extended format (x86-64:
    /// the bits above the translated ones must copy the top translated bit).
    NonCanonical {
        /// The address.
        addr: VirtAddr,
    },
    /// A virtual address above the top of a zero-extended format's address space (the
    /// 32-bit x86 formats: at or above 4 GiB).
    BeyondAddressSpace {
        /// The address.
        addr: VirtAddr,
        /// The number of virtual-address bits the format translates.
        bits: u32,
    },
    /// A range that leaves the canonical half it starts in, or a physical range beyond
    /// the format's physical-address width.
    OutOfRange {
        /// Virtual or physical.
        kind: AddrKind,
        /// The first address of the range.
        start: u64,
        /// Its length in bytes.
        len: u64,
    },
    /// The page size is not one the format can map.
    UnsupportedPageSize {
        /// The size asked for.
        size: u64,
    },
    /// Flags the format cannot express.
    UnsupportedFlags {
        /// The flags that cannot be expressed.
        flags: PageFlags,
    },
    /// A page in the range is already mapped, or holds a payload.
    AlreadyMapped {
        /// The first address of what is there.
        addr: VirtAddr,
        /// What is there.
        occupant: Occupant,
    },
    /// A page in the range is not mapped.
    NotMapped {
        /// The first unmapped address.
        addr: VirtAddr,
    },
    /// A larger page covers part of the range at a level the operation cannot split.
    HugePageInTheWay {
        /// The first address of the huge page.
        addr: VirtAddr,
        /// Its level.
        level: u8,
        /// Its size in bytes.
        size: u64,
    },
    /// A lower-level table occupies the entry that a page of this size needs.
    TableInTheWay {
        /// The first address the entry covers.
        addr: VirtAddr,
        /// The level of the entry.
        level: u8,
    },
    /// A payload that is zero or wider than the format's non-present entries can carry.
    PayloadTooWide {
        /// The payload.
        payload: u64,
        /// The number of payload bits the format has.
        bits: u32,
    },
    /// The frame allocator ran dry. The frames it gave before refusing went back to it.
    OutOfFrames {
        /// How many frames the operation needed.
        needed: usize,
        /// How many of them the allocator gave before it refused.
        got: usize,
        /// The allocator's refusal (also [`source`](core::error::Error::source)).
        source: FrameError,
    },
    /// The frame allocator handed out a frame that table memory cannot reach, or that lies
    /// beyond the physical width the format's entries can point to.
    FrameOutsideMemory {
        /// The frame.
        frame: PhysAddr,
    },
    /// A walked entry is malformed, or points outside table memory.
    CorruptEntry {
        /// An address whose walk reaches the entry.
        addr: VirtAddr,
        /// The level of the entry.
        level: u8,
        /// The raw entry.
        raw: u64,
        /// What is wrong, if the format could tell (`None`: the table is outside memory).
        reason: Option<InvalidEntry>,
    },
}

impl TableError {
    /// The error for a virtual address that format `F` cannot translate:
    /// [`BeyondAddressSpace`](Self::BeyondAddressSpace) for a zero-extended format,
    /// [`NonCanonical`](Self::NonCanonical) for a sign-extended one.
    #[must_use]
    pub fn unaddressable<F: PageTableFormat>(addr: VirtAddr) -> Self {
        if F::SIGN_EXTENDED {
            Self::NonCanonical { addr }
        } else {
            Self::BeyondAddressSpace { addr, bits: F::VIRT_BITS }
        }
    }

    /// The error for the level-`level` entry holding `raw` on the walk of `addr`: malformed
    /// as `reason` says, or, with no reason, pointing outside table memory.
    pub(crate) const fn corrupt_entry(
        addr: VirtAddr,
        level: u8,
        raw: u64,
        reason: Option<InvalidEntry>,
    ) -> Self {
        Self::CorruptEntry { addr, level, raw, reason }
    }
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Unaligned { kind, value, align } => {
                write!(f, "{kind} address {value:#x} is not aligned to {align:#x}")
            }
            Self::UnalignedSize { size, align } => {
                write!(f, "size {size:#x} is not a multiple of the page size {align:#x}")
            }
            Self::EmptyRange => f.write_str("the range is empty"),
            Self::NonCanonical { addr } => {
                write!(f, "address {:#x} is not canonical", addr.as_u64())
            }
            Self::BeyondAddressSpace { addr, bits } => {
                write!(f, "address {:#x} is beyond the {bits}-bit address space", addr.as_u64())
            }
            Self::OutOfRange { kind, start, len } => write!(
                f,
                "{kind} range {start:#x}+{len:#x} leaves the space the format can address"
            ),
            Self::UnsupportedPageSize { size } => {
                write!(f, "the format has no page size of {size:#x} bytes")
            }
            Self::UnsupportedFlags { flags } => {
                write!(f, "the format cannot express the flags {flags:?}")
            }
            Self::AlreadyMapped { addr, occupant } => match occupant {
                Occupant::Page(MappedPage { frame, size, flags, .. }) => write!(
                    f,
                    "{:#x} is already mapped: a {size:#x}-byte page at {:#x} ({flags:?})",
                    addr.as_u64(),
                    frame.as_u64()
                ),
                Occupant::Payload(payload) => {
                    write!(f, "{:#x} holds a software payload {payload:#x}", addr.as_u64())
                }
            },
            Self::NotMapped { addr } => write!(f, "{:#x} is not mapped", addr.as_u64()),
            Self::HugePageInTheWay { addr, level, size } => write!(
                f,
                "a {size:#x}-byte page at {:#x} (level {level}) is in the way",
                addr.as_u64()
            ),
            Self::TableInTheWay { addr, level } => write!(
                f,
                "a table of smaller pages occupies the level-{level} entry at {:#x}",
                addr.as_u64()
            ),
            Self::FrameOutsideMemory { frame } => write!(
                f,
                "the allocator handed out frame {:#x}, which table memory cannot reach or the format cannot point to",
                frame.as_u64()
            ),
            Self::PayloadTooWide { payload, bits } => write!(
                f,
                "payload {payload:#x} is zero or wider than the format's {bits} payload bits"
            ),
            Self::OutOfFrames { needed, got, .. } => write!(
                f,
                "out of frames: the operation needed {needed} and the allocator gave {got} \
                 before refusing"
            ),
            Self::CorruptEntry { addr, level, raw, reason } => {
                write!(
                    f,
                    "corrupt level-{level} entry {raw:#x} on the walk of {:#x}: ",
                    addr.as_u64()
                )?;
                match reason {
                    Some(reason) => write!(f, "{reason}"),
                    None => f.write_str("it points outside table memory"),
                }
            }
        }
    }
}

impl core::error::Error for TableError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::OutOfFrames { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why a frame allocator refused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FrameError {
    /// No free frame, or no free run of the size and alignment asked for.
    Exhausted,
    /// A request for zero frames.
    ZeroCount,
    /// An alignment that is not a power of two of at least 4 KiB.
    BadAlignment {
        /// The alignment asked for.
        align: u64,
    },
    /// A freed address that is not the start of a 4 KiB frame.
    Unaligned {
        /// The address.
        frame: PhysAddr,
    },
    /// A freed frame that is not in use, or not managed by this allocator.
    NotAllocated {
        /// The frame's address.
        frame: PhysAddr,
    },
    /// The caller's storage is too small for the memory map.
    StorageTooSmall {
        /// The number of entries (bits or records) the storage needs.
        needed: usize,
    },
    /// An operation this allocator cannot do at all, such as freeing in a bump allocator
    /// (the default of the [`FrameAllocator`](crate::FrameAllocator) methods it leaves out).
    Unsupported {
        /// The operation, as the trait method's name.
        operation: &'static str,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Exhausted => f.write_str("no free frames"),
            Self::ZeroCount => f.write_str("a request for zero frames"),
            Self::BadAlignment { align } => write!(
                f,
                "frame alignment {align:#x} ({align} bytes) is not a power of two of at least \
                 0x1000 (4 KiB)"
            ),
            Self::Unaligned { frame } => write!(
                f,
                "address {:#x} is unaligned: frames start at multiples of 0x1000 (4 KiB)",
                frame.as_u64()
            ),
            Self::NotAllocated { frame } => {
                write!(f, "frame {:#x} is not allocated by this allocator", frame.as_u64())
            }
            Self::StorageTooSmall { needed } => {
                write!(f, "allocator storage too small: needs {needed} entries")
            }
            Self::Unsupported { operation } => {
                write!(f, "this frame allocator does not support `{operation}`")
            }
        }
    }
}

impl core::error::Error for FrameError {}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;

    #[test]
    fn table_errors_say_what_is_misaligned() {
        let size = TableError::UnalignedSize { size: 0x1001, align: 0x1000 };
        assert_eq!(size.to_string(), "size 0x1001 is not a multiple of the page size 0x1000");
        let addr = TableError::Unaligned { kind: AddrKind::Virtual, value: 0x1001, align: 0x1000 };
        assert_eq!(addr.to_string(), "virtual address 0x1001 is not aligned to 0x1000");
        let phys = TableError::Unaligned { kind: AddrKind::Physical, value: 0x10, align: 0x1000 };
        assert_eq!(phys.to_string(), "physical address 0x10 is not aligned to 0x1000");
    }

    #[test]
    fn out_of_frames_says_needed_and_got_and_keeps_the_refusal() {
        let error = TableError::OutOfFrames { needed: 3, got: 1, source: FrameError::Exhausted };
        assert_eq!(
            error.to_string(),
            "out of frames: the operation needed 3 and the allocator gave 1 before refusing"
        );
        let source = core::error::Error::source(&error).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("no free frames"));
        assert!(core::error::Error::source(&TableError::EmptyRange).is_none());
    }

    #[test]
    fn addresses_beyond_32_bits_are_not_called_non_canonical() {
        let beyond = TableError::BeyondAddressSpace { addr: VirtAddr::new(1 << 32), bits: 32 };
        assert_eq!(beyond.to_string(), "address 0x100000000 is beyond the 32-bit address space");
        let non_canonical = TableError::NonCanonical { addr: VirtAddr::new(1 << 47) };
        assert_eq!(non_canonical.to_string(), "address 0x800000000000 is not canonical");
    }

    #[test]
    fn frame_errors_name_what_is_wrong() {
        assert_eq!(FrameError::ZeroCount.to_string(), "a request for zero frames");
        assert_eq!(
            FrameError::BadAlignment { align: 3000 }.to_string(),
            "frame alignment 0xbb8 (3000 bytes) is not a power of two of at least 0x1000 (4 KiB)"
        );
        assert_eq!(
            FrameError::Unaligned { frame: PhysAddr::new(0x1234) }.to_string(),
            "address 0x1234 is unaligned: frames start at multiples of 0x1000 (4 KiB)"
        );
        assert_eq!(
            FrameError::NotAllocated { frame: PhysAddr::new(0x2000) }.to_string(),
            "frame 0x2000 is not allocated by this allocator"
        );
    }
}

//! Software page-table entries: what a non-present entry tells the kernel, laid out once
//! over the payload bits every format carries.
//!
//! The MMU ignores a non-present entry; the kernel reads it on a fault. The kinds follow
//! the Windows memory manager's invalid PTEs:
//!
//! | kind | meaning | value |
//! |---|---|---|
//! | [`DemandZero`](SoftwarePte::DemandZero) | committed, never touched: the first touch gets a zeroed frame (with the owned bit: its contents were discarded after a `MEM_RESET`, which only `MEM_RESET_UNDO` asks) | none |
//! | [`Hidden`](SoftwarePte::Hidden) | resident, kept away by its protection (no-access, guard) | the frame |
//! | [`Transition`](SoftwarePte::Transition) | trimmed from the working set; the frame still holds the data (standby or modified list) | the frame |
//! | [`PagingFile`](SoftwarePte::PagingFile) | in the backing store | the slot |
//! | [`Prototype`](SoftwarePte::Prototype) | a section's page: the section's prototype entry says where it is | none |
//!
//! # Layout
//!
//! A payload is what [`PageTableFormat::encode_payload`] stores above the present bit, so
//! payload bit `k` is entry bit `k + 1`:
//!
//! | payload bits | entry bits | holds |
//! |---|---|---|
//! | 0-2 | 1-3 | the kind (1 to 5; 0 is never used, so a payload is never 0) |
//! | 3 | 4 | owned: the frame is the space's own (private memory or a private copy) |
//! | 4-5 | 5-6 | always 0 and ignored when read: some processors set Accessed and Dirty in non-present entries (an erratum Linux works around too) |
//! | 6 and up | 7 and up | the value: a frame number or a slot |
//!
//! Per format (`paging-x86`): x86-64 4-level and 5-level and PAE have 63 payload bits, so
//! 57 bits of value (entry bits 7-63); legacy 32-bit has 31, so 25 bits of value (entry
//! bits 7-31: frame numbers of its 32-bit physical space, slots below 2^25, a 128 GiB
//! page file). [`SoftwarePte::encode`] refuses a value the format cannot hold.

use core::fmt;

use crate::addr::PhysAddr;
use crate::format::PageTableFormat;
use crate::frame::FRAME_SIZE;
use crate::pager::Slot;

/// The payload bits of the kind.
const KIND_MASK: u64 = 0b111;
/// The payload bit that marks an owned frame.
const OWNED_BIT: u64 = 1 << 3;
/// The first payload bit of the value.
const VALUE_SHIFT: u32 = 6;
/// The shift from a frame's address to its number.
const FRAME_SHIFT: u32 = FRAME_SIZE.trailing_zeros();

/// A demand-zero entry with the owned bit set: the page's contents were thrown away
/// (`MEM_RESET`, then its frame reused or its slot freed). It decodes as
/// [`SoftwarePte::DemandZero`], which is what it is to everyone but `MEM_RESET_UNDO`, which
/// fails on it ([`is_discarded`]).
pub(crate) const DISCARDED: u64 = OWNED_BIT | DEMAND_ZERO;

/// What [`SoftwarePte::DemandZero`] encodes to, in every format (the kind alone).
pub(crate) const DEMAND_ZERO: u64 = 1;

/// Whether `payload` is the [`DISCARDED`] mark (the bits processors may set ignored).
pub(crate) fn is_discarded(payload: u64) -> bool {
    payload & !(0b11 << 4) == DISCARDED
}

/// What a non-present entry says (see the [module docs](self) for the layout).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SoftwarePte {
    /// Committed, never touched: the first touch gets a zeroed frame.
    DemandZero,
    /// Resident, but kept away by its protection (no-access or guard).
    Hidden {
        /// The frame holding the page.
        frame: PhysAddr,
        /// Whether the frame is the space's own.
        owned: bool,
    },
    /// Trimmed from its working set; the frame still holds the data.
    Transition {
        /// The frame holding the page.
        frame: PhysAddr,
        /// Whether the frame is the space's own.
        owned: bool,
    },
    /// In the backing store.
    PagingFile {
        /// The slot.
        slot: Slot,
    },
    /// A page of a section: the section's prototype entry says where it is.
    Prototype,
}

/// Why a payload is not a software PTE, or a software PTE does not fit a format.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SoftwarePteError {
    /// The payload's kind bits name no kind.
    UnknownKind {
        /// The payload.
        payload: u64,
    },
    /// The frame is not aligned to a frame.
    UnalignedFrame {
        /// The frame's address.
        frame: PhysAddr,
    },
    /// The value is wider than the format's payload bits hold.
    TooWide {
        /// The value (a frame number or a slot).
        value: u64,
        /// The bits the format has for a value.
        bits: u32,
    },
}

impl fmt::Display for SoftwarePteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownKind { payload } => {
                write!(f, "payload {payload:#x} is not a software page-table entry")
            }
            Self::UnalignedFrame { frame } => write!(f, "frame {frame:#x} is not 4 KiB aligned"),
            Self::TooWide { value, bits } => {
                write!(f, "value {value:#x} does not fit the format's {bits} value bits")
            }
        }
    }
}

impl core::error::Error for SoftwarePteError {}

impl SoftwarePte {
    /// The bits of value a format with `F`'s payload has.
    #[must_use]
    pub const fn value_bits<F: PageTableFormat>() -> u32 {
        F::PAYLOAD_BITS.saturating_sub(VALUE_SHIFT)
    }

    /// The payload for format `F`.
    ///
    /// # Errors
    ///
    /// Returns [`SoftwarePteError::UnalignedFrame`] for a frame address that is not 4 KiB
    /// aligned, and [`SoftwarePteError::TooWide`] for a frame number or slot wider than
    /// [`value_bits`](Self::value_bits).
    pub fn encode<F: PageTableFormat>(self) -> Result<u64, SoftwarePteError> {
        let (kind, owned, value) = match self {
            Self::DemandZero => (1, false, 0),
            Self::Hidden { frame, owned } => (2, owned, frame_number(frame)?),
            Self::Transition { frame, owned } => (3, owned, frame_number(frame)?),
            Self::PagingFile { slot } => (4, false, u64::from(slot.0)),
            Self::Prototype => (5, false, 0),
        };
        let bits = Self::value_bits::<F>();
        if value >> bits != 0 {
            return Err(SoftwarePteError::TooWide { value, bits });
        }
        Ok(value << VALUE_SHIFT | if owned { OWNED_BIT } else { 0 } | kind)
    }

    /// What `payload` says. The bits a processor may set in non-present entries (see the
    /// [module docs](self)) are ignored.
    ///
    /// # Errors
    ///
    /// Returns [`SoftwarePteError::UnknownKind`] for kind bits that name no kind, and
    /// [`SoftwarePteError::TooWide`] for a slot beyond 32 bits.
    pub fn decode(payload: u64) -> Result<Self, SoftwarePteError> {
        let value = payload >> VALUE_SHIFT;
        let owned = payload & OWNED_BIT != 0;
        let frame = || PhysAddr::new(value << FRAME_SHIFT);
        match payload & KIND_MASK {
            1 => Ok(Self::DemandZero),
            2 => Ok(Self::Hidden { frame: frame(), owned }),
            3 => Ok(Self::Transition { frame: frame(), owned }),
            4 => u32::try_from(value)
                .map(|slot| Self::PagingFile { slot: Slot(slot) })
                .map_err(|_| SoftwarePteError::TooWide { value, bits: u32::BITS }),
            5 => Ok(Self::Prototype),
            _ => Err(SoftwarePteError::UnknownKind { payload }),
        }
    }
}

/// The number of a 4 KiB-aligned frame.
fn frame_number(frame: PhysAddr) -> Result<u64, SoftwarePteError> {
    if frame.is_aligned(FRAME_SIZE) {
        Ok(frame.as_u64() >> FRAME_SHIFT)
    } else {
        Err(SoftwarePteError::UnalignedFrame { frame })
    }
}

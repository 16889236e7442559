//! The page-fault error code (#PF, vector 14) and CR2, turned into core's [`Fault`].
//!
//! Pure decoding: host-testable, no instruction involved.

use core::fmt;

use paging::{Access, Fault, FaultCause, Privilege, VirtAddr};

/// The error code the CPU pushes with a page fault (Intel SDM vol. 3A, 4.7).
///
/// ```
/// use paging::{Access, FaultCause, Privilege, VirtAddr};
/// use paging_x86::hw::PageFaultCode;
///
/// // A supervisor write to a present, read-only page (CR0.WP on).
/// let code = PageFaultCode::new(0x3);
/// let fault = code.fault(VirtAddr::new(0x4000_1008));
/// assert_eq!(fault.access, Access::Write);
/// assert_eq!(fault.privilege, Privilege::Supervisor);
/// assert_eq!(fault.cause, FaultCause::Protection);
/// assert_eq!(code.to_string(), "0x3 (P|W)");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PageFaultCode(u64);

impl PageFaultCode {
    /// P (bit 0): the page was present; the fault is a protection violation.
    pub const PRESENT: u64 = 1 << 0;
    /// W/R (bit 1): the access was a write.
    pub const WRITE: u64 = 1 << 1;
    /// U/S (bit 2): the access was made in user mode.
    pub const USER: u64 = 1 << 2;
    /// RSVD (bit 3): a paging-structure entry had a reserved bit set.
    pub const RESERVED: u64 = 1 << 3;
    /// I/D (bit 4): the access was an instruction fetch.
    pub const FETCH: u64 = 1 << 4;
    /// PK (bit 5): a protection key forbade the access.
    pub const PROTECTION_KEY: u64 = 1 << 5;
    /// SS (bit 6): a shadow-stack access.
    pub const SHADOW_STACK: u64 = 1 << 6;
    /// SGX (bit 15): an SGX access-control violation.
    pub const SGX: u64 = 1 << 15;

    /// The bits with their names, lowest first, for [`Display`](fmt::Display).
    const NAMES: [(u64, &'static str); 8] = [
        (Self::PRESENT, "P"),
        (Self::WRITE, "W"),
        (Self::USER, "U"),
        (Self::RESERVED, "RSVD"),
        (Self::FETCH, "I/D"),
        (Self::PROTECTION_KEY, "PK"),
        (Self::SHADOW_STACK, "SS"),
        (Self::SGX, "SGX"),
    ];

    /// Wraps the raw error code as the CPU pushed it.
    #[must_use]
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw error code.
    #[must_use]
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Returns whether every bit of `mask` is set.
    #[must_use]
    pub const fn contains(self, mask: u64) -> bool {
        self.0 & mask == mask
    }

    /// What the access tried to do: a fetch (I/D), a write (W/R), else a read.
    #[must_use]
    pub const fn access(self) -> Access {
        if self.contains(Self::FETCH) {
            Access::Execute
        } else if self.contains(Self::WRITE) {
            Access::Write
        } else {
            Access::Read
        }
    }

    /// Who made the access (U/S).
    #[must_use]
    pub const fn privilege(self) -> Privilege {
        if self.contains(Self::USER) { Privilege::User } else { Privilege::Supervisor }
    }

    /// Why the access failed. RSVD wins over everything (the walk itself failed), then the
    /// protection key, then shadow-stack rules; otherwise P tells a protection violation
    /// (SGX's included) from a missing page.
    #[must_use]
    pub const fn cause(self) -> FaultCause {
        if self.contains(Self::RESERVED) {
            FaultCause::ReservedBits
        } else if self.contains(Self::PROTECTION_KEY) {
            FaultCause::ProtectionKey
        } else if self.contains(Self::SHADOW_STACK) {
            FaultCause::ShadowStack
        } else if self.contains(Self::PRESENT) {
            FaultCause::Protection
        } else {
            FaultCause::NotPresent
        }
    }

    /// The fault this code describes at `addr` (the value of CR2).
    #[must_use]
    pub const fn fault(self, addr: VirtAddr) -> Fault {
        Fault { addr, access: self.access(), privilege: self.privilege(), cause: self.cause() }
    }
}

impl From<u64> for PageFaultCode {
    fn from(raw: u64) -> Self {
        Self(raw)
    }
}

/// `0x3 (P|W)`: the raw value, then the names of the bits set (`-` for none).
impl fmt::Display for PageFaultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x} (", self.0)?;
        let mut first = true;
        for (bit, name) in Self::NAMES {
            if self.contains(bit) {
                f.write_str(if first { "" } else { "|" })?;
                f.write_str(name)?;
                first = false;
            }
        }
        f.write_str(if first { "-)" } else { ")" })
    }
}

impl fmt::Debug for PageFaultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PageFaultCode({self})")
    }
}

/// Decodes a page fault from the raw error code and CR2.
///
/// ```
/// use paging::{Access, FaultCause, Privilege};
/// use paging_x86::hw::decode_fault;
///
/// let fault = decode_fault(0x15, 0x7000);
/// assert_eq!((fault.access, fault.privilege), (Access::Execute, Privilege::User));
/// assert_eq!(fault.cause, FaultCause::Protection);
/// ```
#[must_use]
pub const fn decode_fault(code: u64, cr2: u64) -> Fault {
    PageFaultCode::new(code).fault(VirtAddr::new(cr2))
}

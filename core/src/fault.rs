//! Page faults: what happened, and the policy that decides what to do about it.
//!
//! The MMU (simulated, or the CPU through `paging-x86`'s #PF decoding) describes a fault
//! as a [`Fault`]. A [`FaultPolicy`] resolves it. The address-space layer chains policies:
//! the kernel first (first chance), then the process's handler (second chance), then
//! termination with an access-violation record.

use core::fmt;

use crate::addr::VirtAddr;

/// The kind of memory access.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Access {
    /// A load.
    Read,
    /// A store.
    Write,
    /// An instruction fetch.
    Execute,
}

impl Access {
    /// The access as Windows' exception records give it (`ExceptionInformation[0]`): 0 read,
    /// 1 write, 8 execute (a DEP violation).
    #[must_use]
    pub const fn windows_code(self) -> u32 {
        match self {
            Self::Read => 0,
            Self::Write => 1,
            Self::Execute => 8,
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Execute => "execute",
        })
    }
}

/// The privilege of the code that made the access.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Privilege {
    /// User mode (x86 ring 3).
    User,
    /// Supervisor mode (x86 rings 0 to 2).
    Supervisor,
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::User => "user",
            Self::Supervisor => "supervisor",
        })
    }
}

/// Why the translation failed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FaultCause {
    /// No present translation (x86 error code P = 0). The leaf may carry a payload.
    NotPresent,
    /// A present translation forbids the access (P = 1): write to read-only, fetch from
    /// no-execute, user access to a supervisor page, supervisor access to a user page
    /// under SMEP or SMAP.
    Protection,
    /// A walked entry has reserved bits set (RSVD = 1).
    ReservedBits,
    /// The page's protection key forbids the access (PK = 1).
    ProtectionKey,
    /// A shadow-stack access violated shadow-stack rules (SS = 1).
    ShadowStack,
}

impl fmt::Display for FaultCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotPresent => "page not present",
            Self::Protection => "protection violation",
            Self::ReservedBits => "reserved bits set in a paging entry",
            Self::ProtectionKey => "protection-key violation",
            Self::ShadowStack => "shadow-stack violation",
        })
    }
}

/// One page fault.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Fault {
    /// The faulting address (x86 CR2).
    pub addr: VirtAddr,
    /// What the access tried to do.
    pub access: Access,
    /// Who made the access.
    pub privilege: Privilege,
    /// Why it failed.
    pub cause: FaultCause,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} of {:#x}: {}", self.privilege, self.access, self.addr.as_u64(), self.cause)
    }
}

/// What a policy decided.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Resolution {
    /// The cause is gone: retry the access.
    Retry,
    /// Not this policy's business: ask the next one in the chain.
    Pass,
    /// Resolved, but the process must be told before it retries (a guard page fired).
    Notify(Exception),
    /// The access cannot succeed: raise this exception to the process.
    Raise(Exception),
    /// The kernel could not resolve the fault and names the exception the process sees:
    /// a [`FaultChain`](crate::space::FaultChain) offers it to the process's handler
    /// (second chance) and raises it if unhandled (an in-page error after a failed read
    /// from the backing store). Outside a chain it is raised at once.
    Fail(Exception),
}

/// An exception delivered to a process.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Exception {
    /// A guard page was touched (Windows `STATUS_GUARD_PAGE_VIOLATION`); the guard is gone.
    GuardPage {
        /// The address that touched the guard page.
        addr: VirtAddr,
        /// The access that touched it (Windows' exception record carries it, as for an
        /// access violation: 0 read, 1 write, 8 execute).
        access: Access,
    },
    /// An access violation (Windows `STATUS_ACCESS_VIOLATION`).
    AccessViolation {
        /// The faulting address.
        addr: VirtAddr,
        /// The access (read, write, or execute for a DEP violation).
        access: Access,
    },
    /// The page could not be read back from the backing store (Windows
    /// `STATUS_IN_PAGE_ERROR`); it stays where it was, and a later access may succeed.
    InPageError {
        /// The faulting address.
        addr: VirtAddr,
        /// The access.
        access: Access,
    },
}

impl Exception {
    /// The address the exception names.
    #[must_use]
    pub const fn addr(&self) -> VirtAddr {
        match *self {
            Self::GuardPage { addr, .. }
            | Self::AccessViolation { addr, .. }
            | Self::InPageError { addr, .. } => addr,
        }
    }

    /// The access that raised the exception.
    #[must_use]
    pub const fn access(&self) -> Access {
        match *self {
            Self::GuardPage { access, .. }
            | Self::AccessViolation { access, .. }
            | Self::InPageError { access, .. } => access,
        }
    }

    /// Windows' `ExceptionInformation` of the record: the access (0 read, 1 write, 8
    /// execute) and the address.
    #[must_use]
    pub const fn information(&self) -> [u64; 2] {
        [self.access().windows_code() as u64, self.addr().as_u64()]
    }

    /// The exception's Windows status code (`NTSTATUS`).
    #[must_use]
    pub const fn status(&self) -> u32 {
        match self {
            Self::GuardPage { .. } => 0x8000_0001,
            Self::AccessViolation { .. } => 0xC000_0005,
            Self::InPageError { .. } => 0xC000_0006,
        }
    }
}

impl fmt::Display for Exception {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::GuardPage { addr, access } => {
                write!(f, "guard page violation: {access} of {:#x}", addr.as_u64())
            }
            Self::AccessViolation { addr, access } => {
                write!(f, "access violation: {access} of {:#x}", addr.as_u64())
            }
            Self::InPageError { addr, access } => {
                write!(f, "in-page error: {access} of {:#x} (the store failed)", addr.as_u64())
            }
        }
    }
}

/// Decides what to do about a fault.
///
/// `Ctx` is whatever the policy needs to act on: the address space, its table memory,
/// a frame allocator, a backing store. Kernels add their own policies (stack growth, lazy
/// file mapping) and chain them with the built-in ones.
pub trait FaultPolicy<Ctx: ?Sized> {
    /// Resolves `fault`, possibly changing `ctx`.
    fn resolve(&mut self, ctx: &mut Ctx, fault: &Fault) -> Resolution;
}

impl<Ctx: ?Sized, F: FnMut(&mut Ctx, &Fault) -> Resolution> FaultPolicy<Ctx> for F {
    fn resolve(&mut self, ctx: &mut Ctx, fault: &Fault) -> Resolution {
        self(ctx, fault)
    }
}

/// Two policies in turn: the first that does not pass decides.
impl<Ctx: ?Sized, A: FaultPolicy<Ctx>, B: FaultPolicy<Ctx>> FaultPolicy<Ctx> for (A, B) {
    fn resolve(&mut self, ctx: &mut Ctx, fault: &Fault) -> Resolution {
        match self.0.resolve(ctx, fault) {
            Resolution::Pass => self.1.resolve(ctx, fault),
            decided => decided,
        }
    }
}

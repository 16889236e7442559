//! The record a process ends with when a fault is not resolved.

use core::fmt;

use crate::addr::VirtAddr;
use crate::fault::Access;

use super::protection::Protection;

/// Why an access is a violation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Violation {
    /// The address is in no reservation.
    Free,
    /// The page is reserved but not committed.
    Reserved,
    /// The page's protection allows no access.
    NoAccess(Protection),
    /// A write to a page that does not allow writing.
    ReadOnly(Protection),
    /// An instruction fetch from a page that does not allow execution (DEP).
    NotExecutable(Protection),
    /// A user-mode access to the kernel half.
    KernelSpace,
    /// The access was allowed but could not be served (out of memory for a frame or a
    /// table).
    Unresolved,
}

/// An access violation (Windows `STATUS_ACCESS_VIOLATION`, 0xC0000005): the address, the
/// access and why.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AccessViolation {
    /// The faulting address.
    pub addr: VirtAddr,
    /// The access (read, write, or execute for a DEP violation).
    pub access: Access,
    /// Why.
    pub reason: Violation,
}

impl AccessViolation {
    /// The Windows exception code.
    pub const CODE: u32 = 0xC000_0005;

    /// The access as Windows' exception record gives it: 0 read, 1 write, 8 execute.
    #[must_use]
    pub fn windows_access(&self) -> u32 {
        self.access.windows_code()
    }
}

impl fmt::Display for AccessViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.access {
            Access::Read => "reading",
            Access::Write => "writing",
            Access::Execute => "executing",
        };
        write!(f, "access violation ({:#010x}) {what} {:#x}: ", Self::CODE, self.addr.as_u64())?;
        match self.reason {
            Violation::Free => f.write_str("no memory is reserved there"),
            Violation::Reserved => f.write_str("the page is reserved but not committed"),
            Violation::NoAccess(p) => write!(f, "the page allows no access ({p})"),
            Violation::ReadOnly(p) => write!(f, "the page is not writable ({p})"),
            Violation::NotExecutable(p) => {
                write!(f, "data execution prevention: the page is not executable ({p})")
            }
            Violation::KernelSpace => f.write_str("the address belongs to the kernel"),
            Violation::Unresolved => f.write_str("the kernel could not serve the page"),
        }
    }
}

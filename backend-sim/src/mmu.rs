//! The hardware page walk: what the CPU does on a TLB miss.
//!
//! Written apart from the engine's software translation on purpose: the two check each
//! other. It shares only the entry format (the meaning of the bits) with the engine. The
//! walk applies the permissions of every entry on the way, as x86 does (the most
//! restrictive wins); [`refuse`] checks an access against them with the control bits of
//! [`Control`]; [`mark`] sets Accessed on every entry used and Dirty on the leaf of a write.

use core::fmt;

use paging::{
    Access, Entry, FaultCause, PageFlags, PageTableFormat, PhysAddr, Privilege, TableMemory,
    VirtAddr,
};

/// The control bits that change how the MMU checks permissions (x86 names in brackets).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct Control {
    /// Supervisor writes to read-only pages fault (CR0.WP).
    pub write_protect: bool,
    /// The no-execute bit is honoured (EFER.NXE); without it every page executes. (Real
    /// IA-32e and PAE hardware would instead treat a set NX bit as reserved; the simulator
    /// ignores it.)
    pub no_execute: bool,
    /// Supervisor instruction fetches from user pages fault (CR4.SMEP).
    pub smep: bool,
    /// Supervisor data accesses to user pages fault (CR4.SMAP, with EFLAGS.AC clear).
    pub smap: bool,
}

impl Default for Control {
    /// Everything a modern kernel turns on: WP, NXE, SMEP and SMAP.
    fn default() -> Self {
        Self { write_protect: true, no_execute: true, smep: true, smap: true }
    }
}

/// A successful walk.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct Walked {
    /// The first virtual address of the page.
    pub page: VirtAddr,
    /// The page size.
    pub size: u64,
    /// The level of the leaf.
    pub level: u8,
    /// The first physical address of the page.
    pub frame: PhysAddr,
    /// What the walk allows: the leaf's flags less the permissions any entry above
    /// withholds.
    pub flags: PageFlags,
    /// The physical address of the entry read at each level (by level number).
    pub path: [PhysAddr; 6],
    /// The leaf entry.
    pub leaf_raw: u64,
    /// The number of entries read.
    pub reads: u32,
}

impl Walked {
    /// The physical address of the leaf entry.
    #[must_use]
    pub fn leaf_at(&self) -> PhysAddr {
        self.path[usize::from(self.level)]
    }
}

/// Why a walk failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum WalkError {
    /// A page fault: not present, or reserved bits; and the entries read before it.
    Fault {
        /// Why.
        cause: FaultCause,
        /// Entries read.
        reads: u32,
    },
    /// An entry (or the root) points to a table outside RAM: real hardware would read
    /// garbage; the simulator stops with this error instead.
    TableOutsideRam {
        /// The level of the entry (the number of levels for the root itself).
        level: u8,
        /// The raw entry (the root address for the root).
        raw: u64,
    },
}

impl fmt::Display for WalkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Fault { cause, .. } => write!(f, "page fault: {cause}"),
            Self::TableOutsideRam { level, raw } => {
                write!(f, "level-{level} entry {raw:#x} points outside RAM")
            }
        }
    }
}

impl core::error::Error for WalkError {}

/// The permission bits a walk accumulates.
const WALK_PERMISSIONS: PageFlags =
    PageFlags::WRITABLE.union(PageFlags::USER).union(PageFlags::EXECUTABLE);

/// Walks the tables of `root` to the leaf that maps `addr`, reading only. The depth is
/// bounded by the format's levels, so no table contents make it loop.
///
/// `addr` must be canonical (the machine checks: on x86 a non-canonical access is a general
/// protection fault, not a page fault).
///
/// # Errors
///
/// Returns [`WalkError::Fault`] for a non-present entry or one with reserved bits, and
/// [`WalkError::TableOutsideRam`].
pub fn walk<F: PageTableFormat, M: TableMemory>(
    memory: &M,
    root: PhysAddr,
    addr: VirtAddr,
) -> Result<Walked, WalkError> {
    let entry_size = F::ENTRY_SIZE;
    let mut table = root;
    let mut granted = WALK_PERMISSIONS;
    let mut path = [PhysAddr::ZERO; 6];
    let mut reads = 0;
    // The entry that led here (for the root: the root address itself, as CR3 holds it).
    let mut pointer = (F::LEVELS, root.as_u64());
    for level in (1..=F::LEVELS).rev() {
        if !memory.contains(table) {
            return Err(WalkError::TableOutsideRam { level: pointer.0, raw: pointer.1 });
        }
        let at = table + F::index(addr, level) as u64 * entry_size.bytes();
        let raw = memory.read_entry(at, entry_size);
        reads += 1;
        path[usize::from(level)] = at;
        let fault = |cause| Err(WalkError::Fault { cause, reads });
        match F::decode(raw, level) {
            Entry::Empty | Entry::Payload(_) => return fault(FaultCause::NotPresent),
            Entry::Invalid(_) => return fault(FaultCause::ReservedBits),
            Entry::Table { frame, flags } => {
                granted &= flags | !WALK_PERMISSIONS;
                table = frame;
                pointer = (level, raw);
            }
            Entry::Leaf { frame, flags } => {
                let size = F::leaf_size(level);
                return Ok(Walked {
                    page: addr.align_down(size),
                    size,
                    level,
                    frame,
                    flags: flags & (granted | !WALK_PERMISSIONS),
                    path,
                    leaf_raw: raw,
                    reads,
                });
            }
        }
    }
    Err(WalkError::Fault { cause: FaultCause::NotPresent, reads })
}

/// Sets Accessed on every entry of a successful walk and Dirty on its leaf when `dirty`,
/// as the CPU does for an access it lets through; updates `walked` to match.
pub fn mark<F: PageTableFormat, M: TableMemory>(memory: &mut M, walked: &mut Walked, dirty: bool) {
    let size = F::ENTRY_SIZE;
    for level in (walked.level..=F::LEVELS).rev() {
        let at = walked.path[usize::from(level)];
        let old = memory.read_entry(at, size);
        let new = F::mark_walked(old, level, dirty && level == walked.level);
        if new != old {
            memory.write_entry(at, size, new);
        }
        if level == walked.level {
            walked.leaf_raw = new;
        }
    }
    walked.flags |= PageFlags::ACCESSED;
    if dirty {
        walked.flags |= PageFlags::DIRTY;
    }
}

/// Returns why the permissions `flags` refuse the access, if they do.
#[must_use]
pub fn refuse(
    flags: PageFlags,
    access: Access,
    privilege: Privilege,
    control: Control,
) -> Option<FaultCause> {
    let user_page = flags.contains(PageFlags::USER);
    let writable = flags.contains(PageFlags::WRITABLE);
    let executable = !control.no_execute || flags.contains(PageFlags::EXECUTABLE);
    let refused = match privilege {
        Privilege::User => {
            !user_page
                || match access {
                    Access::Read => false,
                    Access::Write => !writable,
                    Access::Execute => !executable,
                }
        }
        Privilege::Supervisor => match access {
            Access::Read => control.smap && user_page,
            Access::Write => (control.smap && user_page) || (control.write_protect && !writable),
            Access::Execute => (control.smep && user_page) || !executable,
        },
    };
    refused.then_some(FaultCause::Protection)
}

/// The x86 page-fault error code for a fault (bit 0 P, 1 W/R, 2 U/S, 3 RSVD, 4 I/D, 5 PK,
/// 6 SS). `has_nx` says whether the format has an NX bit (legacy 32-bit paging has none).
#[must_use]
pub fn error_code(
    cause: FaultCause,
    access: Access,
    privilege: Privilege,
    control: Control,
    has_nx: bool,
) -> u32 {
    let present = !matches!(cause, FaultCause::NotPresent);
    // SDM 4.7: I/D is set for a fetch if SMEP is on, or if NXE is on with a format that has
    // an NX bit (PAE and IA-32e paging).
    let instruction = access == Access::Execute && (control.smep || (control.no_execute && has_nx));
    u32::from(present)
        | u32::from(access == Access::Write) << 1
        | u32::from(privilege == Privilege::User) << 2
        | u32::from(cause == FaultCause::ReservedBits) << 3
        | u32::from(instruction) << 4
        | u32::from(cause == FaultCause::ProtectionKey) << 5
        | u32::from(cause == FaultCause::ShadowStack) << 6
}

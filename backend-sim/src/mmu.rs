//! The hardware page walk: what the CPU does on a TLB miss.
//!
//! Written apart from the engine's software translation on purpose: the two check each
//! other. It shares only the entry format (the meaning of the bits) with the engine. The
//! walk applies the permissions of every entry on the way, as x86 does (the most
//! restrictive wins); [`refuse`] checks an access against them with the control bits of
//! [`Control`]; [`mark`] sets Accessed on every entry used and Dirty on the leaf of a write.
//!
//! A walk starts from a [`LoadedRoot`]: what a CR3 load leaves in the CPU. With PAE that is
//! more than an address: the CPU reads the four PDPTEs into registers at the load and walks
//! through those, not through memory (SDM 4.4.1).

use core::fmt;

use paging::{
    Access, Entry, EntrySize, FaultCause, PageFlags, PageTableFormat, PhysAddr, Privilege,
    TableMemory, VirtAddr,
};

/// The control bits that change how the MMU checks permissions (x86 names in brackets).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct Control {
    /// Supervisor writes to read-only pages fault (CR0.WP).
    pub write_protect: bool,
    /// The no-execute bit is honoured (EFER.NXE). Without it, in a format that has an NX
    /// bit (bit 63 in IA-32e and PAE entries), that bit is reserved: a walk through a
    /// present entry with it set faults with RSVD (SDM 4.4.2, 4.5.4); the pages a walk
    /// reaches all execute.
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
    /// The physical address of the entry read at each level (by level number); for a root
    /// entry taken from a register (PAE), where the register was loaded from.
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

/// How many root entries the CPU holds in registers, for a format that has them: PAE's four
/// PDPTEs.
pub const ROOT_REGISTERS: usize = 4;

/// Whether the CPU loads the root table of `F` into registers when the root is loaded (a
/// MOV to CR3) and walks through those registers instead of memory: PAE (SDM 4.4.1). The
/// simulator knows a format only by its shape, so it recognises PAE's: a root table of four
/// 8-byte entries, which no other x86 format has.
#[must_use]
pub fn root_in_registers<F: PageTableFormat>() -> bool {
    F::entries(F::LEVELS) == ROOT_REGISTERS && F::ENTRY_SIZE == EntrySize::Eight
}

/// A root that cannot be loaded: one of its register entries is present with reserved
/// bits set (PAE: bits 2:1, 8:5 or 63:MAXPHYADDR of a PDPTE), so the MOV to CR3 raises a
/// general-protection fault and changes nothing (SDM 4.4.1).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct RootRefused {
    /// The root table's address.
    pub root: PhysAddr,
    /// Which root entry (0 to 3).
    pub index: usize,
    /// That entry.
    pub raw: u64,
}

impl fmt::Display for RootRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "general protection: root entry {} ({:#x}) of the table at {:#x} has reserved bits set",
            self.index,
            self.raw,
            self.root.as_u64()
        )
    }
}

impl core::error::Error for RootRefused {}

/// The root of the walks, as a root load (CR3) leaves it in the CPU.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct LoadedRoot {
    address: PhysAddr,
    /// The root entries as they were at the load, for a format that keeps them in
    /// registers; `None` when walks read the root table from memory.
    registers: Option<[u64; ROOT_REGISTERS]>,
}

impl LoadedRoot {
    /// Loads the root table at `address` as a MOV to CR3 does. For a format whose root
    /// entries live in registers ([`root_in_registers`]) it reads them now, and walks from
    /// the result use these values whatever memory holds later (until the next load); for
    /// the other formats walks read the root table from memory.
    ///
    /// A root table outside `memory` loads no registers (hardware would read garbage):
    /// walks from it stop with [`WalkError::TableOutsideRam`], as in the other formats.
    ///
    /// # Errors
    ///
    /// Returns [`RootRefused`] for a present register entry with reserved bits set, the
    /// #GP of the MOV to CR3.
    pub fn load<F: PageTableFormat, M: TableMemory>(
        memory: &M,
        address: PhysAddr,
    ) -> Result<Self, RootRefused> {
        if !root_in_registers::<F>() || !memory.contains(address) {
            return Ok(Self::in_memory(address));
        }
        let mut registers = [0; ROOT_REGISTERS];
        for (index, register) in registers.iter_mut().enumerate() {
            // Registers that would lie past 2^64 are outside every memory: none are loaded.
            let Some(at) = address.checked_add(index as u64 * 8) else {
                return Ok(Self::in_memory(address));
            };
            let raw = memory.read_entry(at, EntrySize::Eight);
            if matches!(F::decode(raw, F::LEVELS), Entry::Invalid(_)) {
                return Err(RootRefused { root: address, index, raw });
            }
            *register = raw;
        }
        Ok(Self { address, registers: Some(registers) })
    }

    /// A root whose walks read the root table from memory each time: what a load gives
    /// in every format but PAE, and in PAE a walk as if the PDPTEs were reloaded just
    /// before it (what a check of the tables as they are in memory wants).
    #[must_use]
    pub const fn in_memory(address: PhysAddr) -> Self {
        Self { address, registers: None }
    }

    /// The root table's address (what CR3 holds).
    #[must_use]
    pub const fn address(&self) -> PhysAddr {
        self.address
    }

    /// The root entries loaded into registers (PAE's PDPTE0 to PDPTE3), if the walks use
    /// registers.
    #[must_use]
    pub const fn registers(&self) -> Option<[u64; ROOT_REGISTERS]> {
        self.registers
    }

    /// The entry at `index` of the table at `level` from the registers, if walks take it
    /// from there (the root level of a root with registers).
    fn register(&self, level: u8, index: usize, levels: u8) -> Option<u64> {
        let registers = self.registers.filter(|_| level == levels)?;
        Some(registers.get(index).copied().unwrap_or(0))
    }
}

/// The permission bits a walk accumulates.
const WALK_PERMISSIONS: PageFlags =
    PageFlags::WRITABLE.union(PageFlags::USER).union(PageFlags::EXECUTABLE);

/// Walks the tables from `root` to the leaf that maps `addr`, reading only. The depth is
/// bounded by the format's levels, so no table contents make it loop. The root entry
/// comes from the root's registers when it has them (PAE), otherwise from memory.
///
/// `nxe` is EFER.NXE ([`Control::no_execute`]): when it is clear, in a format with an NX
/// bit, a present entry with that bit set has a reserved bit set, and the walk faults with
/// [`FaultCause::ReservedBits`] there (SDM 4.4.2, 4.5.4).
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
    root: &LoadedRoot,
    addr: VirtAddr,
    nxe: bool,
) -> Result<Walked, WalkError> {
    let entry_size = F::ENTRY_SIZE;
    // Only a format whose leaves can withhold execution has an NX bit to reserve.
    let nx_reserved = !nxe && !F::IMPLIED.contains(PageFlags::EXECUTABLE);
    let mut table = root.address;
    let mut granted = WALK_PERMISSIONS;
    let mut path = [PhysAddr::ZERO; 6];
    let mut reads = 0;
    // The entry that led here (for the root: the root address itself, as CR3 holds it).
    let mut pointer = (F::LEVELS, root.address.as_u64());
    for level in (1..=F::LEVELS).rev() {
        let index = F::index(addr, level);
        // Used only once the table is known to be in memory (registers are loaded only
        // from memory), which lies below 2^64: wrapping never happens where it is read.
        let at = table.wrapping_add(index as u64 * entry_size.bytes());
        let raw = match root.register(level, index, F::LEVELS) {
            Some(raw) => raw,
            None if memory.contains(table) => memory.read_entry(at, entry_size),
            None => return Err(WalkError::TableOutsideRam { level: pointer.0, raw: pointer.1 }),
        };
        reads += 1;
        path[usize::from(level)] = at;
        let fault = |cause| Err(WalkError::Fault { cause, reads });
        match F::decode(raw, level) {
            Entry::Empty | Entry::Payload(_) => return fault(FaultCause::NotPresent),
            Entry::Invalid(_) => return fault(FaultCause::ReservedBits),
            Entry::Table { flags, .. } | Entry::Leaf { flags, .. }
                if nx_reserved && !flags.contains(PageFlags::EXECUTABLE) =>
            {
                return fault(FaultCause::ReservedBits);
            }
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

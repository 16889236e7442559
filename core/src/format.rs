//! The page-table entry encoding: the one trait a new architecture implements.
//!
//! Levels are numbered from the bottom: level 1 tables hold the entries of the smallest
//! pages, level [`PageTableFormat::LEVELS`] is the root. A leaf at level `n` maps a page of
//! [`leaf_size(n)`](PageTableFormat::leaf_size) bytes.

use crate::addr::{PhysAddr, VirtAddr};
use crate::flags::PageFlags;

/// How many bytes one table entry takes in memory.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EntrySize {
    /// 32-bit entries (legacy 32-bit x86).
    Four,
    /// 64-bit entries.
    Eight,
}

impl EntrySize {
    /// The size in bytes.
    #[must_use]
    pub const fn bytes(self) -> u64 {
        match self {
            Self::Four => 4,
            Self::Eight => 8,
        }
    }
}

/// What a raw entry means, as decoded by a format.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Entry {
    /// Not present, and all zero.
    Empty,
    /// Present, pointing to the next-level table. `flags` are the permissions this entry
    /// grants to everything below it (the walk takes the most restrictive).
    Table {
        /// The physical address of the next-level table.
        frame: PhysAddr,
        /// Permissions granted to the whole subtree.
        flags: PageFlags,
    },
    /// Present, mapping a page of this level's size.
    Leaf {
        /// The first physical address of the page.
        frame: PhysAddr,
        /// The page's flags, [`PageTableFormat::IMPLIED`] included.
        flags: PageFlags,
    },
    /// Not present, but carrying a nonzero software payload (a swap slot, a "committed but
    /// not yet materialised" mark). The MMU ignores it; the kernel reads it on a fault.
    Payload(u64),
    /// Present, but not something the hardware would accept.
    Invalid(InvalidEntry),
}

/// Why a present entry is malformed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum InvalidEntry {
    /// Bits the architecture reserves are set (on x86 a walk through it faults with RSVD).
    ReservedBits,
    /// The entry says "leaf" at a level that cannot hold one.
    LeafNotAllowed,
}

impl core::fmt::Display for InvalidEntry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::ReservedBits => "reserved bits are set",
            Self::LeafNotAllowed => "a leaf at a level that cannot hold one",
        })
    }
}

/// The permissions an intermediate entry can grant or withhold from what lies below it.
pub const WALK_PERMISSIONS: PageFlags =
    PageFlags::WRITABLE.union(PageFlags::USER).union(PageFlags::EXECUTABLE);

/// Computes the shift of each level (`[0]` is unused; levels past the last repeat the
/// width of the whole space).
const fn level_shifts(page_shift: u32, index_bits: &[u32]) -> [u32; 8] {
    let mut shifts = [0; 8];
    let mut level = 1;
    let mut shift = page_shift;
    while level < 8 {
        shifts[level] = shift;
        if level <= index_bits.len() {
            shift += index_bits[level - 1];
        }
        level += 1;
    }
    shifts
}

/// Computes the index mask of each level (`[0]` and levels past the last are zero).
const fn level_masks(index_bits: &[u32]) -> [u64; 8] {
    let mut masks = [0; 8];
    let mut level = 1;
    while level <= index_bits.len() && level < 8 {
        masks[level] = (1 << index_bits[level - 1]) - 1;
        level += 1;
    }
    masks
}

/// A page-table entry encoding: the geometry of the tables and the meaning of each bit.
///
/// Implementations are zero-sized marker types (see `paging-x86` for the four x86
/// formats). Every method must be total: any raw value and any level from 1 to
/// [`LEVELS`](Self::LEVELS) gives an answer, never a panic.
pub trait PageTableFormat: 'static {
    /// A short name for messages, such as `"x86-64 4-level"`.
    const NAME: &'static str;
    /// The number of levels, from 2 to 5.
    const LEVELS: u8;
    /// The size of one entry.
    const ENTRY_SIZE: EntrySize;
    /// The base page size as a shift (12 for 4 KiB).
    const PAGE_SHIFT: u32 = 12;
    /// Index bits per level; `[0]` is level 1. Its length is [`LEVELS`](Self::LEVELS).
    const INDEX_BITS: &'static [u32];
    /// A bit mask of the levels that may hold a leaf: bit `n - 1` for level `n`.
    const LEAF_LEVELS: u8;
    /// Whether the virtual address space is sign-extended (x86-64's canonical rule: the
    /// bits above [`VIRT_BITS`](Self::VIRT_BITS) copy the top bit) rather than zero-extended.
    const SIGN_EXTENDED: bool;
    /// The number of physical-address bits an entry can hold.
    const PHYS_BITS: u32;
    /// The number of payload bits a non-present entry can carry.
    const PAYLOAD_BITS: u32;
    /// The flags this format can express.
    const SUPPORTED: PageFlags;
    /// The flags every present leaf has, whether asked for or not.
    const IMPLIED: PageFlags;

    /// Whether the CPU reads the root table's entries into registers when the root is
    /// loaded (x86 PAE: the four PDPTEs at a MOV to CR3, SDM 4.4.1) and walks through those
    /// copies until the next load. A table added under the root later would stay unseen,
    /// so in such a format every root entry points to a table for the root's whole life:
    /// [`PageTable::new`](crate::PageTable::new) creates them all with the root, unmapping
    /// never gives them back, and [`PageTable::destroy`](crate::PageTable::destroy) does.
    const ROOT_ENTRIES_LOADED_WITH_ROOT: bool = false;

    /// Whether leaves are linear in their frame: `encode_leaf(frame + k * size, flags,
    /// level)` equals `encode_leaf(frame, flags, level) + k * size` while the frame stays
    /// within [`PHYS_BITS`](Self::PHYS_BITS). True for formats whose address is one field of
    /// plain bits (x86); it lets the engine fill a new table without encoding each entry.
    const LINEAR_LEAVES: bool = false;

    /// The shift of each level (`[n]` for level `n`; `[LEVELS + 1]` is the width of the
    /// whole address space).
    const SHIFTS: [u32; 8] = level_shifts(Self::PAGE_SHIFT, Self::INDEX_BITS);
    /// The index mask of each level (`[n]` for level `n`; zero outside the levels).
    const MASKS: [u64; 8] = level_masks(Self::INDEX_BITS);
    /// The number of translated virtual-address bits.
    const VIRT_BITS: u32 = Self::SHIFTS[Self::LEVELS as usize + 1];

    /// Decodes a raw entry found at `level`.
    fn decode(raw: u64, level: u8) -> Entry;

    /// Encodes a leaf at `level` mapping `frame` with `flags`.
    ///
    /// The engine calls it only with a level that may hold a leaf, a frame aligned to that
    /// level's size and within [`PHYS_BITS`](Self::PHYS_BITS), and flags within
    /// [`SUPPORTED`](Self::SUPPORTED); other input must still not panic.
    fn encode_leaf(frame: PhysAddr, flags: PageFlags, level: u8) -> u64;

    /// Encodes an entry at `level` pointing to a next-level table at `table`.
    ///
    /// Intermediate entries grant everything the format can grant (present, writable,
    /// user, executable): the leaf alone decides a page's permissions.
    fn encode_table(table: PhysAddr, level: u8) -> u64;

    /// Returns `raw`, a present entry at `level` that the MMU walked through, with the bits
    /// the MMU sets on the way: accessed on every entry that has such a bit, and dirty on a
    /// leaf when `dirty` (the access was a write). A non-present entry comes back as it was.
    ///
    /// Simulated MMUs call it; the engine never does.
    fn mark_walked(raw: u64, level: u8, dirty: bool) -> u64;

    /// The table that an entry at `level` points to, if the entry is a present,
    /// well-formed table entry that grants every permission: the walk's fast path. `None`
    /// means "look closer with [`decode`](Self::decode)". The default decodes.
    #[inline]
    fn next_table(raw: u64, level: u8) -> Option<PhysAddr> {
        match Self::decode(raw, level) {
            Entry::Table { frame, flags } if flags.contains(WALK_PERMISSIONS) => Some(frame),
            _ => None,
        }
    }

    /// The frame of a present, well-formed leaf at `level`: the fast path of a walk that
    /// wants the address only. `None` means "look closer with [`decode`](Self::decode)".
    /// The default decodes.
    #[inline]
    fn leaf_frame(raw: u64, level: u8) -> Option<PhysAddr> {
        match Self::decode(raw, level) {
            Entry::Leaf { frame, .. } => Some(frame),
            _ => None,
        }
    }

    /// Encodes a non-present entry carrying `payload`, or `None` if the payload is zero or
    /// wider than [`PAYLOAD_BITS`](Self::PAYLOAD_BITS).
    fn encode_payload(payload: u64) -> Option<u64> {
        if payload == 0 || payload >> Self::PAYLOAD_BITS != 0 { None } else { Some(payload << 1) }
    }

    /// Returns the number of entries in a table at `level` (1 outside 1 to
    /// [`LEVELS`](Self::LEVELS)).
    #[must_use]
    #[inline(always)]
    fn entries(level: u8) -> usize {
        Self::MASKS[usize::from(level & 7)] as usize + 1
    }

    /// Returns the bytes mapped by one entry at `level` (1 to [`LEVELS`](Self::LEVELS)).
    #[must_use]
    #[inline(always)]
    fn leaf_size(level: u8) -> u64 {
        1 << Self::SHIFTS[usize::from(level & 7)]
    }

    /// Returns the index of `addr` in a table at `level` (1 to [`LEVELS`](Self::LEVELS);
    /// zero outside them).
    #[must_use]
    #[inline(always)]
    fn index(addr: VirtAddr, level: u8) -> usize {
        let level = usize::from(level & 7);
        ((addr.as_u64() >> Self::SHIFTS[level]) & Self::MASKS[level]) as usize
    }

    /// Returns whether `level` may hold a leaf.
    #[must_use]
    #[inline]
    fn leaf_allowed(level: u8) -> bool {
        (1..=Self::LEVELS).contains(&level) && Self::LEAF_LEVELS & (1 << (level - 1)) != 0
    }

    /// Returns the level whose leaves are `size` bytes, if this format has one.
    #[must_use]
    fn level_for_size(size: u64) -> Option<u8> {
        (1..=Self::LEVELS)
            .find(|&level| Self::leaf_allowed(level) && Self::leaf_size(level) == size)
    }

    /// Returns whether `addr` is canonical for this format.
    #[must_use]
    #[inline]
    fn is_canonical(addr: VirtAddr) -> bool {
        let bits = Self::VIRT_BITS;
        if bits >= 64 {
            return true;
        }
        let raw = addr.as_u64();
        if Self::SIGN_EXTENDED {
            let unused = 64 - bits;
            (((raw << unused) as i64) >> unused) as u64 == raw
        } else {
            raw >> bits == 0
        }
    }

    /// Returns the lowest and the highest canonical address of the half that holds
    /// `addr`, or `None` if `addr` is not canonical.
    #[must_use]
    fn canonical_half(addr: VirtAddr) -> Option<(VirtAddr, VirtAddr)> {
        if !Self::is_canonical(addr) {
            return None;
        }
        let bits = Self::VIRT_BITS.min(64);
        let raw = addr.as_u64();
        Some(if !Self::SIGN_EXTENDED {
            (VirtAddr::ZERO, VirtAddr::new(u64::MAX >> (64 - bits)))
        } else if raw >> (bits - 1) == 0 {
            (VirtAddr::ZERO, VirtAddr::new((1u64 << (bits - 1)) - 1))
        } else {
            (VirtAddr::new(u64::MAX << (bits - 1)), VirtAddr::new(u64::MAX))
        })
    }

    /// Returns whether `addr` lies within the physical-address width.
    #[must_use]
    #[inline]
    fn phys_in_range(addr: PhysAddr) -> bool {
        Self::PHYS_BITS >= 64 || addr.as_u64() >> Self::PHYS_BITS == 0
    }
}

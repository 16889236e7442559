//! Generic page flags, translated to and from each format's bits by the format.

bitflags::bitflags! {
    /// What a leaf entry allows and records, in words every architecture shares.
    ///
    /// The bit values are this crate's own (they happen to follow x86's low entry bits, so
    /// that the x86 formats convert with a mask); formats translate them to their bits.
    ///
    /// A format turns these into its own bits. It names the flags it can hold in
    /// [`PageTableFormat::SUPPORTED`](crate::PageTableFormat::SUPPORTED) and the ones that
    /// every present page has whether asked for or not in
    /// [`PageTableFormat::IMPLIED`](crate::PageTableFormat::IMPLIED): on x86 every present
    /// page is readable, and on legacy 32-bit x86 (no NX bit) every page is executable too.
    ///
    /// These flags describe a *present* page: `PageFlags::empty()` is a present, read-only,
    /// no-execute page (execution is a permission to ask for). The `x86_64` crate's
    /// `PageTableFlags` are raw entry bits instead: there, empty flags are a *non-present*
    /// entry and a page is executable unless `NO_EXECUTE` is set. The conversions behind
    /// the `x86_64` feature (`paging::interop::x86_64`) translate the meaning: ours to
    /// theirs adds `PRESENT` and `NO_EXECUTE` unless [`EXECUTABLE`](Self::EXECUTABLE), and
    /// refuses [`PAT`](Self::PAT), which they cannot express; theirs to ours refuses flags
    /// without `PRESENT`, adds [`READABLE`](Self::READABLE) and ignores `HUGE_PAGE`.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
    pub struct PageFlags: u32 {
        /// Loads are allowed.
        const READABLE = 1 << 0;
        /// Stores are allowed.
        const WRITABLE = 1 << 1;
        /// User mode may access the page (on x86: U/S).
        const USER = 1 << 2;
        /// Write-through caching (on x86: PWT).
        const WRITE_THROUGH = 1 << 3;
        /// Caching disabled (on x86: PCD).
        const NO_CACHE = 1 << 4;
        /// Set by the MMU when the page is accessed.
        const ACCESSED = 1 << 5;
        /// Set by the MMU when the page is written.
        const DIRTY = 1 << 6;
        /// The third memory-type selector bit (x86 PAT; its position moves in huge leaves).
        const PAT = 1 << 7;
        /// The translation survives address-space switches (on x86: G).
        const GLOBAL = 1 << 8;
        /// Bits the hardware ignores, free for the kernel's software.
        const SOFTWARE_0 = 1 << 9;
        /// See [`SOFTWARE_0`](Self::SOFTWARE_0).
        const SOFTWARE_1 = 1 << 10;
        /// See [`SOFTWARE_0`](Self::SOFTWARE_0).
        const SOFTWARE_2 = 1 << 11;
        /// Instruction fetches are allowed (on x86: the NX bit is clear).
        const EXECUTABLE = 1 << 12;
        /// See [`SOFTWARE_0`](Self::SOFTWARE_0).
        const SOFTWARE_3 = 1 << 13;
        /// The protection-key field (four bits, x86 PKU); see [`PageFlags::protection_key`].
        const PROTECTION_KEY = 0xF << 16;
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for PageFlags {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "PageFlags({=u32:#x})", self.bits());
    }
}

impl PageFlags {
    /// The shift of the protection-key field.
    const PROTECTION_KEY_SHIFT: u32 = 16;

    /// Flags the MMU sets by itself: they are state, not permission.
    pub const MMU_STATE: Self = Self::ACCESSED.union(Self::DIRTY);

    /// Returns these flags with the protection-key field set to `key` (0 to 15; higher
    /// bits of `key` are dropped).
    #[must_use]
    pub const fn with_protection_key(self, key: u8) -> Self {
        let field = ((key as u32) & 0xF) << Self::PROTECTION_KEY_SHIFT;
        Self::from_bits_retain((self.bits() & !Self::PROTECTION_KEY.bits()) | field)
    }

    /// Returns the protection key (0 to 15).
    #[must_use]
    pub const fn protection_key(self) -> u8 {
        ((self.bits() & Self::PROTECTION_KEY.bits()) >> Self::PROTECTION_KEY_SHIFT) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protection_key_field() {
        let f = PageFlags::WRITABLE.with_protection_key(0x1B);
        assert_eq!(f.protection_key(), 0xB);
        assert!(f.contains(PageFlags::WRITABLE));
        assert_eq!(f.with_protection_key(0).protection_key(), 0);
        assert_eq!(f.with_protection_key(0), PageFlags::WRITABLE);
    }
}

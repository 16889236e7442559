//! Where user space lies, and randomised placement within it.

use crate::addr::VirtAddr;

/// The part of a virtual address space that a space's allocations may take, and where
/// the kernel half begins.
///
/// A process's layout lies below the kernel half: the lowest 64 KiB (the null region) and
/// the top 64 KiB of the user half are never handed out, as on Windows, so a null pointer
/// and an overrun past the top both fault. A kernel's layout ([`kernel_part`]) lies in the
/// kernel half: its pages are supervisor-only and global, and every process that shares
/// the kernel half sees them.
///
/// [`kernel_part`]: Self::kernel_part
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Layout {
    /// A name for listings.
    pub name: &'static str,
    /// The lowest address that can be handed out.
    pub lowest: VirtAddr,
    /// The highest address that can be handed out (inclusive).
    pub highest: VirtAddr,
    /// The first address of the kernel half, shared by every space and unreachable from
    /// user mode.
    pub kernel_start: VirtAddr,
}

impl Layout {
    /// 32-bit x86: 2 GiB of user space, 2 GiB of kernel (the Windows default).
    pub const X86_32_2G: Self = Self::new("x86 32-bit 2/2 GiB", 0x7FFE_FFFF, 0x8000_0000);
    /// 32-bit x86 with the 3 GiB user option (4GT): 3 GiB user, 1 GiB kernel.
    pub const X86_32_3G: Self = Self::new("x86 32-bit 3/1 GiB", 0xBFFE_FFFF, 0xC000_0000);
    /// x86-64 with 4-level paging: 128 TiB of user space.
    pub const X86_64: Self = Self::new("x86-64 4-level", 0x7FFF_FFFE_FFFF, 0xFFFF_8000_0000_0000);
    /// x86-64 with 5-level paging: 64 PiB of user space.
    pub const X86_64_LA57: Self =
        Self::new("x86-64 5-level", 0x00FF_FFFF_FFFE_FFFF, 0xFF00_0000_0000_0000);

    const fn new(name: &'static str, highest: u64, kernel_start: u64) -> Self {
        Self {
            name,
            lowest: VirtAddr::new(0x1_0000),
            highest: VirtAddr::new(highest),
            kernel_start: VirtAddr::new(kernel_start),
        }
    }

    /// The layout of a kernel space handing out `[lowest, highest]` of this layout's kernel
    /// half (a kernel heap, say): its pages are committed and materialised on first touch
    /// like a process's, through the same fault path, but map supervisor-only.
    /// [`AddressSpace::new`](super::AddressSpace::new) refuses it unless `lowest` is at or
    /// above [`kernel_start`](Self::kernel_start).
    #[must_use]
    pub const fn kernel_part(
        &self,
        name: &'static str,
        lowest: VirtAddr,
        highest: VirtAddr,
    ) -> Self {
        Self { name, lowest, highest, kernel_start: self.kernel_start }
    }

    /// Whether this is a kernel's layout: it starts in the kernel half.
    #[must_use]
    pub const fn is_kernel(&self) -> bool {
        self.lowest.as_u64() >= self.kernel_start.as_u64()
    }

    /// Whether the layout lies wholly on one side of the kernel half's start (a process's
    /// below it, a kernel's at or above it) with its lowest address not above its highest.
    #[must_use]
    pub const fn is_one_sided(&self) -> bool {
        let (lowest, highest) = (self.lowest.as_u64(), self.highest.as_u64());
        lowest <= highest && (self.is_kernel() || highest < self.kernel_start.as_u64())
    }

    /// Whether `[addr, addr + size)` lies in the part that can be handed out.
    #[must_use]
    pub fn holds(&self, addr: VirtAddr, size: u64) -> bool {
        size > 0
            && addr >= self.lowest
            && addr.as_u64().checked_add(size - 1).is_some_and(|last| last <= self.highest.as_u64())
    }
}

/// A small deterministic generator for placement (SplitMix64): ASLR from a seed the
/// caller provides, so that runs can be replayed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Aslr {
    state: u64,
}

impl Aslr {
    /// A generator seeded with `seed`.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next number below `bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        if bound == 0 { 0 } else { z % bound }
    }
}

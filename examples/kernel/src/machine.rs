//! The machine the tests run on: the frame allocator built from the PVH memory map, the
//! kernel's page tables built by the engine (a direct map of RAM and the kernel image),
//! and the hardware TLB.

use core::marker::PhantomData;
use paging::frame::{BitmapAllocator, FrameAllocator};
use paging::{
    Asid, Frame, Page, PageFlags, PageSize, PageTable, PageTableFormat, PhysAddr, Size2MiB, Tlb,
    VirtAddr,
};

use paging::space::Layout;
use paging_x86::hw::{CpuFeatures, Cr3, DirectMap, HwTlb, control, instructions};
use paging_x86::{X86_64, X86_64La57};

use crate::fail::Fail;
use crate::global::TakeOnce;
use crate::swap::Swap;
use crate::{memmap, println, trap};

/// Where the kernel is linked: -2 GiB, mapping physical 0 up.
pub const KERNEL_VMA: u64 = 0xFFFF_FFFF_8000_0000;
/// Where the engine's tables map all RAM: the start of the kernel half.
pub const DIRECT_MAP: u64 = 0xFFFF_8000_0000_0000;
/// What the boot tables map at its own address: RAM above is not used.
const BOOT_MAPPED: u64 = 4 << 30;
const GIB: u64 = 1 << 30;

const BITMAP_WORDS: usize =
    BitmapAllocator::words_needed(BOOT_MAPPED) + 2 * memmap::MAX_ENTRIES + 8;
static BITMAP: TakeOnce<[u64; BITMAP_WORDS]> = TakeOnce::new([0; BITMAP_WORDS]);

unsafe extern "C" {
    static __kernel_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __kernel_end: u8;
}

/// A paging mode the kernel runs in: 4-level, or 5-level when the CPU has LA57.
pub trait Format: PageTableFormat {
    /// The user and kernel halves of its address spaces.
    const LAYOUT: Layout;
}

impl Format for X86_64 {
    const LAYOUT: Layout = Layout::X86_64;
}

impl Format for X86_64La57 {
    const LAYOUT: Layout = Layout::X86_64_LA57;
}

/// The CPU, its memory and its tables (in format `F`), as the tests use them.
pub struct Machine<F: Format> {
    /// What CPUID reports.
    pub cpu: CpuFeatures,
    /// Physical memory through the direct map.
    pub memory: DirectMap,
    /// Free RAM.
    pub frames: BitmapAllocator<'static>,
    /// The TLB.
    pub tlb: HwTlb,
    /// The kernel's root table (PCID 0).
    pub kernel_root: PhysAddr,
    /// The page file's disk and the pager's books.
    pub swap: Swap,
    format: PhantomData<F>,
}

impl<F: Format> Machine<F> {
    /// The kernel's page table.
    pub fn kernel_table(&mut self) -> PageTable<F, &mut DirectMap> {
        PageTable::from_root(self.kernel_root, &mut self.memory)
    }

    /// Maps `va` to `frame` in the kernel's table and applies the flush.
    pub fn map<S: PageSize>(
        &mut self,
        va: u64,
        frame: PhysAddr,
        flags: PageFlags,
    ) -> Result<(), Fail> {
        let page = Page::<S>::from_start(VirtAddr::new(va))?;
        let frame = Frame::<S>::from_start(frame)?;
        let mut table = PageTable::<F, _>::from_root(self.kernel_root, &mut self.memory);
        table.map(page, frame, flags, &mut self.frames)?.apply(&mut self.tlb);
        Ok(())
    }

    /// A zeroed frame whose first word is `first`.
    pub fn frame_with(&mut self, first: u64) -> Result<PhysAddr, Fail> {
        let frame = self.frames.allocate()?;
        paging::TableMemory::zero_frame(&mut self.memory, frame);
        self.write_phys(frame, first);
        Ok(frame)
    }

    /// Reads physical memory through the direct map.
    pub fn read_phys(&self, phys: PhysAddr) -> u64 {
        trap::load(DIRECT_MAP + phys.as_u64())
    }

    /// Writes physical memory through the direct map.
    pub fn write_phys(&mut self, phys: PhysAddr, value: u64) {
        // SAFETY: the tests write only frames they took from the allocator.
        unsafe { trap::store(DIRECT_MAP + phys.as_u64(), value) };
    }

    /// Makes the kernel's table active again (PCID 0).
    pub fn activate_kernel(&mut self) {
        self.tlb.activate(self.kernel_root, Asid(0));
    }

    /// Another handle on the TLB, for code that runs while `self.tlb` is borrowed.
    pub fn tlb_handle(&self) -> HwTlb {
        // SAFETY: ring 0, long mode, PCIDE fixed since boot; roots activated through it
        // are the kernel's or spaces that share its kernel half.
        unsafe { HwTlb::new(&self.cpu) }
    }
}

/// The virtual address of a linker symbol (taking it reads nothing).
macro_rules! symbol {
    ($name:ident) => {
        &raw const $name as u64
    };
}

/// Switches on what paging needs, builds the frame allocator and the kernel's tables,
/// and switches to them.
pub fn boot<F: Format>(cpu: CpuFeatures, start_info: u64) -> Result<Machine<F>, Fail> {
    println!(
        "cpu: nx {} pge {} pcid {} invpcid {} smep {} smap {} 1gib {} la57 {} phys {} bits",
        cpu.nx,
        cpu.pge,
        cpu.pcid,
        cpu.invpcid,
        cpu.smep,
        cpu.smap,
        cpu.huge_1gib,
        cpu.la57,
        cpu.phys_bits
    );
    // SAFETY: ring 0; nothing maps pages read-only or user-executable yet.
    unsafe {
        control::enable_nxe(&cpu)?;
        control::enable_write_protect();
        control::enable_global_pages(&cpu)?;
        if control::enable_smep(&cpu).is_err() {
            println!("note: no SMEP");
        }
    }

    let image_end = symbol!(__kernel_end) - KERNEL_VMA;
    // SAFETY: the boot tables map the first 4 GiB at their own address; `start_info` is
    // what the PVH entry received.
    let regions = unsafe { memmap::read(start_info, BOOT_MAPPED, (0x10_0000, image_end)) }
        .map_err(|why| crate::fail!("{why}"))?;
    let ram_end = memmap::ram_end(&regions);
    let bitmap = BITMAP.take().ok_or_else(|| crate::fail!("booted twice"))?;
    let mut frames = BitmapAllocator::new(bitmap, &regions)?;
    println!(
        "memory: {} MiB of RAM up to {ram_end:#x}, {} frames free",
        frames.usable_frames() / 256,
        frames.free_frames()
    );

    // SAFETY: the boot tables map [0, 4 GiB) at offset 0, and the engine writes only
    // frames from the allocator, which holds no kernel data.
    let mut boot_memory = unsafe { DirectMap::new(0, PhysAddr::ZERO, PhysAddr::new(BOOT_MAPPED)) };
    let root = build_tables::<F>(&cpu, &mut boot_memory, &mut frames, ram_end)?;

    let cr3 = Cr3::new(root, Asid(0), false)?;
    // SAFETY: the new tables map the kernel image (code, data, stack, descriptor tables)
    // at the addresses it runs at; the identity map of low memory is no longer used.
    unsafe { instructions::write_cr3(cr3.bits()) };
    println!("switched to the engine's tables ({}): CR3 = {root:#x}", F::NAME);

    // SAFETY: the new tables map [0, span) at DIRECT_MAP, read-write; RAM ends at ram_end.
    let memory = unsafe { DirectMap::new(DIRECT_MAP, PhysAddr::ZERO, PhysAddr::new(ram_end)) };
    // SAFETY: ring 0 in long mode, CR3 holds PCID 0.
    if let Err(why) = unsafe { control::enable_pcids(&cpu) } {
        println!("note: {why}");
    }
    // SAFETY: ring 0, long mode, PCIDE set (or not) for good; every root the tests
    // activate shares the kernel half.
    let tlb = unsafe { HwTlb::new(&cpu) };
    let swap = Swap::boot()?;
    Ok(Machine { cpu, memory, frames, tlb, kernel_root: root, swap, format: PhantomData })
}

/// Builds the kernel's tables in `memory`: all RAM at [`DIRECT_MAP`] with the largest
/// pages the CPU has, and the kernel image where it is linked, with W^X permissions.
fn build_tables<F: Format>(
    cpu: &CpuFeatures,
    memory: &mut DirectMap,
    frames: &mut BitmapAllocator<'static>,
    ram_end: u64,
) -> Result<PhysAddr, Fail> {
    let mut table = PageTable::<F, _>::new(memory, &mut *frames)?;
    let direct = PageFlags::READABLE | PageFlags::WRITABLE | PageFlags::GLOBAL;
    let span = ram_end.next_multiple_of(GIB);
    let virt = VirtAddr::new(DIRECT_MAP);
    // The largest pages the CPU has.
    if cpu.huge_1gib {
        table.map_range(virt, PhysAddr::ZERO, span, direct, frames)?.ignore();
    } else {
        table
            .map_range_limited::<Size2MiB, _>(virt, PhysAddr::ZERO, span, direct, frames)?
            .ignore();
    }
    let global = PageFlags::READABLE | PageFlags::GLOBAL;
    let parts = [
        (symbol!(__kernel_start), symbol!(__text_end), global | PageFlags::EXECUTABLE),
        (symbol!(__text_end), symbol!(__rodata_end), global),
        (symbol!(__rodata_end), symbol!(__kernel_end), global | PageFlags::WRITABLE),
    ];
    for (start, end, flags) in parts {
        let (virt, phys) = (VirtAddr::new(start), PhysAddr::new(start - KERNEL_VMA));
        table.map_range(virt, phys, end - start, flags, frames)?.ignore();
    }
    Ok(table.root())
}

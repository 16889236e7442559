//! The kernel's own table: what the CPU sees after map, unmap and protect with their
//! flushes, huge pages, write protection and NX.

use paging::frame::FrameAllocator;
use paging::table::NewEntry;
use paging::{Frame, Page, PageFlags, PageTable, PhysAddr, Size1GiB, Size2MiB, Size4KiB, VirtAddr};
use paging_x86::hw::{PageFaultCode, control};

use crate::fail::Fail;
use crate::machine::{DIRECT_MAP, Format, KERNEL_VMA, Machine};
use crate::trap::{self, load, probe_fetch, probe_load, probe_store, store};
use crate::{ensure, fail};

/// 4 KiB test pages, one per 2 MiB slot, at 1 TiB (the kernel table's lower half).
const SCRATCH: u64 = 0x0000_0100_0000_0000;
const HUGE_2MIB: u64 = 0x0000_0180_0000_0000;
const HUGE_1GIB: u64 = 0x0000_0200_0000_0000;
const MIB2: u64 = 2 << 20;

const RW: PageFlags = PageFlags::READABLE.union(PageFlags::WRITABLE);

/// A value in .rodata, mapped read-only.
static READ_ONLY: u64 = 0x0DDB_A11D_0DDB_A11D;

fn slot(n: u64) -> u64 {
    SCRATCH + n * MIB2
}

/// Checks the fault the last failed probe logged.
pub fn expect_fault(code: u64, addr: u64) -> Result<(), Fail> {
    let logged = trap::take_logged().ok_or_else(|| fail!("no page fault was logged"))?;
    ensure!(
        logged.code.bits() == code && logged.addr == addr,
        "expected error code {} at {addr:#x}, got {} at {:#x}",
        PageFaultCode::new(code),
        logged.code,
        logged.addr
    );
    Ok(())
}

pub fn map_seen_after_flush<F: Format>(m: &mut Machine<F>) -> Result<(), Fail> {
    let va = slot(0);
    let frame = m.frame_with(0x1111_2222_3333_4444)?;
    m.map::<Size4KiB>(va, frame, RW)?;
    ensure!(
        load(va) == 0x1111_2222_3333_4444,
        "the CPU reads {:#x} through the new page",
        load(va)
    );
    // SAFETY: the page maps a frame of this test.
    unsafe { store(va + 8, 0x5555) };
    ensure!(m.read_phys(frame + 8) == 0x5555, "a store through the page missed its frame");
    Ok(())
}

pub fn unmap_flush_then_fault<F: Format>(m: &mut Machine<F>) -> Result<(), Fail> {
    let va = slot(1);
    let frame = m.frame_with(7)?;
    m.map::<Size4KiB>(va, frame, RW)?;
    ensure!(load(va) == 7, "mapped page does not read back"); // now in the TLB
    let page = Page::<Size4KiB>::containing(VirtAddr::new(va));
    let mut table = PageTable::<F, _>::from_root(m.kernel_root, &mut m.memory);
    let (_, _, flush) = table.unmap(page, &mut m.frames)?;
    ensure!(!flush.is_empty(), "unmapping a present page returned an empty flush");
    flush.apply(&mut m.tlb);
    ensure!(probe_load(va).is_none(), "the CPU still reads the page after unmap and flush");
    expect_fault(0, va)?;
    m.frames.deallocate(frame)?;
    Ok(())
}

pub fn protect_read_only_after_flush<F: Format>(m: &mut Machine<F>) -> Result<(), Fail> {
    let va = slot(2);
    let frame = m.frame_with(0)?;
    m.map::<Size4KiB>(va, frame, RW)?;
    // SAFETY: the page maps a frame of this test. The TLB now holds it writable and dirty.
    unsafe { store(va, 5) };
    let page = Page::<Size4KiB>::containing(VirtAddr::new(va));
    m.kernel_table().protect(page, PageFlags::READABLE)?.apply(&mut m.tlb);
    // SAFETY: as above.
    ensure!(!unsafe { probe_store(va, 6) }, "a write went through after protect and flush");
    expect_fault(PageFaultCode::PRESENT | PageFaultCode::WRITE, va)?;
    ensure!(load(va) == 5, "the page lost its contents");
    Ok(())
}

pub fn write_protect_kernel_rodata<F: Format>(m: &mut Machine<F>) -> Result<(), Fail> {
    let va = &raw const READ_ONLY as u64;
    let flags = m.kernel_table().translate(VirtAddr::new(va))?.flags;
    ensure!(!flags.contains(PageFlags::WRITABLE), ".rodata is mapped writable: {flags:?}");
    // SAFETY: the write cannot go through (CR0.WP, read-only page); if it did, the value
    // checked below would say so.
    ensure!(!unsafe { probe_store(va, 0) }, "a supervisor write to .rodata went through");
    expect_fault(PageFaultCode::PRESENT | PageFaultCode::WRITE, va)?;
    ensure!(load(va) == 0x0DDB_A11D_0DDB_A11D, ".rodata changed");
    Ok(())
}

pub fn nx_fetch_faults<F: Format>(m: &mut Machine<F>) -> Result<(), Fail> {
    let va = slot(3);
    let frame = m.frame_with(0xC3)?; // `ret`
    m.map::<Size4KiB>(va, frame, PageFlags::READABLE)?;
    // SAFETY: the page holds `ret`.
    ensure!(!unsafe { probe_fetch(va) }, "code ran from a no-execute page");
    expect_fault(PageFaultCode::PRESENT | PageFaultCode::FETCH, va)?;
    let page = Page::<Size4KiB>::containing(VirtAddr::new(va));
    let exec = PageFlags::READABLE | PageFlags::EXECUTABLE;
    m.kernel_table().protect(page, exec)?.apply(&mut m.tlb);
    // SAFETY: as above.
    ensure!(unsafe { probe_fetch(va) }, "the page does not run after protect to executable");
    Ok(())
}

pub fn huge_page_2mib<F: Format>(m: &mut Machine<F>) -> Result<(), Fail> {
    let base = m.frames.allocate_contiguous(512, MIB2)?;
    m.write_phys(base, 0x2A);
    m.write_phys(base + (MIB2 - 8), 0x2B);
    m.map::<Size2MiB>(HUGE_2MIB, base, RW)?;
    let hit = m.kernel_table().translate(VirtAddr::new(HUGE_2MIB + 0x1234))?;
    ensure!(hit.size == MIB2 && hit.level == 2, "the engine made a {} byte page", hit.size);
    ensure!(load(HUGE_2MIB) == 0x2A, "the first word reads wrong");
    ensure!(load(HUGE_2MIB + MIB2 - 8) == 0x2B, "the last word reads wrong");
    // SAFETY: the page maps frames of this test.
    unsafe { store(HUGE_2MIB + 0x10_0000, 0x2C) };
    ensure!(m.read_phys(base + 0x10_0000) == 0x2C, "a store landed elsewhere");
    Ok(())
}

pub fn huge_page_1gib<F: Format>(m: &mut Machine<F>) -> Result<(), Fail> {
    if !m.cpu.huge_1gib {
        return Err(Fail::skip("the CPU has no 1 GiB pages (CPUID pdpe1gb)"));
    }
    let direct = m.kernel_table().translate(VirtAddr::new(DIRECT_MAP))?;
    ensure!(direct.size == 1 << 30, "the direct map uses {} byte pages", direct.size);
    let frame = Frame::<Size1GiB>::from_start(PhysAddr::ZERO)?;
    let page = Page::<Size1GiB>::from_start(VirtAddr::new(HUGE_1GIB))?;
    let mut table = PageTable::<F, _>::from_root(m.kernel_root, &mut m.memory);
    let flush = table.map(page, frame, PageFlags::READABLE, &mut m.frames)?;
    flush.apply(&mut m.tlb);
    // The kernel's .rodata seen through the first GiB of physical memory.
    let phys = &raw const READ_ONLY as u64 - KERNEL_VMA;
    ensure!(load(HUGE_1GIB + phys) == READ_ONLY, "the 1 GiB page does not show the kernel");
    Ok(())
}

/// Under 5-level paging, an address beyond 48 bits (canonical only with 57-bit
/// addresses) maps and reads like any other.
pub fn five_level_address<F: Format>(m: &mut Machine<F>) -> Result<(), Fail> {
    if F::LEVELS != 5 {
        return Err(Fail::skip("4-level paging: the CPU model has no LA57"));
    }
    // SAFETY: ring 0.
    ensure!(unsafe { control::la57_active() }, "CR4.LA57 is off under 5-level tables");
    let va = 0x00AB_CDEF_0000_0000;
    let frame = m.frame_with(0x57)?;
    m.map::<Size4KiB>(va, frame, RW)?;
    ensure!(load(va) == 0x57, "the page at {va:#x} reads {:#x}", load(va));
    Ok(())
}

/// Not a test: rewrites a present entry without the flush and reads through it. QEMU's
/// TLB keeps the old translation until INVLPG (real CPUs may or may not).
pub fn stale_translation<F: Format>(m: &mut Machine<F>) -> Result<(u64, u64), Fail> {
    let va = slot(4);
    let (old, new) = (m.frame_with(1)?, m.frame_with(2)?);
    m.map::<Size4KiB>(va, old, RW)?;
    let _ = load(va);
    let page = Page::<Size4KiB>::containing(VirtAddr::new(va));
    let entry = NewEntry::Page { frame: Frame::containing(new), flags: RW };
    let mut table = PageTable::<F, _>::from_root(m.kernel_root, &mut m.memory);
    let (_, flush) = table.set_entry(page, entry, &mut m.frames)?;
    let before = load(va);
    flush.apply(&mut m.tlb);
    let after = load(va);
    Ok((before, after))
}

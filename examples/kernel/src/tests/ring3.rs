//! User mode: ring 3 against a kernel page (U/S), and the kernel against user pages
//! (SMEP, SMAP).

use paging::{PageFlags, Size4KiB, VirtAddr};
use paging_x86::hw::{PageFaultCode, control, instructions};

use crate::ensure;
use crate::fail::Fail;
use crate::machine::{Format, Machine};
use crate::trap::{self, UserExit, enter_user, load, probe_fetch, probe_load};

use super::mmu::expect_fault;

/// The user page of code: `mov rax, [rdi]; ud2`, and a `ret` at +0x100.
const USER_CODE: u64 = 0x0000_0300_0000_0000;
/// A user page of data.
const USER_DATA: u64 = USER_CODE + 0x1000;
/// The user stack pointer (nothing is pushed in ring 3).
const USER_STACK: u64 = USER_CODE + 0x10_0000;
const USER_VALUE: u64 = 0x05E2_0DA7_A000_0001;

/// A kernel value that ring 3 must not read.
static KERNEL_SECRET: u64 = 0x5EC2_E75E_C2E7_0000;

/// Maps the user pages into the kernel's table, once.
fn user_pages<F: Format>(m: &mut Machine<F>) -> Result<(), Fail> {
    if m.kernel_table().translate(VirtAddr::new(USER_CODE)).is_ok() {
        return Ok(());
    }
    let code = m.frame_with(0x0000_000B_0F07_8B48)?; // 48 8b 07: mov rax, [rdi]; 0f 0b: ud2
    m.write_phys(code + 0x100, 0xC3); // ret
    let user = PageFlags::READABLE | PageFlags::USER;
    m.map::<Size4KiB>(USER_CODE, code, user | PageFlags::EXECUTABLE)?;
    let data = m.frame_with(USER_VALUE)?;
    m.map::<Size4KiB>(USER_DATA, data, user)?;
    Ok(())
}

pub fn kernel_page_from_ring3<F: Format>(m: &mut Machine<F>) -> Result<(), Fail> {
    user_pages(m)?;
    // SAFETY: the code page ends in ud2; the kernel's pages are supervisor-only.
    let own = unsafe { enter_user(USER_CODE, USER_STACK, USER_DATA) };
    ensure!(own == UserExit::Finished { rax: USER_VALUE }, "ring 3 reading its own page: {own:?}");
    let secret = &raw const KERNEL_SECRET as u64;
    // SAFETY: as above.
    let kernel = unsafe { enter_user(USER_CODE, USER_STACK, secret) };
    ensure!(kernel == UserExit::PageFault, "ring 3 reading a kernel page: {kernel:?}");
    expect_fault(PageFaultCode::PRESENT | PageFaultCode::USER, secret)
}

pub fn smep_fetch<F: Format>(m: &mut Machine<F>) -> Result<(), Fail> {
    if !m.cpu.smep {
        return Err(Fail::skip("the CPU has no SMEP"));
    }
    user_pages(m)?;
    let ret = USER_CODE + 0x100;
    // SAFETY: the byte at `ret` is a `ret`.
    ensure!(!unsafe { probe_fetch(ret) }, "the kernel ran code from a user page under SMEP");
    expect_fault(PageFaultCode::PRESENT | PageFaultCode::FETCH, ret)
}

pub fn smap_access<F: Format>(m: &mut Machine<F>) -> Result<(), Fail> {
    if !m.cpu.smap {
        return Err(Fail::skip("the CPU has no SMAP"));
    }
    user_pages(m)?;
    // SAFETY: ring 0; while SMAP is on, the kernel touches user pages only below, with AC.
    unsafe { control::enable_smap(&m.cpu)? };
    let blocked = probe_load(USER_DATA);
    let logged = trap::take_logged();
    // SAFETY: the CPU has SMAP (checked above).
    let allowed = unsafe {
        instructions::stac();
        let value = load(USER_DATA);
        instructions::clac();
        value
    };
    // SAFETY: ring 0; clearing SMAP only removes faults.
    unsafe { control::disable_smap() };
    ensure!(blocked.is_none(), "a supervisor read of a user page went through under SMAP");
    let logged = logged.ok_or_else(|| crate::fail!("no fault logged"))?;
    ensure!(logged.code.bits() == PageFaultCode::PRESENT, "error code {}", logged.code);
    ensure!(allowed == USER_VALUE, "with RFLAGS.AC the read gave {allowed:#x}");
    Ok(())
}

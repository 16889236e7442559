//! A test kernel for `paging-x86`: QEMU boots it through the PVH entry (`-kernel`), it
//! builds its own page tables with the engine, switches to them, and checks on the
//! emulated MMU that the CPU sees what the engine wrote: maps, unmaps and protections
//! after their flushes, huge pages, demand-zero, guard pages and copy-on-write through
//! real page faults, NX, SMEP, SMAP, user/supervisor, and address spaces with their own
//! PCIDs; and the pager swapping to the IDE disk QEMU attaches (soft and hard faults, a
//! shared section, an in-page error, Clock on the real Accessed bits). It pages with 5 levels when the CPU has LA57 (the PVH entry sets CR4.LA57
//! before paging), else with 4. Each test reports on the serial port; the last line is `N passed, M failed`,
//! and QEMU exits with status 33 (isa-debug-exit) only if none failed.
//!
//! Run it with `cargo xtask qemu`.
#![no_std]
#![no_main]
#![allow(clippy::result_large_err, reason = "no heap: a failure carries its message inline")]

mod ata;
mod descriptors;
mod fail;
mod global;
mod machine;
mod memmap;
mod port;
mod serial;
mod swap;
mod tests;
mod trap;

use core::arch::global_asm;
use core::panic::PanicInfo;

use paging_x86::hw::{CpuFeatures, control, instructions};
use paging_x86::{X86_64, X86_64La57};
use serial::{EXIT_FAILURE, EXIT_SUCCESS, exit};

global_asm!(include_str!("boot.s"), options(att_syntax));

/// Called by boot.s in long mode, on the kernel stack, with the physical address of
/// `hvm_start_info`.
#[unsafe(no_mangle)]
extern "C" fn kernel_main(start_info: u64) -> ! {
    println!("paging test kernel: booted through PVH, start_info at {start_info:#x}");
    descriptors::install();
    let cpu = instructions::features();
    // SAFETY: ring 0.
    let (passed, failed) = if unsafe { control::la57_active() } {
        boot_and_test::<X86_64La57>(cpu, start_info)
    } else {
        boot_and_test::<X86_64>(cpu, start_info)
    };
    println!("{passed} passed, {failed} failed");
    exit(if failed == 0 && passed > 0 { EXIT_SUCCESS } else { EXIT_FAILURE })
}

/// Boots in paging mode `F` and runs the tests.
fn boot_and_test<F: machine::Format>(cpu: CpuFeatures, start_info: u64) -> (u32, u32) {
    match machine::boot::<F>(cpu, start_info) {
        Ok(mut machine) => tests::run_all(&mut machine),
        Err(fail) => {
            println!("boot failed: {}", fail.message);
            tests::abort();
        }
    }
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    println!("panic: {info}");
    tests::abort()
}

//! The tests, run in order on the emulated CPU. Each prints `test NAME ... ok`,
//! `... FAILED: why` or `... skipped: why`; informational demos print `info NAME: what`.

use crate::fail::Fail;
use crate::global::Global;
use crate::machine::{Format, Machine};
use crate::println;
use crate::serial::{EXIT_FAILURE, exit};

mod mmu;
mod ring3;
mod space;
mod swap;

/// A check: `Ok` or why not.
type Test<F> = fn(&mut Machine<F>) -> Result<(), Fail>;

/// The tests, in the order they run.
fn tests<F: Format>() -> [(&'static str, Test<F>); 19] {
    [
        ("map_seen_after_flush", mmu::map_seen_after_flush::<F>),
        ("unmap_flush_then_fault", mmu::unmap_flush_then_fault::<F>),
        ("protect_read_only_after_flush", mmu::protect_read_only_after_flush::<F>),
        ("write_protect_kernel_rodata", mmu::write_protect_kernel_rodata::<F>),
        ("nx_fetch_faults", mmu::nx_fetch_faults::<F>),
        ("huge_page_2mib", mmu::huge_page_2mib::<F>),
        ("huge_page_1gib", mmu::huge_page_1gib::<F>),
        ("five_level_address", mmu::five_level_address::<F>),
        ("demand_zero", space::demand_zero::<F>),
        ("guard_page", space::guard_page::<F>),
        ("copy_on_write", space::copy_on_write::<F>),
        ("space_isolation", space::space_isolation::<F>),
        ("ring3_kernel_page_faults", ring3::kernel_page_from_ring3::<F>),
        ("smep_fetch_user_page", ring3::smep_fetch::<F>),
        ("smap_access_user_page", ring3::smap_access::<F>),
        ("swap_four_times_the_frames", swap::four_times_the_frames::<F>),
        ("swap_shared_section", swap::shared_section::<F>),
        ("swap_in_page_error", swap::in_page_error::<F>),
        ("swap_clock_accessed_bits", swap::clock_accessed_bits::<F>),
    ]
}

static PASSED: Global<u32> = Global::new(0);
static FAILED: Global<u32> = Global::new(0);

/// Runs every test and the demos; returns how many passed and failed.
pub fn run_all<F: Format>(machine: &mut Machine<F>) -> (u32, u32) {
    for (name, test) in tests::<F>() {
        match test(machine) {
            Ok(()) => {
                PASSED.set(PASSED.get() + 1);
                println!("test {name} ... ok");
            }
            Err(fail) if fail.skipped => println!("test {name} ... skipped: {}", fail.message),
            Err(fail) => {
                FAILED.set(FAILED.get() + 1);
                println!("test {name} ... FAILED: {}", fail.message);
            }
        }
        // Whatever a test left active, the next one starts in the kernel's space.
        machine.activate_kernel();
    }
    match mmu::stale_translation(machine) {
        Ok((before, after)) => {
            let verdict = if before == 1 { "the old frame: stale" } else { "the new frame" };
            println!(
                "info stale_translation: entry changed from frame 1 to frame 2; without the flush the CPU reads {before} ({verdict}), after it {after}"
            );
        }
        Err(fail) => println!("info stale_translation: not shown: {}", fail.message),
    }
    (PASSED.get(), FAILED.get())
}

/// Ends the run after something went badly wrong outside a test's control: the counts so
/// far, one failure more, and QEMU's failure status.
pub fn abort() -> ! {
    println!("{} passed, {} failed", PASSED.get(), FAILED.get() + 1);
    exit(EXIT_FAILURE)
}

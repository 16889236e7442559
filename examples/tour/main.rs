//! The tour: virtual memory on the simulated machine, narrated step by step.
//!
//! `cargo run --release --bin tour` walks through two processes sharing one address,
//! reserve and commit, faults with first and second chance, a guard page, copy-on-write
//! between processes, and the machine's counters; then, on a machine with too little RAM,
//! pages going to the page file and coming back (hard and soft faults), the commit limit,
//! and Task Manager's counters; then the rest of the seeds: a 32-bit process's `!address 0`
//! and the x86 and x64 layouts side by side, an image mapped like notepad.exe and ASLR
//! placing it, and W^X refusing PAGE_EXECUTE_READWRITE. It prints dumps in the style of
//! WinDbg's `dc`, region listings in the style of `!address` and page-table entries in the
//! style of `!pte`.
//!
//! One file a concept: `print.rs` the debugger's views, `basics.rs` chapters 1 to 6,
//! `swapping.rs` chapter 7, `layouts.rs` chapter 8, `images.rs` chapter 9, `wx.rs`
//! chapter 10.

use std::error::Error;
use std::io::{self, Write};

use paging::space::{AddressSpace, Protection};
use paging_x86::X86_64;

mod basics;
mod images;
mod layouts;
mod print;
mod swapping;
#[cfg(test)]
mod tests;
mod wx;

type Space = AddressSpace<X86_64>;
type Res<T = ()> = Result<T, Box<dyn Error>>;

const PAGE: u64 = 0x1000;
const RW: Protection = Protection::READ_WRITE;
/// The tour's first words.
const INTRO: &str = "A tour of virtual memory on a simulated x86-64 machine. Every load, store \
    and instruction fetch below goes through a simulated MMU and TLB that walk real page tables \
    in simulated RAM.";

fn main() -> Res {
    run(&mut io::stdout().lock())
}

/// The whole tour, written to `out`.
fn run(out: &mut impl Write) -> Res {
    writeln!(out, "{}", print::wrap(INTRO))?;
    basics::two_processes(out)?;
    swapping::swapping(out)?;
    layouts::layouts(out)?;
    images::images(out)?;
    wx::write_xor_execute(out)
}

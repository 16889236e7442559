//! x86 port I/O, for the devices the kernel drives: the serial port, isa-debug-exit and
//! the IDE disk.

use core::arch::asm;

/// Writes `value` to byte port `port`.
pub fn outb(port: u16, value: u8) {
    // SAFETY: the kernel drives only the ports of its own devices (COM1, isa-debug-exit,
    // the primary IDE channel); writing them has no effect on memory Rust sees. Ring 0.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    };
}

/// Reads byte port `port`.
pub fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: as in `outb`: reading these ports touches no memory.
    unsafe {
        asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags))
    };
    value
}

/// Reads `bytes.len() / 2` 16-bit words from port `port` into `bytes` (`rep insw`; x86
/// needs no alignment for it). An odd last byte is left alone.
pub fn read_words(port: u16, bytes: &mut [u8]) {
    // SAFETY: `rep insw` writes exactly `rcx` words upwards from `rdi` (the direction flag
    // is clear, as the ABI has it at any call): `2 * rcx <= bytes.len()` bytes `bytes` owns.
    unsafe {
        asm!(
            "rep insw",
            in("dx") port,
            inout("rdi") bytes.as_mut_ptr() => _,
            inout("rcx") bytes.len() / 2 => _,
            options(nostack, preserves_flags)
        )
    };
}

/// Writes `bytes` to port `port` as 16-bit words (`rep outsw`). An odd last byte is not
/// sent.
pub fn write_words(port: u16, bytes: &[u8]) {
    // SAFETY: `rep outsw` reads exactly `rcx` words upwards from `rsi`: `2 * rcx <=
    // bytes.len()` bytes `bytes` borrows; the direction flag is clear.
    unsafe {
        asm!(
            "rep outsw",
            in("dx") port,
            inout("rsi") bytes.as_ptr() => _,
            inout("rcx") bytes.len() / 2 => _,
            options(nostack, preserves_flags, readonly)
        )
    };
}

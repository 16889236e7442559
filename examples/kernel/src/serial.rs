//! COM1, the serial port QEMU connects to its stdout (`-serial stdio`), and the
//! isa-debug-exit device that ends QEMU with a status.

use core::arch::asm;
use core::fmt;

use crate::port::{inb, outb};

const COM1: u16 = 0x3F8;
/// Line status register: bit 5 says the transmit buffer is empty.
const LINE_STATUS: u16 = COM1 + 5;
/// The isa-debug-exit device (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`).
const DEBUG_EXIT: u16 = 0xF4;

/// The value written to isa-debug-exit when every test passed: QEMU exits with
/// `(0x10 << 1) | 1 = 33`. A triple fault would exit with 0, so 0 never means success.
pub const EXIT_SUCCESS: u32 = 0x10;
/// The value for a failure: QEMU exits with 35.
pub const EXIT_FAILURE: u32 = 0x11;

/// Writes one byte to COM1, waiting until it can take it.
fn write_byte(byte: u8) {
    while inb(LINE_STATUS) & 0x20 == 0 {
        core::hint::spin_loop();
    }
    outb(COM1, byte);
}

/// The serial port as a `fmt::Write`.
pub struct Serial;

impl fmt::Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            if byte == b'\n' {
                write_byte(b'\r');
            }
            write_byte(byte);
        }
        Ok(())
    }
}

/// Prints to the serial port.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::serial::Serial, $($arg)*);
    }};
}

/// Prints a line to the serial port.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::serial::Serial, $($arg)*);
    }};
}

/// Ends QEMU through isa-debug-exit with status `(value << 1) | 1`.
pub fn exit(value: u32) -> ! {
    // SAFETY: the write makes QEMU exit; nothing in memory is involved.
    unsafe {
        asm!("out dx, eax", in("dx") DEBUG_EXIT, in("eax") value, options(nomem, nostack, preserves_flags))
    };
    // Without the device (run by hand without it), stop here.
    loop {
        // SAFETY: interrupts are off: the CPU halts for good.
        unsafe { asm!("hlt", options(nomem, nostack, preserves_flags)) };
    }
}

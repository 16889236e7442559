//! The GDT (kernel and user segments, the TSS), the TSS (the stacks the CPU switches to)
//! and the IDT (the 32 exception vectors, all through trap.s).

use core::arch::asm;

use crate::global::TakeOnce;

/// Segment selectors, as trap.s uses them too.
pub const KERNEL_CODE: u16 = 0x08;
pub const KERNEL_DATA: u16 = 0x10;
const TSS_SELECTOR: u16 = 0x28;

/// The stack the CPU switches to on an exception from ring 3 (TSS.RSP0).
static RING0_STACK: TakeOnce<Stack> = TakeOnce::new(Stack([0; STACK_SIZE]));
/// The stack of double faults (IST 1), so that a broken kernel stack still gets reported.
static DOUBLE_FAULT_STACK: TakeOnce<Stack> = TakeOnce::new(Stack([0; STACK_SIZE]));
const STACK_SIZE: usize = 0x8000;

#[repr(C, align(16))]
struct Stack([u8; STACK_SIZE]);

impl Stack {
    fn top(&'static mut self) -> u64 {
        self.0.as_mut_ptr_range().end as u64
    }
}

#[repr(C, align(16))]
struct Tables {
    gdt: [u64; 7],
    tss: [u8; 104],
    idt: [[u64; 2]; 32],
}

static TABLES: TakeOnce<Tables> =
    TakeOnce::new(Tables { gdt: [0; 7], tss: [0; 104], idt: [[0; 2]; 32] });

unsafe extern "C" {
    /// The 32 entry stubs of trap.s, by vector.
    static trap_stubs: [u64; 32];
}

/// The operand of LGDT and LIDT.
#[repr(C, packed)]
struct Pointer {
    limit: u16,
    base: u64,
}

/// Builds and loads the GDT, the TSS and the IDT. Once.
pub fn install() {
    let tables = TABLES.take().expect("descriptor tables are installed once");
    let ring0 = RING0_STACK.take().expect("once").top();
    let double_fault = DOUBLE_FAULT_STACK.take().expect("once").top();

    // TSS: RSP0 at offset 4, IST1 at 36, no I/O bitmap (its offset is the TSS size).
    tables.tss[4..12].copy_from_slice(&ring0.to_le_bytes());
    tables.tss[36..44].copy_from_slice(&double_fault.to_le_bytes());
    tables.tss[102..104].copy_from_slice(&104u16.to_le_bytes());
    let tss = tables.tss.as_ptr() as u64;
    tables.gdt = [
        0,
        0x00AF_9B00_0000_FFFF, // 0x08: kernel code, 64-bit
        0x00CF_9300_0000_FFFF, // 0x10: kernel data
        0x00CF_F300_0000_FFFF, // 0x18: user data (DPL 3)
        0x00AF_FB00_0000_FFFF, // 0x20: user code, 64-bit (DPL 3)
        // 0x28: the TSS (available 64-bit TSS, limit 103), two slots.
        103 | (tss & 0xFF_FFFF) << 16 | 0x89 << 40 | (tss >> 24 & 0xFF) << 56,
        tss >> 32,
    ];
    for (vector, gate) in tables.idt.iter_mut().enumerate() {
        // SAFETY: trap_stubs is a table of 32 addresses in .rodata, written by trap.s.
        let handler = unsafe { trap_stubs[vector] };
        let ist = u64::from(vector == 8); // double fault: IST 1
        gate[0] = (handler & 0xFFFF)
            | u64::from(KERNEL_CODE) << 16
            | ist << 32
            | 0x8E << 40 // present, DPL 0, 64-bit interrupt gate
            | (handler >> 16 & 0xFFFF) << 48;
        gate[1] = handler >> 32;
    }

    let gdt =
        Pointer { limit: (size_of_val(&tables.gdt) - 1) as u16, base: tables.gdt.as_ptr() as u64 };
    let idt =
        Pointer { limit: (size_of_val(&tables.idt) - 1) as u16, base: tables.idt.as_ptr() as u64 };
    // SAFETY: the tables live for ever (static); the new GDT has the boot GDT's code and
    // data selectors, so reloading the segment registers keeps the running code valid.
    unsafe {
        asm!(
            "lgdt [{gdt}]",
            "push {code}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov ds, {data:x}",
            "mov es, {data:x}",
            "mov ss, {data:x}",
            "ltr {tss:x}",
            "lidt [{idt}]",
            gdt = in(reg) &raw const gdt,
            idt = in(reg) &raw const idt,
            code = in(reg) u64::from(KERNEL_CODE),
            data = in(reg) u64::from(KERNEL_DATA),
            tss = in(reg) u64::from(TSS_SELECTOR),
            tmp = out(reg) _,
        );
    }
}

//! Chapter 10: W^X. A request for PAGE_EXECUTE_READWRITE is refused, for the reason the
//! seed gives; code is written, then made executable, never both at once.

use std::io::Write;

use paging::frame::{BitmapAllocator, FrameAllocator, MemoryRegion};
use paging::space::{Layout, Protection, SpaceConfig, SpaceError};
use paging::{Asid, Tlb, VirtAddr};
use paging_sim::{Machine, MachineConfig, MachineError, SpaceKernel};
use paging_x86::X86_64;

use crate::basics::{error_code, new_process};
use crate::print::{full, header, query, say};
use crate::{PAGE, RW, Res, Space};

/// An x86 `ret`: the code the process writes and then runs.
const RET: u8 = 0xC3;

/// Chapter 10: W^X refuses, then the way that works, then a space that allows it.
pub fn write_xor_execute(out: &mut impl Write) -> Res {
    header(out, "10. W^X: no page both writable and executable")?;
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = vec![0u64; 128];
    let mut alloc = BitmapAllocator::new(&mut bitmap, &[MemoryRegion::usable(32 << 20, 32 << 20)])?;
    let mut p = new_process(&mut machine, &mut alloc, "C", 1)?;
    machine.switch_to(p.id);
    refused(out, &mut p.space)?;
    let code = write_then_execute(out, &mut machine, &mut alloc, &mut p.space)?;
    write_to_code(out, &mut machine, &mut alloc, &mut p.space, code)?;
    let asid = p.space.asid();
    p.space.destroy(machine.ram_mut(), &mut alloc);
    machine.invalidate_space(asid);
    allowed(out, &mut machine, &mut alloc)?;
    writeln!(out, "  frames in use: {} (nothing leaked)", alloc.frames_in_use())?;
    Ok(())
}

/// The request for writable code, refused with nothing reserved.
fn refused(out: &mut impl Write, space: &mut Space) -> Res {
    say(
        out,
        "The seed on PAGE_EXECUTE_READWRITE: it is highly discouraged, and memory that is \
         both writable and executable is generally an indicator of compromise (IoC), because \
         it is uncommon for memory to be both at the same time. Code that an attacker can \
         write and then run from the same page is what an exploit needs. So this space \
         refuses it unless it was created to allow it (W^X, write xor execute: \
         SpaceConfig::allow_write_execute is false by default). Windows is laxer: it grants \
         the request unless the process has turned on its dynamic-code policy (Arbitrary \
         Code Guard).",
    )?;
    writeln!(
        out,
        "  C> VirtualAlloc(NULL, 0x1000, MEM_COMMIT | MEM_RESERVE, PAGE_EXECUTE_READWRITE)"
    )?;
    match space.commit(None, PAGE, Protection::EXECUTE_READ_WRITE) {
        Err(e @ SpaceError::WritableExecutable) => writeln!(out, "  refused: {e}")?,
        other => return Err(format!("expected W^X to refuse, got {other:?}").into()),
    }
    writeln!(out, "  committed pages: {}, nothing was reserved", space.committed_pages())?;
    Ok(())
}

/// Code written into read-write memory, then made execute-read and run. Returns its
/// address.
fn write_then_execute(
    out: &mut impl Write,
    machine: &mut Machine<X86_64>,
    alloc: &mut BitmapAllocator<'_>,
    space: &mut Space,
) -> Res<VirtAddr> {
    say(
        out,
        "What a JIT compiler does under W^X: commit PAGE_READWRITE, write the code, then \
         VirtualProtect it to PAGE_EXECUTE_READ. Asking VirtualProtect for \
         PAGE_EXECUTE_READWRITE is refused the same way.",
    )?;
    let code = space.commit(None, PAGE, RW)?;
    machine.store_value(code, RET, &mut SpaceKernel::new(space, alloc))?;
    writeln!(out, "  C> wrote a `ret` ({RET:#04x}) at {}", full(code.as_u64()))?;
    match space.protect(code, PAGE, Protection::EXECUTE_READ_WRITE, machine.ram_mut(), alloc) {
        Err(e @ SpaceError::WritableExecutable) => {
            writeln!(out, "  C> VirtualProtect(code, 0x1000, PAGE_EXECUTE_READWRITE, &old)")?;
            writeln!(out, "  refused: {e}")?;
        }
        other => return Err(format!("expected W^X to refuse, got {other:?}").into()),
    }
    let (old, flush) =
        space.protect(code, PAGE, Protection::EXECUTE_READ, machine.ram_mut(), alloc)?;
    flush.apply(machine);
    writeln!(out, "  C> VirtualProtect(code, 0x1000, PAGE_EXECUTE_READ, &old): old = {old}")?;
    let mut byte = [0u8; 1];
    machine.fetch(code, &mut byte, &mut SpaceKernel::new(space, alloc))?;
    writeln!(
        out,
        "  C> the CPU fetches {:#04x} from {}: the code runs",
        byte[0],
        full(code.as_u64())
    )?;
    Ok(code)
}

/// A write to the code, now executable, faults: the kernel passes it on.
fn write_to_code(
    out: &mut impl Write,
    machine: &mut Machine<X86_64>,
    alloc: &mut BitmapAllocator<'_>,
    space: &mut Space,
    code: VirtAddr,
) -> Res {
    say(out, "Once executable, the code cannot be written: a write to it is an access violation.")?;
    match machine.store_value(code, 0x90_u8, &mut SpaceKernel::new(space, alloc)) {
        Err(MachineError::Unhandled(raised)) => {
            writeln!(out, "  access violation: {}", space.explain(&raised.fault))?;
            writeln!(out, "  x86 error code {}", error_code(raised.error_code))?;
        }
        other => return Err(format!("expected an access violation, got {other:?}").into()),
    }
    Ok(())
}

/// A space created to allow writable code takes the same request.
fn allowed(
    out: &mut impl Write,
    machine: &mut Machine<X86_64>,
    alloc: &mut BitmapAllocator<'_>,
) -> Res {
    say(
        out,
        "A space created with allow_write_execute, for a process that must have writable \
         code as Windows grants it by default, takes the same request:",
    )?;
    let config = SpaceConfig { allow_write_execute: true, ..SpaceConfig::default() };
    let mut space = Space::new(Layout::X86_64, config, Asid(2), None, machine.ram_mut(), alloc)?;
    let code = space.commit(None, PAGE, Protection::EXECUTE_READ_WRITE)?;
    query(out, "D", &space, code)?;
    space.destroy(machine.ram_mut(), alloc);
    Ok(())
}

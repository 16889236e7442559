//! Chapters 1 to 6: two processes on one machine: one address, two frames; a reservation
//! through its life; faults through first and second chance; a guard page; copy-on-write
//! between processes sharing a section; what the machine counted, and the teardown.

use std::cell::RefCell;
use std::io::{self, Write};

use paging::frame::{BitmapAllocator, FrameAllocator, MemoryRegion};
use paging::space::{FaultChain, Layout, PageState, Protection, Section, SpaceConfig};
use paging::{Access, Asid, Exception, Fault, FaultPolicy, Resolution, Tlb, VirtAddr};
use paging_sim::{Machine, MachineConfig, MachineError, ProcessId, SpaceKernel};
use paging_x86::X86_64;

use crate::print::{dc, full, header, listing, query, say};
use crate::{PAGE, RW, Res, Space};

/// The address both processes of chapter 1 use.
const SAME: u64 = 0x0000_0001_2345_0000;
/// Windows' code for a guard-page exception.
pub const STATUS_GUARD_PAGE_VIOLATION: u32 = 0x8000_0001;

/// A process: its address space and its number on the machine.
pub struct Process {
    pub name: &'static str,
    pub space: Space,
    pub id: ProcessId,
}

/// The machine, the kernel's frame allocator and the tour's two processes.
pub struct World<'b> {
    machine: Machine<X86_64>,
    alloc: BitmapAllocator<'b>,
    a: Process,
    b: Process,
}

/// Chapters 1 to 6, on one machine with 64 MiB of RAM.
pub fn two_processes(out: &mut impl Write) -> Res {
    let mut bitmap = vec![0u64; 128];
    let mut world = boot(out, &mut bitmap)?;
    one_address(out, &mut world)?;
    reserve_commit(out, &mut world)?;
    faults(out, &mut world)?;
    guard_page(out, &mut world)?;
    let shared = copy_on_write(out, &mut world)?;
    counters_and_teardown(out, world, shared)
}

/// The physical address `addr` maps to in `p`, or why it maps nowhere.
fn phys(machine: &mut Machine<X86_64>, p: &Process, addr: VirtAddr) -> String {
    match p.space.page_table(machine.ram_mut()).translate(addr) {
        Ok(t) => format!("process {}: {} -> physical {}", p.name, full(addr.as_u64()), t.phys),
        Err(e) => format!("process {}: {} -> not mapped ({e})", p.name, full(addr.as_u64())),
    }
}

/// The x86 page-fault error code, bit by bit.
pub fn error_code(code: u32) -> String {
    let bit = |b: u32, yes: &'static str, no: &'static str| if code & b != 0 { yes } else { no };
    let mut bits = vec![
        bit(1, "P=1 the page is present", "P=0 the page is not present"),
        bit(2, "W=1 a write", "W=0 not a write"),
        bit(4, "U=1 user mode", "U=0 supervisor mode"),
    ];
    if code & 0x10 != 0 {
        bits.push("I=1 an instruction fetch");
    }
    format!("{code:#x}: {}", bits.join(", "))
}

/// A process with an empty address space.
pub fn new_process(
    machine: &mut Machine<X86_64>,
    alloc: &mut BitmapAllocator<'_>,
    name: &'static str,
    asid: u16,
) -> Res<Process> {
    let space = Space::new(
        Layout::X86_64,
        SpaceConfig::default(),
        Asid(asid),
        None,
        machine.ram_mut(),
        alloc,
    )?;
    let id = machine.add_process(name, space.root(), space.asid());
    Ok(Process { name, space, id })
}

/// The machine, its frame allocator and two processes.
fn boot<'b>(out: &mut impl Write, bitmap: &'b mut [u64]) -> Res<World<'b>> {
    header(out, "1. Two processes, one address")?;
    say(
        out,
        "The machine has 64 MiB of RAM; the kernel hands out frames from the upper 32 MiB. Each \
         process gets its own address space: a root page table and an address-space id (ASID) that \
         tags its TLB entries.",
    )?;
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut alloc = BitmapAllocator::new(bitmap, &[MemoryRegion::usable(32 << 20, 32 << 20)])?;
    writeln!(out, "  frames in use before the tour: {}", alloc.frames_in_use())?;
    let a = new_process(&mut machine, &mut alloc, "A", 1)?;
    let b = new_process(&mut machine, &mut alloc, "B", 2)?;
    for p in [&a, &b] {
        let (root, asid) = (p.space.root(), p.space.asid().0);
        writeln!(out, "  process {}: root table at {root}, ASID {asid}", p.name)?;
    }
    Ok(World { machine, alloc, a, b })
}

/// Chapter 1: the same virtual address in two processes, two frames.
fn one_address(out: &mut impl Write, w: &mut World<'_>) -> Res {
    say(
        out,
        "Both reserve two pages at the same address, 00000001`23450000, commit the first one \
         (the second stays reserved), and write a message there.",
    )?;
    let same = VirtAddr::new(SAME);
    for (p, text) in [(&mut w.a, b"hello from A"), (&mut w.b, b"hello from B")] {
        w.machine.switch_to(p.id);
        p.space.reserve(Some(same), 2 * PAGE, RW)?;
        p.space.commit(Some(same), PAGE, RW)?;
        let mut kernel = SpaceKernel::new(&mut p.space, &mut w.alloc);
        w.machine.store(same, text, &mut kernel)?;
        let mut back = [0u8; 12];
        w.machine.load(same, &mut back, &mut kernel)?;
        writeln!(out, "  process {} reads back \"{}\"", p.name, String::from_utf8_lossy(&back))?;
    }
    say(
        out,
        "Same virtual address, different physical frames: each process's page table maps it to \
         its own frame.",
    )?;
    for p in [&w.a, &w.b] {
        writeln!(out, "  {}", phys(&mut w.machine, p, same))?;
    }
    say(
        out,
        "A debugger reads memory as the process would. A committed page reads as zeros even if \
         it was never touched (the kernel supplies a zeroed frame); a reserved page has no storage \
         at all, so `dc` shows ???????? for it. The second dump of A crosses from the committed \
         page into the reserved one.",
    )?;
    for p in [&mut w.a, &mut w.b] {
        w.machine.switch_to(p.id);
        let mut kernel = SpaceKernel::new(&mut p.space, &mut w.alloc);
        dc(out, &mut w.machine, p.name, same, 8, &mut kernel)?;
    }
    w.machine.switch_to(w.a.id);
    let mut kernel = SpaceKernel::new(&mut w.a.space, &mut w.alloc);
    dc(out, &mut w.machine, "A", same + 0xFE0, 0x10, &mut kernel)?;
    Ok(())
}

/// Prints the listing near `[base, base + 64 KiB)` and the frames in use.
fn step(out: &mut impl Write, w: &World<'_>, base: VirtAddr) -> io::Result<()> {
    let from = VirtAddr::new(base.as_u64().saturating_sub(0x1_0000));
    listing(out, &w.a.space, from, base + 0x2_0000)?;
    writeln!(out, "  frames in use: {}", w.alloc.frames_in_use())
}

/// Chapter 2: a reservation through its life, listed after each step.
fn reserve_commit(out: &mut impl Write, w: &mut World<'_>) -> Res {
    header(out, "2. Reserve, commit, touch, protect, decommit, release")?;
    w.machine.switch_to(w.a.id);
    let base = VirtAddr::new(0x2_0000_0000);
    say(
        out,
        "Process A reserves 64 KiB at 00000002`00000000. Reserving only sets addresses aside: no \
         frame, no page-table entry. Reserved pages have no protection of their own (the Protect \
         column is blank).",
    )?;
    w.a.space.reserve(Some(base), 0x1_0000, RW)?;
    step(out, w, base)?;
    say(
        out,
        "Commit the first four pages. Committing promises storage but still takes no frame: the \
         number of frames in use does not change.",
    )?;
    w.a.space.commit(Some(base), 4 * PAGE, RW)?;
    step(out, w, base)?;
    say(
        out,
        "Touch the second page. The write faults (page not present); the kernel sees a committed \
         page, takes a zeroed frame, maps it, and the write is retried.",
    )?;
    let before = w.alloc.frames_in_use();
    let mut kernel = SpaceKernel::new(&mut w.a.space, &mut w.alloc);
    w.machine.store_value(base + PAGE, 0x1234_5678_u32, &mut kernel)?;
    let after = w.alloc.frames_in_use();
    let tables = after - before - 1;
    writeln!(
        out,
        "  frames in use: {before} -> {after} (one data frame and {tables} new page tables)"
    )?;
    say(
        out,
        "Make that page read-only. VirtualProtect returns the old protection, and the listing \
         splits the committed run in three.",
    )?;
    let (old, flush) = w.a.space.protect(
        base + PAGE,
        PAGE,
        Protection::READ_ONLY,
        w.machine.ram_mut(),
        &mut w.alloc,
    )?;
    flush.apply(&mut w.machine);
    writeln!(out, "  old protection: {old}")?;
    step(out, w, base)?;
    say(
        out,
        "Decommit the four pages: they are reserved again, and the frame goes back, with the page \
         tables that became empty.",
    )?;
    w.a.space.decommit(base, 4 * PAGE, w.machine.ram_mut(), &mut w.alloc)?.apply(&mut w.machine);
    step(out, w, base)?;
    say(out, "Release the reservation from its base: the addresses are free again.")?;
    w.a.space.release(base, w.machine.ram_mut(), &mut w.alloc)?.apply(&mut w.machine);
    step(out, w, base)?;
    Ok(())
}

/// What the kernel decided, in words.
fn verdict(resolution: Resolution) -> String {
    match resolution {
        Resolution::Pass => "it cannot resolve it and passes it on".into(),
        Resolution::Retry => "it maps the page and retries the access".into(),
        Resolution::Notify(e) | Resolution::Raise(e) | Resolution::Fail(e) => {
            format!("it raises {e}")
        }
    }
}

/// Prints what the chain logged, then how the access ended.
fn outcome(
    out: &mut impl Write,
    log: &RefCell<Vec<String>>,
    space: &Space,
    result: Result<(), MachineError>,
) -> Res {
    for line in log.borrow_mut().drain(..) {
        writeln!(out, "  {line}")?;
    }
    match result {
        Ok(()) => writeln!(out, "  the access succeeds")?,
        Err(MachineError::Exception { exception: Exception::AccessViolation { .. }, fault }) => {
            writeln!(out, "  the process is terminated: {}", space.explain(&fault.fault))?;
            writeln!(out, "  x86 error code {}", error_code(fault.error_code))?;
        }
        Err(other) => return Err(other.into()),
    }
    Ok(())
}

/// Process A's pages for chapter 3: no-access (holding data), read-only (present),
/// read-write data (present), and reserved.
fn fault_targets(w: &mut World<'_>) -> Res<[VirtAddr; 4]> {
    let World { machine, alloc, a, .. } = w;
    machine.switch_to(a.id);
    let hidden = a.space.commit(None, PAGE, RW)?;
    let read_only = a.space.commit(None, PAGE, Protection::READ_ONLY)?;
    let data = a.space.commit(None, PAGE, RW)?;
    let reserved = a.space.reserve(None, PAGE, RW)?;
    let mut kernel = SpaceKernel::new(&mut a.space, alloc);
    machine.store(hidden, b"secret", &mut kernel)?;
    machine.load_value::<u8, _>(read_only, &mut kernel)?;
    machine.store_value(data, 0xC3_u8, &mut kernel)?; // an x86 `ret`
    let (_, flush) =
        a.space.protect(hidden, PAGE, Protection::NO_ACCESS, machine.ram_mut(), alloc)?;
    flush.apply(machine);
    Ok([hidden, read_only, data, reserved])
}

/// One access of `kind` at `addr`.
fn touch<P: FaultPolicy<Machine<X86_64>>>(
    machine: &mut Machine<X86_64>,
    kind: Access,
    addr: VirtAddr,
    policy: &mut P,
) -> Result<(), MachineError> {
    match kind {
        Access::Read => machine.load(addr, &mut [0; 4], policy),
        Access::Write => machine.store(addr, &[1; 4], policy),
        Access::Execute => machine.fetch(addr, &mut [0; 1], policy),
    }
}

/// Chapter 3: faults through the chain of kernel, process handler, termination.
fn faults(out: &mut impl Write, w: &mut World<'_>) -> Res {
    header(out, "3. Faults: first chance, second chance, termination")?;
    say(
        out,
        "A page fault goes first to the kernel (first chance), which resolves what the books of \
         the address space explain: demand-zero, guard pages, copy-on-write. Anything else goes to \
         the process's own handler (second chance). If that declines too, the process ends with an \
         access violation. Here each case would end process A; the machine only reports it, and \
         the tour goes on with A.",
    )?;
    let [hidden, read_only, data, reserved] = fault_targets(w)?;
    let log = RefCell::new(Vec::new());
    let shared = RefCell::new((&mut w.a.space, &mut w.alloc));
    let kernel = |m: &mut Machine<X86_64>, f: &Fault| {
        let (space, alloc) = &mut *shared.borrow_mut();
        let (resolution, flush) = space.resolve(f, m.ram_mut(), &mut **alloc);
        flush.apply(m);
        log.borrow_mut()
            .push(format!("first chance:  the kernel gets \"{f}\"; {}", verdict(resolution)));
        resolution
    };
    let handler = |_: &mut Machine<X86_64>, f: &Fault| {
        let (space, _) = &mut *shared.borrow_mut();
        let reserved = space.query(f.addr).is_ok_and(|r| r.state == PageState::Reserved);
        let fixed = reserved && space.commit(Some(f.addr), 1, RW).is_ok();
        log.borrow_mut().push(format!(
            "second chance: the process's handler is called: {}",
            if fixed { "it commits the reserved page and retries" } else { "it declines" }
        ));
        if fixed { Resolution::Retry } else { Resolution::Pass }
    };
    let mut chain = FaultChain::new(kernel, handler);
    let cases = [
        (
            "Read a page that holds data but was made PAGE_NOACCESS: its frame is kept, hidden in \
          a non-present entry.",
            Access::Read,
            hidden,
        ),
        (
            "Write to a PAGE_READONLY page, present since it was read once.",
            Access::Write,
            read_only,
        ),
        (
            "Jump into PAGE_READWRITE data: an instruction fetch from a no-execute page (data \
          execution prevention).",
            Access::Execute,
            data,
        ),
        (
            "Read a reserved page. The kernel cannot help, but this process's handler commits \
          reserved pages on demand. The retried access faults once more, now on a committed \
          page, and the kernel gives it a zeroed frame.",
            Access::Read,
            reserved,
        ),
    ];
    for (text, kind, addr) in cases {
        say(out, text)?;
        let result = touch(&mut w.machine, kind, addr, &mut chain);
        outcome(out, &log, shared.borrow().0, result)?;
    }
    writeln!(out, "  the process's handler was called {} times", chain.second_chances)?;
    Ok(())
}

/// Chapter 4: a guard page fires once.
fn guard_page(out: &mut impl Write, w: &mut World<'_>) -> Res {
    header(out, "4. A guard page fires once")?;
    say(
        out,
        "A thread's stack, laid out as Windows does it: a 64 KiB reservation, the top three pages \
         committed, and below them one committed page marked PAGE_GUARD. The stack grows down into \
         the guard page.",
    )?;
    let World { machine, alloc, a, .. } = w;
    machine.switch_to(a.id);
    let stack = a.space.reserve(None, 0x1_0000, RW)?;
    let guard = stack + 0xC000;
    a.space.commit(Some(stack + 0xD000), 3 * PAGE, RW)?;
    a.space.commit(Some(guard), PAGE, RW.guard())?;
    listing(out, &a.space, stack, stack + 0x1_0000)?;
    say(
        out,
        &format!(
            "The first touch of the guard page raises STATUS_GUARD_PAGE_VIOLATION \
             ({STATUS_GUARD_PAGE_VIOLATION:#010x}). The kernel clears the guard as it raises it: a \
             one-time warning, which Windows uses to grow the stack."
        ),
    )?;
    let slot = guard + 0xFF8;
    match machine.store_value(slot, 0xABCD_u64, &mut SpaceKernel::new(&mut a.space, alloc)) {
        Err(MachineError::Exception { exception: e @ Exception::GuardPage { .. }, .. }) => {
            writeln!(out, "  guard page exception {STATUS_GUARD_PAGE_VIOLATION:#010x}: {e}")?;
        }
        other => return Err(format!("expected a guard-page exception, got {other:?}").into()),
    }
    query(out, "A", &a.space, guard)?;
    say(
        out,
        "The guard is gone: the same write, tried again, goes through (the page is materialised \
         as demand-zero memory).",
    )?;
    let mut kernel = SpaceKernel::new(&mut a.space, alloc);
    machine.store_value(slot, 0xABCD_u64, &mut kernel)?;
    let value: u64 = machine.load_value(slot, &mut kernel)?;
    writeln!(out, "  wrote and read back {value:#x} at {}", full(slot.as_u64()))?;
    say(
        out,
        "A kernel that grows stacks would now commit the next page down as the new guard page:",
    )?;
    a.space.commit(Some(stack + 0xB000), PAGE, RW.guard())?;
    listing(out, &a.space, stack, stack + 0x1_0000)?;
    Ok(())
}

/// Chapter 5: a section shared read-write by A and write-copy by B.
fn copy_on_write(out: &mut impl Write, w: &mut World<'_>) -> Res<(Section, VirtAddr, VirtAddr)> {
    header(out, "5. Copy-on-write between two processes sharing a section")?;
    say(
        out,
        "A section is memory that several processes can map (Windows CreateFileMapping). Process A \
         maps a view PAGE_READWRITE and writes to it; process B maps a view PAGE_WRITECOPY: B \
         reads the same frame until it writes.",
    )?;
    let World { machine, alloc, a, b } = w;
    let section = Section::create(1, machine.ram_mut(), alloc)?;
    writeln!(out, "  section: 1 page, its frame taken on the first touch of a view")?;
    let view_a = a.space.map_view(&section, None, 0, 1, RW, machine.ram_mut())?;
    let view_b =
        b.space.map_view(&section, None, 0, 1, Protection::WRITE_COPY, machine.ram_mut())?;
    machine.switch_to(a.id);
    let mut kernel_a = SpaceKernel::new(&mut a.space, alloc);
    machine.store(view_a, b"A wrote this", &mut kernel_a)?;
    dc(out, machine, "A", view_a, 4, &mut kernel_a)?;
    machine.switch_to(b.id);
    dc(out, machine, "B", view_b, 4, &mut SpaceKernel::new(&mut b.space, alloc))?;
    writeln!(out, "  {}\n  {}", phys(machine, a, view_a), phys(machine, b, view_b))?;
    say(
        out,
        "B writes. The page is write-copy: the kernel copies it to a fresh frame, maps the copy \
         read-write in B alone, and the write goes to the copy.",
    )?;
    let mut kernel_b = SpaceKernel::new(&mut b.space, alloc);
    machine.store(view_b, b"B wrote this", &mut kernel_b)?;
    dc(out, machine, "B", view_b, 4, &mut kernel_b)?;
    writeln!(out, "  {}\n  {}", phys(machine, a, view_a), phys(machine, b, view_b))?;
    query(out, "B", &b.space, view_b)?;
    say(out, "A still sees its own data:")?;
    machine.switch_to(a.id);
    dc(out, machine, "A", view_a, 4, &mut SpaceKernel::new(&mut a.space, alloc))?;
    Ok((section, view_a, view_b))
}

/// Chapter 6: the counters, then everything given back.
fn counters_and_teardown(
    out: &mut impl Write,
    w: World<'_>,
    shared: (Section, VirtAddr, VirtAddr),
) -> Res {
    header(out, "6. What the machine counted, and cleaning up")?;
    let World { mut machine, mut alloc, mut a, mut b } = w;
    let costs = machine.config().costs;
    say(
        out,
        &format!(
            "The machine counts every access, TLB lookup, page walk and fault, and charges cycles \
             by a simple cost model (a TLB hit {}, each table entry a walk reads {}, a fault {}):",
            costs.tlb_hit, costs.walk_read, costs.fault
        ),
    )?;
    for line in machine.counters().to_string().lines() {
        writeln!(out, "  {line}")?;
    }
    writeln!(out, "  frames in use: {}", alloc.frames_in_use())?;
    say(
        out,
        "Now tear it all down: unmap both views (B's private copy goes back), close the section, \
         destroy both address spaces (their memory and page tables, the roots included), and drop \
         their entries from the TLB.",
    )?;
    let (section, view_a, view_b) = shared;
    for (p, view) in [(&mut a, view_a), (&mut b, view_b)] {
        machine.switch_to(p.id);
        p.space.unmap_view(view, machine.ram_mut(), &mut alloc)?.apply(&mut machine);
    }
    for p in [a, b] {
        let asid = p.space.asid();
        p.space.destroy(machine.ram_mut(), &mut alloc);
        machine.invalidate_space(asid);
    }
    section.close(machine.ram(), &mut alloc).map_err(|(_, e)| e)?;
    let left = alloc.frames_in_use();
    let verdict = if left == 0 { "as before the tour: nothing leaked" } else { "LEAKED" };
    writeln!(out, "  frames in use: {left} ({verdict})")?;
    Ok(())
}

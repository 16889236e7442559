//! The tour: virtual memory on the simulated machine, narrated step by step.
//!
//! `cargo run --release --bin tour` walks through two processes sharing one address,
//! reserve and commit, faults with first and second chance, a guard page, copy-on-write
//! between processes, and the machine's counters; then, on a machine with too little RAM,
//! pages going to the page file and coming back (hard and soft faults), the commit limit,
//! and Task Manager's counters. It prints dumps in the style of WinDbg's `dc`, region
//! listings in the style of `!address` and page-table entries in the style of `!pte`.

use std::cell::RefCell;
use std::error::Error;
use std::io::{self, Write};

use paging::frame::{BitmapAllocator, FrameAllocator, MemoryRegion};
use paging::pager::policy::{AnyPolicy, PolicyKind, PolicySlot, slots_needed};
use paging::pager::{
    FrameList, FrameRecord, PAGE_BYTES, Pager, PagerCounters, PagerStorage, Paging,
};
use paging::space::{
    AddressSpace, FaultChain, Layout, PageState, Protection, RegionInfo, Section, SpaceConfig,
    SpaceError,
};
use paging::table::Lookup;
use paging::{
    Access, Asid, Exception, Fault, FaultPolicy, PageFlags, PhysAddr, Resolution, SoftwarePte, Tlb,
    VirtAddr,
};
use paging_sim::{
    Counters, DiskCost, Machine, MachineConfig, MachineError, PagedKernel, ProcessId, Ram, SimDisk,
    SpaceKernel,
};
use paging_x86::X86_64;

type Space = AddressSpace<X86_64>;
type Res<T = ()> = Result<T, Box<dyn Error>>;

const PAGE: u64 = 0x1000;
/// The address both processes of chapter 1 use.
const SAME: u64 = 0x0000_0001_2345_0000;
/// Windows' code for a guard-page exception.
const STATUS_GUARD_PAGE_VIOLATION: u32 = 0x8000_0001;
const RW: Protection = Protection::READ_WRITE;
/// The tour's first words.
const INTRO: &str = "A tour of virtual memory on a simulated x86-64 machine. Every load, store \
    and instruction fetch below goes through a simulated MMU and TLB that walk real page tables \
    in simulated RAM.";

/// A process: its address space and its number on the machine.
struct Process {
    name: &'static str,
    space: Space,
    id: ProcessId,
}

/// The machine, the kernel's frame allocator and the tour's two processes.
struct World<'b> {
    machine: Machine<X86_64>,
    alloc: BitmapAllocator<'b>,
    a: Process,
    b: Process,
}

fn main() -> Res {
    run(&mut io::stdout().lock())
}

/// The whole tour, written to `out`.
fn run(out: &mut impl Write) -> Res {
    writeln!(out, "{}", wrap(INTRO))?;
    let mut bitmap = vec![0u64; 128];
    let mut world = boot(out, &mut bitmap)?;
    one_address(out, &mut world)?;
    reserve_commit(out, &mut world)?;
    faults(out, &mut world)?;
    guard_page(out, &mut world)?;
    let shared = copy_on_write(out, &mut world)?;
    counters_and_teardown(out, world, shared)?;
    swapping(out)
}

// ---- printing helpers ----

/// A chapter's title.
fn header(out: &mut impl Write, title: &str) -> io::Result<()> {
    writeln!(out, "\n== {title} ==")
}

/// Narration: a paragraph after a blank line.
fn say(out: &mut impl Write, text: &str) -> io::Result<()> {
    writeln!(out, "\n{}", wrap(text))
}

/// `text` wrapped at 90 columns.
fn wrap(text: &str) -> String {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("never empty");
        if line.is_empty() {
            line.push_str(word);
        } else if line.len() + word.len() < 90 {
            line.push(' ');
            line.push_str(word);
        } else {
            lines.push(word.to_string());
        }
    }
    lines.join("\n")
}

/// An address as WinDbg prints a 64-bit one in dumps: `00000001`23450000`.
fn full(addr: u64) -> String {
    format!("{:08x}`{:08x}", addr >> 32, addr & 0xFFFF_FFFF)
}

/// An address as `!address` prints it: `1`23450000`.
fn short(addr: u64) -> String {
    format!("{:x}`{:08x}", addr >> 32, addr & 0xFFFF_FFFF)
}

/// WinDbg's `dc`: `dwords` double words from `addr` (16-aligned), loaded in user mode by
/// the running process through `policy`; a line whose page fault nobody resolves shows
/// `????????`.
fn dc<P: FaultPolicy<Machine<X86_64>>>(
    out: &mut impl Write,
    machine: &mut Machine<X86_64>,
    who: &str,
    addr: VirtAddr,
    dwords: u64,
    policy: &mut P,
) -> Res {
    writeln!(out, "  {who}> dc {} L{dwords:x}", full(addr.as_u64()))?;
    for line in (addr.as_u64()..addr.as_u64() + dwords * 4).step_by(16) {
        let mut bytes = [0u8; 16];
        let (words, ascii) = match machine.load(VirtAddr::new(line), &mut bytes, policy) {
            Ok(()) => (
                bytes
                    .chunks(4)
                    .map(|d| format!("{:08x}", u32::from_le_bytes([d[0], d[1], d[2], d[3]])))
                    .collect(),
                bytes
                    .iter()
                    .map(|&c| if c == b' ' || c.is_ascii_graphic() { c as char } else { '.' })
                    .collect(),
            ),
            Err(MachineError::Unhandled(_)) => (vec!["????????".to_string(); 4], "?".repeat(16)),
            Err(other) => return Err(other.into()),
        };
        writeln!(out, "  {}  {}  {ascii}", full(line), words.join(" "))?;
    }
    Ok(())
}

/// `!address` restricted to the regions that meet `[from, to)`.
fn listing(out: &mut impl Write, space: &Space, from: VirtAddr, to: VirtAddr) -> io::Result<()> {
    let header = [
        "BaseAddress",
        "EndAddress+1",
        "RegionSize",
        "State",
        "Protect",
        "Type",
        "AllocationBase",
        "AllocationProtect",
    ];
    let near = space.regions().filter(|r| r.end() > from && r.base < to);
    let rows: Vec<[String; 8]> =
        std::iter::once(header.map(String::from)).chain(near.map(row)).collect();
    let width = |c: usize| rows.iter().map(|r| r[c].len()).max().unwrap_or(0);
    for row in &rows {
        let cells = row.iter().enumerate().map(|(c, s)| match c {
            0..=2 | 6 => format!("{s:>w$}", w = width(c)),
            _ => format!("{s:<w$}", w = width(c)),
        });
        writeln!(out, "  {}", cells.collect::<Vec<_>>().join("  ").trim_end())?;
    }
    Ok(())
}

/// One line of `!address`.
fn row(r: RegionInfo) -> [String; 8] {
    let text = |s: Option<String>| s.unwrap_or_default();
    [
        short(r.base.as_u64()),
        short(r.end().as_u64()),
        short(r.size),
        r.state.to_string(),
        text(r.protect.map(|p| p.to_string())),
        text(r.kind.map(|k| k.to_string())),
        text(r.allocation_base.map(|a| short(a.as_u64()))),
        text(r.allocation_protect.map(|p| p.to_string())),
    ]
}

/// `!address addr`: one region in detail, with the Windows values.
fn query(out: &mut impl Write, who: &str, space: &Space, addr: VirtAddr) -> Res {
    let r = space.query(addr)?;
    writeln!(out, "  {who}> !address {}", full(addr.as_u64()))?;
    writeln!(out, "  Base Address:        {}", full(r.base.as_u64()))?;
    writeln!(out, "  End Address:         {}", full(r.end().as_u64()))?;
    writeln!(out, "  Region Size:         {}", full(r.size))?;
    writeln!(out, "  State:               {:08x}  {}", r.state.windows(), r.state)?;
    if let Some(p) = r.protect {
        writeln!(out, "  Protect:             {:08x}  {p}", p.windows())?;
    }
    if let Some(k) = r.kind {
        writeln!(out, "  Type:                {:08x}  {k}", k.windows())?;
    }
    if let (Some(base), Some(p)) = (r.allocation_base, r.allocation_protect) {
        writeln!(out, "  Allocation Base:     {}", full(base.as_u64()))?;
        writeln!(out, "  Allocation Protect:  {:08x}  {p}", p.windows())?;
    }
    Ok(())
}

/// The physical address `addr` maps to in `p`, or why it maps nowhere.
fn phys(machine: &mut Machine<X86_64>, p: &Process, addr: VirtAddr) -> String {
    match p.space.page_table(machine.ram_mut()).translate(addr) {
        Ok(t) => format!("process {}: {} -> physical {}", p.name, full(addr.as_u64()), t.phys),
        Err(e) => format!("process {}: {} -> not mapped ({e})", p.name, full(addr.as_u64())),
    }
}

/// The x86 page-fault error code, bit by bit.
fn error_code(code: u32) -> String {
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

// ---- the chapters ----

/// A process with an empty address space.
fn new_process(
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

// ---- chapter 7: too little RAM ----

/// Frames chapter 7's pager has for user pages: the seed's example needs two.
const USER_FRAMES: u32 = 2;
/// Where those frames start (the kernel's page tables come from the upper 32 MiB).
const USER_FRAMES_BASE: u64 = 16 << 20;
/// Slots of chapter 7's page file.
const PAGE_FILE_SLOTS: u32 = 6;
/// Where process P1 of chapter 7 keeps its two pages, and P2 its one.
const P1_PAGES: u64 = 0x0000_0001_0000_0000;
const P2_PAGES: u64 = 0x0000_0002_0000_0000;
/// Windows' code for a commit past the commit limit.
const ERROR_COMMITMENT_LIMIT: u32 = 1455;

/// Chapter 7's pager: the simulated machine's disk as its page file, the clock policy.
type SwapPager<'s> = Pager<'s, X86_64, SimDisk, AnyPolicy<'s>>;

/// The storage a pager keeps its books in (a kernel sets it aside at boot).
struct PagerBooks {
    records: Vec<FrameRecord>,
    slot_counts: Vec<u8>,
    cluster: Vec<[u8; PAGE_BYTES]>,
    policy: Vec<PolicySlot>,
}

impl PagerBooks {
    /// Books for `frames` frames and `slots` slots, writing clusters of up to 4 pages.
    fn new(frames: u32, slots: u32) -> Self {
        Self {
            records: vec![FrameRecord::FREE; frames as usize],
            slot_counts: vec![0; slots as usize],
            cluster: vec![[0; PAGE_BYTES]; 4],
            policy: vec![PolicySlot::EMPTY; slots_needed(frames)],
        }
    }

    /// A pager over these books, its frames from `base`, paging to `disk` by the clock.
    fn pager(&mut self, base: u64, disk: SimDisk) -> Res<SwapPager<'_>> {
        let frames = self.records.len() as u32;
        let policy = AnyPolicy::new(PolicyKind::Clock, &mut self.policy, frames)?;
        let storage = PagerStorage {
            records: &mut self.records,
            base: PhysAddr::new(base),
            slot_counts: &mut self.slot_counts,
            cluster: &mut self.cluster,
        };
        Ok(Pager::new(storage, disk, policy)?)
    }
}

/// Chapter 7's machine: two processes whose pages come from a pager with too little RAM.
struct Small<'b, 's> {
    machine: Machine<X86_64>,
    tables: BitmapAllocator<'b>,
    pager: SwapPager<'s>,
    procs: [Process; 2],
}

/// Chapter 7: the seed's example on a machine with two frames for user pages.
fn swapping(out: &mut impl Write) -> Res {
    header(out, "7. Too little RAM: pages go to the page file and come back")?;
    let mut books = PagerBooks::new(USER_FRAMES, PAGE_FILE_SLOTS);
    let mut bitmap = vec![0u64; 128];
    let mut s = boot_small(out, &mut bitmap, &mut books)?;
    let page2 = fill_ram(out, &mut s)?;
    trim_and_write(out, &mut s, page2)?;
    let p2_page = second_process(out, &mut s, page2)?;
    hard_fault(out, &mut s, page2)?;
    soft_fault(out, &mut s, p2_page)?;
    commit_refused(out, &mut s)?;
    task_manager(out, &s)?;
    swap_teardown(out, s)
}

/// A machine whose user pages come from a pager of two frames, and two processes.
fn boot_small<'b, 's>(
    out: &mut impl Write,
    bitmap: &'b mut [u64],
    books: &'s mut PagerBooks,
) -> Res<Small<'b, 's>> {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut tables = BitmapAllocator::new(bitmap, &[MemoryRegion::usable(32 << 20, 32 << 20)])?;
    let mut pager = books.pager(USER_FRAMES_BASE, SimDisk::new(PAGE_FILE_SLOTS))?;
    let p1 = new_process(&mut machine, &mut tables, "P1", 1)?;
    let p2 = new_process(&mut machine, &mut tables, "P2", 2)?;
    for p in [&p1, &p2] {
        pager.attach(p.space.root(), p.space.asid(), 0, u32::MAX)?;
    }
    let perf = pager.performance();
    say(
        out,
        &format!(
            "So far every page had a frame of its own. Now a new machine with too little RAM: \
             a pager with only {} frames for user pages (from {}) and a page file of \
             {PAGE_FILE_SLOTS} slots on a simulated disk; page tables still come from the \
             kernel's allocator. The pager picks the pages to take away with the clock \
             algorithm (second chance on the Accessed bit). What can be committed is RAM plus \
             page file, less one slot the pager holds back (with every frame dirty and every \
             slot full, a page on disk could not come back): CommitLimit = {} + \
             {PAGE_FILE_SLOTS} - 1 = {} pages.",
            perf.physical_total,
            PhysAddr::new(USER_FRAMES_BASE),
            perf.physical_total,
            perf.commit_limit
        ),
    )?;
    Ok(Small { machine, tables, pager, procs: [p1, p2] })
}

/// `dc` as process `who`, its faults resolved by the pager.
fn dc_as(out: &mut impl Write, s: &mut Small<'_, '_>, who: usize, addr: u64, dwords: u64) -> Res {
    let Small { machine, tables, pager, procs } = s;
    let p = &mut procs[who];
    machine.switch_to(p.id);
    let mut kernel = PagedKernel::new(&mut p.space, pager, tables);
    dc(out, machine, p.name, VirtAddr::new(addr), dwords, &mut kernel)
}

/// A store of `bytes` at `addr` by process `who`, its faults resolved by the pager.
fn store_as(s: &mut Small<'_, '_>, who: usize, addr: u64, bytes: &[u8]) -> Res {
    let Small { machine, tables, pager, procs } = s;
    let p = &mut procs[who];
    machine.switch_to(p.id);
    let mut kernel = PagedKernel::new(&mut p.space, pager, tables);
    Ok(machine.store(VirtAddr::new(addr), bytes, &mut kernel)?)
}

/// Reserves and commits `pages` pages at `addr` for process `who`, charged to the pager.
fn commit_as(
    s: &mut Small<'_, '_>,
    who: usize,
    addr: Option<u64>,
    pages: u64,
) -> Result<VirtAddr, SpaceError> {
    let Small { machine, tables, pager, procs } = s;
    let space = &mut procs[who].space;
    let (_, mut tlb) = machine.split();
    let mut paging = pager.with(tables, &mut tlb);
    space.commit_with(addr.map(VirtAddr::new), pages * PAGE, RW, &mut paging)
}

/// WinDbg's `!pte`, in short: the entry that maps `addr` in process `who`, raw and
/// decoded, with the list its frame is on when it is in transition.
fn pte(out: &mut impl Write, s: &mut Small<'_, '_>, who: usize, addr: u64) -> Res {
    let p = &s.procs[who];
    let addr = VirtAddr::new(addr);
    let table = s.machine.page_table_at(p.space.root());
    let raw = table.walk(addr).last().map_or(0, |step| step.raw);
    let meaning = match table.lookup(addr)? {
        Lookup::Mapped(t) => {
            let bits = [(PageFlags::ACCESSED, ", Accessed"), (PageFlags::DIRTY, ", Dirty")];
            let set = bits.iter().filter(|(flag, _)| t.flags.contains(*flag));
            format!("valid, frame {}{}", t.frame, set.map(|(_, name)| *name).collect::<String>())
        }
        Lookup::Payload { payload, .. } => match SoftwarePte::decode(payload)? {
            SoftwarePte::Transition { frame, .. } => {
                format!("transition, frame {frame} ({} list)", list_of(&s.pager, frame))
            }
            SoftwarePte::PagingFile { slot } => format!("paging file, {slot}"),
            other => format!("{other:?}"),
        },
        Lookup::Unmapped => "zero (not touched yet)".into(),
    };
    writeln!(out, "  {}> !pte {}  contains {}  {meaning}", p.name, full(addr.as_u64()), full(raw))?;
    Ok(())
}

/// The frame list `frame` is on, by its Windows name.
fn list_of(pager: &SwapPager<'_>, frame: PhysAddr) -> String {
    let db = pager.database();
    let list = db.index_of(frame).and_then(|i| db.record(i)).map(FrameRecord::list);
    list.map_or_else(|| "no".into(), |l| format!("{l:?}").to_lowercase())
}

/// The pager's handle as chapter 7 uses it.
type SwapPaging<'h, 's> = Paging<'h, 's, X86_64, SimDisk, AnyPolicy<'s>>;

/// Runs `op` with the pager's handle outside any fault: the memory manager's own work.
fn manage<'s, T>(
    s: &mut Small<'_, 's>,
    op: impl FnOnce(&mut SwapPaging<'_, 's>, &mut Ram) -> T,
) -> T {
    let (ram, mut tlb) = s.machine.split();
    let mut paging = s.pager.with(&mut s.tables, &mut tlb);
    op(&mut paging, ram)
}

/// One line on the frames and the page file.
fn memory_line(out: &mut impl Write, s: &Small<'_, '_>) -> io::Result<()> {
    let db = s.pager.database();
    let (slots, disk) = (s.pager.slots().used_slots(), s.pager.store().counters());
    writeln!(
        out,
        "  frames: {} active, {} modified, {} standby, {} free (available {})   page file: {slots} \
         of {PAGE_FILE_SLOTS} slots used",
        db.count(FrameList::Active),
        db.count(FrameList::Modified),
        db.count(FrameList::Standby),
        db.count(FrameList::Free) + db.count(FrameList::Zeroed),
        s.pager.performance().physical_available,
    )?;
    writeln!(out, "  disk: pages read {}, pages written {}", disk.reads, disk.writes)
}

/// P1 fills the RAM with two pages; returns the second page's address.
fn fill_ram(out: &mut impl Write, s: &mut Small<'_, '_>) -> Res<u64> {
    say(
        out,
        "The seed's example. Process P1 commits two pages at 00000001`00000000 and writes to \
         both. Each first touch is a demand-zero fault, and the pager gives the page one of its \
         two frames: the page joins P1's working set, and its PTE is valid. RAM is full: no \
         frame is free, zeroed or on standby, the frames Windows counts as available \
         (PhysicalAvailable).",
    )?;
    s.procs[0].space.reserve(Some(VirtAddr::new(P1_PAGES)), 2 * PAGE, RW)?;
    commit_as(s, 0, Some(P1_PAGES), 2)?;
    let page2 = P1_PAGES + PAGE;
    store_as(s, 0, P1_PAGES, b"P1's first page")?;
    store_as(s, 0, page2, b"P1's second page")?;
    for addr in [P1_PAGES, page2] {
        pte(out, s, 0, addr)?;
    }
    memory_line(out, s)?;
    Ok(page2)
}

/// The working-set manager trims P1's second page and the writer writes it out.
fn trim_and_write(out: &mut impl Write, s: &mut Small<'_, '_>, page2: u64) -> Res {
    say(
        out,
        "Process P2 is about to need a page. When memory runs low, Windows' working-set manager \
         takes pages that have not been used lately out of working sets. Its aging pass clears \
         the Accessed bit of every resident page; then P1 reads its first page again, and the \
         MMU sets that page's bit.",
    )?;
    let aged = manage(s, |paging, ram| paging.age(ram));
    writeln!(out, "  aging pass: {aged} Accessed bits cleared")?;
    dc_as(out, s, 0, P1_PAGES, 4)?;
    say(
        out,
        "Then it trims one page of P1. The clock hand finds the first page referenced (it \
         clears the bit: a second chance) and the second page not: that page leaves the working \
         set. Its PTE becomes a transition entry: not valid, but it still names the frame, \
         which still holds the data. The page is dirty and the page file has no copy of it, so \
         the frame goes to the modified list.",
    )?;
    let root = s.procs[0].space.root();
    manage(s, |paging, ram| paging.trim(root, 1, ram));
    pte(out, s, 0, page2)?;
    memory_line(out, s)?;
    say(
        out,
        "The modified page writer writes it to the page file in one write request, and moves \
         the frame to the standby list: clean now, and still holding the page. The PTE does not \
         change.",
    )?;
    manage(s, |paging, ram| paging.write_modified(ram));
    pte(out, s, 0, page2)?;
    memory_line(out, s)?;
    Ok(())
}

/// P2 takes the standby frame; P1's second page is now only in the page file. Returns
/// P2's page.
fn second_process(out: &mut impl Write, s: &mut Small<'_, '_>, page2: u64) -> Res<u64> {
    say(
        out,
        "P2 commits its one page at 00000002`00000000 and writes to it. The demand-zero fault \
         needs a frame; none is free, so the pager repurposes the oldest standby frame. P1's \
         second page now lives only in the page file: its PTE becomes a paging-file entry. The \
         frame is zeroed and mapped for P2.",
    )?;
    s.procs[1].space.reserve(Some(VirtAddr::new(P2_PAGES)), PAGE, RW)?;
    commit_as(s, 1, Some(P2_PAGES), 1)?;
    store_as(s, 1, P2_PAGES, b"P2's only page")?;
    pte(out, s, 0, page2)?;
    pte(out, s, 1, P2_PAGES)?;
    memory_line(out, s)?;
    Ok(P2_PAGES)
}

/// What the pager and the machine counted before an access.
struct Before {
    pager: PagerCounters,
    machine: Counters,
}

impl Before {
    /// The counters now.
    fn take(s: &Small<'_, '_>) -> Self {
        Self { pager: s.pager.counters(), machine: *s.machine.counters() }
    }

    /// What the access since cost: faults, pages moved, cycles.
    fn report(&self, out: &mut impl Write, s: &Small<'_, '_>) -> io::Result<()> {
        let (p, m) = (s.pager.counters(), s.machine.counters());
        writeln!(
            out,
            "  this access: hard faults {}, soft faults {}, pages read {}, pages written {}",
            p.hard_faults - self.pager.hard_faults,
            p.soft_faults - self.pager.soft_faults,
            p.pages_read - self.pager.pages_read,
            p.pages_written - self.pager.pages_written,
        )?;
        let (cycles, io) = (m.cycles - self.machine.cycles, m.io_cycles - self.machine.io_cycles);
        writeln!(
            out,
            "  the machine charged {cycles} cycles for it, {io} of them waiting for the disk"
        )
    }
}

/// P1 touches its second page: a hard fault reads it back.
fn hard_fault(out: &mut impl Write, s: &mut Small<'_, '_>, page2: u64) -> Res {
    let disk = DiskCost::default();
    say(
        out,
        &format!(
            "The seed's ending: P1 reads its second page again. Its PTE names slot 0 of the page \
             file: a hard fault. The pager needs a frame, and both are in working sets, so it \
             trims a page first. The clock hand stands at P1's first page, whose Accessed bit it \
             cleared on its last pass; unused since, that page is the victim. It is dirty, so \
             the writer writes it (to slot 1) before its frame is repurposed. Then slot 0 is \
             read into the frame, the PTE is made valid, and the load is retried. The simulated \
             disk charges {} cycles a request and {} a page; the fault itself costs {}.",
            disk.read,
            disk.page,
            s.machine.config().costs.fault
        ),
    )?;
    let before = Before::take(s);
    dc_as(out, s, 0, page2, 4)?;
    before.report(out, s)?;
    for (who, addr) in [(0, P1_PAGES), (0, page2), (1, P2_PAGES)] {
        pte(out, s, who, addr)?;
    }
    memory_line(out, s)?;
    Ok(())
}

/// P2's page is trimmed and written, and comes back from standby without I/O.
fn soft_fault(out: &mut impl Write, s: &mut Small<'_, '_>, page: u64) -> Res {
    say(
        out,
        "Now a soft fault. The working-set manager empties P2's working set (Windows \
         EmptyWorkingSet); its dirty page goes to the modified list, and the writer writes it \
         (to slot 2) and puts its frame on standby. The PTE is in transition.",
    )?;
    let root = s.procs[1].space.root();
    manage(s, |paging, ram| paging.empty_working_set(root, ram));
    manage(s, |paging, ram| paging.write_modified(ram));
    pte(out, s, 1, page)?;
    memory_line(out, s)?;
    say(
        out,
        "P2 reads its page before anyone needs the frame. The frame still holds the page: the \
         pager takes it back from the standby list into P2's working set, with no disk read. \
         The page stays clean (no Dirty bit) and keeps its copy in slot 2, so if it is trimmed \
         again unchanged, it goes straight to standby with no write.",
    )?;
    let before = Before::take(s);
    dc_as(out, s, 1, page, 4)?;
    before.report(out, s)?;
    pte(out, s, 1, page)?;
    memory_line(out, s)?;
    Ok(())
}

/// A commit past the commit limit is refused.
fn commit_refused(out: &mut impl Write, s: &mut Small<'_, '_>) -> Res {
    let perf = s.pager.performance();
    say(
        out,
        &format!(
            "P2 asks for 64 KiB (16 pages) more. CommitTotal is {}, CommitLimit {}: only {} more \
             pages can be promised, RAM and page file together. The commit is refused with \
             ERROR_COMMITMENT_LIMIT ({ERROR_COMMITMENT_LIMIT}), and nothing is reserved.",
            perf.commit_total,
            perf.commit_limit,
            perf.commit_limit - perf.commit_total
        ),
    )?;
    match commit_as(s, 1, None, 16) {
        Err(e @ SpaceError::CommitLimit { .. }) => {
            let code = e.windows_error().unwrap_or_default();
            writeln!(
                out,
                "  P2> VirtualAlloc(NULL, 0x10000, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE)"
            )?;
            writeln!(out, "  fails with error {code} (ERROR_COMMITMENT_LIMIT): {e}")?;
        }
        other => return Err(format!("expected the commit limit, got {other:?}").into()),
    }
    writeln!(out, "  CommitTotal still {}", s.pager.performance().commit_total)?;
    Ok(())
}

/// Task Manager's view: the processes' counters and the system's.
fn task_manager(out: &mut impl Write, s: &Small<'_, '_>) -> Res {
    say(
        out,
        "What Task Manager would show: its Details tab (sizes in K, 4 K to a page; the commit \
         size is the process's commit charge, PagefileUsage), then the system's numbers \
         (GetPerformanceInfo, and perfmon's Memory counters).",
    )?;
    let k = |pages: u64| format!("{} K", pages * PAGE / 1024);
    let mut rows = vec![
        ["Name", "PID", "Working set", "Peak working set", "Page faults", "Commit size"]
            .map(String::from),
    ];
    for p in &s.procs {
        let c = s.pager.process_counters(p.space.root()).ok_or("process not attached")?;
        rows.push([
            p.name.to_string(),
            p.id.0.to_string(),
            k(c.working_set_size),
            k(c.peak_working_set_size),
            c.page_fault_count.to_string(),
            k(c.pagefile_usage),
        ]);
    }
    table(out, &rows)?;
    system_numbers(out, s)?;
    Ok(())
}

/// Rows with aligned columns: the first left-aligned, the others right-aligned.
fn table<const N: usize>(out: &mut impl Write, rows: &[[String; N]]) -> io::Result<()> {
    let width = |c: usize| rows.iter().map(|r| r[c].len()).max().unwrap_or(0);
    for row in rows {
        let cells = row.iter().enumerate().map(|(c, s)| match c {
            0 => format!("{s:<w$}", w = width(c)),
            _ => format!("{s:>w$}", w = width(c)),
        });
        writeln!(out, "  {}", cells.collect::<Vec<_>>().join("  "))?;
    }
    Ok(())
}

/// The system-wide numbers, under Windows' names.
fn system_numbers(out: &mut impl Write, s: &Small<'_, '_>) -> io::Result<()> {
    let (perf, c) = (s.pager.performance(), s.pager.counters());
    let (disk, m) = (s.pager.store().counters(), s.machine.counters());
    let rows = [
        (
            "CommitTotal / CommitLimit / CommitPeak",
            format!("{} / {} / {} pages", perf.commit_total, perf.commit_limit, perf.commit_peak),
        ),
        (
            "PhysicalTotal / PhysicalAvailable",
            format!("{} / {} pages", perf.physical_total, perf.physical_available),
        ),
        (
            "Page faults: demand-zero, soft, hard",
            format!("{}, {}, {}", c.demand_zero_faults, c.soft_faults, c.hard_faults),
        ),
        ("Pages trimmed / repurposed", format!("{} / {}", c.pages_trimmed, c.pages_repurposed)),
        (
            "Page reads / page writes",
            format!(
                "{} / {} (in {} write requests)",
                c.pages_read, c.pages_written, c.write_clusters
            ),
        ),
        ("Disk reads / writes", format!("{} / {}", disk.reads, disk.writes)),
        ("Machine cycles / waiting for the disk", format!("{} / {}", m.cycles, m.io_cycles)),
    ];
    for (name, value) in rows {
        writeln!(out, "  {name:<38}  {value}")?;
    }
    Ok(())
}

/// Both spaces destroyed through the pager; every frame and slot back.
fn swap_teardown(out: &mut impl Write, s: Small<'_, '_>) -> Res {
    say(
        out,
        "Tear down: destroy both address spaces through the pager's handle, so that their \
         frames, page-file slots and commit charge go back, and detach them from the pager.",
    )?;
    let Small { mut machine, mut tables, mut pager, procs } = s;
    for p in procs {
        let (root, asid) = (p.space.root(), p.space.asid());
        let (ram, mut tlb) = machine.split();
        p.space.destroy(ram, &mut pager.with(&mut tables, &mut tlb));
        machine.invalidate_space(asid);
        pager.detach(root)?;
    }
    let perf = pager.performance();
    let used = pager.slots().used_slots();
    let clean = perf.physical_available == perf.physical_total
        && used == 0
        && perf.commit_total == 0
        && tables.frames_in_use() == 0;
    writeln!(
        out,
        "  PhysicalAvailable {} of {}, page file {used} of {PAGE_FILE_SLOTS} slots used, \
         CommitTotal {}",
        perf.physical_available, perf.physical_total, perf.commit_total,
    )?;
    let verdict = if clean { "everything is back: nothing leaked" } else { "LEAKED" };
    writeln!(out, "  page-table frames in use {} ({verdict})", tables.frames_in_use())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{run, swapping};

    #[test]
    fn the_tour_runs_to_the_end() {
        let mut out = Vec::new();
        run(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for fact in [
            "????????",
            "MEM_COMMIT",
            "MEM_RESERVE",
            "hello from A",
            "hello from B",
            "old protection: PAGE_READWRITE",
            "the page allows no access (PAGE_NOACCESS)",
            "the page is not writable (PAGE_READONLY)",
            "data execution prevention",
            "commits the reserved page and retries",
            "guard page exception 0x80000001",
            "MEM_MAPPED",
            "PAGE_WRITECOPY",
            "A wrote this....",
            "B wrote this....",
            "nothing leaked",
        ] {
            assert!(text.contains(fact), "the tour should say {fact:?}:\n{text}");
        }
        let frame = |who: &str| {
            let line = format!("process {who}: 00000001`23450000 -> physical ");
            text.lines().find_map(|l| l.trim().strip_prefix(&line).map(str::to_owned))
        };
        assert!(frame("A").is_some() && frame("A") != frame("B"), "one address, two frames");
        assert!(text.contains("access violation"));
        assert!(!text.contains('\x1b'), "plain text");
        assert!(text.contains("== 7. Too little RAM"), "the swapping chapter ends the tour");
    }

    #[test]
    fn the_swapping_chapter_pages_out_and_back_with_exact_counts() {
        let mut out = Vec::new();
        swapping(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let prose = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(prose.contains("CommitLimit = 2 + 6 - 1 = 7 pages"), "{text}");
        for fact in [
            "P1> !pte 00000001`00001000  contains 80000000`01001267  valid, frame 0x1001000, \
             Accessed, Dirty",
            "P1> !pte 00000001`00001000  contains 00000000`00080096  transition, frame \
             0x1001000 (modified list)",
            "P1> !pte 00000001`00001000  contains 00000000`00080096  transition, frame \
             0x1001000 (standby list)",
            "P1> !pte 00000001`00001000  contains 00000000`00000008  paging file, slot 0",
            "P2> !pte 00000002`00000000  contains 80000000`01001267  valid, frame 0x1001000",
            "00000001`00001000  73273150 63657320 20646e6f 65676170  P1's second page",
            "this access: hard faults 1, soft faults 0, pages read 1, pages written 1",
            "the machine charged 206320 cycles for it, 204000 of them waiting for the disk",
            "P1> !pte 00000001`00000000  contains 00000000`00000088  paging file, slot 1",
            "P1> !pte 00000001`00001000  contains 80000000`01000227  valid, frame 0x1000000, \
             Accessed",
            "P2> !pte 00000002`00000000  contains 00000000`00080096  transition, frame \
             0x1001000 (standby list)",
            "this access: hard faults 0, soft faults 1, pages read 0, pages written 0",
            "the machine charged 2320 cycles for it, 0 of them waiting for the disk",
            "fails with error 1455 (ERROR_COMMITMENT_LIMIT): committing 16 pages passes the \
             commit limit (4 pages left)",
            "CommitTotal still 3",
        ] {
            assert!(text.contains(fact), "the chapter should say {fact:?}:\n{text}");
        }
        let rows = [
            "P1 0 4 K 8 K 3 8 K",
            "P2 1 4 K 4 K 2 4 K",
            "CommitTotal / CommitLimit / CommitPeak 3 / 7 / 3 pages",
            "PhysicalTotal / PhysicalAvailable 2 / 0 pages",
            "Page faults: demand-zero, soft, hard 3, 1, 1",
            "Pages trimmed / repurposed 3 / 2",
            "Page reads / page writes 1 / 3 (in 3 write requests)",
            "Disk reads / writes 1 / 3",
            "PhysicalAvailable 2 of 2, page file 0 of 6 slots used, CommitTotal 0",
            "page-table frames in use 0 (everything is back: nothing leaked)",
        ];
        let lines: Vec<String> =
            text.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
        for row in rows {
            assert!(lines.iter().any(|l| l == row), "the chapter should show {row:?}:\n{text}");
        }
    }
}

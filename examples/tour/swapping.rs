//! Chapter 7: the seed's example on a machine with too little RAM: pages go to the page
//! file and come back (hard and soft faults), the commit limit refuses a commit, and a
//! Task-Manager-like table shows what was counted.

use std::io::{self, Write};

use paging::frame::{BitmapAllocator, FrameAllocator, MemoryRegion};
use paging::pager::policy::{AnyPolicy, PolicyKind, PolicySlot, slots_needed};
use paging::pager::{
    FrameList, FrameRecord, PAGE_BYTES, Pager, PagerCounters, PagerStorage, Paging,
};
use paging::space::SpaceError;
use paging::table::Lookup;
use paging::{PageFlags, PhysAddr, SoftwarePte, Tlb, VirtAddr};
use paging_sim::{Counters, DiskCost, Machine, MachineConfig, PagedKernel, Ram, SimDisk};
use paging_x86::X86_64;

use crate::basics::{Process, new_process};
use crate::print::{dc, full, header, say, table};
use crate::{PAGE, RW, Res};

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
pub fn swapping(out: &mut impl Write) -> Res {
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

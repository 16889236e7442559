//! `SEC_RESERVE` sections on the simulated machine, with a pager: a section of the paging
//! file whose pages start reserved (`CreateFileMapping(INVALID_HANDLE_VALUE, ..,
//! PAGE_READWRITE | SEC_RESERVE, ..)`), views that map them reserved, and `VirtualAlloc`
//! with `MEM_COMMIT` on a view committing them for every view, charged then. Facts from
//! Wine's conformance suite (dlls/kernel32/tests/virtual.c in wine-mirror/wine, whose
//! checks pass on real Windows); each test names its source.
//!
//! Checks of that Wine test not expressed here, and why: `NtQuerySection`'s attributes and
//! size (no section query in this API); a mapping of 1 MiB (32 pages stand for it here:
//! the pager's frames are few on purpose, so that pages go to the store).

use paging::pager::policy::PolicyKind;
use paging::pager::{PAGE_BYTES, PerformanceInfo};
use paging::space::{
    AddressSpace, MemoryType, PageState, Protection, RegionInfo, Section, SpaceError, Violation,
};
use paging::{Access, VirtAddr};
use paging_harness::fixtures::{PagerBooks, SimPager, sim_allocator, sim_space};
use paging_sim::{Machine, MachineConfig, MachineError, PagedKernel, ProcessId, SimDisk};
use paging_x86::X86_64;

use paging::frame::BitmapAllocator;

const PAGE: u64 = 0x1000;
/// The section's size in pages (Wine's `MAPPING_SIZE` is 1 MiB; 32 pages stand for it).
const PAGES: u64 = 32;
const ERROR_INVALID_PARAMETER: u32 = 87;
const ERROR_INVALID_ADDRESS: u32 = 487;
const ERROR_COMMITMENT_LIMIT: u32 = 1455;

/// One process: its space and its id on the machine.
struct Process {
    space: AddressSpace<X86_64>,
    id: ProcessId,
}

/// The machine, the page-table allocator and the pager of a test.
struct World<'a, 's> {
    m: &'a mut Machine<X86_64>,
    alloc: &'a mut BitmapAllocator<'s>,
    pager: &'a mut SimPager<'s>,
}

impl World<'_, '_> {
    fn process(&mut self, asid: u16) -> Process {
        let (space, id) = sim_space(self.m, self.alloc, asid);
        self.pager.attach(space.root(), space.asid(), 0, u32::MAX).unwrap();
        Process { space, id }
    }

    fn section(&mut self, pages: u64, reserve: bool) -> Section {
        let (ram, mut tlb) = self.m.split();
        let mut paging = self.pager.with(self.alloc, &mut tlb);
        if reserve {
            Section::create_reserved(pages, ram, &mut paging).unwrap()
        } else {
            Section::create(pages, ram, &mut paging).unwrap()
        }
    }

    fn map(&mut self, p: &mut Process, section: &Section, protect: Protection) -> VirtAddr {
        let (ram, mut tlb) = self.m.split();
        let mut paging = self.pager.with(self.alloc, &mut tlb);
        p.space.map_view_with(section, None, 0, section.pages(), protect, ram, &mut paging).unwrap()
    }

    fn unmap(&mut self, p: &mut Process, view: VirtAddr) {
        let (ram, mut tlb) = self.m.split();
        let mut paging = self.pager.with(self.alloc, &mut tlb);
        p.space.unmap_view(view, ram, &mut paging).unwrap().apply(&mut tlb);
    }

    fn close(&mut self, section: Section) {
        let (ram, mut tlb) = self.m.split();
        section.close(ram, &mut self.pager.with(self.alloc, &mut tlb)).unwrap();
    }

    /// `VirtualAlloc(addr, size, MEM_COMMIT, protect)`.
    fn commit(
        &mut self,
        p: &mut Process,
        addr: VirtAddr,
        size: u64,
        protect: Protection,
    ) -> Result<VirtAddr, SpaceError> {
        let (ram, mut tlb) = self.m.split();
        let mut paging = self.pager.with(self.alloc, &mut tlb);
        let (first, flush) = p.space.commit_over(addr, size, protect, ram, &mut paging)?;
        flush.apply(&mut tlb);
        Ok(first)
    }

    fn store(&mut self, p: &mut Process, addr: VirtAddr, data: &[u8]) -> Result<(), MachineError> {
        self.m.switch_to(p.id);
        let mut kernel = PagedKernel::new(&mut p.space, self.pager, self.alloc);
        self.m.store(addr, data, &mut kernel)
    }

    fn load(
        &mut self,
        p: &mut Process,
        addr: VirtAddr,
        len: usize,
    ) -> Result<Vec<u8>, MachineError> {
        self.m.switch_to(p.id);
        let mut kernel = PagedKernel::new(&mut p.space, self.pager, self.alloc);
        let mut bytes = vec![0; len];
        self.m.load(addr, &mut bytes, &mut kernel).map(|()| bytes)
    }

    fn commit_total(&self) -> u64 {
        let PerformanceInfo { commit_total, .. } = self.pager.performance();
        commit_total
    }
}

/// A page of bytes that says which page it is.
fn pattern(page: u64) -> Vec<u8> {
    (0..PAGE_BYTES).map(|i| (page as u8).wrapping_mul(37) ^ (i as u8)).collect()
}

/// What `VirtualQuery` says of a run of a read-write view at `view`.
fn view_run(view: VirtAddr, at: u64, size: u64, protect: Option<Protection>) -> RegionInfo {
    RegionInfo {
        base: view + at,
        allocation_base: Some(view),
        allocation_protect: Some(Protection::READ_WRITE),
        size,
        state: if protect.is_some() { PageState::Committed } else { PageState::Reserved },
        protect,
        kind: Some(MemoryType::Mapped),
    }
}

/// Whether `result` is a fault of `access` at `addr` that the kernel passed on (the
/// process has no handler: an access violation).
fn violates<T>(result: Result<T, MachineError>, addr: VirtAddr, access: Access) -> bool {
    matches!(result, Err(MachineError::Unhandled(raised))
        if raised.fault.addr == addr && raised.fault.access == access)
}

/// Wine's `test_MapViewOfFile`, "read/write mapping with SEC_RESERVE": two views of one
/// section are each `MEM_RESERVE`, `MEM_MAPPED`, protection 0, allocation protection
/// `PAGE_READWRITE`, the whole size; `VirtualAlloc(MEM_COMMIT, PAGE_READONLY)` on the first
/// commits 64 KiB of it, read-only there, and "affects the mapping, not just the virtual
/// memory in this process": the second view shows the same 64 KiB committed with its own
/// `PAGE_READWRITE`. `MEM_RESET` over the whole view succeeds; `MEM_DECOMMIT` of a view is
/// `ERROR_INVALID_PARAMETER`. Besides Wine: a reserved page is an access violation, the
/// commit charge is taken at the commit, and pages committed so are paged out and back.
#[test]
fn sec_reserve_views_map_reserved_pages_that_one_commit_commits_for_every_view() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let mut books = PagerBooks::new(4, 64, 4);
    let mut pager = books.pager(PolicyKind::Fifo, SimDisk::new(64)).unwrap();
    let mut w = World { m: &mut machine, alloc: &mut alloc, pager: &mut pager };
    let mut p = w.process(1);

    let section = w.section(PAGES, true);
    assert_eq!(w.commit_total(), 0);
    let ptr = w.map(&mut p, &section, Protection::READ_WRITE);
    let ptr2 = w.map(&mut p, &section, Protection::READ_WRITE);
    assert_ne!(ptr, ptr2);
    assert_eq!(w.commit_total(), 0);
    assert_eq!(p.space.query(ptr), Ok(view_run(ptr, 0, PAGES * PAGE, None)));
    assert_eq!(p.space.query(ptr2), Ok(view_run(ptr2, 0, PAGES * PAGE, None)));

    // A reserved page of a view is an access violation, explained as reserved.
    let read = w.load(&mut p, ptr + 0x10, 4);
    assert!(violates(read.clone(), ptr + 0x10, Access::Read), "{read:?}");
    let Err(MachineError::Unhandled(raised)) = read else { unreachable!() };
    assert_eq!(p.space.explain(&raised.fault).reason, Violation::Reserved);
    assert_eq!(section.committed_pages(w.m.ram()), 0);

    assert_eq!(w.commit(&mut p, ptr, 0x10000, Protection::READ_ONLY), Ok(ptr));
    assert_eq!(w.commit_total(), 16);
    assert_eq!(section.committed_pages(w.m.ram()), 16);
    assert_eq!(p.space.query(ptr), Ok(view_run(ptr, 0, 0x10000, Some(Protection::READ_ONLY))));
    let rest = view_run(ptr, 0x10000, (PAGES - 16) * PAGE, None);
    assert_eq!(p.space.query(ptr + 0x10000), Ok(rest));
    let twin = view_run(ptr2, 0, 0x10000, Some(Protection::READ_WRITE));
    assert_eq!(p.space.query(ptr2), Ok(twin));

    // Committed once: committing again charges nothing.
    assert_eq!(w.commit(&mut p, ptr, 0x10000, Protection::READ_ONLY), Ok(ptr));
    assert_eq!(w.commit_total(), 16);

    // One section: what one view writes, the other reads; the read-only view refuses.
    w.store(&mut p, ptr2 + 3 * PAGE, &pattern(3)).unwrap();
    assert_eq!(w.load(&mut p, ptr + 3 * PAGE, PAGE_BYTES).unwrap(), pattern(3));
    assert!(violates(w.store(&mut p, ptr, &[1]), ptr, Access::Write));
    assert!(violates(w.load(&mut p, ptr2 + 0x10000, 1), ptr2 + 0x10000, Access::Read));

    let reset = {
        let (ram, mut tlb) = w.m.split();
        let mut paging = w.pager.with(w.alloc, &mut tlb);
        p.space.reset(ptr, PAGES * PAGE, ram, &mut paging).map(|flush| flush.apply(&mut tlb))
    };
    assert_eq!(reset, Ok(()));
    let decommit = {
        let (ram, mut tlb) = w.m.split();
        let mut paging = w.pager.with(w.alloc, &mut tlb);
        p.space.decommit(ptr, 0x10000, ram, &mut paging).map(|flush| flush.apply(&mut tlb))
    };
    let wrong = SpaceError::WrongType { expected: MemoryType::Private, found: MemoryType::Mapped };
    assert_eq!(decommit, Err(wrong));
    assert_eq!(wrong.windows_error(), Some(ERROR_INVALID_PARAMETER));

    // The rest committed through the second view: 16 more pages charged. Twelve pages
    // written on four frames go to the store, and come back through the other view.
    assert_eq!(
        w.commit(&mut p, ptr2 + 0x10000, 0x10000, Protection::READ_WRITE),
        Ok(ptr2 + 0x10000)
    );
    assert_eq!(w.commit_total(), PAGES);
    for page in 16..28 {
        w.store(&mut p, ptr2 + page * PAGE, &pattern(page)).unwrap();
    }
    let before = w.pager.counters();
    for page in 16..28 {
        assert_eq!(w.load(&mut p, ptr + page * PAGE, PAGE_BYTES).unwrap(), pattern(page));
    }
    let after = w.pager.counters();
    // Four frames: nine pages were written to the store while the twelve were written,
    // and reading the twelve back through the other view reads each from the store.
    assert_eq!((before.pages_written, after.hard_faults - before.hard_faults), (9, 12));
    assert_eq!(after.pages_read - before.pages_read, 12);
    assert_eq!(
        p.space.query(ptr + 0x10000),
        Ok(view_run(ptr, 0x10000, 0x10000, Some(Protection::READ_WRITE)))
    );

    w.unmap(&mut p, ptr2);
    w.unmap(&mut p, ptr);
    assert_eq!(w.commit_total(), PAGES);
    w.close(section);
    assert_eq!(w.commit_total(), 0);
}

/// Wine's `test_MapViewOfFile` says a commit through one view "also affects all other
/// processes with a view of the mapping" (not tested there). Here: another space's view
/// reads and writes the committed pages, a view mapped after the commit maps them
/// committed, and committing them again in another space charges nothing. Its own books
/// learn of the commit only from the section when it touches a page or commits it: until
/// then its `VirtualQuery` still says reserved (this crate's limit: a query reads the
/// space's books, not the section).
#[test]
fn a_commit_through_one_view_commits_the_pages_for_views_in_other_spaces() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let mut books = PagerBooks::new(8, 64, 4);
    let mut pager = books.pager(PolicyKind::Fifo, SimDisk::new(64)).unwrap();
    let mut w = World { m: &mut machine, alloc: &mut alloc, pager: &mut pager };
    let mut p = w.process(1);
    let mut q = w.process(2);

    let section = w.section(PAGES, true);
    let mine = w.map(&mut p, &section, Protection::READ_WRITE);
    let theirs = w.map(&mut q, &section, Protection::READ_WRITE);
    assert_eq!(
        w.commit(&mut p, mine + 4 * PAGE, 2 * PAGE, Protection::READ_WRITE),
        Ok(mine + 4 * PAGE)
    );
    assert_eq!(w.commit_total(), 2);
    w.store(&mut p, mine + 4 * PAGE, &pattern(4)).unwrap();

    assert_eq!(q.space.query(theirs), Ok(view_run(theirs, 0, PAGES * PAGE, None)));
    assert_eq!(w.load(&mut q, theirs + 4 * PAGE, PAGE_BYTES).unwrap(), pattern(4));
    w.store(&mut q, theirs + 5 * PAGE, &pattern(5)).unwrap();
    assert_eq!(w.load(&mut p, mine + 5 * PAGE, PAGE_BYTES).unwrap(), pattern(5));
    assert!(violates(w.load(&mut q, theirs + 6 * PAGE, 1), theirs + 6 * PAGE, Access::Read));

    // Committing them in the other space: its books catch up, nothing more is charged.
    assert_eq!(
        w.commit(&mut q, theirs + 4 * PAGE, 2 * PAGE, Protection::READ_ONLY),
        Ok(theirs + 4 * PAGE)
    );
    assert_eq!(w.commit_total(), 2);
    let committed = view_run(theirs, 4 * PAGE, 2 * PAGE, Some(Protection::READ_ONLY));
    assert_eq!(q.space.query(theirs + 4 * PAGE), Ok(committed));

    // A view mapped after the commit maps the committed pages committed.
    let mut r = w.process(3);
    let late = w.map(&mut r, &section, Protection::READ_WRITE);
    assert_eq!(r.space.query(late), Ok(view_run(late, 0, 4 * PAGE, None)));
    let middle = view_run(late, 4 * PAGE, 2 * PAGE, Some(Protection::READ_WRITE));
    assert_eq!(r.space.query(late + 4 * PAGE), Ok(middle));
    assert_eq!(
        r.space.query(late + 6 * PAGE),
        Ok(view_run(late, 6 * PAGE, (PAGES - 6) * PAGE, None))
    );

    for (process, view) in [(&mut p, mine), (&mut q, theirs), (&mut r, late)] {
        w.unmap(process, view);
    }
    w.close(section);
    assert_eq!(w.commit_total(), 0);
}

/// `SEC_RESERVE` charges at the commit, `SEC_COMMIT` at creation (Wine's
/// `test_MapViewOfFile` "same thing with SEC_COMMIT": the view is `MEM_COMMIT` whole);
/// a commit past the commit limit is `ERROR_COMMITMENT_LIMIT` and changes nothing; a
/// commit past the view's end is `ERROR_INVALID_ADDRESS`; closing gives back the charge of
/// the committed pages only.
#[test]
fn a_sec_reserve_section_is_charged_at_the_commit_and_gives_back_what_it_took() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let mut books = PagerBooks::new(4, 16, 4);
    let mut pager = books.pager(PolicyKind::Fifo, SimDisk::new(16)).unwrap();
    let mut w = World { m: &mut machine, alloc: &mut alloc, pager: &mut pager };
    let mut p = w.process(1);
    assert_eq!(w.pager.performance().commit_limit, 19);

    // Larger than the limit, and reserved: nothing is charged.
    let section = w.section(PAGES, true);
    let view = w.map(&mut p, &section, Protection::READ_WRITE);
    assert_eq!(w.commit(&mut p, view, 5 * PAGE, Protection::READ_WRITE), Ok(view));
    assert_eq!(w.commit_total(), 5);

    // The whole view: the 27 pages not yet committed do not fit the 14 left.
    let refused = w.commit(&mut p, view, PAGES * PAGE, Protection::READ_WRITE);
    let limit = SpaceError::CommitLimit { requested: PAGES - 5, available: 14 };
    assert_eq!(refused, Err(limit));
    assert_eq!(limit.windows_error(), Some(ERROR_COMMITMENT_LIMIT));
    assert_eq!(w.commit_total(), 5);
    assert_eq!(section.committed_pages(w.m.ram()), 5);
    assert_eq!(
        p.space.query(view + 5 * PAGE),
        Ok(view_run(view, 5 * PAGE, (PAGES - 5) * PAGE, None))
    );

    let past = w.commit(&mut p, view + (PAGES - 1) * PAGE, 2 * PAGE, Protection::READ_WRITE);
    let crosses =
        SpaceError::CrossesReservation { addr: view + (PAGES - 1) * PAGE, size: 2 * PAGE };
    assert_eq!(past, Err(crosses));
    assert_eq!(crosses.windows_error(), Some(ERROR_INVALID_ADDRESS));

    w.store(&mut p, view, &pattern(0)).unwrap();
    w.unmap(&mut p, view);
    w.close(section);
    assert_eq!(w.commit_total(), 0);

    // SEC_COMMIT: charged whole at creation, the view committed whole, given back whole.
    let section = w.section(8, false);
    assert_eq!(w.commit_total(), 8);
    let view = w.map(&mut p, &section, Protection::READ_WRITE);
    assert_eq!(p.space.query(view), Ok(view_run(view, 0, 8 * PAGE, Some(Protection::READ_WRITE))));
    assert_eq!(w.commit(&mut p, view, PAGE, Protection::READ_ONLY), Ok(view));
    assert_eq!(w.commit_total(), 8);
    w.unmap(&mut p, view);
    w.close(section);
    assert_eq!(w.commit_total(), 0);
}

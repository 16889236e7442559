//! The working-set part of the Windows memory API on the simulated machine, with a pager:
//! `VirtualLock`/`VirtualUnlock`, `EmptyWorkingSet`, `SetProcessWorkingSetSize`,
//! `MEM_RESET`, `GetWriteWatch`/`ResetWriteWatch`. Facts from Microsoft's documentation of
//! these calls and, where it tests them, Wine's conformance suite
//! (dlls/kernel32/tests/virtual.c in wine-mirror/wine, whose checks pass on real Windows);
//! each test names its source.
//!
//! Checks of those Wine tests not expressed here, and why: `ReadFile` into watched memory
//! (pipes, files: no I/O in this API); in `test_guard_page`, the write a guard-page
//! handler makes (no handler runs code here) and the watch modern Windows reports after
//! `VirtualLock` of a watched page (`todo_wine`; Windows 8 reports none, as we do);
//! `GetWriteWatch` with flags other than the reset flag, or null pointers
//! (`ERROR_NOACCESS`): typed arguments; `MEM_WRITE_WATCH` without `MEM_RESERVE`:
//! `reserve_watched` always reserves. `MEM_RESET_UNDO` (Windows 8 and later) has no Wine
//! test: its tests follow Microsoft's documentation of `VirtualAlloc`.

use paging::frame::{BitmapAllocator, FrameAllocator};
use paging::pager::policy::PolicyKind;
use paging::pager::{FrameList, PAGE_BYTES, PagerError, WorkingSetChange};
use paging::space::{
    AddressSpace, MAX_WATCHED_PAGES, PageInError, PageState, Protection, Section, SpaceError,
};
use paging::{Exception, VirtAddr};
use paging_harness::fixtures::{PagerBooks as Storage, SimPager, sim_allocator, sim_space};
use paging_sim::{Machine, MachineConfig, MachineError, PagedKernel, ProcessId, SimDisk};
use paging_x86::X86_64;

const PAGE: u64 = 0x1000;
const ERROR_INVALID_PARAMETER: u32 = 87;
const ERROR_NOT_LOCKED: u32 = 158;
const ERROR_INVALID_ADDRESS: u32 = 487;
const ERROR_NOACCESS: u32 = 998;
const ERROR_WORKING_SET_QUOTA: u32 = 1453;
const STATUS_GUARD_PAGE_VIOLATION: u32 = 0x8000_0001;

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
    /// A process whose working set is `minimum` to unbounded pages.
    fn process(&mut self, asid: u16, minimum: u32) -> Process {
        let (space, id) = sim_space(self.m, self.alloc, asid);
        self.pager.attach(space.root(), space.asid(), minimum, u32::MAX).unwrap();
        Process { space, id }
    }

    fn commit(&mut self, p: &mut Process, pages: u64) -> VirtAddr {
        let (_, mut tlb) = self.m.split();
        let mut paging = self.pager.with(self.alloc, &mut tlb);
        p.space.commit_with(None, pages * PAGE, Protection::READ_WRITE, &mut paging).unwrap()
    }

    fn store(&mut self, p: &mut Process, addr: VirtAddr, data: &[u8]) -> Result<(), MachineError> {
        self.m.switch_to(p.id);
        let mut kernel = PagedKernel::new(&mut p.space, self.pager, self.alloc);
        self.m.store(addr, data, &mut kernel)
    }

    fn load(&mut self, p: &mut Process, addr: VirtAddr, len: usize) -> Vec<u8> {
        self.m.switch_to(p.id);
        let mut kernel = PagedKernel::new(&mut p.space, self.pager, self.alloc);
        let mut bytes = vec![0; len];
        self.m.load(addr, &mut bytes, &mut kernel).unwrap();
        bytes
    }

    fn lock(&mut self, p: &mut Process, addr: VirtAddr, size: u64) -> Result<(), SpaceError> {
        let (ram, mut tlb) = self.m.split();
        let mut paging = self.pager.with(self.alloc, &mut tlb);
        p.space.lock(addr, size, ram, &mut paging).map(|flush| flush.apply(&mut tlb))
    }

    fn unlock(&mut self, p: &mut Process, addr: VirtAddr, size: u64) -> Result<(), SpaceError> {
        let (ram, mut tlb) = self.m.split();
        let mut paging = self.pager.with(self.alloc, &mut tlb);
        p.space.unlock(addr, size, ram, &mut paging).map(|flush| flush.apply(&mut tlb))
    }

    fn reset(&mut self, p: &mut Process, addr: VirtAddr, size: u64) -> Result<(), SpaceError> {
        let (ram, mut tlb) = self.m.split();
        let mut paging = self.pager.with(self.alloc, &mut tlb);
        p.space.reset(addr, size, ram, &mut paging).map(|flush| flush.apply(&mut tlb))
    }

    fn reset_undo(&mut self, p: &mut Process, addr: VirtAddr, size: u64) -> Result<(), SpaceError> {
        let (ram, mut tlb) = self.m.split();
        let mut paging = self.pager.with(self.alloc, &mut tlb);
        p.space.reset_undo(addr, size, ram, &mut paging).map(|flush| flush.apply(&mut tlb))
    }

    fn write_modified(&mut self) -> usize {
        let (ram, mut tlb) = self.m.split();
        self.pager.with(self.alloc, &mut tlb).write_modified(ram)
    }

    fn watch(
        &mut self,
        p: &mut Process,
        addr: VirtAddr,
        size: u64,
        reset: bool,
        room: usize,
    ) -> Result<Vec<VirtAddr>, SpaceError> {
        let (ram, mut tlb) = self.m.split();
        let mut paging = self.pager.with(self.alloc, &mut tlb);
        let mut found = vec![VirtAddr::new(0); room];
        let (count, flush) =
            p.space.write_watch(addr, size, reset, &mut found, ram, &mut paging)?;
        flush.apply(&mut tlb);
        found.truncate(count);
        Ok(found)
    }

    fn reset_watch(
        &mut self,
        p: &mut Process,
        addr: VirtAddr,
        size: u64,
    ) -> Result<(), SpaceError> {
        let (ram, mut tlb) = self.m.split();
        let mut paging = self.pager.with(self.alloc, &mut tlb);
        p.space.reset_write_watch(addr, size, ram, &mut paging).map(|flush| flush.apply(&mut tlb))
    }

    fn protect(
        &mut self,
        p: &mut Process,
        addr: VirtAddr,
        size: u64,
        protect: Protection,
    ) -> Protection {
        let (ram, mut tlb) = self.m.split();
        let mut paging = self.pager.with(self.alloc, &mut tlb);
        let (old, flush) = p.space.protect(addr, size, protect, ram, &mut paging).unwrap();
        flush.apply(&mut tlb);
        old
    }

    fn empty_working_set(&mut self, p: &Process) -> usize {
        let (ram, mut tlb) = self.m.split();
        self.pager.with(self.alloc, &mut tlb).empty_working_set(p.space.root(), ram)
    }

    fn set_size(
        &mut self,
        p: &Process,
        minimum: usize,
        maximum: usize,
    ) -> Result<WorkingSetChange, PagerError> {
        let (ram, mut tlb) = self.m.split();
        let mut paging = self.pager.with(self.alloc, &mut tlb);
        paging.set_process_working_set_size(p.space.root(), minimum, maximum, ram)
    }

    /// (working-set size, locked pages, page faults) of `p`.
    fn set(&self, p: &Process) -> (u64, u64, u64) {
        let set = self.pager.working_set(p.space.root()).unwrap();
        (set.size(), set.locked(), set.counters().page_fault_count)
    }
}

/// A page of bytes that says which page it is.
fn pattern(page: u64) -> Vec<u8> {
    (0..PAGE_BYTES).map(|i| (page as u8).wrapping_mul(37) ^ (i as u8)).collect()
}

/// `VirtualLock`: "Locks the specified region of the process's virtual address space into
/// physical memory"; "all pages in the specified region must be committed"; "the number
/// of pages that a process can lock is equal to the number of pages in its minimum working
/// set minus a small overhead" (ours: no overhead); `VirtualUnlock` of a page not locked
/// fails with `ERROR_NOT_LOCKED` (Microsoft's documentation). `EmptyWorkingSet` "removes as
/// many pages as possible": the locked ones stay.
#[test]
fn locked_pages_stay_through_empty_working_set() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let mut storage = Storage::new(4, 16, 4);
    let mut pager = storage.pager(PolicyKind::Clock, SimDisk::new(16)).unwrap();
    let mut w = World { m: &mut machine, alloc: &mut alloc, pager: &mut pager };
    let mut p = w.process(1, 2);
    let base = w.commit(&mut p, 4);
    for page in 0..4 {
        w.store(&mut p, base + page * PAGE, &pattern(page)).unwrap();
    }
    assert_eq!(w.set(&p), (4, 0, 4));

    // Lock the first two pages (by an unaligned range touching both): the trim passes
    // them over.
    w.lock(&mut p, base + 0x800, PAGE).unwrap();
    assert_eq!(w.set(&p), (4, 2, 4));
    assert_eq!(w.empty_working_set(&p), 2);
    assert_eq!(w.set(&p), (2, 2, 4));
    // Locked pages are read with no fault; locking them again changes nothing.
    assert_eq!(w.load(&mut p, base + PAGE, PAGE_BYTES), pattern(1));
    w.lock(&mut p, base, 2 * PAGE).unwrap();
    assert_eq!(w.set(&p), (2, 2, 4));

    // The minimum is two pages: a third is past the quota, and nothing changes.
    let error = w.lock(&mut p, base + PAGE, 2 * PAGE).unwrap_err();
    assert_eq!(error, SpaceError::WorkingSetQuota { requested: 1, available: 0 });
    assert_eq!(error.windows_error(), Some(ERROR_WORKING_SET_QUOTA));
    assert_eq!(w.set(&p), (2, 2, 4));

    // Unlocking a range with a page not locked is refused whole.
    let error = w.unlock(&mut p, base, 3 * PAGE).unwrap_err();
    assert_eq!(error, SpaceError::NotLocked { addr: base + 2 * PAGE });
    assert_eq!(error.windows_error(), Some(ERROR_NOT_LOCKED));
    assert_eq!(w.set(&p), (2, 2, 4));
    // One unlock undoes two locks; the pages can be trimmed again.
    w.unlock(&mut p, base, 2 * PAGE).unwrap();
    assert_eq!(w.set(&p), (2, 0, 4));
    assert_eq!(w.unlock(&mut p, base, PAGE), Err(SpaceError::NotLocked { addr: base }));
    assert_eq!(w.empty_working_set(&p), 2);
    assert_eq!(w.set(&p), (0, 0, 4));
    for page in 0..4 {
        assert_eq!(w.load(&mut p, base + page * PAGE, PAGE_BYTES), pattern(page));
    }
}

/// Locking makes pages resident as a touch would (here: two soft faults from the standby
/// list and a first touch), and only committed, accessible pages can be locked: reserved
/// pages are `ERROR_INVALID_ADDRESS`, as every call on them; a no-access page
/// `ERROR_NOACCESS` (the lock's touch of the page faults).
#[test]
fn locking_brings_pages_in_and_needs_committed_accessible_pages() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let mut storage = Storage::new(4, 16, 4);
    let mut pager = storage.pager(PolicyKind::Fifo, SimDisk::new(16)).unwrap();
    let mut w = World { m: &mut machine, alloc: &mut alloc, pager: &mut pager };
    let mut p = w.process(1, 4);
    let base = w.commit(&mut p, 3);
    w.store(&mut p, base, &pattern(0)).unwrap();
    w.store(&mut p, base + PAGE, &pattern(1)).unwrap();
    assert_eq!(w.empty_working_set(&p), 2);
    let before = w.pager.counters();
    w.lock(&mut p, base, 3 * PAGE).unwrap();
    let after = w.pager.counters();
    assert_eq!(after.soft_faults - before.soft_faults, 2);
    assert_eq!(after.demand_zero_faults - before.demand_zero_faults, 1);
    assert_eq!(w.set(&p), (3, 3, 5));
    assert_eq!(w.load(&mut p, base + PAGE, PAGE_BYTES), pattern(1));

    // Reserved pages.
    let (ram, mut tlb) = w.m.split();
    let mut paging = w.pager.with(w.alloc, &mut tlb);
    let reserved = p.space.reserve(None, 2 * PAGE, Protection::READ_WRITE).unwrap();
    let error = p.space.lock(reserved, PAGE, ram, &mut paging).unwrap_err();
    assert_eq!(error, SpaceError::NotCommitted { addr: reserved });
    assert_eq!(error.windows_error(), Some(ERROR_INVALID_ADDRESS));
    // No-access and guard pages.
    let rw = Protection::READ_WRITE;
    p.space.commit_with(Some(reserved), 2 * PAGE, rw, &mut paging).unwrap();
    let none = Protection::NO_ACCESS;
    p.space.protect(reserved, PAGE, none, ram, &mut paging).unwrap().1.ignore();
    let error = p.space.lock(reserved, 2 * PAGE, ram, &mut paging).unwrap_err();
    assert_eq!(error, SpaceError::Inaccessible { addr: reserved });
    assert_eq!(error.windows_error(), Some(ERROR_NOACCESS));
    assert_eq!(w.set(&p), (3, 3, 5));
}

/// Wine's `test_guard_page`: the first `VirtualLock` of a read-write guard page fails with
/// `STATUS_GUARD_PAGE_VIOLATION` (Wine marks it `todo_wine`: Windows does it) and the guard
/// is gone; the second succeeds, the contents intact, and `VirtualUnlock` succeeds; the
/// page then queries as read-write.
#[test]
fn locking_a_guard_page_fires_the_guard_first() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let mut storage = Storage::new(4, 16, 4);
    let mut pager = storage.pager(PolicyKind::Fifo, SimDisk::new(16)).unwrap();
    let mut w = World { m: &mut machine, alloc: &mut alloc, pager: &mut pager };
    let mut p = w.process(1, 4);
    let base = w.commit(&mut p, 1);
    w.store(&mut p, base, &[1, 0, 0, 0, 2, 0, 0, 0]).unwrap();
    let guard = Protection::READ_WRITE.guard();
    {
        let (ram, mut tlb) = w.m.split();
        let mut paging = w.pager.with(w.alloc, &mut tlb);
        p.space.protect(base, PAGE, guard, ram, &mut paging).unwrap().1.apply(&mut tlb);
    }
    let error = w.lock(&mut p, base, PAGE).unwrap_err();
    assert_eq!(error, SpaceError::GuardPage { addr: base });
    assert_eq!(error.windows_error(), Some(STATUS_GUARD_PAGE_VIOLATION));
    assert_eq!(p.space.query(base).unwrap().protect, Some(Protection::READ_WRITE));
    w.lock(&mut p, base, PAGE).unwrap();
    assert_eq!(w.load(&mut p, base, 8), [1, 0, 0, 0, 2, 0, 0, 0]);
    w.unlock(&mut p, base, PAGE).unwrap();
    // Two faults: the first write, and the lock bringing the page out of its guard.
    assert_eq!(w.set(&p), (1, 0, 2));
}

/// All or nothing: a lock that cannot make every page resident (two frames, three pages,
/// all to be locked) locks none of them, and its quota is given back; locks end with the
/// pages (decommit) or when a protection hides them.
#[test]
fn a_failed_lock_locks_nothing_and_locks_end_with_their_pages() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let mut storage = Storage::new(2, 16, 4);
    let mut pager = storage.pager(PolicyKind::Clock, SimDisk::new(16)).unwrap();
    let mut w = World { m: &mut machine, alloc: &mut alloc, pager: &mut pager };
    let mut p = w.process(1, 8);
    let base = w.commit(&mut p, 3);
    let error = w.lock(&mut p, base, 3 * PAGE).unwrap_err();
    assert_eq!(
        error,
        SpaceError::NotResident { addr: base + 2 * PAGE, error: PageInError::NoFrame }
    );
    // The two pages it made resident stay resident, unlocked: a trim takes them.
    assert_eq!(w.set(&p), (2, 0, 2));
    assert_eq!(w.empty_working_set(&p), 2);

    w.lock(&mut p, base, 2 * PAGE).unwrap();
    assert_eq!(w.set(&p), (2, 2, 4));
    // A no-access protection hides the first page: its lock ends.
    let (ram, mut tlb) = w.m.split();
    let mut paging = w.pager.with(w.alloc, &mut tlb);
    let none = Protection::NO_ACCESS;
    p.space.protect(base, PAGE, none, ram, &mut paging).unwrap().1.apply(&mut tlb);
    assert_eq!(w.set(&p), (2, 1, 4));
    // A protection that keeps the page mapped keeps the lock.
    let (ram, mut tlb) = w.m.split();
    let mut paging = w.pager.with(w.alloc, &mut tlb);
    let ro = Protection::READ_ONLY;
    p.space.protect(base + PAGE, PAGE, ro, ram, &mut paging).unwrap().1.apply(&mut tlb);
    assert_eq!(w.set(&p), (2, 1, 4));
    assert_eq!(w.empty_working_set(&p), 1);
    // Decommitting the locked page ends its lock and gives its frame back.
    let (ram, mut tlb) = w.m.split();
    let mut paging = w.pager.with(w.alloc, &mut tlb);
    p.space.decommit(base + PAGE, PAGE, ram, &mut paging).unwrap().apply(&mut tlb);
    assert_eq!(w.set(&p), (0, 0, 4));
    assert_eq!(w.pager.performance().physical_available, 2);
}

/// `SetProcessWorkingSetSize` (Microsoft's documentation): limits in bytes; "if both
/// dwMinimumWorkingSetSize and dwMaximumWorkingSetSize have the value (SIZE_T)-1, the
/// function removes as many pages as possible from the working set". Ours enforces the
/// maximum at once (pages past it are trimmed now; a fault at the maximum replaces one of
/// the space's own pages) and refuses a minimum above the maximum, changing nothing.
#[test]
fn set_process_working_set_size_caps_and_empties_the_working_set() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let mut storage = Storage::new(8, 16, 4);
    let mut pager = storage.pager(PolicyKind::Fifo, SimDisk::new(16)).unwrap();
    let mut w = World { m: &mut machine, alloc: &mut alloc, pager: &mut pager };
    let mut p = w.process(1, 0);
    let base = w.commit(&mut p, 6);
    for page in 0..5 {
        w.store(&mut p, base + page * PAGE, &pattern(page)).unwrap();
    }
    assert_eq!(w.set(&p), (5, 0, 5));

    // 8 KiB to 12 KiB and a byte: two pages to three. Two pages leave at once.
    let change = w.set_size(&p, 0x2000, 0x3001).unwrap();
    assert_eq!(change, WorkingSetChange::Limits { minimum: 2, maximum: 3, trimmed: 2 });
    assert_eq!(w.set(&p), (3, 0, 5));
    // A new page at the maximum replaces one of the space's own.
    let trimmed = w.pager.counters().pages_trimmed;
    w.store(&mut p, base + 5 * PAGE, &pattern(5)).unwrap();
    assert_eq!(w.set(&p), (3, 0, 6));
    assert_eq!(w.pager.counters().pages_trimmed, trimmed + 1);

    // A minimum above the maximum is refused.
    assert_eq!(
        w.set_size(&p, 0x4000, 0x3000),
        Err(PagerError::MinimumAboveMaximum { minimum: 0x4000, maximum: 0x3000 })
    );
    let set = w.pager.working_set(p.space.root()).unwrap();
    assert_eq!((set.minimum, set.maximum), (2, 3));

    // (SIZE_T)-1 twice: every page that can leave leaves; the locked one stays; the limits
    // stay.
    w.lock(&mut p, base + 5 * PAGE, PAGE).unwrap();
    let change = w.set_size(&p, usize::MAX, usize::MAX).unwrap();
    assert_eq!(change, WorkingSetChange::Emptied { trimmed: 2 });
    assert_eq!(w.set(&p), (1, 1, 6));
    let set = w.pager.working_set(p.space.root()).unwrap();
    assert_eq!((set.minimum, set.maximum), (2, 3));
    for page in 0..6 {
        assert_eq!(w.load(&mut p, base + page * PAGE, PAGE_BYTES), pattern(page));
    }
    // Reading six pages back with a maximum of three: the working set stays at three.
    assert_eq!(w.set(&p).0, 3);
}

/// `MEM_RESET` as Wine's `test_VirtualAlloc` checks it: on a committed read-write page
/// holding 0x55 bytes it succeeds, the page reads either its old data or zeros (ours: the
/// old data, while a frame holds it) and stays committed and read-write; on reserved pages
/// it succeeds and changes nothing; a range crossing the end of its reservation is
/// `ERROR_INVALID_ADDRESS`. Wine passes `PAGE_NOACCESS`, which Windows ignores: the call
/// takes no protection.
#[test]
fn mem_reset_keeps_state_and_protection() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let mut storage = Storage::new(4, 16, 4);
    let mut pager = storage.pager(PolicyKind::Fifo, SimDisk::new(16)).unwrap();
    let mut w = World { m: &mut machine, alloc: &mut alloc, pager: &mut pager };
    let mut p = w.process(1, 0);
    let base = p.space.reserve(None, 0xfffc, Protection::NO_ACCESS).unwrap();
    {
        let (_, mut tlb) = w.m.split();
        let mut paging = w.pager.with(w.alloc, &mut tlb);
        p.space.commit_with(Some(base), PAGE, Protection::READ_WRITE, &mut paging).unwrap();
    }
    w.store(&mut p, base, &[0x55; 20]).unwrap();

    w.reset(&mut p, base, PAGE).unwrap();
    assert_eq!(w.load(&mut p, base, 4), [0x55; 4]);
    let info = p.space.query(base).unwrap();
    assert_eq!((info.size, info.state), (PAGE, PageState::Committed));
    assert_eq!(info.protect, Some(Protection::READ_WRITE));

    w.reset(&mut p, base + PAGE, PAGE).unwrap();
    let info = p.space.query(base + PAGE).unwrap();
    assert_eq!((info.size, info.state, info.protect), (0xf000, PageState::Reserved, None));

    let error = w.reset(&mut p, base + 0xf000, 0x2000).unwrap_err();
    assert_eq!(error, SpaceError::CrossesReservation { addr: base + 0xf000, size: 0x2000 });
    assert_eq!(error.windows_error(), Some(ERROR_INVALID_ADDRESS));

    // test_MapViewOfFile: MEM_RESET over a whole view succeeds. A section's frames are
    // shared: ours keeps their contents.
    let view = {
        let (ram, mut tlb) = w.m.split();
        let section = Section::create(2, ram, &mut w.pager.with(w.alloc, &mut tlb)).unwrap();
        p.space.map_view(&section, None, 0, 2, Protection::READ_WRITE, ram).unwrap()
    };
    w.store(&mut p, view, &pattern(7)).unwrap();
    w.reset(&mut p, view, 2 * PAGE).unwrap();
    assert_eq!(w.load(&mut p, view, PAGE_BYTES), pattern(7));
    assert_eq!(p.space.query(view).unwrap().state, PageState::Committed);
}

/// What a reset page becomes on the pager: it is never written to the store for what it
/// held (a trim sends it to standby, unwritten; a page on the modified list moves to
/// standby; a page in the page file gives its slot back at once); a read gives the old data
/// while its frame still holds it, and zeros once the frame went to another page. A page
/// written after the reset is paged as usual.
#[test]
fn a_reset_page_is_never_written_and_reads_old_data_or_zeros() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let mut storage = Storage::new(2, 16, 4);
    let mut pager = storage.pager(PolicyKind::Fifo, SimDisk::new(16)).unwrap();
    let mut w = World { m: &mut machine, alloc: &mut alloc, pager: &mut pager };
    let mut p = w.process(1, 0);
    let mut other = w.process(2, 0);
    let base = w.commit(&mut p, 3);
    let elsewhere = w.commit(&mut other, 2);
    // Two frames: the other process takes both, so every standby frame is reused.
    let reuse = |w: &mut World<'_, '_>, other: &mut Process| {
        for page in 0..2 {
            w.store(other, elsewhere + page * PAGE, &pattern(100 + page)).unwrap();
        }
    };

    // A resident dirty page, reset: trimmed unwritten, read back from standby (old data).
    w.store(&mut p, base, &pattern(0)).unwrap();
    w.reset(&mut p, base, PAGE).unwrap();
    assert_eq!(w.empty_working_set(&p), 1);
    let c = w.pager.counters();
    assert_eq!((c.pages_written, w.pager.database().count(FrameList::Modified)), (0, 0));
    assert_eq!(w.load(&mut p, base, PAGE_BYTES), pattern(0));
    assert_eq!(w.pager.counters().soft_faults, 1);
    // Trimmed again and its frame reused: it reads as zeros, a demand-zero fault, no I/O.
    assert_eq!(w.empty_working_set(&p), 1);
    reuse(&mut w, &mut other);
    let before = w.pager.counters();
    assert_eq!(w.load(&mut p, base, PAGE_BYTES), vec![0; PAGE_BYTES]);
    let after = w.pager.counters();
    assert_eq!(after.demand_zero_faults - before.demand_zero_faults, 1);
    // The one write is the other process's dirty page, trimmed to make room.
    assert_eq!((after.pages_written, after.pages_read, after.hard_faults), (1, 0, 0));

    // A page on the modified list, reset: it moves to standby, unwritten.
    w.store(&mut p, base + PAGE, &pattern(1)).unwrap();
    assert_eq!(w.empty_working_set(&p), 2);
    let modified = FrameList::Modified;
    assert_eq!(w.pager.database().count(modified), 1);
    w.reset(&mut p, base + PAGE, PAGE).unwrap();
    assert_eq!(w.pager.database().count(modified), 0);
    assert_eq!(w.write_modified(), 0);

    // The other process's pages out of the way: written, on standby.
    let quiet = |w: &mut World<'_, '_>, other: &Process| {
        w.empty_working_set(other);
        w.write_modified();
    };
    // A page in the page file, reset: its slot is free at once, and it reads as zeros.
    quiet(&mut w, &other);
    let slots = w.pager.slots().used_slots();
    w.store(&mut p, base + 2 * PAGE, &pattern(2)).unwrap();
    w.empty_working_set(&p);
    assert_eq!(w.write_modified(), 1);
    reuse(&mut w, &mut other);
    assert_eq!(w.pager.slots().used_slots(), slots + 1);
    w.reset(&mut p, base + 2 * PAGE, PAGE).unwrap();
    assert_eq!(w.pager.slots().used_slots(), slots);
    let before = w.pager.counters();
    assert_eq!(w.load(&mut p, base + 2 * PAGE, PAGE_BYTES), vec![0; PAGE_BYTES]);
    let after = w.pager.counters();
    assert_eq!(after.demand_zero_faults - before.demand_zero_faults, 1);
    assert_eq!((after.hard_faults, after.pages_read), (before.hard_faults, before.pages_read));

    // Written after the reset: dirty again, written out, read back.
    w.reset(&mut p, base + 2 * PAGE, PAGE).unwrap();
    quiet(&mut w, &other);
    w.store(&mut p, base + 2 * PAGE, &pattern(3)).unwrap();
    w.empty_working_set(&p);
    assert_eq!(w.write_modified(), 1);
    reuse(&mut w, &mut other);
    let before = w.pager.counters();
    assert_eq!(w.load(&mut p, base + 2 * PAGE, PAGE_BYTES), pattern(3));
    let after = w.pager.counters();
    assert_eq!(after.hard_faults - before.hard_faults, 1);
}

/// `MEM_RESET_UNDO` (Microsoft's documentation of `VirtualAlloc`: "should only be called on
/// an address range to which MEM_RESET was successfully applied earlier"; it "indicates
/// that the data in the specified memory range ... is of critical interest to the caller"):
/// where a frame still holds a reset page, resident or on standby, it succeeds and the page
/// is ordinary again, so that a trim writes it to the page file and it comes back from
/// there. On pages never reset it succeeds and changes nothing.
#[test]
fn mem_reset_undo_keeps_the_contents_a_frame_still_holds() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let mut storage = Storage::new(2, 16, 4);
    let mut pager = storage.pager(PolicyKind::Fifo, SimDisk::new(16)).unwrap();
    let mut w = World { m: &mut machine, alloc: &mut alloc, pager: &mut pager };
    let mut p = w.process(1, 0);
    let mut other = w.process(2, 0);
    let base = w.commit(&mut p, 3);
    let elsewhere = w.commit(&mut other, 2);
    // Two frames: the other process takes both, so every standby frame is reused.
    let reuse = |w: &mut World<'_, '_>, other: &mut Process| {
        for page in 0..2 {
            w.store(other, elsewhere + page * PAGE, &pattern(100 + page)).unwrap();
        }
        w.empty_working_set(other);
        w.write_modified();
    };
    let (modified, standby) = (FrameList::Modified, FrameList::Standby);

    // Resident, reset, undone: trimmed, it goes to the modified list and is written.
    w.store(&mut p, base, &pattern(0)).unwrap();
    w.reset(&mut p, base, PAGE).unwrap();
    assert_eq!(w.reset_undo(&mut p, base, PAGE), Ok(()));
    assert_eq!(w.empty_working_set(&p), 1);
    assert_eq!((w.pager.database().count(modified), w.write_modified()), (1, 1));
    reuse(&mut w, &mut other);
    let before = w.pager.counters();
    assert_eq!(w.load(&mut p, base, PAGE_BYTES), pattern(0));
    assert_eq!(w.pager.counters().hard_faults - before.hard_faults, 1);

    // Reset and trimmed: on standby, unwritten. Undone: back to the modified list.
    w.store(&mut p, base + PAGE, &pattern(1)).unwrap();
    w.reset(&mut p, base + PAGE, PAGE).unwrap();
    w.empty_working_set(&p);
    let standing = w.pager.database().count(standby);
    assert_eq!(w.pager.database().count(modified), 0);
    assert_eq!(w.reset_undo(&mut p, base, 2 * PAGE), Ok(()));
    assert_eq!(w.pager.database().count(modified), 1);
    assert_eq!(w.pager.database().count(standby), standing - 1);
    assert_eq!(w.write_modified(), 1);
    reuse(&mut w, &mut other);
    let before = w.pager.counters();
    assert_eq!(w.load(&mut p, base + PAGE, PAGE_BYTES), pattern(1));
    assert_eq!(w.pager.counters().hard_faults - before.hard_faults, 1);

    // Never reset: a page of zeros (read, never written) trimmed to standby stays there,
    // unwritten; a written page stays as it is.
    assert_eq!(w.load(&mut p, base + 2 * PAGE, 4), [0; 4]);
    w.empty_working_set(&p);
    w.write_modified();
    let lists = |w: &World<'_, '_>| {
        let database = w.pager.database();
        (database.count(standby), database.count(modified))
    };
    let now = lists(&w);
    let slots = w.pager.slots().used_slots();
    assert_eq!(w.reset_undo(&mut p, base, 3 * PAGE), Ok(()));
    assert_eq!((lists(&w), w.write_modified()), (now, 0));
    assert_eq!(w.pager.slots().used_slots(), slots);
    // Undone twice: the second changes nothing either.
    assert_eq!(w.reset_undo(&mut p, base, 3 * PAGE), Ok(()));
    assert_eq!(lists(&w), now);
}

/// `MEM_RESET_UNDO` after the contents went (Microsoft's documentation: "If the function
/// fails, at least some of the data in the address range has been replaced with zeroes"):
/// a reset page whose frame was reused, or whose page-file copy the reset let go, fails the
/// call, naming the first such page; the pages are treated normally from then on (a page
/// still held in the same range is kept, the discarded one reads zeros and, written, is
/// paged as usual).
#[test]
fn mem_reset_undo_fails_once_a_reset_page_was_discarded() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let mut storage = Storage::new(2, 16, 4);
    let mut pager = storage.pager(PolicyKind::Fifo, SimDisk::new(16)).unwrap();
    let mut w = World { m: &mut machine, alloc: &mut alloc, pager: &mut pager };
    let mut p = w.process(1, 0);
    let mut other = w.process(2, 0);
    let base = w.commit(&mut p, 3);
    let elsewhere = w.commit(&mut other, 2);
    let reuse = |w: &mut World<'_, '_>, other: &mut Process| {
        for page in 0..2 {
            w.store(other, elsewhere + page * PAGE, &pattern(100 + page)).unwrap();
        }
        w.empty_working_set(other);
        w.write_modified();
    };

    // Page 0: reset, trimmed, its frame reused. Page 1: in the page file, then reset.
    w.store(&mut p, base, &pattern(0)).unwrap();
    w.store(&mut p, base + PAGE, &pattern(1)).unwrap();
    w.empty_working_set(&p);
    w.reset(&mut p, base, PAGE).unwrap();
    assert_eq!(w.write_modified(), 1);
    reuse(&mut w, &mut other);
    let slots = w.pager.slots().used_slots();
    w.reset(&mut p, base + PAGE, PAGE).unwrap();
    assert_eq!(w.pager.slots().used_slots(), slots - 1);
    // Page 2: reset while resident, still held.
    w.store(&mut p, base + 2 * PAGE, &pattern(2)).unwrap();
    w.reset(&mut p, base + 2 * PAGE, PAGE).unwrap();

    let error = w.reset_undo(&mut p, base + PAGE, 2 * PAGE).unwrap_err();
    assert_eq!(error, SpaceError::ResetDiscarded { addr: base + PAGE });
    assert_eq!(error.windows_error(), None);
    let error = w.reset_undo(&mut p, base, 3 * PAGE).unwrap_err();
    assert_eq!(error, SpaceError::ResetDiscarded { addr: base });
    // Ordinary from then on: a second undo succeeds, the held page is kept...
    assert_eq!(w.reset_undo(&mut p, base, 3 * PAGE), Ok(()));
    w.empty_working_set(&p);
    assert_eq!(w.write_modified(), 1);
    reuse(&mut w, &mut other);
    assert_eq!(w.load(&mut p, base + 2 * PAGE, PAGE_BYTES), pattern(2));
    // ...and the discarded ones read zeros (demand-zero faults, no I/O), and written, are
    // paged out and back as usual.
    let before = w.pager.counters();
    assert_eq!(w.load(&mut p, base, PAGE_BYTES), vec![0; PAGE_BYTES]);
    assert_eq!(w.load(&mut p, base + PAGE, PAGE_BYTES), vec![0; PAGE_BYTES]);
    let after = w.pager.counters();
    assert_eq!(after.demand_zero_faults - before.demand_zero_faults, 2);
    assert_eq!(after.pages_read, before.pages_read);
    w.store(&mut p, base, &pattern(3)).unwrap();
    w.empty_working_set(&p);
    w.write_modified();
    reuse(&mut w, &mut other);
    assert_eq!(w.load(&mut p, base, PAGE_BYTES), pattern(3));
}

/// Wine's `test_write_watch`: `GetWriteWatch` lists the pages written since the last reset,
/// in order, as many as asked; `WRITE_WATCH_FLAG_RESET` resets the pages it returns (only
/// those); `ResetWriteWatch` resets a range; a write across two pages marks both; changing
/// protections does not affect watches; a zero size, a zero count, a range past the
/// reservation and memory without `MEM_WRITE_WATCH` are `ERROR_INVALID_PARAMETER`.
#[test]
fn write_watches_list_the_pages_written_since_the_reset() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let mut storage = Storage::new(32, 32, 4);
    let mut pager = storage.pager(PolicyKind::Fifo, SimDisk::new(32)).unwrap();
    let mut w = World { m: &mut machine, alloc: &mut alloc, pager: &mut pager };
    let mut p = w.process(1, 0);
    let size = 0x10000;
    let base = {
        let (ram, mut tlb) = w.m.split();
        let mut paging = w.pager.with(w.alloc, &mut tlb);
        let rw = Protection::READ_WRITE;
        p.space.reserve_watched(None, size, rw, true, ram, &mut paging).unwrap()
    };
    let info = p.space.query(base).unwrap();
    assert_eq!(
        (info.base, info.allocation_protect, info.size),
        (base, Some(Protection::READ_WRITE), size)
    );
    assert_eq!((info.state, info.protect), (PageState::Committed, Some(Protection::READ_WRITE)));
    assert_eq!(w.watch(&mut p, base, size, false, 64), Ok(vec![]));

    w.store(&mut p, base + PAGE + 1, &[0x44]).unwrap();
    assert_eq!(w.watch(&mut p, base, size, false, 64), Ok(vec![base + PAGE]));
    assert_eq!(w.watch(&mut p, base, size, true, 64), Ok(vec![base + PAGE]));
    assert_eq!(w.watch(&mut p, base, size, false, 64), Ok(vec![]));

    w.store(&mut p, base + 2 * PAGE + 3, &[0x11]).unwrap();
    w.store(&mut p, base + 4 * PAGE + 8, &[0x11]).unwrap();
    assert_eq!(w.watch(&mut p, base, size, false, 64), Ok(vec![base + 2 * PAGE, base + 4 * PAGE]));
    assert_eq!(w.watch(&mut p, base + 3 * PAGE, 2 * PAGE, false, 64), Ok(vec![base + 4 * PAGE]));
    w.reset_watch(&mut p, base, 3 * PAGE).unwrap();
    assert_eq!(w.watch(&mut p, base, size, false, 64), Ok(vec![base + 4 * PAGE]));

    // A write across a page boundary marks both pages.
    w.store(&mut p, base + 2 * PAGE - 2, &0xdead_beef_u32.to_le_bytes()).unwrap();
    let three = vec![base + PAGE, base + 2 * PAGE, base + 4 * PAGE];
    assert_eq!(w.watch(&mut p, base, size, false, 64), Ok(three));
    // A count of one with the reset flag resets the page it returns, and no other.
    assert_eq!(w.watch(&mut p, base, size, true, 1), Ok(vec![base + PAGE]));
    let two = vec![base + 2 * PAGE, base + 4 * PAGE];
    assert_eq!(w.watch(&mut p, base, size, false, 64), Ok(two.clone()));

    // Changing protections does not affect watches.
    assert_eq!(w.protect(&mut p, base, 3 * PAGE, Protection::READ_ONLY), Protection::READ_WRITE);
    let info = p.space.query(base).unwrap();
    assert_eq!((info.size, info.protect), (3 * PAGE, Some(Protection::READ_ONLY)));
    assert_eq!(w.protect(&mut p, base, 3 * PAGE, Protection::READ_WRITE), Protection::READ_ONLY);
    assert_eq!(w.watch(&mut p, base, size, false, 64), Ok(two));
    let info = p.space.query(base).unwrap();
    assert_eq!((info.size, info.protect), (size, Some(Protection::READ_WRITE)));

    // Invalid parameters.
    let invalid = |result: Result<Vec<VirtAddr>, SpaceError>| result.unwrap_err().windows_error();
    assert_eq!(w.watch(&mut p, base, size, false, 0), Err(SpaceError::NoRoom));
    assert_eq!(invalid(w.watch(&mut p, base, size, false, 0)), Some(ERROR_INVALID_PARAMETER));
    assert_eq!(invalid(w.watch(&mut p, base, 0, false, 64)), Some(ERROR_INVALID_PARAMETER));
    assert_eq!(
        w.watch(&mut p, base, size * 2, false, 64),
        Err(SpaceError::NotWatched { addr: base })
    );
    let last = base + size - PAGE;
    assert_eq!(invalid(w.watch(&mut p, last, PAGE + 1, false, 64)), Some(ERROR_INVALID_PARAMETER));
    assert_eq!(w.reset_watch(&mut p, base, 0), Err(SpaceError::ZeroSize));
    let plain = w.commit(&mut p, 1);
    assert_eq!(w.reset_watch(&mut p, plain, PAGE), Err(SpaceError::NotWatched { addr: plain }));
    assert_eq!(invalid(w.watch(&mut p, plain, PAGE, false, 64)), Some(ERROR_INVALID_PARAMETER));
}

/// Wine's `test_write_watch`, "initial protect doesn't matter": a watched reservation
/// reserved and committed no-access records a write made while it was read-write, and
/// keeps it through a decommit. Ours also keeps it through a page-out (the record is the
/// bitmap, not the Dirty bit the trim takes away), and release gives the bitmap's frame
/// back.
#[test]
fn write_watches_survive_protection_decommit_and_page_out() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let mut storage = Storage::new(4, 32, 4);
    let mut pager = storage.pager(PolicyKind::Fifo, SimDisk::new(32)).unwrap();
    let mut w = World { m: &mut machine, alloc: &mut alloc, pager: &mut pager };
    let mut p = w.process(1, 0);
    let size = 0x10000;
    let tables = w.alloc.frames_in_use();
    let none = Protection::NO_ACCESS;
    let base = {
        let (ram, mut tlb) = w.m.split();
        let mut paging = w.pager.with(w.alloc, &mut tlb);
        let base = p.space.reserve_watched(None, size, none, false, ram, &mut paging).unwrap();
        p.space.commit_with(Some(base), size, none, &mut paging).unwrap();
        base
    };
    assert_eq!(w.alloc.frames_in_use(), tables + 1, "the bitmap's frame");
    assert_eq!(w.watch(&mut p, base, size, false, 64), Ok(vec![]));
    assert_eq!(w.protect(&mut p, base, 6 * PAGE, Protection::READ_WRITE), none);
    w.store(&mut p, base + 5 * PAGE + 200, &[3]).unwrap();
    assert_eq!(w.protect(&mut p, base, 6 * PAGE, none), Protection::READ_WRITE);
    assert_eq!(w.watch(&mut p, base, size, false, 64), Ok(vec![base + 5 * PAGE]));

    // Paged out and back: still recorded, and a read does not record a write.
    w.protect(&mut p, base, 6 * PAGE, Protection::READ_WRITE);
    w.store(&mut p, base + PAGE, &pattern(1)).unwrap();
    assert_eq!(w.empty_working_set(&p), 2);
    assert_eq!(w.write_modified(), 2);
    for page in 6..10 {
        w.protect(&mut p, base + page * PAGE, PAGE, Protection::READ_WRITE);
        w.store(&mut p, base + page * PAGE, &[1]).unwrap();
    }
    assert_eq!(w.pager.counters().pages_repurposed, 2);
    w.reset_watch(&mut p, base + 6 * PAGE, 4 * PAGE).unwrap();
    let hard = w.pager.counters().hard_faults;
    assert_eq!(w.load(&mut p, base + PAGE, PAGE_BYTES), pattern(1));
    assert_eq!(w.pager.counters().hard_faults, hard + 1, "read back from the page file");
    assert_eq!(w.watch(&mut p, base, size, false, 64), Ok(vec![base + PAGE, base + 5 * PAGE]));

    {
        let (ram, mut tlb) = w.m.split();
        let mut paging = w.pager.with(w.alloc, &mut tlb);
        let flush = p.space.decommit(base, size, ram, &mut paging).unwrap();
        flush.apply(&mut tlb);
    }
    assert_eq!(w.watch(&mut p, base, size, false, 64), Ok(vec![base + PAGE, base + 5 * PAGE]));
    let (ram, mut tlb) = w.m.split();
    let mut paging = w.pager.with(w.alloc, &mut tlb);
    let flush = p.space.release(base, ram, &mut paging).unwrap();
    flush.apply(&mut tlb);
    assert_eq!(w.alloc.frames_in_use(), tables, "the bitmap's frame and the tables went back");
}

/// Wine's `test_guard_page`, with write watches: a write to a watched guard page raises the
/// guard-page exception first (the write does not happen, nothing is recorded); written
/// again, it is recorded. A `VirtualLock` of the guard page fails with
/// `STATUS_GUARD_PAGE_VIOLATION` without recording a write, and the next lock succeeds.
#[test]
fn a_watched_guard_page_fires_before_the_write_is_recorded() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let mut storage = Storage::new(4, 16, 4);
    let mut pager = storage.pager(PolicyKind::Fifo, SimDisk::new(16)).unwrap();
    let mut w = World { m: &mut machine, alloc: &mut alloc, pager: &mut pager };
    let mut p = w.process(1, 2);
    let guard = Protection::READ_WRITE.guard();
    let base = {
        let (ram, mut tlb) = w.m.split();
        let mut paging = w.pager.with(w.alloc, &mut tlb);
        p.space.reserve_watched(None, PAGE, guard, true, ram, &mut paging).unwrap()
    };
    let info = p.space.query(base).unwrap();
    assert_eq!((info.allocation_protect, info.protect), (Some(guard), Some(guard)));
    assert_eq!(w.watch(&mut p, base, PAGE, false, 64), Ok(vec![]));

    let error = w.store(&mut p, base, &1_u32.to_le_bytes()).unwrap_err();
    assert!(
        matches!(error, MachineError::Exception { exception: Exception::GuardPage { .. }, .. }),
        "{error}"
    );
    assert_eq!(w.watch(&mut p, base, PAGE, false, 64), Ok(vec![]));
    w.store(&mut p, base, &1_u32.to_le_bytes()).unwrap();
    w.store(&mut p, base + 4, &2_u32.to_le_bytes()).unwrap();
    assert_eq!(w.watch(&mut p, base, PAGE, true, 64), Ok(vec![base]));

    w.protect(&mut p, base, PAGE, guard);
    assert_eq!(w.lock(&mut p, base, PAGE), Err(SpaceError::GuardPage { addr: base }));
    assert_eq!(w.watch(&mut p, base, PAGE, false, 64), Ok(vec![]));
    w.lock(&mut p, base, PAGE).unwrap();
    assert_eq!(w.load(&mut p, base, 8), [1, 0, 0, 0, 2, 0, 0, 0]);
    w.unlock(&mut p, base, PAGE).unwrap();
    assert_eq!(w.watch(&mut p, base, PAGE, true, 64), Ok(vec![]));
}

/// The bitmap of a watched reservation is one frame: the bound counts the pages from the
/// base rounded down to the granularity, not only those asked for (ours: Windows does not
/// state a bound).
#[test]
fn a_watched_reservation_fits_its_bitmap_from_the_rounded_base() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let mut storage = Storage::new(32, 32, 4);
    let mut pager = storage.pager(PolicyKind::Fifo, SimDisk::new(32)).unwrap();
    let mut w = World { m: &mut machine, alloc: &mut alloc, pager: &mut pager };
    let mut p = w.process(1, 0);
    let (ram, mut tlb) = w.m.split();
    let mut paging = w.pager.with(w.alloc, &mut tlb);
    let none = Protection::NO_ACCESS;
    // 15 pages past a 64 KiB boundary: the reservation starts 15 pages earlier.
    let addr = VirtAddr::new(0x1000_0000 + 15 * PAGE);
    let too_many = (MAX_WATCHED_PAGES - 14) * PAGE;
    assert_eq!(
        p.space.reserve_watched(Some(addr), too_many, none, false, ram, &mut paging),
        Err(SpaceError::WriteWatchTooLarge {
            pages: MAX_WATCHED_PAGES + 1,
            max: MAX_WATCHED_PAGES
        })
    );
    let fits = (MAX_WATCHED_PAGES - 15) * PAGE;
    let base = p.space.reserve_watched(Some(addr), fits, none, false, ram, &mut paging);
    assert_eq!(base, Ok(VirtAddr::new(0x1000_0000)));
    assert_eq!(
        p.space.query(VirtAddr::new(0x1000_0000)).map(|i| i.size),
        Ok(MAX_WATCHED_PAGES * PAGE)
    );
}

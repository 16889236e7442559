//! The pager on the simulated machine: pages go to the store and come back, with the
//! machine's own Accessed and Dirty bits and a strict TLB.

use paging::VirtAddr;
use paging::frame::BitmapAllocator;
use paging::pager::PAGE_BYTES;
use paging::pager::policy::PolicyKind;
use paging::space::{AddressSpace, ImagePart, Protection, Section, SpaceError};
use paging_harness::fixtures::{PagerBooks as Storage, SimPager, sim_allocator, sim_space};
use paging_sim::{Machine, MachineConfig, MachineError, PagedKernel, ProcessId, SimDisk};
use paging_x86::X86_64;

type TestPager<'s> = SimPager<'s>;

/// One process: its space and its id on the machine.
struct Process {
    space: AddressSpace<X86_64>,
    id: ProcessId,
}

impl Process {
    fn new(
        machine: &mut Machine<X86_64>,
        alloc: &mut BitmapAllocator<'_>,
        pager: &mut TestPager<'_>,
        asid: u16,
    ) -> Self {
        let (space, id) = sim_space(machine, alloc, asid);
        pager.attach(space.root(), space.asid(), 0, u32::MAX).unwrap();
        Self { space, id }
    }

    fn commit(
        &mut self,
        m: &mut Machine<X86_64>,
        pager: &mut TestPager<'_>,
        alloc: &mut BitmapAllocator<'_>,
        pages: u64,
    ) -> Result<VirtAddr, SpaceError> {
        let (_, mut tlb) = m.split();
        let mut paging = pager.with(alloc, &mut tlb);
        self.space.commit_with(None, pages * 4096, Protection::READ_WRITE, &mut paging)
    }

    fn store(
        &mut self,
        m: &mut Machine<X86_64>,
        pager: &mut TestPager<'_>,
        alloc: &mut BitmapAllocator<'_>,
        addr: VirtAddr,
        data: &[u8],
    ) -> Result<(), MachineError> {
        m.switch_to(self.id);
        let mut kernel = PagedKernel::new(&mut self.space, pager, alloc);
        m.store(addr, data, &mut kernel)
    }

    fn load(
        &mut self,
        m: &mut Machine<X86_64>,
        pager: &mut TestPager<'_>,
        alloc: &mut BitmapAllocator<'_>,
        addr: VirtAddr,
        len: usize,
    ) -> Result<Vec<u8>, MachineError> {
        m.switch_to(self.id);
        let mut kernel = PagedKernel::new(&mut self.space, pager, alloc);
        let mut bytes = vec![0; len];
        m.load(addr, &mut bytes, &mut kernel)?;
        Ok(bytes)
    }
}

/// A page of bytes that says which process and page it belongs to.
fn pattern(process: u8, page: u64) -> Vec<u8> {
    (0..PAGE_BYTES)
        .map(|i| process.wrapping_mul(31) ^ (page as u8).wrapping_mul(7) ^ (i as u8))
        .collect()
}

/// The seed's example on a machine with two frames for user data: process 1 has two pages
/// in RAM, process 2 needs one, a page of process 1 goes to the page file, and comes back
/// (a hard fault) when it is touched again; a page trimmed and written but not yet reused
/// comes back without I/O (a soft fault).
#[test]
fn the_seed_example_pages_out_and_back_with_exact_counts() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let mut storage = Storage::new(2, 8, 4);
    let mut pager = storage.pager(PolicyKind::Clock, SimDisk::new(8)).unwrap();
    let m = &mut machine;
    let mut p1 = Process::new(m, &mut alloc, &mut pager, 1);
    let mut p2 = Process::new(m, &mut alloc, &mut pager, 2);

    // Process 1 writes its two pages: both frames are its.
    let one = p1.commit(m, &mut pager, &mut alloc, 2).unwrap();
    p1.store(m, &mut pager, &mut alloc, one, &pattern(1, 0)).unwrap();
    p1.store(m, &mut pager, &mut alloc, one + 0x1000, &pattern(1, 1)).unwrap();
    assert_eq!(pager.performance().physical_available, 0);

    // The working-set manager ages the pages; process 1 then reads its first page only.
    {
        let (ram, mut tlb) = m.split();
        assert_eq!(pager.with(&mut alloc, &mut tlb).age(ram), 2);
    }
    p1.load(m, &mut pager, &mut alloc, one, 8).unwrap();

    // Process 2 needs a page: process 1's second page (not touched since the aging pass)
    // is trimmed, written to the page file, and its frame zeroed for process 2.
    let two = p2.commit(m, &mut pager, &mut alloc, 1).unwrap();
    p2.store(m, &mut pager, &mut alloc, two, &pattern(2, 0)).unwrap();
    let c = pager.counters();
    assert_eq!(
        (c.demand_zero_faults, c.pages_trimmed, c.pages_written, c.pages_repurposed),
        (3, 1, 1, 1)
    );
    assert_eq!(pager.slots().used_slots(), 1);

    // Process 1 touches its second page again: a hard fault reads it back.
    assert_eq!(
        p1.load(m, &mut pager, &mut alloc, one + 0x1000, PAGE_BYTES).unwrap(),
        pattern(1, 1)
    );
    let c = pager.counters();
    assert_eq!((c.hard_faults, c.pages_read, c.soft_faults), (1, 1, 0));

    // Process 2's page is trimmed and written, but its frame is not reused yet: touching it
    // again is a soft fault, no I/O.
    {
        let (ram, mut tlb) = m.split();
        let mut paging = pager.with(&mut alloc, &mut tlb);
        assert_eq!(paging.trim(p2.space.root(), 1, ram), 1);
        assert_eq!(paging.write_modified(ram), 1);
    }
    let reads = pager.counters().pages_read;
    assert_eq!(p2.load(m, &mut pager, &mut alloc, two, PAGE_BYTES).unwrap(), pattern(2, 0));
    let c = pager.counters();
    assert_eq!((c.soft_faults, c.pages_read), (1, reads));

    // Every byte as written, in both processes.
    assert_eq!(p1.load(m, &mut pager, &mut alloc, one, PAGE_BYTES).unwrap(), pattern(1, 0));
    assert_eq!(
        p1.load(m, &mut pager, &mut alloc, one + 0x1000, PAGE_BYTES).unwrap(),
        pattern(1, 1)
    );
    assert_eq!(p2.load(m, &mut pager, &mut alloc, two, PAGE_BYTES).unwrap(), pattern(2, 0));
    // Clean pages (read back, not written since) go to standby without a write.
    let c = pager.counters();
    assert_eq!((c.hard_faults, c.pages_read, c.soft_faults, c.pages_written), (4, 4, 1, 3));
    assert_eq!((c.pages_trimmed, c.pages_repurposed, c.write_clusters), (6, 5, 3));
    let p1c = pager.process_counters(p1.space.root()).unwrap();
    assert_eq!((p1c.page_fault_count, p1c.working_set_size, p1c.peak_working_set_size), (5, 1, 2));
    assert_eq!((p1c.pagefile_usage, p1c.peak_pagefile_usage), (2, 2));
    let perf = pager.performance();
    // Frames plus slots, less the slot held back.
    assert_eq!((perf.commit_total, perf.commit_limit, perf.physical_total), (3, 9, 2));
}

/// A section shared by two processes is paged once for both: its pages go to the store
/// when memory is short and come back for every view; a write-copy view's private copy is
/// paged like private memory.
#[test]
fn a_shared_section_is_paged_once_for_every_view() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let mut storage = Storage::new(3, 16, 4);
    let mut pager = storage.pager(PolicyKind::Fifo, SimDisk::new(16)).unwrap();
    let m = &mut machine;
    let mut p1 = Process::new(m, &mut alloc, &mut pager, 1);
    let mut p2 = Process::new(m, &mut alloc, &mut pager, 2);
    let section = {
        let (ram, mut tlb) = m.split();
        Section::create(4, ram, &mut pager.with(&mut alloc, &mut tlb)).unwrap()
    };
    let rw = Protection::READ_WRITE;
    let a = p1.space.map_view(&section, None, 0, 4, rw, m.ram_mut()).unwrap();
    let b = p2.space.map_view(&section, None, 0, 4, rw, m.ram_mut()).unwrap();
    let wc = Protection::WRITE_COPY;
    let c = {
        let (ram, mut tlb) = m.split();
        let mut paging = pager.with(&mut alloc, &mut tlb);
        p2.space.map_view_with(&section, None, 0, 4, wc, ram, &mut paging).unwrap()
    };
    // The section's four pages, and the write-copy view's four (each may become a copy).
    assert_eq!(pager.performance().commit_total, 8);
    assert_eq!(pager.process_counters(p2.space.root()).unwrap().pagefile_usage, 4);
    for page in 0..4 {
        p1.store(m, &mut pager, &mut alloc, a + page * 0x1000, &pattern(9, page)).unwrap();
    }
    // Four pages, three frames: the section's pages have been to the store already.
    assert!(pager.counters().pages_written >= 1);
    for page in 0..4 {
        let seen = p2.load(m, &mut pager, &mut alloc, b + page * 0x1000, PAGE_BYTES).unwrap();
        assert_eq!(seen, pattern(9, page), "page {page} through the second view");
    }
    // A private copy in the write-copy view, then pressure: it survives a page-out.
    p2.store(m, &mut pager, &mut alloc, c, &pattern(2, 100)).unwrap();
    for page in 0..4 {
        p1.load(m, &mut pager, &mut alloc, a + page * 0x1000, 8).unwrap();
    }
    assert_eq!(p2.load(m, &mut pager, &mut alloc, c, PAGE_BYTES).unwrap(), pattern(2, 100));
    assert_eq!(p1.load(m, &mut pager, &mut alloc, a, PAGE_BYTES).unwrap(), pattern(9, 0));
    assert!(pager.counters().hard_faults >= 4);
    // Teardown gives every frame and slot back.
    let (ram, mut tlb) = m.split();
    let mut paging = pager.with(&mut alloc, &mut tlb);
    p1.space.destroy(ram, &mut paging);
    p2.space.destroy(ram, &mut paging);
    section.close(ram, &mut paging).unwrap();
    let perf = pager.performance();
    assert_eq!((perf.physical_available, perf.commit_total), (3, 0));
    assert_eq!(pager.slots().used_slots(), 0);
}

/// A write-copy view is charged whole when it is mapped, as Windows charges it: past the
/// commit limit it is refused with ERROR_COMMITMENT_LIMIT and nothing changes; unmapping
/// it gives the charge back. A read-write view charges nothing (its section did).
#[test]
fn a_write_copy_view_is_charged_when_mapped() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let mut storage = Storage::new(3, 8, 4);
    let mut pager = storage.pager(PolicyKind::Fifo, SimDisk::new(8)).unwrap();
    let m = &mut machine;
    let mut p1 = Process::new(m, &mut alloc, &mut pager, 1);
    assert_eq!(pager.commit_limit(), 3 + 8 - 1);
    let (ram, mut tlb) = m.split();
    let mut paging = pager.with(&mut alloc, &mut tlb);
    let section = Section::create(4, ram, &mut paging).unwrap();
    let space = &mut p1.space;
    let (rw, wc) = (Protection::READ_WRITE, Protection::WRITE_COPY);
    space.map_view_with(&section, None, 0, 4, rw, ram, &mut paging).unwrap();
    let copies = space.map_view_with(&section, None, 0, 4, wc, ram, &mut paging).unwrap();
    let reservations = space.regions().count();
    let error = space.map_view_with(&section, None, 0, 4, wc, ram, &mut paging).unwrap_err();
    assert_eq!(error, SpaceError::CommitLimit { requested: 4, available: 2 });
    assert_eq!(error.windows_error(), Some(1455));
    assert_eq!(space.regions().count(), reservations);
    assert_eq!(section.views(ram), 2);
    space.unmap_view(copies, ram, &mut paging).unwrap().ignore();
    // An image charges the pages of its write-copy parts only (its data).
    let parts = [
        ImagePart { offset: 1, pages: 2, protect: Protection::EXECUTE_READ },
        ImagePart { offset: 3, pages: 1, protect: wc },
    ];
    let image = space.map_image_with(&section, None, &parts, ram, &mut paging).unwrap();
    assert_eq!(pager.performance().commit_total, 5);
    let (ram, mut tlb) = m.split();
    let mut paging = pager.with(&mut alloc, &mut tlb);
    p1.space.unmap_view(image, ram, &mut paging).unwrap().ignore();
    assert_eq!(pager.performance().commit_total, 4);
    assert_eq!(pager.process_counters(p1.space.root()).unwrap().pagefile_usage, 0);
}

/// Exact LRU needs every reference, and the simulator reports them: a page read through
/// the TLB (no fault) since the others were touched stays when a fourth page needs a
/// frame; without the report, LRU sees only faults and takes that page, the oldest fault.
#[test]
fn exact_lru_sees_the_references_the_machine_reports() {
    for report in [true, false] {
        let mut machine = Machine::<X86_64>::new(MachineConfig::default());
        let mut bitmap = Box::new([0; 128]);
        let mut alloc = sim_allocator(&mut bitmap);
        let mut storage = Storage::new(3, 8, 4);
        let mut pager = storage.pager(PolicyKind::Lru, SimDisk::new(8)).unwrap();
        let m = &mut machine;
        let mut p = Process::new(m, &mut alloc, &mut pager, 1);
        let base = p.commit(m, &mut pager, &mut alloc, 4).unwrap();
        let page = |i: u64| base + i * 0x1000;
        m.switch_to(p.id);
        let mut load = |m: &mut Machine<X86_64>, pager: &mut TestPager<'_>, i: u64| {
            let mut kernel = PagedKernel::new(&mut p.space, pager, &mut alloc);
            let mut byte = [0u8];
            m.load(page(i), &mut byte, &mut kernel).unwrap();
            assert_eq!(m.last_frames().len(), 1);
            if report {
                kernel.report_references(m);
            }
        };
        for i in [0, 1, 2, 0] {
            load(m, &mut pager, i);
        }
        // Three demand-zero faults; the second read of page 0 hit the TLB.
        assert_eq!(pager.counters().demand_zero_faults, 3);
        load(m, &mut pager, 3);
        let faults = |pager: &TestPager<'_>| {
            let c = pager.counters();
            c.demand_zero_faults + c.soft_faults + c.hard_faults
        };
        assert_eq!(faults(&pager), 4);
        // With the report page 1 went (least recently used); without it, page 0 (the
        // oldest fault).
        let (stayed, went) = if report { (0, 1) } else { (1, 0) };
        load(m, &mut pager, stayed);
        assert_eq!(faults(&pager), 4, "report {report}: page {stayed} stayed");
        load(m, &mut pager, went);
        assert_eq!(faults(&pager), 5, "report {report}: page {went} went");
    }
}

/// The share count of a frame is the number of entries that hold it: a section page read
/// through three views is held by three; a write through the write-copy view moves that
/// view to a private copy (held once); unmapping a view lets go of its entry.
#[test]
fn the_share_count_counts_the_entries_that_hold_a_frame() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let mut storage = Storage::new(4, 8, 4);
    let mut pager = storage.pager(PolicyKind::Clock, SimDisk::new(8)).unwrap();
    let m = &mut machine;
    let mut p1 = Process::new(m, &mut alloc, &mut pager, 1);
    let mut p2 = Process::new(m, &mut alloc, &mut pager, 2);
    let (section, a, b, c) = {
        let (ram, mut tlb) = m.split();
        let mut paging = pager.with(&mut alloc, &mut tlb);
        let section = Section::create(1, ram, &mut paging).unwrap();
        let (rw, wc) = (Protection::READ_WRITE, Protection::WRITE_COPY);
        let a = p1.space.map_view_with(&section, None, 0, 1, rw, ram, &mut paging).unwrap();
        let b = p2.space.map_view_with(&section, None, 0, 1, rw, ram, &mut paging).unwrap();
        let c = p2.space.map_view_with(&section, None, 0, 1, wc, ram, &mut paging).unwrap();
        (section, a, b, c)
    };
    p1.store(m, &mut pager, &mut alloc, a, &pattern(1, 0)).unwrap();
    let frame = section.frame(m.ram(), 0).unwrap();
    assert_eq!(pager.share_count(m.ram_mut(), frame), 1);
    p2.load(m, &mut pager, &mut alloc, b, 8).unwrap();
    p2.load(m, &mut pager, &mut alloc, c, 8).unwrap();
    assert_eq!(pager.share_count(m.ram_mut(), frame), 3);
    p2.store(m, &mut pager, &mut alloc, c, &pattern(2, 0)).unwrap();
    assert_eq!(pager.share_count(m.ram_mut(), frame), 2);
    let copy = m.probe(c, paging::Access::Read).unwrap();
    assert_ne!(copy, frame);
    assert_eq!(pager.share_count(m.ram_mut(), copy), 1);
    let (ram, mut tlb) = m.split();
    let mut paging = pager.with(&mut alloc, &mut tlb);
    let flush = p2.space.unmap_view(b, ram, &mut paging).unwrap();
    flush.apply(&mut tlb);
    assert_eq!(pager.share_count(m.ram_mut(), frame), 1);
    assert_eq!(pager.share_count(m.ram_mut(), paging::PhysAddr::new(0x10)), 0);
}

/// A page that was only read since its first touch holds zeros: it leaves memory without
/// a write, and its next touch is a demand-zero fault again. A page written once is
/// written to the store on its way out.
#[test]
fn pages_of_zeros_leave_without_a_write() {
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = Box::new([0; 128]);
    let mut alloc = sim_allocator(&mut bitmap);
    let mut storage = Storage::new(2, 8, 4);
    let mut pager = storage.pager(PolicyKind::Fifo, SimDisk::new(8)).unwrap();
    let m = &mut machine;
    let mut p = Process::new(m, &mut alloc, &mut pager, 1);
    let base = p.commit(m, &mut pager, &mut alloc, 4).unwrap();
    let page = |i: u64| base + i * 0x1000;
    p.load(m, &mut pager, &mut alloc, page(0), 8).unwrap();
    p.store(m, &mut pager, &mut alloc, page(1), &[7]).unwrap();
    // Two more pages push both out (FIFO): only the written one goes to the store.
    p.load(m, &mut pager, &mut alloc, page(2), 8).unwrap();
    p.load(m, &mut pager, &mut alloc, page(3), 8).unwrap();
    let c = pager.counters();
    assert_eq!((c.demand_zero_faults, c.pages_written, c.pages_repurposed), (4, 1, 2));
    assert_eq!(p.load(m, &mut pager, &mut alloc, page(0), 8).unwrap(), vec![0; 8]);
    assert_eq!(p.load(m, &mut pager, &mut alloc, page(1), 1).unwrap(), vec![7]);
    let c = pager.counters();
    assert_eq!((c.demand_zero_faults, c.hard_faults, c.pages_read), (5, 1, 1));
}

//! The pager on the simulated machine: pages go to the store and come back, with the
//! machine's own Accessed and Dirty bits and a strict TLB.

use paging::VirtAddr;
use paging::frame::BitmapAllocator;
use paging::pager::PAGE_BYTES;
use paging::pager::policy::PolicyKind;
use paging::space::{AddressSpace, Protection, Section, SpaceError};
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
    let c = p2.space.map_view(&section, None, 0, 4, Protection::WRITE_COPY, m.ram_mut()).unwrap();
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

//! The simulator's access path as the benchmarks exercise it: a machine with pages mapped,
//! and loads through it. The criterion group `sim` times them; `count-ops` counts them.

use paging::frame::{BitmapAllocator, MemoryRegion};
use paging::space::{AddressSpace, Layout, Protection, SpaceConfig};
use paging::{Asid, PageFlags, PageTable, PhysAddr, Size4KiB, VirtAddr};
use paging_sim::{Machine, MachineConfig, NoResolver, SpaceKernel};
use paging_x86::X86_64;

use crate::random_pages;

/// Loads per measurement.
pub const ACCESSES: u64 = 1 << 16;
/// Where the benchmark maps its pages.
pub const SIM_VIRT: u64 = 0x4000_0000;
/// Pages of the TLB-hit pattern: they all fit the 64-entry TLB.
pub const HIT_PAGES: u64 = 16;
/// Pages of the TLB-miss pattern, visited in a scattered order.
pub const MISS_PAGES: u64 = 4096;

/// A machine (strict TLB checking off, as hardware) running one process with `pages`
/// pages mapped at [`SIM_VIRT`].
///
/// # Panics
///
/// If the tables cannot be built (they fit the machine's RAM by construction).
#[must_use]
pub fn machine_with(pages: u64) -> Machine<X86_64> {
    let config = MachineConfig { strict_tlb: false, ..MachineConfig::default() };
    let mut machine = Machine::<X86_64>::new(config);
    let mut bitmap = vec![0u64; 256];
    let usable = [MemoryRegion::usable(48 << 20, 16 << 20)];
    let mut frames = BitmapAllocator::new(&mut bitmap, &usable).unwrap();
    let mut table = PageTable::<X86_64, _>::new(machine.ram_mut(), &mut frames).unwrap();
    let rw = PageFlags::READABLE | PageFlags::WRITABLE | PageFlags::USER;
    let (virt, phys) = (VirtAddr::new(SIM_VIRT), PhysAddr::new(0));
    table
        .map_range_limited::<Size4KiB, _>(virt, phys, pages * 4096, rw, &mut frames)
        .unwrap()
        .ignore();
    let root = table.root();
    let process = machine.add_process("bench", root, Asid(1));
    machine.switch_to(process);
    machine
}

/// Offsets (bytes from [`SIM_VIRT`]) that hit the TLB: 8-byte loads over [`HIT_PAGES`].
#[must_use]
pub fn hit_offsets() -> Vec<u64> {
    (0..ACCESSES).map(|i| (i % HIT_PAGES) * 4096 + (i * 8) % 4096).collect()
}

/// Offsets that miss the TLB almost every time: [`MISS_PAGES`] pages in a scattered order.
#[must_use]
pub fn miss_offsets() -> Vec<u64> {
    random_pages(ACCESSES).iter().map(|p| (p % MISS_PAGES) * 4096 + 64).collect()
}

/// The sum of the 8-byte values the machine loads at `offsets`.
///
/// # Panics
///
/// If a load faults (every offset is mapped).
pub fn sim_loads(machine: &mut Machine<X86_64>, offsets: &[u64]) -> u64 {
    offsets.iter().fold(0u64, |sum, &offset| {
        let value: u64 =
            machine.load_value(VirtAddr::new(SIM_VIRT + offset), &mut NoResolver).unwrap();
        sum.wrapping_add(value)
    })
}

/// Pages the demand-zero run touches.
pub const DEMAND_ZERO_PAGES: u64 = 1024;

/// A fresh machine for [`demand_zero_run`] (strict TLB checking off).
#[must_use]
pub fn demand_zero_machine() -> Machine<X86_64> {
    Machine::<X86_64>::new(MachineConfig { strict_tlb: false, ..MachineConfig::default() })
}

/// A process commits [`DEMAND_ZERO_PAGES`] pages and stores to each once: every store
/// faults, and the space gives the page a zeroed frame. Returns the faults counted.
///
/// # Panics
///
/// If the space cannot be made or a store fails (the machine has room for all of it).
pub fn demand_zero_run(machine: &mut Machine<X86_64>) -> u64 {
    let mut bitmap = vec![0u64; 256];
    let usable = [MemoryRegion::usable(32 << 20, 32 << 20)];
    let mut frames = BitmapAllocator::new(&mut bitmap, &usable).unwrap();
    let (config, ram) = (SpaceConfig::default(), machine.ram_mut());
    let mut space =
        AddressSpace::<X86_64>::new(Layout::X86_64, config, Asid(1), None, ram, &mut frames)
            .unwrap();
    let base = space.commit(None, DEMAND_ZERO_PAGES * 4096, Protection::READ_WRITE).unwrap();
    let process = machine.add_process("bench", space.root(), space.asid());
    machine.switch_to(process);
    let mut kernel = SpaceKernel::new(&mut space, &mut frames);
    for page in 0..DEMAND_ZERO_PAGES {
        machine.store_value(base + page * 4096, page, &mut kernel).unwrap();
    }
    machine.counters().faults_not_present
}

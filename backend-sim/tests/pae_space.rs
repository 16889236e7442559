//! A 32-bit PAE address space on the simulated machine, whose CPU reads the four PDPTEs
//! only when CR3 is loaded (SDM 4.4.1): the space's page directories exist from its
//! creation, so a fault anywhere is resolved without loading CR3 again.

use paging::space::{AddressSpace, Layout, Protection, SpaceConfig};
use paging::{Asid, FrameAllocator, PageTableFormat, VirtAddr};
use paging_harness::fixtures::{pa, sim_allocator, va};
use paging_sim::mmu::root_in_registers;
use paging_sim::{Machine, MachineConfig, SpaceKernel};
use paging_x86::{Legacy32, Pae, X86_64, X86_64La57};

/// Every address but the null region and the top 64 KiB in user space: a page in each GiB
/// quarter, one for each PDPTE.
const FOUR_GIB_OF_USER: Layout = Layout {
    name: "x86 PAE, 4 GiB of user space",
    lowest: VirtAddr::new(0x1_0000),
    highest: VirtAddr::new(0xFFFE_FFFF),
    kernel_start: VirtAddr::new(0xFFFF_0000),
};

#[test]
fn a_demand_zero_fault_in_each_gib_quarter_resolves_without_a_cr3_reload() {
    let mut bitmap = [0; 128];
    let mut alloc = sim_allocator(&mut bitmap);
    let mut machine = Machine::<Pae>::new(MachineConfig::default());
    let mut space = AddressSpace::<Pae>::new(
        FOUR_GIB_OF_USER,
        SpaceConfig::default(),
        Asid(1),
        None,
        machine.ram_mut(),
        &mut alloc,
    )
    .unwrap();
    assert_eq!(space.root(), pa(0x200_0000));
    assert_eq!(alloc.frames_in_use(), 5, "the PDPT and its four page directories");
    let pages = [0x1000_0000, 0x5000_0000, 0x9000_0000, 0xD000_0000].map(va);
    for page in pages {
        space.reserve(Some(page), 0x1_0000, Protection::READ_WRITE).unwrap();
        space.commit(Some(page), 0x1000, Protection::READ_WRITE).unwrap();
    }
    assert_eq!(alloc.frames_in_use(), 5, "committing takes no frame");

    // CR3 is loaded once, here: the PDPTE registers hold the four directories.
    let process = machine.add_process("p", space.root(), space.asid());
    assert!(machine.switch_to(process));
    let loaded = machine.loaded_root();
    let pdptes = [0x200_1001, 0x200_2001, 0x200_3001, 0x200_4001];
    assert_eq!(loaded.and_then(|root| root.registers()), Some(pdptes));

    let mut kernel = SpaceKernel::new(&mut space, &mut alloc);
    for (quarter, page) in pages.into_iter().enumerate() {
        let value = 0xC0DE_0000 + quarter as u32;
        assert_eq!(machine.load_value::<u32, _>(page + 0x10, &mut kernel), Ok(0), "{page:?}");
        machine.store_value(page + 0x10, value, &mut kernel).unwrap();
        assert_eq!(machine.load_value::<u32, _>(page + 0x10, &mut kernel), Ok(value));
    }
    assert_eq!(machine.counters().faults_not_present, 4, "one demand-zero fault a page");
    assert_eq!(machine.loaded_root(), loaded, "no reload: the same registers");
    // Each page took a zeroed frame, then a page table; the directories were there.
    assert_eq!(alloc.frames_in_use(), 5 + 4 * 2);
    let translations = pages.map(|page| machine.page_table_at(space.root()).translate(page));
    let frames = translations.map(|hit| hit.map(|hit| hit.phys));
    let expected = [0x200_5000, 0x200_7000, 0x200_9000, 0x200_b000].map(pa);
    assert_eq!(frames, expected.map(Ok));

    space.destroy(machine.ram_mut(), &mut alloc);
    assert_eq!(alloc.frames_in_use(), 0);
}

#[test]
fn the_simulated_cpu_loads_the_root_entries_of_exactly_the_formats_that_say_so() {
    // The simulator knows PAE by its shape; the format says it of itself.
    let simulated = [
        root_in_registers::<Pae>(),
        root_in_registers::<Legacy32>(),
        root_in_registers::<X86_64>(),
        root_in_registers::<X86_64La57>(),
    ];
    let declared = [
        Pae::ROOT_ENTRIES_LOADED_WITH_ROOT,
        Legacy32::ROOT_ENTRIES_LOADED_WITH_ROOT,
        X86_64::ROOT_ENTRIES_LOADED_WITH_ROOT,
        X86_64La57::ROOT_ENTRIES_LOADED_WITH_ROOT,
    ];
    assert_eq!((simulated, declared), ([true, false, false, false], [true, false, false, false]));
}

//! The pure parts of the hardware module: the #PF error code, CPUID decoding, CR3 values,
//! and the direct map over host memory (the engine runs on it as on a kernel's).

use paging::frame::{BitmapAllocator, MemoryRegion};
use paging::{
    Access, Asid, EntrySize, FaultCause, FrameBuf, PageFlags, PageTable, PhysAddr, Privilege,
    TableMemory, VirtAddr,
};
use paging_x86::X86_64;
use paging_x86::hw::{
    CpuFeatures, CpuidLeaves, Cr3, Cr3Error, DirectMap, PageFaultCode, decode_fault,
};
use proptest::prelude::*;

use Access::{Execute, Read, Write};
use FaultCause::{NotPresent, Protection, ProtectionKey, ReservedBits, ShadowStack};
use Privilege::{Supervisor, User};

#[test]
fn error_codes_the_cpu_gives() {
    let cases = [
        (0x0, Read, Supervisor, NotPresent, "0x0 (-)"),
        (0x2, Write, Supervisor, NotPresent, "0x2 (W)"),
        (0x3, Write, Supervisor, Protection, "0x3 (P|W)"),
        (0x4, Read, User, NotPresent, "0x4 (U)"),
        (0x5, Read, User, Protection, "0x5 (P|U)"),
        (0x7, Write, User, Protection, "0x7 (P|W|U)"),
        (0x11, Execute, Supervisor, Protection, "0x11 (P|I/D)"),
        (0x14, Execute, User, NotPresent, "0x14 (U|I/D)"),
        (0x9, Read, Supervisor, ReservedBits, "0x9 (P|RSVD)"),
        (0x19, Execute, Supervisor, ReservedBits, "0x19 (P|RSVD|I/D)"),
        (0x25, Read, User, ProtectionKey, "0x25 (P|U|PK)"),
        (0x43, Write, Supervisor, ShadowStack, "0x43 (P|W|SS)"),
        (0x8001, Read, Supervisor, Protection, "0x8001 (P|SGX)"),
    ];
    for (raw, access, privilege, cause, text) in cases {
        let code = PageFaultCode::new(raw);
        let fault = decode_fault(raw, 0xDEAD_B000);
        assert_eq!(
            (fault.access, fault.privilege, fault.cause),
            (access, privilege, cause),
            "{text}"
        );
        assert_eq!(fault.addr, VirtAddr::new(0xDEAD_B000));
        assert_eq!(code.fault(fault.addr), fault);
        assert_eq!(code.to_string(), text);
        assert_eq!(format!("{code:?}"), format!("PageFaultCode({text})"));
    }
}

#[test]
fn error_code_bits_are_the_sdm_positions() {
    let bits = [
        PageFaultCode::PRESENT,
        PageFaultCode::WRITE,
        PageFaultCode::USER,
        PageFaultCode::RESERVED,
        PageFaultCode::FETCH,
        PageFaultCode::PROTECTION_KEY,
        PageFaultCode::SHADOW_STACK,
        PageFaultCode::SGX,
    ];
    let positions: Vec<u32> = bits.iter().map(|b| b.trailing_zeros()).collect();
    assert_eq!(positions, [0, 1, 2, 3, 4, 5, 6, 15]);
    assert_eq!(PageFaultCode::from(0x3).bits(), 0x3);
}

proptest! {
    #[test]
    fn any_code_decodes_by_its_bits(raw in any::<u64>(), cr2 in any::<u64>()) {
        let fault = decode_fault(raw, cr2);
        prop_assert_eq!(fault.access == Execute, raw & 0x10 != 0);
        prop_assert_eq!(fault.access == Write, raw & 0x12 == 0x2);
        prop_assert_eq!(fault.privilege == User, raw & 0x4 != 0);
        prop_assert_eq!(fault.cause == NotPresent, raw & 0x69 == 0);
        prop_assert_eq!(fault.addr.as_u64(), cr2);
    }
}

#[test]
fn cpuid_bits() {
    let none = CpuFeatures::from_cpuid(&CpuidLeaves::default());
    assert_eq!(none, CpuFeatures { phys_bits: 36, virt_bits: 48, ..CpuFeatures::default() });
    type Has = fn(&CpuFeatures) -> bool;
    let cases: [(CpuidLeaves, Has); 9] = [
        (CpuidLeaves { ext1_edx: 1 << 20, ..Default::default() }, |c| c.nx),
        (CpuidLeaves { leaf1_edx: 1 << 13, ..Default::default() }, |c| c.pge),
        (CpuidLeaves { leaf1_ecx: 1 << 17, ..Default::default() }, |c| c.pcid),
        (CpuidLeaves { leaf7_ebx: 1 << 10, ..Default::default() }, |c| c.invpcid),
        (CpuidLeaves { leaf7_ebx: 1 << 7, ..Default::default() }, |c| c.smep),
        (CpuidLeaves { leaf7_ebx: 1 << 20, ..Default::default() }, |c| c.smap),
        (CpuidLeaves { leaf7_ecx: 1 << 3, ..Default::default() }, |c| c.pku),
        (CpuidLeaves { ext1_edx: 1 << 26, ..Default::default() }, |c| c.huge_1gib),
        (CpuidLeaves { leaf7_ecx: 1 << 16, ..Default::default() }, |c| c.la57),
    ];
    for (leaves, has) in cases {
        let cpu = CpuFeatures::from_cpuid(&leaves);
        assert!(has(&cpu), "{leaves:?}");
        // Exactly one feature is on.
        let all = [
            cpu.nx,
            cpu.pge,
            cpu.pcid,
            cpu.invpcid,
            cpu.smep,
            cpu.smap,
            cpu.pku,
            cpu.huge_1gib,
            cpu.la57,
        ];
        assert_eq!(all.iter().filter(|&&on| on).count(), 1, "{leaves:?}");
    }
    let widths = CpuFeatures::from_cpuid(&CpuidLeaves { ext8_eax: 0x3934, ..Default::default() });
    assert_eq!((widths.phys_bits, widths.virt_bits), (52, 57));
}

#[test]
fn cr3_values() {
    let root = PhysAddr::new(0x000F_FFFF_FFFF_F000);
    let cr3 = Cr3::new(root, Asid(0xFFF), true).unwrap();
    assert_eq!(cr3.bits(), 0x800F_FFFF_FFFF_FFFF);
    assert_eq!((cr3.root(), cr3.pcid(), cr3.no_flush()), (root, Asid(0xFFF), true));
    assert_eq!(Cr3::new(PhysAddr::new(0x1000), Asid(0), false).unwrap().bits(), 0x1000);
    let unaligned = PhysAddr::new(0x1008);
    assert_eq!(Cr3::new(unaligned, Asid(0), false), Err(Cr3Error::BadRoot(unaligned)));
    let wide = PhysAddr::new(1 << 52);
    assert_eq!(Cr3::new(wide, Asid(0), false), Err(Cr3Error::BadRoot(wide)));
    assert_eq!(Cr3::new(root, Asid(4096), false), Err(Cr3Error::PcidTooLarge(Asid(4096))));
    // As read back: bit 63 reads as 0; PWT and PCD sit in the PCID field without PCIDE.
    let read = Cr3::from_bits(0x0012_3018);
    assert_eq!(
        (read.root(), read.pcid(), read.no_flush()),
        (PhysAddr::new(0x12_3000), Asid(0x18), false)
    );
    assert!(Cr3Error::PcidTooLarge(Asid(4096)).to_string().contains("4096"));
}

/// Host frames standing in for physical memory at `BASE`, reached through a direct map.
const BASE: u64 = 0x10_0000;
const FRAMES: usize = 32;

fn direct_map(frames: &mut [FrameBuf]) -> DirectMap {
    let virt = frames.as_mut_ptr().expose_provenance() as u64;
    let end = PhysAddr::new(BASE + (frames.len() * 4096) as u64);
    // SAFETY: the frames are mapped at `virt`, i.e. physical BASE + offset; the slice is
    // not used through a reference while the map lives (the tests read it after).
    unsafe { DirectMap::new(virt.wrapping_sub(BASE), PhysAddr::new(BASE), end) }
}

#[test]
fn direct_map_reads_and_writes_entries() {
    let mut frames = vec![FrameBuf::ZERO; FRAMES];
    let mut memory = direct_map(&mut frames);
    let at = PhysAddr::new(BASE + 0x1008);
    memory.write_entry(at, EntrySize::Eight, 0x1122_3344_5566_7788);
    assert_eq!(memory.read_entry(at, EntrySize::Eight), 0x1122_3344_5566_7788);
    assert_eq!(memory.read_entry(at, EntrySize::Four), 0x5566_7788);
    assert_eq!(memory.read_entry(at + 4, EntrySize::Four), 0x1122_3344);
    memory.write_entry(at + 4, EntrySize::Four, 0xAABB_CCDD);
    assert_eq!(memory.read_entry(at, EntrySize::Eight), 0xAABB_CCDD_5566_7788);
    memory.copy_frame(PhysAddr::new(BASE + 0x2000), PhysAddr::new(BASE + 0x1000));
    assert_eq!(
        memory.read_entry(PhysAddr::new(BASE + 0x2008), EntrySize::Eight),
        0xAABB_CCDD_5566_7788
    );
    memory.zero_frame(PhysAddr::new(BASE + 0x1000));
    assert_eq!(memory.read_entry(at, EntrySize::Eight), 0);
    // Outside the range, or unaligned: zero, and writes dropped.
    let end = BASE + (FRAMES * 4096) as u64;
    for outside in [BASE - 8, end, u64::MAX - 7, BASE + 3] {
        memory.write_entry(PhysAddr::new(outside), EntrySize::Eight, 1);
        assert_eq!(memory.read_entry(PhysAddr::new(outside), EntrySize::Eight), 0);
    }
    assert!(memory.contains(PhysAddr::new(BASE)) && memory.contains(PhysAddr::new(end - 4096)));
    assert!(!memory.contains(PhysAddr::new(end)) && !memory.contains(PhysAddr::new(BASE + 8)));
    assert_eq!(memory.virt(PhysAddr::new(end)), None);
    assert_eq!(memory.range(), (PhysAddr::new(BASE), PhysAddr::new(end)));
    // The map is done with: the frames are read as Rust values again.
    assert_eq!(frames[2].0[1], 0xAABB_CCDD_5566_7788);
}

#[test]
fn the_engine_runs_on_a_direct_map() {
    let mut frames = vec![FrameBuf::ZERO; FRAMES];
    let mut memory = direct_map(&mut frames);
    let mut bitmap = [0u64; 1];
    let map = [MemoryRegion::usable(BASE, (FRAMES * 4096) as u64)];
    let mut alloc = BitmapAllocator::new(&mut bitmap, &map).unwrap();
    let mut table = PageTable::<X86_64, _>::new(&mut memory, &mut alloc).unwrap();
    let flags = PageFlags::READABLE | PageFlags::WRITABLE;
    let virt = VirtAddr::new(0xFFFF_8000_0000_0000);
    table
        .map_range(virt, PhysAddr::new(0x4000_0000), 0x40_0000, flags, &mut alloc)
        .unwrap()
        .ignore();
    let hit = table.translate(VirtAddr::new(0xFFFF_8000_0020_1234)).unwrap();
    assert_eq!((hit.phys, hit.size), (PhysAddr::new(0x4020_1234), 2 << 20));
    let root = table.root();
    // The table and the map are done with: the frames are read as Rust values again.
    // The root's entry 256 (the kernel half) points to a table the allocator handed out.
    let root_index = ((root.as_u64() - BASE) / 4096) as usize;
    let entry = frames[root_index].0[256];
    assert_eq!(entry & 0x7, 0x7, "present, writable, user: {entry:#x}");
}

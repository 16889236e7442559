//! Chapter 8: a 32-bit process on a PAE machine, where `!address 0` shows the seed's free
//! region from 0 to 7ffe0000, and the x86 and x64 layouts side by side.

use std::io::Write;

use paging::frame::{BitmapAllocator, FrameAllocator, MemoryRegion};
use paging::space::{AddressSpace, Layout, Protection, RegionInfo, SpaceConfig};
use paging::{Asid, PageTableFormat, VirtAddr};
use paging_sim::{Machine, MachineConfig, SpaceKernel};
use paging_x86::{Pae, X86_64};

use crate::print::{dc, header, listing_of, query, say, table};
use crate::{PAGE, Res};

/// Where Windows maps the page the kernel shares with every process (KUSER_SHARED_DATA),
/// read-only, in a 64 KiB reservation of its own.
const SHARED_USER_DATA: u64 = 0x7FFE_0000;

/// Chapter 8: the 32-bit process, then the layouts.
pub fn layouts(out: &mut impl Write) -> Res {
    header(out, "8. A 32-bit process, and the x86 and x64 layouts side by side")?;
    let mut bitmap = vec![0u64; 128];
    let mut alloc = BitmapAllocator::new(&mut bitmap, &[MemoryRegion::usable(32 << 20, 32 << 20)])?;
    process_32(out, &mut alloc)?;
    side_by_side(out, &mut alloc)?;
    writeln!(out, "  frames in use: {} (nothing leaked)", alloc.frames_in_use())?;
    Ok(())
}

/// The seed's `dc 0` and `!address 0`, in a 32-bit process on a PAE machine.
fn process_32(out: &mut impl Write, alloc: &mut BitmapAllocator<'_>) -> Res {
    say(
        out,
        "The seed dumps address 0 of a process and asks the debugger about it. Here the \
         process is 32-bit: a machine with PAE paging (the format 32-bit Windows uses, for the \
         no-execute bit), and an address space with the 2 GiB user layout. Like every Windows \
         process it gets the page the kernel shares with all processes (KUSER_SHARED_DATA), \
         read-only at 7ffe0000 in a 64 KiB reservation; nothing else is mapped yet.",
    )?;
    let mut machine = Machine::<Pae>::new(MachineConfig::default());
    let mut space = AddressSpace::<Pae>::new(
        Layout::X86_32_2G,
        SpaceConfig::default(),
        Asid(1),
        None,
        machine.ram_mut(),
        alloc,
    )?;
    let shared = VirtAddr::new(SHARED_USER_DATA);
    space.reserve(Some(shared), 0x1_0000, Protection::READ_ONLY)?;
    space.commit(Some(shared), PAGE, Protection::READ_ONLY)?;
    let id = machine.add_process("P32", space.root(), space.asid());
    machine.switch_to(id);
    say(
        out,
        "`dc 0`: no page-table entry maps address 0, the fault is not one the kernel can \
         resolve, and the debugger shows ????????.",
    )?;
    dc(out, &mut machine, "P32", VirtAddr::ZERO, 8, &mut SpaceKernel::new(&mut space, alloc))?;
    say(
        out,
        "`!address 0`, as in the seed: the free region from 0 up to the shared page, 2 GB \
         less 128 KiB, PAGE_NOACCESS. A free region has no type, which WinDbg words as \
         <info not present at the target>.",
    )?;
    query(out, "P32", &space, VirtAddr::ZERO)?;
    say(
        out,
        "The whole user half from 0 (the space hands out nothing below 00010000, but the \
         debugger, like VirtualQuery, starts at 0); the last 64 KiB below 80000000 is never \
         handed out either:",
    )?;
    listing_of::<Pae>(out, regions_from_zero(&space).into_iter())?;
    say(
        out,
        "The shared page is committed: its first read takes a zeroed frame (the real kernel \
         keeps the time and the system's version there).",
    )?;
    dc(out, &mut machine, "P32", shared, 4, &mut SpaceKernel::new(&mut space, alloc))?;
    space.destroy(machine.ram_mut(), alloc);
    Ok(())
}

/// Every run of `space`'s user half from address 0 up, as the debugger walks them.
fn regions_from_zero<F: PageTableFormat>(space: &AddressSpace<F>) -> Vec<RegionInfo> {
    let mut runs = Vec::new();
    let mut at = Some(VirtAddr::ZERO);
    while let Some(info) = at.and_then(|addr| space.query(addr).ok()) {
        at = (info.end() <= space.layout().highest).then(|| info.end());
        runs.push(info);
    }
    runs
}

/// The three layouts in one table, each queried at 0 in a new space.
fn side_by_side(out: &mut impl Write, alloc: &mut BitmapAllocator<'_>) -> Res {
    say(
        out,
        "The seed compares x86 and x64 processes: 4 GB of addresses split half and half \
         between user and kernel mode, against 128 TB for an x64 process. (The seed writes \
         the 32-bit boundary as 0x77777777; it is 0x80000000, and with the 3 GB option (4GT) \
         0xC0000000.) The 128 TB is the user half of x64: 4-level paging translates 48 bits, \
         the user half ends at 00007fff`ffffffff and the kernel half starts at \
         ffff8000`00000000, with non-canonical addresses between. A new space of each layout, \
         side by side (the last column is the size of the free region `!address 0` finds in it):",
    )?;
    let columns = [
        layout_column::<Pae>(Layout::X86_32_2G, 32, alloc)?,
        layout_column::<Pae>(Layout::X86_32_3G, 32, alloc)?,
        layout_column::<X86_64>(Layout::X86_64, 64, alloc)?,
    ];
    let labels = [
        "",
        "user half",
        "user size",
        "kernel half from",
        "kernel size",
        "handed out",
        "free at 0",
    ];
    let rows: Vec<[String; 4]> = labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            [label.to_string(), columns[0][i].clone(), columns[1][i].clone(), columns[2][i].clone()]
        })
        .collect();
    table(out, &rows)?;
    Ok(())
}

/// One column of the layouts table: the layout's halves, and a new space on `F` queried
/// at 0.
fn layout_column<F: PageTableFormat>(
    layout: Layout,
    address_bits: u32,
    alloc: &mut BitmapAllocator<'_>,
) -> Res<[String; 7]> {
    let mut machine = Machine::<F>::new(MachineConfig::default());
    let space = AddressSpace::<F>::new(
        layout,
        SpaceConfig::default(),
        Asid(1),
        None,
        machine.ram_mut(),
        alloc,
    )?;
    let free = space.query(VirtAddr::ZERO)?.size;
    space.destroy(machine.ram_mut(), alloc);
    // The top 64 KiB of the user half is never handed out.
    let user_end = layout.highest.as_u64() + 0x1_0001;
    let kernel_start = layout.kernel_start.as_u64();
    let kernel = (1u128 << address_bits) - u128::from(kernel_start);
    let hex = |a: u64| if address_bits == 32 { format!("{a:08x}") } else { crate::print::short(a) };
    Ok([
        layout.name.to_string(),
        format!("{} - {}", hex(0), hex(user_end - 1)),
        binary_size(u128::from(user_end)),
        hex(kernel_start),
        binary_size(kernel),
        format!("{} - {}", hex(layout.lowest.as_u64()), hex(layout.highest.as_u64())),
        hex(free),
    ])
}

/// A size in the largest binary unit it is a whole number of.
fn binary_size(bytes: u128) -> String {
    let units = [(50, "PiB"), (40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")];
    match units.iter().find(|(shift, _)| bytes >= 1 << shift && bytes % (1 << shift) == 0) {
        Some((shift, unit)) => format!("{} {unit}", bytes >> shift),
        None => format!("{bytes} bytes"),
    }
}

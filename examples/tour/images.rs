//! Chapter 9: an image mapped like notepad.exe (the seed's `!address` of its first page:
//! Image, MEM_IMAGE, PAGE_READONLY in an allocation of PAGE_EXECUTE_WRITECOPY), and ASLR
//! placing the same image at different bases under different seeds.

use std::io::Write;

use paging::frame::{BitmapAllocator, FrameAllocator, MemoryRegion};
use paging::space::{ImagePart, Layout, Protection, Section, SpaceConfig};
use paging::{Asid, Tlb, VirtAddr};
use paging_sim::{Machine, MachineConfig, SpaceKernel};
use paging_x86::X86_64;

use crate::basics::new_process;
use crate::print::{dc, field, full, header, listing, query, say, table};
use crate::{PAGE, RW, Res, Space};

/// Where the seed's debugger found notepad.exe.
const NOTEPAD_BASE: u64 = 0x0000_7FF7_4249_0000;
/// The image's size in pages: headers, .text, .rdata, .data.
const IMAGE_PAGES: u64 = 4;
/// The first 16 bytes of a PE file: the DOS header's `MZ` and the fields after it.
const DOS_HEADER: [u8; 16] = [
    0x4D, 0x5A, 0x90, 0x00, 0x03, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00,
];
/// The image's sections with the protections a loader gives them; the headers (page 0)
/// stay read-only.
const SECTIONS: [ImagePart; 3] = [
    ImagePart { offset: 1, pages: 1, protect: Protection::EXECUTE_READ },
    ImagePart { offset: 2, pages: 1, protect: Protection::READ_ONLY },
    ImagePart { offset: 3, pages: 1, protect: Protection::WRITE_COPY },
];
/// The ASLR seeds the chapter places the image with (`None`: no ASLR). Seed 1 comes twice:
/// the same seed, the same base.
const ASLR_SEEDS: [Option<u64>; 5] = [None, Some(1), Some(2), Some(3), Some(1)];

/// Chapter 9: notepad.exe's image, then ASLR.
pub fn images(out: &mut impl Write) -> Res {
    header(out, "9. An image mapped like notepad.exe, and ASLR")?;
    let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    let mut bitmap = vec![0u64; 128];
    let mut alloc = BitmapAllocator::new(&mut bitmap, &[MemoryRegion::usable(32 << 20, 32 << 20)])?;
    let image = load_file(&mut machine, &mut alloc)?;
    notepad(out, &mut machine, &mut alloc, &image)?;
    aslr(out, &mut machine, &mut alloc, &image)?;
    image.close(machine.ram(), &mut alloc).map_err(|(_, e)| e)?;
    writeln!(out, "  frames in use: {} (nothing leaked)", alloc.frames_in_use())?;
    Ok(())
}

/// An image section holding the file: the kernel writes the DOS header through a
/// read-write view of its own, then unmaps it.
fn load_file(machine: &mut Machine<X86_64>, alloc: &mut BitmapAllocator<'_>) -> Res<Section> {
    let image = Section::create(IMAGE_PAGES, machine.ram_mut(), alloc)?;
    let mut loader = new_process(machine, alloc, "loader", 9)?;
    machine.switch_to(loader.id);
    let view = loader.space.map_view(&image, None, 0, 1, RW, machine.ram_mut())?;
    machine.store(view, &DOS_HEADER, &mut SpaceKernel::new(&mut loader.space, alloc))?;
    loader.space.unmap_view(view, machine.ram_mut(), alloc)?.apply(machine);
    let asid = loader.space.asid();
    loader.space.destroy(machine.ram_mut(), alloc);
    machine.invalidate_space(asid);
    Ok(image)
}

/// notepad.exe mapped at the seed's base, dumped, queried, and its data written.
fn notepad(
    out: &mut impl Write,
    machine: &mut Machine<X86_64>,
    alloc: &mut BitmapAllocator<'_>,
    image: &Section,
) -> Res {
    say(
        out,
        "The seed's second `!address` is of a valid page: the first page of notepad.exe in an \
         x64 process. An image is a section made from an executable file (SEC_IMAGE); the \
         loader maps all of it as one view, each part with the protection its PE section asks \
         for: the headers PAGE_READONLY, .text PAGE_EXECUTE_READ, .rdata PAGE_READONLY, .data \
         PAGE_WRITECOPY. The allocation itself is PAGE_EXECUTE_WRITECOPY: the most any page \
         of an image may become. Here a four-page image, its file's DOS header already in the \
         section, mapped at the seed's base:",
    )?;
    let mut p = new_process(machine, alloc, "notepad", 1)?;
    machine.switch_to(p.id);
    let base = p.space.map_image(
        image,
        Some(VirtAddr::new(NOTEPAD_BASE)),
        &SECTIONS,
        machine.ram_mut(),
    )?;
    dc(out, machine, p.name, base, 8, &mut SpaceKernel::new(&mut p.space, alloc))?;
    query(out, p.name, &p.space, base)?;
    field(out, "Image Path", "notepad.exe")?;
    field(out, "Module Name", "notepad")?;
    say(
        out,
        "(The space knows no file names: the debugger reads the image path and module name \
         from the loader's module list, here the tour's.) The whole image: one allocation, \
         four runs of type MEM_IMAGE.",
    )?;
    let end = base + IMAGE_PAGES * PAGE;
    listing(out, &p.space, base, end)?;
    say(
        out,
        "notepad writes to its .data. The page is write-copy: the write gives the process a \
         private copy, the page becomes PAGE_READWRITE, and it stays MEM_IMAGE; other \
         processes mapping the image keep seeing the file's page.",
    )?;
    let data = base + 3 * PAGE;
    machine.store(data, b"notepad's data", &mut SpaceKernel::new(&mut p.space, alloc))?;
    listing(out, &p.space, data, end)?;
    p.space.unmap_view(base, machine.ram_mut(), alloc)?.apply(machine);
    p.space.destroy(machine.ram_mut(), alloc);
    Ok(())
}

/// The same image mapped with no address in spaces of different ASLR seeds.
fn aslr(
    out: &mut impl Write,
    machine: &mut Machine<X86_64>,
    alloc: &mut BitmapAllocator<'_>,
    image: &Section,
) -> Res {
    say(
        out,
        "The seed: ASLR \"randomly arranges the address space positions of key data areas of \
         a process, including the base of the executable\", so that an exploit cannot know \
         where code lies. The seed's 00007ff7`42490000 was one such pick. A space takes its \
         randomness from a seed (SpaceConfig::aslr_seed), so that a run can be replayed: the \
         same image mapped with no address in new spaces, without ASLR (the lowest free 64 \
         KiB boundary) and under four seeds, seed 1 twice:",
    )?;
    let mut rows = vec![["ASLR seed", "image base"].map(String::from)];
    for (asid, seed) in (20..).zip(ASLR_SEEDS) {
        let config = SpaceConfig { aslr_seed: seed, ..SpaceConfig::default() };
        let mut space =
            Space::new(Layout::X86_64, config, Asid(asid), None, machine.ram_mut(), alloc)?;
        let base = space.map_image(image, None, &SECTIONS, machine.ram_mut())?;
        rows.push([seed.map_or_else(|| "none".into(), |s| s.to_string()), full(base.as_u64())]);
        space.unmap_view(base, machine.ram_mut(), alloc)?.ignore();
        space.destroy(machine.ram_mut(), alloc);
    }
    table(out, &rows)?;
    Ok(())
}

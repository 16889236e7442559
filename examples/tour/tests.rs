//! The tour runs to the end and says what each chapter shows, with exact values.

use crate::images::images;
use crate::layouts::layouts;
use crate::run;
use crate::swapping::swapping;
use crate::wx::write_xor_execute;

/// What `chapter` prints, and its lines with runs of spaces made one (columns are padded).
fn play(chapter: fn(&mut Vec<u8>) -> crate::Res) -> (String, Vec<String>) {
    let mut out = Vec::new();
    chapter(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines = text.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    (text, lines)
}

/// Asserts that each of `expected` is one of `lines`, exactly.
fn shows(text: &str, lines: &[String], expected: &[&str]) {
    for line in expected {
        assert!(lines.iter().any(|l| l == line), "the chapter should show {line:?}:\n{text}");
    }
}

#[test]
fn the_tour_runs_to_the_end() {
    let mut out = Vec::new();
    run(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    for fact in [
        "????????",
        "MEM_COMMIT",
        "MEM_RESERVE",
        "hello from A",
        "hello from B",
        "old protection: PAGE_READWRITE",
        "the page allows no access (PAGE_NOACCESS)",
        "the page is not writable (PAGE_READONLY)",
        "data execution prevention",
        "commits the reserved page and retries",
        "guard page exception 0x80000001",
        "MEM_MAPPED",
        "PAGE_WRITECOPY",
        "A wrote this....",
        "B wrote this....",
        "nothing leaked",
    ] {
        assert!(text.contains(fact), "the tour should say {fact:?}:\n{text}");
    }
    let frame = |who: &str| {
        let line = format!("process {who}: 00000001`23450000 -> physical ");
        text.lines().find_map(|l| l.trim().strip_prefix(&line).map(str::to_owned))
    };
    assert!(frame("A").is_some() && frame("A") != frame("B"), "one address, two frames");
    assert!(text.contains("access violation"));
    assert!(!text.contains('\x1b'), "plain text");
    assert!(text.contains("== 7. Too little RAM"), "the swapping chapter ends the tour");
}

#[test]
fn the_swapping_chapter_pages_out_and_back_with_exact_counts() {
    let mut out = Vec::new();
    swapping(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let prose = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(prose.contains("CommitLimit = 2 + 6 - 1 = 7 pages"), "{text}");
    for fact in [
        "P1> !pte 00000001`00001000  contains 80000000`01001267  valid, frame 0x1001000, \
         Accessed, Dirty",
        "P1> !pte 00000001`00001000  contains 00000000`00080096  transition, frame \
         0x1001000 (modified list)",
        "P1> !pte 00000001`00001000  contains 00000000`00080096  transition, frame \
         0x1001000 (standby list)",
        "P1> !pte 00000001`00001000  contains 00000000`00000008  paging file, slot 0",
        "P2> !pte 00000002`00000000  contains 80000000`01001267  valid, frame 0x1001000",
        "00000001`00001000  73273150 63657320 20646e6f 65676170  P1's second page",
        "this access: hard faults 1, soft faults 0, pages read 1, pages written 1",
        "the machine charged 206320 cycles for it, 204000 of them waiting for the disk",
        "P1> !pte 00000001`00000000  contains 00000000`00000088  paging file, slot 1",
        "P1> !pte 00000001`00001000  contains 80000000`01000227  valid, frame 0x1000000, \
         Accessed",
        "P2> !pte 00000002`00000000  contains 00000000`00080096  transition, frame \
         0x1001000 (standby list)",
        "this access: hard faults 0, soft faults 1, pages read 0, pages written 0",
        "the machine charged 2320 cycles for it, 0 of them waiting for the disk",
        "fails with error 1455 (ERROR_COMMITMENT_LIMIT): committing 16 pages passes the \
         commit limit (4 pages left)",
        "CommitTotal still 3",
    ] {
        assert!(text.contains(fact), "the chapter should say {fact:?}:\n{text}");
    }
    let rows = [
        "P1 0 4 K 8 K 3 8 K",
        "P2 1 4 K 4 K 2 4 K",
        "CommitTotal / CommitLimit / CommitPeak 3 / 7 / 3 pages",
        "PhysicalTotal / PhysicalAvailable 2 / 0 pages",
        "Page faults: demand-zero, soft, hard 3, 1, 1",
        "Pages trimmed / repurposed 3 / 2",
        "Page reads / page writes 1 / 3 (in 3 write requests)",
        "Disk reads / writes 1 / 3",
        "PhysicalAvailable 2 of 2, page file 0 of 6 slots used, CommitTotal 0",
        "page-table frames in use 0 (everything is back: nothing leaked)",
    ];
    let lines: Vec<String> =
        text.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    for row in rows {
        assert!(lines.iter().any(|l| l == row), "the chapter should show {row:?}:\n{text}");
    }
}

#[test]
fn a_32_bit_process_shows_the_seeds_free_region_and_the_layouts_side_by_side() {
    let (text, lines) = play(layouts);
    shows(
        &text,
        &lines,
        &[
            "P32> dc 00000000 L8",
            "00000000 ???????? ???????? ???????? ???????? ????????????????",
            "P32> !address 00000000",
            "Usage: Free",
            "Base Address: 00000000",
            "End Address: 7ffe0000",
            "Region Size: 7ffe0000 ( 2.000 GB)",
            "State: 00010000 MEM_FREE",
            "Protect: 00000001 PAGE_NOACCESS",
            "Type: <info not present at the target>",
            "BaseAddress EndAddress+1 RegionSize Type State Protect Usage",
            "00000000 7ffe0000 7ffe0000 MEM_FREE PAGE_NOACCESS Free",
            "7ffe0000 7ffe1000 00001000 MEM_PRIVATE MEM_COMMIT PAGE_READONLY <unknown>",
            "7ffe1000 7fff0000 0000f000 MEM_PRIVATE MEM_RESERVE <unknown>",
            "7ffe0000 00000000 00000000 00000000 00000000 ................",
            "x86 32-bit 2/2 GiB x86 32-bit 3/1 GiB x86-64 4-level",
            "user half 00000000 - 7fffffff 00000000 - bfffffff 0`00000000 - 7fff`ffffffff",
            "user size 2 GiB 3 GiB 128 TiB",
            "kernel half from 80000000 c0000000 ffff8000`00000000",
            "kernel size 2 GiB 1 GiB 128 TiB",
            "handed out 00010000 - 7ffeffff 00010000 - bffeffff 0`00010000 - 7fff`fffeffff",
            "free at 0 7fff0000 bfff0000 7fff`ffff0000",
            "frames in use: 0 (nothing leaked)",
        ],
    );
}

#[test]
fn an_image_mapped_like_notepad_shows_the_seeds_values_and_aslr_moves_it() {
    let (text, lines) = play(images);
    shows(
        &text,
        &lines,
        &[
            "00007ff7`42490000 00905a4d 00000003 00000004 0000ffff MZ..............",
            "notepad> !address 00007ff7`42490000",
            "Usage: Image",
            "Base Address: 00007ff7`42490000",
            "End Address: 00007ff7`42491000",
            "Region Size: 00000000`00001000 ( 4.000 kB)",
            "State: 00001000 MEM_COMMIT",
            "Protect: 00000002 PAGE_READONLY",
            "Type: 01000000 MEM_IMAGE",
            "Allocation Base: 00007ff7`42490000",
            "Allocation Protect: 00000080 PAGE_EXECUTE_WRITECOPY",
            "Image Path: notepad.exe",
            "Module Name: notepad",
            "7ff7`42491000 7ff7`42492000 0`00001000 MEM_IMAGE MEM_COMMIT PAGE_EXECUTE_READ Image",
            "7ff7`42493000 7ff7`42494000 0`00001000 MEM_IMAGE MEM_COMMIT PAGE_WRITECOPY Image",
            "7ff7`42493000 7ff7`42494000 0`00001000 MEM_IMAGE MEM_COMMIT PAGE_READWRITE Image",
            "none 00000000`00010000",
            "1 00004d2b`147c0000",
            "2 000079f8`2e4f0000",
            "3 00004f2d`e3820000",
            "frames in use: 0 (nothing leaked)",
        ],
    );
    let seed_1 = lines.iter().filter(|l| *l == "1 00004d2b`147c0000").count();
    assert_eq!(seed_1, 2, "the same seed, the same base:\n{text}");
}

#[test]
fn w_x_refuses_execute_read_write_for_the_seeds_reason() {
    let (text, lines) = play(write_xor_execute);
    let prose = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for reason in [
        "generally an indicator of compromise (IoC)",
        "uncommon for memory to be both at the same time",
    ] {
        assert!(prose.contains(reason), "the chapter should give the seed's reason:\n{text}");
    }
    shows(
        &text,
        &lines,
        &[
            "C> VirtualAlloc(NULL, 0x1000, MEM_COMMIT | MEM_RESERVE, PAGE_EXECUTE_READWRITE)",
            "committed pages: 0, nothing was reserved",
            "C> VirtualProtect(code, 0x1000, PAGE_EXECUTE_READWRITE, &old)",
            "C> VirtualProtect(code, 0x1000, PAGE_EXECUTE_READ, &old): old = PAGE_READWRITE",
            "C> the CPU fetches 0xc3 from 00000000`00010000: the code runs",
            "access violation: access violation (0xc0000005) writing 0x10000: the page is not \
             writable (PAGE_EXECUTE_READ)",
            "Protect: 00000040 PAGE_EXECUTE_READWRITE",
            "frames in use: 0 (nothing leaked)",
        ],
    );
    let refusal = "refused: writable and executable memory is refused in this space (W^X)";
    let refusals = lines.iter().filter(|l| *l == refusal).count();
    assert_eq!(refusals, 2, "VirtualAlloc and VirtualProtect are both refused:\n{text}");
}

//! The tour runs to the end and says what each chapter shows, with exact values.

use crate::run;
use crate::swapping::swapping;

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

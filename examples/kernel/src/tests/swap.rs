//! Swapping on the real MMU: the pager the simulator runs, here with the CPU's own
//! Accessed and Dirty bits and TLB, paging to the IDE disk QEMU attaches (ata.rs). The #PF
//! handler resolves faults as the simulator's `PagedKernel` does, through the space's
//! `resolve` with the pager's handle as its frame source, first in a [`FaultChain`] whose
//! second chance is a process without a handler.
//!
//! Each test has a pager of [`PAGER_FRAMES`] frames and a part of the disk of its own, and
//! reports the disk slots that hold its pages at the end (`pagefile slot S seed X`):
//! `cargo xtask qemu` reads the image after the run and checks each slot's bytes.

use paging::frame::BitmapAllocator;
use paging::pager::policy::PolicyKind;
use paging::pager::{PagerCounters, Slot};
use paging::space::{AddressSpace, FaultChain, Protection, Prototype, Section, SpaceConfig};
use paging::table::Lookup;
use paging::{Access, Asid, Exception, Fault, FaultPolicy, PageFlags, PhysAddr, Resolution};
use paging::{SoftwarePte, Tlb, VirtAddr};
use paging_x86::hw::{DirectMap, HwTlb};

use crate::ata::AtaError;
use crate::fail::Fail;
use crate::machine::{Format, Machine};
use crate::swap::{FrameBlock, KernelPager, PAGER_FRAMES, pattern_word, seed};
use crate::trap::{self, load, probe_load, store};
use crate::{ensure, fail, println};

type Space<F> = AddressSpace<F, 32>;

const PAGE: u64 = 4096;
const WORDS: u64 = PAGE / 8;
/// The disk's parts, in slots: one per test. The image `cargo xtask qemu` attaches holds
/// 1024 slots (4 MiB), all of them.
const FOUR_TIMES_PART: (u32, u32) = (0, 512);
const SECTION_PART: (u32, u32) = (512, 256);
const IN_PAGE_PART: (u32, u32) = (768, 128);
const CLOCK_PART: (u32, u32) = (896, 128);

/// The machine's parts a swap test uses beside the pager, which borrows the disk.
struct Parts<'m> {
    memory: &'m mut DirectMap,
    frames: &'m mut BitmapAllocator<'static>,
    /// Invalidations, through the handler and the pager.
    tlb: HwTlb,
    /// Switches between spaces.
    switch: HwTlb,
    kernel_root: PhysAddr,
}

type SwapTest<F> = fn(&mut Parts<'_>, &mut KernelPager<'_, F>) -> Result<(), Fail>;

/// Runs `test` with a pager of its own over disk slots `part`, on a block of frames
/// taken for it and given back after.
fn with_pager<F: Format>(
    m: &mut Machine<F>,
    part: (u32, u32),
    kind: PolicyKind,
    test: SwapTest<F>,
) -> Result<(), Fail> {
    let block = FrameBlock::take(&mut m.frames)?;
    let (tlb, switch, kernel_root) = (m.tlb_handle(), m.tlb_handle(), m.kernel_root);
    let Machine { memory, frames, swap, .. } = m;
    let result = swap.pager::<F>(block.base, part, kind).and_then(|mut pager| {
        test(&mut Parts { memory, frames, tlb, switch, kernel_root }, &mut pager)
    });
    block.give_back(&mut m.frames)?;
    result
}

/// What reached the process's second chance while a body ran.
struct Chances {
    count: u32,
    exception: Option<Exception>,
}

/// Runs `body` in `space`, page faults going to the kernel (the space and the pager) and
/// then to the process, which has no handler.
fn run_in<F: Format, R>(
    parts: &mut Parts<'_>,
    pager: &mut KernelPager<'_, F>,
    space: &mut Space<F>,
    body: impl FnOnce() -> R,
) -> (R, Chances) {
    let (root, asid) = (space.root(), space.asid());
    let Parts { memory, frames, tlb, switch, kernel_root } = parts;
    let kernel = |_: &mut (), fault: &Fault| {
        let mut paging = pager.with(&mut **frames, &mut *tlb);
        let (resolution, flush) = space.resolve(fault, &mut **memory, &mut paging);
        flush.apply(tlb);
        resolution
    };
    let unhandled = |_: &mut (), _: &Fault| Resolution::Pass;
    let mut chain = FaultChain::new(kernel, unhandled);
    let mut policy = |fault: &Fault| chain.resolve(&mut (), fault);
    switch.activate(root, asid);
    let result = trap::with_policy(&mut policy, body);
    switch.activate(*kernel_root, Asid(0));
    let chances = Chances { count: chain.second_chances, exception: chain.exception };
    (result, chances)
}

/// A space served by `pager`, sharing the kernel's half.
fn new_space<F: Format>(
    parts: &mut Parts<'_>,
    pager: &mut KernelPager<'_, F>,
    asid: u16,
) -> Result<Space<F>, Fail> {
    let (layout, config, root) = (F::LAYOUT, SpaceConfig::default(), Some(parts.kernel_root));
    let space = Space::new(layout, config, Asid(asid), root, parts.memory, parts.frames)?;
    pager.attach(space.root(), space.asid(), 0, u32::MAX)?;
    Ok(space)
}

/// Reserves and commits `pages` read-write pages, charged to the pager.
fn commit<F: Format>(
    parts: &mut Parts<'_>,
    pager: &mut KernelPager<'_, F>,
    space: &mut Space<F>,
    pages: u64,
) -> Result<u64, Fail> {
    let mut paging = pager.with(parts.frames, &mut parts.tlb);
    Ok(space.commit_with(None, pages * PAGE, Protection::READ_WRITE, &mut paging)?.as_u64())
}

/// Destroys the space, drops its TLB entries and detaches it from the pager.
fn destroy<F: Format>(
    parts: &mut Parts<'_>,
    pager: &mut KernelPager<'_, F>,
    space: Space<F>,
) -> Result<(), Fail> {
    let (root, asid) = (space.root(), space.asid());
    space.destroy(parts.memory, &mut pager.with(parts.frames, &mut parts.tlb));
    parts.tlb.invalidate_space(asid);
    pager.detach(root)?;
    Ok(())
}

/// Fills page `page` of the run at `va` with pattern `seed`.
fn fill(va: u64, page: u64, seed: u64) {
    for word in 0..WORDS {
        // SAFETY: a page of a test's space, which holds nothing of Rust's.
        unsafe { store(va + page * PAGE + word * 8, pattern_word(seed, word)) };
    }
}

/// The first word of page `page` at `va` that does not hold pattern `seed`: `(page,
/// word, value)`.
fn mismatch(va: u64, page: u64, seed: u64) -> Option<(u64, u64, u64)> {
    (0..WORDS).find_map(|word| {
        let value = load(va + page * PAGE + word * 8);
        (value != pattern_word(seed, word)).then_some((page, word, value))
    })
}

/// The page-table state of the page at `va`: mapped (with its flags), or the software
/// entry of a page away from its frame.
enum PageState {
    Mapped(PageFlags),
    Away(SoftwarePte),
    Unmapped,
}

fn page_state<F: Format>(parts: &mut Parts<'_>, space: &Space<F>, va: u64) -> PageState {
    match space.page_table(parts.memory).lookup(VirtAddr::new(va)) {
        Ok(Lookup::Mapped(translation)) => PageState::Mapped(translation.flags),
        Ok(Lookup::Payload { payload, .. }) => {
            SoftwarePte::decode(payload).map_or(PageState::Unmapped, PageState::Away)
        }
        _ => PageState::Unmapped,
    }
}

/// The slot holding a good copy of a page away from its frame: the one its entry names,
/// or the one the pager keeps for its frame on the standby list.
fn slot_of<F: Format>(pager: &KernelPager<'_, F>, away: SoftwarePte) -> Option<Slot> {
    match away {
        SoftwarePte::PagingFile { slot } => Some(slot),
        SoftwarePte::Transition { frame, .. } => standby_slot(pager, frame),
        _ => None,
    }
}

fn standby_slot<F: Format>(pager: &KernelPager<'_, F>, frame: PhysAddr) -> Option<Slot> {
    let database = pager.database();
    database.index_of(frame).and_then(|index| database.record(index)).and_then(|r| r.slot)
}

/// Prints the disk slot of every page of `pages` at `va` that has a good copy there;
/// returns how many.
fn report_private<F: Format>(
    parts: &mut Parts<'_>,
    pager: &KernelPager<'_, F>,
    space: &Space<F>,
    (va, pages): (u64, u64),
    seed_of: impl Fn(u64) -> u64,
) -> u64 {
    let mut reported = 0;
    for page in 0..pages {
        if let PageState::Away(away) = page_state(parts, space, va + page * PAGE)
            && let Some(slot) = slot_of(pager, away)
        {
            report_slot(pager, slot, seed_of(page));
            reported += 1;
        }
    }
    reported
}

fn report_slot<F: Format>(pager: &KernelPager<'_, F>, slot: Slot, seed: u64) {
    println!("pagefile slot {} seed {seed:#x}", pager.store().disk_slot(slot));
}

/// Takes every page of `space` out of its working set and writes the modified ones.
fn page_out<F: Format>(parts: &mut Parts<'_>, pager: &mut KernelPager<'_, F>, root: PhysAddr) {
    let mut paging = pager.with(parts.frames, &mut parts.tlb);
    paging.empty_working_set(root, parts.memory);
    while paging.write_modified(parts.memory) > 0 {}
}

fn faults(c: &PagerCounters) -> u64 {
    c.demand_zero_faults + c.soft_faults + c.hard_faults
}

/// Commits four times the pager's frames, writes a distinct pattern to every page, and
/// reads every page back.
pub fn four_times_the_frames<F: Format>(m: &mut Machine<F>) -> Result<(), Fail> {
    with_pager(m, FOUR_TIMES_PART, PolicyKind::Clock, four_times)
}

fn four_times<F: Format>(
    parts: &mut Parts<'_>,
    pager: &mut KernelPager<'_, F>,
) -> Result<(), Fail> {
    const PAGES: u64 = 4 * PAGER_FRAMES as u64;
    let pattern = |page| seed(1, page);
    let mut space = new_space(parts, pager, 1)?;
    let va = commit(parts, pager, &mut space, PAGES)?;
    let ((), wrote) = run_in(parts, pager, &mut space, || {
        (0..PAGES).for_each(|page| fill(va, page, pattern(page)));
    });
    let (bad, read) = run_in(parts, pager, &mut space, || {
        (0..PAGES).find_map(|page| mismatch(va, page, pattern(page)))
    });
    ensure!(wrote.count + read.count == 0, "a fault reached the process");
    if let Some((page, word, value)) = bad {
        return Err(fail!("page {page} word {word} reads {value:#x} after the round trip"));
    }
    let c = pager.counters();
    println!(
        "info four_times_the_frames: {PAGES} pages on {PAGER_FRAMES} frames: {} demand-zero, {} hard and {} soft faults; {} pages written in {} clusters, {} read",
        c.demand_zero_faults,
        c.hard_faults,
        c.soft_faults,
        c.pages_written,
        c.write_clusters,
        c.pages_read
    );
    let away = PAGES - u64::from(PAGER_FRAMES);
    ensure!(c.demand_zero_faults == PAGES, "{} demand-zero faults", c.demand_zero_faults);
    ensure!(c.pages_written >= away, "only {} pages written", c.pages_written);
    ensure!(c.hard_faults + c.soft_faults >= away, "only {} faults brought pages back", faults(&c));
    ensure!(c.hard_faults > 0 && c.pages_read == c.hard_faults, "reads: {c:?}");
    page_out(parts, pager, space.root());
    let reported = report_private(parts, pager, &space, (va, PAGES), pattern);
    ensure!(reported == PAGES, "only {reported} of {PAGES} pages have a copy on disk");
    destroy(parts, pager, space)?;
    ensure!(pager.slots().used_slots() == 0, "{} slots still used", pager.slots().used_slots());
    Ok(())
}

/// A section shared by two spaces, larger than the pager's frames: its pages go to disk
/// and come back, and both views see the same bytes; a write-copy view keeps its private
/// copy across a page-out.
pub fn shared_section<F: Format>(m: &mut Machine<F>) -> Result<(), Fail> {
    with_pager(m, SECTION_PART, PolicyKind::Clock, section_round_trip)
}

fn section_round_trip<F: Format>(
    parts: &mut Parts<'_>,
    pager: &mut KernelPager<'_, F>,
) -> Result<(), Fail> {
    const PAGES: u64 = PAGER_FRAMES as u64 * 3 / 2;
    let (shared, private) = (|page| seed(2, page), seed(3, 0));
    let (mut a, mut b) = (new_space(parts, pager, 1)?, new_space(parts, pager, 2)?);
    let section =
        Section::create(PAGES, parts.memory, &mut pager.with(parts.frames, &mut parts.tlb))?;
    let rw = Protection::READ_WRITE;
    let view_a = a.map_view(&section, None, 0, PAGES, rw, parts.memory)?.as_u64();
    let view_b = b.map_view(&section, None, 0, PAGES, rw, parts.memory)?.as_u64();
    let wc = Protection::WRITE_COPY;
    let mut paging = pager.with(parts.frames, &mut parts.tlb);
    let copy_b = b.map_view_with(&section, None, 0, PAGES, wc, parts.memory, &mut paging)?.as_u64();

    run_in(parts, pager, &mut a, || (0..PAGES).for_each(|page| fill(view_a, page, shared(page))));
    let hard = pager.counters().hard_faults;
    let (bad, _) = run_in(parts, pager, &mut b, || {
        (0..PAGES).find_map(|page| mismatch(view_b, page, shared(page)))
    });
    ensure!(bad.is_none(), "the second view reads {bad:x?}");
    let back = pager.counters().hard_faults - hard;
    ensure!(back > 0, "no page of the section came back from disk for the second view");

    run_in(parts, pager, &mut b, || fill(copy_b, 0, private));
    let (bad, _) = run_in(parts, pager, &mut a, || {
        (0..PAGES).find_map(|page| mismatch(view_a, page, shared(page)))
    });
    ensure!(bad.is_none(), "the first view reads {bad:x?} after the copy");
    let copy_away = matches!(page_state(parts, &b, copy_b), PageState::Away(_));
    ensure!(copy_away, "the private copy stayed in memory: the test shows no page-out");
    let (seen, chances) = run_in(parts, pager, &mut b, || {
        (
            mismatch(copy_b, 0, private),
            mismatch(copy_b, 1, shared(1)),
            mismatch(view_b, 0, shared(0)),
        )
    });
    ensure!(chances.count == 0, "a fault reached the process");
    ensure!(seen == (None, None, None), "copy, copy's next page, shared page: {seen:x?}");
    println!(
        "info shared_section: {PAGES} pages, {back} read back from disk for the second view; the private copy came back from {}",
        if pager.counters().hard_faults > hard + back { "disk" } else { "standby" }
    );

    page_out(parts, pager, b.root());
    report_private(parts, pager, &b, (copy_b, 1), |_| private);
    for page in 0..PAGES {
        let slot = match section.page(parts.memory, page) {
            Some(Prototype::PagingFile(slot)) => Some(slot),
            Some(Prototype::Transition(frame)) => standby_slot(pager, frame),
            _ => None,
        };
        if let Some(slot) = slot {
            report_slot(pager, slot, shared(page));
        }
    }
    destroy(parts, pager, a)?;
    destroy(parts, pager, b)?;
    section
        .close(parts.memory, &mut pager.with(parts.frames, &mut parts.tlb))
        .map_err(|(_, e)| e)?;
    ensure!(pager.slots().used_slots() == 0, "{} slots still used", pager.slots().used_slots());
    Ok(())
}

/// A read error from the disk during a hard fault: STATUS_IN_PAGE_ERROR through first and
/// second chance, and every other page as it was.
pub fn in_page_error<F: Format>(m: &mut Machine<F>) -> Result<(), Fail> {
    with_pager(m, IN_PAGE_PART, PolicyKind::Clock, read_error)
}

fn read_error<F: Format>(
    parts: &mut Parts<'_>,
    pager: &mut KernelPager<'_, F>,
) -> Result<(), Fail> {
    const PAGES: u64 = 2 * PAGER_FRAMES as u64;
    let pattern = |page| seed(4, page);
    let mut space = new_space(parts, pager, 1)?;
    let va = commit(parts, pager, &mut space, PAGES)?;
    run_in(parts, pager, &mut space, || (0..PAGES).for_each(|page| fill(va, page, pattern(page))));
    let on_disk = (0..PAGES).find_map(|page| match page_state(parts, &space, va + page * PAGE) {
        PageState::Away(SoftwarePte::PagingFile { slot }) => Some((page, slot)),
        _ => None,
    });
    let (victim, slot) = on_disk.ok_or_else(|| fail!("no page went to disk"))?;
    let addr = va + victim * PAGE;

    pager.store_mut().fail_reads_of(slot);
    let errors = pager.counters().read_errors;
    let ((value, logged), chances) =
        run_in(parts, pager, &mut space, || (probe_load(addr), trap::take_logged()));
    let expected = Exception::InPageError { addr: VirtAddr::new(addr), access: Access::Read };
    ensure!(value.is_none(), "the read of page {victim} went through: {value:x?}");
    ensure!(chances.count == 1, "{} second chances, expected 1", chances.count);
    ensure!(chances.exception == Some(expected), "the process ended with {:?}", chances.exception);
    let raised = logged.map(|logged| logged.resolution);
    ensure!(raised == Some(Resolution::Raise(expected)), "the handler saw {raised:?}");
    let device = pager.store().last_error;
    let aborted = matches!(device, Some(AtaError::Device { error, .. }) if error & 0x04 != 0);
    ensure!(aborted, "the drive's error: {device:?}, expected an aborted command");
    ensure!(pager.counters().read_errors == errors + 1, "read errors not counted");
    if let Some(device) = device {
        println!(
            "info in_page_error: page {victim} (disk slot {}): {expected:?}; {device}",
            pager.store().disk_slot(slot)
        );
    }

    let others = (0..PAGES).filter(|&page| page != victim);
    let (bad, chances) = run_in(parts, pager, &mut space, || {
        others.clone().find_map(|page| mismatch(va, page, pattern(page)))
    });
    ensure!(bad.is_none() && chances.count == 0, "another page was disturbed: {bad:x?}");
    pager.store_mut().clear_failures();
    let (bad, _) = run_in(parts, pager, &mut space, || mismatch(va, victim, pattern(victim)));
    ensure!(bad.is_none(), "page {victim} reads {bad:x?} once the disk reads again");
    destroy(parts, pager, space)
}

/// A TLB that invalidates nothing: what a pager that forgets to invalidate would use.
struct NoInvalidation;

impl Tlb for NoInvalidation {
    fn invalidate_page(&mut self, _: VirtAddr) {}
    fn invalidate_current(&mut self) {}
    fn invalidate_space(&mut self, _: Asid) {}
    fn invalidate_all(&mut self) {}
    fn activate(&mut self, _: PhysAddr, _: Asid) {}
}

/// Clock on the real Accessed bits: pages touched between aging and trimming stay,
/// untouched ones go. Without the invalidation of the entries whose bits the pager
/// clears, the CPU keeps using its cached translations and never sets the bits again:
/// touched pages look idle.
pub fn clock_accessed_bits<F: Format>(m: &mut Machine<F>) -> Result<(), Fail> {
    with_pager(m, CLOCK_PART, PolicyKind::Clock, clock)
}

fn clock<F: Format>(parts: &mut Parts<'_>, pager: &mut KernelPager<'_, F>) -> Result<(), Fail> {
    const PAGES: u64 = 16;
    const TOUCHED: u64 = PAGES / 2;
    let mut space = new_space(parts, pager, 1)?;
    let va = commit(parts, pager, &mut space, PAGES)?;
    let (root, asid) = (space.root(), space.asid());
    let pattern = |page| seed(5, page);
    run_in(parts, pager, &mut space, || (0..PAGES).for_each(|page| fill(va, page, pattern(page))));
    // From here every page is resident: the space stays active with no fault policy (a
    // CR3 load would flush the TLB and hide what the test looks for).
    let touch = |pages: u64| (0..pages).all(|page| probe_load(va + page * PAGE).is_some());
    let accessed = |parts: &mut Parts<'_>| -> u64 {
        (0..PAGES)
            .filter(|&page| is_accessed(parts, &space, va + page * PAGE))
            .fold(0, |set, page| set | 1 << page)
    };

    parts.switch.activate(root, asid);
    let aged = pager.with(parts.frames, &mut parts.tlb).age(parts.memory);
    let touched = touch(TOUCHED);
    let with_invalidation = accessed(parts);
    let trimmed =
        pager.with(parts.frames, &mut parts.tlb).trim(root, TOUCHED as usize, parts.memory);
    let stayed = (0..PAGES)
        .filter(|&page| matches!(page_state(parts, &space, va + page * PAGE), PageState::Mapped(_)))
        .fold(0u64, |set, page| set | 1 << page);

    // The trim reloaded CR3 (no PCIDs) or invalidated the trimmed pages: cache the
    // touched pages' translations again, then age without invalidating them.
    let cached = touch(TOUCHED);
    pager.with(parts.frames, &mut NoInvalidation).age(parts.memory);
    let touched_again = cached && touch(TOUCHED);
    let without_invalidation = accessed(parts);
    parts.switch.activate(parts.kernel_root, Asid(0));

    let first_half = (1 << TOUCHED) - 1;
    ensure!(aged == PAGES as usize && touched && touched_again, "aged {aged}, a touch faulted");
    ensure!(
        with_invalidation == first_half,
        "Accessed bits {with_invalidation:#x}, expected {first_half:#x}"
    );
    ensure!(trimmed == TOUCHED as usize, "{trimmed} pages trimmed, expected {TOUCHED}");
    ensure!(stayed == first_half, "pages {stayed:#x} stayed, expected the touched {first_half:#x}");
    // TCG's TLB is small (it shrinks to 64 entries when little is used) and direct-mapped,
    // so the walks of `age` may evict some touched pages, whose next touch walks again and
    // sets the bit. Only a page whose bit stays clear proves a stale entry, and one is enough
    // to show that Clock without the invalidation would evict a page in use.
    let stale = first_half & !without_invalidation;
    ensure!(
        without_invalidation & !first_half == 0 && stale != 0,
        "without the invalidation the Accessed bits are {without_invalidation:#x}: no touched page kept its cached translation"
    );
    println!(
        "info clock_accessed_bits: touched pages {first_half:#x} stayed; without invalidation, {} of {TOUCHED} touched pages showed no Accessed bit (stale TLB entries)",
        stale.count_ones()
    );

    // The trimmed pages are still in their frames: touching them is a soft fault each.
    let before = pager.counters();
    let (bad, _) = run_in(parts, pager, &mut space, || {
        (TOUCHED..PAGES).find_map(|page| mismatch(va, page, pattern(page)))
    });
    let after = pager.counters();
    let (soft, hard) =
        (after.soft_faults - before.soft_faults, after.hard_faults - before.hard_faults);
    ensure!(bad.is_none(), "a trimmed page reads {bad:x?}");
    ensure!(
        (soft, hard) == (PAGES - TOUCHED, 0),
        "{soft} soft and {hard} hard faults brought the trimmed pages back"
    );
    destroy(parts, pager, space)
}

fn is_accessed<F: Format>(parts: &mut Parts<'_>, space: &Space<F>, va: u64) -> bool {
    matches!(page_state(parts, space, va), PageState::Mapped(flags) if flags.contains(PageFlags::ACCESSED))
}

//! Address spaces on the real MMU: first-chance resolution (demand-zero, guard pages,
//! copy-on-write) from the #PF handler, and two spaces with their own PCIDs.

use paging::space::{AddressSpace, Protection, Section, SpaceConfig};
use paging::table::Lookup;
use paging::{Access, Asid, Exception, Resolution, Tlb, VirtAddr};
use paging_x86::hw::{Cr3, instructions};

use crate::fail::Fail;
use crate::machine::{Format, Machine};
use crate::trap::{self, load, probe_load, store};
use crate::{ensure, fail, println};

type Space<F> = AddressSpace<F, 32>;

fn new_space<F: Format>(m: &mut Machine<F>, asid: u16) -> Result<Space<F>, Fail> {
    let config = SpaceConfig::default();
    let root = Some(m.kernel_root);
    Ok(Space::new(F::LAYOUT, config, Asid(asid), root, &mut m.memory, &mut m.frames)?)
}

/// Runs `body` in `space`, with page faults resolved by the space (and flushed).
fn in_space<F: Format, R>(m: &mut Machine<F>, space: &mut Space<F>, body: impl FnOnce() -> R) -> R {
    let (root, asid, kernel_root) = (space.root(), space.asid(), m.kernel_root);
    let (mut tlb, mut switch) = (m.tlb_handle(), m.tlb_handle());
    let mut policy = |fault: &paging::Fault| {
        let (resolution, flush) = space.resolve(fault, &mut m.memory, &mut m.frames);
        flush.apply(&mut tlb);
        resolution
    };
    switch.activate(root, asid);
    let result = trap::with_policy(&mut policy, body);
    switch.activate(kernel_root, Asid(0));
    result
}

/// Reserves and commits `size` bytes at `va` (Windows: `MEM_RESERVE | MEM_COMMIT`).
fn reserve_commit<F: Format>(
    space: &mut Space<F>,
    va: u64,
    size: u64,
    protect: Protection,
) -> Result<u64, Fail> {
    let base = space.reserve(Some(VirtAddr::new(va)), size, Protection::READ_WRITE)?;
    Ok(space.commit(Some(base), size, protect)?.as_u64())
}

/// Destroys `space` and drops what the TLB holds for its PCID (the next space may reuse it).
fn destroy<F: Format>(m: &mut Machine<F>, space: Space<F>) {
    let asid = space.asid();
    space.destroy(&mut m.memory, &mut m.frames);
    m.tlb.invalidate_space(asid);
}

fn is_mapped<F: Format>(m: &mut Machine<F>, space: &Space<F>, va: u64) -> Result<bool, Fail> {
    let lookup = space.page_table(&mut m.memory).lookup(VirtAddr::new(va))?;
    Ok(matches!(lookup, Lookup::Mapped(_)))
}

pub fn demand_zero<F: Format>(m: &mut Machine<F>) -> Result<(), Fail> {
    let mut space = new_space(m, 1)?;
    let va = reserve_commit(&mut space, 0x1000_0000, 3 * 4096, Protection::READ_WRITE)?;
    ensure!(!is_mapped(m, &space, va)?, "a committed page is mapped before its first touch");
    let before = trap::page_faults();
    let seen = in_space(m, &mut space, || {
        let first = load(va);
        // SAFETY: a page of the space, which holds nothing of Rust's.
        unsafe { store(va + 8, 0x5A) };
        (first, load(va + 8), load(va + 4096))
    });
    let faults = trap::page_faults() - before;
    ensure!(seen == (0, 0x5A, 0), "read {seen:x?}, expected (0, 5a, 0)");
    ensure!(faults == 2, "{faults} page faults for two pages touched");
    ensure!(!is_mapped(m, &space, va + 2 * 4096)?, "the untouched page got a frame");
    destroy(m, space);
    Ok(())
}

pub fn guard_page<F: Format>(m: &mut Machine<F>) -> Result<(), Fail> {
    let mut space = new_space(m, 1)?;
    let guard = Protection::READ_WRITE.guard();
    let va = reserve_commit(&mut space, 0x2000_0000, 4096, guard)?;
    let (first, logged, second) = in_space(m, &mut space, || {
        let first = probe_load(va);
        (first, trap::take_logged(), probe_load(va))
    });
    ensure!(first.is_none(), "the first touch of a guard page went through");
    let logged = logged.ok_or_else(|| fail!("no fault logged for the guard page"))?;
    let expected =
        Resolution::Notify(Exception::GuardPage { addr: VirtAddr::new(va), access: Access::Read });
    ensure!(logged.resolution == expected, "the space answered {:?}", logged.resolution);
    ensure!(logged.code.bits() == 0, "error code {}, expected a not-present read", logged.code);
    ensure!(second == Some(0), "the second touch read {second:?}, expected a zeroed page");
    destroy(m, space);
    Ok(())
}

pub fn copy_on_write<F: Format>(m: &mut Machine<F>) -> Result<(), Fail> {
    let mut space = new_space(m, 1)?;
    let section = Section::create(1, &mut m.memory, &mut m.frames)?;
    let shared_at = Some(VirtAddr::new(0x3000_0000));
    let copy_at = Some(VirtAddr::new(0x3001_0000));
    let rw = Protection::READ_WRITE;
    let shared = space.map_view(&section, shared_at, 0, 1, rw, &mut m.memory)?.as_u64();
    let wc = Protection::WRITE_COPY;
    let copy = space.map_view(&section, copy_at, 0, 1, wc, &mut m.memory)?.as_u64();
    let before = trap::page_faults();
    let seen = in_space(m, &mut space, || {
        // SAFETY: pages of the space's views, which hold nothing of Rust's.
        unsafe { store(shared, 0x11) };
        let through_copy = load(copy);
        // SAFETY: as above.
        unsafe { store(copy, 0x22) };
        (through_copy, load(copy), load(shared))
    });
    let faults = trap::page_faults() - before;
    ensure!(seen == (0x11, 0x22, 0x11), "read {seen:x?}, expected (11, 22, 11)");
    ensure!(faults == 3, "{faults} page faults, expected 3 (the last a write to a read-only page)");
    let frame = section.frame(&m.memory, 0).ok_or("the section's page is not resident")?;
    ensure!(m.read_phys(frame) == 0x11, "the section's frame changed");
    let private = space.page_table(&mut m.memory).translate(VirtAddr::new(copy))?;
    ensure!(private.frame != frame, "the write-copy view still maps the section");
    destroy(m, space);
    section.close(&m.memory, &mut m.frames).map_err(|(_, error)| error)?;
    Ok(())
}

/// Two spaces, the same address, different values: with PCIDs 1 and 2 (CR3 loads with
/// the no-flush bit) when the CPU has them; QEMU 7.2's TCG does not, and then the spaces
/// switch by plain CR3 loads.
pub fn space_isolation<F: Format>(m: &mut Machine<F>) -> Result<(), Fail> {
    let pcids = m.tlb.pcids();
    let (mut a, mut b) = (new_space(m, 1)?, new_space(m, 2)?);
    let va = reserve_commit(&mut a, 0x4000_0000, 4096, Protection::READ_WRITE)?;
    reserve_commit(&mut b, va, 4096, Protection::READ_WRITE)?;
    let (root_a, root_b, kernel_root) = (a.root(), b.root(), m.kernel_root);
    let (mut tlb, mut switch) = (m.tlb_handle(), m.tlb_handle());
    let mut policy = |fault: &paging::Fault| {
        // SAFETY: ring 0.
        let current = Cr3::from_bits(unsafe { instructions::read_cr3() }).root();
        let space = if current == a.root() { &mut a } else { &mut b };
        let (resolution, flush) = space.resolve(fault, &mut m.memory, &mut m.frames);
        flush.apply(&mut tlb);
        resolution
    };
    let (seen_a, seen_b, pcid_a) = trap::with_policy(&mut policy, || {
        switch.activate(root_a, Asid(1));
        // SAFETY: pages of the spaces, which hold nothing of Rust's.
        unsafe { store(va, 0xAAAA) };
        switch.activate(root_b, Asid(2));
        // SAFETY: as above.
        unsafe { store(va, 0xBBBB) };
        switch.activate(root_a, Asid(1));
        // SAFETY: ring 0.
        let cr3 = Cr3::from_bits(unsafe { instructions::read_cr3() });
        let seen_a = load(va);
        switch.activate(root_b, Asid(2));
        let seen_b = load(va);
        switch.activate(kernel_root, Asid(0));
        (seen_a, seen_b, cr3.pcid())
    });
    let expected = Asid(if pcids { 1 } else { 0 });
    ensure!(pcid_a == expected, "CR3 holds PCID {} in space A", pcid_a.0);
    if !pcids {
        println!("info space_isolation: no PCIDs on this CPU model: plain CR3 switches");
    }
    ensure!((seen_a, seen_b) == (0xAAAA, 0xBBBB), "A reads {seen_a:#x}, B reads {seen_b:#x}");
    let frame_a = a.page_table(&mut m.memory).translate(VirtAddr::new(va))?.frame;
    let frame_b = b.page_table(&mut m.memory).translate(VirtAddr::new(va))?.frame;
    ensure!(frame_a != frame_b, "both spaces map the same frame");
    destroy(m, a);
    destroy(m, b);
    Ok(())
}

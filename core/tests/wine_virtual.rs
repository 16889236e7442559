//! How Windows' memory API behaves, as Wine's conformance suite states it (each of its
//! checks passes on real Windows): the facts of `dlls/kernel32/tests/virtual.c` and
//! `dlls/ntdll/tests/virtual.c` in wine-mirror/wine that this API can express, written as
//! our own tests. Where Wine accepts an older Windows' result (`broken()`) or marks a check
//! `todo_wine`, these tests follow modern Windows and say so.
//!
//! Two departures are the space's policy, not Windows': W^X refuses writable code unless
//! the space allows it (the tests that need `PAGE_EXECUTE_READWRITE` use a space that
//! does), and the space has no file-backed sections (its sections are paging-file memory,
//! Wine's "anonymous mappings").
//!
//! Checks the API cannot express, and why:
//! - `VirtualFree` with type 0, `MEM_FREE`, or `MEM_RELEASE` with a non-zero size
//!   (`ERROR_INVALID_PARAMETER`), and `VirtualAlloc` with `AT_ROUND_TO_PAGE`: the
//!   operations are separate typed methods (`decommit`, `release` takes no size), so no
//!   invalid type or size can be passed.
//! - `VirtualProtect` with a null old-protection pointer (`ERROR_NOACCESS`): the old
//!   protection is returned by value.
//! - Invalid `PAGE_*` combinations reaching `VirtualAlloc`/`VirtualProtect`: a
//!   [`Protection`] is valid by construction; the same bits are refused, with the same
//!   code, by [`Protection::from_windows`] (tested below).
//! - `MEM_RESET`, `MEM_WRITE_WATCH`/`GetWriteWatch`, `VirtualLock`, guard pages with write
//!   watches: the working-set part of the API needs a pager; its tests are on the simulated
//!   machine (backend-sim/tests/working_set.rs).
//! - `SEC_RESERVE` sections (views whose pages are committed later, seen by every view),
//!   `SEC_NOCACHE` sections, `CreateFileMapping` protections and flags, `FILE_MAP_*`
//!   access rights of handles, named mappings, `NtQuerySection`, `NtAreMappedFilesTheSame`:
//!   no handles, names, files or section attributes in this API.
//! - `VirtualAlloc(MEM_COMMIT)` over a file-backed view (`ERROR_ACCESS_DENIED`): no
//!   file-backed sections; an image refuses it as [`SpaceError::WrongType`].
//! - `zero_bits`, `MEM_TOP_DOWN`, placeholders (`MEM_RESERVE_PLACEHOLDER`,
//!   `MEM_PRESERVE_PLACEHOLDER`, `MEM_COALESCE_PLACEHOLDERS`), extended parameters and
//!   address requirements of `NtAllocateVirtualMemoryEx`: placement options this API lacks.
//! - Other processes (`VirtualAllocEx` into a child, `Read`/`WriteProcessMemory`,
//!   invalid handles), DEP/ATL thunks, `IsBad*Ptr`, `PrefetchVirtualMemory`, stacks,
//!   `FlushProcessWriteBuffers`: outside the address space's API.
//! - The returned sizes and addresses of `NtFreeVirtualMemory`: the space returns no
//!   range; the tests check the rounded range through `query` instead.

use paging::space::{
    AddressSpace, ImagePart, Layout, MemoryType, PageState, Protection, RegionInfo, Section,
    SpaceConfig, SpaceError,
};
use paging::{Access, Resolution, VirtAddr};
use paging_harness::fixtures::{Arena, space, touch};
use paging_x86::X86_64;

const FRAMES: usize = 256;
const PAGE: u64 = 0x1000;
const ERROR_INVALID_PARAMETER: u32 = 87;
const ERROR_INVALID_ADDRESS: u32 = 487;
/// The eight base protections, in Windows' order of their `PAGE_*` bits.
const BASE_PROTECTIONS: [Protection; 8] = [
    Protection::NO_ACCESS,
    Protection::READ_ONLY,
    Protection::READ_WRITE,
    Protection::WRITE_COPY,
    Protection::EXECUTE,
    Protection::EXECUTE_READ,
    Protection::EXECUTE_READ_WRITE,
    Protection::EXECUTE_WRITE_COPY,
];

/// A space that allows writable code, as Windows does: for the checks that need it.
fn windows_like() -> SpaceConfig {
    SpaceConfig { allow_write_execute: true, ..SpaceConfig::default() }
}

/// The Windows error code of a refusal.
fn code<T: core::fmt::Debug>(result: Result<T, SpaceError>) -> Option<u32> {
    result.unwrap_err().windows_error()
}

fn info(
    base: VirtAddr,
    allocation: VirtAddr,
    allocation_protect: Protection,
    size: u64,
    state: PageState,
    protect: Option<Protection>,
    kind: MemoryType,
) -> RegionInfo {
    RegionInfo {
        base,
        allocation_base: Some(allocation),
        allocation_protect: Some(allocation_protect),
        size,
        state,
        protect,
        kind: Some(kind),
    }
}

/// What a query of a free page says after its region went.
fn free(base: VirtAddr) -> (VirtAddr, PageState, Option<Protection>, Option<VirtAddr>) {
    (base, PageState::Free, Some(Protection::NO_ACCESS), None)
}

/// kernel32 `test_VirtualAlloc` and `test_VirtualAllocEx` (the part that parallels it):
/// reserving, committing, protecting and freeing one allocation, with `VirtualQuery`
/// after each step.
#[test]
fn virtual_alloc_reserve_commit_protect_free() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut s: AddressSpace<X86_64> =
        space(Layout::X86_64, SpaceConfig::default(), &mut memory, &mut alloc);
    let na = Protection::NO_ACCESS;
    assert_eq!(code(s.reserve(None, 0, na)), Some(ERROR_INVALID_PARAMETER));

    let a = s.reserve(None, 0xFFFC, na).unwrap();
    let reserved = info(a, a, na, 0x1_0000, PageState::Reserved, None, MemoryType::Private);
    assert_eq!(s.query(a), Ok(reserved), "Protect is 0 for reserved pages");
    let ro = Protection::READ_ONLY;
    assert_eq!(
        code(s.protect(a, 0xFFFC, ro, &mut memory, &mut alloc)),
        Some(ERROR_INVALID_ADDRESS)
    );

    assert_eq!(s.commit(Some(a), 0x1000, na), Ok(a));
    let committed = info(a, a, na, 0x1000, PageState::Committed, Some(na), MemoryType::Private);
    assert_eq!(s.query(a), Ok(committed));
    // Not the whole range is committed.
    assert_eq!(
        code(s.protect(a, 0xFFFC, ro, &mut memory, &mut alloc)),
        Some(ERROR_INVALID_ADDRESS)
    );
    let (old, flush) = s.protect(a, 0x1000, ro, &mut memory, &mut alloc).unwrap();
    flush.ignore();
    assert_eq!(old, na);
    let rw = Protection::READ_WRITE;
    let (old, flush) = s.protect(a, 0x1000, rw, &mut memory, &mut alloc).unwrap();
    flush.ignore();
    assert_eq!(old, ro);
    let info = s.query(a).unwrap();
    assert_eq!((info.size, info.state, info.protect), (0x1000, PageState::Committed, Some(rw)));
    let next = s.query(a + 0x1000).unwrap();
    assert_eq!((next.size, next.state, next.protect), (0xF000, PageState::Reserved, None));

    // Invalid protection values: none, two bases, write-copy with read-write.
    for bits in [0, 0x02 | 0x10, 0x04 | 0x80] {
        assert_eq!(Protection::from_windows(bits).unwrap_err().windows_error(), Some(87));
    }

    s.decommit(a, 0x1_0000, &mut memory, &mut alloc).unwrap().ignore();
    s.release(a, &mut memory, &mut alloc).unwrap().ignore();
    let gone = s.query(a).unwrap();
    assert_eq!((gone.base, gone.state, gone.protect, gone.allocation_base), free(a));
    assert_eq!((gone.allocation_protect, gone.kind), (None, None));
}

/// kernel32 `test_VirtualAlloc`, `PAGE_NOCACHE` part: on recent Windows the no-cache
/// modifier belongs to the allocation, not to pages. Wine accepts the older per-page
/// results as `broken()`; this follows modern Windows.
#[test]
fn no_cache_belongs_to_the_allocation() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut s: AddressSpace<X86_64> =
        space(Layout::X86_64, SpaceConfig::default(), &mut memory, &mut alloc);
    let (rw, ro) = (Protection::READ_WRITE, Protection::READ_ONLY);
    let rw_nc = rw.no_cache();
    let a = s.commit(None, 0x2000, rw_nc).unwrap();
    let whole = info(a, a, rw_nc, 0x2000, PageState::Committed, Some(rw_nc), MemoryType::Private);
    assert_eq!(s.query(a), Ok(whole));

    let (old, flush) = s.protect(a, 0x1000, rw, &mut memory, &mut alloc).unwrap();
    flush.ignore();
    assert_eq!(old, rw_nc);
    assert_eq!(s.query(a), Ok(whole), "still one region, still no-cache");

    let (old, flush) = s.protect(a, 0x1000, ro, &mut memory, &mut alloc).unwrap();
    flush.ignore();
    assert_eq!(old, rw_nc);
    let first =
        info(a, a, rw_nc, 0x1000, PageState::Committed, Some(ro.no_cache()), MemoryType::Private);
    assert_eq!(s.query(a), Ok(first));
    s.release(a, &mut memory, &mut alloc).unwrap().ignore();

    let b = s.commit(None, 0x2000, rw).unwrap();
    let (old, flush) = s.protect(b, 0x1000, ro.no_cache(), &mut memory, &mut alloc).unwrap();
    flush.ignore();
    assert_eq!(old, rw);
    let first = info(b, b, rw, 0x1000, PageState::Committed, Some(ro), MemoryType::Private);
    assert_eq!(s.query(b), Ok(first), "a cached allocation stays cached");
}

/// kernel32 `test_VirtualAlloc` (alignment) and ntdll `test_NtAllocateVirtualMemory`
/// (conflicts): allocations start on 64 KiB; a freed base can be allocated again; a
/// reservation inside another's 64 KiB conflicts (`STATUS_CONFLICTING_ADDRESSES`,
/// `ERROR_INVALID_ADDRESS`). Wine allocates `PAGE_EXECUTE_READWRITE`.
#[test]
fn allocations_are_aligned_and_conflict_on_the_granularity() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut s: AddressSpace<X86_64> =
        space(Layout::X86_64, windows_like(), &mut memory, &mut alloc);
    let rwx = Protection::EXECUTE_READ_WRITE;
    let a = s.commit(None, 0x2000, rwx).unwrap();
    assert!(a.is_aligned(0x1_0000u64));
    assert_eq!(code(s.reserve(Some(a + 0x1000), 0x1000, rwx)), Some(ERROR_INVALID_ADDRESS));
    s.release(a, &mut memory, &mut alloc).unwrap().ignore();
    assert_eq!(s.reserve(Some(a), 0x1000, rwx), Ok(a));
    assert_eq!(s.commit(Some(a), 0x1000, rwx), Ok(a));
}

/// ntdll `test_NtAllocateVirtualMemory`, its `NtFreeVirtualMemory` part: decommit rounds
/// the address down and the end up to pages; a size of zero decommits the whole
/// allocation and, like release, needs an address in its first page
/// (`STATUS_FREE_VM_NOT_AT_BASE`, `ERROR_INVALID_ADDRESS`); release rounds the address down
/// to its page. Wine allocates `PAGE_EXECUTE_READWRITE`; read-write shows the same.
#[test]
fn free_rounds_addresses_to_pages_and_size_zero_means_the_allocation() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut s: AddressSpace<X86_64> =
        space(Layout::X86_64, SpaceConfig::default(), &mut memory, &mut alloc);
    let rw = Protection::READ_WRITE;
    let a = s.commit(None, 0x1_0000, rw).unwrap();

    // Two bytes straddling a page boundary: both pages.
    s.decommit(a + 0x1fff, 2, &mut memory, &mut alloc).unwrap().ignore();
    let hole = info(a + 0x1000, a, rw, 0x2000, PageState::Reserved, None, MemoryType::Private);
    assert_eq!(s.query(a + 0x1000), Ok(hole));
    assert_eq!(s.query(a).unwrap().size, 0x1000);

    let not_at_base = s.decommit(a + 0x1001, 0, &mut memory, &mut alloc);
    assert_eq!(
        not_at_base.unwrap_err(),
        SpaceError::NotAllocationBase { addr: a + 0x1001, base: a }
    );
    assert_eq!(
        code(s.decommit(a + 0x1001, 0, &mut memory, &mut alloc)),
        Some(ERROR_INVALID_ADDRESS)
    );
    s.decommit(a + 0xffe, 0, &mut memory, &mut alloc).unwrap().ignore();
    let all = info(a, a, rw, 0x1_0000, PageState::Reserved, None, MemoryType::Private);
    assert_eq!(s.query(a), Ok(all));
    assert_eq!(s.committed_pages(), 0);

    assert_eq!(code(s.release(a + 0x1001, &mut memory, &mut alloc)), Some(ERROR_INVALID_ADDRESS));
    s.release(a + 0xfff, &mut memory, &mut alloc).unwrap().ignore();
    assert_eq!(s.query(a).unwrap().state, PageState::Free);
}

/// kernel32 `test_VirtualProtect`: every `PAGE_*` value from a no-access page and back.
/// Exactly one base protection is valid; write-copy ones are refused on private memory
/// (`ERROR_INVALID_PARAMETER`); `VirtualQuery` reports what was set, the allocation
/// protection stays. Then the recommit loop: committing a committed page with each
/// combination of one execute and one read/write bit.
#[test]
fn virtual_protect_takes_one_base_protection() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut s: AddressSpace<X86_64> =
        space(Layout::X86_64, windows_like(), &mut memory, &mut alloc);
    let na = Protection::NO_ACCESS;
    let a = s.commit(None, PAGE, na).unwrap();
    let (old, flush) = s.protect(a, PAGE, na, &mut memory, &mut alloc).unwrap();
    flush.ignore();
    assert_eq!(old, na);
    let bits_set = (0..16u32).chain((1..16).map(|high| high << 4));
    for bits in bits_set {
        let private_ok = [0x01, 0x02, 0x04, 0x10, 0x20, 0x40].contains(&bits);
        let got = Protection::from_windows(bits).and_then(|p| {
            s.protect(a, PAGE, p, &mut memory, &mut alloc).map(|(old, f)| (old, f, p))
        });
        match got {
            Ok((old, flush, p)) => {
                flush.ignore();
                assert!(private_ok, "{bits:#x} accepted");
                assert_eq!(old, na);
                let now = info(a, a, na, PAGE, PageState::Committed, Some(p), MemoryType::Private);
                assert_eq!(s.query(a), Ok(now));
                assert_eq!(p.windows(), bits);
            }
            Err(error) => {
                assert!(!private_ok, "{bits:#x} refused");
                assert_eq!(error.windows_error(), Some(ERROR_INVALID_PARAMETER), "{bits:#x}");
            }
        }
        s.protect(a, PAGE, na, &mut memory, &mut alloc).unwrap().1.ignore();
    }

    for exec in [0, 0x10, 0x20, 0x40, 0x80] {
        for rw in [0, 0x01, 0x02, 0x04, 0x08] {
            let bits = exec | rw;
            let valid = (exec == 0) != (rw == 0) && bits & (0x08 | 0x80) == 0;
            let p = Protection::from_windows(bits);
            let commit = p.and_then(|p| s.commit_over(a, PAGE, p, &mut memory, &mut alloc));
            assert_eq!(commit.is_ok(), valid, "commit {bits:#x}");
            if let Ok((at, flush)) = commit {
                flush.ignore();
                assert_eq!(at, a);
            } else {
                assert_eq!(commit.unwrap_err().windows_error(), Some(87));
            }
            let protect = p.and_then(|p| s.protect(a, PAGE, p, &mut memory, &mut alloc));
            assert_eq!(protect.is_ok(), valid, "protect {bits:#x}");
            if let Ok((_, flush)) = protect {
                flush.ignore();
            }
        }
    }
    s.release(a, &mut memory, &mut alloc).unwrap().ignore();
}

/// kernel32 `test_VirtualAlloc_protection`: committing with each valid protection gives a
/// one-page private region reporting it (also after a write), and committing the
/// committed page again with it succeeds.
#[test]
fn virtual_alloc_reports_the_protection_asked() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut s: AddressSpace<X86_64> =
        space(Layout::X86_64, windows_like(), &mut memory, &mut alloc);
    for bits in (0..16u32).chain((1..16).map(|high| high << 4)) {
        let valid = [0x01, 0x02, 0x04, 0x10, 0x20, 0x40].contains(&bits);
        let got =
            Protection::from_windows(bits).and_then(|p| s.commit(None, PAGE, p).map(|a| (a, p)));
        let Ok((a, p)) = got else {
            assert!(!valid, "{bits:#x} refused");
            assert_eq!(code(got), Some(ERROR_INVALID_PARAMETER), "{bits:#x}");
            continue;
        };
        assert!(valid, "{bits:#x} accepted");
        let expected = info(a, a, p, PAGE, PageState::Committed, Some(p), MemoryType::Private);
        assert_eq!(s.query(a), Ok(expected));
        if p.allows(Access::Write) {
            assert_eq!(touch(&mut s, a, Access::Write, &mut memory, &mut alloc), Resolution::Retry);
            assert_eq!(s.query(a), Ok(expected), "a write changes nothing");
        }
        let (at, flush) = s.commit_over(a, PAGE, p, &mut memory, &mut alloc).unwrap();
        flush.ignore();
        assert_eq!(at, a);
        s.release(a, &mut memory, &mut alloc).unwrap().ignore();
    }
}

/// kernel32 `test_MapViewOfFile` (and `test_VirtualProtect`'s recommit): committing over
/// committed pages gives them the new protection, keeping their contents. In Wine's test
/// this shows on a view of a paging-file section (read-write, committed read-only); the
/// same call over private memory does the same.
#[test]
fn committing_over_committed_pages_sets_their_protection() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut s: AddressSpace<X86_64> =
        space(Layout::X86_64, SpaceConfig::default(), &mut memory, &mut alloc);
    let (rw, ro) = (Protection::READ_WRITE, Protection::READ_ONLY);
    let section = Section::create(32, &mut memory, &mut alloc).unwrap();
    let view = s.map_view(&section, None, 0, 32, rw, &mut memory).unwrap();
    let whole = info(view, view, rw, 0x2_0000, PageState::Committed, Some(rw), MemoryType::Mapped);
    assert_eq!(s.query(view), Ok(whole));
    assert_eq!(touch(&mut s, view, Access::Write, &mut memory, &mut alloc), Resolution::Retry);
    let (at, flush) = s.commit_over(view, 0x1_0000, ro, &mut memory, &mut alloc).unwrap();
    flush.ignore();
    assert_eq!(at, view);
    let head = info(view, view, rw, 0x1_0000, PageState::Committed, Some(ro), MemoryType::Mapped);
    assert_eq!(s.query(view), Ok(head));
    assert_eq!(touch(&mut s, view, Access::Write, &mut memory, &mut alloc), Resolution::Pass);
    // Decommitting a view is refused (ERROR_INVALID_PARAMETER).
    assert_eq!(code(s.decommit(view, 0x1_0000, &mut memory, &mut alloc)), Some(87));
    s.unmap_view(view, &mut memory, &mut alloc).unwrap().ignore();
    section.close(&memory, &mut alloc).unwrap();

    let a = s.reserve(None, 0x4000, rw).unwrap();
    s.commit(Some(a), 0x2000, rw).unwrap();
    assert_eq!(touch(&mut s, a, Access::Write, &mut memory, &mut alloc), Resolution::Retry);
    let (_, flush) = s.commit_over(a, 0x3000, ro, &mut memory, &mut alloc).unwrap();
    flush.ignore();
    let three = info(a, a, rw, 0x3000, PageState::Committed, Some(ro), MemoryType::Private);
    assert_eq!(s.query(a), Ok(three));
    assert_eq!(s.committed_pages(), 3);
    assert_eq!(touch(&mut s, a, Access::Write, &mut memory, &mut alloc), Resolution::Pass);
    assert_eq!(
        touch(&mut s, a, Access::Read, &mut memory, &mut alloc),
        Resolution::Pass,
        "mapped, read-only"
    );
    s.release(a, &mut memory, &mut alloc).unwrap().ignore();
}

/// kernel32 `test_MapViewOfFile`: a view's `VirtualQuery`; `UnmapViewOfFile` with any
/// address inside the view; the same call on private memory or on nothing fails with
/// `ERROR_INVALID_ADDRESS`; after unmapping, the addresses are free.
#[test]
fn views_unmap_from_any_address_inside() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut s: AddressSpace<X86_64> =
        space(Layout::X86_64, SpaceConfig::default(), &mut memory, &mut alloc);
    let section = Section::create(3, &mut memory, &mut alloc).unwrap();
    for protect in [Protection::READ_ONLY, Protection::READ_WRITE] {
        let v = s.map_view(&section, None, 0, 1, protect, &mut memory).unwrap();
        let one =
            info(v, v, protect, PAGE, PageState::Committed, Some(protect), MemoryType::Mapped);
        assert_eq!(s.query(v), Ok(one));
        s.unmap_view(v, &mut memory, &mut alloc).unwrap().ignore();
    }
    for inside in [100, 4096, 4096 + 100] {
        let v = s.map_view(&section, None, 0, 3, Protection::READ_ONLY, &mut memory).unwrap();
        s.unmap_view(v + inside, &mut memory, &mut alloc).unwrap().ignore();
        let gone = s.query(v).unwrap();
        assert_eq!((gone.base, gone.state, gone.protect, gone.allocation_base), free(v));
        assert_eq!((gone.allocation_protect, gone.kind), (None, None));
    }
    assert_eq!(section.views(&memory), 0);

    let a = s.commit(None, 0x1_0000, Protection::READ_ONLY).unwrap();
    for addr in [a, a + 0x3000, VirtAddr::new(0xdead_beef)] {
        assert_eq!(code(s.unmap_view(addr, &mut memory, &mut alloc)), Some(ERROR_INVALID_ADDRESS));
    }
    s.release(a, &mut memory, &mut alloc).unwrap().ignore();
    section.close(&memory, &mut alloc).unwrap();
}

/// kernel32 `test_mapping` (anonymous `SEC_COMMIT` mappings) and
/// `test_CreateFileMapping_protection`: a view takes, by `VirtualProtect` or by
/// committing again, exactly the protections whose accesses its own protection grants
/// (write-copy grants reads of the view: its writes go to copies); anything else is
/// `ERROR_INVALID_PARAMETER`. `VirtualProtect` returns the protection before; the
/// allocation protection stays the view's.
#[test]
fn a_view_takes_the_protections_its_own_grants() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut s: AddressSpace<X86_64> =
        space(Layout::X86_64, windows_like(), &mut memory, &mut alloc);
    use Protection as P;
    let all = BASE_PROTECTIONS;
    // What each view grants, as Wine's table of accesses says.
    let grants = |view: P, asked: P| match view {
        P::READ_ONLY | P::WRITE_COPY => {
            [P::NO_ACCESS, P::READ_ONLY, P::WRITE_COPY].contains(&asked)
        }
        P::READ_WRITE => {
            [P::NO_ACCESS, P::READ_ONLY, P::READ_WRITE, P::WRITE_COPY].contains(&asked)
        }
        P::EXECUTE_READ | P::EXECUTE_WRITE_COPY => {
            !matches!(asked, P::READ_WRITE | P::EXECUTE_READ_WRITE)
        }
        _ => true,
    };
    let section = Section::create(2, &mut memory, &mut alloc).unwrap();
    for view_protect in [
        P::READ_ONLY,
        P::READ_WRITE,
        P::WRITE_COPY,
        P::EXECUTE_READ,
        P::EXECUTE_READ_WRITE,
        P::EXECUTE_WRITE_COPY,
    ] {
        let v = s.map_view(&section, None, 0, 2, view_protect, &mut memory).unwrap();
        let mut before = view_protect;
        for asked in all {
            let got = s.protect(v, PAGE, asked, &mut memory, &mut alloc);
            if grants(view_protect, asked) {
                let (old, flush) = got.unwrap();
                flush.ignore();
                assert_eq!(old, before, "{view_protect} then {asked}");
                let now = s.query(v).unwrap();
                let kept = (now.allocation_protect, now.state, now.kind);
                let view = (Some(view_protect), PageState::Committed, Some(MemoryType::Mapped));
                assert_eq!(kept, view);
                assert_eq!(now.protect, Some(asked));
                before = asked;
            } else {
                assert_eq!(code(got), Some(ERROR_INVALID_PARAMETER), "{view_protect} then {asked}");
            }
        }
        for asked in all {
            let got = s.commit_over(v, PAGE, asked, &mut memory, &mut alloc);
            if grants(view_protect, asked) {
                got.unwrap().1.ignore();
                assert_eq!(
                    s.query(v).unwrap().protect,
                    Some(asked),
                    "{view_protect} commit {asked}"
                );
            } else {
                assert_eq!(
                    code(got),
                    Some(ERROR_INVALID_PARAMETER),
                    "{view_protect} commit {asked}"
                );
            }
        }
        s.unmap_view(v, &mut memory, &mut alloc).unwrap().ignore();
    }
    section.close(&memory, &mut alloc).unwrap();
}

/// kernel32 `test_mapping` with a `SEC_IMAGE` mapping: the headers' page reads
/// `PAGE_READONLY` with allocation protection `PAGE_EXECUTE_WRITECOPY`, type image; every
/// protection is accepted on an image page, a writable one turned write-copy (the image is
/// never written). Committing over an image is refused (Windows: `ERROR_ACCESS_DENIED` for
/// file-backed views; here a typed refusal).
#[test]
fn image_pages_take_write_copy_for_writable() {
    let mut rig = Arena::new(FRAMES);
    let (mut memory, mut alloc) = rig.parts();
    let mut s: AddressSpace<X86_64> =
        space(Layout::X86_64, windows_like(), &mut memory, &mut alloc);
    use Protection as P;
    let image = Section::create(2, &mut memory, &mut alloc).unwrap();
    let text = [ImagePart { offset: 1, pages: 1, protect: P::EXECUTE_READ }];
    let base = s.map_image(&image, None, &text, &mut memory).unwrap();
    let headers = info(
        base,
        base,
        P::EXECUTE_WRITE_COPY,
        PAGE,
        PageState::Committed,
        Some(P::READ_ONLY),
        MemoryType::Image,
    );
    assert_eq!(s.query(base), Ok(headers));
    let mut before = P::READ_ONLY;
    for asked in BASE_PROTECTIONS {
        let (old, flush) = s.protect(base, PAGE, asked, &mut memory, &mut alloc).unwrap();
        flush.ignore();
        assert_eq!(old, before);
        let actual = match asked {
            P::READ_WRITE => P::WRITE_COPY,
            P::EXECUTE_READ_WRITE => P::EXECUTE_WRITE_COPY,
            other => other,
        };
        assert_eq!(s.query(base).unwrap().protect, Some(actual));
        before = actual;
    }
    let refused = s.commit_over(base, PAGE, P::READ_ONLY, &mut memory, &mut alloc);
    assert_eq!(
        refused.unwrap_err(),
        SpaceError::WrongType { expected: MemoryType::Private, found: MemoryType::Image }
    );
    s.unmap_view(base + PAGE, &mut memory, &mut alloc).unwrap().ignore();
    image.close(&memory, &mut alloc).unwrap();
}

//! The kernel's part of the fault path: first-chance resolution, and the record of a
//! violation that resolution could not explain away.
//!
//! A fault reaches [`AddressSpace::resolve`] first. It materialises committed pages on
//! their first touch (a zeroed frame, or the section's frame), fires a guard page once,
//! gives a write-copy page its private copy, and brings back a page a protection change
//! hid. What it passes goes to the process (second chance, see
//! [`FaultChain`](super::FaultChain)); [`AddressSpace::explain`] says why it is a
//! violation.
//!
//! Two marks let the tables carry what the books do not: frames the space owns carry
//! [`OWNED`] in their entry (they go back to the allocator when unmapped), and a frame
//! hidden by no-access or guard waits in a payload entry ([`hide`], [`unhide`]).

use crate::addr::{Frame, Page, PhysAddr, Size4KiB, VirtAddr};
use crate::error::Occupant;
use crate::fault::{Access, Exception, Fault, FaultCause, Privilege, Resolution};
use crate::flags::PageFlags;
use crate::format::PageTableFormat;
use crate::memory::TableMemory;
use crate::pager::Owner;
use crate::software_pte::SoftwarePte;
use crate::table::{Lookup, NewEntry, PageTable};
use crate::tlb::Flush;

use super::lock::LOCKED;
use super::regions::{Backing, Reservation, Run};
use super::section::{self, Prototype};
use super::source::{FaultKind, FrameSource, PageInError};
use super::{AccessViolation, AddressSpace, PAGE, PageState, Protection, SpaceError, Violation};

/// The page-table software bit that marks a frame this space owns (private memory, or a
/// private copy of a section page): such frames go back to the allocator when unmapped.
pub(crate) const OWNED: PageFlags = PageFlags::SOFTWARE_0;

/// What the tables hold for a page that has one: a frame (present, or hidden by its
/// protection), or a page a pager took away (in transition, or in the paging file).
#[derive(Clone, Copy, Debug)]
enum Held {
    Frame { frame: PhysAddr, owned: bool, present: Option<PageFlags> },
    Paged { pte: SoftwarePte, owned: bool },
}

/// Why a page could not be materialised.
#[derive(Clone, Copy, Debug)]
pub(super) enum Refused {
    /// Nothing the kernel can do: the process gets the fault.
    Pass,
    /// The store could not give the page back.
    InPage,
}

impl<F: PageTableFormat, const N: usize> AddressSpace<F, N> {
    /// First-chance fault resolution: what the kernel can do about `fault` in this space.
    ///
    /// - a committed page touched for the first time gets a zeroed frame (demand-zero) or
    ///   its section's frame;
    /// - a guard page fires once: the guard is cleared and the process is notified;
    /// - a write to a write-copy page gets a private copy, and the page becomes read-write
    ///   (execute-read-write for execute-write-copy);
    /// - a page hidden by a protection change comes back with its protection.
    ///
    /// Anything else is [`Resolution::Pass`]: the process's handler gets a second chance,
    /// and [`explain`](Self::explain) says why it is a violation. Apply the returned flush.
    pub fn resolve<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        fault: &Fault,
        memory: &mut M,
        alloc: &mut A,
    ) -> (Resolution, Flush) {
        let pass = (Resolution::Pass, Flush::new());
        let page = fault.addr.align_down(PAGE);
        if fault.cause == FaultCause::ReservedBits
            || !self.layout.holds(page, PAGE)
            || (self.layout.is_kernel() && fault.privilege == Privilege::User)
        {
            return pass;
        }
        let page = page.as_u64();
        let (Some(reservation), Some(run)) =
            (self.regions.reservation(page).copied(), self.regions.run(page))
        else {
            return pass;
        };
        let run = committed_by_section(&reservation, run, page, memory);
        if run.state != PageState::Committed {
            return pass;
        }
        if run.protect.is_guard() {
            return match self.clear_guard(page) {
                Ok(()) => (
                    Resolution::Notify(Exception::GuardPage {
                        addr: fault.addr,
                        access: fault.access,
                    }),
                    Flush::new(),
                ),
                Err(_) => pass,
            };
        }
        if !run.protect.allows(fault.access) {
            return pass;
        }
        let write = fault.access == Access::Write;
        match self.materialise(page, &reservation, &run, write, memory, alloc) {
            Ok(flush) => (Resolution::Retry, flush),
            Err(Refused::Pass) => pass,
            Err(Refused::InPage) => {
                let exception = Exception::InPageError { addr: fault.addr, access: fault.access };
                (Resolution::Fail(exception), Flush::new())
            }
        }
    }

    /// Says why `fault` is an access violation in this space, for the record a process
    /// ends with.
    #[must_use]
    pub fn explain(&self, fault: &Fault) -> AccessViolation {
        let page = fault.addr.align_down(PAGE).as_u64();
        let kernel_page = fault.addr >= self.layout.kernel_start;
        let reason = if kernel_page
            && (!self.layout.is_kernel() || fault.privilege == Privilege::User)
        {
            Violation::KernelSpace
        } else {
            match self.regions.run(page) {
                None => Violation::Free,
                Some(run) if run.state != PageState::Committed => Violation::Reserved,
                Some(run) if !run.protect.allows(Access::Read) => Violation::NoAccess(run.protect),
                Some(run) if !run.protect.allows(fault.access) => match fault.access {
                    Access::Execute => Violation::NotExecutable(run.protect),
                    _ => Violation::ReadOnly(run.protect),
                },
                Some(_) => Violation::Unresolved,
            }
        };
        AccessViolation { addr: fault.addr, access: fault.access, reason }
    }

    /// Takes the guard off `page` (a guard page fires once), leaving its state and the rest
    /// of its protection; refused only when the region table has no room to split its run.
    pub(super) fn clear_guard(&mut self, page: u64) -> Result<(), SpaceError> {
        self.regions.set(page, page + PAGE, |r| (r.state, r.protect.without_guard()))
    }

    /// Makes the committed page at `page` present as the books say, after an access its
    /// protection allows. Decides everything first (the flags, the books' room for a
    /// private copy) and takes or brings back frames last, giving back what it took when
    /// the entry cannot be written.
    pub(super) fn materialise<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        page: u64,
        reservation: &Reservation,
        run: &Run,
        write: bool,
        memory: &mut M,
        source: &mut A,
    ) -> Result<Flush, Refused> {
        let Ok(held) = self.held(page, memory) else { return Err(Refused::Pass) };
        let owned_now = match held {
            Some(Held::Frame { owned, .. } | Held::Paged { owned, .. }) => owned,
            None => reservation.backing == Backing::Private,
        };
        // A write to a write-copy page, or through a write-copy view to a section frame,
        // makes the page private: it becomes read-write, and a frame the space does not
        // own yet is copied.
        let private = write
            && (run.protect.is_write_copy() || (!owned_now && reservation.protect.is_write_copy()));
        let protect = if private { run.protect.after_copy() } else { run.protect };
        let kernel = self.layout.is_kernel();
        let Some(mut flags) = page_flags(reservation, protect, owned_now || private, kernel) else {
            return Err(Refused::Pass);
        };
        // A locked page stays locked, whatever frame it ends in (a private copy).
        if let Some(Held::Frame { present: Some(now), .. }) = held {
            flags |= now.intersection(LOCKED);
        }
        // A write to a watched page is recorded, and the page is writable until the next
        // reset of the watch.
        let watched = reservation.watch.filter(|_| write && protect.allows(Access::Write));
        if watched.is_some() {
            flags |= PageFlags::WRITABLE;
        }
        if let Some(Held::Frame { present: Some(now), .. }) = held
            && now == flags
        {
            // The entry already says what the books say: not a fault the kernel explains.
            return Err(Refused::Pass);
        }
        // A rewrite of a present entry keeps the Dirty bit: the pager reads it to know
        // whether the page must be written before its frame is reused.
        let flags = match held {
            Some(Held::Frame { present: Some(now), .. }) if !private => {
                flags | now.intersection(PageFlags::DIRTY)
            }
            _ => flags,
        };
        if private && self.regions.plan().set(page, page + PAGE).fits().is_err() {
            return Err(Refused::Pass);
        }
        let (frame, undo, kind) =
            self.frame_for(page, reservation, held, private, memory, source)?;
        let new = NewEntry::Page { frame: Frame::<Size4KiB>::containing(frame), flags };
        let mut table = PageTable::<F, _>::from_root(self.root, &mut *memory);
        let target = Page::<Size4KiB>::containing(VirtAddr::new(page));
        match table.set_entry(target, new, source.tables()) {
            Ok((_, flush)) => {
                if let Some(bitmap) = watched {
                    let index = (page - reservation.base.as_u64()) / PAGE;
                    super::write_watch::set_bit(memory, bitmap, index);
                }
                if private {
                    // The plan above said the books have room: this cannot fail.
                    // Committed: the page may have been reserved in these books, and
                    // committed through a view in another space.
                    let _ =
                        self.regions.set(page, page + PAGE, |_| (PageState::Committed, protect));
                }
                source
                    .resolved(Owner::Private { root: self.root, page: VirtAddr::new(page) }, kind);
                Ok(flush)
            }
            Err(_) => {
                match undo {
                    Undo::Nothing => {}
                    Undo::GiveBack => source.give_back(frame),
                    Undo::PutBack(pte) => source.put_back(frame, pte),
                }
                Err(Refused::Pass)
            }
        }
    }

    /// What the tables hold for `page`: nothing, a frame, or a paged-out page.
    fn held<M: TableMemory>(&self, page: u64, memory: &mut M) -> Result<Option<Held>, ()> {
        let table = PageTable::<F, _>::from_root(self.root, &mut *memory);
        match table.lookup(VirtAddr::new(page)) {
            Ok(Lookup::Mapped(t)) => Ok(Some(Held::Frame {
                frame: t.frame,
                owned: t.flags.contains(OWNED),
                present: Some(t.flags),
            })),
            Ok(Lookup::Payload { payload, .. }) => match SoftwarePte::decode(payload) {
                Ok(SoftwarePte::Hidden { frame, owned }) => {
                    Ok(Some(Held::Frame { frame, owned, present: None }))
                }
                Ok(pte @ SoftwarePte::Transition { owned, .. }) => {
                    Ok(Some(Held::Paged { pte, owned }))
                }
                Ok(pte @ SoftwarePte::PagingFile { .. }) => {
                    Ok(Some(Held::Paged { pte, owned: true }))
                }
                // A section's page the pager took away: the prototype says where it is; or
                // a page of zeros the pager dropped: it is demand-zero again.
                Ok(SoftwarePte::Prototype | SoftwarePte::DemandZero) => Ok(None),
                // Not a payload the space or its pager wrote: nothing it can explain.
                _ => Err(()),
            },
            Ok(Lookup::Unmapped) => Ok(None),
            Err(_) => Err(()),
        }
    }

    /// The frame `page` gets, and how to undo getting it: the one it holds, a page brought
    /// back by the pager, a zeroed one on the first touch of private memory, the section's
    /// frame, or a private copy of either of the last two.
    fn frame_for<M: TableMemory, A: FrameSource + ?Sized>(
        &self,
        page: u64,
        reservation: &Reservation,
        held: Option<Held>,
        private: bool,
        memory: &mut M,
        source: &mut A,
    ) -> Result<(PhysAddr, Undo, FaultKind), Refused> {
        let owner = Owner::Private { root: self.root, page: VirtAddr::new(page) };
        let (frame, owned, undo, kind) = match (held, reservation.backing) {
            (Some(Held::Frame { frame, owned, .. }), _) => {
                (frame, owned, Undo::Nothing, FaultKind::Mapped)
            }
            (Some(Held::Paged { pte, owned }), _) => match source.bring_back(memory, pte, owner) {
                Ok(frame) => {
                    let kind = match pte {
                        SoftwarePte::PagingFile { .. } => FaultKind::PageRead,
                        _ => FaultKind::Transition,
                    };
                    (frame, owned, Undo::PutBack(pte), kind)
                }
                Err(PageInError::Store) => return Err(Refused::InPage),
                Err(_) => return Err(Refused::Pass),
            },
            (None, Backing::Private) => {
                let frame = source.take(memory, owner, true).map_err(|_| Refused::Pass)?;
                return Ok((frame, Undo::GiveBack, FaultKind::DemandZero));
            }
            (None, Backing::Section { section, offset }) => {
                let index = offset + (page - reservation.base.as_u64()) / PAGE;
                let (frame, kind) = section_page(section, index, memory, source)?;
                (frame, false, Undo::Nothing, kind)
            }
        };
        if private && !owned {
            let Ok(copy) = source.take(memory, owner, false) else {
                if let Undo::PutBack(pte) = undo {
                    source.put_back(frame, pte);
                }
                return Err(Refused::Pass);
            };
            memory.copy_frame(copy, frame);
            return Ok((copy, Undo::GiveBack, FaultKind::CopyOnWrite));
        }
        Ok((frame, undo, kind))
    }
}

/// The frame of page `index` of the section at `section`, made resident for every view:
/// a zeroed one on its first touch, or brought back by the pager. Once resident it stays
/// (the section's state, whatever happens to the view's entry).
fn section_page<M: TableMemory, A: FrameSource + ?Sized>(
    section: PhysAddr,
    index: u64,
    memory: &mut M,
    source: &mut A,
) -> Result<(PhysAddr, FaultKind), Refused> {
    let owner = Owner::Section { section, index };
    let now = section::prototype(memory, section, index);
    let (frame, kind) = match now {
        Prototype::Resident(frame) => return Ok((frame, FaultKind::Mapped)),
        // Not committed: no frame, ever (the books refuse such pages first).
        Prototype::Reserved => return Err(Refused::Pass),
        Prototype::Zero => {
            let frame = source.take(memory, owner, true).map_err(|_| Refused::Pass)?;
            (frame, FaultKind::DemandZero)
        }
        Prototype::Transition(_) | Prototype::PagingFile(_) => {
            let pte = now.paged().ok_or(Refused::Pass)?;
            match source.bring_back(memory, pte, owner) {
                Ok(frame) if matches!(now, Prototype::Transition(_)) => {
                    (frame, FaultKind::Transition)
                }
                Ok(frame) => (frame, FaultKind::PageRead),
                Err(PageInError::Store) => return Err(Refused::InPage),
                Err(_) => return Err(Refused::Pass),
            }
        }
    };
    section::set_prototype(memory, section, index, Prototype::Resident(frame));
    Ok((frame, kind))
}

/// `run` as it stands for `page`: a page of a view that these books hold reserved, but
/// that a view in another space has committed since (commit state is the section's), is
/// committed with the view's own protection, as Windows shows it in the other views.
fn committed_by_section<M: TableMemory + ?Sized>(
    reservation: &Reservation,
    run: Run,
    page: u64,
    memory: &M,
) -> Run {
    let Backing::Section { section, offset } = reservation.backing else { return run };
    let index = offset + (page - reservation.base.as_u64()) / PAGE;
    if run.state == PageState::Reserved && section::prototype(memory, section, index).is_committed()
    {
        Run { state: PageState::Committed, protect: reservation.protect, ..run }
    } else {
        run
    }
}

/// How to undo getting a frame for a page whose entry could not be written.
#[derive(Clone, Copy, Debug)]
enum Undo {
    /// The frame was already the page's.
    Nothing,
    /// The frame was taken from the source for the page.
    GiveBack,
    /// The frame was brought back from where the entry said.
    PutBack(SoftwarePte),
}

/// The flags of a present page with `protect` in `reservation`: in a write-copy view (or
/// an image) a section frame the space does not own is never writable, so that every write
/// makes a private copy. `None` for protections that keep a page away (no-access, guard).
/// A `kernel` space's pages are supervisor-only, and global: every process maps them
/// alike, so one invalidation must reach the entries cached under any address-space id.
pub(crate) fn page_flags(
    reservation: &Reservation,
    protect: Protection,
    owned: bool,
    kernel: bool,
) -> Option<PageFlags> {
    let mut flags = protect.page_flags(!kernel)?;
    flags.set(PageFlags::GLOBAL, kernel);
    // A watched page is writable only once a write fault has recorded the write.
    if (!owned && reservation.protect.is_write_copy()) || reservation.watch.is_some() {
        flags.remove(PageFlags::WRITABLE);
    }
    flags.set(OWNED, owned);
    Some(flags)
}

/// The payload that hides `frame` (and whether the space owns it) in a non-present entry;
/// 0, which the engine refuses with a typed error, if the format cannot hold it (no x86
/// format's physical width is too wide for its payload).
pub(crate) fn hide<F: PageTableFormat>(frame: PhysAddr, owned: bool) -> u64 {
    SoftwarePte::Hidden { frame, owned }.encode::<F>().unwrap_or(0)
}

/// The frame and ownership a payload hides, if it is one the space wrote.
pub(crate) fn unhide(payload: u64) -> Option<(PhysAddr, bool)> {
    match SoftwarePte::decode(payload) {
        Ok(SoftwarePte::Hidden { frame, owned }) => Some((frame, owned)),
        _ => None,
    }
}

/// Tells `source` that an entry the space cleared held `old`: an owned frame goes back, a
/// paged-out page's frame or slot is freed.
pub(crate) fn release_entry<A: FrameSource + ?Sized>(source: &mut A, old: Occupant) {
    match old {
        Occupant::Page(mapped) if mapped.flags.contains(OWNED) => source.give_back(mapped.frame),
        // A section's page written through this view: its copy in the store is stale.
        Occupant::Page(mapped) if mapped.flags.contains(PageFlags::DIRTY) => {
            source.dirtied(mapped.frame);
        }
        Occupant::Payload(payload) => match SoftwarePte::decode(payload) {
            Ok(SoftwarePte::Hidden { frame, owned: true }) => source.give_back(frame),
            Ok(pte @ (SoftwarePte::Transition { .. } | SoftwarePte::PagingFile { .. })) => {
                source.drop_paged(pte);
            }
            _ => {}
        },
        Occupant::Page(_) => {}
    }
}

/// The frame an entry holds, present or hidden, and whether the space owns it.
pub(crate) fn frame_of(occupant: Occupant) -> Option<(PhysAddr, bool)> {
    match occupant {
        Occupant::Page(mapped) => Some((mapped.frame, mapped.flags.contains(OWNED))),
        Occupant::Payload(payload) => unhide(payload),
    }
}

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
use crate::error::{FrameError, Occupant};
use crate::fault::{Access, Exception, Fault, FaultCause, Resolution};
use crate::flags::PageFlags;
use crate::format::PageTableFormat;
use crate::frame::FrameAllocator;
use crate::memory::TableMemory;
use crate::software_pte::SoftwarePte;
use crate::table::{Lookup, NewEntry, PageTable};
use crate::tlb::Flush;

use super::regions::{Backing, Reservation, Run};
use super::{AccessViolation, AddressSpace, PAGE, PageState, Protection, Violation};

/// The page-table software bit that marks a frame this space owns (private memory, or a
/// private copy of a section page): such frames go back to the allocator when unmapped.
pub(crate) const OWNED: PageFlags = PageFlags::SOFTWARE_0;

/// What the tables hold for a page: its frame, whether the space owns it, and its flags
/// when it is present (a hidden page has none).
#[derive(Clone, Copy, Debug)]
struct Held {
    frame: PhysAddr,
    owned: bool,
    present: Option<PageFlags>,
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
    pub fn resolve<M: TableMemory, A: FrameAllocator + ?Sized>(
        &mut self,
        fault: &Fault,
        memory: &mut M,
        alloc: &mut A,
    ) -> (Resolution, Flush) {
        let pass = (Resolution::Pass, Flush::new());
        let page = fault.addr.align_down(PAGE);
        if fault.cause == FaultCause::ReservedBits || !self.layout.holds(page, PAGE) {
            return pass;
        }
        let page = page.as_u64();
        let (Some(reservation), Some(run)) =
            (self.regions.reservation(page).copied(), self.regions.run(page))
        else {
            return pass;
        };
        if run.state != PageState::Committed {
            return pass;
        }
        if run.protect.is_guard() {
            return match self
                .regions
                .set(page, page + PAGE, |r| (r.state, r.protect.without_guard()))
            {
                Ok(()) => {
                    (Resolution::Notify(Exception::GuardPage { addr: fault.addr }), Flush::new())
                }
                Err(_) => pass,
            };
        }
        if !run.protect.allows(fault.access) {
            return pass;
        }
        let write = fault.access == Access::Write;
        match self.materialise(page, &reservation, &run, write, memory, alloc) {
            Some(flush) => (Resolution::Retry, flush),
            None => pass,
        }
    }

    /// Says why `fault` is an access violation in this space, for the record a process
    /// ends with.
    #[must_use]
    pub fn explain(&self, fault: &Fault) -> AccessViolation {
        let page = fault.addr.align_down(PAGE).as_u64();
        let reason = if fault.addr >= self.layout.kernel_start {
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

    /// Makes the committed page at `page` present as the books say, after an access its
    /// protection allows; `None` when there is nothing the kernel can do (the entry already
    /// says what the books say, no frame is free, the books are full). Takes frames only
    /// once everything else is known, and gives back what it took when it fails.
    fn materialise<M: TableMemory, A: FrameAllocator + ?Sized>(
        &mut self,
        page: u64,
        reservation: &Reservation,
        run: &Run,
        write: bool,
        memory: &mut M,
        alloc: &mut A,
    ) -> Option<Flush> {
        let held = self.held(page, memory).ok()?;
        let owned_now = held.map_or(reservation.backing == Backing::Private, |h| h.owned);
        // A write to a write-copy page, or through a write-copy view to a section frame,
        // makes the page private: it becomes read-write, and a frame the space does not
        // own yet is copied.
        let private = write
            && (run.protect.is_write_copy() || (!owned_now && reservation.protect.is_write_copy()));
        let protect = if private { run.protect.after_copy() } else { run.protect };
        let flags = page_flags(reservation, protect, owned_now || private)?;
        if held.and_then(|h| h.present) == Some(flags) {
            // The entry already says what the books say: not a fault the kernel explains.
            return None;
        }
        if private {
            self.regions.plan().set(page, page + PAGE).fits().ok()?;
        }
        let (frame, taken) = self.frame_for(page, reservation, held, private, memory, alloc)?;
        let new = NewEntry::Page { frame: Frame::<Size4KiB>::containing(frame), flags };
        let mut table = PageTable::<F, _>::from_root(self.root, &mut *memory);
        match table.set_entry(Page::<Size4KiB>::containing(VirtAddr::new(page)), new, alloc) {
            Ok((_, flush)) => {
                if private {
                    // The plan above said the books have room: this cannot fail.
                    let _ =
                        self.regions.set(page, page + PAGE, |r| (r.state, r.protect.after_copy()));
                }
                Some(flush)
            }
            Err(_) => {
                if taken {
                    let _ = alloc.deallocate(frame);
                }
                None
            }
        }
    }

    /// What the tables hold for `page`: nothing, a present page, or a hidden one.
    fn held<M: TableMemory>(&self, page: u64, memory: &mut M) -> Result<Option<Held>, ()> {
        let table = PageTable::<F, _>::from_root(self.root, &mut *memory);
        match table.lookup(VirtAddr::new(page)) {
            Ok(Lookup::Mapped(t)) => Ok(Some(Held {
                frame: t.frame,
                owned: t.flags.contains(OWNED),
                present: Some(t.flags),
            })),
            Ok(Lookup::Payload { payload, .. }) => match unhide(payload) {
                Some((frame, owned)) => Ok(Some(Held { frame, owned, present: None })),
                // Not a payload the space wrote: nothing it can explain.
                None => Err(()),
            },
            Ok(Lookup::Unmapped) => Ok(None),
            Err(_) => Err(()),
        }
    }

    /// The frame `page` gets, and whether it was taken from `alloc` now: the one it holds,
    /// a zeroed one on the first touch of private memory, the section's frame, or a
    /// private copy of either of the last two.
    fn frame_for<M: TableMemory, A: FrameAllocator + ?Sized>(
        &self,
        page: u64,
        reservation: &Reservation,
        held: Option<Held>,
        private: bool,
        memory: &mut M,
        alloc: &mut A,
    ) -> Option<(PhysAddr, bool)> {
        let (frame, owned) = match (held, reservation.backing) {
            (Some(held), _) => (held.frame, held.owned),
            (None, Backing::Private) => return zeroed_frame(memory, alloc).ok().map(|f| (f, true)),
            (None, Backing::Section { first, .. }) => {
                (first + (page - reservation.base.as_u64()), false)
            }
        };
        if private && !owned {
            let copy = zeroed_frame(memory, alloc).ok()?;
            memory.copy_frame(copy, frame);
            return Some((copy, true));
        }
        Some((frame, false))
    }
}

/// A fresh zeroed frame.
fn zeroed_frame<M: TableMemory, A: FrameAllocator + ?Sized>(
    memory: &mut M,
    alloc: &mut A,
) -> Result<PhysAddr, FrameError> {
    let frame = alloc.allocate()?;
    memory.zero_frame(frame);
    Ok(frame)
}

/// The flags of a present page with `protect` in `reservation`: in a write-copy view (or
/// an image) a section frame the space does not own is never writable, so that every write
/// makes a private copy. `None` for protections that keep a page away (no-access, guard).
pub(crate) fn page_flags(
    reservation: &Reservation,
    protect: Protection,
    owned: bool,
) -> Option<PageFlags> {
    let mut flags = protect.page_flags(true)?;
    if !owned && reservation.protect.is_write_copy() {
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

/// The frame an entry holds, present or hidden, and whether the space owns it.
pub(crate) fn frame_of(occupant: Occupant) -> Option<(PhysAddr, bool)> {
    match occupant {
        Occupant::Page(mapped) => Some((mapped.frame, mapped.flags.contains(OWNED))),
        Occupant::Payload(payload) => unhide(payload),
    }
}

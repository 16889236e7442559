//! Write watches (`MEM_WRITE_WATCH`, `GetWriteWatch`, `ResetWriteWatch`): which pages of a
//! reservation were written since the watch was last reset.
//!
//! A watched reservation has a bitmap, one bit per page, in a frame from the page-table
//! allocator, as Windows keeps one in the address descriptor. A watched page is mapped
//! writable only after a write fault recorded the write in its bit: the record survives
//! everything that takes the page's entry away (a trim, a page-out, a protection change,
//! a decommit), which the Dirty bit would not. Resetting clears the bits and
//! write-protects the pages again; the Dirty bit is left alone, for the pager.

use crate::addr::{PhysAddr, VirtAddr};
use crate::error::{Occupant, TableError};
use crate::flags::PageFlags;
use crate::format::{EntrySize, PageTableFormat};
use crate::frame::FrameAllocator;
use crate::memory::TableMemory;
use crate::table::Rewrite;
use crate::tlb::Flush;

use super::source::FrameSource;
use super::{AddressSpace, PAGE, PageState, Protection, SpaceError};

/// The most pages a watched reservation holds: one bit each in one 4 KiB frame (128 MiB).
pub const MAX_WATCHED_PAGES: u64 = 4096 * 8;

impl<F: PageTableFormat, const N: usize> AddressSpace<F, N> {
    /// Windows `VirtualAlloc` with `MEM_RESERVE | MEM_WRITE_WATCH` (and `MEM_COMMIT` if
    /// `commit`): a private reservation whose writes are recorded for
    /// [`write_watch`](Self::write_watch). The bitmap takes a frame from `source`'s table
    /// allocator, given back on release; committing charges the pages as
    /// [`commit_with`](Self::commit_with) does.
    ///
    /// # Errors
    ///
    /// As [`reserve`](Self::reserve), plus [`SpaceError::WriteWatchTooLarge`] (the
    /// reservation, from `addr` rounded down to the granularity, would pass
    /// [`MAX_WATCHED_PAGES`]), [`SpaceError::CommitLimit`] and [`SpaceError::Table`] (no
    /// frame for the bitmap, or one outside memory).
    pub fn reserve_watched<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        addr: Option<VirtAddr>,
        size: u64,
        protect: Protection,
        commit: bool,
        memory: &mut M,
        source: &mut A,
    ) -> Result<VirtAddr, SpaceError> {
        self.check_private_protection(protect)?;
        // The reservation starts at `addr` rounded down to the granularity: its pages are
        // the request's and those in front of `addr` (worked out before placing it, which
        // may draw from the ASLR generator).
        let front = addr.map_or(0, |addr| addr.as_u64() % self.config.granularity);
        let pages = front
            .checked_add(size)
            .and_then(|len| len.checked_next_multiple_of(PAGE))
            .map_or(u64::MAX, |len| len / PAGE);
        if pages > MAX_WATCHED_PAGES {
            return Err(SpaceError::WriteWatchTooLarge { pages, max: MAX_WATCHED_PAGES });
        }
        let charged = if commit { pages } else { 0 };
        source.charge(self.root, charged)?;
        let bitmap = match source.tables().allocate() {
            Ok(bitmap) if memory.contains(bitmap) && bitmap.is_aligned(PAGE) => bitmap,
            outcome => {
                source.uncharge(self.root, charged);
                let error = match outcome {
                    Ok(frame) => {
                        let _ = source.tables().deallocate(frame);
                        TableError::FrameOutsideMemory { frame }
                    }
                    Err(refusal) => TableError::OutOfFrames { needed: 1, got: 0, source: refusal },
                };
                return Err(SpaceError::Table(error));
            }
        };
        memory.zero_frame(bitmap);
        let state = if commit { PageState::Committed } else { PageState::Reserved };
        let added = self.add_watched(addr, size, state, protect, Some(bitmap));
        if added.is_err() {
            let _ = source.tables().deallocate(bitmap);
            source.uncharge(self.root, charged);
        }
        added
    }

    /// Windows `GetWriteWatch`: the pages of `[addr, addr + size)` written since the watch
    /// was last reset, in address order, as many as `found` holds; returns how many it
    /// wrote there. With `reset` (`WRITE_WATCH_FLAG_RESET`), the pages returned (only
    /// those) are reset. Apply the returned flush.
    ///
    /// # Errors
    ///
    /// Returns [`SpaceError::ZeroSize`], [`SpaceError::NoRoom`] (an empty `found`) and
    /// [`SpaceError::NotWatched`] (the range is not inside one watched reservation); each
    /// is Windows `ERROR_INVALID_PARAMETER`. [`SpaceError::Table`] on a corrupt table.
    pub fn write_watch<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        addr: VirtAddr,
        size: u64,
        reset: bool,
        found: &mut [VirtAddr],
        memory: &mut M,
        source: &mut A,
    ) -> Result<(usize, Flush), SpaceError> {
        let (start, end, base, bitmap) = self.watched_span(addr, size)?;
        if found.is_empty() {
            return Err(SpaceError::NoRoom);
        }
        let mut count = 0;
        for page in (start..end).step_by(PAGE as usize) {
            if count == found.len() {
                break;
            }
            if bit(memory, bitmap, (page - base) / PAGE) {
                found[count] = VirtAddr::new(page);
                count += 1;
            }
        }
        let flush = match found[..count].last() {
            Some(last) if reset => {
                self.reset_span(start, last.as_u64() + PAGE, base, bitmap, memory, source)?
            }
            _ => Flush::new(),
        };
        Ok((count, flush))
    }

    /// Windows `ResetWriteWatch`: forgets the writes to the pages of `[addr, addr + size)`;
    /// the next write to each is recorded again. Apply the returned flush.
    ///
    /// # Errors
    ///
    /// As [`write_watch`](Self::write_watch), less [`SpaceError::NoRoom`].
    pub fn reset_write_watch<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        addr: VirtAddr,
        size: u64,
        memory: &mut M,
        source: &mut A,
    ) -> Result<Flush, SpaceError> {
        let (start, end, base, bitmap) = self.watched_span(addr, size)?;
        self.reset_span(start, end, base, bitmap, memory, source)
    }

    /// The pages `[start, end)` of `[addr, addr + size)`, the base of their watched
    /// reservation and its bitmap.
    fn watched_span(
        &self,
        addr: VirtAddr,
        size: u64,
    ) -> Result<(u64, u64, u64, PhysAddr), SpaceError> {
        if size == 0 {
            return Err(SpaceError::ZeroSize);
        }
        let (start, end, reservation) =
            self.span_in_reservation(addr, size).map_err(|_| SpaceError::NotWatched { addr })?;
        let bitmap = reservation.watch.ok_or(SpaceError::NotWatched { addr })?;
        Ok((start, end, reservation.base.as_u64(), bitmap))
    }

    /// Clears the bits of `[start, end)` and write-protects its present pages, so that the
    /// next write to each faults and is recorded. The pages' Dirty bits stay.
    fn reset_span<M: TableMemory, A: FrameSource + ?Sized>(
        &mut self,
        start: u64,
        end: u64,
        base: u64,
        bitmap: PhysAddr,
        memory: &mut M,
        source: &mut A,
    ) -> Result<Flush, SpaceError> {
        let mut table = self.page_table(memory);
        let flush = table.rewrite_range(
            VirtAddr::new(start),
            end - start,
            source.tables(),
            |_, _, occupant| match occupant {
                Occupant::Page(page) if page.flags.contains(PageFlags::WRITABLE) => Rewrite::Page {
                    frame: page.frame,
                    flags: page.flags.difference(PageFlags::WRITABLE),
                },
                _ => Rewrite::Keep,
            },
            |_, _| {},
        )?;
        for page in (start..end).step_by(PAGE as usize) {
            clear_bit(memory, bitmap, (page - base) / PAGE);
        }
        Ok(flush)
    }
}

/// The word of the bitmap at `bitmap` holding bit `index`, and the bit's mask.
fn word(bitmap: PhysAddr, index: u64) -> (PhysAddr, u64) {
    // The index is below MAX_WATCHED_PAGES: the word lies in the bitmap's frame.
    (bitmap + (index / 64) * 8, 1 << (index % 64))
}

fn bit<M: TableMemory + ?Sized>(memory: &M, bitmap: PhysAddr, index: u64) -> bool {
    let (at, mask) = word(bitmap, index);
    memory.read_entry(at, EntrySize::Eight) & mask != 0
}

/// Records a write to page `index` of the watched reservation whose bitmap is `bitmap`.
pub(super) fn set_bit<M: TableMemory + ?Sized>(memory: &mut M, bitmap: PhysAddr, index: u64) {
    let (at, mask) = word(bitmap, index);
    let now = memory.read_entry(at, EntrySize::Eight);
    memory.write_entry(at, EntrySize::Eight, now | mask);
}

fn clear_bit<M: TableMemory + ?Sized>(memory: &mut M, bitmap: PhysAddr, index: u64) {
    let (at, mask) = word(bitmap, index);
    let now = memory.read_entry(at, EntrySize::Eight);
    memory.write_entry(at, EntrySize::Eight, now & !mask);
}

/// Gives back the bitmap of a watched reservation that is gone.
pub(super) fn drop_watch<A: FrameSource + ?Sized>(
    reservation: &super::regions::Reservation,
    source: &mut A,
) {
    if let Some(bitmap) = reservation.watch {
        // The frame came from this allocator when the reservation was made.
        let _ = source.tables().deallocate(bitmap);
    }
}

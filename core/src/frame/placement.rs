//! Room for an allocator's own books in the memory it manages, found before the allocator
//! exists (at boot, nothing else can provide it).

use super::memory_map::{Map, UsableRuns};
use super::{FRAME_SIZE, MemoryRegion};
use crate::error::FrameError;

/// Where an allocator's books (its bitmap words or free-list slots) can go in the usable
/// memory it is about to manage: at the start of the lowest run of usable frames that is
/// long enough.
///
/// Add [`region`](Self::region), which is reserved, to the map the allocator is built
/// from, so that it never hands out its own books; make a slice of
/// [`entries`](Self::entries) entries at that physical address through the kernel's
/// mapping of it (that step is `unsafe`, and the kernel's). Reserving the start of a run
/// never splits it, so the map with the books reserved needs no more entries than the map
/// without.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BooksPlacement {
    /// The range the books take, frame-aligned at its start and reserved.
    pub region: MemoryRegion,
    /// How many entries the allocator needs there.
    pub entries: usize,
}

/// Places `entries` entries of `entry_bytes` bytes each at the start of the lowest run of
/// usable frames of `map` that holds them.
pub(crate) fn place<M: Map>(
    map: M,
    entries: usize,
    entry_bytes: usize,
) -> Result<BooksPlacement, FrameError> {
    let bytes = u64::try_from(entries)
        .ok()
        .zip(u64::try_from(entry_bytes).ok())
        .and_then(|(entries, size)| entries.checked_mul(size))
        .filter(|&bytes| bytes > 0)
        .ok_or(FrameError::Exhausted)?;
    let frames_bytes = bytes.checked_next_multiple_of(FRAME_SIZE).ok_or(FrameError::Exhausted)?;
    let (start, _) = UsableRuns::new(map)
        .find(|&(start, end)| end - start >= frames_bytes)
        .ok_or(FrameError::Exhausted)?;
    Ok(BooksPlacement { region: MemoryRegion::reserved(start, bytes), entries })
}

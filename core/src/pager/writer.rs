//! The modified-page writer: modified pages go to the store in clusters of contiguous
//! slots, one request each, and then to the standby list.

use crate::format::PageTableFormat;
use crate::memory::TableMemory;

use super::database::FrameList;
use super::manager::Pager;
use super::policy::{FrameIndex, ReplacementPolicy};
use super::store::{BackingStore, PAGE_BYTES, Slot};

/// The largest cluster the writer gathers, whatever the buffer.
const MAX_CLUSTER: usize = 64;

impl<F: PageTableFormat, S: BackingStore, P: ReplacementPolicy> Pager<'_, F, S, P> {
    /// Writes the oldest modified pages, up to a cluster, to contiguous slots in one
    /// request. Pages written go to the standby list with their slot; pages the store
    /// refused stay modified (and their slots free). Returns how many went to standby.
    pub(super) fn write_modified<M: TableMemory + ?Sized>(&mut self, memory: &M) -> usize {
        let mut batch: heapless::Vec<FrameIndex, MAX_CLUSTER> = heapless::Vec::new();
        let room = self.cluster.len().min(MAX_CLUSTER);
        for index in self.frames.iter(FrameList::Modified).take(room) {
            // The iterator is bounded by `room`, which the batch holds.
            let _ = batch.push(index);
        }
        let Some((first, count)) = self.cluster_slots(batch.len()) else { return 0 };
        let batch = &batch[..count];
        for (buffer, &index) in self.cluster.iter_mut().zip(batch) {
            memory.read_frame(self.frames.address(index).unwrap_or_default(), buffer);
        }
        let mut pages: heapless::Vec<&[u8; PAGE_BYTES], MAX_CLUSTER> = heapless::Vec::new();
        for buffer in self.cluster.iter().take(count) {
            let _ = pages.push(buffer);
        }
        let written = match self.store.write_cluster(first, &pages) {
            Ok(()) => count,
            Err(error) => {
                self.counters.write_errors += 1;
                error.written.min(count)
            }
        };
        self.counters.write_clusters += 1;
        self.counters.pages_written += written as u64;
        for (offset, &index) in batch.iter().enumerate() {
            let slot = Slot(first.0 + offset as u32);
            if offset < written {
                if let Some(record) = self.frames.record_mut(index) {
                    record.slot = Some(slot);
                }
                self.frames.move_to(index, FrameList::Standby);
            } else {
                let _ = self.slots.release(slot);
            }
        }
        written
    }

    /// A run of free slots for up to `wanted` pages: the whole run if the store has one,
    /// else the longest shorter run that halving finds.
    fn cluster_slots(&mut self, wanted: usize) -> Option<(Slot, usize)> {
        let mut count = wanted;
        while count > 0 {
            if let Ok(first) = self.slots.allocate_cluster(count) {
                return Some((first, count));
            }
            count /= 2;
        }
        None
    }
}

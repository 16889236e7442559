//! Where simulated RAM keeps the frames it has materialised: a table indexed by frame
//! number when RAM is small enough for one, so that finding a frame (every load, store and
//! walk step) is an index; a hash map for larger RAM, which is sparse by nature.

use rustc_hash::FxHashMap;

use paging::frame::FRAME_SIZE;

/// The bytes of one frame.
pub(crate) type FrameData = Box<[u8; FRAME_SIZE as usize]>;

/// The most frames kept in an indexed table (16 GiB of RAM): the table costs 8 bytes a
/// frame of RAM, materialised or not (128 KiB for the default 64 MiB).
const INDEXED_LIMIT: u64 = 1 << 22;

/// The materialised frames of RAM, by frame number.
#[derive(Clone)]
pub(crate) enum FrameStore {
    /// One slot per frame of RAM, and how many hold a frame.
    Indexed { slots: Vec<Option<FrameData>>, count: usize },
    /// Only the materialised frames.
    Hashed(FxHashMap<u64, FrameData>),
}

impl FrameStore {
    /// An empty store for RAM of `frames` frames.
    pub(crate) fn new(frames: u64) -> Self {
        match usize::try_from(frames) {
            Ok(count) if frames <= INDEXED_LIMIT => {
                Self::Indexed { slots: (0..count).map(|_| None).collect(), count: 0 }
            }
            _ => Self::Hashed(FxHashMap::default()),
        }
    }

    /// The frame numbered `frame`, if materialised.
    #[inline]
    pub(crate) fn get(&self, frame: u64) -> Option<&FrameData> {
        match self {
            Self::Indexed { slots, .. } => slots.get(usize::try_from(frame).ok()?)?.as_ref(),
            Self::Hashed(map) => map.get(&frame),
        }
    }

    /// The frame numbered `frame`, if materialised, to write.
    #[inline]
    pub(crate) fn get_mut(&mut self, frame: u64) -> Option<&mut FrameData> {
        match self {
            Self::Indexed { slots, .. } => slots.get_mut(usize::try_from(frame).ok()?)?.as_mut(),
            Self::Hashed(map) => map.get_mut(&frame),
        }
    }

    /// The frame numbered `frame`, materialised (zeroed) if it was not. `None` for a
    /// number past an indexed table (RAM checks its ranges first: never met).
    pub(crate) fn get_or_zero(&mut self, frame: u64) -> Option<&mut FrameData> {
        let zero = || Box::new([0; FRAME_SIZE as usize]);
        match self {
            Self::Indexed { slots, count } => {
                let slot = slots.get_mut(usize::try_from(frame).ok()?)?;
                if slot.is_none() {
                    *count += 1;
                }
                Some(slot.get_or_insert_with(zero))
            }
            Self::Hashed(map) => Some(map.entry(frame).or_insert_with(zero)),
        }
    }

    /// Forgets the frame numbered `frame` (it reads as zeros again).
    pub(crate) fn remove(&mut self, frame: u64) {
        match self {
            Self::Indexed { slots, count } => {
                let slot = usize::try_from(frame).ok().and_then(|index| slots.get_mut(index));
                if slot.and_then(Option::take).is_some() {
                    *count -= 1;
                }
            }
            Self::Hashed(map) => {
                map.remove(&frame);
            }
        }
    }

    /// How many frames are materialised.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Indexed { count, .. } => *count,
            Self::Hashed(map) => map.len(),
        }
    }
}

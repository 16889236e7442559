//! Why a replacement policy refused a call. A refused call changed nothing.

use core::fmt;

use super::FrameIndex;

/// Why a replacement policy refused to be built or to take a call.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PolicyError {
    /// The caller's storage holds fewer records than the frames need.
    StorageTooSmall {
        /// Records needed ([`slots_needed`](super::slots_needed)).
        needed: usize,
        /// Records provided.
        provided: usize,
    },
    /// More frames than a policy can name: `u32::MAX` marks "no frame" in its links.
    TooManyFrames {
        /// The number of frames asked for.
        frames: u32,
    },
    /// A frame index not below the number of frames.
    FrameOutOfRange {
        /// The frame.
        frame: FrameIndex,
        /// The number of frames.
        frames: u32,
    },
    /// `insert` for a frame that already holds a resident page.
    AlreadyResident {
        /// The frame.
        frame: FrameIndex,
    },
    /// `remove` or `touch` for a frame that holds no resident page.
    NotResident {
        /// The frame.
        frame: FrameIndex,
    },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::StorageTooSmall { needed, provided } => {
                write!(f, "policy storage holds {provided} records, {needed} needed")
            }
            Self::TooManyFrames { frames } => {
                write!(f, "{frames} frames are more than a policy can name")
            }
            Self::FrameOutOfRange { frame, frames } => {
                write!(f, "frame {} is out of range (frames 0..{frames})", frame.0)
            }
            Self::AlreadyResident { frame } => {
                write!(f, "frame {} already holds a resident page", frame.0)
            }
            Self::NotResident { frame } => write!(f, "frame {} holds no resident page", frame.0),
        }
    }
}

impl core::error::Error for PolicyError {}

/// A policy name that [`PolicyKind`](super::PolicyKind) does not know.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnknownPolicy;

impl fmt::Display for UnknownPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown replacement policy (fifo, clock, enhanced-clock, aging, wsclock, lru)")
    }
}

impl core::error::Error for UnknownPolicy {}

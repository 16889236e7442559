//! Simulated physical RAM, materialised lazily one 4 KiB frame at a time.

use core::fmt;

use paging::frame::FRAME_SIZE;
use paging::{EntrySize, PhysAddr, TableMemory};

use crate::frame_store::FrameStore;

/// The number of bits of an address that select a byte within its frame.
const FRAME_SHIFT: u32 = FRAME_SIZE.trailing_zeros();
/// The most frames a RAM can have: its last byte must have a 64-bit address.
const MAX_FRAMES: u64 = u64::MAX >> FRAME_SHIFT;

/// An access to simulated RAM that failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RamError {
    /// Some byte of the range `addr .. addr + len` lies outside RAM, or the end of the
    /// range does not fit in 64 bits. Nothing was read or written.
    OutOfRange {
        /// The first address of the range.
        addr: PhysAddr,
        /// The length of the range in bytes.
        len: usize,
    },
}

impl fmt::Display for RamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::OutOfRange { addr, len } => {
                write!(f, "physical range of {len} bytes at {addr} lies outside RAM")
            }
        }
    }
}

impl core::error::Error for RamError {}

/// Simulated physical RAM of a fixed number of 4 KiB frames, at physical addresses
/// `0 .. frames * 4096`.
///
/// A frame costs host memory only once a non-zero byte is written to it; until then it
/// reads as zeros. So a machine can have terabytes of physical memory and pay only for
/// the frames its page tables and data touch. [`zero_frame`](TableMemory::zero_frame)
/// drops a frame's backing, making it lazily zero again.
///
/// Frames are kept in a table indexed by frame number, up to 16 GiB of RAM (finding a frame,
/// which every load, store and walk step does, is an index), and above that in a hash map
/// keyed by frame number, hashed with FxHash (`rustc-hash`): the keys are frame numbers the
/// simulation chooses, not an attacker's.
///
/// ```
/// use paging::{EntrySize, PhysAddr, TableMemory};
/// use paging_sim::Ram;
///
/// let mut ram = Ram::new(1 << 28); // 1 TiB
/// assert_eq!(ram.size_bytes(), 1 << 40);
/// assert_eq!(ram.materialised_frames(), 0);
///
/// ram.write_u64(PhysAddr::new(0x1000), 0xDEAD_BEEF)?;
/// assert_eq!(ram.read_u64(PhysAddr::new(0x1000))?, 0xDEAD_BEEF);
/// assert_eq!(ram.read_entry(PhysAddr::new(0x1000), EntrySize::Eight), 0xDEAD_BEEF);
/// assert_eq!(ram.materialised_frames(), 1);
///
/// assert!(ram.read_u64(PhysAddr::new(1 << 40)).is_err());
/// # Ok::<(), paging_sim::RamError>(())
/// ```
#[derive(Clone)]
pub struct Ram {
    frames: u64,
    data: FrameStore,
}

impl Ram {
    /// Creates RAM of `frames` 4 KiB frames, all zero and none materialised.
    ///
    /// A count above `u64::MAX >> 12` (RAM whose end would not fit in a 64-bit address)
    /// is clamped to it.
    #[must_use]
    pub fn new(frames: u64) -> Self {
        let frames = frames.min(MAX_FRAMES);
        Self { frames, data: FrameStore::new(frames) }
    }

    /// The size of RAM in bytes.
    #[must_use]
    pub fn size_bytes(&self) -> u64 {
        // Cannot overflow: `frames <= u64::MAX >> 12`.
        self.frames << FRAME_SHIFT
    }

    /// The number of 4 KiB frames.
    #[must_use]
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// How many frames are backed by host memory.
    #[must_use]
    pub fn materialised_frames(&self) -> usize {
        self.data.len()
    }

    /// Checks that every byte of `addr .. addr + len` lies inside RAM.
    fn check(&self, addr: PhysAddr, len: usize) -> Result<(), RamError> {
        let error = RamError::OutOfRange { addr, len };
        let len64 = u64::try_from(len).map_err(|_| error)?;
        let end = addr.as_u64().checked_add(len64).ok_or(error)?;
        if len == 0 || end <= self.size_bytes() { Ok(()) } else { Err(error) }
    }

    /// Splits `addr .. addr + len` (already checked) into per-frame pieces and calls
    /// `f(frame number, offset in frame, offset in the caller's buffer, piece length)`.
    fn for_each_piece(addr: PhysAddr, len: usize, mut f: impl FnMut(u64, usize, usize, usize)) {
        let mut done = 0;
        let mut at = addr.as_u64();
        while done < len {
            // In-frame offsets are below 4096, so these casts are lossless.
            let offset = (at & (FRAME_SIZE - 1)) as usize;
            let piece = (FRAME_SIZE as usize - offset).min(len - done);
            f(at >> FRAME_SHIFT, offset, done, piece);
            done += piece;
            // The range was checked to end at or below `size_bytes()` (< 2^64), so this
            // cannot wrap; `wrapping_add` just keeps the no-panic promise obvious.
            at = at.wrapping_add(piece as u64);
        }
    }

    /// Reads `buf.len()` bytes starting at `addr`, crossing frame boundaries as needed.
    ///
    /// An empty read always succeeds.
    ///
    /// # Errors
    ///
    /// [`RamError::OutOfRange`] if any byte of the range lies outside RAM or its end
    /// overflows; `buf` is then left unchanged.
    pub fn read(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), RamError> {
        self.check(addr, buf.len())?;
        Self::for_each_piece(addr, buf.len(), |frame, offset, done, piece| {
            let out = &mut buf[done..done + piece];
            match self.data.get(frame) {
                Some(data) => out.copy_from_slice(&data[offset..offset + piece]),
                None => out.fill(0),
            }
        });
        Ok(())
    }

    /// Writes `data` starting at `addr`, crossing frame boundaries as needed.
    ///
    /// Writing only zeros to a frame that is not materialised leaves it unmaterialised. An
    /// empty write always succeeds.
    ///
    /// # Errors
    ///
    /// [`RamError::OutOfRange`] if any byte of the range lies outside RAM or its end
    /// overflows; RAM is then left unchanged.
    pub fn write(&mut self, addr: PhysAddr, data: &[u8]) -> Result<(), RamError> {
        self.check(addr, data.len())?;
        let frames = &mut self.data;
        Self::for_each_piece(addr, data.len(), |frame, offset, done, piece| {
            let bytes = &data[done..done + piece];
            let target = match frames.get_mut(frame) {
                Some(target) => target,
                None if bytes.iter().all(|&b| b == 0) => return,
                None => match frames.get_or_zero(frame) {
                    Some(target) => target,
                    None => return,
                },
            };
            target[offset..offset + piece].copy_from_slice(bytes);
        });
        Ok(())
    }

    /// Reads `len` bytes (at most 8) at `addr`, inside one frame, as a little-endian
    /// value: one frame lookup, no piece loop (the simulated CPU's loads of values).
    ///
    /// # Errors
    ///
    /// [`RamError::OutOfRange`] for bytes past the end of RAM, a length above 8, or bytes
    /// that cross a frame's end.
    pub fn read_le(&self, addr: PhysAddr, len: usize) -> Result<u64, RamError> {
        let offset = Self::in_frame(addr, len)?;
        self.check(addr, len)?;
        let mut bytes = [0; 8];
        if let Some(data) = self.data.get(addr.as_u64() >> FRAME_SHIFT) {
            bytes[..len].copy_from_slice(&data[offset..offset + len]);
        }
        Ok(u64::from_le_bytes(bytes))
    }

    /// Writes the low `len` bytes (at most 8) of `value` at `addr`, inside one frame,
    /// little-endian, as [`read_le`](Self::read_le) reads them.
    ///
    /// # Errors
    ///
    /// As [`read_le`](Self::read_le); nothing is written then.
    pub fn write_le(&mut self, addr: PhysAddr, len: usize, value: u64) -> Result<(), RamError> {
        let offset = Self::in_frame(addr, len)?;
        self.check(addr, len)?;
        let bytes = value.to_le_bytes();
        let frame = addr.as_u64() >> FRAME_SHIFT;
        let target = match self.data.get_mut(frame) {
            Some(target) => target,
            // A frame never written reads as zeros: writing zeros leaves it so.
            None if value & low_bytes(len) == 0 => return Ok(()),
            None => match self.data.get_or_zero(frame) {
                Some(target) => target,
                None => return Err(RamError::OutOfRange { addr, len }),
            },
        };
        target[offset..offset + len].copy_from_slice(&bytes[..len]);
        Ok(())
    }

    /// The offset of `addr` in its frame, if `len` (at most 8) bytes from it stay inside.
    fn in_frame(addr: PhysAddr, len: usize) -> Result<usize, RamError> {
        // In-frame offsets are below 4096: the cast is lossless.
        let offset = (addr.as_u64() & (FRAME_SIZE - 1)) as usize;
        if len <= 8 && offset + len <= FRAME_SIZE as usize {
            Ok(offset)
        } else {
            Err(RamError::OutOfRange { addr, len })
        }
    }

    /// Reads the little-endian `u64` at `addr` (any alignment).
    ///
    /// # Errors
    ///
    /// [`RamError::OutOfRange`] if any of its 8 bytes lies outside RAM.
    pub fn read_u64(&self, addr: PhysAddr) -> Result<u64, RamError> {
        let mut bytes = [0; 8];
        self.read(addr, &mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// Writes `value` little-endian at `addr` (any alignment).
    ///
    /// # Errors
    ///
    /// [`RamError::OutOfRange`] if any of its 8 bytes lies outside RAM; RAM is then left
    /// unchanged.
    pub fn write_u64(&mut self, addr: PhysAddr, value: u64) -> Result<(), RamError> {
        self.write(addr, &value.to_le_bytes())
    }
}

/// The mask of the low `len` bytes of a word (`len` at most 8).
fn low_bytes(len: usize) -> u64 {
    u64::MAX.checked_shr(64 - 8 * len as u32).unwrap_or(0)
}

impl fmt::Debug for Ram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ram")
            .field("frames", &self.frames)
            .field("materialised_frames", &self.data.len())
            .finish()
    }
}

/// Page-table entries in simulated RAM, little-endian. An entry that is unaligned or lies
/// outside RAM reads as zero, and a write to it is dropped.
impl TableMemory for Ram {
    fn read_entry(&self, at: PhysAddr, size: EntrySize) -> u64 {
        let len = entry_len(size);
        let frame = at.as_u64() >> FRAME_SHIFT;
        // An aligned entry lies in one frame: one lookup, no range splitting.
        if !at.is_aligned(size.bytes()) || frame >= self.frames {
            return 0;
        }
        let Some(data) = self.data.get(frame) else { return 0 };
        // Below 4096 - len: the entry is aligned to its length.
        let offset = (at.as_u64() & (FRAME_SIZE - 1)) as usize;
        let mut bytes = [0; 8];
        bytes[..len].copy_from_slice(&data[offset..offset + len]);
        u64::from_le_bytes(bytes)
    }

    /// One lookup for the whole run of entries.
    fn read_entries(&self, at: PhysAddr, size: EntrySize, out: &mut [u64]) {
        let len = entry_len(size);
        let frame = at.as_u64() >> FRAME_SHIFT;
        let offset = (at.as_u64() & (FRAME_SIZE - 1)) as usize;
        let data = match self.data.get(frame) {
            Some(data) if at.is_aligned(size.bytes()) && frame < self.frames => data,
            _ => return out.fill(0),
        };
        let entries = data.get(offset..).unwrap_or_default().chunks_exact(len);
        out.fill(0);
        // One conversion per entry, no slicing: walks read whole tables through here, and
        // under the fuzzer every bounds comparison is a traced call.
        match size {
            EntrySize::Eight => {
                for (value, bytes) in out.iter_mut().zip(entries) {
                    *value = u64::from_le_bytes(bytes.try_into().unwrap_or_default());
                }
            }
            EntrySize::Four => {
                for (value, bytes) in out.iter_mut().zip(entries) {
                    *value = u64::from(u32::from_le_bytes(bytes.try_into().unwrap_or_default()));
                }
            }
        }
    }

    fn write_entry(&mut self, at: PhysAddr, size: EntrySize, value: u64) {
        if at.is_aligned(size.bytes()) {
            // Out of range: dropped, as the trait asks.
            let _ = self.write(at, &value.to_le_bytes()[..entry_len(size)]);
        }
    }

    /// Drops the backing of the frame holding `frame`, which then reads as zeros.
    fn zero_frame(&mut self, frame: PhysAddr) {
        self.data.remove(frame.as_u64() >> FRAME_SHIFT);
    }

    /// Whether the 4 KiB frame holding `frame` lies entirely inside RAM.
    fn contains(&self, frame: PhysAddr) -> bool {
        frame.as_u64() >> FRAME_SHIFT < self.frames
    }

    /// Copies the frame holding `frame` out in one piece (zeros outside RAM).
    fn read_frame(&self, frame: PhysAddr, bytes: &mut [u8; FRAME_SIZE as usize]) {
        if self.read(frame.align_down(FRAME_SIZE), bytes).is_err() {
            bytes.fill(0);
        }
    }

    /// Copies `bytes` into the frame holding `frame` in one piece (dropped outside RAM). A
    /// page of zeros, common when pages come back from the store, drops the frame's backing
    /// instead, as `zero_frame` does.
    fn write_frame(&mut self, frame: PhysAddr, bytes: &[u8; FRAME_SIZE as usize]) {
        let base = frame.align_down(FRAME_SIZE);
        if bytes.iter().all(|&b| b == 0) {
            self.zero_frame(base);
        } else {
            // Out of range: dropped, as the trait asks.
            let _ = self.write(base, bytes);
        }
    }
}

/// The length in bytes of an entry of `size`.
fn entry_len(size: EntrySize) -> usize {
    match size {
        EntrySize::Four => 4,
        EntrySize::Eight => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIB_FRAMES: u64 = 1 << 28;

    fn pa(raw: u64) -> PhysAddr {
        PhysAddr::new(raw)
    }

    /// Values read and written inside one frame, in RAM small enough for the indexed
    /// store and in RAM that needs the hashed one: the same answers.
    #[test]
    fn values_in_one_frame() {
        for frames in [4, TIB_FRAMES] {
            let mut ram = Ram::new(frames);
            let last = ram.size_bytes() - 8;
            ram.write_le(pa(0x1ffc), 4, 0xAABB_CCDD).unwrap();
            ram.write_le(pa(last), 8, 0x1122_3344_5566_7788).unwrap();
            assert_eq!(ram.read_le(pa(0x1ffc), 4), Ok(0xAABB_CCDD));
            assert_eq!(ram.read_le(pa(0x1ffe), 2), Ok(0xAABB));
            assert_eq!(ram.read_u64(pa(last)), Ok(0x1122_3344_5566_7788));
            assert_eq!(ram.read_le(pa(last + 7), 1), Ok(0x11));
            assert_eq!(ram.materialised_frames(), 2);
            // Zeros into a frame never written leave it unmaterialised.
            ram.write_le(pa(0x2000), 8, 0).unwrap();
            ram.write_le(pa(0x2000), 1, 0x100).unwrap();
            assert_eq!(ram.materialised_frames(), 2, "{frames} frames");
            // Across a frame's end, past RAM's end, or longer than a value: refused.
            let across = RamError::OutOfRange { addr: pa(0x1ffc), len: 8 };
            assert_eq!(ram.read_le(pa(0x1ffc), 8), Err(across));
            assert_eq!(ram.write_le(pa(0x1ffc), 8, 1), Err(across));
            assert!(ram.read_le(pa(ram.size_bytes()), 1).is_err());
            assert!(ram.write_le(pa(ram.size_bytes()), 1, 1).is_err());
            assert!(ram.read_le(pa(0), 9).is_err());
            ram.zero_frame(pa(0x1000));
            assert_eq!((ram.read_le(pa(0x1ffc), 4), ram.materialised_frames()), (Ok(0), 1));
        }
    }

    #[test]
    fn sizes() {
        let ram = Ram::new(3);
        assert_eq!(ram.frames(), 3);
        assert_eq!(ram.size_bytes(), 3 * 4096);
        let huge = Ram::new(u64::MAX);
        assert_eq!(huge.frames(), u64::MAX >> 12);
        assert_eq!(huge.size_bytes(), u64::MAX - 4095);
        assert_eq!(Ram::new(0).size_bytes(), 0);
    }

    #[test]
    fn terabyte_is_free_until_touched() {
        let mut ram = Ram::new(TIB_FRAMES);
        assert_eq!(ram.size_bytes(), 1 << 40);
        assert_eq!(ram.materialised_frames(), 0);
        let mut buf = [0xFF; 16];
        ram.read(pa((1 << 40) - 16), &mut buf).unwrap();
        assert_eq!(buf, [0; 16]);
        assert_eq!(ram.materialised_frames(), 0);

        ram.write(pa(0x1234_5678), &[1]).unwrap();
        assert_eq!(ram.materialised_frames(), 1);
        let mut byte = [0];
        ram.read(pa(0x1234_5678), &mut byte).unwrap();
        assert_eq!(byte, [1]);
        ram.read(pa(0x1234_5679), &mut byte).unwrap();
        assert_eq!(byte, [0]);
    }

    #[test]
    fn zero_writes_do_not_materialise() {
        let mut ram = Ram::new(4);
        ram.write(pa(0x100), &[0; 5000]).unwrap();
        ram.write_u64(pa(0x2000), 0).unwrap();
        assert_eq!(ram.materialised_frames(), 0);
        // But zeros do overwrite a materialised frame.
        ram.write_u64(pa(0x2000), u64::MAX).unwrap();
        ram.write(pa(0x2002), &[0, 0]).unwrap();
        assert_eq!(ram.read_u64(pa(0x2000)).unwrap(), 0xFFFF_FFFF_0000_FFFF);
        assert_eq!(ram.materialised_frames(), 1);
    }

    #[test]
    fn cross_frame_access() {
        let mut ram = Ram::new(4);
        let data: Vec<u8> = (0..=255u8).cycle().take(4096 + 400).collect();
        ram.write(pa(0xF00), &data).unwrap();
        assert_eq!(ram.materialised_frames(), 3);
        let mut back = vec![0; data.len()];
        ram.read(pa(0xF00), &mut back).unwrap();
        assert_eq!(back, data);

        ram.write_u64(pa(0x2FFC), 0x1122_3344_5566_7788).unwrap();
        assert_eq!(ram.read_u64(pa(0x2FFC)).unwrap(), 0x1122_3344_5566_7788);
        let mut low = [0; 4];
        ram.read(pa(0x2FFC), &mut low).unwrap();
        assert_eq!(low, [0x88, 0x77, 0x66, 0x55]);
    }

    #[test]
    fn out_of_range_is_all_or_nothing() {
        let mut ram = Ram::new(2);
        ram.write(pa(0x1FF0), &[7; 16]).unwrap();
        let err = ram.write(pa(0x1FF8), &[9; 16]).unwrap_err();
        assert_eq!(err, RamError::OutOfRange { addr: pa(0x1FF8), len: 16 });
        assert_eq!(ram.read_u64(pa(0x1FF8)).unwrap(), 0x0707_0707_0707_0707);

        let mut buf = [0xAA; 16];
        assert!(ram.read(pa(0x1FF8), &mut buf).is_err());
        assert_eq!(buf, [0xAA; 16]);

        // A write that would materialise a frame inside RAM before failing changes nothing.
        assert!(ram.write(pa(0x0), &[1; 0x2001]).is_err());
        assert_eq!(ram.read_u64(pa(0)).unwrap(), 0);
        assert_eq!(ram.materialised_frames(), 1);

        // Ends that overflow 64 bits.
        let mut huge = Ram::new(u64::MAX);
        assert!(huge.write(pa(u64::MAX - 3), &[1; 8]).is_err());
        assert!(huge.read_u64(pa(u64::MAX)).is_err());
        assert!(huge.write_u64(pa(u64::MAX - 4095 - 8), 1).is_ok());
        assert!(huge.write_u64(pa(u64::MAX - 4095 - 7), 1).is_err());

        // Exactly at the end: the last byte is in, the next is out; empty is fine anywhere.
        assert!(ram.write(pa(0x1FFF), &[1]).is_ok());
        assert!(ram.write(pa(0x2000), &[1]).is_err());
        assert!(ram.write(pa(u64::MAX), &[]).is_ok());
        assert_eq!(
            ram.read(pa(0x2000), &mut [0]).unwrap_err().to_string(),
            "physical range of 1 bytes at 0x2000 lies outside RAM"
        );
    }

    #[test]
    fn entries_round_trip() {
        let mut ram = Ram::new(TIB_FRAMES);
        let base = pa(0x40_0000);
        ram.write_entry(base + 8, EntrySize::Eight, 0x8000_0000_0012_3067);
        assert_eq!(ram.read_entry(base + 8, EntrySize::Eight), 0x8000_0000_0012_3067);
        assert_eq!(ram.read_u64(base + 8).unwrap(), 0x8000_0000_0012_3067);
        assert_eq!(ram.read_entry(base + 8, EntrySize::Four), 0x0012_3067);
        assert_eq!(ram.read_entry(base + 12, EntrySize::Four), 0x8000_0000);

        ram.write_entry(base, EntrySize::Four, 0xFFFF_FFFF_1111_1111);
        ram.write_entry(base + 4, EntrySize::Four, 0x2222_2222);
        assert_eq!(ram.read_entry(base, EntrySize::Four), 0x1111_1111);
        assert_eq!(ram.read_entry(base + 4, EntrySize::Four), 0x2222_2222);
        assert_eq!(ram.read_entry(base, EntrySize::Eight), 0x2222_2222_1111_1111);

        // The last entries of RAM.
        let mut small = Ram::new(1);
        small.write_entry(pa(0xFF8), EntrySize::Eight, 5);
        small.write_entry(pa(0xFF4), EntrySize::Four, 6);
        assert_eq!(small.read_entry(pa(0xFF8), EntrySize::Eight), 5);
        assert_eq!(small.read_entry(pa(0xFF4), EntrySize::Four), 6);
    }

    #[test]
    fn unaligned_or_outside_entries_read_zero_and_drop_writes() {
        let mut ram = Ram::new(1);
        ram.write_entry(pa(0x4), EntrySize::Eight, 1);
        ram.write_entry(pa(0x2), EntrySize::Four, 1);
        ram.write_entry(pa(0x1000), EntrySize::Eight, 1);
        ram.write_entry(pa(u64::MAX - 7), EntrySize::Eight, 1);
        ram.write_entry(pa(u64::MAX - 3), EntrySize::Four, 1);
        assert_eq!(ram.materialised_frames(), 0);

        ram.write_u64(pa(0), u64::MAX).unwrap();
        ram.write_u64(pa(8), u64::MAX).unwrap();
        assert_eq!(ram.read_entry(pa(0x4), EntrySize::Eight), 0);
        assert_eq!(ram.read_entry(pa(0x2), EntrySize::Four), 0);
        assert_eq!(ram.read_entry(pa(0x1000), EntrySize::Eight), 0);
        assert_eq!(ram.read_entry(pa(u64::MAX - 7), EntrySize::Eight), 0);
        assert_eq!(ram.read_entry(pa(u64::MAX - 3), EntrySize::Four), 0);
        assert_eq!(ram.read_entry(pa(u64::MAX), EntrySize::Four), 0);
    }

    #[test]
    fn zero_frame_dematerialises() {
        let mut ram = Ram::new(4);
        ram.write_u64(pa(0x1008), 42).unwrap();
        ram.write_u64(pa(0x2008), 43).unwrap();
        assert_eq!(ram.materialised_frames(), 2);
        ram.zero_frame(pa(0x1000));
        assert_eq!(ram.materialised_frames(), 1);
        assert_eq!(ram.read_u64(pa(0x1008)).unwrap(), 0);
        assert_eq!(ram.read_u64(pa(0x2008)).unwrap(), 43);
        // Zeroing an unmaterialised or outside frame is harmless.
        ram.zero_frame(pa(0x3000));
        ram.zero_frame(pa(u64::MAX));
        assert_eq!(ram.materialised_frames(), 1);
    }

    #[test]
    fn contains_at_the_edges() {
        let ram = Ram::new(4);
        assert!(ram.contains(pa(0)));
        assert!(ram.contains(pa(0x3000)));
        assert!(ram.contains(pa(0x3FFF)));
        assert!(!ram.contains(pa(0x4000)));
        assert!(!ram.contains(pa(u64::MAX)));
        assert!(!Ram::new(0).contains(pa(0)));

        let huge = Ram::new(u64::MAX);
        assert!(huge.contains(pa(u64::MAX - 8191)));
        assert!(!huge.contains(pa(u64::MAX - 4095)));
    }

    #[test]
    fn frames_round_trip() {
        let mut ram = Ram::new(4);
        let page: [u8; 4096] = core::array::from_fn(|i| (i % 251) as u8 | 1);
        ram.write_frame(pa(0x2123), &page);
        assert_eq!(ram.read_u64(pa(0x2000)).unwrap(), 0x0707_0505_0303_0101);
        let mut back = [0xAA; 4096];
        ram.read_frame(pa(0x2000), &mut back);
        assert_eq!(back, page);
        assert_eq!(ram.materialised_frames(), 1);
        // Zeros dematerialise; outside reads zero and writes are dropped.
        ram.write_frame(pa(0x2000), &[0; 4096]);
        assert_eq!(ram.materialised_frames(), 0);
        ram.write_frame(pa(0x4000), &page);
        assert_eq!(ram.materialised_frames(), 0);
        ram.read_frame(pa(u64::MAX), &mut back);
        assert_eq!(back, [0; 4096]);
    }

    #[test]
    fn debug_is_short() {
        let mut ram = Ram::new(2);
        ram.write(pa(0), &[1]).unwrap();
        assert_eq!(format!("{ram:?}"), "Ram { frames: 2, materialised_frames: 1 }");
    }
}

//! The page file's disk: the primary master of the IDE controller of QEMU's PC machine,
//! driven by ATA PIO with 28-bit sector numbers, polling, interrupts off.
//!
//! Why ATA PIO rather than virtio-blk: the controller sits at fixed ports on every PC
//! machine QEMU emulates, so the driver needs no PCI enumeration, no DMA and no queues in
//! memory; and every transfer finishes before the call returns, which is what the
//! pager's synchronous [`BackingStore`] asks for. virtio-blk would move pages by DMA with
//! fewer exits to the emulator, at the price of a PCI scan and a virtqueue; for a test of
//! the paging path the simplest device that really stores bytes is the better one.
//!
//! The sequences follow the ATA/ATAPI-6 protocol for PIO data-in (READ SECTORS) and PIO
//! data-out (WRITE SECTORS): wait until BSY clears, then DRQ says a sector's 256 words
//! may move; ERR or DF end the command with the error register saying why.

use core::fmt;

use paging::pager::{BackingStore, ClusterError, PAGE_BYTES, Slot, StoreError};

use crate::port::{inb, outb, read_words, write_words};

/// Bytes per sector.
pub const SECTOR_BYTES: usize = 512;
/// Sectors per page of the page file.
pub const SECTORS_PER_PAGE: u32 = (PAGE_BYTES / SECTOR_BYTES) as u32;
/// The most sectors one command moves (a sector count of 0 means 256).
const MAX_SECTORS: u32 = 256;
/// The most pages one write command moves.
const MAX_CLUSTER_PAGES: usize = (MAX_SECTORS / SECTORS_PER_PAGE) as usize;
/// How many status reads a wait may take before the driver gives up (QEMU answers at
/// once; a real drive within milliseconds).
const POLLS: u32 = 10_000_000;

/// The primary channel's command block and control registers.
const DATA: u16 = 0x1F0;
const ERROR: u16 = 0x1F1;
const SECTOR_COUNT: u16 = 0x1F2;
const LBA_LOW: u16 = 0x1F3;
const LBA_MID: u16 = 0x1F4;
const LBA_HIGH: u16 = 0x1F5;
const DRIVE: u16 = 0x1F6;
const STATUS: u16 = 0x1F7;
const COMMAND: u16 = 0x1F7;
const CONTROL: u16 = 0x3F6;

/// Status bits.
const BSY: u8 = 0x80;
const DF: u8 = 0x20;
const DRQ: u8 = 0x08;
const ERR: u8 = 0x01;
/// Control: no interrupts from the device (the driver polls).
const NIEN: u8 = 0x02;
/// Drive register: LBA addressing, master.
const MASTER_LBA: u8 = 0xE0;

const IDENTIFY: u8 = 0xEC;
const READ_SECTORS: u8 = 0x20;
const WRITE_SECTORS: u8 = 0x30;
const FLUSH_CACHE: u8 = 0xE7;

/// Why a command failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AtaError {
    /// No drive answers on the primary master (the status reads 0 or 0xFF).
    NoDrive,
    /// The drive is not an ATA disk (an ATAPI CD-ROM, say).
    NotAta,
    /// The drive stayed busy, or never asked for data, for the whole wait.
    Timeout {
        /// The last status read.
        status: u8,
    },
    /// The drive ended the command with an error.
    Device {
        /// The status (ERR or DF set).
        status: u8,
        /// The error register (0x04: command aborted, as for a sector past the end).
        error: u8,
    },
    /// The transfer does not fit the disk or one command.
    OutOfRange {
        /// The first sector.
        lba: u32,
        /// The sectors asked for.
        sectors: u32,
    },
}

impl fmt::Display for AtaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NoDrive => write!(f, "no ATA drive on the primary master"),
            Self::NotAta => write!(f, "the primary master is not an ATA disk"),
            Self::Timeout { status } => write!(f, "the drive timed out (status {status:#04x})"),
            Self::Device { status, error } => {
                write!(f, "the drive reported an error (status {status:#04x}, error {error:#04x})")
            }
            Self::OutOfRange { lba, sectors } => {
                write!(f, "{sectors} sectors from {lba} do not fit the disk or one command")
            }
        }
    }
}

impl core::error::Error for AtaError {}

/// The primary master, found by IDENTIFY DEVICE.
#[derive(Debug)]
pub struct Ata {
    sectors: u32,
}

impl Ata {
    /// Finds the disk and reads its size.
    ///
    /// # Errors
    ///
    /// [`AtaError::NoDrive`], [`AtaError::NotAta`], or what the IDENTIFY command met.
    pub fn probe() -> Result<Self, AtaError> {
        outb(CONTROL, NIEN);
        outb(DRIVE, MASTER_LBA);
        settle();
        if matches!(inb(STATUS), 0 | 0xFF) {
            return Err(AtaError::NoDrive);
        }
        for port in [SECTOR_COUNT, LBA_LOW, LBA_MID, LBA_HIGH] {
            outb(port, 0);
        }
        outb(COMMAND, IDENTIFY);
        settle();
        if inb(STATUS) == 0 {
            return Err(AtaError::NoDrive);
        }
        wait_not_busy()?;
        // An ATAPI or SATA-bridged device leaves its signature here and aborts.
        if inb(LBA_MID) != 0 || inb(LBA_HIGH) != 0 {
            return Err(AtaError::NotAta);
        }
        wait_data()?;
        let mut identity = [0u8; SECTOR_BYTES];
        read_words(DATA, &mut identity);
        // Words 60 and 61: the sectors addressable with 28-bit LBAs.
        let word = |i: usize| u32::from(u16::from_le_bytes([identity[2 * i], identity[2 * i + 1]]));
        Ok(Self { sectors: word(60) | word(61) << 16 })
    }

    /// The disk's size in sectors.
    pub fn sectors(&self) -> u32 {
        self.sectors
    }

    /// Reads the sectors from `lba` into `buffer` (whole sectors, at most 256).
    ///
    /// # Errors
    ///
    /// [`AtaError::OutOfRange`] before any I/O when the sectors do not fit one command
    /// (the disk's end is the drive's to check: past it, it aborts the command), else
    /// what the drive reported. `buffer` may hold part of the data on error.
    pub fn read(&mut self, lba: u32, buffer: &mut [u8]) -> Result<(), AtaError> {
        let sectors = command_sectors(lba, buffer.len())?;
        start(READ_SECTORS, lba, sectors);
        for sector in buffer.chunks_exact_mut(SECTOR_BYTES) {
            wait_data()?;
            read_words(DATA, sector);
        }
        Ok(())
    }

    /// Writes `pages` to consecutive sectors from `lba` in one command, then flushes the
    /// drive's cache so that the bytes are on the medium when the call returns.
    ///
    /// # Errors
    ///
    /// As for [`read`](Self::read); on a device error the sectors before the failing
    /// one may be written.
    pub fn write(&mut self, lba: u32, pages: &[&[u8; PAGE_BYTES]]) -> Result<(), AtaError> {
        let sectors = command_sectors(lba, pages.len().saturating_mul(PAGE_BYTES))?;
        start(WRITE_SECTORS, lba, sectors);
        for sector in pages.iter().flat_map(|page| page.chunks_exact(SECTOR_BYTES)) {
            wait_data()?;
            write_words(DATA, sector);
        }
        wait_done()?;
        outb(COMMAND, FLUSH_CACHE);
        settle();
        wait_done()
    }
}

/// The sector count of a transfer of `bytes` from `lba`, checked to be whole sectors, at
/// least one and at most one command's worth, within 28-bit LBAs.
fn command_sectors(lba: u32, bytes: usize) -> Result<u32, AtaError> {
    let sectors = u32::try_from(bytes / SECTOR_BYTES).unwrap_or(u32::MAX);
    let fits = bytes % SECTOR_BYTES == 0
        && (1..=MAX_SECTORS).contains(&sectors)
        && lba.checked_add(sectors).is_some_and(|end| end <= 1 << 28);
    if fits { Ok(sectors) } else { Err(AtaError::OutOfRange { lba, sectors }) }
}

/// Issues `command` for `sectors` sectors from `lba` (the caller checked both).
fn start(command: u8, lba: u32, sectors: u32) {
    let [low, mid, high, top] = lba.to_le_bytes();
    outb(DRIVE, MASTER_LBA | (top & 0x0F));
    // 256 sectors are sent as 0; the count was checked to be 1 to 256.
    outb(SECTOR_COUNT, sectors as u8);
    outb(LBA_LOW, low);
    outb(LBA_MID, mid);
    outb(LBA_HIGH, high);
    outb(COMMAND, command);
    settle();
}

/// The 400 ns a drive may take before its status means anything: four reads of the
/// alternate status register, as the ATA specification suggests.
fn settle() {
    for _ in 0..4 {
        inb(CONTROL);
    }
}

/// Waits until BSY clears; fails on ERR or DF.
fn wait_not_busy() -> Result<u8, AtaError> {
    let mut status = inb(STATUS);
    for _ in 0..POLLS {
        if status & BSY == 0 {
            return checked(status);
        }
        core::hint::spin_loop();
        status = inb(STATUS);
    }
    Err(AtaError::Timeout { status })
}

/// Waits until the drive asks for (or offers) a sector's data.
fn wait_data() -> Result<(), AtaError> {
    let mut status = wait_not_busy()?;
    for _ in 0..POLLS {
        if status & DRQ != 0 {
            return Ok(());
        }
        status = checked(inb(STATUS))?;
    }
    Err(AtaError::Timeout { status })
}

/// Waits until the command has ended without error.
fn wait_done() -> Result<(), AtaError> {
    wait_not_busy().map(|_| ())
}

/// `status`, or the error it reports.
fn checked(status: u8) -> Result<u8, AtaError> {
    if status & (ERR | DF) == 0 {
        Ok(status)
    } else {
        Err(AtaError::Device { status, error: inb(ERROR) })
    }
}

/// A run of consecutive slots of the disk as the pager's backing store: slot `i` is the
/// page at sectors `8 * (first + i)` to `8 * (first + i) + 7`. Each test pages to a part
/// of its own, so that what one leaves on the disk stays there for the host to check.
#[derive(Debug)]
pub struct PageFile<'d> {
    disk: &'d mut Ata,
    first: u32,
    slots: u32,
    failing_read: Option<Slot>,
    /// The last error the drive reported, for the tests to name.
    pub last_error: Option<AtaError>,
}

impl<'d> PageFile<'d> {
    /// Slots `first..first + slots` of `disk` (slot = page-sized run of sectors).
    ///
    /// # Errors
    ///
    /// [`AtaError::OutOfRange`] when the slots do not fit on the disk.
    pub fn new(disk: &'d mut Ata, first: u32, slots: u32) -> Result<Self, AtaError> {
        let end = first.checked_add(slots).and_then(|end| end.checked_mul(SECTORS_PER_PAGE));
        if end.is_none_or(|end| end > disk.sectors()) {
            let lba = first.saturating_mul(SECTORS_PER_PAGE);
            let sectors = slots.saturating_mul(SECTORS_PER_PAGE);
            return Err(AtaError::OutOfRange { lba, sectors });
        }
        Ok(Self { disk, first, slots, failing_read: None, last_error: None })
    }

    /// The disk slot (counted from the disk's start) of slot `slot`.
    pub fn disk_slot(&self, slot: Slot) -> u32 {
        self.first + slot.0
    }

    /// Makes every read of `slot` fail, as a bad sector would: the driver sends it to the
    /// sector just past the end of the disk, and the drive itself aborts the command.
    pub fn fail_reads_of(&mut self, slot: Slot) {
        self.failing_read = Some(slot);
    }

    /// Reads go where they belong again.
    pub fn clear_failures(&mut self) {
        self.failing_read = None;
    }

    /// The first sector of `slot`, or the error for a slot outside the file.
    fn lba(&self, slot: Slot) -> Result<u32, StoreError> {
        if slot.0 >= self.slots {
            return Err(StoreError::OutOfRange { slot, slots: self.slots });
        }
        // In range: `new` checked that every slot's sectors fit in a u32.
        Ok((self.first + slot.0) * SECTORS_PER_PAGE)
    }

    /// The store's error for a drive error on `slot`, remembered for the tests.
    fn device_error(&mut self, slot: Slot, write: bool, error: AtaError) -> StoreError {
        self.last_error = Some(error);
        StoreError::Device { slot, write }
    }
}

impl BackingStore for PageFile<'_> {
    fn slots(&self) -> u32 {
        self.slots
    }

    fn read(&mut self, slot: Slot, page: &mut [u8; PAGE_BYTES]) -> Result<(), StoreError> {
        let mut lba = self.lba(slot)?;
        if self.failing_read == Some(slot) {
            lba = self.disk.sectors();
        }
        // Into a buffer first: the pager's page stays as it was if the drive fails midway.
        let mut buffer = [0u8; PAGE_BYTES];
        match self.disk.read(lba, &mut buffer) {
            Ok(()) => {
                *page = buffer;
                Ok(())
            }
            Err(error) => Err(self.device_error(slot, false, error)),
        }
    }

    fn write(&mut self, slot: Slot, page: &[u8; PAGE_BYTES]) -> Result<(), StoreError> {
        let lba = self.lba(slot)?;
        self.disk.write(lba, &[page]).map_err(|error| self.device_error(slot, true, error))
    }

    /// One command per run of up to 32 pages.
    fn write_cluster(
        &mut self,
        first: Slot,
        pages: &[&[u8; PAGE_BYTES]],
    ) -> Result<(), ClusterError> {
        if u64::from(first.0) + pages.len() as u64 > u64::from(self.slots) {
            let error = StoreError::OutOfRange { slot: Slot(self.slots), slots: self.slots };
            return Err(ClusterError { written: 0, error });
        }
        let mut slot = first;
        for (index, run) in pages.chunks(MAX_CLUSTER_PAGES).enumerate() {
            let written = index * MAX_CLUSTER_PAGES;
            // In range: checked above for the whole cluster.
            let lba = (self.first + slot.0) * SECTORS_PER_PAGE;
            self.disk.write(lba, run).map_err(|error| ClusterError {
                written,
                error: self.device_error(slot, true, error),
            })?;
            slot = Slot(slot.0 + run.len() as u32);
        }
        Ok(())
    }
}

//! The simulated computer: RAM, one CPU with its MMU and TLB, and processes.
//!
//! Every load, store and instruction fetch goes through the TLB; a miss walks the tables
//! in RAM ([`crate::mmu::walk`]). A page fault goes to the kernel's
//! [`FaultPolicy`], which gets the whole machine to act on, and the access is retried once
//! the policy says the cause is gone.

use core::fmt;
use core::marker::PhantomData;

use paging::{
    Access, Asid, Entry, Exception, Fault, FaultCause, FaultPolicy, PageFlags, PageTable,
    PageTableFormat, PhysAddr, Privilege, Resolution, Tlb, VirtAddr,
};

use crate::counters::{CostModel, Counters};
use crate::mmu::{self, Control, LoadedRoot, RootRefused, WalkError, Walked};
use crate::ram::Ram;
use crate::tlb::{SimTlb, TlbConfig, TlbEntry};

/// How many times one access may fault and be retried before the machine gives up.
pub const RETRY_LIMIT: u32 = 8;

/// How to build a machine.
#[derive(Clone, Copy, Debug)]
pub struct MachineConfig {
    /// Physical RAM in 4 KiB frames (materialised only when touched).
    pub ram_frames: u64,
    /// The TLB's geometry.
    pub tlb: TlbConfig,
    /// The MMU's control bits.
    pub control: Control,
    /// Report a TLB hit that no longer matches the tables as an error (see
    /// [`MachineError::StaleTlb`]) instead of using it as hardware would.
    pub strict_tlb: bool,
    /// What each event costs, in cycles.
    pub costs: CostModel,
}

impl Default for MachineConfig {
    /// 64 MiB of RAM, a 16 x 4 TLB, every protection on, strict TLB checking.
    fn default() -> Self {
        Self {
            ram_frames: 16 * 1024,
            tlb: TlbConfig::default(),
            control: Control::default(),
            strict_tlb: true,
            costs: CostModel::default(),
        }
    }
}

/// A process: an address space (a root table) and its address-space id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    /// A name for messages.
    pub name: String,
    /// The root table (what CR3 holds while the process runs).
    pub root: PhysAddr,
    /// The TLB tag of its translations.
    pub asid: Asid,
}

/// A process's number on its machine.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ProcessId(pub usize);

/// A page fault as the CPU reports it: the fault and the x86 error code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RaisedFault {
    /// What happened.
    pub fault: Fault,
    /// The x86 #PF error code (bit 0 P, 1 W/R, 2 U/S, 3 RSVD, 4 I/D).
    pub error_code: u32,
}

/// A TLB hit that disagrees with the tables in memory: a missing invalidation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct StaleUse {
    /// The address accessed.
    pub addr: VirtAddr,
    /// The translation the TLB still holds.
    pub cached: TlbEntry,
    /// The raw entry now at the cached leaf's place in memory.
    pub entry_now: u64,
    /// What `entry_now` means at the cached leaf's level.
    pub decoded_now: Entry,
    /// What a walk of the tables gives now.
    pub walk_now: Result<Walked, WalkError>,
}

/// Why an access did not complete.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum MachineError {
    /// No address space is active.
    NoActiveSpace,
    /// A non-canonical address (on x86 a general-protection fault, not a page fault).
    NonCanonical {
        /// The address.
        addr: VirtAddr,
    },
    /// The tables lead outside RAM.
    TableOutsideRam {
        /// The address whose walk got there.
        addr: VirtAddr,
        /// The level of the entry that points outside.
        level: u8,
        /// That entry.
        raw: u64,
    },
    /// A page maps physical memory beyond RAM.
    PhysicalOutsideRam {
        /// The virtual address.
        addr: VirtAddr,
        /// The physical address it maps to.
        phys: PhysAddr,
    },
    /// A page fault that no policy resolved: the process would end with an access
    /// violation.
    Unhandled(RaisedFault),
    /// The fault policy raised an exception to the process.
    Exception {
        /// The exception.
        exception: Exception,
        /// The fault that led to it.
        fault: RaisedFault,
    },
    /// The policy kept saying "retry" but the access kept faulting.
    RetryLimit(RaisedFault),
    /// Strict mode: a TLB hit disagrees with the tables (boxed: it is large).
    StaleTlb(Box<StaleUse>),
    /// A root could not be loaded: a PAE PDPTE has reserved bits set (on x86 the MOV to
    /// CR3 raises a general-protection fault). The previous root stays active.
    RootRefused(RootRefused),
}

impl fmt::Display for MachineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoActiveSpace => f.write_str("no address space is active"),
            Self::NonCanonical { addr } => {
                write!(f, "general protection: {:#x} is not canonical", addr.as_u64())
            }
            Self::TableOutsideRam { addr, level, raw } => write!(
                f,
                "the walk of {:#x} leads outside RAM: level-{level} entry {raw:#x}",
                addr.as_u64()
            ),
            Self::PhysicalOutsideRam { addr, phys } => {
                write!(f, "{:#x} maps to {:#x}, outside RAM", addr.as_u64(), phys.as_u64())
            }
            Self::Unhandled(raised) => write!(
                f,
                "unhandled page fault: {} (error code {:#x})",
                raised.fault, raised.error_code
            ),
            Self::Exception { exception, fault } => {
                write!(f, "{exception} (from {})", fault.fault)
            }
            Self::RetryLimit(raised) => {
                write!(
                    f,
                    "the fault kept coming back after {RETRY_LIMIT} retries: {}",
                    raised.fault
                )
            }
            Self::StaleTlb(stale) => write!(
                f,
                "stale TLB entry: the access to {:#x} hit the cached page {:#x} -> {:#x} ({:?}), \
                 but its entry in memory is now {:#x}, {}",
                stale.addr.as_u64(),
                stale.cached.page.as_u64(),
                stale.cached.frame.as_u64(),
                stale.cached.flags,
                stale.entry_now,
                EntryText(stale.decoded_now)
            ),
            Self::RootRefused(refused) => refused.fmt(f),
        }
    }
}

impl core::error::Error for MachineError {}

/// A decoded entry for messages: a leaf as its frame and flags, like a TLB entry.
struct EntryText(Entry);

impl fmt::Display for EntryText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Entry::Leaf { frame, flags } => write!(f, "mapping {:#x} ({flags:?})", frame.as_u64()),
            Entry::Table { frame, .. } => write!(f, "a table at {:#x}", frame.as_u64()),
            Entry::Empty => f.write_str("not present"),
            Entry::Payload(payload) => write!(f, "not present (payload {payload:#x})"),
            Entry::Invalid(reason) => write!(f, "invalid ({reason})"),
        }
    }
}

/// What stops one translation: a page fault to resolve, or an error.
enum Stop {
    Fault(RaisedFault),
    Error(MachineError),
}

/// The CPU state that paging reads: the active root and its tag, and the privilege.
#[derive(Clone, Copy, Debug)]
struct Cpu {
    root: ActiveRoot,
    asid: Asid,
    mode: Privilege,
}

/// What the CPU holds of its root: CR3 and, with PAE, the PDPTE registers.
#[derive(Clone, Copy, Debug)]
enum ActiveRoot {
    /// No root was ever activated.
    None,
    /// Loaded: walks start here.
    Loaded(LoadedRoot),
    /// Activated by a call that could not load it (a [`TlbPort`], which has no access to
    /// RAM, or [`Tlb::activate`] with a root that refused to load): the machine loads it at
    /// its next translation.
    Pending(PhysAddr),
}

impl ActiveRoot {
    fn address(self) -> Option<PhysAddr> {
        match self {
            Self::None => None,
            Self::Loaded(root) => Some(root.address()),
            Self::Pending(address) => Some(address),
        }
    }
}

/// A fault policy that resolves nothing: every fault ends the access.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoResolver;

impl<C: ?Sized> FaultPolicy<C> for NoResolver {
    fn resolve(&mut self, _ctx: &mut C, _fault: &Fault) -> Resolution {
        Resolution::Pass
    }
}

/// A simulated computer whose page tables use format `F`.
pub struct Machine<F: PageTableFormat> {
    ram: Ram,
    tlb: SimTlb,
    config: MachineConfig,
    cpu: Cpu,
    processes: Vec<Process>,
    current: Option<ProcessId>,
    counters: Counters,
    last_fault: Option<RaisedFault>,
    /// The frames the last access moved bytes to or from, in address order.
    touched: Vec<PhysAddr>,
    format: PhantomData<F>,
}

impl<F: PageTableFormat> fmt::Debug for Machine<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Machine")
            .field("format", &F::NAME)
            .field("ram", &self.ram)
            .field("processes", &self.processes)
            .field("current", &self.current)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl<F: PageTableFormat> Machine<F> {
    /// Builds a machine with no process and no active address space, in supervisor mode.
    #[must_use]
    pub fn new(config: MachineConfig) -> Self {
        Self {
            ram: Ram::new(config.ram_frames),
            tlb: SimTlb::new(config.tlb),
            config,
            cpu: Cpu { root: ActiveRoot::None, asid: Asid(0), mode: Privilege::Supervisor },
            processes: Vec::new(),
            current: None,
            counters: Counters::default(),
            last_fault: None,
            touched: Vec::new(),
            format: PhantomData,
        }
    }

    /// The physical memory.
    pub fn ram(&self) -> &Ram {
        &self.ram
    }

    /// The physical memory, mutably: page tables live here (see
    /// [`page_table`](Self::page_table)).
    pub fn ram_mut(&mut self) -> &mut Ram {
        &mut self.ram
    }

    /// The RAM and the TLB maintenance apart, both mutable: what a pager needs to take a
    /// page away from a space (rewrite its PTE, then invalidate the cached entry).
    pub fn split(&mut self) -> (&mut Ram, TlbPort<'_>) {
        let port = TlbPort { tlb: &mut self.tlb, cpu: &mut self.cpu, counters: &mut self.counters };
        (&mut self.ram, port)
    }

    /// Charges `cycles` of backing-store I/O (the kernel waited for the disk).
    pub fn charge_io(&mut self, cycles: u64) {
        self.counters.io_cycles += cycles;
        self.counters.cycles += cycles;
    }

    /// The TLB.
    pub fn tlb(&self) -> &SimTlb {
        &self.tlb
    }

    /// What has happened so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Zeroes the counters.
    pub fn reset_counters(&mut self) {
        self.counters = Counters::default();
    }

    /// The configuration.
    pub fn config(&self) -> &MachineConfig {
        &self.config
    }

    /// Changes the MMU's control bits (as writing CR0, CR4 and EFER would; cached
    /// translations stay). A change of SMEP also reloads PAE's PDPTE registers from the
    /// active root, as a MOV to CR4 does (SDM 4.4.1); if they refuse to load, nothing
    /// changes (the MOV to CR4 would raise a general-protection fault).
    pub fn set_control(&mut self, control: Control) {
        let reloads = control.smep != self.config.control.smep;
        if let (true, ActiveRoot::Loaded(root)) = (reloads, self.cpu.root) {
            match LoadedRoot::load::<F, Ram>(&self.ram, root.address()) {
                Ok(reloaded) => self.cpu.root = ActiveRoot::Loaded(reloaded),
                Err(_) => return,
            }
        }
        self.config.control = control;
    }

    /// Turns strict TLB checking on or off.
    pub fn set_strict_tlb(&mut self, strict: bool) {
        self.config.strict_tlb = strict;
    }

    /// The privilege the CPU runs at.
    pub fn mode(&self) -> Privilege {
        self.cpu.mode
    }

    /// Switches between user and supervisor mode.
    pub fn set_mode(&mut self, mode: Privilege) {
        self.cpu.mode = mode;
    }

    /// Runs kernel code from here on: loads the kernel's root table `root` (tagged `asid`,
    /// as [`load_root`](Self::load_root)) and switches to supervisor mode, so that loads,
    /// stores and fetches reach supervisor-only pages (a kernel heap, a direct map) with
    /// the kernel's permissions (WP, SMEP and SMAP as [`Control`] says).
    /// Processes are for user code; this is the one call kernel code needs.
    ///
    /// ```
    /// use paging::frame::{BitmapAllocator, MemoryRegion};
    /// use paging::{Asid, PageFlags, PageTable, PhysAddr, VirtAddr};
    /// use paging_sim::{Machine, MachineConfig, NoResolver};
    /// use paging_x86::X86_64;
    ///
    /// let mut machine = Machine::<X86_64>::new(MachineConfig::default());
    /// let mut bitmap = [0u64; 256];
    /// let usable = [MemoryRegion::usable(32 << 20, 32 << 20)];
    /// let mut frames = BitmapAllocator::new(&mut bitmap, &usable)?;
    /// let mut table = PageTable::<X86_64, _>::new(machine.ram_mut(), &mut frames)?;
    /// let heap = VirtAddr::new(0xffff_8000_0000_0000);
    /// let rw = PageFlags::READABLE | PageFlags::WRITABLE; // no USER: kernel only
    /// table.map_range(heap, PhysAddr::new(0x10_0000), 0x1000, rw, &mut frames)?.ignore();
    /// let root = table.root();
    /// machine.enter_kernel(root, Asid(0))?;
    /// machine.store_value(heap, 42u64, &mut NoResolver)?;
    /// assert_eq!(machine.load_value::<u64, _>(heap, &mut NoResolver)?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`load_root`](Self::load_root); nothing changes then (the mode included).
    pub fn enter_kernel(&mut self, root: PhysAddr, asid: Asid) -> Result<(), MachineError> {
        self.load_root(root, asid)?;
        self.set_mode(Privilege::Supervisor);
        Ok(())
    }

    /// The active root table, if any.
    pub fn active_root(&self) -> Option<PhysAddr> {
        self.cpu.root.address()
    }

    /// The active root as loaded, PAE's PDPTE registers included; `None` if no root is
    /// active or its load waits for the next translation (see [`TlbPort`]).
    pub fn loaded_root(&self) -> Option<LoadedRoot> {
        match self.cpu.root {
            ActiveRoot::Loaded(root) => Some(root),
            ActiveRoot::None | ActiveRoot::Pending(_) => None,
        }
    }

    /// Loads the root table at `root`, tagged `asid`, as a MOV to CR3 with a PCID does (the
    /// other tags' cached translations stay). With PAE this is when the CPU reads the four
    /// PDPTEs into its registers (SDM 4.4.1): walks use those until the next load,
    /// whatever is written to the PDPT meanwhile (A and D updates through an alias
    /// included). No TLB invalidation reloads them; a load does: this call,
    /// [`switch_to`](Self::switch_to), [`Tlb::activate`], and a change of SMEP through
    /// [`set_control`](Self::set_control).
    ///
    /// # Errors
    ///
    /// Returns [`MachineError::RootRefused`] if a present PDPTE has reserved bits set (the
    /// #GP of the MOV to CR3); nothing changes, the previous root stays active.
    pub fn load_root(&mut self, root: PhysAddr, asid: Asid) -> Result<(), MachineError> {
        let loaded =
            LoadedRoot::load::<F, Ram>(&self.ram, root).map_err(MachineError::RootRefused)?;
        self.cpu.root = ActiveRoot::Loaded(loaded);
        self.cpu.asid = asid;
        Ok(())
    }

    /// The active address-space id.
    pub fn active_asid(&self) -> Asid {
        self.cpu.asid
    }

    /// The last page fault the CPU raised.
    pub fn last_fault(&self) -> Option<RaisedFault> {
        self.last_fault
    }

    /// The frames the last successful load, fetch or store touched, one per page of its
    /// bytes in address order (empty after an empty access or one that faulted). Hardware keeps no such
    /// record; a simulator can, and a policy that wants every reference (exact LRU) reads
    /// it: see [`PagedKernel::report_references`](crate::PagedKernel::report_references).
    #[must_use]
    pub fn last_frames(&self) -> &[PhysAddr] {
        &self.touched
    }

    /// Adds a process whose tables are at `root`, tagged `asid`.
    pub fn add_process(&mut self, name: &str, root: PhysAddr, asid: Asid) -> ProcessId {
        self.processes.push(Process { name: name.to_owned(), root, asid });
        ProcessId(self.processes.len() - 1)
    }

    /// A process, if `id` names one.
    pub fn process(&self, id: ProcessId) -> Option<&Process> {
        self.processes.get(id.0)
    }

    /// The running process, if any.
    pub fn current(&self) -> Option<ProcessId> {
        self.current
    }

    /// Runs process `id`: loads its root and tag with [`load_root`](Self::load_root), as a
    /// context switch writes CR3 with a PCID (the other processes' cached translations
    /// stay), and enters user mode. Returns `false` (and changes nothing) if there is no
    /// such process or its root refuses to load (`load_root` says why).
    pub fn switch_to(&mut self, id: ProcessId) -> bool {
        let Some(process) = self.processes.get(id.0) else { return false };
        let (root, asid) = (process.root, process.asid);
        if self.load_root(root, asid).is_err() {
            return false;
        }
        self.current = Some(id);
        self.cpu.mode = Privilege::User;
        true
    }

    /// The page table of the active address space, over this machine's RAM.
    pub fn page_table(&mut self) -> Option<PageTable<F, &mut Ram>> {
        let root = self.cpu.root.address()?;
        Some(PageTable::from_root(root, &mut self.ram))
    }

    /// The page table whose root is `root`, over this machine's RAM.
    pub fn page_table_at(&mut self, root: PhysAddr) -> PageTable<F, &mut Ram> {
        PageTable::from_root(root, &mut self.ram)
    }

    /// Reads `buf.len()` bytes at `addr`.
    ///
    /// # Errors
    ///
    /// See [`MachineError`]; nothing is read on error.
    pub fn load<P: FaultPolicy<Self>>(
        &mut self,
        addr: VirtAddr,
        buf: &mut [u8],
        policy: &mut P,
    ) -> Result<(), MachineError> {
        self.counters.loads += 1;
        self.access(addr, Data::Read(buf), Access::Read, policy)
    }

    /// Fetches `buf.len()` bytes of instructions at `addr`.
    ///
    /// # Errors
    ///
    /// See [`MachineError`]; nothing is read on error.
    pub fn fetch<P: FaultPolicy<Self>>(
        &mut self,
        addr: VirtAddr,
        buf: &mut [u8],
        policy: &mut P,
    ) -> Result<(), MachineError> {
        self.counters.fetches += 1;
        self.access(addr, Data::Read(buf), Access::Execute, policy)
    }

    /// Writes `data` at `addr`. An access that crosses pages translates all of them before
    /// it writes any byte.
    ///
    /// # Errors
    ///
    /// See [`MachineError`]; nothing is written on error.
    pub fn store<P: FaultPolicy<Self>>(
        &mut self,
        addr: VirtAddr,
        data: &[u8],
        policy: &mut P,
    ) -> Result<(), MachineError> {
        self.counters.stores += 1;
        self.access(addr, Data::Write(data), Access::Write, policy)
    }

    /// Makes one access of `access` kind to the byte at `addr` as the CPU would, through
    /// the TLB and the tables, resolving faults with `policy`, setting Accessed and Dirty,
    /// but moving no byte: what a trace replays (it knows the addresses, not the data).
    /// Returns the physical address reached; [`last_frames`](Self::last_frames) holds its
    /// frame.
    ///
    /// # Errors
    ///
    /// See [`MachineError`].
    pub fn touch<P: FaultPolicy<Self>>(
        &mut self,
        addr: VirtAddr,
        access: Access,
        policy: &mut P,
    ) -> Result<PhysAddr, MachineError> {
        match access {
            Access::Read => self.counters.loads += 1,
            Access::Write => self.counters.stores += 1,
            Access::Execute => self.counters.fetches += 1,
        }
        self.touched.clear();
        let phys = self.translate_resolving(addr, access, policy)?;
        self.touched.push(phys.align_down(4096));
        Ok(phys)
    }

    /// Translates every page `data` touches (resolving faults), then moves the bytes.
    fn access<P: FaultPolicy<Self>>(
        &mut self,
        addr: VirtAddr,
        data: Data<'_>,
        access: Access,
        policy: &mut P,
    ) -> Result<(), MachineError> {
        self.touched.clear();
        let len = data.len() as u64;
        let in_page = 4096 - addr.offset_in(4096);
        // The common case, one page, needs no list of pieces.
        let pieces = if len <= in_page {
            let phys = if len == 0 {
                PhysAddr::ZERO
            } else {
                self.translate_resolving(addr, access, policy)?
            };
            Pieces::One(phys, len)
        } else {
            let mut pieces = Pieces::Many(Vec::new());
            let (mut at, mut left) = (addr.as_u64(), len);
            while left > 0 {
                let piece = left.min(4096 - (at & 0xFFF));
                let phys = self.translate_resolving(VirtAddr::new(at), access, policy)?;
                pieces.push(phys, piece);
                at = at.wrapping_add(piece);
                left -= piece;
            }
            pieces
        };
        let mut done = 0;
        let mut data = data;
        for (phys, piece) in pieces.iter() {
            let range = done..done + piece as usize;
            let moved = match &mut data {
                Data::Read(buf) => self.ram.read(phys, &mut buf[range]),
                Data::Write(bytes) => self.ram.write(phys, &bytes[range]),
            };
            moved.map_err(|_| outside(addr, phys))?;
            if piece > 0 {
                self.touched.push(phys.align_down(4096));
            }
            done += piece as usize;
        }
        Ok(())
    }

    /// Loads a little-endian value of 1, 2, 4 or 8 bytes.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn load_value<V: Value, P: FaultPolicy<Self>>(
        &mut self,
        addr: VirtAddr,
        policy: &mut P,
    ) -> Result<V, MachineError> {
        if !fits_in_page(addr, V::SIZE) {
            let mut bytes = [0u8; 8];
            self.load(addr, &mut bytes[..V::SIZE], policy)?;
            return Ok(V::from_le(u64::from_le_bytes(bytes)));
        }
        // One page: one translation and one frame lookup, as `load` would do them.
        self.counters.loads += 1;
        self.touched.clear();
        let phys = self.translate_resolving(addr, Access::Read, policy)?;
        let raw = self.ram.read_le(phys, V::SIZE).map_err(|_| outside(addr, phys))?;
        self.touched.push(phys.align_down(4096));
        Ok(V::from_le(raw))
    }

    /// Stores a little-endian value of 1, 2, 4 or 8 bytes.
    ///
    /// # Errors
    ///
    /// As [`store`](Self::store).
    pub fn store_value<V: Value, P: FaultPolicy<Self>>(
        &mut self,
        addr: VirtAddr,
        value: V,
        policy: &mut P,
    ) -> Result<(), MachineError> {
        if !fits_in_page(addr, V::SIZE) {
            let bytes = value.to_le().to_le_bytes();
            return self.store(addr, &bytes[..V::SIZE], policy);
        }
        // One page: as `store` does it, without its pieces.
        self.counters.stores += 1;
        self.touched.clear();
        let phys = self.translate_resolving(addr, Access::Write, policy)?;
        self.ram.write_le(phys, V::SIZE, value.to_le()).map_err(|_| outside(addr, phys))?;
        self.touched.push(phys.align_down(4096));
        Ok(())
    }

    /// Translates `addr` for `access` at the current privilege as the CPU would, through
    /// the TLB and the tables, without calling any fault policy.
    ///
    /// # Errors
    ///
    /// Returns [`MachineError::Unhandled`] for a page fault, and the other errors of an
    /// access.
    pub fn probe(&mut self, addr: VirtAddr, access: Access) -> Result<PhysAddr, MachineError> {
        match self.translate(addr, access) {
            Ok(phys) => Ok(phys),
            Err(Stop::Fault(raised)) => Err(MachineError::Unhandled(raised)),
            Err(Stop::Error(error)) => Err(error),
        }
    }

    /// Translates one address, asking `policy` to resolve faults and retrying.
    fn translate_resolving<P: FaultPolicy<Self>>(
        &mut self,
        addr: VirtAddr,
        access: Access,
        policy: &mut P,
    ) -> Result<PhysAddr, MachineError> {
        let mut attempts = 0;
        loop {
            let raised = match self.translate(addr, access) {
                Ok(phys) => return Ok(phys),
                Err(Stop::Error(error)) => return Err(error),
                Err(Stop::Fault(raised)) => raised,
            };
            attempts += 1;
            if attempts > RETRY_LIMIT {
                return Err(MachineError::RetryLimit(raised));
            }
            match policy.resolve(self, &raised.fault) {
                Resolution::Retry => {}
                Resolution::Pass => return Err(MachineError::Unhandled(raised)),
                Resolution::Raise(exception)
                | Resolution::Fail(exception)
                | Resolution::Notify(exception) => {
                    return Err(MachineError::Exception { exception, fault: raised });
                }
            }
        }
    }

    /// One translation through the TLB, walking on a miss.
    fn translate(&mut self, addr: VirtAddr, access: Access) -> Result<PhysAddr, Stop> {
        self.counters.translations += 1;
        if !F::is_canonical(addr) {
            return Err(Stop::Error(MachineError::NonCanonical { addr }));
        }
        // A root still to load is loaded (or refused) before the TLB is asked; the root
        // itself is copied out only for a walk.
        if !matches!(self.cpu.root, ActiveRoot::Loaded(_)) {
            self.root_for_walks()?;
        }
        let (asid, mode, control) = (self.cpu.asid, self.cpu.mode, self.config.control);
        if let Some(hit) = self.tlb.lookup(asid, addr) {
            if self.config.strict_tlb {
                let root = self.root_for_walks()?;
                self.check_fresh(&root, addr, hit)?;
            }
            if let Some(cause) = mmu::refuse(hit.flags, access, mode, control) {
                self.counters.tlb_hits += 1;
                return Err(self.fault(addr, access, cause));
            }
            // A write through an entry not yet dirty makes the CPU walk to set D.
            if access != Access::Write || hit.flags.contains(PageFlags::DIRTY) {
                self.counters.tlb_hits += 1;
                self.counters.cycles += self.config.costs.tlb_hit;
                return self.in_ram(addr, hit.translate(addr));
            }
        }
        self.counters.tlb_misses += 1;
        self.counters.walks += 1;
        let root = self.root_for_walks()?;
        let walked = mmu::walk::<F, Ram>(&self.ram, &root, addr, control.no_execute);
        let reads = match walked {
            Ok(walked) => walked.reads,
            Err(WalkError::Fault { reads, .. }) => reads,
            Err(WalkError::TableOutsideRam { .. }) => 0,
        };
        self.counters.walk_reads += u64::from(reads);
        self.counters.cycles += self.config.costs.walk_read * u64::from(reads);
        let mut walked = match walked {
            Ok(walked) => walked,
            Err(WalkError::Fault { cause, .. }) => return Err(self.fault(addr, access, cause)),
            Err(WalkError::TableOutsideRam { level, raw }) => {
                return Err(Stop::Error(MachineError::TableOutsideRam { addr, level, raw }));
            }
        };
        if let Some(cause) = mmu::refuse(walked.flags, access, mode, control) {
            return Err(self.fault(addr, access, cause));
        }
        mmu::mark::<F, Ram>(&mut self.ram, &mut walked, access == Access::Write);
        self.tlb.insert(TlbEntry {
            asid,
            page: walked.page,
            size: walked.size,
            frame: walked.frame,
            flags: walked.flags,
            global: walked.flags.contains(PageFlags::GLOBAL),
            leaf_at: walked.leaf_at(),
            leaf_raw: walked.leaf_raw,
        });
        // A walked leaf's frame is aligned to its size (the format decodes it so), so the
        // offset inside the page cannot carry it past 2^64; wrapping keeps a format that
        // breaks this from panicking the simulated access.
        self.in_ram(addr, walked.frame.wrapping_add(addr.offset_in(walked.size)))
    }

    /// The root the walks start from, completing a pending load first (a refused one stays
    /// pending: every translation reports it until a load succeeds).
    fn root_for_walks(&mut self) -> Result<LoadedRoot, Stop> {
        match self.cpu.root {
            ActiveRoot::Loaded(root) => Ok(root),
            ActiveRoot::None => Err(Stop::Error(MachineError::NoActiveSpace)),
            ActiveRoot::Pending(address) => {
                let root = LoadedRoot::load::<F, Ram>(&self.ram, address)
                    .map_err(|refused| Stop::Error(MachineError::RootRefused(refused)))?;
                self.cpu.root = ActiveRoot::Loaded(root);
                Ok(root)
            }
        }
    }

    /// Checks that `phys` lies in RAM.
    fn in_ram(&self, addr: VirtAddr, phys: PhysAddr) -> Result<PhysAddr, Stop> {
        if phys.as_u64() < self.ram.size_bytes() {
            Ok(phys)
        } else {
            Err(Stop::Error(outside(addr, phys)))
        }
    }

    /// Raises a page fault: counts it, drops the TLB's entry for the address (as x86
    /// does on a #PF) and records it.
    fn fault(&mut self, addr: VirtAddr, access: Access, cause: FaultCause) -> Stop {
        let mode = self.cpu.mode;
        self.tlb.invalidate_page(self.cpu.asid, addr);
        self.counters.count_fault(cause);
        self.counters.cycles += self.config.costs.fault;
        let fault = Fault { addr, access, privilege: mode, cause };
        let has_nx = !F::IMPLIED.contains(PageFlags::EXECUTABLE);
        let error_code = mmu::error_code(cause, access, mode, self.config.control, has_nx);
        let raised = RaisedFault { fault, error_code };
        self.last_fault = Some(raised);
        Stop::Fault(raised)
    }

    /// Strict mode: a TLB hit must give the translation a walk gives now, from the root as
    /// loaded (PAE's PDPTE registers, not the PDPT in memory, which a load alone reads).
    /// The walk takes NX as NXE does: a change of the control bits is no change of the
    /// tables, and `set_control` keeps cached translations.
    fn check_fresh(&self, root: &LoadedRoot, addr: VirtAddr, cached: TlbEntry) -> Result<(), Stop> {
        let walk_now = mmu::walk::<F, Ram>(&self.ram, root, addr, true);
        let permissions = |flags: PageFlags| flags.difference(PageFlags::MMU_STATE);
        let agrees = walk_now.as_ref().is_ok_and(|now| {
            (now.page, now.size, now.frame) == (cached.page, cached.size, cached.frame)
                && permissions(now.flags) == permissions(cached.flags)
        });
        if agrees {
            return Ok(());
        }
        let entry_now = paging::TableMemory::read_entry(&self.ram, cached.leaf_at, F::ENTRY_SIZE);
        let level = F::level_for_size(cached.size).unwrap_or(1);
        let decoded_now = F::decode(entry_now, level);
        let stale = StaleUse { addr, cached, entry_now, decoded_now, walk_now };
        Err(Stop::Error(MachineError::StaleTlb(Box::new(stale))))
    }
}

/// The bytes an access moves.
enum Data<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

impl Data<'_> {
    fn len(&self) -> usize {
        match self {
            Self::Read(buf) => buf.len(),
            Self::Write(bytes) => bytes.len(),
        }
    }
}

/// The physical pieces of an access: one for an access inside a page.
enum Pieces {
    One(PhysAddr, u64),
    Many(Vec<(PhysAddr, u64)>),
}

impl Pieces {
    fn push(&mut self, phys: PhysAddr, len: u64) {
        if let Self::Many(list) = self {
            list.push((phys, len));
        }
    }

    fn iter(&self) -> impl Iterator<Item = (PhysAddr, u64)> + '_ {
        let (one, many) = match self {
            Self::One(phys, len) => (Some((*phys, *len)), &[][..]),
            Self::Many(list) => (None, &list[..]),
        };
        one.into_iter().chain(many.iter().copied())
    }
}

/// The error for a physical address beyond RAM.
/// Whether `len` bytes from `addr` stay in one 4 KiB page.
fn fits_in_page(addr: VirtAddr, len: usize) -> bool {
    addr.offset_in(4096) + len as u64 <= 4096
}

fn outside(addr: VirtAddr, phys: PhysAddr) -> MachineError {
    MachineError::PhysicalOutsideRam { addr, phys }
}

/// The TLB operations of the CPU, for the engine's flushes.
impl<F: PageTableFormat> Tlb for Machine<F> {
    fn invalidate_page(&mut self, addr: VirtAddr) {
        self.split().1.invalidate_page(addr);
    }

    fn invalidate_current(&mut self) {
        self.split().1.invalidate_current();
    }

    fn invalidate_space(&mut self, asid: Asid) {
        self.split().1.invalidate_space(asid);
    }

    fn invalidate_page_in(&mut self, asid: Asid, addr: VirtAddr) {
        self.split().1.invalidate_page_in(asid, addr);
    }

    fn invalidate_all(&mut self) {
        self.split().1.invalidate_all();
    }

    /// A root load ([`Machine::load_root`]). This trait cannot report a refused load: the
    /// root is then left to load at the next translation, which reports the refusal
    /// ([`MachineError::RootRefused`]) until a load succeeds.
    fn activate(&mut self, root: PhysAddr, asid: Asid) {
        if self.load_root(root, asid).is_err() {
            self.split().1.activate(root, asid);
        }
    }
}

/// The machine's TLB maintenance, borrowed apart from its RAM (see [`Machine::split`]), so
/// that a pager can rewrite page tables and invalidate what it rewrote in one call.
#[derive(Debug)]
pub struct TlbPort<'m> {
    tlb: &'m mut SimTlb,
    cpu: &'m mut Cpu,
    counters: &'m mut Counters,
}

impl Tlb for TlbPort<'_> {
    fn invalidate_page(&mut self, addr: VirtAddr) {
        self.counters.invalidations += 1;
        self.tlb.invalidate_page(self.cpu.asid, addr);
    }

    fn invalidate_current(&mut self) {
        self.counters.invalidations += 1;
        self.tlb.invalidate_asid(self.cpu.asid);
    }

    fn invalidate_space(&mut self, asid: Asid) {
        self.counters.invalidations += 1;
        self.tlb.invalidate_asid(asid);
    }

    fn invalidate_page_in(&mut self, asid: Asid, addr: VirtAddr) {
        self.counters.invalidations += 1;
        self.tlb.invalidate_page(asid, addr);
    }

    fn invalidate_all(&mut self) {
        self.counters.invalidations += 1;
        self.tlb.invalidate_all();
    }

    /// Activates `root` and its tag. The port has no access to RAM (it is lent out beside
    /// it), so PAE's PDPTEs are read at the machine's next translation rather than here;
    /// use [`Machine::load_root`] for a load that reads them at once and reports a refusal.
    fn activate(&mut self, root: PhysAddr, asid: Asid) {
        self.cpu.root = ActiveRoot::Pending(root);
        self.cpu.asid = asid;
    }
}

/// A value that loads and stores move: 1, 2, 4 or 8 bytes, little-endian.
pub trait Value: Copy {
    /// Its size in bytes.
    const SIZE: usize;
    /// Builds it from the low bytes of `raw`.
    fn from_le(raw: u64) -> Self;
    /// Widens it to 64 bits.
    fn to_le(self) -> u64;
}

macro_rules! value {
    ($($t:ty),*) => {$(
        impl Value for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            #[allow(clippy::cast_possible_truncation, reason = "the low bytes are the value")]
            fn from_le(raw: u64) -> Self {
                raw as $t
            }
            fn to_le(self) -> u64 {
                u64::from(self)
            }
        }
    )*};
}

value!(u8, u16, u32, u64);

//! `paging-sim`: a simulated computer on which a kernel's memory code runs on a host.
//!
//! It behaves like hardware, so that what passes here does not break on a real CPU:
//!
//! - [`Ram`]: physical memory of a configured number of frames, materialised only when
//!   touched, and the engine's table memory;
//! - [`mmu`]: the page walk, written apart from the engine's software translation so that
//!   each checks the other; it applies every entry's permissions with the control bits
//!   (WP, NXE, SMEP, SMAP), sets Accessed and Dirty, and reports faults with x86 error codes;
//!   PAE's four PDPTEs are read into registers when the root is loaded
//!   ([`Machine::load_root`]), as the SDM says;
//! - [`SimTlb`]: a set-associative TLB tagged by address-space id, with global entries, that
//!   really caches: a mapping changed without invalidation still gives the old translation,
//!   and the machine's strict mode reports such a use as an error;
//! - [`Machine`]: the CPU, processes, loads, stores and fetches of any size across pages,
//!   the fault path through core's [`FaultPolicy`](paging::FaultPolicy) with retry, and
//!   [`Counters`] with a [`CostModel`];
//! - [`SimDisk`] and [`FileStore`]: backing stores for paging, one with a cost per I/O and
//!   failures to inject, one over a host file.
//!
//! ```
//! use paging::{Asid, FaultPolicy, PageFlags, PageTable, PhysAddr, Tlb, VirtAddr};
//! use paging::frame::{BitmapAllocator, MemoryRegion};
//! use paging_sim::{Machine, MachineConfig, NoResolver};
//! use paging_x86::X86_64;
//!
//! let mut machine = Machine::<X86_64>::new(MachineConfig::default());
//! // The kernel's frame allocator hands out the upper half of the machine's 64 MiB.
//! let mut bitmap = [0u64; 256];
//! let usable = [MemoryRegion::usable(32 << 20, 32 << 20)];
//! let mut frames = BitmapAllocator::new(&mut bitmap, &usable)?;
//!
//! let mut table = PageTable::<X86_64, _>::new(machine.ram_mut(), &mut frames)?;
//! let rw = PageFlags::READABLE | PageFlags::WRITABLE | PageFlags::USER;
//! table.map_range(VirtAddr::new(0x40_0000), PhysAddr::new(0x10_0000), 0x2000, rw, &mut frames)?.ignore();
//! let root = table.root();
//!
//! let process = machine.add_process("demo", root, Asid(1));
//! machine.switch_to(process);
//! machine.store_value(VirtAddr::new(0x40_0ffc), 0x1122_3344_5566_7788_u64, &mut NoResolver)?;
//! let value: u64 = machine.load_value(VirtAddr::new(0x40_0ffc), &mut NoResolver)?;
//! assert_eq!(value, 0x1122_3344_5566_7788);
//! assert_eq!(machine.counters().tlb_misses, 2, "one walk per page, then hits");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

/// The README's examples, compiled and run as doc tests (this crate sees all three).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;

pub mod counters;
pub mod disk;
mod frame_store;
pub mod kernel;
pub mod machine;
pub mod mmu;
pub mod ram;
pub mod tlb;

pub use counters::{CostModel, Counters};
pub use disk::{DiskCost, DiskCounters, FileStore, SimDisk};
pub use kernel::{IoCost, PagedKernel, SpaceKernel};
pub use machine::{
    Machine, MachineConfig, MachineError, NoResolver, Process, ProcessId, RETRY_LIMIT, RaisedFault,
    StaleUse, TlbPort, Value,
};
pub use mmu::{Control, LoadedRoot, RootRefused, WalkError, Walked};
pub use ram::{Ram, RamError};
pub use tlb::{SimTlb, TlbConfig, TlbEntry, TlbStats};

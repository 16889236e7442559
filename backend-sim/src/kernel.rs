//! The kernel side of the simulated machine: an address space resolving its faults.

use paging::pager::{BackingStore, Pager, RamDisk, ReplacementPolicy};
use paging::space::AddressSpace;
use paging::{Fault, FaultPolicy, FrameAllocator, PageTableFormat, Resolution};

use crate::disk::{FileStore, SimDisk};
use crate::machine::Machine;

/// First-chance fault resolution by an [`AddressSpace`] on a [`Machine`]: demand-zero,
/// section pages, guard pages, copy-on-write. It applies the flush the space returns.
///
/// Put it first in a [`FaultChain`](paging::space::FaultChain), with the process's handler
/// second. With a kernel space ([`with_kernel`](Self::with_kernel)), faults in the kernel
/// half go to it instead: the kernel's own demand-paged memory.
#[derive(Debug)]
pub struct SpaceKernel<'a, F: PageTableFormat, const N: usize, A: FrameAllocator + ?Sized> {
    /// The space of the running process.
    pub space: &'a mut AddressSpace<F, N>,
    /// The kernel's own space (a kernel heap), if it has one.
    pub kernel: Option<&'a mut AddressSpace<F, N>>,
    /// Where frames come from.
    pub alloc: &'a mut A,
}

impl<'a, F: PageTableFormat, const N: usize, A: FrameAllocator + ?Sized> SpaceKernel<'a, F, N, A> {
    /// The kernel for `space`, taking frames from `alloc`.
    pub fn new(space: &'a mut AddressSpace<F, N>, alloc: &'a mut A) -> Self {
        Self { space, kernel: None, alloc }
    }

    /// The same, with the kernel's own space resolving faults in the kernel half.
    #[must_use]
    pub fn with_kernel(mut self, kernel: &'a mut AddressSpace<F, N>) -> Self {
        self.kernel = Some(kernel);
        self
    }
}

impl<F: PageTableFormat, const N: usize, A: FrameAllocator + ?Sized> FaultPolicy<Machine<F>>
    for SpaceKernel<'_, F, N, A>
{
    fn resolve(&mut self, machine: &mut Machine<F>, fault: &Fault) -> Resolution {
        let space = space_of(&mut *self.space, self.kernel.as_deref_mut(), fault);
        let (resolution, flush) = space.resolve(fault, machine.ram_mut(), self.alloc);
        flush.apply(machine);
        resolution
    }
}

/// The space that answers for `fault`: the kernel's for an address in the kernel half
/// (when there is one), the process's otherwise.
fn space_of<'s, F: PageTableFormat, const N: usize>(
    process: &'s mut AddressSpace<F, N>,
    kernel: Option<&'s mut AddressSpace<F, N>>,
    fault: &Fault,
) -> &'s mut AddressSpace<F, N> {
    match kernel {
        Some(kernel) if fault.addr >= process.layout().kernel_start => kernel,
        _ => process,
    }
}

/// First-chance fault resolution by an [`AddressSpace`] whose frames come from a
/// [`Pager`]: everything [`SpaceKernel`] does, plus soft faults (a page back from the
/// standby or modified list) and hard faults (a page read from the store, or an in-page
/// error when the read fails). Page tables come from `tables`. The store's I/O cost is
/// charged to the machine's cycles.
pub struct PagedKernel<'a, 's, F: PageTableFormat, const N: usize, S, P>
where
    S: BackingStore + IoCost,
    P: ReplacementPolicy,
{
    /// The space of the running process.
    pub space: &'a mut AddressSpace<F, N>,
    /// The kernel's own space (a kernel heap), if it has one: faults in the kernel half go
    /// to it, paged by the same pager.
    pub kernel: Option<&'a mut AddressSpace<F, N>>,
    /// The pager its frames come from.
    pub pager: &'a mut Pager<'s, F, S, P>,
    /// Where page tables come from.
    pub tables: &'a mut dyn FrameAllocator,
}

impl<F: PageTableFormat, const N: usize, S: BackingStore + IoCost, P: ReplacementPolicy>
    core::fmt::Debug for PagedKernel<'_, '_, F, N, S, P>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PagedKernel").field("space", &self.space.root()).finish_non_exhaustive()
    }
}

impl<'a, 's, F: PageTableFormat, const N: usize, S, P> PagedKernel<'a, 's, F, N, S, P>
where
    S: BackingStore + IoCost,
    P: ReplacementPolicy,
{
    /// The kernel for `space`, paged by `pager`, with tables from `tables`.
    pub fn new(
        space: &'a mut AddressSpace<F, N>,
        pager: &'a mut Pager<'s, F, S, P>,
        tables: &'a mut dyn FrameAllocator,
    ) -> Self {
        Self { space, kernel: None, pager, tables }
    }

    /// The same, with the kernel's own space resolving faults in the kernel half.
    #[must_use]
    pub fn with_kernel(mut self, kernel: &'a mut AddressSpace<F, N>) -> Self {
        self.kernel = Some(kernel);
        self
    }

    /// Tells the pager which frames the machine's last access touched, when its policy
    /// wants every reference (exact LRU); other policies see the hardware's Accessed bits
    /// and need nothing. Call it after each load, fetch or store.
    pub fn report_references(&mut self, machine: &Machine<F>) {
        if self.pager.policy().wants_references() {
            for &frame in machine.last_frames() {
                self.pager.reference(frame);
            }
        }
    }
}

impl<F: PageTableFormat, const N: usize, S, P> FaultPolicy<Machine<F>>
    for PagedKernel<'_, '_, F, N, S, P>
where
    S: BackingStore + IoCost,
    P: ReplacementPolicy,
{
    fn resolve(&mut self, machine: &mut Machine<F>, fault: &Fault) -> Resolution {
        let before = self.pager.store().io_cycles();
        let (ram, mut tlb) = machine.split();
        let mut paging = self.pager.with(&mut *self.tables, &mut tlb);
        let space = space_of(&mut *self.space, self.kernel.as_deref_mut(), fault);
        let (resolution, flush) = space.resolve(fault, ram, &mut paging);
        flush.apply(&mut tlb);
        let io = self.pager.store().io_cycles().saturating_sub(before);
        machine.charge_io(io);
        resolution
    }
}

/// What a store's I/O costs so far, in the machine's cycles.
pub trait IoCost {
    /// The cycles of every transfer so far.
    fn io_cycles(&self) -> u64;
}

impl IoCost for SimDisk {
    fn io_cycles(&self) -> u64 {
        self.cost_cycles()
    }
}

/// A RAM disk costs nothing the model counts.
impl IoCost for RamDisk<'_> {
    fn io_cycles(&self) -> u64 {
        0
    }
}

/// A host file's cost is the host's; the model counts none.
impl IoCost for FileStore {
    fn io_cycles(&self) -> u64 {
        0
    }
}

impl<T: IoCost + ?Sized> IoCost for &mut T {
    fn io_cycles(&self) -> u64 {
        (**self).io_cycles()
    }
}

//! The kernel side of the simulated machine: an address space resolving its faults.

use paging::space::AddressSpace;
use paging::{Fault, FaultPolicy, FrameAllocator, PageTableFormat, Resolution};

use crate::machine::Machine;

/// First-chance fault resolution by an [`AddressSpace`] on a [`Machine`]: demand-zero,
/// section pages, guard pages, copy-on-write. It applies the flush the space returns.
///
/// Put it first in a [`FaultChain`](paging::space::FaultChain), with the process's handler
/// second.
#[derive(Debug)]
pub struct SpaceKernel<'a, F: PageTableFormat, const N: usize, A: FrameAllocator + ?Sized> {
    /// The space of the running process.
    pub space: &'a mut AddressSpace<F, N>,
    /// Where frames come from.
    pub alloc: &'a mut A,
}

impl<'a, F: PageTableFormat, const N: usize, A: FrameAllocator + ?Sized> SpaceKernel<'a, F, N, A> {
    /// The kernel for `space`, taking frames from `alloc`.
    pub fn new(space: &'a mut AddressSpace<F, N>, alloc: &'a mut A) -> Self {
        Self { space, alloc }
    }
}

impl<F: PageTableFormat, const N: usize, A: FrameAllocator + ?Sized> FaultPolicy<Machine<F>>
    for SpaceKernel<'_, F, N, A>
{
    fn resolve(&mut self, machine: &mut Machine<F>, fault: &Fault) -> Resolution {
        let (resolution, flush) = self.space.resolve(fault, machine.ram_mut(), self.alloc);
        flush.apply(machine);
        resolution
    }
}

//! The order in which a fault is offered: the kernel, then the process, then termination.

use crate::fault::{Exception, Fault, FaultPolicy, Resolution};

/// Offers a fault to the kernel first (first chance), then to the process's handler
/// (second chance); if neither resolves it, the access ends with an access violation (or
/// the exception the kernel named with [`Resolution::Fail`], an in-page error) and the
/// chain remembers the fault that terminated the process.
///
/// Kernels add resolvers of their own by chaining policies as a tuple: `(stack_growth,
/// kernel)` tries `stack_growth` before `kernel`.
#[derive(Clone, Debug, Default)]
pub struct FaultChain<K, P> {
    /// The kernel's resolvers.
    pub kernel: K,
    /// The process's handler.
    pub process: P,
    /// The fault that terminated the process, if one did.
    pub terminated: Option<Fault>,
    /// The exception that terminated the process, if one did.
    pub exception: Option<Exception>,
    /// Faults the process saw at second chance (handled or not).
    pub second_chances: u32,
}

impl<K, P> FaultChain<K, P> {
    /// A chain of `kernel` then `process`.
    pub fn new(kernel: K, process: P) -> Self {
        Self { kernel, process, terminated: None, exception: None, second_chances: 0 }
    }
}

impl<Ctx: ?Sized, K: FaultPolicy<Ctx>, P: FaultPolicy<Ctx>> FaultPolicy<Ctx> for FaultChain<K, P> {
    fn resolve(&mut self, ctx: &mut Ctx, fault: &Fault) -> Resolution {
        let exception = match self.kernel.resolve(ctx, fault) {
            Resolution::Pass => {
                Exception::AccessViolation { addr: fault.addr, access: fault.access }
            }
            Resolution::Fail(exception) => exception,
            decided => return decided,
        };
        self.second_chances += 1;
        match self.process.resolve(ctx, fault) {
            Resolution::Pass => {}
            decided => return decided,
        }
        self.terminated = Some(*fault);
        self.exception = Some(exception);
        Resolution::Raise(exception)
    }
}

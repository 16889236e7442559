//! The exception path: trap.s saves the registers as a [`TrapFrame`] and calls
//! [`trap_dispatch`]. A page fault is decoded by `paging_x86::hw` and offered to the
//! policy the running test installed (core's first-chance resolution): `Retry` re-executes
//! the access. Anything else is logged, then a probe resumes at its fixup, code in ring 3
//! returns to the kernel, and any other fault ends the run.

use core::arch::{asm, global_asm};

use paging::{Access, Fault, Resolution, VirtAddr};
use paging_x86::hw::{PageFaultCode, instructions};

use crate::descriptors::{KERNEL_CODE, KERNEL_DATA};
use crate::global::Global;

global_asm!(include_str!("trap.s"), options(att_syntax));

/// The registers trap.s saves, lowest address first.
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    r15: u64,
    r14: u64,
    r13: u64,
    r12: u64,
    r11: u64,
    r10: u64,
    r9: u64,
    r8: u64,
    rbp: u64,
    rdi: u64,
    rsi: u64,
    rdx: u64,
    rcx: u64,
    rbx: u64,
    rax: u64,
    vector: u64,
    code: u64,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}

/// A page fault that was not simply resolved and retried.
#[derive(Clone, Copy, Debug)]
pub struct Logged {
    /// The error code.
    pub code: PageFaultCode,
    /// CR2.
    pub addr: u64,
    /// What the policy decided (`Pass` without a policy).
    pub resolution: Resolution,
}

/// How [`enter_user`] came back.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum UserExit {
    /// The user code reached its `ud2`; `rax` is what it left there.
    Finished { rax: u64 },
    /// A page fault from ring 3 (logged).
    PageFault,
    /// Another exception from ring 3.
    Exception { vector: u64 },
}

/// The decision procedure of the running test.
pub type Policy<'a> = dyn FnMut(&Fault) -> Resolution + 'a;

static POLICY: Global<Option<*mut Policy<'static>>> = Global::new(None);
static PAGE_FAULTS: Global<u64> = Global::new(0);
static LAST: Global<Option<Logged>> = Global::new(None);
static EXEC_PROBE: Global<bool> = Global::new(false);
static USER_EXIT: Global<Option<UserExit>> = Global::new(None);

unsafe extern "C" {
    static probe_table: [[u64; 2]; 2];
    fn probe_read(addr: u64, out: *mut u64) -> u64;
    fn probe_write(addr: u64, value: u64) -> u64;
    fn probe_exec(addr: u64) -> u64;
    fn probe_exec_fixup();
    fn enter_user_asm(rip: u64, rsp: u64, arg: u64) -> u64;
    fn user_return();
    static user_resume_rsp: u64;
}

/// Runs `body` with `policy` deciding page faults; the previous policy comes back after.
pub fn with_policy<R>(policy: &mut Policy<'_>, body: impl FnOnce() -> R) -> R {
    let raw: *mut Policy<'_> = policy;
    // SAFETY: only the lifetime is erased; the pointer leaves POLICY before `policy`'s
    // borrow ends, below (the kernel aborts on panic: no unwinding skips it).
    let raw: *mut Policy<'static> = unsafe { core::mem::transmute(raw) };
    let previous = POLICY.replace(Some(raw));
    let result = body();
    POLICY.set(previous);
    result
}

/// The number of page faults taken so far.
pub fn page_faults() -> u64 {
    PAGE_FAULTS.get()
}

/// The last page fault that was not resolved by a retry, taking it out of the log.
pub fn take_logged() -> Option<Logged> {
    LAST.take_value()
}

/// Reads the u64 at `addr` if the access goes through; a fault is logged.
pub fn probe_load(addr: u64) -> Option<u64> {
    let mut value = 0;
    // SAFETY: probe_read's only memory effects are the read of `addr`, which may fault
    // (the handler resumes at its fixup), and the write to `value`, a local.
    (unsafe { probe_read(addr, &mut value) } == 1).then_some(value)
}

/// Writes `value` at `addr` if the access goes through; a fault is logged.
///
/// # Safety
///
/// `addr` must not hold anything Rust code relies on, if the write goes through.
pub unsafe fn probe_store(addr: u64, value: u64) -> bool {
    // SAFETY: the caller's promise; a fault resumes at the fixup.
    unsafe { probe_write(addr, value) == 1 }
}

/// Jumps to `addr`, which must hold `ret`; returns whether the fetch went through.
///
/// # Safety
///
/// If the page is executable, the byte at `addr` must be a `ret` (0xC3).
pub unsafe fn probe_fetch(addr: u64) -> bool {
    EXEC_PROBE.set(true);
    // SAFETY: the caller's promise; a fetch fault resumes at probe_exec_fixup.
    let ok = unsafe { probe_exec(addr) } == 1;
    EXEC_PROBE.set(false);
    ok
}

/// Runs code in ring 3 at `rip` with `%rdi = arg`, until it executes `ud2` or faults.
///
/// # Safety
///
/// The code must be mapped user-executable and stop at a `ud2`; the kernel's own pages
/// must be supervisor-only.
pub unsafe fn enter_user(rip: u64, rsp: u64, arg: u64) -> UserExit {
    USER_EXIT.set(None);
    // SAFETY: the caller's promise; every way back goes through trap_dispatch.
    let rax = unsafe { enter_user_asm(rip, rsp, arg) };
    match USER_EXIT.take_value() {
        Some(UserExit::Finished { .. }) | None => UserExit::Finished { rax },
        Some(other) => other,
    }
}

/// Reads the u64 at `addr` as the CPU would for any load (it may fault and be resolved).
pub fn load(addr: u64) -> u64 {
    let value: u64;
    // SAFETY: a plain load; a fault goes to the policy, which retries or ends the run.
    // Not `nomem`: the handler may change kernel state, so the compiler must not cache it.
    unsafe {
        asm!("mov {}, [{}]", out(reg) value, in(reg) addr, options(nostack, preserves_flags))
    };
    value
}

/// Writes the u64 at `addr` as any store would.
///
/// # Safety
///
/// `addr` must not hold anything Rust code relies on.
pub unsafe fn store(addr: u64, value: u64) {
    // SAFETY: the caller's promise; as in `load` for faults.
    unsafe { asm!("mov [{}], {}", in(reg) addr, in(reg) value, options(nostack, preserves_flags)) };
}

/// Called by trap.s for every exception.
#[unsafe(no_mangle)]
extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    match frame.vector {
        14 => page_fault(frame),
        6 if frame.cs & 3 == 3 => back_from_user(frame, UserExit::Finished { rax: frame.rax }),
        vector if frame.cs & 3 == 3 => back_from_user(frame, UserExit::Exception { vector }),
        _ => fatal(frame, "unexpected exception"),
    }
}

fn page_fault(frame: &mut TrapFrame) {
    // SAFETY: the handler runs in ring 0.
    let cr2 = unsafe { instructions::read_cr2() };
    let code = PageFaultCode::new(frame.code);
    let fault = code.fault(VirtAddr::new(cr2));
    PAGE_FAULTS.set(PAGE_FAULTS.get() + 1);
    let resolution = match POLICY.replace(None) {
        Some(policy) => {
            // SAFETY: `with_policy` keeps the pointee alive while it is installed, and it
            // is out of POLICY while it runs: a fault inside it cannot reach it again.
            let resolution = unsafe { (*policy)(&fault) };
            POLICY.set(Some(policy));
            resolution
        }
        None => Resolution::Pass,
    };
    if resolution == Resolution::Retry {
        return;
    }
    LAST.set(Some(Logged { code, addr: cr2, resolution }));
    if frame.cs & 3 == 3 {
        back_from_user(frame, UserExit::PageFault);
    } else if let Some(fixup) = fixup(frame.rip, &fault) {
        frame.rip = fixup;
    } else {
        crate::println!("page fault: {fault} (error code {code}), policy: {resolution:?}");
        fatal(frame, "unexpected page fault");
    }
}

/// Where a probe that faulted at `rip` resumes.
fn fixup(rip: u64, fault: &Fault) -> Option<u64> {
    // SAFETY: probe_table is two pairs of addresses in .rodata, written by trap.s.
    let table = unsafe { &probe_table };
    if let Some(entry) = table.iter().find(|entry| entry[0] == rip) {
        return Some(entry[1]);
    }
    (fault.access == Access::Execute && rip == fault.addr.as_u64() && EXEC_PROBE.get())
        .then_some(probe_exec_fixup as *const () as u64)
}

/// Rewrites the frame so that iretq resumes the kernel in enter_user, which returns.
fn back_from_user(frame: &mut TrapFrame, exit: UserExit) {
    USER_EXIT.set(Some(exit));
    frame.rip = user_return as *const () as u64;
    frame.cs = u64::from(KERNEL_CODE);
    frame.ss = u64::from(KERNEL_DATA);
    // SAFETY: enter_user wrote it before leaving for ring 3, and nothing else writes it.
    frame.rsp = unsafe { core::ptr::read_volatile(&raw const user_resume_rsp) };
    frame.rflags = 0x2;
}

fn fatal(frame: &TrapFrame, what: &str) -> ! {
    crate::println!("{what}: vector {} error code {:#x}", frame.vector, frame.code);
    crate::println!(
        "  rip {:#x} cs {:#x} rsp {:#x} rflags {:#x}",
        frame.rip,
        frame.cs,
        frame.rsp,
        frame.rflags
    );
    crate::tests::abort()
}

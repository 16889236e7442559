//! Kernel-wide state without `static mut`: one CPU, interrupts off, so the only code that
//! can run "at the same time" as the kernel's is a synchronous exception handler.

use core::cell::{Cell, UnsafeCell};
use core::sync::atomic::{AtomicBool, Ordering};

/// A `Copy` value shared between the kernel and its trap handler.
pub struct Global<T: Copy>(Cell<T>);

// SAFETY: one CPU with interrupts off; the trap handler runs synchronously inside the
// instruction that faulted, never in the middle of a `get` or `set` (which hand out no
// reference), so no two accesses ever overlap, and no value crosses to another thread.
unsafe impl<T: Copy> Sync for Global<T> {}

impl<T: Copy> Global<T> {
    /// A global holding `value`.
    pub const fn new(value: T) -> Self {
        Self(Cell::new(value))
    }

    /// The value.
    pub fn get(&self) -> T {
        self.0.get()
    }

    /// Replaces the value.
    pub fn set(&self, value: T) {
        self.0.set(value);
    }

    /// Replaces the value, returning the old one.
    pub fn replace(&self, value: T) -> T {
        self.0.replace(value)
    }
}

impl<T: Copy> Global<Option<T>> {
    /// The value, leaving `None`.
    pub fn take_value(&self) -> Option<T> {
        self.replace(None)
    }
}

/// A static buffer handed out once, as `&'static mut`.
pub struct TakeOnce<T> {
    taken: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reachable only through the one `&mut` that `take` hands out.
unsafe impl<T: Send> Sync for TakeOnce<T> {}

impl<T> TakeOnce<T> {
    /// A buffer holding `value`.
    pub const fn new(value: T) -> Self {
        Self { taken: AtomicBool::new(false), value: UnsafeCell::new(value) }
    }

    /// The buffer, the first time; `None` after.
    #[allow(clippy::mut_from_ref, reason = "the flag hands out one `&mut`, once")]
    pub fn take(&'static self) -> Option<&'static mut T> {
        if self.taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: `taken` was false: no other reference to the value exists, or ever will.
        Some(unsafe { &mut *self.value.get() })
    }
}

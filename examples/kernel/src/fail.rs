//! What a failed (or skipped) check says.

use core::fmt::{self, Write as _};

/// A test's failure or skip, with its reason.
pub struct Fail {
    /// The reason.
    pub message: heapless::String<200>,
    /// Not a failure: the CPU lacks what the test needs.
    pub skipped: bool,
}

impl Fail {
    /// A failure saying `args`.
    pub fn new(args: fmt::Arguments<'_>) -> Self {
        let mut message = heapless::String::new();
        // A message longer than the buffer is cut; that is all `write_fmt` can fail on.
        let _ = message.write_fmt(args);
        Self { message, skipped: false }
    }

    /// A skip saying `why`.
    pub fn skip(why: &str) -> Self {
        Self { skipped: true, ..Self::new(format_args!("{why}")) }
    }
}

/// Any error of the engine, the allocators or the address spaces, as a failure.
impl<E: fmt::Display> From<E> for Fail {
    fn from(error: E) -> Self {
        Self::new(format_args!("{error}"))
    }
}

/// A failure with a formatted message.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => { $crate::fail::Fail::new(format_args!($($arg)*)) };
}

/// Fails with the message unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err($crate::fail!($($arg)*));
        }
    };
}

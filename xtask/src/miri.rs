//! `cargo xtask miri`: the host tests of `paging`, `paging-x86` and `paging-sim` under
//! Miri, which checks every unsafe operation they reach against Rust's rules (and every
//! safe one for undefined behaviour in the crates they use).
//!
//! Miri interprets: proptest runs [`PROPTEST_CASES`] cases per property instead of its
//! hundreds, and isolation is off because proptest reads its regression files and the
//! clock. `cargo xtask test` runs [`SUBSET`], the tests that reach the project's own
//! unsafe code (`paging-x86`'s direct map and its adapter to the x86_64 crate's unsafe
//! allocator trait), which fits in a few minutes; the whole suite is `cargo xtask miri`.

use crate::cmd::{Cmd, Ctx};
use crate::fuzz::NIGHTLY;
use crate::require::{self, Check, Install, Requirement};

/// Miri and the standard library's sources it builds its sysroot from.
pub const MIRI: Requirement = Requirement {
    name: "Miri (nightly components miri and rust-src)",
    check: Check::Succeeds(&["cargo", "+nightly", "miri", "--version"]),
    install: Install::Run(&[&[
        "rustup",
        "component",
        "add",
        "miri",
        "rust-src",
        "--toolchain",
        "nightly",
    ]]),
    hint: "install it with `rustup component add miri rust-src --toolchain nightly`",
};

/// What Miri needs, in the order it is installed.
pub const REQUIREMENTS: &[Requirement] = &[NIGHTLY, MIRI];

/// Proptest cases per property under Miri.
pub const PROPTEST_CASES: &str = "4";

/// Every host test of the three crates.
pub const ALL: &[&str] = &["-p", "paging", "-p", "paging-x86", "-p", "paging-sim"];

/// The tests that reach the project's unsafe code: `paging-x86`'s unit tests (the direct
/// map over a host buffer) and the x86_64 crate adapters, with the feature that builds them.
pub const SUBSET: &[&str] =
    &["-p", "paging-x86", "--features", "x86_64", "--lib", "--test", "x86_64_interop"];

/// The `cargo miri test` command for `selection`.
pub fn command(selection: &[&str]) -> Cmd {
    let args = [&["cargo", "+nightly", "miri", "test"][..], selection].concat();
    Cmd::new(&args)
        .env("MIRIFLAGS", "-Zmiri-disable-isolation")
        .env("PROPTEST_CASES", PROPTEST_CASES)
}

/// Ensures Miri is installed, then runs `selection` under it.
///
/// # Errors
///
/// A missing requirement that could not be installed, or a test Miri failed.
pub fn run(ctx: &Ctx, selection: &[&str]) -> Result<(), String> {
    require::ensure_all(REQUIREMENTS, &ctx.root)?;
    command(selection).run(&ctx.root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subset_runs_with_few_cases_and_no_isolation() {
        assert_eq!(
            command(SUBSET).to_string(),
            "MIRIFLAGS=-Zmiri-disable-isolation PROPTEST_CASES=4 cargo +nightly miri test -p \
             paging-x86 --features x86_64 --lib --test x86_64_interop"
        );
    }
}

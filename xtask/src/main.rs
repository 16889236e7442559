//! The project's task runner, invoked as `cargo xtask <command>`.
//!
//! `cargo xtask test` runs every check CI runs (see [`steps::test_steps`]),
//! reports each one, and exits non-zero if any failed.

#![allow(missing_docs)]

mod cmd;
mod require;
mod steps;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cmd::Ctx;

/// The project's task runner.
#[derive(Debug, Parser)]
#[command(name = "xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every CI check: prerequisites, fmt, clippy, tests, no_std builds, rustdoc
    ///
    /// Keeps going after a failure, then prints a summary ending with a
    /// line `N passed, M failed`; exits non-zero if any step failed.
    Test,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = Ctx::from_env();
    match cli.command {
        Command::Test => steps::run_all(&ctx, &steps::test_steps()),
    }
}

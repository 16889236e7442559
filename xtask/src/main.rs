//! The project's task runner, invoked as `cargo xtask <command>`.
//!
//! `cargo xtask test` runs every check CI runs (see [`steps::test_steps`]),
//! reports each one, and exits non-zero if any failed.

#![allow(missing_docs)]

mod bench;
mod cmd;
mod coverage;
mod fuzz;
mod miri;
mod qemu;
mod require;
mod steps;
mod workspace;

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
    /// Build the test kernel (examples/kernel) and run it under QEMU, 4-level and 5-level
    Qemu,
    /// Run the benchmarks against the x86_64 crate, a lower bound and native loops; print
    /// `name ours_ns=… peer_ns=… ratio=…` lines, the engine rows' instructions per page
    /// (callgrind), and update BENCHMARKS.md
    Bench,
    /// Count the engine rows' instructions per page with callgrind, ours and the x86_64
    /// crate's (`name ours_instr=… peer_instr=…`), without the timed benchmarks
    BenchInstructions,
    /// Run every fuzz target for SECONDS seconds each (installing the nightly toolchain
    /// and cargo-fuzz when missing); fails if any target crashes
    Fuzz {
        /// How long each target runs, in seconds
        seconds: u64,
    },
    /// Replay the fuzz corpus with coverage and print the line coverage of core and
    /// backend-sim per file (installing llvm-tools when missing)
    FuzzCoverage,
    /// Run the host tests of paging, paging-x86 and paging-sim under Miri (installing it
    /// when missing)
    Miri,
    /// Print the workspace root the other commands work on (the checkout run from)
    Workspace,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = match Ctx::from_env() {
        Ok(ctx) => ctx,
        Err(error) => return report(Err(error)),
    };
    match cli.command {
        Command::Test => steps::run_all(&ctx, &steps::test_steps()),
        Command::Qemu => steps::run_all(&ctx, &steps::qemu_steps()),
        Command::Bench => report(bench::run(&ctx)),
        Command::BenchInstructions => report(bench::instructions(&ctx).map(drop)),
        Command::Fuzz { seconds } => report(fuzz::run(&ctx, seconds)),
        Command::FuzzCoverage => report(coverage::run(&ctx)),
        Command::Miri => report(miri::run(&ctx, miri::ALL)),
        Command::Workspace => {
            println!("workspace: {}", ctx.root.display());
            ExitCode::SUCCESS
        }
    }
}

/// Turns a command's result into the exit code, printing the error.
fn report(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

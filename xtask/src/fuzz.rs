//! `cargo xtask fuzz SECONDS`: runs every cargo-fuzz target in `fuzz/` for that long.
//!
//! The targets are the files of `fuzz/fuzz_targets/`; their bodies live in the
//! `paging-harness` crate, whose tests replay the corpus on stable. Fuzzing needs the
//! nightly toolchain and cargo-fuzz ([`REQUIREMENTS`]), installed here when missing.
//! A crash stops that target; the others still run, and the command fails naming each
//! target that crashed and where libFuzzer left the input (`fuzz/artifacts/<target>/`).

use std::path::{Path, PathBuf};

use crate::cmd::{Cmd, Ctx};
use crate::require::{self, Check, Install, Requirement};

/// The nightly toolchain, which cargo-fuzz builds with (sanitizers, coverage).
pub const NIGHTLY: Requirement = Requirement {
    name: "rustup toolchain nightly",
    check: Check::Succeeds(&["cargo", "+nightly", "--version"]),
    install: Install::Run(&[&[
        "rustup",
        "toolchain",
        "install",
        "nightly",
        "--profile",
        "minimal",
    ]]),
    hint: "install it with `rustup toolchain install nightly --profile minimal` \
           (rustup itself: https://rustup.rs)",
};

/// cargo-fuzz, the `cargo fuzz` subcommand.
pub const CARGO_FUZZ: Requirement = Requirement {
    name: "cargo-fuzz",
    check: Check::Succeeds(&["cargo", "+nightly", "fuzz", "--version"]),
    install: Install::Run(&[&["cargo", "install", "cargo-fuzz", "--locked"]]),
    hint: "install it with `cargo install cargo-fuzz --locked`",
};

/// What `cargo xtask fuzz` needs, in the order it is installed.
pub const REQUIREMENTS: &[Requirement] = &[NIGHTLY, CARGO_FUZZ];

/// libFuzzer's memory limit per target, in MiB.
const RSS_LIMIT_MB: u32 = 2048;
/// An input running longer than this, in seconds, is a hang: libFuzzer reports it as a
/// crash (every input of the targets runs in milliseconds).
const TIMEOUT_SECS: u32 = 10;

/// The cargo-fuzz project.
fn fuzz_dir(ctx: &Ctx) -> PathBuf {
    ctx.root.join("fuzz")
}

/// The targets: the names of the files in `fuzz/fuzz_targets/`, sorted.
///
/// # Errors
///
/// If the directory cannot be read or holds no target.
pub fn targets(fuzz_dir: &Path) -> Result<Vec<String>, String> {
    let dir = fuzz_dir.join("fuzz_targets");
    let entries =
        std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .filter_map(|path| path.file_stem().and_then(|s| s.to_str()).map(str::to_owned))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(format!("no fuzz target in {}", dir.display()));
    }
    Ok(names)
}

/// The command that fuzzes `target` for `seconds`.
pub fn command(fuzz_dir: &Path, target: &str, seconds: u64) -> Cmd {
    let max_time = format!("-max_total_time={seconds}");
    let rss = format!("-rss_limit_mb={RSS_LIMIT_MB}");
    let timeout = format!("-timeout={TIMEOUT_SECS}");
    let target_dir = fuzz_dir.join("target");
    Cmd::new(&["cargo", "+nightly", "fuzz", "run", target, "--", &max_time, &rss, &timeout])
        // cargo-fuzz's own default, whatever the environment says.
        .env("CARGO_TARGET_DIR", &target_dir.to_string_lossy())
}

/// Ensures the requirements, then runs every target for `seconds` seconds.
///
/// # Errors
///
/// A missing requirement that could not be installed, or the targets that crashed.
pub fn run(ctx: &Ctx, seconds: u64) -> Result<(), String> {
    if seconds == 0 {
        return Err("fuzzing for 0 seconds would fuzz forever: give a positive time".into());
    }
    let dir = fuzz_dir(ctx);
    require::ensure_all(REQUIREMENTS, &dir)?;
    let targets = targets(&dir)?;
    let mut failed = Vec::new();
    for target in &targets {
        println!();
        println!("==> fuzz {target} for {seconds}s");
        if let Err(error) = command(&dir, target, seconds).run(&dir) {
            println!("--- fuzz {target}: FAILED");
            failed.push(format!(
                "{target}: {error}; the input is in fuzz/artifacts/{target}/ \
                 (replay it with `cargo test -p paging-harness`)"
            ));
        } else {
            println!("--- fuzz {target}: ok");
        }
    }
    println!();
    println!("{} passed, {} failed", targets.len() - failed.len(), failed.len());
    if failed.is_empty() { Ok(()) } else { Err(failed.join("\n")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_is_found() {
        let ctx = Ctx::from_env().expect("the tests run inside the workspace");
        let targets = targets(&fuzz_dir(&ctx)).unwrap();
        assert_eq!(targets, ["decode_entries", "engine_ops", "mmu_walk", "pager_ops", "space_ops"]);
    }

    #[test]
    fn the_command_bounds_time_memory_and_each_input() {
        let cmd = command(Path::new("/w/fuzz"), "mmu_walk", 30);
        assert_eq!(
            cmd.to_string(),
            "CARGO_TARGET_DIR=/w/fuzz/target cargo +nightly fuzz run mmu_walk -- \
             -max_total_time=30 -rss_limit_mb=2048 -timeout=10"
        );
    }
}

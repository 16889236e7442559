//! `cargo xtask fuzz SECONDS`: runs every cargo-fuzz target in `fuzz/` for that long.
//!
//! The targets are the files of `fuzz/fuzz_targets/`; their bodies live in the
//! `paging-harness` crate, whose tests replay the corpus on stable. Fuzzing needs the
//! nightly toolchain and cargo-fuzz ([`REQUIREMENTS`]), installed here when missing.
//! A crash stops that target; the others still run, and the command fails naming each
//! target that crashed and where libFuzzer left the input (`fuzz/artifacts/<target>/`).
//!
//! The targets are built without a sanitizer and with debug assertions (`-s none -a`):
//! every crate they fuzz is safe Rust (`paging` forbids `unsafe`, `paging-sim` and the
//! harness have none), so AddressSanitizer has nothing to find in them and cost the
//! targets most of their speed, while debug assertions make every integer overflow a
//! crash. The unsafe code of the project (`paging-x86`'s hardware access) is Miri's.
//! libFuzzer's progress lines are echoed but for its NEW and REDUCE lines; at the end
//! each target's runs per second are printed, marked when below [`MIN_RATE`].

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

/// The inputs a second every target should reach (issue 14): below it, a coverage-guided
/// fuzzer explores too little. Reported, not enforced: the machine's load moves it.
pub const MIN_RATE: u64 = 1000;

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
    let fuzz_run =
        ["cargo", "+nightly", "fuzz", "run", "--sanitizer", "none", "--debug-assertions"];
    let libfuzzer = [target, "--", &max_time, &rss, &timeout];
    Cmd::new(&[&fuzz_run[..], &libfuzzer[..]].concat())
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
    let mut rates = Vec::new();
    for target in &targets {
        println!();
        println!("==> fuzz {target} for {seconds}s");
        match fuzz_one(&dir, target, seconds) {
            Ok(done) => {
                println!("--- fuzz {target}: ok");
                rates.push((target, done));
            }
            Err(error) => {
                println!("--- fuzz {target}: FAILED");
                failed.push(format!(
                    "{target}: {error}; the input is in fuzz/artifacts/{target}/ \
                     (replay it with `cargo test -p paging-harness`)"
                ));
            }
        }
    }
    println!();
    for (target, done) in rates {
        let rate = done.map_or(0, Done::per_second);
        let low = if rate < MIN_RATE { "  (below 1,000/s)" } else { "" };
        let runs = done.map_or(0, |d| d.runs);
        println!("fuzz rate {target:<16} {runs:>10} runs  {rate:>7} runs/s{low}");
    }
    println!("{} passed, {} failed", targets.len() - failed.len(), failed.len());
    if failed.is_empty() { Ok(()) } else { Err(failed.join("\n")) }
}

/// libFuzzer's last words on a run: `Done N runs in S second(s)`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Done {
    /// Inputs run.
    pub runs: u64,
    /// Seconds taken.
    pub seconds: u64,
}

impl Done {
    /// Parses a `Done N runs in S second(s)` line.
    pub fn parse(line: &str) -> Option<Self> {
        let rest = line.trim().strip_prefix("Done ")?;
        let (runs, rest) = rest.split_once(" runs in ")?;
        let seconds = rest.strip_suffix(" second(s)")?;
        Some(Self { runs: runs.parse().ok()?, seconds: seconds.parse().ok()? })
    }

    /// Inputs a second (all of them, for a run under a second).
    pub fn per_second(self) -> u64 {
        self.runs / self.seconds.max(1)
    }
}

/// Whether a line of libFuzzer's output is worth echoing: all but the stream of NEW and
/// REDUCE lines (one per input added to the corpus).
fn echoed(line: &str) -> bool {
    !(line.starts_with('#') && (line.contains("\tNEW ") || line.contains("\tREDUCE ")))
}

/// Fuzzes `target` for `seconds`; returns libFuzzer's summary if it printed one.
fn fuzz_one(dir: &Path, target: &str, seconds: u64) -> Result<Option<Done>, String> {
    use std::io::{BufRead as _, BufReader};
    let cmd = command(dir, target, seconds);
    let mut child = cmd.spawn_reading_stderr(dir)?;
    let mut done = None;
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            done = Done::parse(&line).or(done);
            if echoed(&line) {
                eprintln!("{line}");
            }
        }
    }
    let status = child.wait().map_err(|e| format!("waiting for `{cmd}`: {e}"))?;
    if status.success() { Ok(done) } else { Err(format!("`{cmd}` failed ({status})")) }
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
            "CARGO_TARGET_DIR=/w/fuzz/target cargo +nightly fuzz run --sanitizer none \
             --debug-assertions mmu_walk -- -max_total_time=30 -rss_limit_mb=2048 -timeout=10"
        );
    }

    #[test]
    fn the_summary_line_gives_the_rate() {
        let done = Done::parse("Done 12178 runs in 11 second(s)");
        assert_eq!(done, Some(Done { runs: 12178, seconds: 11 }));
        assert_eq!(done.map(Done::per_second), Some(1107));
        assert_eq!(Done { runs: 5, seconds: 0 }.per_second(), 5);
        assert_eq!(Done::parse("Done 1 runs in x second(s)"), None);
        assert_eq!(Done::parse("#12178\tDONE   cov: 2756"), None);
    }

    #[test]
    fn new_and_reduce_lines_are_not_echoed() {
        assert!(!echoed("#2584\tNEW    cov: 2537 ft: 10372 corp: 528/113Kb"));
        assert!(!echoed("#2881\tREDUCE cov: 2538 ft: 10441"));
        assert!(echoed("#4096\tpulse  cov: 2538 ft: 10441"));
        assert!(echoed("==12== ERROR: libFuzzer: deadly signal"));
    }
}

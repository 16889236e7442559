//! `cargo xtask qemu`: builds the test kernel (examples/kernel) for
//! `x86_64-unknown-none` and boots it under QEMU through the PVH entry, once
//! per CPU model in [`RUNS`] (4-level paging, then 5-level where the model has
//! LA57). Each run must end through isa-debug-exit with the kernel's success
//! status, and the last line of its serial output must read `N passed, 0
//! failed` with N at least [`MIN_PASSED`].

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::cmd::Ctx;
use crate::require::{Check, Install, Requirement};

/// QEMU's system emulator for x86-64 (Debian package `qemu-system-x86`).
pub const QEMU: Requirement = Requirement {
    name: "QEMU (qemu-system-x86_64)",
    check: Check::Succeeds(&["qemu-system-x86_64", "--version"]),
    install: Install::AsRoot(&[
        &["apt-get", "update"],
        &["apt-get", "install", "-y", "--no-install-recommends", "qemu-system-x86"],
    ]),
    hint: "install the `qemu-system-x86` package, e.g. `sudo apt-get install qemu-system-x86`",
};

/// The kernel crate, relative to the workspace root. It is a workspace of its
/// own: cargo runs from its folder, so that its .cargo/config.toml applies.
const KERNEL_DIR: &str = "examples/kernel";
/// Where the kernel's build goes, relative to the workspace root (as its
/// .cargo/config.toml says too).
const KERNEL_TARGET_DIR: &str = "target/kernel";
const TARGET: &str = "x86_64-unknown-none";
/// The 32-bit PVH entry needs absolute addresses: no PIE. Passed through
/// `CARGO_ENCODED_RUSTFLAGS`, which wins over a `RUSTFLAGS` in the caller's
/// environment.
const RUSTFLAGS: &str = "-Crelocation-model=static";

/// isa-debug-exit turns the kernel's success value 0x10 into `(0x10 << 1) | 1`.
/// A triple fault exits with 0, so 0 never counts as success.
pub const SUCCESS_STATUS: i32 = 33;
/// The fewest passed tests that count as a run.
pub const MIN_PASSED: u32 = 12;
/// The runs: a name, and the `-cpu` model. The kernel pages with 5 levels
/// whenever the CPU has LA57, so the first run turns LA57 off.
pub const RUNS: [(&str, &str); 2] = [("4-level paging", "max,-la57"), ("5-level paging", "max")];
/// A hung kernel is killed after this long (a run takes well under a second).
const TIMEOUT: Duration = Duration::from_secs(60);

/// Builds the kernel and runs it under QEMU.
///
/// # Errors
///
/// A message if the build fails, QEMU cannot run or times out, or the
/// kernel's report is not a success (see [`verdict`]).
pub fn run(ctx: &Ctx) -> Result<(), String> {
    let kernel = build(ctx)?;
    let mut failures = Vec::new();
    for (name, cpu) in RUNS {
        println!("--- {name} (-cpu {cpu})");
        match boot(&kernel, cpu, &ctx.root).and_then(|(status, output)| verdict(status, &output)) {
            Ok(summary) => println!("qemu, {name}: {summary}"),
            Err(why) => failures.push(format!("{name}: {why}")),
        }
    }
    if failures.is_empty() { Ok(()) } else { Err(failures.join("\n")) }
}

/// Builds the kernel in release mode; returns the path of the ELF file.
fn build(ctx: &Ctx) -> Result<PathBuf, String> {
    let target_dir = ctx.root.join(KERNEL_TARGET_DIR);
    let target_dir_arg = target_dir.to_string_lossy().into_owned();
    ctx.cargo(&["build", "--release", "--target", TARGET, "--target-dir", &target_dir_arg])
        .env("CARGO_ENCODED_RUSTFLAGS", RUSTFLAGS)
        .run(&ctx.root.join(KERNEL_DIR))?;
    Ok(target_dir.join(TARGET).join("release").join("paging-kernel"))
}

/// The QEMU command line for `kernel` on CPU model `cpu`.
fn qemu_args(kernel: &Path, cpu: &str) -> Vec<String> {
    let args = [
        "-kernel",
        &kernel.to_string_lossy(),
        "-serial",
        "stdio",
        "-display",
        "none",
        "-no-reboot",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=0x04",
        "-cpu",
        cpu,
        "-m",
        "256M",
    ]
    .map(str::to_owned);
    args.to_vec()
}

/// Runs QEMU, echoing the kernel's serial output as it comes; returns QEMU's
/// exit status (`None` if a signal ended it) and the output.
fn boot(kernel: &Path, cpu: &str, dir: &Path) -> Result<(Option<i32>, String), String> {
    let args = qemu_args(kernel, cpu);
    println!("$ qemu-system-x86_64 {}", args.join(" "));
    let mut child = Command::new("qemu-system-x86_64")
        .args(&args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not run qemu-system-x86_64: {e}"))?;
    let stdout = child.stdout.take().ok_or("QEMU's stdout was not captured")?;
    let (lines_tx, lines) = mpsc::channel();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("{line}");
            let _ = lines_tx.send(line);
        }
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait().map_err(|e| format!("waiting for QEMU: {e}"))? {
            Some(status) => break status,
            None if start.elapsed() > TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("QEMU did not finish within {} s: killed", TIMEOUT.as_secs()));
            }
            None => thread::sleep(Duration::from_millis(20)),
        }
    };
    let _ = reader.join();
    let output: Vec<String> = lines.try_iter().collect();
    Ok((status.code(), output.join("\n")))
}

/// Judges a run: QEMU's exit status must be [`SUCCESS_STATUS`] and the last
/// non-empty line of the output `N passed, 0 failed` with N at least
/// [`MIN_PASSED`]. Returns that line.
///
/// # Errors
///
/// A message saying which condition failed.
pub fn verdict(status: Option<i32>, output: &str) -> Result<String, String> {
    let last = output.lines().map(str::trim).rfind(|line| !line.is_empty()).unwrap_or("");
    let counts = parse_counts(last);
    match (status, counts) {
        (Some(SUCCESS_STATUS), Some((passed, 0))) if passed >= MIN_PASSED => Ok(last.to_owned()),
        (Some(SUCCESS_STATUS), Some((passed, 0))) => {
            Err(format!("only {passed} tests passed; at least {MIN_PASSED} must"))
        }
        (_, None) => Err(format!(
            "the kernel's output does not end with `N passed, M failed` (last line: {last:?}; \
             QEMU exit status {status:?})"
        )),
        (Some(SUCCESS_STATUS), Some(_)) => Err(format!("tests failed: {last}")),
        (status, Some(_)) => Err(format!(
            "QEMU exited with {status:?}, not {SUCCESS_STATUS} (success): {last} \
             (0 means a triple fault)"
        )),
    }
}

/// `(N, M)` from a line `N passed, M failed`.
fn parse_counts(line: &str) -> Option<(u32, u32)> {
    let (passed, failed) = line.split_once(" passed, ")?;
    let failed = failed.strip_suffix(" failed")?;
    Some((passed.parse().ok()?, failed.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_needs_status_zero_failures_and_enough_passes() {
        let output = "test a ... ok\n14 passed, 0 failed\n";
        assert_eq!(verdict(Some(33), output), Ok("14 passed, 0 failed".to_owned()));
        assert!(verdict(Some(35), "13 passed, 1 failed").unwrap_err().contains("35"));
        assert!(verdict(Some(33), "13 passed, 1 failed").unwrap_err().contains("tests failed"));
        assert!(verdict(Some(33), "3 passed, 0 failed").unwrap_err().contains("only 3"));
        assert!(verdict(Some(0), "boot...").unwrap_err().contains("does not end"));
        assert!(verdict(Some(0), "14 passed, 0 failed").unwrap_err().contains("triple fault"));
        assert!(verdict(None, "").is_err());
    }

    #[test]
    fn counts_parse_exactly() {
        assert_eq!(parse_counts("12 passed, 0 failed"), Some((12, 0)));
        assert_eq!(parse_counts("12 passed, 0 failed, 1 skipped"), None);
        assert_eq!(parse_counts("passed, 0 failed"), None);
    }
}

//! `cargo xtask qemu`: builds the test kernel (examples/kernel) for
//! `x86_64-unknown-none` and boots it under QEMU through the PVH entry, once
//! per CPU model in [`RUNS`] (4-level paging, then 5-level where the model has
//! LA57). Each run must end through isa-debug-exit with the kernel's success
//! status, and the last line of its serial output must read `N passed, 0
//! failed` with N at least [`MIN_PASSED`].
//!
//! Each run gets a fresh page file: a raw disk image of [`PAGEFILE_SLOTS`] pages, attached
//! as the IDE primary master, which the kernel's pager swaps to. The kernel prints
//! `pagefile slot S seed X` for every slot it left a page in; after the run the image
//! must hold, in each of those slots, the pattern of seed X (the bytes reached the disk).

use std::fs;
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
pub const MIN_PASSED: u32 = 18;
/// The runs: a name, and the `-cpu` model. The kernel pages with 5 levels
/// whenever the CPU has LA57, so the first run turns LA57 off.
pub const RUNS: [(&str, &str); 2] = [("4-level paging", "max,-la57"), ("5-level paging", "max")];
/// A hung kernel is killed after this long (a run takes a few seconds).
const TIMEOUT: Duration = Duration::from_secs(120);
/// The page file's size in pages (the kernel's swap tests use all of them).
pub const PAGEFILE_SLOTS: u64 = 1024;
const PAGE_BYTES: usize = 4096;
/// How the kernel names a slot it left a page in.
const SLOT_LINE: &str = "pagefile slot ";

/// Builds the kernel and runs it under QEMU.
///
/// # Errors
///
/// A message if the build fails, QEMU cannot run or times out, or the
/// kernel's report is not a success (see [`verdict`]).
pub fn run(ctx: &Ctx) -> Result<(), String> {
    let kernel = build(ctx)?;
    let mut failures = Vec::new();
    for (run, (name, cpu)) in RUNS.into_iter().enumerate() {
        println!("--- {name} (-cpu {cpu})");
        let image = ctx.root.join(KERNEL_TARGET_DIR).join(format!("pagefile-{run}.img"));
        match run_once(&kernel, cpu, &image, &ctx.root) {
            Ok(summary) => println!("qemu, {name}: {summary}"),
            Err(why) => failures.push(format!("{name}: {why}")),
        }
    }
    if failures.is_empty() { Ok(()) } else { Err(failures.join("\n")) }
}

/// One boot of `kernel` on CPU model `cpu` with a fresh page file at `image`, judged
/// by [`verdict`] and by the image's contents after ([`check_page_file`]).
fn run_once(kernel: &Path, cpu: &str, image: &Path, dir: &Path) -> Result<String, String> {
    create_page_file(image)?;
    let (status, output) = boot(kernel, cpu, image, dir)?;
    let summary = verdict(status, &output)?;
    let bytes = fs::read(image).map_err(|e| format!("reading {}: {e}", image.display()))?;
    let slots = check_page_file(&bytes, &output)?;
    Ok(format!("{summary}; the page file holds the {slots} pages the kernel reported"))
}

/// A zeroed raw image of [`PAGEFILE_SLOTS`] pages (replacing any earlier one).
fn create_page_file(image: &Path) -> Result<(), String> {
    if let Some(dir) = image.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let bytes = vec![0u8; PAGEFILE_SLOTS as usize * PAGE_BYTES];
    fs::write(image, bytes).map_err(|e| format!("creating {}: {e}", image.display()))
}

/// Word `index` of a page the kernel filled with pattern `seed`: the kernel's
/// `swap::pattern_word` (examples/kernel/src/swap.rs), which must stay equal.
fn pattern_word(seed: u64, index: u64) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index.wrapping_mul(0x0101_0101_0101_0101)
}

/// Checks that every slot the kernel reported (`pagefile slot S seed X`) holds the
/// pattern of seed X in `image`; returns how many slots were checked.
///
/// # Errors
///
/// A message naming the first slot that does not, or a malformed line; also when the
/// kernel reported no slot at all (its swap tests did not run).
pub fn check_page_file(image: &[u8], output: &str) -> Result<usize, String> {
    let mut checked = 0;
    for line in output.lines().filter_map(|line| line.trim().strip_prefix(SLOT_LINE)) {
        let (slot, seed) = parse_slot_line(line).ok_or_else(|| format!("bad line: {line}"))?;
        let start = usize::try_from(slot).unwrap_or(usize::MAX).saturating_mul(PAGE_BYTES);
        let page = image
            .get(start..start.saturating_add(PAGE_BYTES))
            .ok_or_else(|| format!("slot {slot} is past the end of the page file"))?;
        for (index, word) in page.chunks_exact(8).enumerate() {
            let value = u64::from_le_bytes(word.try_into().unwrap_or_default());
            let expected = pattern_word(seed, index as u64);
            if value != expected {
                return Err(format!(
                    "page file slot {slot}, word {index}: {value:#x} on disk, the kernel wrote {expected:#x} (seed {seed:#x})"
                ));
            }
        }
        checked += 1;
    }
    if checked == 0 {
        return Err("the kernel reported no page in the page file".to_owned());
    }
    Ok(checked)
}

/// `(S, X)` from `S seed X` (X in hex with `0x`).
fn parse_slot_line(line: &str) -> Option<(u64, u64)> {
    let (slot, seed) = line.split_once(" seed ")?;
    let seed = u64::from_str_radix(seed.trim().strip_prefix("0x")?, 16).ok()?;
    Some((slot.parse().ok()?, seed))
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

/// The QEMU command line for `kernel` on CPU model `cpu`, with the raw `image` as the
/// IDE primary master.
fn qemu_args(kernel: &Path, cpu: &str, image: &Path) -> Vec<String> {
    let drive = format!("file={},format=raw,if=ide,index=0,media=disk", image.display());
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
        "-drive",
        &drive,
    ]
    .map(str::to_owned);
    args.to_vec()
}

/// Runs QEMU, echoing the kernel's serial output as it comes (but the page file's slot
/// lines, hundreds of them, which the image check reads); returns QEMU's
/// exit status (`None` if a signal ended it) and the output.
fn boot(
    kernel: &Path,
    cpu: &str,
    image: &Path,
    dir: &Path,
) -> Result<(Option<i32>, String), String> {
    let args = qemu_args(kernel, cpu, image);
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
            if !line.trim().starts_with(SLOT_LINE) {
                println!("{line}");
            }
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
        let output = "test a ... ok\n20 passed, 0 failed\n";
        assert_eq!(verdict(Some(33), output), Ok("20 passed, 0 failed".to_owned()));
        assert!(verdict(Some(35), "13 passed, 1 failed").unwrap_err().contains("35"));
        assert!(verdict(Some(33), "13 passed, 1 failed").unwrap_err().contains("tests failed"));
        assert!(verdict(Some(33), "3 passed, 0 failed").unwrap_err().contains("only 3"));
        assert!(verdict(Some(0), "boot...").unwrap_err().contains("does not end"));
        assert!(verdict(Some(0), "20 passed, 0 failed").unwrap_err().contains("triple fault"));
        assert!(verdict(None, "").is_err());
    }

    #[test]
    fn the_page_file_check_reads_the_slots_the_kernel_names() {
        let mut image = vec![0u8; 3 * PAGE_BYTES];
        for (index, word) in image[PAGE_BYTES..2 * PAGE_BYTES].chunks_exact_mut(8).enumerate() {
            word.copy_from_slice(&pattern_word(0x1_0002, index as u64).to_le_bytes());
        }
        assert_eq!(check_page_file(&image, "x\npagefile slot 1 seed 0x10002\n"), Ok(1));
        let wrong = check_page_file(&image, "pagefile slot 2 seed 0x10002").unwrap_err();
        assert!(wrong.starts_with("page file slot 2, word 0: 0x0 on disk"), "{wrong}");
        let past = check_page_file(&image, "pagefile slot 3 seed 0x1").unwrap_err();
        assert_eq!(past, "slot 3 is past the end of the page file");
        assert!(check_page_file(&image, "pagefile slot x seed 0x1").is_err());
        assert!(check_page_file(&image, "3 passed, 0 failed").is_err());
    }

    #[test]
    fn counts_parse_exactly() {
        assert_eq!(parse_counts("12 passed, 0 failed"), Some((12, 0)));
        assert_eq!(parse_counts("12 passed, 0 failed, 1 skipped"), None);
        assert_eq!(parse_counts("passed, 0 failed"), None);
    }
}

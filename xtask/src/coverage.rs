//! `cargo xtask fuzz-coverage`: how much of `core` and `backend-sim` the kept fuzz corpus
//! reaches. Every target replays its corpus in a build instrumented for source-based
//! coverage (`cargo fuzz coverage`); the profiles are merged and `llvm-cov` reports the
//! line coverage of each file of `core/src` and `backend-sim/src` over all the targets.

use std::path::{Path, PathBuf};

use crate::cmd::{Cmd, Ctx};
use crate::fuzz::{self, CARGO_FUZZ, NIGHTLY};
use crate::require::{self, Check, Install, Requirement};

/// llvm-profdata and llvm-cov, matching nightly's LLVM.
pub const LLVM_TOOLS: Requirement = Requirement {
    name: "llvm-tools (nightly component llvm-tools-preview)",
    // The component of an x86-64 Linux host, the machines this project runs on.
    check: Check::PrintsLine(
        &["rustup", "component", "list", "--toolchain", "nightly", "--installed"],
        "llvm-tools-x86_64-unknown-linux-gnu",
    ),
    install: Install::Run(&[&[
        "rustup",
        "component",
        "add",
        "llvm-tools-preview",
        "--toolchain",
        "nightly",
    ]]),
    hint: "install it with `rustup component add llvm-tools-preview --toolchain nightly`",
};

/// The source folders whose coverage is reported.
pub const REPORTED: [&str; 2] = ["core/src", "backend-sim/src"];

/// One file's line coverage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCoverage {
    /// The path, relative to the workspace root.
    pub path: String,
    /// Lines with code.
    pub lines: u64,
    /// Those no input ran.
    pub missed: u64,
}

impl FileCoverage {
    /// The covered share, in percent.
    pub fn percent(&self) -> f64 {
        if self.lines == 0 {
            100.0
        } else {
            100.0 * (self.lines - self.missed) as f64 / self.lines as f64
        }
    }
}

/// Replays every target's corpus with coverage and prints the report.
///
/// # Errors
///
/// A missing requirement, a failed build or replay, or an unreadable report.
pub fn run(ctx: &Ctx) -> Result<(), String> {
    let dir = ctx.root.join("fuzz");
    require::ensure_all(&[NIGHTLY, CARGO_FUZZ, LLVM_TOOLS], &dir)?;
    let tools = llvm_tools(&dir)?;
    let targets = fuzz::targets(&dir)?;
    let mut profiles = Vec::new();
    let mut binaries = Vec::new();
    for target in &targets {
        Cmd::new(&["cargo", "+nightly", "fuzz", "coverage", target])
            .env("CARGO_TARGET_DIR", &dir.join("target").to_string_lossy())
            .run(&dir)?;
        profiles.push(dir.join("coverage").join(target).join("coverage.profdata"));
        binaries.push(tools.binary(&dir, target));
    }
    let merged = dir.join("coverage").join("all.profdata");
    let mut merge = vec!["merge".to_owned(), "-sparse".to_owned()];
    merge.extend(profiles.iter().map(|p| p.to_string_lossy().into_owned()));
    merge.extend(["-o".to_owned(), merged.to_string_lossy().into_owned()]);
    tools.command("llvm-profdata", &merge).run(&dir)?;
    let report =
        tools.command("llvm-cov", &report_args(&ctx.root, &binaries, &merged)).output(&dir)?;
    let files = parse_report(&report, &ctx.root);
    if files.is_empty() {
        return Err("llvm-cov reported no file of core or backend-sim".to_owned());
    }
    print_report(&files);
    Ok(())
}

/// Where nightly's LLVM tools and the coverage builds are.
struct Tools {
    bin: PathBuf,
    host: String,
}

impl Tools {
    fn command(&self, tool: &str, args: &[String]) -> Cmd {
        let program = self.bin.join(tool).to_string_lossy().into_owned();
        let argv: Vec<&str> =
            std::iter::once(program.as_str()).chain(args.iter().map(String::as_str)).collect();
        Cmd::new(&argv)
    }

    /// The coverage build of `target`.
    fn binary(&self, fuzz_dir: &Path, target: &str) -> PathBuf {
        let host = &self.host;
        fuzz_dir.join("target").join(host).join("coverage").join(host).join("release").join(target)
    }
}

fn llvm_tools(dir: &Path) -> Result<Tools, String> {
    let sysroot = Cmd::new(&["rustc", "+nightly", "--print", "sysroot"]).output(dir)?;
    let version = Cmd::new(&["rustc", "+nightly", "-vV"]).output(dir)?;
    let host = version
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .ok_or("rustc -vV names no host")?
        .trim()
        .to_owned();
    let bin = Path::new(sysroot.trim()).join("lib/rustlib").join(&host).join("bin");
    Ok(Tools { bin, host })
}

/// `llvm-cov report` over every target's build, restricted to [`REPORTED`].
fn report_args(root: &Path, binaries: &[PathBuf], profile: &Path) -> Vec<String> {
    let mut args = vec!["report".to_owned()];
    for (i, binary) in binaries.iter().enumerate() {
        if i > 0 {
            args.push("-object".to_owned());
        }
        args.push(binary.to_string_lossy().into_owned());
    }
    args.push(format!("-instr-profile={}", profile.display()));
    args.extend(REPORTED.iter().map(|folder| root.join(folder).to_string_lossy().into_owned()));
    args
}

/// The files of `llvm-cov report`'s table (`Filename Regions Missed Cover Functions Missed
/// Executed Lines Missed Cover ...`), paths made relative to `root`.
pub fn parse_report(report: &str, root: &Path) -> Vec<FileCoverage> {
    let root = format!("{}/", root.display());
    report
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let path = fields.first()?.strip_prefix(root.as_str()).unwrap_or(fields[0]);
            if !REPORTED.iter().any(|folder| path.starts_with(folder)) {
                return None;
            }
            let lines = fields.get(7)?.parse().ok()?;
            let missed = fields.get(8)?.parse().ok()?;
            Some(FileCoverage { path: path.to_owned(), lines, missed })
        })
        .collect()
}

fn print_report(files: &[FileCoverage]) {
    println!();
    println!("{:<48} {:>7} {:>7} {:>7}", "file", "lines", "missed", "cover");
    for file in files {
        println!("{:<48} {:>7} {:>7} {:>6.1}%", file.path, file.lines, file.missed, file.percent());
    }
    for folder in REPORTED {
        let (lines, missed) = files
            .iter()
            .filter(|f| f.path.starts_with(folder))
            .fold((0, 0), |(l, m), f| (l + f.lines, m + f.missed));
        let total = FileCoverage { path: folder.to_owned(), lines, missed };
        println!("fuzz coverage {folder}: {:.1}% of {lines} lines", total.percent());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_table_gives_each_file_its_lines() {
        let report = "\
Filename                      Regions    Missed Regions     Cover   Functions  Missed Functions  Executed       Lines      Missed Lines     Cover    Branches   Missed Branches     Cover
----
/w/core/src/addr.rs               120                30    75.00%          20                 5    75.00%         200                40    80.00%           0                 0         -
/w/backend-sim/src/ram.rs          50                 0   100.00%          10                 0   100.00%          90                 0   100.00%           0                 0         -
/w/harness/src/engine/mod.rs       50                 0   100.00%          10                 0   100.00%          90                 0   100.00%           0                 0         -
TOTAL                             170                30    82.35%          30                 5    83.33%         290                40    86.21%           0                 0         -
";
        let files = parse_report(report, Path::new("/w"));
        let core = FileCoverage { path: "core/src/addr.rs".into(), lines: 200, missed: 40 };
        let sim = FileCoverage { path: "backend-sim/src/ram.rs".into(), lines: 90, missed: 0 };
        assert_eq!(files, [core.clone(), sim]);
        assert_eq!(core.percent(), 80.0);
    }
}

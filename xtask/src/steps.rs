//! The step runner: a list of named [`Step`]s run in order, each reported
//! with a `==> name` header, then a summary table and a final
//! `N passed, M failed` line.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::cmd::{Cmd, Ctx};
use crate::require::{self, Requirement};

/// What a step does: `Ok` or a message saying what went wrong.
pub type StepFn = Box<dyn Fn(&Ctx) -> Result<(), String>>;

/// One named check.
pub struct Step {
    /// Shown in the header and the summary.
    pub name: &'static str,
    /// Runs the step.
    pub run: StepFn,
}

impl Step {
    /// A step running arbitrary code.
    pub fn new(name: &'static str, run: impl Fn(&Ctx) -> Result<(), String> + 'static) -> Self {
        Self { name, run: Box::new(run) }
    }

    /// A step running one command built from the context, from the
    /// workspace root.
    pub fn command(name: &'static str, cmd: impl Fn(&Ctx) -> Cmd + 'static) -> Self {
        Self::new(name, move |ctx| cmd(ctx).run(&ctx.root))
    }

    /// A step running `cargo <args>` from the workspace root.
    pub fn cargo(name: &'static str, args: &'static [&'static str]) -> Self {
        Self::command(name, move |ctx| ctx.cargo(args))
    }

    /// A step ensuring the requirements are present, installing them if
    /// needed.
    pub fn require(name: &'static str, requirements: &'static [Requirement]) -> Self {
        Self::new(name, move |ctx| require::ensure_all(requirements, &ctx.root))
    }
}

/// A step building `paging` and `paging-x86` for `x86_64-unknown-none` (a kernel's
/// target: no std, no alloc), with `features` if any.
fn no_std_build(name: &'static str, features: Option<&'static str>) -> Step {
    Step::command(name, move |ctx| {
        let mut args =
            vec!["build", "-p", "paging", "-p", "paging-x86", "--target", "x86_64-unknown-none"];
        args.extend(features.map(|f| ["--features", f]).into_iter().flatten());
        ctx.cargo(&args)
    })
}

/// The steps of `cargo xtask test`: everything CI checks.
pub fn test_steps() -> Vec<Step> {
    vec![
        Step::require("prerequisites", &[require::TARGET_X86_64_NONE, crate::qemu::QEMU]),
        Step::cargo("fmt", &["fmt", "--all", "--check"]),
        Step::cargo("clippy", &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]),
        Step::cargo("test", &["test", "--workspace"]),
        no_std_build("build no_std", None),
        no_std_build("build no_std + defmt", Some("paging/defmt,paging-x86/defmt")),
        no_std_build(
            "build no_std + interop",
            Some("paging/bootloader_api,paging/limine,paging/multiboot2,paging-x86/x86_64"),
        ),
        Step::command("rustdoc", |ctx| {
            ctx.cargo(&["doc", "--workspace", "--no-deps"]).env("RUSTDOCFLAGS", "-D warnings")
        }),
        // The kernel is its own workspace: fmt --all and clippy --workspace do not see it.
        Step::command("fmt kernel", |ctx| {
            ctx.cargo(&["fmt", "--check", "--manifest-path", "examples/kernel/Cargo.toml"])
        }),
        Step::new("clippy kernel", |ctx| {
            let args = [
                "clippy",
                "--release",
                "--target",
                "x86_64-unknown-none",
                "--target-dir",
                "../../target/kernel",
                "--",
                "-D",
                "warnings",
            ];
            ctx.cargo(&args)
                .env("CARGO_ENCODED_RUSTFLAGS", "-Crelocation-model=static")
                .run(&ctx.root.join("examples/kernel"))
        }),
        Step::new("qemu", crate::qemu::run),
        // Every fuzz target for 30 seconds (the corpus also replays in `test`).
        Step::new("miri (unsafe code)", |ctx| crate::miri::run(ctx, crate::miri::SUBSET)),
        Step::new("fuzz 30s", |ctx| crate::fuzz::run(ctx, 30)),
    ]
}

/// The steps of `cargo xtask qemu`.
pub fn qemu_steps() -> Vec<Step> {
    vec![
        Step::require("prerequisites", &[require::TARGET_X86_64_NONE, crate::qemu::QEMU]),
        Step::new("qemu", crate::qemu::run),
    ]
}

/// How one step went.
#[derive(Debug)]
pub struct Outcome {
    /// The step's name.
    pub name: &'static str,
    /// `Err` with a message if it failed.
    pub result: Result<(), String>,
    /// How long it took.
    pub elapsed: Duration,
}

/// Runs every step, even after failures, then prints the summary. Fails if
/// any step failed.
pub fn run_all(ctx: &Ctx, steps: &[Step]) -> ExitCode {
    println!("workspace: {}", ctx.root.display());
    println!("cargo: {}", ctx.cargo.to_string_lossy());
    let outcomes: Vec<Outcome> = steps.iter().map(|step| run_step(ctx, step)).collect();
    print!("{}", summary(&outcomes));
    let _ = std::io::stdout().flush();
    if outcomes.iter().all(|o| o.result.is_ok()) { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn run_step(ctx: &Ctx, step: &Step) -> Outcome {
    println!();
    println!("==> {}", step.name);
    let start = Instant::now();
    let result = (step.run)(ctx);
    let elapsed = start.elapsed();
    // Let anything the step wrote to stderr land before our verdict.
    let _ = std::io::stderr().flush();
    match &result {
        Ok(()) => println!("--- {}: ok ({:.1}s)", step.name, elapsed.as_secs_f64()),
        Err(msg) => {
            println!("--- {}: FAILED ({:.1}s)", step.name, elapsed.as_secs_f64());
            for line in msg.lines() {
                println!("    {line}");
            }
        }
    }
    Outcome { name: step.name, result, elapsed }
}

/// The summary table, ending with the `N passed, M failed` line.
pub fn summary(outcomes: &[Outcome]) -> String {
    use std::fmt::Write as _;

    let width = outcomes.iter().map(|o| o.name.len()).chain(["step".len()]).max().unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(out);
    let _ = writeln!(out, "==> summary");
    let _ = writeln!(out, "{:<width$}  {:<6}  {:>8}", "step", "result", "time");
    for o in outcomes {
        let verdict = if o.result.is_ok() { "ok" } else { "FAILED" };
        let secs = format!("{:.1}s", o.elapsed.as_secs_f64());
        let _ = writeln!(out, "{:<width$}  {verdict:<6}  {secs:>8}", o.name);
    }
    let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
    let _ = writeln!(out, "{} passed, {failed} failed", outcomes.len() - failed);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(name: &'static str, ok: bool, millis: u64) -> Outcome {
        Outcome {
            name,
            result: if ok { Ok(()) } else { Err("boom".into()) },
            elapsed: Duration::from_millis(millis),
        }
    }

    #[test]
    fn summary_table_and_last_line() {
        let s = summary(&[outcome("fmt", true, 1_240), outcome("a longer step", false, 61_000)]);
        let expected = "\n\
            ==> summary\n\
            step           result      time\n\
            fmt            ok          1.2s\n\
            a longer step  FAILED     61.0s\n\
            1 passed, 1 failed\n";
        assert_eq!(s, expected);
    }

    #[test]
    fn every_step_runs_after_a_failure() {
        let ctx = Ctx::from_env().expect("the tests run inside the workspace");
        let steps = [Step::new("fails", |_| Err("no".into())), Step::new("passes", |_| Ok(()))];
        let outcomes: Vec<_> = steps.iter().map(|s| run_step(&ctx, s)).collect();
        assert!(outcomes[0].result.is_err());
        assert!(outcomes[1].result.is_ok());
        assert!(summary(&outcomes).ends_with("1 passed, 1 failed\n"));
    }
}

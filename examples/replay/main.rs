//! `replay`: valgrind lackey traces replayed through the pager on the simulated machine,
//! page-replacement policies compared with fault curves.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

use paging_examples::policy::{Params, Policy};
use paging_examples::report::{self, Method, Row};
use paging_examples::sim::{PageString, replay};
use paging_examples::trace;

/// The semantics, as the README states them.
const SEMANTICS: &str = "\
Replays memory traces through the paging crate's pager on its simulated x86-64 machine \
(its MMU setting Accessed and Dirty bits, its TLB, the fault path), one process with N \
frames for its pages (page tables come from a separate pool and are not counted).

Traces: valgrind lackey output (valgrind --tool=lackey --trace-mem=yes --log-file=t.txt \
PROGRAM), or one address per line (`R ADDR`, `W ADDR` or `ADDR`, hex), plain or \
compressed with xz or gzip (found by magic bytes). Lines not understood are counted and \
reported, never fatal.

Semantics: 4 KiB pages. A record touches every page of [addr, addr + size) in address \
order. I (fetch) and L (load) read; S (store) and M (modify) write and dirty the page. A \
fault is a touch of a page not resident (first touches included); a write is a page \
written to the store on its way out (dirtied since it was loaded; a page only ever read \
holds zeros here and leaves without a write). FIFO evicts the page loaded earliest, LRU \
the page referenced least recently, OPT the page whose next reference is furthest away. \
Clock: a ring of frames with one hand; a page loaded by a fault counts as referenced; on a \
fault the hand takes a free frame if there is one, else clears set Accessed bits and \
advances until a clear one, evicts it, loads the new page in its frame and advances one \
past it. Enhanced clock, aging and wsclock as the pager implements them.

LRU and OPT over a range of frames (--frames A..=B) come from one pass of Mattson's stack \
algorithm (faults only; --runs replays each frame count instead).";

/// The command line.
#[derive(Parser, Debug)]
#[command(name = "replay", version, about = "Page-replacement policies on real programs' memory traces", long_about = SEMANTICS)]
struct Cli {
    /// Traces: lackey or plain address lists, plain, .xz or .gz.
    #[arg(required = true)]
    traces: Vec<PathBuf>,
    /// Policies: fifo, clock, enhanced-clock, aging, wsclock, lru, opt (comma-separated), or all.
    #[arg(long, default_value = "fifo,clock,lru,opt", value_parser = parse_policies)]
    policy: Policies,
    /// Frames for the process's pages: N[,N...] or a curve A..=B.
    #[arg(long, default_value = "16,64,256", value_parser = parse_frames)]
    frames: Frames,
    /// One JSON object per run instead of the table.
    #[arg(long)]
    json: bool,
    /// Plot faults against frames to FILE (.svg or .png).
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Replay LRU and OPT once per frame count even for a curve (gives their writes).
    #[arg(long)]
    runs: bool,
    /// WSClock's window, in ticks of the pager's clock (one per fault).
    #[arg(long, default_value_t = Params::default().tau)]
    tau: u64,
    /// References between two of Aging's ticks.
    #[arg(long, default_value_t = Params::default().aging_tick)]
    aging_tick: u64,
    /// No progress bars on stderr.
    #[arg(long, short)]
    quiet: bool,
}

/// The policies asked for, in order, without repeats.
#[derive(Clone, Debug)]
struct Policies(Vec<Policy>);

fn parse_policies(text: &str) -> Result<Policies, String> {
    let mut policies = Vec::new();
    for name in text.split(',').filter(|n| !n.trim().is_empty()) {
        let more = match name.trim() {
            "all" => Policy::ALL.to_vec(),
            name => vec![name.parse()?],
        };
        for policy in more {
            if !policies.contains(&policy) {
                policies.push(policy);
            }
        }
    }
    if policies.is_empty() {
        return Err("no policy named".into());
    }
    Ok(Policies(policies))
}

/// Frame counts: a list, or a curve over a range.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Frames {
    List(Vec<u32>),
    Curve(u32, u32),
}

impl Frames {
    fn counts(&self) -> Vec<u32> {
        match self {
            Self::List(list) => list.clone(),
            Self::Curve(low, high) => (*low..=*high).collect(),
        }
    }
}

/// The most frames a run may have (a 1 GiB process).
const MAX_FRAMES: u32 = 1 << 18;

fn parse_frames(text: &str) -> Result<Frames, String> {
    let number = |n: &str| -> Result<u32, String> {
        let n: u32 = n.trim().parse().map_err(|_| format!("not a frame count: {n:?}"))?;
        if (1..=MAX_FRAMES).contains(&n) {
            Ok(n)
        } else {
            Err(format!("{n} frames: between 1 and {MAX_FRAMES}"))
        }
    };
    if let Some((low, high)) = text.split_once("..=") {
        let (low, high) = (number(low)?, number(high)?);
        if low > high {
            return Err(format!("an empty range: {text}"));
        }
        return Ok(Frames::Curve(low, high));
    }
    let list = text.split(',').map(number).collect::<Result<Vec<_>, _>>()?;
    Ok(Frames::List(list))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut rows = Vec::new();
    for path in &cli.traces {
        match replay_trace(&cli, path) {
            Ok(more) => rows.extend(more),
            Err(error) => {
                eprintln!("replay: {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    if !cli.json {
        report::print_table(&rows);
    }
    if let Some(file) = &cli.plot {
        if let Err(error) = report::plot_rows(file, &rows) {
            eprintln!("replay: plot {}: {error}", file.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// Every run asked for on one trace; JSON lines are printed as they come.
fn replay_trace(cli: &Cli, path: &Path) -> Result<Vec<Row>, String> {
    let string = read(cli, path)?;
    let name = path.display().to_string();
    let needs_next = cli.policy.0.contains(&Policy::Opt);
    let next = needs_next.then(|| string.next_uses());
    let params = Params { tau: cli.tau, aging_tick: cli.aging_tick };
    let counts = cli.frames.counts();
    let curve = matches!(cli.frames, Frames::Curve(..)) && !cli.runs;
    let mut rows = Vec::new();
    let runs = cli.policy.0.len() * counts.len();
    let bar = progress(cli, runs as u64, "runs");
    for &policy in &cli.policy.0 {
        let stacked = curve
            && matches!(
                policy,
                Policy::Opt | Policy::Pager(paging::pager::policy::PolicyKind::Lru)
            );
        let new_rows = if stacked {
            report::stack_rows(&name, &string, policy, &counts, next.as_deref())
        } else {
            let mut new_rows = Vec::new();
            for &frames in &counts {
                let outcome = replay(&string, policy, frames, params, next.as_deref())
                    .map_err(|e| e.to_string())?;
                new_rows.push(Row::new(&name, policy, frames, outcome, Method::Pager));
                bar.inc(1);
            }
            new_rows
        };
        if stacked {
            bar.inc(counts.len() as u64);
        }
        if cli.json {
            for row in &new_rows {
                println!("{}", row.json());
            }
        }
        rows.extend(new_rows);
    }
    bar.finish_and_clear();
    Ok(rows)
}

/// Reads the trace into a page string, reporting what it did not understand.
fn read(cli: &Cli, path: &Path) -> Result<PageString, String> {
    let mut trace = trace::open(path).map_err(|e| e.to_string())?;
    let bar = progress(cli, 0, "references read");
    let mut counted = 0u64;
    let string = PageString::new(std::iter::from_fn(|| {
        let reference = trace.next()?;
        counted += 1;
        if counted % (1 << 16) == 0 {
            bar.set_position(counted);
        }
        Some((reference.page, reference.write))
    }));
    bar.finish_and_clear();
    let stats = trace.stats();
    if let Some(error) = &stats.error {
        return Err(format!("reading stopped at line {}: {error}", stats.lines));
    }
    if stats.unknown > 0 {
        eprintln!(
            "replay: {}: {} of {} lines not understood, skipped; the first:",
            path.display(),
            stats.unknown,
            stats.lines
        );
        for (line, text) in &stats.first_unknown {
            eprintln!("  line {line}: {text}");
        }
    }
    Ok(string)
}

/// A progress bar on stderr (hidden with --quiet or when stderr is not a terminal).
fn progress(cli: &Cli, len: u64, what: &'static str) -> ProgressBar {
    if cli.quiet {
        return ProgressBar::hidden();
    }
    let bar = if len == 0 { ProgressBar::new_spinner() } else { ProgressBar::new(len) };
    let template = if len == 0 {
        "{spinner} {pos} {msg} ({per_sec})"
    } else {
        "{bar:40} {pos}/{len} {msg} ({eta} left)"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message(what);
    bar
}

#[cfg(test)]
mod cli_tests {
    use super::*;

    #[test]
    fn frames_parse_as_lists_and_curves() {
        assert_eq!(parse_frames("16,64,256"), Ok(Frames::List(vec![16, 64, 256])));
        assert_eq!(parse_frames("4..=8"), Ok(Frames::Curve(4, 8)));
        assert_eq!(parse_frames("4..=8").unwrap().counts(), vec![4, 5, 6, 7, 8]);
        assert_eq!(parse_frames("8..=4"), Err("an empty range: 8..=4".into()));
        assert_eq!(parse_frames("0"), Err(format!("0 frames: between 1 and {MAX_FRAMES}")));
        assert_eq!(parse_frames("x"), Err("not a frame count: \"x\"".into()));
    }

    #[test]
    fn policies_parse_with_all_and_without_repeats() {
        assert_eq!(parse_policies("all").unwrap().0, Policy::ALL.to_vec());
        let named = parse_policies("lru, opt,lru").unwrap().0;
        assert_eq!(named, vec![Policy::Pager(paging::pager::policy::PolicyKind::Lru), Policy::Opt]);
        assert!(parse_policies("mru").is_err());
    }
}

//! `cargo xtask bench`: runs the criterion benchmarks, prints one line per measurement
//! (`name ours_ns=… peer_ns=… ratio=…`, per page or per access), and rewrites the results
//! block of BENCHMARKS.md with the machine it ran on.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use crate::cmd::{Cmd, Ctx};

/// One measurement: a criterion group, the peer it is compared with, how many pages or
/// accesses one iteration handles, and the target ratio (peer time / our time).
struct Measurement {
    name: &'static str,
    group: &'static str,
    peer: &'static str,
    peer_kind: &'static str,
    per_iteration: f64,
    target: Option<f64>,
}

const PAGES: f64 = 262_144.0;

const MEASUREMENTS: &[Measurement] = &[
    Measurement {
        name: "map_4k_each",
        group: "map_4k_each",
        peer: "peer",
        peer_kind: "x86_64 map_to loop",
        per_iteration: PAGES,
        target: Some(1.0),
    },
    Measurement {
        name: "map_4k_range",
        group: "map_4k_range",
        peer: "peer",
        peer_kind: "x86_64 map_to loop",
        per_iteration: PAGES,
        target: Some(4.0),
    },
    Measurement {
        name: "map_4k_range_vs_bound",
        group: "map_4k_range",
        peer: "bound",
        peer_kind: "store loop (lower bound)",
        per_iteration: PAGES,
        target: Some(0.5),
    },
    Measurement {
        name: "translate_random",
        group: "translate_random",
        peer: "peer",
        peer_kind: "x86_64 translate_addr",
        per_iteration: PAGES,
        target: Some(1.0),
    },
    Measurement {
        name: "unmap_reclaim",
        group: "unmap_reclaim",
        peer: "peer",
        peer_kind: "x86_64 unmap loop + clean_up",
        per_iteration: PAGES,
        target: Some(4.0),
    },
    Measurement {
        name: "map_1g_huge",
        group: "map_1g_huge",
        peer: "peer",
        peer_kind: "x86_64 map_to (2 MiB)",
        per_iteration: 512.0,
        target: None,
    },
    Measurement {
        name: "sim_tlb_hit",
        group: "sim_tlb_hit",
        peer: "peer",
        peer_kind: "native loop",
        per_iteration: 65_536.0,
        target: None,
    },
    Measurement {
        name: "sim_tlb_miss",
        group: "sim_tlb_miss",
        peer: "peer",
        peer_kind: "native loop",
        per_iteration: 65_536.0,
        target: None,
    },
    Measurement {
        name: "sim_demand_zero",
        group: "sim_demand_zero",
        peer: "peer",
        peer_kind: "native loop",
        per_iteration: 1_024.0,
        target: None,
    },
];

const BEGIN: &str = "<!-- results: written by `cargo xtask bench` -->";
const END: &str = "<!-- end of results -->";

/// Runs the benchmarks and reports them.
pub fn run(ctx: &Ctx) -> Result<(), String> {
    ctx.cargo(&["bench", "-p", "paging-bench"]).run(&ctx.root)?;
    let criterion = ctx.root.join("target").join("criterion");
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| measurement | ours (ns) | peer (ns) | peer | ratio (peer/ours) | target | met |"
    );
    let _ = writeln!(table, "|---|---:|---:|---|---:|---:|---|");
    for m in MEASUREMENTS {
        let ours = mean_ns(&criterion, m.group, "ours")? / m.per_iteration;
        let peer = mean_ns(&criterion, m.group, m.peer)? / m.per_iteration;
        let ratio = peer / ours;
        println!("{} ours_ns={ours:.2} peer_ns={peer:.2} ratio={ratio:.2}", m.name);
        let (target, met) = match m.target {
            Some(t) => (format!("{t:.1}x"), if ratio >= t { "yes" } else { "no" }),
            None => ("-".to_owned(), "-"),
        };
        let _ = writeln!(
            table,
            "| {} | {ours:.2} | {peer:.2} | {} | {ratio:.2} | {target} | {met} |",
            m.name, m.peer_kind
        );
    }
    let block = format!("{BEGIN}\n\n{}\n\n{table}\n{END}", machine(ctx));
    write_results(&ctx.root.join("BENCHMARKS.md"), &block)
}

/// The mean time of one iteration of `group/function`, in nanoseconds.
fn mean_ns(criterion: &Path, group: &str, function: &str) -> Result<f64, String> {
    let path = criterion.join(group).join(function).join("new").join("estimates.json");
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    // {"mean":{"confidence_interval":{...},"point_estimate":123.4,...},...}
    let mean = text.find("\"mean\"").ok_or("no mean in the estimates")?;
    let rest = &text[mean..];
    let at =
        rest.find("\"point_estimate\":").ok_or("no point estimate")? + "\"point_estimate\":".len();
    let number: String =
        rest[at..].chars().take_while(|c| c.is_ascii_digit() || ".eE+-".contains(*c)).collect();
    number.parse().map_err(|e| format!("{}: {e}", path.display()))
}

/// A line about the machine and toolchain.
fn machine(ctx: &Ctx) -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let rustc = Cmd::new(&["rustc", "--version"]).output(&ctx.root).unwrap_or_default();
    format!(
        "Machine: {cpu}, {cores} cores; {}. Times are per page (engine) or per access (simulator).",
        rustc.trim()
    )
}

/// Replaces the results block of `path` (or appends one), keeping everything else.
fn write_results(path: &Path, block: &str) -> Result<(), String> {
    let old = fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n\n".to_owned());
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(start), Some(end)) if end > start => {
            format!("{}{block}{}", &old[..start], &old[end + END.len()..])
        }
        _ => format!("{}\n{block}\n", old.trim_end()),
    };
    fs::write(path, new).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

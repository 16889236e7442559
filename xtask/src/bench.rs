//! `cargo xtask bench`: runs the criterion benchmarks, prints one line per measurement
//! (`name ours_ns=… peer_ns=… ratio=…`, per page or per access), and rewrites the results
//! block of BENCHMARKS.md with the machine it ran on.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use crate::cmd::{Cmd, Ctx};

/// One measurement: a criterion group, our function and the peer it is compared with, how
/// many pages, accesses or faults one iteration handles, and the target ratio (peer time /
/// our time).
struct Measurement {
    name: &'static str,
    group: &'static str,
    ours: &'static str,
    peer: &'static str,
    peer_kind: &'static str,
    per_iteration: f64,
    target: Option<f64>,
}

const PAGES: f64 = 262_144.0;
/// Pages one iteration of the trim group trims.
const TRIM_PAGES: f64 = 10_000.0;
/// References in the committed lackey trace the replay groups replay.
const TRACE_REFS: f64 = 167_695.0;

const MEASUREMENTS: &[Measurement] = &[
    Measurement {
        name: "map_4k_each",
        group: "map_4k_each",
        ours: "ours",
        peer: "peer",
        peer_kind: "x86_64 map_to loop",
        per_iteration: PAGES,
        target: Some(1.2),
    },
    Measurement {
        name: "map_4k_range",
        group: "map_4k_range",
        ours: "ours",
        peer: "peer",
        peer_kind: "x86_64 map_to loop",
        per_iteration: PAGES,
        target: Some(40.0),
    },
    Measurement {
        name: "map_4k_range_vs_bound",
        group: "map_4k_range",
        ours: "ours",
        peer: "bound",
        peer_kind: "store loop (lower bound)",
        per_iteration: PAGES,
        target: Some(0.5),
    },
    Measurement {
        name: "translate_random",
        group: "translate_random",
        ours: "ours",
        peer: "peer",
        peer_kind: "x86_64 translate_addr",
        per_iteration: PAGES,
        target: Some(1.2),
    },
    Measurement {
        name: "unmap_reclaim",
        group: "unmap_reclaim",
        ours: "ours",
        peer: "peer",
        peer_kind: "x86_64 unmap loop + clean_up",
        per_iteration: PAGES,
        target: Some(4.0),
    },
    Measurement {
        name: "map_1g_huge",
        group: "map_1g_huge",
        ours: "ours",
        peer: "peer",
        peer_kind: "x86_64 map_to (2 MiB)",
        per_iteration: 512.0,
        target: Some(1.0),
    },
    Measurement {
        name: "sim_tlb_hit",
        group: "sim_tlb_hit",
        ours: "ours",
        peer: "peer",
        peer_kind: "native loop",
        per_iteration: 65_536.0,
        target: Some(0.1),
    },
    Measurement {
        name: "sim_tlb_miss",
        group: "sim_tlb_miss",
        ours: "ours",
        peer: "peer",
        peer_kind: "native loop",
        per_iteration: 65_536.0,
        target: Some(0.03),
    },
    Measurement {
        name: "sim_demand_zero",
        group: "sim_demand_zero",
        ours: "ours",
        peer: "peer",
        peer_kind: "native loop",
        per_iteration: 1_024.0,
        target: None,
    },
    Measurement {
        name: "pager_soft_fault",
        group: "pager_soft_fault",
        ours: "ours",
        peer: "demand_zero",
        peer_kind: "demand-zero fault (same pager)",
        per_iteration: 1.0,
        target: None,
    },
    Measurement {
        name: "pager_hard_fault",
        group: "pager_hard_fault",
        ours: "ours",
        peer: "demand_zero",
        peer_kind: "demand-zero fault (same pager)",
        per_iteration: 1.0,
        target: None,
    },
    Measurement {
        name: "pager_hard_fault_vs_copy",
        group: "pager_hard_fault",
        ours: "ours",
        peer: "copy",
        peer_kind: "4 KiB copy_from_slice (I/O floor)",
        per_iteration: 1.0,
        target: None,
    },
    Measurement {
        name: "pager_trim",
        group: "pager_trim",
        ours: "ours",
        peer: "unmap_range",
        peer_kind: "rewrite_range Clear, one call",
        per_iteration: TRIM_PAGES,
        target: None,
    },
    Measurement {
        name: "pager_trim_aged",
        group: "pager_trim",
        ours: "aged",
        peer: "unmap_range",
        peer_kind: "rewrite_range Clear, one call",
        per_iteration: TRIM_PAGES,
        target: None,
    },
    Measurement {
        name: "replay_clock_64",
        group: "replay_clock",
        ours: "ours",
        peer: "peer",
        peer_kind: "plain in-memory Clock loop (per reference, parse included in ours)",
        per_iteration: TRACE_REFS,
        target: None,
    },
    Measurement {
        name: "replay_clock_64_no_parse",
        group: "replay_clock",
        ours: "replay_only",
        peer: "peer",
        peer_kind: "plain in-memory Clock loop (per reference)",
        per_iteration: TRACE_REFS,
        target: None,
    },
    Measurement {
        name: "replay_lru_opt_curves_256",
        group: "replay_curves",
        ours: "ours",
        peer: "peer",
        peer_kind: "one Clock replay, 64 frames (per reference)",
        per_iteration: TRACE_REFS,
        target: None,
    },
];

const BEGIN: &str = "<!-- results: written by `cargo xtask bench` -->";
const END: &str = "<!-- end of results -->";

/// Runs the benchmarks and reports them.
pub fn run(ctx: &Ctx) -> Result<(), String> {
    ctx.cargo(&["bench", "-p", "paging-bench"]).run(&ctx.root)?;
    // Criterion writes under the target directory, wherever CARGO_TARGET_DIR puts it.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| ctx.root.join("target"), |dir| ctx.root.join(dir));
    let criterion = target.join("criterion");
    let mut table = String::new();
    let counts = instructions(ctx)?;
    let _ = writeln!(
        table,
        "| measurement | ours (ns) | peer (ns) | peer | ratio (peer/ours) | target | met | ours (instr) | peer (instr) | instr ratio |"
    );
    let _ = writeln!(table, "|---|---:|---:|---|---:|---:|---|---:|---:|---:|");
    for m in MEASUREMENTS {
        let ours = mean_ns(&criterion, m.group, m.ours)? / m.per_iteration;
        let peer = mean_ns(&criterion, m.group, m.peer)? / m.per_iteration;
        let ratio = peer / ours;
        println!("{} ours_ns={ours:.2} peer_ns={peer:.2} ratio={ratio:.2}", m.name);
        let (target, met) = match m.target {
            // Two decimals for targets below 0.1 (the simulator's 0.03), else one.
            Some(t) if t < 0.1 => (format!("{t:.2}x"), if ratio >= t { "yes" } else { "no" }),
            Some(t) => (format!("{t:.1}x"), if ratio >= t { "yes" } else { "no" }),
            None => ("-".to_owned(), "-"),
        };
        let counted = counts.iter().find(|c| c.0 == m.name && m.peer == "peer");
        let instr = counted.map_or_else(
            || "- | - | -".to_owned(),
            |&(_, ours, peer)| format!("{ours:.1} | {peer:.1} | {:.2}", peer / ours),
        );
        let _ = writeln!(
            table,
            "| {} | {ours:.2} | {peer:.2} | {} | {ratio:.2} | {target} | {met} | {instr} |",
            m.name, m.peer_kind
        );
    }
    let block = format!("{BEGIN}\n\n{}\n\n{table}\n{END}", machine(ctx));
    write_results(&ctx.root.join("BENCHMARKS.md"), &block)
}

/// The rows `count-ops` runs: the engine's, and the simulator's against their native loops.
const COUNTED_ROWS: &[&str] = &[
    "map_4k_each",
    "map_4k_range",
    "translate_random",
    "unmap_reclaim",
    "map_1g_huge",
    "sim_tlb_hit",
    "sim_tlb_miss",
    "sim_demand_zero",
];

/// Instructions per page (or access, or fault) of each counted row, ours and the peer's,
/// counted by callgrind
/// (`count-ops` keeps each row's setup out of the count); empty without valgrind.
///
/// # Errors
///
/// A message if the build or a count fails.
pub fn instructions(ctx: &Ctx) -> Result<Vec<(&'static str, f64, f64)>, String> {
    if Cmd::new(&["valgrind", "--version"]).output(&ctx.root).is_err() {
        println!("valgrind is not installed: no instruction counts");
        return Ok(Vec::new());
    }
    ctx.cargo(&["build", "--release", "-p", "paging-bench", "--bin", "count-ops"])
        .run(&ctx.root)?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| ctx.root.join("target"), |dir| ctx.root.join(dir));
    let binary = target.join("release").join("count-ops");
    let out = std::env::temp_dir().join(format!("paging-count-ops-{}.out", std::process::id()));
    let mut counts = Vec::new();
    for &row in COUNTED_ROWS {
        let mut per_page = [0.0; 2];
        for (side, slot) in ["ours", "peer"].into_iter().zip(&mut per_page) {
            *slot = count_one(ctx, &binary, &out, row, side)?;
        }
        println!("{row} ours_instr={:.1} peer_instr={:.1}", per_page[0], per_page[1]);
        counts.push((row, per_page[0], per_page[1]));
    }
    let _ = fs::remove_file(&out);
    Ok(counts)
}

/// The instructions per page of one run of `count-ops ROW SIDE`.
fn count_one(ctx: &Ctx, binary: &Path, out: &Path, row: &str, side: &str) -> Result<f64, String> {
    let out_arg = format!("--callgrind-out-file={}", out.display());
    let binary = binary.to_string_lossy();
    let argv = [
        "valgrind",
        "--tool=callgrind",
        &out_arg,
        "--toggle-collect=*counted_*",
        &binary,
        row,
        side,
    ];
    let printed = Cmd::new(&argv).output(&ctx.root)?;
    let pages: f64 = printed
        .lines()
        .find_map(|l| l.strip_prefix("pages "))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("count-ops {row} {side} printed no page count"))?;
    let profile = fs::read_to_string(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let total: f64 = profile
        .lines()
        .find_map(|l| l.strip_prefix("summary:").or_else(|| l.strip_prefix("totals:")))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("no instruction total in {}", out.display()))?;
    Ok(total / pages)
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
        "Machine: {cpu}, {cores} cores; {}. Times are per page (engine), per access (simulator), or per fault or page trimmed (pager).",
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

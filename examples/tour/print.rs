//! How the tour prints: chapter titles, narration, and the debugger's views (WinDbg's `dc`,
//! `!address` as a listing and for one address), for 64-bit and 32-bit processes alike.

use std::io::{self, Write};

use paging::space::{AddressSpace, MemoryType, RegionInfo};
use paging::{FaultPolicy, PageTableFormat, VirtAddr};
use paging_sim::{Machine, MachineError};

use crate::Res;

/// A chapter's title.
pub fn header(out: &mut impl Write, title: &str) -> io::Result<()> {
    writeln!(out, "\n== {title} ==")
}

/// Narration: a paragraph after a blank line.
pub fn say(out: &mut impl Write, text: &str) -> io::Result<()> {
    writeln!(out, "\n{}", wrap(text))
}

/// `text` wrapped at 90 columns.
pub fn wrap(text: &str) -> String {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("never empty");
        if line.is_empty() {
            line.push_str(word);
        } else if line.len() + word.len() < 90 {
            line.push(' ');
            line.push_str(word);
        } else {
            lines.push(word.to_string());
        }
    }
    lines.join("\n")
}

/// An address as WinDbg prints a 64-bit one in dumps: `00000001`23450000`.
pub fn full(addr: u64) -> String {
    format!("{:08x}`{:08x}", addr >> 32, addr & 0xFFFF_FFFF)
}

/// An address as `!address` prints it: `1`23450000`.
pub fn short(addr: u64) -> String {
    format!("{:x}`{:08x}", addr >> 32, addr & 0xFFFF_FFFF)
}

/// Whether `F`'s addresses are 32 bits wide (the debugger then prints 8 digits, no tick).
fn is_32_bit<F: PageTableFormat>() -> bool {
    F::VIRT_BITS <= 32
}

/// An address (or size) of a process on `F` as dumps print it.
pub fn dump_addr<F: PageTableFormat>(addr: u64) -> String {
    if is_32_bit::<F>() { format!("{addr:08x}") } else { full(addr) }
}

/// An address (or size) of a process on `F` as `!address` listings print it.
fn list_addr<F: PageTableFormat>(addr: u64) -> String {
    if is_32_bit::<F>() { format!("{addr:08x}") } else { short(addr) }
}

/// A size as WinDbg adds it after a region's size: `(   2.000 GB)`.
pub fn windbg_size(bytes: u64) -> String {
    let units = ["kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("({value:8.3} {})", units[unit])
}

/// WinDbg's `Usage` of a region: what the debugger can tell it is from its type alone.
fn usage(kind: Option<MemoryType>) -> &'static str {
    match kind {
        None => "Free",
        Some(MemoryType::Image) => "Image",
        Some(MemoryType::Mapped) => "MappedFile",
        Some(_) => "<unknown>",
    }
}

/// WinDbg's `dc`: `dwords` double words from `addr` (16-aligned), loaded in user mode by
/// the running process through `policy`; a line whose page fault nobody resolves shows
/// `????????`.
pub fn dc<F: PageTableFormat, P: FaultPolicy<Machine<F>>>(
    out: &mut impl Write,
    machine: &mut Machine<F>,
    who: &str,
    addr: VirtAddr,
    dwords: u64,
    policy: &mut P,
) -> Res {
    writeln!(out, "  {who}> dc {} L{dwords:x}", dump_addr::<F>(addr.as_u64()))?;
    for line in (addr.as_u64()..addr.as_u64() + dwords * 4).step_by(16) {
        let mut bytes = [0u8; 16];
        let (words, ascii) = match machine.load(VirtAddr::new(line), &mut bytes, policy) {
            Ok(()) => (
                bytes
                    .chunks(4)
                    .map(|d| format!("{:08x}", u32::from_le_bytes([d[0], d[1], d[2], d[3]])))
                    .collect(),
                bytes
                    .iter()
                    .map(|&c| if c == b' ' || c.is_ascii_graphic() { c as char } else { '.' })
                    .collect(),
            ),
            Err(MachineError::Unhandled(_)) => (vec!["????????".to_string(); 4], "?".repeat(16)),
            Err(other) => return Err(other.into()),
        };
        writeln!(out, "  {}  {}  {ascii}", dump_addr::<F>(line), words.join(" "))?;
    }
    Ok(())
}

/// `!address` restricted to the regions that meet `[from, to)`.
pub fn listing<F: PageTableFormat, const N: usize>(
    out: &mut impl Write,
    space: &AddressSpace<F, N>,
    from: VirtAddr,
    to: VirtAddr,
) -> io::Result<()> {
    let near = space.regions().filter(|r| r.end() > from && r.base < to);
    listing_of::<F>(out, near)
}

/// `!address` of `regions`, in WinDbg's columns (the allocation's base and protection it
/// shows only for one address: see [`query`]).
pub fn listing_of<F: PageTableFormat>(
    out: &mut impl Write,
    regions: impl Iterator<Item = RegionInfo>,
) -> io::Result<()> {
    let header = ["BaseAddress", "EndAddress+1", "RegionSize", "Type", "State", "Protect", "Usage"];
    let rows: Vec<[String; 7]> =
        std::iter::once(header.map(String::from)).chain(regions.map(row::<F>)).collect();
    let width = |c: usize| rows.iter().map(|r| r[c].len()).max().unwrap_or(0);
    for row in &rows {
        let cells = row.iter().enumerate().map(|(c, s)| match c {
            0..=2 => format!("{s:>w$}", w = width(c)),
            _ => format!("{s:<w$}", w = width(c)),
        });
        writeln!(out, "  {}", cells.collect::<Vec<_>>().join("  ").trim_end())?;
    }
    Ok(())
}

/// One line of `!address`.
fn row<F: PageTableFormat>(r: RegionInfo) -> [String; 7] {
    let text = |s: Option<String>| s.unwrap_or_default();
    [
        list_addr::<F>(r.base.as_u64()),
        list_addr::<F>(r.end().as_u64()),
        list_addr::<F>(r.size),
        text(r.kind.map(|k| k.to_string())),
        r.state.to_string(),
        text(r.protect.map(|p| p.to_string())),
        usage(r.kind).to_string(),
    ]
}

/// One line of `!address addr`: the label padded as WinDbg pads it.
pub fn field(out: &mut impl Write, label: &str, value: &str) -> io::Result<()> {
    writeln!(out, "  {:<24}{value}", format!("{label}:"))
}

/// `!address addr`: one region in detail, with the Windows values, in WinDbg's shape.
pub fn query<F: PageTableFormat, const N: usize>(
    out: &mut impl Write,
    who: &str,
    space: &AddressSpace<F, N>,
    addr: VirtAddr,
) -> Res {
    let r = space.query(addr)?;
    let at = |a: u64| dump_addr::<F>(a);
    writeln!(out, "  {who}> !address {}", at(addr.as_u64()))?;
    field(out, "Usage", usage(r.kind))?;
    field(out, "Base Address", &at(r.base.as_u64()))?;
    field(out, "End Address", &at(r.end().as_u64()))?;
    field(out, "Region Size", &format!("{} {}", at(r.size), windbg_size(r.size)))?;
    field(out, "State", &format!("{:08x}          {}", r.state.windows(), r.state))?;
    if let Some(p) = r.protect {
        field(out, "Protect", &format!("{:08x}          {p}", p.windows()))?;
    }
    match r.kind {
        Some(k) => field(out, "Type", &format!("{:08x}          {k}", k.windows()))?,
        None => field(out, "Type", "<info not present at the target>")?,
    }
    if let (Some(base), Some(p)) = (r.allocation_base, r.allocation_protect) {
        field(out, "Allocation Base", &at(base.as_u64()))?;
        field(out, "Allocation Protect", &format!("{:08x}          {p}", p.windows()))?;
    }
    Ok(())
}

/// Rows with aligned columns: the first left-aligned, the others right-aligned.
pub fn table<const N: usize>(out: &mut impl Write, rows: &[[String; N]]) -> io::Result<()> {
    let width = |c: usize| rows.iter().map(|r| r[c].len()).max().unwrap_or(0);
    for row in rows {
        let cells = row.iter().enumerate().map(|(c, s)| match c {
            0 => format!("{s:<w$}", w = width(c)),
            _ => format!("{s:>w$}", w = width(c)),
        });
        writeln!(out, "  {}", cells.collect::<Vec<_>>().join("  "))?;
    }
    Ok(())
}

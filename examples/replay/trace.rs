//! Reading traces: valgrind lackey and plain address lists, plain, xz or gzip.
//!
//! The reader streams: it holds one line and the decompressor's window, never the whole
//! trace, so a trace of tens of millions of lines is read in a few MB (plus the xz
//! dictionary the file was compressed with: up to 64 MiB for `xz -9`).
//!
//! Line formats, detected per line:
//! - valgrind lackey (`--trace-mem=yes`): `I  ADDR,SIZE` (fetch), ` L ADDR,SIZE` (load),
//!   ` S ADDR,SIZE` (store), ` M ADDR,SIZE` (modify); ADDR hex, SIZE decimal.
//! - plain: `R ADDR`, `W ADDR` or `ADDR` (hex, `0x` optional; a bare address is a read of
//!   one byte).
//!
//! Blank lines are skipped; every other line that fits neither format (lackey's `==PID==`
//! banner, for one) is counted as unknown, never fatal.
//!
//! Semantics: 4 KiB pages; a record touches every page of its bytes `[addr, addr + size)`
//! in address order (size 0 counts as one byte; the range stops at the top of the address
//! space). `I`, `L` and `R` read; `S`, `M` and `W` write. `M` is one write per page.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::Path;

/// log2 of the page size: 4 KiB pages.
pub const PAGE_SHIFT: u32 = 12;

/// Records larger than this are not believed: no instruction touches a megabyte, and a
/// corrupt size must not make one line yield billions of references.
pub const MAX_RECORD_SIZE: u64 = 1 << 20;

/// How many unknown lines [`TraceStats::first_unknown`] keeps for the report.
pub const UNKNOWN_KEPT: usize = 5;

/// How many characters of an unknown line are kept for the report.
const UNKNOWN_CHARS: usize = 80;

/// Buffer for the decompressed text: large, so that line splitting rarely refills.
const TEXT_BUFFER: usize = 256 * 1024;

/// Buffer for the compressed bytes fed to a decoder.
const RAW_BUFFER: usize = 64 * 1024;

const XZ_MAGIC: &[u8] = &[0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00];
const GZIP_MAGIC: &[u8] = &[0x1F, 0x8B];

/// One touch of one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reference {
    /// The page number: the address shifted right by [`PAGE_SHIFT`].
    pub page: u64,
    /// Whether the touch writes (dirties) the page.
    pub write: bool,
}

/// What the reader saw; complete once the iterator has ended.
#[derive(Debug, Default)]
pub struct TraceStats {
    /// Lines read, blank and unknown ones included.
    pub lines: u64,
    /// Lines understood as a record (an access of `[addr, addr + size)`).
    pub records: u64,
    /// References yielded (a record crossing a page boundary yields more than one).
    pub references: u64,
    /// Lines not understood.
    pub unknown: u64,
    /// The first few unknown lines: 1-based line number and the line, cut to ~80 characters.
    pub first_unknown: Vec<(u64, String)>,
    /// The read or decompression error that ended the trace early, if any.
    pub error: Option<io::Error>,
}

/// A streaming trace: an iterator over its page references.
pub struct Trace {
    input: Box<dyn BufRead + Send>,
    /// A line split across two fills of the buffer.
    carry: Vec<u8>,
    run: PageRun,
    stats: TraceStats,
    finished: bool,
}

/// The pages of the current record not yet yielded: `next..=last`.
#[derive(Clone, Copy, Debug, Default)]
struct PageRun {
    next: u64,
    last: u64,
    write: bool,
    active: bool,
}

/// One parsed line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line {
    Record { addr: u64, size: u64, write: bool },
    Blank,
    Unknown,
}

/// Opens a trace file, plain or compressed (xz or gzip, told by the magic bytes).
///
/// # Errors
/// When the file cannot be opened. Errors while reading come later, in
/// [`TraceStats::error`].
pub fn open(path: &Path) -> io::Result<Trace> {
    Ok(from_reader(File::open(path)?))
}

/// The text of a trace file, decompressed as [`open`] decompresses it (for a benchmark
/// that leaves decompression out of its timing).
///
/// # Errors
/// When the file cannot be opened or its first bytes read.
pub fn decompressed(path: &Path) -> io::Result<Box<dyn BufRead + Send>> {
    decoded(File::open(path)?)
}

/// A trace read from any byte stream, plain or compressed like [`open`]'s files.
pub fn from_reader(reader: impl Read + Send + 'static) -> Trace {
    let mut stats = TraceStats::default();
    let input = match decoded(reader) {
        Ok(input) => input,
        Err(error) => {
            stats.error = Some(error);
            Box::new(io::empty())
        }
    };
    Trace { input, carry: Vec::with_capacity(256), run: PageRun::default(), stats, finished: false }
}

/// Sniffs the magic bytes and puts the matching decoder in front of `reader`.
fn decoded(mut reader: impl Read + Send + 'static) -> io::Result<Box<dyn BufRead + Send>> {
    let mut magic = [0u8; 6];
    let got = read_prefix(&mut reader, &mut magic)?;
    let prefix = &magic[..got];
    // The sniffed bytes go back in front, so every decoder sees the whole stream.
    let whole = Cursor::new(prefix.to_vec()).chain(reader);
    Ok(if prefix.starts_with(XZ_MAGIC) {
        let raw = BufReader::with_capacity(RAW_BUFFER, whole);
        Box::new(BufReader::with_capacity(TEXT_BUFFER, lzma_rust2::XzReader::new(raw, true)))
    } else if prefix.starts_with(GZIP_MAGIC) {
        let raw = BufReader::with_capacity(RAW_BUFFER, whole);
        // Multi-member, as `pigz` and concatenated `.gz` files have several.
        Box::new(BufReader::with_capacity(TEXT_BUFFER, flate2::bufread::MultiGzDecoder::new(raw)))
    } else {
        Box::new(BufReader::with_capacity(TEXT_BUFFER, whole))
    })
}

/// Reads until `buffer` is full or the stream ends; a short read is not the end.
fn read_prefix(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buffer.len() {
        match reader.read(&mut buffer[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(got)
}

impl Trace {
    /// What was read so far; the totals once the iterator has returned `None`.
    pub fn stats(&self) -> &TraceStats {
        &self.stats
    }

    /// Reads lines until one is a record, and makes it the current page run.
    /// Returns false at the end of the trace (or at an error, kept in the stats).
    ///
    /// Lines are parsed where they lie in the reader's buffer; only a line split by a
    /// refill is copied, into `carry`. This is the hot loop of a replay.
    fn next_record(&mut self) -> bool {
        while !self.finished {
            let buffer = match self.input.fill_buf() {
                Ok(buffer) => buffer,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    self.stats.error = Some(error);
                    self.finished = true;
                    break;
                }
            };
            if buffer.is_empty() {
                self.finished = true;
                // The last line may lack its newline.
                return !self.carry.is_empty() && self.take_carried_line();
            }
            let (used, started) = match buffer.iter().position(|&byte| byte == b'\n') {
                Some(end) if self.carry.is_empty() => {
                    (end + 1, take_line(&mut self.stats, &mut self.run, &buffer[..end]))
                }
                Some(end) => {
                    self.carry.extend_from_slice(&buffer[..end]);
                    (end + 1, self.take_carried_line())
                }
                None => {
                    self.carry.extend_from_slice(buffer);
                    (buffer.len(), false)
                }
            };
            self.input.consume(used);
            if started {
                return true;
            }
        }
        false
    }

    fn take_carried_line(&mut self) -> bool {
        let started = take_line(&mut self.stats, &mut self.run, &self.carry);
        self.carry.clear();
        started
    }
}

/// Accounts for one line (without its `\n`); true if it started a page run.
fn take_line(stats: &mut TraceStats, run: &mut PageRun, line: &[u8]) -> bool {
    stats.lines += 1;
    match parse_line(line) {
        Line::Record { addr, size, write } => {
            stats.records += 1;
            *run = page_run(addr, size, write);
            true
        }
        Line::Blank => false,
        Line::Unknown => {
            note_unknown(stats, line);
            false
        }
    }
}

fn note_unknown(stats: &mut TraceStats, line: &[u8]) {
    stats.unknown += 1;
    if stats.first_unknown.len() < UNKNOWN_KEPT {
        let text = String::from_utf8_lossy(trim_end(line));
        let cut: String = text.chars().take(UNKNOWN_CHARS).collect();
        stats.first_unknown.push((stats.lines, cut));
    }
}

impl Iterator for Trace {
    type Item = Reference;

    fn next(&mut self) -> Option<Reference> {
        if !self.run.active && !self.next_record() {
            return None;
        }
        let run = &mut self.run;
        let reference = Reference { page: run.next, write: run.write };
        // `last` is at most u64::MAX >> PAGE_SHIFT, so `next + 1` cannot overflow.
        run.active = run.next < run.last;
        run.next += 1;
        self.stats.references += 1;
        Some(reference)
    }
}

/// The pages of `[addr, addr + size)`, the range cut at the top of the address space.
fn page_run(addr: u64, size: u64, write: bool) -> PageRun {
    let last_byte = addr.saturating_add(size.max(1) - 1);
    PageRun { next: addr >> PAGE_SHIFT, last: last_byte >> PAGE_SHIFT, write, active: true }
}

/// Parses one line (its `\n` included or not) in either format.
fn parse_line(line: &[u8]) -> Line {
    let line = trim_start(trim_end(line));
    let Some((&first, rest)) = line.split_first() else {
        return Line::Blank;
    };
    let parsed = match first {
        b'I' | b'L' => parse_lackey(rest, false),
        b'S' | b'M' => parse_lackey(rest, true),
        b'R' => parse_plain(rest, false),
        b'W' => parse_plain(rest, true),
        // A bare address is a one-byte read.
        _ => parse_hex(line).map(|addr| Line::Record { addr, size: 1, write: false }),
    };
    parsed.unwrap_or(Line::Unknown)
}

/// ` ADDR,SIZE` after a lackey kind letter: blanks, hex address, comma, decimal size.
fn parse_lackey(rest: &[u8], write: bool) -> Option<Line> {
    let (addr, rest) = parse_hex_prefix(after_separator(rest)?)?;
    let size = parse_decimal(rest.strip_prefix(b",")?)?;
    (size <= MAX_RECORD_SIZE).then_some(Line::Record { addr, size, write })
}

/// ` ADDR` after `R` or `W`.
fn parse_plain(rest: &[u8], write: bool) -> Option<Line> {
    let addr = parse_hex(after_separator(rest)?)?;
    Some(Line::Record { addr, size: 1, write })
}

/// The text after at least one blank: the kind letter must stand alone.
fn after_separator(rest: &[u8]) -> Option<&[u8]> {
    let fields = trim_start(rest);
    (fields.len() < rest.len()).then_some(fields)
}

/// Hex digits, `0x` or `0X` allowed in front; None if empty, not hex or over 64 bits.
fn parse_hex(text: &[u8]) -> Option<u64> {
    match parse_hex_prefix(text)? {
        (value, []) => Some(value),
        _ => None,
    }
}

/// The hex number at the start of `text` (`0x` or `0X` allowed) and the bytes after it;
/// None if there are no digits or the number is over 64 bits.
fn parse_hex_prefix(text: &[u8]) -> Option<(u64, &[u8])> {
    let digits = match text {
        [b'0', b'x' | b'X', digits @ ..] => digits,
        _ => text,
    };
    let mut value: u64 = 0;
    let mut count = 0;
    for &byte in digits {
        let digit = HEX_DIGITS[usize::from(byte)];
        if digit == NOT_HEX {
            break;
        }
        if value >> 60 != 0 {
            return None;
        }
        value = value << 4 | u64::from(digit);
        count += 1;
    }
    (count > 0).then(|| (value, &digits[count..]))
}

const NOT_HEX: u8 = 0xFF;

/// Hex digit values by byte, [`NOT_HEX`] elsewhere: a table lookup beats a three-way match
/// in the hot loop.
static HEX_DIGITS: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = match byte as u8 {
            digit @ b'0'..=b'9' => digit - b'0',
            letter @ b'a'..=b'f' => letter - b'a' + 10,
            letter @ b'A'..=b'F' => letter - b'A' + 10,
            _ => NOT_HEX,
        };
        byte += 1;
    }
    table
};

/// Decimal digits; None if empty, not decimal or over 64 bits.
fn parse_decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0u64, |value, &byte| {
        let digit = byte.checked_sub(b'0').filter(|digit| *digit <= 9)?;
        value.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

fn trim_start(text: &[u8]) -> &[u8] {
    let blanks = text.iter().take_while(|b| is_blank(**b)).count();
    &text[blanks..]
}

/// Cuts trailing blanks and line ends (`\n`, and `\r` from CRLF files).
fn trim_end(text: &[u8]) -> &[u8] {
    let kept = text.len() - text.iter().rev().take_while(|b| is_blank(**b) || **b == b'\n').count();
    &text[..kept]
}

fn is_blank(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    fn read(text: &[u8]) -> (Vec<Reference>, TraceStats) {
        let mut trace = from_reader(Cursor::new(text.to_vec()));
        let references: Vec<Reference> = trace.by_ref().collect();
        (references, trace.stats)
    }

    fn refs(pairs: &[(u64, bool)]) -> Vec<Reference> {
        pairs.iter().map(|&(page, write)| Reference { page, write }).collect()
    }

    #[test]
    fn each_lackey_kind() {
        let text = b"I  0400d7d4,8\n L 04222cac,4\n S 04223cac,4\n M 0421aeb8,4\n";
        let (references, stats) = read(text);
        let expected = refs(&[(0x400d, false), (0x4222, false), (0x4223, true), (0x421a, true)]);
        assert_eq!(references, expected);
        assert_eq!((stats.lines, stats.records, stats.references, stats.unknown), (4, 4, 4, 0));
        assert!(stats.error.is_none());
    }

    #[test]
    fn records_crossing_a_page_boundary_touch_both_pages() {
        let (references, stats) = read(b" S 00000ffe,4\nI  1fff,2\n L 2000,4096\n L 3000,4097\n");
        let expected = refs(&[
            (0, true),
            (1, true),
            (1, false),
            (2, false),
            (2, false),
            (3, false),
            (4, false),
        ]);
        assert_eq!(references, expected);
        assert_eq!((stats.records, stats.references), (4, 7));
    }

    #[test]
    fn size_zero_is_one_byte() {
        assert_eq!(read(b" L fff,0\n").0, refs(&[(0, false)]));
    }

    #[test]
    fn the_top_of_the_address_space_does_not_overflow() {
        let text = b" S ffffffffffffffff,8\nW 0xFFFFFFFFFFFFFFFF\n L fffffffffffffffe,2\n";
        let top = u64::MAX >> PAGE_SHIFT;
        assert_eq!(read(text).0, refs(&[(top, true), (top, true), (top, false)]));
    }

    #[test]
    fn plain_formats() {
        let text = b"R 1000\nW 0x2000\n3000\n0X4fff\nr 5000\nR\n";
        let (references, stats) = read(text);
        let expected = refs(&[(1, false), (2, true), (3, false), (4, false)]);
        assert_eq!(references, expected);
        assert_eq!((stats.lines, stats.records, stats.unknown), (6, 4, 2));
        assert_eq!(stats.first_unknown, vec![(5, "r 5000".to_string()), (6, "R".to_string())]);
    }

    #[test]
    fn unknown_lines_are_counted_with_their_numbers() {
        let long = "x".repeat(200);
        let text = format!(
            "==123== Lackey\n L 1000,4\n\n S 1000\nI 1000,4,\n{long}\n1000 2000\n10000000000000000\nM 1000,4\n"
        );
        let (references, stats) = read(text.as_bytes());
        assert_eq!(references, refs(&[(1, false), (1, true)]));
        assert_eq!((stats.lines, stats.records, stats.unknown), (9, 2, 6));
        let numbers: Vec<u64> = stats.first_unknown.iter().map(|(line, _)| *line).collect();
        assert_eq!(numbers, vec![1, 4, 5, 6, 7]);
        assert_eq!(stats.first_unknown[0].1, "==123== Lackey");
        assert_eq!(stats.first_unknown[3].1, "x".repeat(80));
    }

    #[test]
    fn crlf_blank_lines_and_a_missing_last_newline() {
        let (references, stats) = read(b" L 1000,4\r\n\r\n   \n S 2000,4");
        assert_eq!(references, refs(&[(1, false), (2, true)]));
        assert_eq!((stats.lines, stats.records, stats.unknown), (4, 2, 0));
    }

    #[test]
    fn oversized_records_are_unknown() {
        let text = format!(" L 0,{}\n L 0,{}\n", MAX_RECORD_SIZE, MAX_RECORD_SIZE + 1);
        let (references, stats) = read(text.as_bytes());
        assert_eq!(references.len() as u64, MAX_RECORD_SIZE >> PAGE_SHIFT);
        assert_eq!(stats.unknown, 1);
    }

    const SAMPLE: &str = "==1== banner\nI  0400d7d4,8\n S 00000ffe,4\nW 0x5000\n";

    fn sample_refs() -> Vec<Reference> {
        refs(&[(0x400d, false), (0, true), (1, true), (5, true)])
    }

    fn xz(bytes: &[u8]) -> Vec<u8> {
        let options = lzma_rust2::XzOptions::with_preset(6);
        let mut writer = lzma_rust2::XzWriter::new(Vec::new(), options).expect("xz writer");
        writer.write_all(bytes).expect("xz write");
        writer.finish().expect("xz finish")
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut writer = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        writer.write_all(bytes).expect("gzip write");
        writer.finish().expect("gzip finish")
    }

    #[test]
    fn xz_round_trip() {
        let (references, stats) = read(&xz(SAMPLE.as_bytes()));
        assert_eq!(references, sample_refs());
        assert_eq!((stats.lines, stats.unknown), (4, 1));
        assert!(stats.error.is_none());
    }

    #[test]
    fn gzip_round_trip_with_two_members() {
        let mut bytes = gzip(SAMPLE.as_bytes());
        bytes.extend(gzip(b"R 7000\n"));
        let (references, stats) = read(&bytes);
        let mut expected = sample_refs();
        expected.push(Reference { page: 7, write: false });
        assert_eq!(references, expected);
        assert!(stats.error.is_none());
    }

    #[test]
    fn truncated_streams_report_an_error() {
        let big: String = (0..20_000).map(|i| format!(" L {:x},4\n", i * 4096)).collect();
        for packed in [xz(big.as_bytes()), gzip(big.as_bytes())] {
            let cut = &packed[..packed.len() / 2];
            let (references, stats) = read(cut);
            assert!(stats.error.is_some(), "no error after {} references", references.len());
            assert!(references.len() < 20_000);
            assert_eq!(references.len() as u64, stats.references);
        }
    }

    #[test]
    fn read_errors_end_the_trace() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let mut trace = from_reader(Failing);
        assert_eq!(trace.next(), None);
        assert_eq!(
            trace.stats().error.as_ref().map(ToString::to_string).as_deref(),
            Some("disk on fire")
        );
    }

    #[test]
    fn a_reader_giving_one_byte_at_a_time_is_still_sniffed() {
        struct Trickle(Cursor<Vec<u8>>);
        impl Read for Trickle {
            fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
                let end = buffer.len().min(1);
                self.0.read(&mut buffer[..end])
            }
        }
        let mut trace = from_reader(Trickle(Cursor::new(xz(SAMPLE.as_bytes()))));
        assert_eq!(trace.by_ref().collect::<Vec<_>>(), sample_refs());
    }

    #[test]
    fn empty_input_is_an_empty_trace() {
        let (references, stats) = read(b"");
        assert!(references.is_empty());
        assert_eq!((stats.lines, stats.error.is_none()), (0, true));
    }

    /// Measured with Python on the uncompressed file; see traces/README.md.
    #[test]
    fn the_committed_sample_trace() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("replay/traces/true.lackey.xz");
        let mut trace = open(&path).expect("sample trace");
        let writes = trace.by_ref().filter(|reference| reference.write).count();
        let stats = trace.stats();
        assert!(stats.error.is_none(), "{:?}", stats.error);
        assert_eq!((stats.lines, stats.records, stats.unknown), (167_587, 167_562, 25));
        assert_eq!((stats.references, writes), (167_695, 11_771));
        assert_eq!(stats.first_unknown.len(), UNKNOWN_KEPT);
        assert_eq!(stats.first_unknown[0].0, 1);
        assert!(stats.first_unknown[0].1.ends_with("Lackey, an example Valgrind tool"));
    }

    /// A fresh trace from the valgrind on this machine, when there is one: lackey's output
    /// of this version must still be understood, all but its `==PID==` lines.
    #[test]
    fn a_fresh_lackey_trace_when_valgrind_is_installed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("true.txt");
        let status = std::process::Command::new("valgrind")
            .args(["--tool=lackey", "--trace-mem=yes"])
            .arg(format!("--log-file={}", log.display()))
            .arg("/bin/true")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let Ok(status) = status else {
            eprintln!("valgrind not installed: fresh-trace test skipped");
            return;
        };
        assert!(status.success(), "valgrind failed: {status}");
        let mut trace = open(&log).expect("fresh trace");
        let references = trace.by_ref().count() as u64;
        let stats = trace.stats();
        assert!(stats.error.is_none(), "{:?}", stats.error);
        assert!(stats.records > 10_000 && references >= stats.records);
        let banner = stats.first_unknown.iter().all(|(_, line)| line.starts_with("=="));
        assert!(banner, "lines not understood: {:?}", stats.first_unknown);
        assert!(stats.unknown < 100, "{} lines not understood", stats.unknown);
    }

    /// Parse speed on a generated plain-text lackey trace; run with
    /// `cargo test --release -p paging-examples --bin replay -- --ignored --nocapture speed`.
    #[test]
    #[ignore = "timing run, release mode"]
    fn parse_speed() {
        const LINES: u64 = 10_000_000;
        let mut text = Vec::with_capacity(LINES as usize * 16);
        for i in 0..LINES {
            let kind = ["I ", " L", " S", " M"][(i % 4) as usize];
            writeln!(text, "{kind} {:08x},{}", 0x0400_0000 + (i * 37 % 65536) * 8, 1 + i % 8)
                .unwrap();
        }
        let start = std::time::Instant::now();
        let mut trace = from_reader(Cursor::new(text));
        let pages = trace.by_ref().fold(0u64, |sum, reference| sum.wrapping_add(reference.page));
        let seconds = start.elapsed().as_secs_f64();
        let stats = trace.stats();
        assert_eq!(stats.lines, LINES);
        println!(
            "{} lines, {} references in {seconds:.3} s: {:.1} M lines/s ({pages})",
            stats.lines,
            stats.references,
            stats.lines as f64 / seconds / 1e6
        );
    }

    /// A line in one of the formats, and the references the semantics give it.
    #[derive(Clone, Debug)]
    enum Model {
        Lackey { kind: char, addr: u64, size: u64, lead: bool },
        Plain { kind: Option<char>, addr: u64, prefix: &'static str, upper: bool },
    }

    impl Model {
        fn text(&self) -> String {
            match *self {
                Model::Lackey { kind, addr, size, lead } => {
                    let lead = if lead || kind != 'I' { " " } else { "" };
                    format!("{lead}{kind} {addr:08x},{size}")
                }
                Model::Plain { kind, addr, prefix, upper } => {
                    let hex = if upper { format!("{addr:X}") } else { format!("{addr:x}") };
                    kind.map_or(format!("{prefix}{hex}"), |kind| format!("{kind} {prefix}{hex}"))
                }
            }
        }

        fn references(&self) -> Vec<Reference> {
            let (addr, size, write) = match *self {
                Model::Lackey { kind, addr, size, .. } => (addr, size, kind == 'S' || kind == 'M'),
                Model::Plain { kind, addr, .. } => (addr, 1, kind == Some('W')),
            };
            // The model walks bytes in u128, so it cannot share the reader's overflow bugs.
            let end = (u128::from(addr) + u128::from(size.max(1))).min(1 << 64);
            let first = u128::from(addr) >> PAGE_SHIFT;
            let last = (end - 1) >> PAGE_SHIFT;
            (first..=last).map(|page| Reference { page: page as u64, write }).collect()
        }
    }

    fn address() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..0x10_0000,
            any::<u64>(),
            (0u64..1 << 40).prop_map(|page| (page << PAGE_SHIFT).wrapping_sub(3)),
            (0u64..64).prop_map(|below| u64::MAX - below),
        ]
    }

    fn model() -> impl Strategy<Value = Model> {
        let lackey =
            (prop::sample::select(vec!['I', 'L', 'S', 'M']), address(), 0u64..9000, any::<bool>())
                .prop_map(|(kind, addr, size, lead)| Model::Lackey { kind, addr, size, lead });
        let kinds = prop::sample::select(vec![None, Some('R'), Some('W')]);
        let plain = (kinds, address(), prop::sample::select(vec!["", "0x", "0X"]), any::<bool>())
            .prop_map(|(kind, addr, prefix, upper)| Model::Plain { kind, addr, prefix, upper });
        prop_oneof![lackey, plain]
    }

    fn magic() -> impl Strategy<Value = Vec<u8>> {
        prop::sample::select(vec![Vec::new(), XZ_MAGIC.to_vec(), GZIP_MAGIC.to_vec()])
    }

    proptest! {
        #[test]
        fn well_formed_lines_yield_the_models_references(models in prop::collection::vec(model(), 0..40)) {
            let text: String = models.iter().map(|model| model.text() + "\n").collect();
            let expected: Vec<Reference> = models.iter().flat_map(Model::references).collect();
            let (references, stats) = read(text.as_bytes());
            prop_assert_eq!(&references, &expected);
            prop_assert_eq!((stats.records, stats.unknown), (models.len() as u64, 0));
            prop_assert_eq!(stats.references, expected.len() as u64);
        }

        #[test]
        fn arbitrary_bytes_never_panic(magic in magic(), tail in prop::collection::vec(any::<u8>(), 0..2000)) {
            let mut bytes = magic;
            bytes.extend(tail);
            let (references, stats) = read(&bytes);
            prop_assert_eq!(references.len() as u64, stats.references);
            prop_assert!(stats.unknown + stats.records <= stats.lines);
        }

        #[test]
        fn arbitrary_text_lines_never_panic(lines in prop::collection::vec("[ ILSMRWx0-9a-fA-F,\t\r]{0,30}", 0..30)) {
            let text = lines.join("\n");
            let (references, stats) = read(text.as_bytes());
            prop_assert_eq!(references.len() as u64, stats.references);
            prop_assert_eq!(stats.unknown + stats.records <= stats.lines, true);
        }
    }
}

//! Plots of faults against frames: one line per policy, OPT drawn as the lower bound.
//!
//! Text is laid out with `ab_glyph` from a font compiled into the binary (DejaVu Sans,
//! `fonts/`), so PNGs render their labels on a machine without fontconfig or any font
//! package.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

/// The family every text on the plot asks for; [`register_font`] binds it to DejaVu Sans.
const FONT: &str = "sans-serif";

const FONT_BYTES: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");

/// Pixels for PNG; SVG user units.
const SIZE: (u32, u32) = (1000, 700);

/// A fault axis whose largest value is more than this many times its smallest is drawn in
/// log scale: two decades, past which the small counts near OPT flatten into the axis.
const FAULTS_LOG_SPAN: f64 = 100.0;

/// The same for the frames axis: one decade, as frame counts are usually powers of two
/// and a linear axis would crowd the small ones, where the curves differ most.
const FRAMES_LOG_SPAN: f64 = 10.0;

/// The policy drawn as the lower bound.
const OPT: &str = "opt";

/// Line colours of the policies other than OPT (Paul Tol's bright scheme, readable by
/// colour-blind people).
const COLOURS: [RGBColor; 7] = [
    RGBColor(0x44, 0x77, 0xAA),
    RGBColor(0xEE, 0x66, 0x77),
    RGBColor(0x22, 0x88, 0x33),
    RGBColor(0xCC, 0xBB, 0x44),
    RGBColor(0x66, 0xCC, 0xEE),
    RGBColor(0xAA, 0x33, 0x77),
    RGBColor(0x99, 0x99, 0x99),
];

/// One policy's fault curve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Series {
    /// The policy's name, shown in the legend; `"opt"` is drawn as the lower bound.
    pub policy: String,
    /// `(frames, faults)` points, in any order.
    pub points: Vec<(u64, u64)>,
}

/// Why a plot was not written.
#[derive(Debug)]
pub enum PlotError {
    /// The file name ends in neither `.svg` nor `.png`.
    UnknownFormat(PathBuf),
    /// No series has a point.
    NoData,
    /// The compiled-in font was rejected by the text renderer.
    Font,
    /// Drawing or writing the file failed.
    Draw(String),
}

impl fmt::Display for PlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlotError::UnknownFormat(path) => {
                write!(f, "{}: a plot must be a .svg or .png file", path.display())
            }
            PlotError::NoData => write!(f, "nothing to plot: no series has a point"),
            PlotError::Font => write!(f, "the plot's built-in font could not be loaded"),
            PlotError::Draw(message) => write!(f, "drawing the plot failed: {message}"),
        }
    }
}

impl std::error::Error for PlotError {}

/// The image formats, told by the file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Svg,
    Png,
}

/// Draws `series` as faults against frames into `path` (`.svg` or `.png`).
///
/// # Errors
/// [`PlotError::UnknownFormat`] for another extension, [`PlotError::NoData`] when there is
/// no point, [`PlotError::Font`] or [`PlotError::Draw`] when rendering or writing fails.
pub fn plot(path: &Path, title: &str, series: &[Series]) -> Result<(), PlotError> {
    let format = format_of(path)?;
    let bounds = Bounds::of(series).ok_or(PlotError::NoData)?;
    register_font()?;
    match format {
        Format::Svg => {
            draw(&SVGBackend::new(path, SIZE).into_drawing_area(), title, series, &bounds)
        }
        Format::Png => {
            draw(&BitMapBackend::new(path, SIZE).into_drawing_area(), title, series, &bounds)
        }
    }
}

fn format_of(path: &Path) -> Result<Format, PlotError> {
    let extension = path.extension().and_then(|extension| extension.to_str());
    match extension.map(str::to_ascii_lowercase).as_deref() {
        Some("svg") => Ok(Format::Svg),
        Some("png") => Ok(Format::Png),
        _ => Err(PlotError::UnknownFormat(path.to_path_buf())),
    }
}

/// Registers the compiled-in font once per process; plotters keeps it in a global table.
fn register_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if *ok { Ok(()) } else { Err(PlotError::Font) }
}

/// The axes' ranges, and whether each is drawn in log scale.
#[derive(Clone, Debug, PartialEq)]
struct Bounds {
    frames: Range<f64>,
    faults: Range<f64>,
    log_frames: bool,
    log_faults: bool,
}

impl Bounds {
    /// None when there is no point at all.
    fn of(series: &[Series]) -> Option<Bounds> {
        let points = series.iter().flat_map(|series| &series.points);
        let frames = span(points.clone().map(|&(frames, _)| frames))?;
        let faults = span(points.map(|&(_, faults)| faults))?;
        let (log_frames, frames) = axis(frames, FRAMES_LOG_SPAN);
        let (log_faults, mut faults) = axis(faults, FAULTS_LOG_SPAN);
        if log_faults {
            // Plotters marks a log axis from its first power of ten up: starting the axis
            // on one gives the lowest decade, where OPT lies, its 2 and 5 marks too.
            faults.start = 10f64.powf(faults.start.log10().floor());
        }
        Some(Bounds { frames, faults, log_frames, log_faults })
    }
}

/// Smallest and largest value, as floats; None for no value.
fn span(values: impl Iterator<Item = u64>) -> Option<(f64, f64)> {
    values.fold(None, |span, value| {
        let value = value as f64;
        Some(
            span.map_or((value, value), |(low, high): (f64, f64)| {
                (low.min(value), high.max(value))
            }),
        )
    })
}

/// Decides the scale of one axis and pads its range so no point sits on the frame.
/// Log scale needs a positive floor: zero is drawn at 1.
fn axis((low, high): (f64, f64), log_span: f64) -> (bool, Range<f64>) {
    let floor = low.max(1.0);
    if high / floor > log_span {
        (true, floor / 1.25..high * 1.25)
    } else {
        let pad = ((high - low) * 0.05).max(1.0);
        (false, (low - pad).max(0.0)..high + pad)
    }
}

/// Picks the coordinate types for the bounds' scales; the chart is drawn by [`chart`].
fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    series: &[Series],
    bounds: &Bounds,
) -> Result<(), PlotError> {
    use plotters::coord::combinators::IntoLogRange;
    let (frames, faults) = (bounds.frames.clone(), bounds.faults.clone());
    match (bounds.log_frames, bounds.log_faults) {
        (false, false) => chart(root, (title, series, bounds), frames, faults),
        (false, true) => chart(root, (title, series, bounds), frames, faults.log_scale()),
        // Base 2: frame counts are usually powers of two, and then each is labelled.
        (true, false) => chart(root, (title, series, bounds), frames.log_scale().base(2.0), faults),
        (true, true) => {
            chart(root, (title, series, bounds), frames.log_scale().base(2.0), faults.log_scale())
        }
    }
}

/// Draws the whole picture: caption, mesh with labelled axes, curves, legend.
fn chart<DB, X, Y>(
    root: &DrawingArea<DB, Shift>,
    (title, series, bounds): (&str, &[Series], &Bounds),
    frames: X,
    faults: Y,
) -> Result<(), PlotError>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    root.fill(&WHITE).map_err(drawing)?;
    let log_faults = bounds.log_faults;
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 26))
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(80)
        .build_cartesian_2d(frames, faults)
        .map_err(drawing)?;
    chart
        .configure_mesh()
        .x_labels(12)
        .y_labels(if log_faults { fault_labels(&bounds.faults) } else { 12 })
        .x_desc("frames")
        .y_desc("faults")
        .x_label_formatter(&|frames| count_label(*frames))
        .y_label_formatter(&|faults| {
            if log_faults && !is_125(*faults) { String::new() } else { count_label(*faults) }
        })
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 19))
        .bold_line_style(BLACK.mix(0.2))
        .light_line_style(BLACK.mix(0.05))
        .draw()
        .map_err(drawing)?;
    let floor = chart.y_range().start;
    let mut colours = COLOURS.iter().cycle();
    for one in series {
        let points: Vec<(f64, f64)> = curve(one).map(|(x, y)| (x, y.max(floor))).collect();
        if one.policy == OPT {
            draw_lower_bound(&mut chart, &one.policy, points, floor)?;
        } else if let Some(colour) = colours.next() {
            draw_curve(&mut chart, &one.policy, points, *colour)?;
        }
    }
    chart
        .configure_series_labels()
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(drawing)?;
    root.present().map_err(drawing)
}

type Chart<'a, DB, X, Y> = ChartContext<'a, DB, Cartesian2d<X, Y>>;

/// A policy's curve: a coloured line with a dot at each measured point.
fn draw_curve<DB, X, Y>(
    chart: &mut Chart<'_, DB, X, Y>,
    policy: &str,
    points: Vec<(f64, f64)>,
    colour: RGBColor,
) -> Result<(), PlotError>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let style = colour.stroke_width(2);
    chart
        .draw_series(LineSeries::new(points.iter().copied(), style))
        .map_err(drawing)?
        .label(policy)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
    let dots = points.into_iter().map(|point| Circle::new(point, 3, colour.filled()));
    chart.draw_series(dots).map_err(drawing)?;
    Ok(())
}

/// OPT: no policy can fault less, so the region under it is shaded as unreachable and
/// the curve itself is a thick black dashed line.
fn draw_lower_bound<DB, X, Y>(
    chart: &mut Chart<'_, DB, X, Y>,
    policy: &str,
    points: Vec<(f64, f64)>,
    floor: f64,
) -> Result<(), PlotError>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let shade = BLACK.mix(0.08).filled();
    chart.draw_series(AreaSeries::new(points.iter().copied(), floor, shade)).map_err(drawing)?;
    let style = BLACK.stroke_width(3);
    let dashed = DashedLineSeries::new(points.iter().copied(), 10, 6, style);
    chart
        .draw_series(dashed)
        .map_err(drawing)?
        .label(format!("{policy} (lower bound)"))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
    Ok(())
}

/// How many labels to ask of a log fault axis: enough that plotters marks every multiple
/// 1..9 of each power of ten (log paper); [`is_125`] then keeps only 1, 2 and 5 labelled,
/// as powers of ten alone leave a two-decade axis with two labels.
fn fault_labels(faults: &Range<f64>) -> usize {
    let decades = (faults.end / faults.start).log10().floor().max(1.0) as usize;
    10 * decades + 1
}

/// Whether a value's leading digit is 1, 2 or 5.
fn is_125(value: f64) -> bool {
    if value <= 0.0 {
        return false;
    }
    let scale = 10f64.powf(value.log10().floor());
    matches!((value / scale).round() as u64, 1 | 2 | 5 | 10)
}

/// A series' points in frame order, as plot coordinates.
fn curve(series: &Series) -> impl Iterator<Item = (f64, f64)> {
    let mut points = series.points.clone();
    points.sort_unstable();
    points.into_iter().map(|(frames, faults)| (frames as f64, faults as f64))
}

/// Axis labels: whole numbers, with k and M so that log axes stay short.
fn count_label(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1e6 {
        trimmed(value / 1e6, "M")
    } else if magnitude >= 1e4 {
        trimmed(value / 1e3, "k")
    } else if magnitude >= 10.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// `2.5M`, but `3M` rather than `3.0M`.
fn trimmed(value: f64, suffix: &str) -> String {
    let text = format!("{value:.1}");
    format!("{}{suffix}", text.strip_suffix(".0").unwrap_or(&text))
}

fn drawing<E: std::error::Error + Send + Sync>(error: DrawingAreaErrorKind<E>) -> PlotError {
    PlotError::Draw(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Curves shaped like a real replay's: OPT below LRU below FIFO, spanning 3 decades.
    fn curves() -> Vec<Series> {
        let frames = [4u64, 8, 16, 32, 64, 128, 256];
        let curve = |policy: &str, scale: f64| Series {
            policy: policy.to_string(),
            points: frames
                .iter()
                .map(|&n| (n, (scale * 2e5 / (n * n) as f64) as u64 + 150))
                .collect(),
        };
        vec![curve("fifo", 1.6), curve("clock", 1.3), curve("lru", 1.2), curve(OPT, 1.0)]
    }

    fn written(name: &str, series: &[Series]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(name);
        plot(&path, "faults of /bin/true", series).expect("plot");
        (dir, path)
    }

    #[test]
    fn svg_names_every_policy() {
        let (_dir, path) = written("curve.svg", &curves());
        let svg = std::fs::read_to_string(&path).expect("svg");
        for policy in ["fifo", "clock", "lru", "opt (lower bound)", "frames", "faults"] {
            assert!(svg.contains(policy), "{policy} missing");
        }
    }

    #[test]
    fn png_is_a_png() {
        let (_dir, path) = written("curve.PNG", &curves());
        let png = std::fs::read(&path).expect("png");
        assert!(png.len() > 10_000, "only {} bytes", png.len());
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    }

    #[test]
    fn one_point_and_zero_faults_still_plot() {
        let series = [Series { policy: "fifo".into(), points: vec![(3, 0)] }];
        written("one.svg", &series);
        written("one.png", &series);
    }

    #[test]
    fn other_extensions_are_a_typed_error() {
        for name in ["curve.pdf", "curve", "curve.svg.txt"] {
            let result = plot(Path::new(name), "t", &curves());
            assert!(
                matches!(result, Err(PlotError::UnknownFormat(ref path)) if path == Path::new(name))
            );
        }
        assert!(!Path::new("curve.pdf").exists());
    }

    #[test]
    fn no_points_is_a_typed_error() {
        let empty = [Series { policy: "lru".into(), points: Vec::new() }];
        assert!(matches!(plot(Path::new("x.svg"), "t", &empty), Err(PlotError::NoData)));
        assert!(matches!(plot(Path::new("x.svg"), "t", &[]), Err(PlotError::NoData)));
    }

    #[test]
    fn an_unwritable_path_is_a_typed_error() {
        let result = plot(Path::new("/nonexistent/dir/curve.png"), "t", &curves());
        assert!(matches!(result, Err(PlotError::Draw(_))), "{result:?}");
    }

    #[test]
    fn log_scale_only_past_two_decades() {
        let series = |points: Vec<(u64, u64)>| [Series { policy: "fifo".into(), points }];
        let narrow = Bounds::of(&series(vec![(16, 100), (160, 10_000)])).expect("bounds");
        assert_eq!((narrow.log_frames, narrow.log_faults), (false, false));
        let wide = Bounds::of(&series(vec![(1, 0), (1024, 10_001)])).expect("bounds");
        assert_eq!((wide.log_frames, wide.log_faults), (true, true));
        assert!(wide.faults.start > 0.0);
    }

    #[test]
    fn log_labels_are_1_2_5() {
        let kept: Vec<f64> = [1.0, 2.0, 3.0, 5.0, 7.0, 20.0, 2999.9999, 5000.0, 90.0, 100.0]
            .into_iter()
            .filter(|value| is_125(*value))
            .collect();
        assert_eq!(kept, [1.0, 2.0, 5.0, 20.0, 5000.0, 100.0]);
    }

    #[test]
    fn count_labels() {
        let labels: Vec<String> =
            [0.0, 2.5, 64.0, 9999.0, 12_000.0, 2.5e6, 3e6].map(count_label).into();
        assert_eq!(labels, ["0", "2.5", "64", "9999", "12k", "2.5M", "3M"]);
    }

    /// Writes the sample curves to /tmp for a look; `cargo test ... -- --ignored sample`.
    #[test]
    #[ignore = "writes files for a person to look at"]
    fn sample_pictures() {
        plot(Path::new("/tmp/replay-sample.png"), "faults of /bin/true", &curves()).expect("png");
        plot(Path::new("/tmp/replay-sample.svg"), "faults of /bin/true", &curves()).expect("svg");
    }
}

//! The chart engine (plotters, headless, with an embedded DejaVu Sans font): line and scatter
//! charts built from [`Series`], drawn to PNG bytes that the writers put on disk atomically.
//! Charts consume records; they never compute dynamics. The charts of a run are in
//! [`run_charts`], those of a sweep in [`sweep_charts`].

pub mod run_charts;
pub mod sweep_charts;

use std::path::Path;
use std::sync::Once;

use image::ImageEncoder;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::record::Track;
use crate::{Error, Result};

static FONT: Once = Once::new();

/// Registers the embedded font as "sans-serif" (once per process).
pub fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../fonts/DejaVuSans.ttf");
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

/// Colour of a track.
pub fn track_color(t: Track) -> RGBColor {
    match t {
        Track::Network => RGBColor(31, 119, 180),
        Track::Linearized | Track::LinearizedAvg => RGBColor(255, 127, 14),
        Track::KernelAnalytic => RGBColor(44, 160, 44),
        Track::KernelEmpirical | Track::KernelEmpiricalAvg => RGBColor(214, 39, 40),
    }
}

/// A categorical palette.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// How a series is drawn (and its legend key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stroke {
    /// A solid line.
    Solid,
    /// A dashed line.
    Dashed,
    /// Markers only.
    Markers,
}

/// One line (or marker set) of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points (non-finite ones, and non-positive ones on a log axis, are skipped).
    pub points: Vec<(f64, f64)>,
    /// Colour.
    pub color: RGBColor,
    /// Line style.
    pub style: Stroke,
    /// Line width in pixels.
    pub width: u32,
}

impl Series {
    /// A solid line.
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>, color: RGBColor) -> Self {
        Series {
            label: label.into(),
            points,
            color,
            style: Stroke::Solid,
            width: 2,
        }
    }

    /// Drawn dashed.
    pub fn dashed(mut self) -> Self {
        self.style = Stroke::Dashed;
        self
    }

    /// Drawn as markers only.
    pub fn markers(mut self) -> Self {
        self.style = Stroke::Markers;
        self
    }

    /// Dashed when `yes`.
    pub fn dashed_if(self, yes: bool) -> Self {
        if yes {
            self.dashed()
        } else {
            self
        }
    }
}

/// A line chart.
#[derive(Debug, Clone)]
pub struct LineChart {
    /// Title.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// Log-scale y.
    pub log_y: bool,
    /// Log-scale x.
    pub log_x: bool,
    /// Lines.
    pub series: Vec<Series>,
    /// Horizontal reference lines (value, label).
    pub hlines: Vec<(f64, String)>,
}

impl LineChart {
    /// An empty chart with linear axes.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        LineChart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_y: false,
            log_x: false,
            series: Vec::new(),
            hlines: Vec::new(),
        }
    }

    /// Log-scale y.
    pub fn log_y(mut self) -> Self {
        self.log_y = true;
        self
    }

    /// Log-scale x.
    pub fn log_x(mut self) -> Self {
        self.log_x = true;
        self
    }

    /// With these series.
    pub fn with_series(mut self, series: Vec<Series>) -> Self {
        self.series = series;
        self
    }

    /// With a horizontal reference line.
    pub fn with_hline(mut self, value: f64, label: impl Into<String>) -> Self {
        self.hlines.push((value, label.into()));
        self
    }
}

/// The legend key of a dashed line: two dashes at `(x, y)`.
macro_rules! dashed_key {
    ($x:expr, $y:expr, $style:expr) => {
        EmptyElement::at(($x, $y))
            + PathElement::new(vec![(0, 0), (8, 0)], $style)
            + PathElement::new(vec![(12, 0), (20, 0)], $style)
    };
}

/// The drawing area of a PNG canvas.
pub type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Draws on a white `width × height` canvas and encodes it as PNG bytes; `path` names the
/// figure in errors.
pub fn render_png(
    path: &Path,
    (width, height): (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> std::result::Result<(), String>,
) -> Result<Vec<u8>> {
    register_font();
    let err = |message: String| Error::Render {
        path: path.to_path_buf(),
        message,
    };
    let mut buffer = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        draw(&root).map_err(err)?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&buffer, width, height, image::ColorType::Rgb8)
        .map_err(|e| err(e.to_string()))?;
    Ok(png)
}

/// A line chart as PNG bytes (960 × 640).
pub fn line_chart_png(path: &Path, spec: &LineChart) -> Result<Vec<u8>> {
    render_png(path, (960, 640), |area| draw_line_chart(area, spec))
}

fn usable(v: (f64, f64), log_x: bool, log_y: bool) -> bool {
    // Values beyond ±1e300 (a diverged track) are left off the chart: plotters cannot place
    // ticks on an axis that reaches infinity.
    let ok = |x: f64, log: bool| x.is_finite() && x.abs() < 1e300 && (!log || x > 1e-300);
    ok(v.0, log_x) && ok(v.1, log_y)
}

/// Axis range of the values, padded; log ranges span at most 30 decades (the top ones).
fn range(vals: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals.filter(|v| v.is_finite() && v.abs() < 1e300 && (!log || *v > 1e-300)) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return if log { (0.1, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        let lo = lo.max(hi * 1e-30);
        if hi <= lo * 1.0001 {
            (lo / 2.0, hi * 2.0)
        } else {
            (lo / 1.3, hi * 1.3)
        }
    } else if hi - lo < 1e-300 {
        (lo - 0.5 * lo.abs().max(1.0), hi + 0.5 * hi.abs().max(1.0))
    } else {
        let pad = 0.05 * (hi - lo);
        (lo - pad, hi + pad)
    }
}

/// Draws a line chart on an area.
pub fn draw_line_chart(area: &Area<'_>, spec: &LineChart) -> std::result::Result<(), String> {
    let pts = || {
        spec.series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|&p| usable(p, spec.log_x, spec.log_y))
    };
    let (x0, x1) = range(pts().map(|p| p.0), spec.log_x);
    let (y0, y1) = range(
        pts().map(|p| p.1).chain(
            spec.hlines
                .iter()
                .map(|h| h.0)
                .filter(|v| v.is_finite() && (!spec.log_y || *v > 0.0)),
        ),
        spec.log_y,
    );
    // Scatter-only charts (few points) get headroom at the top for the legend.
    let (x0, x1, y1) = if spec.series.iter().all(|s| s.style == Stroke::Markers) {
        let (x0, x1) = if spec.log_x {
            (x0 / 1.5, x1 * 1.5)
        } else {
            (x0 - 0.1 * (x1 - x0), x1 + 0.1 * (x1 - x0))
        };
        (
            x0,
            x1,
            if spec.log_y {
                y1 * (y1 / y0).powf(0.6)
            } else {
                y1 + 0.6 * (y1 - y0)
            },
        )
    } else {
        (x0, x1, y1)
    };
    match (spec.log_x, spec.log_y) {
        (false, false) => draw_on(area, spec, x0..x1, y0..y1),
        (false, true) => draw_on(area, spec, x0..x1, (y0..y1).log_scale()),
        (true, false) => draw_on(area, spec, (x0..x1).log_scale(), y0..y1),
        (true, true) => draw_on(area, spec, (x0..x1).log_scale(), (y0..y1).log_scale()),
    }
}

/// Draws axes, series, reference lines and the legend. (One function of ~100 lines: the chart
/// context's type is generic over both axis kinds, so helpers would have to spell out plotters'
/// full coordinate types.)
fn draw_on<XR, YR>(
    area: &Area<'_>,
    spec: &LineChart,
    xr: XR,
    yr: YR,
) -> std::result::Result<(), String>
where
    XR: AsRangedCoord<Value = f64>,
    YR: AsRangedCoord<Value = f64>,
    XR::CoordDescType: ValueFormatter<f64>,
    YR::CoordDescType: ValueFormatter<f64>,
{
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let mut chart = ChartBuilder::on(area)
        .caption(&spec.title, ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(xr, yr)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(&spec.x_label)
        .y_desc(&spec.y_label)
        .x_labels(8)
        .y_labels(8)
        .x_label_formatter(&|v| tick_label(*v))
        .y_label_formatter(&|v| tick_label(*v))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .draw()
        .map_err(e)?;
    let (log_x, log_y) = (spec.log_x, spec.log_y);
    for s in &spec.series {
        let points: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|&p| usable(p, log_x, log_y))
            .collect();
        if points.is_empty() {
            continue;
        }
        let color = s.color;
        match s.style {
            Stroke::Markers => {
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                    .map_err(e)?
                    .label(&s.label)
                    .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
            }
            Stroke::Dashed => {
                let style = ShapeStyle::from(&color).stroke_width(s.width);
                chart
                    .draw_series(DashedLineSeries::new(points, 8, 5, style))
                    .map_err(e)?
                    .label(&s.label)
                    .legend(move |(x, y)| dashed_key!(x, y, style));
            }
            Stroke::Solid => {
                let style = ShapeStyle::from(&color).stroke_width(s.width);
                chart
                    .draw_series(LineSeries::new(points, style))
                    .map_err(e)?
                    .label(&s.label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            }
        }
    }
    for (v, label) in &spec.hlines {
        if !v.is_finite() || (log_y && *v <= 0.0) {
            continue;
        }
        let color = BLACK.mix(0.7);
        let style = color.stroke_width(2);
        let xs: Vec<f64> = spec
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .filter(|x| x.is_finite() && (!log_x || *x > 0.0))
            .collect();
        let (a, b) = range(xs.into_iter(), log_x);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(a, *v), (b, *v)],
                4,
                4,
                color.stroke_width(2),
            ))
            .map_err(e)?
            .label(label)
            .legend(move |(x, y)| dashed_key!(x, y, style));
    }
    let corner = emptiest_corner(spec, chart.x_range(), chart.y_range());
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(corner)
        .draw()
        .map_err(e)?;
    Ok(())
}

/// A compact tick label: plain for moderate magnitudes, scientific otherwise.
pub fn tick_label(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.0e}")
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The corner of the plot holding the fewest data points, for the legend.
fn emptiest_corner(
    spec: &LineChart,
    xr: std::ops::Range<f64>,
    yr: std::ops::Range<f64>,
) -> SeriesLabelPosition {
    let frac = |v: f64, r: &std::ops::Range<f64>, log: bool| {
        if log {
            (v.ln() - r.start.ln()) / (r.end.ln() - r.start.ln())
        } else {
            (v - r.start) / (r.end - r.start)
        }
    };
    // upper right, upper left, lower right, lower left
    let mut counts = [0usize; 4];
    for p in spec
        .series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|&p| usable(p, spec.log_x, spec.log_y))
    {
        let (x, y) = (frac(p.0, &xr, spec.log_x), frac(p.1, &yr, spec.log_y));
        let (right, left, upper, lower) = (x > 0.5, x < 0.5, y > 0.45, y < 0.55);
        counts[0] += usize::from(right && upper);
        counts[1] += usize::from(left && upper);
        counts[2] += usize::from(right && lower);
        counts[3] += usize::from(left && lower);
    }
    let best = (0..4).min_by_key(|&i| counts[i]).unwrap_or(0);
    match best {
        0 => SeriesLabelPosition::UpperRight,
        1 => SeriesLabelPosition::UpperLeft,
        2 => SeriesLabelPosition::LowerRight,
        _ => SeriesLabelPosition::LowerLeft,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_compact() {
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(250.0), "250");
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(1.5e-5), "2e-5");
        assert_eq!(tick_label(3.0), "3");
        assert_eq!(tick_label(-0.125), "-0.125");
    }

    #[test]
    fn a_chart_renders_to_a_png() {
        let chart = LineChart::new("t", "x", "y")
            .log_y()
            .with_series(vec![
                Series::line("a", vec![(0.0, 1.0), (1.0, 0.1)], PALETTE[0]),
                Series::line("b", vec![(0.0, 2.0), (1.0, f64::NAN)], PALETTE[1]).dashed(),
            ])
            .with_hline(0.5, "ref");
        let png = line_chart_png(Path::new("t.png"), &chart).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }
}

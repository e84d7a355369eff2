//! PNG plots of a run (plotters, headless, with an embedded DejaVu Sans font). Plots consume the
//! [`RunRecord`]; they never compute dynamics.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use crate::record::{RunRecord, Track};
use crate::{Error, Result};

static FONT: Once = Once::new();

/// Registers the embedded font as "sans-serif" (once per process).
pub fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("fonts/DejaVuSans.ttf");
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

fn perr(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(path, std::io::Error::other(format!("plotting failed: {e}")))
}

/// Colour of a track.
pub fn track_color(t: Track) -> RGBColor {
    match t {
        Track::Network => RGBColor(31, 119, 180),
        Track::Linearized => RGBColor(255, 127, 14),
        Track::KernelAnalytic => RGBColor(44, 160, 44),
        Track::KernelEmpirical => RGBColor(214, 39, 40),
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

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points (non-finite ones, and non-positive ones on a log axis, are skipped).
    pub points: Vec<(f64, f64)>,
    /// Colour.
    pub color: RGBColor,
    /// Dashed line.
    pub dashed: bool,
    /// Draw markers only (no line).
    pub markers: bool,
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

fn tmp_png(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    path.with_file_name(format!(".tmp-{}-{name}", std::process::id()))
}

/// Draws a line chart into `path` (atomically: a temporary file renamed into place).
pub fn line_chart(path: &Path, spec: &LineChart) -> Result<()> {
    register_font();
    let tmp = tmp_png(path);
    {
        let root = BitMapBackend::new(&tmp, (960, 640)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| perr(path, e))?;
        draw_line_chart(&root, spec).map_err(|e| perr(path, e))?;
        root.present().map_err(|e| perr(path, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Draws a line chart on an area.
pub fn draw_line_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    spec: &LineChart,
) -> std::result::Result<(), String> {
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
    let (x0, x1, y1) = if spec.series.iter().all(|s| s.markers) {
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

fn draw_on<DB, XR, YR>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    spec: &LineChart,
    xr: XR,
    yr: YR,
) -> std::result::Result<(), String>
where
    DB: DrawingBackend,
    XR: AsRangedCoord<Value = f64>,
    YR: AsRangedCoord<Value = f64>,
    XR::CoordDescType: ValueFormatter<f64>,
    YR::CoordDescType: ValueFormatter<f64>,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
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
        let style = ShapeStyle::from(&s.color).stroke_width(2);
        let color = s.color;
        if s.markers {
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(e)?
                .label(&s.label)
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
        } else if s.dashed {
            chart
                .draw_series(DashedLineSeries::new(points, 8, 5, style))
                .map_err(e)?
                .label(&s.label)
                .legend(move |(x, y)| {
                    PathElement::new(
                        vec![(x, y), (x + 8, y), (x + 12, y), (x + 20, y)],
                        color.stroke_width(1),
                    )
                });
        } else {
            chart
                .draw_series(LineSeries::new(points, style))
                .map_err(e)?
                .label(&s.label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
    }
    for (v, label) in &spec.hlines {
        if !v.is_finite() || (log_y && *v <= 0.0) {
            continue;
        }
        let color = BLACK.mix(0.7);
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
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
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
fn tick_label(v: f64) -> String {
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

fn steps(r: &RunRecord) -> Vec<f64> {
    r.checkpoints.iter().map(|c| c.step as f64).collect()
}

/// `loss.png`.
pub fn loss_chart(r: &RunRecord) -> LineChart {
    let x = steps(r);
    let mut series = Vec::new();
    for (i, &t) in r.tracks.iter().enumerate() {
        series.push(Series {
            label: format!("{} train", t.name()),
            points: x
                .iter()
                .zip(&r.checkpoints)
                .map(|(&s, c)| (s, c.train_loss[i]))
                .collect(),
            color: track_color(t),
            dashed: false,
            markers: false,
        });
        if r.checkpoints.iter().any(|c| c.test_loss[i].is_some()) {
            series.push(Series {
                label: format!("{} test", t.name()),
                points: x
                    .iter()
                    .zip(&r.checkpoints)
                    .map(|(&s, c)| (s, c.test_loss[i].unwrap_or(f64::NAN)))
                    .collect(),
                color: track_color(t),
                dashed: true,
                markers: false,
            });
        }
    }
    LineChart {
        title: format!("{}: loss (½·mean squared error)", r.name),
        x_label: "step".into(),
        y_label: "loss".into(),
        log_y: true,
        log_x: false,
        series,
        hlines: vec![],
    }
}

/// `divergence.png`.
pub fn divergence_chart(r: &RunRecord) -> LineChart {
    let x = steps(r);
    let mut series = Vec::new();
    for (i, (a, b)) in r.pairs.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        series.push(Series {
            label: format!("{} vs {} train", a.name(), b.name()),
            points: x
                .iter()
                .zip(&r.checkpoints)
                .map(|(&s, c)| (s, c.rmse_train[i]))
                .collect(),
            color,
            dashed: false,
            markers: false,
        });
        if r.checkpoints.iter().any(|c| c.rmse_test[i].is_some()) {
            series.push(Series {
                label: format!("{} vs {} test", a.name(), b.name()),
                points: x
                    .iter()
                    .zip(&r.checkpoints)
                    .map(|(&s, c)| (s, c.rmse_test[i].unwrap_or(f64::NAN)))
                    .collect(),
                color,
                dashed: true,
                markers: false,
            });
        }
    }
    LineChart {
        title: format!("{}: prediction divergence between tracks", r.name),
        x_label: "step".into(),
        y_label: "RMSE between predictions".into(),
        log_y: true,
        log_x: false,
        series,
        hlines: vec![],
    }
}

fn kernel_points(
    r: &RunRecord,
    f: impl Fn(&crate::record::KernelCheckpoint) -> f64,
) -> Vec<(f64, f64)> {
    r.checkpoints
        .iter()
        .filter_map(|c| c.kernel.as_ref().map(|k| (c.step as f64, f(k))))
        .collect()
}

/// `kernel_drift.png`.
pub fn kernel_drift_chart(r: &RunRecord) -> LineChart {
    let mut series = vec![
        Series {
            label: "relative NTK drift ‖Θt−Θ0‖/‖Θ0‖".into(),
            points: kernel_points(r, |k| k.ntk_rel_drift),
            color: BLACK,
            dashed: false,
            markers: false,
        },
        Series {
            label: "kernel distance 1−cos(Θt,Θ0)".into(),
            points: kernel_points(r, |k| k.ntk_kernel_distance),
            color: RGBColor(127, 127, 127),
            dashed: true,
            markers: false,
        },
    ];
    for l in 0..r.n_layers {
        series.push(Series {
            label: format!("drift of layer {l}'s term"),
            points: kernel_points(r, |k| k.ntk_rel_drift_per_layer[l]),
            color: PALETTE[l % PALETTE.len()],
            dashed: false,
            markers: false,
        });
    }
    LineChart {
        title: format!(
            "{}: empirical NTK drift on {} probe points",
            r.name, r.probe_size
        ),
        x_label: "step".into(),
        y_label: "relative change".into(),
        log_y: true,
        log_x: false,
        series,
        hlines: vec![],
    }
}

/// `param_drift.png`.
pub fn param_drift_chart(r: &RunRecord) -> LineChart {
    let mut series = vec![Series {
        label: "all parameters ‖θt−θ0‖/‖θ0‖".into(),
        points: kernel_points(r, |k| k.param_rel_change),
        color: BLACK,
        dashed: false,
        markers: false,
    }];
    for l in 0..r.n_layers {
        series.push(Series {
            label: format!("layer {l}"),
            points: kernel_points(r, |k| k.param_rel_change_per_layer[l]),
            color: PALETTE[l % PALETTE.len()],
            dashed: false,
            markers: false,
        });
    }
    LineChart {
        title: format!("{}: relative parameter change", r.name),
        x_label: "step".into(),
        y_label: "‖θt−θ0‖/‖θ0‖".into(),
        log_y: true,
        log_x: false,
        series,
        hlines: vec![],
    }
}

/// `predictions.png`: functions over the 1-D test grid, else predicted-vs-target scatter.
pub fn predictions_chart(r: &RunRecord) -> LineChart {
    let k = r.n_outputs;
    if r.input_dim == 1 && k == 1 && !r.x_test.is_empty() {
        let mut order: Vec<usize> = (0..r.x_test.len()).collect();
        order.sort_by(|&a, &b| r.x_test[a].total_cmp(&r.x_test[b]));
        let mut series = vec![Series {
            label: "target (test)".into(),
            points: order.iter().map(|&i| (r.x_test[i], r.y_test[i])).collect(),
            color: RGBColor(160, 160, 160),
            dashed: true,
            markers: false,
        }];
        for o in &r.outputs {
            series.push(Series {
                label: o.track.name().into(),
                points: order.iter().map(|&i| (r.x_test[i], o.test[i])).collect(),
                color: track_color(o.track),
                dashed: false,
                markers: false,
            });
        }
        series.push(Series {
            label: "training points".into(),
            points: r
                .x_train
                .iter()
                .zip(&r.y_train)
                .map(|(&x, &y)| (x, y))
                .collect(),
            color: BLACK,
            dashed: false,
            markers: true,
        });
        LineChart {
            title: format!("{}: learned functions at the final step", r.name),
            x_label: r
                .feature_names
                .first()
                .cloned()
                .unwrap_or_else(|| "x".into()),
            y_label: r
                .target_names
                .first()
                .cloned()
                .unwrap_or_else(|| "y".into()),
            log_y: false,
            log_x: false,
            series,
            hlines: vec![],
        }
    } else {
        let (y, split) = if r.x_test.is_empty() {
            (&r.y_train, "train")
        } else {
            (&r.y_test, "test")
        };
        let series = r
            .outputs
            .iter()
            .map(|o| {
                let p = if split == "train" { &o.train } else { &o.test };
                Series {
                    label: o.track.name().into(),
                    points: y.iter().zip(p).map(|(&a, &b)| (a, b)).collect(),
                    color: track_color(o.track),
                    dashed: false,
                    markers: true,
                }
            })
            .collect();
        LineChart {
            title: format!("{}: predicted vs target ({split})", r.name),
            x_label: "target".into(),
            y_label: "prediction".into(),
            log_y: false,
            log_x: false,
            series,
            hlines: vec![],
        }
    }
}

/// `spectrum.png`: eigenvalues of Θ0, Θ_final, Θ∞ with the critical eigenvalue 2·|Y|/η.
pub fn spectrum_chart(r: &RunRecord) -> LineChart {
    let idx = |v: &[f64]| {
        v.iter()
            .enumerate()
            .map(|(i, &e)| ((i + 1) as f64, e))
            .collect::<Vec<_>>()
    };
    let n_targets = r.y_train.len() as f64;
    LineChart {
        title: format!("{}: NTK spectra on the training set", r.name),
        x_label: "eigenvalue index".into(),
        y_label: "eigenvalue".into(),
        log_y: true,
        log_x: true,
        series: vec![
            Series {
                label: "Θ0 (empirical, init)".into(),
                points: idx(&r.spectrum_init),
                color: track_color(Track::Linearized),
                dashed: false,
                markers: false,
            },
            Series {
                label: "Θ final (empirical)".into(),
                points: idx(&r.spectrum_final),
                color: track_color(Track::Network),
                dashed: false,
                markers: false,
            },
            Series {
                label: "Θ∞ (analytic)".into(),
                points: idx(&r.spectrum_analytic),
                color: track_color(Track::KernelAnalytic),
                dashed: true,
                markers: false,
            },
        ],
        hlines: vec![(
            2.0 * n_targets / r.learning_rate,
            format!("2·N·K/η: GD unstable above (η = {:.4})", r.learning_rate),
        )],
    }
}

/// `kernels.png`: heat maps of Θ0, Θ_final and Θ_final − Θ0 on the probe set.
pub fn kernels_png(path: &Path, r: &RunRecord) -> Result<()> {
    register_font();
    let p = r.probe_size;
    let diff: Vec<f64> = r
        .probe_ntk_final
        .iter()
        .zip(&r.probe_ntk_init)
        .map(|(a, b)| a - b)
        .collect();
    let tmp = tmp_png(path);
    {
        let root = BitMapBackend::new(&tmp, (1500, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| perr(path, e))?;
        let (title, body) = root.split_vertically(50);
        title
            .titled(
                &format!("{}: empirical NTK on {p} probe points", r.name),
                ("sans-serif", 24),
            )
            .map_err(|e| perr(path, e))?;
        let panels = body.split_evenly((1, 3));
        let shared = r
            .probe_ntk_init
            .iter()
            .chain(&r.probe_ntk_final)
            .fold(0.0f64, |m, v| m.max(v.abs()));
        let dmax = diff.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (panel, (name, data, scale)) in panels.iter().zip([
            ("Θ0", &r.probe_ntk_init, shared),
            ("Θ final", &r.probe_ntk_final, shared),
            ("Θ final − Θ0", &diff, dmax),
        ]) {
            heat_map(
                panel,
                &format!("{name} (|max| = {scale:.3e})"),
                data,
                p,
                scale,
            )
            .map_err(|e| perr(path, e))?;
        }
        root.present().map_err(|e| perr(path, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

fn heat_map<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    data: &[f64],
    p: usize,
    scale: f64,
) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d(0..p, 0..p)
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(e)?;
    let scale = if scale > 0.0 { scale } else { 1.0 };
    chart
        .draw_series(
            (0..p)
                .flat_map(|i| (0..p).map(move |j| (i, j)))
                .map(|(i, j)| {
                    let v = (data[i * p + j] / scale).clamp(-1.0, 1.0);
                    // diverging blue–white–red map
                    let c = if v >= 0.0 {
                        RGBColor(255, (255.0 * (1.0 - v)) as u8, (255.0 * (1.0 - v)) as u8)
                    } else {
                        RGBColor((255.0 * (1.0 + v)) as u8, (255.0 * (1.0 + v)) as u8, 255)
                    };
                    Rectangle::new([(j, p - 1 - i), (j + 1, p - i)], c.filled())
                }),
        )
        .map_err(e)?;
    Ok(())
}

/// Writes every plot of a run into `dir`; returns the file names.
pub fn write_all(dir: &Path, r: &RunRecord) -> Result<Vec<String>> {
    let charts = [
        ("loss.png", loss_chart(r)),
        ("divergence.png", divergence_chart(r)),
        ("kernel_drift.png", kernel_drift_chart(r)),
        ("param_drift.png", param_drift_chart(r)),
        ("predictions.png", predictions_chart(r)),
        ("spectrum.png", spectrum_chart(r)),
    ];
    let mut names = Vec::new();
    for (name, chart) in charts {
        line_chart(&dir.join(name), &chart)?;
        names.push(name.to_string());
    }
    kernels_png(&dir.join("kernels.png"), r)?;
    names.push("kernels.png".into());
    line_chart(&dir.join("sensitivity.png"), &sensitivity_chart(r))?;
    names.push("sensitivity.png".into());
    if r.classes.is_some() {
        line_chart(&dir.join("accuracy.png"), &accuracy_chart(r))?;
        names.push("accuracy.png".into());
        confusion_png(&dir.join("confusion.png"), r)?;
        names.push("confusion.png".into());
    }
    Ok(names)
}

/// `accuracy.png`: train and test accuracy of every track against step.
pub fn accuracy_chart(r: &RunRecord) -> LineChart {
    let mut series = Vec::new();
    for (i, &t) in r.tracks.iter().enumerate() {
        let pts = |test: bool| -> Vec<(f64, f64)> {
            r.checkpoints
                .iter()
                .filter_map(|c| {
                    c.classification.as_ref().map(|cl| {
                        (
                            c.step as f64,
                            if test {
                                cl.test_accuracy[i].unwrap_or(f64::NAN)
                            } else {
                                cl.train_accuracy[i]
                            },
                        )
                    })
                })
                .collect()
        };
        series.push(Series {
            label: format!("{} train", t.name()),
            points: pts(false),
            color: track_color(t),
            dashed: false,
            markers: false,
        });
        if !r.y_test.is_empty() {
            series.push(Series {
                label: format!("{} test", t.name()),
                points: pts(true),
                color: track_color(t),
                dashed: true,
                markers: false,
            });
        }
    }
    LineChart {
        title: format!("{}: accuracy", r.name),
        x_label: "step".into(),
        y_label: "accuracy".into(),
        log_y: false,
        log_x: false,
        series,
        hlines: vec![],
    }
}

/// `confusion.png`: test (or train) confusion matrices of every track at the final step.
pub fn confusion_png(path: &Path, r: &RunRecord) -> Result<()> {
    register_font();
    let k = r.n_outputs;
    let (targets, test) = if r.y_test.is_empty() {
        (&r.y_train, false)
    } else {
        (&r.y_test, true)
    };
    let tmp = tmp_png(path);
    {
        let n = r.outputs.len();
        let root = BitMapBackend::new(&tmp, (480 * n as u32, 540)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| perr(path, e))?;
        let (title, body) = root.split_vertically(50);
        title
            .titled(
                &format!(
                    "{}: confusion matrices ({}, rows = true class)",
                    r.name,
                    if test { "test" } else { "train" }
                ),
                ("sans-serif", 24),
            )
            .map_err(|e| perr(path, e))?;
        for (panel, o) in body.split_evenly((1, n)).iter().zip(&r.outputs) {
            let m = crate::metrics::confusion(if test { &o.test } else { &o.train }, targets, k);
            let total: usize = m.iter().map(|row| row.iter().sum::<usize>()).sum();
            let correct: usize = (0..k).map(|i| m[i][i]).sum();
            let max = m.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
            let data: Vec<f64> = m.iter().flatten().map(|&c| c as f64 / max).collect();
            heat_map(
                panel,
                &format!(
                    "{} ({:.1} %)",
                    o.track.name(),
                    100.0 * correct as f64 / total.max(1) as f64
                ),
                &data,
                k,
                1.0,
            )
            .map_err(|e| perr(path, e))?;
        }
        root.present().map_err(|e| perr(path, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// `sensitivity.png`: mean input-Jacobian norm of the network and of its linearization.
pub fn sensitivity_chart(r: &RunRecord) -> LineChart {
    let pts = |i: usize| {
        r.checkpoints
            .iter()
            .map(|c| (c.step as f64, c.input_grad_norm[i]))
            .collect()
    };
    LineChart {
        title: format!(
            "{}: input sensitivity (mean ‖∂f/∂x‖ on test points)",
            r.name
        ),
        x_label: "step".into(),
        y_label: "‖∂f/∂x‖_F".into(),
        log_y: false,
        log_x: false,
        series: vec![
            Series {
                label: "network".into(),
                points: pts(0),
                color: track_color(Track::Network),
                dashed: false,
                markers: false,
            },
            Series {
                label: "linearized".into(),
                points: pts(1),
                color: track_color(Track::Linearized),
                dashed: true,
                markers: false,
            },
        ],
        hlines: vec![],
    }
}

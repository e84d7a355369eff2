//! What a line or scatter chart shows, independent of how it is drawn: [`Series`] (solid,
//! dashed or markers, with optional error bars and bands) and the [`LineChart`] that holds
//! them with its axes, reference lines and round-off floor. Drawn by [`super::line`], its
//! legend placed by [`super::legend`].

use plotters::prelude::RGBColor;

/// How a series is drawn (and its legend key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stroke {
    /// A solid line.
    Solid,
    /// A dashed line.
    Dashed,
    /// Markers only.
    Markers,
    /// A dotted line: another reading of the same series (e.g. t = ∞, or early stopped),
    /// never the test split, which is dashed.
    Dotted,
}

/// One line (or marker set) of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label (empty: no legend entry).
    pub label: String,
    /// Points (non-finite ones, and non-positive ones on a log axis, are skipped).
    pub points: Vec<(f64, f64)>,
    /// Colour.
    pub color: RGBColor,
    /// Line style.
    pub style: Stroke,
    /// Line width in pixels.
    pub width: u32,
    /// Vertical error bars `(x, low, high)` (drawn at markers).
    pub errors: Vec<(f64, f64, f64)>,
    /// A shaded band `(x, low, high)` behind the line.
    pub band: Vec<(f64, f64, f64)>,
    /// Markers drawn on a line's points too (a marker-only series always has dots).
    pub marker: Option<Marker>,
    /// Whether its points are samples of a measured curve (a line of fewer than
    /// [`SPARSE_POINTS`] of them gets dots on its points, so that a reader sees where it was
    /// measured), rather than a computed line such as a fit or a reference slope.
    pub sampled: bool,
    /// A legend entry only (no points): a key explaining a style that several series share.
    pub key_only: bool,
    /// The colour of a coinciding series drawn thin over this one and announced in its legend
    /// entry ("a ≡ b"): its key shows that thin line (or ring) too.
    pub overlay: Option<RGBColor>,
}

/// Lines sampled at fewer points than this get a dot on each point.
pub const SPARSE_POINTS: usize = 20;

/// A marker drawn on the points of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// A filled dot.
    Dot,
    /// An open ring.
    Ring,
    /// A diagonal cross (×), e.g. where a run diverged.
    Cross,
}

/// A shaded vertical strip of the plotting area behind the data, with a legend entry (e.g. the
/// range of learning rates where runs were in one phase).
#[derive(Debug, Clone)]
pub struct Region {
    /// Its x range.
    pub x: (f64, f64),
    /// Fill colour (drawn light).
    pub color: RGBColor,
    /// Legend label (empty: no entry).
    pub label: String,
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
            errors: Vec::new(),
            band: Vec::new(),
            marker: None,
            sampled: true,
            key_only: false,
            overlay: None,
        }
    }

    /// A legend entry alone, drawn in `style` (e.g. "dotted: biases" for every layer's bias
    /// curve).
    pub fn key(label: impl Into<String>, color: RGBColor, style: Stroke) -> Self {
        let mut s = Series::line(label, Vec::new(), color);
        s.style = style;
        s.key_only = true;
        s
    }

    /// A computed line (a fit, a reference slope): no dots however few its points.
    pub fn computed(mut self) -> Self {
        self.sampled = false;
        self
    }

    /// With markers on the line's points.
    pub fn with_marker(mut self, marker: Marker) -> Self {
        self.marker = Some(marker);
        self
    }

    /// With vertical error bars `(x, low, high)`.
    pub fn with_errors(mut self, errors: Vec<(f64, f64, f64)>) -> Self {
        self.errors = errors;
        self
    }

    /// With a shaded band `(x, low, high)`.
    pub fn with_band(mut self, band: Vec<(f64, f64, f64)>) -> Self {
        self.band = band;
        self
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

    /// Drawn as markers of this shape only.
    pub fn markers_of(mut self, marker: Marker) -> Self {
        self.style = Stroke::Markers;
        self.marker = Some(marker);
        self
    }

    /// With this line width in pixels.
    pub fn with_width(mut self, width: u32) -> Self {
        self.width = width;
        self
    }

    /// Drawn dotted.
    pub fn dotted(mut self) -> Self {
        self.style = Stroke::Dotted;
        self
    }

    /// Dotted when `yes`.
    pub fn dotted_if(self, yes: bool) -> Self {
        if yes {
            self.dotted()
        } else {
            self
        }
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
    /// A floor `(value, label)` on a log axis: smaller values are drawn on it and left out of
    /// the axis range (e.g. the f64 round-off level of differences between exact solutions).
    pub floor: Option<(f64, String)>,
    /// The x values labelled on a log x axis (empty: plotters' own choice, which labels only
    /// powers of ten).
    pub x_ticks: Vec<f64>,
    /// Shaded vertical strips behind the data.
    pub regions: Vec<Region>,
    /// A fixed y range `(low, high)` instead of the data's: values beyond it are clipped (the
    /// chart marks them itself, e.g. with crosses on the edge).
    pub y_range: Option<(f64, f64)>,
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
            floor: None,
            x_ticks: Vec::new(),
            regions: Vec::new(),
            y_range: None,
        }
    }

    /// Labels exactly these x values on a log x axis (e.g. the swept sizes).
    pub fn with_x_ticks(mut self, ticks: Vec<f64>) -> Self {
        self.x_ticks = ticks;
        self
    }

    /// With a shaded vertical strip (see [`Region`]).
    pub fn with_region(mut self, x: (f64, f64), color: RGBColor, label: impl Into<String>) -> Self {
        self.regions.push(Region {
            x,
            color,
            label: label.into(),
        });
        self
    }

    /// With a fixed y range (see [`LineChart::y_range`]).
    pub fn with_y_range(mut self, low: f64, high: f64) -> Self {
        self.y_range = Some((low, high));
        self
    }

    /// With a floor (see [`LineChart::floor`]).
    pub fn with_floor(mut self, value: f64, label: impl Into<String>) -> Self {
        self.floor = Some((value, label.into()));
        self
    }

    /// Series whose points coincide with an earlier series' (relative difference below
    /// `rtol`) are announced in one legend entry, "a ≡ b", and drawn as a thin overlay in
    /// their own colour and style (a line 1 px wide, or rings over dots), so that no line hides
    /// another unannounced and dashed still means the test split.
    pub fn mark_coinciding(mut self, rtol: f64) -> Self {
        for i in 1..self.series.len() {
            let found = (0..i).find(|&j| {
                !self.series[j].key_only && coincide(&self.series[i], &self.series[j], rtol)
            });
            let Some(j) = found else { continue };
            let label = std::mem::take(&mut self.series[i].label);
            let color = self.series[i].color;
            let first = &mut self.series[j];
            if !label.is_empty() {
                first.label = if first.label.is_empty() {
                    label
                } else {
                    format!("{} ≡ {label}", first.label)
                };
            }
            first.overlay = Some(color);
            let s = &mut self.series[i];
            s.sampled = false;
            if s.style == Stroke::Markers {
                s.marker = Some(Marker::Ring);
            } else {
                s.width = 1;
            }
        }
        self
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

/// Whether a point can be drawn on the axes (finite, inside ±1e300, positive on a log axis).
pub(super) fn usable(v: (f64, f64), log_x: bool, log_y: bool) -> bool {
    // Values beyond ±1e300 (a diverged track) are left off the chart: plotters cannot place
    // ticks on an axis that reaches infinity.
    let ok = |x: f64, log: bool| x.is_finite() && x.abs() < 1e300 && (!log || x > 1e-300);
    ok(v.0, log_x) && ok(v.1, log_y)
}

fn coincide(a: &Series, b: &Series, rtol: f64) -> bool {
    if a.points.len() != b.points.len() || a.points.is_empty() {
        return false;
    }
    let scale = b
        .points
        .iter()
        .map(|p| p.1.abs())
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    a.points.iter().zip(&b.points).all(|(p, q)| {
        p.0 == q.0 && p.1.is_finite() && q.1.is_finite() && (p.1 - q.1).abs() <= rtol * scale
    })
}

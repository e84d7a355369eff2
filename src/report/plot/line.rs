//! Line and scatter charts: [`Series`] (solid, dashed or markers, with optional error bars and
//! bands) on linear or log axes, reference lines, a round-off floor, and a legend whose key is
//! drawn in each series' own style. Drawn on any plotters backend (PNG and SVG).

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::chart::{usable, LineChart, Marker, Series, Stroke, SPARSE_POINTS};
use super::FONT;

/// The legend key of a dotted line: four dots at `(x, y)`.
macro_rules! dotted_key {
    ($x:expr, $y:expr, $style:expr) => {
        EmptyElement::at(($x, $y))
            + PathElement::new(vec![(0, 0), (2, 0)], $style)
            + PathElement::new(vec![(6, 0), (8, 0)], $style)
            + PathElement::new(vec![(12, 0), (14, 0)], $style)
            + PathElement::new(vec![(18, 0), (20, 0)], $style)
    };
}

/// The legend key of a dashed line: two dashes at `(x, y)`.
macro_rules! dashed_key {
    ($x:expr, $y:expr, $style:expr) => {
        EmptyElement::at(($x, $y))
            + PathElement::new(vec![(0, 0), (8, 0)], $style)
            + PathElement::new(vec![(12, 0), (20, 0)], $style)
    };
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

/// Labelled ticks of a log axis over `[lo, hi]`: powers of ten, with 2 and 5 times them when the
/// axis spans fewer than four decades, and finer steps (1, 1.5, 2, 3, 5, 7) when that still
/// gives fewer than three; over many decades every k-th power, at most about ten labels.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && lo.is_finite() && hi.is_finite()) {
        return Vec::new();
    }
    let (e0, e1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let within = |mults: &[f64], step: i32| -> Vec<f64> {
        (e0..=e1)
            .filter(|e| (e - e0) % step == 0)
            .flat_map(|e| mults.iter().map(move |m| m * 10f64.powi(e)))
            .filter(|v| *v >= lo * (1.0 - 1e-9) && *v <= hi * (1.0 + 1e-9))
            .collect()
    };
    let decades = (hi / lo).log10();
    if decades > 4.0 {
        let step = ((decades / 9.0).ceil() as i32).max(1);
        return within(&[1.0], step);
    }
    let coarse = within(&[1.0, 2.0, 5.0], 1);
    if coarse.len() >= 3 {
        return coarse;
    }
    let fine = within(&[1.0, 1.5, 2.0, 3.0, 5.0, 7.0], 1);
    if fine.len() >= 3 {
        return fine;
    }
    // Under about a factor of two: evenly spaced round values, as on a linear axis.
    let raw = (hi - lo) / 4.0;
    let p = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|st| (hi - lo) / st <= 6.0)
        .unwrap_or(10.0 * p);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// Draws a line chart on an area.
pub fn draw_line_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    spec: &LineChart,
) -> std::result::Result<(), String> {
    let floor = spec.floor.as_ref().map(|f| f.0);
    // Values below the floor (round-off) neither stretch the axis nor vanish: they are drawn
    // on its bottom edge, which is marked.
    let above = |y: f64| floor.is_none_or(|f| y >= f);
    let pts = || {
        spec.series
            .iter()
            .flat_map(|s| {
                s.points
                    .iter()
                    .copied()
                    .chain(s.errors.iter().flat_map(|e| [(e.0, e.1), (e.0, e.2)]))
                    .chain(s.band.iter().flat_map(|e| [(e.0, e.1), (e.0, e.2)]))
            })
            .filter(|&p| usable(p, spec.log_x, spec.log_y))
    };
    let (x0, x1) = range(pts().map(|p| p.0), spec.log_x);
    let (mut y0, mut y1) = range(
        pts().map(|p| p.1).filter(|&y| above(y)).chain(
            spec.hlines
                .iter()
                .map(|h| h.0)
                .filter(|v| v.is_finite() && (!spec.log_y || *v > 0.0)),
        ),
        spec.log_y,
    );
    if let Some((lo, hi)) = spec.y_range {
        y0 = lo;
        y1 = hi;
    }
    let clamped;
    let spec = match (floor, &spec.floor) {
        (Some(f), Some((_, label))) if spec.log_y => {
            y0 = y0.max(f).min(y1 / 10.0);
            clamped = on_bottom_edge(spec, f, y0, label);
            &clamped
        }
        _ => spec,
    };
    let (x0, x1, y1) = scatter_headroom(spec, (x0, x1), (y0, y1));
    let (width, height) = super::legend::plotting_size(area.dim_in_pixel());
    let (corner, y1) = super::legend::place(
        spec,
        super::legend::Frame {
            x: (x0, x1),
            y: (y0, y1),
            log_x: spec.log_x,
            log_y: spec.log_y,
            width,
            height,
        },
    );
    // Linear axes: a tick within round-off of zero relative to the axis span is zero.
    let zero_below = |log: bool, lo: f64, hi: f64| if log { 0.0 } else { 1e-9 * (hi - lo) };
    let zero = (
        zero_below(spec.log_x, x0, x1),
        zero_below(spec.log_y, y0, y1),
    );
    draw_scaled(area, spec, (x0, x1), (y0, y1), zero, corner)
}

/// A chart's data ranges and how its axes are labelled: x and y spans, the magnitude below
/// which a linear tick reads 0 on each axis, and the legend's corner.
#[derive(Debug, Clone, Copy)]
struct Frame {
    x: (f64, f64),
    y: (f64, f64),
    zero: (f64, f64),
    corner: usize,
}

/// Scatter-only charts (few points) get headroom at the top for the legend: the x range and
/// the top of the y range.
fn scatter_headroom(
    spec: &LineChart,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> (f64, f64, f64) {
    if !spec.series.iter().all(|s| s.style == Stroke::Markers) {
        return (x0, x1, y1);
    }
    let (x0, x1) = if spec.log_x {
        (x0 / 1.5, x1 * 1.5)
    } else {
        (x0 - 0.1 * (x1 - x0), x1 + 0.1 * (x1 - x0))
    };
    let y1 = if spec.y_range.is_some() {
        y1
    } else if spec.log_y {
        y1 * (y1 / y0).powf(0.6)
    } else {
        y1 + 0.6 * (y1 - y0)
    };
    (x0, x1, y1)
}

/// [`draw_on`] with each axis linear or log as the chart asks; log axes are labelled at 1-2-5
/// (or finer) steps, so that at least three ticks are read.
fn draw_scaled<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    spec: &LineChart,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
    zero: (f64, f64),
    corner: usize,
) -> std::result::Result<(), String> {
    let xt = if spec.x_ticks.is_empty() {
        log_ticks(x0, x1)
    } else {
        spec.x_ticks.clone()
    };
    let yt = log_ticks(y0, y1);
    let f = Frame {
        x: (x0, x1),
        y: (y0, y1),
        zero,
        corner,
    };
    match (spec.log_x, spec.log_y) {
        (false, false) => draw_on(area, spec, x0..x1, y0..y1, f),
        (false, true) => draw_on(
            area,
            spec,
            x0..x1,
            (y0..y1).log_scale().with_key_points(yt),
            f,
        ),
        (true, false) => draw_on(
            area,
            spec,
            (x0..x1).log_scale().with_key_points(xt),
            y0..y1,
            f,
        ),
        (true, true) => draw_on(
            area,
            spec,
            (x0..x1).log_scale().with_key_points(xt),
            (y0..y1).log_scale().with_key_points(yt),
            f,
        ),
    }
}

/// Draws axes, series, reference lines and the legend.
fn draw_on<DB, XR, YR>(
    area: &DrawingArea<DB, Shift>,
    spec: &LineChart,
    xr: XR,
    yr: YR,
    frame: Frame,
) -> std::result::Result<(), String>
where
    DB: DrawingBackend,
    XR: AsRangedCoord<Value = f64>,
    YR: AsRangedCoord<Value = f64>,
    XR::CoordDescType: ValueFormatter<f64>,
    YR::CoordDescType: ValueFormatter<f64>,
{
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let mut chart = ChartBuilder::on(area)
        .caption(&spec.title, (FONT, 24))
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
        .x_label_formatter(&|v| tick_label(if v.abs() < frame.zero.0 { 0.0 } else { *v }))
        .y_label_formatter(&|v| tick_label(if v.abs() < frame.zero.1 { 0.0 } else { *v }))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .draw()
        .map_err(e)?;
    draw_regions(&mut chart, spec, frame)?;
    for s in &spec.series {
        draw_series(&mut chart, s, (spec.log_x, spec.log_y))?;
    }
    for s in &spec.series {
        draw_point_marks(&mut chart, s, (spec.log_x, spec.log_y))?;
    }
    draw_reference_lines(&mut chart, spec)?;
    let legend_at =
        super::legend::position(frame.corner, chart.plotting_area().dim_in_pixel(), spec);
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .position(legend_at)
        .draw()
        .map_err(e)?;
    Ok(())
}

/// A chart on two `f64` axes of any kind (linear or log).
type Chart<'a, DB, X, Y> = ChartContext<'a, DB, Cartesian2d<X, Y>>;

/// The error of a plotters drawing call, as text.
fn drawing_error<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> String {
    e.to_string()
}

/// Draws one series: its band, its error bars, and its line or markers with its legend key.
fn draw_series<'a, DB, X, Y>(
    chart: &mut Chart<'a, DB, X, Y>,
    s: &Series,
    (log_x, log_y): (bool, bool),
) -> std::result::Result<(), String>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let e = drawing_error;
    let points: Vec<(f64, f64)> = s
        .points
        .iter()
        .copied()
        .filter(|&p| usable(p, log_x, log_y))
        .collect();
    // A key-only series goes on with no points: only its legend entry is drawn.
    if points.is_empty() && (!s.key_only || s.label.is_empty()) {
        return Ok(());
    }
    let color = s.color;
    let usable_span = |&(x, lo, hi): &(f64, f64, f64)| {
        usable((x, lo), log_x, log_y) && usable((x, hi), log_x, log_y)
    };
    let band: Vec<(f64, f64, f64)> = s.band.iter().copied().filter(usable_span).collect();
    if band.len() >= 2 {
        let outline: Vec<(f64, f64)> = band
            .iter()
            .map(|b| (b.0, b.1))
            .chain(band.iter().rev().map(|b| (b.0, b.2)))
            .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(
                outline,
                color.mix(0.18).filled(),
            )))
            .map_err(e)?;
    }
    let bars = s
        .errors
        .iter()
        .copied()
        .filter(usable_span)
        .filter_map(|(x, lo, hi)| {
            let mid = points.iter().find(|p| p.0 == x)?.1;
            Some(ErrorBar::new_vertical(
                x,
                lo,
                mid,
                hi,
                color.stroke_width(1),
                8,
            ))
        });
    chart.draw_series(bars).map_err(e)?;
    match s.style {
        Stroke::Markers => draw_markers(chart, s, &points)?,
        Stroke::Dashed => {
            let style = ShapeStyle::from(&color).stroke_width(s.width);
            let thin = ShapeStyle::from(&s.overlay.unwrap_or(color)).stroke_width(1);
            let anno = chart
                .draw_series(DashedLineSeries::new(points, 8, 5, style))
                .map_err(e)?;
            // The overlay's thin dashes in the key (none without an overlay).
            let d = if s.overlay.is_some() { 8 } else { 0 };
            if !s.label.is_empty() {
                anno.label(&s.label).legend(move |(x, y)| {
                    dashed_key!(x, y, style)
                        + PathElement::new(vec![(0, 0), (d, 0)], thin)
                        + PathElement::new(vec![(12, 0), (12 + d, 0)], thin)
                });
            }
        }
        Stroke::Dotted => {
            let style = ShapeStyle::from(&color).stroke_width(s.width);
            let anno = chart
                .draw_series(DashedLineSeries::new(points, 2, 4, style))
                .map_err(e)?;
            if !s.label.is_empty() {
                anno.label(&s.label)
                    .legend(move |(x, y)| dotted_key!(x, y, style));
            }
        }
        Stroke::Solid => {
            let style = ShapeStyle::from(&color).stroke_width(s.width);
            let thin = ShapeStyle::from(&s.overlay.unwrap_or(color)).stroke_width(1);
            // A band's key: a patch of its fill behind the line.
            let patch = if band.len() >= 2 {
                color.mix(0.18).filled()
            } else {
                WHITE.mix(0.0).filled()
            };
            let anno = chart
                .draw_series(LineSeries::new(points, style))
                .map_err(e)?;
            // The overlay's thin line in the key (none without an overlay).
            let d = if s.overlay.is_some() { 20 } else { 0 };
            if !s.label.is_empty() {
                anno.label(&s.label).legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + Rectangle::new([(0, -6), (20, 6)], patch)
                        + PathElement::new(vec![(0, 0), (20, 0)], style)
                        + PathElement::new(vec![(0, 0), (d, 0)], thin)
                });
            }
        }
    }
    Ok(())
}

/// Draws a line series' point marks (dots or rings), over every line; a sampled line of fewer
/// than [`SPARSE_POINTS`] points gets small dots.
fn draw_point_marks<'a, DB, X, Y>(
    chart: &mut Chart<'a, DB, X, Y>,
    s: &Series,
    (log_x, log_y): (bool, bool),
) -> std::result::Result<(), String>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let e = drawing_error;
    let points = s
        .points
        .iter()
        .copied()
        .filter(|&p| usable(p, log_x, log_y));
    let sparse = s.sampled && points.clone().count() < SPARSE_POINTS;
    match (s.style, s.marker) {
        (Stroke::Markers, _) => {}
        (_, None) if sparse => {
            chart
                .draw_series(points.map(|p| Circle::new(p, 3, s.color.filled())))
                .map_err(e)?;
        }
        (_, None) => {}
        (_, Some(Marker::Dot)) => {
            chart
                .draw_series(points.map(|p| Circle::new(p, 4, s.color.filled())))
                .map_err(e)?;
        }
        (_, Some(Marker::Ring)) => {
            let ring = s.color.stroke_width(2);
            chart
                .draw_series(points.map(|p| Circle::new(p, 5, ring)))
                .map_err(e)?;
        }
        (_, Some(Marker::Cross)) => {
            let cross = s.color.stroke_width(2);
            chart
                .draw_series(points.map(|p| Cross::new(p, 5, cross)))
                .map_err(e)?;
        }
    }
    Ok(())
}

/// Draws a marker-only series in its marker's shape (a filled dot unless it names another),
/// with a legend key of that shape.
fn draw_markers<'a, DB, X, Y>(
    chart: &mut Chart<'a, DB, X, Y>,
    s: &Series,
    points: &[(f64, f64)],
) -> std::result::Result<(), String>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let e = drawing_error;
    let color = s.color;
    let stroke = color.stroke_width(2);
    let anno = match s.marker {
        None | Some(Marker::Dot) => chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .map_err(e)?,
        Some(Marker::Ring) => chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 5, stroke)))
            .map_err(e)?,
        Some(Marker::Cross) => chart
            .draw_series(points.iter().map(|&p| Cross::new(p, 6, stroke)))
            .map_err(e)?,
    };
    if !s.label.is_empty() {
        let marker = s.marker;
        let ring = s.overlay.unwrap_or(color).stroke_width(2);
        let overlaid = s.overlay.is_some();
        anno.label(&s.label)
            .legend(move |(x, y)| -> DynElement<'static, _, _> {
                match marker {
                    None | Some(Marker::Dot) if overlaid => {
                        Circle::new((x + 10, y), 5, ring).into_dyn()
                    }
                    None | Some(Marker::Dot) => {
                        Circle::new((x + 10, y), 4, color.filled()).into_dyn()
                    }
                    Some(Marker::Ring) => Circle::new((x + 10, y), 5, stroke).into_dyn(),
                    Some(Marker::Cross) => Cross::new((x + 10, y), 6, stroke).into_dyn(),
                }
            });
    }
    Ok(())
}

/// Draws the chart's shaded strips across the whole y range, each with a square legend key.
fn draw_regions<'a, DB, X, Y>(
    chart: &mut Chart<'a, DB, X, Y>,
    spec: &LineChart,
    frame: Frame,
) -> std::result::Result<(), String>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for r in &spec.regions {
        let (a, b) = (r.x.0.max(frame.x.0), r.x.1.min(frame.x.1));
        if a.partial_cmp(&b) != Some(std::cmp::Ordering::Less) {
            continue;
        }
        let fill = r.color.mix(0.16).filled();
        let anno = chart
            .draw_series(std::iter::once(Rectangle::new(
                [(a, frame.y.0), (b, frame.y.1)],
                fill,
            )))
            .map_err(drawing_error)?;
        if !r.label.is_empty() {
            anno.label(&r.label)
                .legend(move |(x, y)| Rectangle::new([(x + 2, y - 6), (x + 18, y + 6)], fill));
        }
    }
    Ok(())
}

/// Draws the horizontal reference lines and the round-off floor's line, dashed across the
/// series' x range, each with its legend entry.
fn draw_reference_lines<'a, DB, X, Y>(
    chart: &mut Chart<'a, DB, X, Y>,
    spec: &LineChart,
) -> std::result::Result<(), String>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let (log_x, log_y) = (spec.log_x, spec.log_y);
    let floor_line = spec.floor.iter().map(|(v, l)| (*v, l.clone(), true));
    for (v, label, is_floor) in spec
        .hlines
        .iter()
        .map(|(v, l)| (*v, l.clone(), false))
        .chain(floor_line)
    {
        if !v.is_finite() || (log_y && v <= 0.0) {
            continue;
        }
        let color = if is_floor {
            RGBColor(150, 150, 150).mix(0.9)
        } else {
            BLACK.mix(0.7)
        };
        let style = color.stroke_width(2);
        let xs: Vec<f64> = spec
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .filter(|x| x.is_finite() && (!log_x || *x > 0.0))
            .collect();
        let (a, b) = range(xs.into_iter(), log_x);
        // Dotted, as every other reading that is not a split (dashed is the test split's).
        chart
            .draw_series(DashedLineSeries::new(
                vec![(a, v), (b, v)],
                2,
                4,
                color.stroke_width(2),
            ))
            .map_err(drawing_error)?
            .label(&label)
            .legend(move |(x, y)| dotted_key!(x, y, style));
    }
    Ok(())
}

/// A copy of `spec` whose values in (0, floor) are taken out of their lines and marked × on
/// the axis bottom `y0`, in their series' colour (so that no line joins a clipped value to a
/// measured one), with the floor's label on a reference line there; a series entirely below the
/// floor says so in its label.
fn on_bottom_edge(spec: &LineChart, floor: f64, y0: f64, label: &str) -> LineChart {
    let mut c = spec.clone();
    let bottom = y0 * 1.02;
    let mut marks = Vec::new();
    for s in &mut c.series {
        let below = |y: f64| y > 0.0 && y < floor;
        let clipped: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|p| below(p.1))
            .map(|p| (p.0, bottom))
            .collect();
        if clipped.is_empty() {
            continue;
        }
        s.points.retain(|p| !below(p.1));
        let all = !s.points.iter().any(|p| p.1 > 0.0);
        let mark_label = if all && !s.label.is_empty() {
            format!("{} (below the round-off level throughout)", s.label)
        } else {
            String::new()
        };
        if all {
            s.label.clear();
        }
        marks.push(
            Series::line(mark_label, clipped, s.color)
                .markers_of(Marker::Cross)
                .computed(),
        );
    }
    // The edge is labelled only when something sits on it; it is the axis' bottom, not the
    // level itself, so its label quotes the level.
    if !marks.is_empty() {
        c.hlines.push((bottom, label.to_string()));
    }
    c.series.extend(marks);
    c.floor = None;
    c
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axes_get_at_least_three_labelled_ticks() {
        for (lo, hi) in [
            (0.38, 1.3),
            (0.44, 0.54),
            (1e-3, 2e-3),
            (0.02, 0.3),
            (1e-12, 1.0),
            (3.0, 4.0),
        ] {
            let t = log_ticks(lo, hi);
            assert!(t.len() >= 3, "{lo}..{hi}: {t:?}");
            assert!(
                t.iter().all(|v| *v >= lo * 0.999 && *v <= hi * 1.001),
                "{t:?}"
            );
            assert!(t.len() <= 14, "{lo}..{hi}: {t:?}");
        }
        assert_eq!(log_ticks(0.02, 0.3), vec![0.02, 0.05, 0.1, 0.2]);
    }

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
    fn coinciding_series_share_one_entry_and_are_drawn_thin_over_the_first() {
        let a = Series::line("a", vec![(0.0, 1.0), (1.0, 2.0)], BLACK);
        let b = Series::line("b", vec![(0.0, 1.0), (1.0, 2.0 + 1e-14)], RED).dashed();
        let c = Series::line("c", vec![(0.0, 1.0), (1.0, 2.1)], BLUE);
        let chart = LineChart::new("t", "x", "y")
            .with_series(vec![a, b, c])
            .mark_coinciding(1e-9);
        assert_eq!(chart.series[0].label, "a ≡ b");
        assert_eq!(chart.series[1].label, "");
        assert_eq!(chart.series[1].width, 1);
        assert_eq!(
            chart.series[1].style,
            Stroke::Dashed,
            "its own style is kept"
        );
        assert_eq!(chart.series[2].label, "c");
        assert_eq!(chart.series[2].width, 2);
    }
}

//! Where a line chart's legend goes so that it covers no data: the legend box (its size
//! estimated from the number of entries and the longest label at the legend's font) is tried in
//! the four corners of the plotting area against every drawn segment, marker, error bar, band
//! edge and reference line, in pixels; the first corner it misses wins. When every corner is hit, the
//! y axis gets headroom at the top (the data keep their shape, squeezed down by the box's
//! height) and the upper corners are tried again.

use plotters::prelude::SeriesLabelPosition;

use super::chart::{LineChart, Stroke};

/// Height of one legend row in pixels at the legend's 14 px font (measured on rendered charts).
const ROW_PX: f64 = 19.5;
/// Width of a label character in pixels at that font (a wide average, so that the box is not
/// underestimated).
const CHAR_PX: f64 = 6.6;
/// The key (line sample or marker) and the box's inner margins.
const KEY_PX: f64 = 44.0;
/// Padding around the box and its distance from the plotting area's edges.
const PAD_PX: f64 = 14.0;
/// Radius within which a marker counts as covered.
const MARKER_PX: f64 = 6.0;

/// The plotting area of a chart: axis ranges (log axes in log space) and size in pixels.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// x range.
    pub x: (f64, f64),
    /// y range.
    pub y: (f64, f64),
    /// Log x axis.
    pub log_x: bool,
    /// Log y axis.
    pub log_y: bool,
    /// Width of the plotting area, pixels.
    pub width: f64,
    /// Height of the plotting area, pixels.
    pub height: f64,
}

impl Frame {
    /// The pixel position of a data point (origin top left).
    fn px(&self, (x, y): (f64, f64)) -> (f64, f64) {
        let frac = |v: f64, (lo, hi): (f64, f64), log: bool| {
            if log {
                (v.ln() - lo.ln()) / (hi.ln() - lo.ln())
            } else {
                (v - lo) / (hi - lo)
            }
        };
        (
            frac(x, self.x, self.log_x) * self.width,
            (1.0 - frac(y, self.y, self.log_y)) * self.height,
        )
    }
}

/// A rectangle in pixels: left, top, right, bottom.
type Rect = (f64, f64, f64, f64);

/// The legend's size in pixels (width, height); zero when it has no entries.
pub fn legend_size(spec: &LineChart) -> (f64, f64) {
    let labels: Vec<&str> = spec
        .series
        .iter()
        .map(|s| s.label.as_str())
        .chain(spec.regions.iter().map(|r| r.label.as_str()))
        .chain(spec.hlines.iter().map(|h| h.1.as_str()))
        .chain(spec.floor.iter().map(|f| f.1.as_str()))
        .filter(|l| !l.is_empty())
        .collect();
    if labels.is_empty() {
        return (0.0, 0.0);
    }
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    (
        KEY_PX + CHAR_PX * longest as f64,
        ROW_PX * labels.len() as f64 + 10.0,
    )
}

/// The top-left pixel of the legend box in a corner (0 upper right, 1 upper left, 2 lower
/// right, 3 lower left) of a plotting area of `width × height` pixels.
pub fn corner_origin(corner: usize, width: f64, height: f64, (w, h): (f64, f64)) -> (f64, f64) {
    match corner {
        0 => (width - w - PAD_PX, PAD_PX),
        1 => (PAD_PX, PAD_PX),
        2 => (width - w - PAD_PX, height - h - PAD_PX),
        _ => (PAD_PX, height - h - PAD_PX),
    }
}

fn corner_rect(corner: usize, frame: &Frame, (w, h): (f64, f64)) -> Rect {
    let (left, top) = corner_origin(corner, frame.width, frame.height, (w, h));
    (left - 4.0, top - 4.0, left + w + 4.0, top + h + 4.0)
}

/// Whether the segment from `a` to `b` meets the rectangle (Liang–Barsky clipping).
fn segment_hits(a: (f64, f64), b: (f64, f64), r: Rect) -> bool {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.0 - r.0),
        (dx, r.2 - a.0),
        (-dy, a.1 - r.1),
        (dy, r.3 - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return false;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
            if t0 > t1 {
                return false;
            }
        }
    }
    true
}

/// How many drawn elements (segments, markers, error bars, reference lines) meet `r`.
pub fn hits(spec: &LineChart, frame: &Frame, r: Rect) -> usize {
    let usable = |p: (f64, f64)| super::chart::usable(p, frame.log_x, frame.log_y);
    let grown = (
        r.0 - MARKER_PX,
        r.1 - MARKER_PX,
        r.2 + MARKER_PX,
        r.3 + MARKER_PX,
    );
    let inside =
        |p: (f64, f64)| p.0 >= grown.0 && p.0 <= grown.2 && p.1 >= grown.1 && p.1 <= grown.3;
    let mut n = 0;
    for s in &spec.series {
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|&p| usable(p))
            .map(|p| frame.px(p))
            .collect();
        if s.style != Stroke::Markers {
            n += pts
                .windows(2)
                .filter(|w| segment_hits(w[0], w[1], r))
                .count();
        }
        if s.style == Stroke::Markers || s.marker.is_some() || pts.len() == 1 {
            n += pts.iter().filter(|&&p| inside(p)).count();
        }
        // A shaded band's two edges count as drawn lines.
        for edge in [
            |b: &(f64, f64, f64)| (b.0, b.1),
            |b: &(f64, f64, f64)| (b.0, b.2),
        ] {
            let pts: Vec<(f64, f64)> = s
                .band
                .iter()
                .map(edge)
                .filter(|&p| usable(p))
                .map(|p| frame.px(p))
                .collect();
            n += pts
                .windows(2)
                .filter(|w| segment_hits(w[0], w[1], r))
                .count();
        }
        for &(x, lo, hi) in &s.errors {
            if usable((x, lo)) && usable((x, hi)) {
                n += usize::from(segment_hits(frame.px((x, lo)), frame.px((x, hi)), r));
            }
        }
    }
    for v in spec
        .hlines
        .iter()
        .map(|h| h.0)
        .chain(spec.floor.iter().map(|f| f.0))
    {
        if usable((frame.x.0, v)) {
            let (a, b) = (frame.px((frame.x.0, v)), frame.px((frame.x.1, v)));
            n += usize::from(segment_hits(a, b, r));
        }
    }
    n
}

/// The legend's corner (see [`corner_origin`]) and the top of the y axis (raised when no
/// corner was free).
pub fn place(spec: &LineChart, frame: Frame) -> (usize, f64) {
    let size = legend_size(spec);
    if size.0 == 0.0 {
        return (0, frame.y.1);
    }
    if let Some(c) = (0..4).find(|&c| hits(spec, &frame, corner_rect(c, &frame, size)) == 0) {
        return (c, frame.y.1);
    }
    // Headroom: the data squeezed into the part of the axis below the box.
    let f = ((size.1 + 3.0 * PAD_PX) / frame.height).min(0.6);
    let (lo, hi) = frame.y;
    let top = if frame.log_y {
        (lo.ln() + (hi.ln() - lo.ln()) / (1.0 - f)).exp()
    } else {
        lo + (hi - lo) / (1.0 - f)
    };
    let raised = Frame {
        y: (lo, top),
        ..frame
    };
    let best = (0..2)
        .min_by_key(|&c| hits(spec, &raised, corner_rect(c, &raised, size)))
        .unwrap_or(0);
    (best, top)
}

/// The legend's position for plotters: its box's top-left pixel in the plotting area.
pub fn position(corner: usize, plotting: (u32, u32), spec: &LineChart) -> SeriesLabelPosition {
    let (left, top) = corner_origin(
        corner,
        f64::from(plotting.0),
        f64::from(plotting.1),
        legend_size(spec),
    );
    SeriesLabelPosition::Coordinate(left.max(0.0) as i32, top.max(0.0) as i32)
}

/// The plotting area's size inside a chart of `area` pixels, for the chart layout of
/// [`super::line`] (margin 12, caption 24 px, x label area 48, y label area 80).
pub fn plotting_size(area: (u32, u32)) -> (f64, f64) {
    (
        (f64::from(area.0) - 2.0 * 12.0 - 80.0).max(1.0),
        (f64::from(area.1) - 2.0 * 12.0 - 48.0 - 34.0).max(1.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::plot::chart::Series;
    use plotters::style::BLACK;

    fn frame(chart: &LineChart, y: (f64, f64)) -> Frame {
        Frame {
            x: (0.0, 100.0),
            y,
            log_x: false,
            log_y: chart.log_y,
            width: 800.0,
            height: 500.0,
        }
    }

    #[test]
    fn a_segment_through_a_box_hits_it_and_one_beside_it_does_not() {
        let r = (10.0, 10.0, 20.0, 20.0);
        assert!(segment_hits((0.0, 15.0), (30.0, 15.0), r));
        assert!(segment_hits((12.0, 12.0), (13.0, 13.0), r));
        assert!(!segment_hits((0.0, 25.0), (30.0, 25.0), r));
        assert!(!segment_hits((0.0, 0.0), (30.0, 5.0), r));
    }

    #[test]
    fn the_chosen_corner_is_free_and_a_full_chart_gets_headroom() {
        // Lines along the top and the bottom: only the headroom frees a corner.
        let top: Vec<(f64, f64)> = (0..=100).map(|i| (i as f64, 1.0)).collect();
        let bottom: Vec<(f64, f64)> = (0..=100).map(|i| (i as f64, 0.0)).collect();
        let chart = LineChart::new("t", "x", "y").with_series(vec![
            Series::line("a long label for the top line", top, BLACK),
            Series::line("b", bottom, BLACK),
        ]);
        let f = frame(&chart, (-0.05, 1.05));
        assert!((0..4).all(|c| hits(&chart, &f, corner_rect(c, &f, legend_size(&chart))) > 0));
        let (c, top) = place(&chart, f);
        assert!(top > 1.05);
        let raised = Frame {
            y: (-0.05, top),
            ..f
        };
        assert_eq!(
            hits(
                &chart,
                &raised,
                corner_rect(c, &raised, legend_size(&chart))
            ),
            0
        );
        // A line along the top only: a lower corner is free as it is.
        let chart = LineChart::new("t", "x", "y").with_series(vec![Series::line(
            "top",
            (0..=100).map(|i| (i as f64, 1.0)).collect(),
            BLACK,
        )]);
        let f = frame(&chart, (-0.05, 1.05));
        let (corner, top) = place(&chart, f);
        assert_eq!(top, 1.05);
        assert_eq!(corner, 2, "lower right");
    }

    #[test]
    fn a_band_edge_under_a_corner_counts_as_data() {
        // The line stays low; its band's upper edge climbs into the upper right corner.
        let line: Vec<(f64, f64)> = (0..=100).map(|i| (i as f64, 0.0)).collect();
        let band: Vec<(f64, f64, f64)> = (0..=100)
            .map(|i| (i as f64, -0.1, if i > 70 { 1.0 } else { 0.1 }))
            .collect();
        let chart =
            LineChart::new("t", "x", "y")
                .with_series(vec![Series::line("mean ± 2σ", line, BLACK).with_band(band)]);
        let f = frame(&chart, (-0.2, 1.05));
        let size = legend_size(&chart);
        assert!(hits(&chart, &f, corner_rect(0, &f, size)) > 0);
        assert_ne!(place(&chart, f).0, 0, "not the upper right");
    }
}

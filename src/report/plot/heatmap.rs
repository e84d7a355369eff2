//! Heat maps with a colour bar, drawn in pixel coordinates so that every label sits exactly at
//! the centre of its cell: kernel matrices (a diverging scale centred at 0) and confusion
//! matrices (counts and row fractions in the cells, class names on both axes).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::line::tick_label;
use super::FONT;

/// How values map to colours.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ColorScale {
    /// `[0, max]`: white to dark blue.
    Sequential {
        /// The value drawn darkest.
        max: f64,
    },
    /// `[−max, max]`: blue, white at 0, red.
    Diverging {
        /// The largest magnitude.
        max: f64,
    },
    /// `[min, max]` on a log scale, white to dark blue; values at or below 0 are white (e.g. a
    /// confusion matrix of many classes, whose off-diagonal fractions span decades).
    Log {
        /// The value drawn lightest (smaller positive values are drawn as it).
        min: f64,
        /// The value drawn darkest.
        max: f64,
    },
}

impl ColorScale {
    /// The colour of a value.
    pub fn color(&self, v: f64) -> RGBColor {
        let lerp = |a: (u8, u8, u8), b: (u8, u8, u8), t: f64| {
            let t = if t.is_finite() {
                t.clamp(0.0, 1.0)
            } else {
                0.0
            };
            let c = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * t).round() as u8;
            RGBColor(c(a.0, b.0), c(a.1, b.1), c(a.2, b.2))
        };
        let white = (255, 255, 255);
        match *self {
            ColorScale::Sequential { max } => lerp(white, (8, 48, 107), v / max.max(1e-300)),
            ColorScale::Log { min, max } => {
                if v > 0.0 {
                    // The lightest positive value is a pale blue, so that it differs from 0.
                    let t = (v / min).ln() / (max / min).ln();
                    lerp((222, 235, 247), (8, 48, 107), t)
                } else {
                    RGBColor(255, 255, 255)
                }
            }
            ColorScale::Diverging { max } => {
                let t = v / max.max(1e-300);
                if t >= 0.0 {
                    lerp(white, (178, 24, 43), t)
                } else {
                    lerp(white, (33, 102, 172), -t)
                }
            }
        }
    }

    /// The range of the colour bar.
    pub fn range(&self) -> (f64, f64) {
        match *self {
            ColorScale::Sequential { max } => (0.0, max),
            ColorScale::Diverging { max } => (-max, max),
            ColorScale::Log { min, max } => (min, max),
        }
    }

    /// The value at a fraction `f` of the colour bar from its bottom.
    pub fn value_at(&self, f: f64) -> f64 {
        let (lo, hi) = self.range();
        match self {
            ColorScale::Log { .. } => lo * (hi / lo).powf(f),
            _ => lo + (hi - lo) * f,
        }
    }

    /// Labelled values of the colour bar with their fractions from its bottom: both ends, and
    /// between them the multiples of a 1-2-5 step that give three to six intervals on a linear
    /// scale (0 among them on a diverging one), the powers of ten on a log scale; none closer
    /// than 6 % of the bar to an end.
    pub fn ticks(&self) -> Vec<(f64, f64)> {
        let (lo, hi) = self.range();
        let mut t = vec![(lo, 0.0), (hi, 1.0)];
        match self {
            ColorScale::Diverging { .. } | ColorScale::Sequential { .. } if hi > lo => {
                let step = nice_step(hi - lo);
                let first = (lo / step).ceil() as i64;
                let last = (hi / step).floor() as i64;
                for i in first..=last {
                    let v = i as f64 * step;
                    let f = (v - lo) / (hi - lo);
                    if f > 0.06 && f < 0.94 {
                        t.push((v, f));
                    }
                }
            }
            ColorScale::Log { .. } => {
                let (a, b) = (lo.log10().ceil() as i32, hi.log10().floor() as i32);
                for e in a..=b {
                    let v = 10f64.powi(e);
                    let f = (v / lo).ln() / (hi / lo).ln();
                    if f > 0.06 && f < 0.94 {
                        t.push((v, f));
                    }
                }
            }
            _ => {}
        }
        t
    }
}

/// The 1-2-5 step (1, 2 or 5 times a power of ten) that splits `span` into three to six
/// intervals.
fn nice_step(span: f64) -> f64 {
    let raw = span / 4.0;
    let decade = 10f64.powf(raw.log10().floor());
    let m = raw / decade;
    let unit = if m < 1.5 {
        1.0
    } else if m < 3.5 {
        2.0
    } else if m < 7.5 {
        5.0
    } else {
        10.0
    };
    unit * decade
}

/// A matrix drawn as coloured cells.
#[derive(Debug, Clone)]
pub struct HeatMap {
    /// Panel title.
    pub title: String,
    /// Rows.
    pub n_rows: usize,
    /// Columns.
    pub n_cols: usize,
    /// Values, row-major (row 0 at the top).
    pub values: Vec<f64>,
    /// Colour scale.
    pub scale: ColorScale,
    /// Labels at the row centres (None: indices every few rows).
    pub row_labels: Option<Vec<String>>,
    /// Labels at the column centres (None: indices every few columns).
    pub col_labels: Option<Vec<String>>,
    /// Text in each cell, row-major: one or two lines.
    pub cell_text: Option<Vec<(String, String)>>,
    /// What the columns are.
    pub x_desc: String,
    /// What the rows are.
    pub y_desc: String,
    /// What the colour bar measures.
    pub colorbar_label: String,
}

type DrawResult = std::result::Result<(), String>;

fn text_style(size: f64, color: RGBColor, h: HPos) -> TextStyle<'static> {
    (FONT, size)
        .into_font()
        .color(&color)
        .pos(Pos::new(h, VPos::Center))
}

/// Index labels every few cells, or the given labels at every cell.
fn labels(given: &Option<Vec<String>>, n: usize) -> Vec<(usize, String)> {
    match given {
        Some(l) => l.iter().cloned().enumerate().collect(),
        None => {
            let step = (n / 8).max(1);
            (0..n).step_by(step).map(|i| (i, i.to_string())).collect()
        }
    }
}

/// Draws a heat map with its colour bar filling `area`.
pub fn draw_heatmap<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, h: &HeatMap) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let (w, ht) = area.dim_in_pixel();
    let (w, ht) = (w as i32, ht as i32);
    area.draw(&Text::new(
        h.title.clone(),
        (w / 2, 16),
        text_style(18.0, BLACK, HPos::Center),
    ))
    .map_err(e)?;
    let (left, top, bottom, right) = (74, 40, 62, 110);
    let side = ((w - left - right).min(ht - top - bottom)).max(10) as f64;
    let cell = side / h.n_rows.max(h.n_cols).max(1) as f64;
    let px = |i: usize| left + (i as f64 * cell).round() as i32;
    let py = |i: usize| top + (i as f64 * cell).round() as i32;
    for i in 0..h.n_rows {
        for j in 0..h.n_cols {
            let c = h.scale.color(h.values[i * h.n_cols + j]);
            area.draw(&Rectangle::new(
                [(px(j), py(i)), (px(j + 1), py(i + 1))],
                c.filled(),
            ))
            .map_err(e)?;
            if let Some(text) = &h.cell_text {
                let (a, b) = &text[i * h.n_cols + j];
                let dark = {
                    let RGBColor(r, g, bl) = c;
                    (r as f64 * 0.299 + g as f64 * 0.587 + bl as f64 * 0.114) < 140.0
                };
                let ink = if dark { WHITE } else { BLACK };
                let cx = (px(j) + px(j + 1)) / 2;
                let size = (cell * 0.34).clamp(7.0, 14.0);
                let (ya, yb) = if b.is_empty() {
                    ((py(i) + py(i + 1)) / 2, 0)
                } else {
                    (
                        py(i) + (cell * 0.36).round() as i32,
                        py(i) + (cell * 0.72).round() as i32,
                    )
                };
                area.draw(&Text::new(
                    a.clone(),
                    (cx, ya),
                    text_style(size, ink, HPos::Center),
                ))
                .map_err(e)?;
                if !b.is_empty() {
                    let st = text_style(size * 0.8, ink, HPos::Center);
                    area.draw(&Text::new(b.clone(), (cx, yb), st)).map_err(e)?;
                }
            }
        }
    }
    // A label per cell scales with the cell; index labels (every few cells) keep a readable
    // size whatever the cells'.
    let label_size = if h.row_labels.is_some() {
        (cell * 0.7).clamp(9.0, 14.0)
    } else {
        13.0
    };
    for (j, l) in labels(&h.col_labels, h.n_cols) {
        let cx = (px(j) + px(j + 1)) / 2;
        let st = text_style(label_size, BLACK, HPos::Center);
        area.draw(&Text::new(l, (cx, py(h.n_rows) + 12), st))
            .map_err(e)?;
    }
    for (i, l) in labels(&h.row_labels, h.n_rows) {
        let cy = (py(i) + py(i + 1)) / 2;
        let st = text_style(label_size, BLACK, HPos::Right);
        area.draw(&Text::new(l, (left - 6, cy), st)).map_err(e)?;
    }
    let desc = text_style(15.0, BLACK, HPos::Center);
    let mid_x = (px(0) + px(h.n_cols)) / 2;
    area.draw(&Text::new(
        h.x_desc.clone(),
        (mid_x, py(h.n_rows) + 38),
        desc.clone(),
    ))
    .map_err(e)?;
    let mid_y = (py(0) + py(h.n_rows)) / 2;
    let rotated = desc.transform(FontTransform::Rotate270);
    area.draw(&Text::new(h.y_desc.clone(), (18, mid_y), rotated))
        .map_err(e)?;
    draw_colorbar(area, h, px(h.n_cols) + 16, top, py(h.n_rows))
}

/// Number of steps of a colour bar.
pub const COLORBAR_STEPS: usize = 48;

/// A vertical colour bar at `x` from `y0` (top, largest value) to `y1`, with tick labels at
/// both ends (and at 0 on a diverging scale) and its label.
fn draw_colorbar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    h: &HeatMap,
    x: i32,
    y0: i32,
    y1: i32,
) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let n = COLORBAR_STEPS;
    let y_of = |k: usize| y1 - ((y1 - y0) as f64 * k as f64 / n as f64).round() as i32;
    for k in 0..n {
        let v = h.scale.value_at((k as f64 + 0.5) / n as f64);
        let r = Rectangle::new(
            [(x, y_of(k + 1)), (x + 16, y_of(k))],
            h.scale.color(v).filled(),
        );
        area.draw(&r).map_err(e)?;
    }
    area.draw(&Rectangle::new(
        [(x, y0), (x + 16, y1)],
        BLACK.stroke_width(1),
    ))
    .map_err(e)?;
    for (v, f) in h.scale.ticks() {
        let y = y1 - ((y1 - y0) as f64 * f).round() as i32;
        let st = text_style(12.0, BLACK, HPos::Left);
        area.draw(&Text::new(tick_label(v), (x + 20, y), st))
            .map_err(e)?;
    }
    let st = text_style(13.0, BLACK, HPos::Center).transform(FontTransform::Rotate270);
    area.draw(&Text::new(
        h.colorbar_label.clone(),
        (x + 76, (y0 + y1) / 2),
        st,
    ))
    .map_err(e)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every linear colour bar carries at least four labelled values (its ends and 1-2-5
    /// multiples between them, placed where their value lies), a diverging one 0 among them.
    #[test]
    fn colour_bars_label_round_values_between_their_ends() {
        for scale in [
            ColorScale::Sequential { max: 0.96 },
            ColorScale::Sequential { max: 1.0 },
            ColorScale::Sequential { max: 3.7e-4 },
            ColorScale::Diverging { max: 0.597 },
            ColorScale::Diverging { max: 12.0 },
        ] {
            let ticks = scale.ticks();
            assert!(ticks.len() >= 4, "{scale:?}: {ticks:?}");
            let (lo, hi) = scale.range();
            for &(v, f) in &ticks {
                assert!(
                    (lo + f * (hi - lo) - v).abs() <= 1e-12 * hi.abs(),
                    "{v} at {f}"
                );
            }
            let steps: Vec<f64> = ticks[2..].windows(2).map(|w| w[1].0 - w[0].0).collect();
            let step = nice_step(hi - lo);
            assert!(
                steps.iter().all(|s| (s - step).abs() <= 1e-9 * step),
                "{steps:?}"
            );
            let mantissa = step / 10f64.powf(step.log10().floor());
            assert!([1.0, 2.0, 5.0].iter().any(|m| (m - mantissa).abs() < 1e-9));
            if matches!(scale, ColorScale::Diverging { .. }) {
                assert!(ticks.iter().any(|&(v, _)| v == 0.0));
            }
        }
    }
}

//! The figure engine (plotters, headless, with the embedded DejaVu Sans font): a [`Plot`] is
//! data — line charts ([`line`](mod@line)), grids of them (small multiples) or heat maps with colour bars
//! ([`heatmap`]) — drawn on any plotters backend and encoded as PNG bytes or as an SVG whose
//! font is embedded, so it renders anywhere. The writers put the bytes on disk atomically.
//! Figures consume records; they never compute dynamics. The figures of a run are built in
//! [`run_charts`], those of a sweep in [`sweep_charts`]; [`contact_sheet`] tiles a set of PNGs.

pub mod chart;
pub mod ensemble_charts;
pub mod heatmap;
pub mod legend;
pub mod line;
pub mod run_charts;
pub mod sweep_charts;

use std::path::Path;
use std::sync::Once;

use base64::Engine as _;
use image::ImageEncoder;
use plotters::coord::Shift;
use plotters::prelude::*;

pub use chart::{LineChart, Marker, Series, Stroke};
pub use heatmap::{ColorScale, HeatMap};

use crate::record::Track;
use crate::{Error, Result};

/// The revision of the figure code: raised whenever a figure is drawn differently, so that a
/// record says which drawing its figures are (1: before `--replot` existed; 2: the conventions
/// of docs/outputs.md; 3: runs store their figure data, SVGs embed only the glyphs they use; 4:
/// SVG fonts keep the characters the markup escapes, reference lines dotted, coinciding
/// approximations share a scatter panel, index-labelled heat maps keep their size; 5:
/// coinciding tracks share a confusion matrix, heat-map index labels 13 px).
pub const FIGURE_STYLE: u32 = 5;

/// The font family of every text (registered from the embedded DejaVu Sans).
pub const FONT: &str = "DejaVu Sans";

static FONT_BYTES: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Registers the embedded font as [`FONT`] (once per process).
pub fn register_font() {
    REGISTER.call_once(|| {
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
}

/// Colour of a track.
pub fn track_color(t: Track) -> RGBColor {
    match t {
        Track::Network => RGBColor(31, 119, 180),
        Track::Linearized | Track::LinearizedAvg => RGBColor(255, 127, 14),
        Track::KernelAnalytic => RGBColor(44, 160, 44),
        Track::KernelEmpirical | Track::KernelEmpiricalAvg => RGBColor(214, 39, 40),
        Track::KernelNngp => RGBColor(148, 103, 189),
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

/// A perceptually uniform sequential colour (matplotlib's viridis, piecewise linear between
/// five of its colours) at `t` in [0, 1]; the bright yellow end is left out (`t` is mapped to
/// [0, 0.85]) so that every colour reads on white.
pub fn viridis(t: f64) -> RGBColor {
    const STOPS: [(f64, [f64; 3]); 5] = [
        (0.0, [68.0, 1.0, 84.0]),
        (0.25, [59.0, 82.0, 139.0]),
        (0.5, [33.0, 145.0, 140.0]),
        (0.75, [94.0, 201.0, 98.0]),
        (1.0, [253.0, 231.0, 37.0]),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0) * 0.85
    } else {
        0.0
    };
    let i = STOPS.iter().rposition(|s| s.0 <= t).unwrap_or(0).min(3);
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let f = (t - a.0) / (b.0 - a.0);
    let c = |k: usize| (a.1[k] + f * (b.1[k] - a.1[k])).round() as u8;
    RGBColor(c(0), c(1), c(2))
}

/// How a paired series is labelled and which column it reads, per track.
pub type SeriesOf<'a> = (
    &'a dyn Fn(crate::record::Track) -> String,
    &'a dyn Fn(crate::record::Track) -> crate::record::columns::Column,
);

/// Per track, a solid line of one column and a dotted line of another, in the track's colour
/// (dashed is kept for the test split).
pub fn paired_series(
    r: &crate::record::RunRecord,
    tracks: &[crate::record::Track],
    solid: SeriesOf<'_>,
    dotted: SeriesOf<'_>,
) -> Vec<Series> {
    tracks
        .iter()
        .flat_map(|&t| {
            [
                Series::line(solid.0(t), solid.1(t).series(r), track_color(t)),
                Series::line(dotted.0(t), dotted.1(t).series(r), track_color(t)).dotted(),
            ]
        })
        .collect()
}

/// The figures' file formats are a setting of the config (`outputs.formats`).
pub use crate::config::ImageFormat;

/// A plot: what one figure file shows, independent of the file format (PNG or SVG).
#[derive(Debug, Clone)]
pub enum Plot {
    /// One line chart.
    Line(LineChart),
    /// Small multiples under one title, `cols` per row.
    Grid {
        /// Title.
        title: String,
        /// Panels per row.
        cols: usize,
        /// The panels.
        charts: Vec<LineChart>,
    },
    /// Heat maps side by side under one title.
    Heat {
        /// Title.
        title: String,
        /// The panels.
        maps: Vec<HeatMap>,
    },
}

impl Plot {
    /// Canvas size in pixels.
    pub fn size(&self) -> (u32, u32) {
        match self {
            Plot::Line(_) => (960, 640),
            Plot::Grid { cols, charts, .. } => {
                let rows = charts.len().div_ceil((*cols).max(1)) as u32;
                (900 * (*cols).max(1) as u32, 50 + 600 * rows)
            }
            Plot::Heat { maps, .. } => {
                // Cells of at least 16 px where every row and column carries its own label (a
                // class), so that the labels stay readable; index-labelled maps keep the size.
                let n = maps
                    .iter()
                    .filter(|m| m.row_labels.is_some())
                    .map(|m| m.n_rows.max(m.n_cols))
                    .max()
                    .unwrap_or(0);
                let side = (16 * n as u32).max(376);
                ((side + 184) * maps.len().max(1) as u32, side + 224)
            }
        }
    }

    /// Draws the figure on an area of any backend.
    pub fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        match self {
            Plot::Line(c) => line::draw_line_chart(area, c),
            Plot::Grid {
                title,
                cols,
                charts,
            } => {
                let (top, body) = area.split_vertically(50);
                top.titled(title, (FONT, 26)).map_err(e)?;
                let rows = charts.len().div_ceil((*cols).max(1));
                for (panel, c) in body.split_evenly((rows, (*cols).max(1))).iter().zip(charts) {
                    line::draw_line_chart(panel, c)?;
                }
                Ok(())
            }
            Plot::Heat { title, maps } => {
                let (top, body) = area.split_vertically(44);
                top.titled(title, (FONT, 24)).map_err(e)?;
                for (panel, m) in body.split_evenly((1, maps.len().max(1))).iter().zip(maps) {
                    heatmap::draw_heatmap(panel, m)?;
                }
                Ok(())
            }
        }
    }

    /// The figure encoded in `format`; `path` names it in errors.
    pub fn render(&self, path: &Path, format: ImageFormat) -> Result<Vec<u8>> {
        match format {
            ImageFormat::Png => render_png(path, self.size(), |a| self.draw(a)),
            ImageFormat::Svg => render_svg(path, self),
        }
    }
}

fn render_error(path: &Path, message: String) -> Error {
    Error::Render {
        path: path.to_path_buf(),
        message,
    }
}

/// Draws on a white `width × height` canvas and encodes it as PNG bytes.
pub fn render_png(
    path: &Path,
    (width, height): (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> std::result::Result<(), String>,
) -> Result<Vec<u8>> {
    register_font();
    let err = |m: String| render_error(path, m);
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

/// The figure as an SVG document with the font embedded as a `@font-face` (base64 TrueType),
/// so that its text renders the same without DejaVu Sans installed. Only the glyphs of the
/// characters the document contains are embedded (see [`font_subset`]): tens of kilobytes
/// instead of the whole font's 0.76 MB.
pub fn render_svg(path: &Path, fig: &Plot) -> Result<Vec<u8>> {
    register_font();
    let err = |m: String| render_error(path, m);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, fig.size()).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        fig.draw(&root).map_err(err)?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    let font = font_subset(&svg).map_err(|e| err(format!("font subsetting: {e}")))?;
    let style = format!(
        "<defs><style>@font-face {{ font-family: \"{FONT}\"; src: url(data:font/ttf;base64,{}) format(\"truetype\"); }}</style></defs>\n",
        base64::engine::general_purpose::STANDARD.encode(font)
    );
    let at = svg
        .find('>')
        .map(|i| i + 1)
        .ok_or_else(|| err("no <svg> element".into()))?;
    svg.insert_str(at, &format!("\n{style}"));
    Ok(svg.into_bytes())
}

/// DejaVu Sans reduced to the glyphs of the characters in `text` (every character of the SVG
/// document, markup included: a superset of its text), with a Unicode cmap so that browsers
/// and editors map the text to them; hinting and kerning tables are left out. Deterministic:
/// the glyphs are kept in the font's own order.
pub fn font_subset(text: &str) -> std::result::Result<Vec<u8>, String> {
    use allsorts::binary::read::ReadScope;
    use allsorts::font::{Font, MatchingPresentation};
    use allsorts::font_data::FontData;
    use allsorts::subset::{subset, CmapTarget, SubsetProfile};
    let data = ReadScope::new(FONT_BYTES)
        .read::<FontData<'_>>()
        .map_err(|e| e.to_string())?;
    let mut font =
        Font::new(data.table_provider(0).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    // The markup escapes ', ", &, < and > as entities: they are kept whether or not they
    // appear literally.
    let chars: std::collections::BTreeSet<char> = text
        .chars()
        .chain("'\"&<>".chars())
        .filter(|c| !c.is_control())
        .collect();
    let mut glyphs: Vec<u16> = chars
        .into_iter()
        .map(|c| {
            font.lookup_glyph_index(c, MatchingPresentation::NotRequired, None)
                .0
        })
        .filter(|&g| g != 0)
        .collect();
    glyphs.push(0);
    glyphs.sort_unstable();
    glyphs.dedup();
    let provider = data.table_provider(0).map_err(|e| e.to_string())?;
    subset(
        &provider,
        &glyphs,
        &SubsetProfile::Minimal,
        CmapTarget::Unicode,
    )
    .map_err(|e| e.to_string())
}

/// Thumbnail width in a contact sheet.
pub const THUMB_WIDTH: u32 = 480;

/// A contact sheet: every PNG as a thumbnail (scaled to [`THUMB_WIDTH`] wide, name below), three
/// per row, under `title`.
pub fn contact_sheet(path: &Path, title: &str, pngs: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let err = |m: String| render_error(path, m);
    let thumbs = pngs
        .iter()
        .map(|(name, bytes)| {
            let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
                .map_err(|e| err(format!("{name}: {e}")))?
                .to_rgb8();
            let h = (img.height() as f64 * THUMB_WIDTH as f64 / img.width() as f64).round() as u32;
            let t = image::imageops::resize(
                &img,
                THUMB_WIDTH,
                h.max(1),
                image::imageops::FilterType::Triangle,
            );
            Ok((name.clone(), t))
        })
        .collect::<Result<Vec<_>>>()?;
    let cols = 3usize;
    let row_h: Vec<u32> = thumbs
        .chunks(cols)
        .map(|c| c.iter().map(|t| t.1.height()).max().unwrap_or(0) + 28)
        .collect();
    let (w, h) = (
        THUMB_WIDTH * cols as u32 + 40,
        60 + row_h.iter().sum::<u32>(),
    );
    render_png(path, (w, h), |root| {
        let e = |e: DrawingAreaErrorKind<_>| e.to_string();
        root.draw(&Text::new(title.to_string(), (20, 18), (FONT, 26)))
            .map_err(e)?;
        let mut y = 60;
        for (r, row) in thumbs.chunks(cols).enumerate() {
            for (c, (name, t)) in row.iter().enumerate() {
                let x = 20 + (c as u32 * THUMB_WIDTH) as i32;
                let elem = BitMapElement::with_owned_buffer(
                    (x, y),
                    (t.width(), t.height()),
                    t.as_raw().clone(),
                )
                .ok_or("thumbnail buffer size")?;
                root.draw(&elem).map_err(e)?;
                root.draw(&Text::new(
                    name.clone(),
                    (x + 8, y + t.height() as i32 + 4),
                    (FONT, 16),
                ))
                .map_err(e)?;
            }
            y += row_h[r] as i32;
        }
        Ok(())
    })
}

/// A line chart as PNG bytes (960 × 640).
pub fn line_chart_png(path: &Path, spec: &LineChart) -> Result<Vec<u8>> {
    Plot::Line(spec.clone()).render(path, ImageFormat::Png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_renders_to_png_and_svg_and_tiles_into_a_contact_sheet() {
        let chart = LineChart::new("t", "x", "y")
            .log_y()
            .with_series(vec![
                Series::line("a", vec![(0.0, 1.0), (1.0, 0.1)], PALETTE[0]),
                Series::line("b", vec![(0.0, 2.0), (1.0, f64::NAN)], PALETTE[1]).dashed(),
            ])
            .with_hline(0.5, "ref");
        let fig = Plot::Line(chart);
        let png = fig.render(Path::new("t.png"), ImageFormat::Png).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let svg =
            String::from_utf8(fig.render(Path::new("t.svg"), ImageFormat::Svg).unwrap()).unwrap();
        assert!(svg.contains("@font-face") && svg.contains("font-family=\"DejaVu Sans\""));
        let sheet = contact_sheet(
            Path::new("figures.png"),
            "sheet",
            &[("a.png".into(), png.clone()), ("b.png".into(), png)],
        )
        .unwrap();
        let img = image::load_from_memory(&sheet).unwrap();
        assert_eq!(img.width(), THUMB_WIDTH * 3 + 40);
    }
}

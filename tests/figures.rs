//! Figures checked from their SVG: the legend key is drawn in each series' style, heat maps
//! carry a colour bar, class labels sit at the centres of their cells, and every figure kind
//! is well-formed XML with its font embedded.

mod common;

use std::path::Path;

use ntk_dynamics::report::plot::heatmap::COLORBAR_STEPS;
use ntk_dynamics::report::plot::{
    ColorScale, HeatMap, ImageFormat, LineChart, Plot, Series, PALETTE,
};
use plotters::style::RGBColor;

fn svg(fig: &Plot) -> String {
    String::from_utf8(fig.render(Path::new("t.svg"), ImageFormat::Svg).unwrap()).unwrap()
}

fn hex(c: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

/// `(points, stroke)` of every polyline.
fn polylines(doc: &roxmltree::Document) -> Vec<(Vec<(f64, f64)>, String)> {
    doc.descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .map(|n| {
            let pts = n
                .attribute("points")
                .unwrap_or("")
                .split_whitespace()
                .filter_map(|p| {
                    let (x, y) = p.split_once(',')?;
                    Some((x.parse().ok()?, y.parse().ok()?))
                })
                .collect();
            (pts, n.attribute("stroke").unwrap_or("").to_uppercase())
        })
        .collect()
}

#[test]
fn legend_keys_are_drawn_in_the_series_style() {
    let (solid, dashed) = (PALETTE[0], PALETTE[3]);
    let xs: Vec<(f64, f64)> = (0..50)
        .map(|i| (i as f64, (i as f64 * 0.1).sin()))
        .collect();
    let fig = Plot::Line(LineChart::new("legend", "x", "y").with_series(vec![
        Series::line("solid", xs.clone(), solid),
        Series::line("dashed", xs.iter().map(|p| (p.0, p.1 + 0.5)).collect(), dashed).dashed(),
    ]));
    let text = svg(&fig);
    let doc = roxmltree::Document::parse(&text).unwrap();
    let lines = polylines(&doc);
    // horizontal 2-point segments of a colour: (x0, x1, y)
    let segments = |color: RGBColor| -> Vec<(f64, f64, f64)> {
        lines
            .iter()
            .filter(|(p, c)| *c == hex(color) && p.len() == 2 && p[0].1 == p[1].1)
            .map(|(p, _)| (p[0].0, p[1].0, p[0].1))
            .collect()
    };
    let keys = |color: RGBColor, dashes: bool| -> usize {
        let s = segments(color);
        if dashes {
            // the key: [a, a+8] and [a+12, a+20] on one line
            s.iter()
                .filter(|a| (a.1 - a.0 - 8.0).abs() < 0.5)
                .filter(|a| {
                    s.iter().any(|b| {
                        b.2 == a.2
                            && (b.0 - a.0 - 12.0).abs() < 0.5
                            && (b.1 - b.0 - 8.0).abs() < 0.5
                    })
                })
                .count()
        } else {
            s.iter().filter(|a| (a.1 - a.0 - 20.0).abs() < 0.5).count()
        }
    };
    assert_eq!(keys(solid, false), 1, "solid key: one 20-px line");
    assert_eq!(keys(solid, true), 0, "no dashed key for the solid series");
    assert_eq!(keys(dashed, true), 1, "dashed key: two 8-px dashes");
    assert_eq!(keys(dashed, false), 0, "no solid key for the dashed series");
}

#[test]
fn heat_maps_have_a_colour_bar_and_labels_at_cell_centres() {
    let k = 4;
    let values: Vec<f64> = (0..k * k).map(|i| i as f64 / (k * k) as f64).collect();
    let classes: Vec<String> = (0..k).map(|i| format!("class{i}")).collect();
    let map = HeatMap {
        title: "confusion".into(),
        n_rows: k,
        n_cols: k,
        values: values.clone(),
        scale: ColorScale::Sequential { max: 1.0 },
        row_labels: Some(classes.clone()),
        col_labels: Some(classes.clone()),
        cell_text: Some((0..k * k).map(|i| (i.to_string(), String::new())).collect()),
        x_desc: "predicted class".into(),
        y_desc: "true class".into(),
        colorbar_label: "fraction of the true class".into(),
    };
    let fig = Plot::Heat {
        title: "t".into(),
        maps: vec![map.clone()],
    };
    let text = svg(&fig);
    let doc = roxmltree::Document::parse(&text).unwrap();
    let rects: Vec<(f64, f64, f64, f64, String)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect"))
        .map(|n| {
            let f = |a| {
                n.attribute(a)
                    .and_then(|v: &str| v.parse().ok())
                    .unwrap_or(0.0)
            };
            (
                f("x"),
                f("y"),
                f("width"),
                f("height"),
                n.attribute("fill").unwrap_or("").to_uppercase(),
            )
        })
        .collect();
    let texts: Vec<(f64, f64, String)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| {
            let f = |a| {
                n.attribute(a)
                    .and_then(|v: &str| v.parse().ok())
                    .unwrap_or(f64::NAN)
            };
            (f("x"), f("y"), n.text().unwrap_or("").trim().to_string())
        })
        .collect();
    for j in 0..k {
        // the cell (0, j) has a unique colour; its column label must sit at its centre
        let fill = hex(map.scale.color(values[j]));
        let cell = rects
            .iter()
            .find(|r| r.4 == fill && (r.2 - r.3).abs() < 1.5 && r.2 > 20.0 && r.2 < 200.0)
            .expect("cell rect");
        let label = texts
            .iter()
            .find(|t| t.2 == classes[j])
            .expect("column label");
        let centre = cell.0 + cell.2 / 2.0;
        assert!(
            (label.0 - centre).abs() <= 1.0,
            "label {j} at {} vs centre {centre}",
            label.0
        );
        // and the count of cell (0, j) at the centre of the cell too
        let count = texts
            .iter()
            .find(|t| t.2 == j.to_string() && (t.1 - (cell.1 + cell.3 / 2.0)).abs() <= 1.5);
        assert!(
            count.is_some_and(|c| (c.0 - centre).abs() <= 1.0),
            "count in cell {j}"
        );
    }
    // a colour bar: a column of COLORBAR_STEPS 16-px rectangles at one x, and its label
    let mut xs: Vec<i64> = rects
        .iter()
        .filter(|r| (r.2 - 16.0).abs() < 0.5)
        .map(|r| r.0 as i64)
        .collect();
    xs.sort_unstable();
    let most = xs
        .chunk_by(|a, b| a == b)
        .map(|c| c.len())
        .max()
        .unwrap_or(0);
    assert!(most >= COLORBAR_STEPS, "colour bar steps: {most}");
    assert!(texts.iter().any(|t| t.2 == "fraction of the true class"));
    assert!(
        texts.iter().any(|t| t.2 == "predicted class") && texts.iter().any(|t| t.2 == "true class")
    );
}

#[test]
fn every_figure_kind_is_well_formed_svg_with_its_font() {
    let chart = LineChart::new("the two tracks' outputs & \"y\" < 1", "x", "y")
        .log_y()
        .with_series(vec![Series::line(
            "s",
            vec![(1.0, 1e-3), (2.0, 1e-1)],
            PALETTE[0],
        )
        .markers()
        .with_errors(vec![(1.0, 5e-4, 2e-3), (2.0, 5e-2, 2e-1)])])
        .with_floor(1e-12, "floor");
    let map = HeatMap {
        title: "m".into(),
        n_rows: 3,
        n_cols: 3,
        values: vec![-1.0, 0.0, 1.0, 0.5, -0.5, 0.2, 0.0, 0.1, -0.1],
        scale: ColorScale::Diverging { max: 1.0 },
        row_labels: None,
        col_labels: None,
        cell_text: None,
        x_desc: "j".into(),
        y_desc: "i".into(),
        colorbar_label: "Θ".into(),
    };
    for fig in [
        Plot::Line(chart.clone()),
        Plot::Grid {
            title: "g".into(),
            cols: 2,
            charts: vec![chart.clone(), chart],
        },
        Plot::Heat {
            title: "h".into(),
            maps: vec![map],
        },
    ] {
        let text = svg(&fig);
        let doc = roxmltree::Document::parse(&text).expect("well-formed SVG");
        assert!(text.contains("@font-face") && text.contains("base64,"));
        embedded_font_draws_every_character_as_the_full_font(&text, &doc);
    }
}

/// The embedded font is a subset: read by an independent parser (ttf-parser), it maps every
/// character of every `<text>` to a glyph with the full DejaVu Sans glyph's advance and
/// outline box, and it is far smaller than the full font.
fn embedded_font_draws_every_character_as_the_full_font(text: &str, doc: &roxmltree::Document) {
    use base64::Engine as _;
    let full_bytes = std::fs::read(repo("src/report/fonts/DejaVuSans.ttf")).unwrap();
    let full = ttf_parser::Face::parse(&full_bytes, 0).unwrap();
    let start = text.find("base64,").unwrap() + "base64,".len();
    let end = start + text[start..].find(')').unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&text[start..end])
        .unwrap();
    assert!(bytes.len() * 10 < full_bytes.len(), "{} bytes", bytes.len());
    let sub = ttf_parser::Face::parse(&bytes, 0).expect("a valid TrueType font");
    assert_eq!(sub.units_per_em(), full.units_per_em());
    let mut seen = 0;
    for t in doc.descendants().filter(|n| n.has_tag_name("text")) {
        for c in t.text().unwrap_or("").chars().filter(|c| !c.is_control()) {
            let (Some(a), Some(b)) = (full.glyph_index(c), sub.glyph_index(c)) else {
                panic!("{c:?} is not in the embedded font (or in DejaVu Sans)");
            };
            assert_eq!(full.glyph_hor_advance(a), sub.glyph_hor_advance(b), "{c:?}");
            assert_eq!(
                full.glyph_bounding_box(a),
                sub.glyph_bounding_box(b),
                "{c:?}"
            );
            seen += 1;
        }
    }
    assert!(seen > 10, "{seen} characters checked");
}

// ---------------------------------------------------------------------------------------------
// Every figure a run or a sweep draws, checked mechanically: from its SVG (at least three
// labelled ticks on every axis of every line chart; no legend box over a drawn line or marker)
// and from its specification (no two legend entries drawn alike; dashed only for the test
// split; every drawn series identified by the legend).

use ntk_dynamics::report::plot::{Marker, Stroke};

/// A parsed `<text>`: position, anchor, baseline shift and content.
struct SvgText {
    x: f64,
    y: f64,
    anchor: String,
    dy: String,
    text: String,
}

fn svg_texts(doc: &roxmltree::Document) -> Vec<SvgText> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| SvgText {
            x: n.attribute("x")
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN),
            y: n.attribute("y")
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN),
            anchor: n.attribute("text-anchor").unwrap_or("").to_string(),
            dy: n.attribute("dy").unwrap_or("").to_string(),
            text: n.text().unwrap_or("").trim().to_string(),
        })
        .collect()
}

/// A tick label: a number as the charts write them (`0.25`, `-3`, `2e-5`).
fn numeric(t: &str) -> bool {
    !t.is_empty() && t.parse::<f64>().is_ok()
}

/// Labelled ticks per axis of a line chart or a grid of them (`rows × cols` panels on a canvas
/// of `size`, a 50-px title band above a grid): y-axis labels are right-aligned numbers sharing
/// an x within one panel row, x-axis labels centred numbers hanging below a shared y within
/// one panel column. Every axis found must carry at least three.
fn tick_problems(svg: &str, rows: usize, cols: usize, size: (f64, f64), top: f64) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    let texts = svg_texts(&doc);
    let row_of = |y: f64| {
        (((y - top) / ((size.1 - top) / rows as f64))
            .floor()
            .max(0.0)) as usize
    };
    let col_of = |x: f64| ((x / (size.0 / cols as f64)).floor().max(0.0)) as usize;
    let mut y_axes: std::collections::BTreeMap<(i64, usize), usize> = Default::default();
    let mut x_axes: std::collections::BTreeMap<(i64, usize), usize> = Default::default();
    for t in texts.iter().filter(|t| numeric(&t.text)) {
        if t.anchor == "end" {
            *y_axes.entry((t.x.round() as i64, row_of(t.y))).or_default() += 1;
        } else if t.anchor == "middle" && t.dy == "0.76em" {
            *x_axes.entry((t.y.round() as i64, col_of(t.x))).or_default() += 1;
        }
    }
    let mut out = Vec::new();
    if y_axes.len() < rows * cols.min(1) || x_axes.is_empty() {
        out.push(format!("axes not found: {y_axes:?} {x_axes:?}"));
    }
    for (k, n) in y_axes.iter().chain(&x_axes) {
        if *n < 3 {
            out.push(format!("an axis at {k:?} has {n} labelled tick(s)"));
        }
    }
    out
}

/// Legend boxes (black-outlined, unfilled rectangles) that a data line or marker crosses. Keys
/// inside a box (lines wholly inside it, markers in its key column) are the legend itself.
/// Returns the problems and the number of legend boxes found.
fn legend_problems(svg: &str) -> (Vec<String>, usize) {
    let doc = roxmltree::Document::parse(svg).unwrap();
    let attr = |n: &roxmltree::Node, a: &str| -> f64 {
        n.attribute(a)
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let boxes: Vec<(f64, f64, f64, f64)> = doc
        .descendants()
        .filter(|n| {
            n.has_tag_name("rect")
                && n.attribute("fill") == Some("none")
                && n.attribute("stroke") == Some("#000000")
        })
        .map(|n| {
            let (x, y) = (attr(&n, "x"), attr(&n, "y"));
            (x, y, x + attr(&n, "width"), y + attr(&n, "height"))
        })
        .collect();
    let inside = |p: (f64, f64), b: &(f64, f64, f64, f64)| {
        p.0 > b.0 + 1.0 && p.0 < b.2 - 1.0 && p.1 > b.1 + 1.0 && p.1 < b.3 - 1.0
    };
    let mut out = Vec::new();
    for (pts, stroke) in polylines(&doc) {
        for b in &boxes {
            if pts
                .iter()
                .all(|&p| inside(p, b) || (p.0 >= b.0 && p.0 <= b.2 && p.1 >= b.1 && p.1 <= b.3))
            {
                continue; // a legend key
            }
            let crosses = pts.windows(2).any(|w| {
                // sample the segment: enough for a 1-px test at these sizes
                (0..=20).any(|k| {
                    let t = k as f64 / 20.0;
                    inside(
                        (
                            w[0].0 + t * (w[1].0 - w[0].0),
                            w[0].1 + t * (w[1].1 - w[0].1),
                        ),
                        b,
                    )
                })
            }) || (pts.len() == 1 && inside(pts[0], b));
            if crosses {
                out.push(format!("a line ({stroke}) crosses the legend box {b:?}"));
            }
        }
    }
    for c in doc.descendants().filter(|n| n.has_tag_name("circle")) {
        let p = (attr(&c, "cx"), attr(&c, "cy"));
        for b in &boxes {
            if inside(p, b) && p.0 > b.0 + 40.0 {
                out.push(format!("a marker at {p:?} is under the legend box {b:?}"));
            }
        }
    }
    (out, boxes.len())
}

/// The line charts of a figure, with its panel grid.
fn line_charts(p: &Plot) -> (Vec<&LineChart>, usize, usize) {
    match p {
        Plot::Line(c) => (vec![c], 1, 1),
        Plot::Grid { cols, charts, .. } => {
            let cols = (*cols).max(1);
            (charts.iter().collect(), charts.len().div_ceil(cols), cols)
        }
        Plot::Heat { .. } => (Vec::new(), 0, 0),
    }
}

/// Problems of a chart's specification: two legend entries drawn alike; a dashed series that is
/// not a test split; a drawn series the legend does not identify (neither labelled nor sharing
/// its colour with a labelled series, nor a 1-px overlay announced in another's entry); too
/// many legend entries.
fn spec_problems(c: &LineChart) -> Vec<String> {
    let mut out = Vec::new();
    let look = |s: &Series| (s.color.0, s.color.1, s.color.2, s.style, s.marker);
    let labelled: Vec<&Series> = c.series.iter().filter(|s| !s.label.is_empty()).collect();
    for (i, a) in labelled.iter().enumerate() {
        for b in &labelled[..i] {
            if look(a) == look(b) {
                out.push(format!("{:?} and {:?} are drawn alike", a.label, b.label));
            }
        }
        if a.style == Stroke::Dashed && !a.label.contains("test") {
            out.push(format!("{:?} is dashed but not a test split", a.label));
        }
    }
    // A key entry that says what the colours mean identifies every curve of the chart.
    let colour_key = c
        .series
        .iter()
        .any(|s| s.key_only && s.label.starts_with("colour:"));
    for s in c
        .series
        .iter()
        .filter(|s| s.label.is_empty() && !s.points.is_empty())
    {
        let identified = colour_key || labelled.iter().any(|l| l.color == s.color) || s.width == 1;
        if !identified {
            out.push(format!(
                "an unlabelled series in {:?} is not identified",
                s.color
            ));
        }
        if s.style == Stroke::Dashed
            && s.width != 1
            && !labelled
                .iter()
                .any(|l| l.color == s.color && l.style == Stroke::Dashed)
        {
            out.push("an unlabelled dashed series".into());
        }
    }
    let entries =
        labelled.len() + c.hlines.len() + c.regions.iter().filter(|r| !r.label.is_empty()).count();
    if entries > 12 {
        out.push(format!("{entries} legend entries"));
    }
    let _ = Marker::Dot;
    out
}

/// Every check on every figure; panics listing what fails. Returns the number of legend boxes
/// and line charts checked.
fn check_figures(figures: &[(String, Plot)]) -> (usize, usize) {
    let mut problems = Vec::new();
    let (mut legends, mut checked) = (0, 0);
    for (name, fig) in figures {
        let (charts, rows, cols) = line_charts(fig);
        if charts.is_empty() {
            continue;
        }
        let text = svg(fig);
        let size = fig.size();
        let top = if matches!(fig, Plot::Grid { .. }) {
            50.0
        } else {
            0.0
        };
        let (legend, boxes) = legend_problems(&text);
        legends += boxes;
        checked += charts.len();
        for p in tick_problems(&text, rows, cols, (size.0 as f64, size.1 as f64), top)
            .into_iter()
            .chain(legend)
            .chain(charts.iter().flat_map(|c| spec_problems(c)))
        {
            problems.push(format!("{name}: {p}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    (legends, checked)
}

/// A run's record from a config text, and the run directory it wrote (under `dir`).
fn record_of(toml: &str, dir: &Path) -> (ntk_dynamics::record::RunRecord, std::path::PathBuf) {
    let exp = ntk_dynamics::config::parse_str(toml, None).unwrap();
    let opts = ntk_dynamics::run::RunOptions::default();
    ntk_dynamics::pipeline::run_into(&exp, Some(&dir.join("run")), &opts).unwrap()
}

/// The figure files (PNG, SVG) of a run directory and their bytes.
fn figure_bytes(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".png") || n.ends_with(".svg"))
        .map(|n| (n.clone(), std::fs::read(dir.join(&n)).unwrap()))
        .collect()
}

/// `--replot` of a run redraws, from its figure data, predictions and re-read data alone, the
/// very bytes the run drew from its record in memory, and the directory then passes its
/// integrity check with the redrawn figures' hashes taken from `replot.json`.
fn replot_reproduces_the_run_figures(run_dir: &Path) {
    let before = figure_bytes(run_dir);
    assert!(before.len() >= 8, "{before:?}");
    let done = ntk_dynamics::pipeline::replot::replot(run_dir).unwrap();
    assert!(done.removed.is_empty(), "{:?}", done.removed);
    let after = figure_bytes(run_dir);
    let differing: Vec<&String> = before
        .iter()
        .filter(|(name, bytes)| after.get(*name) != Some(bytes))
        .map(|(name, _)| name)
        .collect();
    assert!(
        differing.is_empty() && after.len() == before.len(),
        "redrawn differently: {differing:?}"
    );
    let report = ntk_dynamics::report::repro::read_report(run_dir).unwrap();
    let hashes = ntk_dynamics::report::repro::recorded_hashes(&report).unwrap();
    let integrity = ntk_dynamics::report::verify::integrity(run_dir, &hashes).unwrap();
    assert!(integrity.ok(), "{integrity:?}");
    // A stored file that no longer matches its recorded hash is named, and nothing is drawn.
    let predictions = run_dir.join("predictions.csv");
    if predictions.is_file() {
        let text = std::fs::read_to_string(&predictions).unwrap();
        std::fs::write(&predictions, text.replacen(",0.", ",1.", 1)).unwrap();
        let e = ntk_dynamics::pipeline::replot::replot(run_dir).unwrap_err();
        assert!(e.to_string().contains("predictions.csv differs"), "{e}");
        assert_eq!(figure_bytes(run_dir), after);
    }
}

fn repo(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(p)
        .display()
        .to_string()
}

/// Tiny runs that between them draw every kind of run figure: a 1-D regression with an
/// ensemble, a classification, and a text model trained with cross-entropy.
fn tiny_runs() -> Vec<String> {
    vec![
        "[experiment]\nname = \"sine\"\nseed = 1\n[data]\nkind = \"sine\"\nn_train = 10\nn_test = 40\n[model]\nwidth = 64\ndepth = 2\n[training]\nlr_scale = 0.5\nsteps = 60\n[kernel]\nsolutions = [\"analytic\", \"empirical\"]\nprobe_size = 8\n[logging]\nevery = 10\nkernel_every = 20\n[ensemble]\nmembers = 4\n[outputs]\nsave_predictions = false\nformats = [\"png\", \"svg\"]\n".to_string(),
        format!("[experiment]\nname = \"digits\"\nseed = 2\n[data]\nkind = \"csv\"\npath = \"{}\"\ntarget = [\"label\"]\none_hot = true\nstandardize = false\nfeature_scale = 0.0625\nn_train = 60\nn_test = 80\n[model]\nwidth = 64\ndepth = 2\n[training]\nlr_scale = 0.5\nsteps = 40\n[kernel]\nsolutions = [\"analytic\", \"empirical\"]\nprobe_size = 8\n[logging]\nevery = 5\nkernel_every = 10\n", repo("experiments/data/digits.csv")),
        format!("[experiment]\nname = \"text\"\nseed = 0\n[data]\nkind = \"text\"\npath = \"{}\"\ncontext = 4\nlowercase = true\ntest_fraction = 0.1\nvalidation_fraction = 0.03\nn_train = 300\nn_val = 100\nn_test = 200\n[model]\nwidth = 32\ndepth = 2\n[training]\nloss = \"cross_entropy\"\nlearning_rate = 5.0\nbatch_size = 64\nsteps = 40\ntwin = \"function\"\n[kernel]\nsolutions = [\"analytic\", \"empirical\"]\nform = \"trace\"\nprobe_size = 8\n[logging]\nevery = 10\nkernel_every = 20\n", repo("experiments/data/hamlet.txt")),
    ]
}

#[test]
fn every_run_figure_has_readable_axes_a_free_legend_and_distinct_series() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, toml) in tiny_runs().iter().enumerate() {
        let dir = tmp.path().join(format!("r{i}"));
        let (record, run_dir) = record_of(toml, &dir);
        let (legends, charts) =
            check_figures(&ntk_dynamics::report::plot::run_charts::figures(&record));
        assert!(
            legends >= charts / 2 && charts >= 8,
            "{legends} legends, {charts} charts"
        );
        replot_reproduces_the_run_figures(&run_dir);
    }
}

#[test]
fn every_committed_sweep_figure_has_readable_axes_a_free_legend_and_distinct_series() {
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    let mut kinds = std::collections::BTreeSet::new();
    for exp in std::fs::read_dir(&results).unwrap().flatten() {
        for d in std::fs::read_dir(exp.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if !d.path().join("sweep.toml").is_file() {
                continue;
            }
            if d.path().to_string_lossy().contains("fashion")
                && !Path::new("/usr/share/datasets/fashion-mnist").exists()
            {
                continue; // its plan names the Debian data set's files
            }
            let figures = ntk_dynamics::pipeline::replot::stored_sweep_figures(&d.path())
                .unwrap_or_else(|e| panic!("{}: {e}", d.path().display()));
            kinds.extend(figures.iter().map(|f| f.0.clone()));
            check_figures(&figures);
        }
    }
    for k in ["scaling", "phases", "language", "noise"] {
        assert!(kinds.contains(k), "no committed sweep draws {k}: {kinds:?}");
    }
}

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
    let chart = LineChart::new("a", "x", "y")
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
        roxmltree::Document::parse(&text).expect("well-formed SVG");
        assert!(text.contains("@font-face") && text.contains("base64,"));
    }
}

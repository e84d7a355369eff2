//! `--verify` of the figures (PNG files) a run wrote.

use super::verify::{Verdict, Worst};

/// A pixel differs visibly when one of its channels differs by more than this (of 255): a
/// heat map's colours shift by a few levels across machines everywhere, which no reader sees.
pub const PNG_VISIBLE_CHANNEL_DIFFERENCE: u8 = 64;

/// Compares a reproduced PNG figure with the recorded one. On the recording machine a figure
/// is a deterministic function of the run's numbers: its bytes must be identical. Across
/// machines both must decode to images of the same size; how many pixels differ visibly is
/// reported (as the largest channel difference, 0–255, and the share of pixels that differ
/// visibly), not judged: numbers within the tolerances can move a curve and an axis range as
/// much as another figure of the same size differs. Measured on the committed runs, verified on
/// another CPU than they were recorded on: up to 3.2 % of the pixels of a spectrum whose
/// smallest eigenvalue is at f32 round-off, against 4–8 % between two different line charts of
/// one run.
pub fn compare_png(recorded: &[u8], reproduced: &[u8], bitwise: bool) -> Verdict {
    if recorded == reproduced {
        return Verdict::Identical;
    }
    if bitwise {
        return Verdict::Mismatch(
            "its pixels differ from the reproduction's (on the recording machine a figure is drawn from bit-identical numbers, so its bytes must be identical)".into(),
        );
    }
    let decode = |b: &[u8]| image::load_from_memory_with_format(b, image::ImageFormat::Png);
    let (a, b) = match (decode(recorded), decode(reproduced)) {
        (Ok(a), Ok(b)) => (a.to_rgba8(), b.to_rgba8()),
        (Err(e), _) => return Verdict::Mismatch(format!("not a PNG image ({e})")),
        (_, Err(e)) => return Verdict::Mismatch(format!("the reproduction's is not a PNG ({e})")),
    };
    if a.dimensions() != b.dimensions() {
        return Verdict::Mismatch(format!(
            "{}×{} pixels, the reproduction's {}×{}",
            a.width(),
            a.height(),
            b.width(),
            b.height()
        ));
    }
    let mut worst = Worst::default();
    let mut differing = 0usize;
    for (x, y, p) in a.enumerate_pixels() {
        let q = b.get_pixel(x, y);
        let d = p.0.iter().zip(q.0).map(|(u, v)| u.abs_diff(v)).max();
        let d = d.unwrap_or(0);
        if d > PNG_VISIBLE_CHANNEL_DIFFERENCE {
            differing += 1;
        }
        if f64::from(d) > worst.abs {
            worst.abs = f64::from(d);
            worst.abs_at = format!("pixel ({x}, {y})");
        }
    }
    worst.rel = differing as f64 / (f64::from(a.width()) * f64::from(a.height())).max(1.0);
    worst.rel_at = format!(
        "share of pixels that differ by more than {PNG_VISIBLE_CHANNEL_DIFFERENCE}/255, not judged across machines"
    );
    Verdict::WithinTolerance(worst)
}

//! `--verify` of the figures (PNG files) a run wrote.

use image::RgbaImage;

use super::verify::Verdict;

/// A pixel differs visibly when one of its channels differs by more than this (of 255): a
/// heat map's colours shift by a few levels across machines everywhere, which no reader sees.
pub const PNG_VISIBLE_CHANNEL_DIFFERENCE: u8 = 64;

/// Across machines, a figure of which more than this share of pixels differs visibly from the
/// reproduction's is not the run's figure. Numbers within the tolerances moved at most 3.2 % of
/// a committed run's figure's pixels (verified on another CPU than it was recorded on: a
/// spectrum whose smallest eigenvalue is at f32 round-off sets its axis range); a blank, black
/// or inverted figure differs in far more. Smaller shares are shown, not judged: two different
/// line charts of one run differ in only 4–8 % of their pixels (mostly white background).
pub const PNG_REPLACED_PIXEL_SHARE: f64 = 0.25;

/// Across machines, a figure must have between 1/this and this times the reproduction's ink
/// (pixels that differ visibly from the figure's background, its most common colour).
/// Measured on a committed run's figures verified on another CPU: the ratio was within 0.4 % of
/// 1 for every figure, the spectrum whose axis range moved included; a blank figure has none.
pub const PNG_INK_RATIO_LIMIT: f64 = 1.25;

/// Compares a reproduced PNG figure with the recorded one. On the recording machine a figure
/// is a deterministic function of the run's numbers: its bytes must be identical (the message
/// says whether its pixels differ too). Across machines both must decode to images of the same
/// size; a figure of which more than [`PNG_REPLACED_PIXEL_SHARE`] of the pixels differ visibly
/// is a mismatch, a smaller share is reported, not judged.
pub fn compare_png(recorded: &[u8], reproduced: &[u8], bitwise: bool) -> Verdict {
    if recorded == reproduced {
        return Verdict::Identical;
    }
    let decode = |b: &[u8]| {
        image::load_from_memory_with_format(b, image::ImageFormat::Png).map(|i| i.to_rgba8())
    };
    let (a, b) = match (decode(recorded), decode(reproduced)) {
        (Ok(a), Ok(b)) => (a, b),
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
    let diff = PixelDifference::of(&a, &b);
    if bitwise {
        return Verdict::Mismatch(if diff.largest == 0 {
            "its bytes differ from the reproduction's though its pixels are the same (re-encoded or with data appended): on the recording machine a figure's bytes must be identical".into()
        } else {
            format!(
                "its pixels differ from the reproduction's ({}): on the recording machine a figure is drawn from bit-identical numbers, so its bytes must be identical",
                diff.describe()
            )
        });
    }
    let (ink_a, ink_b) = (ink(&a), ink(&b));
    let ratio = ink_a as f64 / (ink_b as f64).max(1.0);
    if !(1.0 / PNG_INK_RATIO_LIMIT..=PNG_INK_RATIO_LIMIT).contains(&ratio) {
        return Verdict::Mismatch(format!(
            "it has {:.0} % of the reproduction's ink ({ink_a} against {ink_b} pixels off the background), so it is not the run's figure (across machines the two agree within a few tenths of a percent)",
            100.0 * ratio
        ));
    }
    if diff.visible_share > PNG_REPLACED_PIXEL_SHARE {
        return Verdict::Mismatch(format!(
            "{}: more than {:.0} % of its pixels differ visibly, so it is not the run's figure (numbers within the tolerances move far fewer)",
            diff.describe(),
            100.0 * PNG_REPLACED_PIXEL_SHARE
        ));
    }
    Verdict::NotJudged(format!(
        "{} (across machines numbers within the tolerances can move curves and axis ranges; only a share above {:.0} % is judged)",
        diff.describe(),
        100.0 * PNG_REPLACED_PIXEL_SHARE
    ))
}

/// Pixels that differ visibly (a channel by more than [`PNG_VISIBLE_CHANNEL_DIFFERENCE`]) from
/// the image's most common colour, its background.
fn ink(img: &RgbaImage) -> usize {
    let mut counts: std::collections::HashMap<[u8; 4], usize> = std::collections::HashMap::new();
    for p in img.pixels() {
        *counts.entry(p.0).or_default() += 1;
    }
    let Some((background, _)) = counts.iter().max_by_key(|(c, n)| (**n, **c)) else {
        return 0;
    };
    img.pixels()
        .filter(|p| {
            p.0.iter()
                .zip(background)
                .any(|(u, v)| u.abs_diff(*v) > PNG_VISIBLE_CHANNEL_DIFFERENCE)
        })
        .count()
}

/// How two images of one size differ.
struct PixelDifference {
    /// Largest difference of a channel, 0–255.
    largest: u8,
    /// Share of pixels with a channel differing by more than
    /// [`PNG_VISIBLE_CHANNEL_DIFFERENCE`].
    visible_share: f64,
}

impl PixelDifference {
    fn of(a: &RgbaImage, b: &RgbaImage) -> PixelDifference {
        let mut largest = 0u8;
        let mut visible = 0usize;
        for (p, q) in a.pixels().zip(b.pixels()) {
            let d = p.0.iter().zip(q.0).map(|(u, v)| u.abs_diff(v)).max();
            let d = d.unwrap_or(0);
            largest = largest.max(d);
            visible += usize::from(d > PNG_VISIBLE_CHANNEL_DIFFERENCE);
        }
        PixelDifference {
            largest,
            visible_share: visible as f64 / (f64::from(a.width()) * f64::from(a.height())).max(1.0),
        }
    }

    fn describe(&self) -> String {
        format!(
            "{:.2} % of its pixels differ by more than {PNG_VISIBLE_CHANNEL_DIFFERENCE}/255, the largest channel difference is {}/255",
            100.0 * self.visible_share,
            self.largest
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(img: &RgbaImage) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn verdicts_follow_the_pixels() {
        let white = RgbaImage::from_pixel(40, 20, image::Rgba([255, 255, 255, 255]));
        let mut line = white.clone();
        for x in 0..40 {
            line.put_pixel(x, 10, image::Rgba([0, 0, 0, 255]));
        }
        let black = RgbaImage::from_pixel(40, 20, image::Rgba([0, 0, 0, 255]));
        // Same pixels, other bytes (data appended after the image end).
        let mut appended = png(&line);
        appended.extend_from_slice(b"trailing");
        assert!(
            matches!(compare_png(&appended, &png(&line), true), Verdict::Mismatch(m) if m.contains("pixels are the same"))
        );
        // The line one row lower: 2 of 20 rows differ (10 %) with the same ink, shown across
        // machines, a mismatch on the same one.
        let mut moved = white.clone();
        for x in 0..40 {
            moved.put_pixel(x, 11, image::Rgba([0, 0, 0, 255]));
        }
        assert!(
            matches!(compare_png(&png(&moved), &png(&line), false), Verdict::NotJudged(m) if m.contains("10.00 %"))
        );
        assert!(
            matches!(compare_png(&png(&moved), &png(&line), true), Verdict::Mismatch(m) if m.contains("10.00 %"))
        );
        // A blank figure for a drawn one: only 5 % of the pixels differ, but it has no ink.
        assert!(
            matches!(compare_png(&png(&white), &png(&line), false), Verdict::Mismatch(m) if m.contains("0 % of the reproduction's ink"))
        );
        // A black figure for a white-and-line one: 95 % differ.
        assert!(
            matches!(compare_png(&png(&black), &png(&line), false), Verdict::Mismatch(m) if m.contains("not the run's figure"))
        );
        assert!(
            matches!(compare_png(b"text", &png(&line), false), Verdict::Mismatch(m) if m.contains("not a PNG"))
        );
    }
}

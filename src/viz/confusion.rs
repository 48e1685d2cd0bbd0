//! A confusion matrix as a heat map: true classes down the rows, predicted classes across the
//! columns, each cell's colour its share of the row (so a class with few examples is as
//! readable as a large one) and its count written inside.

use super::canvas::{blues, Canvas};
use super::{fonts_ready, FONT};
use anyhow::{anyhow, ensure};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// Where the cells lie in the picture.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConfusionLayout {
    /// Left edge of the matrix in pixels.
    pub left: u32,
    /// Top edge of the matrix in pixels.
    pub top: u32,
    /// Side of one cell in pixels.
    pub cell: u32,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
}

impl ConfusionLayout {
    /// Top-left pixel of the cell (true class `row`, predicted class `col`).
    pub fn cell_origin(&self, row: usize, col: usize) -> (u32, u32) {
        (
            self.left + col as u32 * self.cell,
            self.top + row as u32 * self.cell,
        )
    }
}

/// Picture geometry for class names of at most `label_px` pixels wide (0 without text).
pub fn confusion_layout(n: usize, label_px: u32, text: bool) -> ConfusionLayout {
    let cell = (640 / n.max(1) as u32).clamp(24, 64);
    let (title, axis) = if text { (50, 30) } else { (0, 0) };
    let margin = 12;
    let left = margin + axis + label_px + 8;
    let top = margin + title;
    let side = cell * n as u32;
    ConfusionLayout {
        left,
        top,
        cell,
        width: left + side + margin,
        height: top + side + 8 + label_px + axis + margin,
    }
}

/// Font size of the class names for cells of `cell` pixels.
fn label_size(cell: u32) -> f64 {
    (cell as f64 * 0.3).clamp(11.0, 16.0)
}

/// The layout for these class names, measured with the embedded font when `text`.
pub fn layout_for(class_names: &[String], text: bool) -> ConfusionLayout {
    let n = class_names.len();
    let size = label_size(confusion_layout(n, 0, text).cell);
    let label_px = if text {
        let mut pixel = [0u8; 3];
        let probe = BitMapBackend::with_buffer(&mut pixel, (1, 1)).into_drawing_area();
        let style = TextStyle::from((FONT, size));
        class_names
            .iter()
            .filter_map(|s| probe.estimate_text_size(s, &style).ok())
            .map(|(w, _)| w)
            .max()
            .unwrap_or(0)
    } else {
        0
    };
    confusion_layout(n, label_px, text)
}

/// Writes the confusion matrix `counts[true][predicted]` with `class_names` on both axes to
/// the PNG `path`.
pub fn confusion_matrix(
    path: &Path,
    counts: &[Vec<usize>],
    class_names: &[String],
) -> anyhow::Result<()> {
    let n = counts.len();
    ensure!(n > 0, "confusion_matrix: no classes");
    ensure!(
        counts.iter().all(|r| r.len() == n) && class_names.len() == n,
        "confusion_matrix: counts must be {n} x {n} with {n} class names, got rows of {:?} and {} names",
        counts.iter().map(Vec::len).collect::<Vec<_>>(),
        class_names.len()
    );
    let text = fonts_ready();
    let l = layout_for(class_names, text);
    let label_size = label_size(l.cell);
    let mut canvas = Canvas::new(l.width, l.height, [255, 255, 255]);
    for (r, row) in counts.iter().enumerate() {
        let total: usize = row.iter().sum();
        for (c, &k) in row.iter().enumerate() {
            let share = if total > 0 {
                k as f32 / total as f32
            } else {
                0.0
            };
            let (x, y) = l.cell_origin(r, c);
            canvas.fill_rect(x, y, l.cell, l.cell, blues(share));
        }
    }
    if text {
        draw_text(&mut canvas, &l, counts, class_names, label_size)
            .map_err(|e| anyhow!("confusion_matrix {}: {e}", path.display()))?;
    }
    canvas.save(path)
}

/// Title, axis names, class names and the counts inside the cells.
fn draw_text(
    canvas: &mut Canvas,
    l: &ConfusionLayout,
    counts: &[Vec<usize>],
    names: &[String],
    label_size: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let n = counts.len() as i32;
    let (w, h) = (canvas.width, canvas.height);
    let root = BitMapBackend::with_buffer(&mut canvas.pixels, (w, h)).into_drawing_area();
    let cell = l.cell as i32;
    let (left, top) = (l.left as i32, l.top as i32);
    let bottom = top + n * cell;
    let centre = Pos::new(HPos::Center, VPos::Center);
    root.draw(&Text::new(
        "Confusion matrix (colour: share of the true class)",
        (left + n * cell / 2, 12 + 18),
        TextStyle::from((FONT, 20)).pos(centre),
    ))?;
    let label = TextStyle::from((FONT, label_size));
    for (i, name) in names.iter().enumerate() {
        let mid = i as i32 * cell + cell / 2;
        root.draw(&Text::new(
            name.as_str(),
            (left - 8, top + mid),
            label.pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
        root.draw(&Text::new(
            name.as_str(),
            (left + mid, bottom + 8),
            label
                .transform(FontTransform::Rotate270)
                .pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
    }
    let axis = TextStyle::from((FONT, 18)).pos(centre);
    root.draw(&Text::new(
        "predicted",
        (left + n * cell / 2, h as i32 - 12 - 15),
        axis.clone(),
    ))?;
    root.draw(&Text::new(
        "true",
        (12 + 15, top + n * cell / 2),
        axis.transform(FontTransform::Rotate270),
    ))?;
    let count_size = (cell as f64 * 0.3).clamp(9.0, 16.0);
    for (r, row) in counts.iter().enumerate() {
        let total: usize = row.iter().sum();
        for (c, &k) in row.iter().enumerate() {
            let share = if total > 0 {
                k as f64 / total as f64
            } else {
                0.0
            };
            let colour = if share > 0.5 { WHITE } else { BLACK };
            root.draw(&Text::new(
                k.to_string(),
                (
                    left + c as i32 * cell + cell / 2,
                    top + r as i32 * cell + cell / 2,
                ),
                TextStyle::from((FONT, count_size))
                    .color(&colour)
                    .pos(centre),
            ))?;
        }
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::viz::canvas::test_util::{pixel, read_png, temp_dir};

    fn luminance(p: [u8; 3]) -> u32 {
        p.iter().map(|&v| v as u32).sum()
    }

    #[test]
    fn confusion_matrix_diagonal_is_darker() {
        let names: Vec<String> = ["T-shirt/top", "Trouser", "Ankle boot"]
            .map(String::from)
            .into();
        // Rows sum to different totals: colour follows the row share, not the count.
        let counts = vec![vec![90, 5, 5], vec![1, 8, 1], vec![300, 0, 700]];
        let dir = temp_dir("confusion");
        let path = dir.join("confusion.png");
        confusion_matrix(&path, &counts, &names).unwrap();
        let (w, h, rgb) = read_png(&path);
        assert!(w > 3 * 24 && h > 3 * 24, "{w} x {h}");
        // Text (the class names) lies outside the cells and inside the picture.
        assert!(fonts_ready());
        let l = layout_for(&names, true);
        assert!(l.left > 50, "room for the class names: {l:?}");
        assert_eq!((l.width, l.height), (w, h));
        // Sample a cell's corner, away from the count written in its centre.
        let at = |r: usize, c: usize| {
            let (x, y) = l.cell_origin(r, c);
            pixel(&rgb, w, x + 2, y + 2)
        };
        for r in 0..3 {
            for c in 0..3 {
                if r != c {
                    assert!(luminance(at(r, r)) < luminance(at(r, c)), "cell ({r}, {c})");
                }
            }
        }
        // Row 1 has 8 of 10 on the diagonal, row 0 has 90 of 100: shares, not counts.
        assert!(luminance(at(0, 0)) < luminance(at(1, 1)));
        assert_eq!(at(2, 1), blues(0.0));
        // Something dark (text) is drawn left of the matrix where the names go.
        let dark_left = (l.top..l.top + 3 * l.cell)
            .flat_map(|y| (0..l.left).map(move |x| (x, y)))
            .filter(|&(x, y)| luminance(pixel(&rgb, w, x, y)) < 200)
            .count();
        assert!(
            dark_left > 50,
            "class names missing: {dark_left} dark pixels"
        );
        assert!(confusion_matrix(&path, &counts[..2], &names).is_err());
    }
}

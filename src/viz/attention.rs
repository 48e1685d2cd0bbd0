//! Attention maps of a vision transformer over its input images: each image is drawn twice,
//! plain and with the attention over its `grid x grid` patches as a semi-transparent heat
//! overlay.
//!
//! Each attention map is scaled to its own min/max. A patch with the least attention is left
//! uncoloured; more attention blends in more of the "hot" colour map (dark red to yellow), up
//! to [`MAX_ALPHA`]. Patches are drawn as blocks (nearest upscaling), because that is what the
//! model sees.

use super::canvas::{blend, finite_range, gray, hot, normalize, Canvas};
use super::{fonts_ready, FONT};
use anyhow::{anyhow, ensure};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// Opacity of the overlay on the patch with the most attention.
pub const MAX_ALPHA: f32 = 0.7;
/// Pixels between panels and around the picture.
const GAP: u32 = 8;
/// Height of the column headings when text can be drawn.
const HEADER: u32 = 26;

/// Where the panels lie in the picture.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionLayout {
    /// Each image pixel becomes a `scale x scale` block.
    pub scale: u32,
    /// Top of the first row of panels.
    pub top: u32,
    /// Width of a panel.
    pub panel_w: u32,
    /// Height of a panel.
    pub panel_h: u32,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
}

impl AttentionLayout {
    /// Top-left pixel of the panel of image `i`: the plain one, or the overlay.
    pub fn panel_origin(&self, i: usize, overlay: bool) -> (u32, u32) {
        let x = GAP + if overlay { self.panel_w + GAP } else { 0 };
        (x, self.top + i as u32 * (self.panel_h + GAP))
    }
}

/// Geometry for `n` images of `h x w`: upscaled so that the longer side is at least 112 px.
pub fn attention_layout(n: usize, h: usize, w: usize, text: bool) -> AttentionLayout {
    let scale = 112u32.div_ceil(h.max(w).max(1) as u32).max(1);
    let (panel_w, panel_h) = (w as u32 * scale, h as u32 * scale);
    let top = GAP + if text { HEADER } else { 0 };
    AttentionLayout {
        scale,
        top,
        panel_w,
        panel_h,
        width: 3 * GAP + 2 * panel_w,
        height: top + n as u32 * (panel_h + GAP),
    }
}

/// Writes the images (`h x w` grayscale in `[0, 1]`, row-major) beside their attention over a
/// `grid x grid` patch grid (row-major) to the PNG `path`, one image a row.
pub fn attention_overlay(
    path: &Path,
    images: &[(Vec<f32>, Vec<f32>)],
    h: usize,
    w: usize,
    grid: usize,
) -> anyhow::Result<()> {
    ensure!(
        !images.is_empty() && h > 0 && w > 0 && grid > 0,
        "attention_overlay: no images, or empty size {h} x {w} / grid {grid}"
    );
    for (i, (img, att)) in images.iter().enumerate() {
        ensure!(
            img.len() == h * w && att.len() == grid * grid,
            "attention_overlay: image {i} has {} pixels and {} attention values, expected {} ({h} x {w}) and {} ({grid} x {grid})",
            img.len(),
            att.len(),
            h * w,
            grid * grid
        );
    }
    let text = fonts_ready();
    let l = attention_layout(images.len(), h, w, text);
    let mut canvas = Canvas::new(l.width, l.height, [255, 255, 255]);
    for (i, (img, att)) in images.iter().enumerate() {
        let (lo, hi) = finite_range(att);
        let (px, py) = l.panel_origin(i, false);
        let (ox, oy) = l.panel_origin(i, true);
        for y in 0..h {
            for x in 0..w {
                let base = gray(img[y * w + x]);
                let a = normalize(att[(y * grid / h) * grid + x * grid / w], lo, hi);
                let over = blend(base, hot(a), MAX_ALPHA * a);
                let (sx, sy) = (x as u32 * l.scale, y as u32 * l.scale);
                canvas.fill_rect(px + sx, py + sy, l.scale, l.scale, base);
                canvas.fill_rect(ox + sx, oy + sy, l.scale, l.scale, over);
            }
        }
    }
    if text {
        headings(&mut canvas, &l)
            .map_err(|e| anyhow!("attention_overlay {}: {e}", path.display()))?;
    }
    canvas.save(path)
}

/// "image" and "attention" above the two columns.
fn headings(canvas: &mut Canvas, l: &AttentionLayout) -> Result<(), Box<dyn std::error::Error>> {
    let (w, h) = (canvas.width, canvas.height);
    let root = BitMapBackend::with_buffer(&mut canvas.pixels, (w, h)).into_drawing_area();
    let style = TextStyle::from((FONT, 16)).pos(Pos::new(HPos::Center, VPos::Center));
    let y = (GAP + HEADER / 2) as i32;
    for (overlay, name) in [(false, "image"), (true, "attention")] {
        let (x, _) = l.panel_origin(0, overlay);
        root.draw(&Text::new(
            name,
            ((x + l.panel_w / 2) as i32, y),
            style.clone(),
        ))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::viz::canvas::test_util::{pixel, read_png, temp_dir};

    #[test]
    fn attention_overlay_colours_the_attended_patch() {
        let (h, w, grid) = (28, 28, 7); // 4 x 4 pixel patches
        let image: Vec<f32> = vec![0.5; h * w];
        let mut att = vec![0.0f32; grid * grid];
        att[2 * grid + 3] = 1.0; // patch row 2, column 3
        let mut dark = vec![0.0f32; h * w];
        dark[0] = 1.0;
        let images = vec![(image, att.clone()), (dark, att)];
        let dir = temp_dir("attention");
        let path = dir.join("attention.png");
        attention_overlay(&path, &images, h, w, grid).unwrap();
        let l = attention_layout(2, h, w, true);
        assert_eq!(l.scale, 4);
        let (iw, ih, rgb) = read_png(&path);
        assert_eq!((iw, ih), (l.width, l.height));
        // The centre of patch (2, 3) is image pixel (y 10, x 14).
        let at = |i: usize, overlay: bool, y: u32, x: u32| {
            let (ox, oy) = l.panel_origin(i, overlay);
            pixel(&rgb, iw, ox + x * l.scale + 1, oy + y * l.scale + 1)
        };
        assert_eq!(at(0, false, 10, 14), [128, 128, 128]);
        assert_eq!(at(0, true, 10, 14), blend([128; 3], hot(1.0), MAX_ALPHA));
        let hot_px = at(0, true, 10, 14);
        assert!(hot_px[0] > 200 && hot_px[2] < 60, "{hot_px:?}");
        // Unattended patches keep the plain image.
        assert_eq!(at(0, true, 0, 0), [128, 128, 128]);
        assert_eq!(at(1, true, 0, 0), [255, 255, 255]);
        assert_eq!(at(1, false, 27, 27), [0, 0, 0]);
        assert!(attention_overlay(&path, &images, h, w, 6).is_err());
    }
}

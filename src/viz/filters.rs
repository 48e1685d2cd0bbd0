//! The first convolution layer's filters as an image grid: what do convolutions learn?
//!
//! Each filter is normalized to its own minimum and maximum (black = its most negative
//! weight, white = its most positive), the classic view: it shows the pattern each filter
//! responds to, not how strong it is compared with the others. A filter whose weights are all
//! equal is drawn mid-gray. Input channels: one gives a gray tile; three are drawn as an RGB
//! tile (one min/max over the whole filter, so the colour balance is kept); any other number
//! is averaged over channels into a gray tile.

use super::canvas::{gray, normalize, Canvas, Rgb};
use anyhow::ensure;
use std::path::Path;

/// Colour of the lines between tiles: distinct from every gray a weight can take.
pub const SEPARATOR: Rgb = [40, 60, 120];
/// Width in pixels of the lines between tiles and around the grid.
pub const GAP: u32 = 2;

/// The grid geometry for `out` filters of `kh x kw` weights upscaled by `scale`:
/// `(columns, rows, tile width, tile height)`.
pub fn grid_layout(out: usize, kh: usize, kw: usize, scale: u32) -> (u32, u32, u32, u32) {
    let cols = (out as f64).sqrt().ceil().max(1.0) as u32;
    let rows = (out as u32).div_ceil(cols).max(1);
    (cols, rows, kw as u32 * scale, kh as u32 * scale)
}

/// The top-left pixel of tile `i` (row-major over the grid).
pub fn tile_origin(i: usize, cols: u32, tile_w: u32, tile_h: u32) -> (u32, u32) {
    let (c, r) = (i as u32 % cols, i as u32 / cols);
    (GAP + c * (tile_w + GAP), GAP + r * (tile_h + GAP))
}

/// Writes the filters of a convolution weight `[out, in, kh, kw]` (row-major) to the PNG
/// `path` as a grid of tiles, each weight a `scale x scale` block (nearest upscaling).
pub fn filter_grid(
    path: &Path,
    weight: &[f32],
    shape: [usize; 4],
    scale: u32,
) -> anyhow::Result<()> {
    let [out, cin, kh, kw] = shape;
    ensure!(
        weight.len() == out * cin * kh * kw,
        "filter_grid: weight has {} values, shape {shape:?} needs {}",
        weight.len(),
        out * cin * kh * kw
    );
    ensure!(
        out * cin * kh * kw > 0 && scale > 0,
        "filter_grid: empty shape {shape:?} or scale {scale}"
    );
    let (cols, rows, tw, th) = grid_layout(out, kh, kw, scale);
    let mut canvas = Canvas::new(GAP + cols * (tw + GAP), GAP + rows * (th + GAP), SEPARATOR);
    let area = kh * kw;
    for o in 0..out {
        let filter = &weight[o * cin * area..(o + 1) * cin * area]; // [in, kh, kw]
        let tile = tile_colours(filter, cin, area);
        let (x0, y0) = tile_origin(o, cols, tw, th);
        for (p, &c) in tile.iter().enumerate() {
            let (ky, kx) = ((p / kw) as u32, (p % kw) as u32);
            canvas.fill_rect(x0 + kx * scale, y0 + ky * scale, scale, scale, c);
        }
    }
    canvas.save(path)
}

/// The `kh * kw` colours of one filter `[in, kh, kw]`.
fn tile_colours(filter: &[f32], cin: usize, area: usize) -> Vec<Rgb> {
    if cin == 3 {
        let (lo, hi) = super::canvas::finite_range(filter);
        return (0..area)
            .map(|p| {
                std::array::from_fn(|c| {
                    (normalize(filter[c * area + p], lo, hi) * 255.0).round() as u8
                })
            })
            .collect();
    }
    let mean: Vec<f32> = (0..area)
        .map(|p| (0..cin).map(|c| filter[c * area + p]).sum::<f32>() / cin as f32)
        .collect();
    let (lo, hi) = super::canvas::finite_range(&mean);
    mean.iter().map(|&v| gray(normalize(v, lo, hi))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::viz::canvas::test_util::{pixel, read_png, temp_dir};

    /// Mean brightness of tile `i` of a decoded grid.
    fn tile_mean(rgb: &[u8], w: u32, i: usize, cols: u32, tw: u32, th: u32) -> f32 {
        let (x0, y0) = tile_origin(i, cols, tw, th);
        let mut sum = 0.0;
        for y in y0..y0 + th {
            for x in x0..x0 + tw {
                sum += pixel(rgb, w, x, y).iter().map(|&v| v as f32).sum::<f32>() / 3.0;
            }
        }
        sum / (tw * th) as f32
    }

    #[test]
    fn filter_grid_layout_and_brightest_tile() {
        // 5 filters of 1 x 5 x 5: filter k is 0 everywhere except (k + 1) hot weights, so
        // after per-filter min/max scaling filter 4 (5 white pixels) is the brightest tile.
        let (out, kh, kw, scale) = (5, 5, 5, 4);
        let mut w = vec![0.0f32; out * kh * kw];
        for k in 0..out {
            for j in 0..=k {
                w[k * 25 + j * 6] = 1.0 + k as f32; // on the diagonal
            }
        }
        let dir = temp_dir("filters");
        let path = dir.join("filters.png");
        filter_grid(&path, &w, [out, 1, kh, kw], scale).unwrap();
        let (cols, rows, tw, th) = grid_layout(out, kh, kw, scale);
        assert_eq!((cols, rows, tw, th), (3, 2, 20, 20));
        let (iw, ih, rgb) = read_png(&path);
        assert_eq!((iw, ih), (2 + 3 * 22, 2 + 2 * 22));
        let means: Vec<f32> = (0..out)
            .map(|i| tile_mean(&rgb, iw, i, cols, tw, th))
            .collect();
        let brightest = (0..out)
            .max_by(|&a, &b| means[a].total_cmp(&means[b]))
            .unwrap();
        assert_eq!(brightest, 4, "tile means {means:?}");
        // Weight (0, 0) of filter 1 is hot: white; (0, 1) is cold: black; separators and
        // the unused sixth cell keep the separator colour.
        let (x1, y1) = tile_origin(1, cols, tw, th);
        assert_eq!(pixel(&rgb, iw, x1, y1), [255, 255, 255]);
        assert_eq!(pixel(&rgb, iw, x1 + scale, y1), [0, 0, 0]);
        assert_eq!(pixel(&rgb, iw, 0, 0), SEPARATOR);
        let (x5, y5) = tile_origin(5, cols, tw, th);
        assert_eq!(pixel(&rgb, iw, x5 + 3, y5 + 3), SEPARATOR);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    }

    #[test]
    fn filter_grid_colour_and_channel_mean() {
        let dir = temp_dir("filters-rgb");
        // One 3-channel 1x2 filter: pixel 0 pure red (R high), pixel 1 pure blue.
        let w = [1.0, 0.0, /* G */ 0.0, 0.0, /* B */ 0.0, 1.0];
        let path = dir.join("rgb.png");
        filter_grid(&path, &w, [1, 3, 1, 2], 3).unwrap();
        let (iw, _, rgb) = read_png(&path);
        assert_eq!(pixel(&rgb, iw, GAP, GAP), [255, 0, 0]);
        assert_eq!(pixel(&rgb, iw, GAP + 3, GAP), [0, 0, 255]);
        // Two channels are averaged: means (2, 0) -> white, black; a flat filter is mid-gray.
        let w = [3.0, -1.0, 1.0, 1.0, /* flat */ 7.0, 7.0, 7.0, 7.0];
        let path = dir.join("mean.png");
        filter_grid(&path, &w, [2, 2, 1, 2], 1).unwrap();
        let (iw, _, rgb) = read_png(&path);
        assert_eq!(pixel(&rgb, iw, GAP, GAP), [255, 255, 255]);
        assert_eq!(pixel(&rgb, iw, GAP + 1, GAP), [0, 0, 0]);
        assert_eq!(pixel(&rgb, iw, GAP + 2 + GAP, GAP), [128, 128, 128]);
        assert!(filter_grid(&path, &w[..7], [2, 2, 1, 2], 1).is_err());
    }
}

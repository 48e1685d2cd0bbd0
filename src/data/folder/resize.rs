//! Bilinear resizing of 8-bit images, exactly as Pillow's `Image.resize(size,
//! Image.BILINEAR)` (torchvision's default `transforms.Resize` on PIL images).
//!
//! Pillow's resampling is a separable convolution with a triangle filter. When an axis
//! shrinks by a factor `s > 1`, the filter is widened by `s` (support `s` input pixels on
//! each side of the output pixel's centre), so every input pixel contributes: this is the
//! antialiasing that a plain 4-tap bilinear interpolation lacks. When an axis grows, the
//! filter has support 1 and the result is ordinary bilinear interpolation with pixel centres
//! aligned (`align_corners=False`). Weights are normalized per output pixel, quantized to
//! 22-bit fixed point, and each pass rounds to a byte: rows first (only the input rows the
//! second pass reads), then columns — or columns first when the height shrinks by more than
//! twice as many pixels as the width (Pillow 13's order, found by comparing with it). Doing the same arithmetic gives the same bytes as
//! Pillow, so a model trained here sees what the same model sees under torchvision.

/// The weights of one output pixel along one axis: the first input index it reads and the
/// fixed-point weights of the consecutive inputs from there.
struct Taps {
    start: usize,
    weights: Vec<i32>,
}

/// Fixed-point precision of the weights (Pillow's `PRECISION_BITS`: 32 - 8 - 2).
const PRECISION_BITS: u32 = 22;

/// The triangle (bilinear) filter, support 1.
fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

/// The taps of every output pixel when `in_size` pixels become `out_size` (Pillow's
/// `precompute_coeffs` and `normalize_coeffs_8bpc`, over the whole input).
fn taps(in_size: usize, out_size: usize) -> Vec<Taps> {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale; // the triangle's support (1) times the widening
    (0..out_size)
        .map(|o| {
            let center = (o as f64 + 0.5) * scale;
            // Pillow rounds with `(int)(v + 0.5)`, truncating toward zero, then clamps.
            let lo = ((center - support + 0.5) as i64).max(0) as usize;
            let hi = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let raw: Vec<f64> = (lo..hi)
                .map(|i| triangle((i as f64 - center + 0.5) / filter_scale))
                .collect();
            let total: f64 = raw.iter().sum();
            let weights = raw
                .iter()
                .map(|&w| {
                    let w = if total != 0.0 { w / total } else { w };
                    let fixed = w * (1u32 << PRECISION_BITS) as f64;
                    if fixed < 0.0 {
                        (fixed - 0.5) as i32
                    } else {
                        (fixed + 0.5) as i32
                    }
                })
                .collect();
            Taps { start: lo, weights }
        })
        .collect()
}

/// A fixed-point sum back to a byte, rounding (the sum starts at one half) and clamping.
fn to_byte(sum: i64) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// The fixed-point half that makes the shift round to nearest.
const HALF: i64 = 1 << (PRECISION_BITS - 1);

/// Resizes `src` (`[c, h, w]` planes of bytes) to `[c, out_h, out_w]`, written into `dst`,
/// with Pillow's bilinear filter (antialiased when shrinking). The same size is a copy.
pub fn resize_bilinear(
    src: &[u8], // [c, h, w]
    [c, h, w]: [usize; 3],
    dst: &mut [u8], // [c, out_h, out_w]
    [out_h, out_w]: [usize; 2],
) {
    assert_eq!(
        src.len(),
        c * h * w,
        "resize_bilinear: {} bytes for a [{c}, {h}, {w}] image",
        src.len()
    );
    assert_eq!(
        dst.len(),
        c * out_h * out_w,
        "resize_bilinear: {} output bytes for [{c}, {out_h}, {out_w}]",
        dst.len()
    );
    assert!(
        h > 0 && w > 0 && out_h > 0 && out_w > 0,
        "resize_bilinear: sizes must be positive ({h}x{w} to {out_h}x{out_w})"
    );
    if (h, w) == (out_h, out_w) {
        dst.copy_from_slice(src);
        return;
    }
    let rows = taps(h, out_h);
    let cols = taps(w, out_w);
    let (need_h, need_v) = (w != out_w, h != out_h);
    // Pillow 13 resizes columns first when the height shrinks by more than twice as many
    // pixels as the width does (fewer pixels to carry between the passes); the rounding
    // between the passes makes the order visible in the bytes.
    let vertical_first =
        need_h && need_v && out_h < h && (h - out_h) as i64 > 2 * (w as i64 - out_w as i64);
    for ch in 0..c {
        let plane = &src[ch * h * w..(ch + 1) * h * w];
        let out = &mut dst[ch * out_h * out_w..(ch + 1) * out_h * out_w];
        if vertical_first {
            let mid = vertical(plane, w, &rows, 0); // [out_h, w]
            out.copy_from_slice(&horizontal(&mid, w, &cols));
        } else if need_v {
            // Rows first, over the input rows that the column pass reads.
            let first = rows[0].start;
            let last = rows.last().map_or(0, |t| t.start + t.weights.len());
            let used = &plane[first * w..last * w];
            let mid = if need_h {
                horizontal(used, w, &cols)
            } else {
                used.to_vec()
            }; // [last - first, out_w]
            out.copy_from_slice(&vertical(&mid, out_w, &rows, first));
        } else {
            out.copy_from_slice(&horizontal(plane, w, &cols));
        }
    }
}

/// Resizes each row of `src` (rows of `w` bytes) with the taps `cols`.
fn horizontal(src: &[u8], w: usize, cols: &[Taps]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() / w * cols.len());
    for row in src.chunks_exact(w) {
        out.extend(cols.iter().map(|t| {
            let sum = t
                .weights
                .iter()
                .enumerate()
                .fold(HALF, |s, (k, &wt)| s + row[t.start + k] as i64 * wt as i64);
            to_byte(sum)
        }));
    }
    out
}

/// Resizes the columns of `src` (rows of `w` bytes, the first being input row `first`) with
/// the taps `rows`.
fn vertical(src: &[u8], w: usize, rows: &[Taps], first: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * w);
    for t in rows {
        out.extend((0..w).map(|x| {
            let sum = t.weights.iter().enumerate().fold(HALF, |s, (k, &wt)| {
                s + src[(t.start - first + k) * w + x] as i64 * wt as i64
            });
            to_byte(sum)
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resize(src: &[u8], [c, h, w]: [usize; 3], [oh, ow]: [usize; 2]) -> Vec<u8> {
        let mut out = vec![0; c * oh * ow];
        resize_bilinear(src, [c, h, w], &mut out, [oh, ow]);
        out
    }

    #[test]
    fn halving_averages_pixel_pairs_with_the_widened_filter() {
        // 1 x 4 -> 1 x 2: scale 2, support 2. Output 0 (centre 1.0) reads inputs 0..3 with
        // triangle weights at distances 0.5, 0.5, 1.5 over 2: 0.75, 0.75, 0.25 (sum 1.75).
        // Output 1 (centre 3.0) reads inputs 1..4: 0.25, 0.75, 0.75.
        let out = resize(&[0, 100, 200, 40], [1, 1, 4], [1, 2]);
        let a: f64 = (0.0 * 0.75 + 100.0 * 0.75 + 200.0 * 0.25) / 1.75; // 71.43
        let b: f64 = (100.0 * 0.25 + 200.0 * 0.75 + 40.0 * 0.75) / 1.75; // 117.14
        assert_eq!(out, vec![a.round() as u8, b.round() as u8]);
        assert_eq!(out, vec![71, 117]);
    }

    #[test]
    fn doubling_interpolates_between_centres_and_keeps_the_edges() {
        // 1 x 2 -> 1 x 4: centres at 0.25, 0.75, 1.25, 1.75 in input pixels; the edge
        // outputs see only one input (the filter is cut at the border and renormalized).
        let out = resize(&[0, 200], [1, 1, 2], [1, 4]);
        // Output 1 (centre 0.75): inputs 0 and 1 at distances 0.25 and 0.75 -> 0.75*0 +
        // 0.25*200 = 50; output 2 mirrors it: 150.
        assert_eq!(out, vec![0, 50, 150, 200]);
    }

    #[test]
    fn a_constant_image_stays_constant_at_any_size_and_channels_stay_apart() {
        let mut src = vec![7u8; 2 * 5 * 9];
        src[45..].fill(230);
        for (oh, ow) in [(3, 4), (11, 2), (5, 9), (1, 1), (17, 23)] {
            let out = resize(&src, [2, 5, 9], [oh, ow]);
            assert!(out[..oh * ow].iter().all(|&v| v == 7), "{oh}x{ow}");
            assert!(out[oh * ow..].iter().all(|&v| v == 230), "{oh}x{ow}");
        }
    }

    #[test]
    fn a_two_by_two_checker_shrunk_to_one_pixel_is_its_mean() {
        // 2 x 2 -> 1 x 1: both axes average equally: (0 + 255 + 255 + 0) / 4 = 127.5;
        // rows first: (0 + 255) / 2 = 127.5 -> 128 twice, then columns: 128.
        assert_eq!(resize(&[0, 255, 255, 0], [1, 2, 2], [1, 1]), vec![128]);
    }
}

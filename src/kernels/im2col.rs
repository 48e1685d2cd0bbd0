//! `im2col` and its adjoint `col2im`: the patch gathering that turns a convolution into one
//! matrix product.
//!
//! For one image (or one channel group of it) `x: [C, H, W]`, the column matrix is
//! `cols: [C * KH * KW, OH * OW]`: row `(c, ki, kj)` holds, for every output pixel, the input
//! value under kernel tap `(ki, kj)` of channel `c` (zero where the tap falls in the padding).
//! Rows are written one output row at a time; with stride 1 along the width each output row
//! is one contiguous copy of an input row, with the padded ends zero-filled. `im2row` writes
//! the transposed matrix, for the weight gradient.

use super::conv::ConvShape;

/// Output columns `[lo, hi)` whose input column `oj * stride + offset` lies inside `[0, len)`.
#[inline]
fn valid_range(offset: isize, stride: usize, len: usize, out: usize) -> (usize, usize) {
    let s = stride as isize;
    let lo = if offset >= 0 {
        0
    } else {
        ((-offset + s - 1) / s) as usize
    };
    let room = len as isize - offset;
    let hi = if room <= 0 {
        0
    } else {
        (((room + s - 1) / s) as usize).min(out)
    };
    (lo.min(hi), hi)
}

/// Gathers the patches of `x: [cg, H, W]` (one channel group of one image) into
/// `cols: [cg * KH * KW, OH * OW]`, overwriting it.
pub fn im2col(s: &ConvShape, x: &[f32], cols: &mut [f32]) {
    let (oh, ow) = s.out_hw();
    let (h, w) = (s.h, s.w);
    let (sh, sw) = s.stride;
    let (dh, dw) = s.dilation;
    let (ph, pw) = s.padding;
    let p = oh * ow;
    let cg = s.c / s.groups;
    for c in 0..cg {
        let plane = &x[c * h * w..(c + 1) * h * w]; // [H, W]
        for ki in 0..s.kh {
            let (ilo, ihi) = valid_range((ki * dh) as isize - ph as isize, sh, h, oh);
            for kj in 0..s.kw {
                let row = (c * s.kh + ki) * s.kw + kj;
                let dst = &mut cols[row * p..(row + 1) * p]; // [OH, OW]
                let off = (kj * dw) as isize - pw as isize;
                let (lo, hi) = valid_range(off, sw, w, ow);
                dst[..ilo * ow].fill(0.0);
                dst[ihi * ow..].fill(0.0);
                for oi in ilo..ihi {
                    let iy = oi * sh + ki * dh - ph;
                    let src = &plane[iy * w..(iy + 1) * w];
                    let d = &mut dst[oi * ow..(oi + 1) * ow];
                    d[..lo].fill(0.0);
                    d[hi..].fill(0.0);
                    if lo == hi {
                        continue;
                    }
                    let first = (lo * sw) as isize + off;
                    let first = first as usize;
                    if sw == 1 {
                        d[lo..hi].copy_from_slice(&src[first..first + hi - lo]);
                    } else {
                        for (k, v) in d[lo..hi].iter_mut().enumerate() {
                            *v = src[first + k * sw];
                        }
                    }
                }
            }
        }
    }
}

/// The transpose of [`im2col`]: `rows: [OH * OW, cg * KH * KW]`, one row of patch values per
/// output pixel (overwritten). The weight gradient `dout · colsᵀ` reads it without a
/// transposed operand, which the GEMM packs much faster.
pub fn im2row(s: &ConvShape, x: &[f32], rows: &mut [f32]) {
    let (oh, ow) = s.out_hw();
    let (h, w) = (s.h, s.w);
    let (sh, sw) = s.stride;
    let (dh, dw) = s.dilation;
    let (ph, pw) = s.padding;
    let (kh, kw) = (s.kh, s.kw);
    let cg = s.c / s.groups;
    let k = cg * kh * kw;
    // Output columns whose whole kernel row lies inside the input: no per-tap checks there.
    let (lo, _) = valid_range(-(pw as isize), sw, w, ow);
    let (_, hi) = valid_range(((kw - 1) * dw) as isize - pw as isize, sw, w, ow);
    let hi = hi.max(lo);
    for oy in 0..oh {
        let out_row = &mut rows[oy * ow * k..(oy + 1) * ow * k]; // [OW, K]
        for c in 0..cg {
            let plane = &x[c * h * w..(c + 1) * h * w]; // [H, W]
            for ki in 0..kh {
                let base = (c * kh + ki) * kw;
                let iy = (oy * sh + ki * dh) as isize - ph as isize;
                if iy < 0 || iy >= h as isize {
                    for ox in 0..ow {
                        out_row[ox * k + base..ox * k + base + kw].fill(0.0);
                    }
                    continue;
                }
                let src = &plane[iy as usize * w..(iy as usize + 1) * w];
                for ox in (0..lo).chain(hi..ow) {
                    let x0 = (ox * sw) as isize - pw as isize;
                    let d = &mut out_row[ox * k + base..ox * k + base + kw];
                    for (kj, v) in d.iter_mut().enumerate() {
                        let ix = x0 + (kj * dw) as isize;
                        *v = if ix >= 0 && ix < (w as isize) {
                            src[ix as usize]
                        } else {
                            0.0
                        };
                    }
                }
                for ox in lo..hi {
                    let x0 = ox * sw - pw;
                    let d = &mut out_row[ox * k + base..ox * k + base + kw];
                    let sr = &src[x0..x0 + (kw - 1) * dw + 1];
                    for (kj, v) in d.iter_mut().enumerate() {
                        *v = sr[kj * dw];
                    }
                }
            }
        }
    }
}

/// Scatters `cols: [cg * KH * KW, OH * OW]` back onto `dx: [cg, H, W]`, adding to it: the
/// adjoint of [`im2col`] (overlapping patches sum).
pub fn col2im(s: &ConvShape, cols: &[f32], dx: &mut [f32]) {
    let (oh, ow) = s.out_hw();
    let (h, w) = (s.h, s.w);
    let (sh, sw) = s.stride;
    let (dh, dw) = s.dilation;
    let (ph, pw) = s.padding;
    let p = oh * ow;
    let cg = s.c / s.groups;
    for c in 0..cg {
        let plane = &mut dx[c * h * w..(c + 1) * h * w]; // [H, W]
        for ki in 0..s.kh {
            let (ilo, ihi) = valid_range((ki * dh) as isize - ph as isize, sh, h, oh);
            for kj in 0..s.kw {
                let row = (c * s.kh + ki) * s.kw + kj;
                let src = &cols[row * p..(row + 1) * p]; // [OH, OW]
                let off = (kj * dw) as isize - pw as isize;
                let (lo, hi) = valid_range(off, sw, w, ow);
                if lo == hi {
                    continue;
                }
                let first = ((lo * sw) as isize + off) as usize;
                for oi in ilo..ihi {
                    let iy = oi * sh + ki * dh - ph;
                    let d = &mut plane[iy * w..(iy + 1) * w];
                    let sr = &src[oi * ow + lo..oi * ow + hi];
                    if sw == 1 {
                        for (a, &b) in d[first..first + hi - lo].iter_mut().zip(sr) {
                            *a += b;
                        }
                    } else {
                        for (k, &b) in sr.iter().enumerate() {
                            d[first + k * sw] += b;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ranges_clip_padding_and_stride() {
        // Width 5, padding 1 (offset -1), stride 1, 5 outputs: columns 1..5 are inside.
        assert_eq!(valid_range(-1, 1, 5, 5), (1, 5));
        // Offset +1 (right tap): input 1 + oj < 5 for oj < 4.
        assert_eq!(valid_range(1, 1, 5, 5), (0, 4));
        // Stride 2, offset -1: oj * 2 - 1 in [0, 5) for oj in 1..3.
        assert_eq!(valid_range(-1, 2, 5, 3), (1, 3));
        // A tap wholly in the padding.
        assert_eq!(valid_range(-7, 1, 5, 3), (3, 3));
        assert_eq!(valid_range(9, 1, 5, 3), (0, 0));
    }

    fn check_shape(s: ConvShape) {
        let (oh, ow) = s.out_hw();
        let p = oh * ow;
        let rows = s.c * s.kh * s.kw;
        let n_in = s.c * s.h * s.w;
        let x: Vec<f32> = (0..n_in).map(|i| (i as f32 * 0.37).sin()).collect();
        let c: Vec<f32> = (0..rows * p).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut cols = vec![7.0; rows * p];
        im2col(&s, &x, &mut cols);
        // Adjoint: <im2col(x), c> == <x, col2im(c)> for any x, c.
        let mut back = vec![0.0; n_in];
        col2im(&s, &c, &mut back);
        let lhs: f64 = cols.iter().zip(&c).map(|(a, b)| (a * b) as f64).sum();
        let rhs: f64 = x.iter().zip(&back).map(|(a, b)| (a * b) as f64).sum();
        assert!((lhs - rhs).abs() < 1e-4, "{s:?}: {lhs} vs {rhs}");
        // im2row is the transpose of im2col.
        let mut r = vec![7.0; rows * p];
        im2row(&s, &x, &mut r);
        for i in 0..rows {
            for j in 0..p {
                assert_eq!(r[j * rows + i], cols[i * p + j], "{s:?}: row {i} pixel {j}");
            }
        }
    }

    #[test]
    fn col2im_is_the_adjoint_and_im2row_the_transpose_of_im2col() {
        let base = ConvShape {
            n: 1,
            c: 2,
            h: 5,
            w: 6,
            o: 1,
            kh: 3,
            kw: 2,
            stride: (2, 1),
            padding: (1, 2),
            dilation: (1, 2),
            groups: 1,
        };
        check_shape(base);
        check_shape(ConvShape {
            kw: 3,
            stride: (1, 1),
            padding: (1, 1),
            dilation: (1, 1),
            ..base
        });
        check_shape(ConvShape {
            kh: 1,
            kw: 1,
            stride: (2, 2),
            padding: (0, 0),
            dilation: (1, 1),
            ..base
        });
    }
}

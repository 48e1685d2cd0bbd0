//! `im2col` and its adjoint `col2im`: the patch gathering that turns a convolution into one
//! matrix product.
//!
//! For one image (or one channel group of it) `x: [C, H, W]`, the column matrix is
//! `cols: [C * KH * KW, OH * OW]`: row `(c, ki, kj)` holds, for every output pixel, the input
//! value under kernel tap `(ki, kj)` of channel `c` (zero where the tap falls in the padding).
//! Rows are written one output row at a time; with stride 1 along the width each output row
//! is one contiguous copy of an input row, with the padded ends zero-filled.

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

/// `d = s` for the short rows of small images (a 7- to 32-wide row is the common case): as
/// a few fixed-width, possibly overlapping vector copies inlined here, where
/// `copy_from_slice` calls `memmove`, whose call overhead dominates copies this short.
#[inline(always)]
pub(crate) fn copy_short(d: &mut [f32], s: &[f32]) {
    let n = d.len();
    assert_eq!(n, s.len());
    let mut c8 = |at: usize| d[at..at + 8].copy_from_slice(&s[at..at + 8]);
    match n {
        0 => {}
        1..=3 => {
            for (a, &b) in d.iter_mut().zip(s) {
                *a = b;
            }
        }
        4..=7 => {
            d[..4].copy_from_slice(&s[..4]);
            d[n - 4..].copy_from_slice(&s[n - 4..]);
        }
        8..=16 => {
            c8(0);
            c8(n - 8);
        }
        17..=24 => {
            c8(0);
            c8(8);
            c8(n - 8);
        }
        25..=32 => {
            c8(0);
            c8(8);
            c8(16);
            c8(n - 8);
        }
        _ => d.copy_from_slice(s),
    }
}

/// Gathers the patches of `x: [cg, H, W]` (one channel group of one image) into
/// `cols: [cg * KH * KW, OH * OW]`, overwriting it.
pub fn im2col(s: &ConvShape, x: &[f32], cols: &mut [f32]) {
    gather::<true>(s, x, cols);
}

/// [`im2col`] without writing the zeros of the padding: `cols` must already hold zeros there,
/// as a zero-initialised buffer or one last written by `im2col` for the same shape does.
/// Those positions depend only on the shape, so a buffer reused image after image keeps them.
pub fn im2col_reusing(s: &ConvShape, x: &[f32], cols: &mut [f32]) {
    gather::<false>(s, x, cols);
}

fn gather<const FILL: bool>(s: &ConvShape, x: &[f32], cols: &mut [f32]) {
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
                if FILL {
                    dst[..ilo * ow].fill(0.0);
                    dst[ihi * ow..].fill(0.0);
                    if lo > 0 || hi < ow {
                        for d in dst[ilo * ow..ihi * ow].chunks_exact_mut(ow) {
                            d[..lo].fill(0.0);
                            d[hi..].fill(0.0);
                        }
                    }
                }
                if lo == hi {
                    continue;
                }
                let (len, first) = (hi - lo, ((lo * sw) as isize + off) as usize);
                for oi in ilo..ihi {
                    let iy = oi * sh + ki * dh - ph;
                    let src = &plane[iy * w + first..]; // input row iy from the first tap
                    let d = &mut dst[oi * ow + lo..oi * ow + hi];
                    if sw == 1 {
                        copy_short(d, &src[..len]);
                    } else {
                        for (v, &x) in d.iter_mut().zip(src.iter().step_by(sw)) {
                            *v = x;
                        }
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
    fn short_copies_copy_every_length() {
        for n in 0..70 {
            let s: Vec<f32> = (0..n).map(|i| i as f32 + 0.5).collect();
            let mut d = vec![f32::NAN; n];
            copy_short(&mut d, &s);
            assert_eq!(d, s, "length {n}");
        }
    }

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
        // Reusing a buffer that holds the previous image's columns skips only the zeros.
        let x2: Vec<f32> = x.iter().map(|v| v * 3.0 + 1.0).collect();
        let (mut a, mut b) = (vec![f32::NAN; rows * p], cols.clone());
        im2col(&s, &x2, &mut a);
        im2col_reusing(&s, &x2, &mut b);
        assert_eq!(a, b, "{s:?}");
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col_and_reuse_keeps_the_zeros() {
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

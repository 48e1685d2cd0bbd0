//! The weight gradient of one channel group of one image, its output gradient transposed
//! into panels, on the AVX2 or the AVX-512 tiles.

#[cfg(target_arch = "x86_64")]
use super::avx2;
use super::{applies, available, ConvScratch, ConvShape, GradTile, Isa, MR, NR, WR512};

/// `dwt [K, og] += im2col(x_g) [K, P] · dy_gᵀ [P, og]`: the weight gradient of one channel
/// group of one image, transposed (`K = cg * KH * KW` in the weight's order). Each register
/// tile (6 rows of `K` by 16 output channels) sums over all `P` output pixels, reading the
/// rows of the column matrix straight from the padded image. `s` must satisfy [`applies`].
pub fn weight_grad_group(
    s: &ConvShape,
    x_g: &[f32],
    dy_g: &[f32],
    dwt: &mut [f32],
    scratch: &mut ConvScratch,
) {
    let isa = Isa::best().unwrap_or(Isa::Avx2);
    weight_grad_group_on(isa, s, x_g, dy_g, dwt, scratch)
}

/// [`weight_grad_group`] on the tiles of `isa` (a width the CPU runs).
pub(super) fn weight_grad_group_on(
    isa: Isa,
    s: &ConvShape,
    x_g: &[f32],
    dy_g: &[f32],
    dwt: &mut [f32],
    scratch: &mut ConvScratch,
) {
    assert!(
        applies(s),
        "weight_grad_group: {s:?} needs stride 1, no dilation, AVX2/FMA"
    );
    let (cg, og) = (s.c / s.groups, s.o / s.groups);
    let (oh, ow) = s.out_hw();
    let (p, k) = (oh * ow, cg * s.kh * s.kw);
    let (hp, wp) = (s.h + 2 * s.padding.0, s.w + 2 * s.padding.1);
    assert!(
        x_g.len() >= cg * s.h * s.w && dy_g.len() >= og * p && dwt.len() >= k * og,
        "weight_grad_group: buffers do not fit {s:?}"
    );
    scratch.pad(s, x_g);
    let panels = og.div_ceil(NR);
    scratch.dyt.resize(panels * p * NR, 0.0);
    transpose_into_panels(dy_g, og, p, &mut scratch.dyt);
    // Row `m = (c, ky, kx)` of the column matrix starts at `c * plane + ky * wp + kx`.
    let taps = s.kh * s.kw;
    let row_start = |m: usize| (m / taps) * hp * wp + (m % taps / s.kw) * wp + m % s.kw;
    let x = scratch.xpad.as_ptr();
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 {
        for i in 0..k.div_ceil(WR512) {
            let rows = WR512.min(k - i * WR512);
            let mut starts = [0usize; WR512];
            for (r, st) in starts[..rows].iter_mut().enumerate() {
                *st = row_start(i * WR512 + r);
            }
            // Two panels (32 channels) at a time, the last alone when their number is odd.
            let mut j = 0;
            while j < panels {
                let b = |j: usize| scratch.dyt[j * p * NR..(j + 1) * p * NR].as_ptr();
                let cols = (og - j * NR).min(2 * NR);
                let c = dwt[i * WR512 * og + j * NR..].as_mut_ptr();
                let t = super::avx512::GradTile512 {
                    x,
                    starts,
                    wp,
                    out_hw: (oh, ow),
                    b: [b(j), b((j + 1).min(panels - 1))],
                    cols,
                };
                // SAFETY: `Isa::Avx512` is only chosen on a CPU with AVX-512F; every read
                // `x[start + oy * wp + ox]` lies in the padded image (the tap of an output
                // pixel), each panel holds `P * NR` floats, and the tile's `rows x cols`
                // block lies inside `dwt` (checked above).
                unsafe {
                    if cols > NR {
                        super::avx512::grad512::<2>(rows, t, c, og);
                    } else {
                        let t = super::avx512::GradTile512 {
                            x: t.x,
                            starts: t.starts,
                            wp: t.wp,
                            out_hw: t.out_hw,
                            b: [t.b[0]],
                            cols: t.cols,
                        };
                        super::avx512::grad512::<1>(rows, t, c, og);
                    }
                }
                j += 2;
            }
        }
        return;
    }
    let _ = isa;
    for i in 0..k.div_ceil(MR) {
        let rows = MR.min(k - i * MR);
        let mut starts = [0usize; MR];
        for (r, st) in starts[..rows].iter_mut().enumerate() {
            *st = row_start(i * MR + r);
        }
        for j in 0..panels {
            let cols = NR.min(og - j * NR);
            let b = scratch.dyt[j * p * NR..(j + 1) * p * NR].as_ptr();
            let c = &mut dwt[i * MR * og + j * NR..];
            let t = GradTile {
                x,
                starts,
                wp,
                out_hw: (oh, ow),
                b,
                cols,
            };
            // SAFETY: `applies` checked the CPU; every read `x[start + oy * wp + ox]` lies in
            // the padded image (the tap of an output pixel), `b` holds `P * NR` floats, and
            // the tile's `rows x cols` block lies inside `dwt` (checked above).
            unsafe { wgrad(rows, t, c, og) };
        }
    }
}

/// The output gradient `dy [og, P]` transposed into panels `[og / NR][P][NR]` (channel
/// fastest), the layout [`avx2::weight_grad_tile`] reads. Blocks of 8 channels x 8 pixels go
/// through [`avx2::transpose_8x8`]; the tails one value at a time. Channels past `og` in the
/// last panel keep stale values: their sums are never stored.
pub(super) fn transpose_into_panels(dy: &[f32], og: usize, p: usize, dyt: &mut [f32]) {
    assert!(
        dy.len() >= og * p && dyt.len() >= og.div_ceil(NR) * p * NR,
        "transpose_into_panels: buffers do not fit {og} x {p}"
    );
    for (j, panel) in dyt.chunks_exact_mut(p * NR).enumerate() {
        let channels = NR.min(og - j * NR);
        let rows = &dy[j * NR * p..(j * NR + channels) * p];
        // The channels and pixels that whole 8 x 8 blocks cover (none without AVX).
        let (full_c, full_p) = if available() {
            (channels / 8 * 8, p / 8 * 8)
        } else {
            (0, 0)
        };
        for c0 in (0..full_c).step_by(8) {
            for px0 in (0..full_p).step_by(8) {
                // SAFETY: `available` said AVX is there (else no blocks); rows
                // `c0..c0 + 8` of `rows` hold pixels `px0..px0 + 8`, and the panel holds
                // pixels `px0..px0 + 8` at channels `c0..c0 + 8 <= NR`.
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    avx2::transpose_8x8(
                        rows[c0 * p + px0..].as_ptr(),
                        p,
                        panel[px0 * NR + c0..].as_mut_ptr(),
                        NR,
                    );
                }
            }
        }
        // What the blocks left: the last pixels of the full channel blocks, then the last
        // channels.
        let tail = |c_range: std::ops::Range<usize>,
                    px_range: std::ops::Range<usize>,
                    panel: &mut [f32]| {
            for c in c_range {
                for px in px_range.clone() {
                    panel[px * NR + c] = rows[c * p + px];
                }
            }
        };
        tail(0..full_c, full_p..p, panel);
        tail(full_c..channels, 0..p, panel);
    }
}

/// [`avx2::weight_grad_tile`] for `rows` (1..=6) rows.
///
/// # Safety
/// As [`GradTile`] says, with `c` holding the tile's rows `ldc` apart.
#[inline]
unsafe fn wgrad(rows: usize, t: GradTile, c: &mut [f32], ldc: usize) {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        match rows {
            6 => avx2::weight_grad_tile::<6>(t, c, ldc),
            5 => avx2::weight_grad_tile::<5>(t, c, ldc),
            4 => avx2::weight_grad_tile::<4>(t, c, ldc),
            3 => avx2::weight_grad_tile::<3>(t, c, ldc),
            2 => avx2::weight_grad_tile::<2>(t, c, ldc),
            _ => avx2::weight_grad_tile::<1>(t, c, ldc),
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (rows, t, c, ldc);
            unreachable!("the direct convolution needs x86-64");
        }
    }
}

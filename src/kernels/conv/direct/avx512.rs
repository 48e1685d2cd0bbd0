//! The AVX-512 micro-kernels of the direct convolution, for CPUs with 16-lane vectors
//! (twice the AVX2 tiles' width, and 32 registers).
//!
//! - Forward: a register tile is up to [`MR512`] output channels by `V` vectors of 16
//!   output positions. The positions run over the *padded* grid: position `q = oy · wp +
//!   ox` (`wp` the zero-bordered image's width) reads `x[q + tap]`, so a vector of 16
//!   consecutive positions is one contiguous load per tap even where it crosses a row's
//!   end; the positions with `ox >= ow` are computed and dropped. A 7-wide map (`wp = 9`)
//!   keeps 49 of 64 lanes in 4 vectors where one vector per row would keep 49 of 112. The
//!   lanes go to the output through masked stores, one per output row that the vector
//!   touches ([`Segment`]).
//! - Weight gradient: a tile is up to [`WR512`] rows of the column matrix by one or two
//!   16-channel panels of the transposed output gradient, as in the AVX2 kernel.
//!
//! As in [`super::avx`], each loop lives in a function of its own that returns the
//! accumulators by value, so that they stay in registers.

use super::{ConvScratch, Epilogue, PackedA, MR512, WR512};
use std::arch::x86_64::*;

/// Where some lanes of a forward vector go: lane `l` of `mask` to `row + base + l` for each
/// output row `row` of the tile (`base` may be negative: the first lane kept need not be
/// lane 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub mask: u16,
    pub base: isize,
}

/// One forward register tile of `R` output channels (rows) by `V` vectors: `C[r, q_v + l]
/// (+)= Σ_{c, t} A[r, c · taps.len() + t] · x[c · plane + q_v + taps[t] + l]`, then the
/// epilogue, each vector's lanes stored as its segments say.
///
/// The pointers must allow: every read `x[c · plane + q_v + taps[t] + l]` (`l < 16`); `a`
/// holding `channels · taps.len() · MR512` floats (a packed panel); every store of a
/// segment at `c + r · ldc + base + l` for the lanes of its mask, `r < R`.
#[derive(Clone, Copy)]
pub(crate) struct ForwardTile512<'a, const V: usize> {
    pub channels: usize,
    pub plane: usize,
    pub taps: &'a [usize],
    pub a: *const f32,
    pub x: *const f32,
    pub q: [usize; V],
    pub segments: [&'a [Segment]; V],
    pub c: *mut f32,
    pub ldc: usize,
    pub add: bool,
    pub epilogue: Epilogue<'a>,
}

/// Computes and stores one [`ForwardTile512`] of `R` rows.
///
/// # Safety
/// AVX-512F present, and the pointers of `t` as [`ForwardTile512`] requires.
#[target_feature(enable = "avx512f")]
pub unsafe fn direct_tile<const R: usize, const V: usize>(t: ForwardTile512<V>) {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        let acc = direct_sums::<R, V>(&t);
        let epi = t.epilogue;
        let zero = _mm512_setzero_ps();
        for (r, row) in acc.iter().enumerate() {
            // The epilogue of row `r` (its output channel), as in `Epilogue::apply`.
            let bias = epi.bias.map(|b| _mm512_set1_ps(b[r]));
            let affine = epi
                .affine
                .map(|(s, h)| (_mm512_set1_ps(s[r]), _mm512_set1_ps(h[r])));
            let c_row = t.c.add(r * t.ldc);
            for (sums, segments) in row.iter().zip(&t.segments) {
                for seg in segments.iter() {
                    let at = c_row.wrapping_offset(seg.base);
                    let mut out = *sums;
                    if t.add {
                        out = _mm512_add_ps(_mm512_maskz_loadu_ps(seg.mask, at), out);
                    }
                    if let Some(b) = bias {
                        out = _mm512_add_ps(out, b);
                    }
                    if let Some((scale, shift)) = affine {
                        out = _mm512_add_ps(_mm512_mul_ps(out, scale), shift);
                    }
                    if epi.relu {
                        out = _mm512_max_ps(out, zero);
                    }
                    _mm512_mask_storeu_ps(at, seg.mask, out);
                }
            }
        }
    }
}

/// The accumulators of [`direct_tile`], by value.
///
/// # Safety
/// AVX-512F present; the pointers as [`ForwardTile512`] says.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn direct_sums<const R: usize, const V: usize>(t: &ForwardTile512<V>) -> [[__m512; V]; R] {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        let mut ap = t.a;
        for ch in 0..t.channels {
            let xc = t.x.add(ch * t.plane);
            for &tap in t.taps {
                let mut xv = [_mm512_setzero_ps(); V];
                for (v, x) in xv.iter_mut().enumerate() {
                    *x = _mm512_loadu_ps(xc.add(t.q[v] + tap));
                }
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*ap.add(r));
                    for (s, &x) in row.iter_mut().zip(&xv) {
                        *s = _mm512_fmadd_ps(av, x, *s);
                    }
                }
                ap = ap.add(MR512);
            }
        }
        acc
    }
}

/// One weight-gradient register tile: `C[r, 16v + j] += Σ_{oy, ox} x[starts[r] + oy · wp +
/// ox] · b_v[(oy · ow + ox) · 16 + j]` for the `R` rows, `V` panels `b_v` of the transposed
/// output gradient, and `16v + j < cols`.
///
/// The pointers must allow every read of `x` above, each `b_v` must hold `oh · ow · 16`
/// floats.
#[derive(Clone, Copy)]
pub(crate) struct GradTile512<const V: usize> {
    pub x: *const f32,
    pub starts: [usize; WR512],
    pub wp: usize,
    pub out_hw: (usize, usize),
    pub b: [*const f32; V],
    pub cols: usize,
}

/// Adds one [`GradTile512`] of `R` rows into `c`, which holds its rows `ldc` apart.
///
/// # Safety
/// AVX-512F present, the pointers of `t` as [`GradTile512`] requires, and `c` holding
/// `cols` values at each of the `R` rows.
#[target_feature(enable = "avx512f")]
pub unsafe fn weight_grad_tile<const R: usize, const V: usize>(
    t: GradTile512<V>,
    c: *mut f32,
    ldc: usize,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        let acc = weight_grad_sums::<R, V>(&t);
        for (r, row) in acc.iter().enumerate() {
            for (v, sums) in row.iter().enumerate() {
                let cols = t.cols.saturating_sub(16 * v).min(16);
                let mask = ((1u32 << cols) - 1) as u16;
                let at = c.add(r * ldc + 16 * v);
                let old = _mm512_maskz_loadu_ps(mask, at);
                _mm512_mask_storeu_ps(at, mask, _mm512_add_ps(old, *sums));
            }
        }
    }
}

/// The accumulators of [`weight_grad_tile`], by value.
///
/// # Safety
/// AVX-512F present; the pointers as [`GradTile512`] says.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn weight_grad_sums<const R: usize, const V: usize>(t: &GradTile512<V>) -> [[__m512; V]; R] {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        let (oh, ow) = t.out_hw;
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        let mut px = 0;
        for oy in 0..oh {
            let xr = t.x.add(oy * t.wp);
            for ox in 0..ow {
                let mut bv = [_mm512_setzero_ps(); V];
                for (b, &p) in bv.iter_mut().zip(&t.b) {
                    *b = _mm512_loadu_ps(p.add(px * 16));
                }
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*xr.add(t.starts[r] + ox));
                    for (s, &b) in row.iter_mut().zip(&bv) {
                        *s = _mm512_fmadd_ps(av, b, *s);
                    }
                }
                px += 1;
            }
        }
        acc
    }
}

/// [`conv_group`]'s products on the AVX-512 tiles: for each panel of [`MR512`] output
/// channels, the padded grid's vectors of 16 positions three at a time
/// ([`ConvScratch::plan512`] laid them out). `(channels, plane)`: the padded image's.
pub(super) fn forward512(
    w_g: &PackedA,
    (channels, plane): (usize, usize),
    out_g: &mut [f32],
    add: bool,
    epilogue: Epilogue,
    scratch: &ConvScratch,
) {
    let og = w_g.m;
    let p = out_g.len() / og.max(1);
    let c = out_g.as_mut_ptr();
    for i in 0..og.div_ceil(MR512) {
        let rows = MR512.min(og - i * MR512);
        // Vectors `group` as a tile of `V` (its length).
        let tile = |group: &[(usize, std::ops::Range<usize>)]| -> ForwardTile512<'_, 3> {
            let at = |v: usize| &group[v.min(group.len() - 1)];
            ForwardTile512 {
                channels,
                plane,
                taps: &scratch.taps,
                a: w_g.panel(i).as_ptr(),
                x: scratch.xpad.as_ptr(),
                q: std::array::from_fn(|v| at(v).0),
                segments: std::array::from_fn(|v| &scratch.segments[at(v).1.clone()]),
                // SAFETY: panel `i`'s first row is inside `out_g`, so the offset stays in it.
                c: unsafe { c.add(i * MR512 * p) },
                ldc: p,
                add,
                epilogue: epilogue.rows_from(i * MR512),
            }
        };
        for group in scratch.vectors512.chunks(3) {
            let t = tile(group);
            // SAFETY: `Isa::Avx512` is only chosen on a CPU with AVX-512F. Reads stay inside
            // the padded image and its 16 floats of slack: the last vector ends at most 15
            // positions past the last output position `(oh - 1)·wp + ow - 1`, and its
            // largest tap reads `(kh - 1)·wp + kw - 1` further, within `hp·wp + 16` of the
            // last channel's start. Segments store only the tile's rows' output positions
            // (`plan512`), inside `out_g`.
            unsafe {
                match group.len() {
                    3 => tile512::<3>(rows, t),
                    2 => tile512::<2>(rows, narrow(t)),
                    _ => tile512::<1>(rows, narrow(t)),
                }
            }
        }
    }
}

/// The first `V` vectors of a tile of three.
fn narrow<const V: usize>(t: ForwardTile512<'_, 3>) -> ForwardTile512<'_, V> {
    ForwardTile512 {
        channels: t.channels,
        plane: t.plane,
        taps: t.taps,
        a: t.a,
        x: t.x,
        q: std::array::from_fn(|v| t.q[v]),
        segments: std::array::from_fn(|v| t.segments[v]),
        c: t.c,
        ldc: t.ldc,
        add: t.add,
        epilogue: t.epilogue,
    }
}

/// [`direct_tile`] for `rows` (1..=8) rows.
///
/// # Safety
/// As [`ForwardTile512`] says, on a CPU with AVX-512F.
#[inline]
unsafe fn tile512<const V: usize>(rows: usize, t: ForwardTile512<V>) {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        match rows {
            8 => direct_tile::<8, V>(t),
            7 => direct_tile::<7, V>(t),
            6 => direct_tile::<6, V>(t),
            5 => direct_tile::<5, V>(t),
            4 => direct_tile::<4, V>(t),
            3 => direct_tile::<3, V>(t),
            2 => direct_tile::<2, V>(t),
            _ => direct_tile::<1, V>(t),
        }
    }
}

impl ConvScratch {
    /// Lays out the AVX-512 forward vectors for an `oh x ow` output read from a padded
    /// image `wp` wide: vector `j` covers the padded grid's positions `16j .. 16j + 16`
    /// (`q = oy·wp + ox`) up to the last output position, and each output row it touches
    /// becomes a [`Segment`] (the lanes with `ox < ow`, stored at `oy·ow + ox`).
    pub(super) fn plan512(&mut self, wp: usize, oh: usize, ow: usize) {
        if self.plan512_for == (wp, oh, ow) && !self.vectors512.is_empty() {
            return;
        }
        self.vectors512.clear();
        self.segments.clear();
        self.plan512_for = (wp, oh, ow);
        if oh == 0 || ow == 0 {
            return;
        }
        let end = (oh - 1) * wp + ow; // one past the last output position
        for q0 in (0..end).step_by(16) {
            let from = self.segments.len();
            for oy in q0 / wp..=(end.min(q0 + 16) - 1) / wp {
                let (lo, hi) = ((oy * wp).max(q0), (oy * wp + ow).min(q0 + 16));
                if lo < hi {
                    let lane = lo - q0;
                    self.segments.push(Segment {
                        mask: (((1u32 << (hi - lo)) - 1) << lane) as u16,
                        base: (oy * ow + lo - oy * wp) as isize - lane as isize,
                    });
                }
            }
            self.vectors512.push((q0, from..self.segments.len()));
        }
    }
}

/// [`weight_grad_tile`] for `rows` (1..=12) rows.
///
/// # Safety
/// As [`GradTile512`] says, with `c` holding the tile's rows `ldc` apart, on a CPU
/// with AVX-512F.
#[inline]
pub(super) unsafe fn grad512<const V: usize>(
    rows: usize,
    t: GradTile512<V>,
    c: *mut f32,
    ldc: usize,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        match rows {
            12 => weight_grad_tile::<12, V>(t, c, ldc),
            11 => weight_grad_tile::<11, V>(t, c, ldc),
            10 => weight_grad_tile::<10, V>(t, c, ldc),
            9 => weight_grad_tile::<9, V>(t, c, ldc),
            8 => weight_grad_tile::<8, V>(t, c, ldc),
            7 => weight_grad_tile::<7, V>(t, c, ldc),
            6 => weight_grad_tile::<6, V>(t, c, ldc),
            5 => weight_grad_tile::<5, V>(t, c, ldc),
            4 => weight_grad_tile::<4, V>(t, c, ldc),
            3 => weight_grad_tile::<3, V>(t, c, ldc),
            2 => weight_grad_tile::<2, V>(t, c, ldc),
            _ => weight_grad_tile::<1, V>(t, c, ldc),
        }
    }
}

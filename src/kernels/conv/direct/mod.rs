//! Direct convolution for stride 1: the products of a convolution's forward pass, input
//! gradient and weight gradient computed from the image itself, without the im2col matrix
//! (`KH * KW` times the input) that [`super`]'s GEMM path writes and then packs.
//!
//! Each channel group of an image is copied once into a zero-bordered buffer
//! `[cg, H + 2ph, W + 2pw]`; row `(c, ky, kx)` of the column matrix at output pixel
//! `(oy, ox)` is then the buffer's element `(c, oy + ky, ox + kx)`, at a fixed offset from
//! the pixel's own. So:
//!
//! - forward ([`conv_group`]): a register tile is 6 output channels by two vectors of 8
//!   pixels of one output row; each step broadcasts 6 packed weights and loads the two
//!   vectors straight from the buffer, shifted by the tap (pixels past a row's end are
//!   computed and dropped: 7 of 8 lanes are kept on 7-, 14- and 28-wide maps);
//! - the input gradient is the same kernel on the output gradient with the flipped weight
//!   (see `input_grad_as_conv` in [`super`]);
//! - weight gradient ([`weight_grad_group`]): a tile is 6 rows of the column matrix by 16
//!   output channels, summed over every output pixel, with the output gradient transposed
//!   once per image into 16-channel panels.
//!
//! On AVX-512 CPUs ([`Isa::best`]) the tiles are twice as wide and run over the padded
//! grid instead of single rows (module `avx512`): 8 output channels by three vectors of 16
//! positions forward, 12 rows by 32 channels for the weight gradient.
//!
//! The weight is packed once per call and shared by every image and thread. The kernels
//! need AVX2 and FMA ([`available`]); the GEMM path stays for other CPUs, other strides and
//! small batches. Tests compare both products with im2col and the reference GEMM, on every
//! width the CPU has.

#[cfg(target_arch = "x86_64")]
pub(in crate::kernels) mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(test)]
mod tests;
mod weight_grad;

pub use weight_grad::weight_grad_group;

use super::ConvShape;
pub use crate::kernels::epilogue::Epilogue;
use crate::kernels::epilogue::Step;
use crate::kernels::im2col::copy_short;
pub use crate::runtime::cpu::{available, Isa};

/// Rows of a register tile (and of a packed weight panel).
pub const MR: usize = 6;
/// Output channels of a weight-gradient register tile.
pub const NR: usize = 16;
/// Rows of an AVX-512 forward tile and of its packed weight panels.
pub const MR512: usize = 8;
/// Rows (of the column matrix) of an AVX-512 weight-gradient tile.
pub const WR512: usize = 12;

/// One forward register tile: `C[r, 8v + l] (+)= Σ_{c, t} A[r, c * taps.len() + t] ·
/// x[b[v] + c * plane + taps[t] + l]` for `r` below the tile's rows, `v < V` vectors and
/// `l < 8` lanes, where `A` is a packed weight panel ([`PackedA`], k-order `(c, t)`). Lanes
/// `l >= valid[v]` are computed but not stored.
///
/// The pointers must allow: every read `x[b[v] + c * plane + taps[t] + l]` (`l < 8`); `a`
/// holding `channels * taps.len() * MR` floats; `c[v]` reaching the tile's last row at `ldc`.
#[derive(Clone, Copy)]
pub(crate) struct ForwardTile<'a, const V: usize> {
    shared: TileShared<'a>,
    b: [usize; V],
    c: [*mut f32; V],
    valid: [usize; V],
}

/// What the forward tiles of one weight panel have in common.
#[derive(Clone, Copy)]
pub(crate) struct TileShared<'a> {
    channels: usize,
    plane: usize,
    taps: &'a [usize],
    a: *const f32,
    x: *const f32,
    ldc: usize,
    add: bool,
    /// The epilogue of the panel's rows ([`Epilogue::rows_from`]).
    epilogue: Epilogue<'a>,
}

/// One weight-gradient register tile: `C[r, j] += Σ_{oy, ox} x[starts[r] + oy * wp + ox] ·
/// b[(oy * ow + ox) * NR + j]` for `j < cols` (`b` the output gradient transposed, `NR`
/// channels per pixel).
///
/// The pointers must allow every read of `x` above and `b` must hold `oh * ow * NR` floats.
#[derive(Clone, Copy)]
pub(crate) struct GradTile {
    x: *const f32,
    starts: [usize; MR],
    wp: usize,
    out_hw: (usize, usize),
    b: *const f32,
    cols: usize,
}

/// `A [m, k]` packed into row panels for the tiles of `isa`: panel `i` holds rows
/// `i·mr ..` as `[k][mr]`, `mr` the tiles' rows ([`MR`] or [`MR512`]).
pub struct PackedA {
    /// Rows of the matrix.
    pub m: usize,
    /// Depth (the reduction length) of the matrix.
    pub k: usize,
    isa: Isa,
    data: Vec<f32>,
}

impl PackedA {
    /// Packs the row-major `m x k` matrix `a` for the CPU's best kernels ([`Isa::best`]).
    pub fn new(a: &[f32], m: usize, k: usize) -> PackedA {
        PackedA::for_isa(a, m, k, Isa::best().unwrap_or(Isa::Avx2))
    }

    /// Packs `a` for the tiles of `isa`, which the CPU must run.
    pub fn for_isa(a: &[f32], m: usize, k: usize, isa: Isa) -> PackedA {
        assert!(isa.runs(), "PackedA: this CPU does not run {isa:?} kernels");
        assert!(
            a.len() >= m * k,
            "PackedA: {} values for {m} x {k}",
            a.len()
        );
        let mr = panel_rows(isa);
        let panels = m.div_ceil(mr);
        let mut data = vec![0.0; panels * k * mr];
        for (i, panel) in data.chunks_exact_mut((k * mr).max(1)).enumerate() {
            let rows = mr.min(m - i * mr);
            for (p, dst) in panel.chunks_exact_mut(mr).enumerate() {
                for (r, d) in dst[..rows].iter_mut().enumerate() {
                    *d = a[(i * mr + r) * k + p];
                }
            }
        }
        PackedA { m, k, isa, data }
    }

    /// Rows per panel.
    fn mr(&self) -> usize {
        panel_rows(self.isa)
    }

    /// Panel `i`: `[k][mr]`.
    fn panel(&self, i: usize) -> &[f32] {
        let len = self.k * self.mr();
        &self.data[i * len..(i + 1) * len]
    }
}

/// Rows of a packed weight panel for the forward tiles of `isa`.
fn panel_rows(isa: Isa) -> usize {
    match isa {
        Isa::Avx2 => MR,
        Isa::Avx512 => MR512,
    }
}

/// Whether the direct kernels can compute `s`: stride 1, no dilation, and a CPU with the
/// micro-kernel.
pub fn applies(s: &ConvShape) -> bool {
    available() && s.stride == (1, 1) && s.dilation == (1, 1)
}

/// One thread's buffers for [`conv_group`], reused from image to image.
#[derive(Default)]
pub struct ConvScratch {
    /// The zero-bordered image (plus 16 floats of slack for the last row's reads) and the
    /// geometry `(cg, h, w, ph, pw)` it was laid out for.
    xpad: Vec<f32>,
    layout: (usize, usize, usize, usize, usize),
    /// For the forward tiles of the geometry `forward_for` (`(wp, kh, kw, oh, ow)`): each
    /// tap's offset in a padded plane, and the output's vectors of 8 pixels within one row
    /// as (offset in a padded plane, offset in the output, valid lanes).
    taps: Vec<usize>,
    vectors: Vec<(usize, usize, usize)>,
    forward_for: (usize, usize, usize, usize, usize),
    /// For the AVX-512 forward tiles of the geometry `plan512_for` (`(wp, oh, ow)`): each
    /// vector of 16 positions of the padded grid as (first position, its range in
    /// `segments`), and where each vector's lanes go.
    #[cfg(target_arch = "x86_64")]
    vectors512: Vec<(usize, std::ops::Range<usize>)>,
    #[cfg(target_arch = "x86_64")]
    segments: Vec<avx512::Segment>,
    plan512_for: (usize, usize, usize),
    /// The output gradient transposed into panels of [`NR`] channels, `[og / NR][P][NR]`
    /// (the last panel's channels past `og` unspecified).
    dyt: Vec<f32>,
}

impl ConvScratch {
    /// Copies one channel group `x_g: [cg, H, W]` into the zero-bordered buffer
    /// `[cg, H + 2ph, W + 2pw]` (plus 16 floats of slack), clearing it first only when the
    /// geometry changed: the border stays zero from image to image.
    fn pad(&mut self, s: &ConvShape, x_g: &[f32]) {
        let cg = s.c / s.groups;
        let (h, w, (ph, pw)) = (s.h, s.w, s.padding);
        let (hp, wp) = (h + 2 * ph, w + 2 * pw);
        let layout = (cg, h, w, ph, pw);
        let len = cg * hp * wp + 16;
        if self.layout != layout || self.xpad.len() != len {
            self.xpad.clear();
            self.xpad.resize(len, 0.0);
            self.layout = layout;
        }
        for (dst, src) in self
            .xpad
            .chunks_exact_mut(hp * wp)
            .zip(x_g.chunks_exact(h * w))
        {
            for (y, row) in src.chunks_exact(w).enumerate() {
                let at = (y + ph) * wp + pw;
                copy_short(&mut dst[at..at + w], row);
            }
        }
    }
}

/// Packs each group's weight `w: [groups, og, K]` for [`conv_group`].
pub fn pack_weight(s: &ConvShape, w: &[f32]) -> Vec<PackedA> {
    pack_weight_for(s, w, Isa::best().unwrap_or(Isa::Avx2))
}

/// [`pack_weight`] for the tiles of `isa`.
pub fn pack_weight_for(s: &ConvShape, w: &[f32], isa: Isa) -> Vec<PackedA> {
    let (og, k) = (s.o / s.groups, s.c / s.groups * s.kh * s.kw);
    w.chunks_exact(og * k)
        .map(|w_g| PackedA::for_isa(w_g, og, k, isa))
        .collect()
}

/// `out_g [og, OH*OW] (+)= w_g · im2col(x_g)` for one channel group `x_g: [cg, H, W]` of one
/// image, then `epilogue` (its channels those of the group) on each value as it is stored;
/// `w_g` from [`pack_weight`]. `s` must satisfy [`applies`].
pub fn conv_group(
    s: &ConvShape,
    w_g: &PackedA,
    x_g: &[f32],
    out_g: &mut [f32],
    accumulate: bool,
    epilogue: Epilogue,
    scratch: &mut ConvScratch,
) {
    assert!(
        applies(s),
        "conv_group: {s:?} needs stride 1, no dilation, AVX2/FMA"
    );
    let cg = s.c / s.groups;
    let (h, w, (ph, pw)) = (s.h, s.w, s.padding);
    let (hp, wp) = (h + 2 * ph, w + 2 * pw);
    let (oh, ow) = s.out_hw();
    let og = w_g.m;
    assert!(
        x_g.len() >= cg * h * w && out_g.len() >= og * oh * ow && w_g.k == cg * s.kh * s.kw,
        "conv_group: buffers do not fit {s:?}"
    );
    epilogue.supports("conv_group", &[Step::Bias, Step::Affine, Step::Relu], og);
    scratch.pad(s, x_g);
    let geometry = (wp, s.kh, s.kw, oh, ow);
    if scratch.forward_for != geometry || scratch.taps.is_empty() {
        scratch.taps = (0..s.kh)
            .flat_map(|ky| (0..s.kw).map(move |kx| ky * wp + kx))
            .collect();
        scratch.vectors = (0..oh)
            .flat_map(|oy| {
                (0..ow)
                    .step_by(8)
                    .map(move |ox| (oy * wp + ox, oy * ow + ox, 8.min(ow - ox)))
            })
            .collect();
        scratch.forward_for = geometry;
    }
    #[cfg(target_arch = "x86_64")]
    if w_g.isa == Isa::Avx512 {
        scratch.plan512(wp, oh, ow);
        avx512::forward512(w_g, (cg, hp * wp), out_g, accumulate, epilogue, scratch);
        return;
    }
    let (taps, vectors) = (&scratch.taps, &scratch.vectors);
    let x = scratch.xpad.as_ptr();
    let p = oh * ow;
    let c = out_g.as_mut_ptr();
    for i in 0..og.div_ceil(MR) {
        let rows = MR.min(og - i * MR);
        let a = w_g.panel(i).as_ptr();
        for pair in vectors.chunks(2) {
            // SAFETY: `applies` checked the CPU; reads stay inside the padded image plus its
            // slack (a vector starts at most 7 before a row's end); the tile's rows and
            // valid lanes are inside `out_g` (checked above).
            unsafe {
                let c0 = c.add(i * MR * p);
                let shared = TileShared {
                    channels: cg,
                    plane: hp * wp,
                    taps,
                    a,
                    x,
                    ldc: p,
                    add: accumulate,
                    epilogue: epilogue.rows_from(i * MR),
                };
                if let [u, v] = pair {
                    let c = [c0.add(u.1), c0.add(v.1)];
                    let (b, valid) = ([u.0, v.0], [u.2, v.2]);
                    tile::<2>(
                        rows,
                        ForwardTile {
                            shared,
                            b,
                            c,
                            valid,
                        },
                    );
                } else {
                    let u = pair[0];
                    let (b, c, valid) = ([u.0], [c0.add(u.1)], [u.2]);
                    tile::<1>(
                        rows,
                        ForwardTile {
                            shared,
                            b,
                            c,
                            valid,
                        },
                    );
                }
            }
        }
    }
}

/// [`avx2::direct_tile`] for `rows` (1..=6) rows.
///
/// # Safety
/// As [`ForwardTile`] says.
#[inline]
unsafe fn tile<const V: usize>(rows: usize, t: ForwardTile<V>) {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        match rows {
            6 => avx2::direct_tile::<6, V>(t),
            5 => avx2::direct_tile::<5, V>(t),
            4 => avx2::direct_tile::<4, V>(t),
            3 => avx2::direct_tile::<3, V>(t),
            2 => avx2::direct_tile::<2, V>(t),
            _ => avx2::direct_tile::<1, V>(t),
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (rows, t);
            unreachable!("the direct convolution needs x86-64");
        }
    }
}

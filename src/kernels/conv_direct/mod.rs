//! Direct convolution for stride 1: the products of a convolution's forward pass, input
//! gradient and weight gradient computed from the image itself, without the im2col matrix
//! (`KH * KW` times the input) that [`super::conv`]'s GEMM path writes and then packs.
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
//!   (see `input_grad_as_conv` in [`super::conv`]);
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
pub(super) mod avx;
#[cfg(target_arch = "x86_64")]
mod avx512;

use super::conv::ConvShape;
use super::im2col::copy_short;
pub use super::isa::{available, Isa};

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

/// What a forward pass does to each output value `v` of output channel `o` before storing
/// it, each step only when given: `v + bias[o]`, then `v * scale[o] + shift[o]` (a batch norm
/// with its running statistics), then `max(v, 0)`. The arithmetic is that of the separate
/// ops (a multiply then an add, not a fused multiply-add), so the values are theirs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    pub bias: Option<&'a [f32]>,
    /// `(scale, shift)`, one value per output channel each.
    pub affine: Option<(&'a [f32], &'a [f32])>,
    pub relu: bool,
}

impl<'a> Epilogue<'a> {
    /// Stores the sums as they are.
    pub fn is_identity(&self) -> bool {
        self.bias.is_none() && self.affine.is_none() && !self.relu
    }

    /// The epilogue of the output channels from `o` on (a channel group, a register tile).
    pub fn rows_from(&self, o: usize) -> Epilogue<'a> {
        Epilogue {
            bias: self.bias.map(|b| &b[o..]),
            affine: self.affine.map(|(s, t)| (&s[o..], &t[o..])),
            relu: self.relu,
        }
    }

    /// Applies the epilogue of output channel `o` to a run of its values.
    pub fn apply(&self, o: usize, values: &mut [f32]) {
        if let Some(b) = self.bias {
            values.iter_mut().for_each(|v| *v += b[o]);
        }
        if let Some((scale, shift)) = self.affine {
            values
                .iter_mut()
                .for_each(|v| *v = *v * scale[o] + shift[o]);
        }
        if self.relu {
            values.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }

    /// Panics unless every given slice holds a value for each of `channels` channels.
    pub fn check(&self, channels: usize) {
        let lens = [
            self.bias.map(<[f32]>::len),
            self.affine.map(|(s, _)| s.len()),
            self.affine.map(|(_, t)| t.len()),
        ];
        assert!(
            lens.iter().flatten().all(|&l| l >= channels),
            "conv epilogue: per-channel values {lens:?} for {channels} output channels"
        );
    }
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
    pub m: usize,
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
    epilogue.check(og);
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
        forward512(w_g, (cg, hp * wp), out_g, accumulate, epilogue, scratch);
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

/// [`conv_group`]'s products on the AVX-512 tiles: for each panel of [`MR512`] output
/// channels, the padded grid's vectors of 16 positions three at a time
/// ([`ConvScratch::plan512`] laid them out). `(channels, plane)`: the padded image's.
#[cfg(target_arch = "x86_64")]
fn forward512(
    w_g: &PackedA,
    (channels, plane): (usize, usize),
    out_g: &mut [f32],
    add: bool,
    epilogue: Epilogue,
    scratch: &ConvScratch,
) {
    use avx512::ForwardTile512;
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
                // SAFETY (of the offset): panel `i`'s first row is inside `out_g`.
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
#[cfg(target_arch = "x86_64")]
fn narrow<const V: usize>(t: avx512::ForwardTile512<'_, 3>) -> avx512::ForwardTile512<'_, V> {
    avx512::ForwardTile512 {
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

/// [`avx512::direct_tile`] for `rows` (1..=8) rows.
///
/// # Safety
/// As [`avx512::ForwardTile512`] says, on a CPU with AVX-512F.
#[cfg(target_arch = "x86_64")]
#[inline]
unsafe fn tile512<const V: usize>(rows: usize, t: avx512::ForwardTile512<V>) {
    match rows {
        8 => avx512::direct_tile::<8, V>(t),
        7 => avx512::direct_tile::<7, V>(t),
        6 => avx512::direct_tile::<6, V>(t),
        5 => avx512::direct_tile::<5, V>(t),
        4 => avx512::direct_tile::<4, V>(t),
        3 => avx512::direct_tile::<3, V>(t),
        2 => avx512::direct_tile::<2, V>(t),
        _ => avx512::direct_tile::<1, V>(t),
    }
}

#[cfg(target_arch = "x86_64")]
impl ConvScratch {
    /// Lays out the AVX-512 forward vectors for an `oh x ow` output read from a padded
    /// image `wp` wide: vector `j` covers the padded grid's positions `16j .. 16j + 16`
    /// (`q = oy·wp + ox`) up to the last output position, and each output row it touches
    /// becomes a [`avx512::Segment`] (the lanes with `ox < ow`, stored at `oy·ow + ox`).
    fn plan512(&mut self, wp: usize, oh: usize, ow: usize) {
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
                    self.segments.push(avx512::Segment {
                        mask: (((1u32 << (hi - lo)) - 1) << lane) as u16,
                        base: (oy * ow + lo - oy * wp) as isize - lane as isize,
                    });
                }
            }
            self.vectors512.push((q0, from..self.segments.len()));
        }
    }
}

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
fn weight_grad_group_on(
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
                let t = avx512::GradTile512 {
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
                        grad512::<2>(rows, t, c, og);
                    } else {
                        let t = avx512::GradTile512 {
                            x: t.x,
                            starts: t.starts,
                            wp: t.wp,
                            out_hw: t.out_hw,
                            b: [t.b[0]],
                            cols: t.cols,
                        };
                        grad512::<1>(rows, t, c, og);
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
            // SAFETY: `applies` checked the CPU; every read `x[start + oy * wp + ox]` lies in
            // the padded image (the tap of an output pixel), `b` holds `P * NR` floats, and
            // the tile's `rows x cols` block lies inside `dwt` (checked above).
            let t = GradTile {
                x,
                starts,
                wp,
                out_hw: (oh, ow),
                b,
                cols,
            };
            unsafe { wgrad(rows, t, c, og) };
        }
    }
}

/// The output gradient `dy [og, P]` transposed into panels `[og / NR][P][NR]` (channel
/// fastest), the layout [`avx::weight_grad_tile`] reads. Blocks of 8 channels x 8 pixels go
/// through [`avx::transpose_8x8`]; the tails one value at a time. Channels past `og` in the
/// last panel keep stale values: their sums are never stored.
fn transpose_into_panels(dy: &[f32], og: usize, p: usize, dyt: &mut [f32]) {
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
                    avx::transpose_8x8(
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

/// [`avx512::weight_grad_tile`] for `rows` (1..=12) rows.
///
/// # Safety
/// As [`avx512::GradTile512`] says, with `c` holding the tile's rows `ldc` apart, on a CPU
/// with AVX-512F.
#[cfg(target_arch = "x86_64")]
#[inline]
unsafe fn grad512<const V: usize>(rows: usize, t: avx512::GradTile512<V>, c: *mut f32, ldc: usize) {
    match rows {
        12 => avx512::weight_grad_tile::<12, V>(t, c, ldc),
        11 => avx512::weight_grad_tile::<11, V>(t, c, ldc),
        10 => avx512::weight_grad_tile::<10, V>(t, c, ldc),
        9 => avx512::weight_grad_tile::<9, V>(t, c, ldc),
        8 => avx512::weight_grad_tile::<8, V>(t, c, ldc),
        7 => avx512::weight_grad_tile::<7, V>(t, c, ldc),
        6 => avx512::weight_grad_tile::<6, V>(t, c, ldc),
        5 => avx512::weight_grad_tile::<5, V>(t, c, ldc),
        4 => avx512::weight_grad_tile::<4, V>(t, c, ldc),
        3 => avx512::weight_grad_tile::<3, V>(t, c, ldc),
        2 => avx512::weight_grad_tile::<2, V>(t, c, ldc),
        _ => avx512::weight_grad_tile::<1, V>(t, c, ldc),
    }
}

/// [`avx::weight_grad_tile`] for `rows` (1..=6) rows.
///
/// # Safety
/// As [`GradTile`] says, with `c` holding the tile's rows `ldc` apart.
#[inline]
unsafe fn wgrad(rows: usize, t: GradTile, c: &mut [f32], ldc: usize) {
    #[cfg(target_arch = "x86_64")]
    match rows {
        6 => avx::weight_grad_tile::<6>(t, c, ldc),
        5 => avx::weight_grad_tile::<5>(t, c, ldc),
        4 => avx::weight_grad_tile::<4>(t, c, ldc),
        3 => avx::weight_grad_tile::<3>(t, c, ldc),
        2 => avx::weight_grad_tile::<2>(t, c, ldc),
        _ => avx::weight_grad_tile::<1>(t, c, ldc),
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (rows, t, c, ldc);
        unreachable!("the direct convolution needs x86-64");
    }
}

/// [`avx::direct_tile`] for `rows` (1..=6) rows.
///
/// # Safety
/// As [`ForwardTile`] says.
#[inline]
unsafe fn tile<const V: usize>(rows: usize, t: ForwardTile<V>) {
    #[cfg(target_arch = "x86_64")]
    match rows {
        6 => avx::direct_tile::<6, V>(t),
        5 => avx::direct_tile::<5, V>(t),
        4 => avx::direct_tile::<4, V>(t),
        3 => avx::direct_tile::<3, V>(t),
        2 => avx::direct_tile::<2, V>(t),
        _ => avx::direct_tile::<1, V>(t),
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (rows, t);
        unreachable!("the direct convolution needs x86-64");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::im2col::im2col;
    use crate::kernels::test_values::values;

    fn shape(
        c: usize,
        h: usize,
        w: usize,
        o: usize,
        k: (usize, usize),
        pad: (usize, usize),
    ) -> ConvShape {
        ConvShape {
            n: 1,
            c,
            h,
            w,
            o,
            kh: k.0,
            kw: k.1,
            stride: (1, 1),
            padding: pad,
            dilation: (1, 1),
            groups: 1,
        }
    }

    #[test]
    fn transposes_into_panels_with_tails() {
        // Whole 8 x 8 blocks, a pixel tail (49 = 6 * 8 + 1), channel tails inside a panel
        // (21 = 16 + 5) and a panel of fewer than 8 channels.
        for (og, p) in [(16, 64), (64, 49), (21, 13), (3, 9), (32, 196)] {
            let dy = values(og * p, 6);
            let mut dyt = vec![f32::NAN; og.div_ceil(NR) * p * NR];
            transpose_into_panels(&dy, og, p, &mut dyt);
            for c in 0..og {
                for px in 0..p {
                    let got = dyt[(c / NR) * p * NR + px * NR + c % NR];
                    assert_eq!(
                        got,
                        dy[c * p + px],
                        "og={og} p={p}: channel {c}, pixel {px}"
                    );
                }
            }
        }
    }

    #[test]
    fn matches_im2col_then_product() {
        for isa in Isa::available() {
            matches_im2col_then_product_on(isa);
        }
    }

    fn matches_im2col_then_product_on(isa: Isa) {
        let mut scratch = ConvScratch::default();
        // resnet20's three stages, lenet5's 5x5 layers, a non-square kernel, a padding
        // wider than the kernel's reach and a 1-pixel-wide image; one scratch for all (its
        // border must be rebuilt when the geometry changes).
        for s in [
            shape(16, 28, 28, 16, (3, 3), (1, 1)),
            shape(32, 14, 14, 32, (3, 3), (1, 1)),
            shape(64, 7, 7, 64, (3, 3), (1, 1)),
            shape(1, 28, 28, 6, (5, 5), (2, 2)),
            shape(6, 14, 14, 16, (5, 5), (0, 0)),
            shape(3, 9, 5, 7, (2, 3), (2, 1)),
            shape(2, 4, 1, 3, (3, 1), (1, 0)),
            shape(16, 28, 28, 16, (3, 3), (1, 1)),
        ] {
            let (oh, ow) = s.out_hw();
            let k = s.c * s.kh * s.kw;
            let x = values(s.c * s.h * s.w, 1);
            let w = values(s.o * k, 2);
            let mut cols = vec![0.0; k * oh * ow];
            im2col(&s, &x, &mut cols);
            for acc in [false, true] {
                let mut want = values(s.o * oh * ow, 3);
                let mut got = want.clone();
                let g = crate::kernels::gemm::Gemm::new(s.o, oh * ow, k).accumulate(acc);
                crate::kernels::gemm::sgemm_reference(g, &w, &cols, &mut want);
                let packed = pack_weight_for(&s, &w, isa);
                conv_group(
                    &s,
                    &packed[0],
                    &x,
                    &mut got,
                    acc,
                    Epilogue::default(),
                    &mut scratch,
                );
                let err = got
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                assert!(
                    err < 1e-4 * k as f32,
                    "{isa:?} {s:?} acc={acc}: max error {err}"
                );
            }
            // Weight gradient: dWᵀ [K, O] += cols · dyᵀ, against the reference product.
            let dy = values(s.o * oh * ow, 4);
            let mut want = values(k * s.o, 5);
            let mut got = want.clone();
            let g = crate::kernels::gemm::Gemm::new(k, s.o, oh * ow)
                .trans_b(true)
                .accumulate(true);
            crate::kernels::gemm::sgemm_reference(g, &cols, &dy, &mut want);
            weight_grad_group_on(isa, &s, &x, &dy, &mut got, &mut scratch);
            let err = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(
                err < 1e-4 * (oh * ow) as f32,
                "{isa:?} {s:?} weight grad: max error {err}"
            );
        }
    }
}

//! 2-D convolution (NCHW, weight `[O, C / groups, KH, KW]`) as im2col + GEMM, forward and
//! backward, with plain reference loops beside them.
//!
//! Per image and channel group: `out_g[og, P] = W_g[og, K] · cols[K, P]` with
//! `K = cg * KH * KW` and `P = OH * OW`. Backward: `dcols = W_gᵀ · dout_g`, scattered back with
//! `col2im`; `dW_g += dout_g · colsᵀ`, with the columns recomputed rather than kept from the
//! forward pass (they would cost `K / C` times the input's memory per layer).
//!
//! Operand layouts are chosen for the GEMM's packing, which is fast when `A` is stored with
//! its row index contiguous and `B` with its column index contiguous: the forward pass uses
//! the weight transposed once per call (`[K, og]`). The weight gradient reads `cols` through
//! the transposed flag: writing `colsᵀ` directly (`im2row`, a scatter with stride `K`) cost
//! more than the GEMM's slower packing of a transposed `B` (W2: 3.33G -> 2.68G instructions).
//!
//! Stride-1 convolutions take the direct kernels of [`super::conv_direct`] instead (forward,
//! the input gradient as a flipped convolution, and the weight gradient), which read the
//! image itself rather than its columns, whenever the CPU has AVX2/FMA and the images are
//! spread over the threads; the GEMM path covers the rest.
//!
//! Threads: a batch at least as large as the pool is split into contiguous slices of images,
//! [`SLICES_PER_THREAD`] per thread when the batch allows, which the threads take as they
//! become free; each slice reuses one column buffer and keeps its own weight-gradient
//! partial sum, summed in slice order afterwards (deterministic for a given thread count).
//! The GEMM runs single-threaded inside those workers. A smaller batch runs image by image on
//! the calling thread so that each GEMM can use the whole pool.

pub use super::conv_direct::Epilogue;
use super::conv_direct::{self, ConvScratch, PackedA};
use super::gemm::{sgemm, Gemm};
use super::im2col::{col2im, im2col_reusing};
use super::parallel::{as_piece, num_threads};
use rayon::prelude::*;

/// Slices of the batch per thread: a thread that finishes its slices early takes the
/// others' instead of waiting for them.
const SLICES_PER_THREAD: usize = 4;

/// Sizes of one convolution: input `[n, c, h, w]`, weight `[o, c / groups, kh, kw]`.
/// Pairs are `(height, width)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    pub dilation: (usize, usize),
    pub groups: usize,
}

impl ConvShape {
    /// Output height and width. The caller has checked that the dilated kernel fits in the
    /// padded input.
    pub fn out_hw(&self) -> (usize, usize) {
        let span_h = self.dilation.0 * (self.kh - 1) + 1;
        let span_w = self.dilation.1 * (self.kw - 1) + 1;
        (
            (self.h + 2 * self.padding.0 - span_h) / self.stride.0 + 1,
            (self.w + 2 * self.padding.1 - span_w) / self.stride.1 + 1,
        )
    }

    /// Why these sizes are not a valid convolution, if they are not.
    pub fn problem(&self) -> Option<String> {
        let span_h = self.dilation.0 * self.kh.saturating_sub(1) + 1;
        let span_w = self.dilation.1 * self.kw.saturating_sub(1) + 1;
        if self.groups == 0
            || !self.c.is_multiple_of(self.groups)
            || !self.o.is_multiple_of(self.groups)
        {
            return Some(format!(
                "groups {} must divide both the {} input and the {} output channels",
                self.groups, self.c, self.o
            ));
        }
        if self.kh == 0 || self.kw == 0 || self.stride.0 == 0 || self.stride.1 == 0 {
            return Some("kernel size and stride must be positive".into());
        }
        if self.dilation.0 == 0 || self.dilation.1 == 0 {
            return Some("dilation must be positive".into());
        }
        if span_h > self.h + 2 * self.padding.0 || span_w > self.w + 2 * self.padding.1 {
            return Some(format!(
                "kernel {}x{} (dilated {span_h}x{span_w}) is larger than the padded input {}x{}",
                self.kh,
                self.kw,
                self.h + 2 * self.padding.0,
                self.w + 2 * self.padding.1
            ));
        }
        None
    }

    /// Input channels per group.
    fn cg(&self) -> usize {
        self.c / self.groups
    }

    /// Output channels per group.
    fn og(&self) -> usize {
        self.o / self.groups
    }

    /// Rows of the column matrix of one group: `cg * kh * kw`.
    fn k(&self) -> usize {
        self.cg() * self.kh * self.kw
    }

    /// Output pixels per channel.
    fn p(&self) -> usize {
        let (oh, ow) = self.out_hw();
        oh * ow
    }

    /// A 1x1, stride-1, unpadded convolution: the input plane is already the column matrix.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == (1, 1) && self.padding == (0, 0)
    }

    /// Elements of the output, `[n, o, oh, ow]`.
    pub fn out_len(&self) -> usize {
        self.n * self.o * self.p()
    }

    /// Elements of the weight, `[o, c / groups, kh, kw]`.
    pub fn weight_len(&self) -> usize {
        self.o * self.k()
    }

    /// Floating-point operations of the forward pass (2 per multiply-add).
    pub fn forward_flops(&self) -> f64 {
        2.0 * (self.n * self.o * self.p() * self.k()) as f64
    }

    /// Images per slice and number of slices for the batch loop (see the module docs).
    fn split(&self) -> (usize, usize) {
        let t = num_threads();
        let per = if self.n >= t && t > 1 {
            self.n.div_ceil(t * SLICES_PER_THREAD)
        } else {
            self.n.max(1)
        };
        (per, self.n.div_ceil(per).max(1))
    }
}

/// The weight of each group transposed, `[groups, K, og]`: the GEMM packs an `A` operand
/// stored this way (the `m` index contiguous) much faster.
fn transpose_weight(s: &ConvShape, w: &[f32]) -> Vec<f32> {
    let (og, k) = (s.og(), s.k());
    let mut wt = vec![0.0; w.len()];
    for (w_g, wt_g) in w.chunks_exact(og * k).zip(wt.chunks_exact_mut(og * k)) {
        for (o, row) in w_g.chunks_exact(k).enumerate() {
            for (r, &v) in row.iter().enumerate() {
                wt_g[r * og + o] = v;
            }
        }
    }
    wt
}

/// The input gradient of a stride-1, undilated convolution is itself a convolution: of the
/// output gradient `[og, OH, OW]` with the kernel flipped and its channel axes swapped,
/// padded by `k - 1 - padding`. This returns that convolution's shape (for one group of one
/// image) when it applies. Computing `dx` this way writes `[cg, H, W]` straight from one
/// product, instead of `dcols = Wᵀ · dout` (`K / og` times larger, cleared by the GEMM
/// first) followed by the `col2im` scatter.
fn input_grad_as_conv(s: &ConvShape) -> Option<ConvShape> {
    let direct = s.stride == (1, 1)
        && s.dilation == (1, 1)
        && s.padding.0 < s.kh
        && s.padding.1 < s.kw
        && !s.pointwise();
    direct.then(|| ConvShape {
        n: 1,
        c: s.og(),
        h: s.out_hw().0,
        w: s.out_hw().1,
        o: s.cg(),
        kh: s.kh,
        kw: s.kw,
        stride: (1, 1),
        padding: (s.kh - 1 - s.padding.0, s.kw - 1 - s.padding.1),
        dilation: (1, 1),
        groups: 1,
    })
}

/// The weight of each group flipped in space with its channel axes swapped,
/// `[groups, cg, og * KH * KW]`: the weight of [`input_grad_as_conv`]'s convolution.
fn flip_weight(s: &ConvShape, w: &[f32]) -> Vec<f32> {
    let (cg, og, kk) = (s.cg(), s.og(), s.kh * s.kw);
    let mut f = vec![0.0; w.len()];
    for gi in 0..s.groups {
        let (w_g, f_g) = (&w[gi * og * cg * kk..], &mut f[gi * og * cg * kk..]);
        for o in 0..og {
            for c in 0..cg {
                for t in 0..kk {
                    f_g[(c * og + o) * kk + (kk - 1 - t)] = w_g[(o * cg + c) * kk + t];
                }
            }
        }
    }
    f
}

/// How the forward pass multiplies: the weight from [`transpose_weight`] with a column
/// buffer (zero-initialised, see [`im2col_reusing`]), or the packed weight of
/// [`conv_direct::pack_weight`] with its scratch.
enum Engine<'a> {
    Columns {
        wt: &'a [f32],
        cols: Vec<f32>,
    },
    Direct {
        packed: &'a [PackedA],
        scratch: Box<ConvScratch>,
    },
}

/// Forward pass of `count` consecutive images: `x: [count, C, H, W]`, `out: [count, O, OH, OW]`,
/// each output value passed through `epilogue` (output channel `o`'s entries) as it is stored.
fn forward_images(
    s: &ConvShape,
    x: &[f32],
    engine: &mut Engine,
    epilogue: Epilogue,
    out: &mut [f32],
) {
    let (cg, og, k, p) = (s.cg(), s.og(), s.k(), s.p());
    let in_len = s.c * s.h * s.w;
    let g = Gemm::new(og, p, k).trans_a(true);
    for (x_img, out_img) in x.chunks_exact(in_len).zip(out.chunks_exact_mut(s.o * p)) {
        for gi in 0..s.groups {
            let x_g = &x_img[gi * cg * s.h * s.w..(gi + 1) * cg * s.h * s.w]; // [cg, H, W]
            let out_g = &mut out_img[gi * og * p..(gi + 1) * og * p]; // [og, P]
            let epilogue_g = epilogue.rows_from(gi * og);
            match engine {
                Engine::Direct { packed, scratch } => {
                    conv_direct::conv_group(s, &packed[gi], x_g, out_g, false, epilogue_g, scratch)
                }
                Engine::Columns { wt, cols } => {
                    let wt_g = &wt[gi * og * k..(gi + 1) * og * k]; // [K, og]
                    if s.pointwise() {
                        sgemm(g, wt_g, x_g, out_g);
                    } else {
                        im2col_reusing(s, x_g, cols);
                        sgemm(g, wt_g, cols, out_g);
                    }
                    if !epilogue_g.is_identity() {
                        for (o, row) in out_g.chunks_exact_mut(p).enumerate() {
                            epilogue_g.apply(o, row);
                        }
                    }
                }
            }
        }
    }
}

/// Convolution forward: `x: [N, C, H, W]`, `w: [O, C/groups, KH, KW]`, `bias: [O]`,
/// `out: [N, O, OH, OW]` (overwritten).
pub fn conv2d_forward(s: &ConvShape, x: &[f32], w: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
    let epilogue = Epilogue {
        bias,
        ..Epilogue::default()
    };
    conv2d_forward_then(s, x, w, epilogue, out)
}

/// [`conv2d_forward`] with every output value passed through `epilogue` as it is stored: a
/// bias, a batch norm with its running statistics and a ReLU in the convolution's own pass
/// over the output (inference).
pub fn conv2d_forward_then(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    epilogue: Epilogue,
    out: &mut [f32],
) {
    epilogue.check(s.o);
    let (per, slices) = s.split();
    let in_len = s.c * s.h * s.w;
    let out_len = s.o * s.p();
    let cols_len = if s.pointwise() { 0 } else { s.k() * s.p() };
    // The direct kernel runs on one thread: use it when the images are spread over the
    // threads (or there is one thread); a single slice keeps the GEMM that splits itself.
    let direct = conv_direct::applies(s) && !s.pointwise() && (slices > 1 || num_threads() == 1);
    let (packed, wt) = if direct {
        (conv_direct::pack_weight(s, w), Vec::new())
    } else {
        (Vec::new(), transpose_weight(s, w))
    };
    let engine = || {
        if direct {
            Engine::Direct {
                packed: &packed,
                scratch: Box::default(),
            }
        } else {
            Engine::Columns {
                wt: &wt,
                cols: vec![0.0; cols_len],
            }
        }
    };
    if slices == 1 {
        forward_images(s, x, &mut engine(), epilogue, out);
        return;
    }
    out.par_chunks_mut(per * out_len)
        .zip(x.par_chunks(per * in_len))
        .for_each(|(o, xi)| as_piece(|| forward_images(s, xi, &mut engine(), epilogue, o)));
}

/// Gradient buffers of one slice of images: `dx` its own slice of the input gradient,
/// `dw` and `db` partial sums (`dw` empty when not wanted).
struct Grads<'a> {
    dx: Option<&'a mut [f32]>,
    dw: Vec<f32>,
    /// With the direct kernel, `dw` transposed per group (`[groups, K, og]`), summed here
    /// and added into `dw` at the end; empty otherwise.
    dwt: Vec<f32>,
    db: Vec<f32>,
}

/// The input gradient as a convolution ([`input_grad_as_conv`]): its shape, its weight
/// ([`flip_weight`]) and, for the direct kernel, that weight packed per group (empty: use
/// columns and the GEMM).
struct Flipped<'a> {
    shape: ConvShape,
    weight: &'a [f32],
    packed: Vec<PackedA>,
}

/// Backward pass of `count` consecutive images, adding into `gr`. `cols` (zero-initialised,
/// see [`im2col_reusing`]) holds the columns of the weight gradient, `dcols` the gradient of
/// the columns (overwritten), `scratch` the direct kernels' buffers (input gradient, weight
/// gradient).
#[allow(clippy::too_many_arguments)]
fn backward_images(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    flipped: Option<&Flipped>,
    dy: &[f32],
    gr: &mut Grads,
    want_dw: bool,
    cols: &mut [f32],
    dcols: &mut [f32],
    scratch: &mut [ConvScratch; 2],
) {
    let (cg, og, k, p) = (s.cg(), s.og(), s.k(), s.p());
    let in_len = s.c * s.h * s.w;
    let plane = cg * s.h * s.w;
    for (i, dy_img) in dy.chunks_exact(s.o * p).enumerate() {
        let x_img = &x[i * in_len..(i + 1) * in_len]; // [C, H, W]
        for (db, row) in gr.db.iter_mut().zip(dy_img.chunks_exact(p)) {
            *db += super::vector::sum(row);
        }
        for gi in 0..s.groups {
            let dy_g = &dy_img[gi * og * p..(gi + 1) * og * p]; // [og, P]
            let w_g = &w[gi * og * k..(gi + 1) * og * k]; // [og, K]
            if want_dw && !gr.dwt.is_empty() {
                let x_g = &x_img[gi * plane..(gi + 1) * plane]; // [cg, H, W]
                let dwt_g = &mut gr.dwt[gi * og * k..(gi + 1) * og * k]; // [K, og]
                conv_direct::weight_grad_group(s, x_g, dy_g, dwt_g, &mut scratch[1]);
            } else if want_dw {
                // dW_g += dout_g · colsᵀ (a 1x1 convolution's columns are its input).
                let x_g = &x_img[gi * plane..(gi + 1) * plane]; // [cg, H, W]
                let cols_g: &[f32] = if s.pointwise() {
                    x_g
                } else {
                    im2col_reusing(s, x_g, cols);
                    cols
                };
                let dw_g = &mut gr.dw[gi * og * k..(gi + 1) * og * k]; // [og, K]
                let g = Gemm::new(og, k, p).trans_b(true).accumulate(true);
                sgemm(g, dy_g, cols_g, dw_g);
            }
            if let Some(dx) = gr.dx.as_deref_mut() {
                let dx_g = &mut dx[i * in_len + gi * plane..i * in_len + (gi + 1) * plane];
                if s.pointwise() {
                    let g = Gemm::new(k, p, og).trans_a(true).accumulate(true);
                    sgemm(g, w_g, dy_g, dx_g);
                } else if let Some(f) = flipped.filter(|f| !f.packed.is_empty()) {
                    conv_direct::conv_group(
                        &f.shape,
                        &f.packed[gi],
                        dy_g,
                        dx_g,
                        true,
                        Epilogue::default(),
                        &mut scratch[0],
                    );
                } else if let Some(f) = flipped {
                    // dx_g = flip(W)_g [cg, og·KH·KW] · im2col(dout_g) [og·KH·KW, H·W]
                    let (ts, wf) = (&f.shape, f.weight);
                    let kt = og * s.kh * s.kw;
                    let wf_g = &wf[gi * cg * kt..(gi + 1) * cg * kt];
                    im2col_reusing(ts, dy_g, dcols);
                    let g = Gemm::new(cg, s.h * s.w, kt).accumulate(true);
                    sgemm(g, wf_g, &dcols[..kt * s.h * s.w], dx_g);
                } else {
                    sgemm(Gemm::new(k, p, og).trans_a(true), w_g, dy_g, dcols);
                    col2im(s, dcols, dx_g);
                }
            }
        }
    }
    // dW_g [og, K] += dWᵀ_g [K, og] transposed.
    for (dwt_g, dw_g) in gr
        .dwt
        .chunks_exact(k * og)
        .zip(gr.dw.chunks_exact_mut(og * k))
    {
        for (r, row) in dwt_g.chunks_exact(og).enumerate() {
            for (o, &v) in row.iter().enumerate() {
                dw_g[o * k + r] += v;
            }
        }
    }
}

/// Convolution backward from `dy: [N, O, OH, OW]`. Writes (overwrites) whichever of
/// `dx: [N, C, H, W]`, `dw: [O, C/groups, KH, KW]` and `db: [O]` are given.
pub fn conv2d_backward(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dx: Option<&mut [f32]>,
    dw: Option<&mut [f32]>,
    db: Option<&mut [f32]>,
) {
    let (per, slices) = s.split();
    let in_len = s.c * s.h * s.w;
    let out_len = s.o * s.p();
    let want_dw = dw.is_some();
    // The direct kernels run on one thread: as in the forward pass, use them when the images
    // are spread over the threads.
    let spread = slices > 1 || num_threads() == 1;
    let direct_dw = want_dw && spread && conv_direct::applies(s) && !s.pointwise();
    let cols_len = if s.pointwise() || !want_dw || direct_dw {
        0
    } else {
        s.k() * s.p()
    };
    let transposed = input_grad_as_conv(s).filter(|_| dx.is_some());
    let wf = transposed.map(|_| flip_weight(s, w));
    let direct = transposed.filter(|ts| spread && conv_direct::applies(ts));
    let flipped = transposed
        .zip(wf.as_deref())
        .map(|(shape, weight)| Flipped {
            shape,
            weight,
            packed: match direct {
                // Per group: [cg, og * KH * KW].
                Some(ts) => weight
                    .chunks_exact(weight.len() / s.groups)
                    .map(|wf_g| PackedA::new(wf_g, ts.o, ts.k()))
                    .collect(),
                None => Vec::new(),
            },
        });
    let dcols_len = match (&transposed, dx.is_some()) {
        (_, false) => 0,
        (Some(_), true) if direct.is_some() => 0,
        (Some(ts), true) => ts.k() * ts.p(),
        (None, true) if s.pointwise() => 0,
        (None, true) => s.k() * s.p(),
    };
    let (dw_len, db_len) = (
        if want_dw { s.weight_len() } else { 0 },
        if db.is_some() { s.o } else { 0 },
    );
    let dx_slices: Vec<Option<&mut [f32]>> = match dx {
        Some(d) => d.chunks_mut(per * in_len).map(Some).collect(),
        None => (0..slices).map(|_| None).collect(),
    };
    let run = |(t, mut dxs): (usize, Option<&mut [f32]>)| {
        if let Some(d) = dxs.as_deref_mut() {
            d.fill(0.0); // each slice clears its own part, on its own thread
        }
        let mut gr = Grads {
            dx: dxs,
            dw: vec![0.0; dw_len],
            dwt: vec![0.0; if direct_dw { dw_len } else { 0 }],
            db: vec![0.0; db_len],
        };
        let mut cols = vec![0.0; cols_len];
        let mut dcols = vec![0.0; dcols_len];
        let mut scratch = [ConvScratch::default(), ConvScratch::default()];
        let end = ((t + 1) * per).min(s.n);
        backward_images(
            s,
            &x[t * per * in_len..end * in_len],
            w,
            flipped.as_ref(),
            &dy[t * per * out_len..end * out_len],
            &mut gr,
            want_dw,
            &mut cols,
            &mut dcols,
            &mut scratch,
        );
        (gr.dw, gr.db)
    };
    let partials: Vec<(Vec<f32>, Vec<f32>)> = if slices == 1 {
        dx_slices.into_iter().enumerate().map(run).collect()
    } else {
        dx_slices
            .into_par_iter()
            .enumerate()
            .map(|slice| as_piece(|| run(slice)))
            .collect()
    };
    if let Some(dw) = dw {
        dw.fill(0.0);
        for (part, _) in &partials {
            for (a, b) in dw.iter_mut().zip(part) {
                *a += b;
            }
        }
    }
    if let Some(db) = db {
        db.fill(0.0);
        for (_, part) in &partials {
            for (a, b) in db.iter_mut().zip(part) {
                *a += b;
            }
        }
    }
}

/// Calls `f([n, o, oy, ox, ci, c, ky, kx, iy, ix])` for every in-bounds tap of the
/// convolution (`ci` the input channel, `c` its index within the group): the seven nested
/// loops both references share.
fn for_each_tap(s: &ConvShape, mut f: impl FnMut([usize; 10])) {
    let (oh, ow) = s.out_hw();
    let (cg, og) = (s.cg(), s.og());
    for n in 0..s.n {
        for o in 0..s.o {
            let gi = o / og;
            for oy in 0..oh {
                for ox in 0..ow {
                    for c in 0..cg {
                        for ky in 0..s.kh {
                            for kx in 0..s.kw {
                                let iy = (oy * s.stride.0 + ky * s.dilation.0) as isize
                                    - s.padding.0 as isize;
                                let ix = (ox * s.stride.1 + kx * s.dilation.1) as isize
                                    - s.padding.1 as isize;
                                if iy < 0 || ix < 0 || iy >= s.h as isize || ix >= s.w as isize {
                                    continue;
                                }
                                let ci = gi * cg + c;
                                f([n, o, oy, ox, ci, c, ky, kx, iy as usize, ix as usize]);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Index helpers for the references.
struct Idx<'a>(&'a ConvShape);

impl Idx<'_> {
    fn x(&self, n: usize, c: usize, y: usize, x: usize) -> usize {
        ((n * self.0.c + c) * self.0.h + y) * self.0.w + x
    }
    fn w(&self, o: usize, c: usize, ky: usize, kx: usize) -> usize {
        ((o * self.0.cg() + c) * self.0.kh + ky) * self.0.kw + kx
    }
    fn y(&self, n: usize, o: usize, y: usize, x: usize) -> usize {
        let (oh, ow) = self.0.out_hw();
        ((n * self.0.o + o) * oh + y) * ow + x
    }
}

/// The convolution as plain nested loops (f64 sums), the oracle for [`conv2d_forward`].
pub fn conv2d_reference(s: &ConvShape, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let ix = Idx(s);
    let mut acc = vec![0.0f64; s.out_len()];
    for_each_tap(s, |[n, o, oy, ox, ci, c, ky, kx, iy, ixx]| {
        acc[ix.y(n, o, oy, ox)] += x[ix.x(n, ci, iy, ixx)] as f64 * w[ix.w(o, c, ky, kx)] as f64;
    });
    let (oh, ow) = s.out_hw();
    acc.iter()
        .enumerate()
        .map(|(i, &v)| {
            let o = (i / (oh * ow)) % s.o;
            (v + bias.map_or(0.0, |b| b[o] as f64)) as f32
        })
        .collect()
}

/// Backward as plain nested loops: `(dx, dw, db)`, the oracle for [`conv2d_backward`].
pub fn conv2d_backward_reference(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let ix = Idx(s);
    let mut dx = vec![0.0f64; x.len()];
    let mut dw = vec![0.0f64; w.len()];
    for_each_tap(s, |[n, o, oy, ox, ci, c, ky, kx, iy, ixx]| {
        let g = dy[ix.y(n, o, oy, ox)] as f64;
        dx[ix.x(n, ci, iy, ixx)] += g * w[ix.w(o, c, ky, kx)] as f64;
        dw[ix.w(o, c, ky, kx)] += g * x[ix.x(n, ci, iy, ixx)] as f64;
    });
    let p = s.p();
    let mut db = vec![0.0f64; s.o];
    for (i, &g) in dy.iter().enumerate() {
        db[(i / p) % s.o] += g as f64;
    }
    let f = |v: Vec<f64>| v.into_iter().map(|a| a as f32).collect();
    (f(dx), f(dw), f(db))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_values::values;

    fn max_err(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[allow(clippy::too_many_arguments)]
    fn shape(
        n: usize,
        c: usize,
        hw: (usize, usize),
        o: usize,
        k: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        dilation: (usize, usize),
        groups: usize,
    ) -> ConvShape {
        ConvShape {
            n,
            c,
            h: hw.0,
            w: hw.1,
            o,
            kh: k.0,
            kw: k.1,
            stride,
            padding,
            dilation,
            groups,
        }
    }

    fn awkward_shapes() -> Vec<ConvShape> {
        vec![
            shape(2, 3, (7, 9), 5, (3, 3), (1, 1), (1, 1), (1, 1), 1),
            shape(1, 3, (7, 9), 4, (3, 3), (1, 1), (0, 0), (1, 1), 1),
            shape(3, 2, (9, 8), 3, (3, 3), (2, 2), (1, 1), (1, 1), 1),
            shape(2, 2, (11, 10), 3, (3, 2), (2, 1), (2, 1), (2, 2), 1),
            shape(2, 4, (6, 7), 6, (3, 3), (1, 2), (1, 0), (1, 1), 2),
            shape(5, 4, (5, 5), 4, (1, 1), (1, 1), (0, 0), (1, 1), 2),
            shape(1, 3, (5, 6), 2, (1, 1), (1, 1), (0, 0), (1, 1), 1),
            shape(4, 3, (7, 7), 5, (1, 1), (2, 2), (0, 0), (1, 1), 1),
            shape(3, 1, (4, 5), 2, (5, 5), (1, 1), (2, 2), (1, 1), 1),
            shape(2, 6, (8, 5), 3, (2, 3), (3, 2), (1, 2), (1, 1), 3),
            shape(17, 2, (5, 4), 3, (3, 3), (1, 1), (1, 1), (1, 1), 1),
            // Input gradient as a flipped convolution: groups, non-square kernel and padding.
            shape(3, 4, (6, 5), 6, (3, 2), (1, 1), (1, 0), (1, 1), 2),
        ]
    }

    /// Runs `f` in pools of 1 and 3 threads: one thread takes the direct kernels for every
    /// stride-1 convolution, three threads the column path for batches smaller than three.
    fn with_thread_counts(f: impl Fn() + Sync) {
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(&f);
        }
    }

    #[test]
    fn forward_matches_reference_on_awkward_shapes() {
        with_thread_counts(forward_matches_reference);
    }

    fn forward_matches_reference() {
        for s in awkward_shapes() {
            assert_eq!(s.problem(), None);
            let x = values(s.n * s.c * s.h * s.w, 1);
            let w = values(s.weight_len(), 2);
            let b = values(s.o, 3);
            for bias in [None, Some(&b[..])] {
                let mut out = vec![f32::NAN; s.out_len()];
                conv2d_forward(&s, &x, &w, bias, &mut out);
                let r = conv2d_reference(&s, &x, &w, bias);
                assert!(max_err(&out, &r) < 1e-4, "{s:?}: {}", max_err(&out, &r));
            }
        }
    }

    #[test]
    fn epilogue_matches_the_separate_passes_on_awkward_shapes() {
        with_thread_counts(epilogue_matches_the_separate_passes);
    }

    /// Bias, batch-norm affine and ReLU as the output is stored: the same values as the
    /// plain convolution followed by `Epilogue::apply`, bit for bit, on both engines.
    fn epilogue_matches_the_separate_passes() {
        for s in awkward_shapes() {
            let x = values(s.n * s.c * s.h * s.w, 7);
            let w = values(s.weight_len(), 8);
            let (b, scale, shift) = (values(s.o, 9), values(s.o, 10), values(s.o, 11));
            for (bias, affine, relu) in [
                (None, None, true),
                (Some(&b[..]), None, true),
                (None, Some((&scale[..], &shift[..])), false),
                (Some(&b[..]), Some((&scale[..], &shift[..])), true),
            ] {
                let epilogue = Epilogue { bias, affine, relu };
                let mut got = vec![f32::NAN; s.out_len()];
                conv2d_forward_then(&s, &x, &w, epilogue, &mut got);
                let mut want = vec![f32::NAN; s.out_len()];
                conv2d_forward(&s, &x, &w, None, &mut want);
                for (i, row) in want.chunks_exact_mut(s.p()).enumerate() {
                    epilogue.apply(i % s.o, row);
                }
                assert_eq!(got, want, "{s:?} {epilogue:?}");
                if relu {
                    assert!(got.contains(&0.0) && got.iter().any(|&v| v > 0.0));
                }
            }
        }
    }

    #[test]
    fn backward_matches_reference_on_awkward_shapes() {
        with_thread_counts(backward_matches_reference);
    }

    fn backward_matches_reference() {
        for s in awkward_shapes() {
            let x = values(s.n * s.c * s.h * s.w, 4);
            let w = values(s.weight_len(), 5);
            let dy = values(s.out_len(), 6);
            let (rdx, rdw, rdb) = conv2d_backward_reference(&s, &x, &w, &dy);
            let mut dx = vec![f32::NAN; x.len()];
            let mut dw = vec![f32::NAN; w.len()];
            let mut db = vec![f32::NAN; s.o];
            conv2d_backward(&s, &x, &w, &dy, Some(&mut dx), Some(&mut dw), Some(&mut db));
            assert!(max_err(&dx, &rdx) < 1e-4, "{s:?} dx");
            assert!(max_err(&dw, &rdw) < 1e-3, "{s:?} dw");
            assert!(max_err(&db, &rdb) < 1e-3, "{s:?} db");
            // Only some gradients asked for.
            let mut dx2 = vec![f32::NAN; x.len()];
            conv2d_backward(&s, &x, &w, &dy, Some(&mut dx2), None, None);
            assert_eq!(dx, dx2);
            let mut dw2 = vec![f32::NAN; w.len()];
            conv2d_backward(&s, &x, &w, &dy, None, Some(&mut dw2), None);
            assert_eq!(dw, dw2);
        }
    }

    #[test]
    fn input_gradient_is_a_convolution_only_where_it_applies() {
        let s = shape(2, 16, (28, 28), 16, (3, 3), (1, 1), (1, 1), (1, 1), 1);
        let t = input_grad_as_conv(&s).unwrap();
        assert_eq!((t.c, t.o, t.out_hw()), (16, 16, (28, 28)));
        assert!(input_grad_as_conv(&ConvShape {
            stride: (2, 2),
            ..s
        })
        .is_none());
        assert!(input_grad_as_conv(&ConvShape {
            dilation: (2, 1),
            ..s
        })
        .is_none());
    }

    #[test]
    fn problems_are_named() {
        let ok = shape(1, 4, (5, 5), 6, (3, 3), (1, 1), (0, 0), (1, 1), 2);
        assert_eq!(ok.problem(), None);
        assert_eq!(ok.out_hw(), (3, 3));
        let s = ConvShape { groups: 3, ..ok };
        assert!(s.problem().unwrap().contains("groups 3 must divide"));
        let s = ConvShape { kh: 6, ..ok };
        assert!(s
            .problem()
            .unwrap()
            .contains("larger than the padded input"));
        let s = ConvShape {
            dilation: (3, 1),
            ..ok
        };
        assert!(s.problem().unwrap().contains("dilated 7x3"));
    }
}

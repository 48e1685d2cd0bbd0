//! The convolution's backward pass: input, weight and bias gradients.

use super::direct::{self, ConvScratch, PackedA};
use super::{ConvShape, Epilogue};
use crate::kernels::gemm::{sgemm, Gemm};
use crate::kernels::im2col::{col2im, im2col_reusing};
use crate::runtime::threads::{as_piece, num_threads};
use rayon::prelude::*;

/// The input gradient of a stride-1, undilated convolution is itself a convolution: of the
/// output gradient `[og, OH, OW]` with the kernel flipped and its channel axes swapped,
/// padded by `k - 1 - padding`. This returns that convolution's shape (for one group of one
/// image) when it applies. Computing `dx` this way writes `[cg, H, W]` straight from one
/// product, instead of `dcols = Wᵀ · dy` (`K / og` times larger, cleared by the GEMM
/// first) followed by the `col2im` scatter.
pub(super) fn input_grad_as_conv(s: &ConvShape) -> Option<ConvShape> {
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
            *db += crate::kernels::vector::sum(row);
        }
        for gi in 0..s.groups {
            let dy_g = &dy_img[gi * og * p..(gi + 1) * og * p]; // [og, P]
            let w_g = &w[gi * og * k..(gi + 1) * og * k]; // [og, K]
            if want_dw && !gr.dwt.is_empty() {
                let x_g = &x_img[gi * plane..(gi + 1) * plane]; // [cg, H, W]
                let dwt_g = &mut gr.dwt[gi * og * k..(gi + 1) * og * k]; // [K, og]
                direct::weight_grad_group(s, x_g, dy_g, dwt_g, &mut scratch[1]);
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
                    direct::conv_group(
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
    let direct_dw = want_dw && spread && direct::applies(s) && !s.pointwise();
    let cols_len = if s.pointwise() || !want_dw || direct_dw {
        0
    } else {
        s.k() * s.p()
    };
    let transposed = input_grad_as_conv(s).filter(|_| dx.is_some());
    let wf = transposed.map(|_| flip_weight(s, w));
    let direct = transposed.filter(|ts| spread && direct::applies(ts));
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

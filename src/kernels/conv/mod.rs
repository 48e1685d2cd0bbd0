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
//! more than the GEMM's slower packing of a transposed `B` (docs/performance.md).
//!
//! Stride-1 convolutions take the direct kernels of [`direct`] instead (forward,
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

mod backward;
pub mod direct;
mod reference;
#[cfg(test)]
mod tests;

pub use crate::kernels::epilogue::Epilogue;
use crate::kernels::epilogue::Step;
pub use backward::conv2d_backward;
pub use reference::{conv2d_backward_reference, conv2d_reference};

use super::gemm::{sgemm, Gemm};
use super::im2col::im2col_reusing;
use crate::runtime::threads::{as_piece, num_threads};
use direct::{ConvScratch, PackedA};
use rayon::prelude::*;

/// Slices of the batch per thread: a thread that finishes its slices early takes the
/// others' instead of waiting for them.
const SLICES_PER_THREAD: usize = 4;

/// Sizes of one convolution: input `[n, c, h, w]`, weight `[o, c / groups, kh, kw]`.
/// Pairs are `(height, width)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub o: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Step between windows, `(height, width)`.
    pub stride: (usize, usize),
    /// Zeros added on each side, `(height, width)`.
    pub padding: (usize, usize),
    /// Spacing between kernel taps, `(height, width)`.
    pub dilation: (usize, usize),
    /// Channel groups: each output channel sees `c / groups` input channels.
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

/// How the forward pass multiplies: the weight from [`transpose_weight`] with a column
/// buffer (zero-initialised, see [`im2col_reusing`]), or the packed weight of
/// [`direct::pack_weight`] with its scratch.
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
                    direct::conv_group(s, &packed[gi], x_g, out_g, false, epilogue_g, scratch)
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
    conv2d_forward_then(s, x, w, Epilogue::bias(bias), out)
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
    epilogue.supports("conv2d", &[Step::Bias, Step::Affine, Step::Relu], s.o);
    let (per, slices) = s.split();
    let in_len = s.c * s.h * s.w;
    let out_len = s.o * s.p();
    let cols_len = if s.pointwise() { 0 } else { s.k() * s.p() };
    // The direct kernel runs on one thread: use it when the images are spread over the
    // threads (or there is one thread); a single slice keeps the GEMM that splits itself.
    let direct = direct::applies(s) && !s.pointwise() && (slices > 1 || num_threads() == 1);
    let (packed, wt) = if direct {
        (direct::pack_weight(s, w), Vec::new())
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

//! Fused scaled dot-product attention over a stack of heads, forward and backward.
//!
//! Each head is independent, so the work is spread over heads with rayon, and each head
//! runs on `packed_gemm`'s register tiles: its operands packed once per call into panels of
//! 16 columns, six rows at a time, and under the causal mask only the keys a tile of
//! queries sees (forward, `dP`, `dQ`) or the queries that see a tile of keys (`dV`, `dK`).
//! Per head, with `scale = 1/sqrt(dk)`:
//!
//! - forward: `S = Q·Kᵀ`, `P = softmax(scale·S)` row by row (max-subtracted; under the
//!   causal mask row `i` covers keys `0..=i` and the rest of the row is 0), `O = P·V`;
//! - backward: `dV = Pᵀ·dO`, `dP = dO·Vᵀ`, `dS = P ∘ (dP − rowsum(dP ∘ P))`,
//!   `dQ = scale·dS·K`, `dK = scale·dSᵀ·Q`.
//!
//! Operands are either dense stacks of heads (`[heads, t, d]`) or, for a transformer's
//! self-attention, read straight out of the fused q/k/v projection `[B, T, 3C]` with the
//! output's heads merged into `[B, T, C]` ([`attention_forward_packed`]): every product reads
//! and writes its head's block through a leading dimension (the packing reads it in
//! place), so no head is copied out and backward writes one `[B, T, 3C]` gradient instead
//! of three.
//!
//! `P` is kept by the caller between the two ([heads, tq, tk]): it is both what backward
//! needs and what a visualisation shows. Why not a streaming (flash) kernel: at the sequence
//! lengths of the models here `P` is small, and keeping it makes backward two GEMMs cheaper.

mod heads;
mod reference;
#[cfg(test)]
mod tests;

pub use reference::attention_reference;

use crate::runtime::threads::SendPtr;
use heads::{head_backward, head_forward};
use rayon::prelude::*;

/// Sizes of one attention call; every buffer is dense and row-major.
#[derive(Clone, Copy, Debug)]
pub struct AttentionDims {
    /// Number of independent heads (batch × heads).
    pub heads: usize,
    /// Query positions.
    pub tq: usize,
    /// Key/value positions (equal to `tq` when `causal`).
    pub tk: usize,
    /// Channels of queries and keys.
    pub dk: usize,
    /// Channels of values (and of the output).
    pub dv: usize,
    /// Query `i` sees keys `0..=i` only.
    pub causal: bool,
}

impl AttentionDims {
    /// `1/sqrt(dk)`, the factor on the scores.
    pub fn scale(&self) -> f32 {
        1.0 / (self.dk as f32).sqrt()
    }

    /// Number of keys query `i` attends to.
    fn visible(&self, i: usize) -> usize {
        if self.causal {
            (i + 1).min(self.tk)
        } else {
            self.tk
        }
    }

    fn check(&self) {
        assert!(
            self.tq > 0 && self.tk > 0 && self.dk > 0 && self.dv > 0,
            "attention: empty dimension in {self:?}"
        );
    }
}

/// Where each head's `[t, d]` matrix lies in a buffer: head `h` is head `h % per_item` of
/// batch item `h / per_item`, and its rows are `row_stride` apart.
#[derive(Clone, Copy, Debug)]
struct HeadLayout {
    start: usize,
    per_item: usize,
    item_stride: usize,
    head_stride: usize,
    row_stride: usize,
}

impl HeadLayout {
    /// Heads stored one after the other, `[heads, t, d]`.
    fn dense(t: usize, d: usize) -> HeadLayout {
        HeadLayout {
            start: 0,
            per_item: 1,
            item_stride: t * d,
            head_stride: 0,
            row_stride: d,
        }
    }

    /// Heads side by side in rows of `width` values, `[B, T, width]`: head `hh` of item `b`
    /// is columns `start + hh·d .. start + (hh+1)·d` of item `b`'s `t` rows.
    fn interleaved(n_head: usize, t: usize, d: usize, width: usize, start: usize) -> HeadLayout {
        HeadLayout {
            start,
            per_item: n_head,
            item_stride: t * width,
            head_stride: d,
            row_stride: width,
        }
    }

    /// Offset of head `h`'s first element.
    fn offset(&self, h: usize) -> usize {
        self.start + (h / self.per_item) * self.item_stride + (h % self.per_item) * self.head_stride
    }

    /// Elements a buffer needs to hold every head's `t x d` block.
    fn span(&self, heads: usize, t: usize, d: usize) -> usize {
        (0..heads)
            .map(|h| self.offset(h) + (t - 1) * self.row_stride + d)
            .max()
            .unwrap_or(0)
    }
}

/// Layouts of the operands of one call: `q` (and `dq`), `k` (and `dk`), `v` (and `dv`), and
/// the output `out` (and its gradient).
#[derive(Clone, Copy, Debug)]
struct Layouts {
    q: HeadLayout,
    k: HeadLayout,
    v: HeadLayout,
    out: HeadLayout,
}

impl Layouts {
    /// Every operand `[heads, t, d]`, dense.
    fn dense(d: AttentionDims) -> Layouts {
        Layouts {
            q: HeadLayout::dense(d.tq, d.dk),
            k: HeadLayout::dense(d.tk, d.dk),
            v: HeadLayout::dense(d.tk, d.dv),
            out: HeadLayout::dense(d.tq, d.dv),
        }
    }

    /// q, k and v read from a fused projection `[B, T, 3C]` (columns q | k | v, each split
    /// into `n_head` heads of `Dh` channels) and the output written with its heads merged,
    /// `[B, T, C]`: no head is ever copied out.
    fn packed(d: AttentionDims, n_head: usize) -> Layouts {
        let (t, dh) = (d.tq, d.dk);
        let c = n_head * dh;
        Layouts {
            q: HeadLayout::interleaved(n_head, t, dh, 3 * c, 0),
            k: HeadLayout::interleaved(n_head, t, dh, 3 * c, c),
            v: HeadLayout::interleaved(n_head, t, dh, 3 * c, 2 * c),
            out: HeadLayout::interleaved(n_head, t, dh, c, 0),
        }
    }
}

impl Layouts {
    /// Panics unless `d` is non-empty and buffers of these lengths hold every head's block
    /// of q, k, v and the output (or its gradient), and `probs` holds `[heads, tq, tk]`.
    fn check_buffers(&self, d: AttentionDims, [q, k, v, out]: [usize; 4], probs: usize) {
        d.check();
        assert!(
            q >= self.q.span(d.heads, d.tq, d.dk)
                && k >= self.k.span(d.heads, d.tk, d.dk)
                && v >= self.v.span(d.heads, d.tk, d.dv)
                && out >= self.out.span(d.heads, d.tq, d.dv)
                && probs >= d.heads * d.tq * d.tk,
            "attention: buffers too small for {d:?}"
        );
    }
}

/// Checks that the packed layout fits `d`: one sequence attending to itself, one width.
fn check_packed(d: AttentionDims, n_head: usize) {
    assert!(
        n_head > 0 && d.heads.is_multiple_of(n_head) && d.tq == d.tk && d.dk == d.dv,
        "attention: packed q/k/v needs tq == tk, dk == dv and whole items of {n_head} heads, got {d:?}"
    );
}

/// `out [heads, tq, dv]` and `probs [heads, tq, tk]` from `q [heads, tq, dk]`,
/// `k [heads, tk, dk]`, `v [heads, tk, dv]`.
pub fn attention_forward(
    d: AttentionDims,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    probs: &mut [f32],
) {
    forward_with(d, Layouts::dense(d), q, k, v, out, probs)
}

/// Attention straight from a fused projection `qkv [B, T, 3C]` (q | k | v, each `n_head`
/// heads of `C / n_head` channels) to `out [B, T, C]` with the heads merged, and
/// `probs [B, n_head, T, T]`. `d.heads` is `B · n_head`, `d.dk = d.dv = C / n_head`.
pub fn attention_forward_packed(
    d: AttentionDims,
    n_head: usize,
    qkv: &[f32],
    out: &mut [f32],
    probs: &mut [f32],
) {
    check_packed(d, n_head);
    forward_with(d, Layouts::packed(d, n_head), qkv, qkv, qkv, out, probs)
}

fn forward_with(
    d: AttentionDims,
    lay: Layouts,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    probs: &mut [f32],
) {
    lay.check_buffers(d, [q.len(), k.len(), v.len(), out.len()], probs.len());
    let scale = d.scale();
    let out = SendPtr(out.as_mut_ptr());
    probs[..d.heads * d.tq * d.tk]
        .par_chunks_mut(d.tq * d.tk)
        .enumerate()
        .for_each(|(h, p)| {
            let (qh, kh, vh) = (
                &q[lay.q.offset(h)..],
                &k[lay.k.offset(h)..],
                &v[lay.v.offset(h)..],
            );
            // The whole `SendPtr` (a closure naming `out.0` would capture the raw field).
            let base = out;
            // SAFETY: `check_buffers` verified that `out` holds every head's block; head `h`
            // writes only its own, which no other head's overlaps in these layouts.
            let o = unsafe { SendPtr(base.0.add(lay.out.offset(h))) };
            head_forward(d, lay, [qh, kh, vh], p, o, scale);
        });
}

/// Gradients `dq`, `dk`, `dv` (shaped as `q`, `k`, `v`, overwritten) from the output
/// gradient `dy [heads, tq, dv]` and the saved `probs`.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward(
    d: AttentionDims,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    probs: &[f32],
    dy: &[f32],
    dq: &mut [f32],
    dk: &mut [f32],
    dv: &mut [f32],
) {
    d.check();
    let lay = Layouts::dense(d);
    assert!(
        dq.len() >= lay.q.span(d.heads, d.tq, d.dk)
            && dk.len() >= lay.k.span(d.heads, d.tk, d.dk)
            && dv.len() >= lay.v.span(d.heads, d.tk, d.dv),
        "attention: gradient buffers too small for {d:?}"
    );
    let grads = [dq, dk, dv].map(|g| SendPtr(g.as_mut_ptr()));
    backward_with(d, lay, [q, k, v], probs, dy, grads)
}

/// The gradient of [`attention_forward_packed`]: `dqkv [B, T, 3C]` (overwritten, every
/// element) from `dy [B, T, C]` and the saved `probs`.
pub fn attention_backward_packed(
    d: AttentionDims,
    n_head: usize,
    qkv: &[f32],
    probs: &[f32],
    dy: &[f32],
    dqkv: &mut [f32],
) {
    d.check();
    check_packed(d, n_head);
    let lay = Layouts::packed(d, n_head);
    assert!(
        dqkv.len() >= lay.v.span(d.heads, d.tk, d.dv),
        "attention: gradient buffer too small for {d:?}"
    );
    let g = SendPtr(dqkv.as_mut_ptr());
    backward_with(d, lay, [qkv; 3], probs, dy, [g; 3])
}

/// Backward over heads in parallel; `grads` are the starts of the buffers `dq`, `dk`, `dv`
/// laid out as `lay.q`, `lay.k`, `lay.v` (possibly one buffer, the blocks disjoint), checked
/// by the callers to hold every head's block.
fn backward_with(
    d: AttentionDims,
    lay: Layouts,
    [q, k, v]: [&[f32]; 3],
    probs: &[f32],
    dy: &[f32],
    grads: [SendPtr<f32>; 3],
) {
    lay.check_buffers(d, [q.len(), k.len(), v.len(), dy.len()], probs.len());
    (0..d.heads).into_par_iter().for_each_init(
        || vec![0.0f32; d.tq * d.tk],
        |ds, h| {
            let p = &probs[h * d.tq * d.tk..(h + 1) * d.tq * d.tk];
            let operands = [
                &q[lay.q.offset(h)..],
                &k[lay.k.offset(h)..],
                &v[lay.v.offset(h)..],
                &dy[lay.out.offset(h)..],
            ];
            // SAFETY: the callers checked that every head's blocks lie in the gradient
            // buffers; head `h` writes only its own blocks, disjoint from every other
            // head's and from each other.
            let grads = unsafe {
                [
                    SendPtr(grads[0].0.add(lay.q.offset(h))),
                    SendPtr(grads[1].0.add(lay.k.offset(h))),
                    SendPtr(grads[2].0.add(lay.v.offset(h))),
                ]
            };
            head_backward(d, lay, operands, p, ds, grads);
        },
    );
}

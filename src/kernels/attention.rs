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

use super::packed_gemm::{tile_sums, tile_sums_transposed, PackedWeight, MR, NR};
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

/// A pointer that may cross to another rayon thread: each head writes its own elements.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: the heads handed to different threads write disjoint elements (see the callers).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

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

/// One tile of `rows` rows of a product `[rows, n] = A · B` with `B` packed, a panel of 16
/// columns at a time: `sums` gives the tile's sums against one panel, stored into rows
/// `r0 ..` (`ld` apart), columns `0 .. n`, after `dst`.
///
/// # Safety
/// As [`store_tile`], for those rows and columns.
unsafe fn tile_product(
    b: &PackedWeight,
    n: usize,
    rows: usize,
    sums: impl Fn(&[f32]) -> [[f32; NR]; MR],
    dst: SendPtr,
    ld: usize,
    r0: usize,
) {
    for panel in 0..n.div_ceil(NR) {
        let cols = NR.min(n - panel * NR);
        store_tile(&sums(b.panel(panel)), rows, cols, dst, ld, r0, panel * NR);
    }
}

/// Writes the first `cols` sums of the tile's first `rows` rows to the elements
/// `(r0 + r)·ld + col0 ..` after `dst`.
///
/// # Safety
/// Those elements must lie in `dst`'s buffer, and no other thread may access them meanwhile.
unsafe fn store_tile(
    sums: &[[f32; NR]; MR],
    rows: usize,
    cols: usize,
    dst: SendPtr,
    ld: usize,
    r0: usize,
    col0: usize,
) {
    for (r, s) in sums.iter().take(rows).enumerate() {
        let start = dst.0.add((r0 + r) * ld + col0);
        if cols == NR {
            // A whole row as one fixed-size copy (two vector moves, not a `memmove` call).
            *(start as *mut [f32; NR]) = *s;
        } else {
            std::slice::from_raw_parts_mut(start, cols).copy_from_slice(&s[..cols]);
        }
    }
}

/// One head's forward on `packed_gemm`'s register tiles: the keys packed as panels of 16
/// keys (`Kᵀ`), the values as panels of 16 channels; each tile of 6 queries takes its
/// scores against the keys it can see (under the causal mask, the keys up to its last
/// query), turns its rows into probabilities, and mixes the values over those keys.
/// `p`: the head's `[tq, tk]` probabilities; `o`: the start of its output block, rows
/// `lay.out.row_stride` apart, which only this call writes.
fn head_forward(
    d: AttentionDims,
    lay: Layouts,
    [qh, kh, vh]: [&[f32]; 3],
    p: &mut [f32],
    o: SendPtr,
    scale: f32,
) {
    let keys_t = PackedWeight::pack_ld(kh, d.tk, d.dk, lay.k.row_stride); // Kᵀ [dk, tk]
    let values = PackedWeight::pack_rows(vh, d.tk, d.dv, lay.v.row_stride); // V [tk, dv]
    let (qs, os) = (lay.q.row_stride, lay.out.row_stride);
    for r0 in (0..d.tq).step_by(MR) {
        let rows = MR.min(d.tq - r0);
        // The keys the tile's last query sees.
        let keys = d.visible(r0 + rows - 1);
        // [rows, keys] = [rows, dk] · [dk, keys]
        let scores = |b: &[f32]| tile_sums(&qh[r0 * qs..], qs, d.dk, b, rows);
        let p_ptr = SendPtr(p.as_mut_ptr());
        // SAFETY: rows r0.. and columns ..keys of `p`, this head's own.
        unsafe { tile_product(&keys_t, keys, rows, scores, p_ptr, d.tk, r0) };
        for r in r0..r0 + rows {
            let (seen, masked) = p[r * d.tk..(r + 1) * d.tk].split_at_mut(d.visible(r));
            softmax_in_place(seen, scale);
            masked.fill(0.0);
        }
        // [rows, dv] = [rows, keys] · [keys, dv]: the probabilities past `keys` are 0
        let mix = |b: &[f32]| tile_sums(&p[r0 * d.tk..], d.tk, keys, b, rows);
        // SAFETY: rows r0.. of this head's output block.
        unsafe { tile_product(&values, d.dv, rows, mix, o, os, r0) };
    }
}

/// `row = softmax(scale · row)`, stable (the maximum is subtracted first).
fn softmax_in_place(row: &mut [f32], scale: f32) {
    let max = super::vector::max(row);
    let inv = 1.0 / super::vector::exp_in_place_sum(row, max, scale);
    row.iter_mut().for_each(|x| *x *= inv);
}

/// Gradients `dq`, `dk`, `dv` (shaped as `q`, `k`, `v`, overwritten) from the output
/// gradient `dout [heads, tq, dv]` and the saved `probs`.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward(
    d: AttentionDims,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    probs: &[f32],
    dout: &[f32],
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
    backward_with(d, lay, [q, k, v], probs, dout, grads)
}

/// The gradient of [`attention_forward_packed`]: `dqkv [B, T, 3C]` (overwritten, every
/// element) from `dout [B, T, C]` and the saved `probs`.
pub fn attention_backward_packed(
    d: AttentionDims,
    n_head: usize,
    qkv: &[f32],
    probs: &[f32],
    dout: &[f32],
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
    backward_with(d, lay, [qkv; 3], probs, dout, [g; 3])
}

/// Backward over heads in parallel; `grads` are the starts of the buffers `dq`, `dk`, `dv`
/// laid out as `lay.q`, `lay.k`, `lay.v` (possibly one buffer, the blocks disjoint), checked
/// by the callers to hold every head's block.
fn backward_with(
    d: AttentionDims,
    lay: Layouts,
    [q, k, v]: [&[f32]; 3],
    probs: &[f32],
    dout: &[f32],
    grads: [SendPtr; 3],
) {
    lay.check_buffers(d, [q.len(), k.len(), v.len(), dout.len()], probs.len());
    (0..d.heads).into_par_iter().for_each_init(
        || vec![0.0f32; d.tq * d.tk],
        |ds, h| {
            let p = &probs[h * d.tq * d.tk..(h + 1) * d.tq * d.tk];
            let operands = [
                &q[lay.q.offset(h)..],
                &k[lay.k.offset(h)..],
                &v[lay.v.offset(h)..],
                &dout[lay.out.offset(h)..],
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

/// One head's backward on `packed_gemm`'s register tiles, `ds` its `[tq, tk]` scratch:
/// six queries at a time, `dP = dO · Vᵀ` over the keys they see, `dS` from it, and
/// `dQ = dS · K`; then six keys at a time, `dV = Pᵀ · dO` and `dK = dSᵀ · Q` over the
/// queries that see them (under the causal mask, the queries from the first of the six on).
/// `grads`: the starts of this head's blocks of dq, dk and dv, which only this call writes.
fn head_backward(
    d: AttentionDims,
    lay: Layouts,
    [qh, kh, vh, doh]: [&[f32]; 4],
    p: &[f32],
    ds: &mut [f32],
    [dq, dk, dv]: [SendPtr; 3],
) {
    let scale = d.scale();
    let (lq, lk, lv, lo) = (
        lay.q.row_stride,
        lay.k.row_stride,
        lay.v.row_stride,
        lay.out.row_stride,
    );
    let values_t = PackedWeight::pack_ld(vh, d.tk, d.dv, lv); // Vᵀ [dv, tk]
    let keys = PackedWeight::pack_rows(kh, d.tk, d.dk, lk); // K [tk, dk]
    let dout = PackedWeight::pack_rows(doh, d.tq, d.dv, lo); // dO [tq, dv]
    let queries = PackedWeight::pack_rows(qh, d.tq, d.dk, lq); // Q [tq, dk]
    for r0 in (0..d.tq).step_by(MR) {
        let rows = MR.min(d.tq - r0);
        // The keys the tile's last query sees.
        let seen = d.visible(r0 + rows - 1);
        // dP [rows, seen] = dO · Vᵀ
        let dp = |b: &[f32]| tile_sums(&doh[r0 * lo..], lo, d.dv, b, rows);
        let ds_ptr = SendPtr(ds.as_mut_ptr());
        // SAFETY: rows r0.. and columns ..seen of `ds`, owned here.
        unsafe { tile_product(&values_t, seen, rows, dp, ds_ptr, d.tk, r0) };
        // dS = P ∘ (dP − rowsum(dP ∘ P)) · scale, 0 past what each query sees
        for i in r0..r0 + rows {
            let n = d.visible(i);
            let (dsr, pr) = (
                &mut ds[i * d.tk..(i + 1) * d.tk],
                &p[i * d.tk..(i + 1) * d.tk],
            );
            let dot = super::vector::dot(&dsr[..n], &pr[..n]);
            for (x, &pj) in dsr[..n].iter_mut().zip(&pr[..n]) {
                *x = pj * (*x - dot) * scale;
            }
            dsr[n..].fill(0.0);
        }
        // dQ [rows, dk] = dS · K over the keys seen
        let dq_sums = |b: &[f32]| tile_sums(&ds[r0 * d.tk..], d.tk, seen, b, rows);
        // SAFETY: rows r0.. of this head's dq block.
        unsafe { tile_product(&keys, d.dk, rows, dq_sums, dq, lq, r0) };
    }
    for j0 in (0..d.tk).step_by(MR) {
        let rows = MR.min(d.tk - j0);
        // Queries before j0 do not see keys j0.. under the causal mask: P and dS are 0 there.
        let first = if d.causal { j0.min(d.tq) } else { 0 };
        let n = d.tq - first;
        // dV [rows, dv] = Pᵀ · dO, dK [rows, dk] = dSᵀ · Q, over queries first..
        let dv_sums = |b: &[f32]| {
            tile_sums_transposed(&p[first * d.tk + j0..], d.tk, n, &b[first * NR..], rows)
        };
        let dk_sums = |b: &[f32]| {
            tile_sums_transposed(&ds[first * d.tk + j0..], d.tk, n, &b[first * NR..], rows)
        };
        // SAFETY: rows j0.. of this head's dv and dk blocks.
        unsafe {
            tile_product(&dout, d.dv, rows, dv_sums, dv, lv, j0);
            tile_product(&queries, d.dk, rows, dk_sums, dk, lk, j0);
        }
    }
}

/// Plain loops in f64, for tests: the same outputs as [`attention_forward`].
pub fn attention_reference(
    d: AttentionDims,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    probs: &mut [f32],
) {
    d.check();
    let scale = d.scale() as f64;
    for h in 0..d.heads {
        for i in 0..d.tq {
            let mut s = vec![f64::NEG_INFINITY; d.tk];
            for (j, sj) in s.iter_mut().enumerate().take(d.visible(i)) {
                let mut acc = 0.0f64;
                for c in 0..d.dk {
                    acc +=
                        q[(h * d.tq + i) * d.dk + c] as f64 * k[(h * d.tk + j) * d.dk + c] as f64;
                }
                *sj = acc * scale;
            }
            let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|&x| (x - max).exp()).collect();
            let sum: f64 = e.iter().sum();
            for j in 0..d.tk {
                probs[(h * d.tq + i) * d.tk + j] = (e[j] / sum) as f32;
            }
            for c in 0..d.dv {
                let mut acc = 0.0f64;
                for j in 0..d.tk {
                    acc += e[j] / sum * v[(h * d.tk + j) * d.dv + c] as f64;
                }
                out[(h * d.tq + i) * d.dv + c] = acc as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values in [-2, 2).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        crate::kernels::test_values::values(n, seed)
            .into_iter()
            .map(|v| 2.0 * v)
            .collect()
    }

    #[test]
    fn fused_forward_matches_reference() {
        for &(heads, tq, tk, dk, dv, causal) in &[
            (1, 1, 1, 1, 1, false),
            (1, 1, 1, 3, 2, true),
            (3, 7, 7, 5, 5, true),
            (2, 5, 9, 4, 3, false),
            (4, 33, 33, 16, 16, true),
            // Causal row blocks of 32: two whole ones and a partial one.
            (2, 70, 70, 8, 8, true),
            (5, 17, 3, 8, 1, false),
        ] {
            let d = AttentionDims {
                heads,
                tq,
                tk,
                dk,
                dv,
                causal,
            };
            let (q, k, v) = (
                values(heads * tq * dk, 1),
                values(heads * tk * dk, 2),
                values(heads * tk * dv, 3),
            );
            let (mut o1, mut p1) = (vec![0.0; heads * tq * dv], vec![0.0; heads * tq * tk]);
            let (mut o2, mut p2) = (o1.clone(), p1.clone());
            attention_forward(d, &q, &k, &v, &mut o1, &mut p1);
            attention_reference(d, &q, &k, &v, &mut o2, &mut p2);
            let err = |a: &[f32], b: &[f32]| {
                a.iter()
                    .zip(b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f32::max)
            };
            assert!(
                err(&o1, &o2) < 1e-5,
                "{d:?}: output error {}",
                err(&o1, &o2)
            );
            assert!(err(&p1, &p2) < 1e-6, "{d:?}: probs error {}", err(&p1, &p2));
            for (r, row) in p1.chunks(tk).enumerate() {
                let sum: f32 = row.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "{d:?}: row {r} sums to {sum}");
                if causal {
                    let i = r % tq;
                    assert!(
                        row[i + 1..].iter().all(|&x| x == 0.0),
                        "{d:?}: row {r} sees the future"
                    );
                }
            }
        }
    }

    #[test]
    fn large_scores_do_not_overflow() {
        let d = AttentionDims {
            heads: 1,
            tq: 2,
            tk: 2,
            dk: 1,
            dv: 1,
            causal: false,
        };
        let (mut o, mut p) = (vec![0.0; 2], vec![0.0; 4]);
        attention_forward(
            d,
            &[100.0, -100.0],
            &[100.0, 99.0],
            &[1.0, 2.0],
            &mut o,
            &mut p,
        );
        assert!(p.iter().all(|x| x.is_finite()), "{p:?}");
        assert!((o[0] - 1.0).abs() < 1e-6, "{o:?}");
        assert!((o[1] - 2.0).abs() < 1e-3, "{o:?}");
    }

    /// Head `hh` of item `b` of a `[B, T, width]` buffer, columns from `start`, as a dense
    /// `[T, dh]` block.
    fn gather_head(
        x: &[f32],
        b: usize,
        hh: usize,
        t: usize,
        dh: usize,
        width: usize,
        start: usize,
    ) -> Vec<f32> {
        (0..t)
            .flat_map(|i| {
                let o = (b * t + i) * width + start + hh * dh;
                x[o..o + dh].to_vec()
            })
            .collect()
    }

    #[test]
    fn packed_layout_matches_dense_heads_forward_and_backward() {
        for &(b, n_head, t, dh, causal) in &[
            (2, 3, 7, 5, true),
            (1, 4, 50, 16, false),
            (3, 2, 9, 1, true),
            (2, 2, 70, 8, true),
        ] {
            let c = n_head * dh;
            let heads = b * n_head;
            let d = AttentionDims {
                heads,
                tq: t,
                tk: t,
                dk: dh,
                dv: dh,
                causal,
            };
            let qkv = values(b * t * 3 * c, 7);
            let dout = values(b * t * c, 8);
            // Dense copies of the heads, in (item, head) order.
            let dense = |start: usize| -> Vec<f32> {
                (0..heads)
                    .flat_map(|h| gather_head(&qkv, h / n_head, h % n_head, t, dh, 3 * c, start))
                    .collect()
            };
            let (q, k, v) = (dense(0), dense(c), dense(2 * c));
            let dout_dense: Vec<f32> = (0..heads)
                .flat_map(|h| gather_head(&dout, h / n_head, h % n_head, t, dh, c, 0))
                .collect();
            let (mut o1, mut p1) = (vec![0.0; heads * t * dh], vec![0.0; heads * t * t]);
            attention_forward(d, &q, &k, &v, &mut o1, &mut p1);
            let (mut o2, mut p2) = (vec![f32::NAN; b * t * c], vec![0.0; heads * t * t]);
            attention_forward_packed(d, n_head, &qkv, &mut o2, &mut p2);
            let err = |a: &[f32], b: &[f32]| {
                a.iter()
                    .zip(b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f32::max)
            };
            assert!(err(&p1, &p2) < 1e-6, "probabilities");
            for h in 0..heads {
                let got = gather_head(&o2, h / n_head, h % n_head, t, dh, c, 0);
                let e = err(&got, &o1[h * t * dh..(h + 1) * t * dh]);
                assert!(e < 1e-5, "output of head {h}: error {e}");
            }
            let mut g = [
                vec![0.0; heads * t * dh],
                vec![0.0; heads * t * dh],
                vec![0.0; heads * t * dh],
            ];
            let [dq, dk, dv] = &mut g;
            attention_backward(d, &q, &k, &v, &p1, &dout_dense, dq, dk, dv);
            let mut dqkv = vec![f32::NAN; b * t * 3 * c];
            attention_backward_packed(d, n_head, &qkv, &p2, &dout, &mut dqkv);
            for (part, dense_grad) in g.iter().enumerate() {
                for h in 0..heads {
                    let got = gather_head(&dqkv, h / n_head, h % n_head, t, dh, 3 * c, part * c);
                    let want = &dense_grad[h * t * dh..(h + 1) * t * dh];
                    let err = got
                        .iter()
                        .zip(want)
                        .map(|(x, y)| (x - y).abs())
                        .fold(0.0, f32::max);
                    assert!(err < 1e-5, "gradient {part} of head {h}: error {err}");
                }
            }
            assert!(dqkv.iter().all(|x| x.is_finite()), "dqkv not fully written");
        }
    }
}

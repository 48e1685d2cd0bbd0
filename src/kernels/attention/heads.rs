//! One head's forward and backward on `packed_gemm`'s register tiles, and the stores of
//! their tiles into the output buffers.

use super::{AttentionDims, Layouts};
use crate::kernels::gemm::packed::{tile_sums, tile_sums_transposed, PackedWeight, MR, NR};
use crate::runtime::threads::SendPtr;

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
    dst: SendPtr<f32>,
    ld: usize,
    r0: usize,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        for panel in 0..n.div_ceil(NR) {
            let cols = NR.min(n - panel * NR);
            store_tile(&sums(b.panel(panel)), rows, cols, dst, ld, r0, panel * NR);
        }
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
    dst: SendPtr<f32>,
    ld: usize,
    r0: usize,
    col0: usize,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
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
}

/// One head's forward on `packed_gemm`'s register tiles: the keys packed as panels of 16
/// keys (`Kᵀ`), the values as panels of 16 channels; each tile of 6 queries takes its
/// scores against the keys it can see (under the causal mask, the keys up to its last
/// query), turns its rows into probabilities, and mixes the values over those keys.
/// `p`: the head's `[tq, tk]` probabilities; `o`: the start of its output block, rows
/// `lay.out.row_stride` apart, which only this call writes.
pub(super) fn head_forward(
    d: AttentionDims,
    lay: Layouts,
    [qh, kh, vh]: [&[f32]; 3],
    p: &mut [f32],
    o: SendPtr<f32>,
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
    let max = crate::kernels::vector::max(row);
    let inv = 1.0 / crate::kernels::vector::exp_in_place_sum(row, max, scale);
    row.iter_mut().for_each(|x| *x *= inv);
}

/// One head's backward on `packed_gemm`'s register tiles, `ds` its `[tq, tk]` scratch:
/// six queries at a time, `dP = dO · Vᵀ` over the keys they see, `dS` from it, and
/// `dQ = dS · K`; then six keys at a time, `dV = Pᵀ · dO` and `dK = dSᵀ · Q` over the
/// queries that see them (under the causal mask, the queries from the first of the six on).
/// `grads`: the starts of this head's blocks of dq, dk and dv, which only this call writes.
pub(super) fn head_backward(
    d: AttentionDims,
    lay: Layouts,
    [qh, kh, vh, doh]: [&[f32]; 4],
    p: &[f32],
    ds: &mut [f32],
    [dq, dk, dv]: [SendPtr<f32>; 3],
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
    let dy = PackedWeight::pack_rows(doh, d.tq, d.dv, lo); // dO [tq, dv]
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
            let dot = crate::kernels::vector::dot(&dsr[..n], &pr[..n]);
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
            tile_product(&dy, d.dv, rows, dv_sums, dv, lv, j0);
            tile_product(&queries, d.dk, rows, dk_sums, dk, lk, j0);
        }
    }
}

//! Batch normalization over `[N, C, inner]` (statistics per channel) and layer normalization
//! over `[rows, cols]` (statistics per row). As in llm.c, the forward returns the `mean` and
//! `rstd` (1 / sqrt(var + eps)) it used, and the backward takes them back instead of
//! recomputing the statistics.

use super::epilogue::{Epilogue, Step};
use super::vector::{dot_dev, lane_sum, sum, sum_sq_dev};
use rayon::prelude::*;

/// Items handed to one rayon task at least, for items of `len` elements.
fn min_items(len: usize) -> usize {
    (4096 / len.max(1)).max(1)
}

/// Per-channel mean and biased variance of `x` `[n, c, inner]`, parallel over channels.
/// Each channel is `n` contiguous runs of `inner`; sums are carried in f64.
pub fn batch_norm_stats(x: &[f32], n: usize, c: usize, inner: usize) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), n * c * inner);
    let count = (n * inner) as f64;
    let stats: Vec<(f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let run = |s: usize| &x[(s * c + ch) * inner..(s * c + ch + 1) * inner];
            // Each run summed in eight f32 lanes, the runs in f64: vectorized, and a run is
            // short (one image's plane) so its f32 sum loses nothing that matters.
            let mean = (0..n).map(|s| sum(run(s)) as f64).sum::<f64>() / count;
            let m = mean as f32;
            let var = (0..n).map(|s| sum_sq_dev(run(s), m) as f64).sum::<f64>() / count;
            (m, var as f32)
        })
        .collect();
    stats.into_iter().unzip()
}

/// The per-channel map batch norm applies, `y = x * scale[ch] + shift[ch]`, as `(scale,
/// shift)` with `scale = rstd * weight` and `shift = bias - mean * scale`: the `affine` step
/// of the [`Epilogue`] that [`batch_norm_apply`] and [`batch_norm_backward`] take (with a
/// fused ReLU as its `relu`). The backward recomputes `y`'s sign from `x` with the same
/// arithmetic, so its ReLU mask is the forward's bit for bit.
pub fn channel_affine(
    mean: &[f32],           // [c]
    rstd: &[f32],           // [c]
    weight: Option<&[f32]>, // [c]
    bias: Option<&[f32]>,   // [c]
) -> (Vec<f32>, Vec<f32>) {
    let scale: Vec<f32> = (0..rstd.len())
        .map(|ch| rstd[ch] * weight.map_or(1.0, |w| w[ch]))
        .collect();
    let shift = (0..rstd.len())
        .map(|ch| bias.map_or(0.0, |b| b[ch]) - mean[ch] * scale[ch])
        .collect();
    (scale, shift)
}

/// The `(scale, shift)` of a batch-norm epilogue, which must have one.
fn scale_shift<'a>(map: &Epilogue<'a>, kernel: &str, channels: usize) -> (&'a [f32], &'a [f32]) {
    map.supports(kernel, &[Step::Affine, Step::Relu], channels);
    map.affine
        .unwrap_or_else(|| panic!("{kernel}: the epilogue has no (scale, shift)"))
}

/// `out = x * scale[ch] + shift[ch]` (then `max(·, 0)` with a fused ReLU: `map`'s affine
/// and relu steps) over `[n, c, inner]`, parallel over the `n * c` runs.
pub fn batch_norm_apply(
    x: &[f32],       // [n, c, inner]
    map: Epilogue,   // affine, then optionally relu
    out: &mut [f32], // [n, c, inner]
    inner: usize,
) {
    assert_eq!(out.len(), x.len());
    if x.is_empty() {
        return;
    }
    let c = map.affine.map_or(0, |(s, _)| s.len());
    let (scales, shifts) = scale_shift(&map, "batch_norm_apply", c);
    out.par_chunks_mut(inner)
        .zip(x.par_chunks(inner))
        .enumerate()
        .with_min_len(min_items(inner))
        .for_each(|(i, (o, xr))| {
            let (scale, shift) = (scales[i % c], shifts[i % c]);
            if map.relu {
                for (oi, &xi) in o.iter_mut().zip(xr) {
                    *oi = (xi * scale + shift).max(0.0);
                }
            } else {
                for (oi, &xi) in o.iter_mut().zip(xr) {
                    *oi = xi * scale + shift;
                }
            }
        });
}

/// `g` where the forward's pre-activation `pre` was positive, else 0: a bitwise AND with the
/// comparison's all-ones or all-zeros mask, which vectorizes as a compare and an AND.
#[inline(always)]
fn relu_passed(g: f32, pre: f32) -> f32 {
    let mask = ((pre > 0.0) as u32).wrapping_neg();
    f32::from_bits(g.to_bits() & mask)
}

/// `(Σ g, Σ g · (x - m))` over one run, with `g = dy` where the fused ReLU let the forward's
/// output through (`x * scale + shift > 0`) and 0 elsewhere; in eight lanes.
fn masked_sums(dy: &[f32], x: &[f32], scale: f32, shift: f32, m: f32) -> (f32, f32) {
    // Two loops of one accumulator each (the run is one plane, so the second reads it from
    // L1): with both sums in one loop LLVM paired them up and left the loop nearly scalar.
    let passed = |d: f32, v: f32| relu_passed(d, v * scale + shift);
    (
        lane_sum(dy, x, passed),
        lane_sum(dy, x, |d, v| passed(d, v) * (v - m)),
    )
}

/// Per-channel sums `(Σ dy · xhat, Σ dy)` of a part of a batch to the per-channel means
/// over the whole batch (see [`StatsGrad::Global`]).
pub type GlobalMeans<'a> = &'a dyn Fn(&[f32], &[f32]) -> (Vec<f32>, Vec<f32>);

/// How the gradient of a batch norm flows through its statistics.
pub enum StatsGrad<'a> {
    /// Not at all: running statistics are constants (eval mode).
    Constant,
    /// Through this batch's mean and variance (training mode).
    Batch,
    /// Through the statistics of a larger batch that this one is part of (a batch norm
    /// synchronized across processes): given this part's per-channel sums `(Σ dy · xhat,
    /// Σ dy)`, the closure returns the means over the whole batch to use, per channel, in
    /// this part's units.
    Global(GlobalMeans<'a>),
}

/// Batch-norm backward over `[n, c, inner]` given the `mean` and `rstd` the forward used and
/// its map (`map`'s affine step; its ReLU, when fused, masks `dy` first). Writes `dx` and
/// returns `(dweight, dbias)` per channel. Through this batch's statistics
/// ([`StatsGrad::Batch`], training mode) `dx = w * rstd * (dy - mean(dy) - xhat *
/// mean(dy * xhat))`; with running statistics ([`StatsGrad::Constant`], eval mode) it is
/// the affine `dx = w * rstd * dy`; [`StatsGrad::Global`] takes the two means of a larger
/// batch instead.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward(
    x: &[f32],      // [n, c, inner]
    dy: &[f32],     // [n, c, inner]
    mean: &[f32],   // [c]
    rstd: &[f32],   // [c]
    map: Epilogue,  // affine, then optionally relu
    dx: &mut [f32], // [n, c, inner]
    n: usize,
    inner: usize,
    stats: StatsGrad,
) -> (Vec<f32>, Vec<f32>) {
    let c = mean.len();
    let (scales, shifts) = scale_shift(&map, "batch_norm_backward", c);
    assert_eq!(x.len(), n * c * inner);
    assert_eq!(dy.len(), x.len());
    assert_eq!(dx.len(), x.len());
    // Per channel: sum(dy) and sum(dy * xhat), parallel over channels.
    let sums: Vec<(f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            // As in `batch_norm_stats`: f32 lanes per run, f64 across runs.
            let (mut sd, mut sdx) = (0.0f64, 0.0f64);
            for s in 0..n {
                let at = (s * c + ch) * inner..(s * c + ch + 1) * inner;
                let (d, xs) = (&dy[at.clone()], &x[at]);
                let (run_d, run_dx) = if map.relu {
                    masked_sums(d, xs, scales[ch], shifts[ch], mean[ch])
                } else {
                    (sum(d), dot_dev(d, xs, mean[ch]))
                };
                sd += run_d as f64;
                sdx += run_dx as f64;
            }
            ((sdx * rstd[ch] as f64) as f32, sd as f32)
        })
        .collect();
    let (dweight, dbias): (Vec<f32>, Vec<f32>) = sums.iter().copied().unzip();
    // Per channel: the means of dy * xhat and of dy that the statistics' gradient subtracts.
    let count = (n * inner) as f32;
    let batch_stats = !matches!(stats, StatsGrad::Constant);
    let (mean_dxhats, mean_ds) = match stats {
        StatsGrad::Constant => (vec![0.0; c], vec![0.0; c]),
        StatsGrad::Batch => (
            dweight.iter().map(|s| s / count).collect(),
            dbias.iter().map(|s| s / count).collect(),
        ),
        StatsGrad::Global(means) => means(&dweight, &dbias),
    };
    if x.is_empty() {
        return (dweight, dbias);
    }
    dx.par_chunks_mut(inner)
        .enumerate()
        .with_min_len(min_items(inner))
        .for_each(|(i, d)| {
            let ch = i % c;
            let at = i * inner..(i + 1) * inner;
            let (k, shift) = (scales[ch], shifts[ch]);
            let (dy, xs) = (&dy[at.clone()], &x[at]);
            // Loops apart per case, so that each vectorizes.
            let (mean_dxhat, mean_d) = (mean_dxhats[ch], mean_ds[ch]);
            let (m, r) = (mean[ch], rstd[ch]);
            match (batch_stats, map.relu) {
                (true, false) => {
                    for ((di, &g), &xi) in d.iter_mut().zip(dy).zip(xs) {
                        *di = k * (g - mean_d - (xi - m) * r * mean_dxhat);
                    }
                }
                (true, true) => {
                    for ((di, &g), &xi) in d.iter_mut().zip(dy).zip(xs) {
                        let g = relu_passed(g, xi * k + shift);
                        *di = k * (g - mean_d - (xi - m) * r * mean_dxhat);
                    }
                }
                (false, false) => {
                    for (di, &g) in d.iter_mut().zip(dy) {
                        *di = k * g;
                    }
                }
                (false, true) => {
                    for ((di, &g), &xi) in d.iter_mut().zip(dy).zip(xs) {
                        *di = k * relu_passed(g, xi * k + shift);
                    }
                }
            }
        });
    (dweight, dbias)
}

/// Plain batch-norm forward over `[n, c, inner]` with batch statistics (or the given ones),
/// in f64: the textbook formula, element by element.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_forward_reference(
    x: &[f32],
    n: usize,
    c: usize,
    inner: usize,
    stats: Option<(&[f32], &[f32])>,
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    eps: f32,
) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    for ch in 0..c {
        let idx = |s: usize, i: usize| (s * c + ch) * inner + i;
        let (mean, var) = match stats {
            Some((m, v)) => (m[ch] as f64, v[ch] as f64),
            None => {
                let m = (0..n)
                    .flat_map(|s| (0..inner).map(move |i| (s, i)))
                    .map(|(s, i)| x[idx(s, i)] as f64)
                    .sum::<f64>()
                    / (n * inner) as f64;
                let v = (0..n)
                    .flat_map(|s| (0..inner).map(move |i| (s, i)))
                    .map(|(s, i)| (x[idx(s, i)] as f64 - m).powi(2))
                    .sum::<f64>()
                    / (n * inner) as f64;
                (m, v)
            }
        };
        let (w, b) = (
            weight.map_or(1.0, |w| w[ch] as f64),
            bias.map_or(0.0, |b| b[ch] as f64),
        );
        for s in 0..n {
            for i in 0..inner {
                out[idx(s, i)] =
                    ((x[idx(s, i)] as f64 - mean) / (var + eps as f64).sqrt() * w + b) as f32;
            }
        }
    }
    out
}

/// Layer-norm forward over `[rows, cols]`: normalizes each row with its mean and biased
/// variance, then applies `weight`/`bias` `[cols]`. Writes `out`, `mean` `[rows]` and
/// `rstd` `[rows]`; parallel over rows.
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_forward(
    x: &[f32],              // [rows, cols]
    weight: Option<&[f32]>, // [cols]
    bias: Option<&[f32]>,   // [cols]
    out: &mut [f32],        // [rows, cols]
    mean: &mut [f32],       // [rows]
    rstd: &mut [f32],       // [rows]
    cols: usize,
    eps: f32,
) {
    assert_eq!(out.len(), x.len());
    if x.is_empty() || cols == 0 {
        return;
    }
    out.par_chunks_mut(cols)
        .zip(x.par_chunks(cols))
        .zip(mean.par_iter_mut().zip(rstd.par_iter_mut()))
        .with_min_len(min_items(cols))
        .for_each(|((o, xr), (m, r))| {
            let mu = crate::kernels::vector::sum(xr) / cols as f32;
            let var = crate::kernels::vector::sum_sq_dev(xr, mu) / cols as f32;
            let rs = 1.0 / (var + eps).sqrt();
            // The affine cases apart, so that each loop vectorizes.
            match (weight, bias) {
                (Some(w), Some(b)) => {
                    for (((oj, &xj), &wj), &bj) in o.iter_mut().zip(xr).zip(w).zip(b) {
                        *oj = (xj - mu) * rs * wj + bj;
                    }
                }
                (Some(w), None) => {
                    for ((oj, &xj), &wj) in o.iter_mut().zip(xr).zip(w) {
                        *oj = (xj - mu) * rs * wj;
                    }
                }
                (None, Some(b)) => {
                    for ((oj, &xj), &bj) in o.iter_mut().zip(xr).zip(b) {
                        *oj = (xj - mu) * rs + bj;
                    }
                }
                (None, None) => {
                    for (oj, &xj) in o.iter_mut().zip(xr) {
                        *oj = (xj - mu) * rs;
                    }
                }
            }
            (*m, *r) = (mu, rs);
        });
}

/// `(Σ dy·w, Σ dy·w·(x − m))` over one row, in eight lanes.
fn weighted_row_sums(dy: &[f32], w: &[f32], x: &[f32], m: f32) -> (f32, f32) {
    let (mut a, mut b) = ([0.0f32; 8], [0.0f32; 8]);
    let (cd, cw, cx) = (dy.chunks_exact(8), w.chunks_exact(8), x.chunks_exact(8));
    let (rd, rw, rx) = (cd.remainder(), cw.remainder(), cx.remainder());
    for ((d, w), x) in cd.zip(cw).zip(cx) {
        for i in 0..8 {
            let g = d[i] * w[i];
            a[i] += g;
            b[i] += g * (x[i] - m);
        }
    }
    let (mut s, mut t) = (a.iter().sum::<f32>(), b.iter().sum::<f32>());
    for ((&d, &w), &x) in rd.iter().zip(rw).zip(rx) {
        s += d * w;
        t += d * w * (x - m);
    }
    (s, t)
}

/// Layer-norm backward over `[rows, cols]`: writes `dx` and returns `(dweight, dbias)`
/// `[cols]`, summed over rows (per-task partial sums, then added).
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_backward(
    x: &[f32],              // [rows, cols]
    dy: &[f32],             // [rows, cols]
    mean: &[f32],           // [rows]
    rstd: &[f32],           // [rows]
    weight: Option<&[f32]>, // [cols]
    dx: &mut [f32],         // [rows, cols]
    cols: usize,
) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(dx.len(), x.len());
    assert_eq!(dy.len(), x.len());
    if x.is_empty() || cols == 0 {
        return (vec![0.0; cols], vec![0.0; cols]);
    }
    let zeros = || (vec![0.0f32; cols], vec![0.0f32; cols]);
    let ones;
    let w: &[f32] = match weight {
        Some(w) => w,
        None => {
            ones = vec![1.0f32; cols];
            &ones
        }
    };
    dx.par_chunks_mut(cols)
        .enumerate()
        .with_min_len(min_items(cols))
        .fold(zeros, |(mut dw, mut db), (r, d)| {
            let (xr, dyr) = (&x[r * cols..(r + 1) * cols], &dy[r * cols..(r + 1) * cols]);
            let (m, rs) = (mean[r], rstd[r]);
            // dxhat = dy * w; dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)).
            let (s, sxm) = weighted_row_sums(dyr, w, xr, m);
            let (s, sx) = (s / cols as f32, sxm * rs / cols as f32);
            let rows = d.iter_mut().zip(xr).zip(dyr).zip(w);
            for ((((dj, &xj), &dyj), &wj), (dwj, dbj)) in rows.zip(dw.iter_mut().zip(&mut db)) {
                let xhat = (xj - m) * rs;
                *dwj += dyj * xhat;
                *dbj += dyj;
                *dj = rs * (dyj * wj - s - xhat * sx);
            }
            (dw, db)
        })
        .reduce(zeros, |(mut dw, mut db), (w2, b2)| {
            crate::kernels::vector::add_assign(&mut dw, &w2);
            crate::kernels::vector::add_assign(&mut db, &b2);
            (dw, db)
        })
}

/// Plain layer-norm forward over `[rows, cols]`, in f64.
pub fn layer_norm_forward_reference(
    x: &[f32],
    cols: usize,
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    eps: f32,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(cols) {
        let m = row.iter().map(|&v| v as f64).sum::<f64>() / cols as f64;
        let var = row.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / cols as f64;
        for (j, &v) in row.iter().enumerate() {
            let y = (v as f64 - m) / (var + eps as f64).sqrt();
            out.push(
                (y * weight.map_or(1.0, |w| w[j] as f64) + bias.map_or(0.0, |b| b[j] as f64))
                    as f32,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_values::assert_close;

    fn values(n: usize, phase: f32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 29 % 97) as f32 * 0.17 + phase).sin() * 3.0 + 0.5)
            .collect()
    }

    #[test]
    fn batch_norm_fast_matches_reference_on_awkward_shapes() {
        // [N, C, inner]: batch 1, [N, C] (inner 1), odd spatial sizes, a large channel.
        for &(n, c, inner) in &[(1, 3, 7), (5, 3, 1), (3, 5, 9), (2, 1, 1), (4, 2, 1089)] {
            let x = values(n * c * inner, 0.3);
            let (w, b) = (values(c, 1.0), values(c, 2.0));
            let (mean, var) = batch_norm_stats(&x, n, c, inner);
            let rstd: Vec<f32> = var.iter().map(|v| 1.0 / (v + 1e-5).sqrt()).collect();
            let mut out = vec![0.0; x.len()];
            let (scale, shift) = channel_affine(&mean, &rstd, Some(&w), Some(&b));
            let map = Epilogue {
                affine: Some((&scale, &shift)),
                ..Epilogue::default()
            };
            batch_norm_apply(&x, map, &mut out, inner);
            let reference =
                batch_norm_forward_reference(&x, n, c, inner, None, Some(&w), Some(&b), 1e-5);
            assert_close(&out, &reference, 1e-3);
        }
    }

    #[test]
    fn layer_norm_fast_matches_reference_on_awkward_shapes() {
        for &(rows, cols) in &[(1, 1), (1, 7), (13, 5), (300, 33)] {
            let x = values(rows * cols, 0.7);
            let (w, b) = (values(cols, 1.0), values(cols, 2.0));
            let (mut out, mut mean, mut rstd) =
                (vec![0.0; x.len()], vec![0.0; rows], vec![0.0; rows]);
            layer_norm_forward(
                &x,
                Some(&w),
                Some(&b),
                &mut out,
                &mut mean,
                &mut rstd,
                cols,
                1e-5,
            );
            assert_close(
                &out,
                &layer_norm_forward_reference(&x, cols, Some(&w), Some(&b), 1e-5),
                1e-3,
            );
            layer_norm_forward(&x, None, None, &mut out, &mut mean, &mut rstd, cols, 1e-5);
            assert_close(
                &out,
                &layer_norm_forward_reference(&x, cols, None, None, 1e-5),
                1e-4,
            );
        }
    }
}

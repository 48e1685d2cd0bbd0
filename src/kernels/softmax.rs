//! Softmax, log-softmax and fused softmax cross-entropy over one axis of a contiguous buffer
//! viewed as `[outer, n, inner]` (the axis is the middle one; `inner == 1` is the fast
//! last-axis case). Every row subtracts its maximum before `exp`, so large logits do not
//! overflow.

use super::math::exp;
use rayon::prelude::*;

/// Rows (of the softmax axis) handed to one rayon task at least, so that small tensors do
/// not pay for scheduling.
fn min_blocks(block_len: usize) -> usize {
    (4096 / block_len.max(1)).max(1)
}

/// Softmax (or log-softmax when `log`) of one contiguous row, written to `out`.
#[inline]
fn softmax_row(x: &[f32], out: &mut [f32], log: bool) {
    let m = super::vector::max(x);
    out.copy_from_slice(x);
    let sum = super::vector::exp_in_place_sum(out, m, 1.0);
    if log {
        let lse = m + sum.ln();
        for (o, &v) in out.iter_mut().zip(x) {
            *o = v - lse;
        }
    } else {
        let inv = 1.0 / sum;
        out.iter_mut().for_each(|o| *o *= inv);
    }
}

/// Softmax (or log-softmax) of `x` `[outer, n, inner]` along the middle axis, into `out`.
pub fn softmax_forward(
    x: &[f32],
    out: &mut [f32],
    outer: usize,
    n: usize,
    inner: usize,
    log: bool,
) {
    assert_eq!(x.len(), outer * n * inner);
    assert_eq!(out.len(), x.len());
    if x.is_empty() {
        return;
    }
    let block = n * inner;
    if inner == 1 {
        out.par_chunks_mut(n)
            .zip(x.par_chunks(n))
            .with_min_len(min_blocks(n))
            .for_each(|(o, xr)| softmax_row(xr, o, log));
        return;
    }
    // A strided axis: work on a whole [n, inner] block at once, vectorized over `inner`.
    out.par_chunks_mut(block)
        .zip(x.par_chunks(block))
        .with_min_len(min_blocks(block))
        .for_each(|(o, xb)| {
            let mut m = xb[..inner].to_vec();
            for r in 1..n {
                for (mi, &v) in m.iter_mut().zip(&xb[r * inner..(r + 1) * inner]) {
                    *mi = mi.max(v);
                }
            }
            let mut sum = vec![0.0f32; inner];
            for r in 0..n {
                let (orow, xrow) = (
                    &mut o[r * inner..(r + 1) * inner],
                    &xb[r * inner..(r + 1) * inner],
                );
                for i in 0..inner {
                    orow[i] = exp(xrow[i] - m[i]);
                    sum[i] += orow[i];
                }
            }
            if log {
                let lse: Vec<f32> = m.iter().zip(&sum).map(|(mi, s)| mi + s.ln()).collect();
                for (orow, xrow) in o.chunks_mut(inner).zip(xb.chunks(inner)) {
                    for i in 0..inner {
                        orow[i] = xrow[i] - lse[i];
                    }
                }
            } else {
                let inv: Vec<f32> = sum.iter().map(|s| 1.0 / s).collect();
                for orow in o.chunks_mut(inner) {
                    orow.iter_mut().zip(&inv).for_each(|(v, s)| *v *= s);
                }
            }
        });
}

/// Backward of [`softmax_forward`] from its output `y`: `dx = y * (dy - sum(dy * y))` for
/// softmax, `dx = dy - exp(y) * sum(dy)` for log-softmax (sums along the axis).
pub fn softmax_backward(
    y: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    outer: usize,
    n: usize,
    inner: usize,
    log: bool,
) {
    assert_eq!(y.len(), outer * n * inner);
    assert_eq!(dy.len(), y.len());
    assert_eq!(dx.len(), y.len());
    if y.is_empty() {
        return;
    }
    let block = n * inner;
    dx.par_chunks_mut(block)
        .zip(dy.par_chunks(block).zip(y.par_chunks(block)))
        .with_min_len(min_blocks(block))
        .for_each(|(dxb, (dyb, yb))| {
            // s[i] = sum over the axis of dy*y (softmax) or of dy (log-softmax).
            let mut s = vec![0.0f32; inner];
            for (dyr, yr) in dyb.chunks(inner).zip(yb.chunks(inner)) {
                for i in 0..inner {
                    s[i] += if log { dyr[i] } else { dyr[i] * yr[i] };
                }
            }
            for ((dxr, dyr), yr) in dxb
                .chunks_mut(inner)
                .zip(dyb.chunks(inner))
                .zip(yb.chunks(inner))
            {
                for i in 0..inner {
                    dxr[i] = if log {
                        dyr[i] - exp(yr[i]) * s[i]
                    } else {
                        yr[i] * (dyr[i] - s[i])
                    };
                }
            }
        });
}

/// Plain softmax / log-softmax along the middle axis of `[outer, n, inner]`, in f64.
pub fn softmax_forward_reference(
    x: &[f32],
    outer: usize,
    n: usize,
    inner: usize,
    log: bool,
) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |r: usize| (o * n + r) * inner + i;
            let m = (0..n)
                .map(|r| x[at(r)] as f64)
                .fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = (0..n).map(|r| (x[at(r)] as f64 - m).exp()).sum();
            for r in 0..n {
                let z = x[at(r)] as f64 - m;
                out[at(r)] = if log {
                    (z - sum.ln()) as f32
                } else {
                    (z.exp() / sum) as f32
                };
            }
        }
    }
    out
}

/// Fused cross-entropy forward over logits `[rows, classes]`: returns the per-row loss
/// `lse - (1 - s) * x[t] - s / C * sum_j x[j]` (label smoothing `s`, PyTorch's definition)
/// and the per-row log-sum-exp, kept for the backward.
pub fn cross_entropy_forward(
    logits: &[f32],
    targets: &[usize],
    classes: usize,
    smoothing: f32,
) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(logits.len(), targets.len() * classes);
    let rows = targets.len();
    let mut loss = vec![0.0f32; rows];
    let mut lse = vec![0.0f32; rows];
    loss.par_iter_mut()
        .zip(lse.par_iter_mut())
        .enumerate()
        .with_min_len(min_blocks(classes))
        .for_each(|(r, (l, s))| {
            let x = &logits[r * classes..(r + 1) * classes];
            let m = super::vector::max(x);
            let sum: f32 = x.iter().map(|&v| exp(v - m)).sum();
            *s = m + sum.ln();
            let mut value = *s - (1.0 - smoothing) * x[targets[r]];
            if smoothing != 0.0 {
                value -= smoothing / classes as f32 * x.iter().sum::<f32>();
            }
            *l = value;
        });
    (loss, lse)
}

/// Cross-entropy backward: `dx = scale * (softmax(x) - (1 - s) * onehot(t) - s / C)`, with the
/// softmax recomputed from the saved log-sum-exp (`scale` is the loss gradient / rows).
pub fn cross_entropy_backward(
    logits: &[f32],
    lse: &[f32],
    targets: &[usize],
    dx: &mut [f32],
    classes: usize,
    smoothing: f32,
    scale: f32,
) {
    assert_eq!(dx.len(), logits.len());
    let uniform = smoothing / classes as f32;
    dx.par_chunks_mut(classes)
        .enumerate()
        .with_min_len(min_blocks(classes))
        .for_each(|(r, d)| {
            let x = &logits[r * classes..(r + 1) * classes];
            for (di, &v) in d.iter_mut().zip(x) {
                *di = scale * (exp(v - lse[r]) - uniform);
            }
            d[targets[r]] -= scale * (1.0 - smoothing);
        });
}

/// Plain cross-entropy per row from an explicit log-softmax, in f64.
pub fn cross_entropy_reference(
    logits: &[f32],
    targets: &[usize],
    classes: usize,
    smoothing: f32,
) -> Vec<f32> {
    let logp = softmax_forward_reference(logits, targets.len(), classes, 1, true);
    targets
        .iter()
        .enumerate()
        .map(|(r, &t)| {
            let row = &logp[r * classes..(r + 1) * classes];
            let nll = -row[t] as f64;
            let smooth = -row.iter().map(|&v| v as f64).sum::<f64>() / classes as f64;
            ((1.0 - smoothing as f64) * nll + smoothing as f64 * smooth) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_values::assert_close;

    fn values(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 37 % 101) as f32 * 0.21).sin() * 4.0)
            .collect()
    }

    #[test]
    fn fast_softmax_matches_reference_on_awkward_shapes() {
        for &(outer, n, inner) in &[
            (1, 1, 1),
            (3, 7, 1),
            (1, 13, 5),
            (4, 3, 9),
            (2, 2, 2),
            (257, 33, 1),
        ] {
            let x = values(outer * n * inner);
            for log in [false, true] {
                let mut out = vec![0.0; x.len()];
                softmax_forward(&x, &mut out, outer, n, inner, log);
                assert_close(
                    &out,
                    &softmax_forward_reference(&x, outer, n, inner, log),
                    1e-5,
                );
            }
        }
    }

    #[test]
    fn large_logits_do_not_overflow() {
        let x = [1000.0, 1001.0, 1002.0];
        let mut out = [0.0; 3];
        softmax_forward(&x, &mut out, 1, 3, 1, false);
        assert_close(&out, &[0.09003057, 0.24472847, 0.66524096], 1e-6);
    }

    #[test]
    fn fused_cross_entropy_matches_reference() {
        let (rows, classes) = (9, 11);
        let x = values(rows * classes);
        let targets: Vec<usize> = (0..rows).map(|r| (r * 5) % classes).collect();
        for s in [0.0, 0.1] {
            let (loss, _) = cross_entropy_forward(&x, &targets, classes, s);
            assert_close(
                &loss,
                &cross_entropy_reference(&x, &targets, classes, s),
                1e-5,
            );
        }
    }
}

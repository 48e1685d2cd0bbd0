//! Fused scaled dot-product attention over a stack of heads, forward and backward.
//!
//! Each head is independent, so the work is spread over heads with rayon and each head runs
//! its products on the GEMM (single-threaded inside a worker). Per head, with
//! `scale = 1/sqrt(dk)`:
//!
//! - forward: `S = Q·Kᵀ`, `P = softmax(scale·S)` row by row (max-subtracted; under the
//!   causal mask row `i` covers keys `0..=i` and the rest of the row is 0), `O = P·V`;
//! - backward: `dV = Pᵀ·dO`, `dP = dO·Vᵀ`, `dS = P ∘ (dP − rowsum(dP ∘ P))`,
//!   `dQ = scale·dS·K`, `dK = scale·dSᵀ·Q`.
//!
//! `P` is kept by the caller between the two ([heads, tq, tk]): it is both what backward
//! needs and what a visualisation shows. Why not a streaming (flash) kernel: at the sequence
//! lengths of the models here `P` is small, and keeping it makes backward two GEMMs cheaper.

use super::gemm::{sgemm, Gemm};
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
    d.check();
    let scale = d.scale();
    out.par_chunks_mut(d.tq * d.dv)
        .zip(probs.par_chunks_mut(d.tq * d.tk))
        .enumerate()
        .for_each(|(h, (o, p))| {
            let qh = &q[h * d.tq * d.dk..(h + 1) * d.tq * d.dk];
            let kh = &k[h * d.tk * d.dk..(h + 1) * d.tk * d.dk];
            let vh = &v[h * d.tk * d.dv..(h + 1) * d.tk * d.dv];
            // [tq, tk] = [tq, dk] · [tk, dk]ᵀ
            sgemm(Gemm::new(d.tq, d.tk, d.dk).trans_b(true), qh, kh, p);
            for (i, row) in p.chunks_mut(d.tk).enumerate() {
                let (seen, masked) = row.split_at_mut(d.visible(i));
                softmax_in_place(seen, scale);
                masked.fill(0.0);
            }
            // [tq, dv] = [tq, tk] · [tk, dv]
            sgemm(Gemm::new(d.tq, d.dv, d.tk), p, vh, o);
        });
}

/// `row = softmax(scale · row)`, stable (the maximum is subtracted first).
fn softmax_in_place(row: &mut [f32], scale: f32) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for x in row.iter_mut() {
        *x = super::math::exp((*x - max) * scale);
    }
    let inv = 1.0 / super::vector::sum(row);
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
    let scale = d.scale();
    dq.par_chunks_mut(d.tq * d.dk)
        .zip(dk.par_chunks_mut(d.tk * d.dk))
        .zip(dv.par_chunks_mut(d.tk * d.dv))
        .enumerate()
        .for_each_init(
            || vec![0.0f32; d.tq * d.tk],
            |ds, (h, ((dqh, dkh), dvh))| {
                let qh = &q[h * d.tq * d.dk..(h + 1) * d.tq * d.dk];
                let kh = &k[h * d.tk * d.dk..(h + 1) * d.tk * d.dk];
                let vh = &v[h * d.tk * d.dv..(h + 1) * d.tk * d.dv];
                let p = &probs[h * d.tq * d.tk..(h + 1) * d.tq * d.tk];
                let doh = &dout[h * d.tq * d.dv..(h + 1) * d.tq * d.dv];
                // dV [tk, dv] = Pᵀ · dO
                sgemm(Gemm::new(d.tk, d.dv, d.tq).trans_a(true), p, doh, dvh);
                // dP [tq, tk] = dO · Vᵀ
                sgemm(Gemm::new(d.tq, d.tk, d.dv).trans_b(true), doh, vh, ds);
                for (i, (dsr, pr)) in ds.chunks_mut(d.tk).zip(p.chunks(d.tk)).enumerate() {
                    let n = d.visible(i);
                    let dot: f32 = dsr[..n].iter().zip(&pr[..n]).map(|(a, b)| a * b).sum();
                    for (x, &pj) in dsr[..n].iter_mut().zip(&pr[..n]) {
                        *x = pj * (*x - dot) * scale;
                    }
                    dsr[n..].fill(0.0);
                }
                // dQ [tq, dk] = scale · dS · K
                sgemm(Gemm::new(d.tq, d.dk, d.tk), ds, kh, dqh);
                // dK [tk, dk] = scale · dSᵀ · Q
                sgemm(Gemm::new(d.tk, d.dk, d.tq).trans_a(true), ds, qh, dkh);
            },
        );
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
}

//! Scaled dot-product attention (PyTorch's `F.scaled_dot_product_attention`, without
//! dropout): `softmax(Q·Kᵀ / sqrt(Dh) + mask) · V`, one fused op with its own backward.
//!
//! The arithmetic is in [`crate::kernels::attention`]; the probabilities `P` computed by the
//! forward are saved for backward and can be returned for visualisation
//! ([`Tensor::scaled_dot_product_attention_with_probs`]).
//! [`scaled_dot_product_attention_reference`] composes the same function from basic ops; the
//! tests compare the two, values and gradients.

use crate::gradcheck::Case;
use crate::ops::Family;
use crate::kernels::attention::{
    attention_backward, attention_backward_packed, attention_forward, attention_forward_packed,
    AttentionDims,
};
use crate::runtime::buffers;
use crate::tensor::Tensor;
use crate::tensor::layout::numel;

/// Checks the shapes of `q [..., tq, dk]`, `k [..., tk, dk]`, `v [..., tk, dv]`.
fn dims(q: &Tensor, k: &Tensor, v: &Tensor, causal: bool) -> AttentionDims {
    let (sq, sk, sv) = (q.shape(), k.shape(), v.shape());
    let r = sq.len();
    assert!(
        r >= 2
            && sk.len() == r
            && sv.len() == r
            && sq[..r - 2] == sk[..r - 2]
            && sk[..r - 2] == sv[..r - 2]
            && sq[r - 1] == sk[r - 1]
            && sk[r - 2] == sv[r - 2]
            && sq[r - 2..]
                .iter()
                .chain(&sk[r - 2..])
                .chain(&sv[r - 1..])
                .all(|&n| n > 0),
        "scaled_dot_product_attention: shapes q {sq:?}, k {sk:?}, v {sv:?} do not fit \
         (need [B, H, Tq, Dh], [B, H, Tk, Dh], [B, H, Tk, Dv], all non-empty)"
    );
    assert!(
        !causal || sq[r - 2] == sk[r - 2],
        "scaled_dot_product_attention: a causal mask needs as many queries as keys, got q {sq:?} and k {sk:?}"
    );
    AttentionDims {
        heads: numel(&sq[..r - 2]),
        tq: sq[r - 2],
        tk: sk[r - 2],
        dk: sq[r - 1],
        dv: sv[r - 1],
        causal,
    }
}

impl Tensor {
    /// Attention of queries `q [B, H, Tq, Dh]` over keys `k [B, H, Tk, Dh]` and values
    /// `v [B, H, Tk, Dv]`, giving `[B, H, Tq, Dv]`. Scores are scaled by `1/sqrt(Dh)`. With
    /// `causal`, query `i` attends to keys `0..=i` only (PyTorch's `is_causal=True`; needs
    /// `Tq == Tk`). Any number of leading dimensions works, as long as q, k and v agree on
    /// them.
    pub fn scaled_dot_product_attention(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        causal: bool,
    ) -> Tensor {
        Tensor::scaled_dot_product_attention_with_probs(q, k, v, causal).0
    }

    /// [`Tensor::scaled_dot_product_attention`], also returning the attention probabilities
    /// `[B, H, Tq, Tk]` (masked positions hold 0), detached. They share the buffer that
    /// backward reads, so treat them as read-only.
    pub fn scaled_dot_product_attention_with_probs(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        causal: bool,
    ) -> (Tensor, Tensor) {
        let d = dims(q, k, v, causal);
        let (qc, kc, vc) = (
            q.detach().contiguous(),
            k.detach().contiguous(),
            v.detach().contiguous(),
        );
        // [B, H, Tq, Dv]
        let mut out = buffers::take(d.heads * d.tq * d.dv);
        // [B, H, Tq, Tk]
        let mut probs = buffers::take(d.heads * d.tq * d.tk);
        qc.with_slice(|qs| {
            kc.with_slice(|ks| {
                vc.with_slice(|vs| attention_forward(d, qs, ks, vs, &mut out, &mut probs))
            })
        });
        let lead = &q.shape()[..q.rank() - 2];
        let probs = Tensor::from_vec(probs, &[lead, &[d.tq, d.tk]].concat());
        let saved = probs.clone();
        let out_shape = [lead, &[d.tq, d.dv]].concat();
        let out = Tensor::from_op(
            out,
            &out_shape,
            "scaled_dot_product_attention",
            &[q, k, v],
            move |g| {
                let (mut dq, mut dk, mut dv) = (
                    buffers::take(qc.numel()),
                    buffers::take(kc.numel()),
                    buffers::take(vc.numel()),
                );
                let g = g.contiguous();
                qc.with_slice(|qs| {
                    kc.with_slice(|ks| {
                        vc.with_slice(|vs| {
                            saved.with_slice(|ps| {
                                g.with_slice(|gs| {
                                    attention_backward(
                                        d, qs, ks, vs, ps, gs, &mut dq, &mut dk, &mut dv,
                                    )
                                })
                            })
                        })
                    })
                });
                vec![
                    Some(Tensor::from_vec(dq, qc.shape())),
                    Some(Tensor::from_vec(dk, kc.shape())),
                    Some(Tensor::from_vec(dv, vc.shape())),
                ]
            },
        );
        (out, probs)
    }
}

impl Tensor {
    /// Self-attention straight from a fused projection `qkv [B, T, 3C]` (columns q | k | v,
    /// each `n_head` heads of `C / n_head` channels, nanoGPT's `c_attn` output) to
    /// `[B, T, C]` with the heads merged, plus the probabilities `[B, n_head, T, T]`
    /// (detached, read-only). The same values as splitting, permuting into heads, calling
    /// [`Tensor::scaled_dot_product_attention`] and merging the heads back, without the
    /// copies those make or the three zero-padded gradients the split's backward sums.
    pub fn self_attention_packed(qkv: &Tensor, n_head: usize, causal: bool) -> (Tensor, Tensor) {
        let s = qkv.shape();
        assert!(
            s.len() == 3 && n_head > 0 && s[2].is_multiple_of(3 * n_head) && s[0] * s[1] > 0,
            "self_attention_packed: input must be [B, T, 3C] with C a multiple of {n_head} heads, got {s:?}"
        );
        let (b, t, c) = (s[0], s[1], s[2] / 3);
        let dh = c / n_head;
        let d = AttentionDims {
            heads: b * n_head,
            tq: t,
            tk: t,
            dk: dh,
            dv: dh,
            causal,
        };
        let x = qkv.detach().contiguous();
        let mut out = buffers::take(b * t * c); // [B, T, C]
        let mut probs = buffers::take(b * n_head * t * t); // [B, H, T, T]
        x.with_slice(|xs| attention_forward_packed(d, n_head, xs, &mut out, &mut probs));
        let probs = Tensor::from_vec(probs, &[b, n_head, t, t]);
        let saved = probs.clone();
        let out = Tensor::from_op(out, &[b, t, c], "self_attention_packed", &[qkv], move |g| {
            let g = g.contiguous();
            let mut dx = buffers::take(x.numel()); // [B, T, 3C], every element written
            x.with_slice(|xs| {
                saved.with_slice(|ps| {
                    g.with_slice(|gs| attention_backward_packed(d, n_head, xs, ps, gs, &mut dx))
                })
            });
            vec![Some(Tensor::from_vec(dx, x.shape()))]
        });
        (out, probs)
    }
}

/// [`Tensor::self_attention_packed`] composed from split, permute and the unfused
/// attention: what the packed op is tested against.
pub fn self_attention_packed_reference(qkv: &Tensor, n_head: usize, causal: bool) -> Tensor {
    let (b, t, c) = (qkv.dim(0), qkv.dim(1), qkv.dim(2) / 3);
    let parts = qkv.split(&[c, c, c], 2);
    let heads = |x: &Tensor| {
        x.reshape(&[b, t, n_head, c / n_head])
            .permute(&[0, 2, 1, 3])
    };
    let y = scaled_dot_product_attention_reference(
        &heads(&parts[0]),
        &heads(&parts[1]),
        &heads(&parts[2]),
        causal,
    );
    y.permute(&[0, 2, 1, 3]).reshape(&[b, t, c])
}

/// The same function as [`Tensor::scaled_dot_product_attention`] composed from basic ops
/// (matmul, max, exp, sum, div), with their gradients: the oracle the fused op is tested
/// against. Masked scores get `-1e9` before the softmax, so their weight is exactly 0.
pub fn scaled_dot_product_attention_reference(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    causal: bool,
) -> Tensor {
    let d = dims(q, k, v, causal);
    // [B, H, Tq, Tk]
    let mut scores = q.matmul(&k.transpose(-2, -1)).mul_scalar(d.scale());
    if causal {
        let mask: Vec<f32> = (0..d.tq * d.tk)
            .map(|n| if n % d.tk > n / d.tk { -1e9 } else { 0.0 })
            .collect();
        scores = scores.add(&Tensor::from_vec(mask, &[d.tq, d.tk]));
    }
    let e = scores.sub(&scores.max(-1, true)).exp();
    let p = e.div(&e.sum(-1, true));
    p.matmul(v)
}

/// The ops of this module and their gradient checks (a row of [`crate::ops::FAMILIES`]).
pub(crate) const FAMILY: Family = Family {
    name: "attention",
    ops: &["scaled_dot_product_attention", "self_attention_packed"],
    cases: gradcheck_cases,
};

fn gradcheck_cases() -> Vec<Case> {
    let any = |shape: &[usize]| Tensor::randn(shape, 0.0, 1.0);
    let sdpa = "scaled_dot_product_attention";
    vec![
        // Tq != Tk and Dv != Dh without a mask.
        Case::new(
            sdpa,
            vec![any(&[1, 2, 3, 4]), any(&[1, 2, 5, 4]), any(&[1, 2, 5, 3])],
            |x| Tensor::scaled_dot_product_attention(&x[0], &x[1], &x[2], false),
        ),
        Case::new(
            sdpa,
            vec![any(&[2, 2, 5, 4]), any(&[2, 2, 5, 4]), any(&[2, 2, 5, 4])],
            |x| Tensor::scaled_dot_product_attention(&x[0], &x[1], &x[2], true),
        ),
        // Straight from a fused projection: [B, T, 3C] with 2 heads of 2 channels.
        Case::new("self_attention_packed", vec![any(&[2, 3, 12])], |x| {
            Tensor::self_attention_packed(&x[0], 2, true).0
        }),
        Case::new("self_attention_packed", vec![any(&[1, 4, 6])], |x| {
            Tensor::self_attention_packed(&x[0], 1, false).0
        }),
        // Inputs as a transformer makes them: heads permuted out of [B, T, H, Dh].
        Case::new(
            sdpa,
            vec![any(&[1, 3, 2, 4]), any(&[1, 3, 2, 4]), any(&[1, 3, 2, 4])],
            |x| {
                let heads = |t: &Tensor| t.permute(&[0, 2, 1, 3]);
                Tensor::scaled_dot_product_attention(
                    &heads(&x[0]),
                    &heads(&x[1]),
                    &heads(&x[2]),
                    true,
                )
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::rng::manual_seed;

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.shape(), b.shape());
        a.to_vec()
            .iter()
            .zip(b.to_vec())
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn fused_matches_composed_ops_in_values_and_gradients() {
        manual_seed(3);
        for &(b, h, tq, tk, dh, dv, causal) in &[
            (2, 3, 7, 7, 5, 5, true),
            (2, 3, 7, 7, 5, 5, false),
            (1, 1, 9, 9, 8, 8, true),
            (1, 2, 3, 11, 4, 6, false),
            // Several tiles of six queries and keys, several panels of 16 keys and channels.
            (1, 2, 37, 37, 20, 18, true),
            (1, 1, 19, 40, 33, 17, false),
        ] {
            let q = Tensor::randn(&[b, tq, h, dh], 0.0, 1.0).requires_grad_();
            let k = Tensor::randn(&[b, h, tk, dh], 0.0, 1.0).requires_grad_();
            let v = Tensor::randn(&[b, h, tk, dv], 0.0, 1.0).requires_grad_();
            let w = Tensor::randn(&[b, h, tq, dv], 0.0, 1.0);
            let mut results = Vec::new();
            for fused in [true, false] {
                // q arrives as a permuted (non-contiguous) view, as in a transformer.
                let qh = q.permute(&[0, 2, 1, 3]);
                let out = if fused {
                    Tensor::scaled_dot_product_attention(&qh, &k, &v, causal)
                } else {
                    scaled_dot_product_attention_reference(&qh, &k, &v, causal)
                };
                out.mul(&w).sum_all().backward().unwrap();
                let grads: Vec<Tensor> = [&q, &k, &v].iter().map(|t| t.grad().unwrap()).collect();
                [&q, &k, &v].iter().for_each(|t| t.zero_grad());
                results.push((out, grads));
            }
            let case = format!("B={b} H={h} Tq={tq} Tk={tk} Dh={dh} Dv={dv} causal={causal}");
            assert!(
                max_diff(&results[0].0, &results[1].0) < 1e-5,
                "{case}: outputs differ"
            );
            for (name, (g1, g2)) in ["dq", "dk", "dv"]
                .iter()
                .zip(results[0].1.iter().zip(&results[1].1))
            {
                let e = max_diff(g1, g2);
                assert!(e < 1e-4, "{case}: {name} differs by {e}");
            }
        }
    }

    #[test]
    fn probabilities_are_returned_and_masked() {
        let q = Tensor::randn(&[1, 2, 4, 3], 0.0, 1.0);
        let (out, p) = Tensor::scaled_dot_product_attention_with_probs(&q, &q, &q, true);
        assert_eq!(out.shape(), &[1, 2, 4, 3]);
        assert_eq!(p.shape(), &[1, 2, 4, 4]);
        let p = p.to_vec();
        for (r, row) in p.chunks(4).enumerate() {
            let i = r % 4;
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            assert!(row[i + 1..].iter().all(|&x| x == 0.0), "row {r}: {row:?}");
        }
        // The first query sees only the first key: its output is the first value.
        assert!(max_diff(&out.narrow(2, 0, 1), &q.narrow(2, 0, 1)) < 1e-6);
    }

    #[test]
    #[should_panic(
        expected = "scaled_dot_product_attention: a causal mask needs as many queries as keys"
    )]
    fn causal_with_unequal_lengths_is_refused() {
        let q = Tensor::zeros(&[1, 1, 3, 4]);
        let k = Tensor::zeros(&[1, 1, 5, 4]);
        Tensor::scaled_dot_product_attention(&q, &k, &k, true);
    }

    #[test]
    fn packed_matches_split_heads_in_values_and_gradients() {
        manual_seed(5);
        for &(b, t, n_head, dh, causal) in &[(2, 7, 3, 4, true), (1, 9, 2, 8, false)] {
            let c = n_head * dh;
            let qkv = Tensor::randn(&[b, t, 3 * c], 0.0, 1.0).requires_grad_();
            let w = Tensor::randn(&[b, t, c], 0.0, 1.0);
            let (packed, probs) = Tensor::self_attention_packed(&qkv, n_head, causal);
            assert_eq!(probs.shape(), &[b, n_head, t, t]);
            packed.mul(&w).sum_all().backward().unwrap();
            let g1 = qkv.grad().unwrap();
            qkv.zero_grad();
            let reference = self_attention_packed_reference(&qkv, n_head, causal);
            reference.mul(&w).sum_all().backward().unwrap();
            let g2 = qkv.grad().unwrap();
            let case = format!("B={b} T={t} H={n_head} Dh={dh} causal={causal}");
            assert!(
                max_diff(&packed, &reference) < 1e-5,
                "{case}: outputs differ"
            );
            let e = max_diff(&g1, &g2);
            assert!(e < 1e-4, "{case}: gradients differ by {e}");
        }
    }
}

//! Attention as plain loops in f64, the oracle the tests compare the fused kernels with.

use super::AttentionDims;

/// Plain loops in f64, for tests: the same outputs as [`attention_forward`](super::attention_forward).
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

//! Optimizer updates over a parameter's flat buffer: SGD with momentum and Adam(W), as
//! PyTorch's `torch.optim` defines them. Memory-bound: each step streams the weight, its
//! gradient and the optimizer state once, so large parameters are split over the threads
//! and the per-element branches are decided once per call, outside the loop.
//!
//! Each update also tells whether every weight it wrote is finite: the training loops' guard
//! against divergence, at no extra pass over memory (a NaN or infinite gradient always
//! leaves a non-finite weight, whatever the learning rate).

use crate::runtime::threads::PAR_MIN_ELEMENTS;
use rayon::prelude::*;

/// Hyper-parameters of one SGD update.
#[derive(Clone, Copy, Debug)]
pub struct SgdStep {
    /// Learning rate.
    pub lr: f32,
    /// Momentum factor (0: plain SGD).
    pub momentum: f32,
    /// Dampening of the gradient's share in the momentum buffer.
    pub dampening: f32,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// The momentum buffer is new: PyTorch sets it to the first gradient, undamped.
    pub first: bool,
}

/// Elements per parallel chunk: large enough that a chunk outweighs its scheduling.
const CHUNK: usize = 1 << 14;

/// 1 when `v` is a NaN or an infinity (all exponent bits set), else 0: an integer, so that
/// the loops below OR it into a flag and still vectorize.
#[inline(always)]
fn non_finite(v: f32) -> u32 {
    const EXPONENT: u32 = 0x7f80_0000;
    ((v.to_bits() & EXPONENT) == EXPONENT) as u32
}

/// `w -= lr * update`, with the momentum buffer `buf` (empty when momentum is 0). Returns
/// whether every updated weight is finite.
pub fn sgd_update(s: SgdStep, w: &mut [f32], g: &[f32], buf: &mut [f32]) -> bool {
    assert_eq!(
        w.len(),
        g.len(),
        "sgd_update: weight and gradient sizes differ"
    );
    if s.momentum == 0.0 {
        let run = |w: &mut [f32], g: &[f32]| {
            let mut bad = 0;
            for (wi, &gi) in w.iter_mut().zip(g) {
                *wi -= s.lr * (gi + s.weight_decay * *wi);
                bad |= non_finite(*wi);
            }
            bad
        };
        let bad = if w.len() < PAR_MIN_ELEMENTS {
            run(w, g)
        } else {
            w.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .map(|(w, g)| run(w, g))
                .reduce(|| 0, |a, b| a | b)
        };
        return bad == 0;
    }
    assert_eq!(
        w.len(),
        buf.len(),
        "sgd_update: momentum buffer size differs"
    );
    let damp = if s.first { 1.0 } else { 1.0 - s.dampening };
    let mom = if s.first { 0.0 } else { s.momentum };
    let run = |w: &mut [f32], g: &[f32], b: &mut [f32]| {
        let mut bad = 0;
        if s.nesterov {
            for ((wi, &gi), bi) in w.iter_mut().zip(g).zip(b.iter_mut()) {
                let d = gi + s.weight_decay * *wi;
                *bi = mom * *bi + damp * d;
                *wi -= s.lr * (d + s.momentum * *bi);
                bad |= non_finite(*wi);
            }
        } else {
            for ((wi, &gi), bi) in w.iter_mut().zip(g).zip(b.iter_mut()) {
                let d = gi + s.weight_decay * *wi;
                *bi = mom * *bi + damp * d;
                *wi -= s.lr * *bi;
                bad |= non_finite(*wi);
            }
        }
        bad
    };
    let bad = if w.len() < PAR_MIN_ELEMENTS {
        run(w, g, buf)
    } else {
        w.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(buf.par_chunks_mut(CHUNK))
            .map(|((w, g), b)| run(w, g, b))
            .reduce(|| 0, |a, b| a | b)
    };
    bad == 0
}

/// Hyper-parameters of one Adam update at a given step.
#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    /// Learning rate.
    pub lr: f32,
    /// Decay of the first moment.
    pub beta1: f32,
    /// Decay of the second moment.
    pub beta2: f32,
    /// Added to the square root of the second moment.
    pub eps: f32,
    /// Weight decay (L2 for Adam, decoupled for AdamW).
    pub weight_decay: f32,
    /// AdamW: decay the weight directly instead of adding it to the gradient.
    pub decoupled: bool,
    /// Bias correction of the first moment, `1 - beta1^t`.
    pub bias_correction1: f32,
    /// Bias correction of the second moment, `1 - beta2^t`.
    pub bias_correction2: f32,
}

/// One Adam(W) update of `w` with first and second moments `m` and `v`. Returns whether
/// every updated weight is finite.
pub fn adam_update(s: AdamStep, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) -> bool {
    assert!(
        w.len() == g.len() && w.len() == m.len() && w.len() == v.len(),
        "adam_update: weight, gradient and moment sizes differ"
    );
    let decay = if s.decoupled {
        1.0 - s.lr * s.weight_decay
    } else {
        1.0
    };
    let coupled = if s.decoupled { 0.0 } else { s.weight_decay };
    let step = s.lr / s.bias_correction1;
    let inv_bc2 = 1.0 / s.bias_correction2;
    let run = |w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
        let mut bad = 0;
        for (((wi, &gi), mi), vi) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let gi = gi + coupled * *wi;
            *wi *= decay;
            *mi = s.beta1 * *mi + (1.0 - s.beta1) * gi;
            *vi = s.beta2 * *vi + (1.0 - s.beta2) * gi * gi;
            *wi -= step * *mi / ((*vi * inv_bc2).sqrt() + s.eps);
            bad |= non_finite(*wi);
        }
        bad
    };
    let bad = if w.len() < PAR_MIN_ELEMENTS {
        run(w, g, m, v)
    } else {
        w.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .map(|(((w, g), m), v)| run(w, g, m, v))
            .reduce(|| 0, |a, b| a | b)
    };
    bad == 0
}

/// SGD written out as `torch.optim.SGD`'s documentation states it, the oracle for
/// [`sgd_update`].
pub fn sgd_update_reference(s: SgdStep, w: &mut [f32], g: &[f32], buf: &mut [f32]) {
    for i in 0..w.len() {
        let mut d = g[i] + s.weight_decay * w[i];
        if s.momentum != 0.0 {
            buf[i] = if s.first {
                d
            } else {
                s.momentum * buf[i] + (1.0 - s.dampening) * d
            };
            d = if s.nesterov {
                d + s.momentum * buf[i]
            } else {
                buf[i]
            };
        }
        w[i] -= s.lr * d;
    }
}

/// Adam written out as `torch.optim.Adam(W)`'s documentation states it, the oracle for
/// [`adam_update`].
pub fn adam_update_reference(s: AdamStep, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    for i in 0..w.len() {
        let mut gi = g[i];
        if s.decoupled {
            w[i] *= 1.0 - s.lr * s.weight_decay;
        } else {
            gi += s.weight_decay * w[i];
        }
        m[i] = s.beta1 * m[i] + (1.0 - s.beta1) * gi;
        v[i] = s.beta2 * v[i] + (1.0 - s.beta2) * gi * gi;
        let m_hat = m[i] / s.bias_correction1;
        let v_hat = v[i] / s.bias_correction2;
        w[i] -= s.lr * m_hat / (v_hat.sqrt() + s.eps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_values::values;

    fn close(a: &[f32], b: &[f32], tol: f32) {
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= tol * (1.0 + y.abs()),
                "element {i}: {x} vs {y}"
            );
        }
    }

    #[test]
    fn sgd_matches_reference() {
        // Both sides of the parallel threshold, every variant.
        for n in [5, 3 * PAR_MIN_ELEMENTS + 7] {
            for (momentum, nesterov, dampening) in [
                (0.0, false, 0.0),
                (0.9, false, 0.0),
                (0.9, true, 0.0),
                (0.8, false, 0.3),
            ] {
                for first in [true, false] {
                    let s = SgdStep {
                        lr: 0.1,
                        momentum,
                        dampening,
                        weight_decay: 5e-4,
                        nesterov,
                        first,
                    };
                    let g = values(n, 1);
                    let (mut w1, mut b1) = (values(n, 2), values(n, 3));
                    let (mut w2, mut b2) = (w1.clone(), b1.clone());
                    let w0 = w1.clone();
                    sgd_update(s, &mut w1, &g, &mut b1);
                    sgd_update_reference(s, &mut w2, &g, &mut b2);
                    close(&w1, &w2, 1e-6);
                    if momentum != 0.0 {
                        close(&b1, &b2, 1e-6);
                    }
                    assert_ne!(w1, w0, "the update changed nothing");
                }
            }
        }
    }

    #[test]
    fn adam_matches_reference() {
        for n in [5, 3 * PAR_MIN_ELEMENTS + 7] {
            for decoupled in [false, true] {
                let s = AdamStep {
                    lr: 1e-3,
                    beta1: 0.9,
                    beta2: 0.999,
                    eps: 1e-8,
                    weight_decay: 0.1,
                    decoupled,
                    bias_correction1: 1.0 - 0.9f32.powi(3),
                    bias_correction2: 1.0 - 0.999f32.powi(3),
                };
                let g = values(n, 1);
                let (mut w1, mut m1) = (values(n, 2), values(n, 3));
                let mut v1: Vec<f32> = values(n, 4).iter().map(|x| x.abs()).collect();
                let (mut w2, mut m2, mut v2) = (w1.clone(), m1.clone(), v1.clone());
                adam_update(s, &mut w1, &g, &mut m1, &mut v1);
                adam_update_reference(s, &mut w2, &g, &mut m2, &mut v2);
                close(&w1, &w2, 1e-5);
                close(&m1, &m2, 1e-6);
                close(&v1, &v2, 1e-6);
            }
        }
    }

    #[test]
    fn updates_tell_whether_every_weight_stayed_finite() {
        // One bad gradient anywhere (the vector loop's body or its tail, in the serial and
        // the parallel path) and with any learning rate, 0 included.
        for n in [5, 37, 3 * PAR_MIN_ELEMENTS + 7] {
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                for at in [0, n / 2, n - 1] {
                    for lr in [0.1, 0.0] {
                        let mut g = values(n, 1);
                        let sgd = |g: &[f32], momentum: f32| {
                            let s = SgdStep {
                                lr,
                                momentum,
                                dampening: 0.0,
                                weight_decay: 0.0,
                                nesterov: false,
                                first: false,
                            };
                            let mut b = if momentum != 0.0 {
                                values(n, 3)
                            } else {
                                Vec::new()
                            };
                            sgd_update(s, &mut values(n, 2), g, &mut b)
                        };
                        let adam = |g: &[f32]| {
                            let s = AdamStep {
                                lr,
                                beta1: 0.9,
                                beta2: 0.999,
                                eps: 1e-8,
                                weight_decay: 0.01,
                                decoupled: true,
                                bias_correction1: 0.1,
                                bias_correction2: 0.001,
                            };
                            let (mut m, mut v) = (vec![0.0; n], vec![0.0; n]);
                            adam_update(s, &mut values(n, 2), g, &mut m, &mut v)
                        };
                        assert!(sgd(&g, 0.0) && sgd(&g, 0.9) && adam(&g), "finite n={n}");
                        g[at] = bad;
                        assert!(!sgd(&g, 0.0), "sgd n={n} at={at} {bad} lr={lr}");
                        assert!(!sgd(&g, 0.9), "momentum n={n} at={at} {bad} lr={lr}");
                        assert!(!adam(&g), "adam n={n} at={at} {bad} lr={lr}");
                    }
                }
            }
        }
    }
}

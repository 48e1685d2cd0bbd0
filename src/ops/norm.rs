//! Normalization layers: batch norm (statistics per channel over the batch and spatial
//! axes) and layer norm (statistics over the last dimensions of each sample), with
//! PyTorch's semantics. The kernels are in `crate::kernels::norm`; the forward saves the
//! `mean` and `rstd` it used for the backward.

use crate::gradcheck::Case;
use crate::kernels::epilogue::Epilogue;
use crate::kernels::norm as k;
use crate::ops::Family;
use crate::runtime::buffers;
use crate::tensor::Tensor;
use super::norm_sync::{global_means, global_stats, Alone, StatsSync};

/// The values of an optional per-feature parameter, checked to have shape `shape`.
fn param_values(
    t: Option<&Tensor>,
    shape: &[usize],
    op: &str,
    what: &str,
    input: &[usize],
) -> Option<Vec<f32>> {
    t.map(|t| {
        assert_eq!(
            t.shape(),
            shape,
            "{op}: {what} has shape {:?}, expected {shape:?} for input of shape {input:?}",
            t.shape()
        );
        t.to_vec()
    })
}

/// Gathers `x` and the optional parameters into the input list of an op, and maps the
/// kernel's gradients back to one entry per input.
fn grads_for(dx: Tensor, dw: Option<Tensor>, db: Option<Tensor>) -> Vec<Option<Tensor>> {
    let mut out = vec![Some(dx)];
    out.extend(dw.map(Some));
    out.extend(db.map(Some));
    out
}

/// `1 / sqrt(running_var + eps)` per channel: batch norm's scale in evaluation.
fn eval_rstd(running_var: &Tensor, eps: f32) -> Vec<f32> {
    running_var
        .to_vec()
        .iter()
        .map(|v| 1.0 / (v + eps).sqrt())
        .collect()
}

/// A batch norm's per-channel map as the kernels take it: its affine step and, when `relu`,
/// the ReLU fused after it.
fn channel_map<'a>(scale: &'a [f32], shift: &'a [f32], relu: bool) -> Epilogue<'a> {
    Epilogue {
        affine: Some((scale, shift)),
        relu,
        ..Epilogue::default()
    }
}

/// Which statistics a batch norm normalizes by.
pub(super) enum Mode {
    /// The running ones (eval mode).
    Running,
    /// This batch's (training mode).
    Batch,
    /// Those of the global batch this one is part of (training mode, synchronized).
    Synced(std::sync::Arc<dyn StatsSync>),
}

impl Tensor {
    /// Batch normalization of `[N, C, *]` (`[N, C]` as BatchNorm1d, `[N, C, H, W]` as
    /// BatchNorm2d), as PyTorch's `F.batch_norm`: statistics per channel (axis 1) over all
    /// other axes, then `* weight + bias` (each `[C]`, optional).
    ///
    /// Training mode normalizes with the batch mean and biased variance and, when given,
    /// updates the running statistics in place: `running = (1 - momentum) * running +
    /// momentum * batch`, with the unbiased variance for `running_var`. Eval mode normalizes
    /// with the running statistics (then required).
    #[allow(clippy::too_many_arguments)]
    pub fn batch_norm(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        running_mean: Option<&Tensor>,
        running_var: Option<&Tensor>,
        training: bool,
        momentum: f32,
        eps: f32,
    ) -> Tensor {
        let stats = (running_mean, running_var, momentum);
        self.batch_norm_then(weight, bias, stats, training, eps, false)
    }

    /// `batch_norm(...).relu()` in one pass over memory, forward and backward (the values
    /// and gradients are the composite's): the ReLU of a ResNet block after its first batch
    /// norm. Arguments as [`Tensor::batch_norm`].
    #[allow(clippy::too_many_arguments)]
    pub fn batch_norm_relu(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        running_mean: Option<&Tensor>,
        running_var: Option<&Tensor>,
        training: bool,
        momentum: f32,
        eps: f32,
    ) -> Tensor {
        let stats = (running_mean, running_var, momentum);
        self.batch_norm_then(weight, bias, stats, training, eps, true)
    }

    /// The per-channel `(scale, shift)` of batch norm in evaluation: `x * scale + shift` is
    /// what [`Tensor::batch_norm`] computes with `training = false`, value for value.
    pub fn batch_norm_eval_affine(
        weight: &Tensor,
        bias: &Tensor,
        running_mean: &Tensor,
        running_var: &Tensor,
        eps: f32,
    ) -> (Vec<f32>, Vec<f32>) {
        let rstd = eval_rstd(running_var, eps);
        let (w, b) = (weight.to_vec(), bias.to_vec());
        k::channel_affine(&running_mean.to_vec(), &rstd, Some(&w), Some(&b))
    }

    /// Batch norm with its running `(mean, var, momentum)`, followed by a ReLU in the same
    /// passes when `relu`.
    fn batch_norm_then(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        stats: (Option<&Tensor>, Option<&Tensor>, f32),
        training: bool,
        eps: f32,
        relu: bool,
    ) -> Tensor {
        let mode = if training { Mode::Batch } else { Mode::Running };
        self.batch_norm_impl(weight, bias, stats, mode, eps, relu)
    }

    /// Batch norm in any [`Mode`], with its running `(mean, var, momentum)`.
    pub(super) fn batch_norm_impl(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        (running_mean, running_var, momentum): (Option<&Tensor>, Option<&Tensor>, f32),
        mode: Mode,
        eps: f32,
        relu: bool,
    ) -> Tensor {
        let training = !matches!(mode, Mode::Running);
        let op = if relu {
            "batch_norm_relu"
        } else {
            "batch_norm"
        };
        let shape = self.shape().to_vec();
        assert!(
            shape.len() >= 2,
            "batch_norm: input must be [N, C, *], got shape {shape:?}"
        );
        let (n, c, inner) = (shape[0], shape[1], shape[2..].iter().product::<usize>());
        let w = param_values(weight, &[c], "batch_norm", "weight", &shape);
        let b = param_values(bias, &[c], "batch_norm", "bias", &shape);
        for (t, what) in [(running_mean, "running_mean"), (running_var, "running_var")] {
            if let Some(t) = t {
                assert_eq!(t.shape(), &[c], "batch_norm: {what} has shape {:?}, expected [{c}] for input of shape {shape:?}", t.shape());
            }
        }
        let x = self.detach().contiguous(); // [N, C, *]
        // The values per channel the statistics are over (the global batch's when synced).
        let mut total = n * inner;
        let (mean, rstd) = if training {
            let count = n * inner;
            assert!(count > 1, "batch_norm: expected more than 1 value per channel when training, got input of shape {shape:?}");
            let (mean, var) = x.with_slice(|xs| k::batch_norm_stats(xs, n, c, inner)); // [C], [C]
            let (mean, var, count) = match &mode {
                Mode::Synced(sync) => global_stats(&**sync, &mean, &var, count),
                _ => (mean, var, count),
            };
            total = count;
            let unbiased = count as f32 / (count - 1) as f32;
            if let Some(rm) = running_mean {
                rm.with_slice_mut(|r| {
                    r.iter_mut()
                        .zip(&mean)
                        .for_each(|(r, &m)| *r = (1.0 - momentum) * *r + momentum * m)
                });
            }
            if let Some(rv) = running_var {
                rv.with_slice_mut(|r| {
                    r.iter_mut()
                        .zip(&var)
                        .for_each(|(r, &v)| *r = (1.0 - momentum) * *r + momentum * v * unbiased)
                });
            }
            (
                mean,
                var.iter()
                    .map(|v| 1.0 / (v + eps).sqrt())
                    .collect::<Vec<f32>>(),
            )
        } else {
            let (Some(rm), Some(rv)) = (running_mean, running_var) else {
                panic!("batch_norm: eval mode (training = false) needs running_mean and running_var (input shape {shape:?})")
            };
            (rm.to_vec(), eval_rstd(rv, eps))
        };
        let (scale, shift) = k::channel_affine(&mean, &rstd, w.as_deref(), b.as_deref());
        let mut out = buffers::take(x.numel());
        x.with_slice(|xs| {
            k::batch_norm_apply(xs, channel_map(&scale, &shift, relu), &mut out, inner)
        });
        let mut inputs = vec![self];
        inputs.extend(weight);
        inputs.extend(bias);
        let (has_w, has_b) = (weight.is_some(), bias.is_some());
        Tensor::from_op(out, &shape, op, &inputs, move |g| {
            let mut dx = buffers::take(x.numel());
            let (dw, db) = g.with_slice(|dy| {
                x.with_slice(|xs| {
                    let map = channel_map(&scale, &shift, relu);
                    let global;
                    let stats = match &mode {
                        Mode::Running => k::StatsGrad::Constant,
                        Mode::Batch => k::StatsGrad::Batch,
                        Mode::Synced(sync) => {
                            global = |dw: &[f32], db: &[f32]| global_means(&**sync, dw, db, total);
                            k::StatsGrad::Global(&global)
                        }
                    };
                    k::batch_norm_backward(xs, dy, &mean, &rstd, map, &mut dx, n, inner, stats)
                })
            });
            grads_for(
                Tensor::from_vec(dx, x.shape()),
                has_w.then(|| Tensor::from_vec(dw, &[c])),
                has_b.then(|| Tensor::from_vec(db, &[c])),
            )
        })
    }

    /// Layer normalization over the trailing dimensions `normalized_shape` (PyTorch's
    /// `F.layer_norm`): each sample is normalized with its own mean and biased variance,
    /// then `* weight + bias` (each of shape `normalized_shape`, optional).
    pub fn layer_norm(
        &self,
        normalized_shape: &[usize],
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
    ) -> Tensor {
        let shape = self.shape().to_vec();
        let r = normalized_shape.len();
        assert!(
            r >= 1 && r <= shape.len() && shape[shape.len() - r..] == *normalized_shape,
            "layer_norm: normalized_shape {normalized_shape:?} is not the trailing dimensions of input shape {shape:?}"
        );
        let cols: usize = normalized_shape.iter().product();
        let rows = self.numel().checked_div(cols).unwrap_or(0);
        let w = param_values(weight, normalized_shape, "layer_norm", "weight", &shape);
        let b = param_values(bias, normalized_shape, "layer_norm", "bias", &shape);
        let x = self.detach().contiguous(); // [rows, cols]
        let (mut out, mut mean, mut rstd) =
            (buffers::take(x.numel()), vec![0.0; rows], vec![0.0; rows]);
        x.with_slice(|xs| {
            k::layer_norm_forward(
                xs,
                w.as_deref(),
                b.as_deref(),
                &mut out,
                &mut mean,
                &mut rstd,
                cols,
                eps,
            )
        });
        let mut inputs = vec![self];
        inputs.extend(weight);
        inputs.extend(bias);
        let (has_w, has_b, pshape) = (weight.is_some(), bias.is_some(), normalized_shape.to_vec());
        Tensor::from_op(out, &shape, "layer_norm", &inputs, move |g| {
            let mut dx = buffers::take(x.numel());
            let (dw, db) = g.with_slice(|dy| {
                x.with_slice(|xs| {
                    k::layer_norm_backward(xs, dy, &mean, &rstd, w.as_deref(), &mut dx, cols)
                })
            });
            grads_for(
                Tensor::from_vec(dx, x.shape()),
                has_w.then(|| Tensor::from_vec(dw, &pshape)),
                has_b.then(|| Tensor::from_vec(db, &pshape)),
            )
        })
    }
}

/// `[n, c, 1, inner]` values whose every channel holds the pairs `±(0.05 k + 0.025)`, in a
/// scattered order: mean 0, no value near it.
fn symmetric_channels(n: usize, c: usize, inner: usize) -> Tensor {
    let per_channel = n * inner;
    assert!(
        per_channel.is_multiple_of(2),
        "symmetric_channels: an odd count per channel"
    );
    let mut v = vec![0.0; n * c * inner];
    for ch in 0..c {
        for j in 0..per_channel {
            let magnitude = (j / 2) as f32 * 0.05 + 0.025;
            let value = if j % 2 == 0 { magnitude } else { -magnitude };
            // Position `j * 7 mod per_channel` (7 is coprime with the even counts used).
            let at = (j * 7 + ch) % per_channel;
            let (s, i) = (at / inner, at % inner);
            v[(s * c + ch) * inner + i] = value;
        }
    }
    Tensor::from_vec(v, &[n, c, 1, inner])
}

/// The ops of this module and their gradient checks (a row of [`crate::ops::FAMILIES`]).
pub(crate) const FAMILY: Family = Family {
    name: "norm",
    ops: &["batch_norm", "batch_norm_relu", "layer_norm"],
    cases: gradcheck_cases,
};


fn gradcheck_cases() -> Vec<Case> {
    let any = |shape: &[usize]| Tensor::randn(shape, 0.0, 1.0);
    let around_one = |shape: &[usize]| Tensor::rand(shape, 0.5, 1.5);
    vec![
        // Training mode: the gradient flows through the batch statistics.
        Case::new(
            "batch_norm",
            vec![any(&[5, 3]), around_one(&[3]), any(&[3])],
            |x| x[0].batch_norm(Some(&x[1]), Some(&x[2]), None, None, true, 0.1, 1e-5),
        ),
        Case::new(
            "batch_norm",
            vec![any(&[3, 2, 3, 5]), around_one(&[2]), any(&[2])],
            |x| x[0].batch_norm(Some(&x[1]), Some(&x[2]), None, None, true, 0.1, 1e-5),
        ),
        Case::new("batch_norm", vec![any(&[2, 3, 2, 3])], |x| {
            x[0].batch_norm(None, None, None, None, true, 0.1, 1e-5)
                .exp()
        }),
        // Synchronized over one process (the sums are its own): the gradient through the
        // global statistics, assembled as the synced path does.
        Case::new(
            "batch_norm",
            vec![any(&[3, 2, 2, 3]), around_one(&[2]), any(&[2])],
            |x| {
                let sync = std::sync::Arc::new(Alone);
                x[0].batch_norm_synced(Some(&x[1]), Some(&x[2]), None, None, 0.1, 1e-5, false, sync)
                    .exp()
            },
        ),
        Case::new(
            "batch_norm_relu",
            vec![any(&[4, 3]), around_one(&[3]), any(&[3])],
            |x| {
                let sync = std::sync::Arc::new(Alone);
                x[0].batch_norm_synced(Some(&x[1]), Some(&x[2]), None, None, 0.1, 1e-5, true, sync)
            },
        ),
        // Training with running statistics (constants, updated at each call) does not change the gradient.
        Case::new(
            "batch_norm",
            vec![
                any(&[4, 3]),
                around_one(&[3]),
                any(&[3]),
                Tensor::zeros(&[3]),
                Tensor::ones(&[3]),
            ],
            |x| {
                x[0].batch_norm(
                    Some(&x[1]),
                    Some(&x[2]),
                    Some(&x[3]),
                    Some(&x[4]),
                    true,
                    0.1,
                    1e-5,
                )
            },
        )
        .constant(3)
        .constant(4),
        // Eval mode: the running statistics are constants, the op is affine.
        Case::new(
            "batch_norm",
            vec![
                any(&[3, 2, 3, 3]),
                around_one(&[2]),
                any(&[2]),
                any(&[2]),
                around_one(&[2]),
            ],
            |x| {
                x[0].batch_norm(
                    Some(&x[1]),
                    Some(&x[2]),
                    Some(&x[3]),
                    Some(&x[4]),
                    false,
                    0.1,
                    1e-5,
                )
            },
        )
        .constant(3)
        .constant(4),
        // The fused ReLU, in both modes, with the kink kept away from every value. Eval:
        // distinct values (none within 0.025 of 0), mean 0 and bias 0. Training: each channel's values come in pairs
        // `±(0.05 k + 0.025)`, so its mean is 0 and with bias 0 every normalized value stays
        // at least 0.03 from the kink, which a finite-difference step never crosses (17 =
        // 2 x 8 + 1 values per run: lanes and a tail).
        Case::new(
            "batch_norm_relu",
            vec![
                symmetric_channels(2, 2, 17),
                Tensor::from_vec(vec![1.2, 0.7], &[2]),
                Tensor::zeros(&[2]),
            ],
            |x| x[0].batch_norm_relu(Some(&x[1]), Some(&x[2]), None, None, true, 0.1, 1e-5),
        )
        .eps(1e-3),
        Case::new(
            "batch_norm_relu",
            vec![
                Case::distinct(&[3, 2, 3, 3]),
                around_one(&[2]),
                Tensor::zeros(&[2]),
                Tensor::zeros(&[2]),
                around_one(&[2]),
            ],
            |x| {
                x[0].batch_norm_relu(
                    Some(&x[1]),
                    Some(&x[2]),
                    Some(&x[3]),
                    Some(&x[4]),
                    false,
                    0.1,
                    1e-5,
                )
            },
        )
        .eps(1e-3)
        .constant(3)
        .constant(4),
        Case::new(
            "layer_norm",
            vec![any(&[4, 7]), around_one(&[7]), any(&[7])],
            |x| x[0].layer_norm(&[7], Some(&x[1]), Some(&x[2]), 1e-5),
        ),
        Case::new(
            "layer_norm",
            vec![any(&[2, 3, 2, 5]), around_one(&[2, 5]), any(&[2, 5])],
            |x| x[0].layer_norm(&[2, 5], Some(&x[1]), Some(&x[2]), 1e-5),
        ),
        Case::new("layer_norm", vec![any(&[3, 6])], |x| {
            x[0].layer_norm(&[6], None, None, 1e-5).exp()
        }),
        // Rows longer than the kernels' eight lanes, with a tail: [2, 19] = 2 x 8 + 3.
        Case::new(
            "layer_norm",
            vec![any(&[2, 19]), around_one(&[19]), any(&[19])],
            |x| x[0].layer_norm(&[19], Some(&x[1]), Some(&x[2]), 1e-5),
        ),
        Case::new("layer_norm", vec![any(&[2, 17])], |x| {
            x[0].layer_norm(&[17], None, None, 1e-5).exp()
        }),
        Case::new("layer_norm", vec![any(&[2, 17]), around_one(&[17])], |x| {
            x[0].layer_norm(&[17], Some(&x[1]), None, 1e-5).exp()
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kernels::test_values::assert_close;

    #[test]
    fn batch_norm_training_output_and_running_statistics_by_hand() {
        // Channel 0 = [1, 2, 3, 4]: mean 2.5, biased var 1.25, unbiased 5/3.
        // Channel 1 = [2, 4, 6, 8]: mean 5, biased var 5, unbiased 20/3.
        let x = Tensor::from_vec(vec![1.0, 2.0, 2.0, 4.0, 3.0, 6.0, 4.0, 8.0], &[4, 2]);
        let (w, b) = (
            Tensor::from_vec(vec![2.0, 1.0], &[2]),
            Tensor::from_vec(vec![0.0, 1.0], &[2]),
        );
        let (rm, rv) = (Tensor::zeros(&[2]), Tensor::ones(&[2]));
        let y = x.batch_norm(Some(&w), Some(&b), Some(&rm), Some(&rv), true, 0.1, 1e-5);
        let expected = [
            -2.6832708,
            -0.34163944,
            -0.8944236,
            0.552_786_9,
            0.8944236,
            1.447_213,
            2.6832708,
            2.3416395,
        ];
        assert_close(&y.to_vec(), &expected, 1e-5);
        assert_close(&rm.to_vec(), &[0.25, 0.5], 1e-6);
        assert_close(
            &rv.to_vec(),
            &[0.9 + 0.1 * 5.0 / 3.0, 0.9 + 0.1 * 20.0 / 3.0],
            1e-6,
        );
        // Eval mode uses the running statistics: (x - 0.25) / sqrt(1.0666667 + eps) * 2, ...
        let e = Tensor::from_vec(vec![1.0, 2.0, 5.0, -1.0], &[2, 2]).batch_norm(
            Some(&w),
            Some(&b),
            Some(&rm),
            Some(&rv),
            false,
            0.1,
            1e-5,
        );
        assert_close(
            &e.to_vec(),
            &[1.452_362, 2.198_399_4, 9.198_292, -0.198_399_37],
            1e-5,
        );
        assert_close(&rm.to_vec(), &[0.25, 0.5], 0.0);
    }

    #[test]
    fn batch_norm_2d_statistics_span_batch_and_space() {
        // [N=2, C=2, H=1, W=2]: channel 0 = {1, 2, 5, 6}, channel 1 = {3, 4, 7, 8}; both have
        // biased var 4.25 and unbiased 17/3.
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], &[2, 2, 1, 2]);
        let (rm, rv) = (Tensor::zeros(&[2]), Tensor::ones(&[2]));
        let y = x
            .batch_norm(None, None, Some(&rm), Some(&rv), true, 0.1, 0.0)
            .to_vec();
        let z = |v: f32| v / 4.25f32.sqrt();
        assert_close(
            &y,
            &[
                z(-2.5),
                z(-1.5),
                z(-2.5),
                z(-1.5),
                z(1.5),
                z(2.5),
                z(1.5),
                z(2.5),
            ],
            1e-6,
        );
        assert_close(&rm.to_vec(), &[0.35, 0.55], 1e-6);
        assert_close(&rv.to_vec(), &[0.9 + 0.1 * 17.0 / 3.0; 2], 1e-6);
    }

    #[test]
    fn batch_norm_relu_matches_batch_norm_then_relu() {
        for training in [true, false] {
            let x = Tensor::randn(&[4, 3, 5, 5], 0.2, 1.5).requires_grad_();
            let w = Tensor::rand(&[3], 0.5, 1.5).requires_grad_();
            let b = Tensor::randn(&[3], 0.0, 1.0).requires_grad_();
            let r = Tensor::randn(&[4, 3, 5, 5], 0.0, 1.0);
            let (rm, rv) = (Tensor::randn(&[3], 0.0, 0.5), Tensor::rand(&[3], 0.5, 2.0));
            let run = |fused: bool| {
                let copy = |t: &Tensor| Tensor::from_vec(t.to_vec(), t.shape());
                let (rm, rv) = (copy(&rm), copy(&rv));
                let args = (Some(&w), Some(&b), Some(&rm), Some(&rv));
                let y = if fused {
                    x.batch_norm_relu(args.0, args.1, args.2, args.3, training, 0.1, 1e-5)
                } else {
                    x.batch_norm(args.0, args.1, args.2, args.3, training, 0.1, 1e-5)
                        .relu()
                };
                y.mul(&r).sum_all().backward().unwrap();
                let grads: Vec<Vec<f32>> = [&x, &w, &b]
                    .iter()
                    .map(|t| t.grad().unwrap().to_vec())
                    .collect();
                [&x, &w, &b].iter().for_each(|t| t.zero_grad());
                (y.to_vec(), grads, rm.to_vec(), rv.to_vec())
            };
            let (fused, composite) = (run(true), run(false));
            assert!(fused.0.contains(&0.0) && fused.0.iter().any(|&v| v > 0.0));
            assert_eq!(fused.0, composite.0, "training={training}: values");
            for (f, c) in fused.1.iter().zip(&composite.1) {
                assert_close(f, c, 1e-5);
            }
            assert_eq!((fused.2, fused.3), (composite.2, composite.3));
        }
    }

    #[test]
    fn batch_norm_backward_matches_the_composite_of_primitive_ops() {
        let x = Tensor::randn(&[3, 2, 2, 3], 0.5, 2.0).requires_grad_();
        let w = Tensor::rand(&[2], 0.5, 1.5).requires_grad_();
        let b = Tensor::randn(&[2], 0.0, 1.0).requires_grad_();
        let r = Tensor::randn(&[3, 2, 2, 3], 0.0, 1.0);
        x.batch_norm(Some(&w), Some(&b), None, None, true, 0.1, 1e-5)
            .mul(&r)
            .sum_all()
            .backward().unwrap();
        let fused: Vec<Vec<f32>> = [&x, &w, &b]
            .iter()
            .map(|t| t.grad().unwrap().to_vec())
            .collect();
        [&x, &w, &b].iter().for_each(|t| t.zero_grad());
        let mean = x.mean_axes(&[0, 2, 3], true);
        let centered = x.sub(&mean);
        let var = centered.mul(&centered).mean_axes(&[0, 2, 3], true);
        let y = centered
            .div(&var.add_scalar(1e-5).sqrt())
            .mul(&w.reshape(&[2, 1, 1]))
            .add(&b.reshape(&[2, 1, 1]));
        y.mul(&r).sum_all().backward().unwrap();
        for (f, t) in fused.iter().zip([&x, &w, &b]) {
            assert_close(f, &t.grad().unwrap().to_vec(), 1e-4);
        }
    }

    #[test]
    fn layer_norm_backward_matches_the_composite_of_primitive_ops() {
        // 300 rows: the parameter gradients are summed from several threads' partial sums.
        let x = Tensor::randn(&[300, 33], 0.5, 2.0).requires_grad_();
        let w = Tensor::rand(&[33], 0.5, 1.5).requires_grad_();
        let b = Tensor::randn(&[33], 0.0, 1.0).requires_grad_();
        let r = Tensor::randn(&[300, 33], 0.0, 1.0);
        x.layer_norm(&[33], Some(&w), Some(&b), 1e-5)
            .mul(&r)
            .sum_all()
            .backward().unwrap();
        let fused: Vec<Vec<f32>> = [&x, &w, &b]
            .iter()
            .map(|t| t.grad().unwrap().to_vec())
            .collect();
        [&x, &w, &b].iter().for_each(|t| t.zero_grad());
        let centered = x.sub(&x.mean(-1, true));
        let var = centered.mul(&centered).mean(-1, true);
        centered
            .div(&var.add_scalar(1e-5).sqrt())
            .mul(&w)
            .add(&b)
            .mul(&r)
            .sum_all()
            .backward().unwrap();
        for (f, t) in fused.iter().zip([&x, &w, &b]) {
            assert_close(f, &t.grad().unwrap().to_vec(), 2e-4);
        }
    }

    #[test]
    fn layer_norm_of_known_values() {
        // [1, 2, 3, 4]: mean 2.5, biased var 1.25.
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[1, 4]);
        let w = Tensor::from_vec(vec![1.0, 2.0, 1.0, 0.5], &[4]);
        let b = Tensor::from_vec(vec![0.0, 0.0, 1.0, 1.0], &[4]);
        let y = x.layer_norm(&[4], Some(&w), Some(&b), 1e-5).to_vec();
        assert_close(&y, &[-1.3416354, -0.8944236, 1.4472118, 1.6708177], 1e-5);
    }

    #[test]
    #[should_panic(
        expected = "batch_norm: eval mode (training = false) needs running_mean and running_var (input shape [2, 3])"
    )]
    fn batch_norm_eval_without_running_statistics_panics() {
        Tensor::zeros(&[2, 3]).batch_norm(None, None, None, None, false, 0.1, 1e-5);
    }

    #[test]
    #[should_panic(
        expected = "layer_norm: normalized_shape [3] is not the trailing dimensions of input shape [2, 4]"
    )]
    fn layer_norm_rejects_a_wrong_normalized_shape() {
        Tensor::zeros(&[2, 4]).layer_norm(&[3], None, None, 1e-5);
    }
}

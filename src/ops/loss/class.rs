//! The class-index losses: `nll_loss` (log-probabilities in) and `cross_entropy_opts`
//! (logits in), with PyTorch's class weights, `ignore_index`, label smoothing and
//! reduction. Rows are `[N, C]`; targets are class indices, one per row.
//!
//! With class weights `w`, a row's loss is weighted by its target's weight, and the
//! [`Reduction::Mean`] divides by the sum of the counted targets' weights (not by `N`), as
//! PyTorch does; ignored rows count neither in the sum nor in the divisor. Label smoothing
//! mixes in `s / C` of `sum_j w_j (-ln p_j)` per row, divided by the same weight sum.

use super::Reduction;
use crate::gradcheck::Case;
use crate::tensor::{AsIndices, Tensor};

/// Options of [`Tensor::nll_loss`]; `NllLoss::default()` is PyTorch's defaults (no weights,
/// no ignored class, mean).
#[derive(Clone, Copy, Debug, Default)]
pub struct NllLoss<'a> {
    /// A weight per class, `[C]` (`None`: 1 each).
    pub weight: Option<&'a Tensor>,
    /// Rows whose target is this value add nothing to the loss or its divisor (PyTorch's
    /// `ignore_index`; the value may lie outside `0..C`, for padding).
    pub ignore_index: Option<usize>,
    /// How the per-row losses are reduced.
    pub reduction: Reduction,
}

/// Options of [`Tensor::cross_entropy_opts`]; `CrossEntropy::default()` is PyTorch's
/// defaults (and then the same as [`Tensor::cross_entropy`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct CrossEntropy<'a> {
    /// A weight per class, `[C]` (`None`: 1 each).
    pub weight: Option<&'a Tensor>,
    /// The target distribution is `(1 - s) * onehot + s / C`, `s` in `[0, 1]`.
    pub label_smoothing: f32,
    /// How the per-row losses are reduced.
    pub reduction: Reduction,
    /// Rows whose target is this value add nothing to the loss or its divisor.
    pub ignore_index: Option<usize>,
}

/// The checked settings shared by both losses.
struct Rows {
    rows: usize,
    classes: usize,
    /// The class weights, `[C]` (all 1 without weights).
    weight: Vec<f32>,
    /// Each row's target, `None` for an ignored row.
    targets: Vec<Option<usize>>,
    /// The divisor of a mean: the sum of the counted targets' weights.
    weight_sum: f64,
}

impl Rows {
    /// Checks `x` (`[N, C]`), the targets and the weights, naming the op in each message.
    fn new(
        name: &str,
        x: &Tensor,
        targets: &[usize],
        weight: Option<&Tensor>,
        ignore: Option<usize>,
    ) -> Rows {
        assert_eq!(
            x.rank(),
            2,
            "{name}: the input must be [N, C], got shape {:?}",
            x.shape()
        );
        let (rows, classes) = (x.shape()[0], x.shape()[1]);
        assert_eq!(
            targets.len(),
            rows,
            "{name}: {} targets for an input of shape {:?} (one target per row)",
            targets.len(),
            x.shape()
        );
        let weight = match weight {
            Some(w) => {
                assert_eq!(
                    w.shape(),
                    &[classes],
                    "{name}: the class weights must be [{classes}] (one per class), got shape {:?}",
                    w.shape()
                );
                w.to_vec()
            }
            None => vec![1.0; classes],
        };
        let targets: Vec<Option<usize>> = targets
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                if Some(t) == ignore {
                    return None;
                }
                assert!(
                    t < classes,
                    "{name}: target {t} at position {i} is out of range for an input of shape {:?}",
                    x.shape()
                );
                Some(t)
            })
            .collect();
        let weight_sum = targets.iter().flatten().map(|&t| weight[t] as f64).sum();
        Rows {
            rows,
            classes,
            weight,
            targets,
            weight_sum,
        }
    }
}

impl Tensor {
    /// Negative log-likelihood of log-probabilities `[N, C]` (this tensor, e.g. from
    /// [`Tensor::log_softmax`]) at the class indices `targets` (`N` of them), PyTorch's
    /// `nll_loss`: row `i` gives `-w[t_i] * x[i, t_i]`.
    ///
    /// ```
    /// use neurite::ops::loss::{NllLoss, Reduction};
    /// use neurite::Tensor;
    /// let log_probs = Tensor::from_vec(vec![-0.5, -1.0, -2.0, -0.1], &[2, 2]);
    /// assert_eq!(log_probs.nll_loss(&[1, 0], NllLoss::default()).item(), 1.5);
    /// let w = Tensor::from_vec(vec![3.0, 1.0], &[2]);
    /// let opts = NllLoss { weight: Some(&w), ..Default::default() };
    /// // (1 * 1.0 + 3 * 2.0) / (1 + 3)
    /// assert_eq!(log_probs.nll_loss(&[1, 0], opts).item(), 1.75);
    /// ```
    pub fn nll_loss(&self, targets: impl AsIndices, opts: NllLoss<'_>) -> Tensor {
        let targets = targets.indices("nll_loss");
        let targets: &[usize] = &targets;
        let r = Rows::new("nll_loss", self, targets, opts.weight, opts.ignore_index);
        let x = self.detach().contiguous();
        let losses: Vec<f32> = x.with_slice(|xs| {
            (0..r.rows)
                .map(|i| match r.targets[i] {
                    Some(t) => -r.weight[t] * xs[i * r.classes + t],
                    None => 0.0,
                })
                .collect()
        });
        let reduction = opts.reduction;
        let (data, shape) = reduction.apply(losses, &[r.rows], r.weight_sum);
        Tensor::from_op(data, &shape, "nll_loss", &[self], move |g| {
            let scales = reduction.scales(g, r.weight_sum);
            let mut dx = vec![0.0; r.rows * r.classes];
            for (i, t) in r.targets.iter().enumerate() {
                if let Some(t) = *t {
                    dx[i * r.classes + t] = -r.weight[t] * scales.at(i);
                }
            }
            vec![Some(Tensor::from_vec(dx, &[r.rows, r.classes]))]
        })
    }

    /// Cross-entropy of logits `[N, C]` (this tensor) at the class indices `targets`, with
    /// PyTorch's `cross_entropy` options together: class weights, label smoothing,
    /// reduction and `ignore_index` (see [`CrossEntropy`]). Row `i` gives
    /// `(1 - s) w[t] (-ln p[t]) + (s / C) sum_j w[j] (-ln p[j])`, `p` the row's softmax.
    /// Without weights, ignored rows or reduction it is [`Tensor::cross_entropy_with`]
    /// (the fused kernel).
    ///
    /// ```
    /// use neurite::ops::loss::{CrossEntropy, Reduction};
    /// use neurite::Tensor;
    /// let logits = Tensor::from_vec(vec![1.0, 2.0, 3.0, 0.0, 0.0, 0.0], &[2, 3]); // [N, C]
    /// let weight = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]);
    /// let opts = CrossEntropy {
    ///     weight: Some(&weight),
    ///     label_smoothing: 0.1,
    ///     reduction: Reduction::Mean,
    ///     ignore_index: None,
    /// };
    /// // F.cross_entropy(logits, [2, 0], weight=[1, 2, 3], label_smoothing=0.1) = 0.630966
    /// let loss = logits.cross_entropy_opts(&[2, 0], opts);
    /// assert!((loss.item() - 0.630966).abs() < 1e-6);
    /// ```
    pub fn cross_entropy_opts(&self, targets: impl AsIndices, opts: CrossEntropy<'_>) -> Tensor {
        let targets = targets.indices("cross_entropy_opts");
        let targets: &[usize] = &targets;
        let s = opts.label_smoothing;
        assert!(
            (0.0..=1.0).contains(&s),
            "cross_entropy_opts: label_smoothing must be in [0, 1], got {s}"
        );
        let plain = opts.weight.is_none()
            && opts.ignore_index.is_none()
            && opts.reduction == Reduction::Mean;
        if plain {
            return self.cross_entropy_with(targets, s);
        }
        let name = "cross_entropy_opts";
        let r = Rows::new(name, self, targets, opts.weight, opts.ignore_index);
        let x = self.detach().contiguous();
        let c = r.classes;
        let weight_total: f64 = r.weight.iter().map(|&w| w as f64).sum();
        // Each row's log-sum-exp, kept for backward; the softmax is exp(x - lse).
        let lse: Vec<f64> = x.with_slice(|xs| {
            xs.chunks(c.max(1))
                .take(r.rows)
                .map(|row| {
                    let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
                    m + row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln()
                })
                .collect()
        });
        let losses: Vec<f32> = x.with_slice(|xs| {
            (0..r.rows)
                .map(|i| {
                    let Some(t) = r.targets[i] else { return 0.0 };
                    let row = &xs[i * c..(i + 1) * c];
                    let nll = r.weight[t] as f64 * (lse[i] - row[t] as f64);
                    let smooth: f64 = (row.iter().zip(&r.weight))
                        .map(|(&v, &w)| w as f64 * (lse[i] - v as f64))
                        .sum();
                    ((1.0 - s as f64) * nll + s as f64 / c as f64 * smooth) as f32
                })
                .collect()
        });
        let reduction = opts.reduction;
        let (data, shape) = reduction.apply(losses, &[r.rows], r.weight_sum);
        Tensor::from_op(data, &shape, name, &[self], move |g| {
            let scales = reduction.scales(g, r.weight_sum);
            let mut dx = vec![0.0; r.rows * c];
            x.with_slice(|xs| {
                for i in 0..r.rows {
                    let Some(t) = r.targets[i] else { continue };
                    let scale = scales.at(i) as f64;
                    let (hard, soft) = (
                        (1.0 - s as f64) * r.weight[t] as f64,
                        s as f64 / c as f64,
                    );
                    // d/dx_j = (1 - s) w_t (p_j - [j = t]) + (s / C) (W p_j - w_j)
                    for j in 0..c {
                        let p = (xs[i * c + j] as f64 - lse[i]).exp();
                        let onehot = if j == t { 1.0 } else { 0.0 };
                        let d = hard * (p - onehot) + soft * (weight_total * p - r.weight[j] as f64);
                        dx[i * c + j] = (scale * d) as f32;
                    }
                }
            });
            vec![Some(Tensor::from_vec(dx, &[r.rows, c]))]
        })
    }
}

/// The gradient checks of `nll_loss` and `cross_entropy_opts`.
pub(super) fn gradcheck_cases() -> Vec<Case> {
    let any = |shape: &[usize]| Tensor::randn(shape, 0.0, 1.5);
    let weight = || Tensor::rand(&[4], 0.5, 2.0);
    vec![
        Case::new("nll_loss", vec![any(&[5, 4])], |x| {
            x[0].log_softmax(-1).nll_loss(&[0, 3, 1, 1, 2], NllLoss::default())
        }),
        Case::new("nll_loss", vec![any(&[5, 4]), weight()], |x| {
            let opts = NllLoss {
                weight: Some(&x[1]),
                ignore_index: Some(1),
                reduction: Reduction::Mean,
            };
            x[0].nll_loss(&[0, 3, 1, 1, 2], opts)
        })
        .constant(1),
        Case::new("nll_loss", vec![any(&[3, 4])], |x| {
            let opts = NllLoss {
                reduction: Reduction::None,
                ..Default::default()
            };
            x[0].nll_loss(&[2, 0, 3], opts)
        }),
        Case::new("cross_entropy_opts", vec![any(&[5, 4]), weight()], |x| {
            let opts = CrossEntropy {
                weight: Some(&x[1]),
                label_smoothing: 0.2,
                reduction: Reduction::Mean,
                ignore_index: Some(7),
            };
            x[0].cross_entropy_opts(&[0, 7, 3, 1, 1], opts)
        })
        .constant(1),
        Case::new("cross_entropy_opts", vec![any(&[3, 4])], |x| {
            let opts = CrossEntropy {
                label_smoothing: 0.1,
                reduction: Reduction::None,
                ..Default::default()
            };
            x[0].cross_entropy_opts(&[2, 0, 3], opts)
        }),
        Case::new("cross_entropy_opts", vec![any(&[3, 4]), weight()], |x| {
            let opts = CrossEntropy {
                weight: Some(&x[1]),
                reduction: Reduction::Sum,
                ..Default::default()
            };
            x[0].cross_entropy_opts(&[2, 0, 3], opts)
        })
        .constant(1),
    ]
}

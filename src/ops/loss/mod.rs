//! Loss functions with PyTorch's definitions and its `reduction=` ([`Reduction`]): the
//! regression losses (`mse_loss`, `l1_loss`, `smooth_l1_loss`, `huber_loss`), the binary
//! ones (`binary_cross_entropy`, `binary_cross_entropy_with_logits`), `kl_div`, and (in
//! `class.rs`) the class-index ones, `nll_loss` and `cross_entropy_opts` (class weights,
//! `ignore_index`, label smoothing together).
//!
//! A loss between an input and a target of the same shape is a rule `l(x, y)` applied
//! element by element and then reduced; [`pointwise`] does that for every such loss from
//! one closure that returns `l` and its two partial derivatives, so forward and backward
//! of each loss are the same few lines. The plain `cross_entropy` (mean, no weights) keeps
//! its fused kernel in `softmax.rs`; `cross_entropy_opts` hands the plain case to it.
//!
//! Gradients flow to the input and to the target where PyTorch's do; weights
//! (`weight`, `pos_weight`) are constants.

mod class;

pub use class::{CrossEntropy, NllLoss};

use crate::gradcheck::Case;
use crate::ops::Family;
use crate::tensor::layout::broadcast_shapes;
use crate::tensor::Tensor;

/// How a loss reduces its per-element values, PyTorch's `reduction=`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// The mean of the values (`'mean'`, the default): a rank-0 tensor. For the
    /// class-weighted losses, the weighted sum divided by the sum of the targets' weights.
    #[default]
    Mean,
    /// The sum of the values (`'sum'`): a rank-0 tensor.
    Sum,
    /// No reduction (`'none'`): one value per element (per row for the class losses).
    None,
}

impl Reduction {
    /// Reduces `values` (given the divisor `count` for [`Reduction::Mean`]) into the
    /// output's data and shape; `shape` is the unreduced shape.
    fn apply(self, values: Vec<f32>, shape: &[usize], count: f64) -> (Vec<f32>, Vec<usize>) {
        match self {
            Reduction::None => (values, shape.to_vec()),
            Reduction::Sum | Reduction::Mean => {
                // Summed in f64: the loss of a large batch keeps its digits.
                let sum: f64 = values.iter().map(|&v| v as f64).sum();
                let total = if self == Reduction::Mean {
                    sum / count
                } else {
                    sum
                };
                (vec![total as f32], Vec::new())
            }
        }
    }

    /// The factor the output gradient `g` gives element `i` in backward: `g[i]` unreduced,
    /// `g` for a sum, `g / count` for a mean.
    fn scales(self, g: &Tensor, count: f64) -> Scales {
        match self {
            Reduction::None => Scales::Each(g.to_vec()),
            Reduction::Sum => Scales::All(g.item()),
            Reduction::Mean => Scales::All((g.item() as f64 / count) as f32),
        }
    }
}

/// The output gradient as each element of the loss sees it.
enum Scales {
    Each(Vec<f32>),
    All(f32),
}

impl Scales {
    fn at(&self, i: usize) -> f32 {
        match self {
            Scales::Each(v) => v[i],
            Scales::All(s) => *s,
        }
    }
}

/// The loss `rule` applied to `input` and `target` (the same shape) element by element and
/// reduced: `rule(i, x, y)` returns `[l, dl/dx, dl/dy]` for element `i` (the index reads
/// per-element weights). Backward recomputes the rule and scales its derivatives by the
/// output gradient; it gives the target a gradient too.
fn pointwise<R>(
    name: &'static str,
    input: &Tensor,
    target: &Tensor,
    reduction: Reduction,
    rule: R,
) -> Tensor
where
    R: Fn(usize, f32, f32) -> [f32; 3] + Send + Sync + 'static,
{
    assert_eq!(
        input.shape(),
        target.shape(),
        "{name}: input of shape {:?} and target of shape {:?} differ; give the target the input's shape",
        input.shape(),
        target.shape()
    );
    let (x, y) = (input.detach().contiguous(), target.detach().contiguous());
    let losses: Vec<f32> = x.with_slice(|xs| {
        y.with_slice(|ys| {
            xs.iter()
                .zip(ys)
                .enumerate()
                .map(|(i, (&xi, &yi))| rule(i, xi, yi)[0])
                .collect()
        })
    });
    let count = x.numel() as f64;
    let (data, shape) = reduction.apply(losses, x.shape(), count);
    let wants = [input.requires_grad(), target.requires_grad()];
    Tensor::from_op(data, &shape, name, &[input, target], move |g| {
        let scales = reduction.scales(g, count);
        let (mut dx, mut dy) = (vec![0.0; x.numel()], vec![0.0; x.numel()]);
        x.with_slice(|xs| {
            y.with_slice(|ys| {
                for (i, (&xi, &yi)) in xs.iter().zip(ys).enumerate() {
                    let [_, lx, ly] = rule(i, xi, yi);
                    let s = scales.at(i);
                    (dx[i], dy[i]) = (s * lx, s * ly);
                }
            })
        });
        let grad = |want: bool, d: Vec<f32>| want.then(|| Tensor::from_vec(d, x.shape()));
        vec![grad(wants[0], dx), grad(wants[1], dy)]
    })
}

/// `weight` broadcast to `shape`, as a flat row-major vector (`None` stays `None`).
fn broadcast_weight(
    weight: Option<&Tensor>,
    shape: &[usize],
    name: &str,
    what: &str,
) -> Option<Vec<f32>> {
    let w = weight?;
    let fits = broadcast_shapes(w.shape(), shape).is_some_and(|s| s == shape);
    assert!(
        fits,
        "{name}: {what} of shape {:?} does not broadcast to the input's shape {shape:?}",
        w.shape()
    );
    Some(w.detach().expand(shape).to_vec())
}

/// `ln(1 + e^v)`, without overflow for large `v`.
fn softplus(v: f32) -> f32 {
    v.max(0.0) + (-v.abs()).exp().ln_1p()
}

/// The logistic function, without overflow on either side.
fn sigmoid(v: f32) -> f32 {
    if v >= 0.0 {
        1.0 / (1.0 + (-v).exp())
    } else {
        let e = v.exp();
        e / (1.0 + e)
    }
}

/// The sign of `d`, 0 at 0 (the gradient PyTorch gives `|d|` there).
fn sign(d: f32) -> f32 {
    if d > 0.0 {
        1.0
    } else if d < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Options of [`Tensor::binary_cross_entropy_with_logits`] (PyTorch's `weight`,
/// `pos_weight` and `reduction`); `BceWithLogits::default()` is PyTorch's defaults.
#[derive(Clone, Copy, Debug, Default)]
pub struct BceWithLogits<'a> {
    /// A weight per element, broadcast to the input's shape (`None`: 1).
    pub weight: Option<&'a Tensor>,
    /// The weight of the positive term, broadcast to the input's shape: one per class
    /// (`[C]` for input `[N, C]`) weighs recall against precision. `None`: 1.
    pub pos_weight: Option<&'a Tensor>,
    /// How the per-element losses are reduced.
    pub reduction: Reduction,
}

impl Tensor {
    /// Mean squared error `(x - y)^2` between this input and `target` (same shape),
    /// PyTorch's `mse_loss`.
    ///
    /// ```
    /// use neurite::ops::loss::Reduction;
    /// use neurite::Tensor;
    /// let prediction = Tensor::from_vec(vec![1.0, 2.0, 4.0], &[3]);
    /// let target = Tensor::from_vec(vec![1.0, 3.0, 2.0], &[3]);
    /// assert_eq!(prediction.mse_loss(&target, Reduction::Mean).item(), 5.0 / 3.0);
    /// assert_eq!(prediction.mse_loss(&target, Reduction::Sum).item(), 5.0);
    /// assert_eq!(prediction.mse_loss(&target, Reduction::None).to_vec(), vec![0.0, 1.0, 4.0]);
    /// ```
    pub fn mse_loss(&self, target: &Tensor, reduction: Reduction) -> Tensor {
        pointwise("mse_loss", self, target, reduction, |_, x, y| {
            let d = x - y;
            [d * d, 2.0 * d, -2.0 * d]
        })
    }

    /// Mean absolute error `|x - y|`, PyTorch's `l1_loss`. The gradient at `x == y` is 0.
    pub fn l1_loss(&self, target: &Tensor, reduction: Reduction) -> Tensor {
        pointwise("l1_loss", self, target, reduction, |_, x, y| {
            let d = x - y;
            [d.abs(), sign(d), -sign(d)]
        })
    }

    /// PyTorch's `smooth_l1_loss`: `0.5 d^2 / beta` where `|d| < beta`, `|d| - 0.5 beta`
    /// elsewhere (`d = x - y`); `beta = 0` is the L1 loss. Panics if `beta < 0`.
    pub fn smooth_l1_loss(&self, target: &Tensor, beta: f32, reduction: Reduction) -> Tensor {
        assert!(
            beta >= 0.0,
            "smooth_l1_loss: beta must be 0 or more, got {beta}"
        );
        pointwise("smooth_l1_loss", self, target, reduction, move |_, x, y| {
            let d = x - y;
            if d.abs() < beta {
                [0.5 * d * d / beta, d / beta, -d / beta]
            } else {
                [d.abs() - 0.5 * beta, sign(d), -sign(d)]
            }
        })
    }

    /// PyTorch's `huber_loss`: `0.5 d^2` where `|d| < delta`, `delta (|d| - 0.5 delta)`
    /// elsewhere (`d = x - y`): the smooth L1 loss times `delta`. Panics if `delta <= 0`.
    pub fn huber_loss(&self, target: &Tensor, delta: f32, reduction: Reduction) -> Tensor {
        assert!(
            delta > 0.0,
            "huber_loss: delta must be positive, got {delta}"
        );
        pointwise("huber_loss", self, target, reduction, move |_, x, y| {
            let d = x - y;
            if d.abs() < delta {
                [0.5 * d * d, d, -d]
            } else {
                let s = delta * sign(d);
                [delta * (d.abs() - 0.5 * delta), s, -s]
            }
        })
    }

    /// Binary cross-entropy of probabilities (this tensor, in `[0, 1]`) against targets
    /// in `[0, 1]`, PyTorch's `binary_cross_entropy`: `-w (y ln p + (1 - y) ln(1 - p))`,
    /// each log clamped at -100 as PyTorch does so that `p = 0` or 1 gives a finite loss.
    /// `weight` (broadcast to the input's shape) weighs each element. For logits, use
    /// [`Tensor::binary_cross_entropy_with_logits`] (stable, and one op fewer).
    pub fn binary_cross_entropy(
        &self,
        target: &Tensor,
        weight: Option<&Tensor>,
        reduction: Reduction,
    ) -> Tensor {
        let name = "binary_cross_entropy";
        if let Some(p) = self.to_vec().iter().find(|p| !(0.0..=1.0).contains(*p)) {
            panic!("{name}: the input must hold probabilities in [0, 1], found {p}; for logits use binary_cross_entropy_with_logits");
        }
        let w = broadcast_weight(weight, self.shape(), name, "weight");
        pointwise(name, self, target, reduction, move |i, p, y| {
            let wi = w.as_ref().map_or(1.0, |w| w[i]);
            let (log_p, log_q) = (p.ln().max(-100.0), (1.0 - p).ln().max(-100.0));
            // PyTorch's backward divides by `p (1 - p)` kept from 0 by 1e-12, and gives the
            // target the unclamped `ln(1 - p) - ln p` (infinite at p = 0 or 1).
            let dp = (p - y) / ((1.0 - p) * p).max(1e-12);
            [
                -wi * (y * log_p + (1.0 - y) * log_q),
                wi * dp,
                wi * ((1.0 - p).ln() - p.ln()),
            ]
        })
    }

    /// Binary cross-entropy of logits (this tensor) against targets in `[0, 1]`, PyTorch's
    /// `binary_cross_entropy_with_logits`: `-w (pw y ln s(x) + (1 - y) ln(1 - s(x)))` with
    /// `s` the sigmoid, computed as `w ((1 - y) x + (1 + (pw - 1) y) softplus(-x))`, which
    /// stays finite for any logit.
    ///
    /// ```
    /// use neurite::ops::loss::{BceWithLogits, Reduction};
    /// use neurite::Tensor;
    /// let logits = Tensor::from_vec(vec![0.0, 100.0], &[2]);
    /// let target = Tensor::from_vec(vec![1.0, 1.0], &[2]);
    /// let loss = logits.binary_cross_entropy_with_logits(&target, BceWithLogits::default());
    /// assert!((loss.item() - 2f32.ln() / 2.0).abs() < 1e-6);
    /// let pos_weight = Tensor::from_vec(vec![3.0], &[1]);
    /// let opts = BceWithLogits { pos_weight: Some(&pos_weight), reduction: Reduction::Sum, ..Default::default() };
    /// assert!((logits.binary_cross_entropy_with_logits(&target, opts).item() - 3.0 * 2f32.ln()).abs() < 1e-5);
    /// ```
    pub fn binary_cross_entropy_with_logits(
        &self,
        target: &Tensor,
        opts: BceWithLogits<'_>,
    ) -> Tensor {
        let name = "binary_cross_entropy_with_logits";
        let w = broadcast_weight(opts.weight, self.shape(), name, "weight");
        let pw = broadcast_weight(opts.pos_weight, self.shape(), name, "pos_weight");
        pointwise(name, self, target, opts.reduction, move |i, x, y| {
            let wi = w.as_ref().map_or(1.0, |w| w[i]);
            let pwi = pw.as_ref().map_or(1.0, |p| p[i]);
            let c = 1.0 + (pwi - 1.0) * y;
            let sp = softplus(-x);
            [
                wi * ((1.0 - y) * x + c * sp),
                wi * (c * sigmoid(x) - pwi * y),
                wi * (-x + (pwi - 1.0) * sp),
            ]
        })
    }

    /// Kullback-Leibler divergence, PyTorch's `kl_div(input, target)`: this tensor holds
    /// log-probabilities, `target` probabilities (or log-probabilities when `log_target`);
    /// each element is `y (ln y - x)`, 0 where `y = 0`. PyTorch's recommended
    /// `reduction='batchmean'` is [`Reduction::Sum`] divided by the batch size:
    /// `.mul_scalar(1.0 / n)`; [`Reduction::Mean`] divides by the number of elements.
    pub fn kl_div(&self, target: &Tensor, reduction: Reduction, log_target: bool) -> Tensor {
        pointwise("kl_div", self, target, reduction, move |_, x, y| {
            if log_target {
                let e = y.exp();
                [e * (y - x), -e, e * (y - x + 1.0)]
            } else if y > 0.0 {
                [y * (y.ln() - x), -y, y.ln() + 1.0 - x]
            } else {
                // PyTorch: xlogy(0, 0) = 0; its gradient there is 0 * ln 0 + 0 / 0.
                [0.0, -y, f32::NAN]
            }
        })
    }
}

/// The ops of this module and their gradient checks (a row of [`crate::ops::FAMILIES`]).
pub(crate) const FAMILY: Family = Family {
    name: "loss",
    ops: &[
        "mse_loss",
        "l1_loss",
        "smooth_l1_loss",
        "huber_loss",
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        "kl_div",
        "nll_loss",
        "cross_entropy_opts",
    ],
    cases: gradcheck_cases,
};

fn gradcheck_cases() -> Vec<Case> {
    let any = |shape: &[usize]| Tensor::randn(shape, 0.0, 1.0);
    let unit = |shape: &[usize]| Tensor::rand(shape, 0.1, 0.9);
    // The differences `x - y` stay at least 0.0125 from 0 (a kink of l1, smooth_l1, huber)
    // and from +-0.5 (their `beta` / `delta`): distinct values against a constant target.
    let off = |shape: &[usize]| Tensor::full(shape, 0.0125);
    let mut cases = vec![
        Case::new("mse_loss", vec![any(&[3, 4]), any(&[3, 4])], |x| {
            x[0].mse_loss(&x[1], Reduction::Mean)
        }),
        Case::new("mse_loss", vec![any(&[2, 3]), any(&[2, 3])], |x| {
            x[0].mse_loss(&x[1], Reduction::None)
        }),
        Case::new(
            "l1_loss",
            vec![Case::distinct(&[3, 5]), off(&[3, 5])],
            |x| x[0].l1_loss(&x[1], Reduction::Sum),
        )
        .eps(1e-3),
        Case::new(
            "smooth_l1_loss",
            vec![Case::distinct(&[4, 6]).mul_scalar(3.0), off(&[4, 6])],
            |x| x[0].smooth_l1_loss(&x[1], 0.5, Reduction::Mean),
        )
        .eps(1e-3),
        Case::new(
            "huber_loss",
            vec![Case::distinct(&[4, 6]).mul_scalar(3.0), off(&[4, 6])],
            |x| x[0].huber_loss(&x[1], 0.5, Reduction::None),
        )
        .eps(1e-3),
        Case::new("binary_cross_entropy", vec![unit(&[3, 4]), unit(&[3, 4])], |x| {
            x[0].binary_cross_entropy(&x[1], None, Reduction::Mean)
        })
        .eps(1e-3),
        Case::new(
            "binary_cross_entropy",
            vec![unit(&[3, 4]), unit(&[3, 4]), Tensor::rand(&[4], 0.5, 2.0)],
            |x| x[0].binary_cross_entropy(&x[1], Some(&x[2]), Reduction::None),
        )
        .constant(2)
        .eps(1e-3),
        Case::new(
            "binary_cross_entropy_with_logits",
            vec![any(&[3, 4]).mul_scalar(3.0), unit(&[3, 4])],
            |x| x[0].binary_cross_entropy_with_logits(&x[1], BceWithLogits::default()),
        ),
        Case::new(
            "binary_cross_entropy_with_logits",
            vec![
                any(&[3, 4]).mul_scalar(3.0),
                unit(&[3, 4]),
                Tensor::rand(&[3, 1], 0.5, 2.0),
                Tensor::rand(&[4], 0.5, 3.0),
            ],
            |x| {
                let opts = BceWithLogits {
                    weight: Some(&x[2]),
                    pos_weight: Some(&x[3]),
                    reduction: Reduction::Sum,
                };
                x[0].binary_cross_entropy_with_logits(&x[1], opts)
            },
        )
        .constant(2)
        .constant(3),
        Case::new("kl_div", vec![any(&[3, 4]), unit(&[3, 4])], |x| {
            x[0].kl_div(&x[1], Reduction::Sum, false)
        })
        .eps(1e-3),
        Case::new("kl_div", vec![any(&[3, 4]), any(&[3, 4])], |x| {
            x[0].kl_div(&x[1], Reduction::Mean, true)
        }),
    ];
    cases.extend(class::gradcheck_cases());
    cases
}

#[cfg(test)]
mod tests;

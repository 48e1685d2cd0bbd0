//! Softmax, log-softmax and the fused softmax cross-entropy loss. The arithmetic lives in
//! `crate::kernels::softmax` (numerically stable: each row subtracts its maximum).

use crate::gradcheck::Case;
use crate::kernels::softmax as k;
use crate::ops::Family;
use crate::runtime::buffers;
use crate::tensor::{AsIndices, Tensor};

/// The tensor viewed as `[outer, n, inner]` around `axis`.
fn split_at_axis(x: &Tensor, axis: usize) -> (usize, usize, usize) {
    let s = x.shape();
    (
        s[..axis].iter().product(),
        s[axis],
        s[axis + 1..].iter().product(),
    )
}

impl Tensor {
    /// Softmax along `axis` (negative counts from the end).
    pub fn softmax(&self, axis: isize) -> Tensor {
        self.softmax_impl(axis, false)
    }

    /// Log of the softmax along `axis`, computed as `x - logsumexp(x)` (stable for large
    /// logits, unlike `softmax().log()`).
    pub fn log_softmax(&self, axis: isize) -> Tensor {
        self.softmax_impl(axis, true)
    }

    fn softmax_impl(&self, axis: isize, log: bool) -> Tensor {
        let name = if log { "log_softmax" } else { "softmax" };
        assert!(
            self.rank() > 0,
            "{name}: needs a tensor with at least one dimension, got shape {:?}",
            self.shape()
        );
        let (outer, n, inner) = split_at_axis(self, self.axis(axis));
        let mut out = vec![0.0; self.numel()];
        self.with_slice(|x| k::softmax_forward(x, &mut out, outer, n, inner, log));
        Tensor::from_op_with_output(out, self.shape(), name, &[self], move |g, y| {
            let mut dx = vec![0.0; y.numel()];
            g.with_slice(|dy| {
                y.with_slice(|ys| k::softmax_backward(ys, dy, &mut dx, outer, n, inner, log))
            });
            vec![Some(Tensor::from_vec(dx, y.shape()))]
        })
    }

    /// Mean cross-entropy of logits `[N, C]` against class indices `targets` (`N` of them:
    /// `&[usize]`, `&Vec<usize>` or an `&IntTensor`, see [`AsIndices`]), as PyTorch's
    /// `cross_entropy`: a fused log-softmax and negative log-likelihood. Returns a rank-0
    /// tensor. For sequences `[B, T, V]`, reshape to `[B*T, V]` first.
    pub fn cross_entropy(&self, targets: impl AsIndices) -> Tensor {
        self.cross_entropy_with(targets, 0.0)
    }

    /// [`Tensor::cross_entropy`] with label smoothing `s` in `[0, 1]`, as PyTorch's
    /// `label_smoothing`: the target distribution is `(1 - s) * onehot + s / C`.
    pub fn cross_entropy_with(&self, targets: impl AsIndices, label_smoothing: f32) -> Tensor {
        let targets = targets.indices("cross_entropy");
        let targets = &targets[..];
        assert_eq!(
            self.rank(),
            2,
            "cross_entropy: logits must be [N, C], got shape {:?}",
            self.shape()
        );
        let (rows, classes) = (self.shape()[0], self.shape()[1]);
        assert_eq!(
            targets.len(),
            rows,
            "cross_entropy: {} targets for logits of shape {:?} (one target per row)",
            targets.len(),
            self.shape()
        );
        if let Some((i, &t)) = targets.iter().enumerate().find(|(_, &t)| t >= classes) {
            panic!("cross_entropy: target {t} at position {i} is out of range for logits of shape {:?}", self.shape());
        }
        assert!(
            (0.0..=1.0).contains(&label_smoothing),
            "cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}"
        );
        let x = self.detach().contiguous();
        let (loss, lse) =
            x.with_slice(|xs| k::cross_entropy_forward(xs, targets, classes, label_smoothing));
        let mean = loss.iter().map(|&v| v as f64).sum::<f64>() / rows.max(1) as f64;
        let targets = targets.to_vec();
        Tensor::from_op(vec![mean as f32], &[], "cross_entropy", &[self], move |g| {
            let scale = g.item() / rows.max(1) as f32;
            let mut dx = buffers::take(x.numel()); // every element written
            x.with_slice(|xs| {
                k::cross_entropy_backward(
                    xs,
                    &lse,
                    &targets,
                    &mut dx,
                    classes,
                    label_smoothing,
                    scale,
                )
            });
            vec![Some(Tensor::from_vec(dx, x.shape()))]
        })
    }
}

/// The ops of this module and their gradient checks (a row of [`crate::ops::FAMILIES`]).
pub(crate) const FAMILY: Family = Family {
    name: "softmax",
    ops: &["softmax", "log_softmax", "cross_entropy"],
    cases: gradcheck_cases,
};

fn gradcheck_cases() -> Vec<Case> {
    let any = |shape: &[usize]| Tensor::randn(shape, 0.0, 1.5);
    vec![
        Case::new("softmax", vec![any(&[3, 7])], |x| x[0].softmax(-1)),
        Case::new("softmax", vec![any(&[2, 5, 3])], |x| x[0].softmax(1)),
        Case::new("softmax", vec![any(&[4, 3])], |x| x[0].t().softmax(0)),
        Case::new("log_softmax", vec![any(&[3, 7])], |x| x[0].log_softmax(-1)),
        Case::new("log_softmax", vec![any(&[2, 5, 3])], |x| {
            x[0].log_softmax(1)
        }),
        Case::new("cross_entropy", vec![any(&[5, 7])], |x| {
            x[0].cross_entropy(&[0, 6, 3, 3, 1])
        }),
        Case::new("cross_entropy", vec![any(&[4, 3])], |x| {
            x[0].cross_entropy_with(&[2, 0, 1, 2], 0.2)
        }),
        // Large logits: the fused loss stays finite and its gradient exact.
        Case::new("cross_entropy", vec![any(&[3, 4]).add_scalar(500.0)], |x| {
            x[0].cross_entropy(&[1, 0, 3])
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kernels::test_values::assert_close;

    #[test]
    fn softmax_of_known_values() {
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]);
        assert_close(
            &x.softmax(0).to_vec(),
            &[0.09003057, 0.24472847, 0.66524096],
            1e-6,
        );
        assert_close(
            &x.log_softmax(-1).to_vec(),
            &[-2.407606, -1.407606, -0.40760596],
            1e-6,
        );
        // Along a middle axis of [2, 3, 1]-shaped data, and along the first axis of [3, 2].
        let m = Tensor::from_vec(vec![1.0, 2.0, 3.0, 3.0, 2.0, 1.0], &[2, 3, 1])
            .softmax(1)
            .to_vec();
        assert_close(
            &m,
            &[
                0.09003057, 0.24472847, 0.66524096, 0.66524096, 0.24472847, 0.09003057,
            ],
            1e-6,
        );
        let c = Tensor::from_vec(vec![1.0, 0.0, 2.0, 0.0, 3.0, 0.0], &[3, 2])
            .softmax(0)
            .to_vec();
        assert_close(
            &c,
            &[
                0.09003057,
                1.0 / 3.0,
                0.24472847,
                1.0 / 3.0,
                0.66524096,
                1.0 / 3.0,
            ],
            1e-6,
        );
    }

    #[test]
    fn cross_entropy_of_known_logits() {
        // Row 0: -log_softmax([1, 2, 3])[2] = 0.40760596; row 1: uniform logits, log(3).
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 0.0, 0.0, 0.0], &[2, 3]).requires_grad_();
        let loss = x.cross_entropy(&[2, 0]);
        assert_eq!(loss.shape(), &[] as &[usize]);
        assert!((loss.item() - (0.40760596 + 3f32.ln()) / 2.0).abs() < 1e-6);
        loss.backward().unwrap();
        let third = 1.0 / 3.0;
        let expected = [
            0.09003057,
            0.24472847,
            0.66524096 - 1.0,
            third - 1.0,
            third,
            third,
        ]
        .map(|v| v / 2.0);
        assert_close(&x.grad().unwrap().to_vec(), &expected, 1e-6);
        // Label smoothing 0.1, from PyTorch's definition: 0.9 * nll + 0.1 * mean_j(-log p_j), averaged over rows.
        let smoothed = x.detach().cross_entropy_with(&[2, 0], 0.1).item();
        assert!((smoothed - 0.8031091).abs() < 1e-5, "{smoothed}");
    }

    #[test]
    fn cross_entropy_with_label_smoothing_matches_pytorch() {
        // F.cross_entropy(x, t, label_smoothing=s) and its gradient, PyTorch 2.15. By hand,
        // the gradient is (softmax(x) - q) / N with q = (1 - s) * onehot(t) + s / C: row 0
        // of the first case, (0.09003057 - 0.1 / 3) / 2 = 0.02834862.
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 0.0, 0.0, 0.0], &[2, 3]).requires_grad_();
        let loss = x.cross_entropy_with(&[2, 0], 0.1);
        assert_close(&[loss.item()], &[0.80310905], 1e-6);
        loss.backward().unwrap();
        assert_close(
            &x.grad().unwrap().to_vec(),
            &[0.02834862, 0.10569758, -0.13404617, -0.3, 0.15, 0.15],
            1e-6,
        );
        let y = Tensor::from_vec(vec![0.5, -1.0, 2.0, 0.25, 3.0, 1.0, -2.0, 0.0], &[2, 4])
            .requires_grad_();
        let loss = y.cross_entropy_with(&[1, 3], 0.25);
        assert_close(&[loss.item()], &[3.0302098], 1e-5);
        loss.backward().unwrap();
        assert_close(
            &y.grad().unwrap().to_vec(),
            &[
                0.0458674, -0.3890428, 0.31436622, 0.02880909, 0.38826224, 0.02552481,
                -0.02842335, -0.38536373,
            ],
            1e-6,
        );
        // Smoothing 0 is the plain loss.
        assert_eq!(
            y.detach().cross_entropy_with(&[1, 3], 0.0).item(),
            y.detach().cross_entropy(&[1, 3]).item()
        );
    }

    #[test]
    #[should_panic(
        expected = "cross_entropy: target 3 at position 1 is out of range for logits of shape [2, 3]"
    )]
    fn cross_entropy_rejects_a_target_out_of_range() {
        Tensor::zeros(&[2, 3]).cross_entropy(&[0, 3]);
    }

    #[test]
    #[should_panic(expected = "cross_entropy: 1 targets for logits of shape [2, 3]")]
    fn cross_entropy_rejects_a_wrong_number_of_targets() {
        Tensor::zeros(&[2, 3]).cross_entropy(&[0]);
    }
}

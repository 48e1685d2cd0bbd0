//! Pointwise activations: relu, sigmoid, tanh, gelu, silu, and the fused residual
//! `add_relu`. Each forward is one pass over the input; each backward is one pass over the
//! output gradient and what the forward saved (the input for relu, gelu and silu, the
//! output for sigmoid and tanh).

use crate::gradcheck::Case;
use crate::kernels::math::{exp, gelu, gelu_derivative};
use crate::ops::Family;
use crate::ops::map::{broadcast_map, grad_map, Reads};
use crate::tensor::Tensor;

impl Tensor {
    /// `max(x, 0)`. The gradient at exactly 0 is 0, as in PyTorch.
    pub fn relu(&self) -> Tensor {
        self.elementwise(
            "relu",
            |v| v.max(0.0),
            Reads::Input,
            |g, x| if x > 0.0 { g } else { 0.0 },
        )
    }

    /// `max(self + other, 0)` in one pass forward and one backward (the composite's values
    /// and gradients): a residual connection's sum and the ReLU after it. Shapes broadcast
    /// as in [`Tensor::add`].
    pub fn add_relu(&self, other: &Tensor) -> Tensor {
        let (data, shape) = broadcast_map(self, other, "add_relu", |x, y| (x + y).max(0.0));
        let (sa, sb) = (self.shape().to_vec(), other.shape().to_vec());
        Tensor::from_op_with_output(data, &shape, "add_relu", &[self, other], move |g, y| {
            // The sum was positive exactly where the output is.
            let g = grad_map(g, y, |gi, yi| if yi > 0.0 { gi } else { 0.0 });
            vec![Some(g.sum_to(&sa)), Some(g.sum_to(&sb))]
        })
    }

    /// The logistic function `1 / (1 + e^-x)`.
    pub fn sigmoid(&self) -> Tensor {
        self.elementwise(
            "sigmoid",
            |v| 1.0 / (1.0 + exp(-v)),
            Reads::Output,
            |g, y| g * y * (1.0 - y),
        )
    }

    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Tensor {
        self.elementwise("tanh", f32::tanh, Reads::Output, |g, y| g * (1.0 - y * y))
    }

    /// Exact GELU, `x * Phi(x)` (PyTorch's `gelu` with `approximate='none'`).
    pub fn gelu(&self) -> Tensor {
        self.elementwise("gelu", gelu, Reads::Input, |g, x| g * gelu_derivative(x))
    }

    /// SiLU (swish), `x * sigmoid(x)`, computed as PyTorch's CPU kernel does,
    /// `x / (1 + e^-x)`; the derivative is `s * (1 + x * (1 - s))` with `s = sigmoid(x)`.
    pub fn silu(&self) -> Tensor {
        self.elementwise("silu", |v| v / (1.0 + exp(-v)), Reads::Input, |g, x| {
            let s = 1.0 / (1.0 + exp(-x));
            g * (s * (1.0 + x * (1.0 - s)))
        })
    }
}

/// The ops of this module and their gradient checks (a row of [`crate::ops::FAMILIES`]).
pub(crate) const FAMILY: Family = Family {
    name: "activation",
    ops: &["relu", "add_relu", "sigmoid", "tanh", "gelu", "silu"],
    cases: gradcheck_cases,
};

fn gradcheck_cases() -> Vec<Case> {
    let any = |shape: &[usize]| Tensor::randn(shape, 0.0, 1.5);
    vec![
        // Distinct values 0.05 apart that avoid 0: the step never crosses the kink.
        Case::new("relu", vec![Case::distinct(&[4, 7])], |x| x[0].relu()).eps(1e-3),
        Case::new("relu", vec![Case::distinct(&[2, 3, 5])], |x| {
            x[0].mul(&x[0]).sub(&x[0].mul_scalar(0.5)).relu()
        })
        .eps(1e-3),
        // The sums are at least 0.0127 from the kink (distinct values shifted by 0.0123).
        Case::new(
            "add_relu",
            vec![Case::distinct(&[3, 7]), Tensor::full(&[3, 7], 0.0123)],
            |x| x[0].add_relu(&x[1]),
        )
        .eps(1e-3),
        Case::new(
            "add_relu",
            vec![Case::distinct(&[2, 3, 5]), Tensor::full(&[5], 0.0123)],
            |x| x[0].add_relu(&x[1]),
        )
        .eps(1e-3),
        Case::new("sigmoid", vec![any(&[3, 5])], |x| x[0].sigmoid()),
        Case::new(
            "sigmoid",
            vec![Tensor::from_vec(vec![-30.0, -8.0, 0.0, 8.0, 30.0], &[5])],
            |x| x[0].sigmoid(),
        ),
        Case::new("tanh", vec![any(&[4, 6])], |x| x[0].tanh()),
        Case::new("gelu", vec![any(&[5, 7])], |x| x[0].gelu()),
        Case::new("silu", vec![any(&[4, 6])], |x| x[0].silu()),
        Case::new(
            "silu",
            vec![Tensor::from_vec(
                vec![-30.0, -6.0, -1.0, 0.0, 1.0, 6.0, 30.0],
                &[7],
            )],
            |x| x[0].silu(),
        ),
        Case::new(
            "gelu",
            vec![Tensor::from_vec(
                vec![-6.0, -2.0, -0.5, 0.0, 0.5, 2.0, 6.0],
                &[7],
            )],
            |x| x[0].gelu(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kernels::test_values::assert_close;

    #[test]
    fn activations_match_known_values() {
        let x = Tensor::from_vec(vec![-2.0, -0.5, 0.0, 1.0, 3.0], &[5]);
        assert_eq!(x.relu().to_vec(), vec![0.0, 0.0, 0.0, 1.0, 3.0]);
        assert_close(
            &x.sigmoid().to_vec(),
            &[0.11920292, 0.37754067, 0.5, 0.7310586, 0.95257413],
            1e-6,
        );
        assert_close(
            &x.tanh().to_vec(),
            &[-0.9640276, -0.46211716, 0.0, 0.7615942, 0.9950548],
            1e-6,
        );
        // torch.nn.functional.gelu(torch.tensor([-2., -0.5, 0., 1., 3.]))
        assert_close(
            &x.gelu().to_vec(),
            &[-0.04550026, -0.15426877, 0.0, 0.8413447, 2.9959502],
            1e-6,
        );
        // torch.nn.functional.silu(torch.tensor([-2., -0.5, 0., 1., 3.]))
        assert_close(
            &x.silu().to_vec(),
            &[-0.23840584, -0.18877034, 0.0, 0.7310586, 2.8577224],
            1e-6,
        );
    }

    #[test]
    fn activation_gradients_match_known_values() {
        let x = Tensor::from_vec(vec![-1.0, 0.0, 2.0], &[3]).requires_grad_();
        x.relu().sum_all().backward().unwrap();
        assert_eq!(x.grad().unwrap().to_vec(), vec![0.0, 0.0, 1.0]);
        x.zero_grad();
        x.sigmoid().sum_all().backward().unwrap();
        // s(x)(1 - s(x)): 0.19661193, 0.25, 0.10499359
        assert_close(
            &x.grad().unwrap().to_vec(),
            &[0.19661193, 0.25, 0.10499359],
            1e-6,
        );
        x.zero_grad();
        x.gelu().sum_all().backward().unwrap();
        // Phi(x) + x phi(x): -0.08331547, 0.5, 1.0852318
        assert_close(
            &x.grad().unwrap().to_vec(),
            &[-0.08331547, 0.5, 1.0852318],
            1e-5,
        );
        x.zero_grad();
        x.silu().sum_all().backward().unwrap();
        // s(x)(1 + x(1 - s(x))): 0.07232949, 0.5, 1.0907842
        assert_close(
            &x.grad().unwrap().to_vec(),
            &[0.07232949, 0.5, 1.0907842],
            1e-6,
        );
    }

    #[test]
    fn add_relu_matches_add_then_relu() {
        // Same shape, and a broadcast second operand.
        for b_shape in [&[3, 4, 5][..], &[5][..]] {
            let a = Tensor::randn(&[3, 4, 5], 0.0, 1.0).requires_grad_();
            let b = Tensor::randn(b_shape, 0.0, 1.0).requires_grad_();
            let r = Tensor::randn(&[3, 4, 5], 0.0, 1.0);
            let mut runs = Vec::new();
            for fused in [true, false] {
                let y = if fused {
                    a.add_relu(&b)
                } else {
                    a.add(&b).relu()
                };
                y.mul(&r).sum_all().backward().unwrap();
                runs.push((
                    y.to_vec(),
                    a.grad().unwrap().to_vec(),
                    b.grad().unwrap().to_vec(),
                ));
                a.zero_grad();
                b.zero_grad();
            }
            assert!(runs[0].0.contains(&0.0) && runs[0].0.iter().any(|&v| v > 0.0));
            assert_eq!(runs[0].0, runs[1].0);
            assert_eq!(runs[0].1, runs[1].1);
            assert_close(&runs[0].2, &runs[1].2, 1e-5);
        }
    }

    #[test]
    fn sigmoid_saturates_without_nan() {
        let y = Tensor::from_vec(vec![-100.0, 100.0], &[2])
            .sigmoid()
            .to_vec();
        assert_eq!(y, vec![0.0, 1.0]);
    }
}

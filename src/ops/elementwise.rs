//! Elementwise arithmetic with broadcasting: add, sub, mul, div, neg, exp, log, sqrt, pow,
//! log1p, expm1, sin, cos, abs, clamp, minimum, maximum, and scalar variants. Each op's
//! forward and its backward rule sit together.
//!
//! Broadcasting follows PyTorch: shapes align from the right, size-1 dimensions stretch.
//! The gradient of a broadcast operand is the output gradient summed back to its shape
//! (`sum_to`).

use crate::gradcheck::Case;
use crate::ops::Family;
use crate::ops::map::{broadcast_map, unary_map, Reads};
use crate::tensor::Tensor;

impl Tensor {
    /// `self + other` with broadcasting.
    pub fn add(&self, other: &Tensor) -> Tensor {
        let (data, shape) = broadcast_map(self, other, "add", |x, y| x + y);
        let (sa, sb) = (self.shape().to_vec(), other.shape().to_vec());
        Tensor::from_op(data, &shape, "add", &[self, other], move |g| {
            vec![Some(g.sum_to(&sa)), Some(g.sum_to(&sb))]
        })
    }

    /// `self - other` with broadcasting.
    pub fn sub(&self, other: &Tensor) -> Tensor {
        let (data, shape) = broadcast_map(self, other, "sub", |x, y| x - y);
        let (sa, sb) = (self.shape().to_vec(), other.shape().to_vec());
        Tensor::from_op(data, &shape, "sub", &[self, other], move |g| {
            vec![Some(g.sum_to(&sa)), Some(g.neg().sum_to(&sb))]
        })
    }

    /// `self * other` elementwise with broadcasting.
    pub fn mul(&self, other: &Tensor) -> Tensor {
        let (data, shape) = broadcast_map(self, other, "mul", |x, y| x * y);
        let (a, b) = (self.detach(), other.detach());
        Tensor::from_op(data, &shape, "mul", &[self, other], move |g| {
            vec![
                Some(g.mul(&b).sum_to(a.shape())),
                Some(g.mul(&a).sum_to(b.shape())),
            ]
        })
    }

    /// `self / other` elementwise with broadcasting.
    pub fn div(&self, other: &Tensor) -> Tensor {
        let (data, shape) = broadcast_map(self, other, "div", |x, y| x / y);
        let (a, b) = (self.detach(), other.detach());
        Tensor::from_op(data, &shape, "div", &[self, other], move |g| {
            let ga = g.div(&b).sum_to(a.shape());
            // d(a/b)/db = -a / b^2
            let gb = g.mul(&a).div(&b.mul(&b)).neg().sum_to(b.shape());
            vec![Some(ga), Some(gb)]
        })
    }

    /// `-self`.
    pub fn neg(&self) -> Tensor {
        self.elementwise("neg", |x| -x, Reads::Nothing, |g, _| -g)
    }

    /// `e^self`.
    pub fn exp(&self) -> Tensor {
        self.elementwise("exp", f32::exp, Reads::Output, |g, y| g * y)
    }

    /// Natural logarithm.
    pub fn log(&self) -> Tensor {
        self.elementwise("log", f32::ln, Reads::Input, |g, x| g / x)
    }

    /// Square root.
    pub fn sqrt(&self) -> Tensor {
        self.elementwise("sqrt", f32::sqrt, Reads::Output, |g, y| g / (y * 2.0))
    }

    /// `self^p` for a constant exponent.
    pub fn pow(&self, p: f32) -> Tensor {
        self.elementwise("pow", |v| v.powf(p), Reads::Input, move |g, x| {
            g * (p * x.powf(p - 1.0))
        })
    }

    /// `ln(1 + self)`, accurate for small values (PyTorch's `log1p`).
    pub fn log1p(&self) -> Tensor {
        self.elementwise("log1p", f32::ln_1p, Reads::Input, |g, x| g / (1.0 + x))
    }

    /// `e^self - 1`, accurate for small values (PyTorch's `expm1`).
    pub fn expm1(&self) -> Tensor {
        self.elementwise("expm1", f32::exp_m1, Reads::Output, |g, y| g * (y + 1.0))
    }

    /// Sine (radians).
    pub fn sin(&self) -> Tensor {
        self.elementwise("sin", f32::sin, Reads::Input, |g, x| g * x.cos())
    }

    /// Cosine (radians).
    pub fn cos(&self) -> Tensor {
        self.elementwise("cos", f32::cos, Reads::Input, |g, x| -g * x.sin())
    }

    /// `|self|`. The gradient is the sign of the input, 0 at exactly 0, as in PyTorch.
    pub fn abs(&self) -> Tensor {
        self.elementwise("abs", f32::abs, Reads::Input, |g, x| {
            if x > 0.0 {
                g
            } else if x < 0.0 {
                -g
            } else {
                0.0
            }
        })
    }

    /// Clamps every element into `[min, max]`; a bound that is `None` is not applied
    /// (PyTorch's `clamp(min=, max=)`, at least one bound given). As in PyTorch, `min >
    /// max` sets every element to `max`, and NaN stays NaN. The gradient passes where the
    /// input lies strictly between the bounds and is 0 elsewhere, at a bound too (what
    /// PyTorch's `clamp` with number bounds gives).
    pub fn clamp(&self, min: Option<f32>, max: Option<f32>) -> Tensor {
        assert!(
            min.is_some() || max.is_some(),
            "clamp: give at least one bound (min or max)"
        );
        let (lo, hi) = (min.unwrap_or(f32::NEG_INFINITY), max.unwrap_or(f32::INFINITY));
        let bounded = move |x: f32| if x.is_nan() { x } else { x.max(lo).min(hi) };
        let name = match (min, max) {
            (Some(_), Some(_)) => "clamp",
            (Some(_), None) => "clamp_min",
            (None, _) => "clamp_max",
        };
        self.elementwise(name, bounded, Reads::Input, move |g, x| {
            if x > lo && x < hi {
                g
            } else {
                0.0
            }
        })
    }

    /// `max(self, min)` elementwise: [`Tensor::clamp`] with a lower bound only.
    pub fn clamp_min(&self, min: f32) -> Tensor {
        self.clamp(Some(min), None)
    }

    /// `min(self, max)` elementwise: [`Tensor::clamp`] with an upper bound only.
    pub fn clamp_max(&self, max: f32) -> Tensor {
        self.clamp(None, Some(max))
    }

    /// The smaller of `self` and `other` elementwise, with broadcasting (PyTorch's
    /// `torch.minimum`). NaN in either operand gives NaN. The gradient goes to the smaller
    /// operand; on a tie each operand gets half of it, as in PyTorch.
    pub fn minimum(&self, other: &Tensor) -> Tensor {
        self.pick("minimum", other, |a, b| a < b)
    }

    /// The larger of `self` and `other` elementwise, with broadcasting (PyTorch's
    /// `torch.maximum`). NaN in either operand gives NaN. The gradient goes to the larger
    /// operand; on a tie each operand gets half of it, as in PyTorch.
    pub fn maximum(&self, other: &Tensor) -> Tensor {
        self.pick("maximum", other, |a, b| a > b)
    }

    /// `minimum` and `maximum`: `first(a, b)` says when `a` wins outright.
    fn pick(
        &self,
        name: &'static str,
        other: &Tensor,
        first: fn(f32, f32) -> bool,
    ) -> Tensor {
        let choose = move |a: f32, b: f32| {
            if a.is_nan() || b.is_nan() {
                f32::NAN
            } else if first(a, b) || a == b {
                a
            } else {
                b
            }
        };
        let (data, shape) = broadcast_map(self, other, name, choose);
        let (a, b) = (self.detach(), other.detach());
        Tensor::from_op(data, &shape, name, &[self, other], move |g| {
            // The share of the gradient that goes to `a`: 1 when it wins, 1/2 on a tie.
            let share_a = Tensor::from_vec(
                broadcast_map(&a, &b, name, |x, y| {
                    if first(x, y) {
                        1.0
                    } else if x == y {
                        0.5
                    } else {
                        0.0
                    }
                })
                .0,
                g.shape(),
            );
            let ga = g.mul(&share_a);
            let gb = g.sub(&ga);
            vec![Some(ga.sum_to(a.shape())), Some(gb.sum_to(b.shape()))]
        })
    }

    /// `self + c`. Not built on [`Tensor::elementwise`]: its backward passes the gradient
    /// on as it is, without a copy.
    pub fn add_scalar(&self, c: f32) -> Tensor {
        Tensor::from_op(
            unary_map(self, |x| x + c),
            self.shape(),
            "add_scalar",
            &[self],
            |g| vec![Some(g.clone())],
        )
    }

    /// `self * c`.
    pub fn mul_scalar(&self, c: f32) -> Tensor {
        self.elementwise("mul_scalar", move |x| x * c, Reads::Nothing, move |g, _| g * c)
    }

    /// Sums this tensor down to `shape` (the reverse of broadcasting `shape` up to this
    /// tensor's shape): leading dimensions and dimensions that are 1 in `shape` are summed.
    pub fn sum_to(&self, shape: &[usize]) -> Tensor {
        if self.shape() == shape {
            return self.clone();
        }
        let rank = self.rank();
        assert!(
            shape.len() <= rank,
            "sum_to: cannot reduce {:?} to {shape:?}",
            self.shape()
        );
        let lead = rank - shape.len();
        let axes: Vec<usize> = (0..rank)
            .filter(|&d| d < lead || (shape[d - lead] == 1 && self.shape()[d] != 1))
            .collect();
        self.sum_axes(&axes, true).reshape(shape)
    }
}

/// The ops of this module and their gradient checks (a row of [`crate::ops::FAMILIES`]).
pub(crate) const FAMILY: Family = Family {
    name: "elementwise",
    ops: &[
        "add", "sub", "mul", "div", "neg", "exp", "log", "sqrt", "pow", "add_scalar",
        "mul_scalar", "log1p", "expm1", "sin", "cos", "abs", "clamp", "clamp_min", "clamp_max",
        "minimum", "maximum",
    ],
    cases: gradcheck_cases,
};

fn gradcheck_cases() -> Vec<Case> {
    let positive = |shape: &[usize]| Tensor::rand(shape, 0.5, 2.0);
    let any = |shape: &[usize]| Tensor::randn(shape, 0.0, 1.0);
    vec![
        Case::new("add", vec![any(&[3, 4]), any(&[4])], |x| x[0].add(&x[1])),
        Case::new("add", vec![any(&[2, 1, 3]), any(&[4, 1])], |x| {
            x[0].add(&x[1])
        }),
        Case::new("sub", vec![any(&[3, 4]), any(&[3, 1])], |x| x[0].sub(&x[1])),
        Case::new("mul", vec![any(&[2, 3, 4]), any(&[3, 4])], |x| {
            x[0].mul(&x[1])
        }),
        Case::new("mul", vec![any(&[5]), any(&[5])], |x| {
            x[0].mul(&x[0]).mul(&x[1])
        }),
        Case::new("div", vec![any(&[3, 4]), positive(&[4])], |x| {
            x[0].div(&x[1])
        }),
        Case::new("neg", vec![any(&[3, 5])], |x| x[0].neg()),
        Case::new("exp", vec![any(&[3, 5])], |x| x[0].exp()),
        Case::new("log", vec![positive(&[3, 5])], |x| x[0].log()),
        Case::new("sqrt", vec![positive(&[3, 5])], |x| x[0].sqrt()),
        Case::new("pow", vec![positive(&[3, 5])], |x| x[0].pow(2.5)),
        Case::new("pow", vec![any(&[4])], |x| x[0].pow(3.0)),
        Case::new("add_scalar", vec![any(&[4])], |x| x[0].add_scalar(1.5)),
        Case::new("mul_scalar", vec![any(&[4])], |x| x[0].mul_scalar(-2.0)),
        Case::new("log1p", vec![positive(&[3, 5]).add_scalar(-0.9)], |x| {
            x[0].log1p()
        }),
        Case::new("expm1", vec![any(&[3, 5])], |x| x[0].expm1()),
        Case::new("sin", vec![any(&[3, 5]).mul_scalar(3.0)], |x| x[0].sin()),
        Case::new("cos", vec![any(&[3, 5]).mul_scalar(3.0)], |x| x[0].cos()),
        // Distinct values 0.05 apart that avoid 0: the step never crosses the kink.
        Case::new("abs", vec![Case::distinct(&[4, 6])], |x| x[0].abs()).eps(1e-3),
        // Distinct values that avoid the bounds by at least 0.005.
        Case::new("clamp", vec![Case::distinct(&[5, 8])], |x| {
            x[0].clamp(Some(-0.33), Some(0.42))
        })
        .eps(1e-3),
        Case::new("clamp_min", vec![Case::distinct(&[5, 8])], |x| {
            x[0].clamp_min(-0.33)
        })
        .eps(1e-3),
        Case::new("clamp_max", vec![Case::distinct(&[5, 8])], |x| {
            x[0].clamp_max(0.42)
        })
        .eps(1e-3),
        // Operands at least 0.0125 apart everywhere: no tie within a step.
        Case::new(
            "minimum",
            vec![Case::distinct(&[3, 5]), Tensor::full(&[5], 0.0125)],
            |x| x[0].minimum(&x[1]),
        )
        .eps(1e-3),
        Case::new(
            "maximum",
            vec![Case::distinct(&[3, 5]), Case::distinct(&[3, 5]).add_scalar(0.0125)],
            |x| x[0].maximum(&x[1]),
        )
        .eps(1e-3),
        Case::new(
            "maximum",
            vec![Tensor::full(&[2, 1], 0.0125), Case::distinct(&[4])],
            |x| x[0].maximum(&x[1]),
        )
        .eps(1e-3),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kernels::test_values::assert_close;
    use std::f32::consts::LN_2;

    #[test]
    fn broadcast_add_and_strided_operands() {
        let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        let b = Tensor::from_vec(vec![10.0, 20.0], &[2, 1]);
        assert_eq!(a.add(&b).to_vec(), vec![11.0, 12.0, 13.0, 24.0, 25.0, 26.0]);
        // A transposed operand is read through its strides.
        let c = a.t().mul(&Tensor::from_vec(vec![1.0, -1.0], &[2]));
        assert_eq!(c.shape(), &[3, 2]);
        assert_eq!(c.to_vec(), vec![1.0, -4.0, 2.0, -5.0, 3.0, -6.0]);
    }

    #[test]
    #[should_panic(expected = "add: shapes [2, 3] and [2] do not broadcast")]
    fn mismatched_shapes_name_the_op_and_both_shapes() {
        Tensor::zeros(&[2, 3]).add(&Tensor::zeros(&[2]));
    }

    #[test]
    fn gradient_of_a_tensor_used_twice_accumulates() {
        let x = Tensor::from_vec(vec![3.0], &[1]).requires_grad_();
        let y = x.mul(&x).add(&x); // y = x^2 + x, dy/dx = 2x + 1 = 7
        y.sum_all().backward().unwrap();
        assert_eq!(x.grad().unwrap().to_vec(), vec![7.0]);
    }

    #[test]
    fn math_functions_match_known_values() {
        let x = Tensor::from_vec(vec![-2.0, -0.5, 0.0, 1.0, 3.0], &[5]);
        // torch.sin / cos / abs / log1p / expm1 of the same values.
        assert_close(
            &x.sin().to_vec(),
            &[-0.9092974, -0.47942555, 0.0, 0.84147096, 0.14112],
            1e-6,
        );
        assert_close(
            &x.cos().to_vec(),
            &[-0.41614684, 0.87758255, 1.0, 0.5403023, -0.9899925],
            1e-6,
        );
        assert_eq!(x.abs().to_vec(), vec![2.0, 0.5, 0.0, 1.0, 3.0]);
        assert_close(
            &x.narrow(0, 1, 4).log1p().to_vec(),
            &[-LN_2, 0.0, LN_2, 2.0 * LN_2],
            1e-6,
        );
        assert_close(
            &x.expm1().to_vec(),
            &[-0.86466473, -0.39346933, 0.0, 1.7182819, 19.085537],
            1e-5,
        );
        // Accurate where `exp(x) - 1` and `ln(1 + x)` lose every digit.
        let tiny = Tensor::from_vec(vec![1e-8], &[1]);
        assert_eq!(tiny.expm1().item(), 1e-8);
        assert_eq!(tiny.log1p().item(), 1e-8);
    }

    #[test]
    fn math_gradients_match_known_values() {
        let x = Tensor::from_vec(vec![-2.0, 0.0, 1.0], &[3]).requires_grad_();
        x.sin().sum_all().backward().unwrap();
        assert_close(
            &x.grad().unwrap().to_vec(),
            &[-0.41614684, 1.0, 0.5403023],
            1e-6,
        );
        x.zero_grad();
        x.cos().sum_all().backward().unwrap();
        assert_close(
            &x.grad().unwrap().to_vec(),
            &[0.9092974, 0.0, -0.84147096],
            1e-6,
        );
        x.zero_grad();
        // The gradient of abs at exactly 0 is 0, as in PyTorch.
        x.abs().sum_all().backward().unwrap();
        assert_eq!(x.grad().unwrap().to_vec(), vec![-1.0, 0.0, 1.0]);
    }

    #[test]
    fn clamp_passes_the_gradient_strictly_inside_the_bounds() {
        let x = Tensor::from_vec(vec![-1.0, 0.0, 0.5, 1.0, 2.0], &[5]).requires_grad_();
        // torch.clamp(x, 0, 1), clamp(min=0), clamp(max=1): values and gradients.
        for (y, values, grad) in [
            (
                x.clamp(Some(0.0), Some(1.0)),
                [0.0, 0.0, 0.5, 1.0, 1.0],
                [0.0, 0.0, 1.0, 0.0, 0.0],
            ),
            (
                x.clamp_min(0.0),
                [0.0, 0.0, 0.5, 1.0, 2.0],
                [0.0, 0.0, 1.0, 1.0, 1.0],
            ),
            (
                x.clamp_max(1.0),
                [-1.0, 0.0, 0.5, 1.0, 1.0],
                [1.0, 1.0, 1.0, 0.0, 0.0],
            ),
            // min > max: every element becomes max, and no gradient passes.
            (
                x.clamp(Some(1.0), Some(0.0)),
                [0.0; 5],
                [0.0; 5],
            ),
        ] {
            assert_eq!(y.to_vec(), values);
            y.sum_all().backward().unwrap();
            assert_eq!(x.grad().unwrap().to_vec(), grad);
            x.zero_grad();
        }
        let nan = Tensor::from_vec(vec![f32::NAN], &[1]).clamp(Some(0.0), Some(1.0));
        assert!(nan.item().is_nan());
    }

    #[test]
    #[should_panic(expected = "clamp: give at least one bound")]
    fn clamp_without_bounds_is_refused() {
        Tensor::zeros(&[2]).clamp(None, None);
    }

    #[test]
    fn minimum_and_maximum_split_the_gradient_on_ties() {
        let a = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]).requires_grad_();
        let b = Tensor::from_vec(vec![1.0, 3.0, 2.0], &[3]).requires_grad_();
        let lo = a.minimum(&b);
        assert_eq!(lo.to_vec(), vec![1.0, 2.0, 2.0]);
        lo.sum_all().backward().unwrap();
        // torch.minimum: [0.5, 1, 0] and [0.5, 0, 1].
        assert_eq!(a.grad().unwrap().to_vec(), vec![0.5, 1.0, 0.0]);
        assert_eq!(b.grad().unwrap().to_vec(), vec![0.5, 0.0, 1.0]);
        a.zero_grad();
        b.zero_grad();
        let hi = a.maximum(&b);
        assert_eq!(hi.to_vec(), vec![1.0, 3.0, 3.0]);
        hi.sum_all().backward().unwrap();
        assert_eq!(a.grad().unwrap().to_vec(), vec![0.5, 0.0, 1.0]);
        assert_eq!(b.grad().unwrap().to_vec(), vec![0.5, 1.0, 0.0]);
        // A broadcast operand collects its share from every position it was compared at.
        let m = Tensor::from_vec(vec![0.0, 1.0, 2.0, 3.0], &[2, 2]).requires_grad_();
        let floor = Tensor::from_vec(vec![1.0], &[1]).requires_grad_();
        let y = m.maximum(&floor);
        assert_eq!(y.to_vec(), vec![1.0, 1.0, 2.0, 3.0]);
        y.sum_all().backward().unwrap();
        assert_eq!(m.grad().unwrap().to_vec(), vec![0.0, 0.5, 1.0, 1.0]);
        assert_eq!(floor.grad().unwrap().to_vec(), vec![1.5]);
        let nan = Tensor::from_vec(vec![f32::NAN, 1.0], &[2]);
        let y = nan.maximum(&Tensor::from_vec(vec![0.0, f32::NAN], &[2])).to_vec();
        assert!(y[0].is_nan() && y[1].is_nan());
    }
}

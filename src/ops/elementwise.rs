//! Elementwise arithmetic with broadcasting: add, sub, mul, div, neg, exp, log, sqrt, pow,
//! and scalar variants. Each op's forward and its backward rule sit together.
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
    ops: &["add", "sub", "mul", "div", "neg", "exp", "log", "sqrt", "pow", "add_scalar", "mul_scalar"],
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
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

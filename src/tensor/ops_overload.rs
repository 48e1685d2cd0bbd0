//! Arithmetic operators, as PyTorch users write them: `a + b`, `&a * &b`, `t + 1.0`,
//! `2.0 * &t`, `1.0 - t`, `t / 2.0`, `-t`, on owned tensors and references alike (all four
//! combinations for two tensors). Each is the recorded op of the same name (`add`,
//! `mul_scalar`, …), so gradients flow through them.

use super::Tensor;
use std::ops::{Add, Div, Mul, Neg, Sub};

/// Tensor-tensor operators for the four owned/borrowed combinations.
macro_rules! binary_operator {
    ($trait:ident, $method:ident) => {
        impl $trait<&Tensor> for &Tensor {
            type Output = Tensor;
            fn $method(self, rhs: &Tensor) -> Tensor {
                Tensor::$method(self, rhs)
            }
        }
        impl $trait<Tensor> for Tensor {
            type Output = Tensor;
            fn $method(self, rhs: Tensor) -> Tensor {
                Tensor::$method(&self, &rhs)
            }
        }
        impl $trait<&Tensor> for Tensor {
            type Output = Tensor;
            fn $method(self, rhs: &Tensor) -> Tensor {
                Tensor::$method(&self, rhs)
            }
        }
        impl $trait<Tensor> for &Tensor {
            type Output = Tensor;
            fn $method(self, rhs: Tensor) -> Tensor {
                Tensor::$method(self, &rhs)
            }
        }
    };
}

binary_operator!(Add, add);
binary_operator!(Sub, sub);
binary_operator!(Mul, mul);
binary_operator!(Div, div);

/// Tensor-scalar operators on both sides, for `Tensor` and `&Tensor`: `$tensor_scalar`
/// computes `t op c`, `$scalar_tensor` computes `c op t`.
macro_rules! scalar_operator {
    ($trait:ident, $method:ident, $tensor_scalar:expr, $scalar_tensor:expr) => {
        impl $trait<f32> for &Tensor {
            type Output = Tensor;
            fn $method(self, c: f32) -> Tensor {
                $tensor_scalar(self, c)
            }
        }
        impl $trait<f32> for Tensor {
            type Output = Tensor;
            fn $method(self, c: f32) -> Tensor {
                $tensor_scalar(&self, c)
            }
        }
        impl $trait<&Tensor> for f32 {
            type Output = Tensor;
            fn $method(self, t: &Tensor) -> Tensor {
                $scalar_tensor(self, t)
            }
        }
        impl $trait<Tensor> for f32 {
            type Output = Tensor;
            fn $method(self, t: Tensor) -> Tensor {
                $scalar_tensor(self, &t)
            }
        }
    };
}

scalar_operator!(
    Add,
    add,
    |t: &Tensor, c| t.add_scalar(c),
    |c, t: &Tensor| t.add_scalar(c)
);
scalar_operator!(
    Sub,
    sub,
    |t: &Tensor, c: f32| t.add_scalar(-c),
    |c, t: &Tensor| t.neg().add_scalar(c)
);
scalar_operator!(
    Mul,
    mul,
    |t: &Tensor, c| t.mul_scalar(c),
    |c, t: &Tensor| t.mul_scalar(c)
);
scalar_operator!(
    Div,
    div,
    |t: &Tensor, c: f32| t.mul_scalar(1.0 / c),
    |c: f32, t: &Tensor| t.pow(-1.0).mul_scalar(c)
);

impl Neg for &Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        Tensor::neg(self)
    }
}

impl Neg for Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        Tensor::neg(&self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_on_owned_and_borrowed_tensors() {
        let a = Tensor::from_vec(vec![1.0, 2.0, 4.0], &[3]);
        let b = Tensor::from_vec(vec![2.0, 2.0, 2.0], &[3]);
        let all = [
            (&a + &b).to_vec(),
            (a.clone() + b.clone()).to_vec(),
            (a.clone() + &b).to_vec(),
            (&a + b.clone()).to_vec(),
        ];
        assert!(all.iter().all(|v| *v == vec![3.0, 4.0, 6.0]));
        assert_eq!((&a - b.clone()).to_vec(), vec![-1.0, 0.0, 2.0]);
        assert_eq!((a.clone() * &b).to_vec(), vec![2.0, 4.0, 8.0]);
        assert_eq!((a.clone() / b.clone()).to_vec(), vec![0.5, 1.0, 2.0]);
        assert_eq!((a.clone() + 1.0).to_vec(), vec![2.0, 3.0, 5.0]);
        assert_eq!((&a + 1.0).to_vec(), vec![2.0, 3.0, 5.0]);
        assert_eq!((1.0 + &a).to_vec(), vec![2.0, 3.0, 5.0]);
        assert_eq!((2.0 * &a).to_vec(), vec![2.0, 4.0, 8.0]);
        assert_eq!((2.0 * a.clone()).to_vec(), vec![2.0, 4.0, 8.0]);
        assert_eq!((a.clone() * 2.0).to_vec(), vec![2.0, 4.0, 8.0]);
        assert_eq!((1.0 - a.clone()).to_vec(), vec![0.0, -1.0, -3.0]);
        assert_eq!((&a - 1.0).to_vec(), vec![0.0, 1.0, 3.0]);
        assert_eq!((a.clone() / 2.0).to_vec(), vec![0.5, 1.0, 2.0]);
        assert_eq!((4.0 / &a).to_vec(), vec![4.0, 2.0, 1.0]);
        assert_eq!((-a.clone()).to_vec(), vec![-1.0, -2.0, -4.0]);
        assert_eq!((-&a).to_vec(), vec![-1.0, -2.0, -4.0]);
    }

    #[test]
    fn scalar_operators_are_differentiable() {
        let x = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad_();
        // d/dx (1 - 3x + 4/x) = -3 - 4/x^2
        let y = 1.0 - 3.0 * &x + 4.0 / &x;
        y.sum_all().backward().unwrap();
        assert_eq!(x.grad().unwrap().to_vec(), vec![-7.0, -4.0]);
    }
}

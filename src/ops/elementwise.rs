//! Elementwise arithmetic with broadcasting: add, sub, mul, div, neg, exp, log, sqrt, pow,
//! and scalar variants. Each op's forward and its backward rule sit together.
//!
//! Broadcasting follows PyTorch: shapes align from the right, size-1 dimensions stretch.
//! The gradient of a broadcast operand is the output gradient summed back to its shape
//! (`sum_to`).

use crate::gradcheck::Case;
use crate::tensor::layout::{broadcast_shapes, numel, Layout};
use crate::tensor::pool::collect_chunks;
use crate::tensor::Tensor;

/// Computes `f(a, b)` elementwise over the broadcast shape of `a` and `b`.
pub(crate) fn broadcast_map(
    a: &Tensor,
    b: &Tensor,
    name: &str,
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
) -> (Vec<f32>, Vec<usize>) {
    let shape = broadcast_shapes(a.shape(), b.shape()).unwrap_or_else(|| {
        panic!(
            "{name}: shapes {:?} and {:?} do not broadcast",
            a.shape(),
            b.shape()
        )
    });
    let (da, db) = (a.read_storage(), b.read_storage());
    let (la, lb) = (a.layout(), b.layout());
    let n = numel(&shape);
    if la.shape == shape && lb.shape == shape && la.is_contiguous() && lb.is_contiguous() {
        let (xa, xb) = (&da[la.offset..], &db[lb.offset..]);
        // SAFETY: every element of every chunk is written.
        let out = unsafe {
            collect_chunks(n, 1, |start, o| {
                let len = o.len();
                for ((v, &x), &y) in o
                    .iter_mut()
                    .zip(&xa[start..start + len])
                    .zip(&xb[start..start + len])
                {
                    v.write(f(x, y));
                }
            })
        };
        return (out, shape);
    }
    let la = la.broadcast_to(&shape).unwrap();
    let lb = lb.broadcast_to(&shape).unwrap();
    let inner = (*shape.last().unwrap_or(&1)).max(1);
    let (sa, sb) = (
        *la.strides.last().unwrap_or(&0),
        *lb.strides.last().unwrap_or(&0),
    );
    // SAFETY: chunks are whole rows and every element of every row is written.
    let out = unsafe {
        collect_chunks(n, inner, |start, o| {
            for (r, row) in o.chunks_mut(inner).enumerate() {
                let (oa, ob) = (
                    row_offset(&la, start / inner + r),
                    row_offset(&lb, start / inner + r),
                );
                for (k, v) in row.iter_mut().enumerate() {
                    v.write(f(da[oa + k * sa], db[ob + k * sb]));
                }
            }
        })
    };
    (out, shape)
}

/// Storage offset of the first element of row `row` (all dimensions but the last).
fn row_offset(l: &Layout, mut row: usize) -> usize {
    let mut off = l.offset;
    for d in (0..l.shape.len().saturating_sub(1)).rev() {
        let n = l.shape[d];
        off += (row % n) * l.strides[d];
        row /= n;
    }
    off
}

/// Computes `f(x)` elementwise into a fresh buffer.
pub(crate) fn unary_map(x: &Tensor, f: impl Fn(f32) -> f32 + Sync + Send) -> Vec<f32> {
    x.with_slice(|xs| {
        // SAFETY: every element of every chunk is written.
        unsafe {
            collect_chunks(xs.len(), 1, |start, o| {
                let n = o.len();
                for (v, &xi) in o.iter_mut().zip(&xs[start..start + n]) {
                    v.write(f(xi));
                }
            })
        }
    })
}

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
        Tensor::from_op(unary_map(self, |x| -x), self.shape(), "neg", &[self], |g| {
            vec![Some(g.neg())]
        })
    }

    /// `e^self`.
    pub fn exp(&self) -> Tensor {
        let data = unary_map(self, f32::exp);
        let out = Tensor::from_vec(data, self.shape());
        let saved = out.clone();
        Tensor::from_view(
            out.inner.storage.clone(),
            out.layout().clone(),
            "exp",
            &[self],
            move |g| vec![Some(g.mul(&saved))],
        )
    }

    /// Natural logarithm.
    pub fn log(&self) -> Tensor {
        let x = self.detach();
        Tensor::from_op(
            unary_map(self, f32::ln),
            self.shape(),
            "log",
            &[self],
            move |g| vec![Some(g.div(&x))],
        )
    }

    /// Square root.
    pub fn sqrt(&self) -> Tensor {
        let out = Tensor::from_vec(unary_map(self, f32::sqrt), self.shape());
        let saved = out.clone();
        Tensor::from_view(
            out.inner.storage.clone(),
            out.layout().clone(),
            "sqrt",
            &[self],
            move |g| vec![Some(g.div(&saved.mul_scalar(2.0)))],
        )
    }

    /// `self^p` for a constant exponent.
    pub fn pow(&self, p: f32) -> Tensor {
        let x = self.detach();
        Tensor::from_op(
            unary_map(self, |v| v.powf(p)),
            self.shape(),
            "pow",
            &[self],
            move |g| {
                let dx = Tensor::from_vec(unary_map(&x, |v| p * v.powf(p - 1.0)), x.shape());
                vec![Some(g.mul(&dx))]
            },
        )
    }

    /// `self + c`.
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
        Tensor::from_op(
            unary_map(self, |x| x * c),
            self.shape(),
            "mul_scalar",
            &[self],
            move |g| vec![Some(g.mul_scalar(c))],
        )
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

pub(crate) fn gradcheck_cases() -> Vec<Case> {
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
        Case::new("transpose", vec![any(&[3, 4])], |x| x[0].t().mul(&x[0].t())),
        Case::new("narrow", vec![any(&[4, 5])], |x| x[0].narrow(1, 1, 3).exp()),
        Case::new("expand", vec![any(&[3, 1])], |x| {
            x[0].expand(&[2, 3, 4]).mul_scalar(1.0)
        }),
        Case::new("reshape", vec![any(&[2, 6])], |x| {
            x[0].t().reshape(&[3, 4]).exp()
        }),
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
        y.sum_all().backward();
        assert_eq!(x.grad().unwrap().to_vec(), vec![7.0]);
    }
}

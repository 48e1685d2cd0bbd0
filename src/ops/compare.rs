//! Comparisons: `gt`, `ge`, `lt`, `le`, `eq`, `ne` of a tensor against another (with
//! broadcasting) or a scalar, giving a [`BoolTensor`] mask. Not differentiable (a mask has
//! no gradient), so not a family of [`crate::ops::FAMILIES`]; the masks feed
//! `where_cond` and `masked_fill`, which are.

use crate::ops::map::broadcast_map;
use crate::runtime::buffers;
use crate::tensor::{BoolTensor, Tensor};

/// The right-hand side of a comparison: an `f32` scalar, or a tensor (by reference or by
/// value) that broadcasts with the left-hand side.
pub trait Comparand {
    /// `f(x, self)` elementwise, as a mask of the broadcast shape; `name` is the op's, for
    /// the panic on shapes that do not broadcast.
    fn compare(self, x: &Tensor, name: &str, f: fn(f32, f32) -> bool) -> BoolTensor;
}

impl Comparand for f32 {
    fn compare(self, x: &Tensor, _name: &str, f: fn(f32, f32) -> bool) -> BoolTensor {
        let values = x.with_slice(|xs| xs.iter().map(|&v| f(v, self)).collect());
        BoolTensor::from_vec(values, x.shape())
    }
}

impl Comparand for &Tensor {
    fn compare(self, x: &Tensor, name: &str, f: fn(f32, f32) -> bool) -> BoolTensor {
        let (data, shape) = broadcast_map(x, self, name, |a, b| if f(a, b) { 1.0 } else { 0.0 });
        let values = data.iter().map(|&v| v != 0.0).collect();
        buffers::give(data);
        BoolTensor::from_vec(values, &shape)
    }
}

impl Comparand for Tensor {
    fn compare(self, x: &Tensor, name: &str, f: fn(f32, f32) -> bool) -> BoolTensor {
        (&self).compare(x, name, f)
    }
}

impl Tensor {
    /// `self > other` elementwise (PyTorch's `x > y`); `other` is a tensor that broadcasts
    /// with this one, or an `f32`.
    ///
    /// ```
    /// use neurite::Tensor;
    /// let x = Tensor::from_vec(vec![1.0, 5.0, 3.0], &[3]);
    /// assert_eq!(x.gt(2.0).to_vec(), vec![false, true, true]);
    /// let y = Tensor::from_vec(vec![1.0, 6.0, 0.0], &[3]);
    /// assert_eq!(x.ge(&y).to_vec(), vec![true, false, true]);
    /// ```
    pub fn gt(&self, other: impl Comparand) -> BoolTensor {
        other.compare(self, "gt", |a, b| a > b)
    }

    /// `self >= other` elementwise.
    pub fn ge(&self, other: impl Comparand) -> BoolTensor {
        other.compare(self, "ge", |a, b| a >= b)
    }

    /// `self < other` elementwise.
    pub fn lt(&self, other: impl Comparand) -> BoolTensor {
        other.compare(self, "lt", |a, b| a < b)
    }

    /// `self <= other` elementwise.
    pub fn le(&self, other: impl Comparand) -> BoolTensor {
        other.compare(self, "le", |a, b| a <= b)
    }

    /// `self == other` elementwise (exact f32 equality, as PyTorch's `==`).
    pub fn eq(&self, other: impl Comparand) -> BoolTensor {
        other.compare(self, "eq", |a, b| a == b)
    }

    /// `self != other` elementwise (true where either is NaN, as PyTorch's `!=`).
    pub fn ne(&self, other: impl Comparand) -> BoolTensor {
        other.compare(self, "ne", |a, b| a != b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_with_scalars_and_broadcast_tensors() {
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        assert_eq!(
            x.gt(3.0).to_vec(),
            vec![false, false, false, true, true, true]
        );
        assert_eq!(x.le(2.0).sum(), 2);
        let row = Tensor::from_vec(vec![1.0, 5.0, 3.0], &[3]);
        let m = x.eq(&row);
        assert_eq!(m.shape(), &[2, 3]);
        assert_eq!(m.to_vec(), vec![true, false, true, false, true, false]);
        assert_eq!(x.ne(row.clone()).sum(), 3);
        assert_eq!(
            x.lt(&row).to_vec(),
            vec![false, true, false, false, false, false]
        );
        assert_eq!(x.ge(&row).sum(), 5);
        // Through a transposed view, against a column.
        let col = Tensor::from_vec(vec![2.0, 2.0, 5.0], &[3, 1]);
        assert_eq!(
            x.t().gt(&col).to_vec(),
            vec![false, true, false, true, false, true]
        );
        let nan = Tensor::from_vec(vec![f32::NAN], &[1]);
        assert!(nan.ne(&nan).item() && !nan.eq(&nan).item());
    }

    #[test]
    #[should_panic(expected = "gt: shapes [2, 3] and [2] do not broadcast")]
    fn shapes_that_do_not_broadcast_are_named() {
        Tensor::zeros(&[2, 3]).gt(Tensor::zeros(&[2]));
    }
}

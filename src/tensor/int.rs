//! `IntTensor`: i64 values with a shape, for class labels, arg-max results and gather
//! indices (PyTorch's `torch.long` tensors), and [`AsIndices`], the argument type of every
//! op that takes class indices.
//!
//! A separate type rather than a dtype on [`Tensor`], so that no f32 kernel pays for a
//! branch on the element type. An `IntTensor` owns a dense row-major `Vec<i64>`: no views,
//! no autograd (integers carry no gradient).

use std::borrow::Cow;
use std::fmt;

use super::bool::BoolTensor;
use super::layout::numel;
use super::shape::IntoShape;
use super::Tensor;

/// An n-dimensional array of i64 (labels, indices), dense and row-major.
///
/// ```
/// use neurite::tensor::IntTensor;
/// let labels = IntTensor::from_slice(&[2, 0, 1]);
/// assert_eq!(labels.shape(), &[3]);
/// assert_eq!(format!("{labels}"), "tensor([2, 0, 1])");
/// let predicted = IntTensor::from_vec(vec![2, 1, 1], &[3]);
/// assert_eq!(predicted.eq(&labels).sum(), 2);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct IntTensor {
    data: Vec<i64>,
    shape: Vec<usize>,
}

impl IntTensor {
    /// A tensor that owns `data` laid out with `shape`.
    ///
    /// Panics if `data.len()` is not the product of `shape`.
    pub fn from_vec(data: Vec<i64>, shape: &[usize]) -> IntTensor {
        assert_eq!(
            data.len(),
            numel(shape),
            "IntTensor::from_vec: {} values cannot fill shape {shape:?} ({} elements)",
            data.len(),
            numel(shape)
        );
        IntTensor {
            data,
            shape: shape.to_vec(),
        }
    }

    /// A 1-D tensor of `values`.
    pub fn from_slice(values: &[i64]) -> IntTensor {
        IntTensor::from_vec(values.to_vec(), &[values.len()])
    }

    /// A 1-D tensor of class indices (`&[usize]`, as labels come from a data loader).
    pub fn from_indices(values: &[usize]) -> IntTensor {
        IntTensor::from_vec(values.iter().map(|&v| v as i64).collect(), &[values.len()])
    }

    /// `0, 1, ..., n-1`.
    pub fn arange(n: usize) -> IntTensor {
        IntTensor::from_vec((0..n as i64).collect(), &[n])
    }

    /// A tensor of `shape` filled with `value`.
    pub fn full(shape: &[usize], value: i64) -> IntTensor {
        IntTensor::from_vec(vec![value; numel(shape)], shape)
    }

    /// A rank-0 tensor holding `value`.
    pub fn scalar(value: i64) -> IntTensor {
        IntTensor::from_vec(vec![value], &[])
    }

    /// The dimensions.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The values in row-major order.
    pub fn as_slice(&self) -> &[i64] {
        &self.data
    }

    /// The values in row-major order, copied.
    pub fn to_vec(&self) -> Vec<i64> {
        self.data.clone()
    }

    /// The values as `usize` indices. Panics, naming the position, on a negative value.
    pub fn to_usize_vec(&self) -> Vec<usize> {
        self.indices("to_usize_vec").into_owned()
    }

    /// The single value of a tensor with one element.
    pub fn item(&self) -> i64 {
        assert_eq!(
            self.numel(),
            1,
            "item() needs a tensor with one element, got shape {:?}",
            self.shape
        );
        self.data[0]
    }

    /// The value at a multi-index (one index per dimension).
    pub fn get(&self, index: &[usize]) -> i64 {
        self.data[super::index::flat_index(&self.shape, index, "IntTensor::get")]
    }

    /// The same values in a new shape; one dimension may be `-1` to infer it.
    pub fn reshape(&self, shape: impl IntoShape) -> IntTensor {
        let shape = shape.resolve(self.numel(), &self.shape, "reshape");
        IntTensor::from_vec(self.data.clone(), &shape)
    }

    /// The values as f32 (PyTorch's `.float()`).
    pub fn to_float(&self) -> Tensor {
        Tensor::from_vec(self.data.iter().map(|&v| v as f32).collect(), &self.shape)
    }

    /// Elementwise `self == other` (same shape, or `other` a single value broadcast).
    pub fn eq(&self, other: &IntTensor) -> BoolTensor {
        self.compare(other, "eq", |a, b| a == b)
    }

    /// Elementwise `self != other` (same shape, or `other` a single value broadcast).
    pub fn ne(&self, other: &IntTensor) -> BoolTensor {
        self.compare(other, "ne", |a, b| a != b)
    }

    /// Elementwise `self == value`.
    pub fn eq_scalar(&self, value: i64) -> BoolTensor {
        self.compare(&IntTensor::scalar(value), "eq_scalar", |a, b| a == b)
    }

    fn compare(&self, other: &IntTensor, name: &str, f: impl Fn(i64, i64) -> bool) -> BoolTensor {
        let values = if other.numel() == 1 {
            let b = other.data[0];
            self.data.iter().map(|&a| f(a, b)).collect()
        } else {
            assert_eq!(
                self.shape, other.shape,
                "IntTensor::{name}: shapes {:?} and {:?} differ",
                self.shape, other.shape
            );
            self.data
                .iter()
                .zip(&other.data)
                .map(|(&a, &b)| f(a, b))
                .collect()
        };
        BoolTensor::from_vec(values, &self.shape)
    }

    /// Sum of all values.
    pub fn sum(&self) -> i64 {
        self.data.iter().sum()
    }

    /// The largest value (None when empty).
    pub fn max(&self) -> Option<i64> {
        self.data.iter().copied().max()
    }

    /// The smallest value (None when empty).
    pub fn min(&self) -> Option<i64> {
        self.data.iter().copied().min()
    }
}

impl Tensor {
    /// The values as i64, truncated toward zero (PyTorch's `.long()`); NaN becomes 0 and
    /// infinities saturate.
    pub fn to_int(&self) -> IntTensor {
        IntTensor::from_vec(
            self.to_vec().iter().map(|&v| v as i64).collect(),
            self.shape(),
        )
    }
}

impl From<Vec<usize>> for IntTensor {
    fn from(values: Vec<usize>) -> IntTensor {
        IntTensor::from_indices(&values)
    }
}

impl From<&[usize]> for IntTensor {
    fn from(values: &[usize]) -> IntTensor {
        IntTensor::from_indices(values)
    }
}

impl fmt::Display for IntTensor {
    /// PyTorch's layout: `tensor([[1, 2], [3, 4]])`, elided beyond 1000 elements.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&super::print::render_ints(&self.data, &self.shape))
    }
}

impl fmt::Debug for IntTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<i64> = self.data.iter().take(8).copied().collect();
        write!(f, "IntTensor(shape={:?}, values={shown:?}", self.shape)?;
        if self.data.len() > 8 {
            write!(f, " ... ({} total)", self.data.len())?;
        }
        write!(f, ")")
    }
}

/// Class indices as the ops that take them accept them: `&[usize]`, `&[usize; N]`,
/// `&Vec<usize>` (what data loaders give) or `&IntTensor` (what `argmax` gives and
/// PyTorch users hold).
///
/// ```
/// use neurite::{tensor::IntTensor, Tensor};
/// let logits = Tensor::from_vec(vec![2.0, 0.0, 0.0, 2.0], &[2, 2]);
/// let a = logits.cross_entropy(&[0, 1]);
/// let b = logits.cross_entropy(&IntTensor::from_slice(&[0, 1]));
/// assert_eq!(a.item(), b.item());
/// ```
pub trait AsIndices {
    /// The indices in row-major order. `op` names the caller in the panic on a negative
    /// index (range checks against the indexed size are the op's).
    fn indices(&self, op: &str) -> Cow<'_, [usize]>;

    /// The shape of the indices: that of an `IntTensor`, `[len]` for a slice.
    fn index_shape(&self) -> Vec<usize>;
}

impl AsIndices for &[usize] {
    fn indices(&self, _op: &str) -> Cow<'_, [usize]> {
        Cow::Borrowed(self)
    }
    fn index_shape(&self) -> Vec<usize> {
        vec![self.len()]
    }
}

impl<const N: usize> AsIndices for &[usize; N] {
    fn indices(&self, _op: &str) -> Cow<'_, [usize]> {
        Cow::Borrowed(&self[..])
    }
    fn index_shape(&self) -> Vec<usize> {
        vec![N]
    }
}

impl AsIndices for &Vec<usize> {
    fn indices(&self, _op: &str) -> Cow<'_, [usize]> {
        Cow::Borrowed(self)
    }
    fn index_shape(&self) -> Vec<usize> {
        vec![self.len()]
    }
}

impl AsIndices for &IntTensor {
    fn indices(&self, op: &str) -> Cow<'_, [usize]> {
        if let Some((pos, &v)) = self.data.iter().enumerate().find(|(_, &v)| v < 0) {
            panic!("{op}: index {v} at position {pos} is negative (indices count from 0)");
        }
        Cow::Owned(self.data.iter().map(|&v| v as usize).collect())
    }
    fn index_shape(&self) -> Vec<usize> {
        self.shape.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_and_conversions() {
        let t = IntTensor::arange(6).reshape(&[-1, 3]);
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(t.get(&[1, 2]), 5);
        assert_eq!(t.to_float().to_vec(), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        let f = Tensor::from_vec(vec![-1.7, -0.2, 0.9, 2.5], &[4]);
        assert_eq!(f.to_int().to_vec(), vec![-1, 0, 0, 2]);
        assert_eq!(IntTensor::from(vec![3usize, 1]).to_vec(), vec![3, 1]);
        assert_eq!(IntTensor::scalar(7).item(), 7);
        assert_eq!(t.sum(), 15);
        assert_eq!((t.min(), t.max()), (Some(0), Some(5)));
    }

    #[test]
    fn comparisons_give_masks() {
        let a = IntTensor::from_slice(&[1, 2, 3]);
        let b = IntTensor::from_slice(&[1, 0, 3]);
        assert_eq!(a.eq(&b).to_vec(), vec![true, false, true]);
        assert_eq!(a.ne(&b).to_vec(), vec![false, true, false]);
        assert_eq!(a.eq_scalar(2).to_vec(), vec![false, true, false]);
    }

    #[test]
    #[should_panic(expected = "gather: index -2 at position 1 is negative")]
    fn a_negative_index_is_named() {
        let t = IntTensor::from_slice(&[0, -2]);
        let _ = (&t).indices("gather");
    }

    #[test]
    #[should_panic(expected = "IntTensor::eq: shapes [3] and [2] differ")]
    fn comparing_different_shapes_is_named() {
        IntTensor::arange(3).eq(&IntTensor::arange(2));
    }
}

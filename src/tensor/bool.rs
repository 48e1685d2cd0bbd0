//! `BoolTensor`: a mask with a shape, what comparisons (`gt`, `eq`, …) return and what
//! `where_cond` and `masked_fill` read (PyTorch's `torch.bool` tensors). Dense and
//! row-major, no autograd, and apart from [`Tensor`] so that no f32 kernel pays for it.

use std::fmt;

use super::int::IntTensor;
use super::layout::{broadcast_shapes, numel, Layout};
use super::shape::IntoShape;
use super::Tensor;

/// An n-dimensional array of booleans (a mask), dense and row-major.
///
/// ```
/// use neurite::Tensor;
/// let x = Tensor::from_vec(vec![-1.0, 2.0, 0.5], &[3]);
/// let positive = x.gt(0.0);
/// assert_eq!(format!("{positive}"), "tensor([False,  True,  True])");
/// assert_eq!(positive.sum(), 2);
/// assert_eq!(x.masked_fill(&positive.not(), 0.0).to_vec(), vec![0.0, 2.0, 0.5]);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct BoolTensor {
    data: Vec<bool>,
    shape: Vec<usize>,
}

impl BoolTensor {
    /// A mask that owns `data` laid out with `shape`.
    ///
    /// Panics if `data.len()` is not the product of `shape`.
    pub fn from_vec(data: Vec<bool>, shape: &[usize]) -> BoolTensor {
        assert_eq!(
            data.len(),
            numel(shape),
            "BoolTensor::from_vec: {} values cannot fill shape {shape:?} ({} elements)",
            data.len(),
            numel(shape)
        );
        BoolTensor {
            data,
            shape: shape.to_vec(),
        }
    }

    /// A 1-D mask of `values`.
    pub fn from_slice(values: &[bool]) -> BoolTensor {
        BoolTensor::from_vec(values.to_vec(), &[values.len()])
    }

    /// A mask of `shape` filled with `value`.
    pub fn full(shape: &[usize], value: bool) -> BoolTensor {
        BoolTensor::from_vec(vec![value; numel(shape)], shape)
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
    pub fn as_slice(&self) -> &[bool] {
        &self.data
    }

    /// The values in row-major order, copied.
    pub fn to_vec(&self) -> Vec<bool> {
        self.data.clone()
    }

    /// The single value of a mask with one element.
    pub fn item(&self) -> bool {
        assert_eq!(
            self.numel(),
            1,
            "item() needs a tensor with one element, got shape {:?}",
            self.shape
        );
        self.data[0]
    }

    /// The value at a multi-index (one index per dimension).
    pub fn get(&self, index: &[usize]) -> bool {
        self.data[super::index::flat_index(&self.shape, index, "BoolTensor::get")]
    }

    /// The same values in a new shape; one dimension may be `-1` to infer it.
    pub fn reshape(&self, shape: impl IntoShape) -> BoolTensor {
        let shape = shape.resolve(self.numel(), &self.shape, "reshape");
        BoolTensor::from_vec(self.data.clone(), &shape)
    }

    /// 1.0 where true, 0.0 where false (PyTorch's `.float()`): `mask.to_float().mean_all()`
    /// is the fraction that holds.
    pub fn to_float(&self) -> Tensor {
        Tensor::from_vec(
            self.data
                .iter()
                .map(|&v| if v { 1.0 } else { 0.0 })
                .collect(),
            &self.shape,
        )
    }

    /// 1 where true, 0 where false (PyTorch's `.long()`).
    pub fn to_int(&self) -> IntTensor {
        IntTensor::from_vec(self.data.iter().map(|&v| v as i64).collect(), &self.shape)
    }

    /// How many elements are true.
    pub fn sum(&self) -> usize {
        self.data.iter().filter(|&&v| v).count()
    }

    /// Whether any element is true.
    pub fn any(&self) -> bool {
        self.data.iter().any(|&v| v)
    }

    /// Whether every element is true (true for an empty mask, as in PyTorch).
    pub fn all(&self) -> bool {
        self.data.iter().all(|&v| v)
    }

    /// Elementwise negation (PyTorch's `~mask` / `logical_not`).
    pub fn not(&self) -> BoolTensor {
        BoolTensor::from_vec(self.data.iter().map(|&v| !v).collect(), &self.shape)
    }

    /// Elementwise equality with broadcasting.
    pub fn eq(&self, other: &BoolTensor) -> BoolTensor {
        self.zip(other, "eq", |a, b| a == b)
    }

    /// Elementwise `and` with broadcasting (PyTorch's `a & b`).
    pub fn and(&self, other: &BoolTensor) -> BoolTensor {
        self.zip(other, "and", |a, b| a && b)
    }

    /// Elementwise `or` with broadcasting (PyTorch's `a | b`).
    pub fn or(&self, other: &BoolTensor) -> BoolTensor {
        self.zip(other, "or", |a, b| a || b)
    }

    /// The values broadcast to `shape` (PyTorch's `expand`, copied: masks are small).
    pub fn expand(&self, shape: &[usize]) -> BoolTensor {
        if self.shape == shape {
            return self.clone();
        }
        let layout = Layout::contiguous(&self.shape)
            .broadcast_to(shape)
            .unwrap_or_else(|| {
                panic!(
                    "BoolTensor::expand: shape {:?} cannot be broadcast to {shape:?}",
                    self.shape
                )
            });
        let mut out = Vec::with_capacity(numel(shape));
        layout.for_each_run(|start, stride, len| {
            out.extend((0..len).map(|k| self.data[start + k * stride]));
        });
        BoolTensor::from_vec(out, shape)
    }

    fn zip(&self, other: &BoolTensor, name: &str, f: impl Fn(bool, bool) -> bool) -> BoolTensor {
        let shape = broadcast_shapes(&self.shape, &other.shape).unwrap_or_else(|| {
            panic!(
                "BoolTensor::{name}: shapes {:?} and {:?} do not broadcast",
                self.shape, other.shape
            )
        });
        let (a, b) = (self.expand(&shape), other.expand(&shape));
        let data = a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect();
        BoolTensor::from_vec(data, &shape)
    }
}

impl fmt::Display for BoolTensor {
    /// PyTorch's layout: `tensor([ True, False])`, elided beyond 1000 elements.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&super::print::render_bools(&self.data, &self.shape))
    }
}

impl fmt::Debug for BoolTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<bool> = self.data.iter().take(8).copied().collect();
        write!(f, "BoolTensor(shape={:?}, values={shown:?}", self.shape)?;
        if self.data.len() > 8 {
            write!(f, " ... ({} total)", self.data.len())?;
        }
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions_and_logic() {
        let m = BoolTensor::from_vec(vec![true, false, true, true], &[2, 2]);
        assert_eq!(m.sum(), 3);
        assert!(m.any() && !m.all());
        assert!(BoolTensor::full(&[0], false).all());
        assert_eq!(m.not().to_vec(), vec![false, true, false, false]);
        let row = BoolTensor::from_slice(&[true, false]);
        assert_eq!(m.and(&row).to_vec(), vec![true, false, true, false]);
        assert_eq!(m.or(&row).to_vec(), vec![true, false, true, true]);
        assert_eq!(m.eq(&row).to_vec(), vec![true, true, true, false]);
        assert_eq!(m.to_float().to_vec(), vec![1.0, 0.0, 1.0, 1.0]);
        assert_eq!(m.to_int().to_vec(), vec![1, 0, 1, 1]);
        assert!(m.get(&[1, 0]));
        assert_eq!(m.reshape(&[-1]).shape(), &[4]);
    }

    #[test]
    fn expand_repeats_along_new_and_unit_dimensions() {
        let col = BoolTensor::from_vec(vec![true, false], &[2, 1]);
        assert_eq!(
            col.expand(&[2, 2, 3]).to_vec(),
            [[true; 3], [false; 3], [true; 3], [false; 3]].concat()
        );
    }

    #[test]
    #[should_panic(expected = "BoolTensor::and: shapes [2] and [3] do not broadcast")]
    fn mismatched_masks_are_named() {
        BoolTensor::full(&[2], true).and(&BoolTensor::full(&[3], true));
    }
}

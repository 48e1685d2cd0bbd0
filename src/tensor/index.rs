//! Indexing and slicing as in PyTorch: `t.i(1)` (`t[1]`), `t.i((.., 1..3))` (`t[:, 1:3]`),
//! `t.i((0, -1))` (`t[0, -1]`), `t.select(dim, i)`, and `t.get(&[i, j])` for one value.
//!
//! Every result is a view sharing the tensor's storage (a `narrow` per range, a `select`
//! per single index), so indexing copies nothing and gradients flow back to the slice.

use std::ops::{Range, RangeFrom, RangeFull, RangeInclusive, RangeTo, RangeToInclusive};

use super::view::pad_narrowed;
use super::Tensor;

/// One entry of an index: a single position (removes the dimension), a range (keeps it),
/// or `..` (the whole dimension).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexItem {
    /// One position; negative counts from the end (`-1` is the last).
    At(isize),
    /// Positions `start..end` (or `start..=end` when `inclusive`); a missing bound is the
    /// dimension's start or end, negative bounds count from the end, and bounds past the
    /// end are clamped as in Python's slices.
    Range {
        /// First position, `None` for 0.
        start: Option<isize>,
        /// End position, `None` for the dimension's size.
        end: Option<isize>,
        /// Whether `end` is included.
        inclusive: bool,
    },
    /// The whole dimension (`..`).
    All,
}

/// What may stand in one place of an index: integers, ranges of integers, and `..`.
pub trait IntoIndexItem {
    /// This entry as an [`IndexItem`].
    fn into_item(self) -> IndexItem;
}

/// An index for [`Tensor::i`]: one entry, or a tuple of up to six entries (one per leading
/// dimension; dimensions not named are kept whole).
pub trait TensorIndex {
    /// The entries, first dimension first.
    fn into_items(self) -> Vec<IndexItem>;
}

impl IntoIndexItem for RangeFull {
    fn into_item(self) -> IndexItem {
        IndexItem::All
    }
}

macro_rules! integer_items {
    ($($t:ty),*) => {$(
        impl IntoIndexItem for $t {
            fn into_item(self) -> IndexItem {
                IndexItem::At(self as isize)
            }
        }
        impl IntoIndexItem for Range<$t> {
            fn into_item(self) -> IndexItem {
                IndexItem::Range { start: Some(self.start as isize), end: Some(self.end as isize), inclusive: false }
            }
        }
        impl IntoIndexItem for RangeInclusive<$t> {
            fn into_item(self) -> IndexItem {
                IndexItem::Range { start: Some(*self.start() as isize), end: Some(*self.end() as isize), inclusive: true }
            }
        }
        impl IntoIndexItem for RangeFrom<$t> {
            fn into_item(self) -> IndexItem {
                IndexItem::Range { start: Some(self.start as isize), end: None, inclusive: false }
            }
        }
        impl IntoIndexItem for RangeTo<$t> {
            fn into_item(self) -> IndexItem {
                IndexItem::Range { start: None, end: Some(self.end as isize), inclusive: false }
            }
        }
        impl IntoIndexItem for RangeToInclusive<$t> {
            fn into_item(self) -> IndexItem {
                IndexItem::Range { start: None, end: Some(self.end as isize), inclusive: true }
            }
        }
        impl TensorIndex for $t {
            fn into_items(self) -> Vec<IndexItem> { vec![self.into_item()] }
        }
        impl TensorIndex for Range<$t> {
            fn into_items(self) -> Vec<IndexItem> { vec![self.into_item()] }
        }
        impl TensorIndex for RangeInclusive<$t> {
            fn into_items(self) -> Vec<IndexItem> { vec![self.into_item()] }
        }
        impl TensorIndex for RangeFrom<$t> {
            fn into_items(self) -> Vec<IndexItem> { vec![self.into_item()] }
        }
        impl TensorIndex for RangeTo<$t> {
            fn into_items(self) -> Vec<IndexItem> { vec![self.into_item()] }
        }
        impl TensorIndex for RangeToInclusive<$t> {
            fn into_items(self) -> Vec<IndexItem> { vec![self.into_item()] }
        }
    )*};
}

integer_items!(usize, isize, i32, i64);

impl TensorIndex for RangeFull {
    fn into_items(self) -> Vec<IndexItem> {
        vec![IndexItem::All]
    }
}

macro_rules! tuple_index {
    ($($name:ident),+) => {
        impl<$($name: IntoIndexItem),+> TensorIndex for ($($name,)+) {
            #[allow(non_snake_case)]
            fn into_items(self) -> Vec<IndexItem> {
                let ($($name,)+) = self;
                vec![$($name.into_item()),+]
            }
        }
    };
}

tuple_index!(A);
tuple_index!(A, B);
tuple_index!(A, B, C);
tuple_index!(A, B, C, D);
tuple_index!(A, B, C, D, E);
tuple_index!(A, B, C, D, E, F);

/// Resolves a possibly negative position against a size, or panics naming `op`.
fn position(op: &str, index: isize, dim: usize, size: usize) -> usize {
    let i = if index < 0 {
        index + size as isize
    } else {
        index
    };
    assert!(
        (0..size as isize).contains(&i),
        "{op}: index {index} is out of range for dimension {dim} of size {size}"
    );
    i as usize
}

/// The row-major position of a multi-index in a dense tensor of `shape`, or a panic
/// naming `op`, the index and the shape.
pub(crate) fn flat_index(shape: &[usize], index: &[usize], op: &str) -> usize {
    assert_eq!(
        index.len(),
        shape.len(),
        "{op}: index {index:?} has {} entries for a tensor of shape {shape:?} ({} dimensions)",
        index.len(),
        shape.len()
    );
    let mut flat = 0;
    for (d, (&i, &n)) in index.iter().zip(shape).enumerate() {
        assert!(
            i < n,
            "{op}: index {i} is out of range for dimension {d} of size {n} (index {index:?}, shape {shape:?})"
        );
        flat = flat * n + i;
    }
    flat
}

impl Tensor {
    /// Indexes this tensor as PyTorch's `t[...]` does: `t.i(2)` is `t[2]`, `t.i((.., 1..3))`
    /// is `t[:, 1:3]`, `t.i((0, -1))` is `t[0, -1]`, `t.i(1..=2)` is `t[1:3]`. A single
    /// position removes its dimension, a range keeps it. The result is a view (no copy) and
    /// is differentiable.
    ///
    /// ```
    /// use neurite::Tensor;
    /// let t = Tensor::arange(12).reshape(&[3, 4]);
    /// assert_eq!(t.i(1).to_vec(), vec![4.0, 5.0, 6.0, 7.0]);
    /// assert_eq!(t.i((.., 1..3)).shape(), &[3, 2]);
    /// assert_eq!(t.i((-1, -1)).item(), 11.0);
    /// assert_eq!(t.i((1.., ..2)).to_vec(), vec![4.0, 5.0, 8.0, 9.0]);
    /// ```
    ///
    /// Panics, naming the dimension and its size, on a position out of range or on more
    /// entries than dimensions.
    pub fn i(&self, index: impl TensorIndex) -> Tensor {
        let items = index.into_items();
        assert!(
            items.len() <= self.rank(),
            "i: {} index entries for a tensor of shape {:?} ({} dimensions)",
            items.len(),
            self.shape(),
            self.rank()
        );
        let mut out = self.clone();
        let mut dim = 0; // the dimension of `out` the next entry applies to
        for (named, item) in items.into_iter().enumerate() {
            let size = out.shape()[dim];
            match item {
                IndexItem::All => dim += 1,
                IndexItem::At(i) => {
                    // Checked here so that the message names `i` and this tensor's dimension.
                    position("i", i, named, size);
                    out = out.select(dim as isize, i);
                }
                IndexItem::Range {
                    start,
                    end,
                    inclusive,
                } => {
                    let clamp = |v: isize| {
                        let v = if v < 0 { v + size as isize } else { v };
                        v.clamp(0, size as isize) as usize
                    };
                    let s = start.map_or(0, clamp);
                    let e = match end {
                        None => size,
                        Some(e) if inclusive => clamp(e).saturating_add(1).min(size),
                        Some(e) => clamp(e),
                    };
                    out = out.narrow(dim, s, e.saturating_sub(s));
                    dim += 1;
                }
            }
        }
        out
    }

    /// The slice at position `index` of dimension `dim`, with that dimension removed
    /// (PyTorch's `select`; `t.select(0, i)` is `t[i]`). Negative `dim` and `index` count
    /// from the end. A view, differentiable.
    pub fn select(&self, dim: isize, index: isize) -> Tensor {
        let d = self.axis(dim);
        assert!(
            self.rank() > 0,
            "select: cannot index a tensor of rank 0 (shape [])"
        );
        let i = position("select", index, d, self.shape()[d]);
        let l = self.layout();
        let mut layout = l.clone();
        layout.offset += i * l.strides[d];
        layout.shape.remove(d);
        layout.strides.remove(d);
        let in_shape = self.shape().to_vec();
        Tensor::from_view(
            self.inner.storage.clone(),
            layout,
            "select",
            &[self],
            move |g| vec![Some(pad_narrowed(&g.unsqueeze(d), &in_shape, d, i))],
        )
    }

    /// The element at a multi-index (one position per dimension), read through the layout
    /// without copying the tensor. Panics, naming the dimension and its size, when out of
    /// range.
    ///
    /// ```
    /// use neurite::Tensor;
    /// let t = Tensor::arange(6).reshape(&[2, 3]);
    /// assert_eq!(t.get(&[1, 2]), 5.0);
    /// assert_eq!(t.t().get(&[2, 1]), 5.0);
    /// ```
    pub fn get(&self, index: &[usize]) -> f32 {
        flat_index(self.shape(), index, "get"); // checks the index
        let l = self.layout();
        let at: usize = index.iter().zip(&l.strides).map(|(i, s)| i * s).sum();
        self.read_storage()[l.offset + at]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::arange(n).reshape(shape)
    }

    #[test]
    fn indexes_as_pytorch_does() {
        let t = seq(&[3, 4]);
        assert_eq!(t.i(-1).to_vec(), vec![8.0, 9.0, 10.0, 11.0]);
        assert_eq!(
            t.i((.., 1..3)).to_vec(),
            vec![1.0, 2.0, 5.0, 6.0, 9.0, 10.0]
        );
        assert_eq!(t.i((.., -1)).to_vec(), vec![3.0, 7.0, 11.0]);
        assert_eq!(t.i((0, ..)).shape(), &[4]);
        assert_eq!(t.i((..=1, 2..)).to_vec(), vec![2.0, 3.0, 6.0, 7.0]);
        assert_eq!(
            t.i((.., -2..)).to_vec(),
            vec![2.0, 3.0, 6.0, 7.0, 10.0, 11.0]
        );
        // Python clamps slice bounds: t[1:10] has the last two rows.
        assert_eq!(t.i(1..10).shape(), &[2, 4]);
        assert_eq!(t.i(3..).shape(), &[0, 4]);
        let u = seq(&[2, 3, 4]);
        assert_eq!(u.i((1, .., 2)).to_vec(), vec![14.0, 18.0, 22.0]);
        assert_eq!(u.i((1, 2, 3)).shape(), &[] as &[usize]);
        assert_eq!(u.i((1, 2, 3)).item(), 23.0);
        let n: usize = 1;
        assert_eq!(u.i((n, 0..n)).to_vec(), vec![12.0, 13.0, 14.0, 15.0]);
        assert!(u.i((.., 1)).shares_storage(&u), "indexing gives views");
        assert_eq!(u.select(2, -1).to_vec(), u.i((.., .., 3)).to_vec());
        assert_eq!(u.get(&[1, 0, 3]), 15.0);
        assert_eq!(u.permute(&[2, 0, 1]).get(&[3, 1, 0]), 15.0);
    }

    #[test]
    fn gradients_flow_back_to_the_slice() {
        let x = seq(&[2, 3]).requires_grad_();
        x.i((.., 1..))
            .sum_all()
            .add(&x.i((1, 0)).mul_scalar(5.0))
            .backward()
            .unwrap();
        assert_eq!(
            x.grad().unwrap().to_vec(),
            vec![0.0, 1.0, 1.0, 5.0, 1.0, 1.0]
        );
    }

    #[test]
    #[should_panic(expected = "i: index 3 is out of range for dimension 1 of size 3")]
    fn a_position_out_of_range_is_named() {
        seq(&[2, 3]).i((0, 3));
    }

    #[test]
    #[should_panic(expected = "i: index -3 is out of range for dimension 0 of size 2")]
    fn a_negative_position_out_of_range_is_named() {
        seq(&[2, 3]).i(-3);
    }

    #[test]
    #[should_panic(expected = "i: 3 index entries for a tensor of shape [2, 3] (2 dimensions)")]
    fn too_many_entries_are_named() {
        seq(&[2, 3]).i((0, 0, 0));
    }

    #[test]
    #[should_panic(expected = "get: index 2 is out of range for dimension 0 of size 2")]
    fn get_out_of_range_is_named() {
        seq(&[2, 3]).get(&[2, 0]);
    }
}

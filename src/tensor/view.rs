//! View operations: new shapes over the same storage, and their gradients.

use super::layout::{contiguous_strides, numel, Layout};
use super::shape::IntoShape;
use super::Tensor;
use std::sync::Arc;

impl Tensor {
    /// A dense copy when the tensor is a non-contiguous view, else the tensor itself.
    pub fn contiguous(&self) -> Tensor {
        if self.is_contiguous() {
            return self.clone();
        }
        self.contiguous_copy()
    }

    /// This tensor if it is the only user of a dense buffer of its own, else a copy: the
    /// result can be modified in place without affecting any other tensor.
    pub(crate) fn into_exclusive(self) -> Tensor {
        let whole = self.is_contiguous()
            && self.layout().offset == 0
            && self.read_storage().len() == self.numel();
        if whole
            && Arc::strong_count(&self.inner.storage) == 1
            && Arc::strong_count(&self.inner) == 1
        {
            self
        } else {
            Tensor::from_vec(self.to_vec(), self.shape())
        }
    }

    /// Always a fresh dense buffer (recorded: the gradient passes through unchanged).
    pub(crate) fn contiguous_copy(&self) -> Tensor {
        Tensor::from_op(self.to_vec(), self.shape(), "contiguous", &[self], |g| {
            vec![Some(g.clone())]
        })
    }

    /// The same elements in a new shape (PyTorch's `reshape`): a view when the tensor is
    /// contiguous, a copy otherwise. One dimension may be `-1` to infer it:
    /// `x.reshape(&[-1, 10])`; `&[usize]`, `&Vec<usize>` and arrays work as well (see
    /// [`IntoShape`]).
    ///
    /// ```
    /// use neurite::Tensor;
    /// let x = Tensor::arange(30);
    /// assert_eq!(x.reshape(&[-1, 10]).shape(), &[3, 10]);
    /// assert_eq!(x.reshape(&[5, 6]).shape(), &[5, 6]);
    /// ```
    ///
    /// Panics when two dimensions are `-1` or the sizes do not multiply to the element
    /// count.
    pub fn reshape(&self, shape: impl IntoShape) -> Tensor {
        let shape = shape.resolve(self.numel(), self.shape(), "reshape");
        let src = self.contiguous();
        let layout = Layout {
            strides: contiguous_strides(&shape),
            shape: shape.clone(),
            offset: src.layout().offset,
        };
        let in_shape = self.shape().to_vec();
        Tensor::from_view(
            src.inner.storage.clone(),
            layout,
            "reshape",
            &[&src],
            move |g| vec![Some(g.reshape(&in_shape))],
        )
    }

    /// Flattens dimensions `start..` into one (`flatten(1)` turns `[N, C, H, W]` into `[N, C*H*W]`).
    pub fn flatten(&self, start: usize) -> Tensor {
        let mut shape = self.shape()[..start].to_vec();
        shape.push(self.shape()[start..].iter().product());
        self.reshape(&shape)
    }

    /// Inserts a dimension of size 1 at `d`.
    pub fn unsqueeze(&self, d: usize) -> Tensor {
        let mut shape = self.shape().to_vec();
        assert!(
            d <= shape.len(),
            "unsqueeze: dimension {d} out of range for shape {shape:?}"
        );
        shape.insert(d, 1);
        self.reshape(&shape)
    }

    /// Removes dimension `d`, which must have size 1.
    pub fn squeeze(&self, d: usize) -> Tensor {
        let mut shape = self.shape().to_vec();
        assert!(
            shape.get(d) == Some(&1),
            "squeeze: dimension {d} of shape {shape:?} is not of size 1"
        );
        shape.remove(d);
        self.reshape(&shape)
    }

    /// Reorders the dimensions: output dimension `i` is input dimension `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Tensor {
        let rank = self.rank();
        let mut seen = vec![false; rank];
        assert!(
            perm.len() == rank
                && perm
                    .iter()
                    .all(|&p| p < rank && !std::mem::replace(&mut seen[p], true)),
            "permute: {perm:?} is not a permutation of the {rank} dimensions of shape {:?}",
            self.shape()
        );
        let l = self.layout();
        let layout = Layout {
            shape: perm.iter().map(|&p| l.shape[p]).collect(),
            strides: perm.iter().map(|&p| l.strides[p]).collect(),
            offset: l.offset,
        };
        let mut inverse = vec![0; rank];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        Tensor::from_view(
            self.inner.storage.clone(),
            layout,
            "permute",
            &[self],
            move |g| vec![Some(g.permute(&inverse))],
        )
    }

    /// Swaps two dimensions (negative indices count from the end).
    pub fn transpose(&self, a: isize, b: isize) -> Tensor {
        let (a, b) = (self.axis(a), self.axis(b));
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// The transpose of a matrix (swaps the last two dimensions).
    pub fn t(&self) -> Tensor {
        assert!(
            self.rank() >= 2,
            "t() needs at least 2 dimensions, got shape {:?}",
            self.shape()
        );
        self.transpose(-2, -1)
    }

    /// The elements `start..start+len` along dimension `d`, as a view.
    pub fn narrow(&self, d: usize, start: usize, len: usize) -> Tensor {
        assert!(
            d < self.rank() && start + len <= self.shape()[d],
            "narrow: range {start}..{} of dimension {d} is outside shape {:?}",
            start + len,
            self.shape()
        );
        let l = self.layout();
        let mut layout = l.clone();
        layout.shape[d] = len;
        layout.offset += start * l.strides[d];
        let in_shape = self.shape().to_vec();
        Tensor::from_view(
            self.inner.storage.clone(),
            layout,
            "narrow",
            &[self],
            move |g| vec![Some(pad_narrowed(g, &in_shape, d, start))],
        )
    }

    /// A view that repeats this tensor to `shape` along dimensions of size 1 and new leading
    /// dimensions (PyTorch's `expand`, NumPy's `broadcast_to`).
    pub fn expand(&self, shape: &[usize]) -> Tensor {
        if self.shape() == shape {
            return self.clone();
        }
        let layout = self.layout().broadcast_to(shape).unwrap_or_else(|| {
            panic!(
                "expand: shape {:?} cannot be broadcast to {shape:?}",
                self.shape()
            )
        });
        let in_shape = self.shape().to_vec();
        Tensor::from_view(
            self.inner.storage.clone(),
            layout,
            "expand",
            &[self],
            move |g| vec![Some(g.sum_to(&in_shape))],
        )
    }
}

/// The gradient of `narrow`: `g` placed at `start..` along `d` in zeros of `shape`.
pub(super) fn pad_narrowed(g: &Tensor, shape: &[usize], d: usize, start: usize) -> Tensor {
    let mut out = vec![0.0; numel(shape)];
    let strides = contiguous_strides(shape);
    let target = Layout {
        shape: g.shape().to_vec(),
        strides: strides.clone(),
        offset: start * strides[d],
    };
    let values = g.to_vec();
    let mut pos = 0;
    target.for_each_run(|s, stride, len| {
        for k in 0..len {
            out[s + k * stride] = values[pos + k];
        }
        pos += len;
    });
    Tensor::from_vec(out, shape)
}

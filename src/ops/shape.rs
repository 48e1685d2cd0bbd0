//! Joining, cutting and selecting along one dimension: `cat`, `stack`, `split`,
//! `index_select`.
//!
//! Every op here sees a tensor as `[outer, n, inner]` around the chosen dimension, so the
//! work is copies of contiguous runs. Backward rules: `cat` and `stack` hand each input its
//! slice of the gradient; a `split` piece places its gradient at its offset in zeros of the input's
//! shape; `index_select` scatter-adds the gradient rows back (repeated indices add up).
//!
//! The views (`reshape`, `permute`, `transpose`, `narrow`, `expand`) and `contiguous` live
//! with the tensor (`crate::tensor`); their gradient checks are this family's too.

use crate::gradcheck::Case;
use crate::kernels::gather::{gather_rows, scatter_add_rows};
use crate::ops::Family;
use crate::runtime::buffers;
use crate::tensor::Tensor;
use crate::tensor::layout::numel;

/// `(outer, n, inner)` of `shape` around dimension `d`.
fn around(shape: &[usize], d: usize) -> (usize, usize, usize) {
    (
        shape[..d].iter().product(),
        shape[d],
        shape[d + 1..].iter().product(),
    )
}

/// Copies `src` (`[outer, len, inner]`) into `dst` (`[outer, n, inner]`) at `start..` of the
/// middle dimension.
fn place(
    src: &[f32],
    dst: &mut [f32],
    outer: usize,
    n: usize,
    inner: usize,
    start: usize,
    len: usize,
) {
    let run = len * inner;
    for o in 0..outer {
        let d = (o * n + start) * inner;
        dst[d..d + run].copy_from_slice(&src[o * run..(o + 1) * run]);
    }
}

/// The slice `start..start+len` of the middle dimension of `src` (`[outer, n, inner]`).
fn slice_out(
    src: &[f32],
    outer: usize,
    n: usize,
    inner: usize,
    start: usize,
    len: usize,
) -> Vec<f32> {
    let run = len * inner;
    let mut out = Vec::with_capacity(outer * run);
    for o in 0..outer {
        let s = (o * n + start) * inner;
        out.extend_from_slice(&src[s..s + run]);
    }
    out
}

impl Tensor {
    /// Concatenates tensors along dimension `dim` (PyTorch's `torch.cat`). All tensors have
    /// the same rank and agree on every other dimension. The gradient of each input is its
    /// slice of the output gradient.
    pub fn cat(tensors: &[&Tensor], dim: usize) -> Tensor {
        assert!(!tensors.is_empty(), "cat: no tensors to concatenate");
        let shapes: Vec<Vec<usize>> = tensors.iter().map(|t| t.shape().to_vec()).collect();
        let first = &shapes[0];
        assert!(
            dim < first.len()
                && shapes.iter().all(|s| {
                    s.len() == first.len() && (0..s.len()).all(|i| i == dim || s[i] == first[i])
                }),
            "cat: shapes {shapes:?} cannot be concatenated along dimension {dim}"
        );
        let sizes: Vec<usize> = shapes.iter().map(|s| s[dim]).collect();
        let mut shape = first.clone();
        shape[dim] = sizes.iter().sum();
        let (outer, n, inner) = around(&shape, dim);
        let mut out = buffers::take(numel(&shape)); // the pieces cover it
        let mut start = 0;
        for (t, &len) in tensors.iter().zip(&sizes) {
            t.with_slice(|s| place(s, &mut out, outer, n, inner, start, len));
            start += len;
        }
        Tensor::from_op(out, &shape, "cat", tensors, move |g| {
            g.with_slice(|gs| {
                let mut start = 0;
                shapes
                    .iter()
                    .zip(&sizes)
                    .map(|(s, &len)| {
                        let piece = slice_out(gs, outer, n, inner, start, len);
                        start += len;
                        Some(Tensor::from_vec(piece, s))
                    })
                    .collect()
            })
        })
    }

    /// Stacks tensors of one shape along a new dimension `dim` (PyTorch's `torch.stack`):
    /// `n` tensors of shape `[a, b]` stacked at `dim = 1` give `[a, n, b]`; `dim` may be
    /// the rank (a new last dimension). The gradient of each input is its slice of the
    /// output gradient.
    ///
    /// ```
    /// use neurite::Tensor;
    /// let a = Tensor::from_vec(vec![1.0, 2.0], &[2]);
    /// let b = Tensor::from_vec(vec![3.0, 4.0], &[2]);
    /// let rows = Tensor::stack(&[&a, &b], 0); // [2, 2]
    /// assert_eq!(rows.to_vec(), vec![1.0, 2.0, 3.0, 4.0]);
    /// let cols = Tensor::stack(&[&a, &b], 1); // [2, 2]
    /// assert_eq!(cols.to_vec(), vec![1.0, 3.0, 2.0, 4.0]);
    /// ```
    pub fn stack(tensors: &[&Tensor], dim: usize) -> Tensor {
        assert!(!tensors.is_empty(), "stack: no tensors to stack");
        let in_shape = tensors[0].shape().to_vec();
        if let Some(t) = tensors.iter().find(|t| t.shape() != in_shape) {
            panic!(
                "stack: every tensor must have the same shape, got {in_shape:?} and {:?}",
                t.shape()
            );
        }
        assert!(
            dim <= in_shape.len(),
            "stack: dimension {dim} is out of range for tensors of shape {in_shape:?} (at most {})",
            in_shape.len()
        );
        let mut shape = in_shape.clone();
        shape.insert(dim, tensors.len());
        let (outer, n, inner) = around(&shape, dim);
        let mut out = buffers::take(numel(&shape)); // the inputs cover it
        for (k, t) in tensors.iter().enumerate() {
            t.with_slice(|s| place(s, &mut out, outer, n, inner, k, 1));
        }
        Tensor::from_op(out, &shape, "stack", tensors, move |g| {
            g.with_slice(|gs| {
                (0..n)
                    .map(|k| {
                        let piece = slice_out(gs, outer, n, inner, k, 1);
                        Some(Tensor::from_vec(piece, &in_shape))
                    })
                    .collect()
            })
        })
    }

    /// Cuts this tensor along `dim` into consecutive pieces of the given `sizes`, which must
    /// add up to the dimension (PyTorch's `torch.split` with a list of sizes; use
    /// [`Tensor::chunk_sizes`] for equal chunks). Each piece is a view sharing this
    /// tensor's storage, as a `narrow`; the gradient of a piece is placed at its offset in
    /// zeros of this tensor's shape (the pieces' gradients are then summed by autograd,
    /// one full-size buffer per piece used: cheap for the few pieces of a q/k/v split).
    pub fn split(&self, sizes: &[usize], dim: usize) -> Vec<Tensor> {
        assert!(
            dim < self.rank() && sizes.iter().sum::<usize>() == self.shape()[dim],
            "split: sizes {sizes:?} do not add up to dimension {dim} of shape {:?}",
            self.shape()
        );
        let in_shape = self.shape().to_vec();
        let (outer, n, inner) = around(&in_shape, dim);
        let mut start = 0;
        sizes
            .iter()
            .map(|&len| {
                let view = self.detach().narrow(dim, start, len);
                let in_shape = in_shape.clone();
                let piece_start = start;
                start += len;
                Tensor::from_view(
                    view.inner.storage.clone(),
                    view.layout().clone(),
                    "split",
                    &[self],
                    move |g| {
                        let mut dx = vec![0.0; numel(&in_shape)];
                        g.with_slice(|gs| place(gs, &mut dx, outer, n, inner, piece_start, len));
                        vec![Some(Tensor::from_vec(dx, &in_shape))]
                    },
                )
            })
            .collect()
    }

    /// Sizes for splitting a dimension of `len` into chunks of `chunk` (the last one may be
    /// shorter), PyTorch's `torch.split(x, chunk, dim)`: `x.split(&Tensor::chunk_sizes(n, c), d)`.
    pub fn chunk_sizes(len: usize, chunk: usize) -> Vec<usize> {
        assert!(chunk > 0, "chunk_sizes: chunk size must be positive");
        (0..len)
            .step_by(chunk)
            .map(|s| chunk.min(len - s))
            .collect()
    }

    /// The entries `index` along dimension `dim` (PyTorch's `index_select`): the output has
    /// `index.len()` in place of that dimension. Indices may repeat; their gradients add up.
    pub fn index_select(&self, dim: usize, index: &[usize]) -> Tensor {
        assert!(
            dim < self.rank(),
            "index_select: dimension {dim} is out of range for shape {:?}",
            self.shape()
        );
        let in_shape = self.shape().to_vec();
        let (outer, n, inner) = around(&in_shape, dim);
        if let Some((pos, &bad)) = index.iter().enumerate().find(|(_, &i)| i >= n) {
            panic!(
                "index_select: index {bad} (at position {pos}) is out of range for dimension {dim} of shape {in_shape:?}"
            );
        }
        let mut shape = in_shape.clone();
        shape[dim] = index.len();
        let mut out = buffers::take(numel(&shape)); // every row gathered
        self.with_slice(|s| gather_rows(s, n, inner, index, &mut out));
        let index = index.to_vec();
        Tensor::from_op(out, &shape, "index_select", &[self], move |g| {
            let mut dx = vec![0.0; outer * n * inner];
            g.with_slice(|gs| scatter_add_rows(gs, n, inner, &index, &mut dx));
            vec![Some(Tensor::from_vec(dx, &in_shape))]
        })
    }
}

/// The ops of this module and their gradient checks (a row of [`crate::ops::FAMILIES`]).
pub(crate) const FAMILY: Family = Family {
    name: "shape",
    ops: &["cat", "stack", "split", "index_select", "reshape", "permute", "transpose", "narrow", "select", "expand", "contiguous"],
    cases: gradcheck_cases,
};

fn gradcheck_cases() -> Vec<Case> {
    let any = |shape: &[usize]| Tensor::randn(shape, 0.0, 1.0);
    vec![
        Case::new(
            "cat",
            vec![any(&[2, 3, 4]), any(&[2, 1, 4]), any(&[2, 2, 4])],
            |x| Tensor::cat(&[&x[0], &x[1], &x[2]], 1),
        ),
        // A transposed (non-contiguous) input, and the same tensor twice.
        Case::new("cat", vec![any(&[3, 2]), any(&[2, 3])], |x| {
            Tensor::cat(&[&x[0].t(), &x[1], &x[0].t()], 1)
        }),
        Case::new("stack", vec![any(&[2, 3]), any(&[2, 3]), any(&[2, 3])], |x| {
            Tensor::stack(&[&x[0], &x[1], &x[2]], 1)
        }),
        // A transposed input, the same tensor twice, and a new last dimension.
        Case::new("stack", vec![any(&[3, 2]), any(&[2, 3])], |x| {
            Tensor::stack(&[&x[0].t(), &x[1], &x[0].t()], 2)
        }),
        Case::new("split", vec![any(&[2, 7, 3])], |x| {
            let p = x[0].split(&[2, 4, 1], 1);
            // Pieces used unequally so that each gradient is distinct.
            Tensor::cat(&[&p[2].mul_scalar(3.0), &p[0].exp(), &p[1]], 1)
        }),
        Case::new("split", vec![any(&[5, 4])], |x| {
            let p = x[0].split(&Tensor::chunk_sizes(5, 2), 0);
            p[0].sum_all().add(&p[2].mul(&p[2]).sum_all())
        }),
        Case::new("index_select", vec![any(&[4, 5, 3])], |x| {
            x[0].index_select(1, &[4, 0, 4, 2, 4])
        }),
        Case::new("index_select", vec![any(&[6, 2])], |x| {
            x[0].index_select(0, &[5, 5, 1])
        }),
        // The views of `crate::tensor` (their backward rules live there).
        Case::new("transpose", vec![any(&[3, 4])], |x| x[0].t().mul(&x[0].t())),
        Case::new("narrow", vec![any(&[4, 5])], |x| x[0].narrow(1, 1, 3).exp()),
        Case::new("select", vec![any(&[3, 4, 2])], |x| {
            x[0].select(1, -1).mul(&x[0].i((.., 1..3, 0)).t().select(0, 0).unsqueeze(1))
        }),
        Case::new("expand", vec![any(&[3, 1])], |x| {
            x[0].expand(&[2, 3, 4]).mul_scalar(1.0)
        }),
        Case::new("reshape", vec![any(&[2, 6])], |x| {
            x[0].t().reshape(&[3, 4]).exp()
        }),
        Case::new("permute", vec![any(&[2, 3, 4])], |x| {
            x[0].permute(&[2, 0, 1]).mul(&x[0].permute(&[2, 0, 1]))
        }),
        Case::new("contiguous", vec![any(&[3, 5])], |x| {
            x[0].t().contiguous().exp()
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(shape: &[usize]) -> Tensor {
        Tensor::from_vec((0..numel(shape)).map(|v| v as f32).collect(), shape)
    }

    #[test]
    fn cat_then_split_round_trips() {
        let a = seq(&[2, 3]);
        let b = seq(&[2, 1]).add_scalar(100.0);
        let c = Tensor::cat(&[&a, &b], 1);
        assert_eq!(c.shape(), &[2, 4]);
        assert_eq!(c.to_vec(), vec![0.0, 1.0, 2.0, 100.0, 3.0, 4.0, 5.0, 101.0]);
        let parts = c.split(&[3, 1], 1);
        assert_eq!(parts[0].to_vec(), a.to_vec());
        assert_eq!(parts[1].to_vec(), b.to_vec());
        assert!(parts[0].shares_storage(&c), "split pieces are views");
        let rows = Tensor::cat(&[&a, &a], 0);
        assert_eq!(rows.shape(), &[4, 3]);
        assert_eq!(rows.to_vec()[6..], a.to_vec()[..]);
    }

    #[test]
    fn split_gradients_land_in_their_slices() {
        let x = seq(&[2, 5]).requires_grad_();
        let p = x.split(&Tensor::chunk_sizes(5, 2), 1);
        assert_eq!(
            p.iter().map(|t| t.dim(1)).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        p[1].mul_scalar(2.0)
            .sum_all()
            .add(&p[2].mul_scalar(-1.0).sum_all())
            .backward().unwrap();
        assert_eq!(
            x.grad().unwrap().to_vec(),
            vec![0.0, 0.0, 2.0, 2.0, -1.0, 0.0, 0.0, 2.0, 2.0, -1.0]
        );
    }

    #[test]
    fn index_select_gathers_and_accumulates_repeats() {
        let x = seq(&[3, 2]).requires_grad_();
        let y = x.index_select(0, &[2, 0, 2]);
        assert_eq!(y.to_vec(), vec![4.0, 5.0, 0.0, 1.0, 4.0, 5.0]);
        y.sum_all().backward().unwrap();
        assert_eq!(
            x.grad().unwrap().to_vec(),
            vec![1.0, 1.0, 0.0, 0.0, 2.0, 2.0]
        );
        let cols = seq(&[2, 3]).index_select(1, &[1]);
        assert_eq!(cols.shape(), &[2, 1]);
        assert_eq!(cols.to_vec(), vec![1.0, 4.0]);
    }

    #[test]
    #[should_panic(
        expected = "index_select: index 3 (at position 1) is out of range for dimension 0 of shape [3, 2]"
    )]
    fn index_select_out_of_range_is_named() {
        seq(&[3, 2]).index_select(0, &[0, 3]);
    }

    #[test]
    #[should_panic(
        expected = "cat: shapes [[2, 3], [3, 3]] cannot be concatenated along dimension 1"
    )]
    fn cat_mismatch_is_named() {
        Tensor::cat(&[&seq(&[2, 3]), &seq(&[3, 3])], 1);
    }

    #[test]
    fn stack_inserts_a_dimension_and_splits_the_gradient() {
        let a = seq(&[2, 3]).requires_grad_();
        let b = seq(&[2, 3]).add_scalar(10.0).requires_grad_();
        let first = Tensor::stack(&[&a, &b], 0);
        assert_eq!(first.shape(), &[2, 2, 3]);
        assert_eq!(first.to_vec()[..6], a.to_vec()[..]);
        let mid = Tensor::stack(&[&a, &b], 1);
        assert_eq!(mid.shape(), &[2, 2, 3]);
        assert_eq!(
            mid.to_vec(),
            vec![0.0, 1.0, 2.0, 10.0, 11.0, 12.0, 3.0, 4.0, 5.0, 13.0, 14.0, 15.0]
        );
        let last = Tensor::stack(&[&a, &b], 2);
        assert_eq!(last.shape(), &[2, 3, 2]);
        assert_eq!(last.to_vec()[..4], [0.0, 10.0, 1.0, 11.0]);
        // Weights 1 for `a`'s slice and 2 for `b`'s reach each input.
        let w = Tensor::from_vec(vec![1.0, 2.0], &[2, 1]);
        mid.mul(&w).sum_all().backward().unwrap();
        assert_eq!(a.grad().unwrap().to_vec(), vec![1.0; 6]);
        assert_eq!(b.grad().unwrap().to_vec(), vec![2.0; 6]);
    }

    #[test]
    #[should_panic(expected = "stack: every tensor must have the same shape, got [2, 3] and [3, 2]")]
    fn stack_of_different_shapes_is_named() {
        Tensor::stack(&[&seq(&[2, 3]), &seq(&[3, 2])], 0);
    }
}

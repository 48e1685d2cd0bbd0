//! Reductions over axes: sum, mean, max (gradient to the arg-max), and arg-max.

use crate::gradcheck::Case;
use crate::kernels::vector;
use crate::ops::Family;
use crate::tensor::{IntTensor, Tensor};
use crate::tensor::layout::numel;
use rayon::prelude::*;

/// A reduction laid out as `[outer, reduced, inner]` after moving the reduced axes together.
struct Plan {
    /// The input with reduced axes moved to the middle (a contiguous tensor).
    data: Tensor,
    outer: usize,
    reduced: usize,
    inner: usize,
    /// Output shape with the reduced axes kept as 1.
    keep_shape: Vec<usize>,
    /// Permutation applied to the input (identity when no copy was needed).
    perm: Vec<usize>,
}

fn plan(x: &Tensor, axes: &[usize], name: &str) -> Plan {
    let rank = x.rank();
    let mut is_reduced = vec![false; rank];
    for &a in axes {
        assert!(
            a < rank,
            "{name}: axis {a} out of range for shape {:?}",
            x.shape()
        );
        is_reduced[a] = true;
    }
    let mut keep_shape = x.shape().to_vec();
    for (d, r) in is_reduced.iter().enumerate() {
        if *r {
            keep_shape[d] = 1;
        }
    }
    // Reduced axes already form one block: no copy needed, reduce in place.
    let first = is_reduced.iter().position(|&r| r).unwrap_or(rank);
    let last = is_reduced.iter().rposition(|&r| r).map_or(rank, |p| p + 1);
    let block = (first..last).all(|d| is_reduced[d]);
    let (data, perm, outer_dims, red_dims, inner_dims) = if block {
        let s = x.shape();
        (
            x.contiguous(),
            (0..rank).collect(),
            s[..first].to_vec(),
            s[first..last].to_vec(),
            s[last..].to_vec(),
        )
    } else {
        let kept: Vec<usize> = (0..rank).filter(|&d| !is_reduced[d]).collect();
        let red: Vec<usize> = (0..rank).filter(|&d| is_reduced[d]).collect();
        let perm: Vec<usize> = kept.iter().chain(&red).copied().collect();
        let s = x.shape();
        let outer_dims = kept.iter().map(|&d| s[d]).collect();
        let red_dims = red.iter().map(|&d| s[d]).collect();
        (
            x.detach().permute(&perm).contiguous(),
            perm,
            outer_dims,
            red_dims,
            vec![],
        )
    };
    Plan {
        data,
        outer: numel(&outer_dims),
        reduced: numel(&red_dims),
        inner: numel(&inner_dims),
        keep_shape,
        perm,
    }
}

fn output_shape(keep_shape: &[usize], axes: &[usize], keepdim: bool) -> Vec<usize> {
    if keepdim {
        return keep_shape.to_vec();
    }
    keep_shape
        .iter()
        .enumerate()
        .filter(|(d, _)| !axes.contains(d))
        .map(|(_, &s)| s)
        .collect()
}

/// Sums `[outer, reduced, inner]` over the middle axis.
fn sum_kernel(x: &[f32], outer: usize, reduced: usize, inner: usize) -> Vec<f32> {
    let mut out = vec![0.0; outer * inner];
    if inner == 1 {
        out.par_iter_mut()
            .enumerate()
            .with_min_len(64)
            .for_each(|(o, v)| *v = vector::sum(&x[o * reduced..(o + 1) * reduced]));
    } else {
        out.par_chunks_mut(inner).enumerate().for_each(|(o, acc)| {
            for r in 0..reduced {
                let start = (o * reduced + r) * inner;
                vector::add_assign(acc, &x[start..start + inner]);
            }
        });
    }
    out
}

fn normalize_axes(x: &Tensor, axes: &[isize]) -> Vec<usize> {
    let mut a: Vec<usize> = axes.iter().map(|&d| x.axis(d)).collect();
    a.sort_unstable();
    a.dedup();
    a
}

impl Tensor {
    /// Sum over `axes` (each counted once), keeping them as size 1 when `keepdim`.
    pub fn sum_axes(&self, axes: &[usize], keepdim: bool) -> Tensor {
        let p = plan(self, axes, "sum");
        let data = p
            .data
            .with_slice(|x| sum_kernel(x, p.outer, p.reduced, p.inner));
        let shape = output_shape(&p.keep_shape, axes, keepdim);
        let (keep_shape, in_shape) = (p.keep_shape, self.shape().to_vec());
        Tensor::from_op(data, &shape, "sum", &[self], move |g| {
            vec![Some(g.reshape(&keep_shape).expand(&in_shape).contiguous())]
        })
    }

    /// Sum over one axis (negative counts from the end).
    pub fn sum(&self, axis: isize, keepdim: bool) -> Tensor {
        self.sum_axes(&normalize_axes(self, &[axis]), keepdim)
    }

    /// Sum of all elements, as a rank-0 tensor.
    pub fn sum_all(&self) -> Tensor {
        let axes: Vec<usize> = (0..self.rank()).collect();
        self.sum_axes(&axes, false)
    }

    /// Mean over `axes`.
    pub fn mean_axes(&self, axes: &[usize], keepdim: bool) -> Tensor {
        let count: usize = axes.iter().map(|&a| self.shape()[a]).product();
        self.sum_axes(axes, keepdim).mul_scalar(1.0 / count as f32)
    }

    /// Mean over one axis.
    pub fn mean(&self, axis: isize, keepdim: bool) -> Tensor {
        self.mean_axes(&normalize_axes(self, &[axis]), keepdim)
    }

    /// Mean of all elements, as a rank-0 tensor.
    pub fn mean_all(&self) -> Tensor {
        self.sum_all().mul_scalar(1.0 / self.numel().max(1) as f32)
    }

    /// Maximum over one axis. The gradient flows to the first position of the maximum.
    pub fn max(&self, axis: isize, keepdim: bool) -> Tensor {
        self.extreme(axis, keepdim, true).0
    }

    /// Minimum over one axis. The gradient flows to the first position of the minimum.
    pub fn min(&self, axis: isize, keepdim: bool) -> Tensor {
        self.extreme(axis, keepdim, false).0
    }

    /// Maximum over one axis and where it is (PyTorch's `torch.max(x, dim, keepdim)`):
    /// the values (differentiable, as [`Tensor::max`]) and the index of the first maximum
    /// along `axis`, both of the reduced shape.
    ///
    /// ```
    /// use neurite::Tensor;
    /// let x = Tensor::from_vec(vec![1.0, 7.0, 3.0, 9.0, 2.0, 4.0], &[2, 3]);
    /// let (values, indices) = x.max_with_indices(1, false);
    /// assert_eq!(values.to_vec(), vec![7.0, 9.0]);
    /// assert_eq!(indices.to_vec(), vec![1, 0]);
    /// ```
    pub fn max_with_indices(&self, axis: isize, keepdim: bool) -> (Tensor, IntTensor) {
        self.extreme(axis, keepdim, true)
    }

    /// Minimum over one axis and where it is (PyTorch's `torch.min(x, dim, keepdim)`).
    pub fn min_with_indices(&self, axis: isize, keepdim: bool) -> (Tensor, IntTensor) {
        self.extreme(axis, keepdim, false)
    }

    /// The largest element, as a rank-0 tensor (PyTorch's `x.max()`); differentiable.
    pub fn max_all(&self) -> Tensor {
        self.reshape(&[-1]).max(0, false)
    }

    /// The smallest element, as a rank-0 tensor (PyTorch's `x.min()`); differentiable.
    pub fn min_all(&self) -> Tensor {
        self.reshape(&[-1]).min(0, false)
    }

    /// Index of the maximum along `axis` (the first one on ties), with that axis removed:
    /// `logits.argmax(1)` gives one class per row of `[N, C]` logits.
    pub fn argmax(&self, axis: isize) -> IntTensor {
        self.arg_extreme(axis, true)
    }

    /// Index of the minimum along `axis` (the first one on ties), with that axis removed.
    pub fn argmin(&self, axis: isize) -> IntTensor {
        self.arg_extreme(axis, false)
    }

    fn arg_extreme(&self, axis: isize, largest: bool) -> IntTensor {
        let axes = normalize_axes(self, &[axis]);
        let (_, index, p) = self.extreme_with_index(&axes, largest);
        let shape = output_shape(&p.keep_shape, &axes, false);
        IntTensor::from_vec(index.iter().map(|&i| i as i64).collect(), &shape)
    }

    /// The maximum (or minimum) over one axis, recorded as `max` (`min`): the gradient goes
    /// to the first position of the extreme.
    fn extreme(&self, axis: isize, keepdim: bool, largest: bool) -> (Tensor, IntTensor) {
        let axes = normalize_axes(self, &[axis]);
        let (values, index, p) = self.extreme_with_index(&axes, largest);
        let shape = output_shape(&p.keep_shape, &axes, keepdim);
        let indices = IntTensor::from_vec(index.iter().map(|&i| i as i64).collect(), &shape);
        let (perm, permuted_shape) = (p.perm.clone(), p.data.shape().to_vec());
        let (outer, reduced, inner) = (p.outer, p.reduced, p.inner);
        let name = if largest { "max" } else { "min" };
        let values = Tensor::from_op(values, &shape, name, &[self], move |g| {
            let gv = g.to_vec();
            let mut dx = vec![0.0; outer * reduced * inner];
            for (o, (&gi, &r)) in gv.iter().zip(&index).enumerate() {
                let (oo, ii) = (o / inner, o % inner);
                dx[(oo * reduced + r) * inner + ii] += gi;
            }
            vec![Some(unpermute(
                Tensor::from_vec(dx, &permuted_shape),
                &perm,
            ))]
        });
        (values, indices)
    }

    fn extreme_with_index(&self, axes: &[usize], largest: bool) -> (Vec<f32>, Vec<usize>, Plan) {
        let name = if largest { "max" } else { "min" };
        let p = plan(self, axes, name);
        let (outer, reduced, inner) = (p.outer, p.reduced, p.inner);
        assert!(
            reduced > 0,
            "{name}: cannot reduce an empty axis of shape {:?}",
            self.shape()
        );
        let better = |v: f32, best: f32| if largest { v > best } else { v < best };
        let (values, index) = p.data.with_slice(|x| {
            let mut values = vec![0.0; outer * inner];
            let mut index = vec![0usize; outer * inner];
            for o in 0..outer {
                for r in 0..reduced {
                    for i in 0..inner {
                        let v = x[(o * reduced + r) * inner + i];
                        if r == 0 || better(v, values[o * inner + i]) {
                            values[o * inner + i] = v;
                            index[o * inner + i] = r;
                        }
                    }
                }
            }
            (values, index)
        });
        (values, index, p)
    }
}

/// Undoes `permute(perm)` on a contiguous tensor and returns a contiguous result.
fn unpermute(t: Tensor, perm: &[usize]) -> Tensor {
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return t;
    }
    let mut inverse = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p] = i;
    }
    t.permute(&inverse).contiguous()
}

/// The ops of this module and their gradient checks (a row of [`crate::ops::FAMILIES`]).
pub(crate) const FAMILY: Family = Family {
    name: "reduce",
    ops: &["sum", "mean", "max", "min"],
    cases: gradcheck_cases,
};

fn gradcheck_cases() -> Vec<Case> {
    let any = |shape: &[usize]| Tensor::randn(shape, 0.0, 1.0);
    vec![
        Case::new("sum", vec![any(&[3, 4, 5])], |x| x[0].sum(1, false)),
        Case::new("sum", vec![any(&[3, 4, 5])], |x| {
            x[0].sum_axes(&[0, 2], true)
        }),
        Case::new("sum", vec![any(&[3, 4])], |x| x[0].sum_all()),
        Case::new("mean", vec![any(&[3, 4, 5])], |x| x[0].mean(-1, true)),
        Case::new("mean", vec![any(&[2, 3, 4])], |x| {
            x[0].mean_axes(&[0, 2], false)
        }),
        Case::new("max", vec![Case::distinct(&[3, 4, 5])], |x| {
            x[0].max(1, false)
        }),
        Case::new("max", vec![Case::distinct(&[4, 6])], |x| x[0].max(-1, true)),
        Case::new("max", vec![Case::distinct(&[3, 4])], |x| {
            x[0].max_with_indices(0, true).0
        }),
        Case::new("max", vec![Case::distinct(&[3, 4])], |x| x[0].t().max_all()),
        Case::new("min", vec![Case::distinct(&[3, 4, 5])], |x| {
            x[0].min(1, false)
        }),
        Case::new("min", vec![Case::distinct(&[4, 6])], |x| {
            x[0].min_with_indices(-1, false).0
        }),
        Case::new("min", vec![Case::distinct(&[2, 3, 2])], |x| x[0].min_all()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions_over_middle_and_outer_axes() {
        let x = Tensor::from_vec((0..24).map(|v| v as f32).collect(), &[2, 3, 4]);
        assert_eq!(
            x.sum(1, false).to_vec(),
            vec![12.0, 15.0, 18.0, 21.0, 48.0, 51.0, 54.0, 57.0]
        );
        assert_eq!(x.sum_axes(&[0, 2], false).to_vec(), vec![60.0, 92.0, 124.0]);
        assert_eq!(
            x.max(-1, false).to_vec(),
            vec![3.0, 7.0, 11.0, 15.0, 19.0, 23.0]
        );
        assert_eq!(x.argmax(0).to_vec(), vec![1; 12]);
        assert_eq!(x.argmax(0).shape(), &[3, 4]);
        assert_eq!(x.argmin(-1).to_vec(), vec![0; 6]);
        assert_eq!(x.min(1, false).to_vec(), vec![0.0, 1.0, 2.0, 3.0, 12.0, 13.0, 14.0, 15.0]);
        assert_eq!((x.max_all().item(), x.min_all().item()), (23.0, 0.0));
        assert_eq!(x.max_all().shape(), &[] as &[usize]);
        let (v, i) = x.max_with_indices(1, true);
        assert_eq!((v.shape(), i.shape()), (&[2, 1, 4][..], &[2, 1, 4][..]));
        assert_eq!(i.to_vec(), vec![2; 8]);
        assert_eq!(x.mean_all().item(), 11.5);
    }

    #[test]
    fn max_gradient_goes_to_the_first_maximum_only() {
        let x = Tensor::from_vec(vec![1.0, 5.0, 5.0, 2.0], &[1, 4]).requires_grad_();
        x.max(1, false).sum_all().backward().unwrap();
        assert_eq!(x.grad().unwrap().to_vec(), vec![0.0, 1.0, 0.0, 0.0]);
    }
}

//! Ops driven by integer indices and boolean masks: `gather`, `scatter_add`, `topk`,
//! `where_cond` and `masked_fill`, with PyTorch's semantics. Indices are [`IntTensor`]s
//! and masks [`BoolTensor`]s; neither carries a gradient, the f32 inputs do.
//!
//! Backward rules: `gather`'s is a `scatter_add` of the output gradient into zeros of the
//! input's shape (repeated indices add up); `scatter_add` passes the gradient through to
//! its input and gathers it for `src`; `topk`'s values are a `gather`; `where_cond` and
//! `masked_fill` route each gradient element to the operand that element came from.

use crate::gradcheck::Case;
use crate::ops::Family;
use crate::tensor::layout::{broadcast_shapes, contiguous_strides, numel};
use crate::tensor::{BoolTensor, IntTensor, Tensor};

/// For each position of `shape` in row-major order, its offset in a tensor with `strides`,
/// dimension `skip` left out (its coordinate comes from an index instead).
fn offsets(shape: &[usize], strides: &[usize], skip: Option<usize>) -> Vec<usize> {
    let n = numel(shape);
    let mut out = Vec::with_capacity(n);
    let mut coord = vec![0; shape.len()];
    let mut off = 0;
    let step = |k: usize| if Some(k) == skip { 0 } else { strides[k] };
    for _ in 0..n {
        out.push(off);
        for k in (0..shape.len()).rev() {
            coord[k] += 1;
            off += step(k);
            if coord[k] < shape[k] {
                break;
            }
            off -= step(k) * shape[k];
            coord[k] = 0;
        }
    }
    out
}

/// Checks the index of `gather` / `scatter_add` against the tensor it indexes and returns
/// it as positions along `dim`.
fn checked_index(op: &str, index: &IntTensor, shape: &[usize], dim: usize) -> Vec<usize> {
    assert_eq!(
        index.rank(),
        shape.len(),
        "{op}: the index has shape {:?}, it needs as many dimensions as the tensor's {shape:?}",
        index.shape()
    );
    for (k, (&i, &s)) in index.shape().iter().zip(shape).enumerate() {
        assert!(
            k == dim || i <= s,
            "{op}: index shape {:?} is larger than the tensor's {shape:?} in dimension {k}",
            index.shape()
        );
    }
    let size = shape[dim];
    let values = index.as_slice();
    if let Some((pos, &v)) = values
        .iter()
        .enumerate()
        .find(|(_, &v)| v < 0 || v as usize >= size)
    {
        panic!("{op}: index {v} at position {pos} is out of range for dimension {dim} of size {size}");
    }
    values.iter().map(|&v| v as usize).collect()
}

impl Tensor {
    /// Values picked along `dim` by `index` (PyTorch's `torch.gather`): for a 2-D input and
    /// `dim = 1`, `out[i][j] = self[i][index[i][j]]`. The output has the index's shape,
    /// which may be smaller than this tensor's in the other dimensions. Differentiable in
    /// `self` (its gradient is a `scatter_add`).
    ///
    /// ```
    /// use neurite::{tensor::IntTensor, Tensor};
    /// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
    /// let picked = x.gather(1, &IntTensor::from_vec(vec![1, 0], &[2, 1]));
    /// assert_eq!(picked.to_vec(), vec![2.0, 3.0]);
    /// ```
    pub fn gather(&self, dim: isize, index: &IntTensor) -> Tensor {
        let d = self.axis(dim);
        let idx = checked_index("gather", index, self.shape(), d);
        let x = self.contiguous();
        let strides = contiguous_strides(self.shape());
        let base = offsets(index.shape(), &strides, Some(d));
        let out: Vec<f32> = x.with_slice(|xs| {
            base.iter()
                .zip(&idx)
                .map(|(&b, &i)| xs[b + i * strides[d]])
                .collect()
        });
        let (in_shape, out_shape, index) = (
            self.shape().to_vec(),
            index.shape().to_vec(),
            index.clone(),
        );
        Tensor::from_op(out, &out_shape, "gather", &[self], move |g| {
            vec![Some(Tensor::zeros(&in_shape).scatter_add(d as isize, &index, g))]
        })
    }

    /// This tensor with `src`'s values added at the positions `index` names along `dim`
    /// (PyTorch's `scatter_add`): for a 2-D input and `dim = 1`,
    /// `out[i][index[i][j]] += src[i][j]`; repeated indices add up. The index may be smaller
    /// than `src` (only its positions are read). Differentiable in `self` and `src`.
    ///
    /// ```
    /// use neurite::{tensor::IntTensor, Tensor};
    /// let counts = Tensor::zeros(&[3]).scatter_add(0, &IntTensor::from_slice(&[2, 0, 2]), &Tensor::ones(&[3]));
    /// assert_eq!(counts.to_vec(), vec![1.0, 0.0, 2.0]);
    /// ```
    pub fn scatter_add(&self, dim: isize, index: &IntTensor, src: &Tensor) -> Tensor {
        let d = self.axis(dim);
        let idx = checked_index("scatter_add", index, self.shape(), d);
        assert!(
            src.rank() == index.rank()
                && index.shape().iter().zip(src.shape()).all(|(i, s)| i <= s),
            "scatter_add: index shape {:?} is larger than src's {:?}",
            index.shape(),
            src.shape()
        );
        let strides = contiguous_strides(self.shape());
        let src_strides = contiguous_strides(src.shape());
        let out_at = offsets(index.shape(), &strides, Some(d));
        let src_at = offsets(index.shape(), &src_strides, None);
        let mut out = self.to_vec();
        src.with_slice(|ss| {
            for ((&o, &i), &s) in out_at.iter().zip(&idx).zip(&src_at) {
                out[o + i * strides[d]] += ss[s];
            }
        });
        let src_shape = src.shape().to_vec();
        Tensor::from_op(out, self.shape(), "scatter_add", &[self, src], move |g| {
            // d src: the output gradient at the positions each src element was added to.
            let mut dsrc = vec![0.0; numel(&src_shape)];
            g.with_slice(|gs| {
                for ((&o, &i), &s) in out_at.iter().zip(&idx).zip(&src_at) {
                    dsrc[s] = gs[o + i * strides[d]];
                }
            });
            vec![Some(g.clone()), Some(Tensor::from_vec(dsrc, &src_shape))]
        })
    }

    /// The `k` largest (or smallest, when `largest` is false) entries along `dim`, sorted,
    /// and their positions (PyTorch's `torch.topk`); ties keep the lower position first.
    /// The values are differentiable (a `gather` of this tensor).
    ///
    /// ```
    /// use neurite::Tensor;
    /// let x = Tensor::from_vec(vec![0.1, 0.7, 0.2, 0.9, 0.3, 0.5], &[2, 3]);
    /// let (values, indices) = x.topk(2, 1, true);
    /// assert_eq!(values.to_vec(), vec![0.7, 0.2, 0.9, 0.5]);
    /// assert_eq!(indices.to_vec(), vec![1, 2, 0, 2]);
    /// ```
    pub fn topk(&self, k: usize, dim: isize, largest: bool) -> (Tensor, IntTensor) {
        let d = self.axis(dim);
        let shape = self.shape().to_vec();
        assert!(
            k <= shape[d],
            "topk: k = {k} is larger than dimension {d} of size {} (shape {shape:?})",
            shape[d]
        );
        let (n, inner) = (shape[d], shape[d + 1..].iter().product::<usize>());
        let outer: usize = shape[..d].iter().product();
        let mut out_shape = shape.clone();
        out_shape[d] = k;
        let mut index = vec![0i64; numel(&out_shape)];
        self.contiguous().with_slice(|xs| {
            let mut lane: Vec<usize> = Vec::with_capacity(n);
            for o in 0..outer {
                for i in 0..inner {
                    let at = |j: usize| xs[(o * n + j) * inner + i];
                    lane.clear();
                    lane.extend(0..n);
                    // Stable: equal values keep their order. NaN sorts as the largest.
                    lane.sort_by(|&a, &b| {
                        let ord = at(a).partial_cmp(&at(b)).unwrap_or_else(|| {
                            at(a).is_nan().cmp(&at(b).is_nan())
                        });
                        if largest {
                            ord.reverse()
                        } else {
                            ord
                        }
                    });
                    for (r, &j) in lane[..k].iter().enumerate() {
                        index[(o * k + r) * inner + i] = j as i64;
                    }
                }
            }
        });
        let index = IntTensor::from_vec(index, &out_shape);
        (self.gather(d as isize, &index), index)
    }

    /// `a` where `mask` is true, `b` elsewhere (PyTorch's `torch.where(mask, a, b)`); the
    /// three broadcast together. Differentiable in `a` and `b`: each gradient element goes
    /// to the operand its value came from.
    ///
    /// ```
    /// use neurite::Tensor;
    /// let x = Tensor::from_vec(vec![-2.0, 3.0], &[2]);
    /// let relu = Tensor::where_cond(&x.gt(0.0), &x, &Tensor::scalar(0.0));
    /// assert_eq!(relu.to_vec(), vec![0.0, 3.0]);
    /// ```
    pub fn where_cond(mask: &BoolTensor, a: &Tensor, b: &Tensor) -> Tensor {
        let shape = broadcast_shapes(a.shape(), b.shape())
            .and_then(|s| broadcast_shapes(mask.shape(), &s))
            .unwrap_or_else(|| {
                panic!(
                    "where_cond: mask {:?}, a {:?} and b {:?} do not broadcast",
                    mask.shape(),
                    a.shape(),
                    b.shape()
                )
            });
        let m = mask.expand(&shape);
        let (av, bv) = (
            a.detach().expand(&shape).to_vec(),
            b.detach().expand(&shape).to_vec(),
        );
        let out: Vec<f32> = m
            .as_slice()
            .iter()
            .zip(av.iter().zip(&bv))
            .map(|(&t, (&x, &y))| if t { x } else { y })
            .collect();
        let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
        Tensor::from_op(out, &shape, "where_cond", &[a, b], move |g| {
            let gs = g.to_vec();
            let pick = |keep: bool| {
                let v: Vec<f32> = gs
                    .iter()
                    .zip(m.as_slice())
                    .map(|(&gi, &t)| if t == keep { gi } else { 0.0 })
                    .collect();
                Tensor::from_vec(v, g.shape())
            };
            vec![Some(pick(true).sum_to(&sa)), Some(pick(false).sum_to(&sb))]
        })
    }

    /// `self` where `mask` is false and `a` where it is true (`torch.where`'s method form,
    /// `a.where_(mask, b)` = `where_cond(mask, a, b)`).
    pub fn where_(&self, mask: &BoolTensor, other: &Tensor) -> Tensor {
        Tensor::where_cond(mask, self, other)
    }

    /// This tensor with `value` where `mask` (broadcast to this tensor's shape) is true
    /// (PyTorch's `masked_fill`): `scores.masked_fill(&future, f32::NEG_INFINITY)`.
    /// Differentiable: filled positions get no gradient.
    pub fn masked_fill(&self, mask: &BoolTensor, value: f32) -> Tensor {
        let shape = self.shape().to_vec();
        assert!(
            broadcast_shapes(mask.shape(), &shape).as_deref() == Some(&shape[..]),
            "masked_fill: mask of shape {:?} does not broadcast to the tensor's shape {shape:?}",
            mask.shape()
        );
        let m = mask.expand(&shape);
        let out: Vec<f32> = self.with_slice(|xs| {
            xs.iter()
                .zip(m.as_slice())
                .map(|(&x, &t)| if t { value } else { x })
                .collect()
        });
        Tensor::from_op(out, &shape, "masked_fill", &[self], move |g| {
            let v: Vec<f32> = g.with_slice(|gs| {
                gs.iter()
                    .zip(m.as_slice())
                    .map(|(&gi, &t)| if t { 0.0 } else { gi })
                    .collect()
            });
            vec![Some(Tensor::from_vec(v, g.shape()))]
        })
    }
}

/// The ops of this module and their gradient checks (a row of [`crate::ops::FAMILIES`]).
pub(crate) const FAMILY: Family = Family {
    name: "index",
    ops: &["gather", "scatter_add", "topk", "where_cond", "masked_fill"],
    cases: gradcheck_cases,
};

fn gradcheck_cases() -> Vec<Case> {
    let any = |shape: &[usize]| Tensor::randn(shape, 0.0, 1.0);
    fn idx(v: &[i64], shape: &[usize]) -> IntTensor {
        IntTensor::from_vec(v.to_vec(), shape)
    }
    // Indices repeat, so gradients must add up; the index is smaller than the input.
    let gather_index = idx(&[2, 0, 2, 1, 1, 1], &[2, 3]);
    let scatter_index = idx(&[0, 2, 0, 3, 3, 1], &[3, 2]);
    let mask = BoolTensor::from_vec(vec![true, false, false, true, true, false], &[2, 3]);
    let column = BoolTensor::from_vec(vec![true, false, true], &[3, 1]);
    let column2 = column.clone();
    vec![
        Case::new("gather", vec![any(&[3, 4])], move |x| {
            x[0].gather(1, &gather_index)
        }),
        Case::new("gather", vec![any(&[4, 3, 2])], |x| {
            x[0].t().gather(0, &idx(&[3, 0, 1, 1, 2, 3], &[3, 1, 2]))
        }),
        Case::new("scatter_add", vec![any(&[4, 2]), any(&[3, 3])], move |x| {
            x[0].scatter_add(0, &scatter_index, &x[1])
        }),
        Case::new("scatter_add", vec![any(&[2, 3]), any(&[2, 4])], |x| {
            x[0].scatter_add(-1, &idx(&[2, 2, 0, 1, 0, 0, 0, 2], &[2, 4]), &x[1])
        }),
        Case::new("topk", vec![Case::distinct(&[3, 5])], |x| {
            x[0].topk(3, 1, true).0
        }),
        Case::new("topk", vec![Case::distinct(&[4, 2, 3])], |x| {
            x[0].topk(2, 0, false).0
        }),
        Case::new("where_cond", vec![any(&[2, 3]), any(&[3])], move |x| {
            Tensor::where_cond(&mask, &x[0], &x[1])
        }),
        Case::new("where_cond", vec![any(&[1, 4]), any(&[3, 1])], move |x| {
            x[0].where_(&column2, &x[1])
        }),
        Case::new("masked_fill", vec![any(&[3, 4])], move |x| {
            x[0].masked_fill(&column, -5.0).exp()
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(shape: &[usize]) -> Tensor {
        Tensor::arange(numel(shape)).reshape(shape)
    }

    #[test]
    fn gather_picks_along_a_dimension_and_scatters_its_gradient() {
        let x = seq(&[2, 3]).requires_grad_();
        let index = IntTensor::from_vec(vec![2, 2, 0, 1], &[2, 2]);
        let y = x.gather(1, &index);
        assert_eq!(y.to_vec(), vec![2.0, 2.0, 3.0, 4.0]);
        y.sum_all().backward().unwrap();
        assert_eq!(
            x.grad().unwrap().to_vec(),
            vec![0.0, 0.0, 2.0, 1.0, 1.0, 0.0]
        );
        let rows = seq(&[3, 2]).gather(0, &IntTensor::from_vec(vec![2, 0], &[1, 2]));
        assert_eq!(rows.to_vec(), vec![4.0, 1.0]);
    }

    #[test]
    fn scatter_add_accumulates_repeats() {
        let base = Tensor::ones(&[2, 3]);
        let src = seq(&[2, 2]).add_scalar(1.0);
        let index = IntTensor::from_vec(vec![1, 1, 0, 2], &[2, 2]);
        assert_eq!(
            base.scatter_add(1, &index, &src).to_vec(),
            vec![1.0, 4.0, 1.0, 4.0, 1.0, 5.0]
        );
    }

    #[test]
    fn where_and_masked_fill_route_gradients() {
        let a = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]).requires_grad_();
        let b = Tensor::scalar(10.0).requires_grad_();
        let mask = BoolTensor::from_slice(&[true, false, true]);
        let y = Tensor::where_cond(&mask, &a, &b);
        assert_eq!(y.to_vec(), vec![1.0, 10.0, 3.0]);
        y.sum_all().backward().unwrap();
        assert_eq!(a.grad().unwrap().to_vec(), vec![1.0, 0.0, 1.0]);
        assert_eq!(b.grad().unwrap().item(), 1.0);
        let f = a.masked_fill(&mask, f32::NEG_INFINITY);
        assert_eq!(f.to_vec(), vec![f32::NEG_INFINITY, 2.0, f32::NEG_INFINITY]);
    }

    #[test]
    fn topk_sorts_and_breaks_ties_by_position() {
        let x = Tensor::from_vec(vec![3.0, 1.0, 3.0, 2.0], &[4]);
        let (v, i) = x.topk(3, 0, true);
        assert_eq!((v.to_vec(), i.to_vec()), (vec![3.0, 3.0, 2.0], vec![0, 2, 3]));
        let (v, i) = x.topk(2, -1, false);
        assert_eq!((v.to_vec(), i.to_vec()), (vec![1.0, 2.0], vec![1, 3]));
    }

    #[test]
    #[should_panic(expected = "gather: index 3 at position 1 is out of range for dimension 1 of size 3")]
    fn gather_out_of_range_is_named() {
        seq(&[2, 3]).gather(1, &IntTensor::from_vec(vec![0, 3], &[1, 2]));
    }

    #[test]
    #[should_panic(expected = "scatter_add: index -1 at position 0 is out of range for dimension 0 of size 2")]
    fn scatter_add_negative_index_is_named() {
        Tensor::zeros(&[2]).scatter_add(0, &IntTensor::from_slice(&[-1]), &Tensor::ones(&[1]));
    }

    #[test]
    #[should_panic(expected = "topk: k = 4 is larger than dimension 0 of size 3")]
    fn topk_with_k_too_large_is_named() {
        seq(&[3]).topk(4, 0, true);
    }

    #[test]
    #[should_panic(expected = "masked_fill: mask of shape [3] does not broadcast to the tensor's shape [3, 2]")]
    fn masked_fill_with_a_wrong_mask_is_named() {
        seq(&[3, 2]).masked_fill(&BoolTensor::full(&[3], true), 0.0);
    }
}

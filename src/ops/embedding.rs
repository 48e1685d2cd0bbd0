//! Embedding lookup: rows of a `[V, D]` table picked by integer ids (PyTorch's
//! `F.embedding`). Forward gathers rows; backward scatter-adds the output gradient into a
//! `[V, D]` gradient, ids that repeat adding up. The ids are plain `usize`s, not a tensor,
//! so they carry no gradient.

use crate::gradcheck::Case;
use crate::kernels::gather::{gather_rows, scatter_add_rows};
use crate::ops::Family;
use crate::runtime::buffers;
use crate::tensor::{AsIndices, IntTensor, Tensor};
use crate::tensor::layout::numel;

impl Tensor {
    /// Looks up `ids` in this `[V, D]` table: the result has shape `[..ids_shape, D]`, row
    /// `i` of the flattened ids being `self[ids[i]]`. Called on the weight:
    /// `wte.embedding(&tokens, &[b, t])`. The ids may be `&[usize]`, `&Vec<usize>` or an
    /// `&IntTensor` (see [`AsIndices`]; [`Tensor::embedding_of`] takes the shape from the
    /// `IntTensor`).
    ///
    /// Panics if the table is not 2-D, if the number of ids is not the product of
    /// `ids_shape`, or if an id is `>= V`.
    pub fn embedding(&self, ids: impl AsIndices, ids_shape: &[usize]) -> Tensor {
        let ids = ids.indices("embedding");
        let ids = &ids[..];
        assert!(
            self.rank() == 2,
            "embedding: the weight must be [V, D], got shape {:?}",
            self.shape()
        );
        assert_eq!(
            ids.len(),
            numel(ids_shape),
            "embedding: {} ids do not fill ids shape {ids_shape:?}",
            ids.len()
        );
        let (v, d) = (self.dim(0), self.dim(1));
        if let Some((pos, &bad)) = ids.iter().enumerate().find(|(_, &i)| i >= v) {
            panic!(
                "embedding: id {bad} (at position {pos}) is out of range for a weight of shape [{v}, {d}]"
            );
        }
        let mut shape = ids_shape.to_vec();
        shape.push(d);
        // [N, D]
        let mut out = buffers::take(ids.len() * d); // every row gathered
        self.with_slice(|w| gather_rows(w, v, d, ids, &mut out));
        let ids = ids.to_vec();
        Tensor::from_op(out, &shape, "embedding", &[self], move |g| {
            // [V, D]
            let mut dw = vec![0.0; v * d];
            g.with_slice(|gs| scatter_add_rows(gs, v, d, &ids, &mut dw));
            vec![Some(Tensor::from_vec(dw, &[v, d]))]
        })
    }
}

impl Tensor {
    /// [`Tensor::embedding`] with the ids' own shape (PyTorch's `F.embedding(ids, weight)`):
    /// ids `[B, T]` give `[B, T, D]`.
    ///
    /// ```
    /// use neurite::{tensor::IntTensor, Tensor};
    /// let table = Tensor::arange(6).reshape(&[3, 2]); // [V=3, D=2]
    /// let ids = IntTensor::from_vec(vec![2, 0], &[1, 2]);
    /// let e = table.embedding_of(&ids);
    /// assert_eq!(e.shape(), &[1, 2, 2]);
    /// assert_eq!(e.to_vec(), vec![4.0, 5.0, 0.0, 1.0]);
    /// ```
    pub fn embedding_of(&self, ids: &IntTensor) -> Tensor {
        self.embedding(ids, ids.shape())
    }
}

/// The ops of this module and their gradient checks (a row of [`crate::ops::FAMILIES`]).
pub(crate) const FAMILY: Family = Family {
    name: "embedding",
    ops: &["embedding"],
    cases: gradcheck_cases,
};

fn gradcheck_cases() -> Vec<Case> {
    let any = |shape: &[usize]| Tensor::randn(shape, 0.0, 1.0);
    // The ids are captured by the closures: they are not inputs, so not differentiated.
    let ids = [3, 0, 3, 5, 1, 3];
    vec![
        Case::new("embedding", vec![any(&[6, 4])], move |x| {
            x[0].embedding(&ids, &[2, 3])
        }),
        // Rows never looked up get a zero gradient; a transposed table is read through its
        // strides.
        Case::new("embedding", vec![any(&[3, 7])], |x| {
            x[0].t().embedding(&[6, 6, 2], &[3]).exp()
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_rows_and_accumulates_repeated_ids() {
        let w = Tensor::from_vec((0..8).map(|v| v as f32).collect(), &[4, 2]).requires_grad_();
        let e = w.embedding(&[3, 1, 3], &[1, 3]);
        assert_eq!(e.shape(), &[1, 3, 2]);
        assert_eq!(e.to_vec(), vec![6.0, 7.0, 2.0, 3.0, 6.0, 7.0]);
        e.sum_all().backward().unwrap();
        assert_eq!(
            w.grad().unwrap().to_vec(),
            vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 2.0, 2.0]
        );
    }

    #[test]
    #[should_panic(
        expected = "embedding: id 4 (at position 2) is out of range for a weight of shape [4, 2]"
    )]
    fn out_of_range_id_is_named() {
        Tensor::zeros(&[4, 2]).embedding(&[0, 1, 4], &[3]);
    }
}

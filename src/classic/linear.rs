//! What the two linear methods (perceptron, linear SVM) share once fitted: one weight
//! vector and one bias per class, one-vs-rest scores `x · Wᵀ + b`, the class with the
//! highest score, and the same tensors in a checkpoint.

use super::{check_predict, entry, meta, tensor_values, METHOD_KEY};
use crate::checkpoint::Checkpoint;
use crate::kernels::gemm::{sgemm, Gemm};
use anyhow::Result;

/// A fitted linear one-vs-rest model, borrowed from its method's struct.
pub(crate) struct LinearView<'a> {
    /// `[classes, dim]`
    pub weight: &'a [f32],
    /// `[classes]`
    pub bias: &'a [f32],
    pub dim: usize,
}

impl LinearView<'_> {
    fn classes(&self) -> usize {
        self.bias.len()
    }

    /// Scores `[n, classes]` of `x: [n, dim]`; `who` names the caller in a shape error.
    pub fn scores(&self, who: &str, x: &[f32], n: usize) -> Vec<f32> {
        check_predict(who, x, n, self.dim);
        linear_scores(self.weight, self.bias, x, n, self.dim)
    }

    /// The highest-scoring class of each row of `x: [n, dim]`.
    pub fn predict(&self, who: &str, x: &[f32], n: usize) -> Vec<usize> {
        self.scores(who, x, n)
            .chunks_exact(self.classes())
            .map(super::argmax)
            .collect()
    }

    /// The weight and bias as tensors, with the method's name, the sizes and the method's
    /// own hyper-parameters (`params`, key and value) as metadata.
    pub fn to_checkpoint(&self, method: &str, params: &[(&str, String)]) -> Checkpoint {
        let (k, d) = (self.classes(), self.dim);
        let mut ck = Checkpoint::new(vec![
            entry("weight", self.weight.to_vec(), &[k, d]),
            entry("bias", self.bias.to_vec(), &[k]),
        ]);
        let sizes = [
            (METHOD_KEY, method.to_string()),
            ("classic.classes", k.to_string()),
            ("classic.dim", d.to_string()),
        ];
        for (key, v) in sizes.iter().chain(params) {
            ck.metadata.insert(key.to_string(), v.clone());
        }
        ck
    }
}

/// The parts [`LinearView::to_checkpoint`] wrote: `(weight, bias, classes, dim)`.
pub(crate) fn read_linear(ck: &Checkpoint) -> Result<(Vec<f32>, Vec<f32>, usize, usize)> {
    let (k, d): (usize, usize) = (meta(ck, "classic.classes")?, meta(ck, "classic.dim")?);
    Ok((
        tensor_values(ck, "weight", &[k, d])?,
        tensor_values(ck, "bias", &[k])?,
        k,
        d,
    ))
}

/// Scores `[n, k]` of a linear one-score-per-class model `weight: [k, d]`, `bias: [k]`.
pub(crate) fn linear_scores(
    weight: &[f32],
    bias: &[f32],
    x: &[f32],
    n: usize,
    d: usize,
) -> Vec<f32> {
    let k = bias.len();
    let mut out = vec![0.0f32; n * k]; // [n, k]
    sgemm(Gemm::new(n, k, d).trans_b(true), x, weight, &mut out);
    for row in out.chunks_exact_mut(k.max(1)) {
        for (s, b) in row.iter_mut().zip(bias) {
            *s += b;
        }
    }
    out
}

//! In-memory data sets built from tensors (PyTorch's `TensorDataset`): sample `i` is row `i`
//! of each input tensor with target `i`.

use super::dataset::{Dataset, Input, Sample, Target};
use crate::tensor::{IntTensor, Tensor};
use anyhow::{bail, Result};

/// The targets of a [`TensorDataset`]: class indices, or float values (`[N]`) or vectors
/// (`[N, K]`). Made with `.into()` from `&[usize]`, `Vec<usize>`, an [`IntTensor`] `[N]`
/// (classes) or a [`Tensor`] `[N]` / `[N, K]` (values).
#[derive(Debug, Clone, PartialEq)]
pub enum TensorTargets {
    /// One class index per sample.
    Classes(Vec<usize>),
    /// `values.len() / width` samples of `width` floats; `width == 0` means one float per
    /// sample collated to `[B]` (a target tensor `[N]`), else `[B, width]`.
    Values {
        /// The values, row-major.
        values: Vec<f32>,
        /// Floats per sample, or 0 for a `[N]` target.
        width: usize,
    },
}

impl TensorTargets {
    /// The number of samples.
    pub fn len(&self) -> usize {
        match self {
            TensorTargets::Classes(c) => c.len(),
            TensorTargets::Values { values, width } => values.len() / (*width).max(1),
        }
    }

    /// Whether there is no target.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The target of sample `i`.
    fn get(&self, i: usize) -> Target {
        match self {
            TensorTargets::Classes(c) => Target::Class(c[i]),
            TensorTargets::Values { values, width: 0 } => Target::Value(values[i]),
            TensorTargets::Values { values, width } => {
                Target::Values(values[i * width..(i + 1) * width].to_vec())
            }
        }
    }
}

impl From<&[usize]> for TensorTargets {
    fn from(c: &[usize]) -> Self {
        TensorTargets::Classes(c.to_vec())
    }
}

impl<const N: usize> From<&[usize; N]> for TensorTargets {
    fn from(c: &[usize; N]) -> Self {
        TensorTargets::Classes(c.to_vec())
    }
}

impl From<Vec<usize>> for TensorTargets {
    fn from(c: Vec<usize>) -> Self {
        TensorTargets::Classes(c)
    }
}

impl From<&IntTensor> for TensorTargets {
    /// Panics on a tensor that is not `[N]` or holds a negative class.
    fn from(t: &IntTensor) -> Self {
        assert_eq!(
            t.rank(),
            1,
            "TensorDataset: class targets must be [N], got {:?}",
            t.shape()
        );
        assert!(
            t.as_slice().iter().all(|&v| v >= 0),
            "TensorDataset: a class target is negative"
        );
        TensorTargets::Classes(t.to_usize_vec())
    }
}

impl From<IntTensor> for TensorTargets {
    fn from(t: IntTensor) -> Self {
        (&t).into()
    }
}

impl From<&Tensor> for TensorTargets {
    /// Panics on a tensor that is not `[N]` or `[N, K]`.
    fn from(t: &Tensor) -> Self {
        let width = match *t.shape() {
            [_] => 0,
            [_, k] => k,
            ref s => panic!("TensorDataset: float targets must be [N] or [N, K], got {s:?}"),
        };
        TensorTargets::Values {
            values: t.to_vec(),
            width,
        }
    }
}

impl From<Tensor> for TensorTargets {
    fn from(t: Tensor) -> Self {
        (&t).into()
    }
}

/// Samples held in memory: row `i` of each input `[N, ...]` and target `i`.
///
/// ```
/// use neurite::data::{Dataset, Target, TensorDataset};
/// use neurite::Tensor;
/// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]); // [N, F]
/// let y = Tensor::from_vec(vec![0.5, 1.5, 2.5], &[3]); // [N]
/// let ds = TensorDataset::new(x, y).unwrap();
/// assert_eq!(ds.len(), 3);
/// let s = ds.get(1).unwrap();
/// assert_eq!(s.inputs[0].data, vec![3.0, 4.0]);
/// assert_eq!(s.target, Target::Value(1.5));
/// ```
#[derive(Debug, Clone)]
pub struct TensorDataset {
    /// Per input: its values `[N, ...]` and the shape of one sample.
    inputs: Vec<(Vec<f32>, Vec<usize>)>,
    targets: TensorTargets,
}

impl TensorDataset {
    /// A data set of one input `[N, ...]` and `targets` (see [`TensorTargets`]); the sizes
    /// must agree and a class target below `usize::MAX`.
    pub fn new(inputs: Tensor, targets: impl Into<TensorTargets>) -> Result<Self> {
        Self::with_inputs(vec![inputs], targets)
    }

    /// A data set of one input and class targets.
    pub fn classes(inputs: Tensor, classes: &[usize]) -> Result<Self> {
        Self::new(inputs, classes)
    }

    /// A data set of several inputs (each `[N, ...]`, samples then carry one input each).
    pub fn with_inputs(inputs: Vec<Tensor>, targets: impl Into<TensorTargets>) -> Result<Self> {
        let targets = targets.into();
        let n = targets.len();
        if inputs.is_empty() {
            bail!("TensorDataset: give at least one input tensor");
        }
        let mut held = Vec::with_capacity(inputs.len());
        for (k, x) in inputs.iter().enumerate() {
            if x.shape().first() != Some(&n) {
                bail!(
                    "TensorDataset: input {k} has shape {:?} but there are {n} targets; the \
                     first dimension of every input must be the number of samples",
                    x.shape()
                );
            }
            held.push((x.to_vec(), x.shape()[1..].to_vec()));
        }
        Ok(TensorDataset {
            inputs: held,
            targets,
        })
    }

    /// The targets.
    pub fn targets(&self) -> &TensorTargets {
        &self.targets
    }
}

impl Dataset for TensorDataset {
    fn len(&self) -> usize {
        self.targets.len()
    }

    fn get(&self, i: usize) -> Result<Sample> {
        let n = self.len();
        if i >= n {
            bail!("TensorDataset: index {i} is past the end ({n} samples)");
        }
        let inputs = self
            .inputs
            .iter()
            .map(|(data, shape)| {
                let len: usize = shape.iter().product();
                Input {
                    data: data[i * len..(i + 1) * len].to_vec(),
                    shape: shape.clone(),
                }
            })
            .collect();
        Ok(Sample::with_inputs(inputs, self.targets.get(i)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_targets_of_every_kind() {
        let x = Tensor::from_vec((0..12).map(|v| v as f32).collect(), &[3, 2, 2]);
        let ds = TensorDataset::new(x.clone(), &[2, 0, 1]).unwrap();
        let s = ds.get(2).unwrap();
        assert_eq!(s.inputs[0].data, vec![8.0, 9.0, 10.0, 11.0]);
        assert_eq!(s.inputs[0].shape, vec![2, 2]);
        assert_eq!(s.target, Target::Class(1));
        let ds = TensorDataset::new(x.clone(), IntTensor::from_indices(&[4, 5, 6])).unwrap();
        assert_eq!(ds.get(0).unwrap().target, Target::Class(4));
        let y = Tensor::from_vec(vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5], &[3, 2]);
        let ds = TensorDataset::new(x.clone(), y).unwrap();
        assert_eq!(ds.get(1).unwrap().target, Target::Values(vec![1.0, 1.5]));
        let e = TensorDataset::new(x, vec![0, 1]).unwrap_err().to_string();
        assert!(e.contains("[3, 2, 2]") && e.contains("2 targets"), "{e}");
        let e = ds.get(3).unwrap_err().to_string();
        assert!(e.contains("index 3"), "{e}");
    }

    #[test]
    fn several_inputs_travel_together() {
        let a = Tensor::from_vec(vec![1.0, 2.0], &[2, 1]);
        let b = Tensor::from_vec(vec![10.0, 20.0, 30.0, 40.0, 50.0, 60.0], &[2, 3]);
        let ds = TensorDataset::with_inputs(vec![a, b], vec![0, 1]).unwrap();
        let s = ds.get(1).unwrap();
        assert_eq!(s.inputs.len(), 2);
        assert_eq!(s.inputs[0].data, vec![2.0]);
        assert_eq!(s.inputs[1].data, vec![40.0, 50.0, 60.0]);
    }
}

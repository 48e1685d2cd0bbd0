//! Collation: samples into one [`Batch`] of tensors (PyTorch's `default_collate`): each
//! input stacked to `[B, ...]`, class targets to an [`IntTensor`] `[B]`, float targets to
//! a [`Tensor`] `[B]` or `[B, K]`.

use super::dataset::{Sample, Target};
use crate::tensor::{IntTensor, Tensor};
use anyhow::{bail, Result};

/// The targets of a batch.
#[derive(Debug, Clone)]
pub enum BatchTargets {
    /// Class indices, `[B]`.
    Classes(IntTensor),
    /// Float targets, `[B]` (one value per sample) or `[B, K]`.
    Values(Tensor),
}

/// One mini-batch, ready for the model.
#[derive(Debug, Clone)]
pub struct Batch {
    /// One tensor per input, each `[B, ...]`.
    pub inputs: Vec<Tensor>,
    /// The targets.
    pub targets: BatchTargets,
}

impl Batch {
    /// The number of samples.
    pub fn len(&self) -> usize {
        self.inputs.first().map_or(0, |x| x.shape()[0])
    }

    /// Whether the batch holds no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first (usually only) input, `[B, ...]`.
    pub fn input(&self) -> &Tensor {
        &self.inputs[0]
    }

    /// The class targets `[B]`; panics for float targets.
    pub fn labels(&self) -> &IntTensor {
        match &self.targets {
            BatchTargets::Classes(c) => c,
            BatchTargets::Values(_) => panic!("Batch::labels: this batch has float targets"),
        }
    }

    /// The float targets `[B]` or `[B, K]`; panics for class targets.
    pub fn values(&self) -> &Tensor {
        match &self.targets {
            BatchTargets::Values(v) => v,
            BatchTargets::Classes(_) => panic!("Batch::values: this batch has class targets"),
        }
    }
}

/// Stacks `samples` into a batch; `first` is the position of the first one in its epoch
/// (errors name positions). Every sample must have the same number and shapes of inputs
/// and the same kind of target.
pub fn collate(samples: Vec<Sample>, first: usize) -> Result<Batch> {
    let Some(head) = samples.first() else {
        bail!("collate: a batch needs at least one sample");
    };
    let b = samples.len();
    let shapes: Vec<Vec<usize>> = head.inputs.iter().map(|x| x.shape.clone()).collect();
    let mut inputs: Vec<Vec<f32>> = shapes
        .iter()
        .map(|s| Vec::with_capacity(b * s.iter().product::<usize>()))
        .collect();
    let mut classes = Vec::new();
    let mut values = Vec::new();
    let width = match &head.target {
        Target::Class(_) => None,
        Target::Value(_) => Some(0),
        Target::Values(v) => Some(v.len()),
    };
    for (k, s) in samples.into_iter().enumerate() {
        let at = first + k;
        if s.inputs.len() != shapes.len() {
            bail!(
                "sample {at} of the epoch has {} inputs, the batch's first sample {}",
                s.inputs.len(),
                shapes.len()
            );
        }
        for (j, x) in s.inputs.into_iter().enumerate() {
            if x.shape != shapes[j] {
                bail!(
                    "sample {at} of the epoch has input {j} of shape {:?}, the batch's first \
                     sample {:?}: samples must share one shape (resize or crop them)",
                    x.shape,
                    shapes[j]
                );
            }
            inputs[j].extend_from_slice(&x.data);
        }
        match (s.target, width) {
            (Target::Class(c), None) => classes.push(c as i64),
            (Target::Value(v), Some(0)) => values.push(v),
            (Target::Values(v), Some(w)) if v.len() == w && w > 0 => values.extend(v),
            (t, _) => bail!(
                "sample {at} of the epoch has target {t:?}, unlike the batch's first sample: \
                 all targets must be classes, or values of one width"
            ),
        }
    }
    let inputs = inputs
        .into_iter()
        .zip(&shapes)
        .map(|(data, shape)| {
            let mut full = vec![b];
            full.extend_from_slice(shape);
            Tensor::from_vec(data, &full)
        })
        .collect();
    let targets = match width {
        None => BatchTargets::Classes(IntTensor::from_vec(classes, &[b])),
        Some(0) => BatchTargets::Values(Tensor::from_vec(values, &[b])),
        Some(w) => BatchTargets::Values(Tensor::from_vec(values, &[b, w])),
    };
    Ok(Batch { inputs, targets })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Input;

    #[test]
    fn stacks_inputs_and_each_kind_of_target() {
        let s = |v: f32, t| Sample::new(vec![v, v + 0.5], &[2], t);
        let b = collate(vec![s(1.0, Target::Class(2)), s(3.0, Target::Class(0))], 0).unwrap();
        assert_eq!(b.input().shape(), &[2, 2]);
        assert_eq!(b.input().to_vec(), vec![1.0, 1.5, 3.0, 3.5]);
        assert_eq!(b.labels().to_usize_vec(), vec![2, 0]);
        let b = collate(vec![s(1.0, Target::Value(0.25))], 0).unwrap();
        assert_eq!(b.values().shape(), &[1]);
        assert_eq!(b.values().to_vec(), vec![0.25]);
        let b = collate(vec![s(1.0, Target::Values(vec![1.0, 2.0, 3.0]))], 0).unwrap();
        assert_eq!(b.values().shape(), &[1, 3]);
    }

    #[test]
    fn mismatches_name_the_sample() {
        let a = Sample::new(vec![0.0; 2], &[2], Target::Class(0));
        let b = Sample::new(vec![0.0; 3], &[3], Target::Class(0));
        let e = collate(vec![a.clone(), b], 10).unwrap_err().to_string();
        assert!(e.contains("sample 11") && e.contains("[3]"), "{e}");
        let c = Sample::new(vec![0.0; 2], &[2], Target::Value(1.0));
        let e = collate(vec![a.clone(), c], 0).unwrap_err().to_string();
        assert!(e.contains("sample 1") && e.contains("Value(1.0)"), "{e}");
        let two = Sample::with_inputs(vec![Input::new(vec![0.0], &[1]); 2], Target::Class(0));
        let e = collate(vec![a, two], 0).unwrap_err().to_string();
        assert!(e.contains("2 inputs"), "{e}");
    }
}

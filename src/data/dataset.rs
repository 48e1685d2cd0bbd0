//! The `Dataset` trait (PyTorch's `torch.utils.data.Dataset`): a length and a sample at an
//! index, each sample one or more f32 inputs with their shapes and a target (a class, a
//! value, or a vector of values). Wrappers: [`Subset`] (some indices), [`Mapped`] (a
//! per-sample transform, see [`super::transform`]).
//!
//! A sample is plain data (`Vec<f32>` and a shape), not a [`crate::tensor::Tensor`]: the
//! loader's worker threads build samples and [`super::collate`] stacks them into tensors.

use super::transform::Transform;
use anyhow::{bail, Result};
use rand::RngCore;
use std::sync::Arc;

/// One input of a sample: `data` laid out densely with `shape` (e.g. `[C, H, W]`, `[F]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The values, row-major.
    pub data: Vec<f32>,
    /// The shape of one sample's input (without the batch dimension).
    pub shape: Vec<usize>,
}

impl Input {
    /// An input of `shape` holding `data`. Panics if the sizes disagree (library misuse).
    pub fn new(data: Vec<f32>, shape: &[usize]) -> Input {
        assert_eq!(
            data.len(),
            shape.iter().product::<usize>(),
            "Input::new: {} values cannot fill shape {shape:?}",
            data.len()
        );
        Input {
            data,
            shape: shape.to_vec(),
        }
    }
}

/// What a sample should predict.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A class index (classification, cross-entropy); collated to class indices `[B]`.
    Class(usize),
    /// One float (regression); collated to a `Tensor [B]`.
    Value(f32),
    /// Several floats (multi-output regression); collated to a `Tensor [B, K]`.
    Values(Vec<f32>),
}

/// One sample: its inputs (one for most models; several for a model with several inputs)
/// and its target.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The inputs in order; a batch holds one stacked tensor per input.
    pub inputs: Vec<Input>,
    /// The target.
    pub target: Target,
}

impl Sample {
    /// A sample of one input of `shape`.
    pub fn new(data: Vec<f32>, shape: &[usize], target: Target) -> Sample {
        Sample {
            inputs: vec![Input::new(data, shape)],
            target,
        }
    }

    /// A sample of several inputs (a batch then holds one tensor per input, in this order).
    pub fn with_inputs(inputs: Vec<Input>, target: Target) -> Sample {
        Sample { inputs, target }
    }
}

/// A data set of samples, indexed from 0 (PyTorch's map-style `Dataset`).
///
/// Implement `len` and `get`; `get` returns a `Result` so that a source read lazily (files
/// decoded on demand) can report a bad file by name, and the loader hands that error out
/// of its iterator. A random transform overrides [`Dataset::get_random`], which the
/// training loader calls with a generator seeded by (seed, epoch, position in the epoch).
///
/// Several inputs: return [`Sample::with_inputs`]; every batch then carries one tensor per
/// input (`batch.inputs[k]`, `[B, ...]`).
///
/// ```
/// use neurite::data::{Dataset, Sample, Target};
///
/// /// y = 2x + 1 at x = 0, 0.1, 0.2, ...
/// struct Line(usize);
///
/// impl Dataset for Line {
///     fn len(&self) -> usize {
///         self.0
///     }
///     fn get(&self, i: usize) -> anyhow::Result<Sample> {
///         let x = i as f32 / 10.0;
///         Ok(Sample::new(vec![x], &[1], Target::Value(2.0 * x + 1.0)))
///     }
/// }
///
/// let s = Line(5).get(3).unwrap();
/// assert_eq!(s.inputs[0].data, vec![0.3]);
/// assert_eq!(s.target, Target::Value(1.6));
/// ```
pub trait Dataset: Send + Sync {
    /// The number of samples.
    fn len(&self) -> usize;

    /// Sample `index` (below `len()`), as evaluation sees it: no random transform.
    fn get(&self, index: usize) -> Result<Sample>;

    /// Sample `index` for training, random transforms drawing from `rng`. The default is
    /// [`Dataset::get`].
    fn get_random(&self, index: usize, rng: &mut dyn RngCore) -> Result<Sample> {
        let _ = rng;
        self.get(index)
    }

    /// Whether the data set holds no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<D: Dataset + ?Sized> Dataset for Arc<D> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        (**self).get(index)
    }
    fn get_random(&self, index: usize, rng: &mut dyn RngCore) -> Result<Sample> {
        (**self).get_random(index, rng)
    }
}

impl<D: Dataset + ?Sized> Dataset for Box<D> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        (**self).get(index)
    }
    fn get_random(&self, index: usize, rng: &mut dyn RngCore) -> Result<Sample> {
        (**self).get_random(index, rng)
    }
}

/// The samples of `dataset` at `indices`, in that order (PyTorch's `Subset`).
pub struct Subset<D> {
    dataset: D,
    indices: Vec<usize>,
}

impl<D: Dataset> Subset<D> {
    /// The subset of `dataset` at `indices`; an index past the end is an error naming it.
    pub fn new(dataset: D, indices: Vec<usize>) -> Result<Self> {
        if let Some(&i) = indices.iter().find(|&&i| i >= dataset.len()) {
            bail!(
                "Subset: index {i} is past the end of a data set of {} samples",
                dataset.len()
            );
        }
        Ok(Subset { dataset, indices })
    }

    /// The indices into the underlying data set.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }
}

impl<D: Dataset> Dataset for Subset<D> {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        self.dataset.get(self.indices[index])
    }
    fn get_random(&self, index: usize, rng: &mut dyn RngCore) -> Result<Sample> {
        self.dataset.get_random(self.indices[index], rng)
    }
}

/// A data set whose first input goes through `transform` (see [`DatasetExt::map`]).
pub struct Mapped<D, T> {
    dataset: D,
    transform: T,
}

impl<D: Dataset, T: Transform> Dataset for Mapped<D, T> {
    fn len(&self) -> usize {
        self.dataset.len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        let mut s = self.dataset.get(index)?;
        if let Some(input) = s.inputs.first_mut() {
            self.transform.apply(input, None);
        }
        Ok(s)
    }
    fn get_random(&self, index: usize, rng: &mut dyn RngCore) -> Result<Sample> {
        let mut s = self.dataset.get_random(index, rng)?;
        if let Some(input) = s.inputs.first_mut() {
            self.transform.apply(input, Some(rng));
        }
        Ok(s)
    }
}

/// Wrappers every data set has.
pub trait DatasetExt: Dataset + Sized {
    /// This data set with `transform` applied to each sample's first input (random
    /// transforms draw only in training, see [`Dataset::get_random`]).
    fn map<T: Transform>(self, transform: T) -> Mapped<Self, T> {
        Mapped {
            dataset: self,
            transform,
        }
    }

    /// The samples at `indices` (see [`Subset::new`]).
    fn subset(self, indices: Vec<usize>) -> Result<Subset<Self>> {
        Subset::new(self, indices)
    }
}

impl<D: Dataset + Sized> DatasetExt for D {}

#[cfg(test)]
mod tests {
    use super::*;

    struct Squares(usize);

    impl Dataset for Squares {
        fn len(&self) -> usize {
            self.0
        }
        fn get(&self, i: usize) -> Result<Sample> {
            Ok(Sample::new(vec![(i * i) as f32], &[1], Target::Class(i)))
        }
    }

    #[test]
    fn subset_reorders_and_checks_its_indices() {
        let s = Squares(5).subset(vec![4, 1]).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.get(0).unwrap().inputs[0].data, vec![16.0]);
        assert_eq!(s.get(1).unwrap().target, Target::Class(1));
        let e = Squares(5).subset(vec![0, 5]).err().unwrap().to_string();
        assert!(e.contains("index 5") && e.contains("5 samples"), "{e}");
    }

    #[test]
    #[should_panic(expected = "3 values cannot fill shape [2]")]
    fn input_checks_its_shape() {
        Input::new(vec![0.0; 3], &[2]);
    }
}

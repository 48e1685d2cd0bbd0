//! The classical classifiers beside the networks: the averaged perceptron, the linear SVM
//! (liblinear's dual coordinate descent) and the kernel SVM (LIBSVM's SMO, one-vs-one).
//!
//! Every model works on plain row-major `f32` matrices, `x: [n, d]`, with labels `y: [n]`
//! in `0..classes`, and offers the same surface:
//! - `Model::fit(x, y, n, d, &params, &progress) -> Model`;
//! - [`Classifier::predict`], [`Classifier::decision_function`];
//! - [`Classifier::to_checkpoint`] / `Model::from_checkpoint`, safetensors files through
//!   [`crate::checkpoint::Checkpoint`] whose metadata key [`METHOD_KEY`] names the method
//!   (so [`load_model`] can read any of them back), with the hyper-parameters beside it.
//!
//! A caller adds its own metadata (the normalization, the data set) to the checkpoint
//! before saving it.

pub mod cache;
pub mod kernel;
mod linear;
pub mod linear_svm;
pub mod perceptron;
pub mod smo;
pub mod svc;

pub use kernel::{Gamma, Kernel, KernelKind};
pub use linear_svm::{LinearSvm, LinearSvmParams, Loss};
pub use perceptron::{Penalty, Perceptron, PerceptronParams};
pub use svc::{Svc, SvcParams};

use crate::checkpoint::Checkpoint;
use crate::tensor::Tensor;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// The checkpoint metadata key naming the method (`perceptron`, `linear-svm`, `svm`); it
/// lives with the file format so that every reader of checkpoints can tell a classical model.
pub use crate::checkpoint::CLASSIC_METHOD_KEY as METHOD_KEY;

/// How far a fit has got: `done` of `total` units (epochs, classes or class pairs).
#[derive(Debug, Clone, Copy)]
pub struct FitProgress {
    /// Units finished.
    pub done: usize,
    /// Units in the whole fit.
    pub total: usize,
    /// What a unit is: `"epoch"`, `"class"` or `"pair"`.
    pub unit: &'static str,
}

/// A progress callback; it may be called from worker threads.
pub type Progress<'a> = &'a (dyn Fn(FitProgress) + Sync);

/// A callback that ignores progress.
pub fn no_progress(_: FitProgress) {}

/// What every fitted classical model offers.
pub trait Classifier: Send + Sync {
    /// The method name stored under [`METHOD_KEY`].
    fn method(&self) -> &'static str;
    /// The number of classes.
    fn classes(&self) -> usize;
    /// The number of features per sample.
    fn dim(&self) -> usize;
    /// Raw scores for `x: [n, d]`: `[n, classes]` for the linear models (one-vs-rest),
    /// `[n, classes * (classes - 1) / 2]` for the kernel SVM (one-vs-one, pairs `(i, j)`,
    /// `i < j`, in order; positive means class `i`).
    fn decision_function(&self, x: &[f32], n: usize) -> Vec<f32>;
    /// The predicted class of each of the `n` rows of `x: [n, d]`.
    fn predict(&self, x: &[f32], n: usize) -> Vec<usize>;
    /// The model as tensors plus metadata.
    fn to_checkpoint(&self) -> Checkpoint;
    /// Writes the model to a safetensors file.
    fn save(&self, path: &Path) -> Result<()> {
        self.to_checkpoint().save(path)
    }
}

/// Reads any classical model back from a checkpoint, by its [`METHOD_KEY`].
pub fn from_checkpoint(ck: &Checkpoint) -> Result<Box<dyn Classifier>> {
    let method = ck
        .metadata
        .get(METHOD_KEY)
        .with_context(|| format!("the checkpoint has no {METHOD_KEY}: not a classical model"))?;
    check_metadata(ck, method)?;
    Ok(match method.as_str() {
        perceptron::METHOD => Box::new(Perceptron::from_checkpoint(ck)?),
        linear_svm::METHOD => Box::new(LinearSvm::from_checkpoint(ck)?),
        svc::METHOD => Box::new(Svc::from_checkpoint(ck)?),
        other => bail!("unknown classical method {other:?} in the checkpoint"),
    })
}

/// The most classes a saved classical model may have.
pub const MAX_CLASSES: usize = 1 << 16;

/// Checks the numbers in a classical model's metadata that its predictions rely on: the
/// class count and feature count, and for the kernel SVM the kernel's gamma, degree and
/// constant term. Errors name the metadata key.
fn check_metadata(ck: &Checkpoint, method: &str) -> Result<()> {
    use crate::validate::{count, finite, positive};
    count(
        "metadata classic.classes",
        meta(ck, "classic.classes")?,
        2,
        MAX_CLASSES,
    )?;
    count(
        "metadata classic.dim",
        meta(ck, "classic.dim")?,
        1,
        crate::validate::MAX_SIZE,
    )?;
    if method == svc::METHOD {
        positive("metadata svm.gamma", meta::<f32>(ck, "svm.gamma")?)?;
        if meta::<String>(ck, "svm.kernel")? == "poly" {
            let degree: u32 = meta(ck, "svm.degree")?;
            count(
                "metadata svm.degree",
                degree as usize,
                1,
                kernel::MAX_DEGREE as usize,
            )?;
            finite("metadata svm.coef0", meta::<f32>(ck, "svm.coef0")?)?;
        }
    }
    Ok(())
}

/// Loads any classical model from a safetensors file.
pub fn load_model(path: &Path) -> Result<Box<dyn Classifier>> {
    let ck = Checkpoint::load(path)?;
    from_checkpoint(&ck).with_context(|| format!("in {}", path.display()))
}

/// The fraction of `predicted` equal to `labels`.
pub fn accuracy(predicted: &[usize], labels: &[usize]) -> f64 {
    assert_eq!(
        predicted.len(),
        labels.len(),
        "accuracy: {} predictions for {} labels",
        predicted.len(),
        labels.len()
    );
    let right = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
    right as f64 / labels.len().max(1) as f64
}

/// Checks the shapes given to a `fit` and returns the number of classes (largest label + 1,
/// at least 2).
pub(crate) fn check_fit(op: &str, x: &[f32], y: &[usize], n: usize, d: usize) -> usize {
    assert!(
        x.len() == n * d && y.len() == n && n > 0 && d > 0,
        "{op}: x of {} values, y of {} labels for n={n}, d={d} (x must be [n, d], y [n])",
        x.len(),
        y.len()
    );
    y.iter().copied().max().unwrap_or(0).max(1) + 1
}

/// Checks the shape of `x: [n, d]` given to a prediction.
pub(crate) fn check_predict(op: &str, x: &[f32], n: usize, d: usize) {
    assert!(
        x.len() == n * d,
        "{op}: x of {} values for n={n} rows of the model's d={d} features",
        x.len()
    );
}

/// The tensor `name` of a checkpoint as values, with its shape checked against `shape`.
pub(crate) fn tensor_values(ck: &Checkpoint, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let t = ck
        .get(name)
        .with_context(|| format!("the checkpoint has no tensor {name:?}"))?;
    if t.shape() != shape {
        bail!(
            "tensor {name:?} has shape {:?}, the metadata implies {shape:?}",
            t.shape()
        );
    }
    Ok(t.to_vec())
}

/// The metadata value `key` parsed as a `T`.
pub(crate) fn meta<T: std::str::FromStr>(ck: &Checkpoint, key: &str) -> Result<T> {
    let v = ck
        .metadata
        .get(key)
        .with_context(|| format!("the checkpoint metadata has no {key:?}"))?;
    v.parse()
        .ok()
        .with_context(|| format!("metadata {key:?} = {v:?} does not parse"))
}

/// A tensor entry for a checkpoint.
pub(crate) fn entry(name: &str, values: Vec<f32>, shape: &[usize]) -> (String, Tensor) {
    (name.to_string(), Tensor::from_vec(values, shape))
}

/// Argmax of a row of scores (first index on ties).
pub(crate) fn argmax(row: &[f32]) -> usize {
    crate::kernels::vector::max_index(row).1
}

#[cfg(test)]
pub(crate) mod testdata {
    //! Small problems whose answers are known.
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use rand_distr::StandardNormal;

    /// Gaussian blobs: `per_class` points around each centre, with standard deviation `sd`.
    pub fn blobs(
        centres: &[[f32; 2]],
        per_class: usize,
        sd: f32,
        seed: u64,
    ) -> (Vec<f32>, Vec<usize>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..per_class {
            for (c, centre) in centres.iter().enumerate() {
                for &m in centre {
                    let z: f32 = rng.sample(StandardNormal);
                    x.push(m + sd * z);
                }
                y.push(c);
            }
        }
        (x, y)
    }

    /// XOR: points in the four quadrants (margin 0.2 from the axes), class 1 where x·y < 0.
    pub fn xor(n: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let a: f32 = rng.gen_range(0.2..1.0) * if rng.gen() { 1.0 } else { -1.0 };
            let b: f32 = rng.gen_range(0.2..1.0) * if rng.gen() { 1.0 } else { -1.0 };
            x.extend([a, b]);
            y.push(usize::from(a * b < 0.0));
        }
        (x, y)
    }

    /// Linearly separable 2-D points: class 1 where `x0 + 2 x1 > 0.3`, none within 0.1.
    pub fn separable(n: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        while y.len() < n {
            let a: f32 = rng.gen_range(-1.0..1.0);
            let b: f32 = rng.gen_range(-1.0..1.0);
            let s = a + 2.0 * b - 0.3;
            if s.abs() < 0.1 {
                continue;
            }
            x.extend([a, b]);
            y.push(usize::from(s > 0.0));
        }
        (x, y)
    }
}

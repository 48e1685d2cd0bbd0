//! Test-set evaluation: the model in eval mode through its inference plan
//! ([`crate::infer::Plan`]: fused, no graph), batches in order. A classifier is scored by
//! cross-entropy and accuracy, a regression by MSE (its loss), RMSE and MAE.

use crate::data::{eval_batches, BatchTargets, Dataset, ImageDataset, ImageSamples, Normalization};
use crate::nn::{Module, ModuleExt};
use crate::ops::loss::Reduction;
use crate::tensor::Tensor;
use anyhow::{bail, Result};
use std::sync::Arc;

/// The batch size of evaluation (memory only; the result does not depend on it).
pub const EVAL_BATCH: usize = 1000;

/// The outcome of running a model over a labelled data set.
#[derive(Clone, Debug, Default)]
pub struct Evaluation {
    /// Mean cross-entropy over all samples (a classifier) or mean squared error (a
    /// regression).
    pub loss: f32,
    /// Fraction of samples whose top class is the label (0 for a regression).
    pub accuracy: f32,
    /// The predicted class of each sample, in data-set order (empty for a regression).
    pub predictions: Vec<usize>,
    /// The label of each sample (empty for a regression).
    pub labels: Vec<usize>,
    /// Root mean squared error of a regression.
    pub rmse: Option<f32>,
    /// Mean absolute error of a regression.
    pub mae: Option<f32>,
}

/// Evaluates `model` on image `data`, normalized with `norm`, `batch_size` images at a
/// time. Leaves the model in eval mode.
pub fn evaluate(
    model: &mut dyn Module,
    data: &ImageDataset,
    norm: &Normalization,
    batch_size: usize,
) -> Evaluation {
    let samples = ImageSamples::new(Arc::new(data.clone()), norm.clone());
    evaluate_dataset(model, &samples, batch_size).expect("images in memory cannot fail to load")
}

/// The model's output `[B, K]` or `[B]` as the shape of `target` (`[B]` or `[B, K]`);
/// panics with a clear message when the sizes differ.
pub fn match_target(out: &Tensor, target: &Tensor) -> Tensor {
    assert_eq!(
        out.numel(),
        target.numel(),
        "the model gives {:?} for targets {:?}: a regression needs one output per target value",
        out.shape(),
        target.shape()
    );
    out.reshape(target.shape())
}

/// Evaluates `model` on any data set, `batch_size` samples at a time; errors come from the
/// data set (a bad file). Leaves the model in eval mode.
pub fn evaluate_dataset(
    model: &mut dyn Module,
    data: &dyn Dataset,
    batch_size: usize,
) -> Result<Evaluation> {
    model.set_training(false);
    let plan = crate::infer::Plan::new(&*model);
    // Evaluation's larger batches use other buffer lengths than training's: let training's
    // kept buffers go now, and evaluation's when it is done (peak memory, not speed).
    crate::runtime::buffers::clear();
    let mut loss_sum = 0.0f64;
    let (mut sq_sum, mut abs_sum, mut values) = (0.0f64, 0.0f64, 0usize);
    let mut e = Evaluation::default();
    let mut seen = 0usize;
    for batch in eval_batches(data, batch_size) {
        let batch = batch?;
        let out = plan.forward(batch.input()); // [B, classes] or [B, outputs]
        let b = batch.len();
        seen += b;
        match &batch.targets {
            BatchTargets::Classes(labels) => {
                loss_sum += out.cross_entropy(labels).item() as f64 * b as f64;
                e.predictions.extend(out.argmax(1).to_usize_vec());
                e.labels.extend(labels.to_usize_vec());
            }
            BatchTargets::Values(target) => {
                let diff = match_target(&out, target).sub(target).to_vec();
                sq_sum += diff.iter().map(|d| (*d as f64).powi(2)).sum::<f64>();
                abs_sum += diff.iter().map(|d| d.abs() as f64).sum::<f64>();
                values += diff.len();
            }
        }
    }
    crate::runtime::buffers::clear();
    if seen == 0 {
        bail!("the test split holds no sample to evaluate");
    }
    if values > 0 {
        let mse = sq_sum / values as f64;
        e.loss = mse as f32;
        e.rmse = Some(mse.sqrt() as f32);
        e.mae = Some((abs_sum / values as f64) as f32);
    } else {
        let correct = e
            .predictions
            .iter()
            .zip(&e.labels)
            .filter(|(p, l)| p == l)
            .count();
        e.loss = (loss_sum / seen as f64) as f32;
        e.accuracy = (correct as f64 / seen as f64) as f32;
    }
    Ok(e)
}

impl Evaluation {
    /// A regression's figures scaled from standardized targets back to the target's units
    /// (`scale` = the training targets' standard deviation): RMSE and MAE times `scale`,
    /// the MSE loss times `scale²`. A classification's figures are left as they are.
    pub fn in_target_units(mut self, scale: f32) -> Evaluation {
        if let (Some(rmse), Some(mae)) = (self.rmse, self.mae) {
            self.rmse = Some(rmse * scale);
            self.mae = Some(mae * scale);
            self.loss *= scale * scale;
        }
        self
    }
}

/// The training loss of one batch: cross-entropy for classes (with `label_smoothing`, in
/// `[0, 1)`: PyTorch's `cross_entropy(..., label_smoothing=)`), mean squared error for
/// values. `out` is the model's output `[B, classes]` or `[B, outputs]`.
pub fn batch_loss(out: &Tensor, targets: &BatchTargets, label_smoothing: f32) -> Tensor {
    match targets {
        BatchTargets::Classes(labels) => out.cross_entropy_with(labels, label_smoothing),
        BatchTargets::Values(v) => match_target(out, v).mse_loss(v, Reduction::Mean),
    }
}

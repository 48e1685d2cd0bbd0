//! Test-set evaluation: the model in eval mode through its inference plan
//! ([`crate::infer::Plan`]: fused, no graph), batches in order.

use crate::data::{eval_batches, ImageDataset, Normalization};
use crate::nn::{Module, ModuleExt};
use crate::tensor::Tensor;

/// The batch size of evaluation (memory only; the result does not depend on it).
pub const EVAL_BATCH: usize = 1000;

/// The outcome of running a model over a labelled data set.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// Mean cross-entropy over all images.
    pub loss: f32,
    /// Fraction of images whose top class is the label.
    pub accuracy: f32,
    /// The predicted class of each image, in data-set order.
    pub predictions: Vec<usize>,
    /// The label of each image.
    pub labels: Vec<usize>,
}

/// Evaluates `model` on `data`, normalized with `norm`, `batch_size` images at a time.
/// Leaves the model in eval mode.
pub fn evaluate(
    model: &mut dyn Module,
    data: &ImageDataset,
    norm: &Normalization,
    batch_size: usize,
) -> Evaluation {
    model.set_training(false);
    let plan = crate::infer::Plan::new(&*model);
    // Evaluation's larger batches use other buffer lengths than training's: let training's
    // kept buffers go now, and evaluation's when it is done (peak memory, not speed).
    crate::runtime::buffers::clear();
    let mut loss_sum = 0.0f64;
    let mut predictions = Vec::with_capacity(data.n);
    let mut labels = Vec::with_capacity(data.n);
    for batch in eval_batches(data, norm, batch_size) {
        let x = Tensor::from_vec(batch.images, &batch.shape); // [B, C, H, W]
        let logits = plan.forward(&x); // [B, classes]
        loss_sum += logits.cross_entropy(&batch.labels).item() as f64 * batch.labels.len() as f64;
        predictions.extend(logits.argmax(1).to_usize_vec());
        labels.extend(batch.labels);
    }
    crate::runtime::buffers::clear();
    let correct = predictions
        .iter()
        .zip(&labels)
        .filter(|(p, l)| p == l)
        .count();
    let n = labels.len().max(1) as f64;
    Evaluation {
        loss: (loss_sum / n) as f32,
        accuracy: (correct as f64 / n) as f32,
        predictions,
        labels,
    }
}

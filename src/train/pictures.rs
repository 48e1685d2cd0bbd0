//! The pictures at the end of training: `loss.png` and `accuracy.png` (curves per epoch),
//! `filters.png` (the first layer's weights as an image grid: the course's "what do
//! convolutions learn?"), `confusion.png` (the test set's confusion matrix) and, for `vit`,
//! `attention.png` (where the class token looks in the last block).

use super::evaluate::Evaluation;
use super::metrics::EpochMetrics;
use crate::data::{eval_batches, ImageDataset, Normalization};
use crate::nn::{Module, ModuleExt};
use crate::tensor::Tensor;
use crate::viz;
use anyhow::Result;
use std::path::Path;

/// `counts[true_class][predicted_class]` over the evaluated images.
pub fn confusion_matrix(eval: &Evaluation, classes: usize) -> Vec<Vec<usize>> {
    let mut counts = vec![vec![0usize; classes]; classes];
    for (&label, &predicted) in eval.labels.iter().zip(&eval.predictions) {
        counts[label][predicted] += 1;
    }
    counts
}

/// Writes the end-of-training PNG files into `out_dir`.
pub fn write_pictures(
    out_dir: &Path,
    model: &dyn Module,
    history: &[EpochMetrics],
    test: &Evaluation,
    class_names: &[String],
) -> Result<()> {
    let curves: Vec<viz::EpochMetrics> = history
        .iter()
        .map(|m| viz::EpochMetrics {
            epoch: m.epoch,
            train_loss: m.train_loss as f64,
            train_accuracy: m.train_accuracy as f64,
            test_loss: Some(m.test_loss as f64),
            test_accuracy: Some(m.test_accuracy as f64),
        })
        .collect();
    viz::training_curves(out_dir, &curves)?;
    if let Some((weight, shape)) = first_layer_filters(model) {
        // Small kernels are enlarged more so that each tile is about 100 pixels wide.
        let scale = (100 / shape[3].max(1)).clamp(3, 24) as u32;
        viz::filter_grid(&out_dir.join("filters.png"), &weight, shape, scale)?;
    }
    let confusion = confusion_matrix(test, class_names.len());
    viz::confusion_matrix(&out_dir.join("confusion.png"), &confusion, class_names)?;
    Ok(())
}

/// Writes `attention.png`: the first `count` test images beside the last block's class-token
/// attention over the 7 x 7 patches (mean over heads). `model` must hold `vit`'s weights.
pub fn write_attention(
    path: &Path,
    model: &dyn Module,
    test: &ImageDataset,
    norm: &Normalization,
    count: usize,
) -> Result<()> {
    let vit = crate::models::vit(test.channels, test.class_names.len());
    vit.load_state_dict(&model.state_dict())?;
    let Some(batch) = eval_batches(test, norm, count.max(1)).next() else {
        return Ok(());
    };
    let (h, w) = (test.height, test.width);
    let x = Tensor::from_vec(batch.images, &batch.shape); // [N, C, H, W]
    let (_, att) = crate::autograd::no_grad(|| vit.forward_with_attention(&x)); // [N, 49]
    let att = att.to_vec();
    let grid = crate::models::vit::GRID;
    let pics: Vec<(Vec<f32>, Vec<f32>)> = (0..batch.shape[0])
        .map(|i| {
            // the first channel's raw pixels in [0, 1]
            let img = test.images[i * test.channels * h * w..][..h * w]
                .iter()
                .map(|&p| p as f32 / 255.0)
                .collect();
            (img, att[i * grid * grid..(i + 1) * grid * grid].to_vec())
        })
        .collect();
    viz::attention_overlay(path, &pics, h, w, grid)
}

/// The first layer's weights as `[out, in, kh, kw]` filters: a convolution's kernels, or for
/// a fully connected first layer on 28 x 28 images, its first 64 rows seen as images.
fn first_layer_filters(model: &dyn Module) -> Option<(Vec<f32>, [usize; 4])> {
    let (_, w) = model
        .named_parameters()
        .into_iter()
        .find(|(n, _)| n.ends_with("weight"))?;
    match *w.shape() {
        [o, i, kh, kw] => Some((w.to_vec(), [o, i, kh, kw])),
        [o, 784] => {
            let rows = o.min(64);
            Some((w.narrow(0, 0, rows).to_vec(), [rows, 1, 28, 28]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_counts_pairs() {
        let e = Evaluation {
            loss: 0.0,
            accuracy: 0.5,
            predictions: vec![0, 1, 1, 2],
            labels: vec![0, 0, 1, 2],
        };
        let m = confusion_matrix(&e, 3);
        assert_eq!(m, vec![vec![1, 1, 0], vec![0, 1, 0], vec![0, 0, 1]]);
    }
}

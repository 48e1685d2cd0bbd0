//! The pictures at the end of training: `loss.png` and `accuracy.png` (curves per epoch) and
//! `confusion.png` (the test set's confusion matrix) for every model, and the extra pictures
//! of the model's row in [`crate::models::MODELS`]: `filters.png` (the first layer's weights
//! as an image grid: the course's "what do convolutions learn?"), `attention.png` (where the
//! class token looks in the last block).
//!
//! The drawing needs the `pictures` feature (on with the command); without it
//! [`write_pictures`] writes nothing and a run has its metrics and checkpoint only.

use super::evaluate::Evaluation;

/// Every picture a run may write (what `--overwrite` removes).
pub const PICTURE_FILES: [&str; 5] = [
    "loss.png",
    "accuracy.png",
    "filters.png",
    "confusion.png",
    "attention.png",
];

/// `counts[true_class][predicted_class]` over the evaluated images.
pub fn confusion_matrix(eval: &Evaluation, classes: usize) -> Vec<Vec<usize>> {
    let mut counts = vec![vec![0usize; classes]; classes];
    for (&label, &predicted) in eval.labels.iter().zip(&eval.predictions) {
        counts[label][predicted] += 1;
    }
    counts
}

#[cfg(feature = "pictures")]
pub use draw::write_pictures;

/// Without the `pictures` feature: no pictures (the arguments are those of the drawing
/// version, so the training loop is the same either way).
#[cfg(not(feature = "pictures"))]
pub fn write_pictures(
    _out_dir: &std::path::Path,
    _model: &dyn crate::nn::Module,
    _pictures: &[crate::models::Picture],
    _history: &[super::metrics::EpochMetrics],
    _test: &Evaluation,
    _class_names: &[String],
    _test_images: Option<&crate::data::ImageSamples>,
) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(feature = "pictures")]
mod draw {
    use super::confusion_matrix;
    use crate::data::{eval_batches, ImageSamples};
    use crate::models::Picture;
    use crate::nn::{Module, ModuleExt};
    use crate::tensor::Tensor;
    use crate::train::evaluate::Evaluation;
    use crate::train::metrics::EpochMetrics;
    use crate::viz;
    use anyhow::Result;
    use std::path::Path;

    /// The images of `attention.png`.
    const ATTENTION_IMAGES: usize = 6;

    /// Writes the end-of-training PNG files into `out_dir`: the curves; for a classifier (its
    /// `class_names` not empty) the confusion matrix of `test`; for images (`test_images`, as
    /// the model sees them) the model's `pictures`. A regression gets the curves only.
    pub fn write_pictures(
        out_dir: &Path,
        model: &dyn Module,
        pictures: &[Picture],
        history: &[EpochMetrics],
        test: &Evaluation,
        class_names: &[String],
        test_images: Option<&ImageSamples>,
    ) -> Result<()> {
        let curves: Vec<viz::EpochMetrics> = history
            .iter()
            .map(|m| viz::EpochMetrics {
                epoch: m.epoch,
                train_loss: m.train_loss as f64,
                train_accuracy: m.train_accuracy as f64,
                test_loss: m.test_loss.map(f64::from),
                test_accuracy: m.test_accuracy.map(f64::from),
            })
            .collect();
        viz::training_curves(out_dir, &curves)?;
        if class_names.is_empty() {
            return Ok(());
        }
        let confusion = confusion_matrix(test, class_names.len());
        viz::confusion_matrix(&out_dir.join("confusion.png"), &confusion, class_names)?;
        let Some(test_set) = test_images else {
            return Ok(());
        };
        for picture in pictures {
            if let Picture::Filters = picture {
                write_filters(&out_dir.join("filters.png"), model)?;
            }
        }
        for picture in pictures {
            if let Picture::Attention { patch, maps } = *picture {
                let path = out_dir.join("attention.png");
                let classes = class_names.len();
                // The overlay draws a square grid of patches.
                let [_, h, w] = test_set.source().shape();
                if h == w {
                    let grid = h / patch;
                    write_attention(
                        &path,
                        model,
                        test_set,
                        classes,
                        ATTENTION_IMAGES,
                        grid,
                        maps,
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Writes `filters.png`, when the first layer's weights can be seen as images.
    fn write_filters(path: &Path, model: &dyn Module) -> Result<()> {
        if let Some((weight, shape)) = first_layer_filters(model) {
            // Small kernels are enlarged more so that each tile is about 100 pixels wide.
            let scale = (100 / shape[3].max(1)).clamp(3, 24) as u32;
            viz::filter_grid(path, &weight, shape, scale)?;
        }
        Ok(())
    }

    /// The attention maps of a model (see [`Picture::Attention`]).
    type AttentionMaps = fn(&dyn Module, &Tensor, usize) -> Result<Tensor>;

    /// Writes `attention.png`: the first `count` test images beside the model's attention `maps`
    /// over `grid x grid` patches.
    fn write_attention(
        path: &Path,
        model: &dyn Module,
        test: &ImageSamples,
        classes: usize,
        count: usize,
        grid: usize,
        maps: AttentionMaps,
    ) -> Result<()> {
        let Some(batch) = eval_batches(test, count.max(1)).next() else {
            return Ok(());
        };
        let batch = batch?;
        let [c, h, w] = test.source().shape();
        let x: &Tensor = batch.input(); // [N, C, H, W]
        let att = maps(model, x, classes)?.to_vec(); // [N, grid * grid]
        let mut bytes = vec![0u8; c * h * w];
        let mut pics: Vec<(Vec<f32>, Vec<f32>)> = Vec::with_capacity(batch.len());
        for i in 0..batch.len() {
            test.source().read(i, &mut bytes)?;
            // the first channel's raw pixels in [0, 1]
            let img = bytes[..h * w].iter().map(|&p| p as f32 / 255.0).collect();
            pics.push((img, att[i * grid * grid..(i + 1) * grid * grid].to_vec()));
        }
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
            ..Evaluation::default()
        };
        let m = confusion_matrix(&e, 3);
        assert_eq!(m, vec![vec![1, 1, 0], vec![0, 1, 0], vec![0, 0, 1]]);
    }
}

//! Test-set evaluation: the model in eval mode through its inference plan
//! ([`crate::infer::Plan`]: fused, no graph), batches in order. A classifier is scored by
//! cross-entropy and accuracy, a regression by MSE (its loss), RMSE and MAE.

use crate::data::{
    eval_batches, BatchTargets, Dataset, ImageDataset, ImageSamples, Normalization, Subset,
};
use crate::distributed;
use crate::nn::{Module, ModuleExt};
use crate::ops::loss::Reduction;
use crate::tensor::Tensor;
use anyhow::{bail, Result};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// The batch size of evaluation (memory only; the result does not depend on it).
pub const EVAL_BATCH: usize = 1000;

/// Test-time augmentation (`--tta`): what an evaluation averages the model's outputs over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TestTimeAugment {
    /// Each image as it is.
    #[default]
    None,
    /// The mean of the logits of each image and of its mirror image (the columns
    /// reversed): twice the forward passes, for a model trained with flips.
    Flip,
}

impl TestTimeAugment {
    /// Every choice, in the order help texts and errors list them.
    pub const ALL: [TestTimeAugment; 2] = [TestTimeAugment::None, TestTimeAugment::Flip];
}

impl FromStr for TestTimeAugment {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match TestTimeAugment::ALL
            .into_iter()
            .find(|k| k.to_string() == s)
        {
            Some(k) => Ok(k),
            None => bail!("unknown test-time augmentation '{s}'; choose one of: none, flip"),
        }
    }
}

impl fmt::Display for TestTimeAugment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TestTimeAugment::None => "none",
            TestTimeAugment::Flip => "flip",
        })
    }
}

/// `x` `[B, C, H, W]` with each row's columns reversed (the horizontal mirror image).
pub fn mirror_images(x: &Tensor) -> Result<Tensor> {
    let shape = x.shape();
    if shape.len() != 4 {
        bail!(
            "test-time flips need images [N, C, H, W], not inputs of shape {shape:?}: \
             use --tta none for this data"
        );
    }
    let w = shape[3];
    let mut out = x.to_vec();
    for row in out.chunks_exact_mut(w.max(1)) {
        row.reverse();
    }
    Ok(Tensor::from_vec(out, shape))
}

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
    evaluate_dataset_with(model, data, batch_size, TestTimeAugment::None)
}

/// [`evaluate_dataset`] with test-time augmentation `tta`; an error when `tta` does not fit
/// the data (flips of inputs that are not images).
pub fn evaluate_dataset_with(
    model: &mut dyn Module,
    data: &dyn Dataset,
    batch_size: usize,
    tta: TestTimeAugment,
) -> Result<Evaluation> {
    Sums::of(model, data, batch_size, tta)?.finish()
}

/// [`evaluate_dataset`] on one of several ranks of data-parallel training: each rank runs
/// its contiguous part of `data` ([`crate::distributed::batch_share`] of the whole set) and
/// the sums, predictions and labels are reduced, so that every rank returns the evaluation
/// of the whole set (equal to one process's up to the order of the float sums). The ranks
/// must hold the same weights and running statistics. Alone it is [`evaluate_dataset`].
pub fn evaluate_data_parallel(
    model: &mut dyn Module,
    data: &Arc<dyn Dataset>,
    batch_size: usize,
    tta: TestTimeAugment,
) -> Result<Evaluation> {
    let (rank, world) = (distributed::rank(), distributed::world_size());
    if world == 1 {
        return evaluate_dataset_with(model, &**data, batch_size, tta);
    }
    let n = data.len();
    let part = distributed::batch_share(n, rank, world);
    let mine = Subset::new(data.clone(), part.clone().collect())?;
    let mut sums = if part.is_empty() {
        model.set_training(false); // As on the ranks that evaluate a part.
        Sums::default()
    } else {
        Sums::of(model, &mine, batch_size, tta)?
    };
    let mut totals = [
        sums.loss_sum,
        sums.sq_sum,
        sums.abs_sum,
        sums.values as f64,
        sums.seen as f64,
    ];
    distributed::all_reduce_sum_f64(&mut totals);
    sums.loss_sum = totals[0];
    sums.sq_sum = totals[1];
    sums.abs_sum = totals[2];
    sums.values = totals[3] as usize;
    sums.seen = totals[4] as usize;
    if sums.values == 0 {
        // A classifier (the same answer on every rank: `values` is the global count).
        // Each rank writes its classes (plus one, so that 0 means "another rank's") into
        // its slots of the whole set's; the sum over the ranks is every prediction.
        let gather = |mine: &[usize]| {
            let mut all = vec![0.0f64; n];
            for (slot, &v) in all[part.clone()].iter_mut().zip(mine) {
                *slot = v as f64 + 1.0;
            }
            distributed::all_reduce_sum_f64(&mut all);
            all.iter().map(|&v| v as usize - 1).collect::<Vec<usize>>()
        };
        sums.predictions = gather(&sums.predictions);
        sums.labels = gather(&sums.labels);
    }
    sums.finish()
}

/// What the batches of an evaluation add up to, before the means.
#[derive(Default)]
struct Sums {
    /// Cross-entropy times batch size, summed (a classifier).
    loss_sum: f64,
    /// Squared and absolute errors summed, and their count (a regression).
    sq_sum: f64,
    abs_sum: f64,
    values: usize,
    /// Samples seen.
    seen: usize,
    predictions: Vec<usize>,
    labels: Vec<usize>,
}

impl Sums {
    /// Runs `model` (in eval mode, through its inference plan) over `data`, averaging the
    /// logits over the views `tta` names.
    fn of(
        model: &mut dyn Module,
        data: &dyn Dataset,
        batch_size: usize,
        tta: TestTimeAugment,
    ) -> Result<Sums> {
        model.set_training(false);
        let plan = crate::infer::Plan::new(&*model);
        // Evaluation's larger batches use other buffer lengths than training's: let
        // training's kept buffers go now, and evaluation's when it is done (peak memory,
        // not speed).
        crate::runtime::buffers::clear();
        let mut s = Sums::default();
        for batch in eval_batches(data, batch_size) {
            let batch = batch?;
            let x = batch.input(); // [B, C, H, W] or [B, F]
            let out = match tta {
                TestTimeAugment::None => plan.forward(x), // [B, classes] or [B, outputs]
                TestTimeAugment::Flip => {
                    let mirrored = plan.forward(&mirror_images(x)?);
                    plan.forward(x).add(&mirrored).mul_scalar(0.5)
                }
            };
            let b = batch.len();
            s.seen += b;
            match &batch.targets {
                BatchTargets::Classes(labels) => {
                    s.loss_sum += out.cross_entropy(labels).item() as f64 * b as f64;
                    s.predictions.extend(out.argmax(1).to_usize_vec());
                    s.labels.extend(labels.to_usize_vec());
                }
                BatchTargets::Values(target) => {
                    let diff = match_target(&out, target).sub(target).to_vec();
                    s.sq_sum += diff.iter().map(|d| (*d as f64).powi(2)).sum::<f64>();
                    s.abs_sum += diff.iter().map(|d| d.abs() as f64).sum::<f64>();
                    s.values += diff.len();
                }
            }
        }
        crate::runtime::buffers::clear();
        Ok(s)
    }

    /// The means: loss and accuracy, or MSE, RMSE and MAE.
    fn finish(self) -> Result<Evaluation> {
        if self.seen == 0 {
            bail!("the test split holds no sample to evaluate");
        }
        let mut e = Evaluation::default();
        if self.values > 0 {
            let mse = self.sq_sum / self.values as f64;
            e.loss = mse as f32;
            e.rmse = Some(mse.sqrt() as f32);
            e.mae = Some((self.abs_sum / self.values as f64) as f32);
        } else {
            let correct = self
                .predictions
                .iter()
                .zip(&self.labels)
                .filter(|(p, l)| p == l)
                .count();
            e.loss = (self.loss_sum / self.seen as f64) as f32;
            e.accuracy = (correct as f64 / self.seen as f64) as f32;
            e.predictions = self.predictions;
            e.labels = self.labels;
        }
        Ok(e)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::TensorDataset;

    #[test]
    fn mirror_images_reverses_each_row() {
        let x = Tensor::from_vec((0..12).map(|v| v as f32).collect(), &[2, 1, 2, 3]);
        let m = mirror_images(&x).unwrap();
        assert_eq!(m.shape(), &[2, 1, 2, 3]);
        assert_eq!(
            m.to_vec(),
            [2., 1., 0., 5., 4., 3., 8., 7., 6., 11., 10., 9.]
        );
        let err = mirror_images(&Tensor::zeros(&[4, 3])).unwrap_err();
        assert!(err.to_string().contains("--tta none"), "{err}");
    }

    #[test]
    fn flip_averages_the_logits_of_both_views() {
        // 6 images [1, 3, 4] of 3 classes; a fresh mlp sees them flattened, so a mirror image
        // gives other logits.
        let n = 6;
        let x: Vec<f32> = (0..n * 12)
            .map(|v| ((v * 7 % 11) as f32) / 5.0 - 1.0)
            .collect();
        let x = Tensor::from_vec(x, &[n, 1, 3, 4]);
        let labels: Vec<usize> = (0..n).map(|i| i % 3).collect();
        let data = TensorDataset::new(x.clone(), labels.clone()).unwrap();
        let mut model = crate::models::build("mlp", &[1, 3, 4], 3).unwrap();
        let plain = evaluate_dataset(&mut *model, &data, 4).unwrap();
        let flip = evaluate_dataset_with(&mut *model, &data, 4, TestTimeAugment::Flip).unwrap();

        // By hand: the mean of the logits of x and of its mirror image.
        let a = model.forward(&x);
        let b = model.forward(&mirror_images(&x).unwrap());
        let mean = a.add(&b).mul_scalar(0.5); // [N, 3]
        let want_loss = mean.cross_entropy(&labels).item();
        let want_pred = mean.argmax(1).to_usize_vec();
        assert!(
            (flip.loss - want_loss).abs() < 1e-5,
            "{} {want_loss}",
            flip.loss
        );
        assert_eq!(flip.predictions, want_pred);
        assert!((plain.loss - a.cross_entropy(&labels).item()).abs() < 1e-5);
        // The two views differ, so the test sees the averaging.
        assert!(
            (flip.loss - plain.loss).abs() > 1e-4,
            "{} {}",
            flip.loss,
            plain.loss
        );
    }

    #[test]
    fn tta_names_parse_and_print() {
        for t in TestTimeAugment::ALL {
            assert_eq!(t.to_string().parse::<TestTimeAugment>().unwrap(), t);
        }
        let err = "mirror".parse::<TestTimeAugment>().unwrap_err();
        assert!(err.to_string().contains("none, flip"), "{err}");
    }
}

//! What the training loop trains on ([`TrainData`]): labelled images (in memory or read on
//! demand) or a table of float features with class or float targets, each split in a
//! training and a test part, plus the metadata the run writes into every checkpoint.

use crate::data::{
    Augment, Dataset, FirstImages, ImageDataset, ImageSamples, ImageSource, MnistData,
    Normalization, Subset, TensorDataset, TensorTargets,
};
use crate::tensor::Tensor;
use anyhow::{bail, Result};
use std::sync::Arc;

/// The targets of a table's rows: class indices with their names (classification) or one
/// float per row (regression: MSE loss; RMSE and MAE reported). The same type the CSV
/// reader gives ([`crate::data::TableTargets`]).
pub type Targets = crate::data::TableTargets;

/// Where the samples come from.
#[derive(Clone)]
enum Source {
    Images {
        train: Arc<dyn ImageSource>,
        test: Arc<dyn ImageSource>,
        class_names: Vec<String>,
    },
    Table {
        train: Arc<TensorDataset>,
        test: Arc<TensorDataset>,
        features: usize,
        class_names: Option<Vec<String>>,
    },
}

/// The training and test data of a run, and the metadata it stores with the weights.
///
/// ```
/// use neurite::train::{Targets, TrainData};
/// use neurite::Tensor;
/// # fn main() -> anyhow::Result<()> {
/// let x = Tensor::from_vec(vec![0.0, 1.0, 2.0, 3.0], &[4, 1]); // [N, F]
/// let y = Targets::Values(vec![1.0, 3.0, 5.0, 7.0]);
/// let data = TrainData::table(x.clone(), y.clone(), x, y)?
///     .with_metadata(vec![("table.target".into(), "y".into())]);
/// assert_eq!(data.input_shape(), vec![1]);
/// assert!(data.is_regression() && data.classes().is_none());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TrainData {
    source: Source,
    metadata: Vec<(String, String)>,
    target_scale: f32,
}

impl TrainData {
    /// Labelled images held in memory; the class names are those of the sets, which must
    /// agree, as must the image shapes.
    pub fn images(train: ImageDataset, test: ImageDataset) -> Result<TrainData> {
        if train.class_names != test.class_names {
            bail!(
                "the training images have classes {:?} but the test images {:?}; both splits \
                 need the same classes",
                train.class_names,
                test.class_names
            );
        }
        let class_names = train.class_names.clone();
        Self::image_source(Arc::new(train), Arc::new(test), class_names)
    }

    /// Labelled images from any source (decoded on demand by the loader's workers).
    pub fn image_source(
        train: Arc<dyn ImageSource>,
        test: Arc<dyn ImageSource>,
        class_names: Vec<String>,
    ) -> Result<TrainData> {
        if train.shape() != test.shape() {
            bail!(
                "the training images are {:?} but the test images {:?} ([C, H, W]); resize \
                 both to one shape",
                train.shape(),
                test.shape()
            );
        }
        if class_names.len() < 2 {
            bail!(
                "{} class(es) {class_names:?}: a classifier needs at least two classes",
                class_names.len()
            );
        }
        Ok(TrainData {
            source: Source::Images {
                train,
                test,
                class_names,
            },
            metadata: Vec::new(),
            target_scale: 1.0,
        })
    }

    /// A table: features `[N, F]` and their targets, for training and test (same `F`, same
    /// kind of target). Class targets train a classifier, values a regression.
    pub fn table(
        train_x: Tensor,
        train_y: Targets,
        test_x: Tensor,
        test_y: Targets,
    ) -> Result<TrainData> {
        let width = |x: &Tensor, split: &str| match *x.shape() {
            [_, f] if f > 0 => Ok(f),
            ref s => bail!("the {split} features have shape {s:?}; a table is [rows, features]"),
        };
        let features = width(&train_x, "training")?;
        if width(&test_x, "test")? != features {
            bail!(
                "the training table has {features} features but the test table {}; both need \
                 the same columns",
                test_x.shape()[1]
            );
        }
        let class_names = match (&train_y, &test_y) {
            (
                Targets::Classes { class_names, .. },
                Targets::Classes {
                    class_names: test_names,
                    ..
                },
            ) => {
                if class_names != test_names {
                    bail!("the training and test targets name different classes");
                }
                Some(class_names.clone())
            }
            (Targets::Values(_), Targets::Values(_)) => None,
            _ => bail!("the training and test targets must both be classes or both values"),
        };
        let dataset = |x: Tensor, y: Targets, split: &str| -> Result<Arc<TensorDataset>> {
            let rows = x.shape()[0];
            if rows == 0 || rows != y.len() {
                bail!(
                    "the {split} table has {rows} rows and {} targets; give one target per \
                     row and at least one row",
                    y.len()
                );
            }
            let targets = match y {
                Targets::Classes {
                    labels,
                    class_names,
                } => {
                    if let Some(r) = labels.iter().position(|&l| l >= class_names.len()) {
                        bail!(
                            "row {r} of the {split} table has class {} but there are {} classes",
                            labels[r],
                            class_names.len()
                        );
                    }
                    TensorTargets::Classes(labels)
                }
                Targets::Values(values) => {
                    if let Some(r) = values.iter().position(|v| !v.is_finite()) {
                        bail!("row {r} of the {split} table has target {}", values[r]);
                    }
                    TensorTargets::Values { values, width: 0 }
                }
            };
            Ok(Arc::new(TensorDataset::new(x, targets)?))
        };
        Ok(TrainData {
            source: Source::Table {
                train: dataset(train_x, train_y, "training")?,
                test: dataset(test_x, test_y, "test")?,
                features,
                class_names,
            },
            metadata: Vec::new(),
            target_scale: 1.0,
        })
    }

    /// The same data with `metadata` written into every checkpoint and the final model file
    /// (a description of the data: its shape, class names, a table's standardization).
    pub fn with_metadata(mut self, metadata: Vec<(String, String)>) -> TrainData {
        self.metadata.extend(metadata);
        self
    }

    /// Says that a regression's targets were standardized with standard deviation `std`
    /// (the model learns `(y - mean) / std`, which keeps the output layer's scale near 1):
    /// the loop then reports the test RMSE, MAE and loss in the target's own units.
    pub fn with_target_scale(mut self, std: f32) -> TrainData {
        assert!(
            std.is_finite() && std > 0.0,
            "with_target_scale: a standard deviation must be positive, not {std}"
        );
        self.target_scale = std;
        self
    }

    /// The factor from the model's regression outputs to the target's units (1 unless
    /// [`TrainData::with_target_scale`] said otherwise).
    pub fn target_scale(&self) -> f32 {
        self.target_scale
    }

    /// The data of [`TrainData::with_metadata`].
    pub fn metadata(&self) -> &[(String, String)] {
        &self.metadata
    }

    /// The shape of one sample's input: `[C, H, W]` for images, `[F]` for a table.
    pub fn input_shape(&self) -> Vec<usize> {
        match &self.source {
            Source::Images { train, .. } => train.shape().to_vec(),
            Source::Table { features, .. } => vec![*features],
        }
    }

    /// The number of classes, or `None` for a regression.
    pub fn classes(&self) -> Option<usize> {
        self.class_names().map(<[String]>::len)
    }

    /// The class names, or `None` for a regression.
    pub fn class_names(&self) -> Option<&[String]> {
        match &self.source {
            Source::Images { class_names, .. } => Some(class_names),
            Source::Table { class_names, .. } => class_names.as_deref(),
        }
    }

    /// Whether the targets are floats (a regression).
    pub fn is_regression(&self) -> bool {
        self.classes().is_none()
    }

    /// Whether the inputs are images (normalized, augmented, with image pictures).
    pub fn is_images(&self) -> bool {
        matches!(self.source, Source::Images { .. })
    }

    /// The number of training samples.
    pub fn train_len(&self) -> usize {
        match &self.source {
            Source::Images { train, .. } => train.len(),
            Source::Table { train, .. } => train.len(),
        }
    }

    /// The number of test samples.
    pub fn test_len(&self) -> usize {
        match &self.source {
            Source::Images { test, .. } => test.len(),
            Source::Table { test, .. } => test.len(),
        }
    }

    /// The normalization of images computed on the first `limit` training images (`None`
    /// for a table, whose features come standardized).
    pub fn normalization(&self, limit: usize) -> Result<Option<Normalization>> {
        match &self.source {
            Source::Images { train, .. } => Ok(Some(Normalization::from_source(
                &FirstImages::new(train.clone(), limit),
            )?)),
            Source::Table { .. } => Ok(None),
        }
    }

    /// The first `limit` training samples as the loop reads them: images normalized by
    /// `norm` and augmented by `augment`.
    pub fn train_set(
        &self,
        norm: Option<&Normalization>,
        augment: Augment,
        limit: usize,
    ) -> Result<Arc<dyn Dataset>> {
        Ok(match &self.source {
            Source::Images { train, .. } => {
                let first = Arc::new(FirstImages::new(train.clone(), limit));
                Arc::new(image_samples(first, norm)?.with_augment(augment))
            }
            Source::Table { train, .. } if limit >= train.len() => train.clone(),
            Source::Table { train, .. } => {
                Arc::new(Subset::new(train.clone(), (0..limit).collect())?)
            }
        })
    }

    /// The test samples, normalized as the training ones, never augmented.
    pub fn test_set(&self, norm: Option<&Normalization>) -> Result<Arc<dyn Dataset>> {
        Ok(match &self.source {
            Source::Images { test, .. } => Arc::new(image_samples(test.clone(), norm)?),
            Source::Table { test, .. } => test.clone(),
        })
    }

    /// The test images as the loop evaluates them (`None` for a table): for the pictures.
    pub fn test_images(&self, norm: Option<&Normalization>) -> Option<ImageSamples> {
        match &self.source {
            Source::Images { test, .. } => image_samples(test.clone(), norm).ok(),
            Source::Table { .. } => None,
        }
    }
}

/// `source` normalized by `norm`, whose channels must match.
fn image_samples(
    source: Arc<dyn ImageSource>,
    norm: Option<&Normalization>,
) -> Result<ImageSamples> {
    let c = source.shape()[0];
    let norm = norm.cloned().unwrap_or_else(|| Normalization::identity(c));
    norm.check_channels(c)?;
    Ok(ImageSamples::new(source, norm))
}

impl From<MnistData> for TrainData {
    /// The two splits of an MNIST-layout directory (same shape and classes by construction).
    fn from(data: MnistData) -> TrainData {
        let class_names = data.train.class_names.clone();
        TrainData {
            source: Source::Images {
                train: Arc::new(data.train),
                test: Arc::new(data.test),
                class_names,
            },
            metadata: Vec::new(),
            target_scale: 1.0,
        }
    }
}

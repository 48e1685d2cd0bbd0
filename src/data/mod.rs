//! The data sources of training and their loading: the [`Dataset`] trait (samples of f32
//! inputs and a class or float target), in-memory [`TensorDataset`]s, [`Subset`]s,
//! per-sample [`transform`]s, the general [`DataLoader`] (a [`Sampler`]'s order, background
//! workers, collation into tensors), and the image sources: IDX files, MNIST-layout data
//! sets, finding the data directory, normalization, augmentation ([`ImageSource`],
//! [`ImageSamples`]); CSV tables ([`table`]: standardized features, class or value
//! targets, the checkpoint schema); with the feature `images`, image folders in
//! torchvision's `ImageFolder` layout (`folder`); for the language model, byte text ([`text`]).
//!
//! A typical training set-up on images:
//! ```no_run
//! use neurite::data::*;
//! use std::sync::Arc;
//! # fn main() -> anyhow::Result<()> {
//! let dir = find_data_dir(None)?;
//! let data = MnistData::load(&dir, DatasetKind::FashionMnist)?;
//! let norm = Normalization::from_dataset(&data.train);
//! let train = ImageSamples::new(Arc::new(data.train), norm.clone())
//!     .with_augment("crop,flip".parse()?);
//! let config = LoaderConfig { batch_size: 128, ..Default::default() };
//! let loader = DataLoader::new(Arc::new(train), config);
//! for epoch in 0..2 {
//!     for batch in loader.epoch(epoch) {
//!         let batch = batch?;
//!         let _ = (batch.input(), batch.labels()); // [B, 1, 28, 28], [B]
//!     }
//! }
//! let test = ImageSamples::new(Arc::new(data.test), norm);
//! for batch in eval_batches(&test, 1000) {
//!     let _ = batch?.input().shape();
//! }
//! # Ok(()) }
//! ```

pub mod augment;
pub mod collate;
pub mod dataset;
pub mod discover;
#[cfg(feature = "images")]
pub mod folder;
pub mod idx;
pub mod image_source;
pub mod info;
pub mod loader;
pub mod mnist;
pub mod normalize;
pub mod sampler;
pub mod split;
pub mod table;
pub mod tensor_dataset;
pub mod text;
pub mod transform;

pub use augment::Augment;
pub use collate::{collate, Batch, BatchTargets};
pub use dataset::{Dataset, DatasetExt, Input, Mapped, Sample, Subset, Target};
pub use discover::{find_data_dir, find_data_dir_for};
#[cfg(feature = "images")]
pub use folder::{load_folder, FolderData, FolderOptions, FolderSplit, LazyImages};
pub use idx::{read_idx, IdxArray, IdxError};
pub use image_source::{FirstImages, ImageSamples, ImageSource};
pub use info::{DataInfo, SourceKind, Task};
pub use loader::{eval_batches, DataLoader, EpochIter, EvalIter, LoaderConfig};
pub use mnist::{DatasetKind, ImageDataset, MnistData, Split};
pub use normalize::Normalization;
pub use sampler::{rng_for, RandomSampler, Sampler, SequentialSampler};
pub use split::{split_indices, SplitIndices};
pub use table::{TableData, TableOptions, TableSchema, TableTargets};
pub use tensor_dataset::{TensorDataset, TensorTargets};
pub use transform::{CenterCrop, Compose, Normalize, RandomCrop, Resize, Transform};

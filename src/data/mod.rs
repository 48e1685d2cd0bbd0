//! The data sources of training: for images, IDX files, MNIST-layout data sets, finding the
//! data directory, normalization, augmentation and mini-batch loading; for the language
//! model, byte text ([`text`]: files, the 90/10 split, random windows); with the feature
//! `images`, image folders in torchvision's `ImageFolder` layout (`folder`).
//!
//! It hands the model plain `Vec<f32>` batches (`[B, C, H, W]`) and knows nothing of
//! tensors; `Tensor::from_vec(batch.images, &batch.shape)` makes one.
//!
//! A typical training set-up:
//! ```no_run
//! use neurite::data::*;
//! use std::sync::Arc;
//! # fn main() -> anyhow::Result<()> {
//! let dir = find_data_dir(None)?;
//! let data = MnistData::load(&dir, DatasetKind::FashionMnist)?;
//! let norm = Normalization::from_dataset(&data.train);
//! let config = LoaderConfig { batch_size: 128, augment: "crop,flip".parse()?, ..Default::default() };
//! let loader = DataLoader::new(Arc::new(data.train), norm.clone(), config);
//! for epoch in 0..2 {
//!     for batch in loader.epoch(epoch) {
//!         let _ = (batch.images, batch.labels); // [B, 1, 28, 28], [B]
//!     }
//! }
//! for batch in eval_batches(&data.test, &norm, 1000) {
//!     let _ = batch.shape;
//! }
//! # Ok(()) }
//! ```

pub mod augment;
pub mod discover;
#[cfg(feature = "images")]
pub mod folder;
pub mod idx;
pub mod loader;
pub mod mnist;
pub mod normalize;
pub mod split;
pub mod text;

pub use augment::Augment;
pub use discover::{find_data_dir, find_data_dir_for};
#[cfg(feature = "images")]
pub use folder::{load_folder, FolderData, FolderOptions, FolderSplit, LazyImages};
pub use idx::{read_idx, IdxArray, IdxError};
pub use loader::{eval_batches, Batch, DataLoader, EpochIter, EvalIter, LoaderConfig};
pub use mnist::{DatasetKind, ImageDataset, MnistData, Split};
pub use normalize::Normalization;
pub use split::{split_indices, SplitIndices};

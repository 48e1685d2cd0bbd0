//! What an image run keeps beside the shared run files ([`super::run`]): the model's
//! weights with its name and normalization constants (`model`, `normalize.mean`/`.std`),
//! loading them back into a model (`--init`, `neurite eval`, `predict`), and the run's
//! configuration (`train.*`) for `--resume`.

use super::config::TrainConfig;
use super::run::read_checkpoint;
pub use super::run::{CHECKPOINT_FILE, METRICS_FILE, MODEL_FILE, OPTIMIZER_FILE, OPTIMIZER_PREFIX};
use crate::checkpoint::Checkpoint;
use crate::data::Normalization;
use crate::nn::{Module, ModuleExt};
use crate::tensor::Tensor;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// The metadata of an image model's weights: its name and the normalization constants.
pub fn model_metadata(name: &str, norm: &Normalization) -> Vec<(String, String)> {
    let mut meta = vec![("model".to_string(), name.to_string())];
    meta.extend(norm.to_metadata());
    meta
}

/// The model's `state_dict` with the metadata `model` and the normalization constants.
pub fn model_checkpoint(model: &dyn Module, name: &str, norm: &Normalization) -> Checkpoint {
    let mut ck = Checkpoint::new(model.state_dict());
    ck.metadata.extend(model_metadata(name, norm));
    ck
}

/// Loads the weights at `path` into `model` (called `name`), strictly, and returns the
/// normalization stored with them (`None` for a checkpoint exported from PyTorch).
pub fn load_weights(model: &dyn Module, name: &str, path: &Path) -> Result<Option<Normalization>> {
    let ck = Checkpoint::load(path)?;
    ck.check_finite(&path.display().to_string())?;
    if let Some(saved) = ck.metadata.get("model") {
        if saved != name {
            bail!(
                "{} holds weights of a {saved}, not of a {name}",
                path.display()
            );
        }
    }
    model
        .load_state_dict(&model_tensors(ck.tensors))
        .with_context(|| format!("cannot load {} into a {name}", path.display()))?;
    Normalization::from_metadata_map(&ck.metadata).with_context(|| format!("in {}", path.display()))
}

/// The model's own tensors of a checkpoint (a run checkpoint also holds the optimizer's).
pub fn model_tensors(tensors: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    tensors
        .into_iter()
        .filter(|(n, _)| !n.starts_with(OPTIMIZER_PREFIX))
        .collect()
}

/// Reads the configuration of the image run in `out` (for `--resume`).
pub fn saved_config(out: &Path) -> Result<TrainConfig> {
    let (path, ck) = read_checkpoint(out)?;
    TrainConfig::from_metadata(&ck.metadata, &path.display().to_string())
}

//! What a run leaves in its output directory, and reading it back:
//!
//! - `checkpoint.safetensors`: the model's `state_dict` after the last finished epoch, with
//!   metadata `model`, `normalize.mean`/`normalize.std`, `epoch` and the run's `train.*`
//!   configuration. It holds model tensors only, so PyTorch loads it strictly.
//! - `optimizer.safetensors`: the optimizer's state (momentum buffers, Adam moments) and
//!   `epoch`/`step` metadata, for `--resume`.
//! - `model.safetensors`: the final weights (same form as the checkpoint).
//! - `metrics.jsonl`: one line per epoch.
//!
//! Every file is written atomically (temporary file, then rename).

use super::config::TrainConfig;
use super::metrics::{read_log, EpochMetrics};
use crate::checkpoint::Checkpoint;
use crate::data::Normalization;
use crate::nn::{Module, ModuleExt};
use crate::optim::Optimizer;
use crate::tensor::Tensor;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// The per-epoch model checkpoint.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// The optimizer state beside it.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// The final model.
pub const MODEL_FILE: &str = "model.safetensors";
/// The per-epoch metrics.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// The model's `state_dict` with the metadata `model` and the normalization constants.
pub fn model_checkpoint(model: &dyn Module, name: &str, norm: &Normalization) -> Checkpoint {
    let mut ck = Checkpoint::new(model.state_dict());
    ck.metadata.insert("model".into(), name.into());
    ck.metadata.extend(norm.to_metadata());
    ck
}

/// Loads the weights at `path` into `model` (called `name`), strictly, and returns the
/// normalization stored with them (`None` for a checkpoint exported from PyTorch).
pub fn load_weights(model: &dyn Module, name: &str, path: &Path) -> Result<Option<Normalization>> {
    let ck = Checkpoint::load(path)?;
    if let Some(saved) = ck.metadata.get("model") {
        if saved != name {
            bail!(
                "{} holds weights of a {saved}, not of a {name}",
                path.display()
            );
        }
    }
    model
        .load_state_dict(&ck.tensors)
        .with_context(|| format!("cannot load {} into a {name}", path.display()))?;
    Normalization::from_metadata_map(&ck.metadata).with_context(|| format!("in {}", path.display()))
}

/// Saves the state after `epoch` finished epochs (`step` optimizer steps so far).
/// The optimizer file is written first; both carry the epoch, so a crash between the two
/// writes is detected on resume.
pub fn save_run(
    out: &Path,
    model: &dyn Module,
    optimizer: &dyn Optimizer,
    config: &TrainConfig,
    norm: &Normalization,
    epoch: usize,
    step: usize,
) -> Result<()> {
    let mut opt = Checkpoint::new(optimizer.state());
    opt.metadata.insert("epoch".into(), epoch.to_string());
    opt.metadata.insert("step".into(), step.to_string());
    opt.metadata
        .insert("optimizer".into(), config.optimizer.to_string());
    opt.save(&out.join(OPTIMIZER_FILE))?;
    let mut ck = model_checkpoint(model, &config.model, norm);
    ck.metadata.insert("epoch".into(), epoch.to_string());
    ck.metadata.extend(config.to_metadata());
    ck.save(&out.join(CHECKPOINT_FILE))
}

/// A run read back from its output directory.
pub struct SavedRun {
    pub config: TrainConfig,
    /// Finished epochs.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: usize,
    pub model_state: Vec<(String, Tensor)>,
    pub optimizer_state: Vec<(String, Tensor)>,
    pub norm: Normalization,
    /// The metrics of the finished epochs.
    pub history: Vec<EpochMetrics>,
}

/// Reads the configuration of the run in `out` (for `--resume`).
pub fn saved_config(out: &Path) -> Result<TrainConfig> {
    let path = out.join(CHECKPOINT_FILE);
    if !path.is_file() {
        bail!(
            "--resume: {} has no {CHECKPOINT_FILE} to continue from",
            out.display()
        );
    }
    let ck = Checkpoint::load(&path)?;
    TrainConfig::from_metadata(&ck.metadata, &path.display().to_string())
}

/// Reads everything `--resume` needs from `out`.
pub fn load_run(out: &Path) -> Result<SavedRun> {
    let config = saved_config(out)?;
    let ck_path = out.join(CHECKPOINT_FILE);
    let opt_path = out.join(OPTIMIZER_FILE);
    let ck = Checkpoint::load(&ck_path)?;
    let opt = Checkpoint::load(&opt_path).context("--resume needs the optimizer state too")?;
    let number = |meta: &crate::checkpoint::Metadata, key: &str, path: &Path| {
        meta.get(key)
            .and_then(|v| v.parse::<usize>().ok())
            .with_context(|| format!("{} holds no valid '{key}' metadata", path.display()))
    };
    let epoch = number(&ck.metadata, "epoch", &ck_path)?;
    let opt_epoch = number(&opt.metadata, "epoch", &opt_path)?;
    if epoch != opt_epoch {
        bail!(
            "{} is from epoch {epoch} but {} from epoch {opt_epoch} (interrupted while saving?); \
             cannot resume consistently",
            ck_path.display(),
            opt_path.display()
        );
    }
    let norm = Normalization::from_metadata_map(&ck.metadata)?
        .with_context(|| format!("{} holds no normalization constants", ck_path.display()))?;
    let mut history = read_log(&out.join(METRICS_FILE))?;
    history.retain(|m| m.epoch <= epoch);
    Ok(SavedRun {
        config,
        epoch,
        step: number(&opt.metadata, "step", &opt_path)?,
        model_state: ck.tensors,
        optimizer_state: opt.tensors,
        norm,
        history,
    })
}

//! What a run leaves in its output directory, and reading it back:
//!
//! - `checkpoint.safetensors`: the whole resumable state after the last finished epoch, in
//!   one file written atomically, so that no interruption can leave a state that cannot be
//!   resumed: the model's `state_dict`, the optimizer's state under `optimizer.*` names
//!   (momentum buffers, Adam moments), and metadata `model`, `normalize.mean`/`.std`,
//!   `epoch`, `step` (the schedule is a function of the step), the run's `train.*`
//!   configuration and its per-epoch `metrics`.
//! - `model.safetensors`: the weights after the last finished epoch, model tensors only
//!   (PyTorch loads it strictly), rewritten after each epoch and at the end.
//! - `metrics.jsonl`: one line per epoch (also rebuilt from the checkpoint on `--resume`).
//!
//! Every file is written atomically (temporary file, then rename), and no file is written
//! with a non-finite value ([`Checkpoint::save`] refuses it). Runs of earlier versions kept
//! the optimizer's state in a separate `optimizer.safetensors`; `--resume` still reads them.

use super::config::TrainConfig;
use super::metrics::{log_text, parse_log, read_log, write_log, EpochMetrics};
use super::run_dir::RunDir;
use crate::checkpoint::Checkpoint;
use crate::data::Normalization;
use crate::nn::{Module, ModuleExt};
use crate::optim::Optimizer;
use crate::tensor::Tensor;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// The per-epoch model checkpoint.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// The optimizer state beside it, in runs of earlier versions.
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

/// The optimizer's tensors inside a run checkpoint are named `optimizer.NAME`.
pub const OPTIMIZER_PREFIX: &str = "optimizer.";
/// The metadata key of the per-epoch metrics (JSON lines) inside a run checkpoint.
const METRICS_KEY: &str = "metrics";
/// The metadata key that marks a one-file run checkpoint.
const FORMAT_KEY: &str = "format";
const FORMAT: &str = "neurite-run-2";

/// The model's own tensors of a checkpoint (a run checkpoint also holds the optimizer's).
pub fn model_tensors(tensors: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    tensors
        .into_iter()
        .filter(|(n, _)| !n.starts_with(OPTIMIZER_PREFIX))
        .collect()
}

/// Saves the state after `epoch` finished epochs (`step` optimizer steps so far): the
/// checkpoint first, the one file `--resume` needs, then the weights alone and the log,
/// which are derived from it.
#[allow(clippy::too_many_arguments)]
pub fn save_run(
    dir: &RunDir,
    model: &dyn Module,
    optimizer: &dyn Optimizer,
    config: &TrainConfig,
    norm: &Normalization,
    epoch: usize,
    step: usize,
    history: &[EpochMetrics],
) -> Result<()> {
    let mut ck = model_checkpoint(model, &config.model, norm);
    ck.tensors.extend(
        optimizer
            .state()
            .into_iter()
            .map(|(n, t)| (format!("{OPTIMIZER_PREFIX}{n}"), t)),
    );
    ck.metadata.insert(FORMAT_KEY.into(), FORMAT.into());
    ck.metadata.insert("epoch".into(), epoch.to_string());
    ck.metadata.insert("step".into(), step.to_string());
    ck.metadata
        .insert("optimizer".into(), config.optimizer.to_string());
    ck.metadata.insert(METRICS_KEY.into(), log_text(history));
    ck.metadata.extend(config.to_metadata());
    ck.save(&dir.join(CHECKPOINT_FILE))?;
    save_model(dir, model, &config.model, norm, epoch)?;
    write_log(&dir.join(METRICS_FILE), history)
}

/// Writes `model.safetensors`: the weights after `epoch` epochs, model tensors only.
pub fn save_model(
    dir: &RunDir,
    model: &dyn Module,
    name: &str,
    norm: &Normalization,
    epoch: usize,
) -> Result<()> {
    let mut ck = model_checkpoint(model, name, norm);
    ck.metadata.insert("epoch".into(), epoch.to_string());
    ck.save(&dir.join(MODEL_FILE))
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

/// What a directory holds of an earlier run, if anything: "a lenet5 run (epoch 3 of 20)".
pub fn existing_run(out: &Path) -> Option<String> {
    let ck_path = out.join(CHECKPOINT_FILE);
    if let Ok(ck) = Checkpoint::load(&ck_path) {
        let model = ck.metadata.get("model").map_or("model", |m| m.as_str());
        let epoch = ck.metadata.get("epoch").map_or("?", |e| e.as_str());
        let epochs = ck.metadata.get("train.epochs").map_or("?", |e| e.as_str());
        return Some(format!("a {model} run (epoch {epoch} of {epochs})"));
    }
    [CHECKPOINT_FILE, MODEL_FILE, OPTIMIZER_FILE, METRICS_FILE]
        .iter()
        .find(|f| out.join(f).exists())
        .map(|f| format!("the files of an earlier run ({f})"))
}

/// Reads everything `--resume` needs from `out`.
pub fn load_run(out: &Path) -> Result<SavedRun> {
    let config = saved_config(out)?;
    let ck_path = out.join(CHECKPOINT_FILE);
    let ck = Checkpoint::load(&ck_path)?;
    ck.check_finite(&ck_path.display().to_string())?;
    let number = |meta: &crate::checkpoint::Metadata, key: &str, path: &Path| {
        meta.get(key)
            .and_then(|v| v.parse::<usize>().ok())
            .with_context(|| format!("{} holds no valid '{key}' metadata", path.display()))
    };
    let epoch = number(&ck.metadata, "epoch", &ck_path)?;
    let norm = Normalization::from_metadata_map(&ck.metadata)?
        .with_context(|| format!("{} holds no normalization constants", ck_path.display()))?;
    let (step, optimizer_state, history) = if ck.metadata.get(FORMAT_KEY).map(String::as_str)
        == Some(FORMAT)
    {
        let step = number(&ck.metadata, "step", &ck_path)?;
        let optimizer_state = ck
            .tensors
            .iter()
            .filter_map(|(n, t)| {
                n.strip_prefix(OPTIMIZER_PREFIX)
                    .map(|n| (n.to_string(), t.clone()))
            })
            .collect();
        let text = ck.metadata.get(METRICS_KEY).map_or("", |t| t.as_str());
        let history = parse_log(
            text,
            &format!("{} metadata '{METRICS_KEY}'", ck_path.display()),
        )?;
        (step, optimizer_state, history)
    } else {
        // A run of an earlier version: the optimizer's state in its own file.
        let opt_path = out.join(OPTIMIZER_FILE);
        let opt = Checkpoint::load(&opt_path).context("--resume needs the optimizer state too")?;
        let opt_epoch = number(&opt.metadata, "epoch", &opt_path)?;
        if epoch != opt_epoch {
            bail!(
                "{} is from epoch {epoch} but {} from epoch {opt_epoch} (interrupted while saving?); \
                 cannot resume consistently",
                ck_path.display(),
                opt_path.display()
            );
        }
        let mut history = read_log(&out.join(METRICS_FILE))?;
        history.retain(|m| m.epoch <= epoch);
        (
            number(&opt.metadata, "step", &opt_path)?,
            opt.tensors,
            history,
        )
    };
    if history.len() != epoch {
        bail!(
            "{} is from epoch {epoch} but holds the metrics of {} epochs; cannot resume consistently",
            ck_path.display(),
            history.len()
        );
    }
    Ok(SavedRun {
        config,
        epoch,
        step,
        model_state: model_tensors(ck.tensors),
        optimizer_state,
        norm,
        history,
    })
}

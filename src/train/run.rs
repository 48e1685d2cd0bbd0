//! The scaffold every training loop shares (`neurite train` for images, `neurite lm train`
//! for `gpt`): the output directory and its lock, the one-file checkpoint and `--resume`,
//! and the metrics log. A loop supplies what is its own: what a step is, how it evaluates,
//! its [`Record`] of metrics and its metadata keys.
//!
//! What a run leaves in its output directory:
//!
//! - `checkpoint.safetensors`: the whole resumable state after the last evaluation, in one
//!   file written atomically, so that no interruption can leave a state that cannot be
//!   resumed: the model's `state_dict`, the optimizer's state under `optimizer.*` names
//!   (momentum buffers, Adam moments, keyed by parameter name; the schedule's position under
//!   `optimizer.scheduler.*`), and metadata `format` (`neurite-run-2`), `step` (the
//!   optimizer steps taken), `metrics` (the
//!   log's lines so far), the loop's progress counter ([`Record::PROGRESS`]), and the loop's
//!   own keys (the model's name and shape or normalization, the run's `train.*` or `lm.*`
//!   settings that `--resume` checks).
//! - `model.safetensors`: the weights alone (PyTorch loads it strictly), with the loop's
//!   model metadata, rewritten after the checkpoint.
//! - `metrics.jsonl`: one line per evaluation, rewritten last (and rebuilt from the
//!   checkpoint on `--resume`).
//!
//! Every file is written atomically (temporary file, then rename), and no file is written
//! with a non-finite value ([`Checkpoint::save`] refuses it).
//!
//! Runs of earlier versions still resume: image runs that kept the optimizer's state in a
//! separate `optimizer.safetensors` and the log in `metrics.jsonl` only, and `lm train` runs
//! whose checkpoint had no `format` and no `metrics` (their history starts empty); and
//! runs whose optimizer state is keyed by parameter position and holds no schedule (see
//! [`Resumed::optimizer_state_with_schedule`] and `crate::optim::Optimizer::load_state`).

use super::metrics::{log_text, parse_log, read_log, write_log, Record};
use super::run_dir::RunDir;
use crate::checkpoint::{Checkpoint, Metadata};
use crate::optim::{Optimizer, SCHEDULER_PREFIX};
use crate::tensor::Tensor;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The resumable state of a run.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// The optimizer state beside the checkpoint, in image runs of earlier versions.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// The model of a run.
pub const MODEL_FILE: &str = "model.safetensors";
/// The metrics log of a run.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// The optimizer's tensors inside a run checkpoint are named `optimizer.NAME`.
pub const OPTIMIZER_PREFIX: &str = "optimizer.";
/// The metadata key of the metrics (JSON lines) inside a run checkpoint.
const METRICS_KEY: &str = "metrics";
/// The metadata key that marks a one-file run checkpoint, and its value.
const FORMAT_KEY: &str = "format";
const FORMAT: &str = "neurite-run-2";

/// The files every run writes, in the order an `--overwrite` removes them: the checkpoint
/// last, so that a kill meanwhile leaves a run that still resumes.
pub const RUN_FILES: [&str; 4] = [METRICS_FILE, MODEL_FILE, OPTIMIZER_FILE, CHECKPOINT_FILE];

/// A training run in its locked output directory, with the metrics of its evaluations.
pub struct Run<R: Record> {
    dir: RunDir,
    /// The progress counter of the checkpoint in the directory: the last good state.
    saved: Option<usize>,
    /// The records of every evaluation so far (those before a resume included).
    pub history: Vec<R>,
}

/// What the checkpoint of a run holds, read back for `--resume`.
pub struct Resumed {
    /// The checkpoint's path, for messages.
    pub path: PathBuf,
    /// The model's tensors and every metadata entry of the checkpoint.
    pub checkpoint: Checkpoint,
    /// The optimizer's state, without the `optimizer.` prefix.
    pub optimizer_state: Vec<(String, Tensor)>,
    /// Optimizer steps taken.
    pub step: usize,
    /// The loop's progress counter ([`Record::PROGRESS`]).
    pub progress: usize,
}

impl Resumed {
    /// The optimizer's state to load. A checkpoint written before the schedule's state was
    /// saved with the optimizer's (neurite's schedules were then a function of the step
    /// count) gets the schedule's position from the step count, so the curve continues.
    pub fn optimizer_state_with_schedule(&self) -> Vec<(String, Tensor)> {
        let mut state = self.optimizer_state.clone();
        if !state.iter().any(|(n, _)| n.starts_with(SCHEDULER_PREFIX)) {
            let at = Tensor::scalar(self.step as f32);
            state.push((format!("{SCHEDULER_PREFIX}last_epoch"), at));
        }
        state
    }
}

/// A state to save: the model, the optimizer, and the loop's metadata.
pub struct Snapshot<'a> {
    /// The model's `state_dict`.
    pub model: Vec<(String, Tensor)>,
    /// The optimizer, whose state is saved with the weights.
    pub optimizer: &'a dyn Optimizer,
    /// Optimizer steps taken.
    pub step: usize,
    /// Metadata of both files: the model's name, shape or normalization, and the progress
    /// counter.
    pub model_metadata: Vec<(String, String)>,
    /// Metadata of the checkpoint only: the settings `--resume` reads or checks.
    pub run_metadata: Vec<(String, String)>,
}

impl<R: Record> Run<R> {
    /// Opens `out` for a run: locks it (see [`RunDir`]), and then a fresh run refuses a
    /// directory that holds an earlier run (checked once before the lock too, so that a
    /// refused command writes nothing), `overwrite` removes `loop_files` and the
    /// [`RUN_FILES`] first, and `resume` reads the checkpoint back.
    pub fn open(
        out: &Path,
        resume: bool,
        overwrite: bool,
        loop_files: &[&str],
    ) -> Result<(Run<R>, Option<Resumed>)> {
        if !resume && !overwrite {
            refuse_an_earlier_run(out)?;
        }
        let dir = RunDir::open(out)?;
        let mut run = Run {
            dir,
            saved: None,
            history: Vec::new(),
        };
        if resume {
            let (resumed, history) = load::<R>(run.dir.path())?;
            run.saved = Some(resumed.progress).filter(|&p| p > 0);
            // The log is derived from the checkpoint: a run killed after its checkpoint was
            // saved but before the log was (possibly at its very last save, after which
            // nothing is left to rewrite it) gets the log the checkpoint holds.
            write_log(&run.dir.join(METRICS_FILE), &history)?;
            run.history = history;
            return Ok((run, Some(resumed)));
        }
        if overwrite {
            run.dir.remove_files(loop_files)?;
            run.dir.remove_files(&RUN_FILES)?;
        } else {
            refuse_an_earlier_run(run.dir.path())?;
        }
        Ok((run, None))
    }

    /// The output directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A file inside the output directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Adds `record` to the history and saves the state after it: the checkpoint first,
    /// the one file `--resume` needs, then the model alone and the log, derived from it.
    pub fn save(&mut self, snapshot: Snapshot<'_>, record: R) -> Result<()> {
        let progress = record.progress();
        self.history.push(record);
        let mut ck = Checkpoint::new(snapshot.model);
        ck.tensors.extend(
            snapshot
                .optimizer
                .state()
                .into_iter()
                .map(|(n, t)| (format!("{OPTIMIZER_PREFIX}{n}"), t)),
        );
        ck.metadata.extend(snapshot.model_metadata.iter().cloned());
        ck.metadata.insert(FORMAT_KEY.into(), FORMAT.into());
        ck.metadata.insert("step".into(), snapshot.step.to_string());
        ck.metadata
            .insert(METRICS_KEY.into(), log_text(&self.history));
        ck.metadata.extend(snapshot.run_metadata);
        ck.save(&self.dir.join(CHECKPOINT_FILE))?;
        self.saved = Some(progress);
        let model_tensors = ck
            .tensors
            .into_iter()
            .filter(|(n, _)| !n.starts_with(OPTIMIZER_PREFIX))
            .collect();
        self.save_model(model_tensors, snapshot.model_metadata)?;
        write_log(&self.dir.join(METRICS_FILE), &self.history)
    }

    /// Writes `model.safetensors`: the `state_dict` alone with `metadata`.
    pub fn save_model(
        &self,
        model: Vec<(String, Tensor)>,
        metadata: Vec<(String, String)>,
    ) -> Result<()> {
        let mut ck = Checkpoint::new(model);
        ck.metadata.extend(metadata);
        ck.save(&self.dir.join(MODEL_FILE))
    }

    /// Where the last good state of a stopped run is.
    pub fn last_good(&self) -> String {
        match self.saved {
            Some(p) => format!(
                "the last good checkpoint, {} ({} {p}), is untouched",
                self.dir.join(CHECKPOINT_FILE).display(),
                R::PROGRESS
            ),
            None => "no checkpoint had been saved yet".to_string(),
        }
    }
}

/// What a directory holds of an earlier run, if anything: "a lenet5 run (epoch 3 of 20)",
/// "a gpt run (step 500)".
pub fn existing_run(out: &Path) -> Option<String> {
    if let Ok(ck) = Checkpoint::load(&out.join(CHECKPOINT_FILE)) {
        let meta = &ck.metadata;
        let model = meta.get("model").map_or("model", |m| m.as_str());
        let at = match (meta.get("epoch"), meta.get("step")) {
            (Some(e), _) => {
                let epochs = meta.get("train.epochs").map_or("?", |e| e.as_str());
                format!("epoch {e} of {epochs}")
            }
            (None, Some(s)) => format!("step {s}"),
            (None, None) => "at an unknown point".to_string(),
        };
        return Some(format!("a {model} run ({at})"));
    }
    [CHECKPOINT_FILE, MODEL_FILE, OPTIMIZER_FILE, METRICS_FILE]
        .iter()
        .find(|f| out.join(f).exists())
        .map(|f| format!("the files of an earlier run ({f})"))
}

/// The error for a fresh run in a directory that holds an earlier one.
fn refuse_an_earlier_run(out: &Path) -> Result<()> {
    match existing_run(out) {
        None => Ok(()),
        Some(what) => bail!(
            "{} already holds {what}; continue it with --resume, start over with --overwrite, \
             or give another --out",
            out.display()
        ),
    }
}

/// The checkpoint of the run in `out`, read without the lock (to learn its configuration
/// before the run starts); an error when there is none.
pub fn read_checkpoint(out: &Path) -> Result<(PathBuf, Checkpoint)> {
    let path = out.join(CHECKPOINT_FILE);
    if !path.is_file() {
        bail!(
            "--resume: {} has no {CHECKPOINT_FILE} to continue from",
            out.display()
        );
    }
    let ck = Checkpoint::load(&path)?;
    Ok((path, ck))
}

/// What `--resume` reads from the run in `out`, and the metrics so far, read without the
/// lock: for the ranks of a data-parallel run other than rank 0, which holds the directory
/// ([`Run::open`]) and alone writes it.
pub fn read_resumed<R: Record>(out: &Path) -> Result<(Resumed, Vec<R>)> {
    load::<R>(out)
}

/// A whole number of the metadata `meta` of the file `path`.
fn number(meta: &Metadata, key: &str, path: &Path) -> Result<usize> {
    meta.get(key)
        .and_then(|v| v.parse::<usize>().ok())
        .with_context(|| format!("{} holds no valid '{key}' metadata", path.display()))
}

/// Reads everything `--resume` needs from `out`, and the metrics so far.
fn load<R: Record>(out: &Path) -> Result<(Resumed, Vec<R>)> {
    let (path, mut ck) = read_checkpoint(out)?;
    ck.check_finite(&path.display().to_string())?;
    let progress = number(&ck.metadata, R::PROGRESS, &path)?;
    let (optimizer, model): (Vec<_>, Vec<_>) = std::mem::take(&mut ck.tensors)
        .into_iter()
        .partition(|(n, _)| n.starts_with(OPTIMIZER_PREFIX));
    ck.tensors = model;
    let mut optimizer_state: Vec<(String, Tensor)> = optimizer
        .into_iter()
        .map(|(n, t)| (n[OPTIMIZER_PREFIX.len()..].to_string(), t))
        .collect();
    let (step, history) = if ck.metadata.get(FORMAT_KEY).map(String::as_str) == Some(FORMAT) {
        let text = ck.metadata.get(METRICS_KEY).map_or("", |t| t.as_str());
        let source = format!("{} metadata '{METRICS_KEY}'", path.display());
        (
            number(&ck.metadata, "step", &path)?,
            parse_log(text, &source)?,
        )
    } else {
        // A run of an earlier version.
        let step = if optimizer_state.is_empty() {
            // An image run: the optimizer's state in its own file.
            let opt_path = out.join(OPTIMIZER_FILE);
            let opt =
                Checkpoint::load(&opt_path).context("--resume needs the optimizer state too")?;
            let opt_progress = number(&opt.metadata, R::PROGRESS, &opt_path)?;
            if progress != opt_progress {
                bail!(
                    "{} is from {p} {progress} but {} from {p} {opt_progress} (interrupted \
                     while saving?); cannot resume consistently",
                    path.display(),
                    opt_path.display(),
                    p = R::PROGRESS
                );
            }
            optimizer_state = opt.tensors;
            number(&opt.metadata, "step", &opt_path)?
        } else {
            number(&ck.metadata, "step", &path)?
        };
        let mut history: Vec<R> = read_log(&out.join(METRICS_FILE))?;
        history.retain(|m| m.progress() <= progress);
        (step, history)
    };
    if let Some(last) = history.last() {
        if last.progress() != progress {
            bail!(
                "{} is from {p} {progress} but its metrics end at {p} {}; cannot resume \
                 consistently",
                path.display(),
                last.progress(),
                p = R::PROGRESS
            );
        }
    }
    let resumed = Resumed {
        path,
        checkpoint: ck,
        optimizer_state,
        step,
        progress,
    };
    Ok((resumed, history))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{Sgd, SgdConfig};
    use crate::train::EpochMetrics;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("neurite-run-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn record(epoch: usize) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: 0.5,
            train_accuracy: 0.75,
            test_loss: Some(0.625),
            test_accuracy: Some(0.875),
            lr: 0.25,
            seconds: 1.5,
            images_per_second: 1000.0,
            skipped_steps: 0,
            data_wait_seconds: 0.0,
            test_rmse: None,
            test_mae: None,
        }
    }

    fn values(state: &[(String, Tensor)]) -> Vec<(String, Vec<f32>)> {
        state.iter().map(|(n, t)| (n.clone(), t.to_vec())).collect()
    }

    /// Resumes the run in `dir` and checks that it is the one the test saved.
    fn check_resumed(dir: &Path, optimizer: &Sgd) {
        let (run, resumed) = Run::<EpochMetrics>::open(dir, true, false, &[]).unwrap();
        let r = resumed.unwrap();
        assert_eq!((r.step, r.progress), (7, 1));
        assert_eq!(
            values(&r.checkpoint.tensors),
            [("w".into(), vec![1.0, 2.0])]
        );
        assert_eq!(values(&r.optimizer_state), values(&optimizer.state()));
        assert_eq!(r.checkpoint.metadata["train.x"], "y");
        assert_eq!(run.history, [record(1)]);
        assert!(run.last_good().contains("(epoch 1), is untouched"));
    }

    #[test]
    fn a_saved_run_resumes_in_the_one_format_and_the_earlier_image_layout() {
        let dir = temp("resume");
        let w = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad_();
        let config = SgdConfig {
            lr: 0.0,
            momentum: 0.9,
            ..Default::default()
        };
        let mut optimizer = Sgd::new(vec![("w".into(), w.clone())], config);
        w.set_grad(Some(Tensor::from_vec(vec![0.5, 0.25], &[2])));
        optimizer.step();
        assert!(!optimizer.state().is_empty());
        let (mut run, resumed) = Run::<EpochMetrics>::open(&dir, false, false, &[]).unwrap();
        assert!(resumed.is_none());
        assert_eq!(run.last_good(), "no checkpoint had been saved yet");
        let snapshot = Snapshot {
            model: vec![("w".into(), w.clone())],
            optimizer: &optimizer,
            step: 7,
            model_metadata: vec![("model".into(), "toy".into()), ("epoch".into(), "1".into())],
            run_metadata: vec![("train.x".into(), "y".into())],
        };
        run.save(snapshot, record(1)).unwrap();
        drop(run);
        let model = Checkpoint::load(&dir.join(MODEL_FILE)).unwrap();
        assert_eq!(model.tensors.len(), 1);
        assert_eq!(model.metadata.len(), 2, "{:?}", model.metadata);
        let e = Run::<EpochMetrics>::open(&dir, false, false, &[])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("already holds a toy run (epoch 1 of ?)"), "{e}");
        check_resumed(&dir, &optimizer);

        // The layout of earlier image runs: the optimizer's state in its own file, the
        // metrics in the log only (which may hold an epoch more: a kill while saving).
        let mut ck = Checkpoint::load(&dir.join(CHECKPOINT_FILE)).unwrap();
        let (opt, weights): (Vec<_>, Vec<_>) = std::mem::take(&mut ck.tensors)
            .into_iter()
            .partition(|(n, _)| n.starts_with(OPTIMIZER_PREFIX));
        let opt = opt
            .into_iter()
            .map(|(n, t)| (n[OPTIMIZER_PREFIX.len()..].to_string(), t));
        let mut opt = Checkpoint::new(opt.collect());
        opt.metadata.insert("epoch".into(), "1".into());
        opt.metadata.insert("step".into(), "7".into());
        opt.save(&dir.join(OPTIMIZER_FILE)).unwrap();
        ck.tensors = weights;
        for key in [FORMAT_KEY, METRICS_KEY, "step"] {
            ck.metadata.remove(key);
        }
        ck.save(&dir.join(CHECKPOINT_FILE)).unwrap();
        write_log(&dir.join(METRICS_FILE), &[record(1), record(2)]).unwrap();
        check_resumed(&dir, &optimizer);
        // An optimizer state of another epoch is refused.
        opt.metadata.insert("epoch".into(), "2".into());
        opt.save(&dir.join(OPTIMIZER_FILE)).unwrap();
        let e = Run::<EpochMetrics>::open(&dir, true, false, &[])
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("from epoch 1 but") && e.contains("epoch 2"),
            "{e}"
        );

        // --overwrite removes the run's files and the loop's.
        std::fs::write(dir.join("loss.png"), b"x").unwrap();
        let (run, resumed) = Run::<EpochMetrics>::open(&dir, false, true, &["loss.png"]).unwrap();
        assert!(resumed.is_none());
        for f in RUN_FILES.iter().chain(&["loss.png"]) {
            assert!(!dir.join(f).exists(), "{f}");
        }
        drop(run);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

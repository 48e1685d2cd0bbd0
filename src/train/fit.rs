//! The training loop, plain enough to read top to bottom.

use super::config::TrainConfig;
use super::evaluate::{evaluate, Evaluation, EVAL_BATCH};
use super::guard::{Guard, NonFinitePolicy, StepOutcome, DIVERGENCE_ADVICE};
use super::metrics::EpochMetrics;
use super::pictures::{write_attention, write_pictures};
use super::run_dir::RunDir;
use super::state::{
    existing_run, load_run, load_weights, save_model, save_run, CHECKPOINT_FILE, METRICS_FILE,
    MODEL_FILE, OPTIMIZER_FILE,
};
use crate::data::{DataLoader, LoaderConfig, MnistData, Normalization};
use crate::nn::ModuleExt;
use crate::optim::clip_grad_norm;
use crate::tensor::Tensor;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Where a run writes and how it starts (what does not change the numbers).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The output directory (checkpoints, metrics, pictures).
    pub out: PathBuf,
    /// Continue the run in `out` from its last checkpoint.
    pub resume: bool,
    /// Start from these weights instead of a random initialization.
    pub init: Option<PathBuf>,
    /// Show a progress bar per epoch (it also hides itself when stderr is not a terminal).
    pub progress: bool,
    /// Print one summary line per epoch to stderr.
    pub log_epochs: bool,
    /// Stop once this many epochs are finished in total (a time-boxed run; `--resume`
    /// continues it as if it had never stopped). `None`: run all `config.epochs`.
    pub stop_after: Option<usize>,
    /// Start over in an `out` that holds an earlier run (its files are removed first);
    /// without it such a directory is an error (`resume` continues it instead).
    pub overwrite: bool,
    /// What a non-finite loss or gradient does: stop the run (default) or skip the batch.
    pub on_non_finite: NonFinitePolicy,
}

/// The files a run writes into its directory (what `overwrite` removes first), the
/// checkpoint last: a kill while they are removed leaves a run that still resumes.
const RUN_FILES: [&str; 9] = [
    "loss.png",
    "accuracy.png",
    "filters.png",
    "confusion.png",
    "attention.png",
    METRICS_FILE,
    MODEL_FILE,
    OPTIMIZER_FILE,
    CHECKPOINT_FILE,
];

/// The result of a run.
#[derive(Clone, Debug)]
pub struct TrainSummary {
    pub model: String,
    /// Final test accuracy (fraction).
    pub accuracy: f32,
    /// Final test loss.
    pub loss: f32,
    /// Epochs finished (including those before a resume).
    pub epochs: usize,
    /// Wall time of all epochs, training and evaluation.
    pub seconds: f64,
    /// Training images per second over all epochs.
    pub images_per_second: f64,
    /// Every epoch's metrics.
    pub history: Vec<EpochMetrics>,
}

/// The seed of the thread's generator at the start of `epoch` (dropout and any other
/// random op), so that a resumed run draws what an uninterrupted one would.
fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(epoch as u64 + 1)
}

/// Trains `config.model` on `data.train` (its first `limit_train` images), evaluating on
/// `data.test` after each epoch and saving into `opts.out`, which the run locks (see
/// [`RunDir`]).
///
/// A non-finite loss, gradient or test loss stops the run with an error that names the step
/// and the last good checkpoint, which stays as it was (see [`super::guard`]).
pub fn train(config: &TrainConfig, data: &MnistData, opts: &RunOptions) -> Result<TrainSummary> {
    config.validate()?;
    check_data(config, data)?;
    let mut train_set = data.train.clone();
    if let Some(n) = config.limit_train {
        train_set = train_set.limit(n);
    }
    let train_set = Arc::new(train_set);
    let classes = train_set.class_names.len();

    // Model, optimizer and schedule, fresh or as the last checkpoint left them.
    crate::manual_seed(config.seed);
    let mut model = crate::models::build(&config.model, train_set.channels, classes)?;
    let mut optimizer = config.build_optimizer(&model.named_parameters());
    let mut norm = Normalization::from_dataset(&train_set);
    let mut history = Vec::new();
    let mut first_epoch = 0;
    if !opts.resume {
        if let Some(init) = &opts.init {
            load_weights(&*model, &config.model, init).context("--init")?;
        }
    }
    // Every check of what the caller gave is done (an earlier run in `out` once before the
    // lock, so that a refused command writes nothing, and again under it): from here on the
    // directory is this run's.
    if !opts.resume && !opts.overwrite {
        refuse_an_earlier_run(&opts.out)?;
    }
    let dir = RunDir::open(&opts.out)?;
    if opts.resume {
        let saved = load_run(dir.path())?;
        model
            .load_state_dict(&saved.model_state)
            .context("--resume: the checkpoint does not fit the model")?;
        optimizer.load_state(&saved.optimizer_state)?;
        norm = saved.norm;
        history = saved.history;
        first_epoch = saved.epoch;
    } else if opts.overwrite {
        dir.remove_files(&RUN_FILES)?;
    } else {
        refuse_an_earlier_run(dir.path())?;
    }
    let params = model.parameters();
    let names: Vec<String> = model
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut guard = Guard::new(opts.on_non_finite);
    // The epoch of the checkpoint in `out`, the last good state.
    let mut saved_epoch = (first_epoch > 0).then_some(first_epoch);

    let loader = DataLoader::new(
        train_set.clone(),
        norm.clone(),
        LoaderConfig {
            batch_size: config.batch_size,
            seed: config.seed,
            augment: config.augment,
            ..LoaderConfig::default()
        },
    );
    let steps_per_epoch = loader.num_batches();
    let schedule = config.schedule(steps_per_epoch)?;

    let mut last_eval: Option<Evaluation> = None;
    let last_epoch = opts
        .stop_after
        .map_or(config.epochs, |s| s.min(config.epochs));
    for epoch in first_epoch..last_epoch {
        crate::manual_seed(epoch_seed(config.seed, epoch));
        model.set_training(true);
        let bar = progress_bar(opts.progress, steps_per_epoch, epoch, config.epochs);
        let started = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        let mut lr = schedule.lr_at(epoch * steps_per_epoch);
        for (i, batch) in loader.epoch(epoch as u64).enumerate() {
            let stopped =
                |e: anyhow::Error| diverged(e, epoch, i, steps_per_epoch, dir.path(), saved_epoch);
            let x = Tensor::from_vec(batch.images, &batch.shape); // [B, C, H, W]
            let logits = model.forward(&x); // [B, classes]
            let loss = logits.cross_entropy(&batch.labels);
            let l = loss.item();
            bar.inc(1);
            if guard.loss(l).map_err(stopped)? == StepOutcome::Skip {
                continue;
            }
            model.zero_grad();
            loss.backward();
            if let Some(max_norm) = config.clip_grad {
                clip_grad_norm(&params, max_norm);
            }
            if guard.gradients(&params, &names).map_err(stopped)? == StepOutcome::Skip {
                continue;
            }
            lr = schedule.lr_at(epoch * steps_per_epoch + i);
            optimizer.set_lr(lr);
            guard
                .update(optimizer.step(&params), &names)
                .map_err(stopped)?;

            let b = batch.labels.len();
            loss_sum += l as f64 * b as f64;
            let predicted = logits.argmax(1);
            correct += predicted
                .iter()
                .zip(&batch.labels)
                .filter(|(p, l)| p == l)
                .count();
            seen += b;
            if i % 10 == 0 || i + 1 == steps_per_epoch {
                bar.set_message(format!(
                    "loss {:.4}  acc {:.2}%  {:.0} img/s",
                    loss_sum / seen as f64,
                    100.0 * correct as f64 / seen as f64,
                    seen as f64 / started.elapsed().as_secs_f64()
                ));
            }
        }
        bar.finish_and_clear();
        let train_seconds = started.elapsed().as_secs_f64();

        let skipped_steps = guard.take_skipped();
        if seen == 0 {
            bail!(
                "every batch of epoch {} had a non-finite loss or gradient and was skipped: {}",
                epoch + 1,
                last_good(dir.path(), saved_epoch)
            );
        }
        let test = evaluate(&mut *model, &data.test, &norm, EVAL_BATCH);
        if !test.loss.is_finite() {
            bail!(
                "the test loss is {} after epoch {}: {DIVERGENCE_ADVICE}; {}",
                test.loss,
                epoch + 1,
                last_good(dir.path(), saved_epoch)
            );
        }
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            train_loss: (loss_sum / seen.max(1) as f64) as f32,
            train_accuracy: correct as f32 / seen.max(1) as f32,
            test_loss: test.loss,
            test_accuracy: test.accuracy,
            lr,
            seconds: started.elapsed().as_secs_f64(),
            images_per_second: seen as f64 / train_seconds,
            skipped_steps,
        };
        if opts.log_epochs {
            eprintln!(
                "epoch {:>3}/{}  train loss {:.4} acc {:.2}%  test loss {:.4} acc {:.2}%  lr {:.3e}  {:.0} img/s  {:.1} s",
                metrics.epoch,
                config.epochs,
                metrics.train_loss,
                100.0 * metrics.train_accuracy,
                metrics.test_loss,
                100.0 * metrics.test_accuracy,
                metrics.lr,
                metrics.images_per_second,
                metrics.seconds
            );
        }
        history.push(metrics);
        save_run(
            &dir,
            &*model,
            &*optimizer,
            config,
            &norm,
            epoch + 1,
            (epoch + 1) * steps_per_epoch,
            &history,
        )?;
        saved_epoch = Some(epoch + 1);
        last_eval = Some(test);
    }

    // The final model, then the pictures of the run.
    let test = match last_eval {
        Some(t) => t,
        None => evaluate(&mut *model, &data.test, &norm, EVAL_BATCH),
    };
    save_model(&dir, &*model, &config.model, &norm, history.len())?;
    write_pictures(dir.path(), &*model, &history, &test, &data.test.class_names)?;
    if config.model == "vit" {
        write_attention(&dir.join("attention.png"), &*model, &data.test, &norm, 6)?;
    }

    let seconds: f64 = history.iter().map(|m| m.seconds).sum();
    let images = (train_set.n * history.len()) as f64;
    let train_seconds: f64 = history
        .iter()
        .map(|m| train_set.n as f64 / m.images_per_second.max(1e-9))
        .sum();
    Ok(TrainSummary {
        model: config.model.clone(),
        accuracy: test.accuracy,
        loss: test.loss,
        epochs: history.len(),
        seconds,
        images_per_second: if train_seconds > 0.0 {
            images / train_seconds
        } else {
            0.0
        },
        history,
    })
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

/// Checks `data` against `config` before anything is written: images in both splits, no
/// more asked for than there are, crops and warm-up that fit.
fn check_data(config: &TrainConfig, data: &MnistData) -> Result<()> {
    for (split, set) in [("training", &data.train), ("test", &data.test)] {
        if set.n == 0 {
            bail!("the {split} split holds 0 images; give data with images in both splits");
        }
    }
    crate::validate::check_limit(config.limit_train, data.train.n)?;
    let n = config.limit_train.unwrap_or(data.train.n);
    config
        .augment
        .check_image(data.train.height, data.train.width)?;
    config.check_against_data(n.div_ceil(config.batch_size))
}

/// The error of a run stopped by its guard in `epoch`'s batch `batch` (both from 0).
fn diverged(
    e: anyhow::Error,
    epoch: usize,
    batch: usize,
    batches: usize,
    out: &Path,
    saved_epoch: Option<usize>,
) -> anyhow::Error {
    anyhow::anyhow!(
        "{e} at step {} (epoch {}, batch {} of {batches}): {DIVERGENCE_ADVICE}; {}",
        epoch * batches + batch + 1,
        epoch + 1,
        batch + 1,
        last_good(out, saved_epoch)
    )
}

/// Where the last good state of a stopped run is.
fn last_good(out: &Path, saved_epoch: Option<usize>) -> String {
    match saved_epoch {
        Some(e) => format!(
            "the last good checkpoint, {} (epoch {e}), is untouched",
            out.join(CHECKPOINT_FILE).display()
        ),
        None => "no checkpoint had been saved yet".to_string(),
    }
}

/// A bar over the steps of one epoch; hidden when not wanted.
fn progress_bar(show: bool, steps: usize, epoch: usize, epochs: usize) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(steps as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}<{eta})",
        )
        .expect("progress bar template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{}/{epochs}", epoch + 1));
    bar
}

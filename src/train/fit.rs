//! The training loop, plain enough to read top to bottom.

use super::config::TrainConfig;
use super::data::TrainData;
use super::evaluate::{
    batch_loss, evaluate_data_parallel, Evaluation, TestTimeAugment, EVAL_BATCH,
};
use super::guard::{Guard, NonFinitePolicy, StepOutcome, DIVERGENCE_ADVICE};
use super::metrics::EpochMetrics;
use super::pictures::{write_pictures, PICTURE_FILES};
use super::progress::Progress;
use super::run::{read_resumed, Run, Snapshot};
use super::state::load_weights;
use crate::data::{BatchTargets, DataLoader, LoaderConfig, Normalization};
use crate::distributed::{self, DataParallel};
use crate::nn::{Module, ModuleExt};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
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
    /// Evaluate the test split after every N-th epoch (and after the last one) only; `None`
    /// or 1: after every epoch. The skipped evaluations save their time (a time-to-accuracy
    /// run); the epochs without one have no test figures in `metrics.jsonl`.
    pub eval_every: Option<usize>,
    /// On several ranks, normalize batch norms by the statistics of the global batch
    /// ([`crate::distributed::sync_batch_norm`]) rather than each rank's share (the default,
    /// as PyTorch's DDP). Alone it changes nothing.
    pub sync_bn: bool,
}

/// The result of a run.
#[derive(Clone, Debug)]
pub struct TrainSummary {
    /// The model's name in the zoo table.
    pub model: String,
    /// Final test accuracy (fraction; 0 for a regression).
    pub accuracy: f32,
    /// Final test loss (cross-entropy, or MSE for a regression).
    pub loss: f32,
    /// Final test root mean squared error of a regression.
    pub rmse: Option<f32>,
    /// Final test mean absolute error of a regression.
    pub mae: Option<f32>,
    /// Epochs finished (including those before a resume).
    pub epochs: usize,
    /// Wall time of all epochs, training and evaluation.
    pub seconds: f64,
    /// Training samples per second over all epochs.
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

/// Trains `config.model` of the zoo on `data` (its first `limit_train` training samples),
/// evaluating on the test split after each epoch and saving into `opts.out`, which the run
/// locks (see [`super::RunDir`]).
///
/// A non-finite loss, gradient or test loss stops the run with an error that names the step
/// and the last good checkpoint, which stays as it was (see [`super::guard`]).
pub fn train(config: &TrainConfig, data: &TrainData, opts: &RunOptions) -> Result<TrainSummary> {
    config.validate()?;
    let outputs = data.classes().unwrap_or(1);
    crate::manual_seed(config.seed);
    let model = crate::models::build(&config.model, &data.input_shape(), outputs)?;
    fit(config, model, data, opts)
}

/// Trains a model of one's own (`model`, any module taking the data's `[B, ...]` input and
/// giving `[B, classes]` or `[B, 1]` for a regression) as [`train`] trains one of the zoo;
/// `config.model` is the name written into its files. Seed with
/// [`crate::manual_seed`]`(config.seed)` before building it for a reproducible run.
pub fn train_model(
    config: &TrainConfig,
    model: Box<dyn Module>,
    data: &TrainData,
    opts: &RunOptions,
) -> Result<TrainSummary> {
    config.validate_settings()?;
    fit(config, model, data, opts)
}

/// The loop of [`train`] and [`train_model`].
fn fit(
    config: &TrainConfig,
    mut model: Box<dyn Module>,
    data: &TrainData,
    opts: &RunOptions,
) -> Result<TrainSummary> {
    check_data(config, data)?;
    let n_train = config
        .limit_train
        .unwrap_or(usize::MAX)
        .min(data.train_len());

    // Optimizer and schedule, fresh or as the last checkpoint left them.
    // Every epoch has the same number of steps (the loader keeps a last, smaller batch).
    let steps_per_epoch = n_train.div_ceil(config.batch_size);
    let mut optimizer = config.build_optimizer(model.named_parameters(), steps_per_epoch)?;
    let mut norm = data.normalization(n_train)?;
    let mut first_epoch = 0;
    if !opts.resume {
        if let Some(init) = &opts.init {
            load_weights(&*model, &config.model, init).context("--init")?;
        }
    }
    // Every check of what the caller gave is done: from here on the directory is this
    // run's (see `Run::open`). Rank 0 alone holds it; the others read a resumed run's
    // checkpoint once rank 0 has opened it, and take rank 0's weights (below).
    let (world, root) = (distributed::world_size(), distributed::is_root());
    let opened = root
        .then(|| Run::<EpochMetrics>::open(&opts.out, opts.resume, opts.overwrite, &PICTURE_FILES))
        .transpose();
    if !distributed::all_ranks_ok(opened.is_ok()) && !root {
        bail!(
            "rank 0 could not open {} (its error says why)",
            opts.out.display()
        );
    }
    // The metrics of every epoch (those before a resume included), on every rank.
    let (mut run, resumed, mut history) = match opened? {
        Some((run, resumed)) => {
            let history = run.history.clone();
            (Some(run), resumed, history)
        }
        None if opts.resume => {
            let (resumed, history) = read_resumed::<EpochMetrics>(&opts.out)?;
            (None, Some(resumed), history)
        }
        None => (None, None, Vec::new()),
    };
    if let Some(saved) = resumed {
        let ck = &saved.checkpoint;
        if norm.is_some() {
            norm = Some(
                Normalization::from_metadata_map(&ck.metadata)?.with_context(|| {
                    format!("{} holds no normalization constants", saved.path.display())
                })?,
            );
        }
        // Every rank read the same checkpoint, so every rank makes this check alike.
        if history.len() != saved.progress {
            bail!(
                "{} is from epoch {} but holds the metrics of {} epochs; cannot resume \
                 consistently",
                saved.path.display(),
                saved.progress,
                history.len()
            );
        }
        model
            .load_state_dict(&ck.tensors)
            .context("--resume: the checkpoint does not fit the model")?;
        optimizer
            .load_state(&saved.optimizer_state_with_schedule())
            .with_context(|| format!("--resume: {}", saved.path.display()))?;
        first_epoch = saved.progress;
    }
    // Rank 0's weights and buffers on every rank, and the epoch checked alike.
    let mut dp = (world > 1)
        .then(|| DataParallel::new(&*model))
        .transpose()?;
    if opts.sync_bn {
        distributed::sync_batch_norm(&*model);
    }
    let mut at = [first_epoch as f64];
    distributed::all_reduce_sum_f64(&mut at);
    if at[0] != (first_epoch * world) as f64 {
        bail!(
            "--resume: the ranks read different checkpoints from {} (is it on a file system \
             every rank shares?)",
            opts.out.display()
        );
    }
    let last_good = |run: &Option<Run<EpochMetrics>>| {
        run.as_ref().map_or_else(
            || "rank 0 says where the last good checkpoint is".to_string(),
            Run::last_good,
        )
    };
    let mut guard = Guard::new(opts.on_non_finite);

    let train_set = data.train_set(norm.as_ref(), config.augment, n_train)?;
    let test_set = data.test_set(norm.as_ref())?;
    let loader = DataLoader::new(
        train_set,
        LoaderConfig {
            batch_size: config.batch_size,
            seed: config.seed,
            ..LoaderConfig::default()
        },
    )
    .with_rank_share(distributed::rank(), world);
    assert_eq!(loader.num_batches(), steps_per_epoch);
    let regression = data.is_regression();

    let mut last_eval: Option<Evaluation> = None;
    let last_epoch = opts
        .stop_after
        .map_or(config.epochs, |s| s.min(config.epochs));
    for epoch in first_epoch..last_epoch {
        crate::manual_seed(epoch_seed(config.seed, epoch));
        model.set_training(true);
        let prefix = format!("epoch {}/{}", epoch + 1, config.epochs);
        let bar = Progress::new(opts.progress && root, steps_per_epoch, 0, prefix);
        let started = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        let mut lr = optimizer.lr();
        // The time the step waits for the loader's next batch: near 0 when the workers keep
        // ahead of the model (reported as `data_wait_seconds` in metrics.jsonl).
        let mut data_wait = 0.0f64;
        let mut batches = loader.epoch(epoch as u64).enumerate();
        loop {
            let waited = Instant::now();
            let Some((i, batch)) = batches.next() else {
                break;
            };
            data_wait += waited.elapsed().as_secs_f64();
            let batch = batch.with_context(|| format!("epoch {}: the training data", epoch + 1))?;
            let out = model.forward(batch.input()); // [B, classes] or [B, 1]
            let loss = batch_loss(&out, &batch.targets, config.label_smoothing);
            let l = loss.item();
            bar.inc();
            model.zero_grad();
            // The rate of this step; the optimizer steps its schedule after the update.
            let step_lr = optimizer.lr();
            let stepped = match dp.as_mut() {
                None => guard.step(&loss, config.clip_grad, &mut *optimizer),
                Some(dp) => {
                    // This rank's loss is a mean over its share of the global batch.
                    let weight = batch.len() as f32 / loader.global_batch_len(i) as f32;
                    let clip = config.clip_grad;
                    guard
                        .step_data_parallel(dp, &loss, weight, clip, &mut *optimizer)
                        .map(|(outcome, _)| outcome)
                }
            };
            let outcome = stepped.map_err(|e| {
                let at = format!(
                    "step {} (epoch {}, batch {} of {steps_per_epoch})",
                    epoch * steps_per_epoch + i + 1,
                    epoch + 1,
                    i + 1
                );
                anyhow::anyhow!("{e} at {at}: {DIVERGENCE_ADVICE}; {}", last_good(&run))
            })?;
            if outcome == StepOutcome::Skip {
                continue;
            }
            lr = step_lr;

            let b = batch.len();
            loss_sum += l as f64 * b as f64;
            if let BatchTargets::Classes(labels) = &batch.targets {
                correct += out.argmax(1).eq(labels).sum();
            }
            seen += b;
            if i % 10 == 0 || i + 1 == steps_per_epoch {
                let score = if regression {
                    format!("rmse {:.4}", (loss_sum / seen as f64).sqrt())
                } else {
                    format!("acc {:.2}%", 100.0 * correct as f64 / seen as f64)
                };
                bar.message(format!(
                    "loss {:.4}  {score}  {:.0} img/s",
                    loss_sum / seen as f64,
                    seen as f64 / started.elapsed().as_secs_f64()
                ));
            }
        }
        bar.finish();
        let train_seconds = started.elapsed().as_secs_f64();
        // The whole batch's figures: every rank's sums.
        let mut sums = [loss_sum, correct as f64, seen as f64];
        distributed::all_reduce_sum_f64(&mut sums);
        let (loss_sum, correct, seen) = (sums[0], sums[1] as usize, sums[2] as usize);

        let skipped_steps = guard.take_skipped();
        if seen == 0 {
            bail!(
                "every batch of epoch {} had a non-finite loss or gradient and was skipped: {}",
                epoch + 1,
                last_good(&run)
            );
        }
        if world > 1 {
            // Rank 0's running statistics everywhere (PyTorch DDP's buffer broadcast), so
            // that every rank evaluates the model rank 0 saves.
            distributed::broadcast_parameters(&*model);
        }
        let test = if evaluates_after(epoch + 1, last_epoch, opts.eval_every) {
            let test = evaluate_data_parallel(&mut *model, &test_set, EVAL_BATCH, config.tta)?
                .in_target_units(data.target_scale());
            if !test.loss.is_finite() {
                bail!(
                    "the test loss is {} after epoch {}: {DIVERGENCE_ADVICE}; {}",
                    test.loss,
                    epoch + 1,
                    last_good(&run)
                );
            }
            Some(test)
        } else {
            None
        };
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            train_loss: (loss_sum / seen.max(1) as f64) as f32,
            train_accuracy: correct as f32 / seen.max(1) as f32,
            test_loss: test.as_ref().map(|t| t.loss),
            test_accuracy: test.as_ref().map(|t| t.accuracy),
            lr,
            seconds: started.elapsed().as_secs_f64(),
            images_per_second: seen as f64 / train_seconds,
            skipped_steps,
            data_wait_seconds: data_wait,
            test_rmse: test.as_ref().and_then(|t| t.rmse),
            test_mae: test.as_ref().and_then(|t| t.mae),
        };
        if opts.log_epochs && root {
            log_epoch(&metrics, config.epochs);
        }
        let snapshot = Snapshot {
            model: model.state_dict(),
            optimizer: &*optimizer,
            step: (epoch + 1) * steps_per_epoch,
            model_metadata: weights_metadata(config, norm.as_ref(), data, epoch + 1),
            run_metadata: run_metadata(config),
        };
        match run.as_mut() {
            Some(run) => run.save(snapshot, metrics.clone())?,
            None => drop(snapshot),
        }
        history.push(metrics);
        last_eval = test; // None: the model has changed since the last evaluation.
    }

    // The final model, then the pictures of the run (rank 0's).
    let test = match last_eval {
        Some(t) => t,
        None => {
            if world > 1 {
                distributed::broadcast_parameters(&*model);
            }
            evaluate_data_parallel(&mut *model, &test_set, EVAL_BATCH, config.tta)?
                .in_target_units(data.target_scale())
        }
    };
    if let Some(run) = &run {
        run.save_model(
            model.state_dict(),
            weights_metadata(config, norm.as_ref(), data, history.len()),
        )?;
        let pictures = crate::models::image_model(&config.model).map_or(&[][..], |m| m.pictures);
        let test_images = data.test_images(norm.as_ref());
        write_pictures(
            run.path(),
            &*model,
            pictures,
            &history,
            &test,
            data.class_names().unwrap_or(&[]),
            test_images.as_ref(),
        )?;
    }

    let seconds: f64 = history.iter().map(|m| m.seconds).sum();
    let images = (n_train * history.len()) as f64;
    let train_seconds: f64 = history
        .iter()
        .map(|m| n_train as f64 / m.images_per_second.max(1e-9))
        .sum();
    Ok(TrainSummary {
        model: config.model.clone(),
        accuracy: test.accuracy,
        loss: test.loss,
        rmse: test.rmse,
        mae: test.mae,
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

/// Whether the test split is evaluated after `epoch` (counted from 1) of a run that ends
/// after `last_epoch`: every `eval_every`-th epoch, and the last.
fn evaluates_after(epoch: usize, last_epoch: usize, eval_every: Option<usize>) -> bool {
    epoch == last_epoch || epoch.is_multiple_of(eval_every.unwrap_or(1).max(1))
}

/// The line `--log-epochs` prints to stderr.
fn log_epoch(m: &EpochMetrics, epochs: usize) {
    let test = match (m.test_loss, m.test_accuracy, m.test_rmse, m.test_mae) {
        (Some(loss), _, Some(rmse), Some(mae)) => {
            format!("test loss {loss:.4} rmse {rmse:.4} mae {mae:.4}")
        }
        (Some(loss), Some(acc), _, _) => {
            format!("test loss {loss:.4} acc {:.2}%", 100.0 * acc)
        }
        _ => "(no test evaluation)".to_string(),
    };
    let train = if m.test_rmse.is_some() {
        format!("train loss {:.4}", m.train_loss)
    } else {
        format!(
            "train loss {:.4} acc {:.2}%",
            m.train_loss,
            100.0 * m.train_accuracy
        )
    };
    eprintln!(
        "epoch {:>3}/{epochs}  {train}  {test}  lr {:.3e}  {:.0} img/s  {:.1} s",
        m.epoch, m.lr, m.images_per_second, m.seconds
    );
}

/// The metadata of the weights after `epoch` epochs (both files): the model's name, the
/// normalization constants of images, the data's own metadata, the epoch.
fn weights_metadata(
    config: &TrainConfig,
    norm: Option<&Normalization>,
    data: &TrainData,
    epoch: usize,
) -> Vec<(String, String)> {
    let mut meta = vec![("model".to_string(), config.model.clone())];
    if let Some(norm) = norm {
        meta.extend(norm.to_metadata());
    }
    meta.extend(data.metadata().iter().cloned());
    meta.push(("epoch".into(), epoch.to_string()));
    if config.tta != TestTimeAugment::None {
        // `neurite eval` evaluates as training did.
        meta.push(("tta".into(), config.tta.to_string()));
    }
    meta
}

/// The metadata of the checkpoint only: the optimizer and the `train.*` configuration.
fn run_metadata(config: &TrainConfig) -> Vec<(String, String)> {
    let mut meta = vec![("optimizer".to_string(), config.optimizer.to_string())];
    meta.extend(config.to_metadata());
    meta
}

/// Checks `data` against `config` before anything is written: samples in both splits, no
/// more asked for than there are, crops and warm-up that fit.
fn check_data(config: &TrainConfig, data: &TrainData) -> Result<()> {
    for (split, n) in [("training", data.train_len()), ("test", data.test_len())] {
        if n == 0 {
            bail!("the {split} split holds 0 samples; give data with samples in both splits");
        }
    }
    crate::validate::check_limit(config.limit_train, data.train_len())?;
    let n = config.limit_train.unwrap_or(data.train_len());
    match data.input_shape()[..] {
        [_, h, w] if data.is_images() => config.augment.check_image(h, w)?,
        _ if config.augment.is_active() => bail!(
            "--augment {}: augmentations apply to images, and this data is a table; give \
             --augment none",
            config.augment
        ),
        _ => {}
    }
    if !data.is_images() && config.tta != TestTimeAugment::None {
        bail!(
            "--tta {}: test-time flips apply to images, and this data is a table; give --tta \
             none",
            config.tta
        );
    }
    if data.is_regression() && config.label_smoothing > 0.0 {
        bail!(
            "--label-smoothing {} applies to classes, and this data is a regression; give \
             --label-smoothing 0",
            config.label_smoothing
        );
    }
    config.check_against_data(n.div_ceil(config.batch_size))
}

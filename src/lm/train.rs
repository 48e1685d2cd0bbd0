//! The training run of `neurite lm train`: AdamW with linear warm-up and cosine decay,
//! gradient clipping, random windows of the training split, the validation loss at a fixed
//! interval, and the shared run scaffold ([`crate::train::run`]): the locked output
//! directory, the one-file checkpoint (the `state_dict`, the optimizer's moments under
//! `optimizer.*`, the step, the metrics, the model's `gpt.*` shape and the run's `lm.*`
//! settings, which `--resume` must find unchanged), `model.safetensors` (the `state_dict`
//! alone, `lm_head.weight` as a copy, loadable by PyTorch) and `metrics.jsonl` (one
//! [`LmMetrics`] line per evaluation). The guard ([`crate::train::guard`]) stops the run at
//! a non-finite loss, gradient or validation loss before anything non-finite is saved.

use super::parallel;
use crate::checkpoint::Checkpoint;
use crate::data::text::{split_text, Windows};
use crate::distributed::{self, DataParallel};
use crate::models::{Gpt, GptConfig};
use crate::nn::ModuleExt;
use crate::optim::{Adam, AdamConfig, Decay, Optimizer, Schedule};
use crate::train::guard::{Guard, NonFinitePolicy, StepOutcome, DIVERGENCE_ADVICE};
use crate::train::metrics::Record;
use crate::train::run::{read_checkpoint, Resumed, Run, Snapshot, OPTIMIZER_PREFIX};
use crate::train::{DecayScope, Progress};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub use crate::train::run::{CHECKPOINT_FILE, MODEL_FILE};

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct LmRun {
    /// The model's size (vocabulary, block, layers, heads, width).
    pub model: GptConfig,
    /// Optimizer steps to train.
    pub steps: usize,
    /// Steps between two validation losses (and checkpoints).
    pub eval_interval: usize,
    /// Windows per batch.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f32,
    /// Cosine decay ends at this rate.
    pub min_lr: f32,
    /// Steps of linear learning-rate warm-up.
    pub warmup: usize,
    /// AdamW's decoupled weight decay (matrices and embeddings only).
    pub weight_decay: f32,
    /// The gradient's global norm is clipped to this.
    pub clip: f32,
    /// Seed of the initialization and of the training windows.
    pub seed: u64,
    /// The run directory.
    pub out: PathBuf,
    /// Continue the run in `out` from its checkpoint.
    pub resume: bool,
    /// Start over in an `out` that holds an earlier run; without it that is an error.
    pub overwrite: bool,
    /// What a non-finite loss or gradient does: stop (default) or skip the batch.
    pub on_non_finite: NonFinitePolicy,
    /// Progress bar and per-interval lines on stderr.
    pub progress: bool,
}

impl LmRun {
    /// The spec's recipe (Q6): batch 16 x 128, AdamW lr 1e-3, 5,000 steps. Warm-up 100
    /// steps and cosine to lr/10 with weight decay 0.1 are nanoGPT's character-level
    /// settings; clipping at 1.0.
    pub fn recipe(out: PathBuf) -> LmRun {
        LmRun {
            model: GptConfig::default(),
            steps: 5000,
            eval_interval: 500,
            batch: 16,
            lr: 1e-3,
            min_lr: 1e-4,
            warmup: 100,
            weight_decay: 0.1,
            clip: 1.0,
            seed: 1337,
            out,
            resume: false,
            overwrite: false,
            on_non_finite: NonFinitePolicy::Stop,
            progress: true,
        }
    }

    /// The settings `--resume` must find unchanged, as `lm.*` metadata (`steps` may grow,
    /// and is not among them), with the text's length and hash.
    fn settings(&self, text: &[u8]) -> Vec<(String, String)> {
        [
            ("eval_interval", self.eval_interval.to_string()),
            ("batch", self.batch.to_string()),
            ("lr", self.lr.to_string()),
            ("min_lr", self.min_lr.to_string()),
            ("warmup", self.warmup.to_string()),
            ("weight_decay", self.weight_decay.to_string()),
            ("clip", self.clip.to_string()),
            ("seed", self.seed.to_string()),
            ("text_bytes", text.len().to_string()),
            ("text_hash", format!("{:016x}", fnv1a(text))),
        ]
        .into_iter()
        .map(|(k, v)| (format!("lm.{k}"), v))
        .collect()
    }
}

/// The 64-bit FNV-1a hash of `bytes` (to tell a resumed run's text from another).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What one evaluation of `lm train` measured: a line of its `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq)]
pub struct LmMetrics {
    /// Optimizer steps taken (skipped steps included).
    pub step: usize,
    /// Mean training loss of the updated steps since the last evaluation.
    pub train_loss: f64,
    /// The validation loss (nats per byte).
    pub val_loss: f64,
    /// The learning rate of the interval's last step.
    pub lr: f32,
    /// Wall time since the last evaluation (or the start), training and evaluation.
    pub seconds: f64,
    /// Training tokens per second of the interval's training time.
    pub tokens_per_second: f64,
    /// Steps skipped for a non-finite loss or gradient (`--on-nonfinite skip`; else 0).
    pub skipped_steps: usize,
}

impl Record for LmMetrics {
    const PROGRESS: &'static str = "step";

    fn progress(&self) -> usize {
        self.step
    }

    fn to_json(&self) -> Value {
        json!({
            "step": self.step,
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "lr": self.lr,
            "seconds": self.seconds,
            "tokens_per_second": self.tokens_per_second,
            "skipped_steps": self.skipped_steps,
        })
    }

    fn from_json(v: &Value) -> Option<LmMetrics> {
        let f = |k: &str| v.get(k)?.as_f64();
        Some(LmMetrics {
            step: v.get("step")?.as_u64()? as usize,
            train_loss: f("train_loss")?,
            val_loss: f("val_loss")?,
            lr: f("lr")? as f32,
            seconds: f("seconds")?,
            tokens_per_second: f("tokens_per_second")?,
            skipped_steps: v.get("skipped_steps")?.as_u64()? as usize,
        })
    }
}

/// What a run reached.
#[derive(Clone, Debug)]
pub struct LmSummary {
    /// The last validation loss, in nats per byte.
    pub val_loss: f64,
    /// The mean training loss of the last interval, in nats per byte.
    pub train_loss: f64,
    /// Steps trained.
    pub steps: usize,
    /// Wall time of the whole run (training and evaluations).
    pub seconds: f64,
    /// Training tokens per second of training time (evaluations left out).
    pub tokens_per_second: f64,
    /// Trained scalars in the model.
    pub parameters: usize,
}

/// Checks that the run `saved` is the one `run` continues on `text`.
fn check_resume(saved: &Resumed, run: &LmRun, text: &[u8]) -> Result<()> {
    let ck = &saved.checkpoint;
    let source = saved.path.display();
    let shape = GptConfig::from_checkpoint(ck, &source.to_string())?;
    if shape != run.model {
        bail!(
            "--resume: {source} holds a model of {shape:?}, not {:?}; drop the shape flags \
             or give the same ones",
            run.model
        );
    }
    let differ: Vec<String> = run
        .settings(text)
        .into_iter()
        .filter_map(|(k, v)| {
            let old = ck.metadata.get(&k)?;
            (old != &v).then(|| format!("{k} {old} (now {v})"))
        })
        .collect();
    if !differ.is_empty() {
        bail!(
            "--resume: {source} was trained with {}; resume with the same flags and text",
            differ.join(", ")
        );
    }
    let step = saved.step;
    if step > run.steps {
        bail!(
            "--resume: {source} is at step {step}, beyond --steps {}",
            run.steps
        );
    }
    Ok(())
}

/// Trains `gpt` on `text` (its last 10% held out) and returns the final figures.
///
/// Under `mpirun -np N` (after [`distributed::init`]) every rank trains the same model on
/// its rows of each global batch of `batch` windows, the gradients summed across ranks
/// ([`DataParallel`]); rank 0 alone opens the run directory, prints progress and saves; the
/// validation windows are split across ranks. The other ranks read a resumed run's
/// checkpoint from `out` too (a file system all ranks share).
pub fn train(run: &LmRun, text: &[u8]) -> Result<LmSummary> {
    run.model.validate()?;
    if run.steps == 0 || run.batch == 0 || run.eval_interval == 0 {
        bail!("--steps, --batch-size and --eval-interval must be at least 1");
    }
    let (world, root) = (distributed::world_size(), distributed::is_root());
    if run.batch < world {
        bail!(
            "--batch-size {} is smaller than the {world} ranks: the global batch needs at \
             least one window per rank",
            run.batch
        );
    }
    let block = run.model.block_size;
    let (train_text, val_text) = split_text(text);
    if val_text.len() < block + 1 {
        bail!(
            "the text has {} bytes: its last 10% ({} bytes) is shorter than one block of {} + 1",
            text.len(),
            val_text.len(),
            block
        );
    }
    let mut windows = Windows::new(train_text, block, run.seed)?;
    crate::tensor::rng::manual_seed(run.seed);
    let model = Gpt::new(run.model);
    let schedule = Schedule::new(
        run.lr,
        Decay::Cosine { min_lr: run.min_lr },
        run.warmup,
        run.steps,
    );
    // nanoGPT's groups: matrices and embeddings decay, biases and LayerNorm gains do not.
    let config = AdamConfig {
        weight_decay: run.weight_decay,
        ..AdamConfig::adamw(run.lr)
    };
    let mut opt = Adam::new(model.named_parameters(), config)
        .with_decay_mask(|name, shape| DecayScope::Matrices.decays(name, shape))
        .with_schedule(schedule);
    // Rank 0 alone holds the run directory (its lock, checkpoints, metrics).
    let (mut out, resumed) = if root {
        let (out, resumed) = Run::<LmMetrics>::open(&run.out, run.resume, run.overwrite, &[])?;
        (Some(out), resumed)
    } else {
        (None, None)
    };
    let settings = run.settings(text);
    let mut start = 0;
    if let Some(saved) = resumed {
        check_resume(&saved, run, text)?;
        start = saved.step;
        model.load(&saved.checkpoint.tensors)?;
        opt.load_state(&saved.optimizer_state_with_schedule())
            .with_context(|| format!("--resume: {}", saved.path.display()))?;
    } else if run.resume && !root {
        start = resume_other_rank(run, &mut opt)?;
    }
    windows.skip(start, run.batch);
    // Rank 0's weights on every rank; the step of the resumed run checked alike.
    let mut dp = (world > 1).then(|| DataParallel::new(&model)).transpose()?;
    let mut at = [start as f64];
    distributed::all_reduce_sum_f64(&mut at);
    if at[0] != (start * world) as f64 {
        bail!(
            "--resume: the ranks read different checkpoints from {}",
            run.out.display()
        );
    }
    let last_good = |out: &Option<Run<LmMetrics>>| {
        out.as_ref().map_or_else(
            || "rank 0 says where the last checkpoint is".into(),
            Run::last_good,
        )
    };
    let mut guard = Guard::new(run.on_non_finite);

    let bar = Progress::new(run.progress && root, run.steps, start, "steps".into());
    let started = Instant::now();
    let mut train_seconds = 0.0;
    let mut interval = (Instant::now(), 0.0f64);
    let (mut loss_sum, mut loss_n, mut last_train) = (0.0f64, 0usize, f64::NAN);
    let mut val_loss = f64::NAN;
    for step in start..run.steps {
        let t0 = Instant::now();
        let (x, y) = windows.batch(run.batch);
        model.zero_grad();
        bar.inc();
        // The rate of this step; the optimizer steps its schedule after the update (or the
        // skip: under `--on-nonfinite skip`, a step can end without an update).
        let lr = opt.lr();
        let stepped = match dp.as_mut() {
            None => {
                let loss = model.loss(&x, &y, run.batch, block);
                let l = loss.item();
                guard.step(&loss, Some(run.clip), &mut opt).map(|o| (o, l))
            }
            Some(dp) => {
                // This rank's rows of the global batch.
                let (rows, weight) = parallel::share(run.batch);
                let (x, y) = (
                    &x[rows.start * block..rows.end * block],
                    &y[rows.start * block..rows.end * block],
                );
                let loss = model.loss(x, y, rows.len(), block);
                guard.step_data_parallel(dp, &loss, weight, Some(run.clip), &mut opt)
            }
        };
        let (outcome, l) = stepped.map_err(|e| {
            let at = format!("step {}", step + 1);
            anyhow::anyhow!("{e} at {at}: {DIVERGENCE_ADVICE}; {}", last_good(&out))
        })?;
        if outcome == StepOutcome::Go {
            let seconds = t0.elapsed().as_secs_f64();
            train_seconds += seconds;
            interval.1 += seconds;
            loss_sum += l as f64;
            loss_n += 1;
            bar.message(format!("loss {l:.4}"));
        }
        let done = step + 1;
        if done % run.eval_interval == 0 || done == run.steps {
            let skipped = guard.take_skipped();
            if loss_n == 0 {
                bail!(
                    "every step from {} to {done} had a non-finite loss or gradient and was \
                     skipped: {}",
                    done + 1 - run.eval_interval.min(done),
                    last_good(&out)
                );
            }
            last_train = loss_sum / loss_n as f64;
            let tokens = (loss_n * run.batch * block) as f64;
            (loss_sum, loss_n) = (0.0, 0);
            val_loss = parallel::text_loss(&model, val_text, 32)?;
            if !val_loss.is_finite() {
                bail!(
                    "the validation loss is {val_loss} at step {done}: {DIVERGENCE_ADVICE}; {}",
                    last_good(&out)
                );
            }
            if run.progress && root {
                let mut line = format!(
                    "step {done:>6}  train loss {last_train:.4}  val loss {val_loss:.4}  lr {lr:.2e}"
                );
                if skipped > 0 {
                    line += &format!("  skipped {skipped} steps");
                }
                bar.line(line);
            }
            let record = LmMetrics {
                step: done,
                train_loss: last_train,
                val_loss,
                lr,
                seconds: interval.0.elapsed().as_secs_f64(),
                tokens_per_second: tokens / interval.1.max(1e-9),
                skipped_steps: skipped,
            };
            let mut model_metadata = vec![
                ("model".to_string(), "gpt".to_string()),
                ("step".to_string(), done.to_string()),
            ];
            model_metadata.extend(model.config.to_metadata());
            let snapshot = Snapshot {
                model: model.state_dict(),
                optimizer: &opt,
                step: done,
                model_metadata,
                run_metadata: settings.clone(),
            };
            if let Some(out) = out.as_mut() {
                out.save(snapshot, record)?;
            }
            interval = (Instant::now(), 0.0);
        }
    }
    bar.finish();
    if start >= run.steps {
        val_loss = parallel::text_loss(&model, val_text, 32)?;
    }
    let trained = run.steps.saturating_sub(start);
    Ok(LmSummary {
        val_loss,
        train_loss: last_train,
        steps: run.steps,
        seconds: started.elapsed().as_secs_f64(),
        tokens_per_second: (trained * run.batch * block) as f64 / train_seconds.max(1e-9),
        parameters: model.num_parameters(),
    })
}

/// What a rank other than 0 resumes from: the step and the optimizer's state of the
/// checkpoint in `run.out` (read without the lock, which rank 0 holds); the weights come
/// from rank 0's broadcast.
fn resume_other_rank(run: &LmRun, opt: &mut Adam) -> Result<usize> {
    let (path, ck) = read_checkpoint(&run.out)?;
    let step: usize = ck
        .metadata
        .get("step")
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("--resume: {} holds no step", path.display()))?;
    let saved = Resumed {
        optimizer_state: ck
            .tensors
            .iter()
            .filter_map(|(n, t)| Some((n.strip_prefix(OPTIMIZER_PREFIX)?.to_string(), t.clone())))
            .collect(),
        path: path.clone(),
        checkpoint: ck,
        step,
        progress: step,
    };
    opt.load_state(&saved.optimizer_state_with_schedule())
        .with_context(|| format!("--resume: {}", path.display()))?;
    Ok(step)
}

/// Reads a `gpt` checkpoint (from `lm train` or a PyTorch export) into a model.
pub fn load_gpt(path: &Path) -> Result<Gpt> {
    let ck = Checkpoint::load(path)?;
    let source = path.display().to_string();
    let config = GptConfig::from_checkpoint(&ck, &source)?;
    let model = Gpt::new(config);
    let weights: Vec<_> = ck
        .tensors
        .into_iter()
        .filter(|(n, _)| !n.starts_with(OPTIMIZER_PREFIX))
        .collect();
    model
        .load(&weights)
        .with_context(|| format!("in {source}"))?;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::super::eval::text_loss;
    use super::*;

    #[test]
    fn a_short_run_learns_and_resumes() {
        let out = std::env::temp_dir().join(format!("neurite-lm-run-{}", std::process::id()));
        let text = b"the quick brown fox jumps over the lazy dog. ".repeat(40);
        let mut run = LmRun {
            model: GptConfig {
                block_size: 16,
                n_layer: 1,
                n_head: 2,
                n_embd: 16,
                ..GptConfig::default()
            },
            steps: 40,
            eval_interval: 20,
            batch: 8,
            lr: 1e-2,
            min_lr: 1e-3,
            warmup: 5,
            progress: false,
            ..LmRun::recipe(out.clone())
        };
        let s = train(&run, &text).unwrap();
        assert!(s.val_loss < 3.0, "val loss {}", s.val_loss);
        // One metrics line per evaluation, in the log and in the checkpoint.
        let log: Vec<LmMetrics> =
            crate::train::metrics::read_log(&out.join(crate::train::run::METRICS_FILE)).unwrap();
        assert_eq!(log.iter().map(|m| m.step).collect::<Vec<_>>(), [20, 40]);
        assert_eq!(log[1].val_loss, s.val_loss);
        let ck = Checkpoint::load(&out.join(CHECKPOINT_FILE)).unwrap();
        assert_eq!(ck.metadata["format"], "neurite-run-2");
        assert_eq!(ck.metadata["step"], "40");
        assert_eq!(ck.metadata["metrics"].lines().count(), 2);
        let m = load_gpt(&out.join(MODEL_FILE)).unwrap();
        let again = text_loss(&m, split_text(&text).1, 4).unwrap();
        assert!((again - s.val_loss).abs() < 1e-4);
        run.steps = 60;
        run.resume = true;
        let r = train(&run, &text).unwrap();
        assert_eq!(r.steps, 60);
        assert!(r.val_loss.is_finite());
        let log: Vec<LmMetrics> =
            crate::train::metrics::read_log(&out.join(crate::train::run::METRICS_FILE)).unwrap();
        assert_eq!(log.iter().map(|m| m.step).collect::<Vec<_>>(), [20, 40, 60]);
        // A changed setting is refused, naming it.
        let changed = LmRun {
            lr: 2e-2,
            steps: 80,
            ..run.clone()
        };
        let e = train(&changed, &text).unwrap_err().to_string();
        assert!(e.contains("lm.lr 0.01 (now 0.02)"), "{e}");
        // A fresh run over it is refused; --overwrite starts over.
        let fresh = LmRun {
            resume: false,
            ..run.clone()
        };
        let e = train(&fresh, &text).unwrap_err().to_string();
        assert!(e.contains("already holds a gpt run (step 60)"), "{e}");
        assert!(train(&run, b"tiny").is_err());
        std::fs::remove_dir_all(&out).unwrap();
    }
}

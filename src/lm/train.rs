//! The training run of `neurite lm train`: AdamW with linear warm-up and cosine decay,
//! gradient clipping, random windows of the training split, the validation loss at a fixed
//! interval, atomic checkpoints and `--resume`.
//!
//! Files in the output directory: `checkpoint.safetensors`, the whole resumable state in
//! one atomically written file (the `state_dict`, the optimizer's moments under
//! `optimizer.*`, the step, the model's `gpt.*` shape and the run's `lm.*` settings), and
//! `model.safetensors` (the `state_dict` alone, `lm_head.weight` as a copy, loadable by
//! PyTorch), written after it. The directory is locked for the run ([`RunDir`]), and the
//! guard ([`crate::train::guard`]) stops the run at a non-finite loss, gradient or
//! validation loss before anything non-finite is saved.

use super::data::{split_text, text_loss, Windows};
use crate::checkpoint::Checkpoint;
use crate::models::{Gpt, GptConfig};
use crate::nn::ModuleExt;
use crate::optim::{clip_grad_norm, Adam, AdamConfig, Decay, Optimizer, Schedule};
use crate::train::guard::{Guard, NonFinitePolicy, StepOutcome, DIVERGENCE_ADVICE};
use crate::train::state::OPTIMIZER_PREFIX;
use crate::train::{DecayScope, RunDir};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The model file of a run.
pub const MODEL_FILE: &str = "model.safetensors";
/// The resumable state of a run.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct LmRun {
    pub model: GptConfig,
    pub steps: usize,
    pub eval_interval: usize,
    /// Windows per batch.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f32,
    /// Cosine decay ends at this rate.
    pub min_lr: f32,
    pub warmup: usize,
    pub weight_decay: f32,
    pub clip: f32,
    pub seed: u64,
    pub out: PathBuf,
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

/// What a run reached.
#[derive(Clone, Debug)]
pub struct LmSummary {
    pub val_loss: f64,
    pub train_loss: f64,
    pub steps: usize,
    /// Wall time of the whole run (training and evaluations).
    pub seconds: f64,
    /// Training tokens per second of training time (evaluations left out).
    pub tokens_per_second: f64,
    pub parameters: usize,
}

/// Writes `model` (and, for a checkpoint, the optimizer's state and the run's settings) to
/// `path` after `step` steps.
fn save(
    path: &Path,
    model: &Gpt,
    opt: Option<(&Adam, &[(String, String)])>,
    step: usize,
) -> Result<()> {
    let mut tensors = model.state_dict();
    if let Some((opt, _)) = opt {
        tensors.extend(
            opt.state()
                .into_iter()
                .map(|(n, t)| (format!("{OPTIMIZER_PREFIX}{n}"), t)),
        );
    }
    let mut ck = Checkpoint::new(tensors);
    ck.metadata.insert("model".into(), "gpt".into());
    ck.metadata.insert("step".into(), step.to_string());
    ck.metadata.extend(model.config.to_metadata());
    if let Some((_, settings)) = opt {
        ck.metadata.extend(settings.iter().cloned());
    }
    ck.save(path)
}

/// Checks that the run in `ck` (read from `path`) is the one `run` continues on `text`, and
/// returns its step.
fn check_resume(ck: &Checkpoint, path: &Path, run: &LmRun, text: &[u8]) -> Result<usize> {
    let source = path.display();
    let saved = GptConfig::from_checkpoint(ck, &source.to_string())?;
    if saved != run.model {
        bail!(
            "--resume: {source} holds a model of {saved:?}, not {:?}; drop the shape flags \
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
    let step: usize = ck
        .metadata
        .get("step")
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("--resume: {source} holds no valid 'step' metadata"))?;
    if step > run.steps {
        bail!(
            "--resume: {source} is at step {step}, beyond --steps {}",
            run.steps
        );
    }
    Ok(step)
}

/// Trains `gpt` on `text` (its last 10% held out) and returns the final figures.
pub fn train(run: &LmRun, text: &[u8]) -> Result<LmSummary> {
    run.model.validate()?;
    if run.steps == 0 || run.batch == 0 || run.eval_interval == 0 {
        bail!("--steps, --batch-size and --eval-interval must be at least 1");
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
    let named = model.named_parameters();
    let params = model.parameters();
    // nanoGPT's groups: matrices and embeddings decay, biases and LayerNorm gains do not.
    let mut opt = Adam::new(AdamConfig {
        weight_decay: run.weight_decay,
        ..AdamConfig::adamw(run.lr)
    })
    .with_decay_mask(
        named
            .iter()
            .map(|(name, p)| DecayScope::Matrices.decays(name, p.shape()))
            .collect(),
    );
    let schedule = Schedule::new(
        run.lr,
        Decay::Cosine { min_lr: run.min_lr },
        run.warmup,
        run.steps,
    );
    let dir = RunDir::open(&run.out)?;
    let ck_path = dir.join(CHECKPOINT_FILE);
    let model_path = dir.join(MODEL_FILE);
    if !run.resume && (ck_path.exists() || model_path.exists()) {
        if !run.overwrite {
            bail!(
                "{} already holds a gpt run; continue it with --resume, start over with \
                 --overwrite, or give another --out",
                run.out.display()
            );
        }
        // The checkpoint last: a kill in between leaves a run that still resumes.
        dir.remove_files(&[MODEL_FILE, CHECKPOINT_FILE])?;
    }
    let settings = run.settings(text);
    let mut start = 0;
    if run.resume {
        if !ck_path.is_file() {
            bail!(
                "--resume: {} has no {CHECKPOINT_FILE} to continue from",
                run.out.display()
            );
        }
        let ck = Checkpoint::load(&ck_path)?;
        ck.check_finite(&ck_path.display().to_string())?;
        start = check_resume(&ck, &ck_path, run, text)?;
        let (opt_state, weights): (Vec<_>, Vec<_>) = ck
            .tensors
            .into_iter()
            .partition(|(n, _)| n.starts_with(OPTIMIZER_PREFIX));
        model.load(&weights)?;
        let opt_state: Vec<_> = opt_state
            .into_iter()
            .map(|(n, t)| (n[OPTIMIZER_PREFIX.len()..].to_string(), t))
            .collect();
        opt.load_state(&opt_state)?;
        windows.skip(start, run.batch);
    }
    let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
    let mut guard = Guard::new(run.on_non_finite);
    // The step of the checkpoint in `out`, the last good state.
    let mut saved_step = (start > 0).then_some(start);
    let last_good = |saved: Option<usize>| match saved {
        Some(s) => format!(
            "the last good checkpoint, {} (step {s}), is untouched",
            ck_path.display()
        ),
        None => "no checkpoint had been saved yet".to_string(),
    };

    let bar = if run.progress {
        let b = ProgressBar::new(run.steps as u64);
        b.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  [{elapsed} < {eta}]")
                .unwrap(),
        );
        b.set_position(start as u64);
        b
    } else {
        ProgressBar::hidden()
    };
    let started = Instant::now();
    let mut train_seconds = 0.0;
    let (mut loss_sum, mut loss_n, mut last_train) = (0.0f64, 0usize, f64::NAN);
    let mut val_loss = f64::NAN;
    for step in start..run.steps {
        let t0 = Instant::now();
        let (x, y) = windows.batch(run.batch);
        opt.set_lr(schedule.lr_at(step));
        model.zero_grad();
        let loss = model.loss(&x, &y, run.batch, block);
        let l = loss.item();
        let stopped = |e: anyhow::Error| {
            anyhow::anyhow!(
                "{e} at step {}: {DIVERGENCE_ADVICE}; {}",
                step + 1,
                last_good(saved_step)
            )
        };
        bar.inc(1);
        // Under `--on-nonfinite skip`, a step can end here without an update.
        let updated = 'update: {
            if guard.loss(l).map_err(stopped)? == StepOutcome::Skip {
                break 'update false;
            }
            loss.backward();
            clip_grad_norm(&params, run.clip);
            if guard.gradients(&params, &names).map_err(stopped)? == StepOutcome::Skip {
                break 'update false;
            }
            guard.update(opt.step(&params), &names).map_err(stopped)?;
            true
        };
        if updated {
            train_seconds += t0.elapsed().as_secs_f64();
            loss_sum += l as f64;
            loss_n += 1;
            bar.set_message(format!("loss {l:.4}"));
        }
        let done = step + 1;
        if done % run.eval_interval == 0 || done == run.steps {
            let skipped = guard.take_skipped();
            if loss_n == 0 {
                bail!(
                    "every step from {} to {done} had a non-finite loss or gradient and was \
                     skipped: {}",
                    done + 1 - run.eval_interval.min(done),
                    last_good(saved_step)
                );
            }
            last_train = loss_sum / loss_n as f64;
            (loss_sum, loss_n) = (0.0, 0);
            val_loss = text_loss(&model, val_text, 32)?;
            if !val_loss.is_finite() {
                bail!(
                    "the validation loss is {val_loss} at step {done}: {DIVERGENCE_ADVICE}; {}",
                    last_good(saved_step)
                );
            }
            if run.progress {
                let mut line = format!(
                    "step {done:>6}  train loss {last_train:.4}  val loss {val_loss:.4}  lr {:.2e}",
                    schedule.lr_at(step)
                );
                if skipped > 0 {
                    line += &format!("  skipped {skipped} steps");
                }
                // A bar hidden because stderr is not a terminal drops its println.
                if bar.is_hidden() {
                    eprintln!("{line}");
                } else {
                    bar.println(line);
                }
            }
            save(&ck_path, &model, Some((&opt, &settings)), done)?;
            saved_step = Some(done);
            save(&model_path, &model, None, done)?;
        }
    }
    bar.finish_and_clear();
    if start >= run.steps {
        val_loss = text_loss(&model, val_text, 32)?;
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
        let m = load_gpt(&out.join(MODEL_FILE)).unwrap();
        let again = text_loss(&m, split_text(&text).1, 4).unwrap();
        assert!((again - s.val_loss).abs() < 1e-4);
        run.steps = 60;
        run.resume = true;
        let r = train(&run, &text).unwrap();
        assert_eq!(r.steps, 60);
        assert!(r.val_loss.is_finite());
        assert!(train(&run, b"tiny").is_err());
        std::fs::remove_dir_all(&out).unwrap();
    }
}

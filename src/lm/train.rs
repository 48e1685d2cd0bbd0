//! The training run of `neurite lm train`: AdamW with linear warm-up and cosine decay,
//! gradient clipping, random windows of the training split, the validation loss at a fixed
//! interval, atomic checkpoints and `--resume`.
//!
//! Files in the output directory: `model.safetensors` (the `state_dict`, `lm_head.weight`
//! as a copy, loadable by PyTorch) and `checkpoint.safetensors` (the same plus the
//! optimizer's moments under `optimizer.*` and the step, for `--resume`).

use super::data::{split_text, text_loss, Windows};
use crate::checkpoint::Checkpoint;
use crate::models::{Gpt, GptConfig};
use crate::nn::ModuleExt;
use crate::optim::{clip_grad_norm, Adam, AdamConfig, Decay, Optimizer, Schedule};
use crate::train::DecayScope;
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
            progress: true,
        }
    }
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

fn save(path: &Path, model: &Gpt, opt: Option<&Adam>, step: usize) -> Result<()> {
    let mut tensors = model.state_dict();
    if let Some(opt) = opt {
        tensors.extend(
            opt.state()
                .into_iter()
                .map(|(n, t)| (format!("optimizer.{n}"), t)),
        );
    }
    let mut ck = Checkpoint::new(tensors);
    ck.metadata.insert("model".into(), "gpt".into());
    ck.metadata.insert("step".into(), step.to_string());
    ck.metadata.extend(model.config.to_metadata());
    ck.save(path)
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
    std::fs::create_dir_all(&run.out)
        .with_context(|| format!("cannot create {}", run.out.display()))?;
    let ck_path = run.out.join(CHECKPOINT_FILE);
    let mut start = 0;
    if run.resume {
        let ck = Checkpoint::load(&ck_path)?;
        let saved = GptConfig::from_checkpoint(&ck, &ck_path.display().to_string())?;
        if saved != run.model {
            bail!(
                "{} holds a model of {saved:?}, not {:?}",
                ck_path.display(),
                run.model
            );
        }
        let (opt_state, weights): (Vec<_>, Vec<_>) = ck
            .tensors
            .iter()
            .cloned()
            .partition(|(n, _)| n.starts_with("optimizer."));
        model.load(&weights)?;
        let opt_state: Vec<_> = opt_state
            .into_iter()
            .map(|(n, t)| (n["optimizer.".len()..].to_string(), t))
            .collect();
        opt.load_state(&opt_state)?;
        start = ck
            .metadata
            .get("step")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        windows.skip(start, run.batch);
    }

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
        let l = loss.item() as f64;
        if !l.is_finite() {
            bail!("the training loss is {l} at step {}", step + 1);
        }
        loss.backward();
        clip_grad_norm(&params, run.clip);
        opt.step(&params);
        train_seconds += t0.elapsed().as_secs_f64();
        loss_sum += l;
        loss_n += 1;
        bar.inc(1);
        bar.set_message(format!("loss {l:.4}"));
        let done = step + 1;
        if done % run.eval_interval == 0 || done == run.steps {
            last_train = loss_sum / loss_n as f64;
            (loss_sum, loss_n) = (0.0, 0);
            val_loss = text_loss(&model, val_text, 32)?;
            if run.progress {
                let line = format!(
                    "step {done:>6}  train loss {last_train:.4}  val loss {val_loss:.4}  lr {:.2e}",
                    schedule.lr_at(step)
                );
                // A bar hidden because stderr is not a terminal drops its println.
                if bar.is_hidden() {
                    eprintln!("{line}");
                } else {
                    bar.println(line);
                }
            }
            save(&ck_path, &model, Some(&opt), done)?;
            save(&run.out.join(MODEL_FILE), &model, None, done)?;
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
        .filter(|(n, _)| !n.starts_with("optimizer."))
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

//! `neurite lm train|sample|eval`: the character-level `gpt` on byte text.

use crate::lm::{load_gpt, read_text, text_loss, train, LmRun};
use crate::models::{GptConfig, SampleOptions};
use crate::train::NonFinitePolicy;
use anyhow::{bail, Result};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: LmCommand,
}

#[derive(clap::Subcommand, Debug)]
enum LmCommand {
    /// Train gpt on the bytes of files or directories (default: the Debian fortunes text).
    Train(TrainArgs),
    /// Write text from a checkpoint, token by token.
    Sample(SampleArgs),
    /// The loss (nats per byte) of a checkpoint on a text.
    Eval(EvalArgs),
}

#[derive(clap::Args, Debug)]
struct TrainArgs {
    /// Text files or directories, joined in order (default: /usr/share/games/fortunes).
    paths: Vec<PathBuf>,
    /// Optimizer steps (at most 100000000).
    #[arg(long, default_value_t = 5000)]
    steps: usize,
    /// Steps between validation losses and checkpoints.
    #[arg(long, default_value_t = 500)]
    eval_interval: usize,
    /// Windows of block-size bytes per batch (batch-size x block-size at most 1048576).
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Peak learning rate (AdamW, linear warm-up, cosine to lr/10).
    #[arg(long, default_value_t = 1e-3, allow_hyphen_values = true)]
    lr: f32,
    /// Warm-up steps.
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    #[arg(long, default_value_t = 4)]
    n_layer: usize,
    #[arg(long, default_value_t = 4)]
    n_head: usize,
    #[arg(long, default_value_t = 128)]
    n_embd: usize,
    #[arg(long, default_value_t = 128)]
    block_size: usize,
    /// Seeds the weights and the training windows.
    #[arg(long, default_value_t = 1337)]
    seed: u64,
    /// Output directory (checkpoint.safetensors, model.safetensors, metrics.jsonl).
    #[arg(long, default_value = "runs/gpt")]
    out: PathBuf,
    /// Continue the run saved in --out (with the same flags and text; --steps may change).
    #[arg(long)]
    resume: bool,
    /// Start over in an --out that holds an earlier run (its files are removed first).
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// What a NaN or infinite loss or gradient does: stop (an error; the last checkpoint
    /// stays the last good one) or skip (the step is left out and counted).
    #[arg(long, default_value = "stop", value_name = "stop|skip")]
    on_nonfinite: NonFinitePolicy,
    /// End with one JSON line (val_loss, steps, seconds, tokens_per_second).
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct SampleArgs {
    #[arg(long)]
    weights: PathBuf,
    /// The text to continue (may start with `-`).
    #[arg(long, default_value = "\n", allow_hyphen_values = true)]
    prompt: String,
    /// New bytes to write (at least 1).
    #[arg(long, default_value_t = 256)]
    tokens: usize,
    /// Softmax temperature, finite and 0 or above; 0 picks the most likely byte.
    #[arg(long, default_value_t = 0.8, allow_hyphen_values = true)]
    temperature: f32,
    /// Sample among the K most likely bytes only (0: all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Re-run the whole context each step instead of using the key/value cache.
    #[arg(long)]
    no_cache: bool,
    /// After the text, one JSON line with tokens and tokens_per_second (on stderr).
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct EvalArgs {
    #[arg(long)]
    weights: PathBuf,
    /// Text files or directories (default: the validation split of the fortunes text).
    paths: Vec<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<i32> {
    match args.command {
        LmCommand::Train(a) => run_train(a),
        LmCommand::Sample(a) => run_sample(a),
        LmCommand::Eval(a) => run_eval(a),
    }
}

/// The most attention scores one layer of a training step may hold (4 GiB of floats).
const MAX_ATTENTION_SCORES: usize = 1 << 30;

/// The most optimizer steps of `lm train`.
const MAX_STEPS: usize = 100_000_000;

impl TrainArgs {
    /// The model's size from the flags, every flag checked.
    fn checked_config(&self) -> Result<GptConfig> {
        use crate::validate::{count, positive, MAX_SIZE};
        let model = GptConfig {
            block_size: self.block_size,
            n_layer: self.n_layer,
            n_head: self.n_head,
            n_embd: self.n_embd,
            ..GptConfig::default()
        };
        model.validate()?;
        positive("--lr", self.lr)?;
        count("--steps", self.steps, 1, MAX_STEPS)?;
        count("--eval-interval", self.eval_interval, 1, MAX_STEPS)?;
        count("--batch-size", self.batch_size, 1, MAX_SIZE)?;
        count("--warmup", self.warmup, 0, MAX_STEPS)?;
        let tokens = self.batch_size.saturating_mul(self.block_size);
        if tokens > MAX_SIZE {
            bail!(
                "--batch-size {} x --block-size {} is {tokens} tokens per step, more than \
                 {MAX_SIZE}; make the batch or the block smaller",
                self.batch_size,
                self.block_size
            );
        }
        let scores = tokens
            .saturating_mul(self.n_head)
            .saturating_mul(self.block_size);
        if scores > MAX_ATTENTION_SCORES {
            bail!(
                "--batch-size {} x --n-head {} x --block-size {} squared is {scores} attention \
                 scores per layer, more than {MAX_ATTENTION_SCORES}; make the batch, the heads \
                 or the block smaller",
                self.batch_size,
                self.n_head,
                self.block_size
            );
        }
        Ok(model)
    }
}

fn run_train(a: TrainArgs) -> Result<i32> {
    // Under `mpirun -np N` every rank runs this; alone it is one rank (MPI ends with `_mpi`).
    let _mpi = crate::distributed::init()?;
    let root = crate::distributed::is_root();
    let model = a.checked_config()?;
    let text = read_text(&a.paths)?;
    let run = LmRun {
        model,
        steps: a.steps,
        eval_interval: a.eval_interval,
        batch: a.batch_size,
        lr: a.lr,
        min_lr: a.lr / 10.0,
        warmup: a.warmup,
        resume: a.resume,
        overwrite: a.overwrite,
        on_non_finite: a.on_nonfinite,
        seed: a.seed,
        ..LmRun::recipe(a.out.clone())
    };
    if root {
        eprintln!(
        "gpt ({} layers, {} heads, {} channels, block {}) on {} bytes ({} for validation), {} rank(s)",
        a.n_layer,
        a.n_head,
        a.n_embd,
        a.block_size,
        text.len(),
        text.len() - crate::lm::split_text(&text).0.len(),
        crate::distributed::world_size()
    );
    }
    let s = train(&run, &text)?;
    if !root {
        return Ok(0);
    }
    println!(
        "val loss {:.4} nats/byte after {} steps, {:.1} s, {:.0} tokens/s -> {}",
        s.val_loss,
        s.steps,
        s.seconds,
        s.tokens_per_second,
        a.out.join(crate::lm::MODEL_FILE).display()
    );
    if a.json {
        println!(
            "{}",
            json!({"model": "gpt", "val_loss": s.val_loss, "train_loss": s.train_loss, "steps": s.steps,
                   "seconds": s.seconds, "tokens_per_second": s.tokens_per_second, "parameters": s.parameters})
        );
    }
    Ok(0)
}

fn run_sample(a: SampleArgs) -> Result<i32> {
    crate::validate::non_negative("--temperature", a.temperature)?;
    crate::validate::count("--tokens", a.tokens, 1, usize::MAX)?;
    if a.prompt.is_empty() {
        bail!("--prompt is empty; give at least one character");
    }
    let model = load_gpt(&a.weights)?;
    let source = a.weights.display().to_string();
    check_weights(&model, &source)?;
    let vocab = model.config.vocab;
    crate::lm::data::check_vocab(a.prompt.as_bytes(), vocab, "--prompt", &source)?;
    if a.top_k > vocab {
        bail!("--top-k {} is more than the {vocab} symbols of {source}; give at most {vocab} (0: all)", a.top_k);
    }
    let prompt: Vec<usize> = a.prompt.bytes().map(usize::from).collect();
    let opts = SampleOptions {
        temperature: a.temperature,
        top_k: (a.top_k > 0).then_some(a.top_k),
        seed: a.seed,
        use_cache: !a.no_cache,
    };
    // Not locked across `generate`: the tokens arrive on a worker thread, which writes
    // through its own handle.
    let mut out = std::io::stdout();
    out.write_all(a.prompt.as_bytes())?;
    out.flush()?;
    let t0 = Instant::now();
    let mut first_error = None;
    // Bytes as they come: a UTF-8 character split over tokens is completed by the terminal.
    // The model's inference form: its linear weights packed once for every step.
    let plan = crate::infer::GptPlan::new(&model);
    plan.generate(&prompt, a.tokens, opts, &mut |t| {
        if first_error.is_none() {
            let mut out = std::io::stdout();
            if let Err(e) = out.write_all(&[t as u8]).and_then(|_| out.flush()) {
                first_error = Some(e);
            }
        }
    });
    let secs = t0.elapsed().as_secs_f64();
    if let Some(e) = first_error {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e.into());
        }
        // The reader went away (`| head`): nothing more to write, and nothing went wrong.
        return Ok(0);
    }
    writeln!(out)?;
    if a.json {
        eprintln!(
            "{}",
            json!({"tokens": a.tokens, "seconds": secs, "tokens_per_second": a.tokens as f64 / secs.max(1e-9), "cache": !a.no_cache})
        );
    }
    Ok(0)
}

/// An error naming `source` and the first tensor of `model` holding a NaN or infinity.
fn check_weights(model: &crate::models::Gpt, source: &str) -> Result<()> {
    use crate::nn::ModuleExt;
    let state = model.state_dict();
    crate::validate::check_finite_tensors(state.iter().map(|(n, t)| (n.as_str(), t)), source)
}

fn run_eval(a: EvalArgs) -> Result<i32> {
    let model = load_gpt(&a.weights)?;
    let source = a.weights.display().to_string();
    check_weights(&model, &source)?;
    let (text, what) = if a.paths.is_empty() {
        let t = read_text(&[])?;
        let val = crate::lm::split_text(&t).1.to_vec();
        (val, "the validation split of the fortunes text".to_string())
    } else {
        let names: Vec<String> = a.paths.iter().map(|p| p.display().to_string()).collect();
        (read_text(&a.paths)?, names.join(", "))
    };
    crate::lm::data::check_vocab(&text, model.config.vocab, &what, &source)?;
    let loss = text_loss(&model, &text, 32)?;
    if !loss.is_finite() {
        bail!(
            "the loss of {} is {loss}: its weights are finite but overflow (a diverged run?); \
             use a checkpoint from before the divergence or train again",
            a.weights.display()
        );
    }
    if a.json {
        println!(
            "{}",
            json!({"model": "gpt", "loss": loss, "bytes": text.len()})
        );
    } else {
        println!("loss {loss:.4} nats/byte on {} bytes of {what}", text.len());
    }
    Ok(0)
}

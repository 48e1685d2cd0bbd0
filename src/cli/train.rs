//! `neurite train MODEL`: trains a zoo model on Fashion-MNIST with the model's recipe,
//! any flag overriding it.

use crate::data::{find_data_dir, Augment, DatasetKind, MnistData};
use crate::train::{
    saved_config, train, DecayScope, OptimizerKind, RunOptions, TrainConfig, Warmup,
};
use anyhow::{bail, Result};
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model: mlp, lenet5 or resnet20.
    model: String,
    /// The Fashion-MNIST directory (default: $NEURITE_DATA, the cache, /usr/share/datasets).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Epochs (recipe: 20; resnet20 30; at most 100000). With --resume: extend or shorten
    /// the saved run.
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per batch (recipe: 128; at most 65536).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Peak learning rate (recipe: 0.05; resnet20 0.1; adam/adamw 1e-3).
    #[arg(long, allow_hyphen_values = true)]
    lr: Option<f32>,
    /// sgd, adam or adamw (recipe: sgd; vit adamw).
    #[arg(long)]
    optimizer: Option<String>,
    /// SGD momentum (recipe: 0.9).
    #[arg(long, allow_hyphen_values = true)]
    momentum: Option<f32>,
    /// Nesterov momentum (SGD).
    #[arg(long)]
    nesterov: bool,
    /// Weight decay (recipe: 0; lenet5 and resnet20 5e-4; adamw 0.01), decoupled for adamw.
    #[arg(long, allow_hyphen_values = true)]
    weight_decay: Option<f32>,
    /// Which parameters weight decay applies to: all, or matrices (weights of 2+ dimensions
    /// but the class token and position embedding) (recipe: all; vit matrices).
    #[arg(long)]
    decay: Option<String>,
    /// constant, cosine (to 0), step:EPOCHS:GAMMA or exp:GAMMA (per epoch) (recipe: cosine).
    #[arg(long)]
    schedule: Option<String>,
    /// Linear warm-up before the schedule: epochs (`2`, `0.5`) or steps (`500steps`).
    #[arg(long, allow_hyphen_values = true)]
    warmup: Option<String>,
    /// Augmentations: a comma list of brightness[=b], contrast[=c], crop[=pad], flip, or
    /// none (recipe: none for mlp, flip for lenet5, crop,flip for resnet20 and vit).
    #[arg(long)]
    augment: Option<String>,
    /// Seed of the initial weights, the batch order and the augmentations.
    #[arg(long)]
    seed: Option<u64>,
    /// Train on the first N training images only.
    #[arg(long)]
    limit_train: Option<usize>,
    /// Clip the global gradient norm to this value.
    #[arg(long, allow_hyphen_values = true)]
    clip_grad: Option<f32>,
    /// Start from these weights (safetensors) instead of a random initialization.
    #[arg(long)]
    init: Option<PathBuf>,
    /// Output directory (default: runs/MODEL).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in the output directory from its last checkpoint, with its saved
    /// configuration and optimizer state.
    #[arg(long)]
    resume: bool,
    /// Print one JSON object as the last line of standard output (per-epoch lines go to
    /// stderr, no progress bar).
    #[arg(long)]
    json: bool,
}

impl Args {
    /// The flags that change what is computed, other than --epochs (for --resume checks).
    fn hyper_parameter_flags(&self) -> Vec<&'static str> {
        [
            ("--batch-size", self.batch_size.is_some()),
            ("--lr", self.lr.is_some()),
            ("--optimizer", self.optimizer.is_some()),
            ("--momentum", self.momentum.is_some()),
            ("--nesterov", self.nesterov),
            ("--weight-decay", self.weight_decay.is_some()),
            ("--decay", self.decay.is_some()),
            ("--schedule", self.schedule.is_some()),
            ("--warmup", self.warmup.is_some()),
            ("--augment", self.augment.is_some()),
            ("--seed", self.seed.is_some()),
            ("--limit-train", self.limit_train.is_some()),
            ("--clip-grad", self.clip_grad.is_some()),
            ("--init", self.init.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }

    /// The model's recipe with the given flags applied.
    fn config(&self) -> Result<TrainConfig> {
        let optimizer: OptimizerKind = match &self.optimizer {
            Some(o) => o.parse()?,
            None => TrainConfig::default_optimizer(&self.model),
        };
        let mut c = TrainConfig::recipe(&self.model, optimizer)?;
        if let Some(v) = self.epochs {
            c.epochs = v;
        }
        if let Some(v) = self.batch_size {
            c.batch_size = v;
        }
        if let Some(v) = self.lr {
            c.lr = v;
        }
        if let Some(v) = self.momentum {
            c.momentum = v;
        }
        c.nesterov = self.nesterov;
        if let Some(v) = self.weight_decay {
            c.weight_decay = v;
        }
        if let Some(v) = &self.decay {
            c.decay = v.parse::<DecayScope>()?;
        }
        if let Some(v) = &self.schedule {
            c.schedule = v.clone();
        }
        if let Some(v) = &self.warmup {
            c.warmup = v.parse::<Warmup>()?;
        }
        if let Some(v) = &self.augment {
            c.augment = v.parse::<Augment>()?;
        }
        if let Some(v) = self.seed {
            c.seed = v;
        }
        c.limit_train = self.limit_train;
        c.clip_grad = self.clip_grad;
        c.validate()?;
        Ok(c)
    }
}

pub fn run(args: Args) -> Result<i32> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&args.model));
    let config = if args.resume {
        let given = args.hyper_parameter_flags();
        if !given.is_empty() {
            bail!(
                "--resume continues with the saved configuration; drop {}",
                given.join(", ")
            );
        }
        let mut c = saved_config(&out)?;
        if c.model != args.model {
            bail!(
                "--resume: {} holds a {} run, not {}",
                out.display(),
                c.model,
                args.model
            );
        }
        if let Some(e) = args.epochs {
            c.epochs = e;
        }
        c.validate()?;
        c
    } else {
        args.config()?
    };
    let dir = find_data_dir(args.data.as_deref())?;
    let data = MnistData::load(&dir, DatasetKind::FashionMnist)?;
    super::check_splits(&dir, Some(&data.train), Some(&data.test))?;
    super::check_limit(config.limit_train, data.train.n)?;
    config
        .augment
        .check_image(data.train.height, data.train.width)?;
    let n = config.limit_train.unwrap_or(data.train.n);
    config.check_against_data(n.div_ceil(config.batch_size))?;
    if let Some(init) = &args.init {
        let ck = crate::checkpoint::Checkpoint::load(init)?;
        ck.check_finite(&format!("--init {}", init.display()))?;
    }
    let opts = RunOptions {
        out: out.clone(),
        resume: args.resume,
        init: args.init.clone(),
        progress: !args.json,
        log_epochs: true,
        stop_after: None,
    };
    let s = train(&config, &data, &opts)?;
    if args.json {
        println!(
            "{}",
            json!({
                "model": s.model,
                "accuracy": s.accuracy,
                "loss": s.loss,
                "epochs": s.epochs,
                "seconds": s.seconds,
                "images_per_second": s.images_per_second,
                "out": out.display().to_string(),
            })
        );
    } else {
        println!(
            "{}: test accuracy {:.2}%, loss {:.4} after {} epochs, {:.1} s ({:.0} images/s); weights in {}",
            s.model,
            100.0 * s.accuracy,
            s.loss,
            s.epochs,
            s.seconds,
            s.images_per_second,
            out.join(crate::train::state::MODEL_FILE).display()
        );
    }
    Ok(0)
}

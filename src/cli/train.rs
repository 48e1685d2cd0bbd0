//! `neurite train MODEL`: trains a zoo model with the model's recipe, any flag overriding
//! it, on Fashion-MNIST or on the user's own data (`--data DIR` of images in class
//! sub-folders, `--data FILE.csv --target COLUMN`; see `cli/data.rs`).

use crate::data::Augment;
use crate::train::{
    saved_config, train, DecayScope, NonFinitePolicy, OptimizerKind, RecipeKind, RunOptions,
    TrainConfig, Warmup,
};
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(after_help = recipes_help())]
pub struct Args {
    #[arg(help = format!("The model: {}", crate::models::IMAGE_MODELS.join(", ")))]
    model: String,
    #[command(flatten)]
    data: super::data::DataFlags,
    /// The recipe the other flags start from: spec (the spec's, the default) or fast (a
    /// target test accuracy soonest in wall time; mlp, lenet5 and resnet20, see after the
    /// flags).
    #[arg(long, value_name = "spec|fast")]
    recipe: Option<String>,
    /// Epochs (default: the model's recipe; at most 100000). With --resume: extend or
    /// shorten the saved run.
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per batch (default: the model's recipe; at most 65536).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Peak learning rate (default: the model's recipe for sgd; 1e-3 for adam and adamw).
    #[arg(long, allow_hyphen_values = true)]
    lr: Option<f32>,
    /// sgd, adam or adamw (default: the model's recipe).
    #[arg(long)]
    optimizer: Option<String>,
    /// SGD momentum (default: the model's recipe).
    #[arg(long, allow_hyphen_values = true)]
    momentum: Option<f32>,
    /// Nesterov momentum (SGD).
    #[arg(long)]
    nesterov: bool,
    /// Weight decay (default: the model's recipe; at least 0.01 for adamw), decoupled for
    /// adamw.
    #[arg(long, allow_hyphen_values = true)]
    weight_decay: Option<f32>,
    /// Which parameters weight decay applies to: all, or matrices (weights of 2+ dimensions
    /// but the class token and position embedding) (default: the model's recipe).
    #[arg(long)]
    decay: Option<String>,
    /// constant, cosine (to 0), step:EPOCHS:GAMMA, exp:GAMMA (per epoch), onecycle[:PCT_START]
    /// (PyTorch's OneCycleLR, peak --lr), multistep:E1,E2,...:GAMMA (at those epochs) or
    /// linear (to 0) (default: the model's recipe).
    #[arg(long)]
    schedule: Option<String>,
    /// Linear warm-up before the schedule: epochs (`2`, `0.5`) or steps (`500steps`)
    /// (default: the model's recipe).
    #[arg(long, allow_hyphen_values = true)]
    warmup: Option<String>,
    /// Augmentations: a comma list of brightness[=b], contrast[=c], crop[=pad], flip, or
    /// none (default: the model's recipe).
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
    /// Label smoothing of the training loss, in [0, 1): the target is (1 - EPS) one-hot +
    /// EPS / classes, as PyTorch's label_smoothing (default: the recipe's; 0 for spec).
    #[arg(long, allow_hyphen_values = true, value_name = "EPS")]
    label_smoothing: Option<f32>,
    /// Evaluate the test split after every N-th epoch and after the last one only; the
    /// skipped evaluations save their time (default: the recipe's; 1 for spec).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    eval_every: Option<u64>,
    /// Test-time augmentation of the test-set evaluations: none, or flip (the mean of the
    /// logits of each image and its mirror image; default: the recipe's).
    #[arg(long, value_name = "none|flip")]
    tta: Option<String>,
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
    /// Start over in an output directory that holds an earlier run (its checkpoint, model,
    /// metrics and pictures are removed first); without it that is an error.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// What a NaN or infinite loss or gradient does: stop (the run ends with an error; the
    /// last checkpoint stays the last good one) or skip (the batch is left out and counted
    /// as `skipped_steps` in metrics.jsonl).
    #[arg(long, default_value = "stop", value_name = "stop|skip")]
    on_nonfinite: NonFinitePolicy,
    /// Print one JSON object as the last line of standard output (per-epoch lines go to
    /// stderr, no progress bar).
    #[arg(long)]
    json: bool,
    /// Under `mpirun -np N` (a build with the `mpi` feature): normalize batch norms by the
    /// statistics of the whole global batch rather than each rank's share (PyTorch's
    /// SyncBatchNorm), so that N ranks train as one process would. Alone it changes nothing.
    #[arg(long)]
    sync_bn: bool,
}

impl Args {
    /// The flags given that change what is computed (other than --epochs) and ask for
    /// something else than the `saved` run has: `--resume` continues that run as it was,
    /// so the same command with `--resume` added is fine, and a change is an error.
    fn flags_that_differ(&self, saved: &TrainConfig) -> Result<Vec<String>> {
        let wanted = self.config_unchecked()?;
        let w = &wanted;
        let s = saved;
        let flags = [
            (
                "--batch-size",
                self.batch_size.is_some(),
                w.batch_size == s.batch_size,
            ),
            ("--lr", self.lr.is_some(), w.lr == s.lr),
            (
                "--optimizer",
                self.optimizer.is_some(),
                w.optimizer == s.optimizer,
            ),
            (
                "--momentum",
                self.momentum.is_some(),
                w.momentum == s.momentum,
            ),
            ("--nesterov", self.nesterov, w.nesterov == s.nesterov),
            (
                "--weight-decay",
                self.weight_decay.is_some(),
                w.weight_decay == s.weight_decay,
            ),
            ("--decay", self.decay.is_some(), w.decay == s.decay),
            (
                "--schedule",
                self.schedule.is_some(),
                w.schedule == s.schedule,
            ),
            ("--warmup", self.warmup.is_some(), w.warmup == s.warmup),
            ("--augment", self.augment.is_some(), w.augment == s.augment),
            ("--seed", self.seed.is_some(), w.seed == s.seed),
            (
                "--limit-train",
                self.limit_train.is_some(),
                w.limit_train == s.limit_train,
            ),
            (
                "--clip-grad",
                self.clip_grad.is_some(),
                w.clip_grad == s.clip_grad,
            ),
            (
                "--label-smoothing",
                self.label_smoothing.is_some(),
                w.label_smoothing == s.label_smoothing,
            ),
            ("--recipe", self.recipe.is_some(), w.recipe == s.recipe),
            ("--tta", self.tta.is_some(), w.tta == s.tta),
            // The starting weights of a run that has started already mean nothing.
            ("--init", self.init.is_some(), false),
        ];
        Ok(flags
            .into_iter()
            .filter(|&(_, given, same)| given && !same)
            .map(|(name, _, _)| name.to_string())
            .collect())
    }

    /// `--recipe`, spec when not given.
    fn recipe_kind(&self) -> Result<RecipeKind> {
        match &self.recipe {
            Some(r) => r.parse(),
            None => Ok(RecipeKind::Spec),
        }
    }

    /// `--eval-every`, else the recipe's (1 for a model outside the zoo's table).
    fn eval_every_or_recipe(&self) -> Result<usize> {
        if let Some(n) = self.eval_every {
            return Ok(n as usize);
        }
        let kind = self.recipe_kind()?;
        Ok(crate::models::image_model(&self.model)
            .ok()
            .and_then(|m| match kind {
                RecipeKind::Spec => Some(m.recipe),
                RecipeKind::Fast => m.fast,
            })
            .map_or(1, |r| r.eval_every))
    }

    /// The model's recipe with the given flags applied, checked.
    fn config(&self) -> Result<TrainConfig> {
        let c = self.config_unchecked()?;
        c.validate()?;
        Ok(c)
    }

    /// The model's recipe (`--recipe`) with the given flags applied.
    fn config_unchecked(&self) -> Result<TrainConfig> {
        let kind = self.recipe_kind()?;
        let optimizer: OptimizerKind = match &self.optimizer {
            Some(o) => o.parse()?,
            None => TrainConfig::default_optimizer_of(&self.model, kind),
        };
        let mut c = TrainConfig::recipe_of(&self.model, kind, optimizer)?;
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
        if let Some(v) = self.label_smoothing {
            c.label_smoothing = v;
        }
        if let Some(v) = &self.tta {
            c.tta = v.parse()?;
        }
        Ok(c)
    }
}

/// The models and their recipes, after `neurite train --help`: read from the table of
/// models, so that a new row shows here.
fn recipes_help() -> String {
    let mut text = String::from("Models and their recipes (any flag overrides a value):\n");
    for m in crate::models::MODELS {
        text += &format!("  {:<9} {}\n", m.name, m.about);
        text += &describe_recipe("", &m.recipe);
        if let Some(fast) = &m.fast {
            text += &describe_recipe("--recipe fast: ", fast);
        }
    }
    text
}

/// One recipe's line of the help, indented, after `label`.
fn describe_recipe(label: &str, r: &crate::models::Recipe) -> String {
    let sgd = if r.optimizer == "sgd" {
        format!(" lr {} momentum {}", r.lr, r.momentum)
    } else {
        " lr 0.001".to_string()
    };
    let smoothing = if r.label_smoothing > 0.0 {
        format!(", label smoothing {}", r.label_smoothing)
    } else {
        String::new()
    };
    let tta = if r.tta != "none" {
        format!(", test-time {}", r.tta)
    } else {
        String::new()
    };
    let evals = match r.eval_every {
        1 => String::new(),
        n if n >= r.epochs => ", test evaluation after the last epoch only".to_string(),
        n => format!(", test evaluation every {n} epochs"),
    };
    format!(
        "            {label}{}{sgd}, {} epochs of batch {}, {} schedule, warm-up {} epochs, \
         weight decay {} ({}), augment {}{smoothing}{tta}{evals}\n",
        r.optimizer,
        r.epochs,
        r.batch_size,
        r.schedule,
        r.warmup_epochs,
        r.weight_decay,
        r.decay,
        r.augment
    )
}

pub fn run(args: Args) -> Result<i32> {
    // Under `mpirun -np N` every rank runs this; alone it is one rank (MPI ends with `_mpi`).
    let _mpi = crate::distributed::init()?;
    let root = crate::distributed::is_root();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&args.model));
    let config = if args.resume {
        let mut c = saved_config(&out)?;
        if c.model != args.model {
            bail!(
                "--resume: {} holds a {} run, not {}",
                out.display(),
                c.model,
                args.model
            );
        }
        let differ = args.flags_that_differ(&c)?;
        if !differ.is_empty() {
            bail!(
                "--resume continues the saved run as it was configured; {} differ{} from it: \
                 drop {} or give another --out",
                differ.join(", "),
                if differ.len() == 1 { "s" } else { "" },
                if differ.len() == 1 { "it" } else { "them" }
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
    let loaded = super::data::load_for_training(&args.data, config.seed)?;
    // What was read and decided from a folder or a table (classes, size, task, split), before
    // a long run; Fashion-MNIST needs no introduction.
    if loaded.info.source != crate::data::SourceKind::Idx && root {
        eprintln!("{}", loaded.description);
    }
    let world = crate::distributed::world_size();
    if world > 1 && root {
        eprintln!(
            "{world} ranks, {} threads each; global batch {}{}",
            crate::runtime::threads::num_threads(),
            config.batch_size,
            if args.sync_bn {
                ", synchronized batch norm"
            } else {
                ""
            }
        );
    }
    if args.resume {
        check_same_data(&out, &loaded.info)?;
    }
    let opts = RunOptions {
        out: out.clone(),
        resume: args.resume,
        init: args.init.clone(),
        progress: !args.json,
        log_epochs: true,
        stop_after: None,
        eval_every: Some(args.eval_every_or_recipe()?),
        overwrite: args.overwrite,
        on_non_finite: args.on_nonfinite,
        sync_bn: args.sync_bn,
    };
    let s = train(&config, &loaded.data, &opts)?;
    if !root {
        return Ok(0);
    }
    if let Some(split) = &loaded.split {
        // Which rows trained and which tested, for another tool to use the same ones.
        let path = out.join("split.json");
        crate::checkpoint::write_atomic(&path, split.to_string().as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let file = out.join(crate::train::state::MODEL_FILE);
    let mut summary = json!({
        "model": s.model,
        "loss": s.loss,
        "epochs": s.epochs,
        "seconds": s.seconds,
        "images_per_second": s.images_per_second,
        "out": out.display().to_string(),
    });
    let quality = match (s.rmse, s.mae) {
        (Some(rmse), Some(mae)) => {
            summary["rmse"] = json!(rmse);
            summary["mae"] = json!(mae);
            format!(
                "test RMSE {rmse:.4}, MAE {mae:.4}, loss (MSE) {:.4}",
                s.loss
            )
        }
        _ => {
            summary["accuracy"] = json!(s.accuracy);
            format!(
                "test accuracy {:.2}%, loss {:.4}",
                100.0 * s.accuracy,
                s.loss
            )
        }
    };
    if args.json {
        println!("{summary}");
    } else {
        println!(
            "{}: {quality} after {} epochs, {:.1} s ({:.0} samples/s); weights in {}",
            s.model,
            s.epochs,
            s.seconds,
            s.images_per_second,
            file.display()
        );
    }
    Ok(0)
}

/// With `--resume`: the data read now must be what the saved run trained on (same input
/// shape, task and classes), else the checkpoint's weights and optimizer state mean nothing.
fn check_same_data(out: &std::path::Path, now: &crate::data::DataInfo) -> Result<()> {
    let path = out.join(crate::train::run::CHECKPOINT_FILE);
    let Ok(ck) = crate::checkpoint::Checkpoint::load(&path) else {
        return Ok(()); // The run's own checks report a missing or bad checkpoint.
    };
    let saved = crate::data::DataInfo::from_metadata(&ck.metadata, &path.display().to_string())?;
    if saved.input_shape != now.input_shape || saved.task != now.task {
        bail!(
            "--resume: {} was trained on data of input shape {:?} for {}, but --data gives \
             {:?} for {}; give the same --data and data flags as the first run",
            out.display(),
            saved.input_shape,
            describe_task(&saved.task),
            now.input_shape,
            describe_task(&now.task)
        );
    }
    Ok(())
}

/// `3 classes (a, b, c)` or `regression of price`.
fn describe_task(task: &crate::data::Task) -> String {
    match task {
        crate::data::Task::Classification { class_names } => {
            format!("{} classes ({})", class_names.len(), class_names.join(", "))
        }
        crate::data::Task::Regression { target } => format!("regression of {target}"),
    }
}

//! The hyper-parameters of an image training run: the per-model recipes (read from the
//! table of models), checks of every value, and their checkpoint-metadata form (`train.*`
//! keys) for `--resume`.

pub use super::choices::{check_schedule, DecayScope, OptimizerKind, RecipeKind, Warmup};
use super::evaluate::TestTimeAugment;
use crate::checkpoint::Metadata;
use crate::data::Augment;
use crate::optim::{Adam, AdamConfig, Optimizer, Schedule, Sgd, SgdConfig};
use crate::tensor::Tensor;
use anyhow::{bail, Context, Result};
use std::fmt;
use std::str::FromStr;

/// The most epochs a run may have.
pub const MAX_EPOCHS: usize = 100_000;
/// The largest batch: above it one batch of a zoo model needs more memory than a machine
/// has, and an absurd value must not reach an allocation.
pub const MAX_BATCH: usize = 65_536;

/// Everything that decides what a run computes (not where it writes).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// `mlp`, `lenet5` or `resnet20`.
    pub model: String,
    /// Passes over the training images.
    pub epochs: usize,
    /// Images per optimizer step.
    pub batch_size: usize,
    /// The peak learning rate (after warm-up, before decay).
    pub lr: f32,
    /// Which optimizer.
    pub optimizer: OptimizerKind,
    /// SGD momentum (ignored by Adam).
    pub momentum: f32,
    /// Nesterov momentum (SGD).
    pub nesterov: bool,
    /// The weight decay.
    pub weight_decay: f32,
    /// The parameters `weight_decay` applies to.
    pub decay: DecayScope,
    /// `constant`, `cosine`, `step:EPOCHS:GAMMA`, `exp:GAMMA` (per epoch), `onecycle[:PCT]`,
    /// `multistep:E1,E2,…:GAMMA` or `linear` (see [`crate::optim::Schedule::parse_decay`]).
    pub schedule: String,
    /// The linear learning-rate warm-up.
    pub warmup: Warmup,
    /// The data augmentation of training images.
    pub augment: Augment,
    /// Seeds the initial weights, the batch order and the augmentations.
    pub seed: u64,
    /// Train on the first N training images only.
    pub limit_train: Option<usize>,
    /// Clip the global gradient norm to this value.
    pub clip_grad: Option<f32>,
    /// The label smoothing of the training loss, in `[0, 1)` (PyTorch's `label_smoothing`;
    /// the test loss is the plain cross-entropy).
    pub label_smoothing: f32,
    /// The model's recipe the values started from (recorded, not used by the loop).
    pub recipe: RecipeKind,
    /// The test-time augmentation of the test-set evaluations (`flip`: the mean of the
    /// logits of each image and its mirror image).
    pub tta: TestTimeAugment,
}

impl TrainConfig {
    /// The default recipe of `model` (its row of [`crate::models::MODELS`]) for
    /// `optimizer`. Adam and AdamW start at lr 1e-3 without momentum; AdamW decays weights
    /// by 0.01 unless the model's recipe says more.
    pub fn recipe(model: &str, optimizer: OptimizerKind) -> Result<TrainConfig> {
        Self::recipe_of(model, RecipeKind::Spec, optimizer)
    }

    /// The recipe `kind` of `model` for `optimizer`, as [`TrainConfig::recipe`]; an error
    /// that names the models with one when `model` has no such recipe.
    pub fn recipe_of(
        model: &str,
        kind: RecipeKind,
        optimizer: OptimizerKind,
    ) -> Result<TrainConfig> {
        let r = Self::model_recipe(model, kind)?;
        let bad = |what: &str| format!("the {kind} recipe of {model}: {what}");
        let mut c = TrainConfig {
            model: model.to_string(),
            epochs: r.epochs,
            batch_size: r.batch_size,
            lr: r.lr,
            optimizer,
            momentum: r.momentum,
            nesterov: false,
            weight_decay: r.weight_decay,
            decay: r.decay.parse().with_context(|| bad("decay"))?,
            schedule: r.schedule.into(),
            warmup: Warmup::Epochs(r.warmup_epochs),
            augment: r.augment.parse().with_context(|| bad("augment"))?,
            seed: 0,
            limit_train: None,
            clip_grad: None,
            label_smoothing: r.label_smoothing,
            recipe: kind,
            tta: r.tta.parse().with_context(|| bad("tta"))?,
        };
        if optimizer != OptimizerKind::Sgd {
            c.lr = 1e-3;
            c.momentum = 0.0;
        }
        if optimizer == OptimizerKind::AdamW {
            c.weight_decay = c.weight_decay.max(0.01);
        }
        Ok(c)
    }

    /// The optimizer of `model`'s recipe when `--optimizer` is not given (AdamW for `vit`,
    /// the spec's Q4; SGD for the others); SGD for an unknown model (whose recipe is an
    /// error).
    pub fn default_optimizer(model: &str) -> OptimizerKind {
        Self::default_optimizer_of(model, RecipeKind::Spec)
    }

    /// The optimizer of `model`'s recipe `kind` when `--optimizer` is not given; SGD where
    /// the model or the recipe does not exist (whose recipe is an error).
    pub fn default_optimizer_of(model: &str, kind: RecipeKind) -> OptimizerKind {
        Self::model_recipe(model, kind)
            .ok()
            .and_then(|r| r.optimizer.parse().ok())
            .unwrap_or(OptimizerKind::Sgd)
    }

    /// The row of `model`'s recipe `kind` in [`crate::models::MODELS`].
    fn model_recipe(model: &str, kind: RecipeKind) -> Result<crate::models::Recipe> {
        let m = crate::models::image_model(model)?;
        match kind {
            RecipeKind::Spec => Ok(m.recipe),
            RecipeKind::Fast => m.fast.with_context(|| {
                let with: Vec<&str> = (crate::models::MODELS.iter())
                    .filter(|m| m.fast.is_some())
                    .map(|m| m.name)
                    .collect();
                format!(
                    "--recipe fast: {model} has no fast recipe yet; the models with one: {}",
                    with.join(", ")
                )
            }),
        }
    }

    /// Checks every value; the error names the flag.
    pub fn validate(&self) -> Result<()> {
        crate::models::image_model(&self.model)
            .map(drop)
            .context("--model")?;
        self.validate_settings()
    }

    /// Checks every value but the model's name (a model of one's own need not be in the
    /// zoo, see [`super::train_model`]); the error names the flag.
    pub fn validate_settings(&self) -> Result<()> {
        self.check_settings(&|key| format!("--{}", key.replace('_', "-")))
    }

    /// Checks every value; `name` turns a field name (`lr`, `batch_size`) into what the
    /// error calls it: the flag, or the file and its metadata key.
    fn check(&self, name: &dyn Fn(&str) -> String) -> Result<()> {
        crate::models::image_model(&self.model)
            .map(drop)
            .with_context(|| name("model"))?;
        self.check_settings(name)
    }

    /// [`Self::check`] without the model's name.
    fn check_settings(&self, name: &dyn Fn(&str) -> String) -> Result<()> {
        use crate::validate::{count, non_negative, positive};
        count(&name("epochs"), self.epochs, 1, MAX_EPOCHS)?;
        count(&name("batch_size"), self.batch_size, 1, MAX_BATCH)?;
        positive(&name("lr"), self.lr)?;
        if !(0.0..1.0).contains(&self.momentum) {
            bail!(
                "{} must lie in [0, 1), got {}",
                name("momentum"),
                self.momentum
            );
        }
        if self.optimizer != OptimizerKind::Sgd && self.momentum != 0.0 {
            bail!(
                "{} applies to sgd only; {} has its own betas",
                name("momentum"),
                self.optimizer
            );
        }
        if self.nesterov && (self.optimizer != OptimizerKind::Sgd || self.momentum == 0.0) {
            bail!(
                "{} needs {} sgd and a {} above 0",
                name("nesterov"),
                name("optimizer"),
                name("momentum")
            );
        }
        non_negative(&name("weight_decay"), self.weight_decay)?;
        if !(0.0..1.0).contains(&self.label_smoothing) {
            bail!(
                "{} must lie in [0, 1), got {}",
                name("label_smoothing"),
                self.label_smoothing
            );
        }
        if let Some(c) = self.clip_grad {
            positive(&name("clip_grad"), c)?;
        }
        if self.limit_train == Some(0) {
            bail!("{} must be at least 1", name("limit_train"));
        }
        if let Warmup::Epochs(e) = self.warmup {
            if !(e.is_finite() && e >= 0.0) {
                bail!("{} must be 0 or more epochs, got {e}", name("warmup"));
            }
            if e > self.epochs as f32 {
                bail!(
                    "{} {e} (epochs) is longer than the run of {} {}; give at most {}",
                    name("warmup"),
                    name("epochs"),
                    self.epochs,
                    self.epochs
                );
            }
        }
        check_schedule(&self.schedule, &name("schedule"))
    }

    /// Checks what depends on the data: the warm-up in steps fits in the run of epochs of
    /// `steps_per_epoch` steps. (The crop padding is checked by [`Augment::check_image`].)
    pub fn check_against_data(&self, steps_per_epoch: usize) -> Result<()> {
        let total = self.epochs.saturating_mul(steps_per_epoch);
        if let Warmup::Steps(s) = self.warmup {
            if s > total {
                bail!(
                    "--warmup {s}steps is longer than the run ({} epochs of {steps_per_epoch} \
                     steps = {total} steps); give at most {total}steps",
                    self.epochs
                );
            }
        }
        Ok(())
    }

    /// The learning-rate schedule for epochs of `steps_per_epoch` optimizer steps.
    pub fn schedule(&self, steps_per_epoch: usize) -> Result<Schedule> {
        let decay = Schedule::parse_decay(&self.schedule, steps_per_epoch)?;
        Ok(Schedule::new(
            self.lr,
            decay,
            self.warmup.steps(steps_per_epoch),
            self.epochs * steps_per_epoch,
        ))
    }

    /// A fresh optimizer of this configuration for `params` (a model's
    /// `named_parameters()`), its schedule attached for epochs of `steps_per_epoch` steps.
    pub fn build_optimizer(
        &self,
        params: Vec<(String, Tensor)>,
        steps_per_epoch: usize,
    ) -> Result<Box<dyn Optimizer>> {
        let decays = |name: &str, shape: &[usize]| self.decay.decays(name, shape);
        let schedule = self.schedule(steps_per_epoch)?;
        Ok(match self.optimizer {
            OptimizerKind::Sgd => Box::new(
                Sgd::new(
                    params,
                    SgdConfig {
                        lr: self.lr,
                        momentum: self.momentum,
                        dampening: 0.0,
                        weight_decay: self.weight_decay,
                        nesterov: self.nesterov,
                    },
                )
                .with_decay_mask(decays)
                .with_schedule(schedule),
            ),
            OptimizerKind::Adam | OptimizerKind::AdamW => {
                let defaults = if self.optimizer == OptimizerKind::Adam {
                    AdamConfig::adam(self.lr)
                } else {
                    AdamConfig::adamw(self.lr)
                };
                let config = AdamConfig {
                    weight_decay: self.weight_decay,
                    ..defaults
                };
                Box::new(
                    Adam::new(params, config)
                        .with_decay_mask(decays)
                        .with_schedule(schedule),
                )
            }
        })
    }

    /// The configuration as `train.*` metadata entries.
    pub fn to_metadata(&self) -> Vec<(String, String)> {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "none".into());
        [
            ("model", self.model.clone()),
            ("epochs", self.epochs.to_string()),
            ("batch_size", self.batch_size.to_string()),
            ("lr", self.lr.to_string()),
            ("optimizer", self.optimizer.to_string()),
            ("momentum", self.momentum.to_string()),
            ("nesterov", self.nesterov.to_string()),
            ("weight_decay", self.weight_decay.to_string()),
            ("decay", self.decay.to_string()),
            ("schedule", self.schedule.clone()),
            ("warmup", self.warmup.to_string()),
            ("augment", self.augment.to_string()),
            ("seed", self.seed.to_string()),
            ("limit_train", opt(self.limit_train.map(|v| v.to_string()))),
            ("clip_grad", opt(self.clip_grad.map(|v| v.to_string()))),
            ("label_smoothing", self.label_smoothing.to_string()),
            ("recipe", self.recipe.to_string()),
            ("tta", self.tta.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (format!("train.{k}"), v))
        .collect()
    }

    /// Reads back what [`TrainConfig::to_metadata`] wrote; `source` names the file in errors.
    pub fn from_metadata(meta: &Metadata, source: &str) -> Result<TrainConfig> {
        fn get<T: FromStr>(meta: &Metadata, key: &str, source: &str) -> Result<T>
        where
            T::Err: fmt::Display,
        {
            let v = meta.get(&format!("train.{key}")).with_context(|| {
                format!("{source} holds no train.{key}: it was not written by `neurite train`")
            })?;
            v.parse::<T>()
                .map_err(|e| anyhow::anyhow!("{source}: train.{key} = {v:?}: {e}"))
        }
        fn opt<T: FromStr>(m: &Metadata, k: &str, s: &str) -> Result<Option<T>>
        where
            T::Err: fmt::Display,
        {
            let v: String = get(m, k, s)?;
            if v == "none" {
                Ok(None)
            } else {
                get(m, k, s).map(Some)
            }
        }
        let c = TrainConfig {
            model: get(meta, "model", source)?,
            epochs: get(meta, "epochs", source)?,
            batch_size: get(meta, "batch_size", source)?,
            lr: get(meta, "lr", source)?,
            optimizer: get(meta, "optimizer", source)?,
            momentum: get(meta, "momentum", source)?,
            nesterov: get(meta, "nesterov", source)?,
            weight_decay: get(meta, "weight_decay", source)?,
            // Checkpoints of earlier versions decayed every parameter.
            decay: match meta.get("train.decay") {
                Some(_) => get(meta, "decay", source)?,
                None => DecayScope::All,
            },
            schedule: get(meta, "schedule", source)?,
            warmup: get(meta, "warmup", source)?,
            augment: get(meta, "augment", source)?,
            seed: get(meta, "seed", source)?,
            limit_train: opt(meta, "limit_train", source)?,
            clip_grad: opt(meta, "clip_grad", source)?,
            // Checkpoints of earlier versions trained without smoothing, from the spec's
            // recipe.
            label_smoothing: match meta.get("train.label_smoothing") {
                Some(_) => get(meta, "label_smoothing", source)?,
                None => 0.0,
            },
            recipe: match meta.get("train.recipe") {
                Some(_) => get(meta, "recipe", source)?,
                None => RecipeKind::Spec,
            },
            // Checkpoints of earlier versions evaluated each image once.
            tta: match meta.get("train.tta") {
                Some(_) => get(meta, "tta", source)?,
                None => TestTimeAugment::None,
            },
        };
        c.check(&|key| format!("{source}: metadata train.{key}"))?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipes_follow_the_spec() {
        let r = TrainConfig::recipe("resnet20", OptimizerKind::Sgd).unwrap();
        assert_eq!((r.epochs, r.lr, r.weight_decay), (30, 0.1, 5e-4));
        assert_eq!(r.augment, Augment::crop_flip());
        let m = TrainConfig::recipe("mlp", OptimizerKind::Sgd).unwrap();
        assert_eq!(
            (m.epochs, m.lr, m.momentum, m.batch_size),
            (20, 0.05, 0.9, 128)
        );
        let v = TrainConfig::recipe("vit", TrainConfig::default_optimizer("vit")).unwrap();
        assert_eq!(v.optimizer, OptimizerKind::AdamW);
        assert_eq!((v.epochs, v.lr, v.weight_decay), (30, 1e-3, 0.05));
        assert_eq!(v.warmup, Warmup::Epochs(1.0));
        let a = TrainConfig::recipe("mlp", OptimizerKind::AdamW).unwrap();
        assert_eq!((a.lr, a.momentum, a.weight_decay), (1e-3, 0.0, 0.01));
        a.validate().unwrap();
        assert!(TrainConfig::recipe("vgg", OptimizerKind::Sgd).is_err());
        for k in OptimizerKind::ALL {
            assert_eq!(
                k.to_string()
                    .to_uppercase()
                    .parse::<OptimizerKind>()
                    .unwrap(),
                k
            );
        }
        let e = "lion".parse::<OptimizerKind>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown optimizer 'lion'; choose one of: sgd, adam, adamw"
        );
        // Every row of the table parses, and `vit` with SGD keeps the base learning rate.
        for m in crate::models::MODELS {
            TrainConfig::recipe(m.name, TrainConfig::default_optimizer(m.name))
                .unwrap()
                .validate()
                .unwrap();
        }
        let l = TrainConfig::recipe("lenet5", OptimizerKind::Sgd).unwrap();
        assert_eq!((l.epochs, l.lr, l.weight_decay), (20, 0.05, 5e-4));
        assert_eq!(l.augment, "flip".parse::<Augment>().unwrap());
        assert_eq!(m.augment, Augment::none());
        let vs = TrainConfig::recipe("vit", OptimizerKind::Sgd).unwrap();
        assert_eq!((vs.lr, vs.momentum, vs.weight_decay), (0.05, 0.9, 0.05));
        assert_eq!(vs.decay, DecayScope::Matrices);
    }

    #[test]
    fn validation_names_the_flag() {
        let base = TrainConfig::recipe("mlp", OptimizerKind::Sgd).unwrap();
        let err = |c: TrainConfig| c.validate().unwrap_err().to_string();
        assert!(err(TrainConfig {
            lr: -0.1,
            ..base.clone()
        })
        .contains("--lr"));
        assert!(err(TrainConfig {
            lr: 0.0,
            ..base.clone()
        })
        .contains("--lr"));
        assert!(err(TrainConfig {
            batch_size: 0,
            ..base.clone()
        })
        .contains("--batch-size"));
        assert!(err(TrainConfig {
            epochs: 0,
            ..base.clone()
        })
        .contains("--epochs"));
        assert!(err(TrainConfig {
            momentum: 1.0,
            ..base.clone()
        })
        .contains("--momentum"));
        let bad_schedule = TrainConfig {
            schedule: "zigzag".into(),
            ..base.clone()
        };
        assert!(err(bad_schedule).contains("unknown schedule"));
    }

    #[test]
    fn metadata_values_are_checked_naming_the_file_and_key() {
        let c = TrainConfig::recipe("mlp", OptimizerKind::Sgd).unwrap();
        let mut meta: Metadata = c.to_metadata().into_iter().collect();
        meta.insert("train.lr".into(), "0".into());
        let e = TrainConfig::from_metadata(&meta, "run/checkpoint.safetensors")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "run/checkpoint.safetensors: metadata train.lr must be a finite number above 0, got 0"
        );
        meta.insert("train.lr".into(), "0.1".into());
        meta.insert("train.batch_size".into(), "0".into());
        let e = TrainConfig::from_metadata(&meta, "ck")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ck: metadata train.batch_size must be at least 1"),
            "{e}"
        );
    }

    #[test]
    fn limits_and_warmup_fit_the_run() {
        let base = TrainConfig::recipe("mlp", OptimizerKind::Sgd).unwrap();
        let err = |c: TrainConfig| c.validate().unwrap_err().to_string();
        assert!(err(TrainConfig {
            batch_size: MAX_BATCH + 1,
            ..base.clone()
        })
        .contains("--batch-size must be at most 65536"));
        assert!(err(TrainConfig {
            epochs: usize::MAX,
            ..base.clone()
        })
        .contains("--epochs must be at most"));
        assert!(err(TrainConfig {
            warmup: Warmup::Epochs(21.0),
            ..base.clone()
        })
        .contains("--warmup 21 (epochs) is longer than the run"));
        let steps = TrainConfig {
            warmup: Warmup::Steps(101),
            epochs: 2,
            ..base.clone()
        };
        steps.validate().unwrap();
        assert!(steps.check_against_data(50).is_err());
        steps.check_against_data(51).unwrap();
    }

    #[test]
    fn fast_recipes_come_from_the_table_and_others_are_named() {
        for (name, fast) in [
            ("mlp", crate::models::MLP_FAST),
            ("lenet5", crate::models::LENET5_FAST),
            ("resnet20", crate::models::RESNET20_FAST),
            ("vit", crate::models::VIT_FAST),
        ] {
            let optimizer = TrainConfig::default_optimizer_of(name, RecipeKind::Fast);
            let c = TrainConfig::recipe_of(name, RecipeKind::Fast, optimizer).unwrap();
            assert_eq!(c.recipe, RecipeKind::Fast);
            // AdamW's rate is its own default, 1e-3, whatever the table's `lr`.
            let lr = if optimizer == OptimizerKind::Sgd {
                fast.lr
            } else {
                1e-3
            };
            assert_eq!(
                (c.epochs, c.batch_size, c.lr, c.label_smoothing),
                (fast.epochs, fast.batch_size, lr, fast.label_smoothing)
            );
            assert_eq!(c.schedule, fast.schedule);
            assert_eq!(c.warmup, Warmup::Epochs(fast.warmup_epochs));
            assert_eq!(c.augment, fast.augment.parse::<Augment>().unwrap());
            assert_eq!(c.tta, fast.tta.parse::<TestTimeAugment>().unwrap());
            assert!(c.label_smoothing > 0.0);
            c.validate().unwrap();
            let spec = TrainConfig::recipe(name, optimizer).unwrap();
            assert_eq!((spec.recipe, spec.label_smoothing), (RecipeKind::Spec, 0.0));
            assert_eq!(spec.tta, TestTimeAugment::None);
            assert!(c.epochs <= spec.epochs);
        }
        let e = TrainConfig::recipe_of("lenet7", RecipeKind::Fast, OptimizerKind::Sgd)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lenet7"), "{e}");
        let e = "slow".parse::<RecipeKind>().unwrap_err().to_string();
        assert_eq!(e, "unknown recipe 'slow'; choose one of: spec, fast");
        assert_eq!(
            TrainConfig::default_optimizer_of("lenet5", RecipeKind::Fast),
            OptimizerKind::Sgd
        );
    }

    #[test]
    fn label_smoothing_is_checked_and_kept_in_metadata() {
        let base = TrainConfig::recipe("mlp", OptimizerKind::Sgd).unwrap();
        for bad in [1.0, -0.1, f32::NAN, 1.5] {
            let c = TrainConfig {
                label_smoothing: bad,
                ..base.clone()
            };
            let e = c.validate().unwrap_err().to_string();
            assert_eq!(
                e,
                format!("--label-smoothing must lie in [0, 1), got {bad}")
            );
        }
        let c = TrainConfig {
            label_smoothing: 0.15,
            recipe: RecipeKind::Fast,
            ..base
        };
        let mut meta: Metadata = c.to_metadata().into_iter().collect();
        assert_eq!(meta["train.label_smoothing"], "0.15");
        assert_eq!(meta["train.recipe"], "fast");
        assert_eq!(TrainConfig::from_metadata(&meta, "x").unwrap(), c);
        meta.insert("train.label_smoothing".into(), "1".into());
        let e = TrainConfig::from_metadata(&meta, "ck")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "ck: metadata train.label_smoothing must lie in [0, 1), got 1"
        );
        // Checkpoints from before these keys trained the spec's recipe without smoothing.
        meta.remove("train.label_smoothing");
        meta.remove("train.recipe");
        let old = TrainConfig::from_metadata(&meta, "x").unwrap();
        assert_eq!((old.label_smoothing, old.recipe), (0.0, RecipeKind::Spec));
    }

    #[test]
    fn metadata_round_trip() {
        let c = TrainConfig {
            limit_train: Some(500),
            clip_grad: Some(1.5),
            warmup: Warmup::Steps(30),
            schedule: "step:5:0.5".into(),
            decay: DecayScope::Matrices,
            ..TrainConfig::recipe("lenet5", OptimizerKind::Sgd).unwrap()
        };
        let mut meta: Metadata = c.to_metadata().into_iter().collect();
        assert_eq!(TrainConfig::from_metadata(&meta, "x").unwrap(), c);
        // Checkpoints from before `train.decay` existed decayed every parameter.
        meta.remove("train.decay");
        let old = TrainConfig::from_metadata(&meta, "x").unwrap();
        assert_eq!(old.decay, DecayScope::All);
        let err = TrainConfig::from_metadata(&Metadata::new(), "ck.safetensors").unwrap_err();
        assert!(err.to_string().contains("ck.safetensors"));
    }
}

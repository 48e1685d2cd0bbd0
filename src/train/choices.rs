//! The named choices of a training run: the recipe, the optimizer, the parameters weight
//! decay applies to, the warm-up's length, and the learning-rate schedule's text.

use crate::optim::{Schedule, SCHEDULE_CHOICES};
use anyhow::{bail, Context, Result};
use std::fmt;
use std::str::FromStr;

/// Which of a model's recipes a run starts from (`--recipe`): the spec's (the default), or
/// the fast one that reaches a target test accuracy soonest in wall time (issue 24; the
/// models that have one carry it in their row of [`crate::models::MODELS`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecipeKind {
    /// The spec's recipe (the quality workloads Q1-Q4), with neurite's documented changes.
    #[default]
    Spec,
    /// The model's time-to-accuracy recipe: fewer epochs, label smoothing, a one-cycle or
    /// linear schedule.
    Fast,
}

impl RecipeKind {
    /// Every recipe, in the order help texts and errors list them.
    pub const ALL: [RecipeKind; 2] = [RecipeKind::Spec, RecipeKind::Fast];
}

impl FromStr for RecipeKind {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match RecipeKind::ALL.into_iter().find(|k| k.to_string() == s) {
            Some(k) => Ok(k),
            None => bail!("unknown recipe '{s}'; choose one of: spec, fast"),
        }
    }
}

impl fmt::Display for RecipeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecipeKind::Spec => "spec",
            RecipeKind::Fast => "fast",
        })
    }
}

/// The optimizer of a run. A new one is a variant here, its name in `Display`, its
/// construction in [`crate::train::TrainConfig::build_optimizer`] and its file in
/// `src/optim/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    /// SGD with momentum (the spec's recipes).
    Sgd,
    /// Adam with L2 weight decay.
    Adam,
    /// AdamW (decoupled weight decay).
    AdamW,
}

impl OptimizerKind {
    /// Every optimizer, in the order help texts and errors list them.
    pub const ALL: [OptimizerKind; 3] = [
        OptimizerKind::Sgd,
        OptimizerKind::Adam,
        OptimizerKind::AdamW,
    ];
}

impl FromStr for OptimizerKind {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let name = s.to_ascii_lowercase();
        match OptimizerKind::ALL
            .into_iter()
            .find(|k| k.to_string() == name)
        {
            Some(k) => Ok(k),
            None => {
                let all: Vec<String> = OptimizerKind::ALL.iter().map(|k| k.to_string()).collect();
                bail!("unknown optimizer '{s}'; choose one of: {}", all.join(", "))
            }
        }
    }
}

impl fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
        })
    }
}

/// Which parameters weight decay applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecayScope {
    /// Every parameter (PyTorch's optimizer over `model.parameters()`).
    All,
    /// Weights of two or more dimensions, except a class token and a position embedding:
    /// no decay of biases, norm gains and shifts (nanoGPT's and timm's two parameter groups).
    Matrices,
}

impl DecayScope {
    /// Whether the parameter `name` of `shape` is decayed.
    pub fn decays(self, name: &str, shape: &[usize]) -> bool {
        let leaf = name.rsplit('.').next().unwrap_or(name);
        match self {
            DecayScope::All => true,
            DecayScope::Matrices => shape.len() >= 2 && !matches!(leaf, "cls_token" | "pos_embed"),
        }
    }
}

impl FromStr for DecayScope {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "all" => DecayScope::All,
            "matrices" => DecayScope::Matrices,
            _ => bail!("unknown weight-decay scope '{s}'; choose one of: all, matrices"),
        })
    }
}

impl fmt::Display for DecayScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecayScope::All => "all",
            DecayScope::Matrices => "matrices",
        })
    }
}

/// The length of the linear learning-rate warm-up: a number of epochs (`2`, `0.5`) or of
/// optimizer steps (`500steps`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Warmup {
    /// A number of epochs (may be fractional).
    Epochs(f32),
    /// A number of optimizer steps.
    Steps(usize),
}

impl Warmup {
    /// The warm-up in optimizer steps, for epochs of `steps_per_epoch` steps.
    pub fn steps(&self, steps_per_epoch: usize) -> usize {
        match *self {
            Warmup::Epochs(e) => (e * steps_per_epoch as f32).round() as usize,
            Warmup::Steps(s) => s,
        }
    }
}

impl FromStr for Warmup {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        let bad =
            || format!("--warmup '{s}': give epochs (e.g. 2 or 0.5) or steps (e.g. 500steps)");
        if let Some(n) = t.strip_suffix("steps").or_else(|| t.strip_suffix("step")) {
            return Ok(Warmup::Steps(n.trim().parse().with_context(bad)?));
        }
        let e: f32 = t.parse().with_context(bad)?;
        if !e.is_finite() || e < 0.0 {
            bail!("{}", bad());
        }
        Ok(Warmup::Epochs(e))
    }
}

impl fmt::Display for Warmup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warmup::Epochs(e) => write!(f, "{e}"),
            Warmup::Steps(s) => write!(f, "{s}steps"),
        }
    }
}

/// Checks a learning-rate schedule text (`constant`, `cosine`, `step`, `step:EPOCHS:GAMMA`
/// with a whole number of epochs of at least 1, `exp:GAMMA`, `onecycle`, `onecycle:PCT`
/// with PCT in (0, 1), `multistep:E1,E2,…:GAMMA` with increasing whole epochs of at least 1,
/// `linear`), every factor a finite number above 0 (below 1 decays; PyTorch's `StepLR` and
/// `ExponentialLR` allow growth too); `name` is what the error calls it (`--schedule`, or a
/// file's metadata key).
pub fn check_schedule(text: &str, name: &str) -> Result<()> {
    let usage = format!("use {SCHEDULE_CHOICES}");
    let factor = |g: &str| -> Result<()> {
        match g.parse::<f32>() {
            Ok(v) if v.is_finite() && v > 0.0 => Ok(()),
            _ => bail!(
                "{name} {text:?}: the factor {g:?} must be a finite number above 0 (below 1 \
                 decays); {usage}"
            ),
        }
    };
    let epochs = |e: &str| e.trim().parse::<usize>().ok().filter(|&e| e >= 1);
    match text.split(':').collect::<Vec<_>>().as_slice() {
        ["constant"] | ["cosine"] | ["step"] | ["onecycle"] | ["linear"] => {}
        ["step", every, gamma] => {
            if epochs(every).is_none() || every.trim() != *every {
                bail!(
                    "{name} {text:?}: the period {every:?} must be a whole number of epochs, at \
                     least 1; {usage}"
                );
            }
            factor(gamma)?;
        }
        ["exp", gamma] | ["exponential", gamma] => factor(gamma)?,
        ["onecycle", pct] => {
            if !pct.parse::<f32>().is_ok_and(|p| p > 0.0 && p < 1.0) {
                bail!(
                    "{name} {text:?}: the warm-up fraction {pct:?} must lie between 0 and 1 \
                     (PyTorch's pct_start, e.g. 0.3); {usage}"
                );
            }
        }
        ["multistep", list, gamma] => {
            let milestones: Option<Vec<usize>> = list.split(',').map(epochs).collect();
            match milestones {
                Some(m) if m.windows(2).all(|w| w[0] < w[1]) => {}
                _ => bail!(
                    "{name} {text:?}: the milestones {list:?} must be increasing whole numbers \
                     of epochs, at least 1, separated by commas; {usage}"
                ),
            }
            factor(gamma)?;
        }
        _ => bail!("{name}: unknown schedule {text:?}; {usage}"),
    }
    Schedule::parse_decay(text, 1).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_checked() {
        for good in [
            "constant",
            "cosine",
            "step",
            "step:10:0.1",
            "exp:0.95",
            "exp:1",
            "onecycle",
            "onecycle:0.25",
            "multistep:2,5:0.1",
            "multistep:3:0.5",
            "linear",
        ] {
            check_schedule(good, "--schedule").unwrap();
        }
        let err = |t: &str| check_schedule(t, "--schedule").unwrap_err().to_string();
        assert!(err("step:-1:2").contains("the period \"-1\""));
        assert!(err("step:0:0.5").contains("period"));
        assert!(err("step:1.5:0.5").contains("period"));
        assert!(err("step:2:-2").contains("the factor \"-2\" must be a finite number above 0"));
        check_schedule("step:2:2", "--schedule").unwrap();
        assert!(err("exp:NaN").contains("factor"));
        assert!(err("exp:0").contains("factor"));
        assert!(err("step:2").contains("unknown schedule"));
        assert!(err("onecycle:1.5").contains("the warm-up fraction \"1.5\""));
        assert!(err("multistep:5,2:0.1").contains("must be increasing"));
        assert!(err("multistep:0:0.1").contains("must be increasing"));
        assert!(err("multistep:2,x:0.1").contains("milestones"));
        assert!(err("multistep:2:0").contains("factor"));
        assert!(err("linear:2").contains("multistep:10,15:0.1"));
    }

    #[test]
    fn matrices_scope_exempts_biases_norms_class_token_and_positions() {
        use crate::nn::ModuleExt;
        let vit = crate::models::build("vit", &crate::models::MNIST_INPUT, 10).unwrap();
        let decayed: Vec<String> = vit
            .named_parameters()
            .into_iter()
            .filter(|(n, p)| DecayScope::Matrices.decays(n, p.shape()))
            .map(|(n, _)| n)
            .collect();
        // Per block: c_attn, attn.c_proj, c_fc, mlp.c_proj weights; plus patch_embed and head.
        assert_eq!(decayed.len(), 6 * 4 + 2, "{decayed:?}");
        assert!(decayed.contains(&"patch_embed.weight".to_string()));
        assert!(decayed.contains(&"blocks.5.mlp.c_fc.weight".to_string()));
        assert!(decayed.contains(&"head.weight".to_string()));
        for kept in [
            "cls_token",
            "pos_embed",
            "head.bias",
            "blocks.0.ln_1.weight",
        ] {
            assert!(!decayed.iter().any(|n| n == kept), "{kept} is decayed");
        }
        assert!(DecayScope::All.decays("pos_embed", &[1, 50, 64]));
        assert!(DecayScope::All.decays("head.bias", &[10]));
        assert_eq!(
            "matrices".parse::<DecayScope>().unwrap(),
            DecayScope::Matrices
        );
        assert!("some".parse::<DecayScope>().is_err());
    }

    #[test]
    fn warmup_parses_epochs_and_steps() {
        assert_eq!("2".parse::<Warmup>().unwrap().steps(10), 20);
        assert_eq!("0.5".parse::<Warmup>().unwrap().steps(10), 5);
        assert_eq!("500steps".parse::<Warmup>().unwrap().steps(10), 500);
        assert!("-1".parse::<Warmup>().is_err());
        assert!("abc".parse::<Warmup>().is_err());
    }
}

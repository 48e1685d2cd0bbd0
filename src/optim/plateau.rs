//! `ReduceLROnPlateau`: lower the rate when a metric has stopped improving.

use super::LrScheduler;
use anyhow::{bail, Result};

/// Whether a smaller or a larger metric is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlateauMode {
    /// A loss: lower is better.
    Min,
    /// An accuracy: higher is better.
    Max,
}

/// How `threshold` compares a metric with the best so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThresholdMode {
    /// Better by a fraction of the best (`best · (1 ∓ threshold)`).
    Rel,
    /// Better by an amount (`best ∓ threshold`).
    Abs,
}

/// The settings of [`ReduceOnPlateau`], PyTorch's defaults in `Default`.
#[derive(Clone, Debug, PartialEq)]
pub struct PlateauConfig {
    /// Whether the metric should go down (`Min`, a loss) or up (`Max`, an accuracy).
    pub mode: PlateauMode,
    /// The rate is multiplied by this on a plateau.
    pub factor: f32,
    /// Metrics without improvement tolerated before the rate drops.
    pub patience: usize,
    /// The least change that counts as an improvement.
    pub threshold: f32,
    /// Whether `threshold` is relative to the best metric or absolute.
    pub threshold_mode: ThresholdMode,
    /// Metrics to wait after a drop before counting again.
    pub cooldown: usize,
    /// The rate never drops below this.
    pub min_lr: f32,
    /// A drop smaller than this is not made.
    pub eps: f32,
}

impl Default for PlateauConfig {
    fn default() -> Self {
        PlateauConfig {
            mode: PlateauMode::Min,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
        }
    }
}

/// PyTorch's `ReduceLROnPlateau`, stepped with a metric ([`LrScheduler::step_metric`],
/// or `opt.step_metric(val_loss)` on the optimizer it is attached to) once per evaluation;
/// optimizer steps leave it alone.
///
/// ```
/// use neurite::optim::{LrScheduler, PlateauConfig, ReduceOnPlateau};
///
/// let mut s = ReduceOnPlateau::new(0.1, PlateauConfig { patience: 1, factor: 0.5, ..Default::default() });
/// for loss in [1.0, 0.9, 0.95, 0.93] {
///     s.step_metric(loss);
/// }
/// // Two metrics in a row no better than 0.9: more than the patience of 1.
/// assert_eq!(s.last_lr(), 0.05);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ReduceOnPlateau {
    /// The settings it was built with.
    pub config: PlateauConfig,
    lr: f32,
    best: f32,
    num_bad_epochs: usize,
    cooldown_counter: usize,
    last_epoch: usize,
}

impl ReduceOnPlateau {
    /// Starts at rate `lr`.
    pub fn new(lr: f32, config: PlateauConfig) -> ReduceOnPlateau {
        assert!(
            config.factor < 1.0 && config.factor > 0.0,
            "ReduceOnPlateau: factor {} must lie in (0, 1)",
            config.factor
        );
        let best = match config.mode {
            PlateauMode::Min => f32::INFINITY,
            PlateauMode::Max => f32::NEG_INFINITY,
        };
        ReduceOnPlateau {
            config,
            lr,
            best,
            num_bad_epochs: 0,
            cooldown_counter: 0,
            last_epoch: 0,
        }
    }

    fn is_better(&self, a: f32) -> bool {
        let (t, best) = (self.config.threshold, self.best);
        match (self.config.mode, self.config.threshold_mode) {
            (PlateauMode::Min, ThresholdMode::Rel) => a < best * (1.0 - t),
            (PlateauMode::Min, ThresholdMode::Abs) => a < best - t,
            (PlateauMode::Max, ThresholdMode::Rel) => a > best * (1.0 + t),
            (PlateauMode::Max, ThresholdMode::Abs) => a > best + t,
        }
    }
}

impl LrScheduler for ReduceOnPlateau {
    fn last_lr(&self) -> f32 {
        self.lr
    }

    /// An optimizer step changes nothing.
    fn step(&mut self) {}

    fn step_metric(&mut self, metric: f32) {
        self.last_epoch += 1;
        if self.is_better(metric) {
            self.best = metric;
            self.num_bad_epochs = 0;
        } else {
            self.num_bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad_epochs = 0;
        }
        if self.num_bad_epochs > self.config.patience {
            let new = (self.lr * self.config.factor).max(self.config.min_lr);
            if self.lr - new > self.config.eps {
                self.lr = new;
            }
            self.cooldown_counter = self.config.cooldown;
            self.num_bad_epochs = 0;
        }
    }

    fn state(&self) -> Vec<(String, f32)> {
        vec![
            ("lr".into(), self.lr),
            ("best".into(), self.best),
            ("num_bad_epochs".into(), self.num_bad_epochs as f32),
            ("cooldown_counter".into(), self.cooldown_counter as f32),
            ("last_epoch".into(), self.last_epoch as f32),
        ]
    }

    fn load_state(&mut self, state: &[(String, f32)]) -> Result<()> {
        let mut fresh = self.clone();
        let mut seen = 0;
        for (name, v) in state {
            let count = || -> Result<usize> {
                if v.is_finite() && *v >= 0.0 && v.fract() == 0.0 {
                    Ok(*v as usize)
                } else {
                    bail!("the plateau schedule's saved {name} {v} is not a count")
                }
            };
            match name.as_str() {
                "lr" => fresh.lr = *v,
                "best" => fresh.best = *v,
                "num_bad_epochs" => fresh.num_bad_epochs = count()?,
                "cooldown_counter" => fresh.cooldown_counter = count()?,
                "last_epoch" => fresh.last_epoch = count()?,
                _ => bail!(
                    "the saved schedule state holds '{name}': it was written by another kind of schedule than ReduceOnPlateau; attach the same schedule before loading"
                ),
            }
            seen += 1;
        }
        if seen != 5 {
            bail!("the saved ReduceOnPlateau state is incomplete ({seen} of 5 values): attach the same schedule before loading");
        }
        *self = fresh;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cooldown_waits_and_min_lr_holds() {
        let config = PlateauConfig {
            factor: 0.5,
            patience: 0,
            cooldown: 1,
            min_lr: 0.3,
            ..Default::default()
        };
        let mut s = ReduceOnPlateau::new(1.0, config);
        let mut lrs = Vec::new();
        for m in [1.0, 1.0, 1.0, 1.0, 1.0, 1.0] {
            s.step_metric(m);
            lrs.push(s.last_lr());
        }
        // Drop, wait one, drop (to the floor 0.3, not 0.25), wait, then no smaller drop.
        assert_eq!(lrs, [1.0, 0.5, 0.5, 0.3, 0.3, 0.3]);
        let mut again = ReduceOnPlateau::new(1.0, s.config.clone());
        again.load_state(&s.state()).unwrap();
        assert_eq!(again, s);
        assert!(again.load_state(&[("x".into(), 1.0)]).is_err());
    }
}

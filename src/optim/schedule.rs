//! Learning-rate schedules as plain values: the rate is a function of the step.
//!
//! Schedules count optimizer steps. `Step` and `Exponential` decay once per `every` steps
//! (pass the steps per epoch to decay per epoch, as PyTorch's `StepLR` and `ExponentialLR`
//! do when stepped each epoch). A linear warm-up can precede any of them.

use anyhow::{bail, Context};

/// The decay rule after warm-up.
#[derive(Clone, Debug, PartialEq)]
pub enum Decay {
    Constant,
    /// Multiply by `gamma` every `every` steps.
    Step {
        every: usize,
        gamma: f32,
    },
    /// Multiply by `gamma` every `every` steps, continuously compounded per period.
    Exponential {
        every: usize,
        gamma: f32,
    },
    /// Cosine annealing from the base rate to `min_lr` over the steps after warm-up.
    Cosine {
        min_lr: f32,
    },
}

/// A learning-rate schedule over `total` steps.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub base_lr: f32,
    pub decay: Decay,
    /// Steps of linear warm-up from `base_lr / warmup` to `base_lr`.
    pub warmup: usize,
    pub total: usize,
}

impl Schedule {
    pub fn new(base_lr: f32, decay: Decay, warmup: usize, total: usize) -> Schedule {
        Schedule {
            base_lr,
            decay,
            warmup,
            total,
        }
    }

    /// The rate of step `step` (counted from 0).
    pub fn lr_at(&self, step: usize) -> f32 {
        if step < self.warmup {
            return self.base_lr * (step + 1) as f32 / self.warmup as f32;
        }
        let s = step - self.warmup;
        match self.decay {
            Decay::Constant => self.base_lr,
            Decay::Step { every, gamma } | Decay::Exponential { every, gamma } => {
                self.base_lr * gamma.powi((s / every.max(1)) as i32)
            }
            Decay::Cosine { min_lr } => {
                let span = self.total.saturating_sub(self.warmup).max(1) as f32;
                let t = (s as f32 / span).min(1.0);
                min_lr + 0.5 * (self.base_lr - min_lr) * (1.0 + (std::f32::consts::PI * t).cos())
            }
        }
    }

    /// Parses a schedule name as the command line gives it: `constant`, `cosine`,
    /// `step:EVERY:GAMMA` or `exp:GAMMA` (`EVERY` in steps; `steps_per_epoch` is the default
    /// period).
    pub fn parse_decay(text: &str, steps_per_epoch: usize) -> anyhow::Result<Decay> {
        let parts: Vec<&str> = text.split(':').collect();
        let num = |s: &str, what: &str| -> anyhow::Result<f32> {
            s.parse::<f32>()
                .with_context(|| format!("schedule '{text}': {what} '{s}' is not a number"))
        };
        Ok(match parts.as_slice() {
            ["constant"] => Decay::Constant,
            ["cosine"] => Decay::Cosine { min_lr: 0.0 },
            ["step"] => Decay::Step { every: 10 * steps_per_epoch, gamma: 0.1 },
            ["step", every, gamma] => Decay::Step {
                every: num(every, "period")? as usize * steps_per_epoch,
                gamma: num(gamma, "factor")?,
            },
            ["exp", gamma] | ["exponential", gamma] => {
                Decay::Exponential { every: steps_per_epoch, gamma: num(gamma, "factor")? }
            }
            _ => bail!(
                "unknown schedule '{text}': use constant, cosine, step:EPOCHS:GAMMA (e.g. step:10:0.1) or exp:GAMMA (e.g. exp:0.95)"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_with_warmup_matches_the_formula() {
        let s = Schedule::new(0.1, Decay::Cosine { min_lr: 0.0 }, 10, 110);
        assert!((s.lr_at(0) - 0.01).abs() < 1e-7);
        assert!((s.lr_at(9) - 0.1).abs() < 1e-7);
        assert!((s.lr_at(10) - 0.1).abs() < 1e-7);
        assert!((s.lr_at(60) - 0.05).abs() < 1e-6);
        assert!(s.lr_at(110).abs() < 1e-7);
    }

    #[test]
    fn step_and_exponential_decay() {
        let s = Schedule::new(
            1.0,
            Decay::Step {
                every: 5,
                gamma: 0.5,
            },
            0,
            100,
        );
        assert_eq!((s.lr_at(4), s.lr_at(5), s.lr_at(10)), (1.0, 0.5, 0.25));
        let e = Schedule::new(1.0, Schedule::parse_decay("exp:0.9", 2).unwrap(), 0, 100);
        assert!((e.lr_at(4) - 0.81).abs() < 1e-6);
        assert!(Schedule::parse_decay("linear", 1)
            .unwrap_err()
            .to_string()
            .contains("unknown schedule"));
    }
}

//! Learning-rate schedules: the rate as a function of the optimizer step, attached to an
//! optimizer (`Sgd::new(..).with_schedule(..)`) that steps it after each update, as a
//! PyTorch loop calls `scheduler.step()` after `optimizer.step()`.
//!
//! A [`Schedule`] counts optimizer steps. `Step` and `Exponential` decay once per `every`
//! steps (pass the steps per epoch to decay per epoch, as PyTorch's `StepLR` and
//! `ExponentialLR` do when stepped each epoch); `MultiStep` at given steps; `Cosine`,
//! `OneCycle` and `Linear` over the steps after warm-up. A linear warm-up can precede any of
//! them. [`ReduceOnPlateau`](super::ReduceOnPlateau) is stepped with a metric instead.
//! Every rule gives PyTorch's rates step by step (`tests/schedules.rs` compares them with a
//! dump of PyTorch's schedulers).

use anyhow::{bail, Context, Result};
use std::f64::consts::PI;

/// A learning-rate scheduler attached to an optimizer (PyTorch's `LRScheduler`): the
/// optimizer takes [`LrScheduler::last_lr`] for each update and then calls
/// [`LrScheduler::step`]. Its state is saved with the optimizer's, so a resumed run
/// continues the curve exactly.
pub trait LrScheduler: Send {
    /// The rate of the next optimizer step (PyTorch's `get_last_lr()`).
    fn last_lr(&self) -> f32;
    /// Advances by one optimizer step.
    fn step(&mut self);
    /// Takes a metric (a validation loss, once per epoch): [`super::ReduceOnPlateau`] acts
    /// on it; schedules of the step count ignore it.
    fn step_metric(&mut self, _metric: f32) {}
    /// The state as named numbers (`last_epoch`, …), for checkpoints.
    fn state(&self) -> Vec<(String, f32)>;
    /// Restores what [`LrScheduler::state`] gave.
    fn load_state(&mut self, state: &[(String, f32)]) -> Result<()>;
}

/// The decay rule after warm-up.
#[derive(Clone, Debug, PartialEq)]
pub enum Decay {
    /// The base rate throughout (`ConstantLR` with factor 1).
    Constant,
    /// Multiply by `gamma` every `every` steps (`StepLR`).
    Step {
        /// Steps between two multiplications.
        every: usize,
        /// The factor.
        gamma: f32,
    },
    /// Multiply by `gamma` every `every` steps (`ExponentialLR` stepped once per `every`).
    Exponential {
        /// Steps between two multiplications.
        every: usize,
        /// The factor.
        gamma: f32,
    },
    /// Cosine annealing from the base rate to `min_lr` over the steps after warm-up
    /// (`CosineAnnealingLR` with `T_max` those steps).
    Cosine {
        /// The rate at the last step.
        min_lr: f32,
    },
    /// PyTorch's `OneCycleLR` (cosine annealing, two phases, momentum not cycled) over the
    /// steps after warm-up, the base rate being `max_lr`: from `max_lr / div_factor` up to
    /// `max_lr` in the first `pct_start` of the steps, then down to
    /// `max_lr / div_factor / final_div_factor`.
    OneCycle {
        /// The share of the steps spent rising (PyTorch's default 0.3).
        pct_start: f32,
        /// `max_lr / div_factor` is the first rate (default 25).
        div_factor: f32,
        /// `max_lr / div_factor / final_div_factor` is the last rate (default 1e4).
        final_div_factor: f32,
    },
    /// Multiply by `gamma` at each of the `milestones` (steps after warm-up, `MultiStepLR`).
    MultiStep {
        /// The steps (after warm-up) at which the rate is multiplied, increasing.
        milestones: Vec<usize>,
        /// The factor.
        gamma: f32,
    },
    /// The base rate times a factor going linearly from `start_factor` to `end_factor` over
    /// `iters` steps (`None`: the steps after warm-up), then held (`LinearLR`).
    Linear {
        /// The factor at the first step.
        start_factor: f32,
        /// The factor from step `iters` on.
        end_factor: f32,
        /// The length of the ramp (`None`: every step after warm-up).
        iters: Option<usize>,
    },
}

/// A learning-rate schedule over `total` steps; see the module's documentation.
///
/// ```
/// use neurite::optim::{LrScheduler, Schedule};
///
/// // PyTorch's OneCycleLR(max_lr=0.1, total_steps=100): from 0.004 up to 0.1 and down.
/// let mut s = Schedule::one_cycle(0.1, 100);
/// assert!((s.last_lr() - 0.004).abs() < 1e-7);
/// for _ in 0..29 {
///     s.step();
/// }
/// assert!((s.last_lr() - 0.1).abs() < 1e-7);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    /// The rate after warm-up (the peak for one-cycle).
    pub base_lr: f32,
    /// What the rate does after warm-up.
    pub decay: Decay,
    /// Steps of linear warm-up from `base_lr / warmup` to `base_lr`.
    pub warmup: usize,
    /// Steps in the whole run (warm-up included).
    pub total: usize,
    /// Optimizer steps taken (PyTorch's `last_epoch`).
    now: usize,
}

impl Schedule {
    /// `decay` of `base_lr` after `warmup` steps, over `total` steps in all.
    pub fn new(base_lr: f32, decay: Decay, warmup: usize, total: usize) -> Schedule {
        Schedule {
            base_lr,
            decay,
            warmup,
            total,
            now: 0,
        }
    }

    /// `CosineAnnealingLR(T_max=total, eta_min=min_lr)`.
    pub fn cosine(lr: f32, total: usize, min_lr: f32) -> Schedule {
        Schedule::new(lr, Decay::Cosine { min_lr }, 0, total)
    }

    /// `OneCycleLR(max_lr, total_steps)` with PyTorch's defaults (`pct_start` 0.3,
    /// `div_factor` 25, `final_div_factor` 1e4, cosine annealing); change them in
    /// [`Decay::OneCycle`] with [`Schedule::new`].
    pub fn one_cycle(max_lr: f32, total_steps: usize) -> Schedule {
        let decay = Decay::OneCycle {
            pct_start: 0.3,
            div_factor: 25.0,
            final_div_factor: 1e4,
        };
        Schedule::new(max_lr, decay, 0, total_steps)
    }

    /// `MultiStepLR(milestones, gamma)`, milestones in optimizer steps.
    pub fn multi_step(lr: f32, milestones: Vec<usize>, gamma: f32) -> Schedule {
        Schedule::new(lr, Decay::MultiStep { milestones, gamma }, 0, 0)
    }

    /// `LinearLR(start_factor, end_factor, total_iters)`.
    pub fn linear(lr: f32, start_factor: f32, end_factor: f32, total_iters: usize) -> Schedule {
        let decay = Decay::Linear {
            start_factor,
            end_factor,
            iters: Some(total_iters),
        };
        Schedule::new(lr, decay, 0, total_iters)
    }

    /// The same schedule after `warmup` steps of linear warm-up (the total grows by them).
    pub fn with_warmup(mut self, warmup: usize) -> Schedule {
        self.total += warmup;
        self.warmup = warmup;
        self
    }

    /// The rate of step `step` (counted from 0).
    pub fn lr_at(&self, step: usize) -> f32 {
        if step < self.warmup {
            return self.base_lr * (step + 1) as f32 / self.warmup as f32;
        }
        let s = step - self.warmup;
        let span = self.total.saturating_sub(self.warmup);
        match &self.decay {
            Decay::Constant => self.base_lr,
            &Decay::Step { every, gamma } | &Decay::Exponential { every, gamma } => {
                self.base_lr * gamma.powi((s / every.max(1)) as i32)
            }
            &Decay::Cosine { min_lr } => {
                let t = (s as f32 / span.max(1) as f32).min(1.0);
                min_lr + 0.5 * (self.base_lr - min_lr) * (1.0 + (std::f32::consts::PI * t).cos())
            }
            &Decay::OneCycle {
                pct_start,
                div_factor,
                final_div_factor,
            } => one_cycle(
                self.base_lr,
                s,
                span,
                pct_start,
                div_factor,
                final_div_factor,
            ),
            Decay::MultiStep { milestones, gamma } => {
                let passed = milestones.iter().filter(|&&m| m <= s).count();
                (self.base_lr as f64 * (*gamma as f64).powi(passed as i32)) as f32
            }
            &Decay::Linear {
                start_factor,
                end_factor,
                iters,
            } => {
                let iters = iters.unwrap_or(span).max(1);
                let t = s.min(iters) as f64 / iters as f64;
                let factor = start_factor as f64 + (end_factor as f64 - start_factor as f64) * t;
                (self.base_lr as f64 * factor) as f32
            }
        }
    }

    /// Parses a schedule as the command line gives it: `constant`, `cosine`, `step`,
    /// `step:EPOCHS:GAMMA`, `exp:GAMMA`, `onecycle`, `onecycle:PCT_START`,
    /// `multistep:E1,E2,…:GAMMA` or `linear` (epochs counted in steps of `steps_per_epoch`).
    pub fn parse_decay(text: &str, steps_per_epoch: usize) -> Result<Decay> {
        let parts: Vec<&str> = text.split(':').collect();
        let num = |s: &str, what: &str| -> Result<f32> {
            s.parse::<f32>()
                .with_context(|| format!("schedule '{text}': {what} '{s}' is not a number"))
        };
        let one_cycle = |pct_start| Decay::OneCycle {
            pct_start,
            div_factor: 25.0,
            final_div_factor: 1e4,
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
            ["onecycle"] => one_cycle(0.3),
            ["onecycle", pct] => one_cycle(num(pct, "pct_start")?),
            ["multistep", epochs, gamma] => Decay::MultiStep {
                milestones: epochs
                    .split(',')
                    .map(|e| {
                        e.trim().parse::<usize>().map(|e| e * steps_per_epoch).with_context(|| {
                            format!("schedule '{text}': milestone '{e}' is not a whole number of epochs")
                        })
                    })
                    .collect::<Result<_>>()?,
                gamma: num(gamma, "factor")?,
            },
            ["linear"] => Decay::Linear { start_factor: 1.0, end_factor: 0.0, iters: None },
            _ => bail!("unknown schedule '{text}': use {SCHEDULE_CHOICES}"),
        })
    }
}

/// The schedules the command line takes, for errors and help texts.
pub const SCHEDULE_CHOICES: &str = "constant, cosine, step:EPOCHS:GAMMA (e.g. step:10:0.1), \
     exp:GAMMA (e.g. exp:0.95), onecycle[:PCT_START] (e.g. onecycle:0.3), \
     multistep:EPOCHS:GAMMA (e.g. multistep:10,15:0.1) or linear (to 0)";

/// `OneCycleLR`'s rate at step `s` of `total` (in f64, as PyTorch computes it).
fn one_cycle(max_lr: f32, s: usize, total: usize, pct: f32, div: f32, final_div: f32) -> f32 {
    let max_lr = max_lr as f64;
    let initial = max_lr / div as f64;
    let min_lr = initial / final_div as f64;
    let end_up = pct as f64 * total as f64 - 1.0;
    let end_down = total as f64 - 1.0;
    let anneal = |start: f64, end: f64, t: f64| end + (start - end) / 2.0 * ((PI * t).cos() + 1.0);
    let s = s as f64;
    let lr = if s <= end_up {
        anneal(initial, max_lr, s / end_up)
    } else {
        let t = if end_down > end_up {
            (s - end_up) / (end_down - end_up)
        } else {
            1.0
        };
        anneal(max_lr, min_lr, t.min(1.0))
    };
    lr as f32
}

impl LrScheduler for Schedule {
    fn last_lr(&self) -> f32 {
        self.lr_at(self.now)
    }

    fn step(&mut self) {
        self.now += 1;
    }

    fn state(&self) -> Vec<(String, f32)> {
        vec![("last_epoch".into(), self.now as f32)]
    }

    fn load_state(&mut self, state: &[(String, f32)]) -> Result<()> {
        let mut now = None;
        for (name, v) in state {
            match name.as_str() {
                "last_epoch" if v.is_finite() && *v >= 0.0 && v.fract() == 0.0 => {
                    now = Some(*v as usize)
                }
                "last_epoch" => bail!("the schedule's saved last_epoch {v} is not a step count"),
                _ => bail!(
                    "the saved schedule state holds '{name}': it was written by another kind of schedule; attach the same schedule before loading"
                ),
            }
        }
        self.now = now.context("the saved schedule state has no last_epoch")?;
        Ok(())
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
        assert!(Schedule::parse_decay("zigzag", 1)
            .unwrap_err()
            .to_string()
            .contains("unknown schedule"));
    }
}

//! The numerical guard of a training loop: a NaN or infinite loss, gradient or weight stops
//! the run before anything non-finite reaches a file (or, opt-in, skips the batch).
//!
//! A loop asks the guard three things per step, each at a point where the value is at hand:
//! the loss after the forward pass ([`Guard::loss`]), the gradients before the update (only
//! under [`NonFinitePolicy::Skip`], which needs them clean before it can skip;
//! [`Guard::gradients`]), and the optimizer's [`StepReport`] after it ([`Guard::update`]).
//! Under the default policy the update's report is enough: a non-finite gradient always
//! leaves a non-finite weight, and the optimizer notices as it writes the weights.
//!
//! ```
//! use neurite::optim::{Optimizer, Sgd, SgdConfig};
//! use neurite::train::guard::{Guard, NonFinitePolicy, StepOutcome};
//! use neurite::Tensor;
//!
//! let w = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad_();
//! let mut opt = Sgd::new(vec![("w".into(), w.clone())], SgdConfig { lr: 0.1, ..Default::default() });
//! let mut guard = Guard::new(NonFinitePolicy::Stop);
//! let loss = (&w * &w).sum_all();
//! assert_eq!(guard.loss(loss.item()).unwrap(), StepOutcome::Go);
//! loss.backward().unwrap();
//! guard.update(opt.step()).unwrap();
//! // A loss of NaN stops the run with an error that says what went wrong.
//! assert!(guard.loss(f32::NAN).is_err());
//! ```

use crate::distributed::DataParallel;
use crate::optim::{clip_grad_norm, Optimizer, StepReport};
use crate::tensor::Tensor;
use anyhow::{bail, Result};
use std::fmt;
use std::str::FromStr;

/// What a run does when a step's loss or gradient is not finite.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NonFinitePolicy {
    /// Stop with an error (the default): the weights of the last checkpoint are the last
    /// good ones.
    #[default]
    Stop,
    /// Leave the weights as they are, count the batch as skipped (`skipped_steps` in the
    /// metrics) and go on; an epoch in which every batch is skipped still stops the run.
    Skip,
}

impl FromStr for NonFinitePolicy {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "stop" => NonFinitePolicy::Stop,
            "skip" => NonFinitePolicy::Skip,
            _ => bail!("--on-nonfinite '{s}': choose stop or skip"),
        })
    }
}

impl fmt::Display for NonFinitePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NonFinitePolicy::Stop => "stop",
            NonFinitePolicy::Skip => "skip",
        })
    }
}

/// Whether a step goes on to its update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// Everything is finite so far.
    Go,
    /// Skip the rest of this step (only under [`NonFinitePolicy::Skip`]).
    Skip,
}

/// Watches a training loop's numbers; see the module's documentation.
#[derive(Clone, Debug)]
pub struct Guard {
    policy: NonFinitePolicy,
    skipped: usize,
}

impl Guard {
    /// A guard with no step skipped yet.
    pub fn new(policy: NonFinitePolicy) -> Guard {
        Guard { policy, skipped: 0 }
    }

    /// The policy in force.
    pub fn policy(&self) -> NonFinitePolicy {
        self.policy
    }

    /// Steps skipped since the last [`Guard::take_skipped`].
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Steps skipped since the last call, and a fresh count (once per epoch).
    pub fn take_skipped(&mut self) -> usize {
        std::mem::take(&mut self.skipped)
    }

    /// Checks a step's loss: `Go` when it is finite; else `Skip` or an error by policy.
    pub fn loss(&mut self, loss: f32) -> Result<StepOutcome> {
        if loss.is_finite() {
            return Ok(StepOutcome::Go);
        }
        self.non_finite(format!("the training loss is {loss}"))
    }

    /// Under [`NonFinitePolicy::Skip`], checks every gradient before the update (a pass over
    /// them); under `Stop` it returns `Go` at once, [`Guard::update`] covers it.
    pub fn gradients(&mut self, params: &[Tensor], names: &[String]) -> Result<StepOutcome> {
        if self.policy == NonFinitePolicy::Stop {
            return Ok(StepOutcome::Go);
        }
        for (i, p) in params.iter().enumerate() {
            let Some(g) = p.grad() else { continue };
            if !g.with_slice(|s| s.iter().all(|v| v.is_finite())) {
                return self.non_finite(format!(
                    "the gradient of {} is not finite",
                    name_of(names, i)
                ));
            }
        }
        Ok(StepOutcome::Go)
    }

    /// Checks the optimizer's report: an error naming the parameter when the update left a
    /// non-finite weight (whatever the policy: those weights cannot be taken back).
    pub fn update(&self, report: StepReport) -> Result<()> {
        match report.first_non_finite {
            None => Ok(()),
            Some(name) => bail!(
                "the update left non-finite values in {name} (a NaN or infinite gradient, or \
                 weights that overflowed)"
            ),
        }
    }

    /// The update of one training step under the guard, shared by the loops: checks the
    /// loss, back-propagates it, clips the gradients' global norm to `clip`, checks them,
    /// and steps `optimizer` (the update at its scheduled rate, then its schedule),
    /// checking the weights it wrote. The gradients must be cleared before (the caller knows
    /// its model). `Skip` when the policy skips the step, with no weight changed; a skipped
    /// step still steps the schedule, so that the rate stays a function of the batch count
    /// (and a resumed run draws the same curve).
    pub fn step(
        &mut self,
        loss: &Tensor,
        clip: Option<f32>,
        optimizer: &mut dyn Optimizer,
    ) -> Result<StepOutcome> {
        let checked = loss.item();
        self.step_with(checked, clip, optimizer, || loss.backward())
    }

    /// [`Guard::step`] on one of several ranks ([`DataParallel`]): `loss` is this rank's
    /// mean over its share of the global batch and `weight` that share's fraction of the
    /// batch. The guard checks the global batch's loss (the weighted sum over the ranks,
    /// returned with the outcome), the backward leaves the global gradient on every rank,
    /// and the clipping and checks see it, so every rank makes the same decision.
    pub fn step_data_parallel(
        &mut self,
        dp: &mut DataParallel,
        loss: &Tensor,
        weight: f32,
        clip: Option<f32>,
        optimizer: &mut dyn Optimizer,
    ) -> Result<(StepOutcome, f32)> {
        let mut global = [weight as f64 * loss.item() as f64];
        crate::distributed::all_reduce_sum_f64(&mut global);
        let global = global[0] as f32;
        let outcome = self.step_with(global, clip, optimizer, || dp.backward(loss, weight))?;
        Ok((outcome, global))
    }

    /// The guarded step around `backward`, which leaves the gradients of the loss whose
    /// value is `loss`.
    fn step_with(
        &mut self,
        loss: f32,
        clip: Option<f32>,
        optimizer: &mut dyn Optimizer,
        backward: impl FnOnce() -> Result<()>,
    ) -> Result<StepOutcome> {
        let outcome = self.try_step(loss, clip, optimizer, backward)?;
        if outcome == StepOutcome::Skip {
            optimizer.advance_schedule();
        }
        Ok(outcome)
    }

    fn try_step(
        &mut self,
        loss: f32,
        clip: Option<f32>,
        optimizer: &mut dyn Optimizer,
        backward: impl FnOnce() -> Result<()>,
    ) -> Result<StepOutcome> {
        if self.loss(loss)? == StepOutcome::Skip {
            return Ok(StepOutcome::Skip);
        }
        backward()?;
        if let Some(max_norm) = clip {
            clip_grad_norm(optimizer.params(), max_norm);
        }
        if self.gradients(optimizer.params(), optimizer.param_names())? == StepOutcome::Skip {
            return Ok(StepOutcome::Skip);
        }
        self.update(optimizer.step())?;
        Ok(StepOutcome::Go)
    }

    fn non_finite(&mut self, what: String) -> Result<StepOutcome> {
        match self.policy {
            NonFinitePolicy::Stop => bail!("{what}"),
            NonFinitePolicy::Skip => {
                self.skipped += 1;
                Ok(StepOutcome::Skip)
            }
        }
    }
}

fn name_of(names: &[String], i: usize) -> String {
    names
        .get(i)
        .cloned()
        .unwrap_or_else(|| format!("parameter {i}"))
}

/// The advice that ends a divergence error.
pub const DIVERGENCE_ADVICE: &str = "the run diverged; try a lower --lr, --clip-grad 1, \
     --warmup, or --on-nonfinite skip to skip such batches";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{Sgd, SgdConfig};

    #[test]
    fn stop_fails_at_the_first_non_finite_value_and_skip_counts() {
        let mut stop = Guard::new(NonFinitePolicy::Stop);
        assert_eq!(stop.loss(1.5).unwrap(), StepOutcome::Go);
        let err = stop.loss(f32::INFINITY).unwrap_err().to_string();
        assert!(err.contains("loss is inf"), "{err}");

        let mut skip = Guard::new(NonFinitePolicy::Skip);
        assert_eq!(skip.loss(f32::NAN).unwrap(), StepOutcome::Skip);
        let w = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad_();
        w.set_grad(Some(Tensor::from_vec(vec![0.5, f32::NAN], &[2])));
        let names = vec!["fc.weight".to_string()];
        assert_eq!(
            skip.gradients(std::slice::from_ref(&w), &names).unwrap(),
            StepOutcome::Skip
        );
        assert_eq!(skip.take_skipped(), 2);
        assert_eq!(skip.skipped(), 0);
        // Stop leaves the gradients to the update's report, which names the parameter.
        assert_eq!(
            stop.gradients(std::slice::from_ref(&w), &names).unwrap(),
            StepOutcome::Go
        );
        let mut opt = Sgd::new(vec![(names[0].clone(), w.clone())], SgdConfig::default());
        let err = stop.update(opt.step()).unwrap_err().to_string();
        assert!(err.contains("fc.weight"), "{err}");
        assert!(!w.to_vec()[1].is_finite());
    }

    #[test]
    fn policy_parses_and_prints() {
        for p in [NonFinitePolicy::Stop, NonFinitePolicy::Skip] {
            assert_eq!(p.to_string().parse::<NonFinitePolicy>().unwrap(), p);
        }
        let err = "ignore".parse::<NonFinitePolicy>().unwrap_err();
        assert!(err.to_string().contains("--on-nonfinite"), "{err}");
    }
}

//! Optimizers and learning-rate schedules, with PyTorch's update semantics and habits.
//!
//! An optimizer is built from a model's named parameters, keeps its state (momentum
//! buffers, Adam moments) per parameter, and saves it under the parameter's name
//! (`fc1.weight.momentum_buffer`, `fc1.weight.exp_avg`), so a checkpoint resumes into a model
//! whose parameters come in another order, and a missing, extra or reshaped parameter is an
//! error that names it. A schedule is attached to the optimizer and stepped by it after each
//! update; its state is saved with the optimizer's.
//!
//! ```
//! use neurite::nn::{Linear, Module, ModuleExt};
//! use neurite::optim::{Optimizer, Schedule, Sgd, SgdConfig};
//! use neurite::Tensor;
//!
//! let model = Linear::new(3, 1, true);
//! let config = SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() };
//! let mut opt = Sgd::new(model.named_parameters(), config)
//!     .with_schedule(Schedule::cosine(0.1, 100, 0.0));
//! let x = Tensor::ones(&[4, 3]); // [B, 3]
//! for _ in 0..3 {
//!     opt.zero_grad();
//!     let y = model.forward(&x); // [B, 1]
//!     (&y * &y).mean_all().backward().unwrap();
//!     assert!(opt.step().is_finite());
//! }
//! assert!(opt.lr() < 0.1); // the schedule moved it, three steps along the cosine
//! assert!(opt.state().iter().any(|(n, _)| n == "weight.momentum_buffer"));
//! ```

mod adam;
mod base;
mod clip;
mod plateau;
mod schedule;
mod sgd;

pub use adam::{Adam, AdamConfig};
pub use base::{numbered, OptimizerBase, ParamFilter, ParamGroup, SCHEDULER_PREFIX};
pub use clip::clip_grad_norm;
pub use plateau::{PlateauConfig, PlateauMode, ReduceOnPlateau, ThresholdMode};
pub use schedule::{Decay, LrScheduler, Schedule, SCHEDULE_CHOICES};
pub use sgd::{Sgd, SgdConfig};

use crate::tensor::Tensor;

/// What one optimizer step saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepReport {
    /// The name of the first parameter (in the optimizer's order) that holds a NaN or an
    /// infinity after the update: a non-finite gradient, or weights that overflowed. The
    /// training loops stop there (see `train::guard`).
    pub first_non_finite: Option<String>,
}

impl StepReport {
    /// Every updated parameter is finite.
    pub fn is_finite(&self) -> bool {
        self.first_non_finite.is_none()
    }

    /// Records that the parameter `name` was left non-finite (the first one counts).
    pub fn non_finite(&mut self, name: &str) {
        self.first_non_finite
            .get_or_insert_with(|| name.to_string());
    }
}

/// A rule that updates its parameters from their gradients (`torch.optim.Optimizer`).
///
/// An implementation supplies its update ([`Optimizer::update`]), its per-parameter state
/// (`rule_state`, `load_rule_state`) and the [`OptimizerBase`] it keeps its parameters, rate
/// and schedule in; the rest is provided.
pub trait Optimizer {
    /// The parameters, their names, rates, weight decays and schedule.
    fn base(&self) -> &OptimizerBase;
    /// The same, to change.
    fn base_mut(&mut self) -> &mut OptimizerBase;

    /// Updates every parameter that has a gradient, in place, at the current rate, and
    /// reports whether every updated value is finite (checked as the values are written, at
    /// no extra cost). [`Optimizer::step`] calls it and then steps the schedule.
    fn update(&mut self) -> StepReport;

    /// The rule's own state (momentum buffers, moments, step count) as named tensors.
    fn rule_state(&self) -> Vec<(String, Tensor)>;

    /// Restores what `rule_state` gave (entries under `scheduler.` are the schedule's).
    fn load_rule_state(&mut self, state: &[(String, Tensor)]) -> anyhow::Result<()>;

    /// One optimization step: the update, then one step of the attached schedule.
    fn step(&mut self) -> StepReport {
        let report = self.update();
        self.base_mut().advance_schedule();
        report
    }

    /// Forgets the gradient of every parameter of the optimizer.
    fn zero_grad(&self) {
        for p in self.base().params() {
            p.zero_grad();
        }
    }

    /// The parameters, in the order given at construction.
    fn params(&self) -> &[Tensor] {
        self.base().params()
    }

    /// The parameters' names, in the same order.
    fn param_names(&self) -> &[String] {
        self.base().names()
    }

    /// The learning rate the next step uses.
    fn lr(&self) -> f32 {
        self.base().lr()
    }

    /// Sets the learning rate of the next step (an attached schedule sets it again after
    /// the step).
    fn set_lr(&mut self, lr: f32) {
        self.base_mut().set_lr(lr);
    }

    /// Attaches a schedule, stepped after every [`Optimizer::step`]; the rate becomes the
    /// schedule's.
    fn set_schedule(&mut self, schedule: Box<dyn LrScheduler>) {
        self.base_mut().set_schedule(schedule);
    }

    /// Steps the schedule without an update (a batch skipped for a non-finite loss, so the
    /// curve stays a function of the batch count).
    fn advance_schedule(&mut self) {
        self.base_mut().advance_schedule();
    }

    /// Gives the schedule a metric: [`ReduceOnPlateau`] acts on it (PyTorch's
    /// `scheduler.step(val_loss)`), other schedules ignore it.
    fn step_metric(&mut self, metric: f32) {
        self.base_mut().step_metric(metric);
    }

    /// The state as named tensors (for checkpoints): the rule's, keyed by parameter name,
    /// and the schedule's under `scheduler.`.
    fn state(&self) -> Vec<(String, Tensor)> {
        let mut state = self.rule_state();
        state.extend(self.base().schedule_state());
        state
    }

    /// Restores state saved by [`Optimizer::state`], matched by parameter name: a name the
    /// optimizer lacks, a parameter without state or a shape that differs is an error that
    /// names it. A state keyed by position (written by neurite before names) is matched by
    /// position when the parameters have the same count and sizes.
    fn load_state(&mut self, state: &[(String, Tensor)]) -> anyhow::Result<()> {
        self.load_rule_state(state)?;
        self.base_mut().load_schedule_state(state)
    }
}

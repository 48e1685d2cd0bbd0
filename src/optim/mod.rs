//! Optimizers and learning-rate schedules, with PyTorch's update semantics.
//!
//! An optimizer holds per-parameter state (momentum buffers, Adam moments) indexed by the
//! parameter's position in the list given at each `step`, so the list must keep its order
//! (a model's `parameters()` does). State can be saved and restored for `--resume`.

mod adam;
mod clip;
mod schedule;
mod sgd;

pub use adam::{Adam, AdamConfig};
pub use clip::clip_grad_norm;
pub use schedule::{Decay, Schedule};
pub use sgd::{Sgd, SgdConfig};

use crate::tensor::Tensor;

/// What one optimizer step saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepReport {
    /// The position (in the list given to `step`) of the first parameter that holds a NaN
    /// or an infinity after the update: a non-finite gradient, or weights that overflowed.
    /// The training loops stop there (see `train::guard`).
    pub first_non_finite: Option<usize>,
}

impl StepReport {
    /// Every updated parameter is finite.
    pub fn is_finite(&self) -> bool {
        self.first_non_finite.is_none()
    }

    /// Records that parameter `i` was left non-finite (the first one counts).
    pub fn non_finite(&mut self, i: usize) {
        self.first_non_finite.get_or_insert(i);
    }
}

/// A rule that updates parameters from their gradients.
pub trait Optimizer {
    /// Updates every parameter that has a gradient, in place, and reports whether every
    /// updated value is finite (checked as the values are written, at no extra cost).
    fn step(&mut self, params: &[Tensor]) -> StepReport;
    /// The learning rate the next step uses.
    fn lr(&self) -> f32;
    /// Sets the learning rate (schedules call this before each step).
    fn set_lr(&mut self, lr: f32);
    /// The optimizer's state as named tensors (for checkpoints).
    fn state(&self) -> Vec<(String, Tensor)>;
    /// Restores state saved by `state`; names not present are left empty.
    fn load_state(&mut self, state: &[(String, Tensor)]) -> anyhow::Result<()>;
}

/// Looks up a saved state tensor by name and checks its shape.
fn find_state(
    state: &[(String, Tensor)],
    name: &str,
    shape: &[usize],
) -> anyhow::Result<Option<Tensor>> {
    match state.iter().find(|(n, _)| n == name) {
        None => Ok(None),
        Some((_, t)) if t.shape() == shape => Ok(Some(t.detach().contiguous())),
        Some((_, t)) => anyhow::bail!(
            "optimizer state '{name}' has shape {:?} but the parameter has shape {shape:?}: the checkpoint belongs to another model",
            t.shape()
        ),
    }
}

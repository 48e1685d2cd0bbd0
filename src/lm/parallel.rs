//! `lm train` on several ranks (`mpirun -np N neurite lm train …`, feature `mpi`): each rank
//! takes its rows of every global batch (`--batch-size` stays the global batch), the
//! gradients are summed across ranks by [`DataParallel`], and the guard sees the global
//! batch's loss, so every rank makes the same decision. On one rank the loop keeps its plain
//! step ([`crate::train::guard::Guard::step`]) and none of this runs.

use crate::distributed::{self, DataParallel};
use crate::models::Gpt;
use crate::optim::{clip_grad_norm, Optimizer};
use crate::tensor::Tensor;
use crate::train::guard::{Guard, StepOutcome};
use anyhow::Result;
use std::ops::Range;

/// This rank's rows of a global batch of `batch`, and its weight (`rows / batch`).
pub(crate) fn share(batch: usize) -> (Range<usize>, f32) {
    let rows = distributed::batch_share(batch, distributed::rank(), distributed::world_size());
    let weight = rows.len() as f32 / batch as f32;
    (rows, weight)
}

/// The guarded update of one step on several ranks: the loss of the global batch (this
/// rank's `loss`, a mean over its share, weighted by `weight` and summed over the ranks)
/// checked by the guard, backward with the gradients summed across ranks during it, the
/// global norm clipped, the gradients checked, the update. Returns the outcome and the
/// global batch's loss. A skipped step steps the schedule, as [`Guard::step`] does.
pub(crate) fn step(
    dp: &mut DataParallel,
    guard: &mut Guard,
    loss: &Tensor,
    weight: f32,
    clip: Option<f32>,
    opt: &mut dyn Optimizer,
) -> Result<(StepOutcome, f32)> {
    let mut global = [weight as f64 * loss.item() as f64];
    distributed::all_reduce_sum_f64(&mut global);
    let global = global[0] as f32;
    if guard.loss(global)? == StepOutcome::Skip {
        opt.advance_schedule();
        return Ok((StepOutcome::Skip, global));
    }
    dp.backward(loss, weight)?;
    if let Some(max_norm) = clip {
        clip_grad_norm(opt.params(), max_norm);
    }
    if guard.gradients(opt.params(), opt.param_names())? == StepOutcome::Skip {
        opt.advance_schedule();
        return Ok((StepOutcome::Skip, global));
    }
    guard.update(opt.step())?;
    Ok((StepOutcome::Go, global))
}

/// The validation loss of [`super::text_loss`], its batches of windows dealt out to the
/// ranks in turn and the sums reduced: the same value on every rank.
pub(crate) fn text_loss(model: &Gpt, text: &[u8], batch: usize) -> Result<f64> {
    let (rank, world) = (distributed::rank(), distributed::world_size());
    // Each rank sums its batches' losses; the count of windows is the whole text's already.
    let (sum, count) = super::eval::text_loss_sums(model, text, batch, rank, world)?;
    let mut total = [sum];
    distributed::all_reduce_sum_f64(&mut total);
    Ok(total[0] / count as f64)
}

//! `lm train` on several ranks (`mpirun -np N neurite lm train …`, feature `mpi`): each rank
//! takes its rows of every global batch (`--batch-size` stays the global batch), the
//! gradients are summed across ranks by [`distributed::DataParallel`], and the guard sees
//! the global batch's loss ([`crate::train::guard::Guard::step_data_parallel`]), so every
//! rank makes the same decision. On one rank the loop keeps its plain
//! step ([`crate::train::guard::Guard::step`]) and none of this runs.

use crate::distributed;
use crate::models::Gpt;
use anyhow::Result;
use std::ops::Range;

/// This rank's rows of a global batch of `batch`, and its weight (`rows / batch`).
pub(crate) fn share(batch: usize) -> (Range<usize>, f32) {
    let rows = distributed::batch_share(batch, distributed::rank(), distributed::world_size());
    let weight = rows.len() as f32 / batch as f32;
    (rows, weight)
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

//! [`DataParallel`]: a module's gradients summed across ranks, bucket by bucket, while
//! backward runs (PyTorch's `DistributedDataParallel`).

use super::buckets::{plan_buckets, Bucket, DEFAULT_BUCKET_BYTES};
use super::{backend, broadcast_parameters, rank, world_size};
use crate::autograd::BackwardOptions;
use crate::nn::{Module, ModuleExt};
use crate::tensor::Tensor;
use anyhow::Result;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::Ordering;

/// A module trained data-parallel: built on every rank from the same model code, it copies
/// rank 0's weights to all ([`super::broadcast_parameters`]) and plans the gradient buckets;
/// each step, [`DataParallel::backward`] back-propagates this rank's loss and leaves in every
/// parameter's `grad()` the weighted sum over the ranks, the same on every rank.
///
/// **Averaging.** Each rank's loss is a mean over its share of the global batch; rank `r`'s
/// gradient is multiplied by its `weight` `n_r / B` (its rows over the global batch's) before
/// the sum, so the result, `Σ_r (n_r / B) g_r`, is the gradient of the global batch's mean
/// loss, as one process on the whole batch computes it (up to the order of the float sums).
/// With equal shares the weight is `1 / N`: the sum divided by N. [`DataParallel::weight`]
/// gives it.
///
/// **Overlap.** A parameter's gradient is copied into its bucket as soon as backward has
/// finished it ([`Tensor::backward_with_hook`]); a bucket's all-reduce starts (non-blocking,
/// `MPI_Iallreduce`) as soon as its last gradient is in, while backward goes on with the
/// earlier layers; `backward` returns when all are done. A non-finite gradient on one rank
/// makes every rank's sum non-finite, so the guard stops (or skips) on all ranks alike.
///
/// Every rank must run the same forward and backward (the same graph); a parameter that the
/// loss does not reach contributes zeros.
pub struct DataParallel {
    params: Vec<Tensor>,
    buckets: Vec<Bucket>,
    /// Parameter id → (bucket, its index in the bucket).
    place: HashMap<u64, (usize, usize)>,
    send: Vec<Vec<f32>>,
    recv: Vec<Vec<f32>>,
}

impl DataParallel {
    /// Copies rank 0's parameters and buffers to every rank and plans buckets of the default
    /// 25 MB.
    pub fn new(model: &dyn Module) -> Result<DataParallel> {
        DataParallel::with_bucket_bytes(model, DEFAULT_BUCKET_BYTES)
    }

    /// As [`DataParallel::new`], with buckets of about `bucket_bytes`.
    pub fn with_bucket_bytes(model: &dyn Module, bucket_bytes: usize) -> Result<DataParallel> {
        broadcast_parameters(model);
        let mut params: Vec<Tensor> = Vec::new();
        for p in model.parameters() {
            // A tensor registered twice (tied weights) is reduced once.
            if !params.iter().any(|q| q.id() == p.id()) {
                params.push(p);
            }
        }
        let sizes: Vec<usize> = params.iter().map(Tensor::numel).collect();
        let buckets = plan_buckets(&sizes, bucket_bytes);
        let mut place = HashMap::new();
        for (b, bucket) in buckets.iter().enumerate() {
            for (slot, &i) in bucket.params.iter().enumerate() {
                place.insert(params[i].id(), (b, slot));
            }
        }
        let send = buckets.iter().map(|b| vec![0.0; b.len]).collect();
        let recv = buckets.iter().map(|b| vec![0.0; b.len]).collect();
        Ok(DataParallel {
            params,
            buckets,
            place,
            send,
            recv,
        })
    }

    /// The buckets, in the order their all-reduces start.
    pub fn buckets(&self) -> &[Bucket] {
        &self.buckets
    }

    /// This rank's rows of a global batch of `batch` rows ([`super::batch_share`]).
    pub fn batch_share(&self, batch: usize) -> Range<usize> {
        super::batch_share(batch, rank(), world_size())
    }

    /// The weight of a rank whose loss is a mean over `rows` of a global batch of `batch`:
    /// `rows / batch`.
    pub fn weight(&self, rows: usize, batch: usize) -> f32 {
        rows as f32 / batch.max(1) as f32
    }

    /// This rank's part of an epoch's global `order` (PyTorch's `DistributedSampler` rule,
    /// padded: [`super::DistributedSampler::shard`]).
    pub fn shard(&self, order: &[usize]) -> Vec<usize> {
        super::DistributedSampler::new(order.len(), rank(), world_size()).shard(order)
    }

    /// Sums metrics (loss sums, correct counts, sample counts) over the ranks, in place.
    pub fn reduce_metrics(&self, values: &mut [f64]) {
        super::all_reduce_sum_f64(values);
    }

    /// Back-propagates this rank's `loss` and leaves in each parameter's gradient the sum
    /// over the ranks of `weight` times their gradients, the buckets' all-reduces overlapping
    /// backward. Gradients accumulate as in [`Tensor::backward`]: what a parameter held
    /// before is part of what is summed. Alone, the gradient is `weight` times this loss's.
    ///
    /// # Errors
    ///
    /// Those of [`Tensor::backward`] (the ranks' buckets are still reduced, so that no rank
    /// waits for this one).
    pub fn backward(&mut self, loss: &Tensor, weight: f32) -> Result<()> {
        let DataParallel {
            buckets,
            place,
            send,
            recv,
            ..
        } = self;
        let mut remaining: Vec<usize> = buckets.iter().map(|b| b.params.len()).collect();
        let dog = super::watchdog();
        // Synchronized batch norms weigh their backward sums by it (see `sync_batch_norm`).
        let _weight = LossWeight::set(weight);
        let result = backend::overlapped(send, recv, &dog, "the gradient all-reduce", |st| {
            for k in 0..buckets.len() {
                st.buffer(k).fill(0.0);
            }
            loss.backward_with_hook(BackwardOptions::default(), &mut |leaf| {
                let Some(&(b, slot)) = place.get(&leaf.id()) else {
                    return;
                };
                let at = buckets[b].offsets[slot];
                if let Some(g) = leaf.grad() {
                    let dst = &mut st.buffer(b)[at..at + g.numel()];
                    g.with_slice(|s| scaled_copy(dst, s, weight));
                }
                remaining[b] -= 1;
                if remaining[b] == 0 {
                    st.start(b);
                }
                st.progress();
            })
        });
        self.write_back();
        result
    }

    /// Sums the gradients that a plain `loss.backward()` left (times `weight`) over the
    /// ranks, bucket by bucket, without overlap: for a loop that calls backward itself.
    pub fn finish_gradients(&mut self, weight: f32) {
        let DataParallel {
            params,
            buckets,
            send,
            recv,
            ..
        } = self;
        let dog = super::watchdog();
        backend::overlapped(send, recv, &dog, "the gradient all-reduce", |st| {
            for (k, bucket) in buckets.iter().enumerate() {
                let buf = st.buffer(k);
                for (&i, &at) in bucket.params.iter().zip(&bucket.offsets) {
                    let p = &params[i];
                    let dst = &mut buf[at..at + p.numel()];
                    match p.grad() {
                        Some(g) => g.with_slice(|s| scaled_copy(dst, s, weight)),
                        None => dst.fill(0.0),
                    }
                }
                st.start(k);
            }
        });
        self.write_back();
    }

    /// Copies the summed buckets into the parameters' gradients.
    fn write_back(&self) {
        for (bucket, sum) in self.buckets.iter().zip(&self.recv) {
            for (&i, &at) in bucket.params.iter().zip(&bucket.offsets) {
                let p = &self.params[i];
                let src = &sum[at..at + p.numel()];
                match p.grad() {
                    Some(g) if g.is_contiguous() && g.shape() == p.shape() => {
                        g.with_slice_mut(|d| d.copy_from_slice(src))
                    }
                    _ => p.set_grad(Some(Tensor::from_vec(src.to_vec(), p.shape()))),
                }
            }
        }
    }
}

/// `dst = weight * src`.
fn scaled_copy(dst: &mut [f32], src: &[f32], weight: f32) {
    if weight == 1.0 {
        dst.copy_from_slice(src);
    } else {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = s * weight;
        }
    }
}

/// This rank's loss weight published for synchronized batch norms while a backward runs.
struct LossWeight;

impl LossWeight {
    fn set(weight: f32) -> LossWeight {
        super::LOSS_WEIGHT.store(weight.to_bits() as u64, Ordering::Relaxed);
        LossWeight
    }
}

impl Drop for LossWeight {
    fn drop(&mut self) {
        super::LOSS_WEIGHT.store(u64::MAX, Ordering::Relaxed);
    }
}

//! Normalization layers: `BatchNorm` (1-D and 2-D) and `LayerNorm`.

use super::{summary, Module};
use crate::ops::norm_sync::StatsSync;
use crate::tensor::Tensor;
use std::sync::{Arc, Mutex};

/// Batch normalization over channel axis 1 (`BatchNorm1d` for `[N, C]`, `BatchNorm2d` for
/// `[N, C, H, W]`): batch statistics and a running-average update while training, the
/// running statistics in evaluation.
#[derive(Module)]
pub struct BatchNorm {
    /// The per-channel scale `gamma`, `[C]`.
    pub weight: Tensor,
    /// The per-channel shift `beta`, `[C]`.
    pub bias: Tensor,
    #[module(buffer)]
    /// The running mean used in evaluation, `[C]` (a buffer).
    pub running_mean: Tensor,
    #[module(buffer)]
    /// The running (unbiased) variance used in evaluation, `[C]` (a buffer).
    pub running_var: Tensor,
    /// Steps of running-statistics updates (PyTorch keeps it as an int64 buffer).
    #[module(buffer)]
    pub num_batches_tracked: Tensor,
    /// Weight of the new batch in the running statistics (PyTorch's 0.1).
    pub momentum: f32,
    /// Added to the variance before its square root.
    pub eps: f32,
    training: bool,
    /// Set: training normalizes by the statistics of the global batch of every process
    /// ([`BatchNorm::set_sync`]).
    #[module(skip)]
    sync: Mutex<Option<Arc<dyn StatsSync>>>,
}

impl BatchNorm {
    /// PyTorch's defaults: weight 1, bias 0, momentum 0.1, eps 1e-5.
    pub fn new(channels: usize) -> BatchNorm {
        BatchNorm {
            weight: Tensor::ones(&[channels]).requires_grad_(),
            bias: Tensor::zeros(&[channels]).requires_grad_(),
            running_mean: Tensor::zeros(&[channels]),
            running_var: Tensor::ones(&[channels]),
            num_batches_tracked: Tensor::zeros(&[]),
            momentum: 0.1,
            eps: 1e-5,
            training: true,
            sync: Mutex::new(None),
        }
    }

    /// Makes training normalize by the statistics of the global batch that every process
    /// of a data-parallel job holds a part of, combined by `sync` (PyTorch's
    /// `SyncBatchNorm`; `crate::distributed::sync_batch_norm` sets it on every batch norm of
    /// a model); `None` goes back to this process's batch. Evaluation is unchanged.
    pub fn set_sync(&self, sync: Option<Arc<dyn StatsSync>>) {
        *self.sync.lock().unwrap_or_else(|e| e.into_inner()) = sync;
    }

    /// Whether training normalizes by the global batch's statistics.
    pub fn is_synced(&self) -> bool {
        self.sync_handle().is_some()
    }

    fn sync_handle(&self) -> Option<Arc<dyn StatsSync>> {
        self.sync.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether it normalizes by batch statistics (training) rather than the running ones.
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// `forward(x).relu()` in one op (one pass over memory), with its gradient.
    pub fn forward_relu(&self, x: &Tensor) -> Tensor {
        self.forward_then(x, true)
    }

    /// The per-channel map `x * scale[c] + shift[c]` (channels on axis 1) this layer
    /// computes in evaluation, as `(scale, shift)`; `None` in training (batch statistics).
    /// The inference planner folds it into the convolution before it.
    pub fn eval_channel_affine(&self) -> Option<(Vec<f32>, Vec<f32>)> {
        (!self.training).then(|| {
            Tensor::batch_norm_eval_affine(
                &self.weight,
                &self.bias,
                &self.running_mean,
                &self.running_var,
                self.eps,
            )
        })
    }

    /// The forward pass, with a ReLU fused into it when `relu`.
    fn forward_then(&self, x: &Tensor, relu: bool) -> Tensor {
        if self.training {
            self.num_batches_tracked.with_slice_mut(|n| n[0] += 1.0);
            if let Some(sync) = self.sync_handle() {
                return x.batch_norm_synced(
                    Some(&self.weight),
                    Some(&self.bias),
                    Some(&self.running_mean),
                    Some(&self.running_var),
                    self.momentum,
                    self.eps,
                    relu,
                    sync,
                );
            }
        }
        let op = if relu {
            Tensor::batch_norm_relu
        } else {
            Tensor::batch_norm
        };
        op(
            x,
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            self.training,
            self.momentum,
            self.eps,
        )
    }
}

impl Module for BatchNorm {
    fn forward(&self, x: &Tensor) -> Tensor {
        summary::recorded(self, self.forward_then(x, false))
    }
}

/// Layer normalization over the last dimension, with a learned scale and shift.
#[derive(Module)]
pub struct LayerNorm {
    /// The per-feature scale, `[features]`.
    pub weight: Tensor,
    /// The per-feature shift, `[features]`.
    pub bias: Tensor,
    /// Added to the variance before its square root.
    pub eps: f32,
}

impl LayerNorm {
    /// A layer norm over the last dimension of size `features`, scale 1 and shift 0.
    pub fn new(features: usize) -> LayerNorm {
        LayerNorm {
            weight: Tensor::ones(&[features]).requires_grad_(),
            bias: Tensor::zeros(&[features]).requires_grad_(),
            eps: 1e-5,
        }
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Tensor {
        let y = x.layer_norm(
            self.weight.shape(),
            Some(&self.weight),
            Some(&self.bias),
            self.eps,
        );
        summary::recorded(self, y)
    }
}

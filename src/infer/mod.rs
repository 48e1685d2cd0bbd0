//! Inference made explicit: a trained module turned into its fused inference form, as a
//! value.
//!
//! [`Plan::new`] walks a module once and returns a [`Plan`] whose
//! [`forward`](Plan::forward) runs it without autograd, fused:
//!
//! - a convolution followed by a batch norm in evaluation and/or a ReLU applies the batch
//!   norm's per-channel map and the ReLU as it stores its output (one pass instead of
//!   three, the same values as the separate ops);
//! - a batch norm followed by a ReLU runs as one op, a linear layer followed by a ReLU
//!   applies it to the product's fresh output in place;
//! - a large batch through a chain whose every layer treats samples independently runs
//!   slice by slice, the threads taking whole slices through every layer ([`slice`]).
//!
//! [`GptPlan`] does the same for the character-level GPT: every linear weight is packed once
//! for the packed engine and handed to the products explicitly ([`crate::nn::LinearWeights`]),
//! and sampling ([`GptPlan::generate`]) runs the one transformer forward with a key/value
//! cache or for the last position only.
//!
//! Nothing here is decided by thread-local state: the layers keep their plain `forward`,
//! and only what the plan holds (its steps, the folded batch-norm maps, the packed weights)
//! makes the inference path. A plan reads the weights when it is built; build a new one
//! after changing them.
//!
//! # How the planner sees a module
//!
//! [`crate::nn::Module`] is `Any`, so the planner recognises the library's layers
//! (`Sequential`, `Residual`, `Conv2d`, `BatchNorm`, `Relu`, `Linear`, the pools,
//! activations, `Flatten`, `Dropout`) behind a `&dyn Module` by downcasting, and fuses them.
//! A module of your own exposes its chain of layers by implementing [`Lower`] (a few lines)
//! and is planned with [`Plan::of`] (a `Lower` module inside another of your own is
//! reached by extending the outer `lower()` with the inner one's). Any module the planner
//! cannot see into (a custom one without `Lower`, or one inside a `Sequential`, a
//! transformer block, `Vit`) is one step running its plain `forward` without autograd,
//! which is correct, only not fused. Downcasting keeps the `Module` trait to `forward` (and
//! the registration `#[derive(Module)]` writes): fusion is the planner's knowledge of the
//! layers, not a hook every layer must carry.

mod fuse;
mod gpt;
mod plan;
mod sample;
pub mod slice;
#[cfg(test)]
mod tests;

pub use gpt::GptPlan;
pub use plan::Plan;
pub use sample::{sample, SampleOptions};

use crate::nn::Module;

/// A module of your own, described to the planner as the chain of layers its `forward`
/// applies in order (so that `forward(x)` equals running them one after the other). The
/// planner then fuses and slices them as it does a [`crate::nn::Sequential`]. The derive
/// writes it from a list of fields, `#[module(lower = "fc1, relu, fc2")]` (a field may
/// repeat: one `relu` after several layers), or by hand:
///
/// ```
/// use neurite::infer::{Lower, Plan};
/// use neurite::nn::{Linear, Module, Relu};
/// use neurite::Tensor;
///
/// #[derive(Module)]
/// struct TwoLayers { fc1: Linear, relu: Relu, fc2: Linear }
///
/// impl Module for TwoLayers {
///     fn forward(&self, x: &Tensor) -> Tensor {
///         self.fc2.forward(&self.relu.forward(&self.fc1.forward(x)))
///     }
/// }
///
/// impl Lower for TwoLayers {
///     fn lower(&self) -> Vec<&dyn Module> {
///         vec![&self.fc1, &self.relu, &self.fc2]
///     }
/// }
///
/// let m = TwoLayers { fc1: Linear::new(4, 8, true), relu: Relu, fc2: Linear::new(8, 2, true) };
/// let plan = Plan::of(&m);
/// assert_eq!(plan.describe(), ["linear+relu", "linear"]);
/// assert_eq!(plan.forward(&Tensor::randn(&[3, 4], 0.0, 1.0)).shape(), &[3, 2]);
/// ```
pub trait Lower: Module {
    /// The layers `forward` applies, in order.
    fn lower(&self) -> Vec<&dyn Module>;
}

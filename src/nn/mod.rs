//! Layers (modules): named parameters and buffers with PyTorch's names, train/eval mode,
//! and composition.
//!
//! A [`Module`] runs `forward` and lists its tensors through `visit`, each with its dotted
//! PyTorch name (`layer1.0.conv1.weight`) and whether it is a trained parameter or a buffer
//! (batch-norm running statistics). Everything else (`parameters`, `state_dict`,
//! `load_state_dict`) is derived from `visit` in [`ModuleExt`].

mod activation;
mod container;
mod conv;
mod dropout;
mod linear;
mod norm;
mod pool;
mod transformer;

pub use activation::{Activation, Gelu, Relu, Sigmoid, Silu, Tanh};
pub use container::{Flatten, Residual, Sequential};
pub use conv::Conv2d;
pub use dropout::Dropout;
pub use linear::Linear;
pub use norm::{BatchNorm, LayerNorm};
pub use pool::{AvgPool2d, GlobalAvgPool2d, MaxPool2d};
pub use transformer::{
    gpt_style_init, AsTrained, Block, CausalSelfAttention, KvCache, LinearWeights, Mlp,
    SelfAttention,
};

use crate::tensor::Tensor;
use anyhow::bail;

/// Whether a named tensor is trained or only carried along (running statistics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Parameter,
    Buffer,
}

/// A layer or a network.
///
/// `Any` lets the inference planner ([`crate::infer`]) recognise the library's layers
/// (`Sequential`, `Conv2d`, `BatchNorm`, ...) behind a `&dyn Module` and fuse them; a
/// module of your own exposes its chain of layers to it through [`crate::infer::Lower`].
pub trait Module: std::any::Any + Send + Sync {
    /// Applies the layer.
    fn forward(&self, x: &Tensor) -> Tensor;

    /// Calls `f` with every parameter and buffer, named under `prefix` as PyTorch names them.
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor, Role));

    /// Switches between training and evaluation behaviour (batch statistics, dropout).
    fn set_training(&mut self, _training: bool) {}
}

/// `prefix.name`, or `name` at the top level.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// What every module can do, derived from [`Module::visit`].
pub trait ModuleExt: Module {
    /// The trained parameters, in a fixed order (optimizer state is indexed by it).
    fn parameters(&self) -> Vec<Tensor> {
        self.named_parameters()
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        self.visit("", &mut |n, t, r| {
            if r == Role::Parameter {
                out.push((n.to_string(), t.clone()));
            }
        });
        out
    }

    /// Parameters and buffers by name, as PyTorch's `state_dict()`.
    fn state_dict(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        self.visit("", &mut |n, t, _| out.push((n.to_string(), t.clone())));
        out
    }

    /// Number of trained scalars.
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(Tensor::numel).sum()
    }

    /// Copies values into the module's tensors by name, strictly: every name must be present
    /// with the same shape and no unknown name may appear (PyTorch's `strict=True`).
    fn load_state_dict(&self, state: &[(String, Tensor)]) -> anyhow::Result<()> {
        let mine = self.state_dict();
        let missing: Vec<&str> = mine
            .iter()
            .filter(|(n, _)| !state.iter().any(|(s, _)| s == n))
            .map(|(n, _)| n.as_str())
            .collect();
        let unexpected: Vec<&str> = state
            .iter()
            .filter(|(s, _)| !mine.iter().any(|(n, _)| n == s))
            .map(|(s, _)| s.as_str())
            .collect();
        if !missing.is_empty() || !unexpected.is_empty() {
            bail!(
                "the weights do not fit this model: missing {:?}, unexpected {:?} (was the checkpoint written for another model?)",
                missing,
                unexpected
            );
        }
        for (name, t) in &mine {
            let (_, src) = state.iter().find(|(s, _)| s == name).unwrap();
            if src.shape() != t.shape() {
                bail!(
                    "the weights do not fit this model: '{name}' has shape {:?} in the checkpoint but {:?} in the model",
                    src.shape(),
                    t.shape()
                );
            }
        }
        for (name, t) in &mine {
            let (_, src) = state.iter().find(|(s, _)| s == name).unwrap();
            t.copy_from(src);
        }
        Ok(())
    }

    /// Forgets every parameter's gradient.
    fn zero_grad(&self) {
        for p in self.parameters() {
            p.zero_grad();
        }
    }
}

impl<M: Module + ?Sized> ModuleExt for M {}

//! Layers (modules): named parameters and buffers with PyTorch's names, train/eval mode,
//! and composition.
//!
//! A [`Module`] runs `forward`; `#[derive(Module)]` writes the rest ([`ModuleFields`]): it
//! lists the tensors with their dotted PyTorch names (`layer1.0.conv1.weight`) and whether
//! each is a trained parameter or a buffer (batch-norm running statistics), passes
//! train/eval mode to every sub-module and lists the children by name. Everything else
//! (`parameters`, `state_dict`, `load_state_dict`, `set_training`, `summary`) is derived
//! from that in [`ModuleExt`].

mod activation;
mod container;
mod conv;
#[cfg(test)]
mod derive_tests;
mod dropout;
mod fields;
mod linear;
mod norm;
mod pool;
pub mod summary;
mod transformer;

pub use activation::{Activation, Gelu, Relu, Sigmoid, Silu, Tanh};
pub use container::{Flatten, Residual, Sequential};
pub use conv::Conv2d;
pub use dropout::Dropout;
pub use fields::{visit_as_buffer, AsModule, ModuleFields, Visit};
pub use linear::Linear;
/// `#[derive(Module)]`: writes [`ModuleFields`] from a struct's fields (the rules are on
/// [`Visit`]); the macro and the trait share the name, as serde's `Serialize` does.
pub use neurite_derive::Module;
pub use norm::{BatchNorm, LayerNorm};
pub use pool::{AvgPool2d, GlobalAvgPool2d, MaxPool2d};
pub use summary::{summary, Summary, SummaryRow};
pub use transformer::{
    gpt_style_init, AsTrained, Block, CausalSelfAttention, KvCache, LinearWeights, Mlp,
    SelfAttention,
};

use crate::tensor::Tensor;
use anyhow::bail;

/// Whether a named tensor is trained or only carried along (running statistics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Trained by the optimizer.
    Parameter,
    /// Saved and loaded but not trained (running statistics).
    Buffer,
}

/// A layer or a network: `forward`, plus the registration of its tensors and sub-modules
/// ([`ModuleFields`]), which `#[derive(Module)]` writes from the struct's fields.
///
/// ```
/// use neurite::nn::{Conv2d, Linear, MaxPool2d, Module, ModuleExt};
/// use neurite::ops::conv::Conv2dOptions;
/// use neurite::Tensor;
///
/// #[derive(Module)]
/// struct Net {
///     conv: Conv2d,
///     pool: MaxPool2d,
///     fc: Linear,
///     classes: usize, // configuration: registers nothing
/// }
///
/// impl Module for Net {
///     fn forward(&self, x: &Tensor) -> Tensor {
///         let h = self.pool.forward(&self.conv.forward(x).relu()); // [N, 4, 14, 14]
///         self.fc.forward(&h.flatten(1)) // [N, classes]
///     }
/// }
///
/// let net = Net {
///     conv: Conv2d::new(1, 4, 3, Conv2dOptions::with(1, 1), true),
///     pool: MaxPool2d::new(2),
///     fc: Linear::new(4 * 14 * 14, 10, true),
///     classes: 10,
/// };
/// let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["conv.weight", "conv.bias", "fc.weight", "fc.bias"]);
/// assert_eq!(net.forward(&Tensor::zeros(&[2, 1, 28, 28])).shape(), &[2, 10]);
/// ```
///
/// `Any` lets the inference planner ([`crate::infer`]) recognise the library's layers
/// (`Sequential`, `Conv2d`, `BatchNorm`, ...) behind a `&dyn Module` and fuse them; a
/// module of your own exposes its chain of layers to it through [`crate::infer::Lower`]
/// (or the derive's `#[module(lower = "...")]`).
pub trait Module: ModuleFields + std::any::Any + Send + Sync {
    /// Applies the layer.
    fn forward(&self, x: &Tensor) -> Tensor;
}

/// `prefix.name`, or `name` at the top level.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// What every module can do, derived from [`ModuleFields`].
pub trait ModuleExt: Module {
    /// Switches this module and every sub-module between training and evaluation behaviour
    /// (batch statistics, dropout), as PyTorch's `train(mode)`.
    fn set_training(&mut self, training: bool) {
        self.set_training_mode(training);
    }

    /// Training mode (PyTorch's `model.train()`).
    fn train(&mut self) {
        self.set_training(true);
    }

    /// Evaluation mode (PyTorch's `model.eval()`).
    fn eval(&mut self) {
        self.set_training(false);
    }

    /// The direct sub-modules with their names (`conv1`, `blocks.0`), in registration
    /// order, as PyTorch's `named_children()` (a `Vec` of modules is listed element by
    /// element).
    fn named_children(&self) -> Vec<(String, &dyn Module)> {
        let mut out = Vec::new();
        self.visit_children("", &mut |n, m| out.push((n, m)));
        out
    }

    /// Every sub-module, depth first, with its dotted name (`layer1.0.conv1`), as PyTorch's
    /// `named_modules()` without the module itself.
    fn named_modules(&self) -> Vec<(String, &dyn Module)> {
        fn walk<'a>(prefix: &str, m: &'a dyn Module, out: &mut Vec<(String, &'a dyn Module)>) {
            let mut kids = Vec::new();
            m.visit_children(prefix, &mut |n, c| kids.push((n, c)));
            for (n, c) in kids {
                out.push((n.clone(), c));
                walk(&n, c, out);
            }
        }
        let mut out = Vec::new();
        let mut kids = Vec::new();
        self.visit_children("", &mut |n, c| kids.push((n, c)));
        for (n, c) in kids {
            out.push((n.clone(), c));
            walk(&n, c, &mut out);
        }
        out
    }

    /// A table of the layers (name, type, output shape, parameters) for an input of
    /// `input_shape`, with totals and memory, as torchinfo's `summary`; see [`summary()`].
    fn summary(&self, input_shape: &[usize]) -> Summary {
        summary::summary(self, input_shape)
    }

    /// The trained parameters, in a fixed order (optimizer state is indexed by it).
    fn parameters(&self) -> Vec<Tensor> {
        self.named_parameters()
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }

    /// The trained parameters with their dotted PyTorch names, in the order of `parameters()`.
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

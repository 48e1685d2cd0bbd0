//! `Linear`: `y = x · Wᵀ + b` with PyTorch's layout and default initialization.

use super::{summary, Module};
use crate::init;
use crate::tensor::Tensor;

/// A fully connected layer, `weight: [out, in]`, `bias: [out]`.
#[derive(Module)]
pub struct Linear {
    /// `[out_features, in_features]`
    pub weight: Tensor,
    /// `[out_features]`, when the layer has a bias.
    pub bias: Option<Tensor>,
}

impl Linear {
    /// PyTorch's default initialization (Kaiming-uniform weight, uniform bias).
    pub fn new(in_features: usize, out_features: usize, bias: bool) -> Linear {
        let (w, b) = init::linear_default(out_features, in_features);
        Linear {
            weight: w.requires_grad_(),
            bias: bias.then(|| b.requires_grad_()),
        }
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Tensor {
        summary::recorded(self, x.linear(&self.weight, self.bias.as_ref()))
    }
}

//! `Linear`: `y = x · Wᵀ + b` with PyTorch's layout and default initialization.

use super::{join, Module, Role};
use crate::init;
use crate::tensor::Tensor;

/// A fully connected layer, `weight: [out, in]`, `bias: [out]`.
pub struct Linear {
    pub weight: Tensor,
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
        x.linear(&self.weight, self.bias.as_ref())
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor, Role)) {
        f(&join(prefix, "weight"), &self.weight, Role::Parameter);
        if let Some(b) = &self.bias {
            f(&join(prefix, "bias"), b, Role::Parameter);
        }
    }
}

//! Composition: `Sequential` chains of named layers, residual connections, `Flatten`.

use super::{join, summary, BatchNorm, Module, ModuleFields, Relu, Role};
use crate::tensor::Tensor;
use std::any::Any;

/// Layers applied in order, each under its own name (`fc1`, `0`, `shortcut`).
#[derive(Default)]
pub struct Sequential {
    layers: Vec<(String, Box<dyn Module>)>,
}

impl Sequential {
    /// An empty chain (the identity).
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Appends a layer named `name` (builder style).
    pub fn add(mut self, name: impl Into<String>, layer: impl Module + 'static) -> Sequential {
        self.layers.push((name.into(), Box::new(layer)));
        self
    }

    /// Appends a layer named by its position, as `nn.Sequential` numbers its children.
    pub fn push(self, layer: impl Module + 'static) -> Sequential {
        let name = self.layers.len().to_string();
        self.add(name, layer)
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// True when there is no layer.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The layers in order, with their names (what the inference planner walks).
    pub fn layers(&self) -> impl Iterator<Item = (&str, &dyn Module)> {
        self.layers.iter().map(|(n, l)| (n.as_str(), l.as_ref()))
    }
}

/// Whether `layer` is a plain [`Relu`].
pub(crate) fn is_relu(layer: &dyn Module) -> bool {
    (layer as &dyn Any).is::<Relu>()
}

impl Module for Sequential {
    /// Each layer in turn; a batch norm followed by a ReLU runs both in one op
    /// ([`BatchNorm::forward_relu`], with its gradient). The fused inference forms
    /// (convolution + batch norm + ReLU, slices of a batch per thread) are the inference
    /// planner's ([`crate::infer::Plan`]), not this forward's.
    fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = x.clone();
        let mut i = 0;
        while i < self.layers.len() {
            let layer = self.layers[i].1.as_ref();
            let bn = (layer as &dyn Any).downcast_ref::<BatchNorm>();
            let relu_next = self.layers.get(i + 1).is_some_and(|(_, l)| is_relu(&**l));
            match bn {
                Some(bn) if relu_next => {
                    h = bn.forward_relu(&h);
                    summary::record_dyn(layer, &h);
                    summary::record_dyn(self.layers[i + 1].1.as_ref(), &h);
                    i += 2;
                }
                _ => {
                    h = layer.forward(&h);
                    i += 1;
                }
            }
        }
        summary::recorded(self, h)
    }
}

/// By hand: the layers' names are chosen at run time, not fields.
impl ModuleFields for Sequential {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor, Role)) {
        for (name, layer) in &self.layers {
            layer.visit(&join(prefix, name), f);
        }
    }

    fn set_training_mode(&mut self, training: bool) {
        for (_, layer) in &mut self.layers {
            layer.set_training_mode(training);
        }
    }

    fn visit_children<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a dyn Module)) {
        for (name, layer) in &self.layers {
            f(join(prefix, name), layer.as_ref());
        }
    }
}

/// `activation(body(x) + shortcut(x))`, the residual connection of ResNet; the shortcut is
/// the identity when absent. The body's layers are named directly under the block
/// (`layer1.0.conv1`), the shortcut's under `shortcut` (`layer2.0.shortcut.0`).
#[derive(Module)]
pub struct Residual {
    #[module(flatten)]
    /// The layers of the residual branch.
    pub body: Sequential,
    /// The projection of the input when the body changes its shape (`None`: the identity).
    pub shortcut: Option<Sequential>,
    /// Apply a ReLU after the sum (ResNet's basic block).
    pub relu_after: bool,
}

impl Module for Residual {
    fn forward(&self, x: &Tensor) -> Tensor {
        let skip = match &self.shortcut {
            Some(s) => s.forward(x),
            None => x.clone(),
        };
        let y = self.body.forward(x);
        let y = if self.relu_after {
            y.add_relu(&skip)
        } else {
            y.add(&skip)
        };
        summary::recorded(self, y)
    }
}

/// `[N, ...] -> [N, prod(...)]`.
#[derive(Module)]
pub struct Flatten;

impl Module for Flatten {
    fn forward(&self, x: &Tensor) -> Tensor {
        summary::recorded(self, x.flatten(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Sigmoid;

    #[test]
    fn a_batch_norm_takes_the_relu_after_it() {
        let x = Tensor::randn(&[4, 3, 2, 2], 0.0, 1.0);
        let xg = Tensor::from_vec(x.to_vec(), x.shape()).requires_grad_();
        let fused = Sequential::new()
            .add("bn", BatchNorm::new(3))
            .add("relu", Relu)
            .forward(&xg);
        assert_eq!(fused.op_name(), Some("batch_norm_relu"));
        let plain = BatchNorm::new(3).forward(&x).relu();
        assert_eq!(fused.to_vec(), plain.to_vec());
        // Nothing to fuse: each layer on its own.
        let y = Sequential::new()
            .add("bn", BatchNorm::new(3))
            .add("act", Sigmoid)
            .add("relu", Relu)
            .forward(&xg);
        assert_eq!(y.op_name(), Some("relu"));
    }
}

//! Composition: `Sequential` chains of named layers, residual connections, `Flatten`.

use super::{join, Module, Role};
use crate::runtime::threads::{as_piece, inside_kernel, num_threads};
use crate::tensor::Tensor;
use rayon::prelude::*;

/// Samples per slice when [`Sequential`] runs a large batch slice by slice without autograd.
/// W6 with `resnet20` (batch 1000, 2 threads) ran 1,127 images/s as one batch and 1,491 -
/// 1,640 with slices of 8 to 125; `lenet5` 55,900 as one batch and 53,400 - 71,100 with
/// slices of 32 to 250. A slice's activations stay in the caches from one layer to the
/// next, and each thread runs its own slice through every layer without waiting for the
/// other at each one.
const INFERENCE_SLICE: usize = 64;

/// Layers applied in order, each under its own name (`fc1`, `0`, `shortcut`).
#[derive(Default)]
pub struct Sequential {
    layers: Vec<(String, Box<dyn Module>)>,
}

impl Sequential {
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

    pub fn len(&self) -> usize {
        self.layers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Layer `i` on `h` with the batch norm in evaluation and/or the ReLU that follow it, in
    /// the layer's own output pass, and how many layers that took; `None` when nothing
    /// follows to fuse or the layer has no fused form.
    fn fused_inference(&self, i: usize, h: &Tensor) -> Option<(Tensor, usize)> {
        let layer = |j: usize| self.layers.get(j).map(|(_, l)| l.as_ref());
        let affine = layer(i + 1).and_then(|l| l.eval_channel_affine());
        let after = i + 1 + usize::from(affine.is_some());
        let relu = layer(after).is_some_and(|l| l.is_relu());
        if affine.is_none() && !relu {
            return None;
        }
        let affine = affine.as_ref().map(|(s, t)| (&s[..], &t[..]));
        let y = layer(i)?.forward_inference(h, affine, relu)?;
        Some((y, after - i + usize::from(relu)))
    }
}

impl Sequential {
    /// Without autograd, a batch of at least two slices of [`INFERENCE_SLICE`] samples
    /// through a chain of per-sample layers ([`Module::samples_independent`]) runs slice by
    /// slice, the threads taking whole slices through every layer, and the outputs are
    /// joined again. Each sample's values are computed by the same kernels as in one batch,
    /// but a matrix product's summation order may depend on its number of rows, so they can
    /// differ from the whole batch's in the last bits. `None` when this does not apply
    /// (training, small batches, one thread, or already inside a parallel kernel).
    fn forward_in_slices(&self, x: &Tensor) -> Option<Tensor> {
        let n = *x.shape().first()?;
        let applies = !crate::is_grad_enabled()
            && x.rank() >= 2
            && n >= 2 * INFERENCE_SLICE
            && num_threads() > 1
            && !inside_kernel()
            && self.samples_independent();
        if !applies {
            return None;
        }
        let slices: Vec<Tensor> = (0..n.div_ceil(INFERENCE_SLICE))
            .into_par_iter()
            .map(|i| {
                let start = i * INFERENCE_SLICE;
                let len = INFERENCE_SLICE.min(n - start);
                // Autograd's switch is per thread: this worker's must be off too.
                as_piece(|| {
                    crate::no_grad(|| self.forward_layers(&x.narrow(0, start, len).contiguous()))
                })
            })
            .collect();
        Some(Tensor::cat(&slices.iter().collect::<Vec<_>>(), 0))
    }

    /// Each layer in turn (see [`Module::forward`] for `Sequential`).
    fn forward_layers(&self, x: &Tensor) -> Tensor {
        let mut h = x.clone();
        let mut i = 0;
        let inference = !crate::is_grad_enabled();
        while i < self.layers.len() {
            if let Some((y, taken)) = inference.then(|| self.fused_inference(i, &h)).flatten() {
                h = y;
                i += taken;
                continue;
            }
            let layer = &self.layers[i].1;
            let relu_next = self.layers.get(i + 1).is_some_and(|(_, l)| l.is_relu());
            if let Some(y) = relu_next.then(|| layer.forward_relu(&h)).flatten() {
                h = y;
                i += 2;
            } else {
                h = layer.forward(&h);
                i += 1;
            }
        }
        h
    }
}

impl Module for Sequential {
    /// Each layer in turn; a layer followed by a ReLU that it can fuse
    /// ([`Module::forward_relu`]) runs both in one go, and without autograd a layer also
    /// takes a batch norm in evaluation after it ([`Module::forward_inference`]), and a
    /// large batch runs slice by slice (`forward_in_slices`).
    fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_in_slices(x)
            .unwrap_or_else(|| self.forward_layers(x))
    }

    fn samples_independent(&self) -> bool {
        self.layers.iter().all(|(_, l)| l.samples_independent())
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor, Role)) {
        for (name, layer) in &self.layers {
            layer.visit(&join(prefix, name), f);
        }
    }

    fn set_training(&mut self, training: bool) {
        for (_, layer) in &mut self.layers {
            layer.set_training(training);
        }
    }
}

/// `activation(body(x) + shortcut(x))`, the residual connection of ResNet; the shortcut is
/// the identity when absent.
pub struct Residual {
    pub body: Sequential,
    pub shortcut: Option<Sequential>,
    pub relu_after: bool,
}

impl Module for Residual {
    fn forward(&self, x: &Tensor) -> Tensor {
        let skip = match &self.shortcut {
            Some(s) => s.forward(x),
            None => x.clone(),
        };
        let y = self.body.forward(x);
        if self.relu_after {
            y.add_relu(&skip)
        } else {
            y.add(&skip)
        }
    }

    fn samples_independent(&self) -> bool {
        self.body.samples_independent()
            && self
                .shortcut
                .as_ref()
                .is_none_or(|s| s.samples_independent())
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor, Role)) {
        self.body.visit(prefix, f);
        if let Some(s) = &self.shortcut {
            s.visit(&join(prefix, "shortcut"), f);
        }
    }

    fn set_training(&mut self, training: bool) {
        self.body.set_training(training);
        if let Some(s) = &mut self.shortcut {
            s.set_training(training);
        }
    }
}

/// `[N, ...] -> [N, prod(...)]`.
pub struct Flatten;

impl Module for Flatten {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.flatten(1)
    }

    fn samples_independent(&self) -> bool {
        true
    }

    fn visit(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Tensor, Role)) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{BatchNorm, Conv2d, Relu, Sigmoid};
    use crate::ops::conv::Conv2dOptions;

    #[test]
    fn a_layer_with_a_fused_form_takes_the_relu_after_it() {
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

    /// A batch norm in evaluation with running statistics and an affine of its own.
    fn trained_batch_norm(c: usize) -> BatchNorm {
        let mut bn = BatchNorm::new(c);
        let vals = |seed: f32| (0..c).map(|i| seed + 0.37 * i as f32).collect::<Vec<_>>();
        bn.running_mean
            .with_slice_mut(|m| m.copy_from_slice(&vals(-0.4)));
        bn.running_var
            .with_slice_mut(|v| v.copy_from_slice(&vals(0.6)));
        bn.weight.with_slice_mut(|w| w.copy_from_slice(&vals(0.8)));
        bn.bias.with_slice_mut(|b| b.copy_from_slice(&vals(-0.1)));
        bn.set_training(false);
        bn
    }

    #[test]
    fn without_autograd_a_convolution_takes_the_batch_norm_and_relu_after_it() {
        let conv = |cin, cout, bias| Conv2d::new(cin, cout, 3, Conv2dOptions::with(1, 1), bias);
        let conv_s2 = |cin, cout| Conv2d::new(cin, cout, 3, Conv2dOptions::with(2, 1), false);
        let net = Sequential::new()
            .add("conv1", conv(3, 8, false))
            .add("bn1", trained_batch_norm(8))
            .add("relu", Relu)
            .add("conv2", conv(8, 8, true)) // bias, then a batch norm: both applied
            .add("bn2", trained_batch_norm(8))
            .add("conv3", conv_s2(8, 7)) // the column engine's epilogue
            .add("bn3", trained_batch_norm(7))
            .add("relu3", Relu)
            .add("conv4", conv(7, 5, true)) // bias and ReLU, no batch norm
            .add("relu4", Relu)
            .add("act", Sigmoid);
        let x = Tensor::randn(&[3, 3, 10, 9], 0.0, 1.0);
        let plain = net.forward(&x); // with autograd: each layer on its own
        let fused = crate::no_grad(|| net.forward(&x));
        assert_eq!(plain.shape(), fused.shape());
        assert_eq!(plain.to_vec(), fused.to_vec());
        assert!(plain.requires_grad() && !fused.requires_grad());
        // In training a batch norm uses the batch's statistics: nothing is folded, and the
        // running statistics still move.
        let bn = BatchNorm::new(4);
        let running_mean = bn.running_mean.clone(); // the same storage
        let net = Sequential::new()
            .add("conv", conv(3, 4, false))
            .add("bn", bn);
        let y = crate::no_grad(|| net.forward(&x)).to_vec(); // [3, 4, 10, 9]
        let first = y.chunks_exact(90).step_by(4).flatten().sum::<f32>() / 270.0;
        assert!(first.abs() < 1e-5, "channel 0's batch mean {first}");
        assert!(running_mean.to_vec().iter().all(|&m| m != 0.0));
    }

    /// A small image classifier: convolution, batch norm, ReLU, pooling, a residual block,
    /// flattening, dropout and a linear layer.
    fn classifier() -> Sequential {
        let conv = |cin, cout| Conv2d::new(cin, cout, 3, Conv2dOptions::with(1, 1), false);
        Sequential::new()
            .add("conv", conv(1, 4))
            .add("bn", trained_batch_norm(4))
            .add("relu", Relu)
            .add("pool", crate::nn::MaxPool2d::new(2))
            .add(
                "block",
                Residual {
                    body: Sequential::new().add("conv", conv(4, 4)),
                    shortcut: None,
                    relu_after: true,
                },
            )
            .add("flatten", Flatten)
            .add("drop", crate::nn::Dropout::new(0.5))
            .add("fc", crate::nn::Linear::new(4 * 3 * 3, 5, true))
    }

    #[test]
    fn a_large_batch_without_autograd_runs_in_slices_with_the_batch_values() {
        let mut net = classifier();
        net.set_training(false);
        // Two whole slices and a partial one.
        let x = Tensor::randn(&[2 * INFERENCE_SLICE + 5, 1, 6, 6], 0.0, 1.0);
        let whole = net.forward(&x); // autograd on: one batch, layer by layer
        crate::run_on_worker(|| {
            crate::no_grad(|| {
                let sliced = net.forward(&x);
                assert_eq!(sliced.shape(), whole.shape());
                let err = sliced
                    .to_vec()
                    .iter()
                    .zip(whole.to_vec())
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(err < 1e-5, "largest difference {err}");
                // Where there are threads to share the slices, the slices did run.
                assert_eq!(net.forward_in_slices(&x).is_some(), num_threads() > 1);
                // One slice's worth is one batch.
                let small = x.narrow(0, 0, INFERENCE_SLICE).contiguous();
                assert!(net.forward_in_slices(&small).is_none());
            })
        });
        // Never with autograd on, nor in training (batch statistics, dropout's draws).
        assert!(net.forward_in_slices(&x).is_none());
        net.set_training(true);
        assert!(!net.samples_independent());
        crate::no_grad(|| assert!(net.forward_in_slices(&x).is_none()));
    }
}

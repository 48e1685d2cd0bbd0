//! The planner's tests: planned forwards against the layers' plain ones.

use super::slice::INFERENCE_SLICE;
use super::*;
use crate::autograd::run_on_worker;
use crate::models::gpt::{Gpt, GptConfig};
use crate::nn::{
    BatchNorm, Conv2d, Dropout, Flatten, KvCache, Linear, LinearWeights, MaxPool2d, ModuleExt,
    Relu, Residual, Sequential, Sigmoid,
};
use crate::ops::conv::Conv2dOptions;
use crate::ops::matmul::PackedLinear;
use crate::runtime::threads::num_threads;
use crate::tensor::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;

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
fn a_convolution_takes_the_batch_norm_and_relu_after_it() {
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
    let plan = Plan::new(&net);
    assert_eq!(
        plan.describe(),
        [
            "conv+bn+relu",
            "conv+bn",
            "conv+bn+relu",
            "conv+relu",
            "sigmoid"
        ]
    );
    let x = Tensor::randn(&[3, 3, 10, 9], 0.0, 1.0);
    let plain = net.forward(&x); // with autograd: each layer on its own
    let fused = plan.forward(&x);
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
    let plan = Plan::new(&net);
    assert_eq!(plan.describe(), ["conv", "bn"]);
    let y = plan.forward(&x).to_vec(); // [3, 4, 10, 9]
    let first = y.chunks_exact(90).step_by(4).flatten().sum::<f32>() / 270.0;
    assert!(first.abs() < 1e-5, "channel 0's batch mean {first}");
    assert!(running_mean.to_vec().iter().all(|&m| m != 0.0));
}

#[test]
fn a_batch_norm_and_a_linear_layer_take_the_relu_after_them() {
    let net = Sequential::new()
        .add("bn", trained_batch_norm(6))
        .add("relu", Relu)
        .add("fc", Linear::new(6, 9, true))
        .add("relu2", Relu)
        .add("fc2", Linear::new(9, 3, false));
    let plan = Plan::new(&net);
    assert_eq!(plan.describe(), ["bn+relu", "linear+relu", "linear"]);
    let x = Tensor::randn(&[5, 6], 0.0, 1.0);
    let plain = net.forward(&x).to_vec();
    let fused = plan.forward(&x).to_vec();
    assert_eq!(plain, fused);
    assert!(plain.iter().any(|&v| v != 0.0));
}

/// A small image classifier: convolution, batch norm, ReLU, pooling, a residual block,
/// flattening, dropout and a linear layer.
fn classifier() -> Sequential {
    let conv = |cin, cout| Conv2d::new(cin, cout, 3, Conv2dOptions::with(1, 1), false);
    Sequential::new()
        .add("conv", conv(1, 4))
        .add("bn", trained_batch_norm(4))
        .add("relu", Relu)
        .add("pool", MaxPool2d::new(2))
        .add(
            "block",
            Residual {
                body: Sequential::new().add("conv", conv(4, 4)),
                shortcut: None,
                relu_after: true,
            },
        )
        .add("flatten", Flatten)
        .add("drop", Dropout::new(0.5))
        .add("fc", Linear::new(4 * 3 * 3, 5, true))
}

#[test]
fn a_large_batch_runs_in_slices_with_the_batch_values() {
    let mut net = classifier();
    net.set_training(false);
    // Two whole slices and a partial one.
    let x = Tensor::randn(&[2 * INFERENCE_SLICE + 5, 1, 6, 6], 0.0, 1.0);
    let whole = net.forward(&x); // autograd on: one batch, layer by layer
    let plan = Plan::new(&net);
    assert_eq!(
        plan.describe(),
        [
            "conv+bn+relu",
            "maxpool",
            "residual(conv)",
            "flatten",
            "dropout",
            "linear"
        ]
    );
    run_on_worker(|| {
        let sliced = plan.forward(&x);
        assert_eq!(sliced.shape(), whole.shape());
        let err = sliced
            .to_vec()
            .iter()
            .zip(whole.to_vec())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 1e-5, "largest difference {err}");
        // Where there are threads to share the slices, the slices did run.
        assert_eq!(plan.slices(&x), num_threads() > 1);
        // One slice's worth is one batch.
        let small = x.narrow(0, 0, INFERENCE_SLICE).contiguous();
        assert!(!plan.slices(&small));
    });
    // Never in training (batch statistics, dropout's draws).
    net.set_training(true);
    assert!(!Plan::new(&net).slices(&x));
}

/// A module of a user's own: a convolution, batch norm and ReLU as fields.
#[derive(crate::nn::Module)]
struct UserBlock {
    conv: Conv2d,
    bn: BatchNorm,
    relu: Relu,
    head: Sequential,
}

impl Module for UserBlock {
    fn forward(&self, x: &Tensor) -> Tensor {
        let h = self.relu.forward(&self.bn.forward(&self.conv.forward(x)));
        self.head.forward(&h)
    }
}

impl Lower for UserBlock {
    fn lower(&self) -> Vec<&dyn Module> {
        vec![&self.conv, &self.bn, &self.relu, &self.head]
    }
}

#[test]
fn a_user_module_gets_the_fused_path_through_lower() {
    let m = UserBlock {
        conv: Conv2d::new(2, 3, 3, Conv2dOptions::with(1, 1), true),
        bn: trained_batch_norm(3),
        relu: Relu,
        head: Sequential::new()
            .add("flatten", Flatten)
            .add("fc", Linear::new(3 * 5 * 5, 4, true))
            .add("relu", Relu),
    };
    let plan = Plan::of(&m);
    assert_eq!(
        plan.describe(),
        ["conv+bn+relu", "chain(flatten, linear+relu)"]
    );
    let x = Tensor::randn(&[2 * INFERENCE_SLICE, 2, 5, 5], 0.0, 1.0);
    let plain = m.forward(&x).to_vec();
    let fused = plan.forward(&x).to_vec();
    assert_eq!(plain.len(), fused.len());
    for (a, b) in plain.iter().zip(&fused) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    // Every layer is per-sample: a batch of two slices is sliced where there are threads.
    assert_eq!(run_on_worker(|| plan.slices(&x)), num_threads() > 1);
    // Without `Lower` the planner cannot see inside: one plain step, the same values.
    let opaque = Plan::new(&m);
    assert_eq!(opaque.describe(), ["module"]);
    assert_eq!(opaque.forward(&x).to_vec(), plain);
    assert!(!opaque.slices(&x));
}

#[test]
fn packed_linear_matches_the_plain_product() {
    crate::manual_seed(5);
    let x = Tensor::randn(&[2, 9, 20], 0.0, 1.0); // [B, T, in]
    let w = Tensor::randn(&[35, 20], 0.0, 1.0).requires_grad_(); // [out, in]
    let b = Tensor::randn(&[35], 0.0, 1.0);
    let plain = crate::no_grad(|| x.linear(&w, Some(&b))).to_vec();
    let packed = PackedLinear::new(&w, Some(&b));
    assert_eq!(packed.dims(), (35, 20));
    let y = x.linear_packed(&packed, false);
    assert_eq!(y.shape(), &[2, 9, 35]);
    assert!(!y.requires_grad());
    for (p, f) in plain.iter().zip(y.to_vec()) {
        assert!((p - f).abs() <= 1e-4 * (1.0 + p.abs()), "{p} vs {f}");
    }
    // The packed copy is the weight as it was: a later change is not seen.
    w.with_slice_mut(|v| v.iter_mut().for_each(|e| *e = 0.0));
    assert_eq!(x.linear_packed(&packed, false).to_vec(), y.to_vec());
    let zero = x.linear_packed(&PackedLinear::new(&w, None), false);
    assert!(zero.to_vec().iter().all(|&v| v == 0.0));
}

#[test]
fn packed_linear_gelu_is_the_linear_then_the_gelu() {
    crate::manual_seed(6);
    let x = Tensor::randn(&[3, 7, 24], 0.0, 1.0); // [B, T, in]
    let w = Tensor::randn(&[37, 24], 0.0, 0.5).requires_grad_(); // [out, in]: a tail panel
    let b = Tensor::randn(&[37], 0.0, 1.0).requires_grad_();
    let packed = PackedLinear::new(&w, Some(&b));
    let fused = x.linear_packed(&packed, true);
    let separate = x.linear_packed(&packed, false).gelu();
    assert_eq!(fused.shape(), &[3, 7, 37]);
    assert_eq!(fused.to_vec(), separate.to_vec());
    let values = fused.to_vec();
    assert!(values.iter().any(|&v| v > 0.5) && values.iter().any(|&v| v < -0.05));
    // The layers' own weights: the composite, with its gradient.
    let y = crate::nn::AsTrained.linear_of(&x, &w, Some(&b), true);
    assert_eq!(y.op_name(), Some("gelu"));
    for (p, f) in y.to_vec().iter().zip(&values) {
        assert!((p - f).abs() <= 1e-4 * (1.0 + p.abs()), "{p} vs {f}");
    }
}

fn tiny_gpt() -> Gpt {
    Gpt::new(GptConfig {
        vocab: 256,
        block_size: 16,
        n_layer: 2,
        n_head: 2,
        n_embd: 16,
    })
}

#[test]
fn cached_sampling_matches_full_recomputation() {
    crate::manual_seed(3);
    let m = tiny_gpt();
    let plan = GptPlan::new(&m);
    // Four linear layers per block and the tied output projection.
    assert_eq!(plan.weights().len(), 4 * 2 + 1);
    let opts = SampleOptions {
        temperature: 1.0,
        top_k: Some(40),
        seed: 7,
        use_cache: true,
    };
    let no_cache = SampleOptions {
        use_cache: false,
        ..opts
    };
    // 30 tokens after 5: the window slides past block_size 16
    let cached = plan.generate(&[1, 2, 3, 4, 5], 30, opts, &mut |_| {});
    let full = plan.generate(&[1, 2, 3, 4, 5], 30, no_cache, &mut |_| {});
    assert_eq!(cached, full);
    assert_eq!(m.generate(&[1, 2, 3, 4, 5], 30, opts, &mut |_| {}), cached);
    // logits of a cached step equal the full forward's last position
    let seq: Vec<usize> = (0..10).map(|i| i * 31 % 256).collect();
    let mut caches = vec![KvCache::default(); m.h.len()];
    plan.logits(&seq[..9], (1, 9), 0, Some(&mut caches), false);
    let step = plan
        .logits(&seq[9..], (1, 1), 9, Some(&mut caches), false)
        .to_vec();
    let full = crate::no_grad(|| m.forward_tokens(&seq, 1, 10));
    let last = full.narrow(1, 9, 1).to_vec();
    for (a, b) in step.iter().zip(&last) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
    // the re-encoding of a window: the last row, from the last block's one row
    let window: Vec<usize> = (0..16).map(|i| i * 17 % 256).collect();
    let one = plan.logits(&window, (1, 16), 0, None, true);
    assert_eq!(one.shape(), &[1, 1, 256]);
    let full = crate::no_grad(|| m.forward_tokens(&window, 1, 16).narrow(1, 15, 1).to_vec());
    for (a, b) in one.to_vec().iter().zip(&full) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
    // a prompt longer than the window starts with a full window: the same tokens as
    // sampling by hand from the full forward's last row of each window
    let long: Vec<usize> = (0..20).collect();
    let cached = plan.generate(&long, 6, opts, &mut |_| {});
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut seq = long.clone();
    for _ in 0..6 {
        let ctx = &seq[seq.len() - 16..];
        let logits = crate::no_grad(|| m.forward_tokens(ctx, 1, 16).narrow(1, 15, 1).to_vec());
        let next = sample(&logits, opts.temperature, opts.top_k, &mut rng);
        seq.push(next);
    }
    assert_eq!(cached, seq[20..]);
    assert_eq!(cached, plan.generate(&long, 6, no_cache, &mut |_| {}));
}

/// `lower(...)`: the derive writes the planner's layer list.
#[derive(crate::nn::Module)]
#[module(lower = "conv, bn, relu, pool, flatten, fc")]
struct Cnn {
    conv: Conv2d,
    bn: BatchNorm,
    relu: Relu,
    pool: MaxPool2d,
    flatten: Flatten,
    fc: Box<dyn Module>,
}

impl Module for Cnn {
    fn forward(&self, x: &Tensor) -> Tensor {
        let h = self.relu.forward(&self.bn.forward(&self.conv.forward(x)));
        self.fc
            .forward(&self.flatten.forward(&self.pool.forward(&h)))
    }
}

#[test]
fn lower_lists_the_layers_for_the_planner() {
    let mut m = Cnn {
        conv: Conv2d::new(1, 2, 3, Conv2dOptions::with(1, 1), true),
        bn: BatchNorm::new(2),
        relu: Relu,
        pool: MaxPool2d::new(2),
        flatten: Flatten,
        fc: Box::new(Linear::new(2 * 4 * 4, 3, true)),
    };
    m.eval();
    assert_eq!(m.lower().len(), 6);
    let plan = Plan::of(&m);
    assert_eq!(
        plan.describe(),
        ["conv+bn+relu", "maxpool", "flatten", "linear"]
    );
    let x = Tensor::randn(&[2, 1, 8, 8], 0.0, 1.0);
    let (a, b) = (
        plan.forward(&x).to_vec(),
        crate::no_grad(|| m.forward(&x)).to_vec(),
    );
    for (a, b) in a.iter().zip(&b) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

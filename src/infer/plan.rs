//! [`Plan`]: a module's fused inference form, and how it runs.

use super::{fuse, slice, Lower};
use crate::nn::{BatchNorm, Conv2d, Linear, Module};
use crate::tensor::Tensor;

/// One step of a plan.
pub(super) enum Step<'m> {
    /// A convolution storing `y * scale[o] + shift[o]` (a batch norm in evaluation), then a
    /// ReLU, as it writes its output; at least one of the two is there.
    Conv {
        conv: &'m Conv2d,
        affine: Option<(Vec<f32>, Vec<f32>)>,
        relu: bool,
    },
    /// A batch norm and the ReLU after it, in one op.
    BatchNormRelu(&'m BatchNorm),
    /// A linear layer, then a ReLU on its fresh output in place.
    LinearRelu(&'m Linear),
    /// `body(x) + shortcut(x)` (the identity when absent), then a ReLU when `relu`.
    Residual {
        body: Plan<'m>,
        shortcut: Option<Plan<'m>>,
        relu: bool,
    },
    /// A chain of its own (a nested `Sequential`, a module that implements [`Lower`]).
    Chain(Plan<'m>),
    /// A layer run by its plain `forward`; `per_sample` when its samples are independent.
    Layer {
        layer: &'m dyn Module,
        per_sample: bool,
    },
}

/// A module's fused inference form (see the [module docs](super)): its layers as steps,
/// each run without autograd. It borrows the module and reads the weights it folds (batch
/// norms' maps) when built.
pub struct Plan<'m> {
    pub(super) steps: Vec<Step<'m>>,
    /// Whether every step treats the samples of a batch independently (slicing allowed).
    pub(super) per_sample: bool,
}

impl<'m> Plan<'m> {
    /// The plan of `model`: a `Sequential` (or `Residual`) fused layer by layer, any other
    /// module one step of its own `forward`. The module should be in evaluation mode
    /// (`set_training(false)`); in training, batch norms and dropouts run as they do in
    /// training and nothing is folded into them.
    pub fn new(model: &'m dyn Module) -> Plan<'m> {
        fuse::plan(model)
    }

    /// The plan of a module of your own that describes its layers ([`Lower`]).
    pub fn of<M: Lower>(model: &'m M) -> Plan<'m> {
        fuse::chain(&model.lower())
    }

    /// The plan's output for `x`, without autograd: fused steps, and a large batch in
    /// slices per thread when every step allows it ([`slice`]).
    pub fn forward(&self, x: &Tensor) -> Tensor {
        crate::no_grad(|| self.run(x))
    }

    /// Whether this plan would run `x` slice by slice.
    pub fn slices(&self, x: &Tensor) -> bool {
        slice::applies(x, self.per_sample)
    }

    /// One line per step: `conv+bn+relu`, `conv+relu`, `bn+relu`, `linear+relu`,
    /// `residual(...)`, `chain(...)`, or the layer's type for a plain step; what the
    /// planner made of the module.
    pub fn describe(&self) -> Vec<String> {
        self.steps.iter().map(Step::describe).collect()
    }

    /// The plan on `x` (autograd already off), in slices when they apply.
    fn run(&self, x: &Tensor) -> Tensor {
        if self.slices(x) {
            return slice::run(x, &|s| self.run_steps(s));
        }
        self.run_steps(x)
    }

    /// Each step in turn.
    fn run_steps(&self, x: &Tensor) -> Tensor {
        let mut h = x.clone();
        for step in &self.steps {
            h = step.run(&h);
        }
        h
    }
}

impl Step<'_> {
    fn run(&self, x: &Tensor) -> Tensor {
        match self {
            Step::Conv { conv, affine, relu } => {
                let affine = affine.as_ref().map(|(s, t)| (&s[..], &t[..]));
                x.conv2d_inference(
                    &conv.weight,
                    conv.bias.as_ref(),
                    conv.options,
                    affine,
                    *relu,
                )
            }
            Step::BatchNormRelu(bn) => bn.forward_relu(x),
            Step::LinearRelu(l) => {
                let y = x.linear(&l.weight, l.bias.as_ref());
                // The product's output is its own buffer: the ReLU needs no other.
                y.with_slice_mut(|v| v.iter_mut().for_each(|e| *e = e.max(0.0)));
                y
            }
            Step::Residual {
                body,
                shortcut,
                relu,
            } => {
                let skip = match shortcut {
                    Some(s) => s.run(x),
                    None => x.clone(),
                };
                let y = body.run(x);
                if *relu {
                    y.add_relu(&skip)
                } else {
                    y.add(&skip)
                }
            }
            Step::Chain(p) => p.run(x),
            Step::Layer { layer, .. } => layer.forward(x),
        }
    }

    fn describe(&self) -> String {
        match self {
            Step::Conv { affine, relu, .. } => {
                let mut s = String::from("conv");
                if affine.is_some() {
                    s.push_str("+bn");
                }
                if *relu {
                    s.push_str("+relu");
                }
                s
            }
            Step::BatchNormRelu(_) => "bn+relu".into(),
            Step::LinearRelu(_) => "linear+relu".into(),
            Step::Residual { body, shortcut, .. } => {
                let mut s = format!("residual({})", body.describe().join(", "));
                if let Some(sc) = shortcut {
                    s.push_str(&format!(" + ({})", sc.describe().join(", ")));
                }
                s
            }
            Step::Chain(p) => format!("chain({})", p.describe().join(", ")),
            Step::Layer { layer, .. } => fuse::type_name(*layer),
        }
    }

    /// Whether sample `i` of the step's output depends on sample `i` of its input alone.
    pub(super) fn per_sample(&self) -> bool {
        match self {
            Step::Conv { .. } | Step::LinearRelu(_) => true,
            Step::BatchNormRelu(bn) => !bn.is_training(),
            Step::Residual { body, shortcut, .. } => {
                body.per_sample && shortcut.as_ref().is_none_or(|s| s.per_sample)
            }
            Step::Chain(p) => p.per_sample,
            Step::Layer { per_sample, .. } => *per_sample,
        }
    }
}

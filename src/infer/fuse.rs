//! The fusion rules: a chain of layers, recognised by type, into plan steps.

use super::plan::{Plan, Step};
use crate::nn::{
    AvgPool2d, BatchNorm, Conv2d, Dropout, Flatten, Gelu, GlobalAvgPool2d, Linear, MaxPool2d,
    Module, Relu, Residual, Sequential, Sigmoid, Tanh,
};
use std::any::Any;

/// `layer` as its concrete type, when it is a `T`.
fn as_<T: Any>(layer: &dyn Module) -> Option<&T> {
    (layer as &dyn Any).downcast_ref::<T>()
}

/// The plan of `model`: a `Sequential`'s layers as the plan's own chain, any other module a
/// chain of one.
pub(super) fn plan(model: &dyn Module) -> Plan<'_> {
    match as_::<Sequential>(model) {
        Some(seq) => chain(&seq.layers().map(|(_, l)| l).collect::<Vec<_>>()),
        None => chain(&[model]),
    }
}

/// The steps of `layers` applied in order. A convolution takes the batch norm in
/// evaluation and/or the ReLU after it; a batch norm, and a linear layer, the ReLU after
/// it. Containers become plans of their own.
pub(super) fn chain<'m>(layers: &[&'m dyn Module]) -> Plan<'m> {
    let mut steps = Vec::new();
    let mut i = 0;
    let is_relu = |j: usize| layers.get(j).is_some_and(|l| as_::<Relu>(*l).is_some());
    while i < layers.len() {
        let layer = layers[i];
        if let Some(conv) = as_::<Conv2d>(layer) {
            let affine = layers
                .get(i + 1)
                .and_then(|l| as_::<BatchNorm>(*l))
                .and_then(BatchNorm::eval_channel_affine);
            let after = i + 1 + usize::from(affine.is_some());
            let relu = is_relu(after);
            if affine.is_some() || relu {
                steps.push(Step::Conv { conv, affine, relu });
                i = after + usize::from(relu);
                continue;
            }
        } else if let Some(bn) = as_::<BatchNorm>(layer).filter(|_| is_relu(i + 1)) {
            steps.push(Step::BatchNormRelu(bn));
            i += 2;
            continue;
        } else if let Some(l) = as_::<Linear>(layer).filter(|_| is_relu(i + 1)) {
            steps.push(Step::LinearRelu(l));
            i += 2;
            continue;
        }
        steps.push(single(layer));
        i += 1;
    }
    let per_sample = steps.iter().all(Step::per_sample);
    Plan { steps, per_sample }
}

/// The step of one layer on its own.
fn single(layer: &dyn Module) -> Step<'_> {
    if let Some(seq) = as_::<Sequential>(layer) {
        return Step::Chain(plan(seq));
    }
    if let Some(r) = as_::<Residual>(layer) {
        return Step::Residual {
            body: plan(&r.body),
            shortcut: r.shortcut.as_ref().map(|s| plan(s)),
            relu: r.relu_after,
        };
    }
    Step::Layer {
        layer,
        per_sample: per_sample(layer),
    }
}

/// Whether a layer run by its own `forward` treats the samples of a batch independently:
/// the per-sample layers always, a batch norm and a dropout in evaluation only (batch
/// statistics, a mask drawn over the batch), an unknown module never.
fn per_sample(layer: &dyn Module) -> bool {
    let any = layer as &dyn Any;
    if let Some(bn) = any.downcast_ref::<BatchNorm>() {
        return !bn.is_training();
    }
    if let Some(d) = any.downcast_ref::<Dropout>() {
        return !d.is_training();
    }
    any.is::<Conv2d>()
        || any.is::<Linear>()
        || any.is::<Relu>()
        || any.is::<Sigmoid>()
        || any.is::<Tanh>()
        || any.is::<Gelu>()
        || any.is::<MaxPool2d>()
        || any.is::<AvgPool2d>()
        || any.is::<GlobalAvgPool2d>()
        || any.is::<Flatten>()
}

/// A plain step's name in [`Plan::describe`]: the layer's type, lower case.
pub(super) fn type_name(layer: &dyn Module) -> String {
    let any = layer as &dyn Any;
    let known: [(bool, &str); 12] = [
        (any.is::<Conv2d>(), "conv"),
        (any.is::<Linear>(), "linear"),
        (any.is::<BatchNorm>(), "bn"),
        (any.is::<Relu>(), "relu"),
        (any.is::<Sigmoid>(), "sigmoid"),
        (any.is::<Tanh>(), "tanh"),
        (any.is::<Gelu>(), "gelu"),
        (any.is::<MaxPool2d>(), "maxpool"),
        (any.is::<AvgPool2d>(), "avgpool"),
        (any.is::<GlobalAvgPool2d>(), "globalavgpool"),
        (any.is::<Flatten>(), "flatten"),
        (any.is::<Dropout>(), "dropout"),
    ];
    known
        .iter()
        .find(|(is, _)| *is)
        .map_or("module", |(_, name)| name)
        .to_string()
}

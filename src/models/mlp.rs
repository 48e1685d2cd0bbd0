//! `mlp`: 784 -> 512 -> 256 -> 10 with ReLU (spec: `fc1`, `fc2`, `fc3`).

use crate::nn::{Flatten, Linear, Relu, Sequential};

/// The multi-layer perceptron of the spec; the input is flattened.
pub fn mlp(inputs: usize, classes: usize) -> Sequential {
    Sequential::new()
        .add("flatten", Flatten)
        .add("fc1", Linear::new(inputs, 512, true))
        .add("relu1", Relu)
        .add("fc2", Linear::new(512, 256, true))
        .add("relu2", Relu)
        .add("fc3", Linear::new(256, classes, true))
}

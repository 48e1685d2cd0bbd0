//! `lenet5`: LeNet-5 with ReLU and max pooling, as the spec defines it.

use crate::nn::{Conv2d, Flatten, Linear, MaxPool2d, Relu, Sequential};
use crate::ops::conv::Conv2dOptions;

/// conv1 (5x5, pad 2) -> pool -> conv2 (5x5) -> pool -> fc1 (400->120) -> fc2 -> fc3.
pub fn lenet5(channels: usize, classes: usize) -> Sequential {
    let pad2 = Conv2dOptions {
        padding: (2, 2),
        ..Default::default()
    };
    Sequential::new()
        .add("conv1", Conv2d::new(channels, 6, 5, pad2, true))
        .add("relu1", Relu)
        .add("pool1", MaxPool2d::new(2))
        .add(
            "conv2",
            Conv2d::new(6, 16, 5, Conv2dOptions::default(), true),
        )
        .add("relu2", Relu)
        .add("pool2", MaxPool2d::new(2))
        .add("flatten", Flatten)
        .add("fc1", Linear::new(400, 120, true))
        .add("relu3", Relu)
        .add("fc2", Linear::new(120, 84, true))
        .add("relu4", Relu)
        .add("fc3", Linear::new(84, classes, true))
}

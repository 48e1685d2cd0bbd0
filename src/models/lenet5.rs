//! `lenet5`: LeNet-5 with ReLU and max pooling, as the spec defines it.

use crate::nn::{Conv2d, Flatten, Linear, MaxPool2d, Relu, Sequential};
use crate::ops::conv::Conv2dOptions;

/// conv1 (5x5, pad 2) -> pool -> conv2 (5x5) -> pool -> fc1 (400->120) -> fc2 -> fc3, for
/// `channels x 28 x 28` images.
pub fn lenet5(channels: usize, classes: usize) -> Sequential {
    lenet5_for([channels, 28, 28], classes).expect("28 x 28 images fit LeNet-5")
}

/// The side after LeNet-5's feature extractor: `pool(conv2(pool(x)))` with conv1 keeping the
/// size (pad 2), 2 x 2 pools (floor) and conv2 taking 4 off; `None` below 12 pixels, where
/// conv2 or the second pool would have nothing left.
fn feature_side(side: usize) -> Option<usize> {
    let after_conv2 = (side / 2).checked_sub(4)?;
    (after_conv2 / 2 > 0).then_some(after_conv2 / 2)
}

/// LeNet-5 for `channels x height x width` images: the same layers, with `fc1` taking the
/// `16 x h' x w'` features the convolutions leave (`16 x 5 x 5 = 400` for 28 x 28). Sides
/// must be at least 12 pixels.
pub fn lenet5_for(
    [channels, height, width]: [usize; 3],
    classes: usize,
) -> anyhow::Result<Sequential> {
    let (Some(fh), Some(fw)) = (feature_side(height), feature_side(width)) else {
        anyhow::bail!(
            "lenet5 needs images of at least 12 x 12 pixels (two 5 x 5 convolutions and two \
             2 x 2 poolings); these are {height} x {width}: resize them (for an image folder, \
             --image-size 28)"
        );
    };
    let pad2 = Conv2dOptions {
        padding: (2, 2),
        ..Default::default()
    };
    Ok(Sequential::new()
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
        .add("fc1", Linear::new(16 * fh * fw, 120, true))
        .add("relu3", Relu)
        .add("fc2", Linear::new(120, 84, true))
        .add("relu4", Relu)
        .add("fc3", Linear::new(84, classes, true)))
}

//! `resnet20`: the CIFAR-style ResNet of He et al. (2016) with projection shortcuts.

use crate::nn::{BatchNorm, Conv2d, GlobalAvgPool2d, Linear, Relu, Residual, Sequential};
use crate::ops::conv::Conv2dOptions;

fn conv3x3(cin: usize, cout: usize, stride: usize) -> Conv2d {
    Conv2d::new(
        cin,
        cout,
        3,
        Conv2dOptions {
            stride: (stride, stride),
            padding: (1, 1),
            ..Default::default()
        },
        false,
    )
}

/// `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`.
fn basic_block(cin: usize, cout: usize, stride: usize) -> Residual {
    let body = Sequential::new()
        .add("conv1", conv3x3(cin, cout, stride))
        .add("bn1", BatchNorm::new(cout))
        .add("relu", Relu)
        .add("conv2", conv3x3(cout, cout, 1))
        .add("bn2", BatchNorm::new(cout));
    let shortcut = (stride != 1 || cin != cout).then(|| {
        let opts = Conv2dOptions {
            stride: (stride, stride),
            ..Default::default()
        };
        Sequential::new()
            .push(Conv2d::new(cin, cout, 1, opts, false))
            .push(BatchNorm::new(cout))
    });
    Residual {
        body,
        shortcut,
        relu_after: true,
    }
}

fn stage(cin: usize, cout: usize, stride: usize) -> Sequential {
    Sequential::new()
        .push(basic_block(cin, cout, stride))
        .push(basic_block(cout, cout, 1))
        .push(basic_block(cout, cout, 1))
}

/// resnet20 for `channels`-channel images: 3 stages of 3 basic blocks (16, 32, 64 channels).
pub fn resnet20(channels: usize, classes: usize) -> Sequential {
    Sequential::new()
        .add("conv1", conv3x3(channels, 16, 1))
        .add("bn1", BatchNorm::new(16))
        .add("relu", Relu)
        .add("layer1", stage(16, 16, 1))
        .add("layer2", stage(16, 32, 2))
        .add("layer3", stage(32, 64, 2))
        .add("pool", GlobalAvgPool2d)
        .add("fc", Linear::new(64, classes, true))
}

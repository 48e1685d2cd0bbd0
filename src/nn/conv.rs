//! `Conv2d`: 2-D convolution with shared weights (PyTorch layout `[out, in/groups, kh, kw]`).

use super::{summary, Module};
use crate::init;
use crate::ops::conv::Conv2dOptions;
use crate::tensor::Tensor;

/// A convolution layer.
#[derive(Module)]
pub struct Conv2d {
    /// `[out_channels, in_channels / groups, kh, kw]`
    pub weight: Tensor,
    /// `[out_channels]`, when the layer has a bias.
    pub bias: Option<Tensor>,
    /// Stride, padding, dilation and groups.
    pub options: Conv2dOptions,
}

impl Conv2d {
    /// A square-kernel convolution with PyTorch's default initialization.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        options: Conv2dOptions,
        bias: bool,
    ) -> Conv2d {
        let groups = options.groups.max(1);
        assert!(
            in_channels.is_multiple_of(groups) && out_channels.is_multiple_of(groups),
            "Conv2d: {groups} groups must divide {in_channels} input and {out_channels} output channels"
        );
        let (w, b) = init::conv2d_default(out_channels, in_channels / groups, kernel, kernel);
        Conv2d {
            weight: w.requires_grad_(),
            bias: bias.then(|| b.requires_grad_()),
            options,
        }
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Tensor {
        summary::recorded(
            self,
            x.conv2d(&self.weight, self.bias.as_ref(), self.options),
        )
    }
}

//! Pooling layers (no parameters).

use super::{Module, Role};
use crate::tensor::Tensor;

/// Max pooling; the gradient goes to the arg-max of each window.
pub struct MaxPool2d {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl MaxPool2d {
    /// A `kernel x kernel` window moved by `kernel` (PyTorch's default stride).
    pub fn new(kernel: usize) -> MaxPool2d {
        MaxPool2d {
            kernel,
            stride: kernel,
            padding: 0,
        }
    }
}

impl Module for MaxPool2d {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.max_pool2d(self.kernel, self.stride, self.padding)
    }

    fn visit(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Tensor, Role)) {}
}

/// Average pooling (padding counted in the average, as PyTorch's default).
pub struct AvgPool2d {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl AvgPool2d {
    pub fn new(kernel: usize) -> AvgPool2d {
        AvgPool2d {
            kernel,
            stride: kernel,
            padding: 0,
        }
    }
}

impl Module for AvgPool2d {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.avg_pool2d(self.kernel, self.stride, self.padding)
    }

    fn visit(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Tensor, Role)) {}
}

/// Mean over the spatial dimensions: `[N, C, H, W] -> [N, C]`.
pub struct GlobalAvgPool2d;

impl Module for GlobalAvgPool2d {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.global_avg_pool2d()
    }

    fn visit(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Tensor, Role)) {}
}

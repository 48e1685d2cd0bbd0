//! Pooling layers (no parameters).

use super::{summary, Module};
use crate::tensor::Tensor;

/// Max pooling; the gradient goes to the arg-max of each window.
#[derive(Module)]
pub struct MaxPool2d {
    /// Window size (square).
    pub kernel: usize,
    /// Step between windows.
    pub stride: usize,
    /// Padding on each side (never chosen as a maximum).
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
        summary::recorded(self, x.max_pool2d(self.kernel, self.stride, self.padding))
    }
}

/// Average pooling (padding counted in the average, as PyTorch's default).
#[derive(Module)]
pub struct AvgPool2d {
    /// Window size (square).
    pub kernel: usize,
    /// Step between windows.
    pub stride: usize,
    /// Zero padding on each side (counted in the average, as PyTorch's default).
    pub padding: usize,
}

impl AvgPool2d {
    /// Average pooling over `kernel x kernel` windows with stride `kernel`.
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
        summary::recorded(self, x.avg_pool2d(self.kernel, self.stride, self.padding))
    }
}

/// Mean over the spatial dimensions: `[N, C, H, W] -> [N, C]`.
#[derive(Module)]
pub struct GlobalAvgPool2d;

impl Module for GlobalAvgPool2d {
    fn forward(&self, x: &Tensor) -> Tensor {
        summary::recorded(self, x.global_avg_pool2d())
    }
}

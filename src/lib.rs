//! neurite: a deep-learning framework in Rust, for the CPU.
//!
//! The layers of the crate, bottom up:
//! - [`tensor`]: f32 tensors with shared storage and views;
//! - [`autograd`]: the dynamic graph and `backward`;
//! - [`kernels`]: the CPU arithmetic (GEMM, convolution, pooling), the backend seam;
//! - [`ops`]: differentiable operations, forward and backward side by side;
//! - [`init`]: seeded weight initialization (Xavier, Kaiming, PyTorch defaults);
//! - [`gradcheck`]: finite-difference checks of every op;
//! - [`data`]: data sets, normalization, augmentation and mini-batch loading;
//! - [`train`]: the training loop, evaluation, metrics and checkpoints of a run;
//! - [`classic`]: the perceptron and the linear and kernel SVMs;
//! - [`cli`]: the `neurite` command;
//! - `fuzz` (hidden): the in-tree fuzzer of every file parser (`examples/fuzz.rs`).

pub mod autograd;
pub mod checkpoint;
pub mod classic;
pub mod cli;
pub mod data;
#[doc(hidden)]
pub mod fuzz;
pub mod gradcheck;
pub mod init;
pub mod kernels;
pub mod lm;
pub mod models;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod tensor;
pub mod train;
pub mod validate;
pub mod viz;

pub use autograd::{is_grad_enabled, no_grad, NoGradGuard};
pub use kernels::parallel::run_on_worker;
pub use ops::frozen::frozen_weights;
pub use tensor::rng::manual_seed;
pub use tensor::Tensor;

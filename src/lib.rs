//! neurite: a deep-learning framework in Rust, for the CPU.
//!
//! The modules, in groups, bottom up:
//!
//! - **Arithmetic**: [`kernels`] (the CPU arithmetic over slices: GEMM, convolution,
//!   pooling, attention, each with a plain reference; the backend seam), [`tensor`] (f32
//!   tensors with shared storage and views), [`autograd`] (the dynamic graph and
//!   `backward`), [`ops`] (differentiable operations, forward and backward side by side),
//!   [`gradcheck`] (finite-difference checks of every op).
//! - **Networks**: [`init`] (seeded Xavier, Kaiming and PyTorch-default initialization),
//!   [`nn`] (modules with PyTorch parameter names), [`optim`] (SGD, Adam(W), clipping,
//!   schedules), [`models`] (the zoo: mlp, lenet5, resnet20, gpt, vit), [`infer`] (a
//!   trained module's fused inference form as a value: `Plan`, `GptPlan`, sampling).
//! - **Runs**: [`data`] (IDX data sets, normalization, augmentation, batch loading),
//!   [`train`] (the training loop and its guard, evaluation, metrics, the locked run
//!   directory, checkpoints and resume), [`lm`] (text data and `gpt` training),
//!   [`checkpoint`] (safetensors files in PyTorch's layout), [`validate`] (checks of what a
//!   user gives), [`viz`] (the pictures), [`classic`] (perceptron and SVMs).
//! - **Command**: [`cli`] (the `neurite` command); `fuzz` (hidden): the in-tree fuzzer of
//!   every parser a user can feed (`examples/fuzz.rs`).

pub mod autograd;
pub mod checkpoint;
pub mod classic;
pub mod cli;
pub mod data;
#[doc(hidden)]
pub mod fuzz;
pub mod gradcheck;
pub mod infer;
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
pub use infer::Plan;
pub use kernels::parallel::run_on_worker;
pub use tensor::rng::manual_seed;
pub use tensor::Tensor;

//! neurite: a deep-learning framework in Rust, for the CPU.
//!
//! The modules, in layers, bottom up (each may use its own layer and those below;
//! `docs/architecture.md` has the picture, `tests/layout.rs` checks the rule):
//!
//! 1. **Runtime**: [`runtime`] (the thread pool and worker driver, the buffer pool, CPU
//!    features, process settings).
//! 2. **Arithmetic**: [`kernels`] (the CPU arithmetic over slices: GEMM, convolution,
//!    pooling, attention, norms, each with a plain reference; the backend seam).
//! 3. **Tensors**: [`tensor`] (f32 tensors with shared storage and views), [`autograd`]
//!    (the dynamic graph, `backward`, grad mode).
//! 4. **Ops**: [`ops`] (differentiable operations, forward and backward side by side),
//!    [`gradcheck`] (finite-difference checks of every op), [`init`] (seeded Xavier, Kaiming
//!    and PyTorch-default initialization), [`checkpoint`] (safetensors files in PyTorch's
//!    layout), [`validate`] (checks of what a user gives).
//! 5. **Networks**: [`nn`] (modules with PyTorch parameter names), [`optim`] (SGD, Adam(W),
//!    clipping, schedules).
//! 6. **Models**: [`infer`] (inference plans: fused layers, batch slices, packed weights),
//!    [`models`] (the zoo: mlp, lenet5, resnet20, gpt, vit, in one table).
//! 7. **Data**: [`data`] (IDX images and text, normalization, augmentation, batch loading),
//!    `viz` (the pictures; feature `pictures`), [`distributed`] (data-parallel training on
//!    MPI ranks: gradient all-reduce in buckets during backward, the sampler; feature `mpi`).
//! 8. **Runs**: [`train`] (the training scaffold shared by every loop: locked run directory,
//!    one-file checkpoints and resume, metrics, guard, progress; the image loop and
//!    evaluation), [`lm`] (`gpt` training on text), [`classic`] (perceptron and SVMs).
//! 9. **Command**: `cli` (the `neurite` command; feature `cli`); `fuzz` (hidden, feature
//!    `cli`): the in-tree fuzzer of every parser a user can feed (`examples/fuzz.rs`).
//!
//! ## Cargo features
//!
//! The core above builds with `default-features = false`; the rest is opt-in:
//!
//! | feature | what it adds | dependencies |
//! |---|---|---|
//! | `cli` (default) | the `neurite` command and its fuzzer; turns on the three below | clap |
//! | `pictures` | the training pictures (`viz`; `train` writes them at the end of a run) | plotters, dejavu, png |
//! | `progress` | progress bars during training (without: plain lines on stderr) | indicatif |
//! | `images` | PNG and JPEG decoding | image |
//! | `mpi` | [`distributed`] over a real MPI (without it: one rank) | mpi (rsmpi), the system's OpenMPI |

#![warn(missing_docs)]

// `#[derive(Module)]` writes `::neurite::nn::...` paths; this makes them resolve inside the
// crate too (its own layers and models derive it).
extern crate self as neurite;

pub mod autograd;
pub mod checkpoint;
pub mod classic;
#[cfg(feature = "cli")]
pub mod cli;
pub mod data;
pub mod distributed;
#[cfg(feature = "cli")]
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
pub mod runtime;
pub mod tensor;
pub mod train;
pub mod validate;
#[cfg(feature = "pictures")]
pub mod viz;

/// The error type of every fallible call in neurite (`anyhow`'s): it carries a message
/// and its causes, and prints them with `{:#}`.
pub use anyhow::Error;
/// `Result<T, neurite::Error>`.
pub use anyhow::Result;
pub use autograd::{is_grad_enabled, no_grad, run_on_worker, BackwardOptions, NoGradGuard};
pub use infer::Plan;
pub use tensor::rng::manual_seed;
pub use tensor::Tensor;

//! CPU kernels: plain functions over contiguous f32 slices, the one place that knows how the
//! arithmetic is done.
//!
//! This module is the backend seam. Ops in `crate::ops` own the shapes, the autograd rules
//! and the choice of algorithm; they call the functions here for the arithmetic. A second
//! backend (a GPU) would provide the same functions over its own buffers, and a
//! data-parallel trainer would all-reduce parameter gradients between `backward` and the
//! optimizer step without touching these kernels.
//!
//! Every optimized kernel keeps a plain reference implementation beside it (named
//! `*_reference`) that the tests compare it with.
//!
//! One calling convention for all: the shape (a struct such as [`conv::ConvShape`], or
//! [`gemm::Gemm`]) first, then the inputs, then the outputs, then loose sizes and flags.
//! Gradients are named after what they are the gradient of: `dy` for the output's, `dx`,
//! `dw`, `dq`, `dqkv` for the inputs'. What a kernel does to each value as it stores it (a
//! bias, a batch norm's map, accumulating, an activation) is an [`epilogue::Epilogue`].
//! Threads, buffers and CPU detection are the runtime's ([`crate::runtime`]).
//!
//! The larger families are folders (`attention/`, `conv/` with `conv/direct/`, `gemm/` with
//! `gemm/packed/`, `pooling/`), laid out alike: `mod.rs` holds the shape struct, the public
//! functions and the dispatch between instruction sets, with the module's docs; `avx2.rs`,
//! `avx512.rs` and `portable.rs` hold the code of one instruction set each (where the family
//! has such code); `reference.rs` the plain reference; `tests.rs` the tests. The modules'
//! former paths (`pool`, `packed_gemm`, `conv_direct`) stay as re-exports.
//!
//! `unsafe` lives here (the instruction-set files, the BLAS bindings of [`gemm`]) and in
//! [`crate::runtime`] only; every `unsafe fn` has a `# Safety` section and every unsafe
//! block a `SAFETY:` comment (the crate's `[lints]` deny the rest).

pub mod attention;
pub mod conv;

pub mod epilogue;
pub mod gather;
pub mod gemm;
pub mod im2col;

pub mod math;
pub mod norm;
pub mod optim;

pub mod pooling;
pub mod softmax;
#[cfg(test)]
pub(crate) mod test_values;
pub mod vector;

/// The pooling kernels' former path (`pool` elsewhere names the buffer pool).
pub use pooling as pool;

/// The packed products' former path.
pub use gemm::packed as packed_gemm;

/// The direct convolution's former path.
pub use conv::direct as conv_direct;

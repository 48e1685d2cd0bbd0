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

pub mod attention;
pub mod conv;
pub mod conv_direct;
pub mod gather;
pub mod gemm;
pub mod im2col;
pub mod isa;
pub mod math;
pub mod norm;
pub mod optim;
pub mod packed_gemm;
pub mod parallel;
pub mod pooling;
pub mod softmax;
#[cfg(test)]
mod test_values;
pub mod vector;

/// The pooling kernels' former path (`pool` elsewhere names the buffer pool).
pub use pooling as pool;

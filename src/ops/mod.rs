//! Differentiable operations, one module per family, each op's forward and backward side by
//! side.
//!
//! # Adding an op
//!
//! 1. Write the forward as a method on [`crate::tensor::Tensor`] in the family's module. Do
//!    the arithmetic in a kernel over contiguous slices (`crate::kernels`) if it is
//!    heavy, with a plain `*_reference` version beside it and a test comparing the two.
//! 2. Return `Tensor::from_op(data, shape, "name", &[inputs], move |g| ...)`: the closure
//!    gets the gradient of the output and returns one `Option<Tensor>` per input, each of
//!    that input's shape. Capture what backward needs (detached inputs, saved statistics,
//!    arg-max indices) by value; capture the output only through `detach()` so the graph
//!    holds no cycle.
//! 3. Add a [`crate::gradcheck::Case`] to the module's `gradcheck_cases()`. The test suite
//!    and `neurite gradcheck` pick it up.

pub mod activation;
pub mod attention;
pub mod conv;
pub mod dropout;
pub mod elementwise;
pub mod embedding;
pub mod matmul;
pub mod norm;
pub mod pool;
pub mod reduce;
pub mod shape;
pub mod softmax;

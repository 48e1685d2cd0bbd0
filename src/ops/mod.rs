//! Differentiable operations, one module per family, each op's forward and backward side by
//! side, and [`FAMILIES`]: the table of every family's ops and gradient checks.
//!
//! # Adding an op
//!
//! An elementwise op `y = f(x)` (like [`Tensor::silu`](crate::Tensor::silu)):
//!
//! 1. Write it as a method on [`crate::Tensor`] in its family's module, built on
//!    [`Tensor::elementwise`](crate::Tensor::elementwise): the op's name, `f`, what the
//!    backward reads ([`map::Reads`]: nothing, the input or the output), and the rule
//!    `df(dy, v)` that gives the input gradient element from the output gradient element
//!    `dy` and that element `v`.
//! 2. Add a [`crate::gradcheck::Case`] for it to the module's `gradcheck_cases()` and its
//!    name to the module's `FAMILY.ops`. Run `cargo test --test gradcheck` (or
//!    `neurite gradcheck NAME`).
//!
//! Any other op:
//!
//! 1. Write the forward as a method on [`crate::Tensor`] in the family's module. Do the
//!    arithmetic in a kernel over contiguous slices (`crate::kernels`) if it is heavy, with
//!    a plain `*_reference` version beside it and a test comparing the two. Take output
//!    buffers from [`crate::runtime::buffers`] (`take`, or `filled_by_chunks` for a
//!    parallel fill).
//! 2. Return `Tensor::from_op(data, shape, "name", &[inputs], move |dy| ...)`: the closure
//!    gets the gradient of the output and returns one `Option<Tensor>` per input, each of
//!    that input's shape. Capture what backward needs (detached inputs, saved statistics,
//!    arg-max indices) by value. When backward needs the op's own output, use
//!    [`Tensor::from_op_with_output`](crate::Tensor::from_op_with_output) instead: its
//!    closure gets `(dy, y)`, and nothing captures the output (which would be a cycle).
//! 3. Add a [`crate::gradcheck::Case`] to the module's `gradcheck_cases()` and the op's
//!    name to the module's `FAMILY.ops`.
//!
//! A new family is its own module (`FAMILY` and `gradcheck_cases()` at its end, as in
//! `activation.rs`) plus its name in the `families!` line below. `cargo test --test
//! gradcheck` and `neurite gradcheck` both run every case of [`FAMILIES`], and a test fails
//! when an op has no case, a case names no listed op, or an op is listed twice.

use crate::gradcheck::Case;

pub mod compare;
pub mod map;
pub mod norm_sync;

/// One family of ops (one module): the ops it defines and their gradient checks.
pub struct Family {
    /// The module's name.
    pub name: &'static str,
    /// The differentiable ops it defines, by the names their gradient checks carry.
    pub ops: &'static [&'static str],
    /// Its gradient checks, at least one per op.
    pub cases: fn() -> Vec<Case>,
}

/// Declares each family's module and lists its `FAMILY` in [`FAMILIES`], in this order.
macro_rules! families {
    ($($family:ident),* $(,)?) => {
        $(pub mod $family;)*

        /// Every op family, in the order their gradient checks run.
        pub const FAMILIES: &[Family] = &[$($family::FAMILY),*];
    };
}

families!(
    elementwise,
    reduce,
    matmul,
    conv,
    pool,
    norm,
    activation,
    softmax,
    dropout,
    embedding,
    shape,
    attention,
    loss,
    index,
);

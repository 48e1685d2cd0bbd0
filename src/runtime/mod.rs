//! The ground floor: what the process runs on, below any arithmetic.
//!
//! - [`threads`]: the worker pool (rayon's global pool, sized and pinned once: by
//!   [`init_threads`], or with its defaults on first use), the driver
//!   that runs a whole loop of kernels on one worker, and the marks that keep the pieces of
//!   a parallel kernel from splitting again.
//! - [`cpu`]: which instruction sets this CPU runs (AVX2 + FMA, AVX-512), detected once.
//! - [`buffers`]: the pool of f32 buffers that tensors are allocated from and returned to.
//! - [`process`]: process-wide settings made once at start-up (signals).
//!
//! Nothing here knows of tensors, autograd or layers; every other module may use it, and
//! it imports from no other module of the crate.

pub mod buffers;
pub mod cpu;
pub mod process;
pub mod threads;

pub use threads::init_threads;

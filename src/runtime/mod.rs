//! The ground floor: threads, buffers, CPU features. Everything above may use it; it knows
//! nothing of tensors or autograd (it deals in `f32` buffers and closures).

pub mod buffers;

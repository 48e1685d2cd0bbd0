//! The seeded random generator behind every random tensor, initializer and dropout mask,
//! so that a run with the same seed is the same run.
//!
//! The generator is per thread (seeded with 0 until `manual_seed` is called on that
//! thread): a model built on one thread is reproducible whatever other threads draw.

use rand::rngs::StdRng;
use rand::SeedableRng;
use std::cell::RefCell;

thread_local! {
    static RNG: RefCell<StdRng> = RefCell::new(StdRng::seed_from_u64(0));
}

/// Seeds this thread's generator (PyTorch's `torch.manual_seed`).
pub fn manual_seed(seed: u64) {
    RNG.with(|r| *r.borrow_mut() = StdRng::seed_from_u64(seed));
}

/// Runs `f` with this thread's generator.
pub fn with_rng<R>(f: impl FnOnce(&mut StdRng) -> R) -> R {
    RNG.with(|r| f(&mut r.borrow_mut()))
}

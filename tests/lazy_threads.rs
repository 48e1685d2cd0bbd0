//! A plain program that never sets up threads gets the command's pool on first use: the
//! first tensor starts it (one worker per core unless NEURITE_NUM_THREADS says otherwise),
//! before any kernel could start rayon's default, unpinned one. Its own test binary: the
//! thread pool is the process's.

use neurite::runtime::{init_threads, threads::num_threads};
use neurite::Tensor;

#[test]
fn the_first_tensor_starts_the_pool_and_a_late_init_threads_changes_nothing() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let expected = std::env::var("NEURITE_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(cores)
        .min(neurite::runtime::threads::max_threads());
    // The first tensor, with no set-up before it.
    let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]);
    assert_eq!(rayon::current_num_threads(), expected, "the pool runs");
    assert_eq!(num_threads(), expected);
    // Too late to change it: the running pool's size comes back.
    assert_eq!(init_threads(Some(expected + 1)), expected);
    assert_eq!(init_threads(None), expected);
    // Kernels work as before.
    assert_eq!(x.mul_scalar(2.0).to_vec(), vec![2.0, 4.0, 6.0]);
}

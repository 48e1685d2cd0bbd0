//! Deterministic test inputs shared by the kernels' tests.

/// `n` values in `[-1, 1)` from a multiplicative hash of the index and `seed`: spread out,
/// reproducible, and different for different seeds.
pub fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 1000) as f32 / 500.0
                - 1.0
        })
        .collect()
}

//! Deterministic test inputs and the comparison shared by the tests of the kernels, the ops
//! and the classical models (the crate's test kit).

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

/// Asserts that `a` and `b` have the same length and differ by at most `tol` element by
/// element, naming the first element that does not.
pub fn assert_close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol, "element {i}: {x} vs {y}");
    }
}

//! The plain loop the tests compare the packed products with.

/// The plain loop [`gemm_packed`](super::gemm_packed) is tested against: `C (+)= A · Wᵀ` from the unpacked
/// weight `w [n, k]`.
pub fn gemm_packed_reference(
    a: &[f32],
    m: usize,
    w: &[f32],
    n: usize,
    k: usize,
    c: &mut [f32],
    accumulate: bool,
) {
    for i in 0..m {
        for j in 0..n {
            let s: f64 = (0..k)
                .map(|kk| a[i * k + kk] as f64 * w[j * k + kk] as f64)
                .sum();
            let s = s as f32;
            c[i * n + j] = if accumulate { c[i * n + j] + s } else { s };
        }
    }
}

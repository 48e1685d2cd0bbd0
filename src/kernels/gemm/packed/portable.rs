//! The register tile without SIMD intrinsics (other CPUs, and the tests' second path).

use super::{MR, NR};

/// [`tile_sums_strided`] without SIMD intrinsics (other CPUs, and the tests' second path).
pub(super) fn tile_sums_portable(
    a: &[f32],
    (rs, cs): (usize, usize),
    k: usize,
    b: &[f32],
    rows: usize,
) -> [[f32; NR]; MR] {
    let mut acc = [[0.0f32; NR]; MR];
    for (r, sums) in acc.iter_mut().enumerate().take(rows) {
        for kk in 0..k {
            let av = a[r * rs + kk * cs];
            let br = &b[kk * NR..][..NR];
            for (s, &bv) in sums.iter_mut().zip(br) {
                *s = av.mul_add(bv, *s);
            }
        }
    }
    acc
}

//! The plain triple loop the tests compare `sgemm` with.

use super::Gemm;

/// The plain triple loop `sgemm` is tested against.
pub fn sgemm_reference(g: Gemm, a: &[f32], b: &[f32], c: &mut [f32]) {
    g.check(a, b, c);
    let (rsa, csa) = g.a_strides();
    let (rsb, csb) = g.b_strides();
    let ldc = g.lds().2;
    for i in 0..g.m {
        for j in 0..g.n {
            let mut acc = 0.0f64;
            for p in 0..g.k {
                acc += a[i * rsa + p * csa] as f64 * b[p * rsb + j * csb] as f64;
            }
            let out = &mut c[i * ldc + j];
            *out = if g.accumulate {
                *out + acc as f32
            } else {
                acc as f32
            };
        }
    }
}

//! Dot products with fused multiply-adds in 32 partial sums, for the kernel rows of the
//! SVM's solver (`crate::classic`), which spend their time here. The body is plain Rust that
//! the compiler vectorizes; on a CPU with AVX2 and FMA ([`crate::runtime::cpu::available`])
//! the same body is compiled for those features. [`super::dot`] is the
//! eight-lane product without fused multiply-adds that the layers' kernels use; the two round
//! differently, and each keeps its users' numbers.

/// Dot product of two equal-length slices, with AVX2 and FMA where the CPU has them (the
/// kernel rows of the SMO solver spend their time here).
#[inline]
pub fn dot_fma(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: lengths {} and {}", a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if crate::runtime::cpu::available() {
        // SAFETY: the CPU has AVX2 and FMA, the features the function is compiled for.
        return unsafe { dot_avx2(a, b) };
    }
    dot_body(a, b)
}

/// [`dot_body`] compiled for AVX2 and FMA.
///
/// # Safety
///
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_body(a, b)
}

/// 32 independent partial sums: four 8-wide registers once vectorized.
#[inline(always)]
fn dot_body(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 32];
    let ca = a.chunks_exact(32);
    let cb = b.chunks_exact(32);
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..32 {
            acc[i] = x[i].mul_add(y[i], acc[i]);
        }
    }
    let mut s = [0.0f32; 8];
    for i in 0..8 {
        s[i] = acc[i] + acc[i + 8] + acc[i + 16] + acc[i + 24];
    }
    s.iter().sum::<f32>() + tail
}

/// `out[t] = x[rows[t]] · xi` for rows of `x: [_, d]` picked by `rows`: one row of a Gram
/// matrix, the CPU features checked once for the whole row.
pub fn dots_fma_with_rows(x: &[f32], d: usize, rows: &[usize], xi: &[f32], out: &mut [f32]) {
    assert!(
        rows.len() == out.len() && xi.len() == d,
        "dots_fma_with_rows: {} rows, {} outputs, xi of {} values, d={d}",
        rows.len(),
        out.len(),
        xi.len()
    );
    #[cfg(target_arch = "x86_64")]
    if crate::runtime::cpu::available() {
        // SAFETY: the CPU has AVX2 and FMA, the features the function is compiled for.
        return unsafe { dots_fma_with_rows_avx2(x, d, rows, xi, out) };
    }
    dots_fma_with_rows_body(x, d, rows, xi, out)
}

/// [`dots_fma_with_rows_body`] compiled for AVX2 and FMA.
///
/// # Safety
///
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dots_fma_with_rows_avx2(
    x: &[f32],
    d: usize,
    rows: &[usize],
    xi: &[f32],
    out: &mut [f32],
) {
    dots_fma_with_rows_body(x, d, rows, xi, out)
}

#[inline(always)]
fn dots_fma_with_rows_body(x: &[f32], d: usize, rows: &[usize], xi: &[f32], out: &mut [f32]) {
    for (o, &r) in out.iter_mut().zip(rows) {
        *o = dot_body(&x[r * d..(r + 1) * d], xi);
    }
}

/// The plain dot product [`dot_fma`] is tested against.
pub fn dot_fma_reference(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kernels::test_values::values;

    #[test]
    fn dot_matches_reference_on_awkward_lengths() {
        for n in [0, 1, 7, 31, 32, 33, 100, 784] {
            let (a, b) = (values(n, 1), values(n, 7));
            let (f, r) = (dot_fma(&a, &b), dot_fma_reference(&a, &b));
            assert!((f - r).abs() < 1e-4 * (1.0 + r.abs()), "n={n}: {f} vs {r}");
        }
    }

    #[test]
    fn dots_with_rows_matches_reference() {
        let d = 37;
        let x = values(6 * d, 5);
        let xi = values(d, 11);
        let rows = [5, 0, 3, 3];
        let mut out = [0.0; 4];
        dots_fma_with_rows(&x, d, &rows, &xi, &mut out);
        for (o, &r) in out.iter().zip(&rows) {
            let want = dot_fma_reference(&x[r * d..(r + 1) * d], &xi);
            assert!(
                (o - want).abs() < 1e-4 * (1.0 + want.abs()),
                "{o} vs {want}"
            );
        }
    }
}

//! The AVX2 + FMA register tile of up to [`MR`] rows x 16 columns, and the panel transpose.

use super::{MR, NR};
use std::arch::x86_64::*;

/// The sums of an `R x 16` tile, accumulated in `2R` registers over the whole of `k`
/// and stored once (returned by value so that they stay in registers in the loop).
/// `A[r, kk]` is `a[r·rs + kk·cs]`.
///
/// # Safety
/// AVX2 and FMA present; `a` holds every element of the `R x k` tile at these strides,
/// `b` holds `k` rows of 16.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn tile<const R: usize>(
    a: &[f32],
    rs: usize,
    cs: usize,
    k: usize,
    b: &[f32],
) -> [[f32; NR]; MR] {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        debug_assert!(k == 0 || a.len() > (R - 1) * rs + (k - 1) * cs);
        debug_assert!(b.len() >= k * NR);
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        let mut rows = [a.as_ptr(); R];
        for (r, p) in rows.iter_mut().enumerate() {
            *p = a.as_ptr().add(r * rs);
        }
        let bp = b.as_ptr();
        for kk in 0..k {
            let b0 = _mm256_loadu_ps(bp.add(kk * NR));
            let b1 = _mm256_loadu_ps(bp.add(kk * NR + 8));
            let off = kk * cs;
            for (row, p) in acc.iter_mut().zip(&rows) {
                let av = _mm256_broadcast_ss(&*p.add(off));
                row[0] = _mm256_fmadd_ps(av, b0, row[0]);
                row[1] = _mm256_fmadd_ps(av, b1, row[1]);
            }
        }
        let mut out = [[0.0f32; NR]; MR];
        for (o, row) in out.iter_mut().zip(&acc) {
            _mm256_storeu_ps(o.as_mut_ptr(), row[0]);
            _mm256_storeu_ps(o.as_mut_ptr().add(8), row[1]);
        }
        out
    }
}

/// Writes `panel[kk·16 + j] = w[j·ldw + kk]` for the 16 rows of `w [16, k]`: blocks of
/// 8 rows x 8 columns through an 8 x 8 register transpose, the last `k % 8` columns
/// one by one.
///
/// # Safety
/// AVX present; `w` holds 16 rows of `k` values `ldw` apart, `panel` `k · 16` values.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn transpose_panel(w: &[f32], k: usize, ldw: usize, panel: &mut [f32]) {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        debug_assert!(w.len() >= 15 * ldw + k && panel.len() >= k * NR);
        let (src, dst) = (w.as_ptr(), panel.as_mut_ptr());
        let whole = k / 8 * 8;
        for kk in (0..whole).step_by(8) {
            for half in 0..2 {
                // Rows half·8 .. half·8 + 8, columns kk .. kk + 8 of w, into columns
                // half·8 .. of rows kk .. of the panel.
                let (from, to) = (src.add(half * 8 * ldw + kk), dst.add(kk * NR + half * 8));
                crate::kernels::conv::direct::avx2::transpose_8x8(from, ldw, to, NR);
            }
        }
        for kk in whole..k {
            for j in 0..NR {
                *dst.add(kk * NR + j) = *src.add(j * ldw + kk);
            }
        }
    }
}

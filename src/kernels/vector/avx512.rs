//! Sixteen lanes at a time where the CPU has AVX-512 (the compiler's own vectors stay
//! 8 lanes wide: LLVM prefers 256-bit vectors on these CPUs).

use std::arch::x86_64::*;

/// [`super::exp_in_place_sum`], 16 values per step, the same values bit for bit: each
/// exponential is [`crate::kernels::math::exp`]'s arithmetic step by step (`2^n` by
/// `vscalefps`, one rounding as its two exact factors give), and the sum keeps the
/// 8-lane version's order (each half added in turn to 8 partial sums, the last partial
/// group padded with zeros).
///
/// # Safety
/// The CPU runs AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn exp_in_place_sum(x: &mut [f32], shift: f32, scale: f32) -> f32 {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        let (shift, scale) = (_mm512_set1_ps(shift), _mm512_set1_ps(scale));
        let mut acc = _mm256_setzero_ps();
        for chunk in x.chunks_mut(16) {
            let mask = ((1u32 << chunk.len()) - 1) as u16;
            let p = chunk.as_mut_ptr();
            let v = _mm512_mask_loadu_ps(_mm512_set1_ps(f32::NEG_INFINITY), mask, p);
            let e = exp(_mm512_mul_ps(_mm512_sub_ps(v, shift), scale));
            _mm512_mask_storeu_ps(p, mask, e);
            let (low, high) = (_mm512_castps512_ps256(e), _mm512_extractf32x8_ps::<1>(e));
            acc = _mm256_add_ps(acc, low);
            if chunk.len() > 8 {
                acc = _mm256_add_ps(acc, high);
            }
        }
        let mut lanes = [0.0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
        lanes.iter().sum()
    }
}

/// `e^x` on 16 lanes: [`crate::kernels::math::exp`] operation by operation.
///
/// # Safety
/// AVX-512F present (the function reads and writes no memory).
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn exp(x: __m512) -> __m512 {
    use crate::kernels::math::exp_constants::*;
    let set = |v: f32| _mm512_set1_ps(v);
    let xc = _mm512_min_ps(_mm512_max_ps(x, set(MIN)), set(MAX));
    let n = _mm512_sub_ps(
        _mm512_add_ps(_mm512_mul_ps(xc, set(LOG2E)), set(ROUND)),
        set(ROUND),
    );
    let r = _mm512_sub_ps(
        _mm512_sub_ps(xc, _mm512_mul_ps(n, set(LN2_HI))),
        _mm512_mul_ps(n, set(LN2_LO)),
    );
    // `math::madd`: one fused multiply-add where the build targets FMA, else a multiply
    // and an add, so that both versions round alike in every build.
    let madd = |a: __m512, b: __m512, c: __m512| {
        if cfg!(target_feature = "fma") {
            _mm512_fmadd_ps(a, b, c)
        } else {
            _mm512_add_ps(_mm512_mul_ps(a, b), c)
        }
    };
    let mut p = set(POLY[0]);
    for &c in &POLY[1..] {
        p = madd(p, r, set(c));
    }
    let er = madd(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, set(1.0)));
    let y = _mm512_scalef_ps(er, n);
    let below = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, set(MIN));
    let above = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, set(MAX));
    let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
    let y = _mm512_mask_blend_ps(below, y, _mm512_setzero_ps());
    let y = _mm512_mask_blend_ps(above, y, set(f32::INFINITY));
    _mm512_mask_blend_ps(nan, y, x)
}

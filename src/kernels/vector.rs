//! Small vector primitives written so that the compiler vectorizes them (several independent
//! accumulators instead of one serial sum).

/// Sum of a slice, with 8 partial sums (faster and more accurate than a serial sum).
pub fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    let mut total = rest.iter().sum::<f32>();
    for a in acc {
        total += a;
    }
    total
}

/// The largest value of a slice, in 8 lanes; NaNs are passed over (as by `f32::max`), and
/// an empty or all-NaN slice gives `-inf`.
pub fn max(x: &[f32]) -> f32 {
    let larger = |m: f32, v: f32| if v > m { v } else { m };
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks
        .remainder()
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, larger);
    for c in chunks {
        for i in 0..8 {
            acc[i] = larger(acc[i], c[i]);
        }
    }
    acc.into_iter().fold(rest, larger)
}

/// `x[i] = e^((x[i] - shift) · scale)` for every element, returning their sum: softmax's
/// middle pass. Whole groups of 8 and the last partial group (through a buffer padded with
/// values whose exponential is 0) take the same vectorized code, so short rows do not fall
/// back to a scalar `exp` per element.
pub fn exp_in_place_sum(x: &mut [f32], shift: f32, scale: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if crate::runtime::cpu::Isa::avx512() {
        // SAFETY: the CPU runs AVX-512F.
        return unsafe { avx512::exp_in_place_sum(x, shift, scale) };
    }
    exp_in_place_sum_8(x, shift, scale)
}

/// [`exp_in_place_sum`] in groups of 8 lanes, the loop the compiler vectorizes.
fn exp_in_place_sum_8(x: &mut [f32], shift: f32, scale: f32) -> f32 {
    let group = |v: &mut [f32], acc: &mut [f32; 8]| {
        for i in 0..8 {
            v[i] = super::math::exp((v[i] - shift) * scale);
            acc[i] += v[i];
        }
    };
    let mut acc = [0.0f32; 8];
    let mut chunks = x.chunks_exact_mut(8);
    for c in &mut chunks {
        group(c, &mut acc);
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let mut padded = [f32::NEG_INFINITY; 8];
        padded[..rest.len()].copy_from_slice(rest);
        group(&mut padded, &mut acc);
        rest.copy_from_slice(&padded[..rest.len()]);
    }
    acc.iter().sum()
}

/// Dot product of two equal-length slices.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `Σ (x - m)²`, in eight lanes.
pub fn sum_sq_dev(x: &[f32], m: f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = x.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().map(|&v| (v - m) * (v - m)).sum();
    for c in chunks {
        for i in 0..8 {
            let d = c[i] - m;
            acc[i] += d * d;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `Σ a · (x - m)`, in eight lanes.
pub fn dot_dev(a: &[f32], x: &[f32], m: f32) -> f32 {
    lane_sum(a, x, |p, v| p * (v - m))
}

/// `Σ f(a[i], b[i])` over two equal-length slices, in eight lanes.
#[inline(always)]
pub fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&p, &q)| f(p, q))
        .sum();
    for (p, q) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += f(p[i], q[i]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `y += alpha * x`.
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len());
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// `y += x`.
pub fn add_assign(y: &mut [f32], x: &[f32]) {
    assert_eq!(x.len(), y.len());
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += xi;
    }
}

/// Largest value and its first index (`(-inf, 0)` for an empty slice).
pub fn max_index(x: &[f32]) -> (f32, usize) {
    let mut best = (f32::NEG_INFINITY, 0);
    for (i, &v) in x.iter().enumerate() {
        if v > best.0 || (i == 0) {
            best = (v, i);
        }
    }
    best
}

/// Sixteen lanes at a time where the CPU has AVX-512 (the compiler's own vectors stay
/// 8 lanes wide: LLVM prefers 256-bit vectors on these CPUs).
#[cfg(target_arch = "x86_64")]
mod avx512 {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_in_place_sum_gives_the_8_lane_values_bit_for_bit() {
        // Every length's tails, values across exp's whole range, its limits and NaN.
        let special = [
            -1e30,
            -88.0,
            -87.3,
            0.0,
            -0.0,
            88.7,
            88.8,
            f32::NEG_INFINITY,
            f32::NAN,
        ];
        for len in 0..40 {
            let x: Vec<f32> = (0..len)
                .map(|i| match i % 11 {
                    9 | 10 => special[i % special.len()],
                    _ => ((i * 37 % 101) as f32 - 50.0) * 1.9,
                })
                .collect();
            for (shift, scale) in [(0.0, 1.0), (3.5, 0.125)] {
                let (mut got, mut want) = (x.clone(), x.clone());
                let total = exp_in_place_sum(&mut got, shift, scale);
                let want_total = exp_in_place_sum_8(&mut want, shift, scale);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                        "length {len}, element {i} ({}): {g} vs {w}",
                        x[i]
                    );
                }
                assert!(
                    total.to_bits() == want_total.to_bits()
                        || (total.is_nan() && want_total.is_nan()),
                    "length {len}: sum {total} vs {want_total}"
                );
            }
        }
    }

    #[test]
    fn sums_and_dots_match_plain_loops() {
        let x: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let y: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain_sum: f32 = x.iter().sum();
        let plain_dot: f32 = x.iter().zip(&y).map(|(a, b)| a * b).sum();
        assert!((sum(&x) - plain_sum).abs() < 1e-5);
        assert!((dot(&x, &y) - plain_dot).abs() < 1e-5);
        let plain_sq: f64 = x.iter().map(|&v| (v as f64 - 0.3).powi(2)).sum();
        let plain_dd: f64 = x
            .iter()
            .zip(&y)
            .map(|(&a, &v)| a as f64 * (v as f64 - 0.3))
            .sum();
        assert!((sum_sq_dev(&x, 0.3) as f64 - plain_sq).abs() < 1e-4);
        assert!((dot_dev(&x, &y, 0.3) as f64 - plain_dd).abs() < 1e-4);
        assert_eq!(max_index(&[1.0, 3.0, 3.0, -1.0]), (3.0, 1));
        let plain_max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(max(&x), plain_max);
        let mut with_nan = x.clone();
        with_nan[3] = f32::NAN;
        with_nan[30] = f32::NAN;
        assert_eq!(max(&with_nan), plain_max);
        assert_eq!(max(&[]), f32::NEG_INFINITY);
        assert_eq!(max(&[f32::NAN; 9]), f32::NEG_INFINITY);
        for len in [0, 5, 8, 19] {
            let mut e = x[..len].to_vec();
            let total = exp_in_place_sum(&mut e, 0.4, 1.7);
            for (got, &v) in e.iter().zip(&x) {
                assert_eq!(*got, crate::kernels::math::exp((v - 0.4) * 1.7));
            }
            let plain: f32 = e.iter().sum();
            assert!((total - plain).abs() < 1e-5, "{len}: {total} vs {plain}");
        }
    }
}

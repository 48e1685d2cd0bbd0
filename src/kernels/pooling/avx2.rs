//! SSE forms of the 2x2 windows, four at a time (branch-free: on real activations the
//! comparisons go either way at random, and the scalar loop paid for its mispredictions).

use std::arch::x86_64::*;

/// The cells of four 2x2 windows in the order the maximum visits them: top-left,
/// top-right, bottom-left, bottom-right (the even and odd columns of rows `r0` and
/// `r1`, 8 floats each).
///
/// # Safety
/// AVX2 present; 8 floats readable at `r0` and `r1`.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn cells(r0: *const f32, r1: *const f32) -> [__m128; 4] {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        let (t0, t1) = (_mm_loadu_ps(r0), _mm_loadu_ps(r0.add(4)));
        let (b0, b1) = (_mm_loadu_ps(r1), _mm_loadu_ps(r1.add(4)));
        [
            _mm_shuffle_ps::<0b10_00_10_00>(t0, t1),
            _mm_shuffle_ps::<0b11_01_11_01>(t0, t1),
            _mm_shuffle_ps::<0b10_00_10_00>(b0, b1),
            _mm_shuffle_ps::<0b11_01_11_01>(b0, b1),
        ]
    }
}

/// Four 2x2 windows: rows `r0` and `r1` (8 floats each), the first window's top-left
/// index `base` in its plane, row width `w`; writes four maxima and arg-maxima with the
/// scalar loop's rule (first maximum in the order top-left, top-right, bottom-left,
/// bottom-right; a NaN wins).
///
/// # Safety
/// AVX2 present; 8 floats readable at `r0` and `r1`, 4 writable at `o` and `id`.
#[target_feature(enable = "avx2")]
pub unsafe fn max_2x2_four(
    r0: *const f32,
    r1: *const f32,
    base: u32,
    w: u32,
    o: *mut f32,
    id: *mut u32,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        let [first, candidates @ ..] = cells(r0, r1);
        let left = _mm_setr_epi32(
            base as i32,
            base as i32 + 2,
            base as i32 + 4,
            base as i32 + 6,
        );
        let offsets = [1, w as i32, w as i32 + 1];
        let mut best = first;
        let mut at = left;
        for (v, off) in candidates.into_iter().zip(offsets) {
            let take = _mm_or_ps(_mm_cmpgt_ps(v, best), _mm_cmpunord_ps(v, v));
            best = _mm_blendv_ps(best, v, take);
            let pos = _mm_add_epi32(left, _mm_set1_epi32(off));
            at = _mm_castps_si128(_mm_blendv_ps(
                _mm_castsi128_ps(at),
                _mm_castsi128_ps(pos),
                take,
            ));
        }
        _mm_storeu_ps(o, best);
        _mm_storeu_si128(id as *mut __m128i, at);
    }
}

/// [`max_2x2_four`] without the arg-maxima: the same four maxima (the same order of
/// candidates and the same rule, so ties between `-0.0` and `0.0` resolve alike).
///
/// # Safety
/// AVX2 present; 8 floats readable at `r0` and `r1`, 4 writable at `o`.
#[target_feature(enable = "avx2")]
pub unsafe fn max_2x2_four_values(r0: *const f32, r1: *const f32, o: *mut f32) {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        let [mut best, candidates @ ..] = cells(r0, r1);
        for v in candidates {
            // `v > best ? v : best` (a NaN `best` stays), then a NaN `v` wins.
            best = _mm_blendv_ps(_mm_max_ps(v, best), v, _mm_cmpunord_ps(v, v));
        }
        _mm_storeu_ps(o, best);
    }
}

/// The backward of [`max_2x2_four`]: each of four gradients `g` goes to its window's
/// cell `id` (plane index), zeros to the other three; writes 8 floats of each row.
///
/// # Safety
/// AVX2 present; 4 values readable at `g` and `id`, 8 writable at `r0` and `r1`.
#[target_feature(enable = "avx2")]
pub unsafe fn scatter_2x2_four(
    g: *const f32,
    id: *const u32,
    base: u32,
    w: u32,
    r0: *mut f32,
    r1: *mut f32,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        let gv = _mm_loadu_ps(g);
        let left = _mm_setr_epi32(
            base as i32,
            base as i32 + 2,
            base as i32 + 4,
            base as i32 + 6,
        );
        let k = _mm_sub_epi32(_mm_loadu_si128(id as *const __m128i), left);
        let cell = |off: i32| {
            _mm_and_ps(
                gv,
                _mm_castsi128_ps(_mm_cmpeq_epi32(k, _mm_set1_epi32(off))),
            )
        };
        let (tl, tr) = (cell(0), cell(1));
        let (bl, br) = (cell(w as i32), cell(w as i32 + 1));
        _mm_storeu_ps(r0, _mm_unpacklo_ps(tl, tr));
        _mm_storeu_ps(r0.add(4), _mm_unpackhi_ps(tl, tr));
        _mm_storeu_ps(r1, _mm_unpacklo_ps(bl, br));
        _mm_storeu_ps(r1.add(4), _mm_unpackhi_ps(bl, br));
    }
}

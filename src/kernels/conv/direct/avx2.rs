//! The AVX2 + FMA micro-kernels of the direct convolution: register tiles of up to
//! [`MR`] x 16 accumulators (twelve of the sixteen AVX registers), summed over a whole
//! reduction and stored once.
//!
//! Each tile's loop lives in a function of its own that returns the accumulators by value:
//! with the stores in the same function, LLVM kept a copy of the accumulators in memory and
//! wrote it back on every step (the loop ran at half speed).

use super::{ForwardTile, GradTile, TileShared, MR, NR};

/// One forward register tile ([`ForwardTile`]) of `R` rows.
///
/// # Safety
/// AVX2/FMA present, and the pointers of `t` as [`ForwardTile`] requires.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn direct_tile<const R: usize, const V: usize>(t: ForwardTile<V>) {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        use std::arch::x86_64::*;
        let ForwardTile { c, valid, .. } = t;
        let (ldc, add, epi) = (t.shared.ldc, t.shared.add, t.shared.epilogue);
        let acc = direct_sums::<R, V>(&t);
        let zero = _mm256_setzero_ps();
        for (r, row) in acc.iter().enumerate() {
            // The epilogue of row `r` (its output channel), as in `Epilogue::apply`.
            let bias = epi.bias.map(|b| _mm256_set1_ps(b[r]));
            let affine = epi
                .affine
                .map(|(s, h)| (_mm256_set1_ps(s[r]), _mm256_set1_ps(h[r])));
            for v in 0..V {
                let cp = c[v].add(r * ldc);
                let mut out = row[v];
                if add {
                    let old = if valid[v] == 8 {
                        _mm256_loadu_ps(cp)
                    } else {
                        let mut lanes = [0.0f32; 8];
                        std::ptr::copy_nonoverlapping(cp, lanes.as_mut_ptr(), valid[v]);
                        _mm256_loadu_ps(lanes.as_ptr())
                    };
                    out = _mm256_add_ps(old, out);
                }
                if let Some(b) = bias {
                    out = _mm256_add_ps(out, b);
                }
                if let Some((scale, shift)) = affine {
                    out = _mm256_add_ps(_mm256_mul_ps(out, scale), shift);
                }
                if epi.relu {
                    out = _mm256_max_ps(out, zero);
                }
                if valid[v] == 8 {
                    _mm256_storeu_ps(cp, out);
                } else {
                    let mut lanes = [0.0f32; 8];
                    _mm256_storeu_ps(lanes.as_mut_ptr(), out);
                    std::ptr::copy_nonoverlapping(lanes.as_ptr(), cp, valid[v]);
                }
            }
        }
    }
}

/// The accumulators of [`direct_tile`], returned by value so that they stay in registers
/// through the loop (with the stores in the same function LLVM kept a copy in memory,
/// written back on every step).
///
/// # Safety
/// AVX2 and FMA present; the pointers as [`ForwardTile`] says.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn direct_sums<const R: usize, const V: usize>(
    t: &ForwardTile<V>,
) -> [[std::arch::x86_64::__m256; V]; R] {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        use std::arch::x86_64::*;
        let TileShared {
            channels,
            plane,
            taps,
            a,
            x,
            ..
        } = t.shared;
        let b = t.b;
        let mut acc = [[_mm256_setzero_ps(); V]; R];
        let mut ap = a;
        for ch in 0..channels {
            let xc = x.add(ch * plane);
            for &t in taps {
                let mut bv = [_mm256_setzero_ps(); V];
                for (v, x) in bv.iter_mut().enumerate() {
                    *x = _mm256_loadu_ps(xc.add(b[v] + t));
                }
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = _mm256_broadcast_ss(&*ap.add(r));
                    for (x, &bx) in row.iter_mut().zip(&bv) {
                        *x = _mm256_fmadd_ps(av, bx, *x);
                    }
                }
                ap = ap.add(MR);
            }
        }
        acc
    }
}

/// One weight-gradient register tile ([`GradTile`]) of `R` rows, added into `c`, which
/// holds the tile's rows `ldc` apart.
///
/// # Safety
/// AVX2/FMA present, and the pointers of `t` as [`GradTile`] requires.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn weight_grad_tile<const R: usize>(t: GradTile, c: &mut [f32], ldc: usize) {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        use std::arch::x86_64::*;
        let cols = t.cols;
        let acc = weight_grad_sums::<R>(&t);
        let mut tile = [0.0f32; NR];
        for (r, row) in acc.iter().enumerate() {
            _mm256_storeu_ps(tile.as_mut_ptr(), row[0]);
            _mm256_storeu_ps(tile.as_mut_ptr().add(8), row[1]);
            for (d, s) in c[r * ldc..r * ldc + cols].iter_mut().zip(&tile) {
                *d += s;
            }
        }
    }
}

/// The accumulators of [`weight_grad_tile`], by value (see [`direct_sums`]).
///
/// # Safety
/// AVX2 and FMA present; the pointers as [`GradTile`] says.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn weight_grad_sums<const R: usize>(t: &GradTile) -> [[std::arch::x86_64::__m256; 2]; R] {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        use std::arch::x86_64::*;
        let (x, starts, wp, (oh, ow)) = (t.x, t.starts, t.wp, t.out_hw);
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        let mut bp = t.b;
        for oy in 0..oh {
            let xr = x.add(oy * wp);
            for ox in 0..ow {
                let b0 = _mm256_loadu_ps(bp);
                let b1 = _mm256_loadu_ps(bp.add(8));
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = _mm256_broadcast_ss(&*xr.add(starts[r] + ox));
                    row[0] = _mm256_fmadd_ps(av, b0, row[0]);
                    row[1] = _mm256_fmadd_ps(av, b1, row[1]);
                }
                bp = bp.add(NR);
            }
        }
        acc
    }
}

/// Transposes an 8 x 8 block: row `r` of the source (8 floats at `src + r * src_stride`)
/// becomes column `r` of the destination (rows at `dst + l * dst_stride`).
///
/// # Safety
/// AVX present; the 8 source rows and the 8 destination rows of 8 floats valid.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn transpose_8x8(src: *const f32, src_stride: usize, dst: *mut f32, dst_stride: usize) {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        use std::arch::x86_64::*;
        let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add(i * src_stride)));
        // Pairs of rows interleaved, then quadruples, then the 128-bit halves swapped.
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        let out = [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ];
        for (l, v) in out.iter().enumerate() {
            _mm256_storeu_ps(dst.add(l * dst_stride), *v);
        }
    }
}

//! The AVX-512 tiles: 12 rows by two panels for [`super::gemm_packed`] (threads take pairs
//! of panels, the kept lanes go out through masked stores) and one 16-lane register per row
//! for [`super::tile_sums`].

use super::{Epilogue, PackedWeight, MR, NR};
use crate::runtime::threads::SendPtr;
use std::arch::x86_64::*;

/// Rows of a [`product_rows`] tile: twelve rows by two panels are 24 of the 32
/// registers.
pub const ROWS: usize = 12;

/// [`super::tile_sums_strided`] with one 16-lane register per row.
///
/// # Safety
/// AVX-512F present; `a` holds every element of the `R x k` tile at these strides, `b`
/// holds `k` rows of 16.
#[target_feature(enable = "avx512f")]
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
        let acc = sums::<R, 1>(a.as_ptr(), (rs, cs), k, [b.as_ptr()]);
        let mut out = [[0.0f32; NR]; MR];
        for (o, row) in out.iter_mut().zip(&acc) {
            _mm512_storeu_ps(o.as_mut_ptr(), row[0]);
        }
        out
    }
}

/// The sums of an `R x 16V` tile: row `r`, panel `v`: `Σ_kk A[r, kk] · b_v[kk·16 ..]`,
/// `A[r, kk]` at `a[r·rs + kk·cs]`. Returned by value so that they stay in registers.
///
/// # Safety
/// AVX-512F present; every element of the `R x k` tile of `A` readable at these strides,
/// each panel of `b` holding `k` rows of 16.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn sums<const R: usize, const V: usize>(
    a: *const f32,
    (rs, cs): (usize, usize),
    k: usize,
    b: [*const f32; V],
) -> [[__m512; V]; R] {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        for kk in 0..k {
            let mut bv = [_mm512_setzero_ps(); V];
            for (x, &p) in bv.iter_mut().zip(&b) {
                *x = _mm512_loadu_ps(p.add(kk * NR));
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*a.add(r * rs + kk * cs));
                for (s, &x) in row.iter_mut().zip(&bv) {
                    *s = _mm512_fmadd_ps(av, x, *s);
                }
            }
        }
        acc
    }
}

/// Where a [`product_rows`] tile goes: its first row at `c`, rows `ldc` apart, `cols`
/// columns kept (up to 32), `bias` the columns' bias (when `store` has one).
#[derive(Clone, Copy)]
pub struct Out<'a> {
    pub c: *mut f32,
    pub ldc: usize,
    pub cols: usize,
    pub bias: &'a [f32; 2 * NR],
    pub store: Epilogue<'a>,
}

/// `C = store(A · B)` for `rows` (1..=12) rows of `A` (row-major, `k` apart) and `V`
/// panels of `B`.
///
/// # Safety
/// AVX-512F present; `a` holds `rows x k` values, each panel `k` rows of 16, and `out`
/// the tile's `rows x cols` values.
pub unsafe fn product_rows<const V: usize>(
    rows: usize,
    a: *const f32,
    k: usize,
    b: [&[f32]; V],
    out: Out,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        let b = b.map(|p| p.as_ptr());
        match rows {
            12 => product::<12, V>(a, k, b, out),
            11 => product::<11, V>(a, k, b, out),
            10 => product::<10, V>(a, k, b, out),
            9 => product::<9, V>(a, k, b, out),
            8 => product::<8, V>(a, k, b, out),
            7 => product::<7, V>(a, k, b, out),
            6 => product::<6, V>(a, k, b, out),
            5 => product::<5, V>(a, k, b, out),
            4 => product::<4, V>(a, k, b, out),
            3 => product::<3, V>(a, k, b, out),
            2 => product::<2, V>(a, k, b, out),
            _ => product::<1, V>(a, k, b, out),
        }
    }
}

/// One tile of [`product_rows`]: the sums, then per row and panel the [`Epilogue`]'s bias,
/// accumulation and GELU (the loops of `panel_product`, on 16 values), kept lanes
/// through a masked store.
///
/// # Safety
/// As [`product_rows`], for its `R` rows.
#[target_feature(enable = "avx512f")]
unsafe fn product<const R: usize, const V: usize>(
    a: *const f32,
    k: usize,
    b: [*const f32; V],
    out: Out,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        let acc = sums::<R, V>(a, (k, 1), k, b);
        let store = out.store;
        for (r, row) in acc.iter().enumerate() {
            for (v, sums) in row.iter().enumerate() {
                let cols = out.cols.saturating_sub(v * NR).min(NR);
                let mask = ((1u32 << cols) - 1) as u16;
                let dst = out.c.add(r * out.ldc + v * NR);
                let mut vals = [0.0f32; NR];
                _mm512_storeu_ps(vals.as_mut_ptr(), *sums);
                if store.bias.is_some() {
                    let bias = &out.bias[v * NR..][..NR];
                    vals.iter_mut().zip(bias).for_each(|(x, b)| *x += b);
                }
                if store.accumulate {
                    let mut old = [0.0f32; NR];
                    _mm512_storeu_ps(old.as_mut_ptr(), _mm512_maskz_loadu_ps(mask, dst));
                    vals.iter_mut().zip(&old).for_each(|(x, o)| *x += o);
                }
                if store.gelu {
                    vals.iter_mut()
                        .for_each(|x| *x = crate::kernels::math::gelu(*x));
                }
                _mm512_mask_storeu_ps(dst, mask, _mm512_loadu_ps(vals.as_ptr()));
            }
        }
    }
}

/// Columns `p·32 ..` (panels `2p` and `2p + 1`, or the last alone) of every row of `C`, in
/// AVX-512 tiles of up to [`ROWS`] rows.
///
/// # Safety
/// `c` must point at an `[m, w.n]` buffer that no other thread writes in these columns, on
/// a CPU with AVX-512F.
pub(super) unsafe fn pair_product512(
    a: &[f32],
    m: usize,
    w: &PackedWeight,
    p: usize,
    c: SendPtr<f32>,
    store: Epilogue,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        let (n, k) = (w.n, w.k);
        let first = 2 * p;
        let cols = (n - first * NR).min(2 * NR);
        let mut bias = [0.0f32; 2 * NR];
        if let Some(all) = store.bias {
            bias[..cols].copy_from_slice(&all[first * NR..first * NR + cols]);
        }
        let out = Out {
            c: c.0.add(first * NR),
            ldc: n,
            cols,
            bias: &bias,
            store,
        };
        let mut row = 0;
        while row < m {
            let rows = ROWS.min(m - row);
            let a = a[row * k..].as_ptr();
            let out = Out {
                c: out.c.add(row * n),
                ..out
            };
            if cols > NR {
                product_rows::<2>(rows, a, k, [w.panel(first), w.panel(first + 1)], out);
            } else {
                product_rows::<1>(rows, a, k, [w.panel(first)], out);
            }
            row += rows;
        }
    }
}

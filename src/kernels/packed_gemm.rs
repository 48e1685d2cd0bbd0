//! Products with a weight packed once and reused: `C [M, N] (+)= A [M, K] · Wᵀ` for a
//! linear layer's weight `W [N, K]`, the shape of inference with frozen weights.
//!
//! OpenBLAS packs both operands on every call. For the few rows of sampling (one to a
//! window of 128 positions) packing the weight costs about as much as an eighth of the
//! product (`sgemm_incopy` was 12.6% of W7's samples), and it is the same work every step.
//! Here the weight is packed once into panels of [`NR`] output columns (`[K, 16]` each,
//! zero-padded past `N`), and an AVX2 + FMA register tile of up to [`MR`] rows x 16
//! columns reads `A` straight from its rows (one broadcast per row and step of `K`).
//! Threads take whole panels, so each writes its own columns of `C`.
//!
//! [`gemm_packed_reference`] is the plain loop the tests compare with; CPUs without AVX2
//! and FMA run a portable tile.

use super::gemm::SendPtr;
use rayon::prelude::*;

/// Output columns per panel and register tile (two 8-lane AVX registers).
pub const NR: usize = 16;
/// Rows per register tile (six rows x two registers: twelve accumulators).
pub const MR: usize = 6;
/// Products smaller than this run on the calling thread.
const PAR_MIN_FLOPS: usize = 64 * 64 * 64;

/// A weight `W [N, K]` packed for [`gemm_packed`]: panel `p` holds `W[p·16 + j, k]` at
/// `p·K·16 + k·16 + j`.
#[derive(Clone, Debug)]
pub struct PackedWeight {
    pub n: usize,
    pub k: usize,
    data: Vec<f32>,
}

impl PackedWeight {
    /// Packs `w`, row-major `[n, k]`.
    pub fn pack(w: &[f32], n: usize, k: usize) -> PackedWeight {
        assert_eq!(
            w.len(),
            n * k,
            "PackedWeight: {} values for [{n}, {k}]",
            w.len()
        );
        let panels = n.div_ceil(NR);
        let mut data = vec![0.0; panels * k * NR];
        for (p, panel) in data.chunks_mut((k * NR).max(1)).enumerate().take(panels) {
            for j in 0..NR.min(n - p * NR) {
                let row = &w[(p * NR + j) * k..][..k];
                for (kk, &v) in row.iter().enumerate() {
                    panel[kk * NR + j] = v;
                }
            }
        }
        PackedWeight { n, k, data }
    }

    fn panels(&self) -> usize {
        self.n.div_ceil(NR)
    }
}

/// What [`gemm_packed`] does to each sum `v` of column `j` as it stores it, in this order:
/// `v + bias[j]`, then `C + v` when accumulating (else `v` overwrites `C`), then
/// the exact GELU when `gelu`: a linear layer's bias and the activation after it, without
/// passes of their own over `C`.
#[derive(Clone, Copy, Default)]
pub struct Store<'a> {
    pub bias: Option<&'a [f32]>,
    pub accumulate: bool,
    pub gelu: bool,
}

/// `C (+)= A · Wᵀ`: `a` row-major `[m, k]`, `c` row-major `[m, n]`; adds to `c` when
/// `accumulate`, else overwrites it.
pub fn gemm_packed(a: &[f32], m: usize, w: &PackedWeight, c: &mut [f32], accumulate: bool) {
    let store = Store {
        accumulate,
        ..Store::default()
    };
    gemm_packed_then(a, m, w, c, store)
}

/// [`gemm_packed`] with a bias and an activation applied as the sums are stored ([`Store`]).
pub fn gemm_packed_then(a: &[f32], m: usize, w: &PackedWeight, c: &mut [f32], store: Store) {
    let (n, k) = (w.n, w.k);
    assert!(
        a.len() >= m * k && c.len() >= m * n && store.bias.is_none_or(|b| b.len() == n),
        "gemm_packed: buffers too small for [{m}, {k}] x [{k}, {n}]"
    );
    if m == 0 || n == 0 {
        return;
    }
    let out = SendPtr(c.as_mut_ptr());
    let panel = move |p: usize| {
        // SAFETY: panel `p` writes only columns p·16 .. p·16 + 16 of `c`, which `c`'s
        // length check covers; no two panels share a column.
        unsafe { panel_product(a, m, w, p, out, store) }
    };
    let parallel = m * n * k >= PAR_MIN_FLOPS && !super::parallel::inside_kernel();
    if parallel {
        (0..w.panels()).into_par_iter().for_each(panel);
    } else {
        (0..w.panels()).for_each(panel);
    }
}

/// Columns `p·16 ..` of every row of `C`.
///
/// # Safety
/// `c` must point at an `[m, w.n]` buffer that no other thread writes in these columns.
unsafe fn panel_product(
    a: &[f32],
    m: usize,
    w: &PackedWeight,
    p: usize,
    c: SendPtr<f32>,
    store: Store,
) {
    let (n, k) = (w.n, w.k);
    let b = &w.data[p * k * NR..][..k * NR];
    let cols = NR.min(n - p * NR);
    let mut bias = [0.0f32; NR];
    if let Some(all) = store.bias {
        bias[..cols].copy_from_slice(&all[p * NR..p * NR + cols]);
    }
    let mut row = 0;
    while row < m {
        let rows = MR.min(m - row);
        let tile = tile_sums(&a[row * k..], k, b, rows);
        for (r, sums) in tile.iter().take(rows).enumerate() {
            // SAFETY: row + r < m and p·16 + cols <= n.
            let dst = std::slice::from_raw_parts_mut(c.0.add((row + r) * n + p * NR), cols);
            let mut v = *sums; // [16], a whole row of the tile so that the loops vectorize
            if store.bias.is_some() {
                v.iter_mut().zip(&bias).for_each(|(v, b)| *v += b);
            }
            if store.accumulate {
                v.iter_mut().zip(dst.iter()).for_each(|(v, d)| *v += d);
            }
            if store.gelu {
                v.iter_mut().for_each(|v| *v = super::math::gelu(*v));
            }
            dst.copy_from_slice(&v[..cols]);
        }
        row += rows;
    }
}

/// The `rows x 16` sums `A[r, :] · panel[:, j]` of one register tile (rows past `rows`
/// left zero).
fn tile_sums(a: &[f32], k: usize, b: &[f32], rows: usize) -> [[f32; NR]; MR] {
    #[cfg(target_arch = "x86_64")]
    if super::conv_direct::available() {
        // SAFETY: AVX2 and FMA are present; `a` holds `rows` rows of `k` and `b` `k` rows
        // of 16 (both checked by the slicing in `panel_product`).
        unsafe {
            return match rows {
                1 => avx::tile::<1>(a, k, b),
                2 => avx::tile::<2>(a, k, b),
                3 => avx::tile::<3>(a, k, b),
                4 => avx::tile::<4>(a, k, b),
                5 => avx::tile::<5>(a, k, b),
                _ => avx::tile::<6>(a, k, b),
            };
        }
    }
    tile_sums_portable(a, k, b, rows)
}

/// [`tile_sums`] without SIMD intrinsics (other CPUs, and the tests' second path).
fn tile_sums_portable(a: &[f32], k: usize, b: &[f32], rows: usize) -> [[f32; NR]; MR] {
    let mut acc = [[0.0f32; NR]; MR];
    for (r, sums) in acc.iter_mut().enumerate().take(rows) {
        let ar = &a[r * k..][..k];
        for (kk, &av) in ar.iter().enumerate() {
            let br = &b[kk * NR..][..NR];
            for (s, &bv) in sums.iter_mut().zip(br) {
                *s = av.mul_add(bv, *s);
            }
        }
    }
    acc
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use super::{MR, NR};
    use std::arch::x86_64::*;

    /// The sums of an `R x 16` tile, accumulated in `2R` registers over the whole of `k`
    /// and stored once (returned by value so that they stay in registers in the loop).
    ///
    /// # Safety
    /// AVX2 and FMA present; `a` holds `R` rows of `k`, `b` holds `k` rows of 16.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn tile<const R: usize>(a: &[f32], k: usize, b: &[f32]) -> [[f32; NR]; MR] {
        debug_assert!(a.len() >= (R - 1) * k + k && b.len() >= k * NR);
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        let (ap, bp) = (a.as_ptr(), b.as_ptr());
        for kk in 0..k {
            let b0 = _mm256_loadu_ps(bp.add(kk * NR));
            let b1 = _mm256_loadu_ps(bp.add(kk * NR + 8));
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*ap.add(r * k + kk));
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

/// The plain loop [`gemm_packed`] is tested against: `C (+)= A · Wᵀ` from the unpacked
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_values::values;

    #[test]
    fn packed_products_match_the_reference() {
        // Tails in every direction: rows not a multiple of 6, columns not of 16, k of 1.
        for &(m, n, k) in &[
            (1, 16, 8),
            (7, 33, 5),
            (13, 100, 17),
            (6, 16, 1),
            (128, 384, 128),
            (2, 1, 3),
        ] {
            let a = values(m * k, 1);
            let w = values(n * k, 2);
            let packed = PackedWeight::pack(&w, n, k);
            for accumulate in [false, true] {
                let start = values(m * n, 3);
                let mut got = start.clone();
                gemm_packed(&a, m, &packed, &mut got, accumulate);
                let mut want = start.clone();
                gemm_packed_reference(&a, m, &w, n, k, &mut want, accumulate);
                for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - e).abs() <= 1e-4 * (1.0 + e.abs()),
                        "[{m}, {n}, {k}] accumulate {accumulate}, element {i}: {g} vs {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_store_adds_the_bias_then_applies_the_gelu() {
        let (m, n, k) = (13, 37, 21); // row and column tails
        let (a, w, bias) = (values(m * k, 6), values(n * k, 7), values(n, 8));
        let packed = PackedWeight::pack(&w, n, k);
        for accumulate in [false, true] {
            let start = values(m * n, 9);
            let mut got = start.clone();
            let store = Store {
                bias: Some(&bias),
                accumulate,
                gelu: true,
            };
            gemm_packed_then(&a, m, &packed, &mut got, store);
            let mut sums = vec![0.0; m * n];
            gemm_packed(&a, m, &packed, &mut sums, false);
            for (i, (g, s)) in got.iter().zip(&sums).enumerate() {
                let v = s + bias[i % n];
                let v = if accumulate { start[i] + v } else { v };
                assert_eq!(*g, crate::kernels::math::gelu(v), "element {i}");
            }
        }
    }

    #[test]
    fn portable_tile_matches_the_simd_tile() {
        let (k, rows) = (37, 5);
        let a = values(rows * k, 4);
        let b = values(k * NR, 5);
        let simd = tile_sums(&a, k, &b, rows);
        let plain = tile_sums_portable(&a, k, &b, rows);
        for (s, p) in simd.iter().flatten().zip(plain.iter().flatten()) {
            assert!((s - p).abs() <= 1e-5 * (1.0 + p.abs()), "{s} vs {p}");
        }
        // rows past `rows` stay zero
        assert!(simd[5].iter().all(|&v| v == 0.0));
    }
}

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
//! Attention uses the same pieces on its own small operands: panels packed from a row-major
//! `B` ([`PackedWeight::pack_rows`]) or from a strided `W` ([`PackedWeight::pack_ld`]), and
//! single register tiles ([`tile_sums`], [`tile_sums_transposed`]) over part of `K`.
//!
//! On AVX-512 CPUs ([`Isa::best`]) a tile is 12 rows by two panels (24 of the 32 registers),
//! threads take pairs of panels, and the kept lanes go out through masked stores; attention's
//! single-panel tiles take one 16-lane register per row.
//!
//! [`gemm_packed_reference`] is the plain loop the tests compare with; they run every width
//! the CPU has. CPUs without AVX2 and FMA run a portable tile.

use super::isa::Isa;
use super::parallel::SendPtr;
use rayon::prelude::*;

/// Output columns per panel and register tile (two 8-lane AVX registers).
pub const NR: usize = 16;
/// Rows per register tile (six rows x two registers: twelve accumulators).
pub const MR: usize = 6;
/// Products with fewer multiply-adds than this run on the calling thread. Sampling with
/// the cache multiplies one row by each weight (`1 x 128 x 384`: 49,152): split over the
/// threads, W7 with the cache went from a median of 1,212 to 1,274 tokens/s (8 alternating
/// rounds, faster in all 8; without the cache 914 / 931) against the earlier `64³`.
const PAR_MIN_FLOPS: usize = 32 * 32 * 32;

/// The right operand `B [K, N]` of [`gemm_packed`] packed into panels of 16 columns: panel
/// `p` holds `B[k, p·16 + j]` at `p·K·16 + k·16 + j`, zero past `N`. Built from a linear
/// layer's weight `W [N, K]` (`B = Wᵀ`, [`PackedWeight::pack`]) or from a row-major
/// `B [K, N]` ([`PackedWeight::pack_rows`]).
#[derive(Clone, Debug)]
pub struct PackedWeight {
    pub n: usize,
    pub k: usize,
    data: Vec<f32>,
}

impl PackedWeight {
    /// Packs `B = wᵀ` from `w`, row-major `[n, k]`.
    pub fn pack(w: &[f32], n: usize, k: usize) -> PackedWeight {
        assert_eq!(
            w.len(),
            n * k,
            "PackedWeight: {} values for [{n}, {k}]",
            w.len()
        );
        PackedWeight::pack_ld(w, n, k, k)
    }

    /// Packs `B = wᵀ` from `w`, row-major `[n, k]` with rows `ldw` apart (`ldw >= k`).
    pub fn pack_ld(w: &[f32], n: usize, k: usize, ldw: usize) -> PackedWeight {
        assert!(
            ldw >= k && w.len() >= super::gemm::span(n, k, ldw),
            "PackedWeight::pack_ld: {} values for [{n}, {k}] rows {ldw} apart",
            w.len()
        );
        PackedWeight::packed_by(n, k, |p, panel| {
            pack_transposed_panel(w, n, k, ldw, p, panel)
        })
    }

    /// Packs `B` from `b`, row-major `[k, n]` with rows `ldb` apart (`ldb >= n`).
    pub fn pack_rows(b: &[f32], k: usize, n: usize, ldb: usize) -> PackedWeight {
        assert!(
            ldb >= n && b.len() >= super::gemm::span(k, n, ldb),
            "PackedWeight::pack_rows: {} values for [{k}, {n}] rows {ldb} apart",
            b.len()
        );
        PackedWeight::packed_by(n, k, |p, panel| {
            let cols = NR.min(n - p * NR);
            for (kk, dst) in panel.chunks_exact_mut(NR).enumerate() {
                let src = &b[kk * ldb + p * NR..][..cols];
                match <&[f32; NR]>::try_from(src) {
                    // A whole row as one fixed-size copy, not a `memmove` call.
                    Ok(whole) => *<&mut [f32; NR]>::try_from(dst).unwrap() = *whole,
                    Err(_) => {
                        dst[..cols].copy_from_slice(src);
                        dst[cols..].fill(0.0);
                    }
                }
            }
        })
    }

    /// Fills every panel with `fill(panel index, panel)`, which writes each of its values.
    fn packed_by(n: usize, k: usize, fill: impl Fn(usize, &mut [f32])) -> PackedWeight {
        let panels = n.div_ceil(NR);
        let mut data = crate::tensor::pool::take(panels * k * NR);
        data.chunks_mut((k * NR).max(1))
            .enumerate()
            .for_each(|(p, panel)| fill(p, panel));
        PackedWeight { n, k, data }
    }

    pub fn panels(&self) -> usize {
        self.n.div_ceil(NR)
    }

    /// Panel `p`: `[k, 16]`, columns `p·16 ..` of `B`.
    pub fn panel(&self, p: usize) -> &[f32] {
        &self.data[p * self.k * NR..][..self.k * NR]
    }
}

impl Drop for PackedWeight {
    /// The panels go back to the buffer pool: attention packs its keys and values for every
    /// head and call.
    fn drop(&mut self) {
        crate::tensor::pool::give(std::mem::take(&mut self.data));
    }
}

/// Panel `p` of `wᵀ` for `w [n, k]` (rows `ldw` apart): whole panels through 8 x 8 register
/// transposes, a last partial one element by element.
fn pack_transposed_panel(w: &[f32], n: usize, k: usize, ldw: usize, p: usize, panel: &mut [f32]) {
    let rows = NR.min(n - p * NR);
    let w = &w[p * NR * ldw..][..super::gemm::span(rows, k, ldw)]; // the panel's rows of w
    #[cfg(target_arch = "x86_64")]
    if rows == NR && super::isa::available() {
        // SAFETY: AVX2 is present; `w` holds 16 rows of `k`, `ldw` apart, and `panel` `k`
        // rows of 16.
        unsafe { avx::transpose_panel(w, k, ldw, panel) };
        return;
    }
    if rows < NR {
        panel.fill(0.0);
    }
    for j in 0..rows {
        for (kk, &v) in w[j * ldw..][..k].iter().enumerate() {
            panel[kk * NR + j] = v;
        }
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
    gemm_packed_on(Isa::best(), a, m, w, c, store)
}

/// [`gemm_packed_then`] on the tiles of `isa` (`None`: the portable tile).
fn gemm_packed_on(
    isa: Option<Isa>,
    a: &[f32],
    m: usize,
    w: &PackedWeight,
    c: &mut [f32],
    store: Store,
) {
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
        unsafe { panel_product(isa, a, m, w, p, out, store) }
    };
    let parallel = m * n * k >= PAR_MIN_FLOPS && !super::parallel::inside_kernel();
    #[cfg(target_arch = "x86_64")]
    if isa == Some(Isa::Avx512) {
        // Two panels (32 columns) per tile; threads take pairs.
        let pair = move |p: usize| {
            // SAFETY: the pair writes only columns p·32 .. p·32 + 32 of `c`, which `c`'s
            // length check covers; no two pairs share a column; AVX-512F is present.
            unsafe { pair_product512(a, m, w, p, out, store) }
        };
        let pairs = w.panels().div_ceil(2);
        if parallel {
            (0..pairs).into_par_iter().for_each(pair);
        } else {
            (0..pairs).for_each(pair);
        }
        return;
    }
    if parallel {
        (0..w.panels()).into_par_iter().for_each(panel);
    } else {
        (0..w.panels()).for_each(panel);
    }
}

/// Columns `p·32 ..` (panels `2p` and `2p + 1`, or the last alone) of every row of `C`, in
/// AVX-512 tiles of up to [`avx512::ROWS`] rows.
///
/// # Safety
/// `c` must point at an `[m, w.n]` buffer that no other thread writes in these columns, on
/// a CPU with AVX-512F.
#[cfg(target_arch = "x86_64")]
unsafe fn pair_product512(
    a: &[f32],
    m: usize,
    w: &PackedWeight,
    p: usize,
    c: SendPtr<f32>,
    store: Store,
) {
    let (n, k) = (w.n, w.k);
    let first = 2 * p;
    let cols = (n - first * NR).min(2 * NR);
    let mut bias = [0.0f32; 2 * NR];
    if let Some(all) = store.bias {
        bias[..cols].copy_from_slice(&all[first * NR..first * NR + cols]);
    }
    let out = avx512::Out {
        c: c.0.add(first * NR),
        ldc: n,
        cols,
        bias: &bias,
        store,
    };
    let mut row = 0;
    while row < m {
        let rows = avx512::ROWS.min(m - row);
        let a = a[row * k..].as_ptr();
        let out = avx512::Out {
            c: out.c.add(row * n),
            ..out
        };
        if cols > NR {
            avx512::product_rows::<2>(rows, a, k, [w.panel(first), w.panel(first + 1)], out);
        } else {
            avx512::product_rows::<1>(rows, a, k, [w.panel(first)], out);
        }
        row += rows;
    }
}

/// Columns `p·16 ..` of every row of `C`.
///
/// # Safety
/// `c` must point at an `[m, w.n]` buffer that no other thread writes in these columns.
unsafe fn panel_product(
    isa: Option<Isa>,
    a: &[f32],
    m: usize,
    w: &PackedWeight,
    p: usize,
    c: SendPtr<f32>,
    store: Store,
) {
    let (n, k) = (w.n, w.k);
    let b = w.panel(p);
    let cols = NR.min(n - p * NR);
    let mut bias = [0.0f32; NR];
    if let Some(all) = store.bias {
        bias[..cols].copy_from_slice(&all[p * NR..p * NR + cols]);
    }
    let mut row = 0;
    while row < m {
        let rows = MR.min(m - row);
        let tile = tile_sums_on(isa, &a[row * k..], (k, 1), k, b, rows);
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

/// The `rows x 16` sums `A[r, :k] · panel[:k, j]` of one register tile, row `r` of `A`
/// at `a[r·lda ..]` (rows past `rows` left zero).
pub(crate) fn tile_sums(
    a: &[f32],
    lda: usize,
    k: usize,
    b: &[f32],
    rows: usize,
) -> [[f32; NR]; MR] {
    tile_sums_strided(a, (lda, 1), k, b, rows)
}

/// [`tile_sums`] of an `A` stored transposed: `A[r, kk]` at `a[kk·lda + r]` (a row-major
/// `[k, lda]` matrix whose first `rows` columns are the tile's rows).
pub(crate) fn tile_sums_transposed(
    a: &[f32],
    lda: usize,
    k: usize,
    b: &[f32],
    rows: usize,
) -> [[f32; NR]; MR] {
    tile_sums_strided(a, (1, lda), k, b, rows)
}

/// The tile with `A[r, kk]` at `a[r·rs + kk·cs]`.
fn tile_sums_strided(
    a: &[f32],
    strides: (usize, usize),
    k: usize,
    b: &[f32],
    rows: usize,
) -> [[f32; NR]; MR] {
    tile_sums_on(Isa::best(), a, strides, k, b, rows)
}

/// [`tile_sums_strided`] on the tile of `isa` (`None`: the portable one).
fn tile_sums_on(
    isa: Option<Isa>,
    a: &[f32],
    (rs, cs): (usize, usize),
    k: usize,
    b: &[f32],
    rows: usize,
) -> [[f32; NR]; MR] {
    assert!(
        rows <= MR
            && (rows == 0 || k == 0 || a.len() > (rows - 1) * rs + (k - 1) * cs)
            && b.len() >= k * NR,
        "tile_sums: operands too short"
    );
    // `$simd::tile::<R>` for the tile's rows (none: zeros).
    #[cfg(target_arch = "x86_64")]
    macro_rules! tile_of_rows {
        ($simd:ident) => {
            match rows {
                0 => [[0.0; NR]; MR],
                1 => $simd::tile::<1>(a, rs, cs, k, b),
                2 => $simd::tile::<2>(a, rs, cs, k, b),
                3 => $simd::tile::<3>(a, rs, cs, k, b),
                4 => $simd::tile::<4>(a, rs, cs, k, b),
                5 => $simd::tile::<5>(a, rs, cs, k, b),
                _ => $simd::tile::<6>(a, rs, cs, k, b),
            }
        };
    }
    // SAFETY: `isa` names kernels the CPU runs (AVX-512F, or AVX2 and FMA); `a` holds every
    // element of the `rows x k` tile at these strides, and `b` `k` rows of 16 (checked
    // above).
    #[cfg(target_arch = "x86_64")]
    unsafe {
        match isa {
            Some(Isa::Avx512) => return tile_of_rows!(avx512),
            Some(Isa::Avx2) => return tile_of_rows!(avx),
            None => {}
        }
    }
    tile_sums_portable(a, (rs, cs), k, b, rows)
}

/// [`tile_sums_strided`] without SIMD intrinsics (other CPUs, and the tests' second path).
fn tile_sums_portable(
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

#[cfg(target_arch = "x86_64")]
mod avx {
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

    /// Writes `panel[kk·16 + j] = w[j·ldw + kk]` for the 16 rows of `w [16, k]`: blocks of
    /// 8 rows x 8 columns through an 8 x 8 register transpose, the last `k % 8` columns
    /// one by one.
    ///
    /// # Safety
    /// AVX present; `w` holds 16 rows of `k` values `ldw` apart, `panel` `k · 16` values.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn transpose_panel(w: &[f32], k: usize, ldw: usize, panel: &mut [f32]) {
        debug_assert!(w.len() >= 15 * ldw + k && panel.len() >= k * NR);
        let (src, dst) = (w.as_ptr(), panel.as_mut_ptr());
        let whole = k / 8 * 8;
        for kk in (0..whole).step_by(8) {
            for half in 0..2 {
                // Rows half·8 .. half·8 + 8, columns kk .. kk + 8 of w, into columns
                // half·8 .. of rows kk .. of the panel.
                let (from, to) = (src.add(half * 8 * ldw + kk), dst.add(kk * NR + half * 8));
                super::super::conv_direct::avx::transpose_8x8(from, ldw, to, NR);
            }
        }
        for kk in whole..k {
            for j in 0..NR {
                *dst.add(kk * NR + j) = *src.add(j * ldw + kk);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Store, MR, NR};
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
        debug_assert!(k == 0 || a.len() > (R - 1) * rs + (k - 1) * cs);
        debug_assert!(b.len() >= k * NR);
        let acc = sums::<R, 1>(a.as_ptr(), (rs, cs), k, [b.as_ptr()]);
        let mut out = [[0.0f32; NR]; MR];
        for (o, row) in out.iter_mut().zip(&acc) {
            _mm512_storeu_ps(o.as_mut_ptr(), row[0]);
        }
        out
    }

    /// The sums of an `R x 16V` tile: row `r`, panel `v`: `Σ_kk A[r, kk] · b_v[kk·16 ..]`,
    /// `A[r, kk]` at `a[r·rs + kk·cs]`. Returned by value so that they stay in registers.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn sums<const R: usize, const V: usize>(
        a: *const f32,
        (rs, cs): (usize, usize),
        k: usize,
        b: [*const f32; V],
    ) -> [[__m512; V]; R] {
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

    /// Where a [`product_rows`] tile goes: its first row at `c`, rows `ldc` apart, `cols`
    /// columns kept (up to 32), `bias` the columns' bias (when `store` has one).
    #[derive(Clone, Copy)]
    pub struct Out<'a> {
        pub c: *mut f32,
        pub ldc: usize,
        pub cols: usize,
        pub bias: &'a [f32; 2 * NR],
        pub store: Store<'a>,
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

    /// One tile of [`product_rows`]: the sums, then per row and panel the [`Store`]'s bias,
    /// accumulation and GELU (the loops of `panel_product`, on 16 values), kept lanes
    /// through a masked store.
    #[target_feature(enable = "avx512f")]
    unsafe fn product<const R: usize, const V: usize>(
        a: *const f32,
        k: usize,
        b: [*const f32; V],
        out: Out,
    ) {
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
            for (isa, accumulate) in every_tile().flat_map(|i| [(i, false), (i, true)]) {
                let start = values(m * n, 3);
                let mut got = start.clone();
                let store = Store {
                    accumulate,
                    ..Store::default()
                };
                gemm_packed_on(isa, &a, m, &packed, &mut got, store);
                let mut want = start.clone();
                gemm_packed_reference(&a, m, &w, n, k, &mut want, accumulate);
                for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - e).abs() <= 1e-4 * (1.0 + e.abs()),
                        "{isa:?} [{m}, {n}, {k}] accumulate {accumulate}, element {i}: {g} vs {e}"
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
        for (isa, accumulate) in every_tile().flat_map(|i| [(i, false), (i, true)]) {
            let start = values(m * n, 9);
            let mut got = start.clone();
            let store = Store {
                bias: Some(&bias),
                accumulate,
                gelu: true,
            };
            gemm_packed_on(isa, &a, m, &packed, &mut got, store);
            let mut sums = vec![0.0; m * n];
            gemm_packed_on(isa, &a, m, &packed, &mut sums, Store::default());
            for (i, (g, s)) in got.iter().zip(&sums).enumerate() {
                let v = s + bias[i % n];
                let v = if accumulate { start[i] + v } else { v };
                assert_eq!(*g, crate::kernels::math::gelu(v), "{isa:?} element {i}");
            }
        }
    }

    /// The portable tile and every SIMD tile this CPU runs.
    fn every_tile() -> impl Iterator<Item = Option<Isa>> {
        std::iter::once(None).chain(Isa::available().into_iter().map(Some))
    }

    #[test]
    fn portable_tile_matches_the_simd_tiles() {
        let (k, rows) = (37, 5);
        let a = values(rows * k, 4);
        let b = values(k * NR, 5);
        let plain = tile_sums_portable(&a, (k, 1), k, &b, rows);
        for isa in Isa::available() {
            let simd = tile_sums_on(Some(isa), &a, (k, 1), k, &b, rows);
            for (s, p) in simd.iter().flatten().zip(plain.iter().flatten()) {
                assert!(
                    (s - p).abs() <= 1e-5 * (1.0 + p.abs()),
                    "{isa:?}: {s} vs {p}"
                );
            }
            // rows past `rows` stay zero
            assert!(simd[5].iter().all(|&v| v == 0.0), "{isa:?}");
        }
    }

    #[test]
    fn both_packings_lay_out_the_same_panels() {
        // k with and without a tail of 8, n with whole and partial panels.
        for &(n, k) in &[(16, 8), (33, 13), (40, 24), (5, 3), (300, 301)] {
            let w = values(n * k, 10); // [n, k]
            let mut w_ld = vec![-9.0; n * (k + 3)]; // [n, k] with rows 3 longer
            let mut wt = vec![0.0; k * n]; // [k, n], and again with rows 7 longer
            let mut wt_ld = vec![-9.0; k * (n + 7)];
            for j in 0..n {
                for kk in 0..k {
                    w_ld[j * (k + 3) + kk] = w[j * k + kk];
                    wt[kk * n + j] = w[j * k + kk];
                    wt_ld[kk * (n + 7) + j] = w[j * k + kk];
                }
            }
            let packed = PackedWeight::pack(&w, n, k);
            for other in [
                PackedWeight::pack_ld(&w_ld, n, k, k + 3),
                PackedWeight::pack_rows(&wt, k, n, n),
                PackedWeight::pack_rows(&wt_ld, k, n, n + 7),
            ] {
                assert_eq!(packed.data, other.data, "[{n}, {k}]");
            }
            // Panel layout: B[kk, j] = w[j, kk] at p·k·16 + kk·16 + j % 16, zero past n.
            for p in 0..packed.panels() {
                for kk in 0..k {
                    for j in 0..NR {
                        let col = p * NR + j;
                        let want = if col < n { w[col * k + kk] } else { 0.0 };
                        assert_eq!(packed.panel(p)[kk * NR + j], want);
                    }
                }
            }
        }
    }

    #[test]
    fn a_tile_reads_rows_lda_apart_and_the_first_k_rows_of_the_panel() {
        let (lda, k, rows) = (40, 29, 6);
        let a = values(rows * lda, 13);
        let b = values(50 * NR, 14); // a panel longer than k
        let tile = tile_sums(&a, lda, k, &b, rows);
        for r in 0..rows {
            for j in 0..NR {
                let want: f64 = (0..k)
                    .map(|kk| a[r * lda + kk] as f64 * b[kk * NR + j] as f64)
                    .sum();
                assert!((tile[r][j] as f64 - want).abs() < 1e-5, "({r}, {j})");
            }
        }
        assert_eq!(tile_sums(&a, lda, k, &b, 0), [[0.0; NR]; MR]);
    }
}

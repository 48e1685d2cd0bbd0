//! Products with a weight packed once and reused: `C [M, N] (+)= A [M, K] · Wᵀ` for a
//! linear layer's weight `W [N, K]`, the shape of inference with frozen weights.
//!
//! OpenBLAS packs both operands on every call. For the few rows of sampling (one to a
//! window of 128 positions) packing the weight is a sizeable part of the product, and it
//! is the same work every step (docs/performance.md has the profiles).
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

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod portable;
mod reference;
#[cfg(test)]
mod tests;

pub use reference::gemm_packed_reference;

pub use crate::kernels::epilogue::Epilogue;
use crate::kernels::epilogue::Step;
use crate::runtime::cpu::Isa;
use crate::runtime::threads::SendPtr;
#[cfg(target_arch = "x86_64")]
use avx512::pair_product512;
use portable::tile_sums_portable;
use rayon::prelude::*;

/// Output columns per panel and register tile (two 8-lane AVX registers).
pub const NR: usize = 16;
/// Rows per register tile (six rows x two registers: twelve accumulators).
pub const MR: usize = 6;
/// Products with fewer multiply-adds than this run on the calling thread. Sampling with
/// the cache multiplies one row by each weight (`1 x 128 x 384`: 49,152), which is still
/// worth splitting over the threads (measured in docs/performance.md).
const PAR_MIN_FLOPS: usize = 32 * 32 * 32;

/// The right operand `B [K, N]` of [`gemm_packed`] packed into panels of 16 columns: panel
/// `p` holds `B[k, p·16 + j]` at `p·K·16 + k·16 + j`, zero past `N`. Built from a linear
/// layer's weight `W [N, K]` (`B = Wᵀ`, [`PackedWeight::pack`]) or from a row-major
/// `B [K, N]` ([`PackedWeight::pack_rows`]).
#[derive(Clone, Debug)]
pub struct PackedWeight {
    /// Columns of `B` (outputs).
    pub n: usize,
    /// Rows of `B` (the reduction length).
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
            ldw >= k && w.len() >= super::span(n, k, ldw),
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
            ldb >= n && b.len() >= super::span(k, n, ldb),
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
        let mut data = crate::runtime::buffers::take(panels * k * NR);
        data.chunks_mut((k * NR).max(1))
            .enumerate()
            .for_each(|(p, panel)| fill(p, panel));
        PackedWeight { n, k, data }
    }

    /// Number of column panels of width `NR`.
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
        crate::runtime::buffers::give(std::mem::take(&mut self.data));
    }
}

/// Panel `p` of `wᵀ` for `w [n, k]` (rows `ldw` apart): whole panels through 8 x 8 register
/// transposes, a last partial one element by element.
fn pack_transposed_panel(w: &[f32], n: usize, k: usize, ldw: usize, p: usize, panel: &mut [f32]) {
    let rows = NR.min(n - p * NR);
    let w = &w[p * NR * ldw..][..super::span(rows, k, ldw)]; // the panel's rows of w
    #[cfg(target_arch = "x86_64")]
    if rows == NR && crate::runtime::cpu::available() {
        // SAFETY: AVX2 is present; `w` holds 16 rows of `k`, `ldw` apart, and `panel` `k`
        // rows of 16.
        unsafe { avx2::transpose_panel(w, k, ldw, panel) };
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

/// `C (+)= A · Wᵀ`: `a` row-major `[m, k]`, `c` row-major `[m, n]`; adds to `c` when
/// `accumulate`, else overwrites it.
pub fn gemm_packed(a: &[f32], m: usize, w: &PackedWeight, c: &mut [f32], accumulate: bool) {
    let store = Epilogue {
        accumulate,
        ..Epilogue::default()
    };
    gemm_packed_then(a, m, w, c, store)
}

/// [`gemm_packed`] with an [`Epilogue`] applied to each sum of column `j` (feature `j`) as it
/// is stored: of its steps, a bias, accumulating and the GELU (a linear layer's bias and the
/// activation after it, without passes of their own over `C`).
pub fn gemm_packed_then(a: &[f32], m: usize, w: &PackedWeight, c: &mut [f32], store: Epilogue) {
    gemm_packed_on(Isa::best(), a, m, w, c, store)
}

/// [`gemm_packed_then`] on the tiles of `isa` (`None`: the portable tile).
fn gemm_packed_on(
    isa: Option<Isa>,
    a: &[f32],
    m: usize,
    w: &PackedWeight,
    c: &mut [f32],
    store: Epilogue,
) {
    let (n, k) = (w.n, w.k);
    assert!(
        a.len() >= m * k && c.len() >= m * n,
        "gemm_packed: buffers too small for [{m}, {k}] x [{k}, {n}]"
    );
    store.supports(
        "gemm_packed",
        &[Step::Bias, Step::Accumulate, Step::Gelu],
        n,
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
    let parallel = m * n * k >= PAR_MIN_FLOPS && !crate::runtime::threads::inside_kernel();
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
    store: Epilogue,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
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
                    v.iter_mut()
                        .for_each(|v| *v = crate::kernels::math::gelu(*v));
                }
                dst.copy_from_slice(&v[..cols]);
            }
            row += rows;
        }
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
            Some(Isa::Avx2) => return tile_of_rows!(avx2),
            None => {}
        }
    }
    tile_sums_portable(a, (rs, cs), k, b, rows)
}

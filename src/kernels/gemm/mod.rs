//! Single-precision matrix product, the kernel most of training time goes through.
//!
//! `sgemm` computes `C = op(A) · op(B)` (or `C += ...`) for row-major matrices, where
//! `op(X)` is `X` or its transpose: a transposed operand is read through its strides, never
//! copied. Each matrix may be a block of a wider one (a leading dimension, BLAS's `ld`):
//! attention reads its heads straight out of the fused q/k/v projection that way.
//!
//! Two engines, chosen per call (measured on this CPU, see docs/performance.md):
//! - large products go to OpenBLAS's single-threaded kernel. Called from outside a parallel
//!   region, `C` is cut into one block of rows (or columns) per rayon thread and each block
//!   is one OpenBLAS call on its own thread: the process keeps one thread pool (rayon's)
//!   instead of two pools spinning against each other on the same cores, which cost the
//!   small products of a training step a quarter of their time in `sched_yield`;
//! - small products go to the pure-Rust `gemm` crate on the calling thread: lower per-call
//!   overhead.
//!
//! [`packed`] holds the other product: the right operand packed once into panels and reused
//! (a linear layer's weight at inference, attention's heads), on its own register tiles.

mod openblas_core;
pub mod packed;
mod reference;
#[cfg(test)]
mod tests;

pub use openblas_core::{better_family, ensure_fast_kernels, BlasCore};
pub use reference::sgemm_reference;

use crate::runtime::threads::SendPtr;

/// Shape and storage of one product: `C[m, n] (+)= op(A)[m, k] · op(B)[k, n]`.
#[derive(Clone, Copy, Debug)]
pub struct Gemm {
    /// Rows of `C` and of `op(A)`.
    pub m: usize,
    /// Columns of `C` and of `op(B)`.
    pub n: usize,
    /// The reduction length: columns of `op(A)`, rows of `op(B)`.
    pub k: usize,
    /// `A` is stored as `[k, m]` (row-major) and used transposed.
    pub trans_a: bool,
    /// `B` is stored as `[n, k]` (row-major) and used transposed.
    pub trans_b: bool,
    /// Add to `C` instead of overwriting it.
    pub accumulate: bool,
    /// Distance between consecutive stored rows of `A`; 0 means dense (the stored row
    /// length). `ldb` and `ldc` are the same for `B` and `C`.
    pub lda: usize,
    /// Row stride of `B` (0: dense).
    pub ldb: usize,
    /// Row stride of `C` (0: dense).
    pub ldc: usize,
}

impl Gemm {
    /// `C = A · B` with both operands as stored.
    pub fn new(m: usize, n: usize, k: usize) -> Gemm {
        Gemm {
            m,
            n,
            k,
            trans_a: false,
            trans_b: false,
            accumulate: false,
            lda: 0,
            ldb: 0,
            ldc: 0,
        }
    }

    /// Uses `A` transposed (stored as `[k, m]`).
    pub fn trans_a(mut self, t: bool) -> Gemm {
        self.trans_a = t;
        self
    }

    /// Uses `B` transposed (stored as `[n, k]`).
    pub fn trans_b(mut self, t: bool) -> Gemm {
        self.trans_b = t;
        self
    }

    /// Adds the product to `C` instead of overwriting it.
    pub fn accumulate(mut self, acc: bool) -> Gemm {
        self.accumulate = acc;
        self
    }

    /// `A`'s stored rows are `lda` apart (at least the stored row length).
    pub fn lda(mut self, ld: usize) -> Gemm {
        self.lda = ld;
        self
    }

    /// `B`'s stored rows are `ldb` apart (at least the stored row length).
    pub fn ldb(mut self, ld: usize) -> Gemm {
        self.ldb = ld;
        self
    }

    /// `C`'s rows are `ldc` apart (at least `n`).
    pub fn ldc(mut self, ld: usize) -> Gemm {
        self.ldc = ld;
        self
    }

    /// Stored shape of `A` (rows, columns): `[m, k]`, or `[k, m]` when transposed.
    fn a_stored(&self) -> (usize, usize) {
        if self.trans_a {
            (self.k, self.m)
        } else {
            (self.m, self.k)
        }
    }

    /// Stored shape of `B` (rows, columns): `[k, n]`, or `[n, k]` when transposed.
    fn b_stored(&self) -> (usize, usize) {
        if self.trans_b {
            (self.n, self.k)
        } else {
            (self.k, self.n)
        }
    }

    /// Effective leading dimensions of `A`, `B` and `C`.
    fn lds(&self) -> (usize, usize, usize) {
        let or = |ld: usize, dense: usize| if ld == 0 { dense } else { ld };
        (
            or(self.lda, self.a_stored().1),
            or(self.ldb, self.b_stored().1),
            or(self.ldc, self.n),
        )
    }

    /// Row and column strides of `A` as an `[m, k]` matrix.
    fn a_strides(&self) -> (usize, usize) {
        let lda = self.lds().0;
        if self.trans_a {
            (1, lda)
        } else {
            (lda, 1)
        }
    }

    /// Row and column strides of `B` as a `[k, n]` matrix.
    fn b_strides(&self) -> (usize, usize) {
        let ldb = self.lds().1;
        if self.trans_b {
            (1, ldb)
        } else {
            (ldb, 1)
        }
    }

    /// Elements `A`, `B` and `C` must hold.
    fn spans(&self) -> (usize, usize, usize) {
        let (lda, ldb, ldc) = self.lds();
        let ((ar, ac), (br, bc)) = (self.a_stored(), self.b_stored());
        (
            span(ar, ac, lda),
            span(br, bc, ldb),
            span(self.m, self.n, ldc),
        )
    }

    fn check(&self, a: &[f32], b: &[f32], c: &[f32]) {
        let (lda, ldb, ldc) = self.lds();
        assert!(
            lda >= self.a_stored().1 && ldb >= self.b_stored().1 && ldc >= self.n,
            "sgemm: leading dimensions ({lda}, {ldb}, {ldc}) shorter than the rows of {self:?}"
        );
        let (na, nb, nc) = self.spans();
        assert!(
            a.len() >= na && b.len() >= nb && c.len() >= nc,
            "sgemm: buffers too small for m={} n={} k={} (a {}, b {}, c {})",
            self.m,
            self.n,
            self.k,
            a.len(),
            b.len(),
            c.len()
        );
    }
}

/// Elements a buffer needs for `rows` rows of `cols` values, `ld` apart.
pub(crate) fn span(rows: usize, cols: usize, ld: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * ld + cols
    }
}

/// Products with fewer multiply-adds than this run on the calling thread (`gemm` crate).
const BLAS_MIN_FLOPS: usize = 64 * 64 * 64;

mod ffi {
    // The CBLAS interface of the system OpenBLAS (linked by build.rs).
    pub const ROW_MAJOR: i32 = 101;
    pub const NO_TRANS: i32 = 111;
    pub const TRANS: i32 = 112;
    extern "C" {
        #[allow(clippy::too_many_arguments)]
        pub fn cblas_sgemm(
            layout: i32,
            trans_a: i32,
            trans_b: i32,
            m: i32,
            n: i32,
            k: i32,
            alpha: f32,
            a: *const f32,
            lda: i32,
            b: *const f32,
            ldb: i32,
            beta: f32,
            c: *mut f32,
            ldc: i32,
        );
        pub fn openblas_set_num_threads(n: i32);
    }
}

/// Keeps OpenBLAS on the calling thread (parallelism comes from rayon, see the module docs),
/// on the widest kernels the CPU runs ([`ensure_fast_kernels`]).
fn single_threaded_blas() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        ensure_fast_kernels();
        // SAFETY: a plain setter of the library's global configuration, called once.
        unsafe { ffi::openblas_set_num_threads(1) }
    });
}

/// Products with at least this many multiply-adds are split over the rayon threads.
const SPLIT_MIN_FLOPS: usize = 96 * 96 * 96;

/// `C (+)= op(A) · op(B)`, the fast path.
pub fn sgemm(g: Gemm, a: &[f32], b: &[f32], c: &mut [f32]) {
    g.check(a, b, c);
    let threads = rayon::current_num_threads();
    let inside_worker = crate::runtime::threads::inside_kernel();
    let flops = g.m * g.n * g.k;
    if g.k > 0 && flops >= SPLIT_MIN_FLOPS && !inside_worker && threads > 1 {
        single_threaded_blas();
        return sgemm_blas_split(g, a, b, c, threads);
    }
    // SAFETY: `check` verified the buffers for the whole product.
    unsafe { sgemm_on_this_thread(g, a.as_ptr(), b.as_ptr(), c.as_mut_ptr()) }
}

/// `C (+)= op(A) · op(B)` on the calling thread, from raw pointers: for callers that write
/// disjoint blocks of one wider matrix from several threads (attention's heads), where a
/// `&mut` slice per block cannot be formed.
///
/// # Safety
/// `a`, `b` and `c` must be valid for the elements `g` reaches through its leading
/// dimensions (`(rows - 1) * ld + cols` from each pointer), `c` writable, and no other thread
/// may touch the elements of `C` this call writes while it runs.
pub unsafe fn sgemm_on_this_thread(g: Gemm, a: *const f32, b: *const f32, c: *mut f32) {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        if g.m == 0 || g.n == 0 {
            return;
        }
        if g.k == 0 {
            if !g.accumulate {
                let ldc = g.lds().2;
                for i in 0..g.m {
                    std::slice::from_raw_parts_mut(c.add(i * ldc), g.n).fill(0.0);
                }
            }
            return;
        }
        if g.m * g.n * g.k < BLAS_MIN_FLOPS {
            sgemm_rust(g, a, b, c)
        } else {
            single_threaded_blas();
            sgemm_blas_block(g, a, b, c, g.m, g.n)
        }
    }
}

/// Cuts `C` into `threads` blocks along its longer side (in multiples of 16, OpenBLAS's
/// register tile) and computes each block with one single-threaded OpenBLAS call.
fn sgemm_blas_split(g: Gemm, a: &[f32], b: &[f32], c: &mut [f32], threads: usize) {
    use rayon::prelude::*;
    let by_rows = g.m >= g.n;
    let len = if by_rows { g.m } else { g.n };
    let block = len.div_ceil(threads).div_ceil(16) * 16;
    let blocks = len.div_ceil(block);
    let (lda, ldb, ldc) = g.lds();
    let (a, b, c) = (
        a.as_ptr() as usize,
        b.as_ptr() as usize,
        SendPtr(c.as_mut_ptr()),
    );
    (0..blocks).into_par_iter().for_each(move |i| {
        let start = i * block;
        let size = block.min(len - start);
        let (a, b, c) = (a as *const f32, b as *const f32, c);
        // SAFETY: every block lies inside the buffers `check` verified; blocks of `C` are
        // disjoint rows (or columns) so no two threads write the same element.
        unsafe {
            if by_rows {
                // Rows of op(A): row `r` starts at `r * lda`, or at column `r` when transposed.
                let a_off = if g.trans_a { start } else { start * lda };
                sgemm_blas_block(g, a.add(a_off), b, c.0.add(start * ldc), size, g.n);
            } else {
                // Columns of op(B): column `j` starts at `j`, or at row `j * ldb` when
                // transposed.
                let b_off = if g.trans_b { start * ldb } else { start };
                sgemm_blas_block(g, a, b.add(b_off), c.0.add(start), g.m, size);
            }
        }
    });
}

/// One single-threaded OpenBLAS call computing an `m x n` block of `C` with the leading
/// dimensions of the whole product `g`.
///
/// # Safety
/// `a`, `b` and `c` must point at the block's first elements inside buffers laid out as
/// `g` describes.
unsafe fn sgemm_blas_block(g: Gemm, a: *const f32, b: *const f32, c: *mut f32, m: usize, n: usize) {
    // SAFETY: the caller upholds this function's `# Safety` contract.
    unsafe {
        let (lda, ldb, ldc) = g.lds();
        let flag = |t: bool| if t { ffi::TRANS } else { ffi::NO_TRANS };
        ffi::cblas_sgemm(
            ffi::ROW_MAJOR,
            flag(g.trans_a),
            flag(g.trans_b),
            m as i32,
            n as i32,
            g.k as i32,
            1.0,
            a,
            lda as i32,
            b,
            ldb as i32,
            if g.accumulate { 1.0 } else { 0.0 },
            c,
            ldc as i32,
        )
    }
}

/// # Safety
/// As [`sgemm_on_this_thread`].
unsafe fn sgemm_rust(g: Gemm, a: *const f32, b: *const f32, c: *mut f32) {
    let (rsa, csa) = g.a_strides();
    let (rsb, csb) = g.b_strides();
    let ldc = g.lds().2;
    // SAFETY: the caller guarantees every index the strides reach is valid.
    unsafe {
        gemm::gemm(
            g.m,
            g.n,
            g.k,
            c,
            1,
            ldc as isize,
            g.accumulate,
            a,
            csa as isize,
            rsa as isize,
            b,
            csb as isize,
            rsb as isize,
            if g.accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

//! Single-precision matrix product, the kernel most of training time goes through.
//!
//! `sgemm` computes `C = op(A) · op(B)` (or `C += ...`) for row-major matrices, where
//! `op(X)` is `X` or its transpose: a transposed operand is read through its strides, never
//! copied.
//!
//! Two engines, chosen per call (measured on this CPU, see docs/performance.md):
//! - large products called from outside a parallel region go to OpenBLAS, multi-threaded:
//!   it matches NumPy's OpenBLAS and scales to both cores;
//! - small products, and any product called from inside a rayon worker (a convolution that
//!   is already parallel over the batch), go to the pure-Rust `gemm` crate on the calling
//!   thread: lower per-call overhead, and no threads are oversubscribed.

/// Shape and storage of one product: `C[m, n] (+)= op(A)[m, k] · op(B)[k, n]`.
#[derive(Clone, Copy, Debug)]
pub struct Gemm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// `A` is stored as `[k, m]` (row-major) and used transposed.
    pub trans_a: bool,
    /// `B` is stored as `[n, k]` (row-major) and used transposed.
    pub trans_b: bool,
    /// Add to `C` instead of overwriting it.
    pub accumulate: bool,
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
        }
    }

    pub fn trans_a(mut self, t: bool) -> Gemm {
        self.trans_a = t;
        self
    }

    pub fn trans_b(mut self, t: bool) -> Gemm {
        self.trans_b = t;
        self
    }

    pub fn accumulate(mut self, acc: bool) -> Gemm {
        self.accumulate = acc;
        self
    }

    /// Row and column strides of `A` as an `[m, k]` matrix.
    fn a_strides(&self) -> (usize, usize) {
        if self.trans_a {
            (1, self.m)
        } else {
            (self.k, 1)
        }
    }

    /// Row and column strides of `B` as a `[k, n]` matrix.
    fn b_strides(&self) -> (usize, usize) {
        if self.trans_b {
            (1, self.k)
        } else {
            (self.n, 1)
        }
    }

    fn check(&self, a: &[f32], b: &[f32], c: &[f32]) {
        assert!(
            a.len() >= self.m * self.k && b.len() >= self.k * self.n && c.len() >= self.m * self.n,
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

/// Sets OpenBLAS's own thread count (it keeps a pool separate from rayon's).
pub fn set_blas_threads(n: usize) {
    // SAFETY: a plain setter of the library's global configuration.
    unsafe { ffi::openblas_set_num_threads(n.max(1) as i32) }
}

/// `C (+)= op(A) · op(B)`, the fast path.
pub fn sgemm(g: Gemm, a: &[f32], b: &[f32], c: &mut [f32]) {
    g.check(a, b, c);
    if g.m == 0 || g.n == 0 {
        return;
    }
    if g.k == 0 {
        if !g.accumulate {
            c[..g.m * g.n].fill(0.0);
        }
        return;
    }
    let inside_worker = rayon::current_thread_index().is_some();
    if !inside_worker && g.m * g.n * g.k >= BLAS_MIN_FLOPS {
        sgemm_blas(g, a, b, c)
    } else {
        sgemm_rust(g, a, b, c)
    }
}

fn sgemm_blas(g: Gemm, a: &[f32], b: &[f32], c: &mut [f32]) {
    let lda = if g.trans_a { g.m } else { g.k };
    let ldb = if g.trans_b { g.k } else { g.n };
    let flag = |t: bool| if t { ffi::TRANS } else { ffi::NO_TRANS };
    // SAFETY: `check` verified the buffer sizes for these dimensions and leading dimensions.
    unsafe {
        ffi::cblas_sgemm(
            ffi::ROW_MAJOR,
            flag(g.trans_a),
            flag(g.trans_b),
            g.m as i32,
            g.n as i32,
            g.k as i32,
            1.0,
            a.as_ptr(),
            lda as i32,
            b.as_ptr(),
            ldb as i32,
            if g.accumulate { 1.0 } else { 0.0 },
            c.as_mut_ptr(),
            g.n as i32,
        )
    }
}

fn sgemm_rust(g: Gemm, a: &[f32], b: &[f32], c: &mut [f32]) {
    let (rsa, csa) = g.a_strides();
    let (rsb, csb) = g.b_strides();
    // SAFETY: `check` verified that every index the strides reach is inside the slices.
    unsafe {
        gemm::gemm(
            g.m,
            g.n,
            g.k,
            c.as_mut_ptr(),
            1,
            g.n as isize,
            g.accumulate,
            a.as_ptr(),
            csa as isize,
            rsa as isize,
            b.as_ptr(),
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

/// The plain triple loop `sgemm` is tested against.
pub fn sgemm_reference(g: Gemm, a: &[f32], b: &[f32], c: &mut [f32]) {
    g.check(a, b, c);
    let (rsa, csa) = g.a_strides();
    let (rsb, csb) = g.b_strides();
    for i in 0..g.m {
        for j in 0..g.n {
            let mut acc = 0.0f64;
            for p in 0..g.k {
                acc += a[i * rsa + p * csa] as f64 * b[p * rsb + j * csb] as f64;
            }
            let out = &mut c[i * g.n + j];
            *out = if g.accumulate {
                *out + acc as f32
            } else {
                acc as f32
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 1000) as f32
                    / 500.0
                    - 1.0
            })
            .collect()
    }

    #[test]
    fn matches_reference_on_awkward_shapes_and_transposes() {
        for &(m, n, k) in &[
            (1, 1, 1),
            (7, 13, 5),
            (33, 17, 65),
            (64, 3, 129),
            (130, 70, 9),
        ] {
            for ta in [false, true] {
                for tb in [false, true] {
                    for acc in [false, true] {
                        let g = Gemm::new(m, n, k).trans_a(ta).trans_b(tb).accumulate(acc);
                        let (a, b) = (values(m * k, 1), values(k * n, 2));
                        let mut c1 = values(m * n, 3);
                        let mut c2 = c1.clone();
                        sgemm(g, &a, &b, &mut c1);
                        sgemm_reference(g, &a, &b, &mut c2);
                        let err = c1
                            .iter()
                            .zip(&c2)
                            .map(|(x, y)| (x - y).abs())
                            .fold(0.0, f32::max);
                        assert!(err < 1e-4 * k as f32, "{g:?}: max error {err}");
                    }
                }
            }
        }
    }
}

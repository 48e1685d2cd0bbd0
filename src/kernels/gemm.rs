//! Single-precision matrix product, the kernel most of training time goes through.
//!
//! `sgemm` computes `C = op(A) · op(B)` (or `C += ...`) for row-major matrices, where
//! `op(X)` is `X` or its transpose: a transposed operand is read through its strides, never
//! copied. It spreads the work over the thread pool when called from outside it and runs on
//! the calling thread when called from inside a parallel region (a convolution that is
//! already parallel over the batch), so threads are never oversubscribed.

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
    let (rsa, csa) = g.a_strides();
    let (rsb, csb) = g.b_strides();
    let beta = if g.accumulate { 1.0 } else { 0.0 };
    // SAFETY: `check` verified that every index the strides reach is inside the slices.
    unsafe {
        matrixmultiply::sgemm(
            g.m,
            g.k,
            g.n,
            1.0,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            beta,
            c.as_mut_ptr(),
            g.n as isize,
            1,
        );
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

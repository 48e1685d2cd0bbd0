//! Kernel functions of the SVM and the fast ways to evaluate them: single values from a
//! dot product and the two squared norms (`||a - b||^2 = ||a||^2 + ||b||^2 - 2 a·b`), and
//! blocks of a kernel matrix through the GEMM.

use crate::kernels::gemm::{sgemm, Gemm};
use crate::kernels::vector::dot_fma as dot;
pub use crate::kernels::vector::dots_fma_with_rows as dots_with_rows;
use anyhow::{bail, Result};
use std::str::FromStr;

/// The shape of the kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KernelKind {
    /// `exp(-gamma ||a - b||^2)`.
    Rbf,
    /// `(gamma a·b + coef0)^degree`.
    Poly {
        /// The exponent.
        degree: u32,
        /// The constant added before the power.
        coef0: f32,
    },
    /// `a·b` (gamma unused).
    Linear,
}

impl KernelKind {
    /// The name in checkpoints and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            KernelKind::Rbf => "rbf",
            KernelKind::Poly { .. } => "poly",
            KernelKind::Linear => "linear",
        }
    }
}

/// How gamma is chosen, as scikit-learn's `SVC(gamma=...)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gamma {
    /// `1 / (d * var(X))`, the variance over every value of the training matrix.
    Scale,
    /// `1 / d`.
    Auto,
    /// A given value.
    Value(f32),
}

/// The highest degree of the polynomial kernel: beyond it `(gamma x.y + coef0)^degree`
/// overflows f32 for pixel features, and the fit runs on for nothing.
pub const MAX_DEGREE: u32 = 10;

impl FromStr for Gamma {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "scale" => Gamma::Scale,
            "auto" => Gamma::Auto,
            _ => match s.parse::<f32>() {
                Ok(v) if v.is_finite() && v > 0.0 => Gamma::Value(v),
                _ => bail!("gamma {s:?}: expected scale, auto or a finite number above 0"),
            },
        })
    }
}

impl Gamma {
    /// The value of gamma for training data `x: [n, d]`.
    pub fn resolve(self, x: &[f32], d: usize) -> f32 {
        match self {
            Gamma::Value(v) => v,
            Gamma::Auto => 1.0 / d as f32,
            Gamma::Scale => {
                let n = x.len().max(1) as f64;
                let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
                let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
                if var > 0.0 {
                    (1.0 / (d as f64 * var)) as f32
                } else {
                    1.0
                }
            }
        }
    }
}

/// A kernel with its gamma resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kernel {
    /// The shape.
    pub kind: KernelKind,
    /// The scale of the inputs (`Rbf`, `Poly`).
    pub gamma: f32,
}

impl Kernel {
    /// The kernel value from `a·b` and the squared norms of `a` and `b`.
    #[inline]
    pub fn from_dot(&self, dot: f32, sq_a: f32, sq_b: f32) -> f32 {
        match self.kind {
            KernelKind::Rbf => (-self.gamma * (sq_a + sq_b - 2.0 * dot).max(0.0)).exp(),
            KernelKind::Poly { degree, coef0 } => (self.gamma * dot + coef0).powi(degree as i32),
            KernelKind::Linear => dot,
        }
    }

    /// `K(a, b)` computed directly (the reference the fast paths are tested against).
    pub fn eval_reference(&self, a: &[f32], b: &[f32]) -> f32 {
        match self.kind {
            KernelKind::Rbf => {
                let d2: f32 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
                (-self.gamma * d2).exp()
            }
            KernelKind::Poly { degree, coef0 } => {
                let p: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
                (self.gamma * p + coef0).powi(degree as i32)
            }
            KernelKind::Linear => a.iter().zip(b).map(|(x, y)| x * y).sum(),
        }
    }

    /// The block `out[i, j] = K(a_i, b_j)` for `a: [na, d]`, `b: [nb, d]`, with the squared
    /// norms `sq_a: [na]`, `sq_b: [nb]`: one GEMM `a · b^T`, then the kernel per entry.
    #[allow(clippy::too_many_arguments)]
    pub fn block(
        &self,
        a: &[f32],
        sq_a: &[f32],
        b: &[f32],
        sq_b: &[f32],
        d: usize,
        out: &mut [f32],
    ) {
        let (na, nb) = (sq_a.len(), sq_b.len());
        assert!(
            a.len() == na * d && b.len() == nb * d && out.len() == na * nb,
            "Kernel::block: a of {} values ({na} rows), b of {} ({nb} rows), d={d}, out of {}",
            a.len(),
            b.len(),
            out.len()
        );
        sgemm(Gemm::new(na, nb, d).trans_b(true), a, b, out); // [na, nb]
        for (row, &sa) in out.chunks_exact_mut(nb.max(1)).zip(sq_a) {
            for (v, &sb) in row.iter_mut().zip(sq_b) {
                *v = self.from_dot(*v, sa, sb);
            }
        }
    }
}

/// The squared norm of each row of `x: [n, d]`.
pub fn squared_norms(x: &[f32], d: usize) -> Vec<f32> {
    x.chunks_exact(d).map(|r| dot(r, r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kernels::test_values::values;

    #[test]
    fn block_matches_reference_for_each_kernel() {
        let d = 13;
        let (a, b) = (values(5 * d, 3), values(7 * d, 9));
        let (sa, sb) = (squared_norms(&a, d), squared_norms(&b, d));
        for kind in [
            KernelKind::Rbf,
            KernelKind::Poly {
                degree: 3,
                coef0: 1.0,
            },
            KernelKind::Linear,
        ] {
            let k = Kernel { kind, gamma: 0.1 };
            let mut out = vec![0.0; 35];
            k.block(&a, &sa, &b, &sb, d, &mut out);
            for i in 0..5 {
                for j in 0..7 {
                    let r = k.eval_reference(&a[i * d..(i + 1) * d], &b[j * d..(j + 1) * d]);
                    let f = out[i * 7 + j];
                    assert!(
                        (f - r).abs() < 1e-4 * (1.0 + r.abs()),
                        "{kind:?} {i},{j}: {f} vs {r}"
                    );
                    let one = k.from_dot(
                        dot(&a[i * d..(i + 1) * d], &b[j * d..(j + 1) * d]),
                        sa[i],
                        sb[j],
                    );
                    assert!((one - r).abs() < 1e-4 * (1.0 + r.abs()));
                }
            }
        }
    }

    #[test]
    fn gamma_scale_is_one_over_d_var() {
        // Values 0 and 2 alternating: mean 1, variance 1.
        let x: Vec<f32> = (0..8).map(|i| (i % 2) as f32 * 2.0).collect();
        assert!((Gamma::Scale.resolve(&x, 4) - 0.25).abs() < 1e-6);
        assert_eq!(Gamma::Auto.resolve(&x, 4), 0.25);
        assert_eq!("0.5".parse::<Gamma>().unwrap(), Gamma::Value(0.5));
        assert!("-1".parse::<Gamma>().is_err());
    }
}

//! The kernel SVM for several classes: one binary C-SVM per pair of classes (one-vs-one,
//! as scikit-learn's `SVC` and LIBSVM), solved by [`smo::solve`](super::smo::solve) in
//! parallel over the pairs, and a vote of the pairs at prediction.
//!
//! The fitted model keeps LIBSVM's layout: the support vectors grouped by class,
//! `n_support` per class, and `dual_coef: [classes - 1, n_sv]` where the coefficients
//! `alpha_i y_i` of the pair `(a, b)`, `a < b`, are in row `b - 1` for the vectors of class
//! `a` and row `a` for those of class `b`; the pair's decision is
//! `sum coef K(sv, x) + intercept`, positive for class `a`.

use super::kernel::{squared_norms, Gamma, Kernel, KernelKind};
use super::smo::{self, SmoParams};
use super::{check_fit, check_predict, entry, meta, tensor_values, Classifier, FitProgress};
use super::{Progress, METHOD_KEY};
use crate::checkpoint::Checkpoint;
use crate::runtime::threads;
use anyhow::{bail, Result};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The method name in checkpoints.
pub const METHOD: &str = "svm";

/// Hyper-parameters of the kernel SVM.
#[derive(Debug, Clone)]
pub struct SvcParams {
    /// The box constraint C.
    pub c: f64,
    /// The kernel shape.
    pub kernel: KernelKind,
    /// How gamma is chosen.
    pub gamma: Gamma,
    /// Stopping tolerance of the SMO solver (LIBSVM's `eps`).
    pub tol: f64,
    /// The kernel cache of one pair's solver, in MB; pairs solved at once each hold one,
    /// so the fit holds at most `threads * cache_mb`.
    pub cache_mb: usize,
    /// Whether the solver shrinks its active set.
    pub shrinking: bool,
    /// Compute a pair's whole kernel matrix up front (GEMM) when it fits in `cache_mb`.
    pub precompute: bool,
}

impl Default for SvcParams {
    fn default() -> Self {
        SvcParams {
            c: 1.0,
            kernel: KernelKind::Rbf,
            gamma: Gamma::Scale,
            tol: 1e-3,
            cache_mb: 600,
            shrinking: true,
            precompute: true,
        }
    }
}

/// A fitted one-vs-one kernel SVM.
#[derive(Debug, Clone)]
pub struct Svc {
    /// The kernel, gamma resolved.
    pub kernel: Kernel,
    /// The number of classes.
    pub classes: usize,
    /// The number of features.
    pub dim: usize,
    /// The support vectors grouped by class, `[n_sv, dim]`.
    pub support_vectors: Vec<f32>,
    /// Their rows in the training set, `[n_sv]`.
    pub support: Vec<usize>,
    /// Support vectors per class, `[classes]`.
    pub n_support: Vec<usize>,
    /// `[classes - 1, n_sv]`, LIBSVM's layout (see the module documentation).
    pub dual_coef: Vec<f32>,
    /// One intercept (`-rho`) per pair, `[classes * (classes - 1) / 2]`.
    pub intercept: Vec<f32>,
    /// Squared norms of the support vectors, `[n_sv]`.
    sv_sq: Vec<f32>,
    /// C, tolerance and the other settings it was fitted with.
    pub params: SvcParams,
}

/// The pairs `(a, b)`, `a < b`, in LIBSVM's order.
fn pairs(k: usize) -> Vec<(usize, usize)> {
    (0..k)
        .flat_map(|a| (a + 1..k).map(move |b| (a, b)))
        .collect()
}

impl Svc {
    /// Fits on `x: [n, d]` with labels `y: [n]`; reports progress once per class pair.
    pub fn fit(
        x: &[f32],
        y: &[usize],
        n: usize,
        d: usize,
        params: &SvcParams,
        progress: Progress,
    ) -> Svc {
        let k = check_fit("Svc::fit", x, y, n, d);
        let kernel = Kernel {
            kind: params.kernel,
            gamma: params.gamma.resolve(x, d),
        };
        let sq = squared_norms(x, d);
        let by_class: Vec<Vec<usize>> = (0..k)
            .map(|c| (0..n).filter(|&i| y[i] == c).collect())
            .collect();
        let cache_floats = params.cache_mb * (1 << 20) / 4;
        let all_pairs = pairs(k);
        let done = AtomicUsize::new(0);
        // Per pair: (coefficient alpha_i y_i, training row) of each nonzero alpha, and rho.
        // Each pair's solve is one piece of the job: its products stay on its thread.
        let solved: Vec<(Vec<(f32, usize)>, f64)> = threads::map_pieces(all_pairs.len(), |p| {
            let (a, b) = all_pairs[p];
            let index: Vec<usize> = by_class[a].iter().chain(&by_class[b]).copied().collect();
            let labels: Vec<f32> = index
                .iter()
                .map(|&i| if y[i] == a { 1.0 } else { -1.0 })
                .collect();
            let result = if by_class[a].is_empty() || by_class[b].is_empty() {
                // A class absent from the data never wins its pairs.
                let rho = if by_class[a].is_empty() { 1.0 } else { -1.0 };
                (Vec::new(), rho)
            } else {
                let norms: Vec<f32> = index.iter().map(|&i| sq[i]).collect();
                let sp = SmoParams {
                    c: params.c,
                    tol: params.tol,
                    shrinking: params.shrinking,
                    cache_floats,
                    max_iter: 0,
                    precompute: params.precompute,
                };
                let sol = smo::solve(x, d, &index, &labels, &norms, kernel, sp);
                let coefs = sol
                    .alpha
                    .iter()
                    .zip(&labels)
                    .zip(&index)
                    .filter(|((&al, _), _)| al > 0.0)
                    .map(|((&al, &yl), &i)| ((al * yl as f64) as f32, i))
                    .collect();
                (coefs, sol.rho)
            };
            let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress(FitProgress {
                done: finished,
                total: all_pairs.len(),
                unit: "pair",
            });
            result
        });
        // The support vectors: every row with a nonzero coefficient in some pair, by class.
        let mut is_sv = vec![false; n];
        for (coefs, _) in &solved {
            for &(_, i) in coefs {
                is_sv[i] = true;
            }
        }
        let mut sv_pos = vec![usize::MAX; n];
        let mut support = Vec::new();
        let mut n_support = vec![0; k];
        for (c, rows) in by_class.iter().enumerate() {
            for &i in rows.iter().filter(|&&i| is_sv[i]) {
                sv_pos[i] = support.len();
                support.push(i);
                n_support[c] += 1;
            }
        }
        let n_sv = support.len();
        let mut dual_coef = vec![0.0f32; (k - 1) * n_sv];
        let mut intercept = Vec::with_capacity(all_pairs.len());
        for (&(a, b), (coefs, rho)) in all_pairs.iter().zip(&solved) {
            for &(coef, i) in coefs {
                let row = if y[i] == a { b - 1 } else { a };
                dual_coef[row * n_sv + sv_pos[i]] = coef;
            }
            intercept.push(-*rho as f32);
        }
        let support_vectors: Vec<f32> = support
            .iter()
            .flat_map(|&i| x[i * d..(i + 1) * d].iter().copied())
            .collect();
        let sv_sq = support.iter().map(|&i| sq[i]).collect();
        Svc {
            kernel,
            classes: k,
            dim: d,
            support_vectors,
            support,
            n_support,
            dual_coef,
            intercept,
            sv_sq,
            params: params.clone(),
        }
    }

    /// Reads a model written by [`Classifier::to_checkpoint`].
    pub fn from_checkpoint(ck: &Checkpoint) -> Result<Svc> {
        let (k, d): (usize, usize) = (meta(ck, "classic.classes")?, meta(ck, "classic.dim")?);
        let n_sv: usize = meta(ck, "svm.n_sv")?;
        let kind = match meta::<String>(ck, "svm.kernel")?.as_str() {
            "rbf" => KernelKind::Rbf,
            "poly" => KernelKind::Poly {
                degree: meta(ck, "svm.degree")?,
                coef0: meta(ck, "svm.coef0")?,
            },
            "linear" => KernelKind::Linear,
            other => bail!("unknown kernel {other:?} in the checkpoint"),
        };
        let gamma: f32 = meta(ck, "svm.gamma")?;
        let support_vectors = tensor_values(ck, "support_vectors", &[n_sv, d])?;
        let to_usize = |v: Vec<f32>| v.into_iter().map(|f| f as usize).collect::<Vec<_>>();
        let n_support = to_usize(tensor_values(ck, "n_support", &[k])?);
        if n_support.iter().sum::<usize>() != n_sv {
            bail!("n_support {n_support:?} does not add up to {n_sv} support vectors");
        }
        Ok(Svc {
            kernel: Kernel { kind, gamma },
            classes: k,
            dim: d,
            sv_sq: squared_norms(&support_vectors, d),
            support_vectors,
            support: to_usize(tensor_values(ck, "support", &[n_sv])?),
            n_support,
            dual_coef: tensor_values(ck, "dual_coef", &[k - 1, n_sv])?,
            intercept: tensor_values(ck, "intercept", &[k * (k - 1) / 2])?,
            params: SvcParams {
                c: meta(ck, "svm.C")?,
                kernel: kind,
                gamma: Gamma::Value(gamma),
                tol: meta(ck, "svm.tol")?,
                cache_mb: meta(ck, "svm.cache_mb")?,
                shrinking: meta(ck, "svm.shrinking")?,
                precompute: true,
            },
        })
    }

    /// The number of support vectors.
    pub fn n_sv(&self) -> usize {
        self.support.len()
    }

    /// Pair decisions `[rows, pairs]` for a block of rows, from its kernel block.
    fn decide_block(&self, kblock: &[f32], rows: usize, out: &mut [f32]) {
        let (k, n_sv) = (self.classes, self.n_sv());
        let start: Vec<usize> = (0..k)
            .scan(0, |s, c| {
                let v = *s;
                *s += self.n_support[c];
                Some(v)
            })
            .collect();
        let np = k * (k - 1) / 2;
        for r in 0..rows {
            let kr = &kblock[r * n_sv..(r + 1) * n_sv];
            for (p, &(a, b)) in pairs(k).iter().enumerate() {
                let (sa, na) = (start[a], self.n_support[a]);
                let (sb, nb) = (start[b], self.n_support[b]);
                let ca = &self.dual_coef[(b - 1) * n_sv..b * n_sv];
                let cb = &self.dual_coef[a * n_sv..(a + 1) * n_sv];
                let s = crate::kernels::vector::dot_fma(&ca[sa..sa + na], &kr[sa..sa + na])
                    + crate::kernels::vector::dot_fma(&cb[sb..sb + nb], &kr[sb..sb + nb]);
                out[r * np + p] = s + self.intercept[p];
            }
        }
    }
}

/// Test rows per kernel block at prediction.
const PREDICT_BLOCK: usize = 256;

impl Classifier for Svc {
    fn method(&self) -> &'static str {
        METHOD
    }
    fn classes(&self) -> usize {
        self.classes
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn decision_function(&self, x: &[f32], n: usize) -> Vec<f32> {
        let d = self.dim;
        check_predict("Svc::decision_function", x, n, d);
        let np = self.classes * (self.classes - 1) / 2;
        let mut out = vec![0.0f32; n * np]; // [n, pairs]
                                            // Each block of rows is one piece of the job: its kernel products stay on its thread.
        threads::for_each_piece_mut(&mut out, PREDICT_BLOCK * np.max(1), |bi, o| {
            let r0 = bi * PREDICT_BLOCK;
            let rows = o.len() / np.max(1);
            let xb = &x[r0 * d..(r0 + rows) * d];
            let sq = squared_norms(xb, d);
            let mut kb = vec![0.0f32; rows * self.n_sv()]; // [rows, n_sv]
            self.kernel
                .block(xb, &sq, &self.support_vectors, &self.sv_sq, d, &mut kb);
            self.decide_block(&kb, rows, o);
        });
        out
    }
    fn predict(&self, x: &[f32], n: usize) -> Vec<usize> {
        let k = self.classes;
        let dec = self.decision_function(x, n);
        let all = pairs(k);
        dec.chunks_exact(all.len().max(1))
            .map(|row| {
                let mut votes = vec![0u32; k];
                for (&v, &(a, b)) in row.iter().zip(&all) {
                    votes[if v > 0.0 { a } else { b }] += 1;
                }
                // The first class with the most votes, as LIBSVM.
                let best = *votes.iter().max().unwrap();
                votes.iter().position(|&v| v == best).unwrap()
            })
            .collect()
    }
    fn to_checkpoint(&self) -> Checkpoint {
        let (k, d, n_sv) = (self.classes, self.dim, self.n_sv());
        let as_f32 = |v: &[usize]| v.iter().map(|&i| i as f32).collect::<Vec<_>>();
        let mut ck = Checkpoint::new(vec![
            entry("support_vectors", self.support_vectors.clone(), &[n_sv, d]),
            entry("support", as_f32(&self.support), &[n_sv]),
            entry("n_support", as_f32(&self.n_support), &[k]),
            entry("dual_coef", self.dual_coef.clone(), &[k - 1, n_sv]),
            entry("intercept", self.intercept.clone(), &[k * (k - 1) / 2]),
        ]);
        let (degree, coef0) = match self.kernel.kind {
            KernelKind::Poly { degree, coef0 } => (degree, coef0),
            _ => (3, 0.0),
        };
        let p = &self.params;
        for (key, v) in [
            (METHOD_KEY, METHOD.to_string()),
            ("classic.classes", k.to_string()),
            ("classic.dim", d.to_string()),
            ("svm.n_sv", n_sv.to_string()),
            ("svm.kernel", self.kernel.kind.name().to_string()),
            ("svm.gamma", self.kernel.gamma.to_string()),
            ("svm.degree", degree.to_string()),
            ("svm.coef0", coef0.to_string()),
            ("svm.C", p.c.to_string()),
            ("svm.tol", p.tol.to_string()),
            ("svm.cache_mb", p.cache_mb.to_string()),
            ("svm.shrinking", p.shrinking.to_string()),
        ] {
            ck.metadata.insert(key.to_string(), v);
        }
        ck
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classic::{accuracy, from_checkpoint, no_progress, testdata};

    #[test]
    fn linear_kernel_finds_the_analytic_max_margin() {
        // +1: (2,0), (3,1), (2.5,-1); -1: their mirror images. Max margin: w = (0.5, 0), b = 0.
        let x = [
            2.0, 0.0, -2.0, 0.0, 3.0, 1.0, -3.0, -1.0, 2.5, -1.0, -2.5, 1.0,
        ];
        let y = [1, 0, 1, 0, 1, 0];
        let params = SvcParams {
            c: 1e4,
            kernel: KernelKind::Linear,
            tol: 1e-6,
            ..Default::default()
        };
        let m = Svc::fit(&x, &y, 6, 2, &params, &no_progress);
        // Pair (0, 1): positive for class 0, so w points to class 0: w = -(0.5, 0).
        let mut w = [0.0f32; 2];
        for s in 0..m.n_sv() {
            for (f, wf) in w.iter_mut().enumerate() {
                *wf += m.dual_coef[s] * m.support_vectors[s * 2 + f];
            }
        }
        assert!((w[0] + 0.5).abs() < 1e-4 && w[1].abs() < 1e-4, "w = {w:?}");
        assert!(m.intercept[0].abs() < 1e-4, "b = {}", m.intercept[0]);
        // Only the two closest points are support vectors, each with |alpha| = ||w||^2/2.
        assert_eq!(m.n_sv(), 2);
        assert!(m.dual_coef.iter().all(|c| (c.abs() - 0.125).abs() < 1e-4));
    }

    #[test]
    fn rbf_separates_xor() {
        let (x, y) = testdata::xor(200, 8);
        let params = SvcParams {
            c: 10.0,
            gamma: Gamma::Value(2.0),
            ..Default::default()
        };
        let m = Svc::fit(&x, &y, 200, 2, &params, &no_progress);
        assert_eq!(accuracy(&m.predict(&x, 200), &y), 1.0);
        let (xt, yt) = testdata::xor(200, 9);
        let acc = accuracy(&m.predict(&xt, 200), &yt);
        assert!(acc >= 0.97, "held-out XOR accuracy {acc}");
    }

    #[test]
    fn soft_margin_dual_satisfies_kkt() {
        let (x, y) = testdata::blobs(&[[0.0, 0.0], [1.5, 1.0]], 80, 1.0, 10);
        let n = 160;
        let labels: Vec<f32> = y.iter().map(|&l| if l == 0 { 1.0 } else { -1.0 }).collect();
        let kernel = Kernel {
            kind: KernelKind::Rbf,
            gamma: 0.5,
        };
        let sq = squared_norms(&x, 2);
        let index: Vec<usize> = (0..n).collect();
        let c = 1.0;
        let tol = 1e-3;
        let mut reference = None;
        // Shrinking on and off, a roomy cache and one of two rows (evictions, dropped rows
        // on swaps), rows on demand and all up front: the same solution.
        for (shrinking, cache_floats, precompute) in [
            (true, 1 << 20, false),
            (false, 1 << 20, false),
            (true, 2 * n, false),
            (true, 1 << 20, true),
        ] {
            let p = SmoParams {
                c,
                tol,
                shrinking,
                cache_floats,
                max_iter: 0,
                precompute,
            };
            let sol = smo::solve(&x, 2, &index, &labels, &sq, kernel, p);
            assert!(sol.alpha.iter().all(|&a| (0.0..=c).contains(&a)));
            assert!(sol.alpha.contains(&c), "non-separable: some alpha at C");
            let sum: f64 = sol
                .alpha
                .iter()
                .zip(&labels)
                .map(|(a, &l)| a * l as f64)
                .sum();
            assert!(sum.abs() < 1e-9, "sum alpha_i y_i = {sum}");
            for i in 0..n {
                let f: f64 = (0..n)
                    .map(|j| {
                        let k = kernel.eval_reference(&x[2 * i..2 * i + 2], &x[2 * j..2 * j + 2]);
                        sol.alpha[j] * labels[j] as f64 * k as f64
                    })
                    .sum::<f64>()
                    - sol.rho;
                let m = labels[i] as f64 * f;
                let a = sol.alpha[i];
                let slack = 2.0 * tol;
                if a == 0.0 {
                    assert!(m >= 1.0 - slack, "alpha 0, margin {m}");
                } else if a == c {
                    assert!(m <= 1.0 + slack, "alpha C, margin {m}");
                } else {
                    assert!((m - 1.0).abs() < slack, "free alpha {a}, margin {m}");
                }
            }
            match &reference {
                None => reference = Some(sol),
                Some(r) => {
                    assert!((sol.objective - r.objective).abs() < 1e-3 * r.objective.abs());
                    assert!(
                        (sol.rho - r.rho).abs() < 1e-2,
                        "rho {} vs {}",
                        sol.rho,
                        r.rho
                    );
                }
            }
        }
    }

    #[test]
    fn three_blobs_one_vs_one_and_round_trip() {
        let (x, y) = testdata::blobs(&[[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]], 40, 0.8, 11);
        for kernel in [
            KernelKind::Rbf,
            KernelKind::Poly {
                degree: 3,
                coef0: 1.0,
            },
        ] {
            let params = SvcParams {
                kernel,
                ..Default::default()
            };
            let m = Svc::fit(&x, &y, 120, 2, &params, &no_progress);
            assert_eq!(m.n_support.len(), 3);
            assert!(accuracy(&m.predict(&x, 120), &y) >= 0.98, "{kernel:?}");
            let back = from_checkpoint(&m.to_checkpoint()).unwrap();
            assert_eq!(back.method(), "svm");
            let (a, b) = (
                back.decision_function(&x, 120),
                m.decision_function(&x, 120),
            );
            assert_eq!(a.len(), 120 * 3);
            assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-5));
        }
    }
}

//! The linear SVM, one-vs-rest, trained as liblinear's `-s 3` (hinge) and `-s 1` (squared
//! hinge): dual coordinate descent (Hsieh et al. 2008) with shrinking, on
//!
//! ```text
//! min_w  1/2 ||w||^2 + C sum_i loss(y_i w·x_i)
//! ```
//!
//! **Bias**, as liblinear with `-B 1` (and scikit-learn's `LinearSVC`,
//! `intercept_scaling=1`): every sample is augmented with a constant feature `B`, so the
//! bias is `b = B w_{d}` and is regularized with the weights. A larger `B` weakens that
//! regularization.

use super::linear::{read_linear, LinearView};
use super::{check_fit, meta, Classifier, FitProgress, Progress};
use crate::checkpoint::Checkpoint;
use crate::kernels::vector::{axpy, dot};
use anyhow::{bail, Result};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rayon::prelude::*;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The method name in checkpoints.
pub const METHOD: &str = "linear-svm";

/// The loss of the linear SVM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// `max(0, 1 - y w·x)` (liblinear `-s 3`).
    Hinge,
    /// `max(0, 1 - y w·x)^2` (liblinear `-s 1`, scikit-learn's `LinearSVC` default).
    SquaredHinge,
}

impl FromStr for Loss {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "hinge" => Loss::Hinge,
            "squared_hinge" => Loss::SquaredHinge,
            _ => bail!("unknown loss {s:?}: expected hinge or squared-hinge"),
        })
    }
}

impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Loss::Hinge => "hinge",
            Loss::SquaredHinge => "squared-hinge",
        })
    }
}

/// Hyper-parameters of the linear SVM.
#[derive(Debug, Clone)]
pub struct LinearSvmParams {
    /// The cost of a margin violation.
    pub c: f64,
    /// The loss.
    pub loss: Loss,
    /// Stop when the spread of the projected gradient is below this (liblinear's `-e`, 0.1).
    pub tol: f64,
    /// The largest number of passes over the data per class.
    pub max_iter: usize,
    /// The constant feature appended to every sample (`B`; 0 for no bias).
    pub bias: f32,
    /// Whether to shrink the active set.
    pub shrinking: bool,
    /// Seed of the order of the coordinates.
    pub seed: u64,
}

impl Default for LinearSvmParams {
    fn default() -> Self {
        LinearSvmParams {
            c: 1.0,
            loss: Loss::SquaredHinge,
            tol: 0.1,
            max_iter: 1000,
            bias: 1.0,
            shrinking: true,
            seed: 0,
        }
    }
}

/// A fitted one-vs-rest linear SVM.
#[derive(Debug, Clone)]
pub struct LinearSvm {
    /// One weight vector per class, `[classes, dim]`.
    pub weight: Vec<f32>,
    /// One bias per class (`B w_d`), `[classes]`.
    pub bias: Vec<f32>,
    /// The number of classes.
    pub classes: usize,
    /// The number of features.
    pub dim: usize,
    /// Passes over the data each class's solver took.
    pub iterations: Vec<usize>,
    /// The hyper-parameters it was fitted with.
    pub params: LinearSvmParams,
}

/// A binary solution: weights `[d]`, the bias feature's weight, dual variables, passes.
#[derive(Debug, Clone)]
pub struct BinarySolution {
    /// The weights of the `d` features.
    pub w: Vec<f32>,
    /// The weight of the constant feature `B` (the bias is `B * w_bias`).
    pub w_bias: f64,
    /// The dual variables, one per sample.
    pub alpha: Vec<f64>,
    /// Passes over the data.
    pub iterations: usize,
}

/// Dual coordinate descent for one binary problem, labels `y_i` in {+1, -1}.
pub fn solve_binary(
    x: &[f32],
    y: &[f32],
    n: usize,
    d: usize,
    params: &LinearSvmParams,
    seed: u64,
) -> BinarySolution {
    let (diag, upper) = match params.loss {
        Loss::Hinge => (0.0, params.c),
        Loss::SquaredHinge => (0.5 / params.c, f64::INFINITY),
    };
    let bsq = (params.bias as f64).powi(2);
    let qd: Vec<f64> = (0..n)
        .map(|i| {
            let xi = &x[i * d..(i + 1) * d];
            diag + dot(xi, xi) as f64 + bsq
        })
        .collect();
    let mut w = vec![0.0f32; d];
    let mut wb = 0.0f64;
    let mut alpha = vec![0.0f64; n];
    let mut index: Vec<usize> = (0..n).collect();
    let mut active = n;
    let (mut pg_max_old, mut pg_min_old) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut iter = 0;
    while iter < params.max_iter {
        let (mut pg_max, mut pg_min) = (f64::NEG_INFINITY, f64::INFINITY);
        for s in 0..active {
            let j = rng.gen_range(s..active);
            index.swap(s, j);
        }
        let mut s = 0;
        while s < active {
            let i = index[s];
            let yi = y[i] as f64;
            let xi = &x[i * d..(i + 1) * d];
            let g = yi * (dot(&w, xi) as f64 + wb * params.bias as f64) - 1.0 + alpha[i] * diag;
            let mut pg = 0.0;
            if alpha[i] == 0.0 {
                if g > pg_max_old && params.shrinking {
                    active -= 1;
                    index.swap(s, active);
                    continue;
                } else if g < 0.0 {
                    pg = g;
                }
            } else if alpha[i] == upper {
                if g < pg_min_old && params.shrinking {
                    active -= 1;
                    index.swap(s, active);
                    continue;
                } else if g > 0.0 {
                    pg = g;
                }
            } else {
                pg = g;
            }
            pg_max = pg_max.max(pg);
            pg_min = pg_min.min(pg);
            if pg.abs() > 1e-12 {
                let old = alpha[i];
                alpha[i] = (alpha[i] - g / qd[i]).clamp(0.0, upper);
                let step = (alpha[i] - old) * yi;
                axpy(step as f32, xi, &mut w);
                wb += step * params.bias as f64;
            }
            s += 1;
        }
        iter += 1;
        if pg_max - pg_min <= params.tol {
            if active == n {
                break;
            }
            active = n;
            pg_max_old = f64::INFINITY;
            pg_min_old = f64::NEG_INFINITY;
            continue;
        }
        pg_max_old = if pg_max <= 0.0 { f64::INFINITY } else { pg_max };
        pg_min_old = if pg_min >= 0.0 {
            f64::NEG_INFINITY
        } else {
            pg_min
        };
    }
    BinarySolution {
        w,
        w_bias: wb,
        alpha,
        iterations: iter,
    }
}

impl LinearSvm {
    /// Fits one binary SVM per class (that class against the rest), in parallel over the
    /// classes; reports progress once per class.
    pub fn fit(
        x: &[f32],
        y: &[usize],
        n: usize,
        d: usize,
        params: &LinearSvmParams,
        progress: Progress,
    ) -> LinearSvm {
        let k = check_fit("LinearSvm::fit", x, y, n, d);
        let done = AtomicUsize::new(0);
        crate::runtime::threads::ensure_started(); // the command's pool, not rayon's default
        let solutions: Vec<BinarySolution> = (0..k)
            .into_par_iter()
            .map(|c| {
                let labels: Vec<f32> = y.iter().map(|&l| if l == c { 1.0 } else { -1.0 }).collect();
                let sol =
                    solve_binary(x, &labels, n, d, params, params.seed.wrapping_add(c as u64));
                progress(FitProgress {
                    done: done.fetch_add(1, Ordering::Relaxed) + 1,
                    total: k,
                    unit: "class",
                });
                sol
            })
            .collect();
        LinearSvm {
            weight: solutions.iter().flat_map(|s| s.w.iter().copied()).collect(),
            bias: solutions
                .iter()
                .map(|s| (s.w_bias * params.bias as f64) as f32)
                .collect(),
            classes: k,
            dim: d,
            iterations: solutions.iter().map(|s| s.iterations).collect(),
            params: params.clone(),
        }
    }

    /// Reads a model written by [`Classifier::to_checkpoint`].
    pub fn from_checkpoint(ck: &Checkpoint) -> Result<LinearSvm> {
        let (weight, bias, classes, dim) = read_linear(ck)?;
        Ok(LinearSvm {
            weight,
            bias,
            classes,
            dim,
            iterations: Vec::new(),
            params: LinearSvmParams {
                c: meta(ck, "linear_svm.C")?,
                loss: meta(ck, "linear_svm.loss")?,
                tol: meta(ck, "linear_svm.tol")?,
                max_iter: meta(ck, "linear_svm.max_iter")?,
                bias: meta(ck, "linear_svm.bias")?,
                shrinking: meta(ck, "linear_svm.shrinking")?,
                seed: meta(ck, "linear_svm.seed")?,
            },
        })
    }
}

impl LinearSvm {
    fn linear(&self) -> LinearView<'_> {
        LinearView {
            weight: &self.weight,
            bias: &self.bias,
            dim: self.dim,
        }
    }
}

impl Classifier for LinearSvm {
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
        self.linear().scores("LinearSvm::decision_function", x, n)
    }
    fn predict(&self, x: &[f32], n: usize) -> Vec<usize> {
        self.linear().predict("LinearSvm::predict", x, n)
    }
    fn to_checkpoint(&self) -> Checkpoint {
        let p = &self.params;
        self.linear().to_checkpoint(
            METHOD,
            &[
                ("linear_svm.C", p.c.to_string()),
                ("linear_svm.loss", p.loss.to_string()),
                ("linear_svm.tol", p.tol.to_string()),
                ("linear_svm.max_iter", p.max_iter.to_string()),
                ("linear_svm.bias", p.bias.to_string()),
                ("linear_svm.shrinking", p.shrinking.to_string()),
                ("linear_svm.seed", p.seed.to_string()),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classic::{accuracy, from_checkpoint, no_progress, testdata};

    /// Mirror-symmetric points whose max-margin separator is `w = (0.5, 0)`, `b = 0`: the
    /// closest pair (2, 0) / (-2, 0) forces `w_0 >= 0.5` and the others are outside.
    pub(crate) fn symmetric() -> (Vec<f32>, Vec<usize>) {
        let pos = [[2.0, 0.0], [3.0, 1.0], [2.5, -1.0]];
        let mut x = Vec::new();
        let mut y = Vec::new();
        for p in pos {
            x.extend(p);
            y.push(1);
            x.extend([-p[0], -p[1]]);
            y.push(0);
        }
        (x, y)
    }

    #[test]
    fn separable_points_are_all_right() {
        let (x, y) = testdata::separable(300, 4);
        for loss in [Loss::Hinge, Loss::SquaredHinge] {
            let params = LinearSvmParams {
                c: 100.0,
                loss,
                tol: 1e-3,
                ..Default::default()
            };
            let model = LinearSvm::fit(&x, &y, 300, 2, &params, &no_progress);
            assert_eq!(accuracy(&model.predict(&x, 300), &y), 1.0, "{loss}");
        }
    }

    #[test]
    fn max_margin_matches_the_analytic_solution() {
        let (x, y) = symmetric();
        let params = LinearSvmParams {
            c: 1e4,
            loss: Loss::Hinge,
            tol: 1e-5,
            max_iter: 100_000,
            ..Default::default()
        };
        let model = LinearSvm::fit(&x, &y, 6, 2, &params, &no_progress);
        let w1 = &model.weight[2..4];
        assert!(
            (w1[0] - 0.5).abs() < 1e-3 && w1[1].abs() < 1e-3,
            "w = {w1:?}"
        );
        assert!(model.bias[1].abs() < 1e-3, "b = {}", model.bias[1]);
        // One-vs-rest with two classes: the other classifier is the mirror image.
        assert!((model.weight[0] + 0.5).abs() < 1e-3);
    }

    #[test]
    fn dual_is_feasible_and_w_is_its_expansion() {
        // Overlapping blobs: not separable, so some alpha sit at C.
        let (x, y) = testdata::blobs(&[[0.0, 0.0], [1.5, 1.0]], 60, 1.0, 5);
        let labels: Vec<f32> = y.iter().map(|&l| if l == 1 { 1.0 } else { -1.0 }).collect();
        let params = LinearSvmParams {
            c: 0.5,
            loss: Loss::Hinge,
            tol: 1e-4,
            max_iter: 10_000,
            ..Default::default()
        };
        let sol = solve_binary(&x, &labels, 120, 2, &params, 0);
        assert!(sol.alpha.iter().all(|&a| (0.0..=0.5).contains(&a)));
        assert!(sol.alpha.contains(&0.5), "non-separable: some alpha at C");
        for f in 0..2 {
            let wf: f64 = (0..120)
                .map(|i| sol.alpha[i] * labels[i] as f64 * x[i * 2 + f] as f64)
                .sum();
            assert!(
                (wf - sol.w[f] as f64).abs() < 1e-4,
                "w[{f}] {} vs {wf}",
                sol.w[f]
            );
        }
        // KKT within the tolerance: margins of free, zero and bounded alphas.
        for i in 0..120 {
            let m = labels[i] as f64
                * (sol.w[0] as f64 * x[2 * i] as f64
                    + sol.w[1] as f64 * x[2 * i + 1] as f64
                    + sol.w_bias);
            let a = sol.alpha[i];
            if a == 0.0 {
                assert!(m >= 1.0 - 1e-3, "alpha 0, margin {m}");
            } else if a == 0.5 {
                assert!(m <= 1.0 + 1e-3, "alpha C, margin {m}");
            } else {
                assert!((m - 1.0).abs() < 1e-3, "free alpha, margin {m}");
            }
        }
    }

    #[test]
    fn xor_defeats_a_linear_model() {
        let (x, y) = testdata::xor(200, 6);
        let model = LinearSvm::fit(&x, &y, 200, 2, &LinearSvmParams::default(), &no_progress);
        let acc = accuracy(&model.predict(&x, 200), &y);
        assert!(acc < 0.8, "a line cannot separate XOR, yet accuracy {acc}");
    }

    #[test]
    fn three_blobs_and_round_trip() {
        let (x, y) = testdata::blobs(&[[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]], 50, 0.8, 7);
        let model = LinearSvm::fit(&x, &y, 150, 2, &LinearSvmParams::default(), &no_progress);
        assert!(accuracy(&model.predict(&x, 150), &y) >= 0.98);
        let back = from_checkpoint(&model.to_checkpoint()).unwrap();
        assert_eq!(back.method(), "linear-svm");
        assert_eq!(back.predict(&x, 150), model.predict(&x, 150));
    }
}

//! The multi-class averaged perceptron: one weight vector (and bias) per class; a sample
//! that the current weights misclassify moves its true class's weights towards it and the
//! predicted class's weights away. The model kept is the average of the weights over every
//! step of every epoch (Freund and Schapire's averaged perceptron), which generalizes far
//! better than the last iterate on data that is not separable.

use super::linear::{read_linear, LinearView};
use super::{check_fit, meta, Classifier, FitProgress, Progress};
use crate::checkpoint::Checkpoint;
use crate::kernels::vector::{axpy, dot};
use anyhow::{bail, Result};
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use std::str::FromStr;

/// The method name in checkpoints.
pub const METHOD: &str = "perceptron";

/// A weight penalty applied at every step, as scikit-learn's `Perceptron(penalty=...)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Penalty {
    /// No penalty.
    None,
    /// `w <- w (1 - eta alpha)` after each step.
    L2,
    /// `w <- sign(w) max(|w| - eta alpha, 0)` after each step (soft thresholding).
    L1,
}

impl FromStr for Penalty {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "none" => Penalty::None,
            "l2" => Penalty::L2,
            "l1" => Penalty::L1,
            _ => bail!("unknown penalty {s:?}: expected none, l1 or l2"),
        })
    }
}

impl std::fmt::Display for Penalty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Penalty::None => "none",
            Penalty::L2 => "l2",
            Penalty::L1 => "l1",
        })
    }
}

/// Hyper-parameters of the perceptron.
#[derive(Debug, Clone)]
pub struct PerceptronParams {
    /// Passes over the (reshuffled) training set.
    pub epochs: usize,
    /// Step size of an update (irrelevant without a penalty: the perceptron is scale-free).
    pub eta0: f32,
    /// The weight penalty.
    pub penalty: Penalty,
    /// Strength of the penalty.
    pub alpha: f32,
    /// Keep the average of the weights over all steps (else the last weights).
    pub average: bool,
    /// Seed of the shuffling.
    pub seed: u64,
}

impl Default for PerceptronParams {
    fn default() -> Self {
        PerceptronParams {
            epochs: 10,
            eta0: 1.0,
            penalty: Penalty::None,
            alpha: 1e-4,
            average: true,
            seed: 0,
        }
    }
}

/// A fitted perceptron.
#[derive(Debug, Clone)]
pub struct Perceptron {
    /// One weight vector per class, `[classes, dim]`.
    pub weight: Vec<f32>,
    /// One bias per class, `[classes]`.
    pub bias: Vec<f32>,
    /// The number of classes.
    pub classes: usize,
    /// The number of features.
    pub dim: usize,
    /// The hyper-parameters it was fitted with.
    pub params: PerceptronParams,
}

impl Perceptron {
    /// Fits on `x: [n, d]` with labels `y: [n]`; reports progress once per epoch.
    pub fn fit(
        x: &[f32],
        y: &[usize],
        n: usize,
        d: usize,
        params: &PerceptronParams,
        progress: Progress,
    ) -> Perceptron {
        let k = check_fit("Perceptron::fit", x, y, n, d);
        let mut w = vec![0.0f32; k * d]; // [k, d]
        let mut b = vec![0.0f32; k];
        // Averaging. Without a penalty the weights change only at mistakes, so the sum of
        // all iterates is kept lazily: `w_avg = w - u / t` where each update `delta` made
        // at step `t` adds `t * delta` to `u`. A penalty changes every weight at every
        // step, so the sum is then accumulated directly.
        let lazy = params.penalty == Penalty::None;
        // f64: `(T + 1) w - u` cancels most digits at the end.
        let mut u = vec![0.0f64; k * d];
        let mut ub = vec![0.0f64; k];
        let mut t: f64 = 1.0;
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = StdRng::seed_from_u64(params.seed);
        let mut scores = vec![0.0f32; k];
        let eta = params.eta0;
        for epoch in 0..params.epochs {
            order.shuffle(&mut rng);
            for &i in &order {
                let xi = &x[i * d..(i + 1) * d];
                for c in 0..k {
                    scores[c] = dot(&w[c * d..(c + 1) * d], xi) + b[c];
                }
                let pred = super::argmax(&scores);
                let yi = y[i];
                if pred != yi {
                    axpy(eta, xi, &mut w[yi * d..(yi + 1) * d]);
                    axpy(-eta, xi, &mut w[pred * d..(pred + 1) * d]);
                    b[yi] += eta;
                    b[pred] -= eta;
                    if lazy && params.average {
                        let s = eta as f64 * t;
                        axpy_f64(s, xi, &mut u[yi * d..(yi + 1) * d]);
                        axpy_f64(-s, xi, &mut u[pred * d..(pred + 1) * d]);
                        ub[yi] += s;
                        ub[pred] -= s;
                    }
                }
                apply_penalty(&mut w, params.penalty, eta * params.alpha);
                if !lazy && params.average {
                    axpy_f64(1.0, &w, &mut u);
                    axpy_f64(1.0, &b, &mut ub);
                }
                t += 1.0;
            }
            progress(FitProgress {
                done: epoch + 1,
                total: params.epochs,
                unit: "epoch",
            });
        }
        if params.average && t > 1.0 {
            let steps = t - 1.0;
            if lazy {
                // The sum of the iterates w_1..w_T is (T + 1) w_T - u, with T = t - 1.
                for (wv, uv) in w.iter_mut().zip(&u) {
                    *wv = ((t * *wv as f64 - uv) / steps) as f32;
                }
                for (bv, uv) in b.iter_mut().zip(&ub) {
                    *bv = ((t * *bv as f64 - uv) / steps) as f32;
                }
            } else {
                w = u.iter().map(|s| (s / steps) as f32).collect();
                b = ub.iter().map(|s| (s / steps) as f32).collect();
            }
        }
        Perceptron {
            weight: w,
            bias: b,
            classes: k,
            dim: d,
            params: params.clone(),
        }
    }

    /// Reads a perceptron written by [`Classifier::to_checkpoint`].
    pub fn from_checkpoint(ck: &Checkpoint) -> Result<Perceptron> {
        let (weight, bias, classes, dim) = read_linear(ck)?;
        Ok(Perceptron {
            weight,
            bias,
            classes,
            dim,
            params: PerceptronParams {
                epochs: meta(ck, "perceptron.epochs")?,
                eta0: meta(ck, "perceptron.eta0")?,
                penalty: meta(ck, "perceptron.penalty")?,
                alpha: meta(ck, "perceptron.alpha")?,
                average: meta(ck, "perceptron.average")?,
                seed: meta(ck, "perceptron.seed")?,
            },
        })
    }
}

/// `y += alpha * x` into an f64 accumulator.
fn axpy_f64(alpha: f64, x: &[f32], y: &mut [f64]) {
    for (yv, &xv) in y.iter_mut().zip(x) {
        *yv += alpha * xv as f64;
    }
}

/// Applies one step of the weight penalty with strength `s = eta * alpha`.
fn apply_penalty(w: &mut [f32], penalty: Penalty, s: f32) {
    match penalty {
        Penalty::None => {}
        Penalty::L2 => {
            let f = (1.0 - s).max(0.0);
            w.iter_mut().for_each(|v| *v *= f);
        }
        Penalty::L1 => w
            .iter_mut()
            .for_each(|v| *v = v.signum() * (v.abs() - s).max(0.0)),
    }
}

impl Perceptron {
    fn linear(&self) -> LinearView<'_> {
        LinearView {
            weight: &self.weight,
            bias: &self.bias,
            dim: self.dim,
        }
    }
}

impl Classifier for Perceptron {
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
        self.linear().scores("Perceptron::decision_function", x, n)
    }
    fn predict(&self, x: &[f32], n: usize) -> Vec<usize> {
        self.linear().predict("Perceptron::predict", x, n)
    }
    fn to_checkpoint(&self) -> Checkpoint {
        let p = &self.params;
        self.linear().to_checkpoint(
            METHOD,
            &[
                ("perceptron.epochs", p.epochs.to_string()),
                ("perceptron.eta0", p.eta0.to_string()),
                ("perceptron.penalty", p.penalty.to_string()),
                ("perceptron.alpha", p.alpha.to_string()),
                ("perceptron.average", p.average.to_string()),
                ("perceptron.seed", p.seed.to_string()),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classic::{accuracy, from_checkpoint, no_progress, testdata};

    #[test]
    fn separable_points_are_all_right() {
        let (x, y) = testdata::separable(200, 1);
        for average in [false, true] {
            let params = PerceptronParams {
                epochs: 50,
                average,
                ..Default::default()
            };
            let model = Perceptron::fit(&x, &y, 200, 2, &params, &no_progress);
            let acc = accuracy(&model.predict(&x, 200), &y);
            assert_eq!(acc, 1.0, "average={average}");
        }
    }

    #[test]
    fn three_blobs_with_penalties_and_round_trip() {
        let (x, y) = testdata::blobs(&[[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]], 50, 0.8, 2);
        for penalty in [Penalty::None, Penalty::L2, Penalty::L1] {
            let params = PerceptronParams {
                penalty,
                alpha: 1e-3,
                ..Default::default()
            };
            let model = Perceptron::fit(&x, &y, 150, 2, &params, &no_progress);
            assert_eq!(model.classes, 3);
            let acc = accuracy(&model.predict(&x, 150), &y);
            assert!(acc >= 0.98, "{penalty}: accuracy {acc}");
            let back = from_checkpoint(&model.to_checkpoint()).unwrap();
            assert_eq!(back.method(), "perceptron");
            assert_eq!(
                back.decision_function(&x, 150),
                model.decision_function(&x, 150)
            );
        }
    }

    #[test]
    fn lazy_average_matches_the_direct_sum() {
        // With a penalty of strength 0 the direct sum runs; it must equal the lazy one.
        let (x, y) = testdata::blobs(&[[0.0, 1.0], [1.0, -1.0], [-1.0, -1.0]], 30, 1.0, 3);
        let lazy = Perceptron::fit(&x, &y, 90, 2, &PerceptronParams::default(), &no_progress);
        let params = PerceptronParams {
            penalty: Penalty::L2,
            alpha: 0.0,
            ..Default::default()
        };
        let direct = Perceptron::fit(&x, &y, 90, 2, &params, &no_progress);
        for (a, b) in lazy.weight.iter().zip(&direct.weight) {
            assert!((a - b).abs() < 1e-3 * (1.0 + a.abs()), "{a} vs {b}");
        }
    }
}

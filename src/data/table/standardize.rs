//! Standardization of table features: `(x - mean) / std` per column, with the mean and the
//! population standard deviation (divided by `n`, as numpy's `std()` and scikit-learn's
//! `StandardScaler`) of the training rows.
//!
//! The statistics are computed and kept in f64 (the checkpoint stores them as text that
//! reads back to the same f64), so that a column with a large mean and a small spread (a
//! timestamp) standardizes to mean 0, and a row gives bit-identical f32 features at
//! training and at prediction time. A constant column (std 0) gets std 1: it standardizes to zeros
//! instead of dividing by zero, and a row at prediction time that differs from the
//! constant keeps its (unscaled) difference.

/// Per-column mean and standard deviation of the training features.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardization {
    /// One mean per feature column.
    pub mean: Vec<f64>,
    /// One standard deviation per feature column, each positive and finite.
    pub std: Vec<f64>,
}

impl Standardization {
    /// The statistics of `values`, `[N, F]` row-major with `F = features`, `N >= 1`.
    ///
    /// ```
    /// use neurite::data::table::Standardization;
    /// // [3, 2]: column 0 is 1, 2, 3; column 1 is constant.
    /// let s = Standardization::fit(&[1.0, 5.0, 2.0, 5.0, 3.0, 5.0], 2);
    /// assert_eq!(s.mean, [2.0, 5.0]);
    /// assert_eq!(s.std, [(2.0f64 / 3.0).sqrt(), 1.0]);
    /// ```
    pub fn fit(values: &[f64], features: usize) -> Standardization {
        assert!(
            features > 0 && !values.is_empty() && values.len().is_multiple_of(features),
            "Standardization::fit: {} values do not make rows of {features} features",
            values.len()
        );
        let n = (values.len() / features) as f64;
        let mut mean = vec![0.0f64; features];
        for row in values.chunks_exact(features) {
            for (m, &x) in mean.iter_mut().zip(row) {
                *m += x;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        // Two passes: the squares of deviations, not `E[x²] - E[x]²`, which cancels
        // catastrophically on columns with a large mean and a small spread.
        let mut var = vec![0.0f64; features];
        for row in values.chunks_exact(features) {
            for ((v, &x), &m) in var.iter_mut().zip(row).zip(&mean) {
                *v += (x - m) * (x - m);
            }
        }
        let std = var
            .iter()
            .map(|&v| {
                let s = (v / n).sqrt();
                // Positive and usable as a divisor in f32 features too.
                if s.is_finite() && s as f32 > f32::MIN_POSITIVE {
                    s
                } else {
                    1.0
                }
            })
            .collect();
        Standardization { mean, std }
    }

    /// The number of feature columns.
    pub fn features(&self) -> usize {
        self.mean.len()
    }

    /// `values` (`[N, F]` row-major) standardized, as f32 `[N, F]`.
    pub fn apply(&self, values: &[f64]) -> Vec<f32> {
        let f = self.features();
        assert!(
            f > 0 && values.len().is_multiple_of(f),
            "Standardization::apply: {} values do not make rows of {f} features",
            values.len()
        );
        let mut out = Vec::with_capacity(values.len());
        for row in values.chunks_exact(f) {
            for ((&x, &m), &s) in row.iter().zip(&self.mean).zip(&self.std) {
                out.push(((x - m) / s) as f32);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_hand_computed_population_statistics() {
        // Column 0: 2, 4, 4, 4, 5, 5, 7, 9: mean 5, population std 2 (the textbook case).
        let col0 = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let values: Vec<f64> = col0.iter().flat_map(|&x| [x, -x * 10.0]).collect();
        let s = Standardization::fit(&values, 2);
        assert_eq!(s.mean, [5.0, -50.0]);
        assert_eq!(s.std, [2.0, 20.0]);
        let z = s.apply(&values);
        assert_eq!(&z[..4], &[-1.5, 1.5, -0.5, 0.5]);
        assert_eq!(z[14], 2.0);
    }

    #[test]
    fn constant_column_gets_std_one_and_zeros() {
        let s = Standardization::fit(&[3.5, 3.5, 3.5], 1);
        assert_eq!((s.mean[0], s.std[0]), (3.5, 1.0));
        assert_eq!(s.apply(&[3.5, 4.5]), [0.0, 1.0]);
    }

    #[test]
    fn large_mean_small_spread_is_not_cancelled() {
        // 1e8 + {0, 1}: an f32 mean would be off by 0.5, a whole std.
        let s = Standardization::fit(&[1e8, 1e8 + 1.0], 1);
        assert_eq!((s.mean[0], s.std[0]), (1e8 + 0.5, 0.5));
        assert_eq!(s.apply(&[1e8, 1e8 + 1.0]), [-1.0, 1.0]);
    }
}

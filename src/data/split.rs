//! Seeded train/test splits of a data set that comes in one piece (an image folder without
//! `train/` and `test/` sub-folders, a single CSV table).
//!
//! A classification set is split per class (stratified, as scikit-learn's
//! `train_test_split(..., stratify=y)`), so that every class keeps its share in both
//! halves; a regression set is split over all rows. The same seed gives the same split.

use anyhow::{bail, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// The two halves of a split: indices into the data set, each in increasing order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitIndices {
    /// The training samples.
    pub train: Vec<usize>,
    /// The held-out (test) samples.
    pub test: Vec<usize>,
}

/// Checks a test fraction given on the command line (`--test-split`).
pub fn check_fraction(fraction: f64) -> Result<()> {
    if !(fraction > 0.0 && fraction < 1.0) {
        bail!(
            "--test-split {fraction} is not a fraction between 0 and 1 (exclusive); \
             give for example --test-split 0.2"
        );
    }
    Ok(())
}

/// Splits `n` samples into train and test, `fraction` of them (rounded, at least one, at
/// most `n - 1`) held out, shuffled by `seed`. With `labels` (one class per sample) the split
/// is stratified: each class with at least two samples gives `fraction` of its samples
/// (rounded, at least one) to the test half.
pub fn split_indices(
    n: usize,
    labels: Option<&[usize]>,
    fraction: f64,
    seed: u64,
) -> Result<SplitIndices> {
    check_fraction(fraction)?;
    if n < 2 {
        bail!("cannot split {n} sample(s) into a training and a test part: give at least 2");
    }
    let mut rng = StdRng::seed_from_u64(seed ^ SPLIT_STREAM);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    match labels {
        None => {
            let mut all: Vec<usize> = (0..n).collect();
            all.shuffle(&mut rng);
            let k = held_out(n, fraction);
            test.extend_from_slice(&all[..k]);
            train.extend_from_slice(&all[k..]);
        }
        Some(labels) => {
            assert_eq!(labels.len(), n, "split_indices: one label per sample");
            let classes = labels.iter().max().map_or(0, |&m| m + 1);
            let mut by_class = vec![Vec::new(); classes];
            for (i, &c) in labels.iter().enumerate() {
                by_class[c].push(i);
            }
            for mut members in by_class {
                members.shuffle(&mut rng);
                let k = if members.len() < 2 {
                    0
                } else {
                    held_out(members.len(), fraction)
                };
                test.extend_from_slice(&members[..k]);
                train.extend_from_slice(&members[k..]);
            }
            if test.is_empty() {
                bail!(
                    "no class has 2 or more samples, so nothing can be held out for testing; \
                     give more data or separate test data"
                );
            }
        }
    }
    train.sort_unstable();
    test.sort_unstable();
    Ok(SplitIndices { train, test })
}

/// The number held out of `n`: `fraction * n` rounded, kept within `1..=n-1`.
fn held_out(n: usize, fraction: f64) -> usize {
    ((fraction * n as f64).round() as usize).clamp(1, n - 1)
}

/// Mixed into the seed so that the split's stream differs from the loader's shuffles of
/// the same seed.
const SPLIT_STREAM: u64 = 0x5EED_0000_5B17_0001;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_split_is_seeded_disjoint_and_complete() {
        let a = split_indices(10, None, 0.3, 1).unwrap();
        assert_eq!((a.train.len(), a.test.len()), (7, 3));
        assert_eq!(a, split_indices(10, None, 0.3, 1).unwrap());
        assert_ne!(a, split_indices(10, None, 0.3, 2).unwrap());
        let mut all: Vec<usize> = a.train.iter().chain(&a.test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn stratified_split_keeps_each_class_share() {
        // Class 0: 20 samples, class 1: 10, class 2: 1 (too few to hold one out).
        let labels: Vec<usize> = (0..31)
            .map(|i| {
                if i < 20 {
                    0
                } else if i < 30 {
                    1
                } else {
                    2
                }
            })
            .collect();
        let s = split_indices(31, Some(&labels), 0.2, 0).unwrap();
        let count = |idx: &[usize], c| idx.iter().filter(|&&i| labels[i] == c).count();
        assert_eq!(
            (count(&s.test, 0), count(&s.test, 1), count(&s.test, 2)),
            (4, 2, 0)
        );
        assert_eq!(count(&s.train, 2), 1);
        assert_eq!(s.train.len() + s.test.len(), 31);
    }

    #[test]
    fn bad_fractions_and_tiny_sets_are_errors() {
        for f in [0.0, 1.0, -0.5, f64::NAN] {
            let e = split_indices(10, None, f, 0).unwrap_err().to_string();
            assert!(e.contains("--test-split"), "{e}");
        }
        assert!(split_indices(1, None, 0.5, 0).is_err());
        assert!(split_indices(3, Some(&[0, 1, 2]), 0.5, 0).is_err());
    }
}

//! The pictures at the end of training.
//!
//! HOOK for the lead: `src/viz/` (loss and accuracy curves, the first convolution's
//! filters as a grid, the confusion matrix with class names) is written by another
//! helper. Connect it in [`write_pictures`]; for now it only computes the confusion
//! matrix counts.

use super::evaluate::Evaluation;
use super::metrics::EpochMetrics;
use crate::nn::Module;
use anyhow::Result;
use std::path::Path;

/// `counts[true_class][predicted_class]` over the evaluated images.
pub fn confusion_matrix(eval: &Evaluation, classes: usize) -> Vec<Vec<usize>> {
    let mut counts = vec![vec![0usize; classes]; classes];
    for (&label, &predicted) in eval.labels.iter().zip(&eval.predictions) {
        counts[label][predicted] += 1;
    }
    counts
}

/// Writes the end-of-training PNG files into `out_dir` (TODO(viz): call `src/viz`).
pub fn write_pictures(
    out_dir: &Path,
    model: &dyn Module,
    history: &[EpochMetrics],
    test: &Evaluation,
    class_names: &[String],
) -> Result<()> {
    let _ = (out_dir, model, history);
    let _confusion = confusion_matrix(test, class_names.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_counts_pairs() {
        let e = Evaluation {
            loss: 0.0,
            accuracy: 0.5,
            predictions: vec![0, 1, 1, 2],
            labels: vec![0, 0, 1, 2],
        };
        let m = confusion_matrix(&e, 3);
        assert_eq!(m, vec![vec![1, 1, 0], vec![0, 1, 0], vec![0, 0, 1]]);
    }
}

//! The metrics log of a run, `OUT/metrics.jsonl`: one JSON object per line, one line per
//! evaluation (an epoch of image training, an interval of `lm train`). Each loop has its
//! own [`Record`] type ([`EpochMetrics`] here, [`crate::lm::LmMetrics`]); the log, its copy
//! inside the checkpoint and reading them back are shared.

use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::Path;

/// What one epoch measured.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochMetrics {
    /// Counted from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (model in training mode).
    pub train_loss: f32,
    /// Accuracy on the training images seen this epoch (in training mode).
    pub train_accuracy: f32,
    /// Mean loss on the test images; `None` after an epoch without a test evaluation
    /// (`--eval-every`).
    pub test_loss: Option<f32>,
    /// Accuracy on the test images (0 for a regression); `None` as `test_loss`.
    pub test_accuracy: Option<f32>,
    /// The learning rate of the epoch's last step.
    pub lr: f32,
    /// Wall time of the epoch, training and test evaluation.
    pub seconds: f64,
    /// Training images per second (the training steps only).
    pub images_per_second: f64,
    /// Batches skipped for a non-finite loss or gradient (`--on-nonfinite skip`; else 0).
    pub skipped_steps: usize,
    /// Seconds the training steps waited for the data loader's next batch.
    pub data_wait_seconds: f64,
    /// Root mean squared error on the test split (a regression; `None` for a classifier).
    pub test_rmse: Option<f32>,
    /// Mean absolute error on the test split (a regression; `None` for a classifier).
    pub test_mae: Option<f32>,
}

/// One line of a metrics log.
pub trait Record: Clone + Sized {
    /// The checkpoint-metadata key of the counter a record is taken at (`epoch`, `step`):
    /// the run's progress, saved with every checkpoint.
    const PROGRESS: &'static str;
    /// The counter's value at this record.
    fn progress(&self) -> usize;
    /// The JSON line of the record.
    fn to_json(&self) -> Value;
    /// Reads a line written by [`Record::to_json`].
    fn from_json(v: &Value) -> Option<Self>;
}

impl Record for EpochMetrics {
    const PROGRESS: &'static str = "epoch";

    fn progress(&self) -> usize {
        self.epoch
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "epoch": self.epoch,
            "train_loss": self.train_loss,
            "train_accuracy": self.train_accuracy,
            "lr": self.lr,
            "seconds": self.seconds,
            "images_per_second": self.images_per_second,
            "skipped_steps": self.skipped_steps,
            "data_wait_seconds": self.data_wait_seconds,
        });
        // An epoch without a test evaluation has no test keys; a classifier's lines stay as
        // they were; a regression's add its errors.
        for (key, x) in [
            ("test_loss", self.test_loss),
            ("test_accuracy", self.test_accuracy),
            ("test_rmse", self.test_rmse),
            ("test_mae", self.test_mae),
        ] {
            if let Some(x) = x {
                v[key] = json!(x);
            }
        }
        v
    }

    fn from_json(v: &Value) -> Option<EpochMetrics> {
        let f = |k: &str| v.get(k)?.as_f64();
        Some(EpochMetrics {
            epoch: v.get("epoch")?.as_u64()? as usize,
            train_loss: f("train_loss")? as f32,
            train_accuracy: f("train_accuracy")? as f32,
            test_loss: f("test_loss").map(|x| x as f32),
            test_accuracy: f("test_accuracy").map(|x| x as f32),
            lr: f("lr")? as f32,
            seconds: f("seconds")?,
            images_per_second: f("images_per_second")?,
            // Logs of earlier versions have no count: nothing was skipped then.
            skipped_steps: match v.get("skipped_steps") {
                None => 0,
                Some(n) => n.as_u64()? as usize,
            },
            // Absent from logs of earlier versions.
            data_wait_seconds: f("data_wait_seconds").unwrap_or(0.0),
            test_rmse: f("test_rmse").map(|x| x as f32),
            test_mae: f("test_mae").map(|x| x as f32),
        })
    }
}

/// Writes the whole log (atomically: the file is rewritten each epoch, so a crash leaves
/// the previous complete version).
pub fn write_log<R: Record>(path: &Path, history: &[R]) -> Result<()> {
    crate::checkpoint::write_atomic(path, log_text(history).as_bytes())
}

/// The log's text: one JSON line per epoch.
pub fn log_text<R: Record>(history: &[R]) -> String {
    history
        .iter()
        .map(|m| format!("{}\n", m.to_json()))
        .collect()
}

/// Reads a log; a missing file is an empty history.
pub fn read_log<R: Record>(path: &Path) -> Result<Vec<R>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_log(&text, &path.display().to_string())
}

/// Parses the text of a log; `source` names it in errors.
pub fn parse_log<R: Record>(text: &str, source: &str) -> Result<Vec<R>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str::<Value>(l)
                .ok()
                .as_ref()
                .and_then(R::from_json)
                .with_context(|| format!("{source} line {}: not a metrics record", i + 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_round_trip() {
        let m = EpochMetrics {
            epoch: 3,
            train_loss: 0.5,
            train_accuracy: 0.75,
            test_loss: Some(0.625),
            test_accuracy: Some(0.875),
            lr: 0.25,
            seconds: 1.5,
            images_per_second: 1000.0,
            skipped_steps: 2,
            data_wait_seconds: 0.0,
            test_rmse: None,
            test_mae: Some(0.5),
        };
        let dir = std::env::temp_dir().join(format!("neurite-metrics-{}", std::process::id()));
        let path = dir.join("metrics.jsonl");
        write_log(
            &path,
            &[
                m.clone(),
                EpochMetrics {
                    epoch: 4,
                    ..m.clone()
                },
                // An epoch without a test evaluation (`--eval-every`).
                EpochMetrics {
                    epoch: 5,
                    test_loss: None,
                    test_accuracy: None,
                    test_mae: None,
                    ..m.clone()
                },
            ],
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.lines().nth(2).unwrap().contains("test"), "{text}");
        let back: Vec<EpochMetrics> = read_log(&path).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[0], m);
        assert_eq!(
            (back[2].epoch, back[2].test_loss, back[2].test_accuracy),
            (5, None, None)
        );
        std::fs::write(&path, "{\"epoch\": 1}\n").unwrap();
        let err = read_log::<EpochMetrics>(&path).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Character-level language modelling with `gpt`: the validation loss on a text ([`eval`])
//! and the training run behind `neurite lm train` ([`mod@train`]). The text itself is a data
//! source like the images: [`crate::data::text`].

pub mod eval;
mod parallel;
pub mod train;

/// The text data, at its place of earlier versions.
pub use crate::data::text as data;
pub use crate::data::text::{eval_windows, read_text, split_text, Windows, DEFAULT_TEXT_DIR};
pub use eval::text_loss;
pub use train::{load_gpt, train, LmMetrics, LmRun, LmSummary, CHECKPOINT_FILE, MODEL_FILE};

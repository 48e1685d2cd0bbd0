//! Character-level language modelling with `gpt`: the byte text of files ([`data`]), its
//! validation loss, and the training run behind `neurite lm train` ([`train`]).

pub mod data;
pub mod train;

pub use data::{eval_windows, read_text, split_text, text_loss, Windows, DEFAULT_TEXT_DIR};
pub use train::{load_gpt, train, LmRun, LmSummary, CHECKPOINT_FILE, MODEL_FILE};

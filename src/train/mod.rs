//! Training: the scaffold every training loop shares, and the supervised loop of the zoo's
//! models (or one's own) on any [`TrainData`]: images or a table, classes or values (the language model's loop is [`mod@crate::lm::train`]).
//!
//! The shared scaffold:
//! - [`run`]: a run in its output directory ([`Run`]): the one-file checkpoint (model,
//!   optimizer, step, metrics, the loop's settings), `--resume`, `--overwrite`;
//! - [`run_dir`]: the output directory, locked by one run at a time;
//! - [`metrics`]: the JSON-lines log, one [`metrics::Record`] per evaluation;
//! - [`guard`]: the guarded update of a step, and the stop (or skip) at a non-finite loss or
//!   gradient;
//! - [`progress`]: the progress bar and its lines.
//!
//! The image loop:
//! - [`config`]: the hyper-parameters, the recipes of [`crate::models::MODELS`], their checks;
//! - [`choices`]: the recipe, optimizer, decay scope, warm-up and schedule choices;
//! - [`data`]: what the loop trains on ([`TrainData`]: images, image sources, tables);
//! - [`fit`]: the training loop ([`train`], [`train_model`]);
//! - [`evaluate`]: test-set accuracy and loss, or RMSE and MAE;
//! - [`state`]: the weights with their normalization, and the saved configuration;
//! - [`pictures`]: the end-of-training pictures (hook for `src/viz`).
//!
//! ```no_run
//! use neurite::data::{find_data_dir, DatasetKind, MnistData};
//! use neurite::train::{train, OptimizerKind, RunOptions, TrainConfig};
//! # fn main() -> anyhow::Result<()> {
//! let data = MnistData::load(&find_data_dir(None)?, DatasetKind::FashionMnist)?;
//! let config = TrainConfig::recipe("lenet5", OptimizerKind::Sgd)?;
//! let opts = RunOptions { out: "runs/lenet5".into(), ..Default::default() };
//! let summary = train(&config, &data.into(), &opts)?;
//! println!("{:.2}%", 100.0 * summary.accuracy);
//! # Ok(()) }
//! ```

pub mod choices;
pub mod config;
pub mod data;
pub mod evaluate;
pub mod fit;
pub mod guard;
pub mod metrics;
pub mod pictures;
pub mod progress;
pub mod run;
pub mod run_dir;
pub mod state;

pub use config::{DecayScope, OptimizerKind, RecipeKind, TrainConfig, Warmup};
pub use data::{Targets, TrainData};
pub use evaluate::{
    evaluate, evaluate_data_parallel, evaluate_dataset, evaluate_dataset_with, Evaluation,
    TestTimeAugment, EVAL_BATCH,
};
pub use fit::{train, train_model, RunOptions, TrainSummary};
pub use guard::{Guard, NonFinitePolicy};
pub use metrics::{EpochMetrics, Record};
pub use pictures::{confusion_matrix, write_pictures};
pub use progress::Progress;
pub use run::{Resumed, Run, Snapshot};
pub use run_dir::RunDir;
pub use state::{load_weights, saved_config};

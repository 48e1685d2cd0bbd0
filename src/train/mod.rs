//! Training and evaluating the image classifiers of the zoo on MNIST-layout data.
//!
//! - [`config`]: the hyper-parameters, per-model recipes and their checks;
//! - [`fit`]: the training loop ([`train`]);
//! - [`evaluate`]: test-set accuracy and loss;
//! - [`metrics`]: the per-epoch JSON-lines log;
//! - [`state`]: the one-file checkpoint (model, optimizer, metrics) and `--resume`;
//! - [`run_dir`]: the output directory, locked by one run at a time;
//! - [`guard`]: the stop (or skip) at a non-finite loss or gradient;
//! - [`pictures`]: the end-of-training pictures (hook for `src/viz`).
//!
//! ```no_run
//! use neurite::data::{find_data_dir, DatasetKind, MnistData};
//! use neurite::train::{train, OptimizerKind, RunOptions, TrainConfig};
//! # fn main() -> anyhow::Result<()> {
//! let data = MnistData::load(&find_data_dir(None)?, DatasetKind::FashionMnist)?;
//! let config = TrainConfig::recipe("lenet5", OptimizerKind::Sgd)?;
//! let opts = RunOptions { out: "runs/lenet5".into(), ..Default::default() };
//! let summary = train(&config, &data, &opts)?;
//! println!("{:.2}%", 100.0 * summary.accuracy);
//! # Ok(()) }
//! ```

pub mod config;
pub mod evaluate;
pub mod fit;
pub mod guard;
pub mod metrics;
pub mod pictures;
pub mod run_dir;
pub mod state;

pub use config::{DecayScope, OptimizerKind, TrainConfig, Warmup};
pub use evaluate::{evaluate, Evaluation, EVAL_BATCH};
pub use fit::{train, RunOptions, TrainSummary};
pub use guard::{Guard, NonFinitePolicy};
pub use metrics::EpochMetrics;
pub use pictures::{confusion_matrix, write_pictures};
pub use run_dir::RunDir;
pub use state::{load_weights, saved_config};

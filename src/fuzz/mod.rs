//! An in-tree fuzzer for every parser a user can feed a file to (IDX, gzip, safetensors
//! checkpoints of each model, PNG, JPEG, text), for toolchains without `cargo fuzz`.
//!
//! [`mutate`] turns corpus entries into new inputs, [`targets`] holds one target per
//! parser with its seeds, [`safetensors_edit`] makes structure-aware edits of
//! checkpoints, [`runner`] runs a target under `catch_unwind` and counts
//! executions and crashes. Run it with `cargo run --release --example fuzz -- TARGET
//! --runs N`; `tests/fuzz.rs` runs every target briefly. See `docs/reliability-fuzzing.md`.

pub mod mutate;
pub mod runner;
pub mod safetensors_edit;
pub mod targets;

pub use runner::{fuzz, Crash, FuzzOptions, FuzzReport};
pub use targets::{target, Target, TARGETS};

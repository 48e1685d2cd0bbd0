//! Tables: a CSV file with a header row becomes standardized f32 features `[N, F]` and
//! class or value targets, split into training and test rows, with the [`TableSchema`] a
//! checkpoint keeps to read new rows the same way.
//!
//! - **Columns**: the target is chosen by name (or by 0-based index, when no column has
//!   that name); every other column is a numeric feature, except those dropped by name
//!   (an id). The delimiter is `,`, `;` or tab, whichever the header line uses most.
//! - **Task** ([`target`]): a non-numeric target is a classification (classes the distinct
//!   values, sorted); an integer target with at most [`MAX_INTEGER_CLASSES`] distinct values
//!   is one too; any other numeric target is a regression; [`TaskChoice`] overrides.
//! - **Test rows**: a second CSV with the same columns, or a seeded split of the one file
//!   ([`split_indices`], stratified for a classification).
//! - **Standardization** ([`Standardization`]): mean and population std of each feature over
//!   the training rows only; a constant column gets std 1.
//! - **Errors**: every problem with the user's files is an `Err` naming the file, the line
//!   and the column and saying how to fix it (ragged rows, missing values, non-numeric
//!   features, an unknown target, duplicate columns, one class only, too few rows).
//!
//! ```
//! use neurite::data::table::{TableData, TableOptions, Task};
//! # fn main() -> anyhow::Result<()> {
//! let csv = "id,x1,x2,label\n1,0.5,1,cat\n2,1.5,2,dog\n3,2.5,1,cat\n4,3.5,2,dog\n5,4.5,1,cat\n";
//! let options = TableOptions::new("label").drop(&["id"]).split(0.4, 7);
//! let table = TableData::read_str("pets.csv", csv, &options)?;
//! assert_eq!(table.schema.task, Task::Classification);
//! assert_eq!(table.schema.class_names, ["cat", "dog"]);
//! assert_eq!(table.schema.features, ["x1", "x2"]);
//! assert_eq!((table.train_rows(), table.test_rows()), (3, 2));
//! let x = table.train_tensor(); // [3, 2], standardized on these 3 rows
//! assert_eq!(x.shape(), &[3, 2]);
//! println!("{}", table.description);
//! # Ok(()) }
//! ```

mod parse;
mod schema;
mod standardize;
mod target;

pub use schema::{
    MetadataMap, TableRows, TableSchema, CLASSES_KEY, FEATURES_KEY, MEAN_KEY, STD_KEY, TARGET_KEY,
    TASK_KEY,
};
pub use standardize::Standardization;
pub use target::{TableTargets, Task, TaskChoice, MAX_INTEGER_CLASSES};

use super::split::{split_indices, SplitIndices};
use crate::tensor::Tensor;
use anyhow::{bail, Context, Result};
use parse::{quoted_list, RawTable};
use std::path::{Path, PathBuf};

/// Where the test rows come from.
#[derive(Debug, Clone, PartialEq)]
pub enum TestSource {
    /// A second CSV with the same columns as the training file (any order).
    File(PathBuf),
    /// A seeded split of the one file: `fraction` of the rows held out (stratified by class
    /// for a classification).
    Split {
        /// The share of rows held out, in (0, 1).
        fraction: f64,
        /// The seed of the split.
        seed: u64,
    },
}

/// How to read a table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableOptions {
    /// The target column: its name, or its 0-based index when no column has that name.
    pub target: String,
    /// Columns that are neither feature nor target (an id, a free-text note).
    pub drop: Vec<String>,
    /// The task, or [`TaskChoice::Auto`] to decide from the target's values.
    pub task: TaskChoice,
    /// Where the test rows come from.
    pub test: TestSource,
}

impl TableOptions {
    /// Target `target`, no dropped column, the task decided from the data, 20% of the
    /// rows held out with seed 0.
    pub fn new(target: &str) -> TableOptions {
        TableOptions {
            target: target.to_string(),
            drop: Vec::new(),
            task: TaskChoice::Auto,
            test: TestSource::Split {
                fraction: 0.2,
                seed: 0,
            },
        }
    }

    /// Drops these columns.
    pub fn drop(mut self, columns: &[&str]) -> TableOptions {
        self.drop = columns.iter().map(|c| c.to_string()).collect();
        self
    }

    /// Sets the task.
    pub fn task(mut self, task: TaskChoice) -> TableOptions {
        self.task = task;
        self
    }

    /// Holds out `fraction` of the rows, split with `seed`.
    pub fn split(mut self, fraction: f64, seed: u64) -> TableOptions {
        self.test = TestSource::Split { fraction, seed };
        self
    }

    /// Takes the test rows from `path`.
    pub fn test_file(mut self, path: impl Into<PathBuf>) -> TableOptions {
        self.test = TestSource::File(path.into());
        self
    }
}

/// A table read for training: standardized features and targets of the training and the
/// test rows, and the schema to store with the model.
#[derive(Debug, Clone)]
pub struct TableData {
    /// Feature columns, standardization, target, task and classes.
    pub schema: TableSchema,
    /// Training features, `[train_rows, F]` row-major, standardized.
    pub train_x: Vec<f32>,
    /// Training targets, one per training row.
    pub train_y: TableTargets,
    /// Test features, `[test_rows, F]` row-major, standardized with the training statistics.
    pub test_x: Vec<f32>,
    /// Test targets, one per test row.
    pub test_y: TableTargets,
    /// With a split: the data rows (0-based, header excluded) of each half, so that another
    /// tool can use the same rows.
    pub split: Option<SplitIndices>,
    /// One line saying what was read and decided, for the command to print.
    pub description: String,
}

impl TableData {
    /// Reads the table at `path` as `options` say.
    pub fn read(path: &Path, options: &TableOptions) -> Result<TableData> {
        Self::from_raw(RawTable::read(path)?, options)
    }

    /// [`TableData::read`] on CSV text; `name` stands for the file in errors and the
    /// description.
    pub fn read_str(name: &str, text: &str, options: &TableOptions) -> Result<TableData> {
        Self::from_raw(RawTable::parse(Path::new(name), text)?, options)
    }

    /// The number of feature columns.
    pub fn features(&self) -> usize {
        self.schema.num_features()
    }

    /// The number of training rows.
    pub fn train_rows(&self) -> usize {
        self.train_y.len()
    }

    /// The number of test rows.
    pub fn test_rows(&self) -> usize {
        self.test_y.len()
    }

    /// The training features as a tensor, `[train_rows, F]`.
    pub fn train_tensor(&self) -> Tensor {
        Tensor::from_vec(self.train_x.clone(), &[self.train_rows(), self.features()])
    }

    /// The test features as a tensor, `[test_rows, F]`.
    pub fn test_tensor(&self) -> Tensor {
        Tensor::from_vec(self.test_x.clone(), &[self.test_rows(), self.features()])
    }

    fn from_raw(raw: RawTable, options: &TableOptions) -> Result<TableData> {
        let target = resolve_target(&raw, &options.target)?;
        let feature_cols = feature_columns(&raw, target, &options.drop)?;
        let (decision, targets) = target::decide(&raw, target, options.task)?;
        let values = schema::feature_matrix(&raw, &feature_cols)?;
        let f = feature_cols.len();
        let (train_raw, train_y, test_raw, test_y, split, test_text) = match &options.test {
            TestSource::Split { fraction, seed } => {
                let labels = match &targets {
                    TableTargets::Classes { labels, .. } => Some(labels.as_slice()),
                    TableTargets::Values(_) => None,
                };
                let s = split_indices(raw.rows.len(), labels, *fraction, *seed)
                    .with_context(|| format!("{}: cannot split the rows", raw.path.display()))?;
                let gather = |idx: &[usize]| -> Vec<f64> {
                    idx.iter()
                        .flat_map(|&i| values[i * f..(i + 1) * f].iter().copied())
                        .collect()
                };
                let text = format!(
                    "{} of {fraction} held out, seed {seed}",
                    if labels.is_some() {
                        "a stratified split"
                    } else {
                        "a split"
                    },
                );
                (
                    gather(&s.train),
                    targets.select(&s.train),
                    gather(&s.test),
                    targets.select(&s.test),
                    Some(s),
                    text,
                )
            }
            TestSource::File(path) => {
                let test = RawTable::read(path)?;
                check_same_columns(&raw, &test)?;
                let cols: Vec<usize> = feature_cols
                    .iter()
                    .map(|&c| test.column(&raw.header[c]).expect("checked above"))
                    .collect();
                let test_values = schema::feature_matrix(&test, &cols)?;
                let t = test.column(&raw.header[target]).expect("checked above");
                let test_y = target::read_known(&test, t, decision.task, &decision.class_names)?;
                let text = format!("from {}", path.display());
                (values, targets, test_values, test_y, None, text)
            }
        };
        let standardization = Standardization::fit(&train_raw, f);
        let schema = TableSchema {
            features: feature_cols
                .iter()
                .map(|&c| raw.header[c].clone())
                .collect(),
            standardization,
            target: raw.header[target].clone(),
            task: decision.task,
            class_names: decision.class_names.clone(),
        };
        let what = match decision.task {
            Task::Classification => format!(
                "classification of `{}` into {} classes ({})",
                schema.target,
                schema.class_names.len(),
                abbreviated(&schema.class_names)
            ),
            Task::Regression => format!("regression of `{}`", schema.target),
        };
        let dropped = if options.drop.is_empty() {
            String::new()
        } else {
            format!(" (dropped {})", quoted_list(&options.drop))
        };
        let description = format!(
            "{}: {what}, {}; {f} features{dropped} standardized on {} training rows; {} test \
             rows ({test_text})",
            raw.path.display(),
            decision.reason,
            train_y.len(),
            test_y.len()
        );
        Ok(TableData {
            train_x: schema.standardization.apply(&train_raw),
            test_x: schema.standardization.apply(&test_raw),
            schema,
            train_y,
            test_y,
            split,
            description,
        })
    }
}

/// The target column: by name, else by 0-based index.
fn resolve_target(raw: &RawTable, target: &str) -> Result<usize> {
    if let Some(c) = raw.column(target) {
        return Ok(c);
    }
    match target.parse::<usize>() {
        Ok(i) if i < raw.header.len() => Ok(i),
        _ => bail!(
            "{}: there is no target column `{target}`; the columns are {} (give --target \
             with one of these names, or a 0-based column index)",
            raw.path.display(),
            raw.column_list()
        ),
    }
}

/// Every column but the target and the dropped ones, in file order.
fn feature_columns(raw: &RawTable, target: usize, drop: &[String]) -> Result<Vec<usize>> {
    for d in drop {
        match raw.column(d) {
            None => bail!(
                "{}: cannot drop column `{d}`: there is no such column; the columns are {}",
                raw.path.display(),
                raw.column_list()
            ),
            Some(c) if c == target => bail!(
                "{}: column `{d}` is the target and cannot be dropped",
                raw.path.display()
            ),
            Some(_) => {}
        }
    }
    let cols: Vec<usize> = (0..raw.header.len())
        .filter(|&c| c != target && !drop.contains(&raw.header[c]))
        .collect();
    if cols.is_empty() {
        bail!(
            "{}: no feature column is left besides the target `{}`; keep at least one",
            raw.path.display(),
            raw.header[target]
        );
    }
    Ok(cols)
}

/// A test file must have the training file's columns (in any order), no more, no fewer.
fn check_same_columns(train: &RawTable, test: &RawTable) -> Result<()> {
    let missing: Vec<String> = train
        .header
        .iter()
        .filter(|h| test.column(h).is_none())
        .cloned()
        .collect();
    let extra: Vec<String> = test
        .header
        .iter()
        .filter(|h| train.column(h).is_none())
        .cloned()
        .collect();
    if !missing.is_empty() || !extra.is_empty() {
        bail!(
            "the test table {} must have the columns of the training table {}: missing {}, \
             extra {}",
            test.path.display(),
            train.path.display(),
            if missing.is_empty() {
                "none".into()
            } else {
                quoted_list(&missing)
            },
            if extra.is_empty() {
                "none".into()
            } else {
                quoted_list(&extra)
            }
        );
    }
    Ok(())
}

/// Up to eight names, then how many more.
fn abbreviated(names: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = names[..names.len().min(SHOWN)].join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(", … {} more", names.len() - SHOWN));
    }
    s
}

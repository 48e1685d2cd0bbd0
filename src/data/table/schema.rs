//! What a model trained on a table must remember to read new rows the same way: the feature
//! columns in order, their standardization, the target and its task and classes. It goes
//! into the checkpoint's metadata (keys `table.*`) and comes back from it.
//!
//! Rows for prediction are matched to the features by column name, in any order; the
//! target column may be there (then it is read too, for evaluation) or not; other columns
//! are ignored and listed in [`TableRows::ignored`], so that the command can say so: an id
//! column kept in the file is the common case, and refusing it would make every user drop
//! it by hand first. A missing feature column is an error.

use super::parse::{feature_error, quoted_list, read_number, Cell, RawTable};
use super::standardize::Standardization;
use super::target::{read_known, TableTargets, Task};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Metadata key: the feature column names in order (a JSON array of strings).
pub const FEATURES_KEY: &str = "table.features";
/// Metadata key: the features' means (comma-separated numbers).
pub const MEAN_KEY: &str = "table.mean";
/// Metadata key: the features' standard deviations (comma-separated positive numbers).
pub const STD_KEY: &str = "table.std";
/// Metadata key: the target column's name.
pub const TARGET_KEY: &str = "table.target";
/// Metadata key: `classification` or `regression`.
pub const TASK_KEY: &str = "table.task";
/// Metadata key: the class names in index order (a JSON array; classification only).
pub const CLASSES_KEY: &str = "table.classes";

/// The description of a table a model was trained on.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSchema {
    /// The feature column names, in the order of the model's inputs.
    pub features: Vec<String>,
    /// The standardization of the features (training split statistics).
    pub standardization: Standardization,
    /// The target column's name.
    pub target: String,
    /// Classification or regression.
    pub task: Task,
    /// The class names in index order (empty for a regression).
    pub class_names: Vec<String>,
}

/// Rows read with a [`TableSchema`] (for prediction or evaluation).
#[derive(Debug, Clone, PartialEq)]
pub struct TableRows {
    /// Standardized features, `[rows, features]` row-major.
    pub x: Vec<f32>,
    /// The number of rows.
    pub rows: usize,
    /// The targets, when the file has the target column.
    pub targets: Option<TableTargets>,
    /// Columns of the file that are neither a feature nor the target (not used).
    pub ignored: Vec<String>,
    /// The 1-based line of the file each row starts on.
    pub lines: Vec<u64>,
}

/// A map of string metadata: what [`TableSchema::from_metadata`] reads.
pub trait MetadataMap {
    /// The value of `key`.
    fn get_value(&self, key: &str) -> Option<&str>;
}

impl<S: std::hash::BuildHasher> MetadataMap for HashMap<String, String, S> {
    fn get_value(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl MetadataMap for BTreeMap<String, String> {
    fn get_value(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl TableSchema {
    /// The number of feature columns (the model's input width).
    pub fn num_features(&self) -> usize {
        self.features.len()
    }

    /// The model's number of outputs: one per class, or 1 for a regression.
    pub fn outputs(&self) -> usize {
        match self.task {
            Task::Classification => self.class_names.len(),
            Task::Regression => 1,
        }
    }

    /// The name of predicted class `index`, `None` past the last class (or for a
    /// regression).
    pub fn class_name(&self, index: usize) -> Option<&str> {
        self.class_names.get(index).map(String::as_str)
    }

    /// The metadata entries, keys prefixed `table.`.
    ///
    /// ```
    /// use neurite::data::table::{Standardization, TableSchema, Task};
    /// use std::collections::HashMap;
    /// let schema = TableSchema {
    ///     features: vec!["height".into(), "weight".into()],
    ///     standardization: Standardization { mean: vec![170.0, 70.5], std: vec![10.0, 12.25] },
    ///     target: "size".into(),
    ///     task: Task::Classification,
    ///     class_names: vec!["L".into(), "M".into(), "S".into()],
    /// };
    /// let meta: HashMap<String, String> = schema.to_metadata().into_iter().collect();
    /// assert_eq!(meta["table.features"], r#"["height","weight"]"#);
    /// assert_eq!(TableSchema::from_metadata(&meta)?, schema);
    /// # Ok::<(), anyhow::Error>(())
    /// ```
    pub fn to_metadata(&self) -> Vec<(String, String)> {
        let json = |v: serde_json::Value| v.to_string();
        let mut out = vec![
            (FEATURES_KEY.into(), json(self.features.clone().into())),
            (MEAN_KEY.into(), join_numbers(&self.standardization.mean)),
            (STD_KEY.into(), join_numbers(&self.standardization.std)),
            (TARGET_KEY.into(), self.target.clone()),
            (TASK_KEY.into(), self.task.name().into()),
        ];
        if self.task == Task::Classification {
            out.push((CLASSES_KEY.into(), json(self.class_names.clone().into())));
        }
        out
    }

    /// Reads the schema back from a checkpoint's metadata; an error names the missing or
    /// bad key.
    pub fn from_metadata<M: MetadataMap + ?Sized>(meta: &M) -> Result<TableSchema> {
        let get = |key: &str| {
            meta.get_value(key).with_context(|| {
                format!(
                    "the checkpoint's metadata has no `{key}`: the model was not trained on a \
                     table (or its file was edited); retrain it with --data FILE.csv"
                )
            })
        };
        let features = strings(FEATURES_KEY, get(FEATURES_KEY)?)?;
        let mean = numbers(MEAN_KEY, get(MEAN_KEY)?)?;
        let std = numbers(STD_KEY, get(STD_KEY)?)?;
        if features.is_empty() {
            bail!("checkpoint metadata `{FEATURES_KEY}` names no feature column");
        }
        for (key, len) in [(MEAN_KEY, mean.len()), (STD_KEY, std.len())] {
            if len != features.len() {
                bail!(
                    "checkpoint metadata `{key}` has {len} values for {} features \
                     (`{FEATURES_KEY}`)",
                    features.len()
                );
            }
        }
        if let Some(bad) = mean.iter().find(|m| !m.is_finite()) {
            bail!("checkpoint metadata `{MEAN_KEY}` holds {bad}, not a finite number");
        }
        if let Some(bad) = std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            bail!("checkpoint metadata `{STD_KEY}` holds {bad}, not a positive number");
        }
        let target = get(TARGET_KEY)?.to_string();
        let task = match get(TASK_KEY)? {
            "classification" => Task::Classification,
            "regression" => Task::Regression,
            other => bail!(
                "checkpoint metadata `{TASK_KEY}` = {other:?}: expected classification or \
                 regression"
            ),
        };
        let class_names: Vec<String> = match task {
            Task::Classification => strings(CLASSES_KEY, get(CLASSES_KEY)?)?,
            Task::Regression => Vec::new(),
        };
        if task == Task::Classification && class_names.len() < 2 {
            bail!(
                "checkpoint metadata `{CLASSES_KEY}` names {} class(es); a classifier has at \
                 least two",
                class_names.len()
            );
        }
        Ok(TableSchema {
            features,
            standardization: Standardization { mean, std },
            target,
            task,
            class_names,
        })
    }

    /// Reads a CSV of rows to predict (or evaluate): the feature columns in any order, the
    /// target column optional, other columns ignored; standardized with the stored
    /// statistics.
    pub fn read_rows(&self, path: &Path) -> Result<TableRows> {
        self.rows_of(RawTable::read(path)?)
    }

    /// [`TableSchema::read_rows`] on CSV text (`name` stands for the file in errors).
    pub fn read_rows_from_str(&self, name: &str, text: &str) -> Result<TableRows> {
        self.rows_of(RawTable::parse(Path::new(name), text)?)
    }

    pub(crate) fn rows_of(&self, raw: RawTable) -> Result<TableRows> {
        let missing: Vec<String> = self
            .features
            .iter()
            .filter(|f| raw.column(f).is_none())
            .cloned()
            .collect();
        if !missing.is_empty() {
            bail!(
                "{}: the model's feature column(s) {} are not in the file, whose columns are {}; \
                 the rows need every column the model was trained on",
                raw.path.display(),
                quoted_list(&missing),
                raw.column_list()
            );
        }
        let cols: Vec<usize> = self.features.iter().filter_map(|f| raw.column(f)).collect();
        let values = feature_matrix(&raw, &cols)?;
        let targets = match raw.column(&self.target) {
            Some(t) => Some(read_known(&raw, t, self.task, &self.class_names)?),
            None => None,
        };
        let ignored = raw
            .header
            .iter()
            .filter(|h| **h != self.target && !self.features.contains(h))
            .cloned()
            .collect();
        Ok(TableRows {
            x: self.standardization.apply(&values),
            rows: raw.rows.len(),
            targets,
            ignored,
            lines: raw.lines,
        })
    }
}

/// A metadata value that must be a JSON array of strings.
fn strings(key: &str, value: &str) -> Result<Vec<String>> {
    let bad =
        || anyhow::anyhow!("checkpoint metadata `{key}` = {value:?} is not a JSON array of names");
    let v: serde_json::Value = serde_json::from_str(value).map_err(|_| bad())?;
    v.as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|x| x.as_str().map(str::to_string).ok_or_else(bad))
        .collect()
}

/// A metadata value that must be comma-separated numbers (Rust's shortest round-trip form
/// of an f64, which reads back to the same f64).
fn numbers(key: &str, value: &str) -> Result<Vec<f64>> {
    value
        .split(',')
        .map(|x| {
            x.trim().parse::<f64>().map_err(|_| {
                anyhow::anyhow!(
                    "checkpoint metadata `{key}` = {value:?}: {:?} is not a number",
                    x.trim()
                )
            })
        })
        .collect()
}

/// Numbers as [`numbers`] reads them.
fn join_numbers(v: &[f64]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The columns `cols` of every row of `raw` as numbers, `[rows, cols.len()]` row-major;
/// the first cell that is not a finite number is an error naming its line and column.
pub(crate) fn feature_matrix(raw: &RawTable, cols: &[usize]) -> Result<Vec<f64>> {
    let mut values = Vec::with_capacity(raw.rows.len() * cols.len());
    for (row, &line) in raw.rows.iter().zip(&raw.lines) {
        for &c in cols {
            match read_number(&row[c]) {
                Cell::Number(v) => values.push(v),
                _ => return Err(feature_error(&raw.path, line, &raw.header[c], &row[c])),
            }
        }
    }
    Ok(values)
}

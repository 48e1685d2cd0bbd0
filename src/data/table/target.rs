//! The target column: which task it makes (classification or regression), its class
//! names, and its cells as class indices or values.
//!
//! The rule, unless the user chooses ([`TaskChoice`]): a target with any non-numeric cell is
//! a classification, its classes the distinct values sorted; a numeric target whose values
//! are all integers, with at most [`MAX_INTEGER_CLASSES`] distinct ones, is a classification
//! too (class names the values as first written, in numeric order: `0`, `1`, `2`); any
//! other numeric target is a regression.

use super::parse::{read_number, Cell, RawTable};
use anyhow::{bail, Result};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

/// The most distinct integer values a numeric target may have to be taken as class labels
/// when the task is not chosen; more make it a regression.
pub const MAX_INTEGER_CLASSES: usize = 20;

/// What a model learns from a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Predict one of the class names (cross-entropy; accuracy).
    Classification,
    /// Predict a number (MSE; RMSE and MAE).
    Regression,
}

impl Task {
    /// `classification` or `regression`, as the metadata and the flag write it.
    pub fn name(self) -> &'static str {
        match self {
            Task::Classification => "classification",
            Task::Regression => "regression",
        }
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The task as the user asks for it: decided from the target column, or forced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskChoice {
    /// Decide from the target's values (the module's rule).
    #[default]
    Auto,
    /// Classification, whatever the values (each distinct value a class).
    Classification,
    /// Regression; every target cell must be a number.
    Regression,
}

impl FromStr for TaskChoice {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(TaskChoice::Auto),
            "classification" => Ok(TaskChoice::Classification),
            "regression" => Ok(TaskChoice::Regression),
            _ => bail!("unknown task {s:?}: give auto, classification or regression"),
        }
    }
}

/// The targets of a set of rows, one per row.
#[derive(Debug, Clone, PartialEq)]
pub enum TableTargets {
    /// Class indices into `class_names` (classification).
    Classes {
        /// One class index per row.
        labels: Vec<usize>,
        /// The names of the classes, index order.
        class_names: Vec<String>,
    },
    /// One number per row (regression).
    Values(Vec<f32>),
}

impl TableTargets {
    /// The number of rows.
    pub fn len(&self) -> usize {
        match self {
            TableTargets::Classes { labels, .. } => labels.len(),
            TableTargets::Values(v) => v.len(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The targets of the rows `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> TableTargets {
        match self {
            TableTargets::Classes {
                labels,
                class_names,
            } => TableTargets::Classes {
                labels: indices.iter().map(|&i| labels[i]).collect(),
                class_names: class_names.clone(),
            },
            TableTargets::Values(v) => {
                TableTargets::Values(indices.iter().map(|&i| v[i]).collect())
            }
        }
    }
}

/// What was decided about a target column, and why (for the description line).
#[derive(Debug, Clone)]
pub(crate) struct Decision {
    pub task: Task,
    pub class_names: Vec<String>,
    pub reason: String,
}

/// Decides the task of column `col` of `raw` and reads its cells.
pub(crate) fn decide(
    raw: &RawTable,
    col: usize,
    choice: TaskChoice,
) -> Result<(Decision, TableTargets)> {
    let name = &raw.header[col];
    let mut numbers = Vec::with_capacity(raw.rows.len());
    let mut first_text = None;
    for (row, &line) in raw.rows.iter().zip(&raw.lines) {
        let cell = row[col].as_str();
        match read_number(cell) {
            Cell::Missing => bail!(
                "{}: line {line}, target column `{name}`: missing value ({cell:?}); a row \
                 without a target cannot be used: drop it or fill it in",
                raw.path.display()
            ),
            Cell::Number(v) => numbers.push(v),
            Cell::NonFinite | Cell::Text => {
                first_text.get_or_insert((line, cell));
            }
        }
    }
    let numeric = first_text.is_none();
    let integers = numeric && numbers.iter().all(|v| v.fract() == 0.0);
    let (task, reason) = match choice {
        TaskChoice::Regression => {
            if let Some((line, cell)) = first_text {
                bail!(
                    "{}: line {line}, target column `{name}`: {cell:?} is not a finite number, \
                     and a regression needs a number in every row; fix the value or train a \
                     classification",
                    raw.path.display()
                );
            }
            (Task::Regression, "as asked".to_string())
        }
        TaskChoice::Classification => (Task::Classification, "as asked".to_string()),
        TaskChoice::Auto if !numeric => (Task::Classification, "a non-numeric target".into()),
        TaskChoice::Auto => {
            let distinct = distinct_numbers(&numbers).len();
            if integers && distinct <= MAX_INTEGER_CLASSES {
                (
                    Task::Classification,
                    format!("an integer target with {distinct} distinct values"),
                )
            } else if integers {
                (
                    Task::Regression,
                    format!(
                        "an integer target with {distinct} distinct values \
                         (over {MAX_INTEGER_CLASSES})"
                    ),
                )
            } else {
                (Task::Regression, "a numeric target".to_string())
            }
        }
    };
    if task == Task::Regression {
        let values = numbers.iter().map(|&v| v as f32).collect();
        let decision = Decision {
            task,
            class_names: Vec::new(),
            reason,
        };
        return Ok((decision, TableTargets::Values(values)));
    }
    let class_names = if numeric {
        // Numeric classes in numeric order, each named as first written (`1` and `1.0` are
        // one class).
        let mut first: BTreeMap<OrderedF64, &str> = BTreeMap::new();
        for (row, &v) in raw.rows.iter().zip(&numbers) {
            first.entry(OrderedF64(v)).or_insert(row[col].as_str());
        }
        first.into_values().map(str::to_string).collect()
    } else {
        let mut names: Vec<String> = raw.rows.iter().map(|r| r[col].clone()).collect();
        names.sort();
        names.dedup();
        names
    };
    if class_names.len() < 2 {
        bail!(
            "{}: the target column `{name}` has one class only ({:?}); a classifier needs at \
             least two: check the target column (--target) or add rows of other classes",
            raw.path.display(),
            class_names[0]
        );
    }
    let targets = map_classes(raw, col, &class_names)?;
    let decision = Decision {
        task,
        class_names,
        reason,
    };
    Ok((decision, targets))
}

/// Reads column `col` of `raw` as targets of a known task (a test file, rows to
/// evaluate): a class must be one of `class_names`, a value a number.
pub(crate) fn read_known(
    raw: &RawTable,
    col: usize,
    task: Task,
    class_names: &[String],
) -> Result<TableTargets> {
    match task {
        Task::Classification => map_classes(raw, col, class_names),
        Task::Regression => {
            let name = &raw.header[col];
            let mut values = Vec::with_capacity(raw.rows.len());
            for (row, &line) in raw.rows.iter().zip(&raw.lines) {
                match read_number(&row[col]) {
                    Cell::Number(v) => values.push(v as f32),
                    _ => bail!(
                        "{}: line {line}, target column `{name}`: {:?} is not a number (a \
                         missing or non-finite value?); the model is a regression: drop or \
                         fix the row",
                        raw.path.display(),
                        row[col]
                    ),
                }
            }
            Ok(TableTargets::Values(values))
        }
    }
}

/// Column `col` as indices into `class_names`: a cell matches a name as written or, both
/// being numbers, by value.
fn map_classes(raw: &RawTable, col: usize, class_names: &[String]) -> Result<TableTargets> {
    let by_text: HashMap<&str, usize> = class_names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let by_value: HashMap<OrderedF64, usize> = class_names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match read_number(n) {
            Cell::Number(v) => Some((OrderedF64(v), i)),
            _ => None,
        })
        .collect();
    let mut labels = Vec::with_capacity(raw.rows.len());
    for (row, &line) in raw.rows.iter().zip(&raw.lines) {
        let cell = row[col].as_str();
        let found = by_text.get(cell).or_else(|| match read_number(cell) {
            Cell::Number(v) => by_value.get(&OrderedF64(v)),
            _ => None,
        });
        match found {
            Some(&i) => labels.push(i),
            None => bail!(
                "{}: line {line}, target column `{}`: {cell:?} is not one of the {} classes the \
                 model knows ({}); drop the row or retrain with it",
                raw.path.display(),
                raw.header[col],
                class_names.len(),
                super::parse::quoted_list(class_names)
            ),
        }
    }
    Ok(TableTargets::Classes {
        labels,
        class_names: class_names.to_vec(),
    })
}

/// The distinct values of `v`, sorted.
fn distinct_numbers(v: &[f64]) -> Vec<f64> {
    let mut d: Vec<OrderedF64> = v.iter().map(|&x| OrderedF64(x)).collect();
    d.sort();
    d.dedup();
    d.into_iter().map(|x| x.0).collect()
}

/// A finite f64 that sorts and hashes by value (`-0.0` and `0.0` are one value).
#[derive(Clone, Copy, Debug)]
struct OrderedF64(f64);

impl OrderedF64 {
    fn key(self) -> u64 {
        (self.0 + 0.0).to_bits()
    }
}

impl PartialEq for OrderedF64 {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for OrderedF64 {}
impl PartialOrd for OrderedF64 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrderedF64 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0 + 0.0).total_cmp(&(other.0 + 0.0))
    }
}
impl std::hash::Hash for OrderedF64 {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}

//! What a model was trained on, as it travels in the checkpoint's metadata: where the data
//! came from, one sample's input shape, and the task (the class names of a classifier, the
//! target of a regression). `eval` and `predict` rebuild the same model and the same
//! preprocessing from it, with no flags.
//!
//! Keys (all strings): `data.source` (`idx`, `folder` or `table`), `data.input_shape`
//! (`1,28,28`, or `13` for a table of 13 features), `data.task` (`classification` or
//! `regression`), `data.classes` (a JSON array of the class names), `data.target` (a
//! regression's target name), `data.split` (`FRACTION@SEED` when the test split was cut out
//! of the data, empty when the data brought its own). A checkpoint written before these keys
//! existed is a Fashion-MNIST classifier: [`DataInfo::from_metadata`] says so.

use crate::checkpoint::Metadata;
use anyhow::{bail, Context, Result};

/// Where the training data came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// IDX files in the MNIST layout (Fashion-MNIST, MNIST).
    Idx,
    /// A folder of images in torchvision's `ImageFolder` layout.
    Folder,
    /// A CSV table.
    Table,
}

impl SourceKind {
    /// The metadata spelling: `idx`, `folder`, `table`.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Idx => "idx",
            SourceKind::Folder => "folder",
            SourceKind::Table => "table",
        }
    }
}

/// What a model predicts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Task {
    /// One of these classes, in label order.
    Classification {
        /// The class names, in label order.
        class_names: Vec<String>,
    },
    /// A number.
    Regression {
        /// The target's name (the CSV column).
        target: String,
    },
}

impl Task {
    /// The model's number of outputs: the classes, or 1 for a regression.
    pub fn outputs(&self) -> usize {
        match self {
            Task::Classification { class_names } => class_names.len(),
            Task::Regression { .. } => 1,
        }
    }
}

/// The description of a model's training data stored with its weights.
#[derive(Clone, Debug, PartialEq)]
pub struct DataInfo {
    /// Where the data came from.
    pub source: SourceKind,
    /// One sample's input: `[C, H, W]` for images, `[F]` for a table of `F` features.
    pub input_shape: Vec<usize>,
    /// What the model predicts.
    pub task: Task,
    /// The held-out fraction and seed when the test split was cut from the data.
    pub split: Option<(f64, u64)>,
}

/// The metadata keys.
const SOURCE: &str = "data.source";
const INPUT_SHAPE: &str = "data.input_shape";
const TASK: &str = "data.task";
const CLASSES: &str = "data.classes";
const TARGET: &str = "data.target";
const SPLIT: &str = "data.split";

impl DataInfo {
    /// The Fashion-MNIST classifier's description (1 x 28 x 28 images, its ten classes).
    pub fn fashion_mnist() -> DataInfo {
        DataInfo {
            source: SourceKind::Idx,
            input_shape: vec![1, 28, 28],
            task: Task::Classification {
                class_names: super::DatasetKind::FashionMnist.class_names(),
            },
            split: None,
        }
    }

    /// The class names of a classifier, `None` for a regression.
    pub fn class_names(&self) -> Option<&[String]> {
        match &self.task {
            Task::Classification { class_names } => Some(class_names),
            Task::Regression { .. } => None,
        }
    }

    /// The metadata entries.
    pub fn to_metadata(&self) -> Vec<(String, String)> {
        let shape: Vec<String> = self.input_shape.iter().map(|d| d.to_string()).collect();
        let mut meta = vec![
            (SOURCE.to_string(), self.source.name().to_string()),
            (INPUT_SHAPE.to_string(), shape.join(",")),
        ];
        match &self.task {
            Task::Classification { class_names } => {
                meta.push((TASK.into(), "classification".into()));
                meta.push((CLASSES.into(), serde_json::json!(class_names).to_string()));
            }
            Task::Regression { target } => {
                meta.push((TASK.into(), "regression".into()));
                meta.push((TARGET.into(), target.clone()));
            }
        }
        let split = self
            .split
            .map_or(String::new(), |(f, s)| format!("{f}@{s}"));
        meta.push((SPLIT.into(), split));
        meta
    }

    /// Reads the description back; a checkpoint without `data.source` (written before the
    /// key existed, or exported from PyTorch) is taken for a Fashion-MNIST classifier.
    /// `source` names the file in errors.
    pub fn from_metadata(meta: &Metadata, source: &str) -> Result<DataInfo> {
        let Some(kind) = meta.get(SOURCE) else {
            return Ok(DataInfo::fashion_mnist());
        };
        let bad = |key: &str, what: &str| {
            format!(
                "{source}: metadata {key} = {:?} is not {what}; the file was not written by \
                 neurite train, or was edited",
                meta.get(key).map(String::as_str).unwrap_or("")
            )
        };
        let get = |key: &str| {
            meta.get(key)
                .map(String::as_str)
                .with_context(|| format!("{source}: metadata has {SOURCE} but no {key}"))
        };
        let source_kind = match kind.as_str() {
            "idx" => SourceKind::Idx,
            "folder" => SourceKind::Folder,
            "table" => SourceKind::Table,
            _ => bail!(bad(SOURCE, "idx, folder or table")),
        };
        let input_shape: Vec<usize> = get(INPUT_SHAPE)?
            .split(',')
            .map(|d| d.trim().parse::<usize>().ok().filter(|&d| d > 0))
            .collect::<Option<_>>()
            .with_context(|| bad(INPUT_SHAPE, "a list of positive sizes"))?;
        if !matches!(input_shape.len(), 1 | 3) {
            bail!(bad(INPUT_SHAPE, "[C, H, W] or [F]"));
        }
        let task = match get(TASK)? {
            "classification" => {
                let class_names: Vec<String> = serde_json::from_str(get(CLASSES)?)
                    .with_context(|| bad(CLASSES, "a JSON list of class names"))?;
                if class_names.len() < 2 {
                    bail!(bad(CLASSES, "a list of two or more classes"));
                }
                Task::Classification { class_names }
            }
            "regression" => Task::Regression {
                target: get(TARGET)?.to_string(),
            },
            _ => bail!(bad(TASK, "classification or regression")),
        };
        let split = match meta.get(SPLIT).map(String::as_str).unwrap_or("") {
            "" => None,
            s => {
                let parsed = s
                    .split_once('@')
                    .and_then(|(f, seed)| Some((f.parse::<f64>().ok()?, seed.parse().ok()?)));
                Some(parsed.with_context(|| bad(SPLIT, "FRACTION@SEED"))?)
            }
        };
        Ok(DataInfo {
            source: source_kind,
            input_shape,
            task,
            split,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: Vec<(String, String)>) -> Metadata {
        entries.into_iter().collect()
    }

    #[test]
    fn round_trips_both_tasks() {
        for info in [
            DataInfo {
                source: SourceKind::Folder,
                input_shape: vec![3, 32, 32],
                task: Task::Classification {
                    class_names: vec!["cat".into(), "dog \"x\"".into()],
                },
                split: Some((0.2, 7)),
            },
            DataInfo {
                source: SourceKind::Table,
                input_shape: vec![10],
                task: Task::Regression {
                    target: "price".into(),
                },
                split: None,
            },
        ] {
            let back = DataInfo::from_metadata(&map(info.to_metadata()), "f").unwrap();
            assert_eq!(back, info);
        }
    }

    #[test]
    fn old_checkpoints_are_fashion_mnist_and_bad_values_are_named() {
        let old = DataInfo::from_metadata(&Metadata::new(), "f").unwrap();
        assert_eq!(old.input_shape, vec![1, 28, 28]);
        assert_eq!(old.task.outputs(), 10);
        let mut meta = map(DataInfo::fashion_mnist().to_metadata());
        meta.insert(INPUT_SHAPE.into(), "1,x,28".into());
        let e = DataInfo::from_metadata(&meta, "w.safetensors").unwrap_err();
        assert!(
            e.to_string()
                .contains("w.safetensors: metadata data.input_shape"),
            "{e}"
        );
        let mut meta = map(DataInfo::fashion_mnist().to_metadata());
        meta.insert(CLASSES.into(), "[\"one\"]".into());
        assert!(DataInfo::from_metadata(&meta, "f").is_err());
        meta.remove(CLASSES);
        let e = DataInfo::from_metadata(&meta, "f").unwrap_err();
        assert!(e.to_string().contains("no data.classes"), "{e}");
    }
}

//! `--data` of `train`, `eval` and `predict`: what a path holds (MNIST-layout IDX files, a
//! folder of images in torchvision's `ImageFolder` layout, or a CSV table), read into what
//! the training loop takes, with the description (`data::DataInfo`) that travels in the
//! checkpoint so that `eval` and `predict` read new data the same way with no flags.

use crate::data::folder::{load_folder, FolderData, FolderOptions, FolderSplit};
use crate::data::table::{TableData, TableOptions, TableSchema, TableTargets, TaskChoice};
use crate::data::{find_data_dir, mnist, DataInfo, DatasetKind, MnistData, SourceKind, Task};
use crate::train::TrainData;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The data flags of `neurite train` (and the reading flags `eval` shares).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DataFlags {
    /// The data: a Fashion-MNIST/MNIST directory of IDX files (default: $NEURITE_DATA, the
    /// cache, /usr/share/datasets), a folder of images in class sub-folders
    /// (`DIR/<class>/<image>.png|jpg`, optionally under `train/` and `test/` or `val/`), or a
    /// CSV table (with --target).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// A table's target column (name, or 0-based index).
    #[arg(long)]
    pub target: Option<String>,
    /// A table's task: auto (text or few integer values: classification; other numbers:
    /// regression), classification or regression.
    #[arg(long, default_value = "auto")]
    pub task: String,
    /// A table's columns to leave out (comma list), such as an id.
    #[arg(long, value_delimiter = ',')]
    pub drop: Vec<String>,
    /// A table's test rows from this CSV (same columns) instead of a split.
    #[arg(long)]
    pub test_data: Option<PathBuf>,
    /// The share of a folder's images or a table's rows held out for testing when the data
    /// brings no test part (stratified by class, seeded by --seed).
    #[arg(long, default_value_t = 0.2)]
    pub test_split: f64,
    /// The image size of a folder: N (N x N) or HxW (default: the images' size when they
    /// share one, else the most common size).
    #[arg(long)]
    pub image_size: Option<String>,
    /// A folder's image channels: 1 (gray) or 3 (RGB) (default: 3 if any image is in colour).
    #[arg(long)]
    pub channels: Option<usize>,
}

/// What `--data` names.
#[derive(Clone, Debug, PartialEq)]
pub enum DataPath {
    /// A directory of IDX files in the MNIST layout.
    Idx(PathBuf),
    /// A folder of images in class sub-folders.
    Folder(PathBuf),
    /// A CSV file.
    Table(PathBuf),
}

/// Decides what `path` holds: no path is the Fashion-MNIST directory found as before; a
/// file is a table; a directory with the MNIST IDX files is those, any other directory an
/// image folder.
pub fn resolve(path: Option<&Path>) -> Result<DataPath> {
    let Some(path) = path else {
        return Ok(DataPath::Idx(find_data_dir(None)?));
    };
    if path.is_file() {
        return Ok(DataPath::Table(path.to_path_buf()));
    }
    if path.is_dir() {
        if mnist::find_file(path, mnist::MNIST_FILES[0]).is_some() {
            return Ok(DataPath::Idx(path.to_path_buf()));
        }
        return Ok(DataPath::Folder(path.to_path_buf()));
    }
    bail!(
        "--data {}: no such file or directory; give a Fashion-MNIST directory, a folder of \
         images in class sub-folders, or a CSV file",
        path.display()
    )
}

/// Parses `--image-size`: `N` or `HxW`.
pub fn parse_image_size(s: &str) -> Result<[usize; 2]> {
    let parse = |v: &str| {
        v.trim()
            .parse::<usize>()
            .ok()
            .filter(|&v| (1..=4096).contains(&v))
    };
    let size = match s.split_once(['x', 'X']) {
        Some((h, w)) => parse(h).zip(parse(w)).map(|(h, w)| [h, w]),
        None => parse(s).map(|n| [n, n]),
    };
    size.with_context(|| {
        format!("--image-size {s:?}: give N or HxW with sides from 1 to 4096, such as 28 or 32x48")
    })
}

/// The data read for a run, its description for the checkpoint, and which samples went to
/// which part (written as `split.json` beside the run's files).
pub struct Loaded {
    /// What the loop trains on (its metadata holds `info` and a table's schema).
    pub data: TrainData,
    /// The description stored with the weights.
    pub info: DataInfo,
    /// A line saying what was read, for the terminal.
    pub description: String,
    /// The training and test samples (image files relative to the folder, or table rows),
    /// when the test part was cut out of the data.
    pub split: Option<serde_json::Value>,
}

/// Reads `--data` for training, with the flags' choices and `seed` for any split.
pub fn load_for_training(flags: &DataFlags, seed: u64) -> Result<Loaded> {
    crate::data::split::check_fraction(flags.test_split)?;
    let path = resolve(flags.data.as_deref())?;
    if !matches!(path, DataPath::Table(_)) {
        for (flag, given) in [
            ("--target", flags.target.is_some()),
            ("--drop", !flags.drop.is_empty()),
            ("--test-data", flags.test_data.is_some()),
            ("--task", flags.task != "auto"),
        ] {
            if given {
                bail!("{flag} applies to a CSV table, but --data is a directory");
            }
        }
    }
    if !matches!(path, DataPath::Folder(_)) {
        for (flag, given) in [
            ("--image-size", flags.image_size.is_some()),
            ("--channels", flags.channels.is_some()),
        ] {
            if given {
                bail!("{flag} applies to a folder of images (its images are resized to it)");
            }
        }
    }
    match path {
        DataPath::Idx(dir) => {
            let data = MnistData::load(&dir, DatasetKind::FashionMnist)?;
            super::check_splits(&dir, Some(&data.train), Some(&data.test))?;
            let info = DataInfo::fashion_mnist();
            let description = format!(
                "{}: {} training and {} test images of Fashion-MNIST",
                dir.display(),
                data.train.n,
                data.test.n
            );
            let data = TrainData::from(data).with_metadata(info.to_metadata());
            Ok(Loaded {
                data,
                info,
                description,
                split: None,
            })
        }
        DataPath::Folder(root) => {
            let opts = folder_options(flags, seed)?;
            let folder = load_folder(&root, &opts)?;
            folder_for_training(folder, &root)
        }
        DataPath::Table(file) => {
            let Some(target) = &flags.target else {
                bail!(
                    "--data {} is a table: give the column to predict with --target COLUMN",
                    file.display()
                );
            };
            let task: TaskChoice = flags.task.parse().context("--task")?;
            let drop: Vec<&str> = flags.drop.iter().map(String::as_str).collect();
            let mut options = TableOptions::new(target).drop(&drop).task(task);
            options = match &flags.test_data {
                Some(test) => options.test_file(test),
                None => options.split(flags.test_split, seed),
            };
            let table = TableData::read(&file, &options)?;
            table_for_training(
                table,
                flags
                    .test_data
                    .is_none()
                    .then_some((flags.test_split, seed)),
            )
        }
    }
}

/// The folder options of the flags.
fn folder_options(flags: &DataFlags, seed: u64) -> Result<FolderOptions> {
    if let Some(c) = flags.channels {
        if c != 1 && c != 3 {
            bail!("--channels {c}: give 1 (gray) or 3 (RGB)");
        }
    }
    Ok(FolderOptions {
        channels: flags.channels,
        size: flags
            .image_size
            .as_deref()
            .map(parse_image_size)
            .transpose()?,
        test_fraction: flags.test_split,
        seed,
        ..FolderOptions::default()
    })
}

/// A folder as training data.
fn folder_for_training(folder: FolderData, root: &Path) -> Result<Loaded> {
    let d = &folder.description;
    let [c, h, w] = d.shape;
    let info = DataInfo {
        source: SourceKind::Folder,
        input_shape: vec![c, h, w],
        task: Task::Classification {
            class_names: d.class_names.clone(),
        },
        split: match d.split {
            crate::data::folder::SplitSource::Fraction { fraction, seed } => Some((fraction, seed)),
            crate::data::folder::SplitSource::Folder(_) => None,
        },
    };
    let description = d.to_string();
    let split = None; // TODO: file lists
    let class_names = d.class_names.clone();
    let data = match (folder.train, folder.test) {
        (FolderSplit::Memory(train), FolderSplit::Memory(test)) => TrainData::images(train, test)?,
        (train, test) => TrainData::image_source(Arc::new(train), Arc::new(test), class_names)?,
    };
    let _ = root;
    Ok(Loaded {
        data: data.with_metadata(info.to_metadata()),
        info,
        description,
        split,
    })
}

/// A table as training data.
fn table_for_training(table: TableData, split: Option<(f64, u64)>) -> Result<Loaded> {
    let schema = &table.schema;
    let task = match &table.train_y {
        TableTargets::Classes { class_names, .. } => Task::Classification {
            class_names: class_names.clone(),
        },
        TableTargets::Values(_) => Task::Regression {
            target: schema.target.clone(),
        },
    };
    let info = DataInfo {
        source: SourceKind::Table,
        input_shape: vec![schema.num_features()],
        task,
        split,
    };
    let mut metadata = info.to_metadata();
    metadata.extend(schema.to_metadata());
    // A regression learns the standardized target (mean 0, std 1 on the training rows), so
    // that the output layer starts at the right scale whatever the target's units; the loop
    // reports RMSE and MAE back in those units, and predict maps outputs back.
    let (mut train_y, mut test_y) = (table.train_y.clone(), table.test_y.clone());
    let mut scale = None;
    if let (TableTargets::Values(train), TableTargets::Values(test)) = (&mut train_y, &mut test_y) {
        let (mean, std) = target_statistics(train);
        for v in train.iter_mut().chain(test.iter_mut()) {
            *v = ((*v as f64 - mean) / std) as f32;
        }
        metadata.push((TARGET_MEAN.into(), mean.to_string()));
        metadata.push((TARGET_STD.into(), std.to_string()));
        scale = Some(std as f32);
    }
    let split_json = table.split.as_ref().map(|s| {
        serde_json::json!({"rows": "0-based data rows, header excluded", "train": s.train, "test": s.test})
    });
    let mut data = TrainData::table(table.train_tensor(), train_y, table.test_tensor(), test_y)?
        .with_metadata(metadata);
    if let Some(std) = scale {
        data = data.with_target_scale(std);
    }
    Ok(Loaded {
        data,
        info,
        description: table.description.clone(),
        split: split_json,
    })
}

/// Metadata key: the mean of a regression's training targets.
pub const TARGET_MEAN: &str = "table.target_mean";
/// Metadata key: their (population) standard deviation, 1 for a constant target.
pub const TARGET_STD: &str = "table.target_std";

/// The mean and population standard deviation of `values` (std 1 when they are constant).
fn target_statistics(values: &[f32]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = values
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    let std = var.sqrt();
    (
        mean,
        if std > 0.0 && std.is_finite() {
            std
        } else {
            1.0
        },
    )
}

/// A regression model's target statistics from its metadata: outputs times std plus mean
/// are in the target's units. `(0, 1)` when absent.
pub fn target_statistics_of(
    meta: &crate::checkpoint::Metadata,
    source: &str,
) -> Result<(f64, f64)> {
    let get = |key: &str, default: f64| -> Result<f64> {
        match meta.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .with_context(|| format!("{source}: metadata {key} = {v:?} is not a number")),
        }
    };
    Ok((get(TARGET_MEAN, 0.0)?, get(TARGET_STD, 1.0)?))
}

/// A table model's schema from its checkpoint metadata.
pub fn table_schema(meta: &crate::checkpoint::Metadata, source: &str) -> Result<TableSchema> {
    TableSchema::from_metadata(meta).with_context(|| format!("in {source}"))
}

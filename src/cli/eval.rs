//! `neurite eval MODEL --weights PATH`: test accuracy and loss (a regression: RMSE and MAE)
//! of saved weights, on the test part of the data the weights were trained on.
//!
//! The checkpoint says what that was (`data::DataInfo`): Fashion-MNIST (the default data
//! directory, or `--data`), an image folder or a CSV table (`--data` names it). The images
//! are prepared, or the rows standardized, exactly as in training, and the test part is the
//! same: a folder's `test/` (or `val/`) images, or the rows and images held out by the same
//! seeded split; a table trained with a separate test file is evaluated on every row of the
//! file given.

use crate::checkpoint::Checkpoint;
use crate::data::{split_indices, DataInfo, SourceKind, TableTargets};
use crate::data::{DatasetKind, MnistData, Normalization};
use crate::nn::{Module, ModuleExt};
use crate::train::{
    evaluate_dataset_with, load_weights, Evaluation, TestTimeAugment, TrainData, EVAL_BATCH,
};
use crate::validate::check_finite_tensors;
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model: mlp, lenet5, resnet20 or vit.
    model: String,
    /// The weights (safetensors, from `neurite train` or exported from PyTorch).
    #[arg(long)]
    weights: PathBuf,
    /// The data the weights were trained on: the Fashion-MNIST directory (default:
    /// $NEURITE_DATA, the cache, /usr/share/datasets), the image folder, or the CSV table.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Print one JSON object (model, accuracy or rmse and mae, loss) as the last line.
    #[arg(long)]
    json: bool,
    /// Test-time augmentation: none, or flip (the mean of the logits of each image and its
    /// mirror image). Default: what training used (the weights' `tta` metadata), else none.
    #[arg(long, value_name = "none|flip")]
    tta: Option<String>,
}

pub fn run(args: Args) -> Result<i32> {
    let source = args.weights.display().to_string();
    let ck = Checkpoint::load(&args.weights)?;
    let info = DataInfo::from_metadata(&ck.metadata, &source)?;
    let mut model = crate::models::build(&args.model, &info.input_shape, info.task.outputs())?;
    let norm = load_weights(&*model, &args.model, &args.weights)?;
    let state = model.state_dict();
    check_finite_tensors(state.iter().map(|(n, t)| (n.as_str(), t)), &source)?;
    let tta = match (&args.tta, ck.metadata.get("tta")) {
        (Some(flag), _) => flag.parse().context("--tta")?,
        (None, Some(saved)) => saved
            .parse()
            .with_context(|| format!("{source}: metadata tta"))?,
        (None, None) => TestTimeAugment::None,
    };
    let (e, what) = match info.source {
        SourceKind::Idx => eval_idx(&mut *model, args.data.as_deref(), norm, &source, tta)?,
        SourceKind::Folder => {
            let root = data_flag(&args.data, "an image folder", &source)?;
            eval_folder(&mut *model, root, &info, norm, &source, tta)?
        }
        SourceKind::Table => {
            if tta != TestTimeAugment::None {
                bail!("--tta {tta}: {source} was trained on a table, whose rows have no mirror image; use --tta none");
            }
            let file = data_flag(&args.data, "a CSV table", &source)?;
            eval_table(&mut *model, file, &info, &ck, &source)?
        }
    };
    if !e.loss.is_finite() {
        bail!(
            "the test loss of {source} is {}: its weights are finite but overflow (a diverged \
             run?); use a checkpoint from before the divergence or train again",
            e.loss
        );
    }
    let mut summary = json!({"model": args.model, "loss": e.loss, "samples": what.0});
    let quality = match (e.rmse, e.mae) {
        (Some(rmse), Some(mae)) => {
            summary["rmse"] = json!(rmse);
            summary["mae"] = json!(mae);
            format!("RMSE {rmse:.4}, MAE {mae:.4}, loss (MSE) {:.4}", e.loss)
        }
        _ => {
            summary["accuracy"] = json!(e.accuracy);
            format!("accuracy {:.2}%, loss {:.4}", 100.0 * e.accuracy, e.loss)
        }
    };
    if args.json {
        // `images` kept for the Fashion-MNIST callers of earlier versions.
        summary["images"] = json!(what.0);
        println!("{summary}");
    } else {
        println!("{} on {} {}: {quality}", args.model, what.0, what.1);
    }
    Ok(0)
}

/// `--data`, which a folder or table model needs.
fn data_flag<'a>(data: &'a Option<PathBuf>, what: &str, source: &str) -> Result<&'a Path> {
    data.as_deref().with_context(|| {
        format!(
            "{source} was trained on {what}: give that data with --data (its test part is \
             evaluated)"
        )
    })
}

/// Fashion-MNIST's test images.
fn eval_idx(
    model: &mut dyn Module,
    data: Option<&Path>,
    norm: Option<Normalization>,
    source: &str,
    tta: TestTimeAugment,
) -> Result<(Evaluation, (usize, &'static str))> {
    let dir = crate::data::find_data_dir(data)?;
    let data = MnistData::load(&dir, DatasetKind::FashionMnist)?;
    super::check_splits(&dir, None, Some(&data.test))?;
    // The checkpoint's normalization, else (PyTorch exports) the training set's.
    let norm = match norm {
        Some(norm) => {
            norm.check_channels(data.test.channels)
                .with_context(|| format!("in {source}"))?;
            norm
        }
        None => {
            super::check_splits(&dir, Some(&data.train), None)?;
            Normalization::from_dataset(&data.train)
        }
    };
    let n = data.test.n;
    let samples = crate::data::ImageSamples::new(Arc::new(data.test), norm);
    let e = evaluate_dataset_with(model, &samples, EVAL_BATCH, tta)?;
    Ok((e, (n, "test images")))
}

/// The test part of an image folder, prepared as in training.
fn eval_folder(
    model: &mut dyn Module,
    root: &Path,
    info: &DataInfo,
    norm: Option<Normalization>,
    source: &str,
    tta: TestTimeAugment,
) -> Result<(Evaluation, (usize, &'static str))> {
    let &[c, h, w] = info.input_shape.as_slice() else {
        bail!("{source}: a folder model's input shape must be [C, H, W]");
    };
    let norm = norm.with_context(|| format!("{source} holds no normalization constants"))?;
    let (fraction, seed) = info.split.unwrap_or((0.2, 0));
    let options = crate::data::FolderOptions {
        channels: Some(c),
        size: Some([h, w]),
        test_fraction: fraction,
        seed,
        ..Default::default()
    };
    let folder = crate::data::load_folder(root, &options)?;
    let names = info.class_names().unwrap_or_default().to_vec();
    if folder.description.class_names != names {
        bail!(
            "{} has classes {:?} but {source} was trained on {names:?}; give the folder it was \
             trained on",
            root.display(),
            folder.description.class_names
        );
    }
    let n = folder.test.len();
    let test = Arc::new(folder.test);
    let data = TrainData::image_source(test.clone(), test, names)?;
    let set = data.test_set(Some(&norm))?;
    Ok((
        evaluate_dataset_with(model, &*set, EVAL_BATCH, tta)?,
        (n, "test images"),
    ))
}

/// The held-out rows of a table (every row when training had a separate test file).
fn eval_table(
    model: &mut dyn Module,
    file: &Path,
    info: &DataInfo,
    ck: &Checkpoint,
    source: &str,
) -> Result<(Evaluation, (usize, &'static str))> {
    let schema = super::data::table_schema(&ck.metadata, source)?;
    let rows = schema.read_rows(file)?;
    let Some(targets) = rows.targets else {
        bail!(
            "{} has no column {:?}: evaluation needs the target of every row",
            file.display(),
            schema.target
        );
    };
    let f = schema.num_features();
    let (keep, what) = match info.split {
        Some((fraction, seed)) => {
            let labels = match &targets {
                TableTargets::Classes { labels, .. } => Some(labels.as_slice()),
                TableTargets::Values(_) => None,
            };
            let s = split_indices(rows.rows, labels, fraction, seed)
                .with_context(|| format!("{}: cannot split the rows", file.display()))?;
            (s.test, "held-out rows")
        }
        None => ((0..rows.rows).collect(), "rows"),
    };
    let x: Vec<f32> = keep
        .iter()
        .flat_map(|&i| rows.x[i * f..(i + 1) * f].iter().copied())
        .collect();
    let x = crate::Tensor::from_vec(x, &[keep.len(), f]); // [N, F]
    let (mean, std) = super::data::target_statistics_of(&ck.metadata, source)?;
    let y = match targets.select(&keep) {
        TableTargets::Values(v) => TableTargets::Values(
            v.iter()
                .map(|&v| ((v as f64 - mean) / std) as f32)
                .collect(),
        ),
        classes => classes,
    };
    let data = TrainData::table(x.clone(), y.clone(), x, y)?;
    let set = data.test_set(None)?;
    let e = evaluate_dataset_with(model, &*set, EVAL_BATCH, TestTimeAugment::None)?
        .in_target_units(std as f32);
    Ok((e, (keep.len(), what)))
}

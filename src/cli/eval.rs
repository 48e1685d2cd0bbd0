//! `neurite eval MODEL --weights PATH`: test accuracy and loss of saved weights.

use crate::data::{find_data_dir, DatasetKind, MnistData, Normalization};
use crate::nn::ModuleExt;
use crate::train::{evaluate, load_weights, EVAL_BATCH};
use crate::validate::check_finite_tensors;
use anyhow::{Context, Result};
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model: mlp, lenet5 or resnet20.
    model: String,
    /// The weights (safetensors, from `neurite train` or exported from PyTorch).
    #[arg(long)]
    weights: PathBuf,
    /// The Fashion-MNIST directory (default: $NEURITE_DATA, the cache, /usr/share/datasets).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Print one JSON object (model, accuracy, loss) as the last line.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<i32> {
    let dir = find_data_dir(args.data.as_deref())?;
    let data = MnistData::load(&dir, DatasetKind::FashionMnist)?;
    super::check_splits(&dir, None, Some(&data.test))?;
    let classes = data.test.class_names.len();
    let mut model = crate::models::build(
        &args.model,
        &[data.test.channels, data.test.height, data.test.width],
        classes,
    )?;
    let source = args.weights.display().to_string();
    // The checkpoint's normalization, else (PyTorch exports) the training set's.
    let norm = match load_weights(&*model, &args.model, &args.weights)? {
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
    let state = model.state_dict();
    check_finite_tensors(state.iter().map(|(n, t)| (n.as_str(), t)), &source)?;
    let e = evaluate(&mut *model, &data.test, &norm, EVAL_BATCH);
    if !e.loss.is_finite() {
        anyhow::bail!(
            "the test loss of {source} is {}: its weights are finite but overflow (a diverged \
             run?); use a checkpoint from before the divergence or train again",
            e.loss
        );
    }
    if args.json {
        println!(
            "{}",
            json!({"model": args.model, "accuracy": e.accuracy, "loss": e.loss, "images": e.labels.len()})
        );
    } else {
        println!(
            "{} on {} test images: accuracy {:.2}%, loss {:.4}",
            args.model,
            e.labels.len(),
            100.0 * e.accuracy,
            e.loss
        );
    }
    Ok(0)
}

//! `neurite eval MODEL --weights PATH`: test accuracy and loss of saved weights.

use crate::data::{find_data_dir, DatasetKind, MnistData, Normalization};
use crate::train::{evaluate, load_weights, EVAL_BATCH};
use anyhow::Result;
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
    let data = MnistData::load(
        &find_data_dir(args.data.as_deref())?,
        DatasetKind::FashionMnist,
    )?;
    let classes = data.test.class_names.len();
    let mut model = crate::models::build(&args.model, data.test.channels, classes)?;
    // The checkpoint's normalization, else (PyTorch exports) the training set's.
    let norm = load_weights(&*model, &args.model, &args.weights)?
        .unwrap_or_else(|| Normalization::from_dataset(&data.train));
    let e = evaluate(&mut *model, &data.test, &norm, EVAL_BATCH);
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

//! Fine-tunes a LeNet-5 checkpoint exported from PyTorch: loads it strictly into the zoo's
//! `lenet5`, evaluates it, freezes the convolutions, trains the classifier (`fc1`, `fc2`,
//! `fc3`) on a few hundred images it has not seen with a one-cycle schedule, evaluates
//! again and saves the result (which PyTorch loads back with `load_state_dict`).
//!
//! ```text
//! cargo run --release --example finetune -- --weights lenet5.safetensors \
//!     [--images 600] [--epochs 3] [--lr 0.05] [--out finetuned.safetensors] [--data DIR]
//! ```
//!
//! The weights come from PyTorch (`bench/pytorch/models.py`'s `LeNet5` has the same
//! parameter names):
//!
//! ```text
//! python bench/pytorch/examples/export_lenet5.py lenet5.safetensors
//! ```
//!
//! or, without PyTorch, from the command (as `scripts/test.sh` makes them):
//!
//! ```text
//! neurite train lenet5 --limit-train 500 --epochs 1 --out runs/pretrained
//! # --weights runs/pretrained/model.safetensors
//! ```
//!
//! Fashion-MNIST is looked for where `neurite train` looks (`--data`, `$NEURITE_DATA`, the
//! cache, `/usr/share/datasets`). The fine-tuning images are the last ones of the training
//! set, which neither of the commands above trained on.

use anyhow::{bail, Context, Result};
use neurite::checkpoint::Checkpoint;
use neurite::data::Normalization;
use neurite::data::{
    find_data_dir, DataLoader, DatasetKind, ImageDataset, ImageSamples, LoaderConfig, MnistData,
};
use neurite::nn::{Module, ModuleExt};
use neurite::optim::{Optimizer, Schedule, Sgd, SgdConfig};
use neurite::train::{evaluate, EVAL_BATCH};
use std::path::PathBuf;
use std::sync::Arc;

struct Args {
    weights: PathBuf,
    data: Option<PathBuf>,
    images: usize,
    epochs: usize,
    lr: f32,
    out: PathBuf,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        weights: PathBuf::new(),
        data: None,
        images: 600,
        epochs: 3,
        lr: 0.05,
        out: PathBuf::from("finetuned.safetensors"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--weights" => args.weights = value()?.into(),
            "--data" => args.data = Some(value()?.into()),
            "--images" => args.images = value()?.parse().context("--images")?,
            "--epochs" => args.epochs = value()?.parse().context("--epochs")?,
            "--lr" => args.lr = value()?.parse().context("--lr")?,
            "--out" => args.out = value()?.into(),
            _ => bail!("unknown flag {flag}; see the top of examples/finetune.rs"),
        }
    }
    if args.weights.as_os_str().is_empty() {
        bail!("give --weights FILE: a LeNet-5 exported from PyTorch (bench/pytorch/examples/export_lenet5.py) or model.safetensors of `neurite train lenet5`");
    }
    if args.images == 0 || args.epochs == 0 {
        bail!("--images and --epochs must be at least 1");
    }
    Ok(args)
}

/// The last `n` images of `set`.
fn last(set: &ImageDataset, n: usize) -> Result<ImageDataset> {
    let n = n.min(set.n);
    let per_image = set.images.len() / set.n;
    let images = set.images[(set.n - n) * per_image..].to_vec();
    let labels = set.labels[set.n - n..].to_vec();
    let shape = [set.channels, set.height, set.width];
    ImageDataset::new(images, labels, shape, set.class_names.clone())
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let data = MnistData::load(
        &find_data_dir(args.data.as_deref())?,
        DatasetKind::FashionMnist,
    )?;

    // The zoo's LeNet-5, its weights loaded strictly by name (PyTorch's strict=True).
    let mut model = neurite::models::build("lenet5", &neurite::models::MNIST_INPUT, 10)?;
    let ck = Checkpoint::load(&args.weights)?;
    model
        .load_state_dict(&ck.tensors)
        .with_context(|| format!("loading {}", args.weights.display()))?;
    // The normalization the weights were trained with, else the training set's.
    let norm = Normalization::from_metadata_map(&ck.metadata)?
        .unwrap_or_else(|| Normalization::from_dataset(&data.train));
    let before = evaluate(&mut *model, &data.test, &norm, EVAL_BATCH);
    println!(
        "loaded {}: test accuracy {:.2}%, loss {:.4}",
        args.weights.display(),
        100.0 * before.accuracy,
        before.loss
    );

    // Freeze the convolutions; only the classifier goes to the optimizer.
    let mut trained = Vec::new();
    for (name, p) in model.named_parameters() {
        if name.starts_with("conv") {
            p.set_requires_grad(false);
        } else {
            trained.push((name, p));
        }
    }
    // conv1.weight, to check that it stays as it is.
    let conv1 = |m: &dyn Module| {
        m.state_dict()
            .into_iter()
            .find(|(n, _)| n == "conv1.weight")
            .map(|(_, t)| t.to_vec())
    };
    let frozen = conv1(&*model);
    let set = Arc::new(last(&data.train, args.images)?);
    let loader = DataLoader::new(
        Arc::new(ImageSamples::new(set, norm.clone())),
        LoaderConfig {
            batch_size: 64,
            ..Default::default()
        },
    );
    let steps = args.epochs * loader.num_batches();
    let config = SgdConfig {
        lr: args.lr,
        momentum: 0.9,
        weight_decay: 5e-4,
        ..Default::default()
    };
    let mut opt = Sgd::new(trained, config)
        // No weight decay for biases (PyTorch's second parameter group).
        .with_decay_mask(|_, shape| shape.len() >= 2)
        .with_schedule(Schedule::one_cycle(args.lr, steps));
    println!(
        "fine-tuning {} on {} images, {} epochs ({steps} steps), one-cycle to lr {}",
        opt.param_names().join(", "),
        args.images.min(data.train.n),
        args.epochs,
        args.lr
    );
    for epoch in 0..args.epochs {
        model.set_training(true);
        let (mut loss_sum, mut n) = (0.0, 0);
        for batch in loader.epoch(epoch as u64) {
            let batch = batch?;
            let x = batch.input(); // [B, 1, 28, 28]
            let loss = model.forward(x).cross_entropy(batch.labels());
            opt.zero_grad();
            loss.backward()?;
            if let Some(name) = opt.step().first_non_finite {
                bail!("the update left non-finite values in {name}; try a lower --lr");
            }
            loss_sum += loss.item() * batch.len() as f32;
            n += batch.len();
        }
        println!(
            "epoch {}: train loss {:.4}, lr now {:.2e}",
            epoch + 1,
            loss_sum / n as f32,
            opt.lr()
        );
    }
    assert_eq!(conv1(&*model), frozen, "a frozen weight moved");

    let after = evaluate(&mut *model, &data.test, &norm, EVAL_BATCH);
    println!(
        "fine-tuned: test accuracy {:.2}% (was {:.2}%), loss {:.4}",
        100.0 * after.accuracy,
        100.0 * before.accuracy,
        after.loss
    );
    let mut out = Checkpoint::new(model.state_dict());
    out.metadata.insert("model".into(), "lenet5".into());
    out.metadata.extend(norm.to_metadata());
    out.save(&args.out)?;
    println!("saved {}", args.out.display());
    Ok(())
}

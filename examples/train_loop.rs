//! A training loop written by hand over the library: LeNet-5 from the zoo on Fashion-MNIST
//! with SGD and cross-entropy, the recipe of `neurite train lenet5` (batch 128, lr 0.05,
//! momentum 0.9, weight decay 5e-4, horizontal flips; a constant learning rate here),
//! printing the loss, the accuracies and the training speed of each epoch.
//!
//! `cargo run --release --example train_loop -- [--epochs N] [--limit N]` (`--limit`: the
//! first N training images). Nothing here sets up threads: the library does on first use.

use neurite::data::{
    eval_batches, find_data_dir, DataLoader, DatasetKind, ImageSamples, LoaderConfig, MnistData,
    Normalization,
};
use neurite::models::lenet5;
use neurite::nn::{Module, ModuleExt};
use neurite::optim::{Optimizer, Sgd, SgdConfig};
use neurite::{no_grad, Tensor};
use std::sync::Arc;
use std::time::Instant;

fn main() -> neurite::Result<()> {
    let (epochs, limit) = parse_args()?;
    neurite::manual_seed(0);
    let data = MnistData::load(&find_data_dir(None)?, DatasetKind::FashionMnist)?;
    let train = match limit {
        Some(n) => data.train.clone().limit(n.min(data.train.n)),
        None => data.train.clone(),
    };
    let norm = Normalization::from_dataset(&train);
    // Pixels to [0, 1], flipped at random in training, normalized: the samples the model sees.
    let train = ImageSamples::new(Arc::new(train), norm.clone()).with_augment("flip".parse()?);
    let loader = DataLoader::new(
        Arc::new(train),
        LoaderConfig {
            batch_size: 128,
            ..Default::default()
        },
    );
    let test = ImageSamples::new(Arc::new(data.test), norm);
    let mut model = lenet5(1, 10);
    let mut opt = Sgd::new(
        model.named_parameters(),
        SgdConfig {
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 5e-4,
            ..Default::default()
        },
    );

    for epoch in 0..epochs {
        model.set_training(true);
        let started = Instant::now();
        let (mut seen, mut loss_sum, mut correct) = (0usize, 0.0f64, 0usize);
        for batch in loader.epoch(epoch as u64) {
            let batch = batch?;
            let labels = batch.labels().to_usize_vec(); // [B]
            let logits = model.forward(batch.input()); // [B, 1, 28, 28] -> [B, 10]
            let loss = logits.cross_entropy(&labels);
            opt.zero_grad();
            loss.backward()?;
            opt.step();

            let b = batch.len();
            loss_sum += loss.item() as f64 * b as f64;
            correct += count_correct(&logits, &labels);
            seen += b;
        }
        let images_per_second = seen as f64 / started.elapsed().as_secs_f64();

        model.set_training(false);
        let (mut test_seen, mut test_correct) = (0usize, 0usize);
        no_grad(|| -> neurite::Result<()> {
            for batch in eval_batches(&test, 1000) {
                let batch = batch?;
                let logits = model.forward(batch.input());
                test_correct += count_correct(&logits, &batch.labels().to_usize_vec());
                test_seen += batch.len();
            }
            Ok(())
        })?;
        println!(
            "epoch {}/{epochs}  train loss {:.4} acc {:.2}%  test acc {:.2}%  {:.0} images/s",
            epoch + 1,
            loss_sum / seen as f64,
            100.0 * correct as f64 / seen as f64,
            100.0 * test_correct as f64 / test_seen as f64,
            images_per_second
        );
    }
    Ok(())
}

/// How many rows of `logits` (`[B, classes]`) have their largest value at the label.
fn count_correct(logits: &Tensor, labels: &[usize]) -> usize {
    let predicted = logits.argmax(1);
    let predicted = predicted.to_usize_vec();
    predicted.iter().zip(labels).filter(|(p, l)| p == l).count()
}

/// `--epochs N` (default 1) and `--limit N` (default: every training image).
fn parse_args() -> neurite::Result<(usize, Option<usize>)> {
    let (mut epochs, mut limit) = (1, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = |name: &str| -> neurite::Result<usize> {
            let v = args
                .next()
                .ok_or_else(|| neurite::Error::msg(format!("{name} needs a number")))?;
            v.parse()
                .map_err(|_| neurite::Error::msg(format!("{name}: `{v}` is not a number")))
        };
        match flag.as_str() {
            "--epochs" => epochs = value("--epochs")?,
            "--limit" => limit = Some(value("--limit")?),
            other => {
                return Err(neurite::Error::msg(format!(
                    "unknown argument `{other}`; usage: train_loop [--epochs N] [--limit N]"
                )))
            }
        }
    }
    Ok((epochs, limit))
}

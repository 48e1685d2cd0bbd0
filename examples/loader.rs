//! Your own data through the library: a `Dataset` written in a few lines (points on two
//! rings, class = ring), batched by a `DataLoader` with two background workers, learned by a
//! small MLP in a hand-written loop; then a table (`y = 3 x0 - 2 x1 + 1`) handed to the
//! training loop as `TrainData::table`, which trains a regression and reports RMSE and MAE.
//!
//! ```text
//! cargo run --release --example loader
//! cargo run --release --example loader -- --samples 400 --epochs 3
//! ```
//!
//! The PyTorch version of this program is `bench/pytorch/examples/loader.py`.

use anyhow::{bail, Context, Result};
use neurite::data::{eval_batches, DataLoader, Dataset, LoaderConfig, Sample, Target};
use neurite::nn::{Linear, Module, ModuleExt, Relu, Sequential};
use neurite::optim::{Adam, AdamConfig, Optimizer};
use neurite::train::{train_model, OptimizerKind, RunOptions, Targets, TrainConfig, TrainData};
use neurite::{no_grad, Tensor};
use std::sync::Arc;

/// A number in `[0, 1)` from `(i, salt)`: samples are computed, not stored.
fn hash01(i: usize, salt: u64) -> f32 {
    let mut z = (i as u64)
        .wrapping_add(salt)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z ^= z >> 31;
    (z >> 40) as f32 / (1u64 << 24) as f32
}

/// Point `i`: on the ring of radius 1 (class 0) or 2 (class 1), at a pseudo-random angle.
struct Rings {
    n: usize,
    salt: u64,
}

impl Dataset for Rings {
    fn len(&self) -> usize {
        self.n
    }
    fn get(&self, i: usize) -> Result<Sample> {
        let class = i % 2;
        let angle = std::f32::consts::TAU * hash01(i, self.salt);
        let r = 1.0 + class as f32 + 0.2 * (hash01(i, self.salt + 1) - 0.5);
        let x = vec![r * angle.cos(), r * angle.sin()]; // [2]
        Ok(Sample::new(x, &[2], Target::Class(class)))
    }
}

/// `--samples N` (training points) and `--epochs N`.
fn settings() -> Result<(usize, usize)> {
    let (mut samples, mut epochs) = (2000, 20);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        let n: usize = value
            .parse()
            .with_context(|| format!("{flag} needs a whole number, got {value:?}"))?;
        match flag.as_str() {
            "--samples" if n >= 10 => samples = n,
            "--epochs" if n >= 1 => epochs = n,
            "--samples" | "--epochs" => bail!("{flag} {n} is too small"),
            _ => bail!("unknown flag {flag}; known: --samples N, --epochs N"),
        }
    }
    Ok((samples, epochs))
}

fn main() -> Result<()> {
    let (samples, epochs) = settings()?;
    neurite::manual_seed(0);

    // 1. A dataset of one's own, a loader with two workers, a loop by hand.
    let train = Arc::new(Rings {
        n: samples,
        salt: 1,
    });
    let test = Rings {
        n: samples / 4,
        salt: 2,
    };
    let config = LoaderConfig {
        batch_size: 32,
        num_workers: 2,
        seed: 0,
        ..LoaderConfig::default()
    };
    let loader = DataLoader::new(train, config);
    let model = Sequential::new()
        .add("fc1", Linear::new(2, 32, true))
        .add("relu", Relu)
        .add("fc2", Linear::new(32, 2, true));
    let mut opt = Adam::new(model.named_parameters(), AdamConfig::adam(0.01));
    for epoch in 0..epochs {
        let (mut loss_sum, mut seen) = (0.0f64, 0usize);
        for batch in loader.epoch(epoch as u64) {
            let batch = batch?;
            let loss = model.forward(batch.input()).cross_entropy(batch.labels()); // [B, 2] vs [B]
            opt.zero_grad();
            loss.backward()?;
            opt.step();
            loss_sum += loss.item() as f64 * batch.len() as f64;
            seen += batch.len();
        }
        if epoch + 1 == epochs || epoch % 5 == 0 {
            println!(
                "rings epoch {}: train loss {:.4}",
                epoch + 1,
                loss_sum / seen as f64
            );
        }
    }
    let (mut correct, mut total) = (0, 0);
    for batch in eval_batches(&test, 256) {
        let batch = batch?;
        let predicted = no_grad(|| model.forward(batch.input()).argmax(1)); // [B]
        correct += predicted.eq(batch.labels()).sum();
        total += batch.len();
    }
    println!(
        "rings test accuracy {:.2}%",
        100.0 * correct as f64 / total as f64
    );

    // 2. A table through the training loop: a regression, scored by RMSE and MAE.
    let table = |n: usize, salt: u64| {
        let x: Vec<f32> = (0..2 * n).map(|i| 2.0 * hash01(i, salt) - 1.0).collect();
        let y: Vec<f32> = x.chunks(2).map(|r| 3.0 * r[0] - 2.0 * r[1] + 1.0).collect();
        (Tensor::from_vec(x, &[n, 2]), Targets::Values(y)) // [N, 2], [N]
    };
    let ((x, y), (tx, ty)) = (table(samples, 3), table(samples / 4, 4));
    let data =
        TrainData::table(x, y, tx, ty)?.with_metadata(vec![("table.target".into(), "y".into())]);
    let config = TrainConfig {
        model: "linear".into(),
        epochs: epochs.min(10),
        batch_size: 32,
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 0.0,
        ..TrainConfig::recipe("mlp", OptimizerKind::Sgd)?
    };
    neurite::manual_seed(config.seed);
    let linear: Box<dyn Module> = Box::new(Linear::new(2, 1, true));
    let out = std::env::temp_dir().join(format!("neurite-loader-example-{}", std::process::id()));
    let opts = RunOptions {
        out: out.clone(),
        overwrite: true,
        ..RunOptions::default()
    };
    let s = train_model(&config, linear, &data, &opts)?;
    println!(
        "table regression after {} epochs: test RMSE {:.4}, MAE {:.4}",
        s.epochs,
        s.rmse.unwrap_or(f32::NAN),
        s.mae.unwrap_or(f32::NAN)
    );
    std::fs::remove_dir_all(&out)?;
    Ok(())
}

//! A CNN of one's own on Fashion-MNIST: a struct with `#[derive(Module)]` and a hand-written
//! `forward`, a hand-written training loop (zero_grad, forward, cross_entropy, backward,
//! optimizer step), test accuracy, a checkpoint saved and loaded back, and fast inference
//! through the inference plan, timed side by side with the zoo's `lenet5` holding the same
//! weights.
//!
//! ```text
//! cargo run --release --example custom_cnn -- --limit-train 2000 --epochs 1
//! cargo run --release --example custom_cnn -- --epochs 3 --rounds 5
//! ```
//!
//! Flags: `--epochs N` (2), `--limit-train N` (all 60,000), `--batch-size N` (128),
//! `--lr X` (0.05), `--seed N` (1), `--rounds N` (5: timed inference passes over the test
//! set per model, medians reported), `--data DIR`, `--out DIR` (where the checkpoint goes;
//! default a temporary directory). PyTorch's version: `bench/pytorch/examples/custom_cnn.py`.

use anyhow::{bail, Context, Result};
use neurite::checkpoint::Checkpoint;
use neurite::data::{
    eval_batches, DataLoader, DatasetKind, ImageSamples, LoaderConfig, MnistData, Normalization,
};
use neurite::nn::{Conv2d, Flatten, Linear, MaxPool2d, Module, ModuleExt, Relu};
use neurite::ops::conv::Conv2dOptions;
use neurite::optim::{Optimizer, Sgd, SgdConfig};
use neurite::{Plan, Tensor};
use std::sync::Arc;
use std::time::Instant;

/// LeNet-5's shape written as one's own module. The field names are the tensors' names
/// (`conv1.weight`, …); `lower(...)` tells the inference planner the order `forward` applies
/// the layers in, so that `Plan::of` fuses them (convolution + ReLU, linear + ReLU).
#[derive(Module)]
#[module(lower = "conv1, relu, pool, conv2, relu, pool, flatten, fc1, relu, fc2, relu, fc3")]
struct Cnn {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    relu: Relu,
    flatten: Flatten,
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
}

impl Cnn {
    fn new(classes: usize) -> Cnn {
        Cnn {
            conv1: Conv2d::new(1, 6, 5, Conv2dOptions::with(1, 2), true),
            conv2: Conv2d::new(6, 16, 5, Conv2dOptions::default(), true),
            pool: MaxPool2d::new(2),
            relu: Relu,
            flatten: Flatten,
            fc1: Linear::new(16 * 5 * 5, 120, true),
            fc2: Linear::new(120, 84, true),
            fc3: Linear::new(84, classes, true),
        }
    }
}

impl Module for Cnn {
    fn forward(&self, x: &Tensor) -> Tensor {
        let x = self
            .pool
            .forward(&self.relu.forward(&self.conv1.forward(x))); // [N, 6, 14, 14]
        let x = self
            .pool
            .forward(&self.relu.forward(&self.conv2.forward(&x))); // [N, 16, 5, 5]
        let x = self.flatten.forward(&x); // [N, 400]
        let x = self.relu.forward(&self.fc1.forward(&x)); // [N, 120]
        let x = self.relu.forward(&self.fc2.forward(&x)); // [N, 84]
        self.fc3.forward(&x) // [N, classes]
    }
}

struct Args {
    epochs: usize,
    limit_train: Option<usize>,
    batch_size: usize,
    lr: f32,
    seed: u64,
    rounds: usize,
    data: Option<std::path::PathBuf>,
    out: Option<std::path::PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        epochs: 2,
        limit_train: None,
        batch_size: 128,
        lr: 0.05,
        seed: 1,
        rounds: 5,
        data: None,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        let bad = || format!("{flag} {value}: not a valid value");
        match flag.as_str() {
            "--epochs" => a.epochs = value.parse().with_context(bad)?,
            "--limit-train" => a.limit_train = Some(value.parse().with_context(bad)?),
            "--batch-size" => a.batch_size = value.parse().with_context(bad)?,
            "--lr" => a.lr = value.parse().with_context(bad)?,
            "--seed" => a.seed = value.parse().with_context(bad)?,
            "--rounds" => a.rounds = value.parse().with_context(bad)?,
            "--data" => a.data = Some(value.into()),
            "--out" => a.out = Some(value.into()),
            _ => bail!("unknown flag {flag}; see the comment at the top of examples/custom_cnn.rs"),
        }
    }
    if a.batch_size == 0 || a.rounds == 0 {
        bail!("--batch-size and --rounds must be at least 1");
    }
    Ok(a)
}

/// The test set's accuracy under `plan`, over prepared batches.
fn accuracy(plan: &Plan, batches: &[(Tensor, Vec<usize>)]) -> f64 {
    let (mut correct, mut n) = (0, 0);
    for (x, labels) in batches {
        let predicted = plan.forward(x).argmax(1); // [B]
        let predicted = predicted.to_usize_vec();
        correct += predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
        n += labels.len();
    }
    correct as f64 / n as f64
}

/// Images per second of one pass of `plan` over the batches.
fn images_per_second(plan: &Plan, batches: &[(Tensor, Vec<usize>)]) -> f64 {
    let started = Instant::now();
    let n: usize = batches.iter().map(|(x, _)| plan.forward(x).dim(0)).sum();
    n as f64 / started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn run(args: Args) -> Result<()> {
    let dir = neurite::data::find_data_dir(args.data.as_deref())?;
    let data = MnistData::load(&dir, DatasetKind::FashionMnist)?;
    let classes = data.test.class_names.len();
    // Normalized with the whole training set's statistics, also when training on a part.
    let norm = Normalization::from_dataset(&data.train);
    let mut train = data.train;
    if let Some(n) = args.limit_train {
        train = train.limit(n);
    }
    neurite::manual_seed(args.seed);
    let mut model = Cnn::new(classes);
    println!("{}", model.summary(&[1, 1, 28, 28]));

    let loader = DataLoader::new(
        Arc::new(ImageSamples::new(Arc::new(train), norm.clone())),
        LoaderConfig {
            batch_size: args.batch_size,
            seed: args.seed,
            ..LoaderConfig::default()
        },
    );
    let config = SgdConfig {
        lr: args.lr,
        momentum: 0.9,
        ..SgdConfig::default()
    };
    let mut opt = Sgd::new(model.named_parameters(), config);
    let n_test = data.test.n;
    let test_set = ImageSamples::new(Arc::new(data.test), norm.clone());
    let test: Vec<(Tensor, Vec<usize>)> = eval_batches(&test_set, 1000)
        .map(|b| b.map(|b| (b.input().clone(), b.labels().to_usize_vec()))) // [B, 1, 28, 28], [B]
        .collect::<Result<_>>()?;
    for epoch in 0..args.epochs {
        model.train();
        let started = Instant::now();
        let (mut loss_sum, mut seen) = (0.0f64, 0usize);
        for batch in loader.epoch(epoch as u64) {
            let batch = batch?;
            let x = batch.input(); // [B, 1, 28, 28]
            opt.zero_grad();
            let loss = model.forward(x).cross_entropy(batch.labels());
            loss.backward()?;
            opt.step();
            loss_sum += loss.item() as f64 * batch.len() as f64;
            seen += batch.len();
        }
        model.eval();
        let acc = accuracy(&Plan::of(&model), &test);
        println!(
            "epoch {}/{}: train loss {:.4}, test accuracy {:.2}%, {:.0} img/s",
            epoch + 1,
            args.epochs,
            loss_sum / seen.max(1) as f64,
            100.0 * acc,
            seen as f64 / started.elapsed().as_secs_f64()
        );
    }
    model.eval();

    // The checkpoint, in PyTorch's layout (`conv1.weight`, …), loaded back into a new model.
    let out = args
        .out
        .unwrap_or_else(|| std::env::temp_dir().join("neurite-custom-cnn"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let path = out.join("model.safetensors");
    let mut ck = Checkpoint::new(model.state_dict());
    ck.metadata.extend(norm.to_metadata());
    ck.save(&path)?;
    let mut loaded = Cnn::new(classes);
    loaded.load_state_dict(&Checkpoint::load(&path)?.tensors)?;
    loaded.eval();
    let acc = accuracy(&Plan::of(&loaded), &test);
    println!(
        "checkpoint {}: test accuracy {:.2}% after loading",
        path.display(),
        100.0 * acc
    );

    // The same weights as the zoo's lenet5 (a `Sequential`): both through the plan.
    let mut zoo = neurite::models::build("lenet5", &neurite::models::MNIST_INPUT, classes)?;
    zoo.load_state_dict(&loaded.state_dict())?;
    zoo.eval();
    let (mine, theirs) = (Plan::of(&loaded), Plan::new(&*zoo));
    println!("plan of the custom module: {:?}", mine.describe());
    println!("plan of the zoo's lenet5:  {:?}", theirs.describe());
    let (a, b) = (
        mine.forward(&test[0].0).to_vec(),
        theirs.forward(&test[0].0).to_vec(),
    );
    let diff = a
        .iter()
        .zip(&b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!("largest logit difference on 1000 images: {diff:e}");
    images_per_second(&mine, &test); // warm-up: buffers, packed weights
    images_per_second(&theirs, &test);
    let (mut ours, mut zoos) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        // Alternating which goes first, so that neither always runs on a warmer machine.
        if round % 2 == 0 {
            ours.push(images_per_second(&mine, &test));
            zoos.push(images_per_second(&theirs, &test));
        } else {
            zoos.push(images_per_second(&theirs, &test));
            ours.push(images_per_second(&mine, &test));
        }
    }
    let (ours, zoos) = (median(ours), median(zoos));
    println!(
        "inference on {} test images, batch 1000, median of {}: custom {:.0} img/s, lenet5 {:.0} img/s ({:+.1}%)",
        n_test,
        args.rounds,
        ours,
        zoos,
        100.0 * (ours / zoos - 1.0)
    );
    Ok(())
}

fn main() -> Result<()> {
    let args = parse_args()?;
    // The command's thread set-up: the worker pool, and this program on one of its workers.
    neurite::runtime::threads::init_threads(None);
    neurite::run_on_worker(move || run(args))
}

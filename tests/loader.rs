//! The general data loader end to end: seeded batches whatever the workers, drop-last,
//! errors from a data set named, several inputs, float targets, a sampler of one's own;
//! and the training loop on tables: a regression to a small RMSE, a tiny classification.

mod common;

use anyhow::{bail, Result};
use neurite::data::{
    Batch, BatchTargets, DataLoader, Dataset, DatasetExt, LoaderConfig, RandomCrop, Sample,
    Sampler, Target, TensorDataset,
};
use neurite::nn::{Linear, Module};
use neurite::train::{train_model, OptimizerKind, RunOptions, Targets, TrainConfig, TrainData};
use neurite::Tensor;
use std::sync::Arc;

/// `n` images `[1, 4, 4]`, image i filled with i, 0.5 at one corner, class `i % 3`.
fn images(n: usize) -> TensorDataset {
    let mut data = Vec::with_capacity(n * 16);
    for i in 0..n {
        let mut img = vec![i as f32; 16];
        img[0] = 0.5;
        data.extend(img);
    }
    let labels: Vec<usize> = (0..n).map(|i| i % 3).collect();
    TensorDataset::new(Tensor::from_vec(data, &[n, 1, 4, 4]), labels).unwrap()
}

fn epoch(loader: &DataLoader, e: u64) -> Vec<Batch> {
    loader.epoch(e).map(Result::unwrap).collect()
}

/// The contents of batches, comparable.
fn contents(batches: &[Batch]) -> Vec<(Vec<f32>, Vec<usize>)> {
    batches
        .iter()
        .map(|b| (b.input().to_vec(), b.labels().to_usize_vec()))
        .collect()
}

#[test]
fn batches_depend_on_the_seed_never_on_the_workers() {
    // Random crops with padding: each sample's draw must be keyed by its position.
    let ds = Arc::new(images(37).map(RandomCrop::new(4, 4, 1)));
    let run = |workers, prefetch, seed, e| {
        let config = LoaderConfig {
            batch_size: 5,
            seed,
            num_workers: workers,
            prefetch,
            ..LoaderConfig::default()
        };
        contents(&epoch(&DataLoader::new(ds.clone(), config), e))
    };
    let base = run(1, 2, 7, 3);
    assert_eq!(base.len(), 8);
    for (workers, prefetch) in [(0, 1), (2, 1), (3, 4), (8, 1)] {
        assert_eq!(run(workers, prefetch, 7, 3), base, "{workers} workers");
    }
    assert_ne!(run(1, 2, 7, 4), base, "another epoch");
    assert_ne!(run(1, 2, 8, 3), base, "another seed");
    // Every image appears once, with its label (pixel (2, 2) stays inside any shift by 1).
    let mut ids: Vec<usize> = base
        .iter()
        .flat_map(|(x, labels)| {
            let ids: Vec<usize> = x.chunks(16).map(|img| img[10] as usize).collect();
            for (id, l) in ids.iter().zip(labels) {
                assert_eq!(id % 3, *l, "the label follows its image");
            }
            ids
        })
        .collect();
    ids.sort();
    assert_eq!(ids, (0..37).collect::<Vec<_>>());
}

#[test]
fn drop_last_and_sequential_order() {
    let config = LoaderConfig {
        batch_size: 4,
        shuffle: false,
        drop_last: true,
        ..LoaderConfig::default()
    };
    let loader = DataLoader::new(Arc::new(images(10)), config);
    assert_eq!(loader.num_batches(), 2);
    let b = epoch(&loader, 0);
    assert_eq!(b.len(), 2);
    assert_eq!(b[1].input().shape(), &[4, 1, 4, 4]);
    assert_eq!(b[1].labels().to_usize_vec(), vec![1, 2, 0, 1]);
    assert_eq!(b[1].input().to_vec()[16 + 5], 5.0);
    let keep = DataLoader::new(
        Arc::new(images(10)),
        LoaderConfig {
            drop_last: false,
            ..config
        },
    );
    assert_eq!(epoch(&keep, 0).last().unwrap().len(), 2);
}

/// Fails at `bad`, as a folder with a corrupt file would.
struct Flaky {
    n: usize,
    bad: usize,
}

impl Dataset for Flaky {
    fn len(&self) -> usize {
        self.n
    }
    fn get(&self, i: usize) -> Result<Sample> {
        if i == self.bad {
            bail!("cannot decode photos/img{i}.png: not a PNG file");
        }
        Ok(Sample::new(vec![i as f32], &[1], Target::Class(0)))
    }
}

#[test]
fn an_error_of_the_data_set_comes_out_of_the_iterator_named() {
    for workers in [0, 1, 3] {
        let config = LoaderConfig {
            batch_size: 2,
            shuffle: false,
            num_workers: workers,
            ..LoaderConfig::default()
        };
        let loader = DataLoader::new(Arc::new(Flaky { n: 20, bad: 7 }), config);
        let got: Vec<Result<Batch>> = loader.epoch(0).collect();
        // Batches 0, 1, 2 are good, batch 3 (samples 6, 7) fails, and the epoch ends.
        assert_eq!(got.len(), 4, "{workers} workers");
        assert!(got[..3].iter().all(Result::is_ok));
        let e = got[3].as_ref().unwrap_err().to_string();
        assert!(e.contains("photos/img7.png"), "{e}");
    }
    let e = neurite::data::eval_batches(&Flaky { n: 9, bad: 8 }, 4)
        .find_map(Result::err)
        .unwrap()
        .to_string();
    assert!(e.contains("img8.png"), "{e}");
}

#[test]
fn several_inputs_and_float_targets_are_stacked() {
    let a = Tensor::from_vec((0..6).map(|v| v as f32).collect(), &[3, 2]);
    let b = Tensor::from_vec((0..3).map(|v| 10.0 * v as f32).collect(), &[3, 1]);
    let y = Tensor::from_vec(vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5], &[3, 2]);
    let ds = TensorDataset::with_inputs(vec![a, b], y).unwrap();
    let config = LoaderConfig {
        batch_size: 2,
        shuffle: false,
        ..LoaderConfig::default()
    };
    let batches = epoch(&DataLoader::new(Arc::new(ds), config), 0);
    assert_eq!(batches[0].inputs.len(), 2);
    assert_eq!(batches[0].inputs[0].to_vec(), vec![0.0, 1.0, 2.0, 3.0]);
    assert_eq!(batches[0].inputs[1].shape(), &[2, 1]);
    assert_eq!(batches[1].inputs[1].to_vec(), vec![20.0]);
    assert_eq!(batches[0].values().shape(), &[2, 2]);
    assert_eq!(batches[1].values().to_vec(), vec![2.0, 2.5]);
    let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3, 1]);
    let y = Tensor::from_vec(vec![4.0, 5.0, 6.0], &[3]);
    let ds = TensorDataset::new(x, y).unwrap();
    let b = epoch(&DataLoader::new(Arc::new(ds), config), 0);
    assert!(matches!(&b[0].targets, BatchTargets::Values(v) if v.shape() == [2]));
}

/// The even indices, backwards: a sampler of one's own.
struct EvensBackwards(usize);

impl Sampler for EvensBackwards {
    fn len(&self) -> usize {
        self.0.div_ceil(2)
    }
    fn indices(&self, _epoch: u64) -> Vec<usize> {
        (0..self.0).step_by(2).rev().collect()
    }
}

#[test]
fn the_loader_takes_any_sampler() {
    let config = LoaderConfig {
        batch_size: 3,
        ..LoaderConfig::default()
    };
    let loader = DataLoader::with_sampler(Arc::new(images(7)), Arc::new(EvensBackwards(7)), config);
    assert_eq!(loader.num_batches(), 2);
    let b = epoch(&loader, 0);
    let ids: Vec<f32> = b
        .iter()
        .flat_map(|b| {
            b.input()
                .to_vec()
                .chunks(16)
                .map(|im| im[5])
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(ids, vec![6.0, 4.0, 2.0, 0.0]);
}

/// `n` rows of two features in [-1, 1) and `y = 2 x0 - x1 + 0.5` (plus the class of `y > 0.5`).
fn linear_table(n: usize, salt: u64) -> (Tensor, Vec<f32>) {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ salt;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 2000) as f32 / 1000.0 - 1.0
    };
    let x: Vec<f32> = (0..2 * n).map(|_| next()).collect();
    let y = x.chunks(2).map(|r| 2.0 * r[0] - r[1] + 0.5).collect();
    (Tensor::from_vec(x, &[n, 2]), y)
}

fn table_config(epochs: usize) -> TrainConfig {
    TrainConfig {
        model: "linear".into(),
        epochs,
        batch_size: 16,
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 0.0,
        ..TrainConfig::recipe("mlp", OptimizerKind::Sgd).unwrap()
    }
}

#[test]
fn regression_on_a_linear_table_reaches_a_small_rmse() {
    let out = common::temp_dir("loader-regression");
    let (x, y) = linear_table(256, 1);
    let (tx, ty) = linear_table(64, 2);
    let data = TrainData::table(x, Targets::Values(y), tx, Targets::Values(ty))
        .unwrap()
        .with_metadata(vec![("table.target".into(), "y".into())]);
    assert!(data.is_regression());
    let config = table_config(15);
    neurite::manual_seed(config.seed);
    let model: Box<dyn Module> = Box::new(Linear::new(2, 1, true));
    let opts = RunOptions {
        out: out.clone(),
        ..Default::default()
    };
    let s = train_model(&config, model, &data, &opts).unwrap();
    let rmse = s.rmse.unwrap();
    assert!(rmse < 0.02, "test RMSE {rmse}");
    assert!(s.mae.unwrap() <= rmse);
    assert!((s.loss - rmse * rmse).abs() < 1e-6, "the loss is the MSE");
    let log = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 15);
    assert!(
        log.lines().last().unwrap().contains("\"test_rmse\""),
        "{log}"
    );
    let ck = neurite::checkpoint::Checkpoint::load(&out.join("model.safetensors")).unwrap();
    assert_eq!(
        ck.metadata.get("table.target").map(String::as_str),
        Some("y")
    );
    assert_eq!(ck.metadata.get("model").map(String::as_str), Some("linear"));
    assert!(
        !ck.metadata.contains_key("normalize.mean"),
        "a table has no pixels"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn classification_on_a_tiny_table() {
    let out = common::temp_dir("loader-classes");
    let classes = |y: Vec<f32>| Targets::Classes {
        labels: y.iter().map(|&v| usize::from(v > 0.5)).collect(),
        class_names: vec!["low".into(), "high".into()],
    };
    let (x, y) = linear_table(200, 3);
    let (tx, ty) = linear_table(100, 4);
    let data = TrainData::table(x, classes(y), tx, classes(ty)).unwrap();
    assert_eq!((data.classes(), data.input_shape()), (Some(2), vec![2]));
    let config = table_config(10);
    neurite::manual_seed(config.seed);
    let model: Box<dyn Module> = Box::new(Linear::new(2, 2, true));
    let opts = RunOptions {
        out: out.clone(),
        ..Default::default()
    };
    let s = train_model(&config, model, &data, &opts).unwrap();
    assert!(s.accuracy > 0.93, "test accuracy {}", s.accuracy);
    assert!(s.rmse.is_none());
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn bad_tables_are_named() {
    let (x, y) = linear_table(4, 5);
    let e = |r: Result<TrainData>| r.err().unwrap().to_string();
    let short = Targets::Values(y[..3].to_vec());
    let msg = e(TrainData::table(
        x.clone(),
        short,
        x.clone(),
        Targets::Values(y.clone()),
    ));
    assert!(msg.contains("4 rows and 3 targets"), "{msg}");
    let bad = Targets::Classes {
        labels: vec![0, 1, 2, 0],
        class_names: vec!["a".into(), "b".into()],
    };
    let good = Targets::Classes {
        labels: vec![0; 4],
        class_names: vec!["a".into(), "b".into()],
    };
    let msg = e(TrainData::table(x.clone(), bad, x.clone(), good));
    assert!(msg.contains("row 2") && msg.contains("2 classes"), "{msg}");
    let msg = e(TrainData::table(
        x.clone(),
        Targets::Values(y),
        x.reshape(&[2, 2, 2][..]),
        Targets::Values(vec![0.0; 2]),
    ));
    assert!(msg.contains("[rows, features]"), "{msg}");
    // Augmenting a table is a mistake the loop names.
    let (x, y) = linear_table(8, 6);
    let data =
        TrainData::table(x.clone(), Targets::Values(y.clone()), x, Targets::Values(y)).unwrap();
    let config = TrainConfig {
        augment: "flip".parse().unwrap(),
        ..table_config(1)
    };
    let out = common::temp_dir("loader-augment-table");
    let model: Box<dyn Module> = Box::new(Linear::new(2, 1, true));
    let opts = RunOptions {
        out: out.clone(),
        ..Default::default()
    };
    let msg = train_model(&config, model, &data, &opts)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("--augment flip") && msg.contains("table"),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(&out);
}
